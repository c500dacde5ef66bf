//! S5 (reduced counts): a console offline for a long shift — 5,000 positions, 200
//! incident/assignment/status/close ops and 50 notes — reconnects through the real sync
//! engine to a real server while a second console is online and working. Critical ops are
//! acknowledged before any position (server order), local writes during the catch-up stay
//! interactive, everything converges, I1–I6 hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_domain::op::Lane;
use outpost_sync::{LinkState, SyncEngine, SyncOptions};

use crate::common::*;

const UNITS: usize = 5;
const INCIDENTS: usize = 50; // × (create, assign, on_scene, close) = 200 critical ops
const NOTES: usize = 50;
const POSITIONS: usize = 5_000;

#[test]
fn s5_offline_backlog_critical_first_then_converges() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.path().join("server"), addr);
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));

    // Day start: console B registers the units; A pulls them, then goes offline.
    let mut roster = String::new();
    // One more unit than A uses: B's own (no concurrent writes to one unit's status).
    for u in 0..=UNITS {
        roster.push_str(&register_unit(&format!("u-{u:02}")));
    }
    act(&b, &roster);
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    let mut a_cursors = vec![position(&a)];
    let roster_ops = srv.service().head().expect("head").gseq;
    assert_eq!(roster_ops, UNITS as u64 + 1);

    // Offline shift on A: positions interleaved with the incident work, as they happen.
    let mut script = String::new();
    let per_incident = POSITIONS / INCIDENTS;
    let mut secs = 0i64;
    for i in 0..INCIDENTS {
        let name = format!("i{i}");
        let unit = format!("u-{:02}", i % UNITS);
        script.push_str(&create_incident(&name, "P2"));
        script.push_str(&assign(&name, &unit));
        script.push_str(&status(&unit, "on_scene"));
        if i < NOTES {
            script.push_str(&note(&name, &format!("offline note {i}")));
        }
        for _ in 0..per_incident {
            script.push_str(&position_line(&unit, secs, 0));
            secs += 1;
        }
        script.push_str(&close(&name));
    }
    act(&a, &script);
    {
        let c = lock(&a).outbox_counts().expect("counts");
        assert_eq!(c.pending_critical as usize, INCIDENTS * 4);
        assert_eq!(c.pending_notes as usize, NOTES);
        assert_eq!(c.pending_positions as usize, POSITIONS);
    }

    // Meanwhile B works online: its own incident (engine running the whole time).
    let hb = SyncEngine::start(b.clone(), &url, Arc::new(|| {}), quick()).expect("b engine");
    act(&b, &create_incident("b1", "P1"));
    act(&b, &assign("b1", "u-05"));
    hb.poke_local();

    // A reconnects.
    let backlog_seq = outbox(&lock(&a))
        .iter()
        .map(|e| e.op.seq)
        .max()
        .unwrap_or(0);
    let started = Instant::now();
    let ha = SyncEngine::start(
        a.clone(),
        &url,
        Arc::new(|| {}),
        SyncOptions {
            push_batch: 500,
            ..quick()
        },
    )
    .expect("a engine");
    let mut critical_acked = None;
    let mut positions_at_critical = 0;
    // A commander keeps working on A during the catch-up: each write waits for the store
    // lock the engine takes for one batch or one page at a time.
    let mut live = 0usize;
    let mut worst_write = Duration::ZERO;
    let mut polls = 0u64;
    while started.elapsed() < Duration::from_secs(120) {
        polls += 1;
        if polls.is_multiple_of(10) && pending(&a) > 0 {
            let t = Instant::now();
            act(&a, &note("i0", &format!("live note {live}")));
            worst_write = worst_write.max(t.elapsed());
            live += 1;
            ha.poke_local();
        }
        let c = lock(&a).outbox_counts().expect("counts");
        if critical_acked.is_none() && c.pending_critical == 0 {
            critical_acked = Some(started.elapsed());
            positions_at_critical = c.pending_positions;
        }
        a_cursors.push(position(&a));
        if caught_up(&a, srv.service()) && caught_up(&b, srv.service()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let all_done = started.elapsed();
    assert!(
        wait_until(60, || caught_up(&a, srv.service())
            && caught_up(&b, srv.service())),
        "both consoles catch up"
    );
    assert!(wait_until(10, || ha.status().state == LinkState::Online));
    let critical_acked = critical_acked.expect("critical lane drained");
    eprintln!(
        "S5 reduced: {} ops; critical acked after {critical_acked:?} ({positions_at_critical} \
         positions still pending then), caught up after {all_done:?}; {live} live writes, \
         the slowest took {worst_write:?}",
        INCIDENTS * 4 + NOTES + POSITIONS
    );
    assert!(
        worst_write < Duration::from_secs(2),
        "a local write waited {worst_write:?} behind the sync engine"
    );
    assert!(
        critical_acked < Duration::from_secs(15),
        "critical ops acked after {critical_acked:?}"
    );
    ha.shutdown();
    hb.shutdown();
    a_cursors.push(position(&a));

    // Order of acknowledgement: on the server every critical op of A precedes every note
    // of A, and every note precedes every position (lanes, SYNC.md principle 8).
    let log = server_log(srv.service());
    let a_origin = lock(&a).origin_id();
    let mut last: HashMap<Lane, u64> = HashMap::new();
    let mut first: HashMap<Lane, u64> = HashMap::new();
    for (g, op) in &log {
        if op.origin != a_origin || op.seq > backlog_seq {
            continue;
        }
        let l = last.entry(op.lane).or_insert(*g);
        *l = (*l).max(*g);
        let f = first.entry(op.lane).or_insert(*g);
        *f = (*f).min(*g);
    }
    assert!(
        last[&Lane::Critical] < first[&Lane::Notes],
        "a note was acked before the last critical op: {last:?} {first:?}"
    );
    assert!(
        last[&Lane::Notes] < first[&Lane::Positions],
        "a position was acked before the last note: {last:?} {first:?}"
    );
    let from_a = log.iter().filter(|(_, op)| op.origin == a_origin).count();
    assert_eq!(from_a, INCIDENTS * 4 + NOTES + POSITIONS + live);

    // Convergence and the invariants.
    assert_eq!(digest(&a), digest(&b));
    let dump = server_dump(srv.service());
    assert_eq!(dump.digest.as_ref(), Some(&digest(&a)));
    let b_cursors = vec![position(&b)];
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &a_cursors, true),
            replica("console B", &b, &b_cursors, true),
        ],
        5,
    );
    // The closes freed every unit A used; B's unit on its open incident stays dispatched.
    let s = lock(&a);
    let units = outpost_store::query::units(s.conn()).expect("units");
    for u in &units {
        let expected = if u.id == "u-05" {
            "dispatched"
        } else {
            "available"
        };
        assert_eq!(
            serde_json::to_value(u.status).expect("status"),
            serde_json::json!(expected),
            "{}",
            u.id
        );
    }
}
