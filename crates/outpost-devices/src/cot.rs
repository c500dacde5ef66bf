//! Cursor-on-Target (CoT) 2.0 XML events: a framer for TCP streams, a decoder for
//! position events, and an encoder for the CAD picture sent to TAK clients.
//!
//! Contract (implementation: issue 4, decoders helper).

use chrono::{DateTime, Utc};
use outpost_domain::device::{DeviceReport, FixError};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{IncidentType, Priority};
use outpost_domain::op::Fix;
use outpost_domain::unit::{UnitKind, UnitStatus};
use uuid::Uuid;

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

impl CotEvent {
    /// The device report of a position event (`a-*`, uid not starting with [`UID_PREFIX`]):
    /// device id = uid, name = callsign, fix time = `time`, accuracy = `ce`; checked with
    /// `check_fix` against `now`.
    ///
    /// # Errors
    /// [`CotError::NotPosition`] or [`CotError::Fix`].
    pub fn to_report(&self, now: DateTime<Utc>) -> Result<DeviceReport, CotError> {
        let _ = now;
        Err(CotError::NotPosition(self.event_type.clone()))
    }
}

/// Decodes one event (with or without the `<?xml …?>` declaration).
///
/// # Errors
/// [`CotError`] saying what is malformed or missing.
pub fn decode_event(xml: &[u8]) -> Result<CotEvent, CotError> {
    let _ = xml;
    Err(CotError::Xml("not implemented yet".into()))
}

/// Splits a TCP byte stream into events: back-to-back `<event …>…</event>` elements,
/// each optionally preceded by an XML declaration and whitespace (pytak sends the
/// declaration, a newline, then the event).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
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

    /// The next complete event's bytes, `None` when more input is needed. An event longer
    /// than [`MAX_EVENT_BYTES`] yields `Err(CotError::TooLong)` once and its bytes are
    /// discarded up to the next `<event`; garbage between events is skipped.
    pub fn next_event(&mut self) -> Option<Result<Vec<u8>, CotError>> {
        None
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
    /// Status (in `remarks`, and the group role).
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

/// The CoT event of a unit, stamped `time` = `now`.
pub fn encode_unit(unit: &UnitPicture, now: DateTime<Utc>) -> String {
    let _ = (unit, now);
    String::new()
}

/// The CoT event of an incident, stamped `time` = `now`.
pub fn encode_incident(incident: &IncidentPicture, now: DateTime<Utc>) -> String {
    let _ = (incident, now);
    String::new()
}

/// The answer to a TAK client's `t-x-c-t` ping (`t-x-c-t-r`), stamped `now`.
pub fn encode_pong(now: DateTime<Utc>) -> String {
    let _ = now;
    String::new()
}
