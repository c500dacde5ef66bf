//! Integration tests of the sync engine against an in-process `outpost-server` (port 0 on
//! 127.0.0.1), and of the headless `outpost-sync-client` binary (S4 crash points).

mod backlog;
mod common;
mod crash;
mod engine;
mod fake;
mod feed;
mod herd;
mod recovery;
mod roundtrip;
mod secure;
