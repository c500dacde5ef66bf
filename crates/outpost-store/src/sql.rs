//! Conversions between Rust values and their SQLite columns.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::StoreError;

/// The serde wire name of a unit-like enum (`UnitStatus::EnRoute` -> `"en_route"`).
pub(crate) fn enum_text<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v)? {
        serde_json::Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

/// Parses a wire name back into its enum.
pub(crate) fn enum_parse<T: DeserializeOwned>(
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        StoreError::Corrupt {
            column,
            value: text.to_string(),
        }
    })
}

/// Milliseconds since the epoch -> UTC instant.
pub(crate) fn time(column: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or(StoreError::Corrupt {
        column,
        value: ms.to_string(),
    })
}

/// Optional milliseconds -> optional instant.
pub(crate) fn opt_time(
    column: &'static str,
    ms: Option<i64>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|m| time(column, m)).transpose()
}

/// UUID text -> UUID.
pub(crate) fn uuid(column: &'static str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt {
        column,
        value: text.to_string(),
    })
}

/// SQLite integers are i64; sequence numbers never reach 2^63.
pub(crate) fn u64_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stored i64 -> u64 (negative values are corrupt and read as 0).
pub(crate) fn sql_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
