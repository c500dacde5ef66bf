//! Verification of Outpost's sync (`design/SYNC.md`): a reference model of the merge rules,
//! an invariant checker for I1–I6, and (in `tests/it`) the scenario tests S1, S2, S6, S7, S8
//! that drive real consoles' stores against an in-process `outpost-server`.
//!
//! Owns: [`model::Model`] — an independent, in-memory implementation of the merge rules of
//! `outpost_domain::merge`, computed from the *set* of ops (plus each op's server `gseq`) with
//! no notion of apply order; [`check::check_invariants`] — the I1–I6 checks over a dump of
//! the server's log and observations of every replica; [`state::State`] — the canonical,
//! table-by-table form of a replica's state both are compared in.
//!
//! Tests (`tests/it`): the model on hand-built ops; a differential proptest of the store's
//! `apply` against the model (`store_vs_model`); S1 (`s1`, `PROPTEST_CASES=N` for more cases,
//! `S1_RESTORES=1` to add server restores; consoles bind devices and relay fixes, and the
//! server's ingest gateway writes `device.report` / `position.report` ops of its own origin);
//! device and position scenarios (`devices`: out-of-order and duplicate fixes, a device bound
//! after its reports, concurrent binds, the gateway); S2, S6, S7, S8 and pinned defects
//! (`scenarios`, the ignored ones fail until fixed: `cargo test -p outpost-check --test it --
//! --ignored`).
//!
//! Architecture invariant: the library depends only on `outpost-domain` (it must not share
//! code with the store or server it checks, or it would share their bugs); SQLite, HTTP and
//! the real store and server appear only in the tests.

pub mod author;
pub mod check;
pub mod model;
pub mod state;

pub use author::Author;
pub use check::{
    CursorObservation, OutboxEntry, OutboxState, Replica, ServerDump, Violation, check_invariants,
};
pub use model::Model;
pub use state::State;
