//! Real 911 calls as the demo's source of call types and arrival times.
//!
//! Source: `data/incidents/montco_911_sample_2016-2018.csv`, 3,051 calls of Montgomery County,
//! Pennsylvania (public records of the county's alerting service, ODbL upstream). No header;
//! columns `lat,lng,title,timestamp,township,address`; `title` is `"EMS: …"`, `"Fire: …"` or
//! `"Traffic: … -"`; `timestamp` is local time to the minute (`2016-01-15 12:01`).
//!
//! Only the call type and the arrival times are used: the demo places each call at a real
//! point in Andorra. The sample holds 34 afternoon windows of about three hours; the gap
//! between two windows (days or months) is not a real inter-arrival time, so gaps longer than
//! [`ScheduleOptions::max_gap_s`] are cut down to it.
//!
//! # Call type mapping
//!
//! The description after the prefix decides first; the prefix is the fallback.
//!
//! | Montgomery County title (any prefix unless given) | [`IncidentType`] |
//! |---|---|
//! | `VEHICLE ACCIDENT` | `traffic_accident` |
//! | `DISABLED VEHICLE`, `ROAD OBSTRUCTION`, `HAZARDOUS ROAD CONDITIONS`, `DEBRIS/FLUIDS ON HIGHWAY`, `VEHICLE LEAKING FUEL` | `traffic_hazard` |
//! | `FIRE ALARM`, `CARBON MONOXIDE DETECTOR`, `MEDICAL ALERT ALARM` | `alarm` |
//! | `ASSAULT VICTIM` | `assault` |
//! | `RESCUE - WATER` | `flood_rescue` |
//! | `RESCUE - ELEVATOR`, `ELEVATOR EMERGENCY`, `RESCUE - GENERAL`, `RESCUE - TECHNICAL` | `missing_person` (trapped person) |
//! | `FIRE POLICE NEEDED`, `FIRE SPECIAL SERVICE`, `EMS SPECIAL SERVICE`, `PUMP DETAIL` | `public_service` |
//! | `TRANSFERRED CALL` | `other` |
//! | any other title containing `FIRE`, `GAS-ODOR/LEAK`, `HAZARDOUS MATERIALS INCIDENT` | `fire` |
//! | any other `EMS: …` (e.g. `CARDIAC EMERGENCY`, `FALL VICTIM`), `Fire: CARDIAC ARREST`, `Fire: BURN VICTIM` | `medical` |
//! | any other `Traffic: …` | `traffic_hazard` |
//! | any other `Fire: …` | `fire` |
//! | anything else | `other` |

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use outpost_domain::{IncidentType, LatLon};

/// The Montgomery County sample, compiled in (`data/incidents/…csv`).
pub const MONTCO_CSV: &str =
    include_str!("../../../data/incidents/montco_911_sample_2016-2018.csv");

/// One 911 call of the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Where the call came from (WGS-84, Pennsylvania; not used for placement).
    pub origin: LatLon,
    /// The title as recorded, e.g. `"EMS: CARDIAC EMERGENCY"`.
    pub title: String,
    /// Local time of the call, minute precision.
    pub at: NaiveDateTime,
    /// Township.
    pub township: String,
    /// Address (street crossing).
    pub address: String,
}

impl CallRecord {
    /// The title with the trailing `" -"` of traffic calls removed.
    pub fn clean_title(&self) -> &str {
        self.title.trim().trim_end_matches('-').trim_end()
    }

    /// The call type in Outpost's catalogue (see the module table).
    pub fn incident_type(&self) -> IncidentType {
        map_call_type(&self.title)
    }
}

/// A CSV line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}, line {line}: {problem}")]
pub struct CallsError {
    /// The file (or `<built-in>`).
    pub file: PathBuf,
    /// 1-based line number (0 when the file could not be read at all).
    pub line: u64,
    /// What is wrong.
    pub problem: String,
}

/// Parses the headerless Montgomery County CSV.
///
/// # Errors
/// [`CallsError`] for the first line with the wrong number of fields, a coordinate that is
/// not a number, or a timestamp not in `YYYY-MM-DD HH:MM` form; `file` names the source.
pub fn parse_calls(text: &str, file: &Path) -> Result<Vec<CallRecord>, CallsError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 1;
        let err = |problem: String| CallsError {
            file: file.to_path_buf(),
            line,
            problem,
        };
        let rec = rec.map_err(|e| err(format!("not CSV: {e}")))?;
        if rec.len() != 6 {
            return Err(err(format!(
                "expected 6 fields (lat,lng,title,timestamp,township,address), found {}",
                rec.len()
            )));
        }
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| err(format!("{what} {s:?} is not a number")))
        };
        let lat = num(&rec[0], "latitude")?;
        let lon = num(&rec[1], "longitude")?;
        let origin = LatLon::new(lat, lon).map_err(|e| err(e.to_string()))?;
        let at = NaiveDateTime::parse_from_str(rec[3].trim(), "%Y-%m-%d %H:%M")
            .map_err(|_| err(format!("timestamp {:?} is not YYYY-MM-DD HH:MM", &rec[3])))?;
        if rec[2].trim().is_empty() {
            return Err(err("empty title".into()));
        }
        out.push(CallRecord {
            origin,
            title: rec[2].trim().to_string(),
            at,
            township: rec[4].trim().to_string(),
            address: rec[5].trim().to_string(),
        });
    }
    Ok(out)
}

/// The built-in sample, parsed.
///
/// # Errors
/// Only if the compiled-in file is broken (a test guards against it).
pub fn montco_calls() -> Result<Vec<CallRecord>, CallsError> {
    parse_calls(
        MONTCO_CSV,
        Path::new("<built-in montco_911_sample_2016-2018.csv>"),
    )
}

/// Maps a Montgomery County call title onto [`IncidentType`] (table in the module doc).
pub fn map_call_type(title: &str) -> IncidentType {
    let title = title.trim().trim_end_matches('-').trim_end();
    let (prefix, what) = match title.split_once(':') {
        Some((p, w)) => (p.trim(), w.trim()),
        None => ("", title),
    };
    let what_upper = what.to_uppercase();
    let w = what_upper.as_str();
    match w {
        "VEHICLE ACCIDENT" => return IncidentType::TrafficAccident,
        "DISABLED VEHICLE"
        | "ROAD OBSTRUCTION"
        | "HAZARDOUS ROAD CONDITIONS"
        | "DEBRIS/FLUIDS ON HIGHWAY"
        | "VEHICLE LEAKING FUEL" => return IncidentType::TrafficHazard,
        "FIRE ALARM" | "CARBON MONOXIDE DETECTOR" | "MEDICAL ALERT ALARM" => {
            return IncidentType::Alarm;
        }
        "ASSAULT VICTIM" => return IncidentType::Assault,
        "RESCUE - WATER" => return IncidentType::FloodRescue,
        "RESCUE - ELEVATOR" | "ELEVATOR EMERGENCY" | "RESCUE - GENERAL" | "RESCUE - TECHNICAL" => {
            return IncidentType::MissingPerson;
        }
        "FIRE POLICE NEEDED" | "FIRE SPECIAL SERVICE" | "EMS SPECIAL SERVICE" | "PUMP DETAIL" => {
            return IncidentType::PublicService;
        }
        "TRANSFERRED CALL" => return IncidentType::Other,
        "CARDIAC ARREST" | "BURN VICTIM" => return IncidentType::Medical,
        _ => {}
    }
    if w.contains("FIRE") || w == "GAS-ODOR/LEAK" || w == "HAZARDOUS MATERIALS INCIDENT" {
        return IncidentType::Fire;
    }
    match prefix.to_uppercase().as_str() {
        "EMS" => IncidentType::Medical,
        "TRAFFIC" => IncidentType::TrafficHazard,
        "FIRE" => IncidentType::Fire,
        _ => IncidentType::Other,
    }
}

/// How recorded inter-arrival times become demo delays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleOptions {
    /// Recorded seconds per demo second: 60 plays a real hour in one minute.
    pub speedup: f64,
    /// Recorded gaps longer than this (seconds) are cut to it before compression: the sample
    /// jumps between afternoons weeks apart.
    pub max_gap_s: f64,
    /// Shortest demo delay between two calls (seconds), so calls recorded in the same minute
    /// do not land in one burst.
    pub min_delay_s: f64,
}

impl Default for ScheduleOptions {
    /// 3× speed-up (a recorded hour in 20 minutes): the county takes about 23 calls an hour
    /// in these windows, far more than a town of Andorra's size, so 3× gives one call about
    /// every 50 s on average with the real bursts and lulls. Gaps cut at 30 min, floor 3 s.
    fn default() -> Self {
        Self {
            speedup: 3.0,
            max_gap_s: 1800.0,
            min_delay_s: 3.0,
        }
    }
}

/// Demo delays in seconds: element `i` is the wait after call `i` before call `i + 1`
/// (so one fewer than `calls`). Recorded gap, cut at `max_gap_s`, divided by `speedup`,
/// at least `min_delay_s`. Calls out of time order count as a zero gap.
pub fn compress_schedule(calls: &[CallRecord], opts: ScheduleOptions) -> Vec<f64> {
    let speedup = if opts.speedup.is_finite() && opts.speedup > 0.0 {
        opts.speedup
    } else {
        1.0
    };
    calls
        .windows(2)
        .map(|w| {
            let gap = (w[1].at - w[0].at).num_seconds().max(0) as f64;
            (gap.min(opts.max_gap_s) / speedup).max(opts.min_delay_s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
40.0883549,-75.3821004,EMS: ABDOMINAL PAINS,2016-01-15 12:01,UPPER MERION,DEKALB PIKE & ALLENDALE RD
40.1224422,-75.3383233,EMS: FALL VICTIM,2016-01-15 12:01,NORRISTOWN,POWELL ST & E SPRUCE ST
40.1130061,-75.3257222,Fire: UNKNOWN TYPE FIRE,2016-01-15 12:06,NORRISTOWN,SANDY ST & KELLY DR
40.2518845,-75.6528626,Traffic: VEHICLE ACCIDENT -,2016-02-15 12:07,POTTSTOWN,3RD ST & JOHNSON ST
";

    #[test]
    fn parses_the_headerless_csv() {
        let calls = parse_calls(SAMPLE, Path::new("s.csv")).expect("parse");
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[0].title, "EMS: ABDOMINAL PAINS");
        assert_eq!(calls[0].origin.lat, 40.0883549);
        assert_eq!(calls[0].origin.lon, -75.3821004);
        assert_eq!(calls[0].township, "UPPER MERION");
        assert_eq!(calls[0].address, "DEKALB PIKE & ALLENDALE RD");
        assert_eq!(calls[2].at.to_string(), "2016-01-15 12:06:00");
        assert_eq!(calls[3].clean_title(), "Traffic: VEHICLE ACCIDENT");
        assert_eq!(calls[3].incident_type(), IncidentType::TrafficAccident);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_calls(
            "40.1,-75.3,EMS: FALL VICTIM,2016-01-15 12:01,A,B\n40.1,-75.3,EMS: X,15/01/2016,A,B\n",
            Path::new("s.csv"),
        )
        .expect_err("bad timestamp");
        assert_eq!(
            e.to_string(),
            "s.csv, line 2: timestamp \"15/01/2016\" is not YYYY-MM-DD HH:MM"
        );
        let e = parse_calls("x,-75.3,EMS: X,2016-01-15 12:01,A,B\n", Path::new("s.csv"))
            .expect_err("bad lat");
        assert_eq!(
            e.to_string(),
            "s.csv, line 1: latitude \"x\" is not a number"
        );
        let e = parse_calls("40.1,-75.3,EMS: X\n", Path::new("s.csv")).expect_err("short");
        assert!(e.to_string().contains("expected 6 fields"), "{e}");
    }

    #[test]
    fn the_built_in_sample_is_complete() {
        let calls = montco_calls().expect("built-in");
        assert_eq!(calls.len(), 3051);
        let count = |p: &str| calls.iter().filter(|c| c.title.starts_with(p)).count();
        assert_eq!(count("Traffic:"), 1545);
        assert_eq!(count("EMS:"), 1155);
        assert_eq!(count("Fire:"), 351);
        // Every call maps to a type other than "other" except the one transferred call.
        let other = calls
            .iter()
            .filter(|c| c.incident_type() == IncidentType::Other)
            .count();
        assert_eq!(other, 1);
    }

    #[test]
    fn mapping_table() {
        use IncidentType::*;
        let cases = [
            ("EMS: CARDIAC EMERGENCY", Medical),
            ("EMS: FALL VICTIM", Medical),
            ("EMS: VEHICLE ACCIDENT", TrafficAccident),
            ("Traffic: VEHICLE ACCIDENT -", TrafficAccident),
            ("Fire: VEHICLE ACCIDENT", TrafficAccident),
            ("Traffic: DISABLED VEHICLE -", TrafficHazard),
            ("Traffic: ROAD OBSTRUCTION -", TrafficHazard),
            ("Traffic: HAZARDOUS ROAD CONDITIONS -", TrafficHazard),
            ("Fire: DEBRIS/FLUIDS ON HIGHWAY", TrafficHazard),
            ("Fire: VEHICLE LEAKING FUEL", TrafficHazard),
            ("Traffic: VEHICLE FIRE -", Fire),
            ("Fire: BUILDING FIRE", Fire),
            ("EMS: BUILDING FIRE", Fire),
            ("Fire: WOODS/FIELD FIRE", Fire),
            ("Fire: GAS-ODOR/LEAK", Fire),
            ("Fire: FIRE INVESTIGATION", Fire),
            ("EMS: HAZARDOUS MATERIALS INCIDENT", Fire),
            ("Fire: FIRE ALARM", Alarm),
            ("Fire: CARBON MONOXIDE DETECTOR", Alarm),
            ("EMS: MEDICAL ALERT ALARM", Alarm),
            ("EMS: ASSAULT VICTIM", Assault),
            ("Fire: RESCUE - WATER", FloodRescue),
            ("EMS: RESCUE - WATER", FloodRescue),
            ("Fire: RESCUE - ELEVATOR", MissingPerson),
            ("Fire: ELEVATOR EMERGENCY", MissingPerson),
            ("Fire: FIRE POLICE NEEDED", PublicService),
            ("EMS: EMS SPECIAL SERVICE", PublicService),
            ("Fire: PUMP DETAIL", PublicService),
            ("Fire: TRANSFERRED CALL", Other),
            ("Fire: CARDIAC ARREST", Medical),
            ("Fire: BURN VICTIM", Medical),
            ("Traffic: SOMETHING NEW -", TrafficHazard),
            ("Fire: SOMETHING NEW", Fire),
            ("Police: THEFT", Other),
            ("", Other),
        ];
        for (title, want) in cases {
            assert_eq!(map_call_type(title), want, "{title}");
        }
    }

    #[test]
    fn schedule_compression() {
        let calls = parse_calls(SAMPLE, Path::new("s.csv")).expect("parse");
        let opts = ScheduleOptions {
            speedup: 60.0,
            max_gap_s: 1800.0,
            min_delay_s: 0.5,
        };
        // Gaps: 0 s (same minute), 300 s, a month (cut to 1800 s).
        assert_eq!(compress_schedule(&calls, opts), vec![0.5, 5.0, 30.0]);
        let opts = ScheduleOptions {
            speedup: 4.0,
            ..opts
        };
        assert_eq!(compress_schedule(&calls, opts), vec![0.5, 75.0, 450.0]);
        // Nonsense speed-up falls back to real time rather than dividing by zero.
        let opts = ScheduleOptions {
            speedup: 0.0,
            ..opts
        };
        assert_eq!(compress_schedule(&calls, opts), vec![0.5, 300.0, 1800.0]);
        assert!(compress_schedule(&calls[..1], opts).is_empty());
    }

    #[test]
    fn the_default_schedule_has_plausible_pace() {
        let calls = montco_calls().expect("built-in");
        let delays = compress_schedule(&calls, ScheduleOptions::default());
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((15.0..90.0).contains(&mean), "mean delay {mean:.1} s");
    }
}
