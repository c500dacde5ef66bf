//! S15 with reduced counts: many consoles with offline backlogs reconnect to a server at the
//! same instant; every op arrives once and every console converges.

use std::sync::Arc;

use outpost_sync::{LinkState, SyncEngine, SyncStore};

use crate::common::*;

const CONSOLES: usize = 40;
const OPS_EACH: usize = 10;

#[test]
fn many_consoles_reconnect_at_once_and_converge() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let consoles: Vec<_> = (0..CONSOLES)
        .map(|i| {
            let c = console(&tmp.path().join(format!("c{i}")));
            let mut lines = format!(
                "{{\"action\":\"register_unit\",\"unit_id\":\"u-{i}\",\"callsign\":\"C{i}\",\"unit_kind\":\"patrol_car\"}}\n"
            );
            for k in 1..OPS_EACH {
                lines.push_str(&format!(
                    "{{\"action\":\"position\",\"unit_id\":\"u-{i}\",\"position\":{{\"lat\":42.5,\"lon\":{}}}}}\n",
                    1.5 + k as f64 * 0.001
                ));
            }
            act(&c, &lines);
            c
        })
        .collect();
    // Every engine starts while the server is down, then the server appears.
    let handles: Vec<_> = consoles
        .iter()
        .map(|c| SyncEngine::start(c.clone(), &url, Arc::new(|| {}), quick()).expect("start"))
        .collect();
    assert!(wait_until(10, || handles
        .iter()
        .all(|h| h.status().state == LinkState::Offline)));
    let srv = server_at(&tmp.path().join("server"), addr);

    let total = CONSOLES * OPS_EACH;
    assert!(wait_until(60, || consoles.iter().all(|c| counts(c).0 == 0)));
    let log = server_log(&srv);
    assert_eq!(log.len(), total);
    let unique: std::collections::BTreeSet<&String> = log.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), total);
    let head = log[total - 1].0;
    assert!(wait_until(60, || consoles.iter().all(|c| c
        .lock()
        .expect("lock")
        .position()
        .expect("pos")
        .cursor
        == head)));
    let first = digest(&consoles[0]);
    for c in &consoles[1..] {
        assert_eq!(digest(c), first);
    }
    for h in &handles {
        h.shutdown();
    }
}
