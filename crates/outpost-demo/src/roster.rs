//! The demo roster: stations, street police posts, checkpoints and the units homed at them.
//!
//! File format (JSON, `demo/andorra-roster.json`):
//!
//! ```json
//! { "name": "…", "modelled_on": "…",
//!   "facilities": [ { "id": "stn-alv", "kind": "station", "name_zh": "安道尔城派出所",
//!                     "name_en": "Andorra la Vella Police Station",
//!                     "street": "Avinguda de Tarragona",
//!                     "position": { "lat": 42.504614, "lon": 1.522485 } } ],
//!   "units": [ { "id": "u-01", "callsign": "安巡01", "callsign_en": "Patrol 01",
//!                "kind": "patrol_car", "home": "stn-alv", "replays_track": false } ] }
//! ```
//!
//! `kind` takes the wire names of [`FacilityKind`] and [`UnitKind`]; positions are WGS-84
//! degrees; `street` is the named OSM street the facility stands on (checked against the
//! pack in the integration test). Unknown fields are refused so a typo does not pass silently.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use outpost_domain::{Facility, FacilityKind, LatLon, UnitKind};
use serde::{Deserialize, Serialize};

/// The roster that ships with the demo (`demo/andorra-roster.json`), compiled in.
pub const ANDORRA_ROSTER_JSON: &str = include_str!("../../../demo/andorra-roster.json");

/// A roster file that cannot be used: which file and what is wrong with it, in one line.
#[derive(Debug, thiserror::Error)]
#[error("roster {file}: {problem}")]
pub struct RosterError {
    /// The file (or `<built-in>` for [`ANDORRA_ROSTER_JSON`]).
    pub file: PathBuf,
    /// What is wrong, e.g. `unit "u-03": home "stn-x" is not a facility of the roster`.
    pub problem: String,
}

/// A station, post or checkpoint of the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterFacility {
    /// Stable id, e.g. `"post-meritxell"`.
    pub id: String,
    /// Station, post or checkpoint.
    pub kind: FacilityKind,
    /// Name in Chinese.
    pub name_zh: String,
    /// Name in Latin script.
    pub name_en: String,
    /// The named street it stands on (as tagged in OpenStreetMap).
    pub street: String,
    /// Where it is (WGS-84 degrees).
    pub position: LatLon,
}

impl RosterFacility {
    /// The domain facility registered with the console.
    pub fn to_facility(&self) -> Facility {
        Facility {
            id: self.id.clone(),
            kind: self.kind,
            name_zh: self.name_zh.clone(),
            name_en: self.name_en.clone(),
            position: self.position,
        }
    }
}

/// A unit of the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterUnit {
    /// Stable id, e.g. `"u-01"`.
    pub id: String,
    /// Radio callsign in Chinese, e.g. `"安巡01"` (the one the console shows).
    pub callsign: String,
    /// The callsign in Latin script, e.g. `"Patrol 01"`.
    pub callsign_en: String,
    /// Patrol car, motorcycle, foot patrol, post team, traffic, tactical.
    pub kind: UnitKind,
    /// Id of the facility it starts from and returns to.
    pub home: String,
    /// True for the one unit that replays the real GPX track instead of random routes.
    #[serde(default)]
    pub replays_track: bool,
}

/// A validated roster: every id and callsign unique, every home a facility, positions valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// Display name.
    pub name: String,
    /// What the layout is modelled on.
    #[serde(default)]
    pub modelled_on: String,
    /// Stations, posts, checkpoints.
    pub facilities: Vec<RosterFacility>,
    /// Units.
    pub units: Vec<RosterUnit>,
}

impl Roster {
    /// The built-in Andorra roster.
    ///
    /// # Errors
    /// [`RosterError`] only if the compiled-in file is broken (a test guards against it).
    pub fn andorra() -> Result<Roster, RosterError> {
        Roster::parse(
            ANDORRA_ROSTER_JSON,
            Path::new("<built-in andorra-roster.json>"),
        )
    }

    /// Reads and validates a roster file.
    ///
    /// # Errors
    /// [`RosterError`] naming the file when it cannot be read, is not valid JSON of this
    /// shape, or breaks one of the roster's rules (see `validate`).
    pub fn load(path: &Path) -> Result<Roster, RosterError> {
        let text = std::fs::read_to_string(path).map_err(|e| RosterError {
            file: path.to_path_buf(),
            problem: format!("cannot read the file: {e}"),
        })?;
        Roster::parse(&text, path)
    }

    /// Parses and validates roster JSON; `file` is only used in error messages.
    ///
    /// # Errors
    /// As [`Roster::load`].
    pub fn parse(text: &str, file: &Path) -> Result<Roster, RosterError> {
        let roster: Roster = serde_json::from_str(text).map_err(|e| RosterError {
            file: file.to_path_buf(),
            problem: format!("not a valid roster: {e}"),
        })?;
        roster.validate().map_err(|problem| RosterError {
            file: file.to_path_buf(),
            problem,
        })?;
        Ok(roster)
    }

    /// Checks the rules a roster must keep; the error is the problem in plain words, which
    /// [`Roster::parse`] wraps in a [`RosterError`] with the file name. The first problem
    /// found: an empty roster, an empty or duplicate id or callsign, an empty name, a position
    /// outside WGS-84 ranges, a home that is not a facility, or more than one unit replaying
    /// the track.
    fn validate(&self) -> Result<(), String> {
        if self.facilities.is_empty() {
            return Err("it has no facilities".into());
        }
        if self.units.is_empty() {
            return Err("it has no units".into());
        }
        let mut facility_ids = HashSet::new();
        for f in &self.facilities {
            if f.id.trim().is_empty() {
                return Err("a facility has an empty id".into());
            }
            if !facility_ids.insert(f.id.as_str()) {
                return Err(format!("facility id {:?} appears twice", f.id));
            }
            if f.name_zh.trim().is_empty() || f.name_en.trim().is_empty() {
                return Err(format!(
                    "facility {:?} needs both name_zh and name_en",
                    f.id
                ));
            }
            if LatLon::new(f.position.lat, f.position.lon).is_err() {
                return Err(format!(
                    "facility {:?}: position {},{} is not a WGS-84 coordinate",
                    f.id, f.position.lat, f.position.lon
                ));
            }
        }
        let mut unit_ids = HashSet::new();
        let mut callsigns = HashSet::new();
        let mut trackers = 0;
        for u in &self.units {
            if u.id.trim().is_empty() {
                return Err("a unit has an empty id".into());
            }
            if !unit_ids.insert(u.id.as_str()) {
                return Err(format!("unit id {:?} appears twice", u.id));
            }
            if u.callsign.trim().is_empty() {
                return Err(format!("unit {:?} has an empty callsign", u.id));
            }
            if !callsigns.insert(u.callsign.as_str()) {
                return Err(format!("callsign {:?} appears twice", u.callsign));
            }
            if !facility_ids.contains(u.home.as_str()) {
                return Err(format!(
                    "unit {:?}: home {:?} is not a facility of the roster",
                    u.id, u.home
                ));
            }
            if u.replays_track {
                trackers += 1;
            }
        }
        if trackers > 1 {
            return Err(format!(
                "{trackers} units have replays_track; at most one may replay the GPX track"
            ));
        }
        Ok(())
    }

    /// The facility with this id.
    pub fn facility(&self, id: &str) -> Option<&RosterFacility> {
        self.facilities.iter().find(|f| f.id == id)
    }

    /// Where a unit starts: its home facility's position.
    pub fn home_of(&self, unit: &RosterUnit) -> Option<LatLon> {
        self.facility(&unit.home).map(|f| f.position)
    }

    /// How many facilities of a kind the roster has.
    pub fn count(&self, kind: FacilityKind) -> usize {
        self.facilities.iter().filter(|f| f.kind == kind).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_andorra_roster_follows_the_dongsheng_layout() {
        let r = Roster::andorra().expect("built-in roster");
        // Command centre + 2 stations, 7 posts, 3 checkpoints.
        assert_eq!(r.count(FacilityKind::Station), 3);
        assert_eq!(r.count(FacilityKind::Post), 7);
        assert_eq!(r.count(FacilityKind::Checkpoint), 3);
        assert_eq!(r.units.len(), 22);
        assert_eq!(r.units.iter().filter(|u| u.replays_track).count(), 1);
        // Every facility is inside Andorra's bounding box.
        for f in &r.facilities {
            assert!(
                (42.42..42.66).contains(&f.position.lat) && (1.40..1.79).contains(&f.position.lon),
                "{} at {:?}",
                f.id,
                f.position
            );
        }
        let u = &r.units[0];
        assert_eq!(u.callsign, "安巡01");
        assert_eq!(
            r.home_of(u),
            Some(LatLon {
                lat: 42.504614,
                lon: 1.522485
            })
        );
    }

    #[test]
    fn facilities_are_not_on_top_of_each_other() {
        let r = Roster::andorra().expect("built-in roster");
        for (i, a) in r.facilities.iter().enumerate() {
            for b in &r.facilities[i + 1..] {
                let d = a.position.distance_m(&b.position);
                assert!(d > 150.0, "{} and {} are {d:.0} m apart", a.id, b.id);
            }
        }
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "name": "t",
            "facilities": [{ "id": "s1", "kind": "station", "name_zh": "站", "name_en": "S",
                             "street": "Carrer Major", "position": { "lat": 42.5, "lon": 1.5 } }],
            "units": [{ "id": "u1", "callsign": "甲01", "callsign_en": "A01",
                        "kind": "patrol_car", "home": "s1" }]
        })
    }

    fn problem(v: &serde_json::Value) -> String {
        match Roster::parse(&v.to_string(), Path::new("r.json")) {
            Ok(_) => String::from("<ok>"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_roster_parses() {
        assert_eq!(problem(&base()), "<ok>");
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let mut v = base();
        v["units"][0]["home"] = "nowhere".into();
        assert_eq!(
            problem(&v),
            "roster r.json: unit \"u1\": home \"nowhere\" is not a facility of the roster"
        );

        let mut v = base();
        let u = v["units"][0].clone();
        let mut u2 = u.clone();
        u2["id"] = "u2".into();
        v["units"] = serde_json::json!([u, u2]);
        assert_eq!(
            problem(&v),
            "roster r.json: callsign \"甲01\" appears twice"
        );

        let mut v = base();
        v["facilities"][0]["position"]["lat"] = 95.0.into();
        assert_eq!(
            problem(&v),
            "roster r.json: facility \"s1\": position 95,1.5 is not a WGS-84 coordinate"
        );

        let mut v = base();
        v["units"][0]["kind"] = "helicopter".into();
        assert!(
            problem(&v)
                .starts_with("roster r.json: not a valid roster: unknown variant `helicopter`"),
            "{}",
            problem(&v)
        );

        let mut v = base();
        v["units"][0]["colour"] = "red".into();
        assert!(
            problem(&v).contains("unknown field `colour`"),
            "{}",
            problem(&v)
        );

        let mut v = base();
        v["units"] = serde_json::json!([]);
        assert_eq!(problem(&v), "roster r.json: it has no units");
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.json");
        let e = Roster::load(&path).expect_err("missing");
        assert_eq!(e.file, path);
        assert!(
            e.problem.starts_with("cannot read the file"),
            "{}",
            e.problem
        );
    }
}
