//! `outpost`: the desktop console's thin Tauri shell.
//!
//! Owns: the command line, the window, one Tauri command per entry of the IPC contract
//! (forwarding to the sign-in [`outpost_app::auth::Gate`] or, once someone is signed in, to
//! its [`outpost_app::Console`]), the `state-changed` event, the `outpost://` tile protocol,
//! the first-run build of the demo pack, the webview's memory settings ([`webview`]), and —
//! after the first sign-in — the demo replay and
//! field laptop mode (`--unit`, `--gps`: starts [`outpost_app::gps::GpsReader`] and stops it on
//! sign-out and exit).
//!
//! Architecture invariant: no business logic. Every use-case lives in `outpost-app` and is
//! testable without Tauri; this crate only wires it to the webview.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod cli;
mod commands;
mod demo;
mod session;
mod tiles;
mod webview;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use outpost_app::ipc::STATE_CHANGED_EVENT;
use outpost_domain::SystemClock;
use tauri::{Emitter, Manager, Runtime};

use outpost_app::auth::{Gate, GateOptions};

use crate::cli::Cli;
use crate::session::{Shell, StartPlan};

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

/// The idle lock for this run: `--idle-lock-min` in seconds; none when 0 or in field laptop
/// mode (CJIS 5.9.5 exempts consoles in vehicles).
fn idle_lock_s(cli: &Cli) -> Option<u32> {
    if cli.unit.is_some() || cli.idle_lock_min == 0 {
        None
    } else {
        Some(cli.idle_lock_min.saturating_mul(60))
    }
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
    // Building the demo pack needs nobody signed in: it touches no local database.
    if cli.prepare_demo {
        return Ok(());
    }
    check_display()?;

    let server_url = cli.server.clone().filter(|u| !u.trim().is_empty());
    let options = GateOptions {
        data_dir: data_dir.clone(),
        pack,
        demo: cli.demo,
        field_unit: cli.unit.clone(),
        server_url: server_url.clone(),
        ca_file: cli.ca.clone(),
        idle_lock_s: idle_lock_s(&cli),
        login_hint: cli.user.clone(),
    };
    let gate = Gate::open(options, Arc::new(SystemClock)).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the sign-in vault in {}: {}",
            data_dir.display(),
            e.message
        )
    })?;
    let plan = StartPlan {
        demo: cli.demo,
        field_unit: cli.unit.clone(),
        gps: cli.gps.clone(),
        gps_speed: cli.gps_speed,
        syncing: gate.auth_status().server_url.is_some(),
        map_base_url: tiles::MAP_BASE_URL.to_owned(),
    };
    let shell = Arc::new(Shell::new(Arc::new(gate), plan));

    let app = wire(tauri::Builder::default(), Arc::clone(&shell))
        .build(context)
        .context("cannot start the window (is a display available? see DISPLAY)")?;
    emit_changes(app.handle());
    app.run(move |app, event| match event {
        tauri::RunEvent::Ready => webview::tune(app),
        tauri::RunEvent::Exit => shell.shutdown(),
        _ => {}
    });
    Ok(())
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

/// Everything the shell adds to a Tauri builder: the managed [`Shell`] (Gate and what runs
/// for its console), the `outpost` tile protocol and the commands. Generic over the runtime so
/// the IPC tests run it on Tauri's mock runtime.
fn wire<R: Runtime>(builder: tauri::Builder<R>, shell: Arc<Shell>) -> tauri::Builder<R> {
    tracing::debug!(commands = ?commands::REGISTERED, "IPC commands registered");
    builder
        .manage(shell)
        .register_asynchronous_uri_scheme_protocol(tiles::SCHEME, tiles::handle)
        .invoke_handler(commands::handler())
}

/// Emits [`STATE_CHANGED_EVENT`] with `{ revision }` to the webview after every committed
/// change of the signed-in console (hooked at each sign-in that opens a console).
fn emit_changes<R: Runtime>(app: &tauri::AppHandle<R>) {
    let handle = app.clone();
    app.state::<commands::SharedShell>()
        .set_emitter(Arc::new(move |revision| {
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
