//! Field laptop mode, the receiver reader, devices and tracks through `Console`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};

use outpost_app::gps::{GpsOptions, GpsReader, GpsSource};
use outpost_app::ipc::{
    BindDevice, ErrorCode, ExportTrack, NewIncident, TrackFormat, TrackQuery, UnitOnIncident,
};
use outpost_app::{AppError, Console, ConsoleOptions};
use outpost_domain::clock::FixedClock;
use outpost_domain::device::{DeviceReport, DeviceSource};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::IncidentType;
use outpost_domain::op::{Fix, Lane, OpBody};
use outpost_domain::unit::UnitKind;
use outpost_store::query::{self, OutboxStatus};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 22, 0, 0)
        .single()
        .expect("valid date")
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<FixedClock>,
    console: Arc<Console>,
}

/// A console with two patrol cars, P-12 and P-14.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let console = Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.path().to_path_buf(),
            demo: false,
            user: "officer.wang".into(),
        },
        clock.clone(),
    )
    .expect("open console");
    for (id, cs) in [("u-12", "P-12"), ("u-14", "P-14")] {
        console
            .register_unit(id, cs, UnitKind::PatrolCar, None)
            .expect("register unit");
    }
    Fixture {
        dir,
        clock,
        console: Arc::new(console),
    }
}

/// The MT3339 receiver log: the repo copy (data/gps/), or the shared sample until it lands.
fn mt3339_log() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = root.join("data/gps/mt3339.log");
    if repo.is_file() {
        return repo;
    }
    root.join("../shared/data/gps/mt3339.log")
}

/// ddmm.mmmm + hemisphere to signed degrees.
fn degrees(value: &str, hemisphere: &str, degree_digits: usize) -> f64 {
    let d: f64 = value[..degree_digits].parse().expect("degrees");
    let m: f64 = value[degree_digits..].parse().expect("minutes");
    let v = d + m / 60.0;
    if hemisphere == "S" || hemisphere == "W" {
        -v
    } else {
        v
    }
}

/// The valid RMC fixes of the log, read independently of the decoder: (time, lat, lon).
fn logged_rmc(path: &Path) -> Vec<(DateTime<Utc>, f64, f64)> {
    std::fs::read_to_string(path)
        .expect("log")
        .lines()
        .filter(|l| l.starts_with("$GPRMC") || l.starts_with("$GNRMC"))
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[2] == "A")
        .map(|f| {
            let date = NaiveDate::parse_from_str(f[9], "%d%m%y").expect("date");
            let time = NaiveTime::parse_from_str(f[1], "%H%M%S%.f").expect("time");
            (
                date.and_time(time).and_utc(),
                degrees(f[3], f[4], 2),
                degrees(f[5], f[6], 3),
            )
        })
        .collect()
}

/// Replays the MT3339 log 1000× faster as P-12's receiver, to the end.
fn replay(f: &Fixture) -> outpost_app::ipc::GpsStatus {
    f.console
        .set_field_unit("p-12")
        .expect("P-12 is in the roster");
    let log = mt3339_log();
    let label = log.display().to_string();
    let reader = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(&label).expect("a log file"),
            label,
            speed: 1000.0,
        },
    )
    .expect("reader starts");
    assert!(reader.wait(Duration::from_secs(30)), "replay ends");
    reader.status()
}

#[test]
fn replay_of_the_mt3339_log_moves_the_unit_along_the_logged_path() {
    let f = fixture();
    let logged = logged_rmc(&mt3339_log());
    assert_eq!(logged.len(), 30, "the sample has 30 valid RMC fixes");
    let status = replay(&f);
    assert_eq!(status.fixes, 30, "{status:?}");
    assert_eq!(status.sentences, 138, "{status:?}");
    assert!(!status.connected, "the log is closed at its end");
    assert_eq!(status.error, None);

    // The marker is at the last logged fix (Bend, Oregon)...
    let state = f.console.console_state().expect("state");
    let unit = state.units.iter().find(|u| u.id == "u-12").expect("P-12");
    let fix = unit.fix.clone().expect("P-12 has a position");
    let (_, lat, lon) = *logged.last().expect("fixes");
    assert!((fix.position.lat - lat).abs() < 1e-9, "{fix:?}");
    assert!((fix.position.lon - lon).abs() < 1e-9, "{fix:?}");
    assert!((fix.position.lat - 44.068_828_333).abs() < 1e-6);
    assert!((fix.position.lon - -121.314_188_333).abs() < 1e-6);
    // ...stamped now, not in 2015: the first fix gets the replay's start, later ones their
    // offset in the log divided by the speed (29 s at 1000x = 29 ms).
    assert_eq!(fix.fix_time, t0() + chrono::Duration::milliseconds(29));

    // The track is the logged path, point for point, in order.
    let track = f
        .console
        .unit_track(TrackQuery {
            unit_id: "u-12".into(),
            from: None,
            to: None,
        })
        .expect("track");
    assert_eq!(track.callsign, "P-12");
    assert!(!track.truncated);
    assert_eq!(track.points.len(), logged.len());
    for (i, (p, (logged_at, lat, lon))) in track.points.iter().zip(&logged).enumerate() {
        assert!((p.position.lat - lat).abs() < 1e-9, "point {i}: {p:?}");
        assert!((p.position.lon - lon).abs() < 1e-9, "point {i}: {p:?}");
        let offset = (*logged_at - logged[0].0).num_milliseconds() / 1000;
        assert_eq!(p.fix_time, t0() + chrono::Duration::milliseconds(offset));
    }
    // The receiver moved 1.5 m south-ish over the log: first and last differ.
    assert!(track.points[0].position.lat > track.points[29].position.lat);

    // Others are untouched.
    let p14 = state.units.iter().find(|u| u.id == "u-14").expect("P-14");
    assert_eq!(p14.fix, None);
    let view = f.console.field_view().expect("view").expect("field mode");
    assert_eq!(view.unit.callsign, "P-12");
    assert_eq!(view.gps.expect("gps status").fixes, 30);
}

/// A log whose path holds `@` replays like any other (the `@BAUD` suffix is for serial
/// devices only).
#[test]
fn a_log_whose_name_holds_an_at_sign_replays() {
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let log = f.dir.path().join("drive@2015.nmea");
    std::fs::copy(mt3339_log(), &log).expect("copy the log");
    let label = log.display().to_string();
    let reader = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(&label).expect("a log file"),
            label,
            speed: 1000.0,
        },
    )
    .expect("reader starts");
    assert!(reader.wait(Duration::from_secs(30)), "replay ends");
    let status = reader.status();
    assert_eq!(status.fixes, 30, "{status:?}");
    let (_, lat, lon) = *logged_rmc(&mt3339_log()).last().expect("fixes");
    let state = f.console.console_state().expect("state");
    let p12 = state.units.iter().find(|u| u.id == "u-12").expect("P-12");
    let at = p12.fix.as_ref().expect("moved").position;
    assert!((at.lat - lat).abs() < 1e-9 && (at.lon - lon).abs() < 1e-9);
}

/// A file that holds no NMEA (here a GPX track) replays to its end and says so, instead of
/// sitting silent.
#[test]
fn a_log_without_nmea_says_so() {
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let gpx = f.dir.path().join("track.gpx");
    std::fs::write(
        &gpx,
        "<?xml version=\"1.0\"?>\n<gpx><trk><trkseg>\n<trkpt lat=\"42.5\" lon=\"1.5\"/>\n\
         </trkseg></trk></gpx>\n",
    )
    .expect("write");
    let label = gpx.display().to_string();
    let reader = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(&label).expect("a log file"),
            label,
            speed: 1000.0,
        },
    )
    .expect("reader starts");
    assert!(reader.wait(Duration::from_secs(30)), "replay ends");
    let status = reader.status();
    assert_eq!(status.fixes, 0);
    assert!(!status.connected);
    let error = status.error.expect("an explanation");
    assert!(
        error.contains("no NMEA fix in") && error.contains("4 lines, 4 skipped"),
        "{error}"
    );
}

#[test]
fn offline_fixes_wait_on_disk_in_the_positions_lane_in_fix_order() {
    let f = fixture();
    replay(&f);
    // No server: everything is pending, on disk (read through a second connection).
    let store = outpost_store::Store::open(&f.dir.path().join("outpost.db"), t0()).expect("open");
    let positions: Vec<_> = query::outbox_all(store.conn())
        .expect("outbox")
        .into_iter()
        .filter(|r| r.lane == Lane::Positions)
        .collect();
    assert_eq!(positions.len(), 30);
    let mut last: Option<(u64, DateTime<Utc>)> = None;
    for row in &positions {
        assert_eq!(row.status, OutboxStatus::Pending);
        let OpBody::PositionReport { unit_id, fix } = &row.envelope.body else {
            panic!("not a position report: {}", row.kind);
        };
        assert_eq!(unit_id, "u-12");
        if let Some((lane_seq, at)) = last {
            assert_eq!(row.envelope.lane_seq, lane_seq + 1, "gap-free lane order");
            assert!(fix.fix_time > at, "fix order");
        }
        last = Some((row.envelope.lane_seq, fix.fix_time));
    }
    let status = f.console.sync_status().expect("status");
    assert_eq!(status.pending.positions, 30);
    // When the link returns, the engine pushes the lane from its oldest op: the first batch
    // is the first fixes, in fix order.
    let handle = f.console.store_handle();
    let s = handle.lock().expect("store");
    let batch = s.pending_batch(Lane::Positions, 10).expect("batch");
    let times: Vec<DateTime<Utc>> = batch
        .iter()
        .filter_map(|op| match &op.body {
            OpBody::PositionReport { fix, .. } => Some(fix.fix_time),
            _ => None,
        })
        .collect();
    let expected: Vec<DateTime<Utc>> = (0..10)
        .map(|i| t0() + chrono::Duration::milliseconds(i))
        .collect();
    assert_eq!(times, expected);
}

#[test]
fn gpx_and_kml_exports_parse_back_with_the_same_points() {
    let f = fixture();
    replay(&f);
    let query = TrackQuery {
        unit_id: "u-12".into(),
        from: Some(t0() + chrono::Duration::milliseconds(5)),
        to: None,
    };
    let track = f.console.unit_track(query.clone()).expect("track");
    assert_eq!(
        track.points.len(),
        25,
        "the window leaves out the first 5 fixes"
    );

    let gpx_out = f
        .console
        .export_track(ExportTrack {
            track: query.clone(),
            format: TrackFormat::Gpx,
        })
        .expect("gpx export");
    assert_eq!(gpx_out.points, 25);
    let expected_dir = f.dir.path().join("exports");
    assert_eq!(
        PathBuf::from(&gpx_out.path),
        std::path::absolute(expected_dir.join("P-12-20261129T220000Z-20261129T220000Z.gpx"))
            .expect("absolute")
    );
    let doc = gpx::read(std::fs::File::open(&gpx_out.path).expect("file")).expect("valid GPX");
    assert_eq!(doc.version, gpx::GpxVersion::Gpx11);
    assert_eq!(doc.tracks.len(), 1);
    assert_eq!(doc.tracks[0].name.as_deref(), Some("P-12"));
    let points = &doc.tracks[0].segments[0].points;
    assert_eq!(points.len(), 25);
    for (p, fix) in points.iter().zip(&track.points) {
        assert_eq!(p.point().y(), fix.position.lat);
        assert_eq!(p.point().x(), fix.position.lon);
        let at: time::OffsetDateTime = p.time.expect("time").into();
        assert_eq!(
            at.unix_timestamp_nanos(),
            i128::from(fix.fix_time.timestamp_millis()) * 1_000_000
        );
    }

    let kml_out = f
        .console
        .export_track(ExportTrack {
            track: query,
            format: TrackFormat::Kml,
        })
        .expect("kml export");
    assert!(kml_out.path.ends_with(".kml"));
    let text = std::fs::read_to_string(&kml_out.path).expect("file");
    let placemarks = kml_placemarks(&text);
    let placemarks: Vec<&kml::types::Placemark> = placemarks.iter().collect();
    assert_eq!(placemarks.len(), 26, "the line plus one point per fix");
    let Some(kml::types::Geometry::LineString(line)) = &placemarks[0].geometry else {
        panic!("the first placemark is not the line");
    };
    assert_eq!(line.coords.len(), 25);
    for ((c, pm), fix) in line.coords.iter().zip(&placemarks[1..]).zip(&track.points) {
        assert_eq!((c.y, c.x), (fix.position.lat, fix.position.lon));
        let Some(kml::types::Geometry::Point(pt)) = &pm.geometry else {
            panic!("not a point");
        };
        assert_eq!(
            (pt.coord.y, pt.coord.x),
            (fix.position.lat, fix.position.lon)
        );
        let when = pm.children[0].children[0].content.as_deref().expect("when");
        assert_eq!(
            when.parse::<DateTime<Utc>>().expect("RFC 3339"),
            fix.fix_time
        );
    }

    // An empty window exports nothing, and says so.
    let e = f
        .console
        .export_track(ExportTrack {
            track: TrackQuery {
                unit_id: "u-14".into(),
                from: None,
                to: None,
            },
            format: TrackFormat::Gpx,
        })
        .expect_err("P-14 has no track");
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("P-14"), "{}", e.message);
}

/// A window with one fix: the KML is that fix's Point placemark alone (a LineString needs two
/// coordinates or more, OGC KML 2.2), the GPX a one-point track; an empty window is a clear
/// error in both formats.
#[test]
fn a_one_fix_export_is_valid_and_an_empty_one_is_refused() {
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let at = t0() - chrono::Duration::seconds(30);
    f.console
        .report_field_fix(Fix {
            position: LatLon {
                lat: 39.817_123_4,
                lon: 109.977_5,
            },
            fix_time: at,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        })
        .expect("recorded");
    let query = TrackQuery {
        unit_id: "u-12".into(),
        from: None,
        to: None,
    };
    let out = f
        .console
        .export_track(ExportTrack {
            track: query.clone(),
            format: TrackFormat::Kml,
        })
        .expect("kml export");
    assert_eq!(out.points, 1);
    assert!(
        out.path
            .ends_with("P-12-20261129T215930Z-20261129T215930Z.kml"),
        "{}",
        out.path
    );
    let text = std::fs::read_to_string(&out.path).expect("file");
    assert!(!text.contains("LineString"), "{text}");
    let placemarks = kml_placemarks(&text);
    let placemarks: Vec<&kml::types::Placemark> = placemarks.iter().collect();
    assert_eq!(placemarks.len(), 1, "{text}");
    let Some(kml::types::Geometry::Point(pt)) = &placemarks[0].geometry else {
        panic!("not a point: {text}");
    };
    assert_eq!((pt.coord.y, pt.coord.x), (39.817_123_4, 109.977_5));
    let when = placemarks[0].children[0].children[0]
        .content
        .as_deref()
        .expect("when");
    assert_eq!(when.parse::<DateTime<Utc>>().expect("RFC 3339"), at);

    let out = f
        .console
        .export_track(ExportTrack {
            track: query,
            format: TrackFormat::Gpx,
        })
        .expect("gpx export");
    let doc = gpx::read(std::fs::File::open(&out.path).expect("file")).expect("valid GPX");
    let points = &doc.tracks[0].segments[0].points;
    assert_eq!(points.len(), 1);
    assert_eq!(
        (points[0].point().y(), points[0].point().x()),
        (39.817_123_4, 109.977_5)
    );

    for format in [TrackFormat::Kml, TrackFormat::Gpx] {
        let e = f
            .console
            .export_track(ExportTrack {
                track: TrackQuery {
                    unit_id: "u-12".into(),
                    from: Some(t0()),
                    to: None,
                },
                format,
            })
            .expect_err("nothing after t0");
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert_eq!(
            e.message,
            "P-12 has no position in that time window; nothing to export"
        );
    }
    // Only the two exports are there (no leftover part files).
    let mut names: Vec<String> = std::fs::read_dir(f.dir.path().join("exports"))
        .expect("exports dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "P-12-20261129T215930Z-20261129T215930Z.gpx",
            "P-12-20261129T215930Z-20261129T215930Z.kml"
        ]
    );
}

#[test]
fn an_unknown_callsign_is_a_clear_error() {
    let f = fixture();
    let e = f.console.set_field_unit("Q-99").expect_err("no such unit");
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(e.message.contains("\"Q-99\""), "{}", e.message);
    assert!(e.message.contains("P-12, P-14"), "{}", e.message);
    assert_eq!(f.console.field_unit(), None);
    assert_eq!(f.console.field_view().expect("view"), None);

    // Without --unit, a receiver has nobody to move.
    let e = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(mt3339_log().to_str().expect("utf-8")).expect("log"),
            label: "log".into(),
            speed: 1.0,
        },
    )
    .expect_err("no field unit");
    assert!(e.message.contains("--unit"), "{}", e.message);

    // An empty roster says how to get one.
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.path().to_path_buf(),
            demo: false,
            user: "x".into(),
        },
        f.clock.clone(),
    )
    .expect("open");
    let e = empty.set_field_unit("P-12").expect_err("empty roster");
    assert!(e.message.contains("--server"), "{}", e.message);
}

/// An NMEA sentence with its checksum.
fn sentence(body: &str) -> String {
    let cs = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{cs:02X}")
}

/// A laptop whose clock is slow: its receiver's fixes (satellite time, 12 minutes ahead of
/// the laptop) are recorded, not refused (SYNC.md principle 10), and the receiver status
/// says the laptop's clock is off. Range, 0°/0° and before-2000 checks still apply.
#[test]
fn a_receiver_ahead_of_a_slow_laptop_clock_is_recorded_and_the_skew_shown() {
    use std::io::{BufRead, BufReader, Write};
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let fix = |lat: f64, at: DateTime<Utc>| Fix {
        position: LatLon { lat, lon: 109.98 },
        fix_time: at,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    };
    let ahead = t0() + chrono::Duration::minutes(12);
    let warning = f
        .console
        .report_field_fix(fix(39.8, ahead))
        .expect("a receiver ahead of the laptop is recorded");
    let warning = warning.expect("the skew is reported");
    assert!(
        warning.contains("receiver time is 12 min ahead of this laptop's clock"),
        "{warning}"
    );
    let state = f.console.console_state().expect("state");
    let p12 = state.units.iter().find(|u| u.id == "u-12").expect("P-12");
    assert_eq!(p12.fix.as_ref().map(|x| x.fix_time), Some(ahead));
    assert_eq!(
        f.console.sync_status().expect("status").pending.positions,
        1
    );
    // Within five minutes: no warning.
    assert_eq!(
        f.console
            .report_field_fix(fix(39.81, t0() + chrono::Duration::minutes(4)))
            .expect("recorded"),
        None
    );
    // Up to a day ahead is recorded too (the server parks it if its own clock says so).
    let w = f
        .console
        .report_field_fix(fix(39.82, t0() + chrono::Duration::hours(23)))
        .expect("recorded")
        .expect("warned");
    assert!(w.contains("ahead of this laptop's clock"), "{w}");
    // A year ahead is a broken receiver: refused, so it cannot pin the marker.
    let e = f
        .console
        .report_field_fix(fix(39.83, t0() + chrono::Duration::days(365)))
        .expect_err("a year ahead");
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("365 days ahead"), "{}", e.message);
    let state = f.console.console_state().expect("state");
    let p12 = state.units.iter().find(|u| u.id == "u-12").expect("P-12");
    assert_eq!(
        p12.fix.as_ref().map(|x| x.position.lat),
        Some(39.82),
        "the year-ahead fix did not move the marker"
    );
    // The other checks stay.
    let y1999 = Utc
        .with_ymd_and_hms(1999, 8, 22, 0, 0, 0)
        .single()
        .expect("valid date");
    for (bad, says) in [
        (fix(91.0, ahead), "latitude 91"),
        (
            Fix {
                position: LatLon { lat: 0.0, lon: 0.0 },
                ..fix(39.8, ahead)
            },
            "0, 0",
        ),
        (fix(39.8, y1999), "before 2000"),
    ] {
        let e = f.console.report_field_fix(bad).expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains(says), "{}", e.message);
    }

    // Through the receiver reader: the status shows the skew.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut watch = String::new();
        reader.read_line(&mut watch).expect("watch command");
        let mut w = stream;
        // 22:12:00 and 22:12:01 on 2026-11-29; the laptop says 22:00:00.
        for body in [
            "GPRMC,221200.000,A,3948.0000,N,10958.8000,E,0.00,0.00,291126,,,A",
            "GPRMC,221201.000,A,3948.0060,N,10958.8000,E,0.00,0.00,291126,,,A",
        ] {
            w.write_all(format!("{}\r\n", sentence(body)).as_bytes())
                .expect("write");
        }
        // Hold the connection until the reader has read both.
        std::thread::sleep(Duration::from_millis(500));
    });
    let source = format!("gpsd://{addr}");
    let mut reader = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(&source).expect("gpsd address"),
            label: source.clone(),
            speed: 1.0,
        },
    )
    .expect("reader starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reader.status().fixes < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = reader.status();
    reader.stop();
    server.join().expect("server");
    assert_eq!(status.fixes, 2, "{status:?}");
    let last = status.last_fix.as_ref().expect("recorded");
    assert_eq!(last.fix_time, t0() + chrono::Duration::seconds(12 * 60 + 1));
    let error = status.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("receiver time is 12 min ahead of this laptop's clock"),
        "{status:?}"
    );
    let view = f.console.field_view().expect("view").expect("field mode");
    assert_eq!(view.gps.and_then(|g| g.error).as_deref(), Some(error));
}

#[test]
fn the_field_unit_acknowledges_its_assignment_once() {
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let none = f
        .console
        .acknowledge_assignment()
        .expect_err("nothing assigned");
    assert_eq!(none.code, ErrorCode::NotFound);
    let inc = f
        .console
        .create_incident(NewIncident {
            incident_type: IncidentType::TrafficAccident,
            priority: None,
            location: LatLon {
                lat: 39.8,
                lon: 109.98,
            },
            address: "鄂尔多斯西街".into(),
            description: String::new(),
        })
        .expect("incident");
    f.console
        .assign_unit(UnitOnIncident {
            incident_id: inc.summary.id.clone(),
            unit_id: "u-12".into(),
        })
        .expect("assign");
    let view = f.console.field_view().expect("view").expect("field mode");
    assert_eq!(
        view.assignment.as_ref().map(|a| a.summary.id.clone()),
        Some(inc.summary.id.clone())
    );
    assert_eq!(view.acknowledged_at, None);
    assert_eq!(view.gps, None);

    f.clock.advance_secs(20);
    let view = f.console.acknowledge_assignment().expect("ack");
    assert_eq!(
        view.acknowledged_at,
        Some(t0() + chrono::Duration::seconds(20))
    );
    let notes = |v: &outpost_app::ipc::FieldView| {
        v.assignment
            .as_ref()
            .map(|a| a.timeline.len())
            .unwrap_or_default()
    };
    let before = notes(&view);
    f.clock.advance_secs(5);
    let again = f.console.acknowledge_assignment().expect("again");
    assert_eq!(notes(&again), before, "a second press writes nothing");
    assert_eq!(again.acknowledged_at, view.acknowledged_at);
}

/// A report of an unbound device, as the server's ingest writes it.
fn device_report(c: &Console, device_id: &str, lat: f64, at: DateTime<Utc>) {
    let store = c.store_handle();
    let mut s = store.lock().expect("store");
    s.write::<AppError, _>(at, "gateway", |_| {
        Ok(OpBody::DeviceReport {
            report: DeviceReport {
                device_id: device_id.into(),
                source: DeviceSource::Osmand,
                name: None,
                fix: Fix {
                    position: LatLon { lat, lon: 1.52 },
                    fix_time: at,
                    heading_deg: None,
                    speed_mps: Some(3.0),
                    accuracy_m: None,
                },
                battery_pct: Some(81.0),
            },
        })
    })
    .expect("device.report");
}

#[test]
fn devices_are_listed_bound_and_unbound() {
    let f = fixture();
    device_report(&f.console, "phone-7", 42.50, t0());
    device_report(
        &f.console,
        "phone-7",
        42.51,
        t0() + chrono::Duration::seconds(5),
    );
    device_report(
        &f.console,
        "phone-9",
        42.40,
        t0() + chrono::Duration::seconds(1),
    );

    let list = f.console.list_devices().expect("list");
    let ids: Vec<&str> = list.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["phone-7", "phone-9"], "newest fix first");
    assert_eq!(list[0].source, Some(DeviceSource::Osmand));
    assert_eq!(list[0].unit_id, None);
    assert_eq!(list[0].reports, 2);
    assert_eq!(list[0].battery_pct, Some(81.0));
    assert_eq!(
        list[0].last_fix.as_ref().map(|x| x.position.lat),
        Some(42.51)
    );

    let bound = f
        .console
        .bind_device(BindDevice {
            device_id: "phone-7".into(),
            unit_id: Some("u-14".into()),
        })
        .expect("bind");
    assert_eq!(bound.unit_id.as_deref(), Some("u-14"));
    assert_eq!(bound.callsign.as_deref(), Some("P-14"));
    let list = f.console.list_devices().expect("list");
    let ids: Vec<&str> = list.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["phone-9", "phone-7"], "unbound first, then bound");

    let e = f
        .console
        .bind_device(BindDevice {
            device_id: "phone-9".into(),
            unit_id: Some("u-99".into()),
        })
        .expect_err("unknown unit");
    assert_eq!(e.code, ErrorCode::NotFound);
    // A device can be bound before its first report (its id read off the phone).
    let pre = f
        .console
        .bind_device(BindDevice {
            device_id: "never-heard".into(),
            unit_id: Some("u-12".into()),
        })
        .expect("pre-registration");
    assert_eq!(pre.unit_id.as_deref(), Some("u-12"));
    assert_eq!(pre.source, None);
    assert_eq!(pre.last_fix, None);
    let e = f
        .console
        .bind_device(BindDevice {
            device_id: "never-seen".into(),
            unit_id: None,
        })
        .expect_err("nothing to unbind");
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(e.message.contains("never-seen"), "{}", e.message);
    let e = f
        .console
        .bind_device(BindDevice {
            device_id: "bad\u{7}id".into(),
            unit_id: Some("u-12".into()),
        })
        .expect_err("control character");
    assert_eq!(e.code, ErrorCode::InvalidInput);

    let unbound = f
        .console
        .bind_device(BindDevice {
            device_id: "phone-7".into(),
            unit_id: None,
        })
        .expect("unbind");
    assert_eq!(unbound.unit_id, None);
    assert_eq!(
        f.console.list_devices().expect("list")[0].device_id,
        "phone-7"
    );
}

/// A phone whose id was typed with stray spaces reports (the decoder keeps the id trimmed)
/// and can be bound by the id as listed, or as typed with spaces: one device, one rule
/// (outpost_domain::device::device_id) on both sides.
#[test]
fn a_device_whose_id_has_stray_spaces_can_be_bound() {
    let f = fixture();
    let report = outpost_devices::osmand::decode_query(
        "/?id=%20%204711%20&lat=42.5&lon=1.52&timestamp=1795989600",
        t0(),
    )
    .expect("decoded");
    {
        let store = f.console.store_handle();
        let mut s = store.lock().expect("store");
        s.write::<AppError, _>(t0(), "gateway", |_| {
            Ok(OpBody::DeviceReport {
                report: report.clone(),
            })
        })
        .expect("device.report");
    }
    let listed = f.console.list_devices().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].device_id, "4711");
    let bound = f
        .console
        .bind_device(BindDevice {
            device_id: " 4711  ".into(),
            unit_id: Some("u-12".into()),
        })
        .expect("bind");
    assert_eq!(bound.device_id, "4711");
    assert_eq!(bound.unit_id.as_deref(), Some("u-12"));
    assert_eq!(
        bound.last_fix,
        Some(report.fix.clone()),
        "the device that reported"
    );
    let listed = f.console.list_devices().expect("list");
    assert_eq!(listed.len(), 1, "one device, not two: {listed:?}");
    // Refused by the same rule and message as the decoders.
    for (id, says) in [
        ("  \t ", "the device id is empty"),
        ("47\u{7}11", "the device id contains a control character"),
    ] {
        let e = f
            .console
            .bind_device(BindDevice {
                device_id: id.into(),
                unit_id: Some("u-12".into()),
            })
            .expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains(says), "{}", e.message);
    }
}

#[test]
fn a_track_window_that_ends_before_it_starts_is_refused() {
    let f = fixture();
    let e = f
        .console
        .unit_track(TrackQuery {
            unit_id: "u-12".into(),
            from: Some(t0()),
            to: Some(t0() - chrono::Duration::seconds(1)),
        })
        .expect_err("backwards window");
    assert_eq!(e.code, ErrorCode::InvalidInput);
    let e = f
        .console
        .unit_track(TrackQuery {
            unit_id: "nobody".into(),
            from: None,
            to: None,
        })
        .expect_err("unknown unit");
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn a_gpsd_stream_is_read_after_the_watch_command_and_its_json_skipped() {
    use std::io::{BufRead, BufReader, Write};
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = std::fs::read_to_string(mt3339_log()).expect("log");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut watch = String::new();
        reader.read_line(&mut watch).expect("watch command");
        let mut w = stream;
        // What gpsd answers first, then the relayed NMEA (CR LF as a receiver sends it).
        w.write_all(b"{\"class\":\"VERSION\",\"release\":\"3.25\",\"proto_major\":3}\r\n")
            .expect("write");
        for line in log.lines().filter(|l| l.starts_with('$')) {
            w.write_all(format!("{line}\r\n").as_bytes())
                .expect("write");
        }
        watch
    });
    let source = format!("gpsd://{addr}");
    let mut reader = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(&source).expect("gpsd address"),
            label: source.clone(),
            speed: 1.0,
        },
    )
    .expect("reader starts");
    let watch = server.join().expect("server");
    assert_eq!(watch.trim_end(), r#"?WATCH={"enable":true,"nmea":true}"#);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reader.status().fixes < 30 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = reader.status();
    reader.stop();
    assert_eq!(status.source, source);
    assert_eq!(status.fixes, 30, "{status:?}");
    assert_eq!(
        status.sentences, 138,
        "the JSON line is not offered as NMEA"
    );
    // A live receiver's fixes keep their own time.
    let fix = status.last_fix.expect("last fix");
    let (logged_at, lat, lon) = *logged_rmc(&mt3339_log()).last().expect("fixes");
    assert_eq!(fix.fix_time, logged_at);
    assert!((fix.position.lat - lat).abs() < 1e-9 && (fix.position.lon - lon).abs() < 1e-9);
    let state = f.console.console_state().expect("state");
    let p12 = state.units.iter().find(|u| u.id == "u-12").expect("P-12");
    assert_eq!(p12.fix.as_ref().map(|x| x.fix_time), Some(logged_at));
}

/// A serial receiver: a pseudo-terminal pair stands in for the USB receiver; the reader
/// opens the terminal's device path as it would `/dev/ttyUSB0`.
#[cfg(unix)]
#[test]
fn a_serial_receiver_is_read_from_its_device_path() {
    use serialport::SerialPort;
    use std::io::Write;
    let f = fixture();
    f.console.set_field_unit("P-12").expect("field mode");
    let (mut receiver, terminal) = serialport::TTYPort::pair().expect("a pseudo-terminal");
    let device = terminal.name().expect("device path");
    drop(terminal);
    let source = format!("{device}@4800");
    let mut reader = GpsReader::start(
        Arc::clone(&f.console),
        GpsOptions {
            source: GpsSource::parse(&source).expect("a serial device"),
            label: source.clone(),
            speed: 1.0,
        },
    )
    .expect("reader starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !reader.status().connected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reader.status().connected, "{:?}", reader.status());
    let log = std::fs::read_to_string(mt3339_log()).expect("log");
    // A receiver powered on mid-sentence, then the log; garbage in between.
    receiver
        .write_all(b"8515,W,0.03,225.97*7\r\n")
        .expect("write");
    receiver
        .write_all(&[0xff, 0xfe, b'\r', b'\n'])
        .expect("write");
    for line in log.lines().filter(|l| l.starts_with('$')) {
        receiver
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }
    receiver.flush().expect("flush");
    while reader.status().fixes < 30 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = reader.status();
    reader.stop();
    assert_eq!(status.fixes, 30, "{status:?}");
    assert_eq!(status.sentences, 140, "{status:?}");
    assert!(
        status.skipped >= 2,
        "the two garbage lines are skipped: {status:?}"
    );
    let (_, lat, lon) = *logged_rmc(&mt3339_log()).last().expect("fixes");
    let fix = status.last_fix.expect("fix");
    assert!((fix.position.lat - lat).abs() < 1e-9 && (fix.position.lon - lon).abs() < 1e-9);
}

#[test]
fn buffered_fixes_reach_another_console_in_fix_order_when_the_link_returns() {
    let f = fixture();
    replay(&f);
    // The command room's console knows the same roster.
    let room_dir = tempfile::tempdir().expect("tempdir");
    let room = Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: room_dir.path().to_path_buf(),
            demo: false,
            user: "cmdr.li".into(),
        },
        f.clock.clone(),
    )
    .expect("open");
    let mut server = crate::sync::Server::new();
    // The link returns: the laptop pushes its outbox (roster, then 30 positions) ...
    server.sync(&f.console);
    assert_eq!(
        f.console.sync_status().expect("status").pending.positions,
        0
    );
    // The server's order (gseq) of the laptop's fixes is their fix order.
    let fix_times: Vec<DateTime<Utc>> = server
        .log
        .iter()
        .filter_map(|(_, op)| match &op.body {
            OpBody::PositionReport { fix, .. } => Some(fix.fix_time),
            _ => None,
        })
        .collect();
    assert_eq!(fix_times.len(), 30);
    assert!(fix_times.windows(2).all(|w| w[0] < w[1]), "{fix_times:?}");
    // ... and the command room pulls them.
    server.sync(&room);
    let laptop_track = f
        .console
        .unit_track(TrackQuery {
            unit_id: "u-12".into(),
            from: None,
            to: None,
        })
        .expect("track");
    let room_track = room
        .unit_track(TrackQuery {
            unit_id: "u-12".into(),
            from: None,
            to: None,
        })
        .expect("track");
    assert_eq!(room_track.points.len(), 30);
    assert_eq!(room_track.points, laptop_track.points);
    let state = room.console_state().expect("state");
    let p12 = state.units.iter().find(|u| u.id == "u-12").expect("P-12");
    assert_eq!(p12.fix.as_ref(), laptop_track.points.last());
}

/// The placemarks of an exported KML file (one `Document` under the root), or a panic that
/// shows the text.
fn kml_placemarks(text: &str) -> Vec<kml::types::Placemark> {
    let doc: kml::Kml = text.parse().expect("valid KML");
    let kml::Kml::KmlDocument(root) = doc else {
        panic!("not a kml root: {text}");
    };
    let [kml::Kml::Document { elements, .. }] = root.elements.as_slice() else {
        panic!("not one Document: {text}");
    };
    elements
        .iter()
        .filter_map(|e| match e {
            kml::Kml::Placemark(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}
