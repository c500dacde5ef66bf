//! Scenario tests of sync (SYNC.md S1, S2, S6, S7, S8), device and position scenarios
//! (issue 4), a differential test of the store's apply against the reference model, and the
//! model's own tests.

mod devices;
mod extract;
mod harness;
mod model;
mod s1;
mod scenarios;
mod store_vs_model;
mod support;
