//! The Cursor-on-Target listener (`--cot-listen`, TAK's port 8087 by convention): TCP streams
//! of back-to-back `<event>` elements and UDP datagrams of one event each, in; the CAD picture
//! out to every TCP client.
//!
//! In: each event is framed (`outpost_devices::cot::Framer`), decoded, and a position event
//! (`a-*`) becomes a device report ([`super::Ingest::submit`]); a `t-x-c-t` ping is answered
//! with `t-x-c-t-r`; housekeeping (a TAK client's `t-x-d-d` hello, chat, map items: see
//! [`is_ignored`]) is skipped and counted `ignored`; anything else is refused and counted
//! (`not_position` for a hand-placed marker or an unknown type). Bytes that are not an event
//! at all (garbage between or instead of events, non-XML datagrams) are counted `not_cot`,
//! TAK protocol-1 protobuf `tak_protobuf` with a log line telling the operator to set the
//! client to XML (once per TCP connection; for UDP the 1st, 2nd, 4th… datagram). A connection holding half an event
//! for [`PARTIAL_TIMEOUT`], or from which no byte has arrived for [`IDLE_TIMEOUT`] (what the
//! feed writes to it does not count), is closed and counted; a stream that ends inside an
//! event is counted `truncated`.
//!
//! Out (the feed): on connect a client gets the picture (every unit with a latest fix, every
//! open incident); then the changes. One feed task follows the op log after a cursor (woken by
//! the service's pokes, at most every [`FEED_INTERVAL`]), reads just the touched units and
//! incidents from the replica and broadcasts their events; the whole picture is re-sent every
//! [`PICTURE_INTERVAL`]; a closed incident is sent once with `stale` = `time`, followed by a
//! delete event ([`encode_delete`]: `t-x-d-d` naming the incident's uid in `<link>`, with
//! `<__forcedelete/>`, as TAK servers and clients send to remove a map item at once; the
//! `stale` alone does not remove a user-placed `b-m-p-s-m` marker from every client). A client that does not read within [`WRITE_TIMEOUT`] is dropped; a client that
//! falls behind the broadcast gets the whole picture again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

use outpost_devices::cot::{self, CotError, Framer, IncidentPicture, MAX_EVENT_BYTES, UnitPicture};
use outpost_domain::merge;
use outpost_domain::op::OpEnvelope;
use outpost_store::{IncidentRow, UnitRow};

use super::limits::{CappedListener, IdleRule, Limits};
use super::{Ingest, IngestStats, Listener, SUBMIT_WAIT, fix_reason};
use crate::security::guards::RefusalAudit;
use crate::security::tls::DeviceCertCheck;
use crate::security::{AuditEvent, AuditOutcome};
use crate::service::{SyncError, SyncService};
use crate::storage::Picture;

/// A TCP connection from which no byte has arrived for this long is closed and counted
/// (`idle_timeout`). ATAK and WinTAK ping (`t-x-c-t`) every few seconds and send their own
/// position periodically, so ten minutes of silence means a dead or abusive client. Only
/// bytes received count: the feed's writes never keep a silent connection open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a delete event stays valid, seconds.
const DELETE_STALE_S: i64 = 60;
/// A TCP connection holding part of an event that makes no progress for this long is closed.
pub const PARTIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// A write to a TAK client that takes longer drops the client.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The feed reads the log at most this often.
pub const FEED_INTERVAL: Duration = Duration::from_millis(250);
/// The whole picture is re-sent this often.
pub const PICTURE_INTERVAL: Duration = Duration::from_secs(60);
/// What the framer may hold between events without being inside one: it keeps the last
/// `"<event".len()` bytes of a stretch without an event start (whitespace after an event, an
/// XML declaration), in case a start was cut in half. More than this is part of an event.
const BETWEEN_EVENTS_TAIL: usize = b"<event".len();

/// The first bytes of TAK protocol version 1 "mesh" messages (protobuf, not XML): 0xbf, the
/// version 1, 0xbf (TAK's `takproto` header; ATAK/WinTAK send it when set to protocol 1).
pub const TAK_PROTOBUF_MAGIC: [u8; 3] = [0xbf, 0x01, 0xbf];

/// Where the junk classifier is in the bytes between events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Between {
    /// Whitespace or nothing so far.
    #[default]
    Clean,
    /// After `<`.
    Lt,
    /// Inside `<?…?>` (an XML declaration, as pytak sends before each event).
    Pi,
    /// Inside `<?…`, after a `?`.
    PiQ,
    /// Inside `<!…>` (a comment).
    Bang,
    /// Bytes that are not CoT: the stretch is counted (or about to be, see `first`).
    Junk,
}

/// The longest XML declaration or comment between events taken as such.
const MAX_MARKUP: usize = 1_024;

/// A CoT byte stream (one TCP connection, or one UDP datagram): the [`Framer`], and what it
/// skips between events classified. Whitespace, XML declarations and comments between events
/// are normal; any other stretch of bytes before the next `<event` (garbage, a non-XML
/// datagram, `<EVENT>` or `<cot:event>`, TAK protocol-1 protobuf) is one refusal:
/// `tak_protobuf` when it starts with [`TAK_PROTOBUF_MAGIC`], else `not_cot`.
///
/// Only bytes the framer skips are looked at, each once, in stream order: they lie in the
/// last read or in the at most `"<event".len()` bytes the framer kept between events before
/// it (a copy of which is all this adds to the framer; its buffer is always a suffix of the
/// stream). The rest of an event cut for its
/// length is skipped by the framer too; that is counted `too_long` once, not as junk.
#[derive(Debug, Default)]
struct CotInput {
    framer: Framer,
    /// The framer's bytes while it is between events (at most `BETWEEN_EVENTS_TAIL`).
    tail: Vec<u8>,
    state: Between,
    /// The first bytes of the current junk stretch, up to 3, to recognise protobuf.
    first: Vec<u8>,
    /// Bytes inside the current `<?…` or `<!…` between events.
    markup_len: usize,
    /// The rest of a too-long event is being skipped.
    after_too_long: bool,
    /// Junk stretches found and not yet taken by the caller: their refusal keys.
    found: Vec<&'static str>,
}

/// Byte `i` of `tail` followed by `chunk` (`i` below their total length).
fn view_byte(tail: &[u8], chunk: &[u8], i: usize) -> u8 {
    match tail.get(i) {
        Some(&b) => b,
        None => chunk.get(i - tail.len()).copied().unwrap_or(b' '),
    }
}

impl CotInput {
    /// True when the framer holds part of an event (not just whitespace between events).
    fn inside_event(&self) -> bool {
        self.framer.pending_bytes() > BETWEEN_EVENTS_TAIL
    }

    fn pending_bytes(&self) -> usize {
        self.framer.pending_bytes()
    }

    /// Appends `chunk` and returns every event complete now (or the framer's error).
    fn push(&mut self, chunk: &[u8]) -> Vec<Result<Vec<u8>, CotError>> {
        // The stream bytes the framer may still skip: `tail` then `chunk` (the "view").
        let tail = std::mem::take(&mut self.tail);
        let view_len = tail.len() + chunk.len();
        self.framer.push(chunk);
        let mut out = Vec::new();
        loop {
            let before = self.framer.pending_bytes();
            let next = self.framer.next_event();
            let consumed = before.saturating_sub(self.framer.pending_bytes());
            // Where the framer's buffer started in `view` (negative: inside an event that
            // began in an earlier read; nothing of it is skipped).
            let start = view_len.checked_sub(before);
            match next {
                Some(Ok(event)) => {
                    let skipped = consumed.saturating_sub(event.len());
                    if let Some(st) = start
                        && skipped > 0
                        && !self.after_too_long
                    {
                        self.classify_range(&tail, chunk, st, skipped);
                    }
                    self.after_too_long = false;
                    self.end_stretch();
                    out.push(Ok(event));
                }
                Some(Err(e)) => {
                    if e == CotError::TooLong {
                        self.after_too_long = true;
                        self.state = Between::Clean;
                        self.first.clear();
                    } else {
                        self.end_stretch();
                    }
                    out.push(Err(e));
                }
                None => {
                    if let Some(st) = start
                        && consumed > 0
                        && !self.after_too_long
                    {
                        self.classify_range(&tail, chunk, st, consumed);
                    }
                    break;
                }
            }
        }
        let pending = self.framer.pending_bytes();
        if pending <= BETWEEN_EVENTS_TAIL && pending <= view_len {
            self.tail = (view_len - pending..view_len)
                .map(|i| view_byte(&tail, chunk, i))
                .collect();
        }
        out
    }

    /// The end of the stream (TCP) or of the datagram (UDP): what the framer still holds
    /// between events is classified too.
    fn finish(&mut self) {
        if !self.inside_event() && !self.after_too_long {
            let tail = std::mem::take(&mut self.tail);
            for &b in &tail {
                self.classify(b);
            }
        }
        self.end_stretch();
    }

    /// Junk stretches found since the last call: their refusal keys.
    fn take_found(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.found)
    }

    /// Classifies `len` bytes of the view (`tail` then `chunk`) from `start`.
    fn classify_range(&mut self, tail: &[u8], chunk: &[u8], start: usize, len: usize) {
        let end = (start + len).min(tail.len() + chunk.len());
        for i in start..end {
            self.classify(view_byte(tail, chunk, i));
        }
    }

    /// One skipped byte, in stream order.
    fn classify(&mut self, b: u8) {
        if matches!(self.state, Between::Pi | Between::PiQ | Between::Bang) {
            self.markup_len += 1;
        } else {
            self.markup_len = 0;
        }
        self.state = match (self.state, b) {
            (Between::Junk, _) => {
                if self.first.len() < TAK_PROTOBUF_MAGIC.len() {
                    self.first.push(b);
                    if self.first.len() == TAK_PROTOBUF_MAGIC.len() {
                        self.decide();
                    }
                }
                Between::Junk
            }
            (Between::Pi | Between::PiQ | Between::Bang, b) if self.markup_len > MAX_MARKUP => {
                // No declaration or comment is this long: not CoT.
                self.first.clear();
                self.first.push(b);
                Between::Junk
            }
            (Between::Clean, b) if b.is_ascii_whitespace() => Between::Clean,
            (Between::Clean, b'<') => Between::Lt,
            (Between::Lt, b'?') => Between::Pi,
            (Between::Lt, b'!') => Between::Bang,
            (Between::Pi | Between::PiQ, b'?') => Between::PiQ,
            (Between::PiQ, b'>') | (Between::Bang, b'>') => Between::Clean,
            (Between::Pi | Between::PiQ, _) => Between::Pi,
            (Between::Bang, _) => Between::Bang,
            (Between::Clean | Between::Lt, b) => {
                self.first.clear();
                self.first.push(b);
                Between::Junk
            }
        };
    }

    /// Counts the current junk stretch once (`first` holds its first bytes).
    fn decide(&mut self) {
        let key = if self.first.starts_with(&TAK_PROTOBUF_MAGIC) {
            "tak_protobuf"
        } else {
            "not_cot"
        };
        self.found.push(key);
        // Decided: no more bytes are collected for this stretch.
        self.first.resize(TAK_PROTOBUF_MAGIC.len() + 1, 0);
    }

    /// An event starts (or the input ends): the stretch before it is over.
    fn end_stretch(&mut self) {
        match self.state {
            Between::Junk if self.first.len() < TAK_PROTOBUF_MAGIC.len() => self.decide(),
            Between::Junk | Between::Clean => {}
            // An unfinished `<`, `<?…` or `<!…` before an event or at the end.
            Between::Lt | Between::Pi | Between::PiQ | Between::Bang => {
                self.found.push("not_cot");
            }
        }
        self.state = Between::Clean;
        self.first.clear();
    }
}

/// Ops read from the log per page by the feed.
const FEED_PAGE: usize = 2_000;
/// Broadcast messages a client may fall behind before it is sent the whole picture again.
const FEED_BACKLOG: usize = 1_024;

/// The refusal key of a CoT decoder error.
pub fn reason(e: &CotError) -> &'static str {
    match e {
        CotError::Xml(_) => "malformed_xml",
        CotError::Missing(_) => "missing_field",
        CotError::BadAttribute { .. } => "bad_attribute",
        CotError::TooLong => "too_long",
        CotError::NotPosition(_) => "not_position",
        CotError::Fix(f) => fix_reason(f),
    }
}

/// A unit row as TAK clients see it (`None` without a fix).
pub fn unit_picture(u: &UnitRow) -> Option<UnitPicture> {
    Some(UnitPicture {
        unit_id: u.id.clone(),
        callsign: u.callsign.clone(),
        kind: u.kind,
        status: u.status,
        fix: u.fix.clone()?,
        incident_number: u.incident.as_ref().map(|(_, n)| n.clone()),
    })
}

/// An incident row as TAK clients see it.
pub fn incident_picture(i: &IncidentRow) -> IncidentPicture {
    IncidentPicture {
        incident_id: i.id,
        number: i.number.clone(),
        incident_type: i.incident_type,
        priority: i.priority,
        location: i.location,
        address: i.address.clone(),
        created_at: i.created_at,
        closed: i.closed_at.is_some(),
    }
}

/// The CoT delete event for the item `uid`, stamped `now` (valid for a minute): type `t-x-d-d`,
/// the item named by `<link uid=… relation="p-p" type=…/>` and `<__forcedelete/>` in the
/// detail, as TAK servers and clients send it (ATAK's `cotdelete` handler removes the linked
/// item; `__forcedelete` removes it even when the user had locked or edited it). `item_type` is
/// the CoT type of the item. The event's own uid is `outpost-delete-` + `uid`.
///
/// `uid` and `item_type` are written as given (XML-escaped): Outpost's uids are
/// `outpost-incident-<UUID>` / `outpost-unit-<id>`.
pub fn encode_delete(uid: &str, item_type: &str, now: DateTime<Utc>) -> String {
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let stale = now
        .checked_add_signed(chrono::Duration::seconds(DELETE_STALE_S))
        .unwrap_or(now);
    format!(
        concat!(
            "<event version=\"2.0\" uid=\"outpost-delete-{uid}\" type=\"t-x-d-d\" how=\"h-g-i-g-o\" ",
            "time=\"{time}\" start=\"{time}\" stale=\"{stale}\">",
            "<point lat=\"0.0\" lon=\"0.0\" hae=\"0.0\" ce=\"9999999.0\" le=\"9999999.0\"/>",
            "<detail><link uid=\"{uid}\" relation=\"p-p\" type=\"{ty}\"/><__forcedelete/></detail>",
            "</event>"
        ),
        uid = xml_attr(uid),
        ty = xml_attr(item_type),
        time = fmt(now),
        stale = fmt(stale),
    )
}

/// `s` escaped for an XML attribute value in double quotes; characters XML 1.0 does not allow
/// become U+FFFD.
fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", u32::from(c))),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
                out.push(c)
            }
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// The uid under which an incident is sent to TAK clients.
pub fn incident_uid(incident_id: Uuid) -> String {
    format!("{}incident-{incident_id}", cot::UID_PREFIX)
}

/// The events of `picture` stamped `now`, back to back (no separator: pytak and TAK clients
/// split the stream at `</event>`), and how many. A closed incident is its event with `stale`
/// = `time` and then its delete event ([`encode_delete`]).
pub fn encode_picture(picture: &Picture, now: DateTime<Utc>) -> (String, u64) {
    let mut out = String::new();
    let mut n = 0;
    for u in &picture.units {
        if let Some(p) = unit_picture(u) {
            out.push_str(&cot::encode_unit(&p, now));
            n += 1;
        }
    }
    for i in &picture.incidents {
        out.push_str(&cot::encode_incident(&incident_picture(i), now));
        n += 1;
        if i.closed_at.is_some() {
            out.push_str(&encode_delete(
                &incident_uid(i.id),
                cot::INCIDENT_COT_TYPE,
                now,
            ));
            n += 1;
        }
    }
    (out, n)
}

/// One broadcast of the feed: events text and their count.
#[derive(Debug, Clone)]
struct FeedMsg {
    text: Arc<str>,
    events: u64,
}

/// Shared by the TCP connections.
#[derive(Clone)]
struct Shared {
    ingest: Ingest,
    service: Arc<SyncService>,
    feed: broadcast::Sender<FeedMsg>,
    stop: watch::Receiver<bool>,
    /// How long an event may take to arrive whole.
    partial_timeout: Duration,
}

/// Serves CoT on `tcp` (the caps of `limits`; a connection without a byte from the client for
/// `limits.idle` is closed) and `udp` until `stop` becomes true.
///
/// With `tls` (`--cot-tls`) each TCP connection must complete a TLS handshake with a device
/// certificate from the agency CA (refused and counted `tls_handshake` otherwise) and pass
/// the [`DeviceCertCheck`] (a revoked device: counted `device_refused`); `udp` is then
/// `None`.
pub(crate) async fn serve(
    tcp: TcpListener,
    udp: Option<UdpSocket>,
    ingest: Ingest,
    service: Arc<SyncService>,
    limits: Limits,
    tls: Option<CotTls>,
    stop: watch::Receiver<bool>,
) {
    let idle = limits.idle;
    let (feed, _) = broadcast::channel(FEED_BACKLOG);
    let shared = Shared {
        ingest: ingest.clone(),
        service: service.clone(),
        feed: feed.clone(),
        stop: stop.clone(),
        partial_timeout: PARTIAL_TIMEOUT.min(idle),
    };
    let feed_task = tokio::spawn(run_feed(
        service,
        feed,
        ingest.stats().clone(),
        stop.clone(),
    ));
    let udp_task = udp.map(|udp| tokio::spawn(serve_udp(udp, ingest.clone(), stop.clone())));
    let tls = tls.map(|t| (tokio_rustls::TlsAcceptor::from(t.config), t.check, t.audit));
    let mut listener = CappedListener::new(
        tcp,
        limits,
        IdleRule::Talking,
        ingest.stats().clone(),
        Listener::Cot,
    );
    let mut stop_rx = stop;
    loop {
        tokio::select! {
            _ = stopped(&mut stop_rx) => break,
            (conn, addr) = listener.accept_capped() => {
                let shared = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Some((acceptor, check, audit)) = tls else {
                        tracing::debug!(%addr, "CoT client connected");
                        client(conn, shared, addr).await;
                        tracing::debug!(%addr, "CoT client gone");
                        return;
                    };
                    let stats = shared.ingest.stats().clone();
                    let conn = match crate::security::tls::accept_from(&acceptor, conn, addr).await {
                        Ok(c) => c,
                        Err(e) => {
                            let n = stats.cot.refuse("tls_handshake");
                            if n <= 10 || n.is_power_of_two() {
                                tracing::info!(%addr, error = %e, refused = n, "CoT TLS client refused");
                            }
                            return;
                        }
                    };
                    let Some(peer) = crate::security::tls::peer_device(conn.get_ref().1) else {
                        stats.cot.refuse("tls_handshake");
                        return;
                    };
                    if let Some(check) = &check
                        && let Err(why) = check.check_tak(&peer)
                    {
                        stats.cot.refuse("device_refused");
                        tracing::info!(%addr, device = %peer.device_id, "CoT TLS client refused: {why}");
                        if let Some(a) = &audit {
                            a.refused(Some(addr.ip()), device_refusal(&peer.device_id, addr, &why));
                        }
                        return;
                    }
                    tracing::debug!(%addr, device = %peer.device_id, "CoT TLS client connected");
                    let bound = Bound {
                        check,
                        peer,
                        audit,
                    };
                    client_bound(conn, shared, addr, Some(bound)).await;
                    tracing::debug!(%addr, "CoT client gone");
                });
            }
        }
    }
    let _ = feed_task.await;
    if let Some(t) = udp_task {
        let _ = t.await;
    }
}

/// The CoT listener's TLS settings (`--cot-tls`).
#[derive(Debug, Clone)]
pub(crate) struct CotTls {
    /// Requires a client certificate from the agency CA.
    pub config: Arc<rustls::ServerConfig>,
    /// Refuses a revoked device, or one not issued for TAK, after the handshake
    /// ([`DeviceCertCheck::check_tak`]), and again every [`RECHECK_INTERVAL`] while connected.
    pub check: Option<Arc<dyn DeviceCertCheck>>,
    /// Device refusals and uid mismatches audited here (rate-limited).
    pub audit: Option<Arc<RefusalAudit>>,
}

/// The audit record of a CoT TLS device refused (at connect or while connected).
fn device_refusal(device: &str, addr: std::net::SocketAddr, why: &str) -> AuditEvent {
    AuditEvent::new("cot.device", AuditOutcome::Refused)
        .device(device)
        .target(addr.to_string())
        .detail(why)
}

/// How often an open CoT TLS connection's device is checked again (revoked: closed).
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(5);

/// What a CoT TLS connection is bound to: its certificate's device (each event's `uid` must
/// be the certificate's common name; other events are dropped and counted `uid_mismatch`)
/// and the check that is repeated while it is open.
struct Bound {
    check: Option<Arc<dyn DeviceCertCheck>>,
    peer: crate::security::tls::PeerDevice,
    audit: Option<Arc<RefusalAudit>>,
}

/// Resolves when `stop` becomes true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// True when `bytes` is a `t-x-c-t` ping (decoded, or by its type attribute when the ping
/// lacks what a position needs).
fn is_ping(decoded: &Result<cot::CotEvent, CotError>, bytes: &[u8]) -> bool {
    match decoded {
        Ok(ev) => ev.event_type == "t-x-c-t",
        Err(_) => {
            let probe = &bytes[..bytes.len().min(512)];
            contains(probe, b"type=\"t-x-c-t\"") || contains(probe, b"type='t-x-c-t'")
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What one framed event asks for.
enum Taken {
    /// A position report to submit.
    Report(outpost_domain::device::DeviceReport),
    /// A ping: send this pong.
    Pong(String),
    /// Refused (counted) or ignored.
    Nothing,
}

/// CoT type families that are housekeeping or other people's business, not device
/// positions: `t-` tasking (a TAK client's `t-x-d-d` hello and deletes, `t-x-c-t-r` pongs,
/// `t-x-takp-*` protocol negotiation), `b-` bits (`b-t-f` GeoChat, `b-m-p-*` map points,
/// `b-f-t-*` file transfers, `b-a-*` alerts), `u-` user drawings, `c-` capabilities, `r-`
/// reservations, `y-` replies (the CoT type tree of MITRE's CoT schema and TAK). They are
/// skipped and counted `ignored`, not refused: every TAK client sends some.
pub const IGNORED_TYPE_PREFIXES: [&str; 6] = ["t-", "b-", "u-", "c-", "r-", "y-"];

/// True when an event of `event_type` and `uid` is skipped on purpose (counted `ignored`):
/// a type of [`IGNORED_TYPE_PREFIXES`], or one of Outpost's own events (uid starting with
/// [`cot::UID_PREFIX`]) coming back from a client or server that relays the feed. A
/// position-like event Outpost cannot use (`a-*` placed by hand, `how` = `h-g-i-g-o`, a
/// marker rather than a device's fix; an unknown type family) stays a refusal
/// (`not_position`): it may be a device set up wrongly.
pub fn is_ignored(event_type: &str, uid: &str) -> bool {
    IGNORED_TYPE_PREFIXES
        .iter()
        .any(|p| event_type.starts_with(p))
        || uid.trim_start().starts_with(cot::UID_PREFIX)
}

/// The `type` and `uid` attributes of the `<event …>` start tag of `bytes` (for an event
/// that does not decode), when present.
fn probe_start_tag(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let end = bytes.iter().position(|&b| b == b'>').unwrap_or(bytes.len());
    let tag = String::from_utf8_lossy(&bytes[..end.min(1_024)]);
    let attr = |name: &str| {
        for q in ['"', '\''] {
            let key = format!(" {name}={q}");
            if let Some(i) = tag.find(&key) {
                let rest = &tag[i + key.len()..];
                return rest.find(q).map(|j| rest[..j].to_string());
            }
        }
        None
    };
    (attr("type"), attr("uid"))
}

/// Decodes one framed event; refusals and ignored events are counted.
fn take_event(ingest: &Ingest, bytes: &[u8]) -> Taken {
    let now = Utc::now();
    let decoded = cot::decode_event(bytes);
    if is_ping(&decoded, bytes) {
        return Taken::Pong(cot::encode_pong(now));
    }
    let ignored = match &decoded {
        Ok(ev) => is_ignored(&ev.event_type, &ev.uid),
        // Housekeeping that lacks what a position needs (a hello without a point): its type
        // is enough. Malformed XML stays a refusal.
        Err(CotError::Missing(_) | CotError::BadAttribute { .. } | CotError::Fix(_)) => {
            match probe_start_tag(bytes) {
                (Some(t), uid) => is_ignored(&t, uid.as_deref().unwrap_or("")),
                (None, _) => false,
            }
        }
        Err(_) => false,
    };
    if ignored {
        ingest.stats().cot.ignore();
        return Taken::Nothing;
    }
    match decoded.and_then(|ev| ev.to_report(now)) {
        Ok(report) => Taken::Report(report),
        Err(e) => {
            tracing::debug!(error = %e, "CoT event refused");
            ingest.stats().cot.refuse(reason(&e));
            Taken::Nothing
        }
    }
}

/// Every complete event after `chunk` joins `input`, decoded; refusals counted, junk
/// between events too.
fn drain(ingest: &Ingest, input: &mut CotInput, chunk: &[u8]) -> Vec<Taken> {
    let mut out = Vec::new();
    for next in input.push(chunk) {
        match next {
            Ok(bytes) => out.push(take_event(ingest, &bytes)),
            Err(e) => {
                ingest.stats().cot.refuse(reason(&e));
            }
        }
    }
    out
}

/// Counts the junk stretches `input` found; returns whether one was TAK protobuf.
fn count_junk(ingest: &Ingest, input: &mut CotInput) -> (u64, bool) {
    let mut n = 0;
    let mut protobuf = false;
    for key in input.take_found() {
        ingest.stats().cot.refuse(key);
        n += 1;
        protobuf |= key == "tak_protobuf";
    }
    (n, protobuf)
}

/// The operator's hint for a client sending TAK protocol 1.
const PROTOBUF_HINT: &str = "TAK protocol 1 (protobuf) received on the CoT port; Outpost \
    reads CoT XML only: set the TAK client's streaming/mesh protocol to XML (TAK protocol \
    version 0)";

async fn write_or_drop<S: AsyncWrite + Unpin>(conn: &mut S, text: &str, shared: &Shared) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, conn.write_all(text.as_bytes())).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            shared
                .ingest
                .stats()
                .feed
                .slow_clients_dropped
                .fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// The whole picture now, read from the replica.
async fn whole_picture(service: &Arc<SyncService>) -> Option<(String, u64)> {
    let svc = service.clone();
    let read = tokio::task::spawn_blocking(move || svc.with_reader(|s| s.picture(None, None)))
        .await
        .ok()?;
    match read {
        Ok(p) => Some(encode_picture(&p, Utc::now())),
        Err(e) => {
            tracing::warn!(error = %e, "CoT feed: cannot read the picture");
            None
        }
    }
}

async fn send_picture<S: AsyncWrite + Unpin>(conn: &mut S, shared: &Shared) -> bool {
    let Some((text, n)) = whole_picture(&shared.service).await else {
        return true;
    };
    if text.is_empty() {
        return true;
    }
    let ok = write_or_drop(conn, &text, shared).await;
    if ok {
        let f = &shared.ingest.stats().feed;
        f.events_sent.fetch_add(n, Ordering::Relaxed);
        f.pictures_sent.fetch_add(1, Ordering::Relaxed);
    }
    ok
}

async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    conn: S,
    shared: Shared,
    addr: std::net::SocketAddr,
) {
    client_bound(conn, shared, addr, None).await;
}

/// True while the device of `bound` may stay connected (checked off the async threads).
async fn still_allowed(bound: &Bound) -> Result<(), String> {
    let Some(check) = bound.check.clone() else {
        return Ok(());
    };
    let peer = bound.peer.clone();
    tokio::task::spawn_blocking(move || check.check_tak(&peer))
        .await
        .unwrap_or(Ok(()))
}

/// One TCP client; with `bound` (CoT TLS) its events must carry the certificate's uid and the
/// device is checked again every [`RECHECK_INTERVAL`].
async fn client_bound<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    shared: Shared,
    addr: std::net::SocketAddr,
    bound: Option<Bound>,
) {
    let mut recheck = tokio::time::interval_at(Instant::now() + RECHECK_INTERVAL, RECHECK_INTERVAL);
    let stats = shared.ingest.stats().clone();
    stats.feed.clients_open.fetch_add(1, Ordering::Relaxed);
    // Subscribe before reading the picture: nothing between the two is missed.
    let mut feed = shared.feed.subscribe();
    let mut stop = shared.stop.clone();
    let mut input = CotInput::default();
    // Whether the operator was told about this client's junk / protobuf (once each).
    let (mut told_junk, mut told_protobuf) = (false, false);
    let mut buf = vec![0u8; 16 * 1024];
    // When the bytes of an unfinished event started waiting: an event must arrive whole
    // within PARTIAL_TIMEOUT of its first byte.
    let mut partial_since: Option<Instant> = None;
    let mut alive = send_picture(&mut conn, &shared).await;
    while alive {
        let partial = partial_since.is_some();
        let partial_deadline = partial_since.unwrap_or_else(Instant::now) + shared.partial_timeout;
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = recheck.tick(), if bound.is_some() => {
                if let Some(b) = &bound
                    && let Err(why) = still_allowed(b).await
                {
                    stats.cot.refuse("device_refused");
                    tracing::info!(%addr, device = %b.peer.device_id, "CoT TLS client closed: {why}");
                    if let Some(a) = &b.audit {
                        a.refused(Some(addr.ip()), device_refusal(&b.peer.device_id, addr, &why));
                    }
                    break;
                }
            }
            _ = tokio::time::sleep_until(partial_deadline), if partial => {
                stats.cot.refuse("truncated");
                break;
            }
            read = conn.read(&mut buf) => match read {
                Ok(0) => {
                    if input.inside_event() {
                        stats.cot.refuse("truncated");
                    } else {
                        input.finish();
                        count_junk(&shared.ingest, &mut input);
                    }
                    break;
                }
                Ok(n) => {
                    let before = input.pending_bytes() + n;
                    let taken_all = drain(&shared.ingest, &mut input, &buf[..n]);
                    let (junk, protobuf) = count_junk(&shared.ingest, &mut input);
                    if protobuf && !told_protobuf {
                        told_protobuf = true;
                        tracing::warn!(%addr, "{PROTOBUF_HINT}");
                    } else if junk > 0 && !told_junk {
                        told_junk = true;
                        tracing::info!(
                            %addr,
                            "bytes that are not CoT XML events on the CoT port skipped (counted not_cot)"
                        );
                    }
                    for taken in taken_all {
                        match taken {
                            // `submit_wait` counts its own refusals; while the gateway's
                            // queue is full this stream is not read (back-pressure).
                            Taken::Report(r) => {
                                if let Some(b) = &bound
                                    && r.device_id != b.peer.device_id
                                {
                                    // A TLS client reports only for its own certificate.
                                    let n = stats.cot.refuse("uid_mismatch");
                                    if n <= 10 || n.is_power_of_two() {
                                        tracing::info!(
                                            %addr,
                                            device = %b.peer.device_id,
                                            uid = %r.device_id,
                                            refused = n,
                                            "CoT TLS event for another uid dropped"
                                        );
                                    }
                                    if let Some(a) = &b.audit {
                                        a.refused(
                                            Some(addr.ip()),
                                            AuditEvent::new("cot.uid", AuditOutcome::Refused)
                                                .device(b.peer.device_id.as_str())
                                                .target(addr.to_string())
                                                .detail(
                                                    "event uid is not the certificate's \
                                                     common name",
                                                ),
                                        );
                                    }
                                    continue;
                                }
                                let _ = shared.ingest.submit_wait(r, SUBMIT_WAIT).await;
                            }
                            Taken::Pong(p) => {
                                if !write_or_drop(&mut conn, &p, &shared).await {
                                    alive = false;
                                }
                            }
                            Taken::Nothing => {}
                        }
                    }
                    let left = input.pending_bytes();
                    if !input.inside_event() {
                        partial_since = None;
                    } else if left < before || partial_since.is_none() {
                        // An event completed (or the first bytes of one came): the clock
                        // restarts for what is left.
                        partial_since = Some(Instant::now());
                    }
                    if left > 2 * MAX_EVENT_BYTES {
                        // The framer discards over-long events; this is a safety net.
                        stats.cot.refuse("too_long");
                        break;
                    }
                }
                // Idle timeout (counted by the connection) or a reset.
                Err(_) => {
                    if input.inside_event() {
                        stats.cot.refuse("truncated");
                    }
                    break;
                }
            },
            msg = feed.recv() => match msg {
                Ok(m) => {
                    if write_or_drop(&mut conn, &m.text, &shared).await {
                        stats.feed.events_sent.fetch_add(m.events, Ordering::Relaxed);
                    } else {
                        alive = false;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    alive = send_picture(&mut conn, &shared).await;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let _ = conn.shutdown().await;
    stats.feed.clients_open.fetch_sub(1, Ordering::Relaxed);
}

async fn serve_udp(udp: UdpSocket, ingest: Ingest, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            r = udp.recv_from(&mut buf) => match r {
                Ok((0, _)) => {
                    // An empty datagram: not an event.
                    ingest.stats().cot.refuse("not_cot");
                }
                Ok((n, from)) => {
                    let mut input = CotInput::default();
                    for taken in drain(&ingest, &mut input, &buf[..n]) {
                        // `submit` counts its own refusals. Pongs go nowhere: UDP senders
                        // do not listen.
                        if let Taken::Report(r) = taken {
                            let _ = ingest.submit(r);
                        }
                    }
                    if input.inside_event() {
                        ingest.stats().cot.refuse("truncated");
                    } else {
                        input.finish();
                    }
                    let (_, protobuf) = count_junk(&ingest, &mut input);
                    if protobuf {
                        // Logged the 1st, 2nd, 4th, 8th… time: visible, never a flood.
                        let n = ingest.stats().cot.refused_count("tak_protobuf");
                        if n.is_power_of_two() {
                            tracing::warn!(%from, datagrams = n, "{PROTOBUF_HINT}");
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "CoT UDP receive failed");
                }
            }
        }
    }
}

/// What one round of the feed read: the touched units and incidents after the cursor.
#[derive(Default)]
struct Touched {
    units: BTreeSet<String>,
    incidents: BTreeSet<Uuid>,
}

/// The kind of a logged op and the unit of a `position.report`, read without decoding the op
/// (other fields are skipped).
#[derive(serde::Deserialize)]
struct KindOnly<'a> {
    #[serde(borrow)]
    body: BodyKind<'a>,
}

/// See [`KindOnly`].
#[derive(serde::Deserialize)]
struct BodyKind<'a> {
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    unit_id: Option<std::borrow::Cow<'a, str>>,
}

/// Follows the log from `after`; returns the new cursor. `Err` when the log was compacted
/// past the cursor (the caller re-sends the whole picture).
fn read_log(
    service: &SyncService,
    mut after: u64,
    touched: &mut Touched,
) -> Result<u64, SyncError> {
    loop {
        let page = service.pull_raw(after, FEED_PAGE)?;
        for op in &page.ops {
            after = after.max(op.gseq);
            // Most of the log is positions: their unit is read without decoding the op
            // (an internally tagged body is buffered whole by serde, a few µs per op).
            if let Ok(KindOnly { body }) = serde_json::from_str::<KindOnly<'_>>(&op.raw)
                && body.kind == "position.report"
                && let Some(unit) = body.unit_id
            {
                if !touched.units.contains(unit.as_ref()) {
                    touched.units.insert(unit.into_owned());
                }
                continue;
            }
            // Ops of a newer schema are not read here; the next whole picture shows them.
            let Ok(env) = serde_json::from_str::<OpEnvelope>(&op.raw) else {
                continue;
            };
            touched.units.extend(merge::units_of(&env.body));
            if let Some(i) = merge::incident_of(&env.body) {
                touched.incidents.insert(i);
            }
        }
        if !page.more || page.ops.is_empty() {
            return Ok(after.max(page.head.gseq));
        }
    }
}

async fn run_feed(
    service: Arc<SyncService>,
    feed: broadcast::Sender<FeedMsg>,
    stats: Arc<IngestStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pokes = service.subscribe();
    let mut cursor = {
        let svc = service.clone();
        match tokio::task::spawn_blocking(move || svc.head()).await {
            Ok(Ok(h)) => h.gseq,
            _ => 0,
        }
    };
    let mut next_picture = Instant::now() + PICTURE_INTERVAL;
    let mut last_round = Instant::now();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            _ = tokio::time::sleep_until(next_picture) => {
                next_picture = Instant::now() + PICTURE_INTERVAL;
                if feed.receiver_count() > 0
                    && let Some((text, n)) = whole_picture(&service).await
                    && n > 0
                {
                    stats.feed.pictures_sent.fetch_add(1, Ordering::Relaxed);
                    let _ = feed.send(FeedMsg { text: text.into(), events: n });
                }
                continue;
            }
            p = pokes.recv() => {
                if let Err(broadcast::error::RecvError::Closed) = p {
                    break;
                }
            }
        }
        // Merge a burst of pokes into one round.
        let due = last_round + FEED_INTERVAL;
        tokio::time::sleep_until(due).await;
        while pokes.try_recv().is_ok() {}
        last_round = Instant::now();
        let svc = service.clone();
        let from = cursor;
        let has_clients = feed.receiver_count() > 0;
        let round =
            tokio::task::spawn_blocking(move || -> Result<(u64, Option<Picture>), SyncError> {
                if !has_clients {
                    return Ok((svc.head()?.gseq, None));
                }
                let mut touched = Touched::default();
                let to = read_log(&svc, from, &mut touched)?;
                if touched.units.is_empty() && touched.incidents.is_empty() {
                    return Ok((to, None));
                }
                let units: Vec<String> = touched.units.into_iter().collect();
                let incidents: Vec<Uuid> = touched.incidents.into_iter().collect();
                let picture = svc.with_reader(|s| s.picture(Some(&units), Some(&incidents)))?;
                Ok((to, Some(picture)))
            })
            .await;
        match round {
            Ok(Ok((to, picture))) => {
                cursor = to;
                if let Some(p) = picture {
                    let (text, n) = encode_picture(&p, Utc::now());
                    if n > 0 {
                        let _ = feed.send(FeedMsg {
                            text: text.into(),
                            events: n,
                        });
                    }
                }
            }
            Ok(Err(SyncError::SnapshotRequired { .. })) => {
                // Compacted past the cursor: start from the head, clients get it all.
                if let Ok(Ok(h)) = {
                    let svc = service.clone();
                    tokio::task::spawn_blocking(move || svc.head()).await
                } {
                    cursor = h.gseq;
                }
                next_picture = Instant::now();
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "CoT feed: cannot read the log"),
            Err(e) => tracing::warn!(error = %e, "CoT feed round aborted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = "<event version=\"2.0\" uid=\"d-1\" type=\"a-f-G\" how=\"m-g\"><point lat=\"1\" lon=\"2\"/></event>";

    /// Feeds `chunks` to one input and finishes it: (events framed, junk keys found).
    fn run(chunks: &[&[u8]]) -> (usize, Vec<&'static str>) {
        let mut input = CotInput::default();
        let mut events = 0;
        let mut found = Vec::new();
        for c in chunks {
            events += input.push(c).into_iter().filter(|e| e.is_ok()).count();
            found.extend(input.take_found());
        }
        input.finish();
        found.extend(input.take_found());
        (events, found)
    }

    /// `text` pushed whole, and one byte at a time.
    fn both_ways(text: &[u8]) -> [(usize, Vec<&'static str>); 2] {
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        [run(&[text]), run(&bytes)]
    }

    /// Review F7: declarations, whitespace and comments between events are normal; nothing
    /// is counted.
    #[test]
    fn what_tak_clients_send_between_events_is_not_junk() {
        let text = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{EV}\r\n<!-- hi -->\n<?xml version='1.0'?>{EV}\n"
        );
        for r in both_ways(text.as_bytes()) {
            assert_eq!(r, (2, vec![]));
        }
    }

    /// Review F7: garbage between or instead of events, `<EVENT>`/`<cot:event>` wrappers,
    /// non-XML datagrams are one `not_cot` per stretch; TAK protocol-1 protobuf is
    /// `tak_protobuf`; the events around them still come through.
    #[test]
    fn bytes_that_are_not_cot_are_counted_once_per_stretch() {
        let between = format!("{EV}garbage \x01 here\n{EV}");
        for r in both_ways(between.as_bytes()) {
            assert_eq!(r, (2, vec!["not_cot"]));
        }
        for r in both_ways(b"hello world") {
            assert_eq!(r, (0, vec!["not_cot"]));
        }
        for r in both_ways(b"x") {
            assert_eq!(r, (0, vec!["not_cot"]));
        }
        let wrapped =
            "<EVENT uid=\"a\"><point lat=\"1\" lon=\"2\"/></EVENT><cot:event xmlns:cot=\"x\"/>";
        for r in both_ways(wrapped.as_bytes()) {
            assert_eq!(r, (0, vec!["not_cot"]));
        }
        let mut proto = vec![0xbf, 0x01, 0xbf, 0x12, 0x34];
        proto.extend_from_slice(b"\x0a\x05a-f-G<x");
        for r in both_ways(&proto) {
            assert_eq!(r, (0, vec!["tak_protobuf"]));
        }
        // Protobuf, then an XML event: both counted in their own way.
        let mut mixed = proto.clone();
        mixed.extend_from_slice(EV.as_bytes());
        for r in both_ways(&mixed) {
            assert_eq!(r, (1, vec!["tak_protobuf"]));
        }
        // 5 MB of one byte: one stretch, counted once, memory bounded by the framer.
        let big = vec![b'x'; 64 * 1024];
        let chunks: Vec<&[u8]> = (0..80).map(|_| big.as_slice()).collect();
        assert_eq!(run(&chunks), (0, vec!["not_cot"]));
        // An endless "declaration" is junk too.
        let mut decl = b"<?".to_vec();
        decl.extend(std::iter::repeat_n(b'a', 5_000));
        assert_eq!(run(&[&decl]), (0, vec!["not_cot"]));
    }

    /// The rest of an event cut for its length is `too_long` (counted by the caller), not
    /// junk as well.
    #[test]
    fn the_rest_of_a_too_long_event_is_not_junk() {
        let long = format!(
            "<event uid=\"x\"><detail>{}</detail></event>\n{EV}",
            "y".repeat(MAX_EVENT_BYTES + 10)
        );
        let mut input = CotInput::default();
        let mut out = Vec::new();
        for c in long.as_bytes().chunks(16 * 1024) {
            out.extend(input.push(c));
        }
        input.finish();
        assert_eq!(out.iter().filter(|e| e.is_ok()).count(), 1);
        assert!(out.contains(&Err(CotError::TooLong)));
        assert_eq!(input.take_found(), Vec::<&str>::new());
    }

    /// Review F5: housekeeping is ignored, a hand-placed marker or an unknown type is not.
    #[test]
    fn housekeeping_is_ignored_and_unusable_positions_are_not() {
        for t in [
            "t-x-d-d",
            "t-x-c-t-r",
            "t-x-takp-q",
            "b-t-f",
            "b-m-p-s-m",
            "u-d-f",
            "y-c",
        ] {
            assert!(is_ignored(t, "ANDROID-1"), "{t}");
        }
        assert!(is_ignored("a-f-G-U-C", "outpost-unit-u-01"));
        assert!(!is_ignored("a-f-G-U-C", "ANDROID-1"));
        assert!(!is_ignored("a-h-G", "marker-1"));
        assert!(!is_ignored("x-foo", "ANDROID-1"));
        let hello = b"<event version=\"2.0\" type=\"t-x-d-d\" uid=\"takPing\" how=\"m-g\"><detail/></event>";
        assert_eq!(
            probe_start_tag(hello),
            (Some("t-x-d-d".to_string()), Some("takPing".to_string()))
        );
    }

    /// The delete event is a well-formed CoT event that names the item in its link, forced
    /// (review M4), and the uid is escaped.
    #[test]
    fn a_delete_event_links_the_item_and_forces_its_removal() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T00:30:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let id = Uuid::parse_str("0192d3a4-5b6c-7d8e-9f00-112233445566").expect("uuid");
        let text = encode_delete(&incident_uid(id), cot::INCIDENT_COT_TYPE, now);
        assert_eq!(
            text,
            concat!(
                "<event version=\"2.0\" uid=\"outpost-delete-outpost-incident-0192d3a4-5b6c-7d8e-9f00-112233445566\" ",
                "type=\"t-x-d-d\" how=\"h-g-i-g-o\" time=\"2026-11-30T00:30:00.000Z\" ",
                "start=\"2026-11-30T00:30:00.000Z\" stale=\"2026-11-30T00:31:00.000Z\">",
                "<point lat=\"0.0\" lon=\"0.0\" hae=\"0.0\" ce=\"9999999.0\" le=\"9999999.0\"/>",
                "<detail><link uid=\"outpost-incident-0192d3a4-5b6c-7d8e-9f00-112233445566\" ",
                "relation=\"p-p\" type=\"b-m-p-s-m\"/><__forcedelete/></detail></event>"
            )
        );
        let ev = cot::decode_event(text.as_bytes()).expect("well-formed CoT");
        assert_eq!(ev.event_type, "t-x-d-d");
        let odd = encode_delete("a\"<&>\u{FFFF}", "t", now);
        assert!(
            odd.contains("uid=\"a&quot;&lt;&amp;&gt;\u{FFFD}\""),
            "{odd}"
        );
        assert!(cot::decode_event(odd.as_bytes()).is_ok(), "{odd}");
    }
}
