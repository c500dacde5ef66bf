//! `outpost-server`: the central server (`serve`) and admin tool (`compact`, `pack build`).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use outpost_server::ingest::IngestConfig;
use outpost_server::security::{NewAccount, Security, SecurityConfig};
use outpost_server::storage::SqliteStorage;
use outpost_server::{PackBuildArgs, Server, ServerConfig, SyncStorage, pack_build, report_lines};

#[derive(Parser)]
#[command(
    name = "outpost-server",
    version,
    about = "Outpost central server and admin tool"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the sync server until SIGTERM or Ctrl-C (in-flight pushes finish first).
    Serve {
        /// Data directory (created if missing); the database is server.db inside.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
        listen: SocketAddr,
        /// Take positions from phones over the OsmAnd protocol (OsmAnd, Traccar Client) on
        /// this address, HTTP; Traccar's port is 5055. Off by default.
        #[arg(long, value_name = "ADDR")]
        osmand_listen: Option<SocketAddr>,
        /// Take Cursor-on-Target positions from TAK clients on this address (TCP and UDP)
        /// and stream units and incidents to TCP clients; TAK's port is 8087. Off by default.
        #[arg(long, value_name = "ADDR")]
        cot_listen: Option<SocketAddr>,
        /// Concurrent device connections per listener (OsmAnd, CoT); more are closed and
        /// counted. Each takes a file descriptor: `ulimit -n` must exceed twice this.
        #[arg(long, value_name = "N", default_value_t = outpost_server::ingest::MAX_CONNECTIONS,
              value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
        max_device_connections: usize,
        /// Concurrent device connections per listener from one IP address; more are closed
        /// and counted. Raise it when many devices share one address (NAT).
        #[arg(long, value_name = "N",
              default_value_t = outpost_server::ingest::MAX_CONNECTIONS_PER_ADDRESS,
              value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
        max_connections_per_address: usize,
        /// Position reports written per bound device per second at most; more (and
        /// repeats of a fix already written) are dropped and counted.
        #[arg(long, value_name = "N",
              default_value_t = outpost_server::ingest::MAX_DEVICE_RATE,
              value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
        max_device_rate: usize,
        /// Refuse OsmAnd reports without their device's token (`&token=…` in the phone's
        /// server URL, from `outpost-server device token ID`): answered 401 and counted.
        #[arg(long, requires = "osmand_listen")]
        osmand_require_token: bool,
        /// Serve the OsmAnd listener over HTTPS with the server certificate (DIR/tls/).
        #[arg(long, requires = "osmand_listen")]
        osmand_tls: bool,
        /// Serve Cursor-on-Target over TLS only, requiring a device certificate signed by
        /// the agency CA (TAK's port 8089 style); no UDP.
        #[arg(long, requires = "cot_listen")]
        cot_tls: bool,
        /// Hours after an online sign-in during which the person may sign in offline on
        /// that console, and ops written there are accepted when pushed later.
        #[arg(long, value_name = "HOURS",
              default_value_t = outpost_server::security::DEFAULT_OFFLINE_GRACE_H,
              value_parser = clap::value_parser!(u64).range(0..=24 * 365))]
        offline_grace_h: u64,
        /// Days audit records are kept (pruned daily; the chain stays verifiable); at
        /// least 365 (CJIS 5.9.5 §5.4.7).
        #[arg(long, value_name = "DAYS",
              default_value_t = outpost_server::security::audit::Retention::DEFAULT_DAYS)]
        audit_retention_days: u32,
        /// Concurrent connections on the sync port; more are closed at once (before the TLS
        /// handshake) and logged.
        #[arg(long, value_name = "N", default_value_t = 512,
              value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
        max_sync_connections: usize,
        /// Concurrent connections on the sync port from one IP address (an IPv6 /64).
        #[arg(long, value_name = "N", default_value_t = 64,
              value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
        max_sync_connections_per_address: usize,
        /// Password verifications (argon2id, ~19 MiB each) running at once for enroll and
        /// login; more wait up to 10 s, then 503.
        #[arg(long, value_name = "N", default_value_t = 2,
              value_parser = clap::value_parser!(u32).range(1..=64).map(|n| n as usize))]
        password_verifications: usize,
        /// Enroll + login requests per client address per minute; more are answered 429
        /// with Retry-After.
        #[arg(long, value_name = "N", default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(1..))]
        sign_in_per_minute: u32,
    },
    /// Certificates: the agency CA and the server certificate.
    Cert {
        #[command(subcommand)]
        command: CertCmd,
    },
    /// Remove position reports older than a gseq from the op log (their fixes stay as track
    /// history); consoles further behind then load a snapshot.
    Compact {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Position reports with a gseq below this are removed (the newest per unit is kept).
        #[arg(long, value_name = "G")]
        before_gseq: u64,
    },
    /// Accounts (security.db): add, list, unlock, disable.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
    /// Enrolled consoles and OsmAnd device tokens (security.db).
    Device {
        #[command(subcommand)]
        command: DeviceCmd,
    },
    /// Area packs.
    Pack {
        #[command(subcommand)]
        command: PackCmd,
    },
    /// The audit trail (audit.db): check its hash chain, show records.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain: exit 0 when intact, 1 naming the first broken record.
    ///
    /// The chain alone cannot show that its newest records were cut off or that the whole
    /// file was rewritten by someone who can write it: copy the head (`audit head`, also in
    /// the server log once a day) off the server every day, and check with --expect-head.
    Verify {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// A head kept elsewhere (`SEQ:HASH`, as `audit head` printed it): exit 1 naming
        /// that record when it is missing or its hash differs.
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<outpost_server::security::audit::ExpectedHead>,
    },
    /// Print the newest record's SEQ:HASH. Auditors: copy it off this server daily (another
    /// machine, paper, a message to yourself) and later run `audit verify --expect-head
    /// SEQ:HASH`.
    Head {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Print records, oldest first, one per line.
    Show {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Only records after this number.
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,
        /// At most this many records.
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(outpost_server::security::audit::MAX_PAGE)))]
        limit: u32,
        /// One JSON object per line (the fields of GET /v1/audit) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create an account. The password is read from the terminal without echo (twice), or
    /// one line from stdin with --password-stdin; at least 12 characters. Prints the TOTP
    /// secret and the otpauth URI for the person's authenticator app. The person must change
    /// the password at their first sign-in (unless --no-password-change).
    Add {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Login name.
        name: String,
        /// commander, dispatcher, field_unit, viewer, administrator or auditor.
        #[arg(long, value_name = "ROLE")]
        role: outpost_domain::access::Role,
        /// The unit of a field_unit account (required for field units only).
        #[arg(long, value_name = "UNIT_ID")]
        unit: Option<String>,
        /// The name shown to people (default: the login name).
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// Read the password as one line from stdin (scripts) instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// Do not require a change at the first sign-in (the person typed the password
        /// themselves; scripted test servers).
        #[arg(long)]
        no_password_change: bool,
    },
    /// List the accounts.
    List {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Release an account locked by failed sign-ins.
    Unlock {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Login name.
        name: String,
    },
    /// Set an account's password (a reset: the person forgot it). Read like `user add`'s;
    /// the person must change it at their next sign-in, and their sessions end. The TOTP
    /// secret is unchanged. Audited `admin:user.passwd` under the OS user.
    Passwd {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Login name.
        name: String,
        /// Read the password as one line from stdin (scripts) instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: no sign-in, its sessions end, consoles refuse it offline.
    Disable {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Login name.
        name: String,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// List enrolled consoles.
    List {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Revoke a console's certificate: refused from now on; consoles learn it and the
    /// revoked one forgets its keys.
    Revoke {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Device id (see `device list`).
        id: String,
        /// Why (kept with the device and in the audit trail).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Issue (or replace) the token of an OsmAnd phone: its URL then carries &token=TOKEN
    /// (with `serve --osmand-require-token`).
    Token {
        /// Data directory of the server.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The phone's device id (the `id=` of its OsmAnd URL).
        id: String,
    },
}

#[derive(Subcommand)]
enum CertCmd {
    /// Create the agency CA and the server certificate in DIR/tls/ (never overwrites a CA).
    Init {
        /// Data directory of the server (created if missing).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// A DNS name or IP address consoles and devices use to reach the server; repeat
        /// for each (the first is the certificate's common name).
        #[arg(long = "name", value_name = "HOST", required = true)]
        names: Vec<String>,
    },
    /// Issue a device key and certificate for a TAK client (`serve --cot-tls`) and record the
    /// device (revocable with `device revoke ID`). Writes OUT/ID.pem, OUT/ID.key (0600) and
    /// OUT/ca.pem; for ATAK/WinTAK make a PKCS#12 with `openssl pkcs12 -export -in ID.pem
    /// -inkey ID.key -certfile ca.pem -out ID.p12`.
    Device {
        /// Data directory of the server (with DIR/tls from `cert init`).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The device id: the certificate's common name (letters, digits, '-', '_', '.',
        /// ':'; e.g. the TAK client's callsign or uid).
        #[arg(long, value_name = "ID")]
        id: String,
        /// Where to write the files (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Days the certificate is valid.
        #[arg(long, value_name = "N", default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
}

#[derive(Subcommand)]
enum PackCmd {
    /// Build an area pack (tiles, search index, road network) from an OSM extract.
    Build {
        /// OpenStreetMap extract (.osm.pbf) with complete ways.
        #[arg(long, value_name = "FILE.osm.pbf")]
        osm: PathBuf,
        /// The pack to write (.outpost); replaced atomically when the build succeeds.
        #[arg(long, value_name = "FILE.outpost")]
        out: PathBuf,
        /// Area name stored in the pack (default: the input file name); not blank.
        #[arg(long)]
        name: Option<String>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors carry their cause in their one-line message; `{:#}` adds any
            // context. Not `eprintln!`: after SIGHUP the terminal may be gone, and a failed
            // write must not turn into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Serve {
            data,
            listen,
            osmand_listen,
            cot_listen,
            max_device_connections,
            max_connections_per_address,
            max_device_rate,
            osmand_require_token,
            osmand_tls,
            cot_tls,
            offline_grace_h,
            audit_retention_days,
            max_sync_connections,
            max_sync_connections_per_address,
            password_verifications,
            sign_in_per_minute,
        } => serve(
            data,
            listen,
            SecurityConfig {
                offline_grace_s: offline_grace_h * 3600,
                audit_retention: outpost_server::security::audit::Retention::from_days(
                    audit_retention_days,
                )?,
                ..SecurityConfig::default()
            },
            IngestConfig {
                osmand_listen,
                cot_listen,
                max_connections: Some(max_device_connections),
                max_connections_per_address: Some(max_connections_per_address),
                max_device_rate: Some(max_device_rate),
                osmand_require_token,
                osmand_tls,
                cot_tls,
                ..IngestConfig::default()
            },
            outpost_server::security::guards::GuardConfig {
                max_connections: max_sync_connections,
                max_connections_per_address: max_sync_connections_per_address,
                password_verifications,
                sign_in_per_minute,
                ..Default::default()
            },
        ),
        Cmd::Compact { data, before_gseq } => {
            anyhow::ensure!(data.is_dir(), "{}: no such data directory", data.display());
            anyhow::ensure!(
                data.join("server.db").is_file(),
                "{}: no server.db here; give the --data directory of `outpost-server serve`",
                data.display()
            );
            let mut storage = SqliteStorage::open(&data)?;
            let report = storage.compact(before_gseq)?;
            println!(
                "removed {} position reports; history now starts at gseq {}",
                report.removed, report.floor
            );
            Ok(())
        }
        Cmd::Audit { command } => audit(command),
        Cmd::Cert {
            command:
                CertCmd::Device {
                    data,
                    id,
                    out,
                    days,
                },
        } => cert_device(&data, &id, &out, days),
        Cmd::Cert {
            command: CertCmd::Init { data, names },
        } => {
            let report = outpost_server::security::pki::cert_init(&data, &names)?;
            for f in &report.files {
                println!("wrote {}", f.display());
            }
            println!("server certificate for {}", report.names.join(", "));
            println!(
                "server certificate expires {}",
                report.server_not_after.date()
            );
            println!("CA fingerprint (SHA-256): {}", report.ca_fingerprint);
            Ok(())
        }
        Cmd::User { command } => user(command),
        Cmd::Device { command } => device(command),
        Cmd::Pack {
            command:
                PackCmd::Build {
                    osm,
                    out,
                    name,
                    quiet,
                },
        } => {
            let cancel = Arc::new(AtomicBool::new(false));
            let flag = cancel.clone();
            // Ctrl-C, SIGTERM and SIGHUP (ctrlc's `termination` feature) stop the build
            // cleanly: tilemaker is killed and waited for, the temporary files are removed.
            ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))?;
            let args = PackBuildArgs {
                osm,
                out,
                name,
                progress: !quiet,
            };
            let report = pack_build(&args, cancel)?;
            for line in report_lines(&report) {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// Serves until SIGTERM, SIGINT or SIGHUP, then shuts down gracefully.
fn serve(
    data: PathBuf,
    listen: SocketAddr,
    security: SecurityConfig,
    ingest: IngestConfig,
    guards: outpost_server::security::guards::GuardConfig,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the signal handler")?;
    let server = Server::start(
        ServerConfig::new(data, listen)
            .with_ingest(ingest)
            .with_security(security)
            .with_guards(guards),
    )?;
    // Lines on stdout that scripts and tests wait for; "listening on" comes last.
    if let Some(a) = server.osmand_addr() {
        println!("osmand listening on {a}");
    }
    if let Some(a) = server.cot_addr() {
        println!("cot listening on {a}");
    }
    println!("listening on {}", server.local_addr());
    let _ = std::io::stdout().flush();
    let _ = rx.recv();
    tracing::info!("signal received; shutting down");
    server.shutdown()?;
    Ok(())
}

/// `cert device`: a key and certificate for a TAK client, the device recorded (and audited)
/// so `device revoke` refuses it on the CoT TLS port.
fn cert_device(
    data: &std::path::Path,
    id: &str,
    out: &std::path::Path,
    days: u32,
) -> anyhow::Result<()> {
    use outpost_server::security::pki;
    let ca = pki::Pki::load(data)?;
    let security = security_of(data)?;
    let (signed, key) = ca.issue_device(id, days)?;
    let cert_path = out.join(format!("{id}.pem"));
    let key_path = out.join(format!("{id}.key"));
    let ca_path = out.join("ca.pem");
    for p in [&cert_path, &key_path] {
        anyhow::ensure!(!p.exists(), "{}: exists; not overwritten", p.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    security.admin_local("cert.device", id, |a| {
        a.add_device(
            id,
            &format!("TAK client {id}"),
            uuid::Uuid::now_v7(),
            &signed.serial_hex,
            outpost_server::security::accounts::TAK_DEVICE_ENROLLER,
            "",
        )
    })?;
    pki::write_new_file(&key_path, &key, true)?;
    pki::write_new_file(&cert_path, &signed.cert_pem, false)?;
    if !ca_path.exists() {
        pki::write_new_file(&ca_path, ca.ca_pem(), false)?;
    }
    println!("wrote {}", cert_path.display());
    println!("wrote {}", key_path.display());
    println!("wrote {}", ca_path.display());
    println!(
        "device {id}: certificate serial {} valid until {}",
        signed.serial_hex,
        signed.not_after.date()
    );
    Ok(())
}

/// `audit verify`, `audit head` and `audit show`. A broken chain prints its line on stdout and exits 1.
fn audit(command: AuditCmd) -> anyhow::Result<()> {
    use outpost_server::security::audit;
    match command {
        AuditCmd::Head { data } => {
            println!("{}", audit::read_head(&data)?);
            Ok(())
        }
        AuditCmd::Verify { data, expect_head } => {
            let report = match &expect_head {
                Some(h) => audit::verify_expecting(&data, h)?,
                None => audit::verify(&data)?,
            };
            println!("{report}");
            if let audit::VerifyReport::Intact {
                head_hash,
                last_seq,
                ..
            } = &report
            {
                println!("head: #{last_seq} {head_hash}");
                if let Some(h) = &expect_head {
                    println!("the head kept elsewhere (#{}) is in the trail", h.seq);
                }
            }
            if !report.is_intact() {
                let _ = std::io::stdout().flush();
                std::process::exit(1);
            }
            Ok(())
        }
        AuditCmd::Show {
            data,
            after,
            limit,
            json,
        } => {
            let page = audit::read_page(&data, after, Some(limit))?;
            let mut out = std::io::stdout().lock();
            for r in &page.records {
                if json {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                } else {
                    let p = audit::one_line;
                    writeln!(
                        out,
                        "#{} {} {} {} user={} device={} target={} {}",
                        r.seq,
                        p(&r.at),
                        p(&r.outcome),
                        p(&r.action),
                        p(&r.user),
                        p(&r.device),
                        p(&r.target),
                        p(&r.detail)
                    )?;
                }
            }
            Ok(())
        }
    }
}

/// Opens the security state of an existing data directory (admin commands).
fn security_of(data: &std::path::Path) -> anyhow::Result<Security> {
    anyhow::ensure!(
        data.is_dir(),
        "{}: no such data directory; give the --data directory of `outpost-server serve`",
        data.display()
    );
    Ok(Security::open(data, SecurityConfig::default())?)
}

/// Reads the new password: one line of stdin, or twice from the terminal without echo.
fn read_new_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("Password again: ")
            .context("cannot read the password from the terminal")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was changed"
        );
        first
    };
    outpost_server::security::accounts::check_password_rules(&password)?;
    Ok(password)
}

fn user(command: UserCmd) -> anyhow::Result<()> {
    match command {
        UserCmd::Add {
            data,
            name,
            role,
            unit,
            display_name,
            password_stdin,
            no_password_change,
        } => {
            let security = security_of(&data)?;
            let password = read_new_password(password_stdin)?;
            let new = NewAccount {
                name: name.clone(),
                role,
                unit_id: unit,
                display_name,
                password,
            };
            let created = security.admin_local("user.add", &name, |a| {
                let created = a.add_user(&new)?;
                a.set_must_change_password(&created.name, !no_password_change)?;
                Ok(created)
            })?;
            println!("account {:?} created ({role})", created.name);
            println!("TOTP secret (base32): {}", created.totp_secret);
            println!("otpauth URI: {}", created.otpauth_uri);
            println!(
                "Give the secret to the person once, for their authenticator app (RFC 6238, \
                 SHA-1, 6 digits, 30 s); it is not shown again."
            );
            if !no_password_change {
                println!("They must choose their own password at their first sign-in.");
            }
            Ok(())
        }
        UserCmd::List { data } => {
            let security = security_of(&data)?;
            let users = security.admin_local("user.list", "", |a| a.list_users())?;
            if users.is_empty() {
                println!("no accounts; create one with `outpost-server user add`");
            }
            for u in users {
                let state = match (u.enabled, u.locked_at) {
                    (false, _) => "disabled".to_string(),
                    (true, Some(at)) => format!("locked since {}", at.to_rfc3339()),
                    (true, None) => "enabled".to_string(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{state}",
                    u.name,
                    u.role,
                    u.unit_id.as_deref().unwrap_or("-"),
                    u.display_name
                );
            }
            Ok(())
        }
        UserCmd::Unlock { data, name } => {
            let security = security_of(&data)?;
            security.admin_local("user.unlock", &name, |a| a.unlock(&name))?;
            println!("account {name:?} unlocked");
            Ok(())
        }
        UserCmd::Passwd {
            data,
            name,
            password_stdin,
        } => {
            let security = security_of(&data)?;
            let password = read_new_password(password_stdin)?;
            security.admin_local("user.passwd", &name, |a| a.reset_password(&name, &password))?;
            println!(
                "password of {name:?} set; they must change it at their next sign-in (their \
                 sessions ended)"
            );
            Ok(())
        }
        UserCmd::Disable { data, name } => {
            let security = security_of(&data)?;
            security.admin_local("user.disable", &name, |a| a.disable(&name))?;
            println!("account {name:?} disabled; its sessions ended");
            Ok(())
        }
    }
}

fn device(command: DeviceCmd) -> anyhow::Result<()> {
    match command {
        DeviceCmd::List { data } => {
            let security = security_of(&data)?;
            let devices = security.admin_local("device.list", "", |a| a.list_devices())?;
            if devices.is_empty() {
                println!("no enrolled devices");
            }
            for d in devices {
                let state = match (&d.revoked_at, &d.revoke_reason) {
                    (Some(at), reason) => format!(
                        "revoked {} ({})",
                        at.to_rfc3339(),
                        reason.as_deref().unwrap_or("-")
                    ),
                    (None, _) => "active".to_string(),
                };
                println!(
                    "{}\t{}\torigin {}\tenrolled by {} at {}\t{state}",
                    d.device_id,
                    d.name,
                    d.origin,
                    d.enrolled_by,
                    d.enrolled_at.to_rfc3339()
                );
            }
            Ok(())
        }
        DeviceCmd::Revoke { data, id, reason } => {
            let security = security_of(&data)?;
            security.admin_local("device.revoke", &id, |a| a.revoke_device(&id, &reason))?;
            println!("device {id} revoked");
            Ok(())
        }
        DeviceCmd::Token { data, id } => {
            let security = security_of(&data)?;
            let token = security.admin_local("device.token", &id, |a| a.issue_device_token(&id))?;
            println!("{token}");
            eprintln!(
                "Put &token={token} in the phone's OsmAnd URL; it is not shown again (a new \
                 `device token` replaces it)."
            );
            Ok(())
        }
    }
}
