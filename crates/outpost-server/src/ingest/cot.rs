//! The Cursor-on-Target listener (`--cot-listen`, TAK's port 8087 by convention): TCP streams
//! of back-to-back `<event>` elements and UDP datagrams of one event each, in; the CAD picture
//! out to every TCP client.
//!
//! In: each event is framed (`outpost_devices::cot::Framer`), decoded, and a position event
//! (`a-*`) becomes a device report ([`super::Ingest::submit`]); a `t-x-c-t` ping is answered
//! with `t-x-c-t-r`; anything else is refused and counted. A connection holding half an event
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

use outpost_devices::cot::{self, CotError, Framer, IncidentPicture, MAX_EVENT_BYTES, UnitPicture};
use outpost_domain::merge;
use outpost_domain::op::OpEnvelope;
use outpost_store::{IncidentRow, UnitRow};

use super::limits::{CappedListener, Guarded, IdleRule, Limits};
use super::{Ingest, IngestStats, Listener, SUBMIT_WAIT, fix_reason};
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

/// True when the framer holds part of an event (not just whitespace between events).
fn inside_event(framer: &Framer) -> bool {
    framer.pending_bytes() > BETWEEN_EVENTS_TAIL
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
pub(crate) async fn serve(
    tcp: TcpListener,
    udp: UdpSocket,
    ingest: Ingest,
    service: Arc<SyncService>,
    limits: Limits,
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
    let udp_task = tokio::spawn(serve_udp(udp, ingest.clone(), stop.clone()));
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
                tokio::spawn(async move {
                    tracing::debug!(%addr, "CoT client connected");
                    client(conn, shared).await;
                    tracing::debug!(%addr, "CoT client gone");
                });
            }
        }
    }
    let _ = feed_task.await;
    let _ = udp_task.await;
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

/// Decodes one framed event; refusals are counted.
fn take_event(ingest: &Ingest, bytes: &[u8]) -> Taken {
    let now = Utc::now();
    let decoded = cot::decode_event(bytes);
    if is_ping(&decoded, bytes) {
        return Taken::Pong(cot::encode_pong(now));
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

/// Every complete event in `framer`, decoded.
fn drain(ingest: &Ingest, framer: &mut Framer) -> Vec<Taken> {
    let mut out = Vec::new();
    while let Some(next) = framer.next_event() {
        match next {
            Ok(bytes) => out.push(take_event(ingest, &bytes)),
            Err(e) => {
                ingest.stats().cot.refuse(reason(&e));
            }
        }
    }
    out
}

async fn write_or_drop(conn: &mut Guarded, text: &str, shared: &Shared) -> bool {
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

async fn send_picture(conn: &mut Guarded, shared: &Shared) -> bool {
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

async fn client(mut conn: Guarded, shared: Shared) {
    let stats = shared.ingest.stats().clone();
    stats.feed.clients_open.fetch_add(1, Ordering::Relaxed);
    // Subscribe before reading the picture: nothing between the two is missed.
    let mut feed = shared.feed.subscribe();
    let mut stop = shared.stop.clone();
    let mut framer = Framer::new();
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
            _ = tokio::time::sleep_until(partial_deadline), if partial => {
                stats.cot.refuse("truncated");
                break;
            }
            read = conn.read(&mut buf) => match read {
                Ok(0) => {
                    if inside_event(&framer) {
                        stats.cot.refuse("truncated");
                    }
                    break;
                }
                Ok(n) => {
                    framer.push(&buf[..n]);
                    let before = framer.pending_bytes();
                    for taken in drain(&shared.ingest, &mut framer) {
                        match taken {
                            // `submit_wait` counts its own refusals; while the gateway's
                            // queue is full this stream is not read (back-pressure).
                            Taken::Report(r) => {
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
                    let left = framer.pending_bytes();
                    if !inside_event(&framer) {
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
                    if inside_event(&framer) {
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
                Ok((n, _from)) => {
                    let mut framer = Framer::new();
                    framer.push(&buf[..n]);
                    for taken in drain(&ingest, &mut framer) {
                        // `submit` counts its own refusals. Pongs go nowhere: UDP senders
                        // do not listen.
                        if let Taken::Report(r) = taken {
                            let _ = ingest.submit(r);
                        }
                    }
                    if inside_event(&framer) {
                        ingest.stats().cot.refuse("truncated");
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
