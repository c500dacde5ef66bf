//! `outpost-blank-window`: one Tauri v2 window showing an empty page, nothing else (no IPC
//! commands, no custom protocol, no state). The baseline of bench/desktop.sh: the console's
//! idle memory (PSS of the app and its WebKit processes) is compared with this window's,
//! measured in the same run by the same method. Same window size as the console
//! (1600 × 1000 px logical), same Tauri version and features.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

fn main() -> ExitCode {
    match tauri::Builder::default().run(tauri::generate_context!()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-blank-window: cannot start the window: {e}");
            ExitCode::FAILURE
        }
    }
}
