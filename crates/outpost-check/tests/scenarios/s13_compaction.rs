//! S13: consoles return after the server compacted the history they need. Console A stays
//! online and reports hundreds of positions; B and C are away with pending work of their
//! own (a note, an incident, an old fix and a new fix). The server compacts
//! (`compact --before-gseq` its newest gseq). C loads the snapshot the way the engine does
//! on a 410 while it still has pending ops (they stay pending and stay applied); B goes
//! through the real engine (push, 410, snapshot, pull). Everyone converges; the compacted
//! fixes stay as track history; an old fix never moves the latest position back.

use std::sync::Arc;

use chrono::Utc;
use outpost_domain::op::OpBody;
use outpost_server::SyncError;
use outpost_sync::SyncEngine;

use crate::common::*;
use crate::extract;

const A_POSITIONS: i64 = 300;

#[test]
fn s13_compacted_history_snapshot_keeps_pending_ops_and_converges() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.path().join("server"), addr);
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    let c = console(&tmp.path().join("c"));

    act(
        &a,
        &format!(
            "{}{}{}",
            register_unit("u-01"),
            register_unit("u-02"),
            create_incident("fire", "P1")
        ),
    );
    for s in [&a, &b, &c] {
        SyncEngine::sync_until_quiet(s.clone(), &url, quick(), 10).expect("first sync");
    }
    let fire = incident_named(&a, "fire").to_string();
    let mut cur_b = vec![position(&b)];
    let mut cur_c = vec![position(&c)];
    let away_cursor = position(&b).cursor;

    // A online: a long track of u-01 and more work.
    let ha = SyncEngine::start(a.clone(), &url, Arc::new(|| {}), quick()).expect("a engine");
    let mut track = String::new();
    for s in 0..A_POSITIONS {
        track.push_str(&position_line("u-01", s, 0));
    }
    track.push_str(&create_incident("theft", "P3"));
    track.push_str(&assign("theft", "u-02"));
    act(&a, &track);
    ha.poke_local();
    assert!(wait_until(60, || caught_up(&a, srv.service())));

    // B and C away, writing.
    act(
        &b,
        &format!(
            "{}{}{}",
            note(&fire, "B: written while away"),
            create_incident("b-inc", "P2"),
            // Older than A's newest u-01 fix: joins the history, never the latest.
            position_line("u-01", 5, 500)
        ),
    );
    act(
        &c,
        &format!(
            "{}{}",
            note(&fire, "C: written while away"),
            // Newer than anything: becomes u-02's latest position.
            position_line("u-02", 10_000, 0)
        ),
    );

    // The server compacts everything it can.
    let head = srv.service().head().expect("head");
    let report = srv
        .service()
        .with_storage(|s| s.compact(head.gseq))
        .expect("compact");
    assert_eq!(report.removed, (A_POSITIONS - 1) as u64, "{report:?}");
    match srv.service().pull(away_cursor, None) {
        Err(SyncError::SnapshotRequired { floor, .. }) => assert_eq!(floor, head.gseq),
        other => panic!("a console that was away must get 410, got {other:?}"),
    }

    // C: the snapshot loaded with pending ops in the outbox (what the engine does on 410).
    let c_pending_before = lock(&c).outbox_counts().expect("counts");
    let c_note = outbox(&lock(&c))
        .into_iter()
        .find_map(|e| match e.op.body {
            OpBody::TimelineAppend { entry_id, .. } => Some(entry_id.to_string()),
            _ => None,
        })
        .expect("C's note");
    {
        let snap = srv.service().snapshot().expect("snapshot");
        assert!(!snap.compacted_positions.is_empty());
        let mut s = lock(&c);
        let r = s.load_snapshot(&snap, Utc::now()).expect("load snapshot");
        assert_eq!(r.cursor, head.gseq);
        assert_eq!(
            s.outbox_counts().expect("counts"),
            c_pending_before,
            "pending ops stay pending through a snapshot"
        );
        let state = extract::state(s.conn());
        assert!(
            state.row("timeline", &c_note).is_some(),
            "C's pending note is still applied after the snapshot"
        );
        let history = state
            .table("positions")
            .filter(|(k, _)| k.starts_with("u-01@"))
            .count();
        assert_eq!(
            history, A_POSITIONS as usize,
            "A's compacted track is history on C"
        );
    }
    cur_c.push(position(&c));

    // B: through the real engine.
    let reports = SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    assert!(
        reports.iter().map(|r| r.snapshots).sum::<usize>() >= 1,
        "B loaded a snapshot: {reports:?}"
    );
    cur_b.push(position(&b));
    SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c syncs");
    cur_c.push(position(&c));
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs again");
    cur_b.push(position(&b));
    ha.poke_local();
    assert!(wait_until(30, || caught_up(&a, srv.service())
        && caught_up(&b, srv.service())
        && caught_up(&c, srv.service())));
    ha.shutdown();
    let cur_a = vec![position(&a)];

    let d = digest(&a);
    assert_eq!(digest(&b), d, "B converged");
    assert_eq!(digest(&c), d, "C converged");
    let dump = server_dump(srv.service());
    assert_eq!(dump.digest.as_ref(), Some(&d), "the server agrees");

    // Principle 9 on every replica: u-01's latest is A's newest fix (B's old fix is history),
    // u-02's latest is C's new fix.
    for (name, s) in [("A", &a), ("B", &b), ("C", &c)] {
        let state = extract::state(lock(s).conn());
        let latest = |u: &str| {
            state
                .row("unit_positions", u)
                .and_then(|r| r.get("fix_time"))
                .and_then(serde_json::Value::as_i64)
        };
        let t = |secs: i64| (fix_t0() + chrono::Duration::seconds(secs)).timestamp_millis();
        assert_eq!(latest("u-01"), Some(t(A_POSITIONS - 1)), "{name}");
        assert_eq!(latest("u-02"), Some(t(10_000)), "{name}");
        assert_eq!(
            state
                .table("positions")
                .filter(|(k, _)| k.starts_with("u-01@"))
                .count(),
            A_POSITIONS as usize + 1,
            "{name}: A's track and B's late fix"
        );
    }

    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &cur_a, true),
            replica("console B", &b, &cur_b, true),
            replica("console C", &c, &cur_c, true),
        ],
        13,
    );
}
