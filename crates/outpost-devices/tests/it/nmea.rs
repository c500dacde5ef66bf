use outpost_devices::MPS_PER_KNOT;
use outpost_devices::nmea::{NmeaStats, NmeaTracker, UERE_M};

use crate::{close, sample, t};

/// `$body*CS` with the NMEA checksum (XOR of the bytes between `$` and `*`).
fn sentence(body: &str) -> String {
    let cs = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{cs:02X}")
}

#[test]
fn the_mt3339_log_gives_30_fixes_along_the_logged_path() {
    let log = sample("mt3339.log");
    let mut tracker = NmeaTracker::new();
    let fixes: Vec<_> = log.lines().filter_map(|l| tracker.feed_line(l)).collect();
    assert_eq!(
        tracker.stats(),
        NmeaStats {
            // 7 comment lines + 138 sentences.
            sentences: 145,
            fixes: 30,
            skipped: 7,
            // 30 GGA, 30 GSA, 18 GSV, 30 ZDA.
            ignored: 108,
        }
    );
    let first = &fixes[0];
    // $GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D
    assert_eq!(first.fix_time, t("2015-04-13T20:26:40Z"));
    close(first.position.lat, 44.0 + 4.1306 / 60.0, 1e-9);
    close(first.position.lon, -(121.0 + 18.8515 / 60.0), 1e-9);
    close(first.speed_mps.unwrap(), 0.03 * MPS_PER_KNOT, 1e-6);
    close(first.heading_deg.unwrap(), 225.97, 1e-4);
    // The GGA of the same second: HDOP 0.98.
    close(first.accuracy_m.unwrap(), 0.98 * UERE_M, 1e-6);
    let second = &fixes[1];
    // GGA 202641: HDOP 0.83.
    close(second.accuracy_m.unwrap(), 0.83 * UERE_M, 1e-6);
    let last = fixes.last().unwrap();
    // $GPRMC,202709.000,A,4404.1297,N,12118.8513,W,0.03,188.44,130415
    assert_eq!(last.fix_time, t("2015-04-13T20:27:09Z"));
    close(last.position.lat, 44.0 + 4.1297 / 60.0, 1e-9);
    close(last.position.lon, -(121.0 + 18.8513 / 60.0), 1e-9);
    close(last.heading_deg.unwrap(), 188.44, 1e-4);
    // One fix a second, in order.
    for w in fixes.windows(2) {
        assert_eq!((w[1].fix_time - w[0].fix_time).num_seconds(), 1);
    }
}

#[test]
fn crlf_and_other_talkers_are_read() {
    let mut tr = NmeaTracker::new();
    let gga = sentence("GNGGA,101500.00,3949.0260,N,10958.6380,E,1,12,1.2,1300.0,M,-30.0,M,,");
    let rmc = sentence("GNRMC,101500.00,A,3949.0260,N,10958.6380,E,10.0,90.0,291126,,,A");
    assert_eq!(tr.feed_line(&format!("{gga}\r\n")), None);
    let fix = tr.feed_line(&format!("{rmc}\r\n")).expect("GN talker fix");
    assert_eq!(fix.fix_time, t("2026-11-29T10:15:00Z"));
    close(fix.position.lat, 39.0 + 49.026 / 60.0, 1e-9);
    close(fix.position.lon, 109.0 + 58.638 / 60.0, 1e-9);
    close(fix.speed_mps.unwrap(), 10.0 * MPS_PER_KNOT, 1e-6);
    close(fix.accuracy_m.unwrap(), 1.2 * UERE_M, 1e-6);
    // BeiDou (BD, GB) and GLONASS talkers.
    for talker in ["BD", "GB", "GL", "GA"] {
        let rmc = sentence(&format!(
            "{talker}RMC,101501.00,A,3949.0260,S,10958.6380,W,0.0,,291126,,,A"
        ));
        let fix = tr.feed_line(&rmc).unwrap_or_else(|| panic!("{talker}"));
        assert!(fix.position.lat < 0.0 && fix.position.lon < 0.0);
        assert_eq!(fix.heading_deg, None);
        // No GGA of this second: no accuracy.
        assert_eq!(fix.accuracy_m, None);
    }
    assert_eq!(tr.stats().fixes, 5);
}

#[test]
fn bad_lines_are_skipped_and_counted_never_stopping_the_stream() {
    let mut tr = NmeaTracker::new();
    let good = sentence("GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D");
    let bad_checksum = good
        .replace("*", "*0")
        .chars()
        .take(good.len())
        .collect::<String>();
    let lines = [
        sentence("PMTK001,314,3"),                       // vendor
        sentence("GPRMC,202641.000,V,,,,,,,130415,,,N"), // no fix (status V)
        sentence("GPRMC,202641.000,A,4404.1306,N,12118.8515,W,0.03,225.97,,,,D"), // no date
        bad_checksum,
        "$GPRMC,garbage".into(),
        "\u{0}\u{1}binary noise ÿ".into(),
        "{\"class\":\"VERSION\",\"release\":\"3.22\"}".into(), // gpsd JSON
        String::new(),
        format!("${}", "A".repeat(1000)),
        sentence("GPRMC,202640.000,A,9104.1306,N,12118.8515,W,0.03,225.97,130415,,,D"), // lat 91
    ];
    for l in &lines {
        assert_eq!(tr.feed_line(l), None, "{l:?}");
    }
    assert!(tr.feed_line(&good).is_some(), "the stream goes on");
    let s = tr.stats();
    assert_eq!(s.sentences, lines.len() as u64 + 1);
    assert_eq!(s.fixes, 1);
    assert_eq!(s.skipped + s.ignored, lines.len() as u64);
    // The vendor sentence is unknown to the crate: skipped, not "ignored".
    assert!(s.skipped >= 9, "{s:?}");
}

#[test]
fn gga_of_another_second_does_not_give_accuracy() {
    let mut tr = NmeaTracker::new();
    tr.feed_line(&sentence(
        "GPGGA,202639.000,4404.1306,N,12118.8515,W,2,10,0.98,1127.7,M,-19.6,M,0000,0000",
    ));
    let fix = tr
        .feed_line(&sentence(
            "GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D",
        ))
        .unwrap();
    assert_eq!(fix.accuracy_m, None);
    // A GGA without a fix (quality 0) gives none either.
    tr.feed_line(&sentence(
        "GPGGA,202641.000,4404.1306,N,12118.8515,W,0,00,99.99,,M,,M,,",
    ));
    let fix = tr
        .feed_line(&sentence(
            "GPRMC,202641.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D",
        ))
        .unwrap();
    assert_eq!(fix.accuracy_m, None);
}

#[test]
fn serial_noise_and_out_of_range_course_or_speed() {
    let mut tr = NmeaTracker::new();
    let rmc = sentence("GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,725.97,130415,,,D");
    let fix = tr
        .feed_line(&format!("\u{fffd}\u{0}x{rmc}"))
        .expect("noise before $ is cut");
    assert_eq!(fix.fix_time, t("2015-04-13T20:26:40Z"));
    // Course 725.97° is not a course: dropped, the position kept.
    assert_eq!(fix.heading_deg, None);
    assert!(fix.speed_mps.is_some());
}

#[test]
fn minutes_of_sixty_or_more_are_a_corrupt_sentence_not_a_fix() {
    let mut tr = NmeaTracker::new();
    // 75 minutes of latitude would read as 43.25°; 60.5 minutes of longitude likewise.
    let bad_lat = sentence("GPRMC,101500.00,A,4275.000,N,10958.6380,E,0.0,,291126,,,A");
    let bad_lon = sentence("GPRMC,101501.00,A,3949.0260,N,10960.5000,E,0.0,,291126,,,A");
    assert_eq!(tr.feed_line(&bad_lat), None);
    assert_eq!(tr.feed_line(&bad_lon), None);
    let good = sentence("GPRMC,101502.00,A,3959.9999,N,10959.9999,E,0.0,,291126,,,A");
    let fix = tr.feed_line(&good).expect("59.9999 minutes is a fix");
    close(fix.position.lat, 39.0 + 59.9999 / 60.0, 1e-9);
    let s = tr.stats();
    assert_eq!((s.fixes, s.skipped), (1, 2));
}
