//! The background engine: live propagation through the poke channel, offline → queue →
//! reconnect (S10, S11 with a shortened clock), status and backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use outpost_domain::clock::{Clock, FixedClock};
use outpost_store::query;
use outpost_sync::{LinkState, SyncEngine, SyncOptions};

use crate::common::*;

#[test]
fn a_write_reaches_another_console_through_the_poke() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    let applied_on_b = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&applied_on_b);
    // Long poll interval: only the poke can bring the op over quickly.
    let options = SyncOptions {
        poll_interval: Duration::from_secs(3_600),
        ..quick()
    };
    let ha = SyncEngine::start(a.clone(), &srv.url(), Arc::new(|| {}), options.clone()).expect("a");
    let hb = SyncEngine::start(
        b.clone(),
        &srv.url(),
        Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
        options,
    )
    .expect("b");
    assert!(wait_until(10, || ha.status().state == LinkState::Online
        && hb.status().state == LinkState::Online
        && hb.status().poke_connected));

    act(&a, &first_script("u-07", "i7"));
    ha.poke_local();
    let id = incident_named(&a, "i7");
    let started = Instant::now();
    assert!(wait_until(10, || {
        let s = b.lock().expect("lock");
        query::incident(s.conn(), id).expect("query").is_some()
            && query::units(s.conn()).expect("units").len() == 1
    }));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_until(10, || counts(&a) == (0, 5, 0)));
    assert!(wait_until(10, || digest(&a) == digest(&b)));
    // The page commits first, then the engine calls back.
    assert!(wait_until(10, || applied_on_b
        .load(std::sync::atomic::Ordering::SeqCst)
        >= 1));
    let st = hb.status();
    assert!(st.last_sync.is_some());
    assert_eq!(st.offline_since, None);
    assert_eq!(st.last_error, None);
    assert!(st.server_gseq >= 5);
    ha.shutdown();
    hb.shutdown();
    // Idempotent.
    hb.shutdown();
}

#[test]
fn offline_backlog_drains_when_the_server_comes_back_without_new_writes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let a = console(&tmp.path().join("a"));
    // Written before the engine starts: no local write happens after the first failure (S10).
    act(&a, &first_script("u-02", "i2"));
    let t0 = chrono::Utc
        .with_ymd_and_hms(2026, 11, 29, 8, 0, 0)
        .single()
        .expect("t0");
    let clock = Arc::new(FixedClock::new(t0));
    let options = SyncOptions {
        clock: clock.clone() as Arc<dyn Clock>,
        ..quick()
    };
    let h = SyncEngine::start(a.clone(), &url, Arc::new(|| {}), options).expect("start");
    assert!(wait_until(10, || h.status().failures >= 5));
    let st = h.status();
    assert_eq!(st.state, LinkState::Offline);
    assert_eq!(st.offline_since, Some(t0));
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("connection")),
        "{st:?}"
    );
    assert!(!st.error_is_permanent);

    // "48 hours" later (S11): still retrying, offline since the first failure, nothing deleted.
    clock.advance_secs(48 * 3_600);
    let before = h.status().failures;
    assert!(wait_until(10, || h.status().failures >= before + 5));
    assert_eq!(h.status().offline_since, Some(t0));
    assert_eq!(counts(&a), (5, 0, 0));

    // The server comes back on the same address: the timer-driven retry drains the backlog.
    let srv = server_at(&tmp.path().join("server"), addr);
    assert!(wait_until(10, || counts(&a) == (0, 5, 0)));
    assert!(wait_until(10, || h.status().state == LinkState::Online));
    let st = h.status();
    assert_eq!(st.offline_since, None);
    assert_eq!(st.last_error, None);
    assert_eq!(st.last_sync, Some(clock.now()));
    assert_eq!(server_log(&srv).len(), 5);
    h.shutdown();
}

#[test]
fn retries_are_bounded_and_jittered() {
    let tmp = tempfile::tempdir().expect("tmp");
    let url = format!("http://{}", free_addr());
    let a = console(&tmp.path().join("a"));
    let options = SyncOptions {
        backoff: outpost_sync::BackoffPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(80),
        },
        poke: false,
        ..quick()
    };
    let h = SyncEngine::start(a, &url, Arc::new(|| {}), options).expect("start");
    std::thread::sleep(Duration::from_millis(1_500));
    let failures = h.status().failures;
    // Delays lie in [5 ms, 80 ms]: about 1500/40 tries (at least 1500/80 when idle; a busy
    // CI machine gets fewer), and far fewer than a busy loop.
    assert!(
        (8..=300).contains(&failures),
        "{failures} failures in 1.5 s"
    );
    h.shutdown();
}

#[test]
fn a_bad_url_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = console(&tmp.path().join("a"));
    let err = SyncEngine::start(a, "ftp://x", Arc::new(|| {}), quick()).expect_err("bad url");
    assert!(err.to_string().contains("ftp://x"), "{err}");
}

#[test]
fn the_poke_channel_ends_a_long_backoff_when_the_server_returns() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let a = console(&tmp.path().join("a"));
    act(&a, &first_script("u-04", "i4"));
    let options = SyncOptions {
        // The engine alone would wait at least 10 s after its first failure.
        backoff: outpost_sync::BackoffPolicy {
            initial: Duration::from_secs(20),
            max: Duration::from_secs(60),
        },
        ..quick()
    };
    let h = SyncEngine::start(
        a.clone(),
        &format!("http://{addr}"),
        Arc::new(|| {}),
        options,
    )
    .expect("start");
    assert!(wait_until(10, || h.status().state == LinkState::Offline));
    std::thread::sleep(Duration::from_millis(500));
    let _srv = server_at(&tmp.path().join("server"), addr);
    let back = Instant::now();
    assert!(wait_until(9, || counts(&a) == (0, 5, 0)));
    assert!(
        back.elapsed() < Duration::from_secs(9),
        "{:?}",
        back.elapsed()
    );
    assert!(wait_until(5, || h.status().state == LinkState::Online));
    h.shutdown();
}

/// A server that comes back while the engine sits in a long backoff is noticed by the
/// engine's probe (a bare TCP connect every `PROBE_INTERVAL` while nothing listens), not at
/// the end of the backoff: here the backoff after the first failure is at least 30 s and the
/// poke channel is off, so only the probe can end the wait within the 10 s allowed.
#[test]
fn a_returning_server_ends_a_long_backoff_through_the_probe() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let a = console(&tmp.path().join("a"));
    act(&a, &first_script("u-03", "i3"));
    let options = SyncOptions {
        backoff: outpost_sync::BackoffPolicy {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(60),
        },
        poke: false,
        ..quick()
    };
    let h = SyncEngine::start(
        a.clone(),
        &format!("http://{addr}"),
        Arc::new(|| {}),
        options,
    )
    .expect("start");
    assert!(wait_until(10, || h.status().failures >= 1));
    assert_eq!(h.status().state, LinkState::Offline);
    assert!(
        h.status()
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("connection failed")),
        "{:?}",
        h.status()
    );
    let srv = server_at(&tmp.path().join("server"), addr);
    assert!(
        wait_until(10, || counts(&a) == (0, 5, 0)),
        "{:?}",
        h.status()
    );
    assert!(wait_until(10, || h.status().state == LinkState::Online));
    assert_eq!(server_log(&srv).len(), 5);
    h.shutdown();
}
