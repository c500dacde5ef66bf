//! Shared helpers: servers on 127.0.0.1, consoles in temp dirs, scripted actions, waiting.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_server::{RunningServer, Server, ServerConfig};
use outpost_store::Store;
use outpost_sync::{BackoffPolicy, SyncOptions, script};

/// A server on `listen` keeping its data in `dir`.
pub fn server_at(dir: &Path, listen: SocketAddr) -> RunningServer {
    Server::start(ServerConfig::plain_for_tests(dir, listen)).expect("server starts")
}

/// A server on a free port.
pub fn server(dir: &Path) -> RunningServer {
    server_at(dir, "127.0.0.1:0".parse().expect("addr"))
}

/// A free port on 127.0.0.1 for a server that starts later or restarts on the same address.
/// Picked below Linux's ephemeral range (32768–60999), where no other test's port-0 bind can
/// take it while the server is down; each test process starts at its own offset.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % 12_000;
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + ((start + n) % 12_000) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().expect("addr");
        }
    }
    panic!("no free port in 20000..32000");
}

/// A console's store in `dir`.
pub fn console(dir: &Path) -> Arc<Mutex<Store>> {
    std::fs::create_dir_all(dir).expect("dir");
    Arc::new(Mutex::new(
        Store::open(&dir.join("outpost.db"), chrono::Utc::now()).expect("store"),
    ))
}

/// Performs JSON-lines actions on the console.
pub fn act(store: &Arc<Mutex<Store>>, lines: &str) {
    let mut s = store.lock().expect("lock");
    for a in script::parse(lines).expect("script parses") {
        script::perform(&mut s, chrono::Utc::now(), "tester", &a).expect("action");
    }
}

/// Options with short timers for tests.
pub fn quick() -> SyncOptions {
    SyncOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        poll_interval: Duration::from_millis(500),
        failpoint: None,
        ..SyncOptions::default()
    }
}

/// Polls `f` every 20 ms until it holds or `secs` pass; returns whether it held.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// (pending, acked, parked) outbox counts.
pub fn counts(store: &Arc<Mutex<Store>>) -> (u64, u64, u64) {
    let s = store.lock().expect("lock");
    outpost_store::query::outbox_counts(s.conn()).expect("counts")
}

/// The state digest.
pub fn digest(store: &Arc<Mutex<Store>>) -> std::collections::BTreeMap<String, String> {
    let s = store.lock().expect("lock");
    outpost_sync::store_api::digest(&s).expect("digest")
}

/// The incident id a script named `name`.
pub fn incident_named(store: &Arc<Mutex<Store>>, name: &str) -> uuid::Uuid {
    let s = store.lock().expect("lock");
    let v = s
        .setting(&format!("script.incident.{name}"))
        .expect("setting")
        .expect("named");
    uuid::Uuid::parse_str(&v).expect("uuid")
}

/// Every op id in the server's log, in gseq order.
pub fn server_log(server: &RunningServer) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = server.service().pull(after, None).expect("pull");
        for p in &page.ops {
            out.push((
                p.gseq,
                p.op["op_id"].as_str().unwrap_or_default().to_string(),
            ));
            after = p.gseq;
        }
        if !page.more || page.ops.is_empty() {
            return out;
        }
    }
}

/// A first-day script: a unit, an incident `name`, the unit assigned, a note, a position.
pub fn first_script(unit: &str, name: &str) -> String {
    format!(
        r#"{{"action":"register_unit","unit_id":"{unit}","callsign":"{unit}-cs","unit_kind":"patrol_car"}}
{{"action":"create_incident","name":"{name}","incident_type":"fire","priority":"P2","location":{{"lat":42.5,"lon":1.52}},"address":"Carrer Major 1"}}
{{"action":"assign","incident":"{name}","unit_id":"{unit}"}}
{{"action":"note","incident":"{name}","text":"caller on the line"}}
{{"action":"position","unit_id":"{unit}","position":{{"lat":42.51,"lon":1.53}}}}
"#
    )
}
