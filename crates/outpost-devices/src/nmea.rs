//! NMEA 0183 from a field laptop's GNSS receiver, assembled into fixes.
//!
//! Contract (implementation: issue 4, decoders helper): sentences are parsed with the
//! `nmea` crate; a fix is emitted for each valid RMC (status `A`, with date), enriched with
//! the GGA of the same time (HDOP → accuracy). Talkers GP/GN/GL/GA/GB/BD are all read;
//! sentences the crate cannot read, vendor sentences (`$P…`), bad checksums and garbage are
//! skipped and counted, never an error that stops the stream.

use outpost_domain::op::Fix;

/// Counters of one receiver stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NmeaStats {
    /// Lines offered.
    pub sentences: u64,
    /// Fixes emitted.
    pub fixes: u64,
    /// Lines skipped: unreadable, unsupported, vendor, bad checksum, or no valid fix.
    pub skipped: u64,
}

/// Assembles fixes from NMEA lines, one line at a time.
#[derive(Debug, Default)]
pub struct NmeaTracker {
    stats: NmeaStats,
}

impl NmeaTracker {
    /// A tracker with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (with or without the trailing CR LF). Returns the fix it completes,
    /// if any (fix time UTC from the RMC's date and time; speed converted from knots to
    /// m/s; heading = course over ground).
    pub fn feed_line(&mut self, line: &str) -> Option<Fix> {
        let _ = line;
        self.stats.sentences += 1;
        self.stats.skipped += 1;
        None
    }

    /// The counters so far.
    pub fn stats(&self) -> NmeaStats {
        self.stats
    }
}
