//! S5 with reduced counts: a long offline backlog drains with critical ops first, and local
//! writes keep going at interactive latency while it does (the engine holds the store for
//! one batch or one page at a time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_store::query;
use outpost_sync::{LinkState, SyncEngine};

use crate::common::*;

const POSITIONS: usize = 3_000;
const CRITICAL: usize = 100;
const NOTES: usize = 50;

#[test]
fn an_offline_backlog_drains_critical_first_without_blocking_local_writes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let a = console(&tmp.path().join("a"));

    // Offline: positions first (oldest), then incidents and notes written later.
    act(&a, &first_script("u-01", "i0"));
    let mut lines = String::new();
    for i in 0..POSITIONS {
        lines.push_str(&format!(
            "{{\"action\":\"position\",\"unit_id\":\"u-01\",\"position\":{{\"lat\":42.5,\"lon\":{}}}}}\n",
            1.5 + (i as f64) * 0.00001
        ));
    }
    for i in 0..CRITICAL {
        lines.push_str(&format!(
            "{{\"action\":\"create_incident\",\"name\":\"c{i}\",\"incident_type\":\"theft\",\"priority\":\"P3\",\"location\":{{\"lat\":42.5,\"lon\":1.5}}}}\n"
        ));
    }
    for i in 0..NOTES {
        lines.push_str(&format!(
            "{{\"action\":\"note\",\"incident\":\"i0\",\"text\":\"note {i}\"}}\n"
        ));
    }
    act(&a, &lines);
    let total = 5 + POSITIONS + CRITICAL + NOTES;
    assert_eq!(counts(&a).0 as usize, total);

    let srv = server_at(&tmp.path().join("server"), addr);
    let options = outpost_sync::SyncOptions {
        push_batch: 500,
        ..quick()
    };
    let started = Instant::now();
    let h = SyncEngine::start(a.clone(), &url, Arc::new(|| {}), options).expect("start");

    // A commander keeps working during the catch-up: each write waits for the store lock.
    let mut worst = Duration::ZERO;
    let mut critical_done = None;
    let mut n = 0;
    while counts(&a).0 > 0 && started.elapsed() < Duration::from_secs(60) {
        let t = Instant::now();
        act(
            &a,
            &format!("{{\"action\":\"note\",\"incident\":\"i0\",\"text\":\"live {n}\"}}"),
        );
        worst = worst.max(t.elapsed());
        n += 1;
        h.poke_local();
        if critical_done.is_none() {
            let s = a.lock().expect("lock");
            if s.outbox_counts().expect("counts").pending_critical == 0 {
                critical_done = Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let drained = started.elapsed();
    assert!(wait_until(30, || counts(&a).0 == 0), "backlog drained");
    assert!(wait_until(10, || h.status().state == LinkState::Online));
    let critical_done = critical_done.expect("critical lane drained");
    eprintln!(
        "S5-reduced: {total} ops; critical acked after {critical_done:?}, all after {drained:?}; \
         {n} live writes, worst write latency {worst:?}"
    );
    assert!(critical_done < Duration::from_secs(10), "{critical_done:?}");
    assert!(
        worst < Duration::from_secs(2),
        "a local write waited {worst:?}"
    );

    // Every critical op was ordered before every position on the server.
    let log = server_log(&srv);
    assert_eq!(log.len(), total + n);
    let s = a.lock().expect("lock");
    let outbox = query::outbox_all(s.conn()).expect("outbox");
    let kind_of: std::collections::HashMap<String, String> = outbox
        .iter()
        .map(|r| (r.envelope.op_id.to_string(), r.kind.clone()))
        .collect();
    let last_create = log
        .iter()
        .rposition(|(_, id)| kind_of[id] == "incident.create")
        .expect("creates");
    let first_position = log
        .iter()
        .position(|(_, id)| kind_of[id] == "position.report")
        .expect("positions");
    assert!(last_create < first_position);
    drop(s);
    h.shutdown();
}
