//! The replay against the real console on a temp data dir, with a pack built from the
//! Andorra extract (tilemaker must be installed, as the README's test command ensures).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use outpost_app::ipc::IncidentRef;
use outpost_app::{Console, ConsoleAccess, ConsoleOptions};
use outpost_demo::{DEMO_USER, DemoOptions, Roster};
use outpost_domain::access::{Actor, Role};
use outpost_domain::{FacilityKind, LatLon, SystemClock};
use outpost_geo::{Pack, point_segment_distance_m};

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

/// One pack for the whole test binary, built afresh on each run into cargo's scratch
/// directory for integration tests (`target/tmp`), so nothing piles up in `/tmp`.
fn pack_path() -> &'static Path {
    static PACK: OnceLock<PathBuf> = OnceLock::new();
    PACK.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("outpost-demo-it");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        // One pack per test process: nextest runs each test in its own process, and a shared
        // path would be removed by one while another opens it.
        let out = dir.join(format!("andorra-{}.outpost", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let mut opts = outpost_geo::BuildOptions::new(andorra_osm(), &out);
        opts.name = Some("Andorra".into());
        opts.progress = false;
        outpost_geo::build_pack(&opts).expect("build the Andorra pack");
        out
    })
}

fn open_console(data_dir: &Path) -> Arc<Console> {
    let console = Console::open(
        ConsoleOptions {
            pack: Some(pack_path().to_path_buf()),
            data_dir: data_dir.to_path_buf(),
            demo: true,
            user: "cmdr.li".into(),
        },
        Arc::new(SystemClock),
    )
    .expect("console");
    assert!(console.pack().is_some(), "pack opened");
    Arc::new(console)
}

fn fast() -> DemoOptions {
    DemoOptions {
        tick: Duration::from_millis(50),
        time_scale: 20.0,
        first_call_after_s: 1.0,
        dispatch_delay_s: 2.0,
        auto_dispatch_share: 1.0,
        seed: Some(7),
        ..DemoOptions::default()
    }
}

#[test]
fn roster_facilities_stand_on_their_named_streets() {
    let pack = Pack::open(pack_path()).expect("pack");
    let net = pack.road_network().expect("roads");
    let roster = Roster::andorra().expect("roster");
    for f in &roster.facilities {
        let nearest = net
            .edges
            .iter()
            .filter(|e| e.name.as_deref() == Some(f.street.as_str()))
            .map(|e| point_segment_distance_m(f.position, net.nodes[e.from].at, net.nodes[e.to].at))
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest < 20.0,
            "{} is {nearest:.0} m from {}",
            f.id,
            f.street
        );
        let d = pack.describe(f.position).expect("describe");
        assert!(d.street.is_some(), "{}: {d:?}", f.id);
        assert!(d.place.is_some(), "{}: {d:?}", f.id);
    }
}

#[test]
fn the_demo_lives_on_the_real_console() {
    let dir = tempfile::tempdir().expect("tempdir");
    let console = open_console(dir.path());
    let roster = Roster::andorra().expect("roster");
    let mut handle = outpost_demo::start(Arc::clone(&console), roster.clone(), fast());

    // Before the replay thread has done anything: every unit is on the map, at home.
    let state = console.console_state().expect("state");
    assert_eq!(state.units.len(), roster.units.len());
    assert_eq!(state.facilities.len(), roster.facilities.len());
    let posts = state
        .facilities
        .iter()
        .filter(|f| f.kind == FacilityKind::Post)
        .count();
    assert_eq!(posts, 7);
    for u in &state.units {
        let fix = u
            .fix
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no fix", u.id));
        let want = roster
            .home_of(
                roster
                    .units
                    .iter()
                    .find(|r| r.id == u.id)
                    .expect("roster unit"),
            )
            .expect("home");
        assert_eq!(fix.position, want, "{}", u.id);
        assert_eq!(
            u.home_station.as_deref(),
            Some(
                roster
                    .units
                    .iter()
                    .find(|r| r.id == u.id)
                    .expect("unit")
                    .home
                    .as_str()
            )
        );
    }

    // Run ~8 s (≈ 160 simulated seconds).
    std::thread::sleep(Duration::from_secs(8));
    handle.stop();
    let stats = handle.stats();
    assert_eq!(stats.errors, 0, "{:?}", stats.recent_errors);
    assert!(stats.road_nodes > 1000, "{stats:?}");
    assert!(stats.incidents_created >= 2, "{stats:?}");
    assert!(stats.dispatches >= 1, "{stats:?}");

    let state = console.console_state().expect("state");
    let moved = state
        .units
        .iter()
        .filter(|u| {
            let home = roster
                .home_of(roster.units.iter().find(|r| r.id == u.id).expect("unit"))
                .expect("home");
            u.fix
                .as_ref()
                .is_some_and(|f| f.position.distance_m(&home) > 50.0)
        })
        .count();
    assert!(moved >= 5, "{moved} units left home");

    assert!(!state.incidents.is_empty());
    for inc in &state.incidents {
        let d = console
            .incident_detail(IncidentRef {
                incident_id: inc.id.clone(),
            })
            .expect("detail");
        assert_eq!(d.created_by, DEMO_USER);
        assert_eq!(d.timeline[0].user, DEMO_USER);
        assert!(inc.address.contains(", "), "street, place: {}", inc.address);
        let LatLon { lat, lon } = inc.location;
        assert!((42.42..42.66).contains(&lat) && (1.40..1.79).contains(&lon));
        assert!(d.description.contains("Montgomery County"));
    }
    let assigned = state
        .incidents
        .iter()
        .filter(|i| !i.assigned.is_empty())
        .count()
        + state
            .units
            .iter()
            .filter(|u| u.incident_id.is_some())
            .count();
    assert!(assigned >= 1 || stats.incidents_closed >= 1, "{stats:?}");
}

#[test]
fn a_second_launch_registers_the_same_roster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roster = Roster::andorra().expect("roster");
    let mut opts = fast();
    opts.first_call_after_s = 1e9; // no incidents: only the roster matters here
    {
        let console = open_console(dir.path());
        let _h = outpost_demo::start(Arc::clone(&console), roster.clone(), opts.clone());
        std::thread::sleep(Duration::from_millis(300));
    }
    let console = open_console(dir.path());
    let h = outpost_demo::start(Arc::clone(&console), roster.clone(), opts);
    let state = console.console_state().expect("state");
    assert_eq!(state.units.len(), 22);
    assert_eq!(state.facilities.len(), 13);
    assert_eq!(h.stats().errors, 0, "{:?}", h.stats().recent_errors);
}

/// A sync link that only says it is there (the replay asks whether the console syncs).
struct AttachedLink;

impl outpost_app::sync::SyncLink for AttachedLink {
    fn link_status(&self) -> outpost_app::sync::LinkStatus {
        outpost_app::sync::LinkStatus {
            state: outpost_app::ipc::SyncState::Online,
            server_url: "https://outpost.test:8443".into(),
            offline_since: None,
            last_sync: None,
            last_error: None,
        }
    }

    fn poke_local(&self) {}
}

/// A console signed in as `user` with `role`, a sync link attached (as the Gate does before
/// the shell starts the replay).
fn synced_console(data_dir: &Path, user: &str, role: Role) -> Arc<Console> {
    let console = Console::open_signed_in(
        ConsoleOptions {
            pack: Some(pack_path().to_path_buf()),
            data_dir: data_dir.to_path_buf(),
            demo: true,
            user: user.into(),
        },
        Arc::new(SystemClock),
        ConsoleAccess {
            actor: Actor {
                user: user.into(),
                role,
                unit_id: None,
            },
            cache_key: None,
        },
    )
    .expect("console");
    console.attach_sync(Arc::new(AttachedLink));
    Arc::new(console)
}

#[test]
fn on_a_synced_console_the_replay_acts_as_the_signed_in_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let console = synced_console(dir.path(), "cmdr.wang", Role::Commander);
    let roster = Roster::andorra().expect("roster");
    let mut handle = outpost_demo::start(Arc::clone(&console), roster.clone(), fast());
    assert_eq!(
        console.console_state().expect("state").units.len(),
        roster.units.len()
    );
    // Until the replay has created, dispatched to and worked on a call (bounded wait).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while handle.stats().dispatches < 1 {
        assert!(std::time::Instant::now() < deadline, "{:?}", handle.stats());
        std::thread::sleep(Duration::from_millis(100));
    }
    handle.stop();
    let stats = handle.stats();
    assert_eq!(stats.errors, 0, "{:?}", stats.recent_errors);
    let state = console.console_state().expect("state");
    assert!(!state.incidents.is_empty());
    for inc in &state.incidents {
        let d = console
            .incident_detail(IncidentRef {
                incident_id: inc.id.clone(),
            })
            .expect("detail");
        // The server takes ops only from its accounts: no "demo" anywhere.
        assert_eq!(d.created_by, "cmdr.wang");
        assert!(
            d.timeline.iter().all(|e| e.user == "cmdr.wang"),
            "{:?}",
            d.timeline
        );
    }
}

#[test]
fn on_a_synced_viewer_console_the_replay_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let console = synced_console(dir.path(), "view.chen", Role::Viewer);
    let mut opts = fast();
    opts.first_call_after_s = 1e9; // the roster is enough
    let mut handle = outpost_demo::start(
        Arc::clone(&console),
        Roster::andorra().expect("roster"),
        opts,
    );
    handle.stop();
    let stats = handle.stats();
    assert_eq!(stats.units_registered, 0, "{stats:?}");
    assert!(stats.errors > 0, "{stats:?}");
    assert!(
        stats
            .recent_errors
            .iter()
            .any(|e| e.contains("viewer") && e.contains("may not write")),
        "{:?}",
        stats.recent_errors
    );
    let state = console.console_state().expect("state");
    assert!(state.units.is_empty() && state.facilities.is_empty());
}
