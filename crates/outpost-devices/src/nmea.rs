//! NMEA 0183 from a field laptop's GNSS receiver, assembled into fixes.
//!
//! Sentences are parsed with the `nmea` crate (only RMC and GGA are enabled in it); a fix is
//! emitted for each valid RMC (status `A` or `D`, with date, time and position), enriched
//! with the GGA of the same time when that GGA came first (HDOP → accuracy, see
//! [`UERE_M`]); receivers send GGA before RMC in each epoch, as the MT3339 of
//! `data/gps/mt3339.log` does. Talkers GP/GN/GL/GA/GB/BD are all read (the crate ignores the
//! talker); sentences the crate cannot read, vendor sentences (`$P…`), bad checksums and
//! garbage are skipped and counted, never an error that stops the stream.

use chrono::{NaiveDateTime, NaiveTime};
use nmea::sentences::FixType;
use nmea::sentences::rmc::RmcStatusOfFix;
use nmea::{Error as NmeaError, ParseResult};
use outpost_domain::device::check_fix_ranges;
use outpost_domain::geo::LatLon;
use outpost_domain::op::Fix;

use crate::MPS_PER_KNOT;

/// User-equivalent range error assumed to turn HDOP into a horizontal accuracy, metres:
/// accuracy = HDOP × `UERE_M`. RMC and GGA carry no error estimate of their own, so this is
/// an approximation (a few metres is the usual 1-sigma range error of an uncorrected
/// single-frequency receiver); it only sizes the accuracy circle drawn around the unit.
pub const UERE_M: f64 = 5.0;

/// Longest line handed to the parser, in bytes (NMEA 0183 allows 82 characters; some
/// receivers exceed it a little). Longer lines are skipped.
const MAX_LINE_BYTES: usize = 256;

/// Counters of one receiver stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NmeaStats {
    /// Lines offered.
    pub sentences: u64,
    /// Fixes emitted.
    pub fixes: u64,
    /// Lines skipped: unreadable, unsupported, vendor, bad checksum, or no valid fix.
    pub skipped: u64,
    /// Well-formed sentences with a good checksum that Outpost does not use (GSA, GSV, ZDA,
    /// VTG, …) and GGA sentences (used only to enrich the next RMC). Not errors.
    /// `sentences` = `fixes` + `skipped` + `ignored`.
    pub ignored: u64,
}

/// Assembles fixes from NMEA lines, one line at a time.
#[derive(Debug, Default)]
pub struct NmeaTracker {
    stats: NmeaStats,
    /// Time and HDOP of the last GGA with a position fix.
    last_gga: Option<(NaiveTime, f64)>,
}

impl NmeaTracker {
    /// A tracker with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (with or without the trailing CR LF). Returns the fix it completes,
    /// if any (fix time UTC from the RMC's date and time; speed converted from knots to
    /// m/s; heading = course over ground; accuracy = HDOP of the same epoch's GGA ×
    /// [`UERE_M`]). A fix with coordinates out of range is skipped; a course outside
    /// 0..=360 or a negative speed is dropped from the fix. Noise before the `$` is cut.
    pub fn feed_line(&mut self, line: &str) -> Option<Fix> {
        self.stats.sentences += 1;
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        // Serial noise before the sentence (a sentence has one `$`, at its start).
        let line = line.rfind('$').map_or(line, |i| &line[i..]);
        let fix = if line.len() > MAX_LINE_BYTES || !line.starts_with('$') {
            // Blank lines, log comments, gpsd's JSON, binary noise.
            None
        } else {
            match nmea::parse_str(line) {
                Ok(ParseResult::RMC(rmc)) if rmc_minutes_ok(line) => self.rmc(&rmc),
                // Minutes of 60 or more: a corrupt sentence with a valid checksum.
                Ok(ParseResult::RMC(_)) => None,
                Ok(ParseResult::GGA(gga)) => {
                    self.last_gga = match (gga.fix_time, gga.fix_type, gga.hdop) {
                        (Some(t), Some(ft), Some(h))
                            if ft != FixType::Invalid && h.is_finite() && h > 0.0 =>
                        {
                            Some((t, f64::from(h)))
                        }
                        _ => None,
                    };
                    self.stats.ignored += 1;
                    return None;
                }
                Ok(_) | Err(NmeaError::DisabledSentence) => {
                    self.stats.ignored += 1;
                    return None;
                }
                Err(_) => None,
            }
        };
        match fix {
            Some(f) => {
                self.stats.fixes += 1;
                Some(f)
            }
            None => {
                self.stats.skipped += 1;
                None
            }
        }
    }

    fn rmc(&self, rmc: &nmea::sentences::RmcData) -> Option<Fix> {
        if rmc.status_of_fix == RmcStatusOfFix::Invalid {
            return None;
        }
        let (time, date, lat, lon) = (rmc.fix_time?, rmc.fix_date?, rmc.lat?, rmc.lon?);
        let fix_time = NaiveDateTime::new(date, time).and_utc();
        let accuracy_m = self
            .last_gga
            .filter(|(t, _)| *t == time)
            .map(|(_, hdop)| hdop * UERE_M);
        let fix = Fix {
            position: LatLon { lat, lon },
            fix_time,
            // A course or speed out of range loses only that field, not the position.
            heading_deg: rmc
                .true_course
                .map(f64::from)
                .filter(|c| (0.0..=360.0).contains(c)),
            speed_mps: rmc
                .speed_over_ground
                .map(|kn| f64::from(kn) * MPS_PER_KNOT)
                .filter(|s| *s >= 0.0),
            accuracy_m,
        };
        check_fix_ranges(&fix).ok()?;
        Some(fix)
    }

    /// The counters so far.
    pub fn stats(&self) -> NmeaStats {
        self.stats
    }
}

/// True when the RMC sentence's latitude (`ddmm.mmmm`) and longitude (`dddmm.mmmm`) have
/// minutes below 60 (NMEA 0183 field format; the `nmea` crate converts `4275.000` to 43.25°
/// without complaint). Empty fields pass (the crate reports them as absent).
fn rmc_minutes_ok(line: &str) -> bool {
    let body = line.split('*').next().unwrap_or(line);
    let fields: Vec<&str> = body.split(',').collect();
    let ok = |field: Option<&&str>, degree_digits: usize| match field {
        None | Some(&"") => true,
        Some(f) => f
            .get(degree_digits..)
            .and_then(|m| m.parse::<f64>().ok())
            .is_some_and(|m| (0.0..60.0).contains(&m)),
    };
    ok(fields.get(3), 2) && ok(fields.get(5), 3)
}
