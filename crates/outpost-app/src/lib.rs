//! The console's use-cases: what the UI can ask for and do, as plain Rust.
//!
//! Owns: the IPC contract ([`ipc`]: argument and result types, the command table, the
//! TypeScript bindings generated from them), the use-cases behind each command ([`Console`],
//! one method per [`ipc::COMMANDS`] entry, same names and types), the domain rules applied
//! to user actions (through `outpost-domain`), the error codes crossing IPC ([`AppError`]),
//! track exports (GPX and KML files in the data directory's `exports/`), and the field
//! laptop's receiver reader ([`gps`]: serial, gpsd or log replay, fixes written through
//! [`Console`] as the field unit's positions). The Tauri shell in `src-tauri/` only
//! forwards commands here.
//!
//! Architecture invariant: no dependency on Tauri or any UI toolkit; everything here runs in
//! a plain `cargo test`. State changes only through `outpost_store::Store::write` (one
//! transaction: rules, state, outbox).

pub mod auth;
mod console;
pub mod dispatch;
mod error;
mod export;
pub mod gps;
pub mod import;
pub mod ipc;
pub mod sync;

pub use console::{
    CLOSED_VISIBLE_HOURS, Console, ConsoleAccess, ConsoleOptions, DB_FILE, EXPORTS_DIR,
    LAST_PACK_KEY, LIVE_BACKLOG_OPS, LIVE_SYNC_AGE_S, MAX_EXPORT_POINTS, SERVER_URL_KEY,
    default_data_dir, prepare_data_dir, shown_state,
};
pub use error::AppError;
