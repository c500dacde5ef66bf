//! Shared test fixtures.

use chrono::{DateTime, TimeZone, Utc};

/// 2026-11-29T10:00:00Z, the scenarios' start.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
}
