//! `outpost-sync-client`: a headless console for tests and benchmarks. Opens (creating) the
//! local database in `--data`, performs the scripted actions of `--script` (JSON lines, `-`
//! for stdin; see `outpost_sync::script`), syncs with `--server`, and prints one JSON line
//! with its origin, sync position, outbox counts and state digest.
//!
//! ```text
//! outpost-sync-client --data DIR --server URL [--user NAME] [--script FILE|-]
//!                     [--sync-once | --until-quiet | --timed] [--max-rounds N]
//!                     [--ca FILE [--cert FILE --key FILE]
//!                      [--token TOKEN --user NAME | --login USER --password-file F --totp-secret S]]
//!                     [--enroll --device-name NAME --ca FILE
//!                      --login USER --password-file F --totp-secret S]
//!                     [--cache-key-file FILE]
//! ```
//!
//! `http://` servers are only the plain in-process test servers (`ServerConfig::
//! plain_for_tests`: no TLS, no auth); a real `outpost-server serve` is `https://`, which needs
//! `--ca` (the agency CA, the only certificate trusted) and, for everything but enrollment,
//! the device's `--cert`/`--key`; the person is `--token` or is logged in with `--login`
//! (the TOTP code is computed from `--totp-secret`, base32; for tests and benchmarks). Ops
//! are recorded as the logged-in user unless `--user` says otherwise. A console's encrypted
//! cache (SQLCipher) opens with `--cache-key-file` (a file holding its 64 hex digits); a
//! plaintext database given a key is converted to an encrypted one.
//!
//! `--enroll` enrolls this data directory's console (fresh review D2): a new ECDSA P-256
//! key and CSR (rcgen), the origin of its store, `POST /v1/enroll` with the `--login`
//! person's password and current code; the device certificate and key are written to
//! `DATA/device.pem` and `DATA/device.key` (0600; refused if they exist) for later runs'
//! `--cert`/`--key`, and the run goes on with the session the enrollment answered. The
//! escrowed cache key is the `--cache-key-file` key, or a random one that this client does
//! not use (its cache then stays unencrypted). With `--token` the person the token belongs
//! to must be given with `--user` (ops are recorded as written by them).
//!
//! `OUTPOST_FAILPOINT` arms a crash point (S4): see `outpost_sync::failpoint`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use outpost_domain::wire::{EnrollRequest, LoginRequest, PROTOCOL_VERSION};
use outpost_store::{CacheKey, Store};
use outpost_sync::{
    LinkState, SyncEngine, SyncOptions, SyncStore, TlsSettings, TokenSource, account, script,
};

/// The device certificate `--enroll` writes into the data directory.
const DEVICE_CERT_FILE: &str = "device.pem";
/// The device key `--enroll` writes into the data directory (0600).
const DEVICE_KEY_FILE: &str = "device.key";

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
    /// The sync server's base URL, e.g. https://dispatch.example:7400 (a real server is
    /// https:// only; http:// is only for plain in-process test servers).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Name recorded in the ops (default: the --login user; required with --token: the
    /// person the token belongs to; "headless" without any sign-in).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The agency CA certificate, PEM (required for https://; the only one trusted).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// This device's certificate, PEM (from enrollment: --enroll writes DATA/device.pem).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// This device's private key, PEM (--enroll writes DATA/device.key).
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
    /// Enroll this console first as the --login person (needs --device-name, --ca,
    /// --server, --password-file, --totp-secret): writes DATA/device.pem and
    /// DATA/device.key (0600) and uses the session the enrollment answers with.
    #[arg(long, requires_all = ["device_name", "login", "ca", "server"],
          conflicts_with_all = ["cert", "token"])]
    enroll: bool,
    /// The device name shown in `outpost-server device list` (with --enroll).
    #[arg(long, value_name = "NAME", requires = "enroll")]
    device_name: Option<String>,
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

/// The `--password-file` password (without its line end) and the current code of
/// `--totp-secret`.
fn credentials(cli: &Cli) -> Result<(String, String)> {
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
    Ok((password, totp_now(secret)?))
}

/// Writes `text` to `path` readable by its owner only; refuses to overwrite.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `--enroll`: key + CSR, `POST /v1/enroll` with this store's origin, the certificate and
/// key written into the data directory; returns the TLS settings with the new identity and
/// the session the enrollment answered with.
fn enroll(
    cli: &Cli,
    tls: Option<TlsSettings>,
    store: &Store,
    cache_key: Option<&CacheKey>,
) -> Result<(TlsSettings, TokenSource)> {
    let url = cli
        .server
        .as_deref()
        .context("--enroll needs --server URL")?;
    let tls = tls.context("--enroll needs --ca (the agency CA certificate)")?;
    let user = cli
        .login
        .as_deref()
        .context("--enroll needs --login USER")?;
    let device_name = cli
        .device_name
        .as_deref()
        .context("--enroll needs --device-name NAME")?;
    let cert_path = cli.data.join(DEVICE_CERT_FILE);
    let key_path = cli.data.join(DEVICE_KEY_FILE);
    for p in [&cert_path, &key_path] {
        anyhow::ensure!(
            !p.exists(),
            "{} exists: this console is enrolled already (use --cert and --key)",
            p.display()
        );
    }
    let (key_pem, csr_pem) =
        account::new_key_and_csr("outpost console").map_err(anyhow::Error::msg)?;
    let cache_key = match cache_key {
        Some(k) => k.to_hex(),
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
            CacheKey::from_bytes(bytes).to_hex()
        }
    };
    let (password, totp) = credentials(cli)?;
    let req = EnrollRequest {
        protocol: PROTOCOL_VERSION,
        user: user.to_string(),
        password,
        totp,
        device_name: device_name.to_string(),
        origin: store.origin_id(),
        csr_pem,
        cache_key,
    };
    let resp = account::enroll(url, &tls.ca_pem, &req)
        .with_context(|| format!("cannot enroll this console as {user}"))?;
    write_private(&key_path, &key_pem)?;
    write_private(&cert_path, &resp.certificate_pem)?;
    eprintln!(
        "enrolled as device {} ({}); certificate {}, key {}",
        resp.device_id,
        device_name,
        cert_path.display(),
        key_path.display()
    );
    let session = resp.session.context(
        "the server enrolled the device but answered with no session: run again with \
         --cert/--key and --login (after the next 30 s code)",
    )?;
    let tls = TlsSettings::new(tls.ca_pem).with_identity(resp.certificate_pem, key_pem);
    Ok((tls, TokenSource::with_token(session.token)))
}

/// The session token: `--token`, or a fresh login with `--login`.
fn session_token(cli: &Cli, tls: Option<&TlsSettings>) -> Result<TokenSource> {
    if let Some(token) = &cli.token {
        // Ops are recorded as written by `--user`: a default name would be refused by the
        // server as an author without an account (fresh review D2).
        anyhow::ensure!(
            cli.user.is_some(),
            "give --user: the person the token belongs to"
        );
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
    let (password, totp) = credentials(cli)?;
    let req = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: user.clone(),
        password,
        totp,
    };
    let session =
        account::login(url, tls, &req).with_context(|| format!("cannot log in as {user}"))?;
    Ok(TokenSource::with_token(session.token))
}

fn run(cli: Cli) -> Result<()> {
    let tls = tls_settings(&cli)?;
    // Enrollment logs in itself (the session comes with the certificate).
    let token = if cli.enroll {
        TokenSource::new()
    } else {
        session_token(&cli, tls.as_ref())?
    };
    let user = cli
        .user
        .clone()
        .or_else(|| cli.login.clone())
        .unwrap_or_else(|| "headless".to_string());
    let mut base_options = SyncOptions {
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
    if cli.enroll {
        let (tls, token) = enroll(&cli, base_options.tls.take(), &store, key.as_ref())?;
        base_options.tls = Some(tls);
        base_options.token = token;
    }
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
