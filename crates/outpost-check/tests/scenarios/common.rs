//! Shared fixtures of the scenario tests: real servers (`outpost_server::Server::start` on
//! 127.0.0.1), real consoles (`outpost_store::Store` in temp dirs, written through the
//! headless client's scripted actions, synced by the real engine of `outpost-sync`), and the
//! bridge to the invariant checker of `outpost_check` (server dump, replicas, I1–I6).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use outpost_check::{CursorObservation, Replica, ServerDump, Violation, check_invariants};
use outpost_domain::op::OpEnvelope;
use outpost_server::{RunningServer, Server, ServerConfig, SyncService};
use outpost_store::Store;
use outpost_sync::{BackoffPolicy, SyncOptions, script};

use crate::extract;
pub use crate::extract::outbox;

/// Held by the heavy scenarios (S5, S15) so they do not run at the same time: their time
/// bounds assume the machine is not also running the other one.
pub static HEAVY: Mutex<()> = Mutex::new(());

/// Takes [`HEAVY`] (a failed heavy test does not block the other).
pub fn heavy() -> MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A console's store behind the mutex the engine shares with the UI.
pub type Shared = Arc<Mutex<Store>>;

/// A server on `listen` keeping its data in `dir`.
pub fn server_at(dir: &Path, listen: SocketAddr) -> RunningServer {
    Server::start(ServerConfig::plain_for_tests(dir, listen)).expect("server starts")
}

/// A free port on 127.0.0.1 (bound, then released), for a server that starts later or
/// restarts on the same address.
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A console's store in `dir` (created).
pub fn console(dir: &Path) -> Shared {
    std::fs::create_dir_all(dir).expect("console dir");
    Arc::new(Mutex::new(
        Store::open(&dir.join("outpost.db"), Utc::now()).expect("console store"),
    ))
}

pub fn lock(s: &Shared) -> MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Performs JSON-lines actions (`outpost_sync::script`) on the console, as user `tester`.
pub fn act(store: &Shared, lines: &str) {
    let mut s = lock(store);
    for a in script::parse(lines).expect("script parses") {
        script::perform(&mut s, Utc::now(), "tester", &a)
            .unwrap_or_else(|e| panic!("action {a:?}: {e}"));
    }
}

/// The incident id a script named `name` on this console.
pub fn incident_named(store: &Shared, name: &str) -> Uuid {
    let v = lock(store)
        .setting(&format!("script.incident.{name}"))
        .expect("setting")
        .unwrap_or_else(|| panic!("no incident named {name}"));
    Uuid::parse_str(&v).expect("uuid")
}

/// Engine options with short timers (backoff 20 ms → 300 ms, poll every 300 ms).
pub fn quick() -> SyncOptions {
    SyncOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(300),
        },
        poll_interval: Duration::from_millis(300),
        failpoint: None,
        ..SyncOptions::default()
    }
}

/// Polls `f` every 20 ms until it holds or `secs` pass; returns whether it held.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Pending ops of all lanes.
pub fn pending(store: &Shared) -> u64 {
    lock(store).outbox_counts().expect("counts").pending()
}

/// The console's (epoch, cursor) now.
pub fn position(store: &Shared) -> CursorObservation {
    let p = lock(store).sync_state().expect("sync state");
    CursorObservation {
        epoch: p.epoch,
        cursor: p.cursor,
    }
}

/// True when the console has nothing pending and has pulled up to the server's newest op in
/// the server's current epoch.
pub fn caught_up(store: &Shared, service: &SyncService) -> bool {
    caught_up_to(store, &service.head().expect("head"))
}

/// [`caught_up`] against a head read once (many consoles, one server).
pub fn caught_up_to(store: &Shared, head: &outpost_server::storage::LogHead) -> bool {
    let s = lock(store);
    let p = s.sync_state().expect("sync state");
    s.outbox_counts().expect("counts").pending() == 0
        && p.epoch == Some(head.epoch)
        && p.cursor == head.gseq
}

/// Every op the server keeps (its snapshot: the log after compaction), decoded; ops this
/// build cannot decode are left out.
pub fn server_log(service: &SyncService) -> Vec<(u64, OpEnvelope)> {
    service
        .snapshot()
        .expect("snapshot")
        .ops
        .into_iter()
        .filter_map(|p| {
            serde_json::from_value::<OpEnvelope>(p.op)
                .ok()
                .map(|op| (p.gseq, op))
        })
        .collect()
}

/// The server's side for the checker: log, parked ops, compacted fixes and the digest of its
/// replica.
pub fn server_dump(service: &SyncService) -> ServerDump {
    let snap = service.snapshot().expect("snapshot");
    let log = snap
        .ops
        .iter()
        .map(|p| {
            (
                p.gseq,
                serde_json::from_value::<OpEnvelope>(p.op.clone()).expect("logged op decodes"),
            )
        })
        .collect();
    let parked = service
        .parked()
        .expect("parked")
        .into_iter()
        .map(|p| (p.key.op_id, p.reason))
        .collect();
    let digest = service
        .with_storage(|s| s.state_digest())
        .expect("server digest");
    ServerDump {
        log,
        parked,
        digest: Some(digest),
        state: None,
        conflicts: None,
        compacted: snap.compacted_positions,
    }
}

/// A console as the checker wants it; `full` also reads its canonical state (row-by-row
/// comparison with the model, slower).
pub fn replica(name: &str, store: &Shared, cursors: &[CursorObservation], full: bool) -> Replica {
    let s = lock(store);
    Replica {
        name: name.into(),
        outbox: outbox(&s),
        digest: Some(s.state_digest().expect("digest")),
        state: full.then(|| extract::state(s.conn())),
        conflicts: s.conflict_ids().expect("conflict ids"),
        cursors: cursors.to_vec(),
    }
}

/// Asserts I1–I6 (and agreement with the reference model).
pub fn assert_invariants(dump: &ServerDump, replicas: &[Replica], seed: u64) {
    let violations: Vec<Violation> = check_invariants(dump, replicas, seed);
    assert!(
        violations.is_empty(),
        "{} violation(s):\n{}",
        violations.len(),
        violations
            .iter()
            .take(40)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The digest of a console.
pub fn digest(store: &Shared) -> BTreeMap<String, String> {
    lock(store).state_digest().expect("digest")
}

/// 2026-11-29T08:00:00Z: fix times of scripted position backlogs count from here.
pub fn fix_t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0)
        .single()
        .expect("valid date")
}

/// A `register_unit` line.
pub fn register_unit(unit: &str) -> String {
    format!(
        "{{\"action\":\"register_unit\",\"unit_id\":\"{unit}\",\"callsign\":\"{unit}-cs\",\"unit_kind\":\"patrol_car\"}}\n"
    )
}

/// A `create_incident` line naming the incident `name`.
pub fn create_incident(name: &str, priority: &str) -> String {
    format!(
        "{{\"action\":\"create_incident\",\"name\":\"{name}\",\"incident_type\":\"fire\",\"priority\":\"{priority}\",\"location\":{{\"lat\":42.5,\"lon\":1.52}},\"address\":\"Carrer Major {name}\"}}\n"
    )
}

/// A `note` line.
pub fn note(incident: &str, text: &str) -> String {
    format!("{{\"action\":\"note\",\"incident\":\"{incident}\",\"text\":\"{text}\"}}\n")
}

/// An `assign` line.
pub fn assign(incident: &str, unit: &str) -> String {
    format!("{{\"action\":\"assign\",\"incident\":\"{incident}\",\"unit_id\":\"{unit}\"}}\n")
}

/// A `status` line.
pub fn status(unit: &str, to: &str) -> String {
    format!("{{\"action\":\"status\",\"unit_id\":\"{unit}\",\"to\":\"{to}\"}}\n")
}

/// A `close` line.
pub fn close(incident: &str) -> String {
    format!("{{\"action\":\"close\",\"incident\":\"{incident}\",\"disposition\":\"resolved\"}}\n")
}

/// A `position` line: the unit at a point east of Andorra la Vella, fix time
/// [`fix_t0`] + `secs` seconds + `ms` milliseconds.
pub fn position_line(unit: &str, secs: i64, ms: i64) -> String {
    let t = fix_t0() + chrono::Duration::seconds(secs) + chrono::Duration::milliseconds(ms);
    let lon = 1.5 + (secs as f64) * 1e-5;
    format!(
        "{{\"action\":\"position\",\"unit_id\":\"{unit}\",\"position\":{{\"lat\":42.5,\"lon\":{lon}}},\"fix_time\":\"{}\"}}\n",
        t.to_rfc3339()
    )
}
