//! Measurements of the security layer for `bench/security.sh` (issue 6). Each command prints
//! one line of JSON on stdout.
//!
//! - `argon2 --n N`: hashes a password with the production argon2id parameters
//!   ([`PasswordParams::default`]: m = 19,456 KiB, t = 2, p = 1) and verifies it N times;
//!   milliseconds per verification (p50, p95, max) and for the hash.
//! - `login --n N`: an in-process TLS server (`Server::start` with the production
//!   [`SecurityConfig`] but a settable clock, in a temporary directory with `cert init` for
//!   127.0.0.1) holding one account hashed with the production parameters and one enrolled
//!   device; then N sign-ins, each a fresh HTTPS connection (agency CA pinned, the device
//!   certificate) posting `/v1/login` with the password and the TOTP code: the whole round
//!   trip in milliseconds (p50, p95, max). The server has the production guards except the
//!   per-address sign-in rate (raised: all sign-ins come from 127.0.0.1). Between sign-ins the security clock moves one TOTP
//!   step (a code is accepted once), never the wall clock. Fails unless every sign-in answers
//!   a session token.
//! - `audit --dir D --single N --batches M`: appends N records one transaction each into
//!   `D/single/audit.db`, then M batches of 100 records into `D/batched/audit.db` (a real
//!   `AuditLog`: hash chain, `synchronous` as the server uses it); records/s of each. Then
//!   checks both chains verify (`audit::verify`) and fails otherwise.
//! - `plain-serve --data D`: the in-process server with plain HTTP and no authentication
//!   ([`ServerConfig::plain_for_tests`], what the sync logic's tests use; the binary never
//!   serves this way) on 127.0.0.1, printing `listening on ADDR`; runs until killed. The
//!   baseline of the push comparison.
//!
//! Build with `cargo build --release -p outpost-server --example security_bench`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::Utc;
use clap::{Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

use outpost_domain::access::Role;
use outpost_domain::clock::{Clock, FixedClock};
use outpost_domain::wire::{LoginRequest, LoginResponse, PROTOCOL_VERSION};
use outpost_server::security::accounts::{PasswordParams, totp_code};
use outpost_server::security::audit::{self, AuditLog};
use outpost_server::security::{AuditEvent, AuditOutcome, NewAccount, SecurityConfig};
use outpost_server::{Server, ServerConfig};

#[derive(Parser)]
#[command(
    name = "security_bench",
    about = "Outpost security benchmarks (see bench/security.sh)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// argon2id verification time with the production parameters.
    Argon2 {
        /// Verifications.
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// Full sign-in round trips over TLS.
    Login {
        /// Sign-ins.
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// Audit append throughput into real audit databases.
    Audit {
        /// Directory for `single/` and `batched/` (created; must not hold audit databases).
        #[arg(long)]
        dir: PathBuf,
        /// Records appended one transaction each.
        #[arg(long, default_value_t = 2_000)]
        single: usize,
        /// Batches of 100 records.
        #[arg(long, default_value_t = 1_000)]
        batches: usize,
    },
    /// The plain in-process server (no TLS, no authentication), until killed.
    PlainServe {
        /// Data directory (created).
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Argon2 { n } => argon2_bench(n),
        Cmd::Login { n } => login_bench(n),
        Cmd::Audit {
            dir,
            single,
            batches,
        } => audit_bench(&dir, single, batches),
        Cmd::PlainServe { data } => plain_serve(&data),
    }
}

/// Milliseconds, rounded to 0.01.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// p50, p95 and max of `samples` (nearest rank), milliseconds.
fn summary(samples: &mut [Duration]) -> serde_json::Value {
    samples.sort_unstable();
    let pick = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(i).copied().map_or(-1.0, ms)
    };
    json!({
        "n": samples.len(),
        "p50_ms": pick(0.5),
        "p95_ms": pick(0.95),
        "max_ms": samples.last().copied().map_or(-1.0, ms),
    })
}

fn argon2_bench(n: usize) -> Result<()> {
    let p = PasswordParams::default();
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt_bytes = outpost_server::security::accounts::random_bytes(16)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let password = "correct-horse-battery-17";
    let t = Instant::now();
    let phc = hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?
        .to_string();
    let hash_time = t.elapsed();
    // Verification reads the parameters from the PHC string, as the server does.
    let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("PHC: {e}"))?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|e| anyhow::anyhow!("verification failed: {e}"))?;
        samples.push(t.elapsed());
    }
    if argon2::Argon2::default()
        .verify_password(b"wrong-password-123", &parsed)
        .is_ok()
    {
        bail!("a wrong password verified");
    }
    let mut out = summary(&mut samples);
    out["hash_ms"] = json!(ms(hash_time));
    out["params"] = json!(format!(
        "argon2id m={} KiB t={} p={}",
        p.m_cost_kib, p.t_cost, p.p_cost
    ));
    println!("{out}");
    Ok(())
}

fn login_bench(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    outpost_server::security::pki::cert_init(data, &["127.0.0.1".to_string()])
        .context("cert init")?;
    let ca_pem = outpost_server::security::pki::Pki::load(data)?
        .ca_pem()
        .to_string();
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let config = SecurityConfig {
        clock: clock.clone(),
        ..SecurityConfig::default()
    };
    // The person signing in, hashed with the production parameters.
    let accounts = outpost_server::security::Accounts::open(data, config.password, clock.clone())?;
    let password = "correct-horse-battery-17";
    let created = accounts
        .add_user(&NewAccount {
            name: "officer".into(),
            role: Role::Dispatcher,
            unit_id: None,
            display_name: None,
            password: password.into(),
        })
        .map_err(|e| anyhow::anyhow!("user add: {e}"))?;
    drop(accounts);
    // An enrolled device (set-up: straight into the security database).
    let (device, _) =
        outpost_server::testing::direct_session(data, "enroller", Role::Commander, Uuid::now_v7())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    // The production guards except the per-address sign-in rate (10 a minute by default),
    // which would refuse the 11th sign-in from 127.0.0.1.
    let guards = outpost_server::security::guards::GuardConfig {
        sign_in_per_minute: 100_000,
        ..Default::default()
    };
    let server = Server::start(
        ServerConfig::new(data, listen)
            .with_security(config)
            .with_guards(guards),
    )?;
    let url = format!("https://{}/v1/login", server.local_addr());
    let tls = outpost_sync::tls::client_config(
        &ca_pem,
        Some((device.cert_pem.as_str(), device.key_pem.as_str())),
    )?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        // A fresh client: a new TCP connection and TLS handshake with the device certificate.
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .use_preconfigured_tls(tls.clone())
            .build()?;
        let req = LoginRequest {
            protocol: PROTOCOL_VERSION,
            user: "officer".into(),
            password: password.into(),
            totp: totp_code(&created.totp_secret, clock.now())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        let t = Instant::now();
        let resp = client.post(&url).json(&req).send()?;
        let status = resp.status();
        let body = resp.text()?;
        let elapsed = t.elapsed();
        if !status.is_success() {
            bail!("sign-in {i} refused: {status} {body}");
        }
        let login: LoginResponse = serde_json::from_str(&body)
            .with_context(|| format!("sign-in {i}: not a login response"))?;
        if login.token.len() < 32 {
            bail!("sign-in {i}: no session token");
        }
        samples.push(elapsed);
        // The next sign-in needs the next TOTP step (each is accepted once).
        clock.advance_secs(30);
    }
    server.shutdown()?;
    let mut out = summary(&mut samples);
    out["ok"] = json!(n);
    println!("{out}");
    Ok(())
}

/// A record like the server's per-op ones.
fn event(i: usize) -> AuditEvent {
    AuditEvent::new("op:incident.create", AuditOutcome::Ok)
        .user("dispatcher-07")
        .device("dev-0190a1b2c3d4")
        .target(Uuid::now_v7().to_string())
        .detail(format!("push of 100 ops, op {i}"))
}

fn audit_bench(dir: &Path, single: usize, batches: usize) -> Result<()> {
    let single_dir = dir.join("single");
    let batched_dir = dir.join("batched");
    for d in [&single_dir, &batched_dir] {
        if d.join(audit::AUDIT_FILE).exists() {
            bail!("{} already holds an audit database", d.display());
        }
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let log = AuditLog::open(&single_dir)?;
    let t = Instant::now();
    for i in 0..single {
        log.record(event(i))?;
    }
    let single_s = t.elapsed().as_secs_f64();
    drop(log);
    let log = AuditLog::open(&batched_dir)?;
    let t = Instant::now();
    for b in 0..batches {
        let batch: Vec<AuditEvent> = (0..100).map(|i| event(b * 100 + i)).collect();
        log.record_many(&batch)?;
    }
    let batched_s = t.elapsed().as_secs_f64();
    drop(log);
    let mut intact = true;
    for (d, n) in [(&single_dir, single), (&batched_dir, batches * 100)] {
        match audit::verify(d)? {
            audit::VerifyReport::Intact { records, .. } if records == n as u64 => {}
            other => {
                eprintln!("{}: {other:?} (expected {n} records)", d.display());
                intact = false;
            }
        }
    }
    println!(
        "{}",
        json!({
            "single": single,
            "single_s": single_s,
            "single_per_s": (single as f64 / single_s).floor(),
            "batched": batches * 100,
            "batched_s": batched_s,
            "batched_per_s": ((batches * 100) as f64 / batched_s).floor(),
            "intact": intact,
        })
    );
    if !intact {
        bail!("an audit chain did not verify");
    }
    Ok(())
}

fn plain_serve(data: &Path) -> Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let server = Server::start(ServerConfig::plain_for_tests(data, listen))?;
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    // Until SIGTERM (the script's kill); the server has no state that needs a clean stop
    // for this comparison.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
