//! `outpost-sync-client`: a headless console for tests and benchmarks. Opens (creating) the
//! local database in `--data`, performs the scripted actions of `--script` (JSON lines, `-`
//! for stdin; see `outpost_sync::script`), syncs with `--server`, and prints one JSON line
//! with its origin, sync position, outbox counts and state digest.
//!
//! ```text
//! outpost-sync-client --data DIR --server URL [--user NAME] [--script FILE|-]
//!                     [--sync-once | --until-quiet | --timed] [--max-rounds N]
//!                     [--ca FILE [--cert FILE --key FILE]
//!                      [--token TOKEN | --login USER --password-file F --totp-secret S]]
//!                     [--cache-key-file FILE]
//! ```
//!
//! `http://` servers are plain in-process test servers (no TLS, no auth). `https://` needs
//! `--ca` (the agency CA, the only certificate trusted) and, for everything but enrollment,
//! the device's `--cert`/`--key`; the person is `--token` or is logged in with `--login`
//! (the TOTP code is computed from `--totp-secret`, base32; for tests and benchmarks). Ops
//! are recorded as the logged-in user unless `--user` says otherwise. A console's encrypted
//! cache (SQLCipher) opens with `--cache-key-file` (a file holding its 64 hex digits); a
//! plaintext database given a key is converted to an encrypted one.
//!
//! `OUTPOST_FAILPOINT` arms a crash point (S4): see `outpost_sync::failpoint`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use outpost_domain::wire::{LoginRequest, PROTOCOL_VERSION};
use outpost_store::{CacheKey, Store};
use outpost_sync::{
    LinkState, SyncEngine, SyncOptions, SyncStore, TlsSettings, TokenSource, account, script,
};

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
    /// Name recorded in the ops (default: the --login user, else "headless").
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The agency CA certificate, PEM (required for https://; the only one trusted).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// This device's certificate, PEM (from enrollment).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// This device's private key, PEM.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// A session token from `POST /v1/login`.
    #[arg(long, value_name = "TOKEN", conflicts_with = "login")]
    token: Option<String>,
    /// Log in as this user first (needs --password-file, --totp-secret, --cert/--key).
    #[arg(long, value_name = "USER", requires_all = ["password_file", "totp_secret"])]
    login: Option<String>,
    /// File holding the --login password (one line; the newline is not part of it).
    #[arg(long, value_name = "FILE", requires = "login")]
    password_file: Option<PathBuf>,
    /// The --login user's TOTP secret (base32); the current code is computed from it.
    #[arg(long, value_name = "BASE32", requires = "login")]
    totp_secret: Option<String>,
    /// File holding the cache key (64 hex digits) of an encrypted console database.
    #[arg(long, value_name = "FILE")]
    cache_key_file: Option<PathBuf>,
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

/// The TLS settings from `--ca`, `--cert`, `--key`.
fn tls_settings(cli: &Cli) -> Result<Option<TlsSettings>> {
    let read = |path: &PathBuf, what: &str| {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} {}", path.display()))
    };
    let Some(ca) = &cli.ca else {
        if cli.cert.is_some() {
            anyhow::bail!("--cert/--key need --ca (the agency CA certificate)");
        }
        return Ok(None);
    };
    let mut tls = TlsSettings::new(read(ca, "CA certificate (--ca)")?);
    if let (Some(cert), Some(key)) = (&cli.cert, &cli.key) {
        tls = tls.with_identity(
            read(cert, "device certificate (--cert)")?,
            read(key, "device key (--key)")?,
        );
    }
    Ok(Some(tls))
}

/// The current RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret.
fn totp_now(secret_b32: &str) -> Result<String> {
    let bytes = totp_rs::Secret::Encoded(secret_b32.trim().to_string())
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("--totp-secret is not base32: {e:?}"))?;
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    totp.generate_current()
        .context("the system clock is before 1970")
}

/// The session token: `--token`, or a fresh login with `--login`.
fn session_token(cli: &Cli, tls: Option<&TlsSettings>) -> Result<TokenSource> {
    if let Some(token) = &cli.token {
        return Ok(TokenSource::with_token(token.trim()));
    }
    let Some(user) = &cli.login else {
        return Ok(TokenSource::new());
    };
    let url = cli
        .server
        .as_deref()
        .context("--login needs --server URL")?;
    let tls = tls.context("--login needs --ca, --cert and --key")?;
    anyhow::ensure!(
        tls.identity.is_some(),
        "--login needs --cert and --key (an enrolled device)"
    );
    let password_file = cli
        .password_file
        .as_ref()
        .context("--login needs --password-file")?;
    let password = std::fs::read_to_string(password_file)
        .with_context(|| format!("cannot read the password file {}", password_file.display()))?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    let secret = cli
        .totp_secret
        .as_deref()
        .context("--login needs --totp-secret")?;
    let req = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: user.clone(),
        password,
        totp: totp_now(secret)?,
    };
    let session =
        account::login(url, tls, &req).with_context(|| format!("cannot log in as {user}"))?;
    Ok(TokenSource::with_token(session.token))
}

fn run(cli: Cli) -> Result<()> {
    let tls = tls_settings(&cli)?;
    let token = session_token(&cli, tls.as_ref())?;
    let user = cli
        .user
        .clone()
        .or_else(|| cli.login.clone())
        .unwrap_or_else(|| "headless".to_string());
    let base_options = SyncOptions {
        tls,
        token,
        ..SyncOptions::default()
    };
    std::fs::create_dir_all(&cli.data)
        .with_context(|| format!("cannot create {}", cli.data.display()))?;
    let now = chrono::Utc::now();
    let key = match &cli.cache_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the cache key file {}", path.display()))?;
            Some(
                CacheKey::from_hex(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let mut store = Store::open_with_key(&cli.data.join("outpost.db"), key.as_ref(), now)?;
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
            script::perform(&mut store, chrono::Utc::now(), &user, &action)
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
        timings = timed_sync(
            &store,
            url,
            base_options.clone(),
            Duration::from_secs(cli.timeout_s),
        )?;
    }
    let mut rounds = Vec::new();
    if cli.sync_once || cli.until_quiet {
        let url = cli
            .server
            .as_deref()
            .context("--sync-once and --until-quiet need --server URL")?;
        let options = SyncOptions {
            poke: false,
            ..base_options
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
    options: SyncOptions,
    timeout: Duration,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let handle = SyncEngine::start(Arc::clone(store), url, Arc::new(|| {}), options)?;
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
        if st.state.needs_attention() {
            anyhow::bail!(
                "sync stopped: {}",
                st.last_error
                    .as_deref()
                    .unwrap_or("the server refused this console")
            );
        }
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
