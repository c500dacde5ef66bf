//! Road closure tests (issue 5): the `road_closures` projection of the RoadClosure register,
//! its query, the refusal of bad closures, order independence, rebuild and snapshot paths,
//! and the upgrade of a database at migration 7.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::op::{OpBody, OpEnvelope};
use outpost_domain::road_closure::{ClosureShape, RoadClosure};
use outpost_domain::wire::{PulledOp, Snapshot};

use crate::apply::apply_with_gseq;
use crate::{Store, StoreError, StoredRoadClosure};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
        + Duration::seconds(secs)
}

fn store() -> Store {
    Store::open_in_memory(t(0)).expect("open in-memory store")
}

fn set(s: &mut Store, at: i64, user: &str, closure: &RoadClosure) -> OpEnvelope {
    s.write::<StoreError, _>(t(at), user, |_| {
        Ok(OpBody::RoadClosureSet {
            closure: closure.clone(),
        })
    })
    .expect("write road_closure.set")
}

fn p(lat: f64, lon: f64) -> LatLon {
    LatLon { lat, lon }
}

/// A closed stretch of the CG-1 in Andorra la Vella, until `ends` seconds after 10:00.
fn line(n: u128, reason: &str, ends: Option<i64>) -> RoadClosure {
    RoadClosure {
        closure_id: Uuid::from_u128(n),
        shape: ClosureShape::Line {
            points: vec![p(42.5063, 1.5218), p(42.5071, 1.5230), p(42.5080, 1.5241)],
        },
        reason: reason.into(),
        ends_at: ends.map(t),
        lifted: false,
    }
}

fn area(n: u128, reason: &str) -> RoadClosure {
    RoadClosure {
        closure_id: Uuid::from_u128(n),
        shape: ClosureShape::Area {
            ring: vec![
                p(42.50, 1.51),
                p(42.51, 1.51),
                p(42.51, 1.53),
                p(42.50, 1.53),
            ],
        },
        reason: reason.into(),
        ends_at: None,
        lifted: false,
    }
}

fn shown(s: &Store) -> Vec<StoredRoadClosure> {
    s.road_closures().expect("road closures")
}

fn count(s: &Store, sql: &str) -> i64 {
    s.conn()
        .query_row(sql, [], |r| r.get(0))
        .expect("count query")
}

#[test]
fn a_closure_written_here_is_listed_and_a_lift_replaces_it() {
    let mut s = store();
    let flood = line(1, "积水 0.8 m", Some(3_600));
    set(&mut s, 10, "cmdr.li", &flood);
    let collapse = area(2, "房屋倒塌");
    set(&mut s, 20, "cmdr.wang", &collapse);

    // Newest write first.
    let all = shown(&s);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].closure, collapse);
    assert_eq!(all[0].set_by, "cmdr.wang");
    assert_eq!(all[0].set_at, t(20));
    assert_eq!(all[1].closure, flood);
    assert_eq!(all[1].set_by, "cmdr.li");
    assert_eq!(all[1].set_at, t(10));
    assert!(all[1].closure.is_active(t(30)));
    assert_eq!(
        s.road_closure(flood.closure_id).expect("one"),
        Some(all[1].clone())
    );
    assert_eq!(s.road_closure(Uuid::from_u128(9)).expect("none"), None);

    // A lift is a later write of the whole value: it replaces the shown one.
    let lifted = RoadClosure {
        lifted: true,
        ..flood.clone()
    };
    set(&mut s, 40, "cmdr.zhao", &lifted);
    let all = shown(&s);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].closure, lifted);
    assert_eq!(
        (all[0].set_by.as_str(), all[0].set_at),
        ("cmdr.zhao", t(40))
    );
    assert!(!all[0].closure.is_active(t(41)));
    assert_eq!(all[1].closure, collapse);
    assert_eq!(count(&s, "SELECT count(*) FROM road_closures"), 2);

    // The op travels in the critical lane like every closure change.
    let kinds: Vec<(String, String)> = crate::query::outbox_all(s.conn())
        .expect("outbox")
        .into_iter()
        .map(|o| (o.kind, format!("{:?}", o.envelope.lane)))
        .collect();
    assert_eq!(kinds.len(), 3);
    assert!(
        kinds
            .iter()
            .all(|(k, l)| k == "road_closure.set" && l == "Critical"),
        "{kinds:?}"
    );
}

#[test]
fn a_bad_closure_is_refused_naming_the_field_and_nothing_is_written() {
    let mut s = store();
    let mut one_point = line(1, "积水", None);
    one_point.shape = ClosureShape::Line {
        points: vec![p(42.5, 1.5)],
    };
    let mut lat_91 = line(2, "积水", None);
    lat_91.shape = ClosureShape::Area {
        ring: vec![p(42.5, 1.5), p(91.0, 1.5), p(42.6, 1.6)],
    };
    let empty_reason = line(3, "   ", None);
    let mut long_reason = line(4, "x", None);
    long_reason.reason = "水".repeat(501);
    for (closure, want) in [
        (&one_point, "road_closure.set: shape.points has 1 points"),
        (&lat_91, "road_closure.set: shape.ring[1]: "),
        (&empty_reason, "road_closure.set: reason is empty"),
        (&long_reason, "road_closure.set: reason has 501 characters"),
    ] {
        let err = s
            .write::<StoreError, _>(t(5), "cmdr.li", |_| {
                Ok(OpBody::RoadClosureSet {
                    closure: closure.clone(),
                })
            })
            .expect_err("a bad closure is refused");
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    kind: "road_closure.set",
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with(want), "{msg}");
    }
    let lat_msg = s
        .write::<StoreError, _>(t(5), "cmdr.li", |_| {
            Ok(OpBody::RoadClosureSet {
                closure: lat_91.clone(),
            })
        })
        .expect_err("refused")
        .to_string();
    assert!(lat_msg.contains("91"), "{lat_msg}");
    // Nothing of them: no row, no op, no outbox entry, no register write, no seq used.
    assert!(shown(&s).is_empty());
    assert_eq!(count(&s, "SELECT count(*) FROM ops"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM outbox"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM reg_writes"), 0);
    assert_eq!(count(&s, "SELECT last_seq FROM origin"), 0);
    // A good one after them gets seq 1.
    let env = set(&mut s, 6, "cmdr.li", &line(5, "积水", None));
    assert_eq!((env.seq, env.lane_seq), (1, 1));
}

#[test]
fn two_consoles_setting_one_closure_give_the_same_winner_in_either_order() {
    // Two consoles change one closure without seeing each other's write: the newer HLC
    // wins on both and on a third replica, whichever order the ops arrive in.
    let (mut a, mut b) = (store(), store());
    let id = 7;
    let wa = set(&mut a, 10, "cmdr.li", &line(id, "积水 0.8 m", Some(7_200)));
    let mut later = line(id, "积水 1.2 m，封闭延长", Some(10_800));
    later.shape = ClosureShape::Line {
        points: vec![p(42.5063, 1.5218), p(42.5090, 1.5250)],
    };
    let wb = set(&mut b, 12, "cmdr.wang", &later);
    apply_with_gseq(a.conn(), &wb, None).expect("b's write on a");
    apply_with_gseq(b.conn(), &wa, None).expect("a's write on b");
    let want = shown(&a);
    assert_eq!(want.len(), 1);
    assert_eq!(want[0].closure, later);
    assert_eq!(
        (want[0].set_by.as_str(), want[0].set_at),
        ("cmdr.wang", t(12))
    );
    assert_eq!(shown(&b), want);
    assert_eq!(a.state_digest().expect("a"), b.state_digest().expect("b"));
    // The digest covers closures: a replica without b's write disagrees on that table only.
    let only_a = store();
    apply_with_gseq(only_a.conn(), &wa, None).expect("a's write alone");
    let (d1, d2) = (
        a.state_digest().expect("a"),
        only_a.state_digest().expect("alone"),
    );
    assert_ne!(d1["road_closures"], d2["road_closures"]);
    assert_eq!(d1["incidents"], d2["incidents"]);
    let row = &a.state_tables().expect("tables")["road_closures"][&Uuid::from_u128(id).to_string()];
    assert_eq!(row["set_by"], "cmdr.wang");
    assert_eq!(row["set_at"], t(12).timestamp_millis());
    assert_eq!(row["value"]["reason"], "积水 1.2 m，封闭延长");
    assert_eq!(row["value"]["shape"]["type"], "line");
    // With server order (gseq) too, either arrival order.
    for order in [[&wa, &wb], [&wb, &wa]] {
        let c = store();
        for (g, op) in order.iter().enumerate() {
            apply_with_gseq(c.conn(), op, Some(g as u64 + 1)).expect("apply");
        }
        assert_eq!(shown(&c), want);
        assert_eq!(c.state_digest().expect("c"), a.state_digest().expect("a"));
    }
    // No conflict for a closure: it is not a critical register.
    assert!(a.conflicts().expect("conflicts").is_empty());
}

#[test]
fn an_offline_lift_concurrent_with_an_online_extension_stays_lifted_everywhere() {
    // Console A draws a flood closure and B receives it. A goes offline and lifts it; B,
    // which has not seen the lift, extends it (newer HLC, so B's write is the register
    // winner). Lifting is final: every replica shows the extension's value lifted, named
    // after A's lift, whatever order the ops arrive in.
    let (mut a, mut b) = (store(), store());
    let id = 11;
    let flood = line(id, "积水 0.8 m", Some(3_600));
    let drawn = set(&mut a, 10, "cmdr.li", &flood);
    apply_with_gseq(b.conn(), &drawn, None).expect("the drawing on b");
    let lift = set(
        &mut a,
        20,
        "cmdr.li",
        &RoadClosure {
            lifted: true,
            ..flood.clone()
        },
    );
    let extended = line(id, "积水 1.2 m，封闭延长", Some(10_800));
    let ext = set(&mut b, 30, "cmdr.wang", &extended);
    assert!(
        shown(&b)[0].closure.is_active(t(40)),
        "b has not seen the lift"
    );
    apply_with_gseq(a.conn(), &ext, None).expect("the extension on a");
    apply_with_gseq(b.conn(), &lift, None).expect("the lift on b");
    let want = StoredRoadClosure {
        closure: RoadClosure {
            lifted: true,
            ..extended.clone()
        },
        set_by: "cmdr.li".into(),
        set_at: t(20),
    };
    assert_eq!(shown(&a), vec![want.clone()]);
    assert_eq!(shown(&b), vec![want.clone()]);
    assert!(!shown(&a)[0].closure.is_active(t(40)));
    assert_eq!(a.state_digest().expect("a"), b.state_digest().expect("b"));
    // Every arrival order, with server order (gseq) and without, on a third replica.
    let ops = [&drawn, &lift, &ext];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        for with_gseq in [false, true] {
            let c = store();
            for (g, i) in order.iter().enumerate() {
                let gseq = with_gseq.then_some(g as u64 + 1);
                apply_with_gseq(c.conn(), ops[*i], gseq).expect("apply");
            }
            assert_eq!(shown(&c), vec![want.clone()], "order {order:?}");
        }
    }
    // Rebuilding from the ledger gives the same row.
    crate::apply::rebuild(a.conn()).expect("rebuild");
    assert_eq!(shown(&a), vec![want.clone()]);

    // A second, later lift (C, not having seen A's) does not rename the lifter: the
    // earliest lift in merge order stays named; a still later edit keeps it lifted.
    let c_lift = set(
        &mut b,
        50,
        "cmdr.zhao",
        &RoadClosure {
            lifted: true,
            ..extended.clone()
        },
    );
    apply_with_gseq(a.conn(), &c_lift, None).expect("second lift on a");
    let again = line(id, "积水 2 m", None);
    let edit = set(&mut a, 60, "cmdr.wang", &again);
    apply_with_gseq(b.conn(), &edit, None).expect("edit on b");
    let want = StoredRoadClosure {
        closure: RoadClosure {
            lifted: true,
            ..again
        },
        set_by: "cmdr.li".into(),
        set_at: t(20),
    };
    assert_eq!(shown(&a), vec![want.clone()]);
    assert_eq!(shown(&b), vec![want]);
    assert_eq!(a.state_digest().expect("a"), b.state_digest().expect("b"));
    // No conflict record is needed: nothing was overwritten.
    assert!(a.conflicts().expect("conflicts").is_empty());
}

#[test]
fn rebuild_and_snapshot_show_the_closures_of_the_ledger() {
    let mut a = store();
    let flood = line(1, "积水", None);
    let ops = [
        set(&mut a, 10, "cmdr.li", &flood),
        set(&mut a, 20, "cmdr.li", &area(2, "塌方")),
        set(
            &mut a,
            30,
            "cmdr.wang",
            &RoadClosure {
                lifted: true,
                ..flood
            },
        ),
    ];
    let want = shown(&a);
    let digest = a.state_digest().expect("digest");
    assert_eq!(want.len(), 2);
    a.rebuild().expect("rebuild");
    assert_eq!(shown(&a), want);
    assert_eq!(a.state_digest().expect("digest"), digest);

    let snap = Snapshot {
        epoch: Uuid::from_u128(99),
        gseq: 3,
        ops: ops
            .iter()
            .enumerate()
            .map(|(i, op)| PulledOp {
                gseq: i as u64 + 1,
                op: serde_json::to_value(op).expect("json"),
            })
            .collect(),
        compacted_positions: Vec::new(),
    };
    let mut c = store();
    let report = c.load_snapshot(&snap, t(40)).expect("snapshot");
    assert_eq!(report.applied, 3);
    assert_eq!(shown(&c), want);
    assert_eq!(c.state_digest().expect("digest"), digest);
}

#[test]
fn a_database_at_migration_7_gets_the_table_and_shows_closures_already_in_its_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    {
        let mut c = rusqlite::Connection::open(&path).expect("raw open");
        let mut first = crate::schema::all();
        first.truncate(7);
        rusqlite_migration::Migrations::new(first)
            .to_latest(&mut c)
            .expect("migrate to v7");
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, 7);
    }
    // A plain upgrade: the table exists and is empty.
    let s = Store::open(&path, t(0)).expect("upgrade to 8");
    assert_eq!(
        count(&s, "PRAGMA user_version"),
        crate::schema::latest_version()
    );
    assert!(shown(&s).is_empty());
    drop(s);

    // A version-7 database whose ledger already holds a closure (written by a build that
    // knew the op, not the table): simulated by removing the table and going back to 7.
    let mut s = Store::open(&path, t(1)).expect("open");
    let flood = line(1, "积水", None);
    set(&mut s, 5, "cmdr.li", &flood);
    let want = shown(&s);
    drop(s);
    {
        let c = rusqlite::Connection::open(&path).expect("raw open");
        c.execute_batch("DROP TABLE road_closures; PRAGMA user_version = 7;")
            .expect("back to v7");
    }
    let s = Store::open(&path, t(2)).expect("upgrade to 8 again");
    assert_eq!(
        count(&s, "PRAGMA user_version"),
        crate::schema::latest_version()
    );
    assert_eq!(shown(&s), want);
    assert_eq!(want[0].closure, flood);
}
