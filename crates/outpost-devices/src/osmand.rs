//! The OsmAnd protocol as Traccar's port 5055 speaks it (OsmAnd, Traccar Client).
//!
//! Contract (implementation: issue 4, decoders helper):
//! - [`decode_query`] takes an HTTP request target (`/?id=…&lat=…`) or a bare query string
//!   (`id=…&lat=…`, e.g. a form-encoded POST body).
//! - [`decode_json`] takes the body of a POST with `Content-Type: application/json`.
//! - Both check the fix with `outpost_domain::device::check_fix` against `now`.

use chrono::{DateTime, Utc};
use outpost_domain::device::{DeviceReport, FixError};

/// Largest request body the listener reads, in bytes; longer bodies are refused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request is refused. Messages name the parameter and its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OsmandError {
    /// No `id` / `deviceid` (or `device_id` in JSON).
    #[error("no device id (id or deviceid)")]
    MissingDeviceId,
    /// No latitude/longitude (`lat`+`lon` or `location=lat,lon`; `coords` in JSON).
    #[error("no position (lat and lon, or location=lat,lon)")]
    MissingPosition,
    /// A parameter that does not parse.
    #[error("parameter {name}={value:?}: {reason}")]
    BadParameter {
        /// Parameter name as sent.
        name: String,
        /// Value as sent (cut to 64 characters).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The JSON body does not parse or lacks a required member.
    #[error("JSON body: {0}")]
    BadJson(String),
    /// The decoded fix fails the range or time checks.
    #[error("{0}")]
    Fix(#[from] FixError),
}

/// Decodes a query-string report. Timestamps: Unix seconds, Unix milliseconds, ISO 8601 or
/// `YYYY-MM-DD HH:MM:SS` (UTC); missing timestamp = `now`. `speed` is in knots (converted to
/// m/s); `bearing`/`heading` degrees; `accuracy` metres; `batt`/`battery` percent.
///
/// # Errors
/// [`OsmandError`] naming what is missing or wrong.
pub fn decode_query(target: &str, now: DateTime<Utc>) -> Result<DeviceReport, OsmandError> {
    let _ = (target, now);
    Err(OsmandError::BadJson("not implemented yet".into()))
}

/// Decodes a JSON report (Traccar Client's `{"location":{…},"device_id":…}` form; `speed`
/// there is metres per second, `heading` −1 means unknown, `battery.level` is 0..1).
///
/// # Errors
/// [`OsmandError`] naming what is missing or wrong.
pub fn decode_json(body: &[u8], now: DateTime<Utc>) -> Result<DeviceReport, OsmandError> {
    let _ = (body, now);
    Err(OsmandError::BadJson("not implemented yet".into()))
}
