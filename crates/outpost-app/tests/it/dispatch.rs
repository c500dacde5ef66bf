//! Dispatch intelligence through `Console` on the real Andorra pack: closest units by road
//! ETA, road closures (drawn, expiring, lifted, synced through a real server), the field
//! laptop's route and the 1-3-5 coverage.
//!
//! The places (WGS-84) were checked by hand on the map and against a plain Dijkstra over
//! the pack's roads: the incident is in the centre of Andorra la Vella; P-01 waits on
//! Avinguda Consell d'Europa 0.9 km east (about a minute by road along the valley); P-02 in
//! Santa Coloma 2.3 km south-west (about three minutes along the CG-1); P-03 on the hillside
//! road south-east of the centre, the nearest in a straight line (0.7 km) but four to five
//! minutes by road up the switchbacks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use chrono::{DateTime, Duration, TimeZone, Utc};

use outpost_app::ipc::{
    ClosestUnits, ClosureRef, ErrorCode, EtaProblemKind, IncidentDetail, IncidentRef, NewIncident,
    NewRoadClosure, RoadLineQuery, UnitEta, UnitOnIncident,
};
use outpost_app::{AppError, Console, ConsoleOptions};
use outpost_domain::clock::FixedClock;
use outpost_domain::facility::{Facility, FacilityKind};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::IncidentType;
use outpost_domain::op::Fix;
use outpost_domain::road_closure::ClosureShape;
use outpost_domain::unit::UnitKind;
use outpost_geo::Pack;
use outpost_store::query;

/// The incident: the centre of Andorra la Vella.
const INCIDENT: LatLon = LatLon {
    lat: 42.5063,
    lon: 1.5218,
};
/// Avinguda Consell d'Europa, 0.9 km east of the incident: nearest by road.
const P01_AT: LatLon = LatLon {
    lat: 42.509_570_7,
    lon: 1.531_964_4,
};
/// Santa Coloma, 2.3 km south-west.
const P02_AT: LatLon = LatLon {
    lat: 42.494_480_8,
    lon: 1.498_314_7,
};
/// The hillside road south-east of the centre: 0.7 km in a straight line, the nearest.
const P03_AT: LatLon = LatLon {
    lat: 42.502_148_6,
    lon: 1.528_096_2,
};
/// About 100 km south of Andorra, far from every road of the pack.
const FAR_AWAY: LatLon = LatLon {
    lat: 41.6,
    lon: 1.52,
};
/// La Massana, 4.3 km north of the centre, outside the centre's 3-minute area.
const LA_MASSANA: LatLon = LatLon {
    lat: 42.545_045,
    lon: 1.514_92,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
}

/// The Andorra extract: the project's copy, or the shared data beside the clone.
fn andorra_osm() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        root.join("data/osm/andorra.osm.pbf"),
        root.join("../shared/data/osm/andorra.osm.pbf"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("no Andorra extract at {candidates:?}"))
}

/// One Andorra pack per build of this test binary (nextest runs each test in its own
/// process): named after the binary's modification time, reused when it opens, otherwise
/// built (`build_pack` renames a complete pack into place, so a concurrent duplicate build
/// is harmless). Packs of earlier builds are removed.
fn andorra_pack() -> &'static Path {
    static PACK: OnceLock<PathBuf> = OnceLock::new();
    PACK.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(dir).expect("scratch dir");
        let built = std::env::current_exe()
            .and_then(|exe| exe.metadata())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let path = dir.join(format!("outpost-app-andorra-{built}.outpost"));
        if Pack::open(&path).is_ok() {
            return path;
        }
        // build_pack writes a temporary file beside `path` and renames it into place, so a
        // concurrent duplicate build is harmless.
        let mut opts = outpost_geo::BuildOptions::new(andorra_osm(), &path);
        opts.name = Some("Andorra".into());
        opts.progress = false;
        outpost_geo::build_pack(&opts).expect("build the Andorra pack");
        // Packs of earlier builds of this binary are no longer used.
        let stamp = format!("-{built}.");
        for old in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            if name.starts_with("outpost-app-andorra-") && !name.contains(&stamp) {
                let _ = std::fs::remove_file(old.path());
            }
        }
        path
    })
}

fn open(dir: &Path, clock: &Arc<FixedClock>, user: &str) -> Console {
    let console = Console::open(
        ConsoleOptions {
            pack: Some(andorra_pack().to_path_buf()),
            data_dir: dir.to_path_buf(),
            demo: false,
            user: user.into(),
        },
        clock.clone(),
    )
    .expect("open console");
    assert!(console.pack().is_some(), "the Andorra pack opens");
    console
}

fn fix_at(at: LatLon, when: DateTime<Utc>) -> Fix {
    Fix {
        position: at,
        fix_time: when,
        heading_deg: None,
        speed_mps: None,
        accuracy_m: None,
    }
}

fn patrol(c: &Console, id: &str, callsign: &str, at: Option<LatLon>) {
    c.register_unit(id, callsign, UnitKind::PatrolCar, None)
        .expect("register unit");
    if let Some(at) = at {
        c.report_position(id, fix_at(at, t0() - Duration::seconds(30)))
            .expect("report position");
    }
}

fn incident_at(c: &Console, at: LatLon) -> IncidentDetail {
    c.create_incident(NewIncident {
        incident_type: IncidentType::TrafficAccident,
        priority: None,
        location: at,
        address: "Andorra la Vella".into(),
        description: "two cars".into(),
    })
    .expect("create incident")
}

fn closest(c: &Console, inc: &IncidentDetail) -> ClosestUnits {
    c.closest_units(IncidentRef {
        incident_id: inc.summary.id.clone(),
    })
    .expect("closest units")
}

fn unit<'a>(r: &'a ClosestUnits, id: &str) -> &'a UnitEta {
    r.candidates
        .iter()
        .find(|u| u.unit_id == id)
        .unwrap_or_else(|| panic!("{id} is a candidate: {r:?}"))
}

fn eta(r: &ClosestUnits, id: &str) -> f64 {
    unit(r, id)
        .eta_s
        .unwrap_or_else(|| panic!("{id} has an ETA: {:?}", unit(r, id)))
}

/// Committed ops in the outbox (read through a second connection).
fn outbox_len(dir: &Path) -> usize {
    let store = outpost_store::Store::open(&dir.join("outpost.db"), t0()).expect("open store");
    query::outbox_all(store.conn()).expect("outbox").len()
}

/// A stretch of the route's line around its middle (points on the road itself).
fn middle_of(line: &[LatLon]) -> Vec<LatLon> {
    assert!(line.len() >= 4, "a route with a few points: {line:?}");
    let mid = line.len() / 2;
    line[mid - 1..=mid + 1].to_vec()
}

fn closure(shape: ClosureShape, reason: &str, ends_at: Option<DateTime<Utc>>) -> NewRoadClosure {
    NewRoadClosure {
        closure_id: None,
        shape,
        reason: reason.into(),
        ends_at,
    }
}

fn code(r: Result<impl std::fmt::Debug, AppError>) -> (ErrorCode, String) {
    let e = r.expect_err("refused");
    (e.code, e.message)
}

#[test]
fn ranking_by_road_eta_and_road_closures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let c = open(dir.path(), &clock, "cmdr.li");
    patrol(&c, "u-01", "P-01", Some(P01_AT));
    patrol(&c, "u-02", "P-02", Some(P02_AT));
    patrol(&c, "u-03", "P-03", Some(P03_AT));
    patrol(&c, "u-04", "P-04", Some(INCIDENT)); // right there, but busy
    patrol(&c, "u-05", "P-05", None); // never reported
    patrol(&c, "u-06", "P-06", Some(FAR_AWAY));
    let inc = incident_at(&c, INCIDENT);
    let other = incident_at(&c, P02_AT);
    c.assign_unit(UnitOnIncident {
        incident_id: other.summary.id.clone(),
        unit_id: "u-04".into(),
    })
    .expect("dispatch P-04 elsewhere");

    let r = closest(&c, &inc);
    let again = closest(&c, &inc);
    assert_eq!(r.unavailable, None);
    assert_eq!(r.closures_active, 0);
    assert_eq!(r.incident_id, inc.summary.id);
    let order: Vec<&str> = r.candidates.iter().map(|u| u.callsign.as_str()).collect();
    // Busy P-04 is no candidate; by road P-01, P-02, P-03; then off the roads, no position.
    assert_eq!(order, ["P-01", "P-02", "P-03", "P-06", "P-05"], "{r:#?}");
    let (e1, e2, e3) = (eta(&r, "u-01"), eta(&r, "u-02"), eta(&r, "u-03"));
    assert!((20.0..=180.0).contains(&e1), "P-01 ETA {e1} s");
    assert!((90.0..=420.0).contains(&e2), "P-02 ETA {e2} s");
    assert!((150.0..=720.0).contains(&e3), "P-03 ETA {e3} s");
    assert!(e1 < e2 && e2 < e3, "strictly increasing: {e1} {e2} {e3}");
    // P-03 is the nearest in a straight line, yet last by road.
    let straight = |id: &str| unit(&r, id).straight_m.expect("straight line");
    assert!(straight("u-03") < straight("u-01") && straight("u-03") < straight("u-02"));
    assert!(
        (600.0..=800.0).contains(&straight("u-03")),
        "{}",
        straight("u-03")
    );
    for id in ["u-01", "u-02", "u-03"] {
        let u = unit(&r, id);
        assert_eq!(u.problem, None);
        let d = u.distance_m.expect("road distance");
        assert!(
            d >= straight(id) * 0.95,
            "{id}: road {d} m vs straight {}",
            straight(id)
        );
        let line = u.route.as_ref().expect("the top units get a route");
        assert_eq!(
            line.first(),
            Some(&unit(&r, id).fix.as_ref().expect("fix").position)
        );
        assert_eq!(line.last(), Some(&INCIDENT));
    }
    let far = unit(&r, "u-06");
    assert_eq!(far.problem, Some(EtaProblemKind::NoRoad));
    assert!(far.problem_detail.is_some() && far.eta_s.is_none() && far.route.is_none());
    let none = unit(&r, "u-05");
    assert_eq!(none.problem, Some(EtaProblemKind::NoPosition));
    assert!(none.fix.is_none() && none.straight_m.is_none() && none.eta_s.is_none());
    // Asking again while nothing changed gives the same ranking.
    assert_eq!(
        again.candidates.iter().map(|u| u.eta_s).collect::<Vec<_>>(),
        r.candidates.iter().map(|u| u.eta_s).collect::<Vec<_>>()
    );
    // Unknown incidents are refused.
    for bad in [uuid::Uuid::now_v7().to_string(), "nonsense".to_string()] {
        let (code, _) = code(c.closest_units(IncidentRef { incident_id: bad }));
        assert_eq!(code, ErrorCode::NotFound);
    }

    // A closure drawn on P-01's route (as the commander draws it: clicks snapped to the road).
    let p01_route = unit(&r, "u-01").route.clone().expect("route");
    let line = c
        .road_line(RoadLineQuery {
            points: middle_of(&p01_route),
        })
        .expect("road line");
    assert!(line.len() >= 2);
    let before_outbox = outbox_len(dir.path());
    let set = c
        .set_road_closure(closure(
            ClosureShape::Line {
                points: line.clone(),
            },
            "  积水 0.8 m  ",
            None,
        ))
        .expect("closure set");
    assert_eq!(outbox_len(dir.path()), before_outbox + 1, "one op");
    assert_eq!(set.closure.reason, "积水 0.8 m");
    assert!(set.active && !set.closure.lifted);
    assert!(set.closed_segments >= 1, "{set:?}");
    assert_eq!(set.set_by, "cmdr.li");
    let closed = closest(&c, &inc);
    assert_eq!(closed.closures_active, 1);
    for (id, before) in [("u-01", e1), ("u-02", e2), ("u-03", e3)] {
        let u = unit(&closed, id);
        match u.eta_s {
            Some(after) => assert!(after >= before, "{id}: {before} -> {after} s"),
            None => {
                assert_eq!(u.problem, Some(EtaProblemKind::ClosedOff));
                assert!(
                    u.problem_detail
                        .as_deref()
                        .unwrap_or("")
                        .contains("积水 0.8 m")
                );
            }
        }
    }
    let p01 = unit(&closed, "u-01");
    assert!(
        p01.eta_s.is_none_or(|after| after > e1),
        "the closure is on P-01's route: {e1} -> {:?}",
        p01.eta_s
    );

    // Lifting restores the exact ETAs.
    let lifted = c
        .lift_road_closure(ClosureRef {
            closure_id: set.closure.closure_id.to_string(),
        })
        .expect("lift");
    assert!(lifted.closure.lifted && !lifted.active);
    let after_lift = outbox_len(dir.path());
    let twice = c
        .lift_road_closure(ClosureRef {
            closure_id: set.closure.closure_id.to_string(),
        })
        .expect("lift again");
    assert_eq!(twice, lifted, "lifting again changes nothing");
    assert_eq!(outbox_len(dir.path()), after_lift, "and writes nothing");
    let open_again = closest(&c, &inc);
    assert_eq!(open_again.closures_active, 0);
    assert_eq!(eta(&open_again, "u-01"), e1);
    assert_eq!(eta(&open_again, "u-02"), e2);
    assert_eq!(eta(&open_again, "u-03"), e3);

    // A closure with an expected end applies until then, not after.
    clock.set(t0() + Duration::minutes(1));
    let timed = c
        .set_road_closure(closure(
            ClosureShape::Line { points: line },
            "road works",
            Some(t0() + Duration::minutes(10)),
        ))
        .expect("timed closure");
    assert!(timed.active);
    let during = closest(&c, &inc);
    assert_eq!(during.closures_active, 1);
    assert!(unit(&during, "u-01").eta_s.is_none_or(|a| a > e1));
    let listed = c.road_closures().expect("closures");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].closure.closure_id, timed.closure.closure_id,
        "active first"
    );
    assert!(listed[0].active && !listed[1].active);
    clock.set(t0() + Duration::minutes(11));
    let after = closest(&c, &inc);
    assert_eq!(after.closures_active, 0);
    assert_eq!(
        eta(&after, "u-01"),
        e1,
        "the ended closure no longer applies"
    );
    let listed = c.road_closures().expect("closures");
    assert!(listed.iter().all(|v| !v.active), "{listed:?}");
    // Newest set first among the inactive ones.
    assert_eq!(listed[0].closure.closure_id, timed.closure.closure_id);

    // An area closed all around the incident cuts every unit off, and says why.
    let d = 0.003;
    let around = ClosureShape::Area {
        ring: vec![
            LatLon {
                lat: INCIDENT.lat - d,
                lon: INCIDENT.lon - d,
            },
            LatLon {
                lat: INCIDENT.lat - d,
                lon: INCIDENT.lon + d,
            },
            LatLon {
                lat: INCIDENT.lat + d,
                lon: INCIDENT.lon + d,
            },
            LatLon {
                lat: INCIDENT.lat + d,
                lon: INCIDENT.lon - d,
            },
        ],
    };
    c.set_road_closure(closure(around, "flood in the old town", None))
        .expect("area closure");
    let cut = closest(&c, &inc);
    assert_eq!(cut.unavailable, None);
    let order: Vec<&str> = cut.candidates.iter().map(|u| u.callsign.as_str()).collect();
    // Cut off (by straight line), then off the roads, then without a position.
    assert_eq!(order, ["P-03", "P-01", "P-02", "P-06", "P-05"], "{cut:#?}");
    for id in ["u-01", "u-02", "u-03"] {
        let u = unit(&cut, id);
        assert_eq!(u.problem, Some(EtaProblemKind::ClosedOff), "{u:?}");
        assert!(u.eta_s.is_none() && u.route.is_none());
        let detail = u.problem_detail.as_deref().unwrap_or("");
        assert!(detail.contains("flood in the old town"), "{detail}");
    }
}

#[test]
fn without_a_pack_routing_is_unavailable_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let c = Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.path().to_path_buf(),
            demo: false,
            user: "cmdr.li".into(),
        },
        clock,
    )
    .expect("open console");
    patrol(&c, "u-01", "P-01", Some(P01_AT));
    patrol(&c, "u-03", "P-03", Some(P03_AT));
    patrol(&c, "u-05", "P-05", None);
    let inc = incident_at(&c, INCIDENT);
    let r = closest(&c, &inc);
    let why = r.unavailable.as_deref().expect("unavailable");
    assert!(why.contains("no area pack"), "{why}");
    // Listed by straight line, no ETA.
    let order: Vec<&str> = r.candidates.iter().map(|u| u.callsign.as_str()).collect();
    assert_eq!(order, ["P-03", "P-01", "P-05"]);
    assert!(r.candidates.iter().all(|u| u.eta_s.is_none()));
    let cov = c.coverage().expect("coverage");
    assert!(cov.unavailable.is_some() && cov.share.is_empty());
    let (code1, _) = code(c.road_line(RoadLineQuery {
        points: vec![INCIDENT, P01_AT],
    }));
    assert_eq!(code1, ErrorCode::Pack);
    // Closures can still be drawn (they sync to consoles that have the pack).
    let set = c
        .set_road_closure(closure(
            ClosureShape::Line {
                points: vec![INCIDENT, P01_AT],
            },
            "flood",
            None,
        ))
        .expect("closure without a pack");
    assert_eq!(set.closed_segments, 0);
    assert!(set.active);
}

#[test]
fn coverage_and_the_field_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let c = open(dir.path(), &clock, "cmdr.li");
    c.register_facility(Facility {
        id: "stn-centre".into(),
        kind: FacilityKind::Station,
        name_zh: "中心站".into(),
        name_en: "Centre station".into(),
        position: INCIDENT,
    })
    .expect("station");
    let base = c.coverage().expect("coverage");
    assert_eq!(base.unavailable, None);
    assert_eq!(
        (base.facilities, base.units, base.closures_active),
        (1, 0, 0)
    );
    assert_eq!(base.share.len(), 3);
    assert_eq!(base.reached_m.len(), 3);
    assert_eq!(base.bands.len(), 4);
    assert!(
        base.total_m > 100_000.0,
        "Andorra has hundreds of km of roads"
    );
    // The figure counts available units only: none yet, so nothing is covered; the layer
    // (share_with_facilities) counts the station.
    assert_eq!(base.share, vec![0.0, 0.0, 0.0]);
    assert_eq!(base.reached_m, vec![0.0, 0.0, 0.0]);
    let sf = &base.share_with_facilities;
    assert!(0.0 < sf[0] && sf[0] <= sf[1] && sf[1] <= sf[2], "{sf:?}");
    assert!(
        sf[2] < 1.0,
        "one station does not cover Andorra in 5 minutes"
    );
    assert!(!base.bands[3].is_empty(), "holes are drawn");
    let cached = c.coverage().expect("coverage again");
    assert_eq!(cached.share_with_facilities, base.share_with_facilities);

    // A checkpoint guards an entry road: not a source.
    c.register_facility(Facility {
        id: "chk-north".into(),
        kind: FacilityKind::Checkpoint,
        name_zh: "北检查站".into(),
        name_en: "North checkpoint".into(),
        position: LA_MASSANA,
    })
    .expect("checkpoint");
    let with_chk = c.coverage().expect("coverage with a checkpoint");
    assert_eq!(with_chk.facilities, 1);
    assert_eq!(with_chk.share_with_facilities, base.share_with_facilities);

    // An available unit in La Massana, outside the station's 3-minute area: the figure
    // rises from 0, and the layer's share too.
    patrol(&c, "u-07", "P-07", Some(LA_MASSANA));
    let more = c.coverage().expect("coverage with P-07");
    assert_eq!((more.facilities, more.units), (1, 1));
    assert!(
        more.share[0] > 0.0 && more.share[0] <= more.share[1] && more.share[1] <= more.share[2],
        "{:?}",
        more.share
    );
    assert!(
        more.share_with_facilities[1] > base.share_with_facilities[1],
        "{:?} -> {:?}",
        base.share_with_facilities,
        more.share_with_facilities
    );
    // The unit's own share is below the layer's (which adds the station).
    assert!(more.share[1] < more.share_with_facilities[1]);

    // Dispatched, P-07 no longer covers its area: the figure falls back to 0.
    let inc = incident_at(&c, INCIDENT);
    c.assign_unit(UnitOnIncident {
        incident_id: inc.summary.id.clone(),
        unit_id: "u-07".into(),
    })
    .expect("dispatch P-07");
    let busy = c.coverage().expect("coverage with P-07 busy");
    assert_eq!(busy.units, 0);
    assert_eq!(busy.share, vec![0.0, 0.0, 0.0]);
    assert_eq!(busy.share_with_facilities, base.share_with_facilities);

    // The field laptop of P-07 routes to its assignment; P-08 without one gets none.
    assert_eq!(c.field_route().expect("not a field laptop"), None);
    c.set_field_unit("P-07").expect("field mode");
    let route = c.field_route().expect("field route").expect("assigned");
    assert_eq!(route.incident_id, inc.summary.id);
    assert_eq!(route.problem, None);
    let r = route.route.expect("a route");
    assert!(
        (120.0..=900.0).contains(&r.eta_s),
        "La Massana to the centre: {} s",
        r.eta_s
    );
    assert!(r.distance_m > LA_MASSANA.distance_m(&INCIDENT));
    assert_eq!(r.line.first(), Some(&LA_MASSANA));
    assert_eq!(r.line.last(), Some(&INCIDENT));
    patrol(&c, "u-08", "P-08", Some(P01_AT));
    c.set_field_unit("P-08").expect("field mode");
    assert_eq!(c.field_route().expect("no assignment"), None);
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let c = open(dir.path(), &clock, "cmdr.li");
    let before = outbox_len(dir.path());
    let line = |points: Vec<LatLon>| c.road_line(RoadLineQuery { points });

    let (code1, msg) = code(line(vec![INCIDENT]));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(
        msg.contains("2 to 50 points") && msg.contains("not 1"),
        "{msg}"
    );
    let (code1, msg) = code(line(vec![INCIDENT; 51]));
    assert_eq!(code1, ErrorCode::InvalidInput, "{msg}");
    let nan = LatLon {
        lat: f64::NAN,
        lon: 1.52,
    };
    let (code1, msg) = code(line(vec![INCIDENT, nan]));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.starts_with("points[1]"), "{msg}");
    let (code1, msg) = code(line(vec![INCIDENT, P01_AT, FAR_AWAY]));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(
        msg.starts_with("points[2]") && msg.contains(" m from"),
        "{msg}"
    );
    let good = line(vec![INCIDENT, P01_AT]).expect("a road line");
    assert!(good.len() >= 2);
    // Two identical clicks close no stretch of road.
    let (code1, msg) = code(line(vec![INCIDENT, INCIDENT]));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.contains("same place on the road"), "{msg}");

    let set = |shape: ClosureShape, reason: &str, ends_at, id: Option<String>| {
        c.set_road_closure(NewRoadClosure {
            closure_id: id,
            shape,
            reason: reason.into(),
            ends_at,
        })
    };
    let road = ClosureShape::Line {
        points: good.clone(),
    };
    // A line 100 km from Andorra closes no road of the pack: refused, not listed as active.
    let nowhere = ClosureShape::Line {
        points: vec![
            FAR_AWAY,
            LatLon {
                lat: FAR_AWAY.lat + 0.001,
                lon: FAR_AWAY.lon,
            },
        ],
    };
    let (code1, msg) = code(set(nowhere, "积水", None, None));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.contains("closes no drivable road"), "{msg}");
    let (code1, msg) = code(set(road.clone(), "   ", None, None));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.contains("reason"), "{msg}");
    let (code1, msg) = code(set(
        ClosureShape::Line {
            points: vec![INCIDENT],
        },
        "flood",
        None,
        None,
    ));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.contains("shape.points has 1 points"), "{msg}");
    let (code1, msg) = code(set(
        ClosureShape::Area {
            ring: vec![INCIDENT, P01_AT, nan],
        },
        "flood",
        None,
        None,
    ));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.starts_with("shape.ring[2]"), "{msg}");
    let (code1, msg) = code(set(
        road.clone(),
        "flood",
        None,
        Some(uuid::Uuid::now_v7().to_string()),
    ));
    assert_eq!(code1, ErrorCode::NotFound, "{msg}");
    let (code1, msg) = code(set(road.clone(), "flood", None, Some("x".into())));
    assert_eq!(code1, ErrorCode::NotFound, "{msg}");
    let (code1, msg) = code(set(road.clone(), "flood", Some(t0()), None));
    assert_eq!(code1, ErrorCode::InvalidInput);
    assert!(msg.contains("expected end is already past"), "{msg}");
    let (code1, _) = code(c.lift_road_closure(ClosureRef {
        closure_id: uuid::Uuid::now_v7().to_string(),
    }));
    assert_eq!(code1, ErrorCode::NotFound);
    assert_eq!(outbox_len(dir.path()), before, "refusals write nothing");
    assert!(c.road_closures().expect("closures").is_empty());

    // A change of an existing closure keeps its id and replaces its value.
    let first = set(road.clone(), "flood", None, None).expect("closure");
    let changed = set(
        ClosureShape::Area {
            ring: vec![
                LatLon {
                    lat: 42.505,
                    lon: 1.520,
                },
                LatLon {
                    lat: 42.505,
                    lon: 1.523,
                },
                LatLon {
                    lat: 42.507,
                    lon: 1.523,
                },
            ],
        },
        "flood, wider",
        Some(t0() + Duration::hours(2)),
        Some(first.closure.closure_id.to_string()),
    )
    .expect("changed");
    assert_eq!(changed.closure.closure_id, first.closure.closure_id);
    assert_eq!(changed.closure.reason, "flood, wider");
    assert!(changed.active);
    assert_eq!(outbox_len(dir.path()), before + 2);
    let all = c.road_closures().expect("closures");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0], changed);

    // Lifting is final: setting a lifted closure's id again is refused (it does not
    // reactivate it) and names who lifted it and when; nothing is written.
    let id = first.closure.closure_id;
    let lifted = c
        .lift_road_closure(ClosureRef {
            closure_id: id.to_string(),
        })
        .expect("lift");
    assert!(lifted.closure.lifted && !lifted.active);
    let (code1, msg) = code(set(road.clone(), "flood again", None, Some(id.to_string())));
    assert_eq!(code1, ErrorCode::IllegalTransition, "{msg}");
    assert_eq!(
        msg,
        format!(
            "closure {id} was lifted by cmdr.li at {}; draw a new closure",
            t0().to_rfc3339()
        )
    );
    assert_eq!(
        outbox_len(dir.path()),
        before + 3,
        "only the lift was written"
    );
    assert_eq!(c.road_closures().expect("closures"), vec![lifted]);
    // A new closure on the same road is the way to close it again.
    let fresh = set(road.clone(), "flood again", None, None).expect("new closure");
    assert_ne!(fresh.closure.closure_id, id);
    assert!(fresh.active);
}

#[test]
fn a_closure_reaches_another_console_through_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = outpost_server::Server::start(outpost_server::ServerConfig::plain_for_tests(
        tmp.path().join("server"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .expect("server starts");
    let url = server.url();
    let clock = Arc::new(FixedClock::new(t0()));
    let a = open(&tmp.path().join("a"), &clock, "cmdr.a");
    let b = open(&tmp.path().join("b"), &clock, "cmdr.b");
    let options = outpost_sync::SyncOptions {
        failpoint: None,
        poke: false,
        clock: clock.clone(),
        ..outpost_sync::SyncOptions::default()
    };
    let sync = |c: &Console| {
        outpost_sync::SyncEngine::sync_until_quiet(c.store_handle(), &url, options.clone(), 10)
            .expect("sync round");
        c.notify_changed();
    };
    patrol(&a, "u-01", "P-01", Some(P01_AT));
    patrol(&a, "u-02", "P-02", Some(P02_AT));
    let inc = incident_at(&a, INCIDENT);
    sync(&a);
    sync(&b);
    let on_a = closest(&a, &inc);
    let on_b = closest(&b, &inc);
    let e1 = eta(&on_a, "u-01");
    assert_eq!(
        eta(&on_b, "u-01"),
        e1,
        "both consoles route on the same pack"
    );

    let route = unit(&on_a, "u-01").route.clone().expect("route");
    let line = a
        .road_line(RoadLineQuery {
            points: middle_of(&route),
        })
        .expect("road line");
    let set = a
        .set_road_closure(closure(ClosureShape::Line { points: line }, "积水", None))
        .expect("closure");
    sync(&a);
    sync(&b);
    let closures_b = b.road_closures().expect("closures on b");
    assert_eq!(closures_b.len(), 1);
    assert_eq!(closures_b[0].closure, set.closure);
    assert_eq!(closures_b[0].set_by, "cmdr.a");
    let closed_b = closest(&b, &inc);
    assert_eq!(closed_b.closures_active, 1);
    assert!(
        unit(&closed_b, "u-01").eta_s.is_none_or(|after| after > e1),
        "B avoids A's closure: {e1} -> {:?}",
        unit(&closed_b, "u-01").eta_s
    );

    b.lift_road_closure(ClosureRef {
        closure_id: set.closure.closure_id.to_string(),
    })
    .expect("lift on b");
    sync(&b);
    sync(&a);
    let reopened_a = closest(&a, &inc);
    assert_eq!(reopened_a.closures_active, 0);
    assert_eq!(
        eta(&reopened_a, "u-01"),
        e1,
        "A's ETA is back after B lifted"
    );
    let on_a = a.road_closures().expect("closures on a");
    assert!(on_a[0].closure.lifted);
    assert_eq!(on_a[0].set_by, "cmdr.b");
}

/// A square area closure of side `2 × d` degrees around `at`.
fn square(at: LatLon, d: f64) -> ClosureShape {
    ClosureShape::Area {
        ring: vec![
            LatLon {
                lat: at.lat - d,
                lon: at.lon - d,
            },
            LatLon {
                lat: at.lat - d,
                lon: at.lon + d,
            },
            LatLon {
                lat: at.lat + d,
                lon: at.lon + d,
            },
            LatLon {
                lat: at.lat + d,
                lon: at.lon - d,
            },
        ],
    }
}

#[test]
fn listing_closures_maps_only_new_or_changed_active_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let c = open(dir.path(), &clock, "cmdr.li");
    let set = |shape, reason: &str, ends_at| {
        c.set_road_closure(closure(shape, reason, ends_at))
            .expect("closure set")
    };
    let lifted = set(square(P01_AT, 0.001), "lifted", None);
    let ended = set(
        square(P02_AT, 0.0015),
        "ended",
        Some(t0() + Duration::minutes(30)),
    );
    let kept = set(square(P03_AT, 0.001), "kept", None);
    for v in [&lifted, &ended, &kept] {
        assert!(v.active && v.closed_segments >= 1, "{v:?}");
    }
    // Each closure was mapped once, when it became active.
    assert_eq!(c.closure_shapes_mapped(), 3);
    c.lift_road_closure(ClosureRef {
        closure_id: lifted.closure.closure_id.to_string(),
    })
    .expect("lift");
    clock.set(t0() + Duration::hours(1));
    for _ in 0..3 {
        c.road_closures().expect("list");
    }
    let list = c.road_closures().expect("list");
    assert_eq!(list.len(), 3);
    for (was, active) in [(&lifted, false), (&ended, false), (&kept, true)] {
        let now = list
            .iter()
            .find(|v| v.closure.closure_id == was.closure.closure_id)
            .expect("listed");
        assert_eq!(now.active, active, "{}", was.closure.reason);
        // Lifted and ended closures show the count they had while active.
        assert_eq!(now.closed_segments, was.closed_segments, "{now:?}");
    }
    // Listing (and lifting, and the end passing) mapped nothing again.
    assert_eq!(c.closure_shapes_mapped(), 3);
    // Changing the active closure's shape maps that one only.
    let bigger = c
        .set_road_closure(NewRoadClosure {
            closure_id: Some(kept.closure.closure_id.to_string()),
            ..closure(square(P03_AT, 0.002), "kept", None)
        })
        .expect("change");
    assert!(bigger.closed_segments > kept.closed_segments, "{bigger:?}");
    assert_eq!(c.closure_shapes_mapped(), 4);
}
