//! The OsmAnd protocol as Traccar's port 5055 speaks it (OsmAnd, Traccar Client).
//!
//! - [`decode_query`] takes an HTTP request target (`/?id=…&lat=…`) or a bare query string
//!   (`id=…&lat=…`, e.g. a form-encoded POST body).
//! - [`decode_json`] takes the body of a POST with `Content-Type: application/json`.
//! - Both check the fix with `outpost_domain::device::check_fix` against `now`.
//!
//! Source of the rules: Traccar's `OsmAndProtocolDecoder` (Apache-2.0; read, not copied):
//! `id`/`deviceid`; `timestamp` as an integer is seconds below 2³¹−1 and milliseconds above,
//! otherwise ISO 8601 when it contains `T`, otherwise `yyyy-MM-dd HH:mm:ss`; `lat`, `lon` or
//! `location=lat,lon`; `speed` in knots; `bearing`/`heading`; `accuracy`; `batt`; `valid`.
//! Traccar Client's JSON body (the transistorsoft background-geolocation format) carries
//! `location.coords.{latitude,longitude,accuracy,speed,heading}` with speed in m/s and −1
//! for "unknown", `location.battery.level` 0..1, and `device_id`.
//! Differences from Traccar: a report without a position is refused (Traccar reuses the
//! last one); `valid=false` is refused; `hdop` and `altitude` are not kept (a fix has no
//! altitude; Traccar also keeps `hdop` only as an attribute, not as accuracy).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use outpost_domain::device::{DeviceReport, DeviceSource, FixError, check_fix};
use outpost_domain::geo::LatLon;
use outpost_domain::op::Fix;
use serde_json::Value;

use crate::{MPS_PER_KNOT, kept_device_id, quote};

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

fn bad(name: &str, value: &str, reason: impl Into<String>) -> OsmandError {
    OsmandError::BadParameter {
        name: name.to_string(),
        value: quote(value),
        reason: reason.into(),
    }
}

/// A number parameter (`f64` text; `NaN`/`inf` parse and are then refused by the checks).
fn number(name: &str, value: &str) -> Result<f64, OsmandError> {
    value
        .trim()
        .parse::<f64>()
        .map_err(|_| bad(name, value, "not a number"))
}

/// A battery level in percent, 0..=100.
fn battery(name: &str, value: &str, pct: f64) -> Result<f64, OsmandError> {
    if pct.is_finite() && (0.0..=100.0).contains(&pct) {
        Ok(pct)
    } else {
        Err(bad(name, value, "battery level is outside 0..100 %"))
    }
}

/// Parses an OsmAnd timestamp (see the module docs for the forms), UTC.
fn timestamp(name: &str, value: &str) -> Result<DateTime<Utc>, OsmandError> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        // Traccar's rule: below 2^31 − 1 it is seconds, above it milliseconds.
        let t = if n < i64::from(i32::MAX) {
            Utc.timestamp_opt(n, 0).single()
        } else {
            Utc.timestamp_millis_opt(n).single()
        };
        return t.ok_or_else(|| bad(name, value, "Unix time out of range"));
    }
    if let Ok(x) = v.parse::<f64>() {
        // Fractional Unix seconds (some scripts send `1377177267.5`).
        if x.is_finite() && x.abs() < 1e11 {
            let ms = (x * 1000.0).round() as i64;
            if let Some(t) = Utc.timestamp_millis_opt(ms).single() {
                return Ok(t);
            }
        }
        return Err(bad(name, value, "Unix time out of range"));
    }
    if v.contains('T') {
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(t.with_timezone(&Utc));
        }
        // ISO 8601 without a zone: taken as UTC.
        for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
                return Ok(t.and_utc());
            }
        }
        return Err(bad(name, value, "not an ISO 8601 time"));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    Err(bad(
        name,
        value,
        "not Unix seconds, milliseconds, ISO 8601 or YYYY-MM-DD HH:MM:SS",
    ))
}

/// What the decoder read from one request: the report (or why it is refused) together with
/// the device id it is filed under and the request's device token, from the SAME parse, so
/// a token is always checked against the device the report is written for
/// (`serve --osmand-require-token`).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The device id the report is filed under (`report.device_id` when the report decoded);
    /// when it did not, the id as read (kept like a report's), `None` when absent or unusable.
    pub device_id: Option<String>,
    /// The `token` parameter (query or form: the last one; JSON: the `token` string member),
    /// as sent.
    pub token: Option<String>,
    /// The report, or why it is refused.
    pub report: Result<DeviceReport, OsmandError>,
}

impl Decoded {
    fn new(
        device_id: Option<String>,
        token: Option<String>,
        report: Result<DeviceReport, OsmandError>,
    ) -> Decoded {
        let device_id = match &report {
            Ok(r) => Some(r.device_id.clone()),
            Err(_) => device_id,
        };
        Decoded {
            device_id,
            token,
            report,
        }
    }
}

/// Decodes a query-string report. The device id (`id` or `deviceid`) is kept as
/// [`outpost_domain::device::device_id`] says: trimmed, refused when empty, too long or with a
/// control character. Timestamps: Unix seconds, Unix milliseconds, ISO 8601 or
/// `YYYY-MM-DD HH:MM:SS` (UTC); missing timestamp = `now`. `speed` is in knots (converted to
/// m/s); `bearing`/`heading` degrees; `accuracy` metres; `batt`/`battery` percent.
/// When a parameter repeats, the last one wins (as in Traccar); unknown parameters are
/// ignored A target longer than [`MAX_BODY_BYTES`] is refused.
///
/// # Errors
/// [`OsmandError`] naming what is missing or wrong.
pub fn decode_query(target: &str, now: DateTime<Utc>) -> Result<DeviceReport, OsmandError> {
    decode_query_with_token(target, now).report
}

/// [`decode_query`] that also returns the device id the report is filed under and the
/// `token` parameter, read by the same parse ([`Decoded`]). Parameters after a bad one are
/// still read for the id and the token (the report stays refused).
pub fn decode_query_with_token(target: &str, now: DateTime<Utc>) -> Decoded {
    if target.len() > MAX_BODY_BYTES {
        let e = bad(
            "request",
            target,
            format!("{} bytes is longer than {MAX_BODY_BYTES}", target.len()),
        );
        return Decoded::new(None, None, Err(e));
    }
    let query = match target.split_once('?') {
        Some((_, q)) => q,
        // A path without a query string carries no parameters.
        None if target.starts_with('/') => "",
        None => target,
    };
    // A fragment is never sent by a client, but must not end up in a value.
    let query = query.split('#').next().unwrap_or_default();

    let mut device_id: Option<String> = None;
    let mut lat: Option<f64> = None;
    let mut lon: Option<f64> = None;
    let mut fix_time: Option<DateTime<Utc>> = None;
    let mut speed_mps: Option<f64> = None;
    let mut heading_deg: Option<f64> = None;
    let mut accuracy_m: Option<f64> = None;
    let mut battery_pct: Option<f64> = None;
    let mut token: Option<String> = None;
    // The first bad parameter refuses the report; the id and token are still read after it.
    let mut refused: Option<OsmandError> = None;

    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let (name, value) = (name.as_ref(), value.as_ref());
        let step = (|| -> Result<(), OsmandError> {
            match name {
                "token" => token = Some(value.to_string()),
                "id" | "deviceid" => {
                    device_id = None;
                    device_id = Some(kept_device_id(value).map_err(|p| bad(name, value, p))?);
                }
                _ if refused.is_some() => {}
                "valid" => {
                    let valid = matches!(value.trim(), "1" | "true" | "TRUE" | "True");
                    if !valid {
                        return Err(bad(name, value, "the device marks this fix as not valid"));
                    }
                }
                "timestamp" => fix_time = Some(timestamp(name, value)?),
                "lat" => lat = Some(number(name, value)?),
                "lon" => lon = Some(number(name, value)?),
                "location" => {
                    let Some((a, b)) = value.split_once(',') else {
                        return Err(bad(name, value, "expected lat,lon"));
                    };
                    lat = Some(number(name, a).map_err(|_| bad(name, value, "expected lat,lon"))?);
                    lon = Some(number(name, b).map_err(|_| bad(name, value, "expected lat,lon"))?);
                }
                "speed" => speed_mps = Some(number(name, value)? * MPS_PER_KNOT),
                "bearing" | "heading" => heading_deg = Some(number(name, value)?),
                "accuracy" => accuracy_m = Some(number(name, value)?),
                "batt" | "battery" => {
                    let pct = number(name, value)?;
                    battery_pct = Some(battery(name, value, pct)?);
                }
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = step {
            refused.get_or_insert(e);
        }
    }
    if let Some(e) = refused {
        return Decoded::new(device_id, token, Err(e));
    }
    let report = (|| {
        let device_id = device_id.clone().ok_or(OsmandError::MissingDeviceId)?;
        let (Some(lat), Some(lon)) = (lat, lon) else {
            return Err(OsmandError::MissingPosition);
        };
        let fix = Fix {
            position: LatLon { lat, lon },
            fix_time: fix_time.unwrap_or(now),
            heading_deg,
            speed_mps,
            accuracy_m,
        };
        check_fix(&fix, now)?;
        Ok(DeviceReport {
            device_id,
            source: DeviceSource::Osmand,
            name: None,
            fix,
            battery_pct,
        })
    })();
    Decoded::new(device_id, token, report)
}

/// A JSON member as a number; `None` when absent or `null`.
fn json_number(path: &str, v: Option<&Value>) -> Result<Option<f64>, OsmandError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| OsmandError::BadJson(format!("{path} {n} is not a number"))),
        // Some clients send numbers as strings.
        Some(Value::String(s)) => number(path, s).map(Some),
        Some(other) => Err(OsmandError::BadJson(format!(
            "{path} is {}, not a number",
            kind(other)
        ))),
    }
}

/// A JSON member that uses −1 (any negative value) for "unknown".
fn json_optional(path: &str, v: Option<&Value>) -> Result<Option<f64>, OsmandError> {
    Ok(json_number(path, v)?.filter(|x| x.is_nan() || *x >= 0.0))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes a JSON report (Traccar Client's `{"location":{…},"device_id":…}` form; `speed`
/// there is metres per second, `heading` −1 means unknown, `battery.level` is 0..1). The
/// device id (`device_id` or `id`) is kept as in [`decode_query`].
/// `location.timestamp` is read like the query form's `timestamp` (ISO 8601 in practice);
/// missing = `now`. Negative `speed`, `heading` and `accuracy` mean "unknown" (iOS sends −1),
/// as does a negative `battery.level` (simulators). A batch (`location` as an array) is
/// refused: Traccar Client sends one location per request. A body longer than
/// [`MAX_BODY_BYTES`] is refused.
///
/// # Errors
/// [`OsmandError`] naming what is missing or wrong.
pub fn decode_json(body: &[u8], now: DateTime<Utc>) -> Result<DeviceReport, OsmandError> {
    decode_json_with_token(body, now).report
}

/// [`decode_json`] that also returns the device id the report is filed under (a numeric
/// `device_id` as its decimal text, as the report) and the `token` string member, read by the
/// same parse ([`Decoded`]).
pub fn decode_json_with_token(body: &[u8], now: DateTime<Utc>) -> Decoded {
    if body.len() > MAX_BODY_BYTES {
        let e = OsmandError::BadJson(format!(
            "{} bytes is longer than {MAX_BODY_BYTES}",
            body.len()
        ));
        return Decoded::new(None, None, Err(e));
    }
    let root: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Decoded::new(None, None, Err(OsmandError::BadJson(e.to_string()))),
    };
    let Value::Object(root) = root else {
        let e = OsmandError::BadJson(format!("the body is {}, not an object", kind(&root)));
        return Decoded::new(None, None, Err(e));
    };
    let token = match root.get("token") {
        Some(Value::String(t)) => Some(t.clone()),
        _ => None,
    };
    let device_id = json_device_id(&root);
    let report = json_report(&root, device_id.clone(), now);
    Decoded::new(device_id.ok(), token, report)
}

/// The device id of a JSON report (`device_id`, else `id`; a number as its decimal text),
/// kept as [`decode_query`] keeps it.
fn json_device_id(root: &serde_json::Map<String, Value>) -> Result<String, OsmandError> {
    let device_id = match root.get("device_id").or_else(|| root.get("id")) {
        None | Some(Value::Null) => return Err(OsmandError::MissingDeviceId),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(OsmandError::BadJson(format!(
                "device_id is {}, not a string",
                kind(other)
            )));
        }
    };
    kept_device_id(&device_id).map_err(|p| bad("device_id", &device_id, p))
}

/// The report of a JSON body whose device id is `device_id`.
fn json_report(
    root: &serde_json::Map<String, Value>,
    device_id: Result<String, OsmandError>,
    now: DateTime<Utc>,
) -> Result<DeviceReport, OsmandError> {
    let device_id = device_id?;
    let location = match root.get("location") {
        None | Some(Value::Null) => return Err(OsmandError::MissingPosition),
        Some(Value::Object(l)) => l,
        Some(Value::Array(_)) => {
            return Err(OsmandError::BadJson(
                "location is an array (a batch); send one location per request".into(),
            ));
        }
        Some(other) => {
            return Err(OsmandError::BadJson(format!(
                "location is {}, not an object",
                kind(other)
            )));
        }
    };
    let coords = match location.get("coords") {
        None | Some(Value::Null) => return Err(OsmandError::MissingPosition),
        Some(Value::Object(c)) => c,
        Some(other) => {
            return Err(OsmandError::BadJson(format!(
                "location.coords is {}, not an object",
                kind(other)
            )));
        }
    };
    let lat = json_number("location.coords.latitude", coords.get("latitude"))?;
    let lon = json_number("location.coords.longitude", coords.get("longitude"))?;
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Err(OsmandError::MissingPosition);
    };
    let fix_time = match location.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => timestamp("location.timestamp", s)?,
        Some(Value::Number(n)) => timestamp("location.timestamp", &n.to_string())?,
        Some(other) => {
            return Err(OsmandError::BadJson(format!(
                "location.timestamp is {}, not a time",
                kind(other)
            )));
        }
    };
    let battery_pct = match location.get("battery") {
        Some(Value::Object(b)) => match json_optional("location.battery.level", b.get("level"))? {
            Some(level) if level <= 1.0 => Some(level * 100.0),
            Some(level) => {
                return Err(bad(
                    "location.battery.level",
                    &level.to_string(),
                    "battery level is outside 0..1",
                ));
            }
            None => None,
        },
        _ => None,
    };
    let fix = Fix {
        position: LatLon { lat, lon },
        fix_time,
        heading_deg: json_optional("location.coords.heading", coords.get("heading"))?,
        speed_mps: json_optional("location.coords.speed", coords.get("speed"))?,
        accuracy_m: json_optional("location.coords.accuracy", coords.get("accuracy"))?,
    };
    check_fix(&fix, now)?;
    Ok(DeviceReport {
        device_id,
        source: DeviceSource::Osmand,
        name: None,
        fix,
        battery_pct,
    })
}
