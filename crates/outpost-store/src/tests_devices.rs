//! Device and position tests (issue 4): bindings, unbound-device reports, out-of-order and
//! duplicate fixes (SYNC.md principle 9), tracks, the rebuild and snapshot paths.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use outpost_domain::device::{DeviceReport, DeviceSource};
use outpost_domain::geo::LatLon;
use outpost_domain::op::{Fix, OpBody, OpEnvelope};
use outpost_domain::unit::UnitKind;
use outpost_domain::wire::{PulledOp, Snapshot};

use crate::apply::apply_with_gseq;
use crate::devices::{self, DeviceRow};
use crate::{Store, StoreError};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
        + Duration::seconds(secs)
}

fn ms(secs: i64) -> i64 {
    t(secs).timestamp_millis()
}

fn store() -> Store {
    Store::open_in_memory(t(0)).expect("open in-memory store")
}

fn write(s: &mut Store, at: i64, user: &str, body: OpBody) -> OpEnvelope {
    s.write::<StoreError, _>(t(at), user, |_| Ok(body))
        .expect("write op")
}

fn register_unit(s: &mut Store, at: i64, id: &str, callsign: &str) -> OpEnvelope {
    write(
        s,
        at,
        "admin",
        OpBody::UnitRegister {
            unit_id: id.into(),
            callsign: callsign.into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    )
}

fn bind(device: &str, unit: Option<&str>) -> OpBody {
    OpBody::DeviceBind {
        device_id: device.into(),
        unit_id: unit.map(str::to_string),
    }
}

/// A fix in Ordos (Dongsheng) at `secs` after 10:00 UTC, moving north 0.001° per second.
fn fix(secs: i64) -> Fix {
    Fix {
        position: LatLon {
            lat: 39.8 + secs as f64 * 0.001,
            lon: 109.98,
        },
        fix_time: t(secs),
        heading_deg: Some(0.0),
        speed_mps: Some(11.1),
        accuracy_m: Some(4.0),
    }
}

fn position(unit: &str, f: Fix) -> OpBody {
    OpBody::PositionReport {
        unit_id: unit.into(),
        fix: f,
    }
}

fn device_report(device: &str, f: Fix, name: Option<&str>, battery: Option<f64>) -> OpBody {
    OpBody::DeviceReport {
        report: DeviceReport {
            device_id: device.into(),
            source: DeviceSource::Cot,
            name: name.map(str::to_string),
            fix: f,
            battery_pct: battery,
        },
    }
}

fn ledger_ops(s: &Store) -> Vec<OpEnvelope> {
    s.ledger()
        .expect("ledger")
        .into_iter()
        .map(|l| l.envelope)
        .collect()
}

/// The marker's fix time (ms), if the unit has one.
fn marker(s: &Store, unit: &str) -> Option<i64> {
    use rusqlite::OptionalExtension;
    s.conn()
        .query_row(
            "SELECT fix_time FROM unit_positions WHERE unit_id = ?1",
            [unit],
            |r| r.get(0),
        )
        .optional()
        .expect("marker")
}

fn history(s: &Store, unit: &str) -> Vec<(i64, f64)> {
    devices::unit_track(s.conn(), unit, None, None, 1000)
        .expect("track")
        .fixes
        .into_iter()
        .map(|f| (f.fix_time.timestamp_millis(), f.position.lat))
        .collect()
}

/// Permutations of `0..n` from a SplitMix64 stream (deterministic per seed).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap_or(0);
        v.swap(i, j);
    }
    v
}

#[test]
fn device_bindings_lists_bound_devices_only_newest_write_winning() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    register_unit(&mut s, 0, "u-02", "东胜02");
    write(&mut s, 1, "cmdr.li", bind("phone-7", Some("u-01")));
    write(&mut s, 2, "cmdr.li", bind("tak-ANDROID-3", Some("u-02")));
    write(&mut s, 3, "cmdr.li", bind("gone", Some("u-02")));
    write(&mut s, 4, "cmdr.li", bind("gone", None));
    write(&mut s, 5, "cmdr.wang", bind("phone-7", Some("u-02")));
    assert_eq!(
        devices::device_bindings(s.conn()).expect("bindings"),
        vec![
            ("phone-7".to_string(), "u-02".to_string()),
            ("tak-ANDROID-3".to_string(), "u-02".to_string()),
        ]
    );
    assert_eq!(
        devices::device_binding(s.conn(), "phone-7").expect("binding"),
        Some("u-02".into())
    );
    assert_eq!(devices::device_binding(s.conn(), "gone").expect("b"), None);
    assert_eq!(devices::device_binding(s.conn(), "never").expect("b"), None);
    let shown = devices::device(s.conn(), "phone-7")
        .expect("device")
        .expect("listed");
    assert_eq!(shown.callsign.as_deref(), Some("东胜02"));
    assert_eq!(shown.bound_at, Some(t(5)));
    assert_eq!(
        (shown.source, shown.reports, shown.last_fix),
        (None, 0, None)
    );
}

#[test]
fn binding_to_a_unit_this_replica_lacks_is_refused_as_missing() {
    let mut s = store();
    let err = s
        .write::<StoreError, _>(t(1), "cmdr.li", |_| Ok(bind("phone-7", Some("u-99"))))
        .expect_err("unknown unit");
    assert!(
        matches!(&err, StoreError::Missing { what: "unit", id } if id == "u-99"),
        "{err}"
    );
    assert!(devices::device_bindings(s.conn()).expect("b").is_empty());
}

#[test]
fn out_of_order_and_duplicate_fixes_never_move_the_marker_back_in_any_order() {
    // The gateway receives a unit's fixes out of order, some twice (a phone re-sending
    // after a lost answer, a TAK client relayed by two servers): fix times 30, 10, 50, 20,
    // 50 again, 40, 10 again, 50 a third time with a later receive time.
    let mut a = store();
    register_unit(&mut a, 0, "u-01", "东胜01");
    let arrivals = [30, 10, 50, 20, 50, 40, 10, 50];
    let mut newest = i64::MIN;
    for (n, secs) in arrivals.iter().enumerate() {
        write(
            &mut a,
            60 + n as i64,
            "gateway",
            position("u-01", fix(*secs)),
        );
        newest = newest.max(ms(*secs));
        // The marker is the newest fix time so far: it never moves back.
        assert_eq!(marker(&a, "u-01"), Some(newest), "after arrival {n}");
    }
    let expected: Vec<(i64, f64)> = [10, 20, 30, 40, 50]
        .iter()
        .map(|s| (ms(*s), 39.8 + *s as f64 * 0.001))
        .collect();
    // History: each fix once, oldest first.
    assert_eq!(history(&a, "u-01"), expected);
    let latest = crate::query::unit(a.conn(), "u-01")
        .expect("unit")
        .expect("u-01")
        .fix
        .expect("fix");
    assert_eq!(latest, fix(50));

    // Every other replica, whatever order it applies the same ops in (the unit first: its
    // position reports need it), ends with the same marker, history and digest; its marker
    // never moves back either.
    let ops = ledger_ops(&a);
    assert_eq!(ops.len(), 1 + arrivals.len());
    let want = a.state_digest().expect("digest");
    for seed in 0..12 {
        let b = store();
        apply_with_gseq(b.conn(), &ops[0], Some(1)).expect("register");
        let mut seen = i64::MIN;
        for i in permutation(arrivals.len(), seed) {
            let op = &ops[i + 1];
            apply_with_gseq(b.conn(), op, Some(i as u64 + 2)).expect("apply");
            // A duplicate delivery of the same op changes nothing.
            assert!(!apply_with_gseq(b.conn(), op, Some(i as u64 + 2)).expect("again"));
            seen = seen.max(ms(arrivals[i]));
            assert_eq!(marker(&b, "u-01"), Some(seen), "seed {seed}");
        }
        assert_eq!(history(&b, "u-01"), expected, "seed {seed}");
        assert_eq!(b.state_digest().expect("digest"), want, "seed {seed}");
    }
    // The un-apply path (rebuild from the ledger) gives the same rows.
    a.rebuild().expect("rebuild");
    assert_eq!(a.state_digest().expect("digest"), want);
    assert_eq!(marker(&a, "u-01"), Some(ms(50)));
}

#[test]
fn unit_track_takes_a_window_oldest_first_and_keeps_the_newest_when_truncated() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    for secs in [40, 10, 30, 20, 50] {
        write(&mut s, 100 + secs, "gateway", position("u-01", fix(secs)));
    }
    let times = |r: devices::TrackRows| -> (Vec<i64>, bool) {
        (
            r.fixes
                .iter()
                .map(|f| f.fix_time.timestamp_millis())
                .collect(),
            r.truncated,
        )
    };
    let c = s.conn();
    assert_eq!(
        times(devices::unit_track(c, "u-01", Some(ms(20)), Some(ms(40)), 10).expect("w")),
        (vec![ms(20), ms(30), ms(40)], false)
    );
    assert_eq!(
        times(devices::unit_track(c, "u-01", None, None, 2).expect("w")),
        (vec![ms(40), ms(50)], true)
    );
    assert_eq!(
        times(devices::unit_track(c, "u-01", Some(ms(45)), None, 1).expect("w")),
        (vec![ms(50)], false)
    );
    assert_eq!(
        times(devices::unit_track(c, "u-02", None, None, 10).expect("w")),
        (vec![], false)
    );
    let all = devices::unit_track(c, "u-01", None, None, 10).expect("all");
    assert_eq!(all.fixes[0], fix(10));
}

#[test]
fn unbound_reports_are_listed_and_a_device_bound_after_its_reports_keeps_them() {
    let mut a = store();
    register_unit(&mut a, 0, "u-01", "东胜01");
    // An unbound TAK device reports out of order, once twice; its name comes with some
    // reports only.
    write(
        &mut a,
        10,
        "gateway",
        device_report("ANDROID-77", fix(5), Some("ALPHA-1"), Some(80.0)),
    );
    write(
        &mut a,
        11,
        "gateway",
        device_report("ANDROID-77", fix(9), None, Some(71.0)),
    );
    write(
        &mut a,
        12,
        "gateway",
        device_report("ANDROID-77", fix(7), Some("ALPHA-2"), None),
    );
    write(
        &mut a,
        13,
        "gateway",
        device_report("ANDROID-77", fix(9), None, Some(71.0)),
    );
    write(
        &mut a,
        14,
        "gateway",
        device_report("phone-3", fix(3), None, None),
    );
    let listed = devices::devices(a.conn()).expect("devices");
    assert_eq!(
        listed,
        vec![
            DeviceRow {
                device_id: "ANDROID-77".into(),
                source: Some(DeviceSource::Cot),
                name: Some("ALPHA-2".into()),
                unit_id: None,
                callsign: None,
                bound_at: None,
                last_fix: Some(fix(9)),
                battery_pct: Some(71.0),
                reports: 3,
                first_seen: Some(t(10)),
            },
            DeviceRow {
                device_id: "phone-3".into(),
                source: Some(DeviceSource::Cot),
                name: None,
                unit_id: None,
                callsign: None,
                bound_at: None,
                last_fix: Some(fix(3)),
                battery_pct: None,
                reports: 1,
                first_seen: Some(t(14)),
            },
        ]
    );
    // Not a unit: nothing on the map.
    assert_eq!(marker(&a, "ANDROID-77"), None);

    // Bound afterwards: listed as bound; its earlier reports stay with the device (they are
    // not the unit's positions), its next reports arrive as the unit's.
    write(&mut a, 20, "cmdr.li", bind("ANDROID-77", Some("u-01")));
    assert_eq!(marker(&a, "u-01"), None);
    write(&mut a, 21, "gateway", position("u-01", fix(21)));
    assert_eq!(marker(&a, "u-01"), Some(ms(21)));
    let listed = devices::devices(a.conn()).expect("devices");
    assert_eq!(
        listed
            .iter()
            .map(|d| d.device_id.as_str())
            .collect::<Vec<_>>(),
        vec!["phone-3", "ANDROID-77"],
        "unbound first, then bound"
    );
    assert_eq!(listed[1].unit_id.as_deref(), Some("u-01"));
    assert_eq!(listed[1].callsign.as_deref(), Some("东胜01"));
    assert_eq!((listed[1].reports, listed[1].bound_at), (3, Some(t(20))));
    assert_eq!(
        devices::device_bindings(a.conn()).expect("b"),
        vec![("ANDROID-77".to_string(), "u-01".to_string())]
    );

    // Another replica that gets the binding before the reports (the positions lane lags
    // the critical lane) ends the same.
    let ops = ledger_ops(&a);
    let want = a.state_digest().expect("digest");
    let b = store();
    for i in [0, 6, 7, 5, 3, 1, 2, 4] {
        apply_with_gseq(b.conn(), &ops[i], Some(i as u64 + 1)).expect("apply");
    }
    assert_eq!(b.state_digest().expect("digest"), want);
    assert_eq!(devices::devices(b.conn()).expect("d"), listed);
}

#[test]
fn two_reports_of_a_device_at_one_fix_time_resolve_the_same_in_any_order() {
    let mut a = store();
    let mut other = fix(5);
    other.position.lat = 39.9;
    write(
        &mut a,
        10,
        "gateway",
        device_report("d-1", fix(5), None, Some(50.0)),
    );
    write(
        &mut a,
        11,
        "gateway",
        device_report("d-1", other.clone(), None, None),
    );
    write(
        &mut a,
        12,
        "gateway",
        device_report("d-1", fix(5), Some("X"), Some(50.0)),
    );
    let ops = ledger_ops(&a);
    let want = a.state_digest().expect("digest");
    let row = devices::device(a.conn(), "d-1").expect("d").expect("d-1");
    // The greater latitude wins; one fix kept.
    assert_eq!((row.last_fix, row.reports), (Some(other), 1));
    for seed in 0..6 {
        let b = store();
        for i in permutation(ops.len(), seed) {
            apply_with_gseq(b.conn(), &ops[i], Some(i as u64 + 1)).expect("apply");
        }
        assert_eq!(b.state_digest().expect("digest"), want, "seed {seed}");
    }
}

#[test]
fn concurrent_binds_of_one_device_converge_without_a_conflict() {
    let mut a = store();
    let reg1 = register_unit(&mut a, 0, "u-01", "东胜01");
    let reg2 = register_unit(&mut a, 0, "u-02", "东胜02");
    let mut b = store();
    apply_with_gseq(b.conn(), &reg1, Some(1)).expect("reg");
    apply_with_gseq(b.conn(), &reg2, Some(2)).expect("reg");
    // Two commanders, neither having seen the other's binding.
    let x = write(&mut a, 10, "cmdr.li", bind("phone-7", Some("u-01")));
    let y = write(&mut b, 10, "cmdr.wang", bind("phone-7", Some("u-02")));
    // Each replica gets the other's op (server order: x then y).
    apply_with_gseq(a.conn(), &y, Some(4)).expect("y on a");
    apply_with_gseq(b.conn(), &x, Some(3)).expect("x on b");
    let on_a = devices::device_bindings(a.conn()).expect("a");
    let on_b = devices::device_bindings(b.conn()).expect("b");
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.len(), 1);
    assert_eq!(a.state_digest().expect("a"), b.state_digest().expect("b"));
    // Newest write wins like a roster entry: not a conflict.
    assert!(a.conflict_ids().expect("c").is_empty());
    assert!(b.conflict_ids().expect("c").is_empty());
    // An informed unbind beats both.
    let z = write(&mut a, 20, "cmdr.li", bind("phone-7", None));
    apply_with_gseq(b.conn(), &z, Some(5)).expect("z on b");
    for s in [&a, &b] {
        assert!(devices::device_bindings(s.conn()).expect("b").is_empty());
    }
    assert_eq!(a.state_digest().expect("a"), b.state_digest().expect("b"));
}

#[test]
fn a_snapshot_and_a_rebuild_keep_the_device_tables() {
    let mut a = store();
    register_unit(&mut a, 0, "u-01", "东胜01");
    write(&mut a, 1, "cmdr.li", bind("phone-7", Some("u-01")));
    write(
        &mut a,
        2,
        "gateway",
        device_report("ANDROID-77", fix(2), Some("ALPHA"), Some(64.0)),
    );
    write(&mut a, 3, "gateway", position("u-01", fix(3)));
    let ops = ledger_ops(&a);
    let want = a.state_digest().expect("digest");
    for table in ["device_bindings", "devices", "device_fixes"] {
        assert!(want.contains_key(table), "{table} in the digest");
    }
    let snap = Snapshot {
        epoch: Uuid::now_v7(),
        gseq: ops.len() as u64,
        ops: ops
            .iter()
            .enumerate()
            .map(|(i, op)| PulledOp {
                gseq: i as u64 + 1,
                op: serde_json::to_value(op).expect("json"),
            })
            .collect(),
        compacted_positions: vec![],
    };
    let mut c = store();
    c.load_snapshot(&snap, t(10)).expect("snapshot");
    assert_eq!(c.state_digest().expect("digest"), want);
    assert_eq!(
        c.state_tables().expect("c")["devices"],
        a.state_tables().expect("a")["devices"]
    );
    c.rebuild().expect("rebuild");
    assert_eq!(c.state_digest().expect("digest"), want);
    assert_eq!(
        devices::device_bindings(c.conn()).expect("b"),
        vec![("phone-7".to_string(), "u-01".to_string())]
    );
}

/// Apply cost of unbound-device reports on a replica (what the server's replica does for
/// every `device.report`): 1,000 devices × 20 reports, then one device's 20,000th report.
/// Run: `cargo test --release -p outpost-store device_report_apply_rate -- --ignored
/// --nocapture`.
#[test]
#[ignore = "measurement, prints the figures"]
fn device_report_apply_rate() {
    let s = store();
    let mut gw = OpEnvelope {
        op_id: Uuid::now_v7(),
        origin: Uuid::now_v7(),
        seq: 0,
        hlc: outpost_domain::op::Hlc {
            wall_ms: ms(0),
            logical: 0,
        },
        base_version: None,
        user: "gateway".into(),
        schema: outpost_domain::op::SCHEMA_VERSION,
        lane: outpost_domain::op::Lane::Positions,
        lane_seq: 0,
        body: device_report("d", fix(0), None, None),
        auth: None,
    };
    let mut next = |device: String, secs: i64| {
        gw.op_id = Uuid::now_v7();
        gw.seq += 1;
        gw.lane_seq += 1;
        gw.hlc.wall_ms = ms(secs);
        gw.body = device_report(&device, fix(secs), None, Some(50.0));
        gw.clone()
    };
    let tx = s.conn().unchecked_transaction().expect("tx");
    let started = std::time::Instant::now();
    let mut n = 0u64;
    for round in 0..20 {
        for d in 0..1_000 {
            let op = next(format!("phone-{d}"), round * 5);
            apply_with_gseq(&tx, &op, Some(op.seq)).expect("apply");
            n += 1;
        }
    }
    let spread = started.elapsed();
    for k in 0..20_000 {
        let op = next("phone-long".into(), k * 5);
        apply_with_gseq(&tx, &op, Some(op.seq)).expect("apply");
    }
    let started = std::time::Instant::now();
    for k in 20_000..21_000 {
        let op = next("phone-long".into(), k * 5);
        apply_with_gseq(&tx, &op, Some(op.seq)).expect("apply");
    }
    let deep = started.elapsed();
    tx.commit().expect("commit");
    eprintln!(
        "device.report apply: {n} reports of 1,000 devices in {:.0} ms ({:.0}/s); \
         reports 20,001..21,000 of one device: {:.1} µs each",
        spread.as_secs_f64() * 1e3,
        n as f64 / spread.as_secs_f64(),
        deep.as_secs_f64() * 1e6 / 1_000.0
    );
    let d = devices::device(s.conn(), "phone-long")
        .expect("d")
        .expect("row");
    assert_eq!(d.reports, 21_000);
}

#[test]
fn a_version_6_database_upgrades_to_the_device_tables_keeping_its_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    {
        let mut s = Store::open(&path, t(0)).expect("open");
        register_unit(&mut s, 0, "u-01", "东胜01");
        write(&mut s, 1, "gateway", position("u-01", fix(1)));
    }
    {
        // Back to version 6, as a console of issue 3 left it.
        let c = rusqlite::Connection::open(&path).expect("raw open");
        c.execute_batch(
            "DROP TABLE device_bindings; DROP TABLE device_fixes; DROP TABLE devices;
             DROP TABLE road_closures; PRAGMA user_version = 6;",
        )
        .expect("downgrade");
    }
    let mut s = Store::open(&path, t(2)).expect("upgrade");
    let v: i64 = s
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(v, crate::schema::latest_version());
    assert_eq!(marker(&s, "u-01"), Some(ms(1)));
    assert!(devices::devices(s.conn()).expect("devices").is_empty());
    write(&mut s, 3, "cmdr.li", bind("phone-7", Some("u-01")));
    assert_eq!(
        devices::device_bindings(s.conn()).expect("b"),
        vec![("phone-7".to_string(), "u-01".to_string())]
    );
}

mod fix_order {
    //! Property: whatever order a unit's fixes (and a device's reports) arrive in, however
    //! often each is delivered, the marker never moves back, the history and registry keep
    //! each fix time once, and every replica ends with the same rows.

    use proptest::prelude::*;

    use super::*;

    /// One report: fix time (s), a latitude variant (two reports at one fix time may
    /// differ), and whether it is a device's report rather than the unit's.
    type Report = (i64, u8, bool);

    fn body((secs, v, device): Report) -> OpBody {
        let mut f = fix(secs);
        f.position.lat += f64::from(v) * 0.01;
        if device {
            device_report(
                "ANDROID-9",
                f,
                (v == 1).then_some("ALPHA"),
                Some(f64::from(v)),
            )
        } else {
            position("u-01", f)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]

        #[test]
        fn the_marker_never_moves_back_and_every_order_gives_the_same_rows(
            reports in proptest::collection::vec((0i64..12, 0u8..3, any::<bool>()), 1..30),
            seed in any::<u64>(),
            twice in proptest::collection::vec(any::<bool>(), 30),
        ) {
            let mut a = store();
            let reg = register_unit(&mut a, 0, "u-01", "东胜01");
            for (n, r) in reports.iter().enumerate() {
                write(&mut a, 100 + n as i64, "gateway", body(*r));
            }
            let ops = ledger_ops(&a);
            let want = a.state_digest().expect("digest");
            let b = store();
            apply_with_gseq(b.conn(), &reg, Some(1)).expect("register");
            let mut newest: Option<i64> = None;
            for (k, i) in permutation(reports.len(), seed).into_iter().enumerate() {
                let op = &ops[i + 1];
                apply_with_gseq(b.conn(), op, Some(i as u64 + 2)).expect("apply");
                if twice[k % twice.len()] {
                    apply_with_gseq(b.conn(), op, Some(i as u64 + 2)).expect("again");
                }
                if !reports[i].2 {
                    newest = newest.max(Some(ms(reports[i].0)));
                }
                prop_assert_eq!(marker(&b, "u-01"), newest);
            }
            prop_assert_eq!(b.state_digest().expect("digest"), want);
            let unit_times: std::collections::BTreeSet<i64> =
                reports.iter().filter(|r| !r.2).map(|r| ms(r.0)).collect();
            let kept: Vec<i64> = history(&b, "u-01").into_iter().map(|(t, _)| t).collect();
            prop_assert_eq!(kept, unit_times.into_iter().collect::<Vec<_>>());
            let device_times: std::collections::BTreeSet<i64> =
                reports.iter().filter(|r| r.2).map(|r| ms(r.0)).collect();
            let row = devices::device(b.conn(), "ANDROID-9").expect("device");
            prop_assert_eq!(row.map(|d| d.reports), (!device_times.is_empty()).then_some(device_times.len() as u64));
        }
    }
}
