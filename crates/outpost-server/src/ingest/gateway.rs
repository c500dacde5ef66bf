//! The gateway: the server's own origin that turns queued device reports into ops and pushes
//! them in batches through [`SyncService::push_ops`] (the push path of a console, typed), on a
//! thread of its own.
//!
//! Its ops travel only in the positions lane, so `seq` equals `lane_seq`; both continue from
//! the server's high-water mark of (gateway origin, positions) after a restart. Each op's HLC
//! comes from the server clock and its `base_version` is the newest gseq the gateway knows (the
//! head of the log after its previous push): the gateway has "seen" everything in the log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use outpost_domain::device::DeviceReport;
use outpost_domain::op::{Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::wire::Outcome;

use super::{
    BATCH_MAX_REPORTS, BOUND_FORGET, IngestStats, IngestStatsView, Listener,
    MAX_TRACKED_BOUND_DEVICES, MAX_UNBOUND_DEVICES, QueueRx, RATE_WINDOW, RECENT_FIXES,
    UNBOUND_FORGET, UNBOUND_INTERVAL,
};
use crate::service::{SyncError, SyncService};

/// The `user` of every gateway op.
pub const GATEWAY_USER: &str = "gateway";
/// How often the counters are logged while they change.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Attempts of one push when the database is busy.
const PUSH_ATTEMPTS: u32 = 3;

/// The running gateway thread.
#[derive(Debug)]
pub struct GatewayHandle {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GatewayHandle {
    /// Writes what is queued, then stops the thread and waits for it.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::error!("the ingest gateway thread panicked");
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Gateway {
    service: Arc<SyncService>,
    origin: Uuid,
    stats: Arc<IngestStats>,
    /// The last lane_seq (= seq) the server has answered for the gateway.
    lane_seq: u64,
    hlc: Hlc,
    /// The newest gseq known (the head after the last push): the ops' `base_version`.
    known_gseq: u64,
    bindings: HashMap<String, String>,
    bindings_generation: Option<u64>,
    /// Unbound devices: when their last `device.report` was written.
    unbound: HashMap<String, Instant>,
    /// Bound devices seen recently: the fix times written and when (duplicates, rate).
    bound: HashMap<String, BoundDevice>,
    /// Most `position.report`s written per bound device per [`RATE_WINDOW`].
    device_rate: usize,
}

/// What the gateway remembers of one bound device (bounded: [`RECENT_FIXES`] fix times and
/// `device_rate` instants).
#[derive(Debug)]
struct BoundDevice {
    /// The unit it was bound to when these were written (a new binding starts afresh).
    unit_id: String,
    /// Fix times (Unix milliseconds) of its last [`RECENT_FIXES`] written reports.
    fixes: VecDeque<i64>,
    /// When its last `device_rate` reports were written, oldest first.
    written_at: VecDeque<Instant>,
    /// Its last report (written or not).
    last_seen: Instant,
}

/// Why a bound device's report is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoundDrop {
    /// Its fix time was written already.
    Duplicate,
    /// More than the rate within [`RATE_WINDOW`].
    Throttled,
}

/// Starts the gateway thread reading `rx`.
pub(super) fn start(
    service: Arc<SyncService>,
    origin: Uuid,
    rx: QueueRx,
    stats: Arc<IngestStats>,
    device_rate: usize,
) -> Result<GatewayHandle, SyncError> {
    let lane_seq = high_water(&service, origin)?;
    let known_gseq = service.head()?.gseq;
    let mut gw = Gateway {
        service,
        origin,
        stats,
        lane_seq,
        hlc: Hlc {
            wall_ms: 0,
            logical: 0,
        },
        known_gseq,
        bindings: HashMap::new(),
        bindings_generation: None,
        unbound: HashMap::new(),
        bound: HashMap::new(),
        device_rate: device_rate.max(1),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("outpost-gateway".into())
        .spawn(move || gw.run(&rx, &flag))
        .map_err(|e| SyncError::Unavailable(format!("cannot start the ingest gateway: {e}")))?;
    tracing::info!(%origin, lane_seq, "ingest gateway started");
    Ok(GatewayHandle {
        stop,
        thread: Mutex::new(Some(thread)),
    })
}

fn high_water(service: &SyncService, origin: Uuid) -> Result<u64, SyncError> {
    service.with_storage(|s| -> Result<u64, SyncError> {
        // A read inside a write transaction that is dropped (rolled back) at once.
        let mut tx = s.begin()?;
        Ok(tx.high_water(origin, Lane::Positions)?)
    })
}

impl Gateway {
    fn run(&mut self, rx: &QueueRx, stop: &AtomicBool) {
        let mut last_log = Instant::now();
        let mut logged = IngestStatsView::default();
        loop {
            if last_log.elapsed() >= LOG_EVERY {
                let view = self.stats.view();
                if view != logged {
                    tracing::info!(
                        counters = %serde_json::to_string(&view).unwrap_or_default(),
                        "ingest counters"
                    );
                    logged = view;
                }
                last_log = Instant::now();
            }
            let first = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => break,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Whatever is queued joins, then the batch is written at once: never waiting for
            // more (a lone report goes out alone; under load the queue fills while a push
            // runs, so batches grow with the rate).
            let mut batch = Vec::with_capacity(256);
            batch.push(first);
            while batch.len() < BATCH_MAX_REPORTS {
                match rx.try_recv() {
                    Some(r) => batch.push(r),
                    None => break,
                }
            }
            self.write(batch);
        }
        tracing::info!(
            counters = %serde_json::to_string(&self.stats.view()).unwrap_or_default(),
            "ingest gateway stopped"
        );
    }

    /// Reloads the bindings when a `device.bind` was accepted since the last load.
    fn refresh_bindings(&mut self) {
        let generation = self.service.bindings_generation();
        if self.bindings_generation == Some(generation) {
            return;
        }
        match self.service.with_reader(|s| s.device_bindings()) {
            Ok(rows) => {
                self.bindings = rows.into_iter().collect();
                self.bindings_generation = Some(generation);
                // An unbound device's memory goes with its binding.
                let bindings = &self.bindings;
                self.bound.retain(|d, _| bindings.contains_key(d));
            }
            // Keep the old ones and retry on the next batch.
            Err(e) => tracing::warn!(error = %e, "cannot read the device bindings"),
        }
    }

    /// Checks a bound device's report against what was written for it: a fix time written
    /// already is a duplicate; more than `device_rate` reports within [`RATE_WINDOW`] are
    /// throttled. Otherwise records the report as written and returns `Ok`.
    fn admit_bound(
        &mut self,
        device_id: &str,
        unit_id: &str,
        fix_ms: i64,
        now: Instant,
    ) -> Result<(), BoundDrop> {
        if !self.bound.contains_key(device_id) && self.bound.len() >= MAX_TRACKED_BOUND_DEVICES {
            self.bound
                .retain(|_, b| now.duration_since(b.last_seen) < BOUND_FORGET);
            if self.bound.len() >= MAX_TRACKED_BOUND_DEVICES {
                // More bound devices reporting than the map holds (far beyond the design's
                // 2,000): forget the one silent the longest.
                let oldest = self
                    .bound
                    .iter()
                    .min_by_key(|(_, b)| b.last_seen)
                    .map(|(d, _)| d.clone());
                if let Some(d) = oldest {
                    self.bound.remove(&d);
                }
            }
        }
        let rate = self.device_rate;
        if !self.bound.contains_key(device_id) {
            self.bound.insert(
                device_id.to_string(),
                BoundDevice {
                    unit_id: unit_id.to_string(),
                    fixes: VecDeque::with_capacity(RECENT_FIXES),
                    written_at: VecDeque::new(),
                    last_seen: now,
                },
            );
        }
        let Some(dev) = self.bound.get_mut(device_id) else {
            // Unreachable (inserted just above); dropping the report is the safe answer.
            return Err(BoundDrop::Throttled);
        };
        if dev.unit_id != unit_id {
            // Bound to another unit since: nothing of that unit was written yet.
            dev.unit_id = unit_id.to_string();
            dev.fixes.clear();
            dev.written_at.clear();
        }
        dev.last_seen = now;
        if dev.fixes.contains(&fix_ms) {
            return Err(BoundDrop::Duplicate);
        }
        while dev
            .written_at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            dev.written_at.pop_front();
        }
        if dev.written_at.len() >= rate {
            return Err(BoundDrop::Throttled);
        }
        dev.written_at.push_back(now);
        if dev.fixes.len() >= RECENT_FIXES {
            dev.fixes.pop_front();
        }
        dev.fixes.push_back(fix_ms);
        Ok(())
    }

    /// Forgets that `fix_ms` of `device_id` was written (its push failed): a resend may be
    /// written.
    fn unrecord(&mut self, device_id: &str, fix_ms: i64) {
        if let Some(dev) = self.bound.get_mut(device_id) {
            dev.fixes.retain(|f| *f != fix_ms);
        }
    }

    /// The body for `report`, or `None` when it is dropped (a duplicate or throttled report
    /// of a bound device; throttled or too many unbound ones), counted.
    fn body_for(&mut self, report: DeviceReport, now: Instant) -> Option<OpBody> {
        let stats = self.stats.clone();
        let stats = stats.listener(Listener::of(report.source));
        if let Some(unit_id) = self.bindings.get(&report.device_id).cloned() {
            if !self.unbound.is_empty() {
                self.unbound.remove(&report.device_id);
            }
            let fix_ms = report.fix.fix_time.timestamp_millis();
            return match self.admit_bound(&report.device_id, &unit_id, fix_ms, now) {
                Ok(()) => Some(OpBody::PositionReport {
                    unit_id,
                    fix: report.fix,
                }),
                Err(BoundDrop::Duplicate) => {
                    stats.duplicate.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(BoundDrop::Throttled) => {
                    stats.throttled.fetch_add(1, Ordering::Relaxed);
                    None
                }
            };
        }
        match self.unbound.get(&report.device_id) {
            Some(last) if now.duration_since(*last) < UNBOUND_INTERVAL => {
                stats.throttled.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Some(_) => {}
            None if self.unbound.len() >= MAX_UNBOUND_DEVICES => {
                self.unbound
                    .retain(|_, last| now.duration_since(*last) < UNBOUND_FORGET);
                if self.unbound.len() >= MAX_UNBOUND_DEVICES {
                    stats.refuse("unbound_limit");
                    return None;
                }
            }
            None => {}
        }
        self.unbound.insert(report.device_id.clone(), now);
        Some(OpBody::DeviceReport { report })
    }

    fn envelope(&mut self, body: OpBody, now_ms: i64) -> OpEnvelope {
        self.lane_seq += 1;
        self.hlc = Hlc::tick(self.hlc, now_ms);
        OpEnvelope {
            op_id: Uuid::now_v7(),
            origin: self.origin,
            seq: self.lane_seq,
            hlc: self.hlc,
            base_version: Some(self.known_gseq),
            user: GATEWAY_USER.into(),
            schema: SCHEMA_VERSION,
            lane: Lane::Positions,
            lane_seq: self.lane_seq,
            body,
            auth: None,
        }
    }

    /// Turns one batch into ops and pushes them.
    fn write(&mut self, batch: Vec<DeviceReport>) {
        self.refresh_bindings();
        let now = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let first_seq = self.lane_seq;
        let mut ops = Vec::with_capacity(batch.len());
        // (listener, the (device, fix ms) of a position.report) of each op, for the
        // counters and to forget what a failed push did not write.
        let mut meta: Vec<(Listener, Option<(String, i64)>)> = Vec::with_capacity(batch.len());
        for report in batch {
            let listener = Listener::of(report.source);
            let device = report.device_id.clone();
            let fix_ms = report.fix.fix_time.timestamp_millis();
            let Some(body) = self.body_for(report, now) else {
                continue;
            };
            let position =
                matches!(body, OpBody::PositionReport { .. }).then_some((device, fix_ms));
            ops.push(self.envelope(body, now_ms));
            meta.push((listener, position));
        }
        if ops.is_empty() {
            return;
        }
        let g = &self.stats.gateway;
        g.batches.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            // No epoch: the gateway lives inside the server and can never prove a restore.
            match self
                .service
                .push_ops(self.origin, Lane::Positions, self.known_gseq, &ops)
            {
                Err(SyncError::Unavailable(_))
                    if attempt < PUSH_ATTEMPTS && !self.service.is_closing() =>
                {
                    std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                }
                other => break other,
            }
        };
        match result {
            Ok(resp) => {
                self.known_gseq = resp.server_gseq;
                let mut parked_reason = None;
                let mut answered = 0usize;
                for (r, (listener, position)) in resp.results.iter().zip(&meta) {
                    answered += 1;
                    match &r.outcome {
                        Outcome::Accepted { .. } | Outcome::Duplicate { .. } => {
                            if position.is_some() {
                                g.positions_written.fetch_add(1, Ordering::Relaxed);
                            } else {
                                g.device_reports_written.fetch_add(1, Ordering::Relaxed);
                            }
                            self.stats
                                .listener(*listener)
                                .accepted
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Parked { reason } => {
                            g.parked.fetch_add(1, Ordering::Relaxed);
                            self.stats.listener(*listener).refuse("parked");
                            parked_reason.get_or_insert_with(|| reason.clone());
                        }
                    }
                }
                if let Some(reason) = parked_reason {
                    tracing::info!(%reason, "gateway ops parked (first reason of the batch)");
                }
                if answered < meta.len() {
                    // The server asked for a resend from an earlier lane_seq: the gateway's
                    // counter was behind the server's (cannot happen with one gateway per
                    // data directory). Start again from the server's mark.
                    let lost = (meta.len() - answered) as u64;
                    g.dropped.fetch_add(lost, Ordering::Relaxed);
                    for (_, position) in &meta[answered..] {
                        if let Some((d, f)) = position {
                            self.unrecord(d, *f);
                        }
                    }
                    tracing::warn!(
                        lost,
                        high_water = resp.high_water,
                        "gateway lane out of step with the server; continuing from its mark"
                    );
                }
                self.lane_seq = resp.high_water;
            }
            Err(e) => {
                g.push_errors.fetch_add(1, Ordering::Relaxed);
                g.dropped.fetch_add(meta.len() as u64, Ordering::Relaxed);
                for (_, position) in &meta {
                    if let Some((d, f)) = position {
                        self.unrecord(d, *f);
                    }
                }
                tracing::warn!(error = %e, reports = meta.len(), "gateway push failed; reports lost");
                // Nothing of the push was stored: reuse its numbers.
                self.lane_seq = high_water(&self.service, self.origin).unwrap_or(first_seq);
            }
        }
    }
}
