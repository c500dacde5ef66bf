//! The pack-backed use-cases (startup, search, describe, address fill-in) on a tiny
//! hand-made pack in the `outpost-geo` format (MBTiles metadata + our tables).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};

use outpost_app::ipc::{ErrorCode, NewIncident, PlaceKind, PlaceQuery, Settings, Startup};
use outpost_app::{Console, ConsoleOptions};
use outpost_domain::clock::FixedClock;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::IncidentType;

/// Writes a pack with one named street (two nodes along Avinguda Meritxell) and one town.
fn tiny_pack(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.outpost");
    let c = rusqlite::Connection::open(&path).expect("create pack");
    c.execute_batch(
        "
        CREATE TABLE metadata (name TEXT, value TEXT);
        CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
        CREATE TABLE places (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, category TEXT NOT NULL, name TEXT NOT NULL,
            name_zh TEXT, name_en TEXT, lat REAL NOT NULL, lon REAL NOT NULL, address TEXT NOT NULL);
        CREATE VIRTUAL TABLE places_fts USING fts5(
            name, name_zh, name_en, content='places', content_rowid='id',
            tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
        CREATE VIRTUAL TABLE places_tri USING fts5(
            name, name_zh, name_en, content='places', content_rowid='id', tokenize = 'trigram');
        CREATE TABLE road_nodes (idx INTEGER PRIMARY KEY, osm_id INTEGER NOT NULL,
            lat REAL NOT NULL, lon REAL NOT NULL);
        CREATE TABLE road_edges (id INTEGER PRIMARY KEY, from_node INTEGER NOT NULL,
            to_node INTEGER NOT NULL, length_m REAL NOT NULL, highway TEXT NOT NULL, name TEXT,
            name_zh TEXT, name_en TEXT, oneway INTEGER NOT NULL, maxspeed_kmh REAL,
            way_id INTEGER NOT NULL, car_access INTEGER NOT NULL);
        CREATE VIRTUAL TABLE road_edges_rtree USING rtree(id, min_lon, max_lon, min_lat, max_lat);
        CREATE TABLE road_ch (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        INSERT INTO metadata VALUES
            ('outpost_pack_format', '2'), ('name', 'Tiny Andorra'),
            ('bounds', '1.50,42.49,1.55,42.52'), ('center', '1.5218,42.5063,14'),
            ('minzoom', '0'), ('maxzoom', '14'),
            ('attribution', '© OpenStreetMap contributors'),
            ('outpost_built_at', '2026-11-29T08:00:00Z'), ('outpost_source_sha256', 'abc');
        INSERT INTO places VALUES
            (1, 'street', 'primary', 'Avinguda Meritxell', NULL, NULL, 42.5070, 1.5215,
             'Avinguda Meritxell, Andorra la Vella'),
            (2, 'place', 'town', 'Andorra la Vella', '安道尔城', NULL, 42.5063, 1.5218,
             'Andorra la Vella');
        INSERT INTO places_fts(places_fts) VALUES ('rebuild');
        INSERT INTO places_tri(places_tri) VALUES ('rebuild');
        INSERT INTO road_nodes VALUES (0, 100, 42.5065, 1.5200), (1, 101, 42.5075, 1.5230);
        INSERT INTO road_edges VALUES
            (1, 0, 1, 280.0, 'primary', 'Avinguda Meritxell', NULL, NULL, 0, 50.0, 9, 1);
        INSERT INTO road_edges_rtree VALUES (1, 1.5200, 1.5230, 42.5065, 42.5075);
        ",
    )
    .expect("fill pack");
    path
}

fn open(pack: Option<PathBuf>, data: &Path) -> Console {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
            .single()
            .expect("date"),
    ));
    Console::open(
        ConsoleOptions {
            pack,
            data_dir: data.to_path_buf(),
            demo: true,
            user: "cmdr.li".into(),
        },
        clock,
    )
    .expect("open console")
}

#[test]
fn startup_is_ready_and_the_pack_is_remembered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = tiny_pack(dir.path());
    let data = dir.path().join("data");
    let c = open(Some(pack.clone()), &data);
    c.set_map_base_url("outpost://localhost".into());
    let Startup::Ready { init } = c.startup() else {
        panic!("expected Ready, got {:?}", c.startup());
    };
    assert_eq!(init.pack.name, "Tiny Andorra");
    assert_eq!(init.pack.bounds, [1.50, 42.49, 1.55, 42.52]);
    assert_eq!(
        init.pack.center,
        LatLon {
            lat: 42.5063,
            lon: 1.5218
        }
    );
    assert_eq!(init.pack.zoom, 14.0);
    assert_eq!(init.pack.max_zoom, 14);
    assert_eq!(init.pack.attribution, "© OpenStreetMap contributors");
    assert_eq!(init.map_base_url, "outpost://localhost");
    assert!(init.demo);
    assert_eq!(init.user, "cmdr.li");
    assert_eq!(init.settings, Settings::default());
    assert!(c.pack().is_some());
    drop(c);

    // No --pack: the last pack opened is used again.
    let again = open(None, &data);
    let Startup::Ready { init } = again.startup() else {
        panic!("expected Ready, got {:?}", again.startup());
    };
    assert_eq!(init.pack.name, "Tiny Andorra");
    assert_eq!(
        std::fs::canonicalize(&init.pack.path).expect("canon"),
        std::fs::canonicalize(&pack).expect("canon")
    );
}

#[test]
fn search_describe_and_address_fill_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = open(Some(tiny_pack(dir.path())), &dir.path().join("data"));
    let hits = c
        .search_places(PlaceQuery {
            text: "Merit".into(),
            near: Some(LatLon {
                lat: 42.5063,
                lon: 1.5218,
            }),
            limit: 500,
        })
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].name, "Avinguda Meritxell");
    assert_eq!(hits[0].kind, PlaceKind::Street);
    assert_eq!(hits[0].category, "primary");
    assert_eq!(hits[0].address, "Avinguda Meritxell, Andorra la Vella");
    assert!(hits[0].distance_m.is_some_and(|d| d > 50.0 && d < 150.0));

    let d = c
        .describe_location(LatLon {
            lat: 42.5070,
            lon: 1.5215,
        })
        .expect("describe");
    assert_eq!(d.street.as_deref(), Some("Avinguda Meritxell"));
    assert_eq!(d.place.as_deref(), Some("Andorra la Vella"));
    assert_eq!(d.address, "Avinguda Meritxell, Andorra la Vella");

    let err = c
        .describe_location(LatLon {
            lat: -91.0,
            lon: 0.0,
        })
        .expect_err("bad latitude");
    assert_eq!(err.code, ErrorCode::InvalidInput);

    let inc = c
        .create_incident(NewIncident {
            incident_type: IncidentType::TrafficHazard,
            priority: None,
            location: LatLon {
                lat: 42.5070,
                lon: 1.5215,
            },
            address: String::new(),
            description: "fallen rocks".into(),
        })
        .expect("create");
    assert_eq!(inc.summary.address, "Avinguda Meritxell, Andorra la Vella");
}
