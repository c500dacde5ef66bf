//! `outpost-sync-client`: a headless console for tests and benchmarks. Opens (creating) the
//! local database in `--data`, performs the scripted actions of `--script` (JSON lines, `-`
//! for stdin; see `outpost_sync::script`), syncs with `--server`, and prints one JSON line
//! with its origin, sync position, outbox counts and state digest.
//!
//! ```text
//! outpost-sync-client --data DIR --server URL [--user NAME] [--script FILE|-]
//!                     [--sync-once | --until-quiet] [--max-rounds N]
//! ```
//!
//! `OUTPOST_FAILPOINT` arms a crash point (S4): see `outpost_sync::failpoint`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use outpost_store::Store;
use outpost_sync::{LinkState, SyncEngine, SyncOptions, SyncStore, script};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "outpost-sync-client",
    version,
    about = "Headless Outpost console for sync tests"
)]
struct Cli {
    /// Directory of the local database (created if missing).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The sync server's base URL, e.g. http://127.0.0.1:7400.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Name recorded in the ops.
    #[arg(long, value_name = "NAME", default_value = "headless")]
    user: String,
    /// JSON-lines actions to perform first (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Run one sync round.
    #[arg(long, conflicts_with = "until_quiet")]
    sync_once: bool,
    /// Run sync rounds until one moves nothing and no op is pending.
    #[arg(long)]
    until_quiet: bool,
    /// At most this many rounds with --until-quiet.
    #[arg(long, default_value_t = 50)]
    max_rounds: usize,
    /// Sync with the background engine (as the desktop console does) until everything is
    /// acknowledged and pulled, and report when the critical lane, every lane and the pull
    /// were done (milliseconds from the start of syncing; benchmarks, S5).
    #[arg(long, conflicts_with_all = ["sync_once", "until_quiet"])]
    timed: bool,
    /// Give up --timed after this many seconds.
    #[arg(long, default_value_t = 3_600)]
    timeout_s: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-sync-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    std::fs::create_dir_all(&cli.data)
        .with_context(|| format!("cannot create {}", cli.data.display()))?;
    let now = chrono::Utc::now();
    let mut store = Store::open(&cli.data.join("outpost.db"), now)?;
    if let Some(path) = &cli.script {
        let text = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the script {}", path.display()))?
        };
        for action in script::parse(&text)? {
            script::perform(&mut store, chrono::Utc::now(), &cli.user, &action)
                .with_context(|| format!("action {action:?}"))?;
        }
    }
    let store = Arc::new(Mutex::new(store));
    let mut timings = serde_json::Value::Null;
    if cli.timed {
        let url = cli
            .server
            .as_deref()
            .context("--timed needs --server URL")?;
        timings = timed_sync(&store, url, Duration::from_secs(cli.timeout_s))?;
    }
    let mut rounds = Vec::new();
    if cli.sync_once || cli.until_quiet {
        let url = cli
            .server
            .as_deref()
            .context("--sync-once and --until-quiet need --server URL")?;
        let options = SyncOptions {
            poke: false,
            ..SyncOptions::default()
        };
        let max = if cli.sync_once { 1 } else { cli.max_rounds };
        rounds = SyncEngine::sync_until_quiet(Arc::clone(&store), url, options, max)?;
    }
    let store = store
        .lock()
        .map_err(|_| anyhow::anyhow!("the store lock was poisoned"))?;
    let pos = store.position()?;
    let (pending, acked, parked) = outpost_store::query::outbox_counts(store.conn())?;
    let summary = serde_json::json!({
        "origin": store.origin_id(),
        "epoch": pos.epoch,
        "cursor": pos.cursor,
        "pending": pending,
        "acked": acked,
        "parked": parked,
        "rounds": rounds.len(),
        "pulled": rounds.iter().map(|r| r.pulled).sum::<usize>(),
        "acked_now": rounds.iter().map(|r| r.acked).sum::<usize>(),
        "digest": outpost_sync::store_api::digest(&store)?,
        "timings": timings,
        "peak_rss_kib": peak_rss_kib(),
    });
    println!("{summary}");
    Ok(())
}

/// Runs the background engine until nothing is pending and the cursor reached the server's
/// newest op; returns the milestones in ms from the start.
fn timed_sync(
    store: &Arc<Mutex<Store>>,
    url: &str,
    timeout: Duration,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let handle = SyncEngine::start(
        Arc::clone(store),
        url,
        Arc::new(|| {}),
        SyncOptions::default(),
    )?;
    let ms = |t: Instant| u64::try_from(t.duration_since(started).as_millis()).unwrap_or(u64::MAX);
    let (mut critical, mut all) = (None, None);
    let caught_up = loop {
        let (counts, cursor) = {
            let s = store
                .lock()
                .map_err(|_| anyhow::anyhow!("the store lock was poisoned"))?;
            (s.outbox_counts()?, s.position()?.cursor)
        };
        let now = Instant::now();
        if critical.is_none() && counts.pending_critical == 0 {
            critical = Some(ms(now));
        }
        if all.is_none() && counts.pending() == 0 {
            all = Some(ms(now));
        }
        let st = handle.status();
        if all.is_some() && st.state == LinkState::Online && cursor >= st.server_gseq {
            break ms(now);
        }
        if now.duration_since(started) > timeout {
            anyhow::bail!("not done after {timeout:?}: {counts:?}, status {st:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    handle.shutdown();
    Ok(serde_json::json!({
        "critical_acked_ms": critical,
        "all_acked_ms": all,
        "caught_up_ms": caught_up,
    }))
}

/// The process's peak resident set (Linux `VmHWM`), KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
