//! Scenario tests of sync (SYNC.md S1, S2, S6, S7, S8) and the model's own tests.

mod model;
