//! Load generator and watcher for `bench/ingest.sh` (device ingest of issue 4).
//!
//! - `setup --server URL --units N`: registers units `u-0..N` and binds devices `dev-0..N`
//!   to them, pushed over HTTP like a console.
//! - `blast --proto osmand|cot --addr A --server URL --devices N --reports M --conns C`: sends M
//!   reports of the bound devices as fast as C connections allow (OsmAnd: keep-alive HTTP/1.1,
//!   one request at a time per connection, as a phone does; CoT: a TCP stream of events), then
//!   waits until the server's `GET /v1/ingest/stats` shows every report written to the log.
//!   Prints JSON: reports sent, seconds to send, seconds until all were written, refused.
//! - `delay --proto osmand|cot --addr A --server URL --units N --seconds S --console DIR`: a
//!   headless console (the real sync engine, `outpost_sync::SyncEngine`, with its poke
//!   socket) syncs into DIR; then every unit reports once a second (spread evenly over the
//!   second) for S seconds, each fix stamped with its send time, while a watcher reads the
//!   console's database every 20 ms and records, for every new latest fix, now − fix time:
//!   the delay from a report leaving the device to the console's state showing it. Prints
//!   JSON with the percentiles (the first 2 s are warm-up and left out).
//!
//! - `provision --server-data D --out AUTH [--console DIR]`: (issue 6) an enrolled device and
//!   a signed-in commander `bench`, written straight into the server's security database
//!   (`outpost_server::testing::direct_session`; `cert init` must have run): writes `ca.pem`,
//!   `device.pem`, `device.key`, `token` and `origin` into AUTH (0700). With `--console DIR`
//!   the device is enrolled with the origin of the console database DIR/outpost.db (created),
//!   for `delay --console DIR`; without, with a fresh origin (for `setup`'s pushes and the
//!   stats reads). Set-up, not a measurement.
//!
//! Every command that talks to the server's sync port takes `--auth AUTH`: HTTPS with the
//! agency CA pinned (no other roots), the device certificate and the session's bearer token.
//! The device listeners (OsmAnd, CoT) stay plain in this benchmark.
//!
//! Everything on 127.0.0.1; the server is the real `outpost-server serve` started by the
//! script.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::op::{Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::unit::UnitKind;
use outpost_domain::wire::{PROTOCOL_VERSION, PushRequest};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Proto {
    Osmand,
    Cot,
}

#[derive(Subcommand)]
enum Cmd {
    Provision {
        /// Server data directory (with `DIR/tls/` from `outpost-server cert init`).
        #[arg(long)]
        server_data: PathBuf,
        /// Where the credentials go (created, 0700).
        #[arg(long)]
        out: PathBuf,
        /// Enroll the device with the origin of this console's database (created).
        #[arg(long)]
        console: Option<PathBuf>,
    },
    Setup {
        #[arg(long)]
        server: String,
        #[arg(long)]
        units: usize,
        #[arg(long)]
        auth: PathBuf,
    },
    Blast {
        #[arg(long, value_enum)]
        proto: Proto,
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        server: String,
        #[arg(long)]
        devices: usize,
        #[arg(long)]
        reports: usize,
        #[arg(long, default_value_t = 32)]
        conns: usize,
        #[arg(long)]
        auth: PathBuf,
    },
    Delay {
        #[arg(long, value_enum)]
        proto: Proto,
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        server: String,
        #[arg(long)]
        units: usize,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        console: PathBuf,
        #[arg(long, default_value_t = 20)]
        conns: usize,
        /// The credentials `provision --console DIR` wrote for this console.
        #[arg(long)]
        console_auth: PathBuf,
        /// Credentials for the stats reads.
        #[arg(long)]
        auth: PathBuf,
    },
    /// Sends one OsmAnd report without a token; prints the HTTP status (`--osmand-require-token`
    /// must refuse it).
    Untokened {
        #[arg(long)]
        addr: SocketAddr,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Provision {
            server_data,
            out,
            console,
        } => provision(&server_data, &out, console.as_deref()),
        Cmd::Setup {
            server,
            units,
            auth,
        } => setup(&server, units, &Auth::load(&auth)?),
        Cmd::Blast {
            proto,
            addr,
            server,
            devices,
            reports,
            conns,
            auth,
        } => blast(
            proto,
            addr,
            &server,
            devices,
            reports,
            conns,
            &Auth::load(&auth)?,
        ),
        Cmd::Delay {
            proto,
            addr,
            server,
            units,
            seconds,
            console,
            conns,
            console_auth,
            auth,
        } => delay(
            Target {
                proto,
                addr,
                server: &server,
            },
            units,
            seconds,
            &console,
            conns,
            &Auth::load(&console_auth)?,
            &Auth::load(&auth)?,
        ),
        Cmd::Untokened { addr } => untokened(addr),
    }
}

/// Where `delay` sends and reads.
struct Target<'a> {
    proto: Proto,
    addr: SocketAddr,
    server: &'a str,
}

/// The credentials `provision` wrote: a device of the agency CA and a commander's session.
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

    /// The engine's options for this device and session (CA pinned).
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

/// An enrolled device and a signed-in commander `bench`, straight in the security database.
fn provision(server_data: &Path, out: &Path, console: Option<&Path>) -> Result<()> {
    use outpost_server::security::pki;
    if !pki::exists(server_data) {
        bail!(
            "{} has no agency CA: run `outpost-server cert init` first",
            server_data.display()
        );
    }
    let origin = match console {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            outpost_store::Store::open(&dir.join("outpost.db"), Utc::now())?.origin_id()
        }
        None => Uuid::now_v7(),
    };
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
    println!(
        "{}",
        json!({"device_id": device.device_id, "origin": origin})
    );
    Ok(())
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

/// One OsmAnd report of `dev-0` without a token; prints `{"status": N}`.
fn untokened(addr: SocketAddr) -> Result<()> {
    let mut conn = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let text = report(Proto::Osmand, 0, 0, Utc::now());
    conn.write_all(text.as_bytes())?;
    let mut status = String::new();
    BufReader::new(conn).read_line(&mut status)?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no HTTP status in {status:?}"))?;
    println!("{}", json!({"status": code}));
    Ok(())
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
        let r = client
            .post(format!("{server}/v1/push"))
            .json(&req)
            .send()?
            .error_for_status()?;
        let body: Value = r.json()?;
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

fn stats(client: &reqwest::blocking::Client, server: &str) -> Result<Value> {
    Ok(client
        .get(format!("{server}/v1/ingest/stats"))
        .send()?
        .error_for_status()?
        .json()?)
}

fn written(s: &Value) -> u64 {
    s["gateway"]["positions_written"].as_u64().unwrap_or(0)
        + s["gateway"]["device_reports_written"].as_u64().unwrap_or(0)
}

/// Reports the gateway dropped for their rate or as repeats (`throttled`, `duplicate`): the
/// server's per-device rate (`serve --max-device-rate`) must be above the blast's.
fn dropped_by_rate(s: &Value) -> u64 {
    ["osmand", "cot"]
        .iter()
        .map(|l| s[l]["throttled"].as_u64().unwrap_or(0) + s[l]["duplicate"].as_u64().unwrap_or(0))
        .sum()
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
}

/// A report of `device` at `t` (its fix time), position varying with `k`.
fn report(proto: Proto, device: usize, k: u64, t: DateTime<Utc>) -> String {
    let lat = 39.80 + (device % 100) as f64 * 0.001 + (k % 1_000) as f64 * 1e-6;
    let lon = 109.95 + (device / 100) as f64 * 0.001;
    match proto {
        Proto::Osmand => format!(
            "GET /?id=dev-{device}&lat={lat:.6}&lon={lon:.6}&timestamp={}&speed=10&bearing=90&accuracy=5 HTTP/1.1\r\nHost: bench\r\n\r\n",
            t.timestamp_millis()
        ),
        Proto::Cot => {
            let time = t.to_rfc3339_opts(SecondsFormat::Millis, true);
            format!(
                "<event version=\"2.0\" uid=\"dev-{device}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{time}\" start=\"{time}\" stale=\"{time}\"><point lat=\"{lat:.6}\" lon=\"{lon:.6}\" hae=\"0\" ce=\"5\" le=\"0\"/><detail><contact callsign=\"dev-{device}\"/><track speed=\"5\" course=\"90\"/></detail></event>"
            )
        }
    }
}

/// One keep-alive connection of a device protocol.
struct Conn {
    proto: Proto,
    stream: BufReader<TcpStream>,
    /// CoT: the thread reading (and dropping) what the server's feed sends, as a TAK client
    /// would; without it the server's writes block and it drops this client as slow.
    drain: Option<std::thread::JoinHandle<u64>>,
}

impl Conn {
    fn open(proto: Proto, addr: SocketAddr) -> Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let drain = if proto == Proto::Cot {
            let mut r = s.try_clone()?;
            Some(std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut n = 0u64;
                while let Ok(k) = r.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                n
            }))
        } else {
            None
        };
        Ok(Conn {
            proto,
            stream: BufReader::new(s),
            drain,
        })
    }

    /// Ends the stream and waits until the server closed it: everything sent was read (a
    /// client that closes with data unread by the server would lose it to a TCP reset).
    fn finish(mut self) -> Result<()> {
        if let Some(d) = self.drain.take() {
            self.stream.get_mut().shutdown(std::net::Shutdown::Write)?;
            let _ = d.join();
        }
        Ok(())
    }

    /// Sends one report; for OsmAnd waits for the answer (true when 200).
    fn send(&mut self, text: &str) -> Result<bool> {
        self.stream.get_mut().write_all(text.as_bytes())?;
        if self.proto == Proto::Cot {
            return Ok(true);
        }
        let mut status = String::new();
        self.stream.read_line(&mut status)?;
        let ok = status.split_whitespace().nth(1) == Some("200");
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok(ok)
    }
}

fn blast(
    proto: Proto,
    addr: SocketAddr,
    server: &str,
    devices: usize,
    reports: usize,
    conns: usize,
    auth: &Auth,
) -> Result<()> {
    let client = http(auth)?;
    let before = stats(&client, server)?;
    let base = Utc::now() - chrono::Duration::hours(1);
    let next = Arc::new(AtomicU64::new(0));
    let not_ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let next = next.clone();
            let not_ok = not_ok.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut conn = Conn::open(proto, addr)?;
                let mut batch = String::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= reports as u64 {
                        break;
                    }
                    let device = (i as usize) % devices;
                    let k = i / devices as u64;
                    // Distinct fix times per device (1 ms apart), an hour ago.
                    let t = base + chrono::Duration::milliseconds(k as i64);
                    let text = report(proto, device, k, t);
                    if proto == Proto::Cot {
                        batch.push_str(&text);
                        if batch.len() > 32 * 1024 {
                            conn.send(&batch)?;
                            batch.clear();
                        }
                    } else if !conn.send(&text)? {
                        not_ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !batch.is_empty() {
                    conn.send(&batch)?;
                }
                conn.finish()
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    }
    let t_sent = started.elapsed().as_secs_f64();
    let target = written(&before) + reports as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let after = loop {
        let s = stats(&client, server)?;
        if written(&s)
            + (refused(&s) - refused(&before))
            + (dropped_by_rate(&s) - dropped_by_rate(&before))
            >= target
        {
            break s;
        }
        if Instant::now() > deadline {
            bail!("not all written after 600 s: {s}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let t_written = started.elapsed().as_secs_f64();
    let n_written = written(&after) - written(&before);
    println!(
        "{}",
        json!({
            "proto": if proto == Proto::Osmand { "osmand" } else { "cot" },
            "sent": reports,
            "conns": conns,
            "t_sent_s": t_sent,
            "t_written_s": t_written,
            "written": n_written,
            "refused": refused(&after) - refused(&before),
            "throttled": dropped_by_rate(&after) - dropped_by_rate(&before),
            "not_ok": not_ok.load(Ordering::Relaxed),
            "written_per_s": (n_written as f64 / t_written).floor(),
            "batches": after["gateway"]["batches"].as_u64().unwrap_or(0)
                - before["gateway"]["batches"].as_u64().unwrap_or(0),
        })
    );
    Ok(())
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn delay(
    target: Target<'_>,
    units: usize,
    seconds: u64,
    console: &Path,
    conns: usize,
    console_auth: &Auth,
    auth: &Auth,
) -> Result<()> {
    let Target {
        proto,
        addr,
        server,
    } = target;
    std::fs::create_dir_all(console)?;
    let db = console.join("outpost.db");
    let store = outpost_store::Store::open(&db, Utc::now())?;
    let store = Arc::new(Mutex::new(store));
    let handle = outpost_sync::SyncEngine::start(
        store.clone(),
        server,
        Arc::new(|| {}),
        console_auth.sync_options(),
    )?;
    // Wait until the console has the units and bindings.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let cursor = store
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .sync_state()?
            .cursor;
        let st = handle.status();
        if st.server_gseq > 0 && cursor >= st.server_gseq {
            break;
        }
        if Instant::now() > deadline {
            bail!("the console did not catch up: {st:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let watch = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let started = Instant::now();
    let start_ms = Utc::now().timestamp_millis();
    let warmup_ms = 2_000;
    let sent = Arc::new(AtomicU64::new(0));
    // Senders: unit i reports at start + i/units s + k s.
    let per_conn = units.div_ceil(conns);
    let senders: Vec<_> = (0..conns)
        .map(|c| {
            let sent = sent.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut conn = Conn::open(proto, addr)?;
                let mine: Vec<usize> = (c * per_conn..((c + 1) * per_conn).min(units)).collect();
                for k in 0..seconds {
                    for &u in &mine {
                        let due = started
                            + Duration::from_millis(k * 1_000 + (u as u64 * 1_000) / units as u64);
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        conn.send(&report(proto, u, k, Utc::now()))?;
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                conn.finish()
            })
        })
        .collect();
    // The watcher.
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut samples: Vec<i64> = Vec::new();
    let mut st = watch.prepare("SELECT unit_id, fix_time FROM unit_positions")?;
    let end = started + Duration::from_secs(seconds) + Duration::from_secs(5);
    let mut last_new = Instant::now();
    while Instant::now() < end {
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let now_ms = Utc::now().timestamp_millis();
        for (unit, fix) in rows {
            let prev = last.insert(unit, fix);
            if prev.is_some_and(|p| p < fix) || (prev.is_none() && fix >= start_ms) {
                last_new = Instant::now();
                if fix - start_ms >= warmup_ms {
                    samples.push(now_ms - fix);
                }
            }
        }
        // Done when every sender finished and nothing new came for a second.
        if started.elapsed() > Duration::from_secs(seconds)
            && last_new.elapsed() > Duration::from_secs(1)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in senders {
        t.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    }
    handle.shutdown();
    samples.sort_unstable();
    let client = http(auth)?;
    let s = stats(&client, server)?;
    println!(
        "{}",
        json!({
            "proto": if proto == Proto::Osmand { "osmand" } else { "cot" },
            "units": units,
            "seconds": seconds,
            "sent": sent.load(Ordering::Relaxed),
            "samples": samples.len(),
            "p50_ms": percentile(&samples, 0.5),
            "p95_ms": percentile(&samples, 0.95),
            "p99_ms": percentile(&samples, 0.99),
            "max_ms": samples.last().copied().unwrap_or(-1),
            "refused": refused(&s),
            "batches": s["gateway"]["batches"],
        })
    );
    Ok(())
}
