//! Device registry and tracks: bindings, unbound devices and their reports, unit track
//! history (issue 4, migration 7).
//!
//! Read queries over the tables [`crate::apply`] derives from `device.bind` and
//! `device.report` ops (`device_bindings`, `devices`, `device_fixes`) and from position
//! reports (`positions`). Each takes a `&Connection`, so it works on the store, inside a
//! [`crate::Store::write`] transaction, and on the server's replica alike. Times are UTC;
//! positions WGS-84 degrees; speed m/s; heading degrees from true north; accuracy metres;
//! battery percent.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use outpost_domain::device::DeviceSource;
use outpost_domain::geo::LatLon;
use outpost_domain::op::Fix;

use crate::StoreError;
use crate::sql::{enum_parse, opt_time, time};

/// Every bound device with its unit: `(device_id, unit_id)`, ordered by device id. Devices
/// whose binding was removed (the winning `device.bind` has no unit) and devices never bound
/// are left out. The server's ingest reads this to turn a device's report into its unit's
/// `position.report`.
///
/// # Errors
/// SQLite errors.
pub fn device_bindings(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT device_id, unit_id FROM device_bindings WHERE unit_id IS NOT NULL
         ORDER BY device_id",
    )?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The unit one device is bound to (`None`: never bound, or unbound).
///
/// # Errors
/// SQLite errors.
pub fn device_binding(conn: &Connection, device_id: &str) -> Result<Option<String>, StoreError> {
    let unit: Option<Option<String>> = conn
        .query_row(
            "SELECT unit_id FROM device_bindings WHERE device_id = ?1",
            [device_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(unit.flatten())
}

/// A device as the registry shows it: its binding and what its unbound reports said.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    /// The device's own id (OsmAnd `id`, CoT `uid`).
    pub device_id: String,
    /// The protocol of its newest unbound report; `None` for a device bound before it ever
    /// reported unbound (its reports are its unit's positions).
    pub source: Option<DeviceSource>,
    /// The name of its newest unbound report that gave one (CoT callsign).
    pub name: Option<String>,
    /// The unit it is bound to (`None`: listed for binding).
    pub unit_id: Option<String>,
    /// That unit's callsign (`None` when unbound or the unit is not here).
    pub callsign: Option<String>,
    /// When the shown binding (or unbinding) was written (UTC), if ever.
    pub bound_at: Option<DateTime<Utc>>,
    /// Its newest unbound fix by fix time.
    pub last_fix: Option<Fix>,
    /// Battery in percent from its newest unbound report, if sent.
    pub battery_pct: Option<f64>,
    /// Number of distinct fixes kept from its unbound reports (each fix time once).
    pub reports: u64,
    /// When its first kept unbound report arrived (UTC, the op's HLC time).
    pub first_seen: Option<DateTime<Utc>>,
}

/// The columns [`device_from`] reads: registry row (0..=11) and binding (12..=14).
const DEVICE_SELECT: &str = "
    SELECT d.device_id, d.source, d.name, d.first_seen, d.fix_time, d.lat, d.lon,
           d.heading_deg, d.speed_mps, d.accuracy_m, d.battery_pct, d.reports,
           b.unit_id, b.bound_at, u.callsign
      FROM devices d
      LEFT JOIN device_bindings b ON b.device_id = d.device_id
      LEFT JOIN units u ON u.id = b.unit_id
    UNION ALL
    SELECT b.device_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0,
           b.unit_id, b.bound_at, u.callsign
      FROM device_bindings b
      LEFT JOIN units u ON u.id = b.unit_id
     WHERE b.device_id NOT IN (SELECT device_id FROM devices) AND b.unit_id IS NOT NULL";

type RawDevice = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<(i64, f64, f64, Option<f64>, Option<f64>, Option<f64>)>,
    Option<f64>,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn raw_device(r: &Row<'_>) -> rusqlite::Result<RawDevice> {
    let fix_time: Option<i64> = r.get(4)?;
    let fix = match fix_time {
        Some(t) => Some((t, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?)),
        None => None,
    };
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        fix,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

fn device_from(raw: RawDevice) -> Result<DeviceRow, StoreError> {
    let (device_id, source, name, first_seen, fix, battery_pct, reports, unit_id, bound_at, cs) =
        raw;
    let last_fix = match fix {
        Some((t, lat, lon, heading_deg, speed_mps, accuracy_m)) => Some(Fix {
            position: LatLon { lat, lon },
            fix_time: time("devices.fix_time", t)?,
            heading_deg,
            speed_mps,
            accuracy_m,
        }),
        None => None,
    };
    Ok(DeviceRow {
        device_id,
        source: source
            .map(|s| enum_parse("devices.source", &s))
            .transpose()?,
        name,
        callsign: if unit_id.is_some() { cs } else { None },
        unit_id,
        bound_at: opt_time("device_bindings.bound_at", bound_at)?,
        last_fix,
        battery_pct,
        reports: u64::try_from(reports).unwrap_or(0),
        first_seen: opt_time("devices.first_seen", first_seen)?,
    })
}

/// The device registry: every device that reported while unbound, and every bound device.
/// Unbound devices first, newest fix first; then bound ones by callsign and device id.
///
/// # Errors
/// SQLite errors, unreadable stored values.
pub fn devices(conn: &Connection) -> Result<Vec<DeviceRow>, StoreError> {
    let sql = format!(
        "SELECT * FROM ({DEVICE_SELECT}) ORDER BY unit_id IS NOT NULL,
            CASE WHEN unit_id IS NULL THEN -fix_time END, callsign, device_id"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let raws = st
        .query_map([], raw_device)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(device_from).collect()
}

/// One device of the registry ([`devices`]), if it reported unbound or is bound.
///
/// # Errors
/// SQLite errors, unreadable stored values.
pub fn device(conn: &Connection, device_id: &str) -> Result<Option<DeviceRow>, StoreError> {
    let sql = format!("SELECT * FROM ({DEVICE_SELECT}) WHERE device_id = ?1");
    let mut st = conn.prepare_cached(&sql)?;
    let raw = st.query_row([device_id], raw_device).optional()?;
    raw.map(device_from).transpose()
}

/// A window of a unit's track ([`unit_track`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRows {
    /// The fixes, each fix time once, oldest first.
    pub fixes: Vec<Fix>,
    /// True when the window held more than `limit` fixes and the oldest were left out.
    pub truncated: bool,
}

/// A unit's position history with fix time in `from_ms..=to_ms` (ms since the Unix epoch,
/// UTC; `None` = open bound): each fix once (history is keyed by fix time), oldest first, at
/// most `limit` fixes — the newest `limit` when the window holds more (`truncated`).
///
/// # Errors
/// SQLite errors, unreadable stored values.
pub fn unit_track(
    conn: &Connection,
    unit_id: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    limit: usize,
) -> Result<TrackRows, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT fix_time, lat, lon, heading_deg, speed_mps, accuracy_m FROM positions
         WHERE unit_id = ?1 AND fix_time >= ?2 AND fix_time <= ?3
         ORDER BY fix_time DESC LIMIT ?4",
    )?;
    let take = i64::try_from(limit).unwrap_or(i64::MAX - 1);
    let mut fixes = st
        .query_map(
            params![
                unit_id,
                from_ms.unwrap_or(i64::MIN),
                to_ms.unwrap_or(i64::MAX),
                take.saturating_add(1)
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, Option<f64>>(5)?,
                ))
            },
        )?
        .map(|raw| {
            let (t, lat, lon, heading_deg, speed_mps, accuracy_m) = raw?;
            Ok(Fix {
                position: LatLon { lat, lon },
                fix_time: time("positions.fix_time", t)?,
                heading_deg,
                speed_mps,
                accuracy_m,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let truncated = fixes.len() > limit;
    fixes.truncate(limit);
    fixes.reverse();
    Ok(TrackRows { fixes, truncated })
}
