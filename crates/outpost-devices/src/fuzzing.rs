//! Bodies of the fuzz targets in `fuzz/` (`osmand_decode`, `cot_decode`, `nmea_feed`),
//! shared with the crate's stable proptests (`tests/it/fuzz.rs`). Each decodes arbitrary
//! bytes and panics only when an invariant breaks (a report that would fail the fix
//! checks, a framed event over the size limit, counters that do not add up).

use chrono::{DateTime, Utc};
use outpost_domain::device::{MAX_DEVICE_ID_CHARS, check_fix, device_id};

use crate::cot::{Framer, MAX_EVENT_BYTES, decode_event};
use crate::nmea::NmeaTracker;
use crate::osmand::{decode_json, decode_query};

/// The receiving clock of the fuzz bodies: 2026-01-01T00:00:00Z.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

fn check_report(r: &outpost_domain::device::DeviceReport) {
    assert!(
        check_fix(&r.fix, now()).is_ok(),
        "accepted fix fails check_fix: {r:?}"
    );
    let n = r.device_id.chars().count();
    assert!(
        (1..=MAX_DEVICE_ID_CHARS).contains(&n),
        "device id length {n}"
    );
    assert_eq!(
        device_id(&r.device_id),
        Ok(r.device_id.as_str()),
        "the device id is kept as bind_device would take it"
    );
    if let Some(b) = r.battery_pct {
        assert!((0.0..=100.0).contains(&b), "battery {b}");
    }
}

/// OsmAnd: the bytes as a query string (lossy UTF-8) and as a JSON body.
pub fn osmand_decode(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = decode_query(&text, now()) {
        check_report(&r);
    }
    if let Ok(r) = decode_json(data, now()) {
        check_report(&r);
    }
}

/// CoT: the bytes decoded as one event, and framed as a stream cut into pieces whose sizes
/// come from the data.
pub fn cot_decode(data: &[u8]) {
    if let Ok(ev) = decode_event(data)
        && let Ok(r) = ev.to_report(now())
    {
        check_report(&r);
    }
    let mut framer = Framer::new();
    let mut rest = data;
    let mut step = 1 + usize::from(data.first().copied().unwrap_or(0));
    while !rest.is_empty() {
        let n = step.min(rest.len());
        framer.push(&rest[..n]);
        rest = &rest[n..];
        step = step * 7 % 251 + 1;
        while let Some(framed) = framer.next_event() {
            if let Ok(bytes) = framed {
                assert!(
                    bytes.len() <= MAX_EVENT_BYTES,
                    "framed {} bytes",
                    bytes.len()
                );
                assert!(bytes.starts_with(b"<event"), "framed event starts badly");
                if let Ok(ev) = decode_event(&bytes)
                    && let Ok(r) = ev.to_report(now())
                {
                    check_report(&r);
                }
            }
        }
        assert!(
            framer.pending_bytes() <= MAX_EVENT_BYTES + 256,
            "framer holds {} bytes",
            framer.pending_bytes()
        );
    }
}

/// NMEA: the bytes as lines fed to a tracker.
pub fn nmea_feed(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut tracker = NmeaTracker::new();
    let mut lines = 0;
    for line in text.split('\n') {
        lines += 1;
        if let Some(fix) = tracker.feed_line(line) {
            assert!(
                outpost_domain::device::check_fix_ranges(&fix).is_ok(),
                "fix out of range: {fix:?}"
            );
        }
    }
    let s = tracker.stats();
    assert_eq!(s.sentences, lines);
    assert_eq!(s.sentences, s.fixes + s.skipped + s.ignored, "{s:?}");
}
