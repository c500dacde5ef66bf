//! The sync commands of `Console` (sync_status, conflicts, resolve_conflict, parked_ops)
//! with two consoles and a minimal in-test server driving their stores (no HTTP).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};

use outpost_app::ipc::{
    CloseIncident, ErrorCode, IncidentDetail, NewIncident, ResolveConflict, SetUnitStatus,
    Settings, SyncState, UnitOnIncident, UpdateIncident,
};
use outpost_app::sync::{LinkStatus, SyncLink};
use outpost_app::{Console, ConsoleOptions};
use outpost_domain::clock::FixedClock;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::merge::{ConflictKind, Register};
use outpost_domain::op::{IncidentFields, Lane, OpEnvelope};
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_domain::wire::{OpResult, Outcome, PullResponse, PulledOp, PushResponse};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
}

/// A minimal server: a gseq counter, the log, stored outcomes; parks the ops in `park`.
pub(crate) struct Server {
    epoch: Uuid,
    gseq: u64,
    pub(crate) log: Vec<(u64, OpEnvelope)>,
    outcomes: HashMap<Uuid, Outcome>,
    park: BTreeSet<Uuid>,
}

impl Server {
    pub(crate) fn new() -> Server {
        Server {
            epoch: Uuid::now_v7(),
            gseq: 0,
            log: Vec::new(),
            outcomes: HashMap::new(),
            park: BTreeSet::new(),
        }
    }

    fn push(&mut self, ops: &[OpEnvelope]) -> PushResponse {
        let mut results = Vec::new();
        for op in ops {
            let outcome = match self.outcomes.get(&op.op_id) {
                Some(o) => o.clone(),
                None if self.park.contains(&op.op_id) => Outcome::Parked {
                    reason: "unit u-09 does not exist on the server".into(),
                },
                None => {
                    self.gseq += 1;
                    self.log.push((self.gseq, op.clone()));
                    Outcome::Accepted { gseq: self.gseq }
                }
            };
            self.outcomes.insert(op.op_id, outcome.clone());
            results.push(OpResult {
                op_id: op.op_id,
                lane_seq: op.lane_seq,
                outcome,
            });
        }
        PushResponse {
            epoch: self.epoch,
            results,
            resend_from: None,
            high_water: 0,
            server_gseq: self.gseq,
        }
    }

    /// One round for a console: push every lane, pull everything new, tell the console.
    pub(crate) fn sync(&mut self, c: &Console) {
        let now = t0();
        {
            let handle = c.store_handle();
            let mut s = handle.lock().expect("store lock");
            for lane in [Lane::Critical, Lane::Notes, Lane::Positions] {
                let ops = s.pending_batch(lane, 1_000).expect("pending");
                if !ops.is_empty() {
                    let resp = self.push(&ops);
                    s.record_push(lane, &resp, now).expect("record");
                }
            }
            let cursor = s.sync_state().expect("state").cursor;
            let page = PullResponse {
                epoch: self.epoch,
                ops: self
                    .log
                    .iter()
                    .filter(|(g, _)| *g > cursor)
                    .map(|(g, op)| PulledOp {
                        gseq: *g,
                        op: serde_json::to_value(op).expect("json"),
                    })
                    .collect(),
                server_gseq: self.gseq,
                more: false,
            };
            s.apply_pull(&page, now).expect("pull");
        }
        c.notify_changed();
    }
}

fn console(dir: &std::path::Path, user: &str, clock: &Arc<FixedClock>) -> Console {
    Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.to_path_buf(),
            demo: false,
            user: user.into(),
        },
        clock.clone(),
    )
    .expect("open console")
}

struct Pair {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    clock: Arc<FixedClock>,
    a: Console,
    b: Console,
    srv: Server,
}

/// Two consoles that both know two units and one incident.
fn pair() -> (Pair, IncidentDetail) {
    let dirs = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let clock = Arc::new(FixedClock::new(t0()));
    let a = console(dirs.0.path(), "cmdr.li", &clock);
    let b = console(dirs.1.path(), "cmdr.wang", &clock);
    for (id, cs) in [("u-01", "东胜01"), ("u-02", "东胜02")] {
        a.register_unit(id, cs, UnitKind::PatrolCar, None)
            .expect("register");
    }
    clock.advance_secs(1);
    let inc = a
        .create_incident(NewIncident {
            incident_type: IncidentType::Theft,
            priority: None,
            location: LatLon {
                lat: 42.5078,
                lon: 1.5211,
            },
            address: "Avinguda Meritxell 12".into(),
            description: "bag snatched".into(),
        })
        .expect("create");
    let mut srv = Server::new();
    srv.sync(&a);
    srv.sync(&b);
    clock.advance_secs(1);
    (
        Pair {
            _dirs: dirs,
            clock,
            a,
            b,
            srv,
        },
        inc,
    )
}

fn heal(p: &mut Pair) {
    p.srv.sync(&p.a);
    p.srv.sync(&p.b);
    p.srv.sync(&p.a);
}

fn digest(c: &Console) -> std::collections::BTreeMap<String, String> {
    c.store_handle()
        .lock()
        .expect("lock")
        .state_digest()
        .expect("digest")
}

#[test]
fn sync_status_is_disabled_alone_and_counts_the_outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let c = console(dir.path(), "cmdr.li", &clock);
    c.register_unit("u-01", "东胜01", UnitKind::PatrolCar, None)
        .expect("register");
    c.report_position(
        "u-01",
        outpost_domain::op::Fix {
            position: LatLon {
                lat: 42.5,
                lon: 1.52,
            },
            fix_time: t0(),
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
    )
    .expect("position");
    let s = c.sync_status().expect("status");
    assert_eq!(s.state, SyncState::Disabled);
    assert_eq!(s.server_url, None);
    assert_eq!(
        (s.pending.critical, s.pending.notes, s.pending.positions),
        (1, 0, 1)
    );
    assert_eq!((s.parked, s.conflicts, s.deferred), (0, 0, 0));
}

/// A link that reports offline since a fixed time and counts pokes.
struct FakeLink {
    pokes: AtomicU64,
}

impl SyncLink for FakeLink {
    fn link_status(&self) -> LinkStatus {
        LinkStatus {
            state: SyncState::Offline,
            server_url: "http://127.0.0.1:9".into(),
            offline_since: Some(t0()),
            last_sync: None,
            last_error: Some("connection refused".into()),
        }
    }
    fn poke_local(&self) {
        self.pokes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn sync_status_reports_an_attached_link_and_notify_changed_reaches_listeners() {
    let (p, _) = pair();
    let link = Arc::new(FakeLink {
        pokes: AtomicU64::new(0),
    });
    p.a.attach_sync(link.clone());
    let s = p.a.sync_status().expect("status");
    assert_eq!(s.state, SyncState::Offline);
    assert_eq!(s.server_url.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(s.offline_since, Some(t0()));
    assert_eq!(s.last_error.as_deref(), Some("connection refused"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    p.a.on_change(Box::new(move |rev| sink.lock().expect("lock").push(rev)));
    let before = p.a.revision();
    p.a.notify_changed();
    assert_eq!(p.a.revision(), before + 1);
    assert_eq!(*seen.lock().expect("lock"), vec![before + 1]);
}

#[test]
fn a_field_conflict_is_shown_on_both_and_resolved_by_keeping_one_side() {
    let (mut p, inc) = pair();
    let set = |c: &Console, pr: Priority| {
        c.update_incident(UpdateIncident {
            incident_id: inc.summary.id.clone(),
            fields: IncidentFields {
                priority: Some(pr),
                ..Default::default()
            },
        })
        .expect("update")
    };
    set(&p.a, Priority::P1);
    p.clock.advance_secs(5);
    set(&p.b, Priority::P2);
    heal(&mut p);
    let ca = p.a.conflicts().expect("conflicts");
    assert_eq!(ca, p.b.conflicts().expect("conflicts"));
    assert_eq!(ca.len(), 1);
    let c = &ca[0];
    assert_eq!(c.kind, ConflictKind::Field);
    assert_eq!(c.register, Some(Register::Priority));
    assert_eq!(
        c.incident_number.as_deref(),
        Some(inc.summary.number.as_str())
    );
    let sides: Vec<_> = c
        .sides
        .iter()
        .map(|s| (s.user.as_str(), s.summary.as_str(), s.shown))
        .collect();
    assert_eq!(
        sides,
        vec![("cmdr.li", "P1", false), ("cmdr.wang", "P2", true)]
    );
    assert_eq!(p.a.sync_status().expect("s").conflicts, 1);
    // b keeps a's P1.
    let keep = c.sides[0].op_id.clone();
    let left =
        p.b.resolve_conflict(ResolveConflict {
            conflict_id: c.id.clone(),
            keep_op_id: keep.clone(),
            note: String::new(),
        })
        .expect("resolve");
    assert!(left.is_empty());
    heal(&mut p);
    for con in [&p.a, &p.b] {
        assert!(con.conflicts().expect("c").is_empty());
        let d = con
            .incident_detail(outpost_app::ipc::IncidentRef {
                incident_id: inc.summary.id.clone(),
            })
            .expect("detail");
        assert_eq!(d.summary.priority, Priority::P1);
    }
    assert_eq!(digest(&p.a), digest(&p.b));
    // Resolving it again: not open any more.
    let err =
        p.a.resolve_conflict(ResolveConflict {
            conflict_id: c.id.clone(),
            keep_op_id: keep,
            note: String::new(),
        })
        .expect_err("already resolved");
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[test]
fn a_double_assignment_is_resolved_by_releasing_the_other_incident() {
    let (mut p, inc1) = pair();
    let inc2 =
        p.b.create_incident(NewIncident {
            incident_type: IncidentType::TrafficAccident,
            priority: None,
            location: LatLon {
                lat: 42.51,
                lon: 1.53,
            },
            address: "Carrer Major 3".into(),
            description: String::new(),
        })
        .expect("create");
    heal(&mut p);
    p.a.assign_unit(UnitOnIncident {
        incident_id: inc1.summary.id.clone(),
        unit_id: "u-01".into(),
    })
    .expect("assign on a");
    p.b.assign_unit(UnitOnIncident {
        incident_id: inc2.summary.id.clone(),
        unit_id: "u-01".into(),
    })
    .expect("assign on b");
    heal(&mut p);
    let cs = p.a.conflicts().expect("c");
    assert_eq!(cs, p.b.conflicts().expect("c"));
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].id, "double:u-01");
    assert_eq!(cs[0].callsign.as_deref(), Some("东胜01"));
    assert_eq!(cs[0].sides.len(), 2);
    let keep = cs[0]
        .sides
        .iter()
        .find(|s| s.summary.ends_with(&inc2.summary.number))
        .expect("side of inc2");
    assert!(keep.assignment_id.is_some());
    assert!(
        p.a.resolve_conflict(ResolveConflict {
            conflict_id: cs[0].id.clone(),
            keep_op_id: keep.op_id.clone(),
            note: "closer to inc2".into(),
        })
        .expect("resolve")
        .is_empty()
    );
    heal(&mut p);
    for c in [&p.a, &p.b] {
        assert!(c.conflicts().expect("c").is_empty());
        let u = c
            .console_state()
            .expect("state")
            .units
            .into_iter()
            .find(|u| u.id == "u-01")
            .expect("u-01");
        assert_eq!(u.incident_id.as_deref(), Some(inc2.summary.id.as_str()));
        assert_eq!(u.status, UnitStatus::Dispatched);
    }
    assert_eq!(digest(&p.a), digest(&p.b));
}

#[test]
fn an_assignment_concurrent_with_a_close_is_resolved_with_the_unit_released() {
    let (mut p, inc) = pair();
    p.a.close_incident(CloseIncident {
        incident_id: inc.summary.id.clone(),
        disposition: Disposition::Resolved,
        summary: "gone on arrival".into(),
    })
    .expect("close");
    p.b.assign_unit(UnitOnIncident {
        incident_id: inc.summary.id.clone(),
        unit_id: "u-02".into(),
    })
    .expect("assign");
    heal(&mut p);
    let cs = p.b.conflicts().expect("c");
    assert_eq!(cs, p.a.conflicts().expect("c"));
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].kind, ConflictKind::EditAfterClose);
    let words: Vec<_> = cs[0]
        .sides
        .iter()
        .map(|s| (s.summary.as_str(), s.shown))
        .collect();
    assert_eq!(
        words,
        vec![("closed: resolved", true), ("东胜02 dispatched", false)]
    );
    p.b.resolve_conflict(ResolveConflict {
        conflict_id: cs[0].id.clone(),
        keep_op_id: cs[0].sides[0].op_id.clone(),
        note: String::new(),
    })
    .expect("resolve");
    heal(&mut p);
    for c in [&p.a, &p.b] {
        assert!(c.conflicts().expect("c").is_empty());
        let u = c
            .console_state()
            .expect("state")
            .units
            .into_iter()
            .find(|u| u.id == "u-02")
            .expect("u-02");
        assert_eq!((u.status, u.incident_id), (UnitStatus::Available, None));
    }
    assert_eq!(digest(&p.a), digest(&p.b));
}

#[test]
fn parked_ops_are_listed_with_the_servers_reason_and_unapplied() {
    let (mut p, _) = pair();
    p.a.register_unit("u-09", "东胜09", UnitKind::Motorcycle, None)
        .expect("register");
    p.a.set_unit_status(SetUnitStatus {
        unit_id: "u-09".into(),
        to: UnitStatus::Busy,
    })
    .expect("status");
    let op =
        p.a.store_handle()
            .lock()
            .expect("lock")
            .pending_batch(Lane::Critical, 10)
            .expect("pending")
            .pop()
            .expect("status op");
    p.srv.park.insert(op.op_id);
    p.srv.sync(&p.a);
    let parked = p.a.parked_ops().expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].op_id, op.op_id.to_string());
    assert_eq!(parked[0].kind, "unit.set_status");
    assert_eq!(parked[0].lane, Lane::Critical);
    assert_eq!(parked[0].summary, "东胜09 busy");
    assert_eq!(parked[0].reason, "unit u-09 does not exist on the server");
    assert_eq!(p.a.sync_status().expect("s").parked, 1);
    // Un-applied here: the unit shows as the server has it.
    let u =
        p.a.console_state()
            .expect("state")
            .units
            .into_iter()
            .find(|u| u.id == "u-09")
            .expect("u-09");
    assert_eq!(u.status, UnitStatus::Available);
    p.srv.sync(&p.b);
    assert_eq!(digest(&p.a), digest(&p.b));
}

#[test]
fn resolve_conflict_refuses_bad_ids_and_foreign_sides() {
    let (mut p, inc) = pair();
    for (c, pr) in [(&p.a, Priority::P1), (&p.b, Priority::P2)] {
        c.update_incident(UpdateIncident {
            incident_id: inc.summary.id.clone(),
            fields: IncidentFields {
                priority: Some(pr),
                ..Default::default()
            },
        })
        .expect("update");
    }
    heal(&mut p);
    let id = p.a.conflicts().expect("c")[0].id.clone();
    let bad = |conflict_id: &str, keep: &str| {
        p.a.resolve_conflict(ResolveConflict {
            conflict_id: conflict_id.into(),
            keep_op_id: keep.into(),
            note: String::new(),
        })
        .expect_err("refused")
        .code
    };
    assert_eq!(
        bad("nonsense", &Uuid::now_v7().to_string()),
        ErrorCode::InvalidInput
    );
    assert_eq!(bad(&id, "not-a-uuid"), ErrorCode::InvalidInput);
    assert_eq!(
        bad(&id, &Uuid::now_v7().to_string()),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        bad("double:u-02", &Uuid::now_v7().to_string()),
        ErrorCode::NotFound
    );
    assert_eq!(p.a.conflicts().expect("c").len(), 1);
}

#[test]
fn the_server_url_setting_is_validated_and_kept() {
    let (p, _) = pair();
    let base = Settings::default();
    for good in [
        "http://127.0.0.1:8080",
        "https://dispatch.example:443/",
        "http://srv",
    ] {
        let saved =
            p.a.save_settings(Settings {
                server_url: Some(good.into()),
                ..base.clone()
            })
            .expect(good);
        assert_eq!(
            saved.server_url.as_deref(),
            Some(good.trim_end_matches('/'))
        );
    }
    for bad in [
        "ftp://x",
        "127.0.0.1:8080",
        "http://",
        "http://a b",
        "http://h:port",
    ] {
        let err =
            p.a.save_settings(Settings {
                server_url: Some(bad.into()),
                ..base.clone()
            })
            .expect_err(bad);
        assert_eq!(err.code, ErrorCode::InvalidInput, "{bad}");
    }
    let cleared =
        p.a.save_settings(Settings {
            server_url: Some("  ".into()),
            ..base
        })
        .expect("clear");
    assert_eq!(cleared.server_url, None);
}

#[test]
fn two_closes_with_different_dispositions_are_resolved_by_closing_again() {
    let (mut p, inc) = pair();
    for (c, d) in [(&p.a, Disposition::Resolved), (&p.b, Disposition::Referred)] {
        c.close_incident(CloseIncident {
            incident_id: inc.summary.id.clone(),
            disposition: d,
            summary: String::new(),
        })
        .expect("close");
    }
    heal(&mut p);
    let cs = p.a.conflicts().expect("c");
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].register, Some(Register::Closure));
    let keep = cs[0]
        .sides
        .iter()
        .find(|s| s.summary == "closed: resolved")
        .expect("resolved side");
    p.b.resolve_conflict(ResolveConflict {
        conflict_id: cs[0].id.clone(),
        keep_op_id: keep.op_id.clone(),
        note: String::new(),
    })
    .expect("resolve");
    heal(&mut p);
    for c in [&p.a, &p.b] {
        assert!(c.conflicts().expect("c").is_empty());
        let d = c
            .incident_detail(outpost_app::ipc::IncidentRef {
                incident_id: inc.summary.id.clone(),
            })
            .expect("detail");
        assert_eq!(d.disposition, Some(Disposition::Resolved));
    }
    assert_eq!(digest(&p.a), digest(&p.b));
}

/// A live console a few position reports behind reads "online"; a real backlog, a waiting
/// critical op or a stale last sync reads "syncing".
#[test]
fn the_indicator_reads_online_while_live_and_syncing_only_for_a_real_backlog() {
    use chrono::{Duration, TimeZone, Utc};
    use outpost_app::ipc::{LaneCounts, SyncState};
    use outpost_app::shown_state;
    let now = Utc
        .with_ymd_and_hms(2026, 11, 29, 3, 0, 0)
        .single()
        .expect("time");
    let live = LaneCounts {
        critical: 0,
        notes: 1,
        positions: 12,
    };
    let recent = Some(now - Duration::seconds(3));
    assert_eq!(
        shown_state(SyncState::Syncing, live, recent, now),
        SyncState::Online
    );
    let backlog = LaneCounts {
        positions: 4_000,
        ..live
    };
    assert_eq!(
        shown_state(SyncState::Syncing, backlog, recent, now),
        SyncState::Syncing
    );
    let dispatch_waiting = LaneCounts {
        critical: 1,
        ..live
    };
    assert_eq!(
        shown_state(SyncState::Syncing, dispatch_waiting, recent, now),
        SyncState::Syncing
    );
    let stale = Some(now - Duration::seconds(60));
    assert_eq!(
        shown_state(SyncState::Syncing, live, stale, now),
        SyncState::Syncing
    );
    assert_eq!(
        shown_state(SyncState::Offline, live, recent, now),
        SyncState::Offline
    );
}
