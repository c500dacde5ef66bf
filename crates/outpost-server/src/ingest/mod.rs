//! Device ingest: positions from phones (OsmAnd protocol over HTTP, [`osmand`]) and TAK
//! clients (Cursor-on-Target over TCP and UDP, [`cot`]) become ops in the log, written by the
//! server as its own "gateway" origin through the same push path as a console.
//!
//! Flow: a listener decodes a report (`outpost_devices`), checks its fix against the server
//! clock (`outpost_domain::device::check_fix`: ranges, at most
//! [`outpost_domain::device::MAX_FIX_AHEAD_S`] ahead) and queues it ([`Ingest::submit`] never
//! blocks: a full queue refuses with `overloaded`; [`Ingest::submit_wait`] sleeps until there
//! is room or its deadline passes, woken by the gateway as it takes reports, never polling). The gateway thread ([`gateway`]) takes
//! what is queued (up to [`BATCH_MAX_REPORTS`] reports; it never waits for more), resolves each
//! device's binding (the replica's `device_bindings`, cached until a `device.bind` is
//! accepted), and pushes one batch: a bound device's report becomes `position.report {unit_id,
//! fix}`, an unbound device's `device.report` (at most one per device per
//! [`UNBOUND_INTERVAL`], at most [`MAX_UNBOUND_DEVICES`] distinct unbound devices at a time).
//! A bound device's report whose fix time is among the last [`RECENT_FIXES`] written for it
//! is dropped (`duplicate`), and at most [`MAX_DEVICE_RATE`] of its reports are written per
//! second (`throttled`), so a flood of one device (replayed or spoofed UDP) cannot fill the
//! log. Consoles pull these ops like any other.
//!
//! Every refusal is counted by listener and reason ([`IngestStats`], `GET /v1/ingest/stats`)
//! and the counters are logged every minute while they change. Each listener caps its
//! concurrent connections ([`MAX_CONNECTIONS`] in all, [`MAX_CONNECTIONS_PER_ADDRESS`] from one
//! IP address) and closes idle ones (the OsmAnd listener also bounds the time a request's
//! headers may take, [`osmand::HEADER_TIMEOUT`]), so one bad client (or a flood from one
//! address) never stalls the others.
//!
//! Architecture invariant: the ingest writes only through [`SyncService::push_ops`] (the same
//! transaction and per-op checks as [`SyncService::push_request`], minus the JSON decoding), so
//! every rule a console's push meets (validation, parking, the fix-time check) applies to it
//! too; it reads the replica only through [`SyncService::with_reader`].

pub mod cot;
pub mod gateway;
pub(crate) mod limits;
pub mod osmand;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use outpost_domain::device::{DeviceReport, DeviceSource, FixError, check_fix};

use crate::service::SyncService;

/// Most reports in one gateway push (one transaction). The gateway never waits to fill a
/// batch: it takes what is queued and writes it at once, so a batch holds what arrived while
/// the previous push ran (one report when the load is light); under full load a push of this
/// many takes some tens of ms on the reference machine, which bounds the writer lock's hold
/// and a report's wait in the queue.
pub const BATCH_MAX_REPORTS: usize = 2_000;
/// Reports waiting for the gateway at most (a fraction of a second of the gateway's rate on
/// the reference machine). A TCP or HTTP report that finds it full waits up to [`SUBMIT_WAIT`] for room
/// (back-pressure: the sender's stream or request slows down), then is refused
/// (`overloaded`); a UDP report is refused at once.
pub const QUEUE_CAPACITY: usize = 10_000;
/// How long a TCP or HTTP report waits for room in a full queue.
pub const SUBMIT_WAIT: Duration = Duration::from_secs(2);
/// One `device.report` per unbound device per this interval; more are dropped (`throttled`).
pub const UNBOUND_INTERVAL: Duration = Duration::from_secs(5);
/// Distinct unbound devices tracked at a time; reports of more are refused
/// (`unbound_limit`). A device silent for [`UNBOUND_FORGET`] is forgotten.
pub const MAX_UNBOUND_DEVICES: usize = 1_000;
/// How long an unbound device stays counted against [`MAX_UNBOUND_DEVICES`] after its last
/// written report.
pub const UNBOUND_FORGET: Duration = Duration::from_secs(3_600);
/// `position.report`s written per bound device per [`RATE_WINDOW`] at most (default of
/// `serve --max-device-rate N`); more are dropped and counted (`throttled`). Phones and TAK
/// clients report every 1–10 s; five a second leaves room for a burst of buffered fixes
/// while a flood of one device (e.g. spoofed UDP) cannot fill the op log.
pub const MAX_DEVICE_RATE: usize = 5;
/// The window of [`MAX_DEVICE_RATE`]: a sliding second.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Fix times remembered per bound device: a report whose fix time is among its last this
/// many written is dropped and counted (`duplicate`); an older fix not written before is
/// still written (it joins the unit's track).
pub const RECENT_FIXES: usize = 64;
/// Bound devices remembered at a time (for [`RECENT_FIXES`] and [`MAX_DEVICE_RATE`]); when
/// full, those silent for [`BOUND_FORGET`] are forgotten first, then the one silent the
/// longest. Only devices bound to a unit enter, so the operators' bindings bound it too.
pub const MAX_TRACKED_BOUND_DEVICES: usize = 10_000;
/// How long a silent bound device stays remembered when the map is full.
pub const BOUND_FORGET: Duration = Duration::from_secs(600);
/// Concurrent connections per listener (OsmAnd HTTP, CoT TCP); more are closed at once and
/// counted (`connection_limit`). The target is 2,000 phones or TAK clients reporting
/// at once, each on a connection of its own, with room to spare; `serve
/// --max-device-connections N` changes it. Each connection holds one file descriptor: the
/// process's open-file limit (`ulimit -n`) must exceed both listeners' caps together.
pub const MAX_CONNECTIONS: usize = 4_096;
/// Concurrent connections per listener from one IP address (an IPv6 client: its /64
/// network); more are closed at once and counted (`address_limit`), so one client (or one flooding host) cannot take every slot of
/// [`MAX_CONNECTIONS`]. Devices behind one NAT share an address: `serve
/// --max-connections-per-address N` raises it.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// The file in the data directory that holds the gateway's origin id.
pub const GATEWAY_ORIGIN_FILE: &str = "gateway-origin";

/// Which listener a counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// OsmAnd HTTP.
    Osmand,
    /// Cursor-on-Target TCP and UDP.
    Cot,
}

impl Listener {
    fn of(source: DeviceSource) -> Listener {
        match source {
            DeviceSource::Cot => Listener::Cot,
            DeviceSource::Osmand | DeviceSource::Nmea => Listener::Osmand,
        }
    }
}

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    received: AtomicU64,
    accepted: AtomicU64,
    throttled: AtomicU64,
    duplicate: AtomicU64,
    ignored: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    idle_closed: AtomicU64,
}

impl ListenerStats {
    /// Counts one refusal for `reason` (a short snake_case key, e.g. `latitude`); returns how
    /// many refusals of that reason there have been, this one included.
    pub fn refuse(&self, reason: &'static str) -> u64 {
        let mut map = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(reason).or_insert(0);
        *n += 1;
        *n
    }

    /// How many refusals of `reason` there have been.
    pub fn refused_count(&self, reason: &str) -> u64 {
        let map = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        map.get(reason).copied().unwrap_or(0)
    }

    /// Counts a connection closed after its idle time between complete requests (a normal
    /// end of an HTTP keep-alive connection, not a refusal).
    pub(crate) fn idle_closed(&self) {
        self.idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an input that is not for Outpost and is skipped on purpose (e.g. a TAK
    /// client's `t-x-d-d` hello or chat), not a refusal.
    pub fn ignore(&self) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
    }

    fn view(&self) -> ListenerView {
        ListenerView {
            received: self.received.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            duplicate: self.duplicate.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            refused: self
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            connections_open: self.connections_open.load(Ordering::Relaxed),
            connections_total: self.connections_total.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters of the gateway (what was written).
#[derive(Debug, Default)]
pub struct GatewayStats {
    positions_written: AtomicU64,
    device_reports_written: AtomicU64,
    parked: AtomicU64,
    batches: AtomicU64,
    push_errors: AtomicU64,
    dropped: AtomicU64,
}

/// Counters of the Cursor-on-Target feed to TAK clients.
#[derive(Debug, Default)]
pub struct FeedStats {
    clients_open: AtomicU64,
    events_sent: AtomicU64,
    pictures_sent: AtomicU64,
    slow_clients_dropped: AtomicU64,
}

/// Every ingest counter. Shared by the listeners, the gateway and `GET /v1/ingest/stats`.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// OsmAnd HTTP listener.
    pub osmand: ListenerStats,
    /// CoT TCP + UDP listener.
    pub cot: ListenerStats,
    /// The gateway.
    pub gateway: GatewayStats,
    /// The CoT feed out.
    pub feed: FeedStats,
}

impl IngestStats {
    /// The counters of `listener`.
    pub fn listener(&self, listener: Listener) -> &ListenerStats {
        match listener {
            Listener::Osmand => &self.osmand,
            Listener::Cot => &self.cot,
        }
    }

    /// A consistent-enough copy for JSON (each counter read once).
    pub fn view(&self) -> IngestStatsView {
        let g = &self.gateway;
        let f = &self.feed;
        IngestStatsView {
            osmand: self.osmand.view(),
            cot: self.cot.view(),
            gateway: GatewayView {
                positions_written: g.positions_written.load(Ordering::Relaxed),
                device_reports_written: g.device_reports_written.load(Ordering::Relaxed),
                parked: g.parked.load(Ordering::Relaxed),
                batches: g.batches.load(Ordering::Relaxed),
                push_errors: g.push_errors.load(Ordering::Relaxed),
                dropped: g.dropped.load(Ordering::Relaxed),
            },
            feed: FeedView {
                clients_open: f.clients_open.load(Ordering::Relaxed),
                events_sent: f.events_sent.load(Ordering::Relaxed),
                pictures_sent: f.pictures_sent.load(Ordering::Relaxed),
                slow_clients_dropped: f.slow_clients_dropped.load(Ordering::Relaxed),
            },
        }
    }
}

/// `GET /v1/ingest/stats`: the counters since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestStatsView {
    /// OsmAnd HTTP listener.
    pub osmand: ListenerView,
    /// CoT TCP + UDP listener.
    pub cot: ListenerView,
    /// What the gateway wrote.
    pub gateway: GatewayView,
    /// The CoT feed to TAK clients.
    pub feed: FeedView,
}

/// One listener's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerView {
    /// Reports decoded, checked against the server clock and queued for the gateway (for
    /// OsmAnd: the reports answered 200 with an empty body). Each then ends as `accepted`,
    /// `throttled`, `duplicate`, a gateway refusal (`unbound_limit`, `parked`) or a lost push
    /// (`gateway.dropped`).
    #[serde(default)]
    pub received: u64,
    /// Reports written into the op log by the gateway (`position.report` of a bound device,
    /// `device.report` of an unbound one). `accepted` + the refusals never exceed the
    /// reports sent.
    pub accepted: u64,
    /// Reports dropped by the gateway for their rate: an unbound device's within
    /// [`UNBOUND_INTERVAL`] of its last written one, a bound device's beyond
    /// [`MAX_DEVICE_RATE`] per second.
    pub throttled: u64,
    /// Reports of a bound device dropped because the same fix time of that device was
    /// written already (a resend, a replayed or flooded datagram).
    #[serde(default)]
    pub duplicate: u64,
    /// Inputs skipped on purpose, not refused: CoT housekeeping that is not a position
    /// (`t-*` such as a TAK client's `t-x-d-d` hello, `b-*` chat and map items, `u-*`
    /// drawings, `y-*` replies) and our own events echoed back.
    #[serde(default)]
    pub ignored: u64,
    /// Refusals by reason: decoder errors (`bad_request`, `malformed_xml`, `missing_field`,
    /// `bad_attribute`, `too_long`, `not_position` (a CoT event of another kind that is
    /// not housekeeping: a marker a person placed (`how` `h-g-i-g-o`), an unknown type),
    /// `not_cot` (bytes on the CoT port that are not an event), `tak_protobuf` (TAK
    /// protocol 1, magic 0xbf 0x01 0xbf), `missing_device_id`, `missing_position`,
    /// `bad_parameter`, `bad_json`), fix checks (`latitude`, `longitude`, `heading`, `speed`,
    /// `accuracy`, `fix_future`, `fix_past`, `zero_position`), limits (`too_large`, `connection_limit`,
    /// `address_limit`, `idle_timeout`, `header_timeout`, `truncated`, `timeout`,
    /// `overloaded`, `unbound_limit`), `shutting_down` (a report that arrived while the
    /// server stopped) and `parked` (the push path parked the op).
    pub refused: BTreeMap<String, u64>,
    /// Connections open now (TCP; HTTP).
    pub connections_open: u64,
    /// Connections accepted since start (those refused at the limits not included).
    pub connections_total: u64,
    /// HTTP keep-alive connections closed after their idle time between complete requests:
    /// the normal end of a phone's connection, not a refusal.
    #[serde(default)]
    pub idle_closed: u64,
}

/// The gateway's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayView {
    /// `position.report` ops accepted into the log (bound devices).
    pub positions_written: u64,
    /// `device.report` ops accepted into the log (unbound devices).
    pub device_reports_written: u64,
    /// Ops the push path parked (e.g. the bound unit is unknown to the server).
    pub parked: u64,
    /// Pushes made.
    pub batches: u64,
    /// Pushes that failed as a whole (database busy, shutting down).
    pub push_errors: u64,
    /// Reports lost because their push failed.
    pub dropped: u64,
}

/// The feed's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedView {
    /// TAK clients connected now.
    pub clients_open: u64,
    /// CoT events written to TAK clients.
    pub events_sent: u64,
    /// Whole pictures sent (on connect, every 60 s, after a client lagged).
    pub pictures_sent: u64,
    /// Clients dropped because they did not read within the write timeout.
    pub slow_clients_dropped: u64,
}

/// The refusal key of a fix that fails `check_fix`.
pub fn fix_reason(e: &FixError) -> &'static str {
    match e {
        FixError::Latitude(_) => "latitude",
        FixError::Longitude(_) => "longitude",
        FixError::Heading(_) => "heading",
        FixError::Speed(_) => "speed",
        FixError::Accuracy(_) => "accuracy",
        FixError::Future { .. } => "fix_future",
        FixError::Past(_) => "fix_past",
        FixError::NullIsland => "zero_position",
        FixError::Implausible(_) => "speed_implausible",
    }
}

/// Why [`Ingest::submit`] refused a report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// The fix fails the checks against the server clock.
    #[error("{0}")]
    Fix(#[from] FixError),
    /// The device id is empty or longer than `MAX_DEVICE_ID_CHARS`.
    #[error("device id {0:?} is empty or too long")]
    DeviceId(String),
    /// The gateway's queue is full: the server is overloaded; retry later.
    #[error("the server is overloaded ({QUEUE_CAPACITY} reports waiting); retry later")]
    Overloaded,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Closed,
}

/// The entry point of the listeners: checks and queues reports, owns the counters.
///
/// The queue to the gateway holds at most [`QUEUE_CAPACITY`] reports: a sender first takes a
/// slot from `room` (a semaphore of free slots), then sends on an unbounded channel; the
/// gateway gives the slot back as it takes the report ([`QueueRx`]). A sender waiting for room
/// sleeps in the semaphore's queue (first come, first served) and is woken by that release,
/// so an overloaded gateway is not also busy answering polls.
#[derive(Debug, Clone)]
pub struct Ingest {
    tx: Sender<DeviceReport>,
    room: Arc<Semaphore>,
    stats: Arc<IngestStats>,
}

/// The gateway's end of the queue: every report taken frees its slot.
#[derive(Debug)]
pub struct QueueRx {
    rx: Receiver<DeviceReport>,
    room: Arc<Semaphore>,
}

impl QueueRx {
    /// The next report, waiting up to `wait`.
    ///
    /// # Errors
    /// As [`Receiver::recv_timeout`]: nothing within `wait`, or every sender is gone.
    pub fn recv_timeout(&self, wait: Duration) -> Result<DeviceReport, RecvTimeoutError> {
        let r = self.rx.recv_timeout(wait)?;
        self.room.add_permits(1);
        Ok(r)
    }

    /// The next report when one is queued now.
    pub fn try_recv(&self) -> Option<DeviceReport> {
        let r = self.rx.try_recv().ok()?;
        self.room.add_permits(1);
        Some(r)
    }
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        // The gateway stopped: waiting senders learn it at once (`shutting_down`).
        self.room.close();
    }
}

/// A queue of `capacity` reports to the gateway: the listeners' [`Ingest`] and the gateway's
/// [`QueueRx`].
pub fn queue(capacity: usize, stats: Arc<IngestStats>) -> (Ingest, QueueRx) {
    let (tx, rx) = std::sync::mpsc::channel();
    let room = Arc::new(Semaphore::new(capacity));
    (
        Ingest {
            tx,
            room: room.clone(),
            stats,
        },
        QueueRx { rx, room },
    )
}

impl Ingest {
    /// Checks `report`'s fix against the server clock now and queues it for the gateway.
    /// Counts the outcome on the listener of `report.source`. Never blocks (UDP).
    ///
    /// # Errors
    /// [`SubmitError`]: the fix check, the device id, a full queue (`overloaded`), shutdown
    /// (`shutting_down`).
    pub fn submit(&self, report: DeviceReport) -> Result<(), SubmitError> {
        self.check(&report)?;
        let slot = match self.room.try_acquire() {
            Ok(p) => Ok(p),
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(SubmitError::Overloaded),
            Err(tokio::sync::TryAcquireError::Closed) => Err(SubmitError::Closed),
        };
        self.enqueue(report, slot)
    }

    /// [`Ingest::submit`] that waits up to `wait` for room when the queue is full (TCP and
    /// HTTP: the sender is slowed down instead of losing reports). The wait sleeps until the
    /// gateway frees a slot or `wait` has passed; it never polls.
    ///
    /// # Errors
    /// As [`Ingest::submit`].
    pub async fn submit_wait(
        &self,
        report: DeviceReport,
        wait: Duration,
    ) -> Result<(), SubmitError> {
        self.check(&report)?;
        // Room now (the usual case): no timer.
        let slot = match self.room.try_acquire() {
            Ok(p) => Ok(p),
            Err(tokio::sync::TryAcquireError::Closed) => Err(SubmitError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                match tokio::time::timeout(wait, self.room.acquire()).await {
                    Ok(Ok(p)) => Ok(p),
                    Ok(Err(_closed)) => Err(SubmitError::Closed),
                    Err(_elapsed) => Err(SubmitError::Overloaded),
                }
            }
        };
        self.enqueue(report, slot)
    }

    /// Sends `report` holding `slot` (whose permit then belongs to the queued report until the
    /// gateway takes it), or counts why there is no slot.
    fn enqueue(
        &self,
        report: DeviceReport,
        slot: Result<tokio::sync::SemaphorePermit<'_>, SubmitError>,
    ) -> Result<(), SubmitError> {
        let stats = self.stats.listener(Listener::of(report.source));
        let refused = |e: SubmitError| {
            stats.refuse(match e {
                SubmitError::Closed => "shutting_down",
                _ => "overloaded",
            });
            Err(e)
        };
        let permit = match slot {
            Ok(p) => p,
            Err(e) => return refused(e),
        };
        match self.tx.send(report) {
            Ok(()) => {
                // Given back by `QueueRx` when the gateway takes the report.
                permit.forget();
                stats.received.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_gone) => refused(SubmitError::Closed),
        }
    }

    /// The device id and the fix against the server clock now; refusals are counted.
    fn check(&self, report: &DeviceReport) -> Result<(), SubmitError> {
        let stats = self.stats.listener(Listener::of(report.source));
        let n = report.device_id.chars().count();
        if n == 0 || n > outpost_domain::device::MAX_DEVICE_ID_CHARS {
            stats.refuse("bad_request");
            return Err(SubmitError::DeviceId(
                report.device_id.chars().take(64).collect(),
            ));
        }
        if let Err(e) = check_fix(&report.fix, Utc::now()) {
            stats.refuse(fix_reason(&e));
            return Err(e.into());
        }
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }
}

/// Where the device listeners listen (none: no ingest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestConfig {
    /// OsmAnd HTTP (Traccar's convention: port 5055).
    pub osmand_listen: Option<SocketAddr>,
    /// CoT TCP and UDP on the same address (TAK's convention: 8087).
    pub cot_listen: Option<SocketAddr>,
    /// Concurrent connections per listener; `None`: [`MAX_CONNECTIONS`].
    pub max_connections: Option<usize>,
    /// Concurrent connections per listener from one IP address; `None`:
    /// [`MAX_CONNECTIONS_PER_ADDRESS`].
    pub max_connections_per_address: Option<usize>,
    /// How long an OsmAnd request's headers may take to arrive whole, counted from the
    /// connection's first byte or the end of the previous answer; `None`:
    /// [`osmand::HEADER_TIMEOUT`]. Tests shorten it.
    pub header_timeout: Option<Duration>,
    /// Idle timeout of every device connection (and the time a CoT event may take to
    /// arrive whole, when shorter than [`cot::PARTIAL_TIMEOUT`]); `None`: each listener's
    /// own ([`osmand::IDLE_TIMEOUT`], [`cot::IDLE_TIMEOUT`]). Tests shorten it.
    pub idle_timeout: Option<Duration>,
    /// `position.report`s written per bound device per second at most; `None`:
    /// [`MAX_DEVICE_RATE`].
    pub max_device_rate: Option<usize>,
    /// `serve --osmand-require-token`: every OsmAnd report must carry its device's token
    /// (`token=` in the query or form body, `"token"` in JSON) as issued by `outpost-server
    /// device token ID`; a missing or wrong one is answered 401 and counted (`token`).
    pub osmand_require_token: bool,
    /// `serve --osmand-tls`: the OsmAnd listener speaks HTTPS with the server certificate
    /// (`DIR/tls/`); no client certificates.
    pub osmand_tls: bool,
    /// `serve --cot-tls`: the CoT TCP listener speaks TLS and requires a device certificate
    /// signed by the agency CA (TAK's port 8089 style); the UDP listener is not started,
    /// since UDP cannot be authenticated.
    pub cot_tls: bool,
}

/// Checks an OsmAnd phone's device token (`serve --osmand-require-token`). Implemented by
/// the security store (the tokens of `outpost-server device token ID`); tests use a fixed
/// table.
pub trait DeviceTokenCheck: Send + Sync + std::fmt::Debug {
    /// True when `token` is the current token of the device `device_id` (the OsmAnd `id`,
    /// trimmed). Must compare in constant time.
    fn check(&self, device_id: &str, token: &str) -> bool;
}

/// Why the gateway origin file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {cause}")]
pub struct OriginFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub cause: String,
}

/// The gateway's origin id, kept in `data_dir/`[`GATEWAY_ORIGIN_FILE`] (created with a new
/// UUIDv7 when missing, written to a temporary file and renamed). The same id across
/// restarts keeps the gateway's lane sequence gap-free in the server's high-water marks.
///
/// # Errors
/// [`OriginFileError`] naming the file: unreadable, not a UUID, not writable.
pub fn gateway_origin(data_dir: &Path) -> Result<Uuid, OriginFileError> {
    let path = data_dir.join(GATEWAY_ORIGIN_FILE);
    let err = |cause: String| OriginFileError {
        path: path.display().to_string(),
        cause,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Uuid::parse_str(text.trim()).map_err(|e| {
            err(format!(
                "not a UUID ({e}); delete the file to make a new gateway origin"
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = Uuid::now_v7();
            let tmp = data_dir.join(format!("{GATEWAY_ORIGIN_FILE}.tmp"));
            std::fs::write(&tmp, format!("{id}\n")).map_err(|e| err(e.to_string()))?;
            std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
            Ok(id)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// A running gateway and its listeners' handle.
pub(crate) struct IngestParts {
    pub ingest: Ingest,
    pub gateway: gateway::GatewayHandle,
}

/// Starts the gateway thread for `service` writing as `origin`.
///
/// # Errors
/// Storage errors reading the gateway's high-water mark.
pub(crate) fn start_gateway(
    service: Arc<SyncService>,
    origin: Uuid,
    stats: Arc<IngestStats>,
    device_rate: usize,
) -> Result<IngestParts, crate::service::SyncError> {
    let (ingest, rx) = queue(QUEUE_CAPACITY, stats.clone());
    let gateway = gateway::start(service, origin, rx, stats, device_rate)?;
    Ok(IngestParts { ingest, gateway })
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use outpost_domain::op::Fix;

    use super::*;

    fn report(id: &str) -> DeviceReport {
        DeviceReport {
            device_id: id.into(),
            source: DeviceSource::Osmand,
            name: None,
            fix: Fix {
                position: outpost_domain::geo::LatLon {
                    lat: 39.8,
                    lon: 109.9,
                },
                fix_time: Utc::now(),
                heading_deg: None,
                speed_mps: None,
                accuracy_m: None,
            },
            battery_pct: None,
        }
    }

    /// Counts the polls of the future it wraps.
    struct Polls<F> {
        inner: Pin<Box<F>>,
        polls: Arc<AtomicU64>,
    }

    impl<F: Future> Future for Polls<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.inner.as_mut().poll(cx)
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// While the queue is full a waiting sender sleeps: it is woken when its deadline passes
    /// or when the gateway takes a report, not every few milliseconds (review M5: it used to
    /// retry every 5 ms).
    #[test]
    fn a_sender_waiting_for_room_sleeps_until_the_gateway_takes_a_report() {
        let stats = Arc::new(IngestStats::default());
        let (ingest, rx) = queue(1, stats.clone());
        ingest.submit(report("first")).expect("room for one");
        let rt = runtime();

        // Nobody takes: refused after the wait, having been polled a handful of times.
        let polls = Arc::new(AtomicU64::new(0));
        let started = std::time::Instant::now();
        let r = rt.block_on(Polls {
            inner: Box::pin(ingest.submit_wait(report("second"), Duration::from_millis(300))),
            polls: polls.clone(),
        });
        assert_eq!(r, Err(SubmitError::Overloaded));
        assert!(started.elapsed() >= Duration::from_millis(300));
        let n = polls.load(Ordering::Relaxed);
        assert!(n <= 3, "polled {n} times in 300 ms");
        assert_eq!(stats.osmand.refused_count("overloaded"), 1);

        // The gateway takes the first 100 ms later: the waiting sender gets in at once.
        let polls = Arc::new(AtomicU64::new(0));
        let taker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let first = rx.recv_timeout(Duration::from_secs(1)).expect("first");
            let second = rx.recv_timeout(Duration::from_secs(5)).expect("second");
            (first.device_id, second.device_id, rx)
        });
        let started = std::time::Instant::now();
        let r = rt.block_on(Polls {
            inner: Box::pin(ingest.submit_wait(report("third"), Duration::from_secs(5))),
            polls: polls.clone(),
        });
        assert_eq!(r, Ok(()));
        assert!(started.elapsed() < Duration::from_secs(2));
        let n = polls.load(Ordering::Relaxed);
        assert!(n <= 3, "polled {n} times");
        let (first, second, _rx) = taker.join().expect("taker");
        assert_eq!((first.as_str(), second.as_str()), ("first", "third"));
        assert_eq!(stats.osmand.received.load(Ordering::Relaxed), 2);
    }

    /// A report that arrives while the gateway has stopped is counted `shutting_down`, not
    /// `overloaded` (review L6), and a sender waiting for room learns it at once.
    #[test]
    fn reports_after_the_gateway_stopped_are_counted_as_shutting_down() {
        let stats = Arc::new(IngestStats::default());
        let (ingest, rx) = queue(1, stats.clone());
        ingest.submit(report("queued")).expect("room");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let waiting = {
            let ingest = ingest.clone();
            rt.spawn(async move {
                ingest
                    .submit_wait(report("waiting"), Duration::from_secs(10))
                    .await
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let started = std::time::Instant::now();
        drop(rx);
        let r = rt.block_on(waiting).expect("join");
        assert_eq!(r, Err(SubmitError::Closed));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(ingest.submit(report("late")), Err(SubmitError::Closed));
        let view = stats.view();
        assert_eq!(
            view.osmand.refused.get("shutting_down"),
            Some(&2),
            "{view:?}"
        );
        assert_eq!(view.osmand.refused.get("overloaded"), None, "{view:?}");
    }
}
