//! Position-reporting devices: phones running OsmAnd or Traccar Client, TAK clients sending
//! Cursor-on-Target, a field laptop's own GNSS receiver.
//!
//! A device is known by its id (OsmAnd `id`/`deviceid`, CoT `uid`). A commander binds a
//! device to a unit (`device.bind`, a register per device); until then its reports are kept
//! as `device.report` ops and listed for binding, never shown as a unit. The server's
//! ingest resolves the binding when a report arrives and writes a `position.report` for the
//! bound unit instead.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::op::Fix;

/// Longest device id kept, in characters.
pub const MAX_DEVICE_ID_CHARS: usize = 128;
/// Longest device display name (CoT callsign) kept, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 80;
/// How far ahead of the receiving clock a fix time may be, in seconds. A fix further in the
/// future would pin the unit's latest position (the newest fix time wins), so it is refused.
/// Five minutes tolerates a receiver or phone whose clock is slightly fast.
pub const MAX_FIX_AHEAD_S: i64 = 300;
/// How far ahead of the server's clock the fix of a *pushed* op (`position.report`,
/// `device.report`) may be before the server parks it, in seconds (two days). Pushed ops may
/// have been written hours earlier on a console or laptop whose clock is off, and SYNC.md
/// principle 10 says skew of hours never causes a rejection (its scenario S6 goes to +27 h);
/// beyond two days the clock is broken, and such a fix would pin the unit's marker.
pub const MAX_PUSHED_FIX_AHEAD_S: i64 = 48 * 3600;
/// Fixes before this instant (2000-01-01T00:00:00Z, Unix seconds) are refused: a receiver
/// without a time fix, or a GPS week-number rollover, reports such dates.
pub const MIN_FIX_TIME_S: i64 = 946_684_800;
/// Fastest speed over ground believed where reports arrive, metres per second (about
/// 1,260 km/h, beyond any police car, boat or helicopter); a faster one is a broken
/// receiver or a forged report.
pub const MAX_PLAUSIBLE_SPEED_MPS: f64 = 350.0;

/// Why a device id is refused by [`device_id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    /// Nothing but whitespace.
    #[error("the device id is empty")]
    Empty,
    /// Longer than [`MAX_DEVICE_ID_CHARS`] characters after trimming.
    #[error("the device id has {0} characters, more than {MAX_DEVICE_ID_CHARS}")]
    TooLong(usize),
    /// A control character (Unicode `Cc`) inside the id.
    #[error("the device id contains a control character")]
    Control,
    /// An invisible formatting character (zero-width space or joiner, bidirectional
    /// override or isolate, word joiner, byte-order mark, U+FFFD from undecodable bytes): an
    /// id with one can be shown looking like another device's.
    #[error("the device id contains an invisible or replacement character U+{0:04X}")]
    Invisible(u32),
}

/// Characters refused in device ids besides controls: zero-width and joiner characters
/// (U+200B–U+200F), bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069), word joiner and invisible operators (U+2060–U+2064), the byte-order mark
/// (U+FEFF), and U+FFFD (what undecodable bytes become, so two different byte ids would
/// collapse into one).
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFFD}')
}

/// A device id as Outpost keeps it: `raw` with surrounding whitespace removed
/// (`str::trim`), 1..=[`MAX_DEVICE_ID_CHARS`] characters, no control character and no
/// invisible formatting character ([`DeviceIdError::Invisible`]). The one
/// rule for every place an id enters: the decoders (OsmAnd `id`/`deviceid`/`device_id`,
/// CoT `uid`) and `bind_device`, so a device that reports can always be bound by the id
/// shown for it.
///
/// # Errors
/// [`DeviceIdError`] saying what is wrong.
pub fn device_id(raw: &str) -> Result<&str, DeviceIdError> {
    let id = raw.trim();
    let n = id.chars().count();
    if n == 0 {
        return Err(DeviceIdError::Empty);
    }
    if n > MAX_DEVICE_ID_CHARS {
        return Err(DeviceIdError::TooLong(n));
    }
    if id.chars().any(char::is_control) {
        return Err(DeviceIdError::Control);
    }
    if let Some(c) = id.chars().find(|c| invisible(*c)) {
        return Err(DeviceIdError::Invisible(u32::from(c)));
    }
    Ok(id)
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSource {
    /// OsmAnd protocol over HTTP (OsmAnd, Traccar Client), as on Traccar's port 5055.
    Osmand,
    /// Cursor-on-Target XML over TCP or UDP (ATAK, WinTAK, iTAK).
    Cot,
    /// NMEA 0183 from a receiver attached to a field laptop (serial, gpsd, log replay).
    Nmea,
}

impl DeviceSource {
    /// Wire/display name: `osmand`, `cot`, `nmea`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceSource::Osmand => "osmand",
            DeviceSource::Cot => "cot",
            DeviceSource::Nmea => "nmea",
        }
    }
}

/// One decoded position report from a device, before it is bound to a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DeviceReport {
    /// The device's own id (1..=[`MAX_DEVICE_ID_CHARS`] characters).
    pub device_id: String,
    /// The protocol it arrived by.
    pub source: DeviceSource,
    /// A name the device gives itself (CoT `contact@callsign`), if any; shown when binding.
    pub name: Option<String>,
    /// The fix (WGS-84, fix time UTC, speed m/s, heading degrees from true north,
    /// accuracy metres).
    pub fix: Fix,
    /// Battery level in percent, 0..=100, if the device sent it.
    pub battery_pct: Option<f64>,
}

/// Why a fix is refused. Messages name the field and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FixError {
    /// Latitude outside −90..=90 or not finite.
    #[error("latitude {0} is outside -90..90")]
    Latitude(f64),
    /// Longitude outside −180..=180 or not finite.
    #[error("longitude {0} is outside -180..180")]
    Longitude(f64),
    /// Heading outside 0..=360 or not finite.
    #[error("heading {0} is outside 0..360 degrees")]
    Heading(f64),
    /// Negative or non-finite speed.
    #[error("speed {0} m/s is not a speed")]
    Speed(f64),
    /// Negative or non-finite accuracy.
    #[error("accuracy {0} m is not an accuracy")]
    Accuracy(f64),
    /// Fix time more than [`MAX_FIX_AHEAD_S`] ahead of the receiving clock.
    #[error("fix time {fix_time} is ahead of the clock ({now}) by more than {MAX_FIX_AHEAD_S} s")]
    Future {
        /// The fix time given.
        fix_time: DateTime<Utc>,
        /// The receiving clock.
        now: DateTime<Utc>,
    },
    /// Fix time before [`MIN_FIX_TIME_S`].
    #[error("fix time {0} is before 2000-01-01")]
    Past(DateTime<Utc>),
    /// A speed above [`MAX_PLAUSIBLE_SPEED_MPS`].
    #[error("speed {0} m/s is implausible (more than {MAX_PLAUSIBLE_SPEED_MPS} m/s)")]
    Implausible(f64),
    /// Exactly 0° N 0° E ("Null Island"): what receivers and apps without a position send
    /// in place of one; no patrol unit is there.
    #[error("position 0, 0 is a receiver without a position, not a fix")]
    NullIsland,
}

/// Checks a fix as it arrives from a device: ranges (the same as `merge::validate` checks on
/// every `position.report`), not exactly 0°, 0° ([`FixError::NullIsland`]), plus the fix time
/// against the receiving clock `now` (UTC).
///
/// # Errors
/// The first [`FixError`] found, in the order latitude, longitude, heading, speed, accuracy,
/// null island, implausible speed, time.
pub fn check_fix(fix: &Fix, now: DateTime<Utc>) -> Result<(), FixError> {
    check_fix_ranges(fix)?;
    if fix.position.lat == 0.0 && fix.position.lon == 0.0 {
        return Err(FixError::NullIsland);
    }
    if let Some(s) = fix.speed_mps
        && s > MAX_PLAUSIBLE_SPEED_MPS
    {
        return Err(FixError::Implausible(s));
    }
    if fix.fix_time > now + Duration::seconds(MAX_FIX_AHEAD_S) {
        return Err(FixError::Future {
            fix_time: fix.fix_time,
            now,
        });
    }
    if fix.fix_time.timestamp() < MIN_FIX_TIME_S {
        return Err(FixError::Past(fix.fix_time));
    }
    Ok(())
}

/// The clock-independent part of [`check_fix`]: coordinate, heading, speed and accuracy
/// ranges. `merge::validate` applies it to every `position.report` and `device.report`.
///
/// # Errors
/// The first [`FixError`] found.
pub fn check_fix_ranges(fix: &Fix) -> Result<(), FixError> {
    let p = fix.position;
    if !p.lat.is_finite() || !(-90.0..=90.0).contains(&p.lat) {
        return Err(FixError::Latitude(p.lat));
    }
    if !p.lon.is_finite() || !(-180.0..=180.0).contains(&p.lon) {
        return Err(FixError::Longitude(p.lon));
    }
    if let Some(h) = fix.heading_deg
        && (!h.is_finite() || !(0.0..=360.0).contains(&h))
    {
        return Err(FixError::Heading(h));
    }
    if let Some(s) = fix.speed_mps
        && (!s.is_finite() || s < 0.0)
    {
        return Err(FixError::Speed(s));
    }
    if let Some(a) = fix.accuracy_m
        && (!a.is_finite() || a < 0.0)
    {
        return Err(FixError::Accuracy(a));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::LatLon;

    fn fix(lat: f64, lon: f64, t: DateTime<Utc>) -> Fix {
        Fix {
            position: LatLon { lat, lon },
            fix_time: t,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        }
    }

    #[test]
    fn device_ids_are_trimmed_and_refused_when_empty_long_or_with_controls() {
        assert_eq!(device_id(" 4711 \t"), Ok("4711"));
        assert_eq!(device_id("phone 7"), Ok("phone 7"));
        assert_eq!(device_id(" \t\n "), Err(DeviceIdError::Empty));
        assert_eq!(device_id("a\u{1}b"), Err(DeviceIdError::Control));
        assert_eq!(device_id("a\nb"), Err(DeviceIdError::Control));
        // Look-alikes of another id are refused, naming the character.
        assert_eq!(
            device_id("4711\u{202E}"),
            Err(DeviceIdError::Invisible(0x202E))
        );
        assert_eq!(
            device_id("47\u{200B}11"),
            Err(DeviceIdError::Invisible(0x200B))
        );
        assert_eq!(
            device_id("\u{FFFD}\u{FFFD}"),
            Err(DeviceIdError::Invisible(0xFFFD))
        );
        // Other scripts and symbols are ids like any other.
        assert_eq!(device_id("巡逻车-07 🚓"), Ok("巡逻车-07 🚓"));
        let long = "x".repeat(MAX_DEVICE_ID_CHARS + 1);
        assert_eq!(
            device_id(&long),
            Err(DeviceIdError::TooLong(MAX_DEVICE_ID_CHARS + 1))
        );
        let max = format!("  {}  ", "设".repeat(MAX_DEVICE_ID_CHARS));
        assert_eq!(
            device_id(&max).map(|s| s.chars().count()),
            Ok(MAX_DEVICE_ID_CHARS)
        );
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn fixes_out_of_range_or_ahead_are_refused_with_the_value() {
        let now: DateTime<Utc> = "2026-11-29T12:00:00Z".parse().unwrap();
        assert_eq!(check_fix(&fix(39.8, 109.98, now), now), Ok(()));
        assert_eq!(
            check_fix(&fix(91.0, 0.0, now), now),
            Err(FixError::Latitude(91.0))
        );
        assert!(matches!(
            check_fix(&fix(f64::NAN, 0.0, now), now),
            Err(FixError::Latitude(x)) if x.is_nan()
        ));
        assert_eq!(
            check_fix(&fix(0.0, -180.5, now), now),
            Err(FixError::Longitude(-180.5))
        );
        let year_ahead = now + Duration::days(365);
        assert_eq!(
            check_fix(&fix(1.0, 1.0, year_ahead), now),
            Err(FixError::Future {
                fix_time: year_ahead,
                now
            })
        );
        // A slightly fast phone clock is tolerated.
        assert_eq!(
            check_fix(
                &fix(1.0, 1.0, now + Duration::seconds(MAX_FIX_AHEAD_S)),
                now
            ),
            Ok(())
        );
        let y1999: DateTime<Utc> = "1999-08-22T00:00:00Z".parse().unwrap();
        assert_eq!(
            check_fix(&fix(1.0, 1.0, y1999), now),
            Err(FixError::Past(y1999))
        );
        assert_eq!(
            check_fix(&fix(0.0, 0.0, now), now),
            Err(FixError::NullIsland)
        );
        // The equator or the prime meridian alone is a real place.
        assert_eq!(check_fix(&fix(0.0, 9.5, now), now), Ok(()));
        let mut f = fix(1.0, 1.0, now);
        f.speed_mps = Some(-1.0);
        assert_eq!(check_fix(&f, now), Err(FixError::Speed(-1.0)));
        f.speed_mps = None;
        f.heading_deg = Some(361.0);
        assert_eq!(check_fix(&f, now), Err(FixError::Heading(361.0)));
    }
}
