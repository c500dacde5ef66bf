//! Integration tests of `outpost-devices`: every sample of `data/gps/` decoded to its
//! expected values, the rejects refused with their reason, framer edge cases, and the fuzz
//! bodies under proptest.

// In tests a panic is the failure report, and the values unwrapped are fixed inputs.
#![allow(clippy::unwrap_used)]

mod cot;
mod fuzz;
mod nmea;
mod osmand;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// A file of the repository's `data/gps/`.
pub fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/gps")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A UTC time from RFC 3339 text.
pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Asserts `a` ≈ `b` within `eps`.
#[track_caller]
pub fn close(a: f64, b: f64, eps: f64) {
    assert!((a - b).abs() <= eps, "{a} is not within {eps} of {b}");
}
