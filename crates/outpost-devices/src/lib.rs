//! Device protocols of Outpost: how positions come in from phones, TAK clients and GNSS
//! receivers, and how the CAD picture goes out to TAK clients.
//!
//! Owns: the OsmAnd/Traccar request decoder ([`osmand`]), the Cursor-on-Target event framer,
//! decoder and encoder ([`cot`]), and the NMEA 0183 fix assembler ([`nmea`]).
//!
//! Architecture invariant: pure functions over bytes and text, no IO, no async runtime, no
//! clock of its own ("now" is a parameter). The listeners live in `outpost-server`, the
//! receiver reader in `outpost-app`; the fuzz targets in `fuzz/` call these functions
//! (through [`fuzzing`]), and the crate's stable proptests run the same bodies.

pub mod cot;
pub mod fuzzing;
pub mod nmea;
pub mod osmand;

use outpost_domain::device::{MAX_DEVICE_ID_CHARS, MAX_DEVICE_NAME_CHARS};

/// Longest excerpt of a bad value quoted in an error message, in characters.
const QUOTE_CHARS: usize = 64;

/// `value` cut to [`QUOTE_CHARS`] characters (with `…` when cut), for error messages.
pub(crate) fn quote(value: &str) -> String {
    let mut out: String = value.chars().take(QUOTE_CHARS).collect();
    if value.chars().nth(QUOTE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Why a device id is not acceptable, if it is not: empty, longer than
/// [`MAX_DEVICE_ID_CHARS`], or with control characters.
pub(crate) fn device_id_problem(id: &str) -> Option<String> {
    let n = id.chars().count();
    if id.trim().is_empty() {
        Some("the device id is empty".into())
    } else if n > MAX_DEVICE_ID_CHARS {
        Some(format!(
            "the device id has {n} characters, more than {MAX_DEVICE_ID_CHARS}"
        ))
    } else if id.chars().any(char::is_control) {
        Some("the device id contains control characters".into())
    } else {
        None
    }
}

/// A device's display name as kept: trimmed, control characters dropped, cut to
/// [`MAX_DEVICE_NAME_CHARS`] characters; `None` when nothing is left.
pub(crate) fn device_name(name: &str) -> Option<String> {
    let kept: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DEVICE_NAME_CHARS)
        .collect();
    let kept = kept.trim().to_string();
    (!kept.is_empty()).then_some(kept)
}

/// Metres per second in one knot (1 international nautical mile = 1,852 m, per hour).
pub const MPS_PER_KNOT: f64 = 1852.0 / 3600.0;
