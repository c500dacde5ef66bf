//! The central server of Outpost as a library: the sync server (`design/SYNC.md`, the
//! protocol of [`outpost_domain::wire`]) and the admin commands (`pack build`, `compact`).
//!
//! - [`storage`]: what the server keeps, behind the [`storage::SyncStorage`] trait
//!   ([`storage::SqliteStorage`]: one SQLite file with the server's replica of the state);
//! - [`service`]: the sync logic (ordering, high-water marks, parking, epochs, pull,
//!   snapshot), blocking, usable in-process without HTTP;
//! - [`http`]: the axum router and the poke WebSocket;
//! - [`ingest`]: the device listeners (OsmAnd HTTP, Cursor-on-Target TCP/UDP), the gateway
//!   origin that writes their reports as ops, and the CoT feed to TAK clients;
//! - [`server`]: [`Server::start`] on a thread of its own, graceful shutdown;
//! - [`security`]: the agency PKI (`cert init`, device certificates) and TLS serving;
//! - [`testing`]: a TLS test server with one account per role, for tests of this and
//!   other crates;
//! - [`private_files`]: the data directory `0700`, its databases `0600`;
//! - [`pack`]: `pack build` (area packs, by `outpost-geo`);
//! - [`fuzzing`]: the bodies of the fuzz targets (S17), for `fuzz/` and the stable harness.
//!
//! Architecture invariant: the binary only parses arguments, waits for signals and reports;
//! the work happens here. The merge rules come from `outpost_domain::merge` and the state
//! from `outpost_store`; nothing here re-implements them. No Tauri, no UI.

pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod pack;
pub mod private_files;
pub mod security;
pub mod server;
pub mod service;
pub mod storage;
pub mod testing;

pub use pack::{BuildError, BuildOptions, BuildReport, PackBuildArgs, pack_build, report_lines};
pub use server::{RunningServer, Server, ServerConfig, ServerError};
pub use service::{SyncError, SyncService};
pub use storage::{SqliteStorage, StorageError, SyncStorage};
