//! The reference model and the checker on hand-built ops (no store, no server).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use uuid::Uuid;

use outpost_check::check::shuffle;
use outpost_check::{
    Author, CursorObservation, Model, OutboxEntry, OutboxState, Replica, ServerDump,
    check_invariants,
};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::op::{Fix, IncidentFields, OpBody, OpEnvelope, Release};
use outpost_domain::unit::{UnitKind, UnitStatus};

const T0: i64 = 1_764_410_400_000; // 2025-11-29T10:00:00Z

pub fn inc(n: u128) -> Uuid {
    Uuid::from_u128(0xAAAA_0000 + n)
}

pub fn create(n: u128) -> OpBody {
    OpBody::IncidentCreate {
        incident_id: inc(n),
        number: format!("20261129-{n:04}"),
        incident_type: IncidentType::Theft,
        priority: Priority::P3,
        location: LatLon {
            lat: 42.5,
            lon: 1.52,
        },
        address: "Av. Meritxell 1".into(),
        description: "bike stolen".into(),
    }
}

pub fn register(unit: &str) -> OpBody {
    OpBody::UnitRegister {
        unit_id: unit.into(),
        callsign: format!("东胜{unit}"),
        unit_kind: UnitKind::PatrolCar,
        home_station: None,
    }
}

pub fn priority(n: u128, p: Priority) -> OpBody {
    OpBody::IncidentSetFields {
        incident_id: inc(n),
        fields: IncidentFields {
            priority: Some(p),
            ..IncidentFields::default()
        },
    }
}

fn assign(a: u128, n: u128, unit: &str) -> OpBody {
    OpBody::AssignmentAdd {
        assignment_id: Uuid::from_u128(0xBBBB_0000 + a),
        incident_id: inc(n),
        unit_id: unit.into(),
    }
}

fn release(a: u128, n: u128, unit: &str, to: Option<UnitStatus>) -> Release {
    Release {
        assignment_id: Uuid::from_u128(0xBBBB_0000 + a),
        incident_id: inc(n),
        unit_id: unit.into(),
        unit_to: to,
    }
}

fn close(n: u128, d: Disposition, summary: &str, releases: Vec<Release>) -> OpBody {
    OpBody::IncidentClose {
        incident_id: inc(n),
        disposition: d,
        summary: summary.into(),
        releases,
    }
}

/// A "server": gives gseqs in the order ops are accepted.
#[derive(Default)]
struct Log {
    ops: Vec<(u64, OpEnvelope)>,
}

impl Log {
    fn accept(&mut self, op: OpEnvelope) -> u64 {
        let g = self.ops.len() as u64 + 1;
        self.ops.push((g, op));
        g
    }
    fn model(&self) -> Model {
        Model::from_ops(self.ops.iter().map(|(g, op)| (op.clone(), Some(*g))))
    }
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

#[test]
fn concurrent_priorities_conflict_and_an_informed_write_resolves() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0 + 3 * 3_600_000); // clock 3 h ahead
    let g1 = log.accept(a.op(create(1)));
    b.saw(g1);
    let pa = a.op(priority(1, Priority::P1));
    let pb = b.op(priority(1, Priority::P2));
    let ga = log.accept(pa);
    log.accept(pb.clone());
    let m = log.model();
    let conflict = format!("field:{}:priority", inc(1));
    assert_eq!(m.conflicts(), set(std::slice::from_ref(&conflict)));
    // b saw the create (base 1); a had pulled nothing (base 0): b's write is ordered last.
    let s = m.state();
    let row = s.row("incidents", &inc(1).to_string()).expect("incident");
    assert_eq!(row["priority"], json!("P2"));

    // a sees everything and writes P1 again: informed, it resolves the conflict and wins
    // although a's clock is 3 h behind b's.
    a.saw(ga + 1);
    log.accept(a.op(priority(1, Priority::P1)));
    let m = log.model();
    assert!(m.conflicts().is_empty(), "{:?}", m.conflicts());
    let s = m.state();
    assert_eq!(
        s.row("incidents", &inc(1).to_string()).expect("incident")["priority"],
        json!("P1")
    );
    // Timeline: create + three field changes, at the ops' HLC wall times.
    assert_eq!(s.table("timeline").count(), 4);
    assert_eq!(
        s.row("timeline", &pb.op_id.to_string()).expect("entry")["at"],
        json!(T0 + 3 * 3_600_000)
    );
}

#[test]
fn equal_concurrent_values_and_plain_fields_do_not_conflict() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0);
    let g = log.accept(a.op(create(1)));
    b.saw(g);
    a.saw(g);
    log.accept(a.op(priority(1, Priority::P1)));
    log.accept(b.op(priority(1, Priority::P1)));
    let addr = |s: &str| OpBody::IncidentSetFields {
        incident_id: inc(1),
        fields: IncidentFields {
            address: Some(s.into()),
            ..IncidentFields::default()
        },
    };
    a.tick(10);
    log.accept(a.op(addr("Carrer A")));
    log.accept(b.op(addr("Carrer B")));
    let m = log.model();
    assert!(m.conflicts().is_empty(), "{:?}", m.conflicts());
    // Same base; a's HLC is later (ticked 10 ms) → a wins the address register.
    let s = m.state();
    let row = s.row("incidents", &inc(1).to_string()).expect("incident");
    assert_eq!(row["address"], json!("Carrer A"));
    assert_eq!(row["priority"], json!("P1"));
}

#[test]
fn double_assignment_is_a_conflict_until_one_is_released() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0);
    log.accept(a.op(register("u-01")));
    log.accept(a.op(create(1)));
    let g = log.accept(a.op(create(2)));
    b.saw(g);
    a.saw(g);
    log.accept(a.op(assign(1, 1, "u-01")));
    let g = log.accept(b.op(assign(2, 2, "u-01")));
    let m = log.model();
    assert_eq!(m.conflicts(), set(&["double:u-01".to_string()]));
    let s = m.state();
    assert_eq!(
        s.row("units", "u-01").expect("unit")["status"],
        json!("dispatched")
    );

    // b releases its own assignment, having seen both: the conflict is gone everywhere.
    b.saw(g);
    let rel = b.op(OpBody::AssignmentRelease {
        assignment_id: Uuid::from_u128(0xBBBB_0002),
        incident_id: inc(2),
        unit_id: "u-01".into(),
        unit_to: None,
    });
    log.accept(rel.clone());
    let m = log.model();
    assert!(m.conflicts().is_empty());
    let s = m.state();
    let asg = s
        .row("assignments", &Uuid::from_u128(0xBBBB_0002).to_string())
        .expect("assignment");
    assert_eq!(asg["released_at"], json!(rel.hlc.wall_ms));
    assert_eq!(asg["released_by"], json!("b"));
    assert_eq!(
        s.row("units", "u-01").expect("unit")["status"],
        json!("dispatched")
    );
}

#[test]
fn a_release_before_its_add_still_ends_the_assignment() {
    let mut a = Author::new(1, "a", T0);
    let r = a.op(register("u-01"));
    let c = a.op(create(1));
    let add = a.op(assign(1, 1, "u-01"));
    let cl = a.op(close(
        1,
        Disposition::Resolved,
        "",
        vec![release(1, 1, "u-01", Some(UnitStatus::Available))],
    ));
    // Fed in reverse: the close (with its release) before the add.
    let m = Model::from_ops([
        (cl.clone(), Some(4)),
        (add, Some(3)),
        (c, Some(2)),
        (r, Some(1)),
    ]);
    assert!(m.active_assignments().is_empty());
    let s = m.state();
    let unit = s.row("units", "u-01").expect("unit");
    assert_eq!(unit["status"], json!("available"));
    assert_eq!(unit["status_since"], json!(cl.hlc.wall_ms));
    let i = s.row("incidents", &inc(1).to_string()).expect("incident");
    assert_eq!(i["disposition"], json!("resolved"));
    assert_eq!(i["closed_by"], json!("a"));
}

#[test]
fn an_edit_concurrent_with_a_close_conflicts_until_resolved() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0);
    let g = log.accept(a.op(create(1)));
    a.saw(g);
    b.saw(g);
    let edit_seen = a.op(priority(1, Priority::P1)); // a's own edit, before its close
    log.accept(edit_seen);
    let cl = a.op(close(1, Disposition::ReportTaken, "done", vec![]));
    let edit = b.op(OpBody::IncidentSetFields {
        incident_id: inc(1),
        fields: IncidentFields {
            description: Some("two bikes".into()),
            ..IncidentFields::default()
        },
    });
    log.accept(cl.clone());
    let ge = log.accept(edit.clone());
    let id = format!("closed:{}:{}:{}", inc(1), cl.op_id, edit.op_id);
    let m = log.model();
    assert_eq!(m.conflicts(), set(std::slice::from_ref(&id)));
    b.saw(ge);
    log.accept(b.op(OpBody::ConflictResolve {
        conflict_id: id.clone(),
        releases: vec![],
        note: "keep closed".into(),
    }));
    let m = log.model();
    assert!(m.conflicts().is_empty(), "{:?}", m.conflicts());
    // The resolution is on the incident's timeline.
    let s = m.state();
    assert!(
        s.table("timeline")
            .any(|(_, r)| r["event"]["kind"] == json!("conflict_resolved")
                && r["event"]["conflict_id"] == json!(id))
    );
}

#[test]
fn same_disposition_closes_do_not_conflict_different_ones_do() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0 + 5);
    let g = log.accept(a.op(create(1)));
    log.accept(a.op(create(2)));
    a.saw(g + 1);
    b.saw(g + 1);
    log.accept(a.op(close(1, Disposition::Arrest, "x", vec![])));
    log.accept(b.op(close(1, Disposition::Arrest, "y", vec![])));
    log.accept(a.op(close(2, Disposition::Arrest, "x", vec![])));
    log.accept(b.op(close(2, Disposition::Unfounded, "y", vec![])));
    let m = log.model();
    assert_eq!(m.conflicts(), set(&[format!("field:{}:closure", inc(2))]));
    let s = m.state();
    // b's clock is 5 ms ahead: with equal bases its close is the winner.
    assert_eq!(
        s.row("incidents", &inc(1).to_string()).expect("incident")["summary"],
        json!("y")
    );
}

#[test]
fn a_late_old_fix_joins_the_history_but_not_the_latest_position() {
    let mut a = Author::new(1, "a", T0);
    let fix = |s: i64, lat: f64| OpBody::PositionReport {
        unit_id: "u-01".into(),
        fix: Fix {
            position: LatLon { lat, lon: 1.5 },
            fix_time: chrono::DateTime::from_timestamp_millis(T0 + s * 1000).expect("time"),
            heading_deg: None,
            speed_mps: Some(3.0),
            accuracy_m: None,
        },
    };
    let r = a.op(register("u-01"));
    let new = a.op(fix(60, 42.6));
    let old = a.op(fix(10, 42.4));
    let m = Model::from_ops([(r, Some(1)), (old, Some(3)), (new, Some(2))]);
    let s = m.state();
    assert_eq!(s.table("positions").count(), 2);
    let latest = s.row("unit_positions", "u-01").expect("latest");
    assert_eq!(latest["lat"], json!(42.6));
    assert_eq!(latest["fix_time"], json!(T0 + 60_000));
}

#[test]
fn state_and_conflicts_do_not_depend_on_insert_order() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0 - 3 * 3_600_000);
    log.accept(a.op(register("u-01")));
    log.accept(a.op(register("u-02")));
    let g = log.accept(a.op(create(1)));
    b.saw(g);
    log.accept(a.op(assign(1, 1, "u-01")));
    log.accept(b.op(assign(2, 1, "u-01")));
    log.accept(b.op(priority(1, Priority::P1)));
    log.accept(a.op(close(
        1,
        Disposition::Resolved,
        "",
        vec![release(1, 1, "u-01", Some(UnitStatus::Available))],
    )));
    log.accept(b.op(OpBody::TimelineAppend {
        entry_id: Uuid::from_u128(77),
        incident_id: inc(1),
        text: "note".into(),
    }));
    let reference = log.model();
    for seed in 0..20 {
        let mut ops = log.ops.clone();
        shuffle(&mut ops, seed);
        // Duplicates too: each op inserted twice, the second time without its gseq.
        let mut m = Model::new();
        for (g, op) in &ops {
            m.insert(op.clone(), Some(*g));
        }
        for (_, op) in &ops {
            assert!(!m.insert(op.clone(), None));
        }
        assert_eq!(m.state(), reference.state(), "seed {seed}");
        assert_eq!(m.conflicts(), reference.conflicts(), "seed {seed}");
    }
    // b's assignment and b's priority change were concurrent with a's close: two
    // edit-after-close conflicts; a's assignment was released by the close; b's is still
    // active (one: no double).
    let c = reference.conflicts();
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c.iter().all(|x| x.starts_with("closed:")), "{c:?}");
    assert_eq!(reference.active_assignments().len(), 1);
}

fn replica(name: &str, outbox: Vec<OutboxEntry>) -> Replica {
    Replica {
        name: name.into(),
        outbox,
        ..Replica::default()
    }
}

#[test]
fn checker_reports_each_invariant() {
    let mut a = Author::new(1, "a", T0);
    let r = a.op(register("u-01"));
    let c = a.op(create(1));
    let n = a.op(OpBody::TimelineAppend {
        entry_id: Uuid::from_u128(5),
        incident_id: inc(1),
        text: "x".into(),
    });
    let lost = a.op(priority(1, Priority::P1));
    let acked = |op: &OpEnvelope| OutboxEntry {
        op: op.clone(),
        state: OutboxState::Acked,
    };
    // A clean run: nothing to report.
    let good = ServerDump {
        log: vec![(1, r.clone()), (2, c.clone()), (3, n.clone())],
        ..ServerDump::default()
    };
    let model = Model::from_ops(good.log.iter().map(|(g, o)| (o.clone(), Some(*g))));
    let mut rep = replica("console 1", vec![acked(&r), acked(&c), acked(&n)]);
    rep.state = Some(model.state());
    rep.cursors = vec![
        CursorObservation {
            epoch: None,
            cursor: 0,
        },
        CursorObservation {
            epoch: Some(Uuid::from_u128(9)),
            cursor: 3,
        },
    ];
    assert_eq!(
        check_invariants(&good, std::slice::from_ref(&rep), 1),
        vec![]
    );

    // I1: an acked op missing from the log; I2: an op twice; I5: cursor back; I6: the note
    // ordered before the incident's creation.
    let bad = ServerDump {
        log: vec![
            (1, r.clone()),
            (2, n.clone()),
            (3, c.clone()),
            (4, r.clone()),
        ],
        ..ServerDump::default()
    };
    let mut rep2 = rep.clone();
    rep2.outbox.push(acked(&lost));
    rep2.cursors.push(CursorObservation {
        epoch: Some(Uuid::from_u128(9)),
        cursor: 2,
    });
    let found = check_invariants(&bad, &[rep2], 1);
    let kinds: BTreeMap<&str, usize> = found.iter().fold(BTreeMap::new(), |mut m, v| {
        *m.entry(v.invariant).or_default() += 1;
        m
    });
    for i in ["I1", "I2", "I5", "I6"] {
        assert!(kinds.contains_key(i), "{i} not reported: {found:?}");
    }
    // I3: the replica's state differs from the model of the log (it lacks the note).
    let mut rep3 = rep.clone();
    let partial = Model::from_ops([(r.clone(), Some(1)), (c.clone(), Some(2))]);
    rep3.state = Some(partial.state());
    let found = check_invariants(&good, &[rep3], 1);
    assert!(
        found
            .iter()
            .any(|v| v.invariant == "I3" && v.detail.contains("timeline")),
        "{found:?}"
    );
}

#[test]
fn a_status_change_is_on_the_timelines_of_the_incidents_its_author_saw() {
    let mut log = Log::default();
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0);
    log.accept(a.op(register("u-01")));
    log.accept(a.op(create(1)));
    let g = log.accept(a.op(create(2)));
    a.saw(g);
    b.saw(g);
    log.accept(a.op(assign(1, 1, "u-01")));
    // b assigns the same unit to incident 2 without having seen a's assignment.
    log.accept(b.op(assign(2, 2, "u-01")));
    // a moves the unit en route: a saw only its own assignment (incident 1).
    let st = a.op(OpBody::UnitSetStatus {
        unit_id: "u-01".into(),
        from: UnitStatus::Dispatched,
        to: UnitStatus::EnRoute,
        releases: vec![],
    });
    log.accept(st.clone());
    let s = log.model().state();
    let entry = s.row("timeline", &st.op_id.to_string()).expect("entry");
    assert_eq!(entry["incident_id"], json!(inc(1).to_string()));
    assert_eq!(entry["event"]["kind"], json!("unit_status"));
    assert!(s.row("timeline", &format!("{}+1", st.op_id)).is_none());
    // A clear with explicit releases names both incidents.
    let g = log.ops.len() as u64;
    b.saw(g);
    let clear = b.op(OpBody::UnitSetStatus {
        unit_id: "u-01".into(),
        from: UnitStatus::EnRoute,
        to: UnitStatus::Busy,
        releases: vec![release(1, 1, "u-01", None), release(2, 2, "u-01", None)],
    });
    log.accept(clear.clone());
    let s = log.model().state();
    assert_eq!(
        s.row("timeline", &format!("{}+1", clear.op_id))
            .expect("second entry")["incident_id"],
        json!(inc(2).to_string())
    );
    assert_eq!(
        s.row("units", "u-01").expect("unit")["status"],
        json!("busy")
    );
    assert!(log.model().conflicts().is_empty());
}

/// serde_json must read back exactly the f64 it wrote, or the author of a position (which
/// applies its own in-memory value) and every other replica (which apply the value parsed
/// from the op's JSON) disagree in the last bit — found by S1 (`lon` 1.5054400000000001 on
/// the author, 1.50544 on the server). Needs serde_json's `float_roundtrip` feature.
#[test]
fn coordinates_survive_the_json_round_trip_bit_for_bit() {
    let mut bad = Vec::new();
    for k in -1000..1000 {
        let lon = 1.5 + f64::from(k) * 1e-5;
        let text = serde_json::to_string(&lon).expect("json");
        let back: f64 = serde_json::from_str(&text).expect("parse");
        if back.to_bits() != lon.to_bits() {
            bad.push((lon, text, back));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 2000 differ, e.g. {:?}",
        bad.len(),
        bad.first()
    );
}

#[test]
fn compacted_fixes_stay_in_the_track_history() {
    let mut a = Author::new(1, "a", T0);
    let r = a.op(register("u-01"));
    let fix = |s: i64| Fix {
        position: LatLon {
            lat: 42.5,
            lon: 1.5,
        },
        fix_time: chrono::DateTime::from_timestamp_millis(T0 + s * 1000).expect("time"),
        heading_deg: Some(90.0),
        speed_mps: None,
        accuracy_m: None,
    };
    let newest = a.op(OpBody::PositionReport {
        unit_id: "u-01".into(),
        fix: fix(30),
    });
    let mut m = Model::from_ops([(r, Some(1)), (newest, Some(3))]);
    m.insert_compacted(&outpost_domain::wire::CompactedFix {
        unit_id: "u-01".into(),
        fix: fix(10),
        received_at_ms: T0 + 11_000,
    });
    // A compacted fix of a unit nobody registered is not shown (the store does the same).
    m.insert_compacted(&outpost_domain::wire::CompactedFix {
        unit_id: "u-99".into(),
        fix: fix(10),
        received_at_ms: T0,
    });
    let s = m.state();
    assert_eq!(s.table("positions").count(), 2);
    let old = s
        .row("positions", &format!("u-01@{}", T0 + 10_000))
        .expect("compacted fix");
    assert_eq!(old["received_at"], json!(T0 + 11_000));
    assert_eq!(old["heading_deg"], json!(90.0));
    assert_eq!(
        s.row("unit_positions", "u-01").expect("latest")["fix_time"],
        json!(T0 + 30_000)
    );
}

/// Contract gap (merge.rs causality × wire.rs epochs), reported, not fixed here: after a
/// server restore, ops lost by the backup are re-pushed and get new gseqs (the old numbering
/// plus `EPOCH_GSEQ_GAP`), but the `base_version`s written before the restore still name old
/// numbers. "a.gseq ≤ b.base" then no longer shows that b saw a: an informed write becomes
/// concurrent with the write it replaced, and a field conflict appears on every replica that
/// nobody made. Run with `--ignored` to see it fail.
#[test]
#[ignore = "known limitation (ARCHITECTURE.md, restore): ops re-pushed after a restore get new \
            gseqs while later ops' base_version still counts the old ones, so an informed write \
            can show as a conflict (never as a silent overwrite)"]
fn an_informed_write_stays_informed_after_a_server_restore() {
    let mut a = Author::new(1, "a", T0);
    let mut b = Author::new(2, "b", T0);
    let c = a.op(create(1));
    let pa = a.op(priority(1, Priority::P1)); // accepted at gseq 10
    b.saw(10);
    let pb = b.op(priority(1, Priority::P2)); // b saw it: informed, base 10
    let before = Model::from_ops([
        (c.clone(), Some(1)),
        (pa.clone(), Some(10)),
        (pb.clone(), Some(12)),
    ]);
    assert!(before.conflicts().is_empty());
    // The backup kept gseq ≤ 5; a and b re-push; the new epoch numbers them after the gap.
    let gap = outpost_domain::wire::EPOCH_GSEQ_GAP;
    let after = Model::from_ops([(c, Some(1)), (pa, Some(gap + 6)), (pb, Some(gap + 7))]);
    assert_eq!(after.state(), before.state());
    assert!(after.conflicts().is_empty(), "{:?}", after.conflicts());
}

fn device_report(
    device: &str,
    s: i64,
    lat: f64,
    name: Option<&str>,
    battery: Option<f64>,
) -> OpBody {
    OpBody::DeviceReport {
        report: outpost_domain::device::DeviceReport {
            device_id: device.into(),
            source: outpost_domain::device::DeviceSource::Osmand,
            name: name.map(str::to_string),
            fix: Fix {
                position: LatLon { lat, lon: 109.98 },
                fix_time: chrono::DateTime::from_timestamp_millis(T0 + s * 1000).expect("time"),
                heading_deg: None,
                speed_mps: None,
                accuracy_m: Some(10.0),
            },
            battery_pct: battery,
        },
    }
}

#[test]
fn device_reports_keep_each_fix_once_and_the_registry_shows_the_newest() {
    let mut gw = Author::new(9, "gateway", T0);
    let r1 = gw.op(device_report("phone-1", 30, 39.81, Some("Li"), Some(90.0)));
    gw.tick(1_000);
    let r2 = gw.op(device_report("phone-1", 60, 39.82, None, Some(80.0)));
    gw.tick(1_000);
    // A late, older fix; then the 60 s fix again with a greater latitude (a tie: kept).
    let r3 = gw.op(device_report("phone-1", 10, 39.80, Some("Li W."), None));
    gw.tick(1_000);
    let r4 = gw.op(device_report("phone-1", 60, 39.83, None, Some(79.0)));
    let ops = [(r1, Some(1)), (r2, Some(2)), (r3, Some(3)), (r4, Some(4))];
    let mut orders = vec![ops.to_vec()];
    let mut rev = ops.to_vec();
    rev.reverse();
    orders.push(rev);
    let states: Vec<_> = orders
        .into_iter()
        .map(|o| Model::from_ops(o).state())
        .collect();
    assert_eq!(states[0], states[1]);
    let s = &states[0];
    assert_eq!(s.table("device_fixes").count(), 3);
    assert_eq!(
        s.row("device_fixes", &format!("phone-1@{}", T0 + 60_000))
            .expect("fix")["lat"],
        json!(39.83)
    );
    let d = s.row("devices", "phone-1").expect("device");
    assert_eq!(d["fix_time"], json!(T0 + 60_000));
    assert_eq!(d["lat"], json!(39.83));
    assert_eq!(d["battery_pct"], json!(79.0));
    // The newest fix that gave a name.
    assert_eq!(d["name"], json!("Li"));
    assert_eq!(d["reports"], json!(3));
    assert_eq!(d["first_seen"], json!(T0));
    assert_eq!(d["source"], json!("osmand"));
    // Not a unit.
    assert!(s.row("unit_positions", "phone-1").is_none());
}

#[test]
fn the_newest_binding_wins_and_an_informed_unbind_removes_it() {
    let mut a = Author::new(1, "cmdr.a", T0);
    let mut b = Author::new(2, "cmdr.b", T0 + 5);
    let bind = |unit: Option<&str>| OpBody::DeviceBind {
        device_id: "ANDROID-2".into(),
        unit_id: unit.map(str::to_string),
    };
    let ra = a.op(register("u-01"));
    let rb = a.op(register("u-02"));
    a.saw(2);
    b.saw(2);
    let x = a.op(bind(Some("u-01")));
    let y = b.op(bind(Some("u-02")));
    let m = Model::from_ops([
        (ra.clone(), Some(1)),
        (rb.clone(), Some(2)),
        (x.clone(), Some(3)),
        (y.clone(), Some(4)),
    ]);
    let s = m.state();
    // Equal bases: b's clock is ahead, its write wins; not a conflict.
    let row = s.row("device_bindings", "ANDROID-2").expect("binding");
    assert_eq!(row["unit_id"], json!("u-02"));
    assert_eq!(row["bound_by"], json!("cmdr.b"));
    assert_eq!(row["bound_at"], json!(T0 + 5));
    assert!(m.conflicts().is_empty());
    a.saw(4);
    let z = a.op(bind(None));
    let m = Model::from_ops([
        (ra, Some(1)),
        (rb, Some(2)),
        (x, Some(3)),
        (y, Some(4)),
        (z, Some(5)),
    ]);
    let s = m.state();
    assert_eq!(
        s.row("device_bindings", "ANDROID-2").expect("binding")["unit_id"],
        json!(null)
    );
}
