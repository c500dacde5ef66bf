//! CoT load generator and counter for `bench/peers.sh` (issue 7: ingest against real TAK
//! servers). The same program drives `outpost-server serve --cot-listen`, taky and
//! FreeTAKServer, and counts the same way on each.
//!
//! `run --addr A --units N --events M --conns C`:
//!
//! 1. the **counter** connects to the server's CoT port (TCP) and announces itself with an
//!    ATAK-style presence event (uid `bench-counter`, as a TAK client's own position);
//! 2. C **sender** connections connect and announce themselves the same way (uid
//!    `bench-client-<c>`); each also reads and drops what the server relays to it, as a TAK
//!    client does (a server that cannot write to a client may drop it);
//! 3. after a settle second, the senders send M position events of N units (unit `u` on
//!    connection `u % C`, its `k`-th event after its `k-1`-th), each event one write of the XML
//!    declaration, a newline and the `<event>` as pytak and ATAK send it: uid `dev-<u>`, type
//!    `a-f-G-U-C`, `how="m-g"`, the unit's latitude, and a longitude carrying `k`
//!    (`LON0 + k · 1e-5`°) so that an event stays recognisable whatever the server re-encodes;
//! 4. the counter parses every event it receives: uid `dev-<u>` (taky, FreeTAKServer relay the
//!    device's event) or `outpost-unit-u-<u>` (Outpost's feed sends the device's unit, as
//!    `ingest_bench setup` binds `dev-<u>` to `u-<u>`) and `k` from the longitude.
//!
//! It stops when the counter has every event (or, with `--stats`, Outpost has written every
//! event and the counter has every unit's final position), when nothing new has arrived for
//! `--quiet-s` seconds after the last send (once something arrived), or `--timeout-s` seconds
//! after the first send. Prints JSON:
//!
//! - `sent`: events written to the sockets; `send_failed`: events not written because the
//!   server closed the connection; `t_sent_s`: seconds from the first send until every sender
//!   had written its last event;
//! - `relayed`: events of the load the counter received (repeats included), `distinct`: distinct
//!   (unit, k) among them, `t_last_new_s`: seconds from the first send until the last new one;
//! - `finals`: units whose final event (the last one sent) the counter saw; `t_visible_s`:
//!   seconds from the first send until it had seen every unit's final event (`null` when it
//!   never did); `delay_s`: `t_visible_s − t_sent_s` (the delay from the last send until the
//!   last event is visible);
//! - with `--stats URL --auth DIR` (Outpost): the deltas of `GET /v1/ingest/stats` —
//!   `written` (position.report ops in the op log), `refused`, `dropped_by_rate` — and
//!   `t_written_s` (seconds from the first send until every event was written or refused).
//!
//! Everything it connects to is the address given (127.0.0.1 or inside a network namespace
//! the script created). Errors (cannot connect, bad arguments) end it with a message.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

/// Longitude of `k = 0`, degrees (WGS-84).
const LON0: f64 = 109.95;
/// Longitude step per event of a unit, degrees.
const LON_STEP: f64 = 1e-5;
/// Latitude of unit 0, degrees (WGS-84).
const LAT0: f64 = 39.0;
/// Latitude step per unit, degrees.
const LAT_STEP: f64 = 1e-4;
/// Most events per unit (`k` must stay recognisable in the longitude).
const MAX_PER_UNIT: usize = 10_000;
/// Most units.
const MAX_UNITS: usize = 20_000;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sends the load and counts what the server relays (see the module documentation).
    Run {
        /// The server's CoT TCP address.
        #[arg(long)]
        addr: SocketAddr,
        /// Units (devices `dev-0..N`).
        #[arg(long)]
        units: usize,
        /// Position events in all.
        #[arg(long)]
        events: usize,
        /// Sender connections.
        #[arg(long, default_value_t = 20)]
        conns: usize,
        /// Stop when nothing new arrived for this long after the last send, seconds.
        #[arg(long, default_value_t = 5.0)]
        quiet_s: f64,
        /// Stop after this long in all, seconds.
        #[arg(long, default_value_t = 600.0)]
        timeout_s: f64,
        /// Outpost: its sync URL, to read `GET /v1/ingest/stats` (needs `--auth`).
        #[arg(long, requires = "auth")]
        stats: Option<String>,
        /// The credentials `ingest_bench provision` wrote.
        #[arg(long)]
        auth: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            addr,
            units,
            events,
            conns,
            quiet_s,
            timeout_s,
            stats,
            auth,
        } => {
            if units == 0 || units > MAX_UNITS {
                bail!("--units must be 1..={MAX_UNITS}");
            }
            if events < units || events.div_ceil(units) > MAX_PER_UNIT {
                bail!("--events must be at least --units and at most {MAX_PER_UNIT} per unit");
            }
            if conns == 0 || conns > units {
                bail!("--conns must be 1..=--units");
            }
            let outpost = match (stats, auth) {
                (Some(url), Some(dir)) => Some((url, http(&Auth::load(&dir)?)?)),
                _ => None,
            };
            let plan = Plan {
                units,
                events,
                conns,
            };
            let out = run(
                addr,
                &plan,
                Duration::from_secs_f64(quiet_s),
                Duration::from_secs_f64(timeout_s),
                outpost.as_ref(),
            )?;
            println!("{out}");
            Ok(())
        }
    }
}

/// Which events go where.
struct Plan {
    units: usize,
    events: usize,
    conns: usize,
}

impl Plan {
    /// Events per unit at most.
    fn per_unit(&self) -> usize {
        self.events.div_ceil(self.units)
    }
    /// Events of unit `u` (event `i` is unit `i % units`, its `i / units`-th).
    fn count_of(&self, u: usize) -> usize {
        self.events / self.units + usize::from(u < self.events % self.units)
    }
}

/// A position event of unit `u`, its `k`-th, fix time `t`, as pytak/ATAK send it: the XML
/// declaration, a newline, the event.
fn position_event(uid: &str, callsign: &str, lat: f64, lon: f64, t: DateTime<Utc>) -> String {
    let time = t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let stale = (t + chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Millis, true);
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{time}\" ",
            "start=\"{time}\" stale=\"{stale}\">",
            "<point lat=\"{lat:.7}\" lon=\"{lon:.7}\" hae=\"1020.5\" ce=\"4.9\" le=\"9999999.0\"/>",
            "<detail><takv os=\"34\" version=\"5.2.0\" device=\"BENCH\" platform=\"ATAK-CIV\"/>",
            "<contact endpoint=\"*:-1:stcp\" callsign=\"{callsign}\"/>",
            "<uid Droid=\"{callsign}\"/><__group role=\"Team Member\" name=\"Cyan\"/>",
            "<status battery=\"87\"/><track course=\"90.0\" speed=\"11.1\"/></detail></event>"
        ),
        uid = uid,
        callsign = callsign,
        time = time,
        stale = stale,
        lat = lat,
        lon = lon,
    )
}

fn unit_event(u: usize, k: usize, t: DateTime<Utc>) -> String {
    position_event(
        &format!("dev-{u}"),
        &format!("B{u:04}"),
        LAT0 + u as f64 * LAT_STEP,
        LON0 + k as f64 * LON_STEP,
        t,
    )
}

/// A client's own presence (what ATAK sends on connect), away from the load's positions.
fn presence(name: &str) -> String {
    position_event(name, name, 38.5, 110.5, Utc::now())
}

/// The value of attribute `name` in `hay` (single or double quotes).
fn attr<'a>(hay: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at > 0 && hay.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = hay[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let q = rest.chars().next()?;
        if q != '"' && q != '\'' {
            return None;
        }
        let end = rest[1..].find(q)?;
        return Some(&rest[1..1 + end]);
    }
    None
}

/// (unit, k) of a relayed event of the load; `None` for anything else.
fn recognise(event: &str, plan: &Plan) -> Option<(usize, usize)> {
    let uid = attr(event, "uid")?;
    let n = uid
        .strip_prefix("dev-")
        .or_else(|| uid.strip_prefix("outpost-unit-u-"))?;
    let u: usize = n.parse().ok()?;
    let point = &event[event.find("<point")?..];
    let lon: f64 = attr(point, "lon")?.trim().parse().ok()?;
    let k = ((lon - LON0) / LON_STEP).round();
    if u >= plan.units || !(0.0..plan.per_unit() as f64).contains(&k) {
        return None;
    }
    Some((u, k as usize))
}

/// What the counter saw, shared with the main thread.
struct Tally {
    seen: Vec<bool>,
    relayed: u64,
    distinct: u64,
    finals: u64,
    last_new: Option<Instant>,
    all_final: Option<Instant>,
}

/// Reads the counter's stream until `stop`; splits it at `</event>`.
fn count(mut conn: TcpStream, plan: &Plan, tally: &Mutex<Tally>, stop: &AtomicBool) {
    let per_unit = plan.per_unit();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 256 * 1024];
    const END: &[u8] = b"</event>";
    while !stop.load(Ordering::Relaxed) {
        let n = match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        let search_from = buf.len().saturating_sub(END.len() - 1);
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        let mut pos = search_from;
        let mut found = Vec::new();
        while let Some(i) = buf[pos..].windows(END.len()).position(|w| w == END) {
            let end = pos + i + END.len();
            found.push((start, end));
            start = end;
            pos = end;
        }
        if found.is_empty() {
            continue;
        }
        let now = Instant::now();
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        for (a, b) in found {
            let text = String::from_utf8_lossy(&buf[a..b]);
            let Some(ev_at) = text.find("<event") else {
                continue;
            };
            let Some((u, k)) = recognise(&text[ev_at..], plan) else {
                continue;
            };
            t.relayed += 1;
            let slot = u * per_unit + k;
            if !t.seen[slot] {
                t.seen[slot] = true;
                t.distinct += 1;
                t.last_new = Some(now);
                if k + 1 == plan.count_of(u) {
                    t.finals += 1;
                    if t.finals == plan.units as u64 {
                        t.all_final = Some(now);
                    }
                }
            }
        }
        drop(t);
        buf.drain(..start);
    }
}

/// A TCP connection to the server that announced itself; a thread reads and drops what the
/// server relays to it.
struct Client {
    stream: TcpStream,
    drain: std::thread::JoinHandle<()>,
}

impl Client {
    fn open(addr: SocketAddr, name: &str) -> Result<Client> {
        let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        stream.write_all(presence(name).as_bytes())?;
        let mut r = stream.try_clone()?;
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        });
        Ok(Client { stream, drain })
    }

    fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        let _ = self.drain.join();
    }
}

fn run(
    addr: SocketAddr,
    plan: &Plan,
    quiet: Duration,
    timeout: Duration,
    outpost: Option<&(String, reqwest::blocking::Client)>,
) -> Result<Value> {
    let plan = Arc::new(Plan { ..*plan });
    let tally = Arc::new(Mutex::new(Tally {
        seen: vec![false; plan.units * plan.per_unit()],
        relayed: 0,
        distinct: 0,
        finals: 0,
        last_new: None,
        all_final: None,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    // The counter first.
    let mut counter = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    counter.set_nodelay(true)?;
    counter.write_all(presence("bench-counter").as_bytes())?;
    counter.set_read_timeout(Some(Duration::from_millis(100)))?;
    let counter_thread = {
        let conn = counter.try_clone()?;
        let (plan, tally, stop) = (plan.clone(), tally.clone(), stop.clone());
        std::thread::spawn(move || count(conn, &plan, &tally, &stop))
    };
    let clients: Vec<Client> = (0..plan.conns)
        .map(|c| Client::open(addr, &format!("bench-client-{c}")))
        .collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(1));
    let before = match outpost {
        Some((url, client)) => Some(stats(client, url)?),
        None => None,
    };

    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let wall0 = Utc::now();
    let senders: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, client)| {
            let mut stream = client.stream.try_clone()?;
            let (plan, sent, failed) = (plan.clone(), sent.clone(), failed.clone());
            Ok(std::thread::spawn(move || {
                let mine: Vec<usize> = (c..plan.units).step_by(plan.conns).collect();
                let total: usize = mine.iter().map(|&u| plan.count_of(u)).sum();
                let mut done = 0usize;
                'all: for k in 0..plan.per_unit() {
                    for &u in &mine {
                        if k >= plan.count_of(u) {
                            continue;
                        }
                        // Distinct fix times per unit, 1 ms apart from the start.
                        let t = wall0 + chrono::Duration::milliseconds(k as i64);
                        if stream.write_all(unit_event(u, k, t).as_bytes()).is_err() {
                            break 'all;
                        }
                        done += 1;
                    }
                }
                sent.fetch_add(done as u64, Ordering::Relaxed);
                failed.fetch_add((total - done) as u64, Ordering::Relaxed);
            }))
        })
        .collect::<Result<_>>()?;
    for s in senders {
        s.join().map_err(|_| anyhow::anyhow!("a sender panicked"))?;
    }
    let t_sent = t0.elapsed();
    let n_sent = sent.load(Ordering::Relaxed);

    // Wait for the counter (and Outpost's log).
    let mut written_at: Option<Duration> = None;
    let mut last_stats: Option<Value> = None;
    loop {
        let (distinct, all_final, last_new) = {
            let t = tally.lock().unwrap_or_else(|p| p.into_inner());
            (t.distinct, t.all_final, t.last_new)
        };
        if let (Some((url, client)), Some(b)) = (outpost, &before)
            && written_at.is_none()
        {
            let s = stats(client, url)?;
            if written(&s) - written(b) + refused(&s) - refused(b) + dropped_by_rate(&s)
                - dropped_by_rate(b)
                >= n_sent
            {
                written_at = Some(t0.elapsed());
            }
            last_stats = Some(s);
        }
        let done = match outpost {
            Some(_) => written_at.is_some() && all_final.is_some(),
            None => distinct >= n_sent,
        };
        if done {
            break;
        }
        // Quiet only once something arrived: a server may take long to relay its first.
        let quiet_over = last_new.is_some_and(|l| l.max(t0 + t_sent).elapsed() >= quiet);
        if quiet_over || t0.elapsed() >= timeout {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let t_end = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = counter.shutdown(Shutdown::Both);
    let _ = counter_thread.join();
    for c in clients {
        c.close();
    }
    let t = tally.lock().unwrap_or_else(|p| p.into_inner());
    let secs = |i: Option<Instant>| i.map(|i| (i - t0).as_secs_f64());
    let t_visible = secs(t.all_final);
    let mut out = json!({
        "units": plan.units,
        "events": plan.events,
        "conns": plan.conns,
        "sent": n_sent,
        "send_failed": failed.load(Ordering::Relaxed),
        "t_sent_s": t_sent.as_secs_f64(),
        "relayed": t.relayed,
        "distinct": t.distinct,
        "t_last_new_s": secs(t.last_new),
        "finals": t.finals,
        "t_visible_s": t_visible,
        "delay_s": t_visible.map(|v| v - t_sent.as_secs_f64()),
        "t_end_s": t_end.as_secs_f64(),
    });
    if let (Some((url, client)), Some(b)) = (outpost, &before) {
        let s = match last_stats {
            Some(s) if written_at.is_some() => s,
            _ => stats(client, url)?,
        };
        out["written"] = json!(written(&s) - written(b));
        out["refused"] = json!(refused(&s) - refused(b));
        out["dropped_by_rate"] = json!(dropped_by_rate(&s) - dropped_by_rate(b));
        out["t_written_s"] = json!(written_at.map(|d| d.as_secs_f64()));
    }
    Ok(out)
}

/// The credentials `ingest_bench provision` wrote: a device of the agency CA and a session.
struct Auth {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    token: String,
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
        })
    }
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

fn stats(client: &reqwest::blocking::Client, server: &str) -> Result<Value> {
    Ok(client
        .get(format!("{server}/v1/ingest/stats"))
        .send()?
        .error_for_status()?
        .json()?)
}

/// Position reports of bound devices written to the op log.
fn written(s: &Value) -> u64 {
    s["gateway"]["positions_written"].as_u64().unwrap_or(0)
}

/// Reports dropped for their rate or as repeats (`serve --max-device-rate` must be above the
/// load's).
fn dropped_by_rate(s: &Value) -> u64 {
    ["osmand", "cot"]
        .iter()
        .map(|l| s[l]["throttled"].as_u64().unwrap_or(0) + s[l]["duplicate"].as_u64().unwrap_or(0))
        .sum()
}

/// Reports refused (bad, over a limit) or dropped by the gateway.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_event_is_recognised_however_quoted() {
        let plan = Plan {
            units: 10,
            events: 35,
            conns: 2,
        };
        let ev = unit_event(7, 3, Utc::now());
        let at = ev.find("<event").unwrap();
        assert_eq!(recognise(&ev[at..], &plan), Some((7, 3)));
        let outpost = "<event version='2.0' uid='outpost-unit-u-4' type='a-f-G-U-C'><point lat='39.0004' lon='109.9500200' hae='0'/></event>";
        assert_eq!(recognise(outpost, &plan), Some((4, 2)));
        assert_eq!(recognise(&presence("bench-counter"), &plan), None);
        assert_eq!(plan.per_unit(), 4);
        assert_eq!(plan.count_of(4), 4);
        assert_eq!(plan.count_of(5), 3);
    }
}
