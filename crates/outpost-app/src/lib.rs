//! The console's use-cases: what the UI can ask for and do, as plain Rust.
//!
//! Owns: the IPC contract ([`ipc`]: argument and result types, the command table, the
//! TypeScript bindings generated from them), the use-cases behind each command, the demo
//! replay. The Tauri shell in `src-tauri/` only forwards commands here.
//!
//! Architecture invariant: no dependency on Tauri or any UI toolkit; everything here runs in
//! a plain `cargo test`.

pub mod ipc;
