//! `sync_bench`: the Rust half of `bench/sync.sh` (issue 3's measurements). Four subcommands:
//!
//! - `gen`: writes an offline backlog into a console database (positions, critical ops,
//!   notes), as the console writes them (`outpost_sync::script`, one `Store::write` each), with
//!   op times spread over `--hours` ending now. Not a measurement (printed for information).
//! - `fill`: builds a server data directory holding N ops by pushing them through the
//!   server's own sync logic (`SyncService::push_request`: validation, ordering, the server's
//!   replica) from several in-memory consoles at once, without HTTP.
//! - `run`: a console process: opens a console database and runs the REAL sync engine
//!   (`SyncEngine::start`, poke channel on, default backoff) against `--server`, watching the
//!   outbox and the cursor through a second read-only connection; prints progress to stderr
//!   every few seconds and one JSON line of absolute times (ms since Unix epoch UTC) and its
//!   peak RSS (VmHWM, KiB) to stdout.
//! - `digest`: the state digest of a console database or of a stopped server's data
//!   directory (convergence check, invariant I3).
//! - `provision`: makes a server data directory ready for a console over TLS (issue 6):
//!   `cert init` when it has no agency CA yet, then an enrolled device for the console's
//!   origin and a signed-in session of a commander account, written straight into the
//!   server's security database (`outpost_server::testing::direct_session`: not a
//!   measurement, no password or TOTP round trips); writes `ca.pem`, `device.pem`,
//!   `device.key` and `token` into `--out` for `run --auth`.
//!
//! Build with `cargo build --release -p outpost-sync --example sync_bench`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::op::Lane;
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_domain::wire::{PROTOCOL_VERSION, PushRequest};
use outpost_server::{SqliteStorage, SyncService, SyncStorage};
use outpost_store::Store;
use outpost_sync::script::{self, Action};
use outpost_sync::{LinkState, SyncEngine, SyncOptions, TlsSettings, TokenSource};

#[derive(Parser)]
#[command(
    name = "sync_bench",
    about = "Outpost sync benchmarks (see bench/sync.sh)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// How many ops of each lane one console writes.
#[derive(clap::Args, Clone, Copy, Debug)]
struct Mix {
    /// Position reports.
    #[arg(long, default_value_t = 100_000)]
    positions: usize,
    /// Critical ops (unit registrations, then cycles of incident create, assign, en route,
    /// on scene, close).
    #[arg(long, default_value_t = 2_000)]
    critical: usize,
    /// Timeline notes on open incidents.
    #[arg(long, default_value_t = 500)]
    notes: usize,
    /// Units reporting positions.
    #[arg(long, default_value_t = 50)]
    units: usize,
    /// The ops' times are spread over this many hours, ending now.
    #[arg(long, default_value_t = 8.0)]
    hours: f64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write an offline backlog into the console database DIR/outpost.db.
    Gen {
        /// Console data directory (created).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        mix: Mix,
    },
    /// Fill a server data directory with about `--ops` ops through the server's sync logic.
    Fill {
        /// Server data directory (created; must not hold a database yet).
        #[arg(long)]
        data: PathBuf,
        /// Total ops (split over the origins; 97.6% positions, 1.95% critical, 0.49% notes,
        /// the mix of the 8-hour backlog).
        #[arg(long, default_value_t = 1_000_000)]
        ops: usize,
        /// Consoles (origins) writing at once, each on its own thread.
        #[arg(long, default_value_t = 2)]
        origins: usize,
    },
    /// Run the sync engine on a console database until caught up.
    Run {
        /// Console data directory (created when missing: a fresh console).
        #[arg(long)]
        data: PathBuf,
        /// Server base URL.
        #[arg(long)]
        server: String,
        /// Caught up also needs the cursor at or beyond this gseq (a fresh console joining).
        #[arg(long, default_value_t = 0)]
        min_gseq: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 1_800)]
        timeout_s: u64,
        /// Progress line every this many seconds.
        #[arg(long, default_value_t = 5)]
        progress_s: u64,
        /// TLS and session files written by `provision --out DIR` (for an https:// server).
        #[arg(long, value_name = "DIR")]
        auth: Option<PathBuf>,
    },
    /// Prepare a server data directory for a console over TLS and write its credentials.
    Provision {
        /// Server data directory (created; `cert init` for 127.0.0.1 unless it has a CA).
        #[arg(long)]
        server_data: PathBuf,
        /// Console data directory (created: its origin is the device's).
        #[arg(long)]
        console: PathBuf,
        /// The commander account the console's ops are written as (created when missing).
        #[arg(long, default_value = "bench")]
        user: String,
        /// Where `ca.pem`, `device.pem`, `device.key` and `token` go (created, 0700).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the state digest of a console database (`--console DIR`) or a server data
    /// directory (`--server-data DIR`, server stopped).
    Digest {
        /// Console data directory.
        #[arg(long, conflicts_with = "server_data")]
        console: Option<PathBuf>,
        /// Server data directory.
        #[arg(long)]
        server_data: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Gen { data, mix } => gen_cmd(&data, mix),
        Cmd::Fill { data, ops, origins } => fill(&data, ops, origins),
        Cmd::Run {
            data,
            server,
            min_gseq,
            timeout_s,
            progress_s,
            auth,
        } => {
            let options = match auth {
                Some(dir) => auth_options(&dir)?,
                None => SyncOptions::default(),
            };
            run(&data, &server, min_gseq, timeout_s, progress_s, options)
        }
        Cmd::Provision {
            server_data,
            console,
            user,
            out,
        } => provision(&server_data, &console, &user, &out),
        Cmd::Digest {
            console,
            server_data,
        } => digest(console, server_data),
    }
}

fn epoch_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Peak resident set of this process (VmHWM), KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) of process `pid` ("self" for this one), seconds;
/// clock ticks of 1/100 s (Linux `USER_HZ` on x86-64 and arm64).
fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses: state is
            // field 3, utime 14, stime 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The actions of one console, with the time each is written at: positions evenly over the
/// period, the critical ops and notes spread among them. Unit ids start with `prefix`.
fn actions(mix: Mix, prefix: &str, end: DateTime<Utc>) -> Vec<(DateTime<Utc>, Action)> {
    // Every reporting unit is registered first (a critical op each).
    let units = mix.units.clamp(1, mix.critical.max(1));
    let total = mix.positions + mix.critical + mix.notes;
    let span_ms = (mix.hours * 3_600_000.0) as i64;
    let step_ms = (span_ms / total.max(1) as i64).max(1);
    let start = end - chrono::Duration::milliseconds(step_ms * total as i64);
    let unit_id = |u: usize| format!("{prefix}u{u:03}");
    let mut rng = fastrand::Rng::with_seed(7);

    // The critical ops in write order: registrations, then incident cycles.
    let mut critical: Vec<Action> = Vec::with_capacity(mix.critical);
    for u in 0..units.min(mix.critical) {
        critical.push(Action::RegisterUnit {
            unit_id: unit_id(u),
            callsign: format!("{prefix}A{u}"),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        });
    }
    // Notes go to the incident open at the time (created, not yet closed).
    let mut note_slots: Vec<usize> = Vec::new();
    let mut cycle = 0usize;
    while critical.len() < mix.critical {
        let incident = Uuid::now_v7().to_string();
        let unit = unit_id(cycle % units);
        let cycle_ops = [
            Action::CreateIncident {
                name: None,
                incident_id: Uuid::parse_str(&incident).ok(),
                incident_type: IncidentType::Theft,
                priority: Priority::P2,
                location: LatLon {
                    lat: 42.5 + rng.f64() * 0.05,
                    lon: 1.5 + rng.f64() * 0.05,
                },
                address: format!("street {cycle}"),
                description: "bench".into(),
            },
            Action::Assign {
                incident: incident.clone(),
                unit_id: unit.clone(),
            },
            Action::Status {
                unit_id: unit.clone(),
                to: UnitStatus::EnRoute,
            },
            Action::Status {
                unit_id: unit.clone(),
                to: UnitStatus::OnScene,
            },
            Action::Close {
                incident: incident.clone(),
                disposition: Disposition::Resolved,
                summary: String::new(),
            },
        ];
        for (i, a) in cycle_ops.into_iter().enumerate() {
            if critical.len() == mix.critical {
                break;
            }
            critical.push(a);
            if i == 1 {
                note_slots.push(critical.len()); // after the assign, before the close
            }
        }
        cycle += 1;
    }
    // Notes: spread over the incidents, each written right after its incident's assign.
    let mut notes_at: Vec<Vec<Action>> = vec![Vec::new(); critical.len() + 1];
    if !note_slots.is_empty() {
        for n in 0..mix.notes {
            let slot = note_slots[n * note_slots.len() / mix.notes.max(1)];
            let incident = match &critical[slot - 2] {
                Action::CreateIncident {
                    incident_id: Some(id),
                    ..
                } => id.to_string(),
                _ => continue,
            };
            notes_at[slot].push(Action::Note {
                incident,
                text: format!("bench note {n}: caller called back, suspect left on foot"),
            });
        }
    }
    let mut extra: Vec<Action> = Vec::with_capacity(mix.critical + mix.notes);
    for (i, c) in critical.into_iter().enumerate() {
        extra.push(c);
        extra.append(&mut notes_at[i + 1]);
    }
    // Registrations first, then the rest of the extra actions spread over the positions.
    let regs = units.min(extra.len());
    let mut out: Vec<(DateTime<Utc>, Action)> = Vec::with_capacity(total);
    let mut t = start;
    let mut tick = || {
        t += chrono::Duration::milliseconds(step_ms);
        t
    };
    let mut rest = extra.split_off(regs).into_iter().peekable();
    for a in extra {
        out.push((tick(), a));
    }
    let rest_len = rest.len();
    let mut pos: Vec<LatLon> = (0..units)
        .map(|u| LatLon {
            lat: 42.50 + (u as f64) * 0.001,
            lon: 1.50 + (u as f64) * 0.001,
        })
        .collect();
    let mut emitted = 0usize;
    for p in 0..mix.positions {
        // Keep the extra actions evenly among the positions.
        while rest.peek().is_some()
            && emitted * mix.positions.max(1) <= p * rest_len.max(1)
            && mix.positions > 0
        {
            if let Some(a) = rest.next() {
                out.push((tick(), a));
                emitted += 1;
            }
        }
        let u = p % units;
        let here = &mut pos[u];
        here.lat = (here.lat + (rng.f64() - 0.5) * 0.0004).clamp(42.4, 42.7);
        here.lon = (here.lon + (rng.f64() - 0.5) * 0.0004).clamp(1.4, 1.8);
        let at = tick();
        out.push((
            at,
            Action::Position {
                unit_id: unit_id(u),
                position: *here,
                fix_time: Some(at),
            },
        ));
    }
    for a in rest {
        out.push((tick(), a));
    }
    out
}

/// Performs `actions` on `store`; prints progress to stderr. Returns ops written.
fn write_all(
    store: &mut Store,
    actions: &[(DateTime<Utc>, Action)],
    label: &str,
    user: &str,
) -> Result<usize> {
    let started = Instant::now();
    let mut last = Instant::now();
    for (i, (at, a)) in actions.iter().enumerate() {
        script::perform(store, *at, user, a).with_context(|| format!("action {i}: {a:?}"))?;
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            eprintln!(
                "  {label}: {} / {} ops written ({:.0} ops/s)",
                i + 1,
                actions.len(),
                (i + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(actions.len())
}

fn gen_cmd(data: &Path, mix: Mix) -> Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let db = data.join("outpost.db");
    if db.exists() {
        bail!("{} exists: gen writes a fresh console", db.display());
    }
    let mut store = Store::open(&db, Utc::now())?;
    // Generation is set-up, not a measurement: skip the per-write fsync (the next
    // Store::open, in `run`, sets synchronous = FULL again). Same rows as FULL.
    store.conn().pragma_update(None, "synchronous", "OFF")?;
    let list = actions(mix, "", Utc::now());
    let started = Instant::now();
    let n = write_all(&mut store, &list, "gen", "bench")?;
    let secs = started.elapsed().as_secs_f64();
    let counts = store.outbox_counts()?;
    store
        .conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    println!(
        "{}",
        serde_json::json!({
            "ops": n,
            "pending_critical": counts.pending_critical,
            "pending_notes": counts.pending_notes,
            "pending_positions": counts.pending_positions,
            "seconds": secs,
            "origin": store.origin_id(),
        })
    );
    Ok(())
}

fn fill(data: &Path, ops: usize, origins: usize) -> Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let storage = SqliteStorage::open(data)?;
    let service = Arc::new(SyncService::new(Box::new(storage)));
    if service.head()?.gseq != 0 {
        bail!("{} already holds ops", data.display());
    }
    let origins = origins.max(1);
    let per = ops / origins;
    let started = Instant::now();
    let accepted = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..origins)
            .map(|k| {
                let service = Arc::clone(&service);
                let accepted = &accepted;
                s.spawn(move || fill_one(&service, k, per, accepted, started))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a fill thread panicked")))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    let secs = started.elapsed().as_secs_f64();
    let head = service.head()?;
    println!(
        "{}",
        serde_json::json!({ "ops": total, "server_gseq": head.gseq, "seconds": secs,
                            "ops_per_s": total as f64 / secs })
    );
    Ok(())
}

/// One console (in memory) writing `n` ops and pushing them through `service`, in chunks so
/// its memory stays small. Returns the ops accepted.
fn fill_one(
    service: &SyncService,
    k: usize,
    n: usize,
    accepted: &std::sync::atomic::AtomicU64,
    started: Instant,
) -> Result<u64> {
    let critical = n * 195 / 10_000;
    let notes = n * 49 / 10_000;
    let mix = Mix {
        positions: n - critical - notes,
        critical,
        notes,
        units: 50,
        hours: 8.0,
    };
    let list = actions(mix, &format!("o{k}-"), Utc::now());
    let mut store = Store::open_in_memory(Utc::now())?;
    let user = format!("bench{k}");
    let mut mine = 0u64;
    let mut last = Instant::now();
    for chunk in list.chunks(20_000) {
        write_all(&mut store, chunk, &format!("fill origin {k}"), &user)?;
        for lane in [Lane::Critical, Lane::Notes, Lane::Positions] {
            loop {
                let batch = store.pending_batch(lane, 1_000)?;
                if batch.is_empty() {
                    break;
                }
                let req = PushRequest {
                    protocol: PROTOCOL_VERSION,
                    origin: store.origin_id(),
                    lane,
                    epoch: None,
                    cursor: 0,
                    ops: batch
                        .iter()
                        .map(serde_json::to_value)
                        .collect::<Result<_, _>>()?,
                };
                let resp = service
                    .push_request(&req)
                    .map_err(|e| anyhow::anyhow!("push: {e}"))?;
                let rec = store.record_push(lane, &resp, Utc::now())?;
                if rec.parked > 0 {
                    bail!("origin {k}: {} ops parked", rec.parked);
                }
                mine += rec.acked as u64;
                let all = accepted.fetch_add(rec.acked as u64, std::sync::atomic::Ordering::SeqCst)
                    + rec.acked as u64;
                if last.elapsed() >= Duration::from_secs(5) {
                    last = Instant::now();
                    eprintln!(
                        "  fill: {all} ops on the server ({:.0} ops/s)",
                        all as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        }
        // Acked ops are not needed again: keep the in-memory console small.
        store.prune_acked(Utc::now() + chrono::Duration::days(1))?;
    }
    Ok(mine)
}

/// What the watcher reads from the console database.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    critical: u64,
    notes: u64,
    positions: u64,
    acked: u64,
    parked: u64,
    cursor: u64,
}

impl Seen {
    fn pending(&self) -> u64 {
        self.critical + self.notes + self.positions
    }
}

/// Pending ops per lane and the cursor. Counted through the `outbox_pending(status, lane,
/// seq)` index, so the cost shrinks with the backlog (the watcher polls often).
fn look_pending(c: &Connection, s: &mut Seen) -> Result<()> {
    let mut st = c.prepare_cached(
        "SELECT lane, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY lane",
    )?;
    let mut rows = st.query([])?;
    (s.critical, s.notes, s.positions) = (0, 0, 0);
    while let Some(r) = rows.next()? {
        let n = r.get::<_, i64>(1)? as u64;
        match r.get::<_, String>(0)?.as_str() {
            "critical" => s.critical = n,
            "notes" => s.notes = n,
            _ => s.positions += n,
        }
    }
    s.cursor = c
        .prepare_cached("SELECT cursor FROM sync_state WHERE singleton = 1")?
        .query_row([], |r| r.get::<_, i64>(0))? as u64;
    Ok(())
}

/// Pending critical ops only (a short index range: the fast poll until they are acked).
fn pending_critical(c: &Connection) -> Result<u64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND lane = 'critical'",
    )?
    .query_row([], |r| r.get::<_, i64>(0))? as u64)
}

/// Everything, acked and parked counts included (progress lines and the end).
fn look(c: &Connection) -> Result<Seen> {
    let mut s = Seen::default();
    look_pending(c, &mut s)?;
    (s.acked, s.parked) = c
        .prepare_cached(
            "SELECT COALESCE(SUM(status = 'acked'), 0), COALESCE(SUM(status = 'parked'), 0)
             FROM outbox",
        )?
        .query_row([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?;
    Ok(s)
}

/// `provision`: see the module documentation.
fn provision(server_data: &Path, console: &Path, user: &str, out: &Path) -> Result<()> {
    use outpost_server::security::pki;
    if !pki::exists(server_data) {
        pki::cert_init(server_data, &["127.0.0.1".to_string()])
            .with_context(|| format!("cert init in {}", server_data.display()))?;
    }
    std::fs::create_dir_all(console)
        .with_context(|| format!("cannot create {}", console.display()))?;
    let origin = Store::open(&console.join("outpost.db"), Utc::now())?.origin_id();
    let (device, token) = outpost_server::testing::direct_session(
        server_data,
        user,
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
    for (name, text) in [
        ("ca.pem", ca.as_str()),
        ("device.pem", device.cert_pem.as_str()),
        ("device.key", device.key_pem.as_str()),
        ("token", token.as_str()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "{}",
        serde_json::json!({ "device_id": device.device_id, "origin": origin, "user": user })
    );
    Ok(())
}

/// Sync options for an https:// server from the files `provision` wrote into `dir`.
fn auth_options(dir: &Path) -> Result<SyncOptions> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    Ok(SyncOptions {
        tls: Some(
            TlsSettings::new(read("ca.pem")?)
                .with_identity(read("device.pem")?, read("device.key")?),
        ),
        token: TokenSource::with_token(read("token")?.trim()),
        ..SyncOptions::default()
    })
}

fn run(
    data: &Path,
    server: &str,
    min_gseq: u64,
    timeout_s: u64,
    progress_s: u64,
    options: SyncOptions,
) -> Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let db = data.join("outpost.db");
    let store = Store::open(&db, Utc::now())?;
    let watcher = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let first = look(&watcher)?;
    let store = Arc::new(Mutex::new(store));
    let t_start = epoch_ms();
    let started = Instant::now();
    let handle = SyncEngine::start(Arc::clone(&store), server, Arc::new(|| {}), options)?;
    // Poll fast (20 ms) while critical ops are pending: those times are the ones with a
    // sub-second target; then every 100 ms. Every query is an index range that shrinks as
    // the backlog drains.
    let mut t_contact: Option<i64> = None;
    let mut t_first_ack: Option<i64> = None;
    let mut t_critical: Option<i64> = (first.critical == 0).then_some(t_start);
    let mut t_notes: Option<i64> = (first.notes == 0).then_some(t_start);
    let mut t_pushed: Option<i64> = None;
    let mut t_first_pull: Option<i64> = None;
    let mut t_done: Option<i64> = None;
    let mut last_progress = Instant::now();
    let mut last_seen = first;
    let mut last_at = Instant::now();
    let mut seen = first;
    while t_done.is_none() {
        let fast = t_critical.is_none();
        std::thread::sleep(Duration::from_millis(if fast { 20 } else { 100 }));
        let status = handle.status();
        if status.state.needs_attention() {
            handle.shutdown();
            bail!("sync stopped: {:?}", status.last_error);
        }
        if started.elapsed() > Duration::from_secs(timeout_s) {
            handle.shutdown();
            bail!(
                "not caught up after {timeout_s} s: {seen:?}, last error {:?}",
                handle.status().last_error
            );
        }
        let now = epoch_ms();
        if t_contact.is_none()
            && (status.rounds > 0 || matches!(status.state, LinkState::Syncing | LinkState::Online))
        {
            t_contact = Some(now);
        }
        if fast {
            seen.critical = pending_critical(&watcher)?;
            if seen.critical < first.critical {
                t_first_ack.get_or_insert(now);
                t_contact.get_or_insert(now);
            }
            if seen.critical == 0 {
                t_critical = Some(now);
            }
            continue;
        }
        look_pending(&watcher, &mut seen)?;
        if seen.pending() < first.pending() {
            t_first_ack.get_or_insert(now);
            t_contact.get_or_insert(now);
        }
        if t_first_pull.is_none() && seen.cursor > first.cursor {
            t_first_pull = Some(now);
        }
        if t_notes.is_none() && seen.notes == 0 {
            t_notes = Some(now);
        }
        if t_pushed.is_none() && seen.pending() == 0 {
            t_pushed = Some(now);
        }
        if seen.pending() == 0
            && seen.cursor > 0
            && seen.cursor >= status.server_gseq
            && seen.cursor >= min_gseq
        {
            t_done = Some(now);
        }
        if last_progress.elapsed() >= Duration::from_secs(progress_s) {
            seen = look(&watcher)?;
            let dt = last_at.elapsed().as_secs_f64();
            let pushed = seen.acked.saturating_sub(last_seen.acked) + seen.parked
                - last_seen.parked.min(seen.parked);
            let pulled = seen.cursor.saturating_sub(last_seen.cursor);
            eprintln!(
                "  {:>6.1} s  {:?}  pending critical/notes/positions {}/{}/{}  acked {}  \
                 cursor {} of {}  ({:.0} acks/s, {:.0} pulled/s)",
                started.elapsed().as_secs_f64(),
                status.state,
                seen.critical,
                seen.notes,
                seen.positions,
                seen.acked,
                seen.cursor,
                status.server_gseq,
                pushed as f64 / dt,
                pulled as f64 / dt,
            );
            last_progress = Instant::now();
            last_seen = seen;
            last_at = Instant::now();
        }
    }
    let seen = look(&watcher)?;
    let status = handle.status();
    handle.shutdown();
    let deferred = store
        .lock()
        .map_err(|_| anyhow::anyhow!("store lock poisoned"))?
        .deferred_count()?;
    println!(
        "{}",
        serde_json::json!({
            "t_start": t_start,
            "t_contact": t_contact,
            "t_first_ack": t_first_ack,
            "t_first_pull": t_first_pull,
            "t_critical_acked": t_critical,
            "t_notes_acked": t_notes,
            "t_pushed": t_pushed,
            "t_caught_up": t_done,
            "pushed": seen.acked.saturating_sub(first.acked),
            "parked": seen.parked,
            "deferred": deferred,
            "pulled": seen.cursor.saturating_sub(first.cursor),
            "cursor": seen.cursor,
            "server_gseq": status.server_gseq,
            "rounds": status.rounds,
            "vm_hwm_kib": vm_hwm_kib(),
            "cpu_s": cpu_seconds("self"),
        })
    );
    Ok(())
}

fn digest(console: Option<PathBuf>, server_data: Option<PathBuf>) -> Result<()> {
    let d = match (console, server_data) {
        (Some(dir), None) => Store::open(&dir.join("outpost.db"), Utc::now())?.state_digest()?,
        (None, Some(dir)) => SqliteStorage::open(&dir)?.state_digest()?,
        _ => bail!("give --console DIR or --server-data DIR"),
    };
    println!("{}", serde_json::to_string(&d)?);
    Ok(())
}
