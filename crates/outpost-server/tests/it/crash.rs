//! S3: the real `outpost-server` binary is killed with SIGKILL at random points while two
//! consoles push and one pulls, and restarted on the same data directory and port. Nothing
//! acknowledged is lost, nothing is stored twice, gseqs never change and never go back.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use outpost_domain::op::{Lane, OpEnvelope};
use outpost_domain::wire::{Outcome, PullResponse, PushResponse};

use crate::support::{Author, Client, request};

/// A small deterministic generator (xorshift64*), seeded per run and printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A free port below Linux's ephemeral range (32768–60999): while the server is killed,
/// no other test's port-0 bind can take it, so the restart on the same port succeeds.
fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(89) % 12_000;
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + ((start + n) % 12_000) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().expect("addr");
        }
    }
    panic!("no free port in 20000..32000");
}

/// Starts `outpost-server serve` and waits for its "listening on ADDR" line.
fn spawn(data: &Path, listen: SocketAddr) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--data"])
        .arg(data)
        .arg("--listen")
        .arg(listen.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn outpost-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    (child, addr)
}

/// What the consoles learnt from acknowledgements and pulls: op id → gseq.
#[derive(Default)]
struct Seen {
    acked: BTreeMap<Uuid, u64>,
    pulled: BTreeMap<Uuid, u64>,
}

impl Seen {
    fn ack(&mut self, op_id: Uuid, gseq: u64) {
        let before = self.acked.insert(op_id, gseq);
        assert!(
            before.is_none() || before == Some(gseq),
            "op {op_id} acked at gseq {before:?} and later at {gseq}"
        );
    }
}

/// Pushes one lane's outbox until every op is answered; survives the server dying.
fn drain_lane(c: &Client, origin: Uuid, lane: Lane, ops: &[OpEnvelope], seen: &Mutex<Seen>) {
    let mut next = 0;
    while next < ops.len() {
        let end = (next + 25).min(ops.len());
        let Some((status, body)) = c.try_push(&request(origin, lane, &ops[next..end])) else {
            // Connection refused or reset, or the answer cut off: the server is down.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if status != 200 {
            assert_eq!(status, 503, "push answered {status}: {body}");
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let r: PushResponse = serde_json::from_value(body).expect("push response");
        assert_eq!(r.resend_from, None, "no gaps are ever sent");
        let mut seen = seen.lock().expect("seen");
        for (res, op) in r.results.iter().zip(&ops[next..end]) {
            assert_eq!(res.op_id, op.op_id);
            match res.outcome {
                Outcome::Accepted { gseq } | Outcome::Duplicate { gseq } => {
                    seen.ack(op.op_id, gseq)
                }
                Outcome::Parked { ref reason } => panic!("op {} parked: {reason}", op.op_id),
            }
        }
        next += r.results.len();
    }
}

/// The agency CA and the data directory of the test (one test in this file), set by
/// `cert init`.
static CA: std::sync::OnceLock<(String, std::path::PathBuf)> = std::sync::OnceLock::new();

/// A client signed in on a device enrolled with `origin` (a new device per call).
fn client(addr: SocketAddr, origin: Uuid) -> Client {
    let (ca, data) = CA.get().expect("cert init ran");
    crate::support::signed_in_client(addr, ca, data, "cmdr.li", origin)
}

#[test]
fn s3_sigkill_during_pushes_and_pulls_loses_and_duplicates_nothing() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("s3 seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    CA.get_or_init(|| {
        (
            crate::support::cert_init(dir.path()),
            dir.path().to_path_buf(),
        )
    });
    let (mut child, addr) = spawn(dir.path(), free_addr());

    // The roster and one incident first.
    let mut seeder = Author::new(9);
    let unit = seeder.unit("u-01");
    let (incident, create) = seeder.incident();
    let seen = Arc::new(Mutex::new(Seen::default()));
    drain_lane(
        &client(addr, seeder.origin),
        seeder.origin,
        Lane::Critical,
        &[unit, create],
        &seen,
    );

    // Two consoles with a backlog in every lane.
    let mut outboxes = Vec::new();
    for n in 1..=2u128 {
        let mut a = Author::new(n);
        let mut lanes: BTreeMap<Lane, Vec<OpEnvelope>> = BTreeMap::new();
        for i in 0..600 {
            let op = match i % 10 {
                0 => a.incident().1,
                1..=4 => a.note(incident, &format!("console {n} note {i}")),
                _ => a.position("u-01", i64::try_from(n * 1000).unwrap_or(0) + i),
            };
            lanes.entry(op.lane).or_default().push(op);
        }
        outboxes.push((a.origin, lanes));
    }
    let all_ops: Vec<OpEnvelope> = outboxes
        .iter()
        .flat_map(|(_, lanes)| lanes.values().flatten().cloned())
        .collect();

    let done = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (origin, lanes) in outboxes {
        let seen = seen.clone();
        workers.push(std::thread::spawn(move || {
            let c = client(addr, origin);
            for (lane, ops) in &lanes {
                drain_lane(&c, origin, *lane, ops, &seen);
            }
        }));
    }
    // A puller that checks every page: gseqs strictly increasing, an op always at one gseq.
    let puller = {
        let seen = seen.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let c = client(addr, Uuid::now_v7());
            let mut cursor = 0u64;
            while !done.load(Ordering::SeqCst) {
                let got = c.try_get(&format!("/v1/pull?after={cursor}&limit=50"));
                let Some((200, body)) = got else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let page: PullResponse = serde_json::from_value(body).expect("page");
                let mut seen = seen.lock().expect("seen");
                for o in &page.ops {
                    assert!(o.gseq > cursor, "gseq {} after cursor {cursor}", o.gseq);
                    cursor = o.gseq;
                    let id: Uuid = serde_json::from_value(o.op["op_id"].clone()).expect("id");
                    let before = seen.pulled.insert(id, o.gseq);
                    assert_eq!(before, None, "op {id} pulled twice");
                }
            }
            cursor
        })
    };

    let started = Instant::now();
    let mut kills = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(10 + rng.below(150)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        std::thread::sleep(Duration::from_millis(rng.below(100)));
        let (c, again) = spawn(dir.path(), addr);
        assert_eq!(again, addr);
        child = c;
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the consoles did not drain (seed {seed})"
        );
    }
    for w in workers {
        w.join().expect("pusher");
    }
    done.store(true, Ordering::SeqCst);
    puller.join().expect("puller");
    assert!(kills >= 2, "only {kills} kills happened");

    // After the storm: the whole log, read from a fresh process after one more SIGKILL.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let (mut child, _) = spawn(dir.path(), addr);
    let c = client(addr, Uuid::now_v7());
    let (status, body) = c.get("/v1/pull?after=0&limit=5000");
    assert_eq!(status, 200);
    let log: PullResponse = serde_json::from_value(body).expect("page");
    assert!(!log.more);
    let mut in_log = BTreeMap::new();
    let mut last = 0;
    for o in &log.ops {
        assert!(o.gseq > last);
        last = o.gseq;
        let id: Uuid = serde_json::from_value(o.op["op_id"].clone()).expect("id");
        assert_eq!(in_log.insert(id, o.gseq), None, "op {id} twice in the log");
    }
    assert_eq!(log.ops.len(), 2 + all_ops.len(), "(seed {seed})");
    assert_eq!(log.server_gseq, last);
    let seen = seen.lock().expect("seen");
    for op in &all_ops {
        let g = in_log.get(&op.op_id).copied();
        assert!(g.is_some(), "op {} lost (seed {seed})", op.op_id);
        assert_eq!(
            seen.acked.get(&op.op_id).copied(),
            g,
            "ack differs from the log"
        );
    }
    for (id, g) in &seen.pulled {
        assert_eq!(in_log.get(id), Some(g), "a pulled op moved or vanished");
    }
    eprintln!(
        "s3: {kills} kills, {} ops, {} pulled while killing",
        log.ops.len(),
        seen.pulled.len()
    );
    let _ = child.kill();
    let _ = child.wait();
}
