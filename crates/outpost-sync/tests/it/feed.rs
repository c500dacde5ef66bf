//! The live feed (issue 7): consoles apply the ops the poke socket carries; a console that
//! cannot keep up (its store busy) or that reconnects after a server restart falls back to
//! pulling and converges (SYNC.md I2, I3).

use std::sync::Arc;
use std::time::Duration;

use outpost_sync::{LinkState, SyncEngine, SyncOptions};

use crate::common::*;

/// Options where only the poke socket (the feed, or a poke and a pull) can bring ops over
/// quickly: no poll.
fn feed_options() -> SyncOptions {
    SyncOptions {
        poll_interval: Duration::from_secs(3_600),
        ..quick()
    }
}

fn positions(unit: &str, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| {
            format!(
                r#"{{"action":"position","unit_id":"{unit}","position":{{"lat":42.{i:04},"lon":1.52}}}}"#
            ) + "\n"
        })
        .collect()
}

#[test]
fn ops_reach_other_consoles_through_the_feed_and_converge() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let a = console(&tmp.path().join("a"));
    let readers: Vec<_> = (0..3)
        .map(|i| console(&tmp.path().join(format!("r{i}"))))
        .collect();
    let ha = SyncEngine::start(a.clone(), &srv.url(), Arc::new(|| {}), feed_options()).expect("a");
    let hr: Vec<_> = readers
        .iter()
        .map(|r| {
            SyncEngine::start(r.clone(), &srv.url(), Arc::new(|| {}), feed_options()).expect("r")
        })
        .collect();
    assert!(wait_until(10, || hr.iter().all(|h| h.status().state
        == LinkState::Online
        && h.status().poke_connected)));
    act(&a, &first_script("u-01", "i1"));
    ha.poke_local();
    // Many small pushes: each one a frame.
    for k in 0..10 {
        act(&a, &positions("u-01", k * 5, 5));
        ha.poke_local();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(wait_until(20, || counts(&a).0 == 0));
    let want = digest(&a);
    for r in &readers {
        assert!(
            wait_until(20, || digest(r) == want),
            "a reader did not converge"
        );
    }
    // The readers got (most of) it from the feed, not by pulling.
    for h in &hr {
        assert!(h.status().feed_frames_applied >= 5, "{:?}", h.status());
    }
    // Same cursor as the server's newest op: nothing missed, nothing twice.
    let newest = server_log(&srv).last().map(|(g, _)| *g).expect("log");
    for r in &readers {
        let s = r.lock().expect("lock");
        assert_eq!(s.sync_state().expect("state").cursor, newest);
    }
    ha.shutdown();
    for h in hr {
        h.shutdown();
    }
}

#[test]
fn a_busy_console_loses_nothing_and_converges() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    let ha = SyncEngine::start(a.clone(), &srv.url(), Arc::new(|| {}), feed_options()).expect("a");
    let hb = SyncEngine::start(b.clone(), &srv.url(), Arc::new(|| {}), feed_options()).expect("b");
    assert!(wait_until(10, || hb.status().state == LinkState::Online
        && hb.status().poke_connected));
    act(&a, &first_script("u-02", "i2"));
    ha.poke_local();
    assert!(wait_until(20, || digest(&b) == digest(&a)));
    {
        // B's store is busy (a long transaction, a slow disk) while A pushes 40 batches:
        // frames pile up on B's socket; B must not lose or reorder any of them.
        let _busy = b.lock().expect("lock");
        for k in 0..40 {
            act(&a, &positions("u-02", k * 3, 3));
            ha.poke_local();
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(wait_until(20, || counts(&a).0 == 0));
    }
    assert!(
        wait_until(20, || digest(&b) == digest(&a)),
        "B did not converge"
    );
    let newest = server_log(&srv).last().map(|(g, _)| *g).expect("log");
    assert!(wait_until(10, || b
        .lock()
        .expect("lock")
        .sync_state()
        .expect("state")
        .cursor
        == newest));
    // And the feed works again after the backlog: one more write arrives by a frame.
    let applied = hb.status().feed_frames_applied;
    act(&a, &positions("u-02", 500, 1));
    ha.poke_local();
    assert!(wait_until(20, || digest(&b) == digest(&a)));
    assert!(wait_until(5, || hb.status().feed_frames_applied > applied));
    ha.shutdown();
    hb.shutdown();
}

#[test]
fn a_console_reconnecting_after_a_server_restart_converges() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let data = tmp.path().join("server");
    let srv = server_at(&data, addr);
    let url = format!("http://{addr}");
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    let ha = SyncEngine::start(a.clone(), &url, Arc::new(|| {}), feed_options()).expect("a");
    let hb = SyncEngine::start(b.clone(), &url, Arc::new(|| {}), feed_options()).expect("b");
    assert!(wait_until(10, || hb.status().poke_connected));
    act(&a, &first_script("u-03", "i3"));
    ha.poke_local();
    assert!(wait_until(20, || digest(&b) == digest(&a)));
    // The server goes away; A keeps writing offline.
    srv.shutdown().expect("shutdown");
    assert!(wait_until(10, || !hb.status().poke_connected));
    act(&a, &positions("u-03", 0, 10));
    ha.poke_local();
    // Back on the same address and data: B's socket reconnects, A's backlog arrives.
    let srv = server_at(&data, addr);
    assert!(wait_until(20, || hb.status().poke_connected));
    for k in 0..5 {
        act(&a, &positions("u-03", 100 + k * 2, 2));
        ha.poke_local();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(wait_until(30, || counts(&a).0 == 0));
    assert!(
        wait_until(30, || digest(&b) == digest(&a)),
        "B did not converge"
    );
    let newest = server_log(&srv).last().map(|(g, _)| *g).expect("log");
    assert!(wait_until(10, || b
        .lock()
        .expect("lock")
        .sync_state()
        .expect("state")
        .cursor
        == newest));
    ha.shutdown();
    hb.shutdown();
}
