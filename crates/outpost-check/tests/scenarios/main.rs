//! Scenario tests of sync through the REAL sync engine (`outpost-sync`) against a REAL
//! in-process server (`outpost_server::Server::start` on 127.0.0.1): SYNC.md S5 (offline
//! backlog, reduced counts), S12 (server restored from a backup), S13 (compacted history →
//! snapshot), S14 (schema versions), S15 (200 consoles at once), and the position tie rule
//! (two fixes of one unit at one instant). Every scenario ends with the I1–I6 checks of
//! `outpost_check` where they apply.

mod common;
#[path = "../it/extract.rs"]
mod extract;
mod position_ties;
mod s12_restore;
mod s13_compaction;
mod s14_schema;
mod s15_herd;
mod s5_backlog;
