//! The console's sync engine: carries the outbox to `outpost-server` and brings remote ops
//! back, without ever blocking the UI (`design/SYNC.md`, protocol [`outpost_domain::wire`]).
//!
//! Owns: the engine's state machine and its thread ([`SyncEngine`], [`SyncHandle`]), the
//! HTTP client of the protocol ([`client`]), the WebSocket poke channel, retry timing
//! ([`backoff`]: exponential, full jitter), the crash points of the S4 tests ([`failpoint`]),
//! the status the connection indicator shows ([`EngineStatus`]), TLS to the server with the
//! agency CA pinned ([`TlsSettings`]), the person's replaceable session token
//! ([`TokenSource`]), the sign-in gate's requests ([`account`]: enroll, login, logout,
//! revocations), and the headless `outpost-sync-client` binary used by tests and benchmarks.
//!
//! Architecture invariant: the engine changes the local database only through the store's
//! transactional sync functions ([`store_api::SyncStore`]), one batch or one page per
//! transaction; it never deletes an op, and it holds the store's lock only for one such
//! transaction. It knows nothing of Tauri, the UI or the app's IPC types.

pub mod account;
pub mod backoff;
pub mod client;
mod engine;
mod error;
pub mod failpoint;
mod poke;
pub mod script;
mod status;
pub mod store_api;
pub mod tls;
mod token;

pub use backoff::{Backoff, BackoffPolicy};
pub use client::{ClientIdentity, ServerClient, Timeouts, TlsSettings};
pub use engine::{
    LANES, OnApplied, OnRevocations, PROBE_INTERVAL, REVOCATIONS_INTERVAL, RoundReport, SyncEngine,
    SyncHandle, SyncOptions,
};
pub use error::SyncError;
pub use failpoint::{FAILPOINT_ENV, Failpoint};
pub use status::{EngineStatus, LinkState};
pub use store_api::{PullRecord, PushRecord, SyncPosition, SyncStore};
pub use token::TokenSource;
