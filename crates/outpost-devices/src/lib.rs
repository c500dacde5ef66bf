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

use outpost_domain::device::MAX_DEVICE_NAME_CHARS;

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

/// The device id as kept ([`outpost_domain::device::device_id`]: trimmed, 1..=
/// [`outpost_domain::device::MAX_DEVICE_ID_CHARS`] characters, no control character — the
/// rule `bind_device` applies too), or why it is refused.
pub(crate) fn kept_device_id(raw: &str) -> Result<String, String> {
    outpost_domain::device::device_id(raw)
        .map(str::to_string)
        .map_err(|e| e.to_string())
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
