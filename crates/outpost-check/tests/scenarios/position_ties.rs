//! Two fixes of one unit at the same fix time (ms) must resolve the same way on every
//! replica, whatever order they arrive in (SYNC.md I3, principle 9). The rule
//! (`outpost_store::apply`): the fix with the greater (lat, lon, heading, speed, accuracy,
//! received_at) tuple is kept, a missing value below any number. Two cases: different fixes
//! from two consoles at one instant, and the same fix relayed by two consoles (equal values,
//! different receive times).

use outpost_sync::SyncEngine;

use crate::common::*;
use crate::extract;

/// A `position` line with explicit coordinates at [`fix_t0`] + `secs`.
fn fix_at(unit: &str, secs: i64, lat: f64, lon: f64) -> String {
    let t = fix_t0() + chrono::Duration::seconds(secs);
    format!(
        "{{\"action\":\"position\",\"unit_id\":\"{unit}\",\"position\":{{\"lat\":{lat},\"lon\":{lon}}},\"fix_time\":\"{}\"}}\n",
        t.to_rfc3339()
    )
}

/// Two consoles, two tying fixes each way, synced through the real server.
fn tie_world(tmp: &std::path::Path) -> (outpost_server::RunningServer, Shared, Shared) {
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.join("server"), addr);
    let a = console(&tmp.join("a"));
    let b = console(&tmp.join("b"));
    act(&a, &register_unit("u-01"));
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");

    // Offline on both: at +60 s different fixes (B's is the greater), at +120 s the same fix
    // (B writes it later: a greater receive time). +120 s is also the latest fix.
    act(&a, &fix_at("u-01", 60, 42.5, 1.5));
    act(&b, &fix_at("u-01", 60, 42.6, 1.6));
    act(&a, &fix_at("u-01", 120, 42.55, 1.55));
    std::thread::sleep(std::time::Duration::from_millis(20));
    act(&b, &fix_at("u-01", 120, 42.55, 1.55));

    for s in [&a, &b, &a] {
        SyncEngine::sync_until_quiet(s.clone(), &url, quick(), 10).expect("syncs");
    }
    (srv, a, b)
}

#[test]
fn position_ties_resolve_the_same_on_every_replica() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (srv, a, b) = tie_world(tmp.path());
    let server_digest = srv
        .service()
        .with_storage(|s| s.state_digest())
        .expect("server digest");
    let b_received = {
        let s = lock(&b);
        let at120 = (fix_t0() + chrono::Duration::seconds(120)).timestamp_millis();
        s.conn()
            .query_row(
                "SELECT received_at FROM positions WHERE unit_id = 'u-01' AND fix_time = ?1",
                [at120],
                |r| r.get::<_, i64>(0),
            )
            .expect("fix at +120 s")
    };
    for (name, s) in [("A", &a), ("B", &b)] {
        let state = extract::state(lock(s).conn());
        let at = |secs: i64| {
            let key = format!(
                "u-01@{}",
                (fix_t0() + chrono::Duration::seconds(secs)).timestamp_millis()
            );
            state.row("positions", &key).cloned().expect("fix")
        };
        assert_eq!(
            at(60)["lat"],
            serde_json::json!(42.6),
            "{name}: the greater fix"
        );
        assert_eq!(at(60)["lon"], serde_json::json!(1.6), "{name}");
        assert_eq!(
            at(120)["received_at"],
            serde_json::json!(b_received),
            "{name}: the later receive time of the same fix"
        );
        let latest = state
            .row("unit_positions", "u-01")
            .cloned()
            .expect("latest");
        assert_eq!(latest["lat"], serde_json::json!(42.55), "{name}");
        assert_eq!(
            digest(s),
            server_digest,
            "{name} differs from the server: the tie was resolved by arrival order"
        );
    }
}

#[test]
fn position_ties_agree_with_the_model() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (srv, a, b) = tie_world(tmp.path());
    let dump = server_dump(srv.service());
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &[position(&a)], true),
            replica("console B", &b, &[position(&b)], true),
        ],
        9,
    );
}

#[test]
fn position_ties_resolve_the_same_through_a_compacted_snapshot() {
    // The tying fixes are compacted away (their fixes stay as history); a console joining
    // later loads them from the snapshot and must keep the same rows as the server.
    let tmp = tempfile::tempdir().expect("tmp");
    let (srv, a, b) = tie_world(tmp.path());
    let url = srv.url();
    // One newer fix each way: the tying reports are no longer any unit's newest op.
    act(&a, &fix_at("u-01", 600, 42.8, 1.8));
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    let head = srv.service().head().expect("head");
    let report = srv
        .service()
        .with_storage(|s| s.compact(head.gseq))
        .expect("compact");
    assert_eq!(report.removed, 4, "{report:?}");
    let c = console(&tmp.path().join("c"));
    let reports = SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c syncs");
    assert_eq!(reports.iter().map(|r| r.snapshots).sum::<usize>(), 1);
    let server_digest = srv
        .service()
        .with_storage(|s| s.state_digest())
        .expect("server digest");
    assert_eq!(digest(&c), server_digest, "the snapshot kept other fixes");
    assert_eq!(digest(&a), server_digest);
    // And the model fed the compacted log plus the compacted fixes agrees (B, which wrote
    // some of the tying fixes, catches up too).
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    let dump = server_dump(srv.service());
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &[position(&a)], true),
            replica("console B", &b, &[position(&b)], true),
            replica("console C", &c, &[position(&c)], true),
        ],
        10,
    );
}
