//! The simulation harness: real consoles (`outpost_app::Console` on temp data dirs, each
//! with its own fake clock) and the real server's sync logic (`outpost_server`'s
//! `SyncService` over its SQLite storage), connected by a "network" the test controls
//! step by step: each push or pull can be lost on the way there, lost on the way back (after
//! the server committed), delivered twice, or (pull) applied twice.
//!
//! The harness is a sync client of its own, written from the protocol in
//! `outpost_domain::wire` and the store's sync API; it does not use the sync engine.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use outpost_app::ipc::{
    AddNote, CloseIncident, IncidentRef, NewIncident, ResolveConflict, SetUnitStatus,
    UnitOnIncident, UpdateIncident,
};
use outpost_app::{Console, ConsoleOptions};
use outpost_check::{
    Author, CursorObservation, Model, Replica, ServerDump, State, check_invariants,
};
use outpost_domain::clock::{Clock, FixedClock};
use outpost_domain::device::{DeviceReport, DeviceSource};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::op::{Fix, IncidentFields, Lane, OpBody, OpEnvelope};
use outpost_domain::road_closure::RoadClosure;
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_domain::wire::{MAX_BATCH_OPS, Outcome, PROTOCOL_VERSION, PushRequest};
use outpost_server::storage::sqlite::DB_FILE;
use outpost_server::{SqliteStorage, SyncError, SyncService};
use outpost_store::{Store, StoreError};

use crate::extract;
use crate::extract::outbox;
use crate::support::ClosureSpec;

pub use crate::support::t0;

/// What happens to one push on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFault {
    /// Delivered, answered.
    None,
    /// Lost on the way to the server: the server sees nothing.
    RequestLost,
    /// The server committed; its answer is lost.
    ResponseLost,
    /// Delivered twice (a retry racing the first); the console records both answers.
    Twice,
}

/// What happens to one pull page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFault {
    /// Delivered and applied once.
    None,
    /// The page is lost (not applied).
    Lost,
    /// The page is applied twice.
    Twice,
}

/// The server side: the real sync service over SQLite in a temp dir.
pub struct Server {
    pub service: SyncService,
    pub dir: tempfile::TempDir,
    /// The server's clock: true time (the fix-time check of pushed positions reads it).
    pub clock: Arc<FixedClock>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("server tempdir");
        let storage = SqliteStorage::open(dir.path()).expect("server storage");
        let clock = Arc::new(FixedClock::new(t0()));
        Server {
            service: SyncService::new(Box::new(storage)).with_clock(clock.clone()),
            dir,
            clock,
        }
    }

    /// Every op still in the log with its gseq: the snapshot (what compaction kept), then
    /// pulls after it.
    pub fn log(&self) -> Vec<(u64, OpEnvelope)> {
        let snap = self.service.snapshot().expect("snapshot");
        let mut out: Vec<(u64, OpEnvelope)> = snap
            .ops
            .iter()
            .map(|p| {
                let op: OpEnvelope = serde_json::from_value(p.op.clone()).expect("logged op");
                (p.gseq, op)
            })
            .collect();
        let mut after = snap.gseq;
        loop {
            let page = self.service.pull(after, Some(5_000)).expect("server pull");
            for p in &page.ops {
                let op: OpEnvelope = serde_json::from_value(p.op.clone()).expect("logged op");
                out.push((p.gseq, op));
                after = p.gseq;
            }
            if !page.more {
                return out;
            }
        }
    }

    /// The server's replica of the state, read from its database file.
    pub fn replica(&self) -> Store {
        let path = self.dir.path().join(DB_FILE);
        Store::open(&path, t0()).expect("open server replica")
    }

    pub fn dump(&self) -> ServerDump {
        let replica = self.replica();
        let parked = self
            .service
            .parked()
            .expect("parked")
            .into_iter()
            .map(|p| (p.key.op_id, p.reason))
            .collect();
        ServerDump {
            log: self.log(),
            parked,
            digest: Some(replica.state_digest().expect("server digest")),
            state: Some(extract::state(replica.conn())),
            conflicts: Some(conflict_ids(&replica)),
            compacted: self
                .service
                .snapshot()
                .expect("snapshot")
                .compacted_positions,
        }
    }

    /// A backup of the server's database file (SQLite `VACUUM INTO`), at `to`.
    pub fn backup(&self, to: &std::path::Path) {
        let replica = self.replica();
        replica
            .conn()
            .execute("VACUUM INTO ?1", [to.to_string_lossy()])
            .expect("vacuum into");
    }

    /// Stops the server, puts the backup `from` in place of its database, starts it again.
    pub fn restore(&mut self, from: &std::path::Path) {
        let fresh = tempfile::tempdir().expect("server tempdir");
        std::fs::copy(from, fresh.path().join(DB_FILE)).expect("copy backup");
        let storage = SqliteStorage::open(fresh.path()).expect("restored storage");
        self.service = SyncService::new(Box::new(storage)).with_clock(self.clock.clone());
        self.dir = fresh;
    }

    /// `outpost-server compact --before-gseq G` with `G` = `fraction`/4 of the newest gseq.
    pub fn compact(&self, fraction: u64) {
        let head = self.service.head().expect("head");
        let before = head.gseq * fraction.min(4) / 4;
        self.service
            .with_storage(|s| s.compact(before))
            .expect("compact");
    }
}

pub fn conflict_ids(store: &Store) -> BTreeSet<String> {
    store.conflict_ids().expect("conflict ids")
}

/// One console.
pub struct Node {
    pub name: String,
    pub console: Console,
    pub clock: Arc<FixedClock>,
    pub dir: tempfile::TempDir,
    /// Added to the true time on this console's clock, ms (S6 skew).
    pub skew_ms: i64,
    pub cursors: Vec<CursorObservation>,
}

/// What a test does to the world: true time advances for everyone.
pub struct World {
    pub server: Server,
    pub nodes: Vec<Node>,
    pub now: DateTime<Utc>,
    /// Pull page size (small, to exercise paging).
    pub page: usize,
    /// Push batch size.
    pub batch: usize,
    /// Snapshots loaded by consoles (410 on pull).
    pub snapshots: usize,
    /// Where [`World::backup`] keeps the server's backup.
    pub vault: tempfile::TempDir,
    /// Server restores done.
    pub restores: usize,
    /// The server's ingest gateway (its own origin, positions lane only; [`World::ingest`]).
    pub gateway: Author,
}

/// The units registered at the start (by node 0, pulled by all).
pub const UNITS: [&str; 4] = ["u-01", "u-02", "u-03", "u-04"];

impl World {
    /// A server and `n` consoles with clock skews `skews_ms` (missing = 0). Node 0 registers
    /// [`UNITS`]; every node pulls them before the test starts.
    pub fn new(n: usize, skews_ms: &[i64]) -> World {
        let server = Server::start();
        let now = t0();
        let mut nodes = Vec::new();
        for i in 0..n {
            let skew = skews_ms.get(i).copied().unwrap_or(0);
            let clock = Arc::new(FixedClock::new(now + Duration::milliseconds(skew)));
            let dir = tempfile::tempdir().expect("console tempdir");
            let console = open_console(dir.path(), &clock, i);
            nodes.push(Node {
                name: format!("console {i}"),
                console,
                clock,
                dir,
                skew_ms: skew,
                cursors: Vec::new(),
            });
        }
        let mut w = World {
            server,
            nodes,
            now,
            page: 7,
            batch: 5,
            snapshots: 0,
            vault: tempfile::tempdir().expect("backup dir"),
            restores: 0,
            gateway: Author::new(0x6A7E_3A7E, "gateway", now.timestamp_millis()),
        };
        for (k, u) in UNITS.iter().enumerate() {
            w.nodes[0]
                .console
                .register_unit(u, &format!("东胜{k:02}"), UnitKind::PatrolCar, None)
                .expect("register unit");
        }
        w.sync_all();
        w
    }

    /// Takes a backup of the server's database (replacing the previous one).
    pub fn backup(&mut self) {
        let path = self.vault.path().join("server-backup.db");
        let _ = std::fs::remove_file(&path);
        self.server.backup(&path);
    }

    /// Restores the last backup (if any). Then every console that knows a gseq beyond the
    /// restored server's newest — its cursor, or the gseq of one of its acknowledged ops —
    /// tells the server (an empty push with that number as its cursor), so the restore is
    /// noticed before new ops can reuse the lost gseqs. The real engine does this only with
    /// its cursor (the defect pinned by `scenarios::s12_*`); S1 simulates the proposed fix
    /// here so it exercises the rest of the resync.
    pub fn restore(&mut self) {
        let path = self.vault.path().join("server-backup.db");
        if !path.exists() {
            return;
        }
        self.server.restore(&path);
        self.restores += 1;
        for i in 0..self.nodes.len() {
            let head = self.server.service.head().expect("head").gseq;
            let node = &mut self.nodes[i];
            let handle = node.console.store_handle();
            let mut store = lock(&handle);
            let pos = store.sync_state().expect("sync state");
            let acked: Option<i64> = store
                .conn()
                .query_row(
                    "SELECT MAX(gseq) FROM outbox WHERE status = 'acked'",
                    [],
                    |r| r.get(0),
                )
                .expect("max acked gseq");
            let known = pos
                .cursor
                .max(acked.and_then(|g| u64::try_from(g).ok()).unwrap_or(0));
            if known <= head {
                continue;
            }
            let req = PushRequest {
                protocol: PROTOCOL_VERSION,
                origin: store.origin_id(),
                lane: Lane::Critical,
                epoch: pos.epoch,
                cursor: known,
                ops: Vec::new(),
            };
            match self.server.service.push_request(&req) {
                Err(SyncError::EpochChanged { epoch }) => {
                    store.start_resync(epoch).expect("start resync");
                    node.cursors.push(CursorObservation {
                        epoch: Some(epoch),
                        cursor: 0,
                    });
                }
                Ok(_) => {}
                Err(e) => panic!("{}: telling the server: {e}", node.name),
            }
        }
    }

    /// The server's ingest receives a fix of device `device` of [`DEVICES`] at `secs` from
    /// now, as `outpost-server`'s gateway writes it: the binding read from the server's
    /// replica makes it the unit's `position.report`, or a `device.report` when unbound; the
    /// op is the gateway origin's next in the positions lane (`seq` = `lane_seq`, HLC from
    /// true time, `base_version` = the server's head) pushed at once with no epoch. The fix
    /// is the one node 0 would report by [`Action::DeviceFix`] (same time and place), so the
    /// two relay duplicates. Returns whether the server accepted it.
    pub fn ingest(&mut self, device: usize, secs: i64, battery: Option<u8>) -> bool {
        let device_id = DEVICES[device % DEVICES.len()].to_string();
        let fix = device_fix(self.now, secs, 0);
        let bound = {
            let replica = self.server.replica();
            outpost_store::devices::device_binding(replica.conn(), &device_id)
                .expect("server binding")
        };
        let body = match bound {
            Some(unit_id) => OpBody::PositionReport { unit_id, fix },
            None => OpBody::DeviceReport {
                report: DeviceReport {
                    name: (device % 2 == 1).then(|| format!("TAK {device}")),
                    device_id,
                    source: DeviceSource::Osmand,
                    fix,
                    battery_pct: battery.map(f64::from),
                },
            },
        };
        let head = self.server.service.head().expect("head").gseq;
        self.gateway.base = head;
        self.gateway.now_ms = self.now.timestamp_millis();
        let op = self.gateway.op(body);
        let req = PushRequest {
            protocol: PROTOCOL_VERSION,
            origin: self.gateway.origin,
            lane: Lane::Positions,
            epoch: None,
            cursor: head,
            ops: vec![serde_json::to_value(&op).expect("op json")],
        };
        let resp = self
            .server
            .service
            .push_request(&req)
            .expect("gateway push");
        // Continue from the server's mark (after a restore it may be behind the gateway's).
        self.gateway.seq = resp.high_water;
        self.gateway
            .lane_seq
            .insert(Lane::Positions, resp.high_water);
        resp.results
            .first()
            .is_some_and(|r| matches!(r.outcome, Outcome::Accepted { .. }))
    }

    /// Moves true time forward by `ms` on every console's clock.
    pub fn advance(&mut self, ms: i64) {
        self.now += Duration::milliseconds(ms);
        self.server.clock.set(self.now);
        for n in &self.nodes {
            n.clock.set(self.now + Duration::milliseconds(n.skew_ms));
        }
    }

    /// Pushes one batch of `lane` from node `i` through `fault`. Returns true when the node
    /// had something to push.
    pub fn push(&mut self, i: usize, lane: Lane, fault: PushFault) -> bool {
        let node = &mut self.nodes[i];
        let handle = node.console.store_handle();
        let mut store = lock(&handle);
        let batch = store
            .pending_batch(lane, self.batch)
            .expect("pending batch");
        if batch.is_empty() {
            return false;
        }
        let pos = store.sync_state().expect("sync state");
        let (epoch, cursor) = (pos.epoch, pos.cursor);
        let req = PushRequest {
            protocol: PROTOCOL_VERSION,
            origin: store.origin_id(),
            lane,
            epoch,
            cursor,
            ops: batch
                .iter()
                .map(|op| serde_json::to_value(op).expect("op json"))
                .collect(),
        };
        assert!(batch.len() <= MAX_BATCH_OPS);
        if fault == PushFault::RequestLost {
            return true;
        }
        let first = self.server.service.push_request(&req);
        let second = (fault == PushFault::Twice).then(|| self.server.service.push_request(&req));
        if fault == PushFault::ResponseLost {
            return true;
        }
        let now = node.clock.now();
        for answer in std::iter::once(first).chain(second) {
            match answer {
                Ok(resp) => match store.record_push(lane, &resp, now) {
                    Ok(_) => {}
                    Err(StoreError::EpochChanged { server, .. }) => {
                        store.start_resync(server).expect("start resync");
                        node.cursors.push(CursorObservation {
                            epoch: Some(server),
                            cursor: 0,
                        });
                    }
                    Err(e) => panic!("{}: record push: {e}", node.name),
                },
                Err(SyncError::EpochChanged { epoch }) => {
                    store.start_resync(epoch).expect("start resync");
                    node.cursors.push(CursorObservation {
                        epoch: Some(epoch),
                        cursor: 0,
                    });
                }
                Err(e) => panic!("{}: push refused: {e}", node.name),
            }
        }
        true
    }

    /// Pulls pages into node `i` until the server has no more (or a page is lost).
    pub fn pull(&mut self, i: usize, fault: PullFault) {
        let node = &mut self.nodes[i];
        let handle = node.console.store_handle();
        loop {
            let mut store = lock(&handle);
            let now = node.clock.now();
            let pos = store.sync_state().expect("sync state");
            let (epoch, cursor) = (pos.epoch, pos.cursor);
            let page = match self.server.service.pull(cursor, Some(self.page)) {
                Ok(p) => p,
                Err(SyncError::SnapshotRequired { .. }) => {
                    let snap = self.server.service.snapshot().expect("snapshot");
                    store.load_snapshot(&snap, now).expect("load snapshot");
                    self.snapshots += 1;
                    continue;
                }
                Err(SyncError::EpochChanged { epoch }) => {
                    store.start_resync(epoch).expect("start resync");
                    node.cursors.push(CursorObservation {
                        epoch: Some(epoch),
                        cursor: 0,
                    });
                    continue;
                }
                Err(e) => panic!("{}: pull refused: {e}", node.name),
            };
            if epoch.is_some_and(|e| e != page.epoch) {
                store.start_resync(page.epoch).expect("resync");
                continue;
            }
            if fault == PullFault::Lost {
                return;
            }
            store.apply_pull(&page, now).expect("apply pull");
            if fault == PullFault::Twice {
                store.apply_pull(&page, now).expect("apply pull twice");
            }
            let pos = store.sync_state().expect("sync state");
            node.cursors.push(CursorObservation {
                epoch: pos.epoch,
                cursor: pos.cursor,
            });
            if !page.more {
                return;
            }
        }
    }

    /// Pushes every lane of node `i` (critical, notes, positions) until nothing is pending.
    pub fn drain(&mut self, i: usize) {
        for lane in [Lane::Critical, Lane::Notes, Lane::Positions] {
            let mut rounds = 0;
            while self.push(i, lane, PushFault::None) {
                rounds += 1;
                assert!(
                    rounds < 10_000,
                    "{}: lane {lane:?} never drains",
                    self.nodes[i].name
                );
            }
        }
    }

    /// Heals the network: every node drains, then every node pulls, twice (the second round
    /// carries anything written in reaction, e.g. nothing, and proves quiescence).
    pub fn sync_all(&mut self) {
        for _ in 0..2 {
            for i in 0..self.nodes.len() {
                self.drain(i);
            }
            for i in 0..self.nodes.len() {
                self.pull(i, PullFault::None);
            }
        }
    }

    /// The replicas as the checker wants them.
    pub fn replicas(&self) -> Vec<Replica> {
        self.nodes
            .iter()
            .map(|n| {
                let handle = n.console.store_handle();
                let store = lock(&handle);
                Replica {
                    name: n.name.clone(),
                    outbox: outbox(&store),
                    digest: Some(store.state_digest().expect("digest")),
                    state: Some(extract::state(store.conn())),
                    conflicts: conflict_ids(&store),
                    cursors: n.cursors.clone(),
                }
            })
            .collect()
    }

    /// Heals, syncs to quiescence and asserts I1–I6 (and that the model agrees).
    pub fn heal_and_check(&mut self, seed: u64) -> Model {
        self.sync_all();
        let dump = self.server.dump();
        let replicas = self.replicas();
        let mut violations = check_invariants(&dump, &replicas, seed);
        // What the conflicts panel shows (sides: op, user, time, value, which one is shown)
        // is the same on every console.
        let views: Vec<Vec<String>> = self
            .nodes
            .iter()
            .map(|n| {
                let mut v: Vec<String> = n
                    .console
                    .conflicts()
                    .expect("conflict views")
                    .into_iter()
                    .map(|c| {
                        let mut sides: Vec<String> = c
                            .sides
                            .iter()
                            .map(|s| {
                                format!("{} {} {} {} {}", s.op_id, s.user, s.at, s.value, s.shown)
                            })
                            .collect();
                        sides.sort();
                        format!("{} [{}]", c.id, sides.join("; "))
                    })
                    .collect();
                v.sort();
                v
            })
            .collect();
        for (i, v) in views.iter().enumerate().skip(1) {
            if *v != views[0] {
                violations.push(outpost_check::Violation {
                    invariant: "I3",
                    detail: format!(
                        "conflict views differ: console 0 {:?} ≠ console {i} {:?}",
                        views[0], v
                    ),
                });
            }
        }
        assert!(
            violations.is_empty(),
            "{} violation(s):\n{}",
            violations.len(),
            violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let mut model = Model::from_ops(dump.log.into_iter().map(|(g, op)| (op, Some(g))));
        for c in &dump.compacted {
            model.insert_compacted(c);
        }
        model
    }

    /// The canonical state of node `i`.
    pub fn state(&self, i: usize) -> State {
        let handle = self.nodes[i].console.store_handle();
        let store = lock(&handle);
        extract::state(store.conn())
    }

    /// Open conflict ids of node `i`.
    pub fn conflicts(&self, i: usize) -> BTreeSet<String> {
        let handle = self.nodes[i].console.store_handle();
        let store = lock(&handle);
        conflict_ids(&store)
    }

    /// Reboots node `i`: the console is dropped and reopened on the same data dir.
    pub fn reboot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        // Close the database first (a console on a scratch dir takes its place meanwhile),
        // then open it again, as after a power cut.
        let scratch = tempfile::tempdir().expect("scratch dir");
        node.console = open_console(scratch.path(), &node.clock, i);
        node.console = open_console(node.dir.path(), &node.clock, i);
    }
}

pub fn open_console(dir: &std::path::Path, clock: &Arc<FixedClock>, i: usize) -> Console {
    Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.to_path_buf(),
            demo: false,
            user: format!("cmdr.{i}"),
        },
        clock.clone(),
    )
    .expect("open console")
}

pub fn lock<T>(m: &Arc<Mutex<T>>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One user action, chosen by index among what the console shows (so a random script stays
/// meaningful whatever state the console is in). Refused actions (illegal transition, a
/// closed incident) are simply refused, as for a person.
#[derive(Debug, Clone)]
pub enum Action {
    Create {
        kind: u8,
    },
    SetPriority {
        inc: usize,
        p: u8,
    },
    SetType {
        inc: usize,
        t: u8,
    },
    SetLocation {
        inc: usize,
        d: u8,
    },
    SetAddress {
        inc: usize,
        n: u8,
    },
    Acknowledge {
        inc: usize,
    },
    Assign {
        inc: usize,
        unit: usize,
    },
    Release {
        inc: usize,
        unit: usize,
    },
    Status {
        unit: usize,
        to: u8,
    },
    Note {
        inc: usize,
    },
    Close {
        inc: usize,
        d: u8,
    },
    Position {
        unit: usize,
        secs: i64,
    },
    Resolve {
        conflict: usize,
        side: usize,
    },
    /// A commander binds device `device` of [`DEVICES`] to unit `unit` of [`UNITS`], or
    /// unbinds it (`None`): a `device.bind` op written through the node's store.
    Bind {
        device: usize,
        unit: Option<usize>,
    },
    /// The node acts as a gateway (the server's ingest): a fix of device `device` at
    /// `secs` from now becomes its unit's `position.report` when the node's replica shows
    /// the device bound, a `device.report` otherwise. Fix times carry the node's index in
    /// the milliseconds, so one node reporting one second twice is a duplicate fix.
    DeviceFix {
        device: usize,
        secs: i64,
        battery: Option<u8>,
    },
    /// A commander draws or changes a road closure (one of a few ids, so consoles set one
    /// closure concurrently): a `road_closure.set` op written through the node's store.
    SetClosure(ClosureSpec),
    /// A commander lifts closure `which` as the node's replica shows it (refused when the
    /// node has never seen it): the shown value with `lifted: true`.
    LiftClosure {
        which: usize,
    },
}

/// The fix of a device `secs` after `now` as node `i` relays it (`i` in the milliseconds).
fn device_fix(now: DateTime<Utc>, secs: i64, i: usize) -> Fix {
    Fix {
        position: LatLon {
            lat: 39.8 + (secs as f64) * 1e-5,
            lon: 109.98,
        },
        fix_time: now + Duration::seconds(secs) + Duration::milliseconds(i as i64),
        heading_deg: Some(90.0),
        speed_mps: None,
        accuracy_m: Some(6.0),
    }
}

/// The devices of [`Action::Bind`], [`Action::DeviceFix`] and [`World::ingest`].
pub const DEVICES: [&str; 3] = ["phone-1", "ANDROID-2", "ANDROID-3"];

const PRIOS: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];
const TYPES: [IncidentType; 4] = [
    IncidentType::Fire,
    IncidentType::Theft,
    IncidentType::Medical,
    IncidentType::Other,
];
const DISPOSITIONS: [Disposition; 3] = [
    Disposition::Resolved,
    Disposition::ReportTaken,
    Disposition::Arrest,
];

impl World {
    /// Performs `a` on node `i`; returns whether the console accepted it.
    pub fn act(&mut self, i: usize, a: &Action) -> bool {
        let node = &self.nodes[i];
        let c = &node.console;
        let state = c.console_state().expect("console state");
        let incs: Vec<String> = state.incidents.iter().map(|x| x.id.clone()).collect();
        let inc = |k: usize| incs.get(k % incs.len().max(1)).cloned();
        let unit = |k: usize| UNITS[k % UNITS.len()].to_string();
        let upd = |k: usize, fields: IncidentFields| {
            inc(k).map(|id| {
                c.update_incident(UpdateIncident {
                    incident_id: id,
                    fields,
                })
                .is_ok()
            })
        };
        let done = match a {
            Action::Create { kind } => Some(
                c.create_incident(NewIncident {
                    incident_type: TYPES[usize::from(*kind) % TYPES.len()],
                    priority: None,
                    location: LatLon {
                        lat: 42.5,
                        lon: 1.52,
                    },
                    address: format!("Carrer {kind}"),
                    description: "call".into(),
                })
                .is_ok(),
            ),
            Action::SetPriority { inc: k, p } => upd(
                *k,
                IncidentFields {
                    priority: Some(PRIOS[usize::from(*p) % 4]),
                    ..IncidentFields::default()
                },
            ),
            Action::SetType { inc: k, t } => upd(
                *k,
                IncidentFields {
                    incident_type: Some(TYPES[usize::from(*t) % 4]),
                    ..IncidentFields::default()
                },
            ),
            Action::SetLocation { inc: k, d } => upd(
                *k,
                IncidentFields {
                    location: Some(LatLon {
                        lat: 42.5 + f64::from(*d) * 0.001,
                        lon: 1.52,
                    }),
                    ..IncidentFields::default()
                },
            ),
            Action::SetAddress { inc: k, n } => upd(
                *k,
                IncidentFields {
                    address: Some(format!("Avinguda {n} ({})", node.name)),
                    ..IncidentFields::default()
                },
            ),
            Action::Acknowledge { inc: k } => inc(*k).map(|id| {
                c.acknowledge_incident(IncidentRef { incident_id: id })
                    .is_ok()
            }),
            Action::Assign { inc: k, unit: u } => inc(*k).map(|id| {
                c.assign_unit(UnitOnIncident {
                    incident_id: id,
                    unit_id: unit(*u),
                })
                .is_ok()
            }),
            Action::Release { inc: k, unit: u } => inc(*k).map(|id| {
                c.release_unit(UnitOnIncident {
                    incident_id: id,
                    unit_id: unit(*u),
                })
                .is_ok()
            }),
            Action::Status { unit: u, to } => Some(
                c.set_unit_status(SetUnitStatus {
                    unit_id: unit(*u),
                    to: UnitStatus::ALL[usize::from(*to) % UnitStatus::ALL.len()],
                })
                .is_ok(),
            ),
            Action::Note { inc: k } => inc(*k).map(|id| {
                c.add_note(AddNote {
                    incident_id: id,
                    text: format!("note from {}", node.name),
                })
                .is_ok()
            }),
            Action::Close { inc: k, d } => inc(*k).map(|id| {
                c.close_incident(CloseIncident {
                    incident_id: id,
                    disposition: DISPOSITIONS[usize::from(*d) % DISPOSITIONS.len()],
                    summary: format!("closed by {}", node.name),
                })
                .is_ok()
            }),
            Action::Position { unit: u, secs } => Some(
                c.report_position(
                    &unit(*u),
                    Fix {
                        position: LatLon {
                            lat: 42.5,
                            lon: 1.5 + (*secs as f64) * 1e-5,
                        },
                        // Fix times are distinct per (node, unit) by construction: the
                        // node's index is in the milliseconds.
                        fix_time: self.now
                            + Duration::seconds(*secs)
                            + Duration::milliseconds(i as i64),
                        heading_deg: None,
                        speed_mps: Some(5.0),
                        accuracy_m: Some(8.0),
                    },
                )
                .is_ok(),
            ),
            Action::Resolve { conflict, side } => {
                let list = c.conflicts().expect("conflicts");
                list.get(conflict % list.len().max(1)).and_then(|cv| {
                    let keep = cv.sides.get(side % cv.sides.len().max(1))?;
                    Some(
                        c.resolve_conflict(ResolveConflict {
                            conflict_id: cv.id.clone(),
                            keep_op_id: keep.op_id.clone(),
                            note: String::new(),
                        })
                        .is_ok(),
                    )
                })
            }
            Action::Bind { device, unit: u } => {
                let body = OpBody::DeviceBind {
                    device_id: DEVICES[device % DEVICES.len()].to_string(),
                    unit_id: u.map(unit),
                };
                let now = node.clock.now();
                let handle = c.store_handle();
                let mut store = lock(&handle);
                Some(
                    store
                        .write::<StoreError, _>(now, &format!("cmdr.{i}"), |_| Ok(body))
                        .is_ok(),
                )
            }
            Action::DeviceFix {
                device,
                secs,
                battery,
            } => {
                let device_id = DEVICES[device % DEVICES.len()].to_string();
                let fix = device_fix(self.now, *secs, i);
                let now = node.clock.now();
                let handle = c.store_handle();
                let mut store = lock(&handle);
                let written = store.write::<StoreError, _>(now, "gateway", |conn| {
                    Ok(
                        match outpost_store::devices::device_binding(conn, &device_id)? {
                            Some(unit_id) => OpBody::PositionReport { unit_id, fix },
                            None => OpBody::DeviceReport {
                                report: DeviceReport {
                                    name: (device % 2 == 1).then(|| format!("TAK {device}")),
                                    device_id,
                                    source: DeviceSource::Cot,
                                    fix,
                                    battery_pct: battery.map(f64::from),
                                },
                            },
                        },
                    )
                });
                Some(written.is_ok())
            }
            Action::SetClosure(spec) => {
                let body = OpBody::RoadClosureSet {
                    closure: spec.closure(),
                };
                let now = node.clock.now();
                let handle = c.store_handle();
                let mut store = lock(&handle);
                Some(
                    store
                        .write::<StoreError, _>(now, &format!("cmdr.{i}"), |_| Ok(body))
                        .is_ok(),
                )
            }
            Action::LiftClosure { which } => {
                let id = ClosureSpec::id(*which);
                let now = node.clock.now();
                let handle = c.store_handle();
                let mut store = lock(&handle);
                let written = store.write::<StoreError, _>(now, &format!("cmdr.{i}"), |conn| {
                    let shown = outpost_store::closures::road_closure(conn, id)?.ok_or(
                        StoreError::Missing {
                            what: "road closure",
                            id: id.to_string(),
                        },
                    )?;
                    Ok(OpBody::RoadClosureSet {
                        closure: RoadClosure {
                            lifted: true,
                            ..shown.closure
                        },
                    })
                });
                Some(written.is_ok())
            }
        };
        done.unwrap_or(false)
    }
}
