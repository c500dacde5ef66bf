//! Merge-rule and client-sync tests: two or three stores and a minimal in-test server (a
//! gseq counter and a log, the protocol of `outpost_domain::wire` without HTTP).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::merge::{self, ConflictId, Register};
use outpost_domain::op::{Fix, IncidentFields, Lane, OpBody, OpEnvelope, Release};
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_domain::wire::{
    CompactedFix, OpResult, Outcome, PullResponse, PulledOp, PushResponse, Snapshot,
};

use crate::query;
use crate::{Store, StoreError};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
        + Duration::seconds(secs)
}

fn store() -> Store {
    Store::open_in_memory(t(0)).expect("open in-memory store")
}

fn write(s: &mut Store, at: DateTime<Utc>, user: &str, body: OpBody) -> OpEnvelope {
    s.write::<StoreError, _>(at, user, |_| Ok(body))
        .expect("write op")
}

fn register_unit(s: &mut Store, at: i64, id: &str, callsign: &str) {
    write(
        s,
        t(at),
        "admin",
        OpBody::UnitRegister {
            unit_id: id.into(),
            callsign: callsign.into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
}

fn create_incident(s: &mut Store, at: i64, number: &str) -> Uuid {
    let id = Uuid::now_v7();
    write(
        s,
        t(at),
        "cmdr.li",
        OpBody::IncidentCreate {
            incident_id: id,
            number: number.into(),
            incident_type: IncidentType::Theft,
            priority: Priority::P3,
            location: LatLon {
                lat: 42.5063,
                lon: 1.5218,
            },
            address: "Avinguda Meritxell".into(),
            description: "bag snatched".into(),
        },
    );
    id
}

fn set_priority(
    s: &mut Store,
    at: DateTime<Utc>,
    user: &str,
    inc: Uuid,
    p: Priority,
) -> OpEnvelope {
    write(
        s,
        at,
        user,
        OpBody::IncidentSetFields {
            incident_id: inc,
            fields: IncidentFields {
                priority: Some(p),
                ..Default::default()
            },
        },
    )
}

fn assign(s: &mut Store, at: i64, user: &str, inc: Uuid, unit: &str) -> (Uuid, OpEnvelope) {
    let id = Uuid::now_v7();
    let env = write(
        s,
        t(at),
        user,
        OpBody::AssignmentAdd {
            assignment_id: id,
            incident_id: inc,
            unit_id: unit.into(),
        },
    );
    (id, env)
}

/// A minimal server: orders ops (gseq), keeps the log and the stored outcomes, parks ops
/// named in `park` or referring to an incident it does not have.
struct FakeServer {
    epoch: Uuid,
    gseq: u64,
    log: Vec<(u64, OpEnvelope)>,
    outcomes: HashMap<Uuid, Outcome>,
    incidents: BTreeSet<Uuid>,
    park: BTreeSet<Uuid>,
}

impl FakeServer {
    fn new() -> FakeServer {
        FakeServer {
            epoch: Uuid::now_v7(),
            gseq: 0,
            log: Vec::new(),
            outcomes: HashMap::new(),
            incidents: BTreeSet::new(),
            park: BTreeSet::new(),
        }
    }

    fn push(&mut self, ops: &[OpEnvelope]) -> PushResponse {
        let mut results = Vec::new();
        for op in ops {
            let outcome = match self.outcomes.get(&op.op_id) {
                Some(Outcome::Accepted { gseq } | Outcome::Duplicate { gseq }) => {
                    Outcome::Duplicate { gseq: *gseq }
                }
                Some(parked) => parked.clone(),
                None => {
                    let refers = merge::incident_of(&op.body);
                    let creates = matches!(op.body, OpBody::IncidentCreate { .. });
                    let o = if self.park.contains(&op.op_id) {
                        Outcome::Parked {
                            reason: "refused by the test".into(),
                        }
                    } else if let Some(i) = refers
                        && !creates
                        && !self.incidents.contains(&i)
                    {
                        Outcome::Parked {
                            reason: format!("incident {i} does not exist"),
                        }
                    } else {
                        self.gseq += 1;
                        self.log.push((self.gseq, op.clone()));
                        if let (true, Some(i)) = (creates, refers) {
                            self.incidents.insert(i);
                        }
                        Outcome::Accepted { gseq: self.gseq }
                    };
                    self.outcomes.insert(op.op_id, o.clone());
                    o
                }
            };
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

    fn pull(&self, after: u64) -> PullResponse {
        PullResponse {
            epoch: self.epoch,
            ops: self
                .log
                .iter()
                .filter(|(g, _)| *g > after)
                .map(|(g, op)| PulledOp {
                    gseq: *g,
                    op: serde_json::to_value(op).expect("json"),
                })
                .collect(),
            server_gseq: self.gseq,
            more: false,
        }
    }

    /// Pushes every lane of `s` (critical first), then pulls everything new.
    fn sync(&mut self, s: &mut Store, now: DateTime<Utc>) {
        for lane in [Lane::Critical, Lane::Notes, Lane::Positions] {
            let ops = s.pending_batch(lane, 1_000).expect("pending");
            if ops.is_empty() {
                continue;
            }
            let resp = self.push(&ops);
            s.record_push(lane, &resp, now).expect("record push");
        }
        let cursor = s.sync_state().expect("state").cursor;
        let page = self.pull(cursor);
        s.apply_pull(&page, now).expect("apply pull");
    }
}

fn digest(s: &Store) -> std::collections::BTreeMap<String, String> {
    s.state_digest().expect("digest")
}

#[test]
fn concurrent_critical_writes_converge_and_conflict_until_an_informed_write() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    let inc = create_incident(&mut a, 1, "20261129-0001");
    srv.sync(&mut a, t(2));
    srv.sync(&mut b, t(2));
    // Both offline: a sets P1, b sets P2 later (wall clock), both from the same base.
    let pa = set_priority(&mut a, t(10), "cmdr.li", inc, Priority::P1);
    let pb = set_priority(&mut b, t(20), "cmdr.wang", inc, Priority::P2);
    assert_eq!(pa.base_version, pb.base_version);
    // A different, non-critical field concurrently: no conflict.
    write(
        &mut a,
        t(11),
        "cmdr.li",
        OpBody::IncidentSetFields {
            incident_id: inc,
            fields: IncidentFields {
                address: Some("Carrer Major 1".into()),
                ..Default::default()
            },
        },
    );
    write(
        &mut b,
        t(21),
        "cmdr.wang",
        OpBody::IncidentSetFields {
            incident_id: inc,
            fields: IncidentFields {
                address: Some("Carrer Major 3".into()),
                ..Default::default()
            },
        },
    );
    srv.sync(&mut a, t(30));
    srv.sync(&mut b, t(30));
    srv.sync(&mut a, t(31));
    assert_eq!(digest(&a), digest(&b));
    for s in [&a, &b] {
        let row = query::incident(s.conn(), inc)
            .expect("q")
            .expect("incident");
        // Same base: the later HLC wins for display.
        assert_eq!(row.priority, Priority::P2);
        assert_eq!(row.address, "Carrer Major 3");
        let cs = s.conflicts().expect("conflicts");
        assert_eq!(cs.len(), 1);
        assert_eq!(
            cs[0].id,
            ConflictId::Field {
                incident_id: inc,
                register: Register::Priority
            }
        );
        let sides: Vec<_> = cs[0]
            .sides
            .iter()
            .map(|x| (x.op_id, x.user.as_str(), x.value.clone(), x.shown))
            .collect();
        assert_eq!(
            sides,
            vec![
                (pa.op_id, "cmdr.li", json!("P1"), false),
                (pb.op_id, "cmdr.wang", json!("P2"), true)
            ]
        );
    }
    // a keeps P1 with an informed write (it has pulled b's write): the conflict is gone.
    let informed = set_priority(&mut a, t(40), "cmdr.li", inc, Priority::P1);
    assert!(informed.base_version > pb.base_version);
    srv.sync(&mut a, t(41));
    srv.sync(&mut b, t(41));
    for s in [&a, &b] {
        assert_eq!(s.conflict_ids().expect("ids"), BTreeSet::new());
        let row = query::incident(s.conn(), inc)
            .expect("q")
            .expect("incident");
        assert_eq!(row.priority, Priority::P1);
    }
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn a_skewed_clock_never_lets_a_stale_write_beat_an_informed_one() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    let inc = create_incident(&mut a, 1, "20261129-0001");
    srv.sync(&mut a, t(2));
    // a's clock is 3 hours ahead.
    set_priority(&mut a, t(3 * 3600 + 10), "cmdr.li", inc, Priority::P2);
    srv.sync(&mut a, t(3 * 3600 + 11));
    srv.sync(&mut b, t(20));
    // b saw a's write and changes it with a wall clock 3 hours behind.
    let informed = set_priority(&mut b, t(30), "cmdr.wang", inc, Priority::P1);
    // a's clock does not drag b's times 3 hours forward: b's write wins by its base.
    assert_eq!(informed.hlc.wall_ms, t(30).timestamp_millis());
    srv.sync(&mut b, t(31));
    srv.sync(&mut a, t(3 * 3600 + 40));
    for s in [&a, &b] {
        let row = query::incident(s.conn(), inc)
            .expect("q")
            .expect("incident");
        assert_eq!(row.priority, Priority::P1);
        assert!(s.conflicts().expect("c").is_empty());
    }
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn double_assignment_shows_on_every_replica_until_one_is_released() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let i1 = create_incident(&mut a, 1, "20261129-0001");
    let i2 = create_incident(&mut a, 2, "20261129-0002");
    srv.sync(&mut a, t(3));
    srv.sync(&mut b, t(3));
    let (a1, add1) = assign(&mut a, 10, "cmdr.li", i1, "u-01");
    let (a2, add2) = assign(&mut b, 11, "cmdr.wang", i2, "u-01");
    srv.sync(&mut a, t(20));
    srv.sync(&mut b, t(20));
    srv.sync(&mut a, t(21));
    let id = ConflictId::DoubleAssignment {
        unit_id: "u-01".into(),
    };
    for s in [&a, &b] {
        let cs = s.conflicts().expect("c");
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].id, id);
        let sides: Vec<_> = cs[0]
            .sides
            .iter()
            .map(|x| (x.op_id, x.assignment_id, x.incident_id))
            .collect();
        assert_eq!(
            sides,
            vec![
                (add1.op_id, Some(a1), Some(i1)),
                (add2.op_id, Some(a2), Some(i2))
            ]
        );
        assert_eq!(
            query::unit(s.conn(), "u-01").expect("q").expect("u").status,
            UnitStatus::Dispatched
        );
    }
    assert_eq!(digest(&a), digest(&b));
    // a keeps the first: a conflict.resolve releases b's assignment, status left alone.
    write(
        &mut a,
        t(30),
        "cmdr.li",
        OpBody::ConflictResolve {
            conflict_id: id.to_string(),
            releases: vec![Release {
                assignment_id: a2,
                incident_id: i2,
                unit_id: "u-01".into(),
                unit_to: None,
            }],
            note: String::new(),
        },
    );
    srv.sync(&mut a, t(31));
    srv.sync(&mut b, t(31));
    for s in [&a, &b] {
        assert!(s.conflicts().expect("c").is_empty());
        let active = query::active_assignments_of_unit(s.conn(), "u-01").expect("a");
        assert_eq!(active.iter().map(|x| x.id).collect::<Vec<_>>(), vec![a1]);
    }
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn an_edit_concurrent_with_a_close_is_a_conflict_until_resolved() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let inc = create_incident(&mut a, 1, "20261129-0001");
    srv.sync(&mut a, t(2));
    srv.sync(&mut b, t(2));
    let close = write(
        &mut a,
        t(10),
        "cmdr.li",
        OpBody::IncidentClose {
            incident_id: inc,
            disposition: Disposition::Resolved,
            summary: "done".into(),
            releases: vec![],
        },
    );
    let (asg, edit) = assign(&mut b, 11, "cmdr.wang", inc, "u-01");
    srv.sync(&mut a, t(20));
    srv.sync(&mut b, t(20));
    srv.sync(&mut a, t(21));
    let id = ConflictId::EditAfterClose {
        incident_id: inc,
        close_op: close.op_id,
        edit_op: edit.op_id,
    };
    for s in [&a, &b] {
        assert_eq!(
            s.conflict_ids().expect("ids"),
            BTreeSet::from([id.to_string()])
        );
        let row = query::incident(s.conn(), inc)
            .expect("q")
            .expect("incident");
        assert_eq!(row.disposition, Some(Disposition::Resolved));
        assert_eq!(row.closed_at, Some(t(10)));
    }
    assert_eq!(digest(&a), digest(&b));
    // b resolves it: the unit sent to the closed incident is released and available again.
    write(
        &mut b,
        t(30),
        "cmdr.wang",
        OpBody::ConflictResolve {
            conflict_id: id.to_string(),
            releases: vec![Release {
                assignment_id: asg,
                incident_id: inc,
                unit_id: "u-01".into(),
                unit_to: Some(UnitStatus::Available),
            }],
            note: "closed before the unit arrived".into(),
        },
    );
    srv.sync(&mut b, t(31));
    srv.sync(&mut a, t(31));
    for s in [&a, &b] {
        assert!(s.conflicts().expect("c").is_empty());
        let u = query::unit(s.conn(), "u-01").expect("q").expect("u");
        assert_eq!(u.status, UnitStatus::Available);
        assert_eq!(u.incident, None);
        let tl = query::timeline(s.conn(), inc).expect("timeline");
        assert!(tl.iter().any(|e| e.event
            == crate::TimelineEvent::ConflictResolved {
                conflict_id: id.to_string(),
                note: "closed before the unit arrived".into()
            }));
    }
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn the_same_set_of_ops_in_another_order_gives_the_same_state() {
    // A release applied before its assignment still ends it; status winners do not depend
    // on the order either.
    let mut a = store();
    register_unit(&mut a, 0, "u-01", "东胜01");
    let inc = create_incident(&mut a, 1, "20261129-0001");
    let (asg, _) = assign(&mut a, 2, "cmdr.li", inc, "u-01");
    write(
        &mut a,
        t(3),
        "cmdr.li",
        OpBody::UnitSetStatus {
            unit_id: "u-01".into(),
            from: UnitStatus::Dispatched,
            to: UnitStatus::EnRoute,
            releases: vec![],
        },
    );
    write(
        &mut a,
        t(4),
        "cmdr.li",
        OpBody::AssignmentRelease {
            assignment_id: asg,
            incident_id: inc,
            unit_id: "u-01".into(),
            unit_to: Some(UnitStatus::Available),
        },
    );
    let ops: Vec<OpEnvelope> = a
        .ledger()
        .expect("ledger")
        .into_iter()
        .map(|l| l.envelope)
        .collect();
    assert_eq!(ops.len(), 5);
    let gseqs: Vec<u64> = (1..=5).collect();
    // Another replica: roster and incident first, then the release before its assignment,
    // then the status change.
    let b = store();
    for i in [0, 1, 4, 2, 3] {
        crate::apply::apply_with_gseq(b.conn(), &ops[i], Some(gseqs[i])).expect("apply");
    }
    let released = query::assignments(b.conn(), inc).expect("a");
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].released_at, Some(t(4)));
    let u = query::unit(b.conn(), "u-01").expect("q").expect("u");
    assert_eq!((u.status, u.status_since), (UnitStatus::Available, t(4)));
    // The en-route entry goes to the incident the author saw the unit on, whatever the order.
    assert_eq!(
        a.state_tables().expect("a")["timeline"],
        b.state_tables().expect("b")["timeline"]
    );
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn a_parked_op_is_unapplied_and_what_depended_on_it_is_parked_too() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    srv.sync(&mut a, t(1));
    let inc = create_incident(&mut a, 2, "20261129-0001");
    write(
        &mut a,
        t(3),
        "cmdr.li",
        OpBody::TimelineAppend {
            entry_id: Uuid::now_v7(),
            incident_id: inc,
            text: "caller hung up".into(),
        },
    );
    let create_op = a.ledger().expect("l")[1].envelope.op_id;
    srv.park.insert(create_op);
    srv.sync(&mut a, t(10));
    srv.sync(&mut b, t(10));
    // The incident is gone here as on the server; both ops are parked with a reason.
    assert_eq!(query::incident(a.conn(), inc).expect("q"), None);
    assert!(query::timeline(a.conn(), inc).expect("tl").is_empty());
    let parked = a.parked().expect("parked");
    assert_eq!(
        parked
            .iter()
            .map(|p| (p.envelope.body.kind(), p.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("incident.create", "refused by the test"),
            (
                "timeline.append",
                format!("incident {inc} does not exist").as_str()
            )
        ]
    );
    let counts = a.outbox_counts().expect("counts");
    assert_eq!((counts.pending(), counts.acked, counts.parked), (0, 1, 2));
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(query::units(a.conn()).expect("u").len(), 1);
}

#[test]
fn resync_after_a_server_restore_repushes_and_takes_the_new_gseqs() {
    let (mut a, mut srv) = (store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let inc = create_incident(&mut a, 1, "20261129-0001");
    srv.sync(&mut a, t(2));
    let before = digest(&a);
    let old_gseq = a.ledger().expect("l")[1].gseq;
    assert_eq!(old_gseq, Some(2));
    // The server comes back from a backup that lost everything, in a new epoch.
    let mut restored = FakeServer::new();
    restored.gseq = outpost_domain::wire::EPOCH_GSEQ_GAP;
    let page = restored.pull(0);
    let err = a.apply_pull(&page, t(3)).expect_err("other epoch");
    assert!(matches!(err, StoreError::EpochChanged { .. }), "{err}");
    assert_eq!(a.start_resync(restored.epoch).expect("resync"), 2);
    assert_eq!(
        a.sync_state().expect("s"),
        crate::sync::SyncPosition {
            epoch: Some(restored.epoch),
            cursor: 0
        }
    );
    assert_eq!(a.outbox_counts().expect("c").pending_critical, 2);
    restored.sync(&mut a, t(4));
    assert_eq!(restored.log.len(), 2);
    let gap = outpost_domain::wire::EPOCH_GSEQ_GAP;
    assert_eq!(
        a.ledger()
            .expect("l")
            .iter()
            .map(|l| l.gseq)
            .collect::<Vec<_>>(),
        vec![Some(gap + 1), Some(gap + 2)]
    );
    assert_eq!(a.sync_state().expect("s").cursor, gap + 2);
    assert_eq!(a.outbox_counts().expect("c").acked, 2);
    assert_eq!(digest(&a), before);
    assert!(query::incident(a.conn(), inc).expect("q").is_some());
}

#[test]
fn a_snapshot_replaces_the_state_and_keeps_pending_ops() {
    let (mut a, mut srv) = (store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let inc = create_incident(&mut a, 1, "20261129-0001");
    let old_fix = Fix {
        position: LatLon {
            lat: 42.50,
            lon: 1.52,
        },
        fix_time: t(5),
        heading_deg: None,
        speed_mps: None,
        accuracy_m: Some(8.0),
    };
    write(
        &mut a,
        t(5),
        "avl",
        OpBody::PositionReport {
            unit_id: "u-01".into(),
            fix: old_fix.clone(),
        },
    );
    srv.sync(&mut a, t(6));
    // Compaction: the position op leaves the log and becomes track history.
    let (g, pos_op) = srv.log.remove(2);
    assert_eq!(g, 3);
    let snap = Snapshot {
        epoch: srv.epoch,
        gseq: srv.gseq,
        ops: srv.pull(0).ops,
        compacted_positions: vec![CompactedFix {
            unit_id: "u-01".into(),
            fix: old_fix,
            received_at_ms: pos_op.hlc.wall_ms,
        }],
    };
    // c has been offline since before everything and has one pending op of its own.
    let mut c = store();
    register_unit(&mut c, 7, "u-09", "东胜09");
    let report = c.load_snapshot(&snap, t(8)).expect("snapshot");
    assert_eq!((report.applied, report.cursor), (2, 3));
    assert_eq!(c.sync_state().expect("s").cursor, 3);
    assert_eq!(c.outbox_counts().expect("c").pending_critical, 1);
    assert!(query::incident(c.conn(), inc).expect("q").is_some());
    let units: Vec<String> = query::units(c.conn())
        .expect("u")
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(units, vec!["u-01".to_string(), "u-09".to_string()]);
    let ta = a.state_tables().expect("a");
    let tc = c.state_tables().expect("c");
    for table in [
        "incidents",
        "timeline",
        "positions",
        "unit_positions",
        "assignments",
    ] {
        assert_eq!(ta[table], tc[table], "{table}");
    }
    // Loading it twice changes nothing.
    let once = digest(&c);
    c.load_snapshot(&snap, t(9)).expect("again");
    assert_eq!(digest(&c), once);
}

#[test]
fn pulled_pages_are_idempotent_own_ops_get_their_gseq_and_newer_schemas_wait() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let ops = a.pending_batch(Lane::Critical, 10).expect("pending");
    let resp = srv.push(&ops);
    // The ack is lost; the op comes back in a pull: it counts as acknowledged.
    let page = srv.pull(0);
    let r = a.apply_pull(&page, t(1)).expect("pull");
    assert_eq!((r.applied, r.own, r.cursor), (0, 1, 1));
    assert_eq!(a.outbox_counts().expect("c").acked, 1);
    // The late ack then changes nothing.
    let p = a.record_push(Lane::Critical, &resp, t(2)).expect("push");
    assert_eq!(p.acked, 1);
    // b sees the page twice, and an op from a newer build.
    let mut future = serde_json::to_value(&ops[0]).expect("json");
    future["op_id"] = json!(Uuid::now_v7().to_string());
    future["schema"] = json!(99);
    let mut page2 = srv.pull(0);
    page2.ops.push(PulledOp {
        gseq: 2,
        op: future,
    });
    let r1 = b.apply_pull(&page2, t(3)).expect("pull");
    assert_eq!((r1.applied, r1.deferred, r1.cursor), (1, 1, 2));
    let once = digest(&b);
    let r2 = b.apply_pull(&page2, t(4)).expect("pull again");
    assert_eq!((r2.applied, r2.already, r2.cursor), (0, 1, 2));
    assert_eq!(digest(&b), once);
    assert_eq!(b.deferred_count().expect("d"), 1);
    assert_eq!(digest(&a), digest(&b));
    // Still unreadable by this build: retrying keeps it aside.
    assert_eq!(b.retry_deferred().expect("retry"), 0);
    assert_eq!(b.deferred_count().expect("d"), 1);
    // The indicator's counts (index only) agree with the full counts.
    let (full, backlog) = (
        a.outbox_counts().expect("counts"),
        a.backlog_counts().expect("backlog"),
    );
    assert_eq!(
        (backlog.pending(), backlog.parked, backlog.acked),
        (full.pending(), full.parked, 0)
    );
    assert_eq!(full.acked, 1);
    // The cursor passed it (2), but a local write has not seen it: its base stays below.
    assert_eq!(b.sync_state().expect("pos").cursor, 2);
    assert_eq!(b.next_base().expect("base"), 1);
    // A page of another epoch is refused whole.
    let mut other = srv.pull(0);
    other.epoch = Uuid::now_v7();
    assert!(matches!(
        b.apply_pull(&other, t(5)),
        Err(StoreError::EpochChanged { .. })
    ));
    assert_eq!(b.sync_state().expect("s").cursor, 2);
}

#[test]
fn base_version_is_the_cursor_and_never_goes_back() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    for n in 0..3 {
        register_unit(&mut b, n, &format!("u-0{n}"), "x");
    }
    srv.sync(&mut b, t(5));
    let first = create_incident(&mut a, 1, "20261129-0001");
    let first = a
        .ledger()
        .expect("l")
        .into_iter()
        .find(|l| merge::incident_of(&l.envelope.body) == Some(first))
        .expect("op");
    assert_eq!(first.envelope.base_version, None);
    srv.sync(&mut a, t(6));
    assert_eq!(a.next_base().expect("base"), 4);
    a.start_resync(Uuid::now_v7()).expect("resync");
    assert_eq!(a.sync_state().expect("s").cursor, 0);
    assert_eq!(a.next_base().expect("base"), 4);
    let op = set_priority(&mut a, t(7), "cmdr.li", first_id(&first), Priority::P1);
    assert_eq!(op.base_version, Some(4));
}

fn first_id(l: &crate::sync::LedgerOp) -> Uuid {
    merge::incident_of(&l.envelope.body).expect("incident op")
}

#[test]
fn lane_seqs_are_gap_free_per_lane() {
    let mut a = store();
    register_unit(&mut a, 0, "u-01", "东胜01");
    let inc = create_incident(&mut a, 1, "20261129-0001");
    for n in 0..3 {
        write(
            &mut a,
            t(2 + n),
            "avl",
            OpBody::PositionReport {
                unit_id: "u-01".into(),
                fix: Fix {
                    position: LatLon {
                        lat: 42.5,
                        lon: 1.5,
                    },
                    fix_time: t(2 + n),
                    heading_deg: None,
                    speed_mps: None,
                    accuracy_m: None,
                },
            },
        );
    }
    write(
        &mut a,
        t(9),
        "cmdr.li",
        OpBody::TimelineAppend {
            entry_id: Uuid::now_v7(),
            incident_id: inc,
            text: "note".into(),
        },
    );
    let seqs = |lane| {
        a.pending_batch(lane, 100)
            .expect("p")
            .iter()
            .map(|o| (o.seq, o.lane_seq))
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(Lane::Critical), vec![(1, 1), (2, 2)]);
    assert_eq!(seqs(Lane::Positions), vec![(3, 1), (4, 2), (5, 3)]);
    assert_eq!(seqs(Lane::Notes), vec![(6, 1)]);
    assert_eq!(a.pending_batch(Lane::Positions, 2).expect("p").len(), 2);
}

#[test]
fn pruning_keeps_pending_and_parked_ops() {
    let (mut a, mut srv) = (store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    register_unit(&mut a, 1, "u-02", "东胜02");
    let parked = a.pending_batch(Lane::Critical, 10).expect("p")[1].op_id;
    srv.park.insert(parked);
    srv.sync(&mut a, t(2));
    register_unit(&mut a, 3, "u-03", "东胜03");
    let c = a.outbox_counts().expect("c");
    assert_eq!((c.pending(), c.acked, c.parked), (1, 1, 1));
    assert_eq!(
        a.prune_acked(t(2)).expect("prune"),
        0,
        "acked at t(2), not before"
    );
    assert_eq!(a.prune_acked(t(100)).expect("prune"), 1);
    let c = a.outbox_counts().expect("c");
    assert_eq!((c.pending(), c.acked, c.parked), (1, 0, 1));
    // The ledger keeps every op.
    assert_eq!(a.ledger().expect("l").len(), 3);
}

#[test]
fn the_digest_covers_replicated_columns_only() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    srv.sync(&mut a, t(1));
    srv.sync(&mut b, t(1));
    let d = digest(&a);
    assert_eq!(d, digest(&b));
    assert_eq!(d.len(), crate::digest::TABLES.len());
    assert!(d.values().all(|h| h.len() == 64));
    // Local bookkeeping does not count…
    a.conn()
        .execute("UPDATE units SET status_version = 99", [])
        .expect("bump");
    assert_eq!(digest(&a), d);
    // …a replicated value does.
    a.conn()
        .execute("UPDATE units SET callsign = 'x'", [])
        .expect("change");
    let changed = digest(&a);
    assert_ne!(changed["units"], d["units"]);
    assert_eq!(changed["incidents"], d["incidents"]);
    let rows = b.state_tables().expect("t");
    assert_eq!(
        crate::digest::render(&rows["units"]),
        format!(
            "u-01\t{{\"callsign\":\"东胜01\",\"home_station\":null,\"id\":\"u-01\",\
             \"kind\":\"patrol_car\",\"status\":\"available\",\"status_since\":{}}}\n",
            t(0).timestamp_millis()
        )
    );
}

#[test]
fn closes_conflict_only_on_different_dispositions_and_roster_writes_merge() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let i1 = create_incident(&mut a, 1, "20261129-0001");
    let i2 = create_incident(&mut a, 2, "20261129-0002");
    srv.sync(&mut a, t(3));
    srv.sync(&mut b, t(3));
    let close = |s: &mut Store, at: i64, inc: Uuid, d: Disposition, summary: &str| {
        write(
            s,
            t(at),
            "cmdr",
            OpBody::IncidentClose {
                incident_id: inc,
                disposition: d,
                summary: summary.into(),
                releases: vec![],
            },
        )
    };
    // Same disposition, different summaries: no conflict; different dispositions: conflict.
    close(&mut a, 10, i1, Disposition::Arrest, "one arrest");
    close(&mut b, 11, i1, Disposition::Arrest, "one arrested");
    close(&mut a, 12, i2, Disposition::Resolved, "");
    close(&mut b, 13, i2, Disposition::Referred, "to the fire service");
    // The roster: concurrent renames, the later HLC shows (no conflict: not critical).
    write(
        &mut a,
        t(14),
        "admin",
        OpBody::UnitRegister {
            unit_id: "u-01".into(),
            callsign: "东胜01A".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
    write(
        &mut b,
        t(15),
        "admin",
        OpBody::UnitRegister {
            unit_id: "u-01".into(),
            callsign: "东胜01B".into(),
            unit_kind: UnitKind::Motorcycle,
            home_station: Some("stn-north".into()),
        },
    );
    srv.sync(&mut a, t(20));
    srv.sync(&mut b, t(20));
    srv.sync(&mut a, t(21));
    assert_eq!(digest(&a), digest(&b));
    for s in [&a, &b] {
        assert_eq!(
            s.conflict_ids().expect("ids"),
            BTreeSet::from([ConflictId::Field {
                incident_id: i2,
                register: Register::Closure
            }
            .to_string()])
        );
        let r1 = query::incident(s.conn(), i1).expect("q").expect("i1");
        assert_eq!(
            (r1.closed_at, r1.summary.as_deref()),
            (Some(t(11)), Some("one arrested"))
        );
        let r2 = query::incident(s.conn(), i2).expect("q").expect("i2");
        assert_eq!(r2.disposition, Some(Disposition::Referred));
        let u = query::unit(s.conn(), "u-01").expect("q").expect("u");
        assert_eq!(
            (u.callsign.as_str(), u.kind, u.home_station.as_deref()),
            ("东胜01B", UnitKind::Motorcycle, Some("stn-north"))
        );
        // Still available since its first registration.
        assert_eq!((u.status, u.status_since), (UnitStatus::Available, t(0)));
    }
}

#[test]
fn a_database_from_before_the_merge_rules_is_indexed_on_upgrade() {
    // A version-4 database: one unit registered (outbox + state), the envelope written
    // before `releases` existed.
    let mut other = store();
    register_unit(&mut other, 0, "u-01", "东胜01");
    let row = query::outbox_all(other.conn()).expect("o").remove(0);
    let mut old = serde_json::to_value(&row.envelope).expect("json");
    if let Some(o) = old.as_object_mut() {
        o.remove("lane_seq");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    {
        let mut c = rusqlite::Connection::open(&path).expect("raw open");
        let mut first = crate::schema::all();
        first.truncate(4);
        rusqlite_migration::Migrations::new(first)
            .to_latest(&mut c)
            .expect("migrate to v4");
        c.execute(
            "INSERT INTO outbox(seq, op_id, origin, lane, kind, hlc_wall_ms, hlc_logical,
                                envelope, created_at, lane_seq)
             VALUES (1, ?1, ?2, 'critical', 'unit.register', ?3, 0, ?4, ?3, 1)",
            rusqlite::params![
                row.envelope.op_id.to_string(),
                row.envelope.origin.to_string(),
                t(0).timestamp_millis(),
                old.to_string(),
            ],
        )
        .expect("outbox row");
        c.execute(
            "INSERT INTO applied_ops(op_id) VALUES (?1)",
            [row.envelope.op_id.to_string()],
        )
        .expect("ledger row");
        c.execute(
            "INSERT INTO units(id, callsign, kind, status, status_since)
             VALUES ('u-01', '东胜01', 'patrol_car', 'available', ?1)",
            [t(0).timestamp_millis()],
        )
        .expect("unit row");
    }
    let s = Store::open(&path, t(1)).expect("upgrade");
    let ledger = s.ledger().expect("ledger");
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].envelope.lane_seq, 1);
    assert!(ledger[0].applied);
    let w = crate::apply::register_winner(s.conn(), "u-01", Register::UnitRoster)
        .expect("winner")
        .expect("roster write");
    assert_eq!(w.value["callsign"], json!("东胜01"));
    assert_eq!(digest(&s), digest(&other));
}

#[test]
fn the_hlc_follows_a_remote_stamp_only_when_it_is_not_far_ahead() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    register_unit(&mut a, 100, "u-01", "东胜01");
    srv.sync(&mut a, t(100));
    // b's clock is 60 s behind a's: b's next op is stamped after a's.
    srv.sync(&mut b, t(40));
    let next = write(
        &mut b,
        t(41),
        "admin",
        OpBody::UnitRegister {
            unit_id: "u-02".into(),
            callsign: "东胜02".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
    assert_eq!(next.hlc.wall_ms, t(100).timestamp_millis());
    assert_eq!(next.hlc.logical, 2);
    // A stamp more than five minutes ahead is not followed.
    let mut c = store();
    srv.sync(
        &mut c,
        t(100) - Duration::milliseconds(crate::sync::MAX_HLC_LEAD_MS + 1),
    );
    let own = write(
        &mut c,
        t(50),
        "admin",
        OpBody::UnitRegister {
            unit_id: "u-03".into(),
            callsign: "东胜03".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
    assert_eq!(own.hlc.wall_ms, t(50).timestamp_millis());
}

#[test]
fn an_op_kept_aside_for_something_missing_applies_once_it_exists() {
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    let inc = create_incident(&mut a, 1, "20261129-0001");
    set_priority(&mut a, t(2), "cmdr.li", inc, Priority::P1);
    srv.sync(&mut a, t(3));
    // b gets the change without the create (as if the create could not be read).
    let mut page = srv.pull(0);
    let create = page.ops.remove(0);
    let r = b.apply_pull(&page, t(4)).expect("pull");
    assert_eq!((r.applied, r.deferred, r.cursor), (0, 1, 2));
    let op: OpEnvelope = serde_json::from_value(create.op).expect("op");
    crate::apply::apply_with_gseq(b.conn(), &op, Some(create.gseq)).expect("create");
    assert_eq!(b.retry_deferred().expect("retry"), 1);
    assert_eq!(b.deferred_count().expect("d"), 0);
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn resend_from_puts_the_lanes_acked_ops_back_to_pending() {
    let (mut a, mut srv) = (store(), FakeServer::new());
    for n in 1..=3 {
        register_unit(&mut a, n, &format!("u-0{n}"), "x");
    }
    srv.sync(&mut a, t(5));
    assert_eq!(a.outbox_counts().expect("c").acked, 3);
    let resp = PushResponse {
        epoch: srv.epoch,
        results: vec![],
        resend_from: Some(2),
        high_water: 1,
        server_gseq: srv.gseq,
    };
    let r = a.record_push(Lane::Critical, &resp, t(6)).expect("record");
    assert_eq!(r.resend_from, Some(2));
    let again: Vec<u64> = a
        .pending_batch(Lane::Critical, 10)
        .expect("p")
        .iter()
        .map(|o| o.lane_seq)
        .collect();
    assert_eq!(again, vec![2, 3]);
    // Re-sent, they are duplicates on the server and acked again.
    srv.sync(&mut a, t(7));
    assert_eq!(a.outbox_counts().expect("c").acked, 3);
    assert_eq!(srv.log.len(), 3);
}

#[test]
fn two_fixes_of_a_unit_at_one_instant_resolve_the_same_in_any_order() {
    // Different fixes at one fix time, and the same fix relayed twice (equal values, other
    // receive times): the greater (lat, lon, heading, speed, accuracy, received_at) is kept,
    // a missing value lowest, whatever the arrival order; the latest position follows it.
    let mut a = store();
    register_unit(&mut a, 0, "u-01", "东胜01");
    let fix = |lat: f64, heading: Option<f64>, secs: i64| Fix {
        position: LatLon { lat, lon: 1.5 },
        fix_time: t(secs),
        heading_deg: heading,
        speed_mps: None,
        accuracy_m: Some(5.0),
    };
    let report = |f: Fix| OpBody::PositionReport {
        unit_id: "u-01".into(),
        fix: f,
    };
    write(&mut a, t(10), "avl", report(fix(42.5, Some(90.0), 60)));
    write(&mut a, t(11), "avl", report(fix(42.5, None, 60)));
    write(&mut a, t(12), "avl", report(fix(42.4, Some(180.0), 60)));
    write(&mut a, t(13), "avl", report(fix(42.7, None, 120)));
    write(&mut a, t(14), "avl", report(fix(42.7, None, 120)));
    let ops: Vec<OpEnvelope> = a
        .ledger()
        .expect("ledger")
        .into_iter()
        .map(|l| l.envelope)
        .collect();
    assert_eq!(ops.len(), 6);
    let b = store();
    for i in [0, 5, 4, 3, 2, 1] {
        crate::apply::apply_with_gseq(b.conn(), &ops[i], Some(i as u64 + 1)).expect("apply");
    }
    let row = |s: &Store, secs: i64| -> (f64, Option<f64>, i64) {
        s.conn()
            .query_row(
                "SELECT lat, heading_deg, received_at FROM positions
                 WHERE unit_id = 'u-01' AND fix_time = ?1",
                [t(secs).timestamp_millis()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("fix")
    };
    for s in [&a, &b] {
        assert_eq!(row(s, 60), (42.5, Some(90.0), t(10).timestamp_millis()));
        assert_eq!(row(s, 120), (42.7, None, t(14).timestamp_millis()));
        let latest: (i64, f64) = s
            .conn()
            .query_row(
                "SELECT fix_time, lat FROM unit_positions WHERE unit_id = 'u-01'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("latest");
        assert_eq!(latest, (t(120).timestamp_millis(), 42.7));
    }
    assert_eq!(digest(&a), digest(&b));
    // A rebuild (the un-apply path) keeps the same rows.
    let before = digest(&b);
    let mut b = b;
    b.rebuild().expect("rebuild");
    assert_eq!(digest(&b), before);
}

#[test]
fn a_parked_op_whose_outcome_the_server_lost_is_sent_again_and_applied_if_accepted() {
    // The server parked a note, then was restored from a backup taken before: it asks for
    // the lane again from the note's lane_seq. The parked note goes back to pending (a lane
    // never waits for a lane_seq the console holds back); accepted this time, it is applied.
    let mut a = store();
    let epoch = Uuid::now_v7();
    let inc = create_incident(&mut a, 1, "20261129-0001");
    let entry = Uuid::now_v7();
    let note = write(
        &mut a,
        t(2),
        "cmdr.li",
        OpBody::TimelineAppend {
            entry_id: entry,
            incident_id: inc,
            text: "second crew".into(),
        },
    );
    let answer = |results: Vec<OpResult>, resend_from: Option<u64>| PushResponse {
        epoch,
        results,
        resend_from,
        high_water: 0,
        server_gseq: 1,
    };
    let shown = |s: &Store| {
        query::timeline(s.conn(), inc)
            .expect("timeline")
            .iter()
            .any(|e| e.id == entry.to_string())
    };
    assert!(shown(&a));
    let create = a.pending_batch(Lane::Critical, 1).expect("pending")[0].op_id;
    a.record_push(
        Lane::Critical,
        &answer(
            vec![OpResult {
                op_id: create,
                lane_seq: 1,
                outcome: Outcome::Accepted { gseq: 1 },
            }],
            None,
        ),
        t(3),
    )
    .expect("incident acked");
    let r = a
        .record_push(
            Lane::Notes,
            &answer(
                vec![OpResult {
                    op_id: note.op_id,
                    lane_seq: 1,
                    outcome: Outcome::Parked {
                        reason: "refused".into(),
                    },
                }],
                None,
            ),
            t(3),
        )
        .expect("parked");
    assert!(r.rebuilt);
    assert!(!shown(&a));
    assert_eq!(a.parked().expect("parked").len(), 1);

    a.record_push(Lane::Notes, &answer(vec![], Some(1)), t(4))
        .expect("resend_from");
    assert_eq!(a.parked().expect("parked").len(), 0);
    let again = a.pending_batch(Lane::Notes, 10).expect("pending");
    assert_eq!(
        again.iter().map(|o| o.op_id).collect::<Vec<_>>(),
        [note.op_id]
    );

    let r = a
        .record_push(
            Lane::Notes,
            &answer(
                vec![OpResult {
                    op_id: note.op_id,
                    lane_seq: 1,
                    outcome: Outcome::Accepted { gseq: 7 },
                }],
                None,
            ),
            t(5),
        )
        .expect("accepted");
    assert!(r.rebuilt);
    assert!(shown(&a), "accepted now: applied again");
    assert_eq!(a.gseq_of(note.op_id).expect("gseq"), Some(7));
    let counts = a.outbox_counts().expect("counts");
    assert_eq!((counts.pending(), counts.parked), (0, 0));
}

#[test]
fn a_pending_op_skipped_by_a_rebuild_is_applied_once_the_server_accepts_it() {
    // b edits an incident it pulled; the server is restored to before the incident and b
    // loads its (empty) snapshot: the rebuild skips the pending edit (no incident here now).
    // a re-pushes the incident, b's edit is accepted, b pulls both: the edit applies on b
    // too (found by outpost-check S1 with restores).
    let (mut a, mut b, mut srv) = (store(), store(), FakeServer::new());
    let inc = create_incident(&mut a, 1, "20261129-0001");
    srv.sync(&mut a, t(2));
    srv.sync(&mut b, t(2));
    set_priority(&mut b, t(3), "cmdr.wang", inc, Priority::P1);
    let mut restored = FakeServer::new();
    let empty = Snapshot {
        epoch: restored.epoch,
        gseq: 0,
        ops: vec![],
        compacted_positions: vec![],
    };
    b.load_snapshot(&empty, t(4)).expect("snapshot");
    assert!(query::incident(b.conn(), inc).expect("q").is_none());
    assert_eq!(b.outbox_counts().expect("c").pending_critical, 1);
    a.start_resync(restored.epoch).expect("resync");
    restored.sync(&mut a, t(5));
    restored.sync(&mut b, t(6));
    restored.sync(&mut a, t(7));
    let shown = query::incident(b.conn(), inc)
        .expect("q")
        .expect("incident on b");
    assert_eq!(shown.priority, Priority::P1, "b's own edit applies on b");
    assert_eq!(b.outbox_counts().expect("c").pending(), 0);
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn a_snapshot_from_another_epoch_repushes_the_acked_ops_the_restore_lost() {
    // a's ops are acked; the server is restored from a backup that lost them, in a new epoch,
    // and compacted, so a's next pull gets a snapshot (without them) instead of a 409: a must
    // push them again, as after a resync (found by outpost-check S1 with restores: I1).
    let (mut a, mut srv) = (store(), FakeServer::new());
    register_unit(&mut a, 0, "u-01", "东胜01");
    let inc = create_incident(&mut a, 1, "20261129-0001");
    srv.sync(&mut a, t(2));
    assert_eq!(a.outbox_counts().expect("c").acked, 2);
    let before = digest(&a);
    // A snapshot of the same epoch changes nothing in the outbox.
    let same = Snapshot {
        epoch: srv.epoch,
        gseq: srv.gseq,
        ops: srv.pull(0).ops,
        compacted_positions: vec![],
    };
    a.load_snapshot(&same, t(3)).expect("same-epoch snapshot");
    assert_eq!(a.outbox_counts().expect("c").acked, 2);
    assert_eq!(digest(&a), before);
    let gap = outpost_domain::wire::EPOCH_GSEQ_GAP;
    let mut restored = FakeServer::new();
    restored.gseq = gap;
    let lost = Snapshot {
        epoch: restored.epoch,
        gseq: gap,
        ops: vec![],
        compacted_positions: vec![],
    };
    a.load_snapshot(&lost, t(4))
        .expect("snapshot of the restored server");
    let counts = a.outbox_counts().expect("c");
    assert_eq!((counts.pending_critical, counts.acked), (2, 0));
    assert!(
        query::incident(a.conn(), inc).expect("q").is_some(),
        "own ops stay applied while they wait"
    );
    assert_eq!(a.next_base().expect("base"), gap);
    restored.sync(&mut a, t(5));
    assert_eq!(restored.log.len(), 2);
    assert_eq!(a.outbox_counts().expect("c").acked, 2);
    assert_eq!(a.sync_state().expect("s").cursor, gap + 2);
    assert_eq!(digest(&a), before);
}
