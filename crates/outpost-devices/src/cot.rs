//! Cursor-on-Target (CoT) 2.0 XML events: a framer for TCP streams, a decoder for
//! position events, and an encoder for the CAD picture sent to TAK clients.
//!
//! Format: the CoT event schema (`event` with `uid`, `type`, `time`, `start`, `stale`,
//! `how`; `point` with `lat`, `lon`, `hae`, `ce`, `le`, where 9999999 means unknown; and a
//! free-form `detail`), as ATAK, WinTAK and iTAK send it ("TAK protocol version 0", plain
//! XML; the protobuf stream of version 1 is not read). XML is parsed with quick-xml, which
//! expands no DTD entities; a `<!DOCTYPE>` is refused.
//!
//! CoT types Outpost sends (2525-derived names as listed in ATAK's `CoTtypes.xml`, seen
//! through the FreeTAKServer documentation's "Center On Target (CoT)" table and its
//! hierarchy `a-.-G-U-C` "COMBAT", `a-.-G-U-C-S` "INTERNAL SECURITY FORCES", `a-.-G-E-V-C`
//! "civilian vehicle"):
//! - units: friendly (`a-f-`), ground (`G`). Vehicles (patrol car, motorcycle, traffic
//!   police) are `a-f-G-E-V-C`, a civilian vehicle, the type WinTAK itself sends for a
//!   vehicle (`data/gps/cot_wintak_position.xml`); officers on foot and post teams are
//!   `a-f-G-U-C`, the ground unit type ATAK gives its own position by default; the tactical
//!   team is `a-f-G-U-C-S`, internal security forces. `how` = `m-g` (machine, GPS).
//! - incidents: `b-m-p-s-m`, the spot-map marker a TAK user drops by hand, coloured by
//!   priority (`color@argb` and the `COT_MAPPING_SPOTMAP` icon: P1 red, P2 orange, P3
//!   yellow, P4 white); `how` = `h-g-i-g-o` (human-entered).
//! - the ping answer: `t-x-c-t-r` to a client's `t-x-c-t`.
//!
//! Numbers are written fixed-point, never in exponent form (the schema types them
//! `xs:decimal`): latitude/longitude with up to 7 decimals (about 1 cm), metres, m/s and
//! course degrees with up to 2. Text is cut down to what XML 1.0 allows ([`is_xml_char`]).

use chrono::{DateTime, Duration, NaiveDateTime, SecondsFormat, Utc};
use outpost_domain::device::{DeviceReport, DeviceSource, FixError, check_fix};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{IncidentType, Priority};
use outpost_domain::op::Fix;
use outpost_domain::unit::{UnitKind, UnitStatus};
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use uuid::Uuid;

use crate::{device_name, kept_device_id, quote};

/// Largest single event accepted, in bytes (a WinTAK position event is about 800 bytes).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// How long after its fix a unit's event stays fresh in a TAK client (`stale` − `start`),
/// seconds.
pub const UNIT_STALE_S: i64 = 300;
/// How long an open incident's event stays fresh (`stale` − `time`), seconds; the server
/// re-sends the picture well before.
pub const INCIDENT_STALE_S: i64 = 3600;
/// Prefix of the `uid` of every event Outpost sends; events with it that come back are not
/// taken as device reports.
pub const UID_PREFIX: &str = "outpost-";

/// Why an event is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CotError {
    /// Not well-formed XML, or no `<event>` root; says where.
    #[error("malformed CoT XML: {0}")]
    Xml(String),
    /// A required attribute is missing (`uid`, `type`, `time`, `point@lat`…).
    #[error("CoT event lacks {0}")]
    Missing(&'static str),
    /// An attribute that does not parse.
    #[error("CoT attribute {name}={value:?}: {reason}")]
    BadAttribute {
        /// `element@attribute`.
        name: String,
        /// Value as sent (cut to 64 characters).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An event longer than [`MAX_EVENT_BYTES`].
    #[error("CoT event longer than {MAX_EVENT_BYTES} bytes")]
    TooLong,
    /// Not a position event (`type` does not start with `a-`), or one of our own.
    #[error("not a position event (type {0:?})")]
    NotPosition(String),
    /// The point fails the range or time checks.
    #[error("{0}")]
    Fix(#[from] FixError),
}

/// One decoded event (the parts Outpost reads).
#[derive(Debug, Clone, PartialEq)]
pub struct CotEvent {
    /// `event@uid`.
    pub uid: String,
    /// `event@type`, e.g. `a-f-G-E-V-C`.
    pub event_type: String,
    /// `event@time` (UTC): when the event was generated.
    pub time: DateTime<Utc>,
    /// `event@start` (UTC).
    pub start: DateTime<Utc>,
    /// `event@stale` (UTC).
    pub stale: DateTime<Utc>,
    /// `event@how`, e.g. `h-e`, `m-g`.
    pub how: String,
    /// `point@lat`, `point@lon` (WGS-84), unchecked.
    pub point: LatLon,
    /// `point@hae` metres, `None` for the "unknown" 9999999.
    pub hae_m: Option<f64>,
    /// `point@ce` metres (circular error), `None` for 9999999.
    pub ce_m: Option<f64>,
    /// `detail/contact@callsign`.
    pub callsign: Option<String>,
    /// `detail/track@speed`, metres per second.
    pub speed_mps: Option<f64>,
    /// `detail/track@course`, degrees from true north.
    pub course_deg: Option<f64>,
    /// `detail/status@battery`, percent.
    pub battery_pct: Option<f64>,
}

/// The `how` of a point a person placed on the map (a marker), not a device's own fix.
const HOW_PLACED: &str = "h-g-i-g-o";

/// `point@hae`/`ce`/`le` value meaning "unknown".
const UNKNOWN: f64 = 9_999_999.0;

impl CotEvent {
    /// The device report of a position event (`a-*`, uid not starting with [`UID_PREFIX`]):
    /// device id = uid as [`outpost_domain::device::device_id`] keeps it (trimmed), name =
    /// callsign, fix time = `time`, accuracy = `ce`; checked with
    /// `check_fix` against `now`. A marker a person placed on the map (`how` =
    /// `h-g-i-g-o`) is not a device position either.
    ///
    /// # Errors
    /// [`CotError::NotPosition`], [`CotError::BadAttribute`] for an unusable uid or a
    /// battery level outside 0..=100, or [`CotError::Fix`].
    pub fn to_report(&self, now: DateTime<Utc>) -> Result<DeviceReport, CotError> {
        if !self.event_type.starts_with("a-")
            || self.uid.trim_start().starts_with(UID_PREFIX)
            || self.how == HOW_PLACED
        {
            return Err(CotError::NotPosition(quote(&self.event_type)));
        }
        let device_id =
            kept_device_id(&self.uid).map_err(|p| bad_attr("event@uid", &self.uid, p))?;
        if let Some(b) = self.battery_pct
            && !(b.is_finite() && (0.0..=100.0).contains(&b))
        {
            return Err(bad_attr(
                "status@battery",
                &b.to_string(),
                "battery level is outside 0..100 %",
            ));
        }
        let fix = Fix {
            position: self.point,
            fix_time: self.time,
            heading_deg: self.course_deg,
            speed_mps: self.speed_mps,
            accuracy_m: self.ce_m,
        };
        check_fix(&fix, now)?;
        Ok(DeviceReport {
            device_id,
            source: DeviceSource::Cot,
            name: self.callsign.as_deref().and_then(device_name),
            fix,
            battery_pct: self.battery_pct,
        })
    }
}

fn bad_attr(name: &str, value: &str, reason: impl Into<String>) -> CotError {
    CotError::BadAttribute {
        name: name.to_string(),
        value: quote(value),
        reason: reason.into(),
    }
}

/// Attributes of one element as (name, unescaped value) pairs.
fn attributes(
    e: &BytesStart<'_>,
    element: &str,
    at: u64,
) -> Result<Vec<(String, String)>, CotError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| CotError::Xml(format!("<{element}> at byte {at}: {err}")))?;
        let key = a.key.as_ref().to_string();
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| CotError::Xml(format!("{element}@{key} at byte {at}: {err}")))?;
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

fn get<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An xs:dateTime as CoT uses it (`2020-02-08T18:10:44.000Z`); without a zone it is UTC.
fn time_attr(name: &str, value: &str) -> Result<DateTime<Utc>, CotError> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    Err(bad_attr(name, value, "not an ISO 8601 time"))
}

fn number_attr(name: &str, value: &str) -> Result<f64, CotError> {
    value
        .trim()
        .parse::<f64>()
        .map_err(|_| bad_attr(name, value, "not a number"))
}

/// A `hae`/`ce` value: `None` for the "unknown" 9999999 (or more).
fn maybe_unknown(name: &str, value: Option<&str>) -> Result<Option<f64>, CotError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let x = number_attr(name, v)?;
            // NaN stays (and fails the fix checks); 9999999 and above are "unknown".
            Ok(if x >= UNKNOWN { None } else { Some(x) })
        }
    }
}

fn optional_number(name: &str, value: Option<&str>) -> Result<Option<f64>, CotError> {
    value.map(|v| number_attr(name, v)).transpose()
}

/// Decodes one event (with or without the `<?xml …?>` declaration).
///
/// Reads `event@uid`, `type`, `time` (required), `start` (default `time`), `stale` (default
/// `start`), `how` (default empty); `point@lat`, `lon` (required), `hae`, `ce`; and in
/// `detail`: `contact@callsign`, `track@speed`/`course`, `status@battery`. Other elements
/// are skipped. Nothing may follow `</event>` but whitespace and comments.
///
/// # Errors
/// [`CotError`] saying what is malformed or missing; [`CotError::TooLong`] beyond
/// [`MAX_EVENT_BYTES`].
pub fn decode_event(xml: &[u8]) -> Result<CotEvent, CotError> {
    if xml.len() > MAX_EVENT_BYTES {
        return Err(CotError::TooLong);
    }
    let mut reader = Reader::from_reader(xml);
    // Element names from the root down to the current element.
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut root_done = false;
    let mut event_attrs: Option<Vec<(String, String)>> = None;
    let mut point_attrs: Option<Vec<(String, String)>> = None;
    let mut callsign = None;
    let mut track: Option<Vec<(String, String)>> = None;
    let mut battery = None;

    loop {
        let at = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| CotError::Xml(format!("{e} at byte {}", reader.error_position())))?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name().as_ref().as_bytes().to_vec();
            if root_done {
                return Err(CotError::Xml(format!(
                    "content after </event> at byte {at}"
                )));
            }
            match stack.len() {
                0 => {
                    if name != b"event" {
                        return Err(CotError::Xml(format!(
                            "the root element is <{}>, not <event>",
                            quote(&String::from_utf8_lossy(&name))
                        )));
                    }
                    event_attrs = Some(attributes(e, "event", at)?);
                }
                1 if name == b"point" => point_attrs = Some(attributes(e, "point", at)?),
                2 if stack[1] == b"detail" => match name.as_slice() {
                    b"contact" => {
                        let a = attributes(e, "contact", at)?;
                        callsign = get(&a, "callsign").map(str::to_string);
                    }
                    b"track" => track = Some(attributes(e, "track", at)?),
                    b"status" => {
                        let a = attributes(e, "status", at)?;
                        battery = optional_number("status@battery", get(&a, "battery"))?;
                    }
                    _ => {}
                },
                _ => {}
            }
            if empty {
                if stack.is_empty() {
                    root_done = true;
                }
            } else {
                stack.push(name);
            }
            continue;
        }
        match ev {
            Event::End(_) => {
                // quick-xml checks that end names match their start.
                stack.pop();
                if stack.is_empty() {
                    root_done = true;
                }
            }
            Event::Text(t) if stack.is_empty() && !t.trim().is_empty() => {
                return Err(CotError::Xml(format!("text outside <event> at byte {at}")));
            }
            Event::CData(_) | Event::GeneralRef(_) if stack.is_empty() => {
                return Err(CotError::Xml(format!("text outside <event> at byte {at}")));
            }
            Event::DocType(_) => {
                return Err(CotError::Xml(format!(
                    "a <!DOCTYPE> is not allowed in CoT (byte {at})"
                )));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(CotError::Xml(format!(
            "truncated: <{}> is not closed",
            String::from_utf8_lossy(stack.last().map(Vec::as_slice).unwrap_or_default())
        )));
    }
    let Some(ea) = event_attrs else {
        return Err(CotError::Xml("no <event> element".into()));
    };
    let uid = get(&ea, "uid").ok_or(CotError::Missing("event@uid"))?;
    let event_type = get(&ea, "type").ok_or(CotError::Missing("event@type"))?;
    let time = time_attr(
        "event@time",
        get(&ea, "time").ok_or(CotError::Missing("event@time"))?,
    )?;
    let start = match get(&ea, "start") {
        Some(v) => time_attr("event@start", v)?,
        None => time,
    };
    let stale = match get(&ea, "stale") {
        Some(v) => time_attr("event@stale", v)?,
        None => start,
    };
    let pa = point_attrs.ok_or(CotError::Missing("point"))?;
    let lat = number_attr(
        "point@lat",
        get(&pa, "lat").ok_or(CotError::Missing("point@lat"))?,
    )?;
    let lon = number_attr(
        "point@lon",
        get(&pa, "lon").ok_or(CotError::Missing("point@lon"))?,
    )?;
    let (speed_mps, course_deg) = match &track {
        Some(t) => (
            optional_number("track@speed", get(t, "speed"))?,
            optional_number("track@course", get(t, "course"))?,
        ),
        None => (None, None),
    };
    Ok(CotEvent {
        uid: uid.to_string(),
        event_type: event_type.to_string(),
        time,
        start,
        stale,
        how: get(&ea, "how").unwrap_or_default().to_string(),
        point: LatLon { lat, lon },
        hae_m: maybe_unknown("point@hae", get(&pa, "hae"))?,
        ce_m: maybe_unknown("point@ce", get(&pa, "ce"))?,
        callsign,
        speed_mps,
        course_deg,
        battery_pct: battery,
    })
}

/// Bytes kept from a stretch with no `<event` in it: enough for a start cut in half.
const KEEP_TAIL: usize = b"<event".len();

/// Splits a TCP byte stream into events: back-to-back `<event …>…</event>` elements,
/// each optionally preceded by an XML declaration and whitespace (pytak sends the
/// declaration, a newline, then the event).
///
/// The framer looks only at the `<event` start tag (quotes respected) and the next
/// `</event>`; a `</event>` inside a CDATA section or comment of an event would end it
/// early (the decoder then refuses both halves). Memory is bounded: at most
/// [`MAX_EVENT_BYTES`] plus one read are held.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// `buf` starts with `<event`: where the start tag ends (index of its `>`), once seen.
    tag_end: Option<usize>,
    /// Scan position inside `buf`, so each byte is looked at about once.
    scan: usize,
    /// Inside a quoted attribute value of the start tag: the quote byte.
    quote: Option<u8>,
}

/// Index of the first `<event` start tag (followed by whitespace, `>` or `/`) at or after
/// `from`.
fn find_event_start(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + KEEP_TAIL < buf.len() {
        if buf[i..].starts_with(b"<event") {
            let next = buf[i + KEEP_TAIL];
            if next.is_ascii_whitespace() || next == b'>' || next == b'/' {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

/// Index one past the end of the first `</event>` (whitespace allowed before `>`) at or
/// after `from`; `Err(resume)` with where to resume when not complete yet.
fn find_event_end(buf: &[u8], from: usize) -> Result<usize, usize> {
    const CLOSE: &[u8] = b"</event";
    let mut i = from;
    while i + CLOSE.len() <= buf.len() {
        if buf[i..].starts_with(CLOSE) {
            let mut j = i + CLOSE.len();
            while j < buf.len() && buf[j].is_ascii_whitespace() {
                j += 1;
            }
            match buf.get(j) {
                Some(b'>') => return Ok(j + 1),
                Some(_) => {}
                // Incomplete close tag: resume here later.
                None => return Err(i),
            }
        }
        i += 1;
    }
    Err(i)
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Drops the first `n` bytes and resets the scan state.
    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.tag_end = None;
        self.scan = 0;
        self.quote = None;
    }

    /// Keeps only the last bytes of a stretch without `<event`.
    fn keep_tail(&mut self) {
        let keep = self.buf.len().min(KEEP_TAIL);
        self.consume(self.buf.len() - keep);
    }

    /// The next complete event's bytes, `None` when more input is needed. An event longer
    /// than [`MAX_EVENT_BYTES`] yields `Err(CotError::TooLong)` once and its bytes are
    /// discarded up to the next `<event`; garbage between events is skipped.
    pub fn next_event(&mut self) -> Option<Result<Vec<u8>, CotError>> {
        if self.tag_end.is_none() && self.scan == 0 {
            // Not inside an event: find the next start (skipping the declaration,
            // whitespace, garbage, or the rest of a too-long event).
            match find_event_start(&self.buf, 0) {
                Some(i) => self.consume(i),
                None => {
                    self.keep_tail();
                    return None;
                }
            }
        }
        // buf starts with `<event`: find the end of the start tag.
        if self.tag_end.is_none() {
            let mut i = self.scan.max(KEEP_TAIL);
            while i < self.buf.len() {
                let b = self.buf[i];
                match self.quote {
                    Some(q) if b == q => self.quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => self.quote = Some(b),
                    None if b == b'>' => {
                        self.tag_end = Some(i);
                        break;
                    }
                    None => {}
                }
                i += 1;
            }
            self.scan = i;
            let Some(gt) = self.tag_end else {
                return self.too_long_or_wait();
            };
            if self.buf[gt - 1] == b'/' {
                // `<event …/>`: an event with no content.
                let n = gt + 1;
                if n > MAX_EVENT_BYTES {
                    self.consume(n);
                    return Some(Err(CotError::TooLong));
                }
                let event = self.buf[..n].to_vec();
                self.consume(n);
                return Some(Ok(event));
            }
            self.scan = gt + 1;
        }
        match find_event_end(&self.buf, self.scan) {
            Ok(n) => {
                if n > MAX_EVENT_BYTES {
                    self.consume(n);
                    return Some(Err(CotError::TooLong));
                }
                let event = self.buf[..n].to_vec();
                self.consume(n);
                Some(Ok(event))
            }
            Err(resume) => {
                self.scan = resume;
                self.too_long_or_wait()
            }
        }
    }

    /// With an incomplete event in `buf`: `TooLong` (and discard) past the limit, else wait.
    fn too_long_or_wait(&mut self) -> Option<Result<Vec<u8>, CotError>> {
        if self.buf.len() > MAX_EVENT_BYTES {
            // Drop the event; the search for the next `<event` skips the rest of it.
            self.keep_tail();
            Some(Err(CotError::TooLong))
        } else {
            None
        }
    }

    /// Bytes held waiting for the end of an event.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }
}
/// A unit as TAK clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitPicture {
    /// Outpost unit id (the event uid is `outpost-unit-{id}`).
    pub unit_id: String,
    /// Callsign (`contact@callsign`).
    pub callsign: String,
    /// Kind (chooses the CoT type).
    pub kind: UnitKind,
    /// Status (in `remarks`).
    pub status: UnitStatus,
    /// Latest fix: `start` = fix time, `stale` = fix time + [`UNIT_STALE_S`].
    pub fix: Fix,
    /// Number of the incident it is assigned to, if any (in `remarks`).
    pub incident_number: Option<String>,
}

/// An incident as TAK clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPicture {
    /// Id (the event uid is `outpost-incident-{id}`).
    pub incident_id: Uuid,
    /// Human-readable number (`contact@callsign`).
    pub number: String,
    /// Type.
    pub incident_type: IncidentType,
    /// Priority.
    pub priority: Priority,
    /// Location (WGS-84).
    pub location: LatLon,
    /// Address (in `remarks`).
    pub address: String,
    /// When it was created (`start`).
    pub created_at: DateTime<Utc>,
    /// Closed: sent once with `stale` = `time` so TAK clients drop it.
    pub closed: bool,
}

/// Whether XML 1.0 allows `c` in a document: its `Char` production (XML 1.0 fifth edition,
/// §2.2) is `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`; Rust
/// `char`s are never surrogates, so what is left out is C0 controls other than tab, LF and CR,
/// and the non-characters U+FFFE and U+FFFF.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text for an XML attribute or element, on one line: every control character (tab, LF and
/// CR too: attribute normalisation would turn them into spaces anyway, and a CR in element
/// text would become LF) and every character XML 1.0 forbids ([`is_xml_char`]: U+FFFE,
/// U+FFFF) becomes a space, then `<>&'"` are escaped. The result is always well-formed.
fn xml_text(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_control() || !is_xml_char(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    escape(clean).into_owned()
}

/// A CoT number (`xs:decimal`: no exponent, no `NaN`/`inf`) with at most `places` decimals:
/// fixed-point, trailing zeros dropped but one decimal kept (`13.2`, `4.0`, `0.0000080`
/// becomes `0.000008`), negative zero as `0.0`. Rust's `{:?}`/`{:e}` would write `8e-6`
/// for a tiny value. A value that is not finite (never in a checked fix) is written as 0.
fn decimal(x: f64, places: usize) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    let mut s = format!("{x:.places$}");
    if s.contains('.') {
        let kept = s.trim_end_matches('0').len();
        s.truncate(kept);
        if s.ends_with('.') {
            s.push('0');
        }
    } else {
        s.push_str(".0");
    }
    if s.starts_with('-') && s[1..].bytes().all(|b| b == b'0' || b == b'.') {
        s.remove(0);
    }
    s
}

/// Decimals of a CoT latitude/longitude: 1e-7 degrees is about 1 cm.
const DEGREE_PLACES: usize = 7;
/// Decimals of metres (`ce`, `hae`), metres per second (`speed`) and degrees of course.
const METRE_PLACES: usize = 2;

/// `t` + `seconds`, or `t` at the end of chrono's range (never a panic).
fn after(t: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t.checked_add_signed(Duration::seconds(seconds))
        .unwrap_or(t)
}

/// A CoT time: `2020-02-08T18:10:44.000Z` (UTC, milliseconds).
fn cot_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The CoT type of a unit kind (see the module docs for the source).
pub fn unit_cot_type(kind: UnitKind) -> &'static str {
    match kind {
        UnitKind::PatrolCar | UnitKind::Motorcycle | UnitKind::Traffic => "a-f-G-E-V-C",
        UnitKind::FootPatrol | UnitKind::PostTeam => "a-f-G-U-C",
        UnitKind::Tactical => "a-f-G-U-C-S",
    }
}

/// The CoT type of every incident marker.
pub const INCIDENT_COT_TYPE: &str = "b-m-p-s-m";

/// ATAK colour (`color@argb`, a signed 32-bit ARGB) of an incident of this priority.
pub fn priority_argb(priority: Priority) -> i32 {
    let argb: u32 = match priority {
        Priority::P1 => 0xFFFF_0000, // red
        Priority::P2 => 0xFFFF_8000, // orange
        Priority::P3 => 0xFFFF_FF00, // yellow
        Priority::P4 => 0xFFFF_FFFF, // white
    };
    argb as i32
}

fn kind_label(kind: UnitKind) -> &'static str {
    match kind {
        UnitKind::PatrolCar => "patrol car",
        UnitKind::Motorcycle => "motorcycle",
        UnitKind::FootPatrol => "foot patrol",
        UnitKind::PostTeam => "post team",
        UnitKind::Tactical => "tactical team",
        UnitKind::Traffic => "traffic police",
    }
}

fn incident_type_label(t: IncidentType) -> &'static str {
    match t {
        IncidentType::TrafficAccident => "traffic accident",
        IncidentType::TrafficHazard => "traffic hazard",
        IncidentType::Fire => "fire",
        IncidentType::Medical => "medical",
        IncidentType::Theft => "theft",
        IncidentType::Assault => "assault",
        IncidentType::Disturbance => "disturbance",
        IncidentType::MissingPerson => "missing person",
        IncidentType::FloodRescue => "flood rescue",
        IncidentType::Alarm => "alarm",
        IncidentType::PublicService => "public service",
        IncidentType::Other => "other",
    }
}

fn priority_label(p: Priority) -> &'static str {
    match p {
        Priority::P1 => "P1",
        Priority::P2 => "P2",
        Priority::P3 => "P3",
        Priority::P4 => "P4",
    }
}

/// A metre value ([`METRE_PLACES`] decimals); `9999999.0` for unknown (or not finite).
fn or_unknown(x: Option<f64>) -> String {
    decimal(x.filter(|v| v.is_finite()).unwrap_or(UNKNOWN), METRE_PLACES)
}

/// The CoT event of a unit, stamped `time` = `now`: uid `outpost-unit-{id}`, type by kind
/// ([`unit_cot_type`]), `how` `m-g`, `start` = fix time, `stale` = fix time +
/// [`UNIT_STALE_S`]; `point` with `ce` = accuracy; `detail` with `contact@callsign`,
/// `track` (course, speed m/s) when known, and `remarks` "kind, status[, incident N]".
pub fn encode_unit(unit: &UnitPicture, now: DateTime<Utc>) -> String {
    let fix = &unit.fix;
    let mut remarks = format!("{}, {}", kind_label(unit.kind), unit.status.words());
    if let Some(n) = &unit.incident_number {
        remarks.push_str(", incident ");
        remarks.push_str(n);
    }
    let track = if fix.heading_deg.is_some() || fix.speed_mps.is_some() {
        let mut t = String::from("<track");
        if let Some(c) = fix.heading_deg {
            t.push_str(&format!(" course=\"{}\"", decimal(c, METRE_PLACES)));
        }
        if let Some(s) = fix.speed_mps {
            t.push_str(&format!(" speed=\"{}\"", decimal(s, METRE_PLACES)));
        }
        t.push_str("/>");
        t
    } else {
        String::new()
    };
    format!(
        concat!(
            "<event version=\"2.0\" uid=\"{uid}\" type=\"{ty}\" how=\"m-g\" time=\"{time}\" ",
            "start=\"{start}\" stale=\"{stale}\">",
            "<point lat=\"{lat}\" lon=\"{lon}\" hae=\"9999999.0\" ce=\"{ce}\" le=\"9999999.0\"/>",
            "<detail><contact callsign=\"{callsign}\"/>{track}<remarks>{remarks}</remarks></detail>",
            "</event>"
        ),
        uid = xml_text(&format!("{UID_PREFIX}unit-{}", unit.unit_id)),
        ty = unit_cot_type(unit.kind),
        time = cot_time(now),
        start = cot_time(fix.fix_time),
        stale = cot_time(after(fix.fix_time, UNIT_STALE_S)),
        lat = decimal(fix.position.lat, DEGREE_PLACES),
        lon = decimal(fix.position.lon, DEGREE_PLACES),
        ce = or_unknown(fix.accuracy_m),
        callsign = xml_text(&unit.callsign),
        track = track,
        remarks = xml_text(&remarks),
    )
}

/// The CoT event of an incident, stamped `time` = `now`: uid `outpost-incident-{id}`, type
/// [`INCIDENT_COT_TYPE`], `how` `h-g-i-g-o`, `start` = created time, `stale` = `now` +
/// [`INCIDENT_STALE_S`] (closed: `stale` = `now`, so TAK clients drop it); `detail` with
/// `contact@callsign` = number, `remarks` "P1 fire: address", the priority colour.
pub fn encode_incident(incident: &IncidentPicture, now: DateTime<Utc>) -> String {
    let stale = if incident.closed {
        now
    } else {
        after(now, INCIDENT_STALE_S)
    };
    let mut remarks = format!(
        "{} {}: {}",
        priority_label(incident.priority),
        incident_type_label(incident.incident_type),
        incident.address
    );
    if incident.closed {
        remarks.push_str(" (closed)");
    }
    let argb = priority_argb(incident.priority);
    format!(
        concat!(
            "<event version=\"2.0\" uid=\"{uid}\" type=\"{ty}\" how=\"{how}\" time=\"{time}\" ",
            "start=\"{start}\" stale=\"{stale}\">",
            "<point lat=\"{lat}\" lon=\"{lon}\" hae=\"9999999.0\" ce=\"9999999.0\" le=\"9999999.0\"/>",
            "<detail><contact callsign=\"{callsign}\"/><remarks>{remarks}</remarks>",
            "<color argb=\"{argb}\"/><usericon iconsetpath=\"COT_MAPPING_SPOTMAP/{ty}/{argb}\"/>",
            "</detail></event>"
        ),
        uid = format_args!("{UID_PREFIX}incident-{}", incident.incident_id),
        ty = INCIDENT_COT_TYPE,
        how = HOW_PLACED,
        time = cot_time(now),
        start = cot_time(incident.created_at),
        stale = cot_time(stale),
        lat = decimal(incident.location.lat, DEGREE_PLACES),
        lon = decimal(incident.location.lon, DEGREE_PLACES),
        callsign = xml_text(&incident.number),
        remarks = xml_text(&remarks),
        argb = argb,
    )
}

/// How long the ping answer stays fresh, seconds.
const PONG_STALE_S: i64 = 20;

/// The answer to a TAK client's `t-x-c-t` ping (`t-x-c-t-r`, uid `takPong` as TAK Server
/// answers), stamped `now`, stale 20 s later.
pub fn encode_pong(now: DateTime<Utc>) -> String {
    format!(
        concat!(
            "<event version=\"2.0\" uid=\"takPong\" type=\"t-x-c-t-r\" how=\"h-g-i-g-o\" ",
            "time=\"{t}\" start=\"{t}\" stale=\"{s}\">",
            "<point lat=\"0.0\" lon=\"0.0\" hae=\"0.0\" ce=\"9999999.0\" le=\"9999999.0\"/>",
            "<detail/></event>"
        ),
        t = cot_time(now),
        s = cot_time(after(now, PONG_STALE_S)),
    )
}

/// Whether an event is a TAK client's ping (`t-x-c-t`) to answer with [`encode_pong`].
pub fn is_ping(event: &CotEvent) -> bool {
    event.event_type == "t-x-c-t"
}
