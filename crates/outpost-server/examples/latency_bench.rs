//! Load generator and consoles for `bench/latency.sh` (issue 7, live latency).
//!
//! - `provision --server-data D --out AUTH`: an enrolled device and a signed-in commander
//!   `bench` straight in the server's security database (`cert init` must have run), for
//!   `setup`'s pushes and the `GET /v1/ingest/stats` reads. Set-up, not a measurement.
//! - `setup --server URL --units N --auth AUTH`: registers units `u-0..N` and binds devices
//!   `dev-0..N` to them (pushed like a console).
//! - `run --server URL --server-data D --osmand ADDR --units N --consoles C --seconds S
//!   --dir DIR --auth AUTH [--server-pid PID]`: provisions C consoles (each its own console
//!   database under DIR, its own enrolled device and commander session, straight in the
//!   security database), starts C real sync engines (`outpost_sync::SyncEngine`, the app's
//!   default options: TLS with the agency CA pinned, the poke socket with the live feed) in
//!   this process, waits until every one has caught up, then every unit reports over OsmAnd
//!   once a second for S seconds (spread evenly over the second, each fix stamped with its
//!   send time). For every console and every fix it records the time the fix became visible
//!   in that console's database minus the fix time.
//!
//! How "visible" is measured: each console's store is wrapped ([`Timed`]) so that right
//! after `apply_pull` commits (a pulled page or a live-feed frame: the same transaction that
//! makes the ops visible to any reader of the database), the wall clock is read once and
//! every `position.report` op of the page newer than the old cursor gives one sample
//! (now − fix time). No polling, so no polling interval is added; the cost is reading one
//! JSON field per op under the store lock. Units report with the send time as fix time
//! (millisecond resolution), so a sample is the whole path: OsmAnd request → gateway batch →
//! push → log → feed (or poke + pull) → console transaction.
//!
//! With `--receivers R` (the script runs it with `--consoles 0`) it also starts R feed
//! receivers ([`receiver`]): a console's live-feed socket each (own device and session),
//! parsing every frame and timing each position op when its frame is read off the socket —
//! report → every console's socket, the server's part — without applying anything.
//!
//! Prints JSON: percentiles over all consoles and fixes (the first 2 s are warm-up and left
//! out), per-console sample counts, reports sent, positions the gateway wrote, and whether
//! every console applied every one of them (`complete`). With `--server-pid`, the server's
//! CPU time during the load.
//!
//! Everything on 127.0.0.1; the server is the real `outpost-server serve` started by the
//! script.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::op::{Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::unit::UnitKind;
use outpost_domain::wire::{
    PROTOCOL_VERSION, PullResponse, PulledOp, PushRequest, PushResponse, Snapshot,
};
use outpost_store::{Store, StoreError};
use outpost_sync::{Failpoint, PullRecord, PushRecord, SyncPosition, SyncStore};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A device + commander session for the tool's own requests.
    Provision {
        #[arg(long)]
        server_data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Registers units and binds their devices.
    Setup {
        #[arg(long)]
        server: String,
        #[arg(long)]
        units: usize,
        #[arg(long)]
        auth: PathBuf,
    },
    /// The measurement.
    Run {
        #[arg(long)]
        server: String,
        #[arg(long)]
        server_data: PathBuf,
        #[arg(long)]
        osmand: SocketAddr,
        #[arg(long)]
        units: usize,
        #[arg(long)]
        consoles: usize,
        /// Feed receivers (live-feed sockets that only read and time the frames) instead of
        /// or next to the consoles.
        #[arg(long, default_value_t = 0)]
        receivers: usize,
        #[arg(long)]
        seconds: u64,
        /// OsmAnd keep-alive connections carrying the reports.
        #[arg(long, default_value_t = 20)]
        conns: usize,
        /// Where the console databases go.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        auth: PathBuf,
        /// The server's process id, for its CPU time during the load.
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Provision { server_data, out } => {
            let origin = Uuid::now_v7();
            provision(&server_data, &out, origin)?;
            println!("{}", json!({"origin": origin}));
            Ok(())
        }
        Cmd::Setup {
            server,
            units,
            auth,
        } => setup(&server, units, &Auth::load(&auth)?),
        Cmd::Run {
            server,
            server_data,
            osmand,
            units,
            consoles,
            receivers,
            seconds,
            conns,
            dir,
            auth,
            server_pid,
        } => run(&RunArgs {
            server,
            server_data,
            osmand,
            units,
            consoles,
            receivers,
            seconds,
            conns,
            dir,
            auth: Auth::load(&auth)?,
            server_pid,
        }),
    }
}

/// The credentials of a device of the agency CA and a commander's session.
struct Auth {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    token: String,
    origin: Uuid,
}

impl Auth {
    fn load(dir: &Path) -> Result<Auth> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))
        };
        Ok(Auth {
            ca_pem: read("ca.pem")?,
            cert_pem: read("device.pem")?,
            key_pem: read("device.key")?,
            token: read("token")?.trim().to_string(),
            origin: read("origin")?
                .trim()
                .parse()
                .with_context(|| format!("bad origin in {}", dir.display()))?,
        })
    }

    /// The app's default engine options for this device and session (CA pinned).
    fn sync_options(&self) -> outpost_sync::SyncOptions {
        outpost_sync::SyncOptions {
            tls: Some(
                outpost_sync::TlsSettings::new(self.ca_pem.clone())
                    .with_identity(self.cert_pem.clone(), self.key_pem.clone()),
            ),
            token: outpost_sync::TokenSource::with_token(self.token.clone()),
            ..outpost_sync::SyncOptions::default()
        }
    }
}

/// Enrolls a device with `origin` for user `bench` (commander) and starts a session,
/// straight in the security database; writes the credentials into `out` (0700).
fn provision(server_data: &Path, out: &Path, origin: Uuid) -> Result<Auth> {
    use outpost_server::security::pki;
    if !pki::exists(server_data) {
        bail!(
            "{} has no agency CA: run `outpost-server cert init` first",
            server_data.display()
        );
    }
    let (device, token) = outpost_server::testing::direct_session(
        server_data,
        "bench",
        outpost_domain::access::Role::Commander,
        origin,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ca = pki::Pki::load(server_data)?.ca_pem().to_string();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))?;
    }
    let origin_text = origin.to_string();
    for (name, text) in [
        ("ca.pem", ca.as_str()),
        ("device.pem", device.cert_pem.as_str()),
        ("device.key", device.key_pem.as_str()),
        ("token", token.as_str()),
        ("origin", origin_text.as_str()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Auth {
        ca_pem: ca,
        cert_pem: device.cert_pem,
        key_pem: device.key_pem,
        token,
        origin,
    })
}

/// An HTTPS client trusting only the agency CA, with the device certificate and the bearer.
fn http(auth: &Auth) -> Result<reqwest::blocking::Client> {
    let tls = outpost_sync::tls::client_config(
        &auth.ca_pem,
        Some((auth.cert_pem.as_str(), auth.key_pem.as_str())),
    )?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", auth.token).parse()?,
    );
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .use_preconfigured_tls(tls)
        .default_headers(headers)
        .build()?)
}

/// Registers the units and binds the devices, 1,000 ops per push.
fn setup(server: &str, units: usize, auth: &Auth) -> Result<()> {
    let origin = auth.origin;
    let mut ops = Vec::new();
    let mut seq = 0u64;
    let mut op = |body: OpBody| {
        seq += 1;
        OpEnvelope {
            op_id: Uuid::now_v7(),
            origin,
            seq,
            hlc: Hlc {
                wall_ms: Utc::now().timestamp_millis(),
                logical: 0,
            },
            base_version: None,
            user: "bench".into(),
            schema: SCHEMA_VERSION,
            lane: Lane::Critical,
            lane_seq: seq,
            body,
            auth: None,
        }
    };
    for i in 0..units {
        ops.push(op(OpBody::UnitRegister {
            unit_id: format!("u-{i}"),
            callsign: format!("B{i:04}"),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        }));
    }
    for i in 0..units {
        ops.push(op(OpBody::DeviceBind {
            device_id: format!("dev-{i}"),
            unit_id: Some(format!("u-{i}")),
        }));
    }
    let client = http(auth)?;
    for chunk in ops.chunks(1_000) {
        let req = PushRequest {
            protocol: PROTOCOL_VERSION,
            origin,
            lane: Lane::Critical,
            epoch: None,
            cursor: 0,
            ops: chunk
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
        };
        let body: Value = client
            .post(format!("{server}/v1/push"))
            .json(&req)
            .send()?
            .error_for_status()?
            .json()?;
        let parked = body["results"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|r| r["outcome"] == "parked").count());
        if parked > 0 {
            bail!("setup ops parked: {body}");
        }
    }
    println!("{}", json!({"units": units, "ops": 2 * units}));
    Ok(())
}

/// What one console saw: a delay sample per fix (ms) and how many position ops it applied.
#[derive(Default)]
struct Seen {
    /// (fix time ms, visible − fix time ms), for every fix applied.
    samples: Vec<(i64, i64)>,
    /// Position ops applied (warm-up included).
    positions: u64,
    /// Feed receivers only: frames whose ops were taken, pulls after a gap or an op-less
    /// frame, and whether the socket's first poke (the starting cursor) has arrived.
    frames: u64,
    fallbacks: u64,
    ready: bool,
}

/// A console store that records when each pulled position op became visible.
struct Timed {
    store: Store,
    seen: Arc<Mutex<Seen>>,
}

/// The fix time (ms since the epoch) of a `position.report` op's JSON, else `None`.
fn fix_time_ms(op: &Value) -> Option<i64> {
    let body = op.get("body")?;
    if body.get("kind")?.as_str()? != "position.report" {
        return None;
    }
    let t = body.get("fix")?.get("fix_time")?.as_str()?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl SyncStore for Timed {
    fn origin(&self) -> Uuid {
        SyncStore::origin(&self.store)
    }
    fn position(&self) -> Result<SyncPosition, StoreError> {
        SyncStore::position(&self.store)
    }
    fn pending_batch(&self, lane: Lane, max: usize) -> Result<Vec<OpEnvelope>, StoreError> {
        SyncStore::pending_batch(&self.store, lane, max)
    }
    fn record_push(
        &mut self,
        lane: Lane,
        resp: &PushResponse,
        now: DateTime<Utc>,
    ) -> Result<PushRecord, StoreError> {
        SyncStore::record_push(&mut self.store, lane, resp, now)
    }
    fn apply_pull(
        &mut self,
        page: &PullResponse,
        now: DateTime<Utc>,
        failpoint: Option<Failpoint>,
    ) -> Result<PullRecord, StoreError> {
        let before = SyncStore::position(&self.store)?.cursor;
        let rec = SyncStore::apply_pull(&mut self.store, page, now, failpoint)?;
        // Committed: visible to every reader from here on.
        let visible = Utc::now().timestamp_millis();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in page.ops.iter().filter(|p| p.gseq > before) {
            if let Some(fix) = fix_time_ms(&p.op) {
                seen.positions += 1;
                seen.samples.push((fix, visible - fix));
            }
        }
        Ok(rec)
    }
    fn start_resync(&mut self, epoch: Uuid) -> Result<(), StoreError> {
        SyncStore::start_resync(&mut self.store, epoch)
    }
    fn load_snapshot(
        &mut self,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<PullRecord, StoreError> {
        SyncStore::load_snapshot(&mut self.store, snapshot, now)
    }
    fn pending_total(&self) -> Result<u64, StoreError> {
        SyncStore::pending_total(&self.store)
    }
    fn op_at_gseq(&self, gseq: u64) -> Result<Option<Uuid>, StoreError> {
        SyncStore::op_at_gseq(&self.store, gseq)
    }
    fn newest_own_acked(&self) -> Result<Option<(u64, Uuid)>, StoreError> {
        SyncStore::newest_own_acked(&self.store)
    }
    fn prune_acked(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        SyncStore::prune_acked(&mut self.store, older_than)
    }
}

/// An OsmAnd report of `device` at `t` (its fix time), position varying with `k`.
fn report(device: usize, k: u64, t: DateTime<Utc>) -> String {
    let lat = 39.80 + (device % 100) as f64 * 0.001 + (k % 1_000) as f64 * 1e-6;
    let lon = 109.95 + (device / 100) as f64 * 0.001;
    format!(
        "GET /?id=dev-{device}&lat={lat:.6}&lon={lon:.6}&timestamp={}&speed=10&bearing=90&accuracy=5 HTTP/1.1\r\nHost: bench\r\n\r\n",
        t.timestamp_millis()
    )
}

/// Sends one OsmAnd request on a keep-alive connection; true when answered 200.
fn send(stream: &mut BufReader<TcpStream>, text: &str) -> Result<bool> {
    stream.get_mut().write_all(text.as_bytes())?;
    let mut status = String::new();
    stream.read_line(&mut status)?;
    let ok = status.split_whitespace().nth(1) == Some("200");
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(ok)
}

/// A live-feed frame as the server sends it (`{"gseq":G,"epoch":E,"after":A,"ops":[..]}`),
/// or a text poke (`{"gseq":G,"epoch":E}`).
#[derive(serde::Deserialize)]
struct RxFrame {
    gseq: u64,
    epoch: Uuid,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    ops: Vec<PulledOp>,
}

/// One feed receiver: a console's poke socket with the live feed (`wss://…/v1/poke?feed=1`,
/// its own device certificate and session, the agency CA pinned) that only parses each
/// frame and, per `position.report` op beyond its cursor, records receipt time − fix time.
/// The receipt time is read once per WebSocket message, as soon as it has been read off the
/// socket (before parsing). A frame that does not continue the cursor (a gap, a frame
/// without ops, a poke beyond the cursor) is followed by pulls up to the announced `gseq`,
/// as a console does; those ops are timed at the pull's answer and counted as fallbacks.
/// Returns when the socket closes (the caller shuts the TCP stream down).
fn receiver(server: &str, auth: &Auth, seen: &Mutex<Seen>, tcp: TcpStream) -> Result<()> {
    use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
    let host = server
        .strip_prefix("https://")
        .context("the server URL must be https://")?
        .trim_end_matches('/');
    let ip = host.rsplit_once(':').map_or(host, |(h, _)| h).to_string();
    let config = outpost_sync::tls::client_config(
        &auth.ca_pem,
        Some((auth.cert_pem.as_str(), auth.key_pem.as_str())),
    )?;
    let name = rustls::pki_types::ServerName::try_from(ip)?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    tcp.set_nodelay(true)?;
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("wss://{host}/v1/poke?feed=1").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", auth.token).parse()?);
    let (mut ws, _) = tungstenite::client::client(req, tls)
        .map_err(|e| anyhow::anyhow!("poke socket handshake: {e}"))?;
    let client = http(auth)?;
    let lock = || {
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let mut cursor: Option<(Uuid, u64)> = None;
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(_) => return Ok(()),
        };
        let received = Utc::now().timestamp_millis();
        let bytes = match msg {
            Message::Binary(b) => b.to_vec(),
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Close(_) => return Ok(()),
            _ => continue,
        };
        let f: RxFrame = serde_json::from_slice(&bytes).context("unreadable feed frame")?;
        let Some((epoch, at)) = cursor else {
            // The socket's first message: the server's head, where this receiver starts.
            cursor = Some((f.epoch, f.gseq));
            lock().ready = true;
            continue;
        };
        if f.epoch != epoch {
            bail!("the server's epoch changed during the run");
        }
        if f.gseq <= at {
            continue;
        }
        if f.after == Some(at) && !f.ops.is_empty() {
            let mut s = lock();
            s.frames += 1;
            for op in &f.ops {
                if let Some(fix) = fix_time_ms(&op.op) {
                    s.positions += 1;
                    s.samples.push((fix, received - fix));
                }
            }
            cursor = Some((epoch, f.gseq));
            continue;
        }
        // A gap or no ops: pull up to the announced gseq, as a console would.
        let mut at = at;
        while at < f.gseq {
            let page: PullResponse = client
                .get(format!(
                    "{server}/v1/pull?after={at}&limit=1000&epoch={epoch}"
                ))
                .send()?
                .error_for_status()?
                .json()?;
            let got = Utc::now().timestamp_millis();
            let mut s = lock();
            s.fallbacks += 1;
            for op in page.ops.iter().filter(|p| p.gseq > at) {
                if let Some(fix) = fix_time_ms(&op.op) {
                    s.positions += 1;
                    s.samples.push((fix, got - fix));
                }
            }
            let last = page.ops.last().map_or(at, |p| p.gseq.max(at));
            if last == at {
                break;
            }
            at = last;
        }
        cursor = Some((epoch, at));
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// user + system CPU seconds of the calling thread (from /proc/thread-self), 0 when
/// unreadable.
fn thread_cpu_seconds() -> f64 {
    stat_cpu_seconds("/proc/thread-self/stat")
}

/// user + system CPU seconds of `pid` (from /proc), 0 when unreadable.
fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// user + system CPU seconds of a /proc `stat` file, 0 when unreadable.
fn stat_cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the stat line; `rest` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

fn stats(client: &reqwest::blocking::Client, server: &str) -> Result<Value> {
    Ok(client
        .get(format!("{server}/v1/ingest/stats"))
        .send()?
        .error_for_status()?
        .json()?)
}

fn refused(s: &Value) -> u64 {
    ["osmand", "cot"]
        .iter()
        .flat_map(|l| {
            s[l]["refused"]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
        })
        .sum::<u64>()
        + s["gateway"]["dropped"].as_u64().unwrap_or(0)
        + s["osmand"]["throttled"].as_u64().unwrap_or(0)
        + s["osmand"]["duplicate"].as_u64().unwrap_or(0)
}

struct RunArgs {
    server: String,
    server_data: PathBuf,
    osmand: SocketAddr,
    units: usize,
    consoles: usize,
    receivers: usize,
    seconds: u64,
    conns: usize,
    dir: PathBuf,
    auth: Auth,
    server_pid: Option<u32>,
}

fn run(a: &RunArgs) -> Result<()> {
    let client = http(&a.auth)?;
    let written_before = stats(&client, &a.server)?["gateway"]["positions_written"]
        .as_u64()
        .unwrap_or(0);
    // The consoles: a database, a device and a session each; the engines in this process.
    let mut consoles = Vec::new();
    for i in 0..a.consoles {
        let dir = a.dir.join(format!("console-{i}"));
        std::fs::create_dir_all(&dir)?;
        let store = Store::open(&dir.join("outpost.db"), Utc::now())?;
        let auth = provision(&a.server_data, &dir.join("auth"), store.origin_id())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let store = Arc::new(Mutex::new(Timed {
            store,
            seen: Arc::clone(&seen),
        }));
        let handle = outpost_sync::SyncEngine::start(
            Arc::clone(&store),
            &a.server,
            Arc::new(|| {}),
            auth.sync_options(),
        )?;
        consoles.push((store, handle, seen));
    }
    // The feed receivers: a device and a session each, one thread per socket.
    let server_addr: SocketAddr = a
        .server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .context("the server URL must be https://IP:PORT")?;
    let mut receivers = Vec::new();
    for i in 0..a.receivers {
        let dir = a.dir.join(format!("receiver-{i}"));
        std::fs::create_dir_all(&dir)?;
        let auth = provision(&a.server_data, &dir.join("auth"), Uuid::now_v7())?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let tcp = TcpStream::connect(server_addr)?;
        let stop = tcp.try_clone()?;
        let (server, seen2) = (a.server.clone(), Arc::clone(&seen));
        let thread = std::thread::spawn(move || receiver(&server, &auth, &seen2, tcp));
        receivers.push((thread, stop, seen));
    }
    eprintln!(
        "   {} consoles and {} feed receivers started; waiting until all caught up",
        a.consoles, a.receivers
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut behind = 0;
        for (store, handle, _) in &consoles {
            let cursor = SyncStore::position(
                &*store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )?
            .cursor;
            let st = handle.status();
            if st.server_gseq == 0 || cursor < st.server_gseq || !st.poke_connected {
                behind += 1;
            }
        }
        for (thread, _, seen) in &receivers {
            if thread.is_finished() {
                bail!("a feed receiver ended before the load");
            }
            if !seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .ready
            {
                behind += 1;
            }
        }
        if behind == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{behind} consoles did not catch up within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sinks: Vec<Arc<Mutex<Seen>>> = consoles
        .iter()
        .map(|(_, _, seen)| Arc::clone(seen))
        .chain(receivers.iter().map(|(_, _, seen)| Arc::clone(seen)))
        .collect();
    for seen in &sinks {
        let mut s = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s = Seen {
            ready: s.ready,
            ..Seen::default()
        };
    }
    let me = std::process::id();
    let (server_cpu0, my_cpu0) = (a.server_pid.map(cpu_seconds), cpu_seconds(me));
    eprintln!(
        "   load: {} units reporting once a second for {} s over {} connections",
        a.units, a.seconds, a.conns
    );
    let started = Instant::now();
    let start_ms = Utc::now().timestamp_millis();
    let warmup_ms = 2_000;
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // The load generator's own CPU time (its threads'), µs.
    let load_cpu_us = Arc::new(AtomicU64::new(0));
    let per_conn = a.units.div_ceil(a.conns);
    let (units, seconds, osmand) = (a.units, a.seconds, a.osmand);
    let senders: Vec<_> = (0..a.conns)
        .map(|c| {
            let (sent, failed, load_cpu_us) = (sent.clone(), failed.clone(), load_cpu_us.clone());
            std::thread::spawn(move || -> Result<()> {
                let cpu0 = thread_cpu_seconds();
                let s = TcpStream::connect(osmand).with_context(|| format!("connect {osmand}"))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                let mut stream = BufReader::new(s);
                let mine: Vec<usize> = (c * per_conn..((c + 1) * per_conn).min(units)).collect();
                for k in 0..seconds {
                    for &u in &mine {
                        let due = started
                            + Duration::from_millis(k * 1_000 + (u as u64 * 1_000) / units as u64);
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        if send(&mut stream, &report(u, k, Utc::now()))? {
                            sent.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let used = (thread_cpu_seconds() - cpu0).max(0.0);
                load_cpu_us.fetch_add((used * 1e6) as u64, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    for t in senders {
        t.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    }
    let load_s = started.elapsed().as_secs_f64();
    // Wait until the gateway wrote every report and every console applied all of it: as
    // long as the consoles make progress (consoles short of CPU catch up after the load),
    // at most 10 minutes; 60 s without progress ends the wait.
    let sent_n = sent.load(Ordering::Relaxed);
    let hard = Instant::now() + Duration::from_secs(600);
    let mut deadline = Instant::now() + Duration::from_secs(60);
    let mut applied_before = 0u64;
    let (written, complete) = loop {
        let applied: u64 = sinks
            .iter()
            .map(|seen| {
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .positions
            })
            .sum();
        if applied > applied_before {
            applied_before = applied;
            deadline = (Instant::now() + Duration::from_secs(60)).min(hard);
        }
        let s = stats(&client, &a.server)?;
        let written = s["gateway"]["positions_written"].as_u64().unwrap_or(0) - written_before;
        let done = sinks
            .iter()
            .filter(|seen| {
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .positions
                    >= written
            })
            .count();
        if written >= sent_n && done == sinks.len() {
            break (written, true);
        }
        if Instant::now() > deadline {
            eprintln!(
                "   gave up waiting: {written} of {sent_n} written, {done} of {} consoles/receivers complete",
                sinks.len()
            );
            break (written, false);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let all_applied_s = started.elapsed().as_secs_f64();
    let server_cpu = a
        .server_pid
        .zip(server_cpu0)
        .map(|(pid, c0)| cpu_seconds(pid) - c0);
    let my_cpu = cpu_seconds(me) - my_cpu0;
    let s = stats(&client, &a.server)?;
    let mut all = Vec::new();
    let mut per_console = Vec::new();
    let mut connected = 0u64;
    let (mut frames, mut fallbacks) = (0u64, 0u64);
    for (_, handle, seen) in &consoles {
        let st = handle.status();
        frames += st.feed_frames_applied;
        fallbacks += st.feed_fallbacks;
        let seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        per_console.push(seen.positions);
        all.extend(
            seen.samples
                .iter()
                .filter(|(fix, _)| fix - start_ms >= warmup_ms)
                .map(|(_, d)| *d),
        );
        connected += u64::from(st.poke_connected);
    }
    for (_, handle, _) in &consoles {
        handle.shutdown();
    }
    let mut applied_total = 0u64;
    for (thread, stop, seen) in receivers {
        let s = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        frames += s.frames;
        fallbacks += s.fallbacks;
        per_console.push(s.positions);
        all.extend(
            s.samples
                .iter()
                .filter(|(fix, _)| fix - start_ms >= warmup_ms)
                .map(|(_, d)| *d),
        );
        connected += u64::from(!thread.is_finished());
        drop(s);
        let _ = stop.shutdown(std::net::Shutdown::Both);
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a feed receiver panicked"))??;
    }
    applied_total += per_console.iter().sum::<u64>();
    let load_cpu = load_cpu_us.load(Ordering::Relaxed) as f64 / 1e6;
    all.sort_unstable();
    let min_c = per_console.iter().copied().min().unwrap_or(0);
    let max_c = per_console.iter().copied().max().unwrap_or(0);
    println!(
        "{}",
        json!({
            "units": a.units,
            "consoles": a.consoles,
            "seconds": a.seconds,
            "load_s": (load_s * 100.0).round() / 100.0,
            "all_applied_s": (all_applied_s * 100.0).round() / 100.0,
            "sent": sent_n,
            "failed": failed.load(Ordering::Relaxed),
            "written": written,
            "refused": refused(&s),
            "complete": complete,
            "per_console_min": min_c,
            "per_console_max": max_c,
            "consoles_connected_at_end": connected,
            "feed_frames_applied": frames,
            "feed_fallbacks": fallbacks,
            "samples": all.len(),
            "p50_ms": percentile(&all, 0.5),
            "p95_ms": percentile(&all, 0.95),
            "p99_ms": percentile(&all, 0.99),
            "max_ms": all.last().copied().unwrap_or(-1),
            "server_cpu_s": server_cpu.map(|c| (c * 10.0).round() / 10.0),
            "bench_cpu_s": (my_cpu * 10.0).round() / 10.0,
            "load_cpu_s": (load_cpu * 100.0).round() / 100.0,
            // This process's CPU without the load generator's, per position op applied
            // (summed over consoles/receivers).
            "us_per_op": if applied_total > 0 {
                ((my_cpu - load_cpu).max(0.0) * 1e6 / applied_total as f64 * 10.0).round() / 10.0
            } else {
                -1.0
            },
            "applied_total": applied_total,
            "receivers": a.receivers,
            "batches": s["gateway"]["batches"],
        })
    );
    Ok(())
}
