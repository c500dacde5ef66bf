//! S15: 200 consoles reconnect at the same instant. Each was synced once (the roster and a
//! shared incident), then wrote offline: an incident of its own and a fix of the shared
//! unit (two lanes). All 200 real sync engines (poke channel on) start together against one
//! server. Every console's ops are acked within the bound (none starves), every console
//! converges with the server, and I1–I6 hold over all 200.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chrono::Utc;
use outpost_sync::{SyncEngine, SyncHandle, SyncOptions};

use crate::common::*;

const CONSOLES: usize = 200;
/// Ops each console wrote offline (every console applies everyone's: ~CONSOLES² × this).
const OPS_EACH: usize = 2;
/// How long the whole herd may take to be acked (debug build, 2 busy cores).
const ACK_BOUND: Duration = Duration::from_secs(90);

#[test]
fn s15_two_hundred_consoles_reconnect_at_once() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.path().join("server"), addr);

    let seed = console(&tmp.path().join("seed"));
    act(
        &seed,
        &format!("{}{}", register_unit("u-01"), create_incident("base", "P2")),
    );
    SyncEngine::sync_until_quiet(seed.clone(), &url, quick(), 10).expect("seed syncs");

    // The consoles: synced once (the same pull the engine applies), then offline work.
    let first_page = srv.service().pull(0, None).expect("pull");
    let setup = Instant::now();
    let dirs = tmp.path();
    let consoles: Vec<Shared> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let first_page = &first_page;
                scope.spawn(move || {
                    (w..CONSOLES)
                        .step_by(4)
                        .map(|i| {
                            let s = console(&dirs.join(format!("c{i:03}")));
                            lock(&s)
                                .apply_pull(first_page, Utc::now())
                                .expect("first sync");
                            act(
                                &s,
                                &format!(
                                    "{}{}",
                                    create_incident(&format!("h{i}"), "P3"),
                                    position_line("u-01", i as i64, 0)
                                ),
                            );
                            (i, s)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Shared)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("setup worker"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, s)| s).collect()
    });
    eprintln!("S15: {CONSOLES} consoles set up in {:?}", setup.elapsed());
    let mut cursors: Vec<Vec<_>> = consoles.iter().map(|s| vec![position(s)]).collect();

    // All at once.
    let gate = Arc::new(Barrier::new(CONSOLES + 1));
    let starters: Vec<std::thread::JoinHandle<SyncHandle>> = consoles
        .iter()
        .map(|s| {
            let s = s.clone();
            let gate = Arc::clone(&gate);
            let url = url.clone();
            std::thread::spawn(move || {
                gate.wait();
                SyncEngine::start(
                    s,
                    &url,
                    Arc::new(|| {}),
                    SyncOptions {
                        // A loaded server: keep the retry schedule realistic but bounded.
                        backoff: outpost_sync::BackoffPolicy {
                            initial: Duration::from_millis(100),
                            max: Duration::from_secs(2),
                        },
                        poll_interval: Duration::from_secs(1),
                        ..quick()
                    },
                )
                .expect("engine starts")
            })
        })
        .collect();
    gate.wait();
    let started = Instant::now();
    let start_ms = Utc::now().timestamp_millis();
    let engines: Vec<SyncHandle> = starters
        .into_iter()
        .map(|t| t.join().expect("starter"))
        .collect();

    // Everyone catches up with everything.
    // (Polled gently: the poll must not compete with the herd for the server's lock.)
    let mut caught = false;
    while !caught && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(250));
        let head = srv.service().head().expect("head");
        caught = consoles.iter().all(|s| caught_up_to(s, &head));
    }
    let all_caught_up = started.elapsed();
    let behind: Vec<usize> = (0..CONSOLES)
        .filter(|i| !caught_up(&consoles[*i], srv.service()))
        .collect();
    assert!(
        caught,
        "{} console(s) behind the server after {all_caught_up:?}: {:?}",
        behind.len(),
        behind
            .iter()
            .take(5)
            .map(|i| (
                position(&consoles[*i]),
                pending(&consoles[*i]),
                engines[*i].status()
            ))
            .collect::<Vec<_>>()
    );
    for e in &engines {
        e.shutdown();
    }

    // None starved: per console, when its last op was acked (the outbox's ack time, stamped
    // by the engine when it recorded the server's answer).
    let mut acked: Vec<Duration> = consoles
        .iter()
        .map(|s| {
            let last: i64 = lock(s)
                .conn()
                .query_row("SELECT MAX(acked_at) FROM outbox", [], |r| r.get(0))
                .expect("acked_at");
            Duration::from_millis(u64::try_from(last - start_ms).unwrap_or(0))
        })
        .collect();
    acked.sort();
    eprintln!(
        "S15: {CONSOLES} consoles × {OPS_EACH} ops; last op acked: first console {:?}, median \
         {:?}, last console {:?}; all caught up after {all_caught_up:?}; server gseq {}",
        acked[0],
        acked[CONSOLES / 2],
        acked[CONSOLES - 1],
        srv.service().head().expect("head").gseq
    );
    assert!(
        acked[CONSOLES - 1] < ACK_BOUND,
        "the slowest console's ops were acked only after {:?}",
        acked[CONSOLES - 1]
    );
    for (i, s) in consoles.iter().enumerate() {
        cursors[i].push(position(s));
    }

    let checking = Instant::now();
    let dump = server_dump(srv.service());
    assert_eq!(dump.log.len(), 2 + CONSOLES * OPS_EACH);
    // (Each console's digest is compared with the server's and the model's by the checker.)
    let replicas: Vec<_> = consoles
        .iter()
        .enumerate()
        .map(|(i, s)| replica(&format!("console {i}"), s, &cursors[i], i % 50 == 0))
        .collect();
    assert_invariants(&dump, &replicas, 15);
    eprintln!("S15: checks took {:?}", checking.elapsed());
}

/// S15 with one heavy console: a console with a 3,000-position backlog reconnects at the
/// same instant as 30 consoles with one critical op each (each of which then pulls it all).
/// The small consoles are acked while the heavy backlog still drains (a big backlog does not
/// starve the others).
#[test]
fn s15_small_consoles_are_not_starved_by_a_heavy_backlog() {
    let _heavy = heavy();
    const SMALL: usize = 30;
    const BACKLOG: i64 = 3_000;
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.path().join("server"), addr);
    let seed = console(&tmp.path().join("seed"));
    act(&seed, &register_unit("u-01"));
    SyncEngine::sync_until_quiet(seed.clone(), &url, quick(), 10).expect("seed syncs");
    let first_page = srv.service().pull(0, None).expect("pull");
    let open = |name: &str| {
        let s = console(&tmp.path().join(name));
        lock(&s)
            .apply_pull(&first_page, Utc::now())
            .expect("first sync");
        s
    };
    let big = open("big");
    let mut backlog = String::new();
    for secs in 0..BACKLOG {
        backlog.push_str(&position_line("u-01", secs, 0));
    }
    act(&big, &backlog);
    let small: Vec<Shared> = (0..SMALL)
        .map(|i| {
            let s = open(&format!("s{i:02}"));
            act(&s, &create_incident(&format!("s{i}"), "P1"));
            s
        })
        .collect();

    let start_ms = Utc::now().timestamp_millis();
    let options = SyncOptions {
        backoff: outpost_sync::BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        },
        ..quick()
    };
    let mut engines =
        vec![SyncEngine::start(big.clone(), &url, Arc::new(|| {}), options.clone()).expect("big")];
    for s in &small {
        engines.push(
            SyncEngine::start(s.clone(), &url, Arc::new(|| {}), options.clone()).expect("small"),
        );
    }
    let mut done = false;
    let started = Instant::now();
    while !done && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(250));
        let head = srv.service().head().expect("head");
        done = caught_up_to(&big, &head) && small.iter().all(|s| caught_up_to(s, &head));
    }
    assert!(done, "everyone catches up");
    for e in &engines {
        e.shutdown();
    }
    let last_ack = |s: &Shared| -> i64 {
        let t: i64 = lock(s)
            .conn()
            .query_row("SELECT MAX(acked_at) FROM outbox", [], |r| r.get(0))
            .expect("acked_at");
        t - start_ms
    };
    let big_done = last_ack(&big);
    let mut small_done: Vec<i64> = small.iter().map(last_ack).collect();
    small_done.sort_unstable();
    eprintln!(
        "S15 heavy: {BACKLOG} positions acked after {big_done} ms; {SMALL} small consoles \
         acked after {} ms (median {} ms)",
        small_done[SMALL - 1],
        small_done[SMALL / 2]
    );
    assert!(
        small_done[SMALL - 1] < big_done,
        "a small console waited for the whole heavy backlog: {} ms vs {big_done} ms",
        small_done[SMALL - 1]
    );
    let dump = server_dump(srv.service());
    let mut replicas = vec![replica("heavy", &big, &[position(&big)], true)];
    replicas.extend(
        small
            .iter()
            .enumerate()
            .map(|(i, s)| replica(&format!("small {i}"), s, &[position(s)], false)),
    );
    assert_invariants(&dump, &replicas, 151);
}
