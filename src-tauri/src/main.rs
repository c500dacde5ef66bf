//! `outpost`: the desktop console's thin Tauri shell.
//!
//! Owns: the command line, the window, one Tauri command per entry of the IPC contract
//! (forwarding to [`outpost_app::Console`]), the `state-changed` event, the `outpost://` tile
//! protocol, the first-run build of the demo pack, and field laptop mode (`--unit`, `--gps`:
//! starts [`outpost_app::gps::GpsReader`] and stops it on exit).
//!
//! Architecture invariant: no business logic. Every use-case lives in `outpost-app` and is
//! testable without Tauri; this crate only wires it to the webview.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod cli;
mod commands;
mod demo;
mod tiles;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use outpost_app::ipc::STATE_CHANGED_EVENT;
use outpost_domain::SystemClock;
use tauri::{Emitter, Manager, Runtime};

use outpost_app::sync::{SyncAttachment, SyncOptions};
use outpost_app::{Console, ConsoleOptions};

use crate::cli::Cli;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,topojson=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The data directory: `--data-dir`, else the per-user one by OS convention
/// ([`outpost_app::default_data_dir`]), with the demo kept apart in its `demo/`
/// subdirectory so simulated units and incidents never mix with real ones.
fn data_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(dir) = &cli.data_dir {
        return Ok(dir.clone());
    }
    let base = outpost_app::default_data_dir()
        .context("no per-user data directory on this system; pass --data-dir DIR")?;
    Ok(if cli.demo { base.join("demo") } else { base })
}

/// The login name, for timelines when `--user` is not given.
fn default_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "commander".to_owned())
}

fn run(cli: Cli) -> Result<()> {
    let data_dir = data_dir(&cli)?;
    outpost_app::prepare_data_dir(&data_dir).map_err(|e| anyhow::anyhow!(e.message))?;

    let context = tauri::generate_context!();
    let mut pack = cli.pack.clone();
    if cli.demo && pack.is_none() {
        let resources =
            tauri::utils::platform::resource_dir(context.package_info(), &tauri::Env::default())
                .ok();
        pack = Some(demo::ensure_demo_pack(&data_dir, resources.as_deref())?);
    }
    if cli.prepare_demo {
        return Ok(());
    }
    check_display()?;

    let options = ConsoleOptions {
        pack,
        data_dir: data_dir.clone(),
        demo: cli.demo,
        user: cli.user.clone().unwrap_or_else(default_user),
    };
    let console = Console::open(options, Arc::new(SystemClock)).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the local database in {}: {e}",
            data_dir.display()
        )
    })?;
    console.set_map_base_url(tiles::MAP_BASE_URL.to_owned());
    let console = Arc::new(console);
    {
        // The router (the pack's roads and their hierarchy) is ready before the first
        // closest-units ranking is asked for.
        let console = Arc::clone(&console);
        std::thread::spawn(move || console.prepare_routing());
    }
    let sync = start_sync(&cli, &console);
    let gps = start_field_mode(&cli, &console, sync.is_some())?;

    // The replay needs the pack's roads; without a pack the error screen shows instead.
    let replay = if cli.demo && console.pack().is_some() {
        demo::start_replay(&console)?
    } else {
        demo::Replay::default()
    };

    let app = wire(tauri::Builder::default(), console, replay)
        .build(context)
        .context("cannot start the window (is a display available? see DISPLAY)")?;
    emit_changes(app.handle());
    app.run(move |app, event| {
        if let tauri::RunEvent::Exit = event {
            app.state::<demo::Replay>().stop();
            if let Ok(mut g) = gps.lock()
                && let Some(mut reader) = g.take()
            {
                reader.stop();
            }
            if let Some(s) = &sync {
                s.shutdown();
            }
        }
    });
    Ok(())
}

/// Starts the sync engine when a server is given (`--server`, else the settings). A bad URL
/// is logged and the console works alone: sync never stops a commander from working.
fn start_sync(cli: &Cli, console: &Arc<Console>) -> Option<Arc<SyncAttachment>> {
    let url = cli
        .server
        .clone()
        .or_else(|| console.get_settings().ok().and_then(|s| s.server_url))
        .filter(|u| !u.trim().is_empty())?;
    match outpost_app::sync::start(console, &url, SyncOptions::default()) {
        Ok(attachment) => {
            tracing::info!(server = %url, "syncing with the server");
            Some(attachment)
        }
        Err(e) => {
            tracing::error!(server = %url, error = %e.message, "sync not started; working alone");
            None
        }
    }
}

/// How long a field laptop waits for its first sync to bring the roster when `--unit` names
/// a callsign not yet known here, seconds.
const ROSTER_WAIT_S: u64 = 20;

/// Field laptop mode (`--unit CALLSIGN [--gps SOURCE]`): makes the console that unit and
/// starts the receiver reader. An unknown callsign is fatal with a message naming it (after
/// waiting up to [`ROSTER_WAIT_S`] for a syncing console's roster); so is a bad `--gps`.
fn start_field_mode(
    cli: &Cli,
    console: &Arc<Console>,
    syncing: bool,
) -> Result<std::sync::Mutex<Option<outpost_app::gps::GpsReader>>> {
    let none = || std::sync::Mutex::new(None);
    let Some(callsign) = &cli.unit else {
        return Ok(none());
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(ROSTER_WAIT_S);
    loop {
        match console.set_field_unit(callsign) {
            Ok(_) => break,
            Err(e)
                if syncing
                    && e.code == outpost_app::ipc::ErrorCode::NotFound
                    && std::time::Instant::now() < until =>
            {
                tracing::info!(%callsign, "waiting for the roster from the server");
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => anyhow::bail!("{}", e.message),
        }
    }
    let Some(source) = &cli.gps else {
        return Ok(none());
    };
    let opts = outpost_app::gps::GpsOptions {
        source: outpost_app::gps::GpsSource::parse(source)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        label: source.clone(),
        speed: cli.gps_speed,
    };
    let reader = outpost_app::gps::GpsReader::start(Arc::clone(console), opts)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    tracing::info!(%source, "reading the GPS receiver");
    Ok(std::sync::Mutex::new(Some(reader)))
}

/// GTK aborts the process when it finds no display; say what to do instead.
#[cfg(all(unix, not(target_os = "macos")))]
fn check_display() -> Result<()> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("DISPLAY") || set("WAYLAND_DISPLAY") {
        Ok(())
    } else {
        anyhow::bail!(
            "no display (neither DISPLAY nor WAYLAND_DISPLAY is set); run Outpost in a desktop \
             session, or on a virtual screen with: xvfb-run -a -s '-screen 0 1600x1000x24' outpost …"
        )
    }
}

/// Windows and macOS always have a display for a desktop app.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn check_display() -> Result<()> {
    Ok(())
}

/// Everything the shell adds to a Tauri builder: the managed console and replay, the
/// `outpost` tile protocol and the commands. Generic over the runtime so the IPC tests run it
/// on Tauri's mock runtime.
fn wire<R: Runtime>(
    builder: tauri::Builder<R>,
    console: Arc<Console>,
    replay: demo::Replay,
) -> tauri::Builder<R> {
    tracing::debug!(commands = ?commands::REGISTERED, "IPC commands registered");
    builder
        .manage(console)
        .manage(replay)
        .register_asynchronous_uri_scheme_protocol(tiles::SCHEME, tiles::handle)
        .invoke_handler(commands::handler())
}

/// Emits [`STATE_CHANGED_EVENT`] with `{ revision }` to the webview after every committed
/// change of the managed console.
fn emit_changes<R: Runtime>(app: &tauri::AppHandle<R>) {
    let handle = app.clone();
    app.state::<commands::SharedConsole>()
        .on_change(Box::new(move |revision| {
            if let Err(e) = handle.emit(
                STATE_CHANGED_EVENT,
                serde_json::json!({ "revision": revision }),
            ) {
                tracing::warn!(error = %e, "could not emit {STATE_CHANGED_EVENT}");
            }
        }));
}

#[cfg(test)]
mod ipc_tests;
