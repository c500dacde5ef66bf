//! Integration tests of the replay: the engine driven by a fake console, and (in
//! `console.rs`) the real console on a temp dir with a pack built from Andorra.

mod console;
mod fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fake::{FakeConsole, grid};
use outpost_demo::calls::{ScheduleOptions, parse_calls};
use outpost_demo::{DemoOptions, Roster, Sim, start_with};
use outpost_domain::{Disposition, FixedClock, IncidentType, LatLon, UnitStatus};

fn roster() -> Roster {
    let json = serde_json::json!({
        "name": "grid",
        "facilities": [
            { "id": "stn", "kind": "station", "name_zh": "站", "name_en": "Station",
              "street": "Carrer R3", "position": { "lat": 42.503, "lon": 1.523 } },
            { "id": "post", "kind": "post", "name_zh": "岗", "name_en": "Post",
              "street": "Carrer R8", "position": { "lat": 42.508, "lon": 1.528 } }
        ],
        "units": [
            { "id": "car", "callsign": "巡01", "callsign_en": "P01", "kind": "patrol_car", "home": "stn" },
            { "id": "moto", "callsign": "骑01", "callsign_en": "M01", "kind": "motorcycle", "home": "stn" },
            { "id": "foot", "callsign": "步01", "callsign_en": "F01", "kind": "foot_patrol", "home": "post" },
            { "id": "team", "callsign": "岗01", "callsign_en": "T01", "kind": "post_team", "home": "post" },
            { "id": "traffic", "callsign": "交01", "callsign_en": "X01", "kind": "traffic", "home": "stn" },
            { "id": "swat", "callsign": "特01", "callsign_en": "S01", "kind": "tactical", "home": "stn" }
        ]
    });
    Roster::parse(&json.to_string(), Path::new("grid.json")).expect("roster")
}

/// Three calls 30 min apart: with a 60× speed-up, one every 30 s (the wrap-around gap is
/// the 30 min cut too).
const CALLS: &str = "\
40.1,-75.3,Traffic: VEHICLE ACCIDENT -,2016-01-15 12:00,A,B
40.1,-75.3,EMS: CARDIAC EMERGENCY,2016-01-15 12:30,A,B
40.1,-75.3,Fire: FIRE ALARM,2016-01-15 13:00,A,B
";

fn opts() -> DemoOptions {
    DemoOptions {
        clock: Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
                .single()
                .expect("time"),
        )),
        calls: Arc::new(parse_calls(CALLS, Path::new("calls.csv")).expect("calls")),
        schedule: ScheduleOptions {
            speedup: 60.0,
            max_gap_s: 1800.0,
            min_delay_s: 1.0,
        },
        first_call_after_s: 1.0,
        track: None,
        auto_dispatch_share: 1.0,
        dispatch_delay_s: 2.0,
        patrol_radius_m: 600.0,
        incident_radius_m: 400.0,
        seed: Some(42),
        ..DemoOptions::default()
    }
}

fn on_grid(p: LatLon) -> bool {
    let row = ((p.lat - 42.5) / 0.001).round() * 0.001 + 42.5;
    let col = ((p.lon - 1.52) / 0.001).round() * 0.001 + 1.52;
    (p.lat - row).abs() < 1e-7 || (p.lon - col).abs() < 1e-7
}

#[test]
fn every_unit_is_reported_at_home_at_start() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let r = roster();
    let sim = Sim::new(Arc::clone(&console), &r, opts());
    let st = console.st();
    assert_eq!(st.facilities.len(), 2);
    assert_eq!(st.units.len(), 6);
    assert_eq!(st.fixes.len(), 6, "one first report per unit");
    for (unit, fix) in &st.fixes {
        let home = r
            .home_of(r.units.iter().find(|u| &u.id == unit).expect("unit"))
            .expect("home");
        assert_eq!(fix.position, home, "{unit}");
        assert_eq!(fix.speed_mps, Some(0.0));
    }
    let s = sim.stats_handle();
    let s = s.lock().expect("stats");
    assert_eq!((s.facilities_registered, s.units_registered), (2, 6));
    assert_eq!(s.positions_reported, 6);
}

#[test]
fn registering_twice_is_harmless() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let r = roster();
    let _a = Sim::new(Arc::clone(&console), &r, opts());
    let _b = Sim::new(Arc::clone(&console), &r, opts());
    assert_eq!(console.st().units.len(), 6);
    assert_eq!(console.st().facilities.len(), 2);
}

/// Runs the sim in 0.5 s steps up to `until` seconds.
fn run(sim: &mut Sim<FakeConsole>, from: f64, until: f64) {
    let mut t = from;
    while t <= until {
        sim.tick(t);
        t += 0.5;
    }
}

#[test]
fn incidents_arrive_on_schedule_with_mapped_types() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut o = opts();
    o.auto_dispatch_share = 0.0;
    let mut sim = Sim::new(Arc::clone(&console), &roster(), o);
    sim.load_roads();
    run(&mut sim, 0.0, 0.5);
    assert_eq!(console.st().incidents.len(), 0);
    run(&mut sim, 1.0, 1.0);
    assert_eq!(console.st().incidents.len(), 1, "first call after 1 s");
    run(&mut sim, 1.5, 30.5);
    assert_eq!(console.st().incidents.len(), 1);
    run(&mut sim, 31.0, 31.0);
    assert_eq!(console.st().incidents.len(), 2, "30 min later at 60×");
    run(&mut sim, 31.5, 61.0);
    let st = console.st();
    assert_eq!(st.incidents.len(), 3);
    // The start index is random, but the three types cycle in file order.
    let types: Vec<_> = st.incidents.iter().map(|i| i.incident_type).collect();
    let cycle = [
        IncidentType::TrafficAccident,
        IncidentType::Medical,
        IncidentType::Alarm,
    ];
    let k = cycle
        .iter()
        .position(|t| *t == types[0])
        .expect("known type");
    for (n, t) in types.iter().enumerate() {
        assert_eq!(*t, cycle[(k + n) % 3]);
    }
    for inc in &st.incidents {
        assert!(on_grid(inc.location), "{:?}", inc.location);
        assert!(inc.address.starts_with("near 42.5"), "{}", inc.address);
        assert!(
            inc.description.contains("Montgomery County"),
            "{}",
            inc.description
        );
        assert_eq!(inc.closed, None, "nobody dispatched");
    }
}

#[test]
fn the_demo_dispatches_drives_and_clears() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut sim = Sim::new(Arc::clone(&console), &roster(), opts());
    sim.load_roads();
    run(&mut sim, 0.0, 400.0);
    let st = console.st();
    let closed: Vec<_> = st.incidents.iter().filter(|i| i.closed.is_some()).collect();
    assert!(
        !closed.is_empty(),
        "some incident was handled: {:?}",
        st.incidents
    );
    for i in &closed {
        let want = match i.incident_type {
            IncidentType::TrafficAccident => Disposition::ReportTaken,
            IncidentType::Medical => Disposition::Transported,
            IncidentType::Alarm => Disposition::FalseAlarm,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(i.closed, Some(want));
    }
    // The first dispatched unit went through the whole cycle in order.
    let (first, _) = st.statuses.first().expect("a dispatch").clone();
    let seq: Vec<UnitStatus> = st
        .statuses
        .iter()
        .filter(|(u, _)| *u == first)
        .map(|(_, s)| *s)
        .take(4)
        .collect();
    assert_eq!(
        seq,
        vec![
            UnitStatus::Dispatched,
            UnitStatus::EnRoute,
            UnitStatus::OnScene,
            UnitStatus::Available
        ]
    );
    // Post teams never leave their post, the tactical team is only sent to assaults.
    assert!(!st.statuses.iter().any(|(u, _)| u == "team" || u == "swat"));
}

#[test]
fn units_move_along_the_roads_at_plausible_speeds() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut sim = Sim::new(Arc::clone(&console), &roster(), opts());
    sim.load_roads();
    run(&mut sim, 0.0, 300.0);
    let st = console.st();
    let mut moved = 0;
    for (unit, fix) in &st.fixes {
        assert!(
            on_grid(fix.position),
            "{unit} off the road at {:?}",
            fix.position
        );
        let v = fix.speed_mps.expect("speed");
        assert!((0.0..=70.0 / 3.6 + 1e-9).contains(&v), "{unit} at {v} m/s");
        if let Some(h) = fix.heading_deg {
            assert!((0.0..360.0).contains(&h));
            // Grid streets run north-south or east-west.
            let off = (h % 90.0).min(90.0 - h % 90.0);
            assert!(off < 1.0, "{unit} heading {h}");
        }
        if v > 0.0 {
            moved += 1;
        }
        if unit == "foot" {
            assert!(
                v <= 2.0,
                "foot patrol at {v} m/s (walking, hurrying to a call)"
            );
        }
    }
    assert!(moved > 50, "units moved ({moved} moving fixes)");
    // Moving units report every 2 s: the patrol car has far more fixes than the post team.
    let count = |id: &str| st.fixes.iter().filter(|(u, _)| u == id).count();
    assert!(
        count("car") > 3 * count("team"),
        "{} vs {}",
        count("car"),
        count("team")
    );
    assert!(count("team") >= 300 / 15, "parked units still report");
}

#[test]
fn a_unit_a_person_takes_out_of_service_is_left_alone() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut o = opts();
    o.first_call_after_s = 1e9;
    let mut sim = Sim::new(Arc::clone(&console), &roster(), o);
    sim.load_roads();
    run(&mut sim, 0.0, 60.0);
    console
        .st()
        .units
        .insert("car".into(), (UnitStatus::OutOfService, None));
    run(&mut sim, 60.5, 400.0);
    let home = LatLon {
        lat: 42.503,
        lon: 1.523,
    };
    let pos = sim
        .positions()
        .into_iter()
        .find(|(u, _)| u == "car")
        .expect("car")
        .1;
    assert_eq!(pos, home, "drove home and parked");
    assert_eq!(console.st().units["car"].0, UnitStatus::OutOfService);
}

#[test]
fn without_a_pack_units_stay_home_and_incidents_still_arrive() {
    let console = Arc::new(FakeConsole::default());
    let r = roster();
    let mut sim = Sim::new(Arc::clone(&console), &r, opts());
    sim.load_roads();
    run(&mut sim, 0.0, 40.0);
    let st = console.st();
    assert_eq!(st.incidents.len(), 2);
    for (unit, fix) in &st.fixes {
        let home = r
            .home_of(r.units.iter().find(|u| &u.id == unit).expect("unit"))
            .expect("home");
        // Dispatched units with no road arrive at once; everyone else stays home.
        if st.statuses.iter().all(|(u, _)| u != unit) {
            assert_eq!(fix.position, home, "{unit}");
        }
    }
}

#[test]
fn the_thread_runs_and_stops() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut o = opts();
    o.tick = Duration::from_millis(10);
    o.time_scale = 100.0;
    let mut handle = start_with(Arc::clone(&console), roster(), o);
    // Registered and first-reported before start_with returns.
    assert_eq!(console.st().fixes.len(), 6);
    std::thread::sleep(Duration::from_millis(600));
    assert!(handle.is_running());
    handle.stop();
    assert!(!handle.is_running());
    let stats = handle.stats();
    assert!(stats.incidents_created >= 1, "{stats:?}");
    assert!(stats.positions_reported > 6, "{stats:?}");
    let after = console.st().fixes.len();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(console.st().fixes.len(), after, "nothing after stop");
}

#[test]
fn calls_left_for_a_person_are_dispatched_when_nobody_acts() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut o = opts();
    o.auto_dispatch_share = 0.0;
    o.left_for_person_s = 20.0;
    let mut sim = Sim::new(Arc::clone(&console), &roster(), o);
    sim.load_roads();
    run(&mut sim, 0.0, 15.0);
    assert!(console.st().statuses.is_empty(), "waits for a person first");
    run(&mut sim, 15.5, 30.0);
    let st = console.st();
    assert_eq!(
        st.statuses.first().map(|(_, s)| *s),
        Some(UnitStatus::Dispatched),
        "dispatched after 20 s without a person"
    );
}

#[test]
fn a_restarted_demo_picks_up_its_open_incidents() {
    let console = Arc::new(FakeConsole::with_network(grid()));
    let mut o = opts();
    o.auto_dispatch_share = 0.0;
    o.left_for_person_s = 1e9;
    {
        let mut first = Sim::new(Arc::clone(&console), &roster(), o.clone());
        first.load_roads();
        run(&mut first, 0.0, 35.0);
    }
    assert_eq!(console.st().incidents.len(), 2);
    assert!(console.st().statuses.is_empty());
    o.first_call_after_s = 1e9;
    let mut second = Sim::new(Arc::clone(&console), &roster(), o);
    second.load_roads();
    run(&mut second, 0.0, 400.0);
    let st = console.st();
    assert_eq!(st.incidents.len(), 2, "no new calls");
    assert!(
        st.incidents.iter().all(|i| i.closed.is_some()),
        "both handled after the restart: {:?}",
        st.incidents
    );
}
