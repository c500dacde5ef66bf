//! Integration tests of area packs: one pack is built from the shipped Andorra extract
//! (data/osm/andorra.osm.pbf, needs `tilemaker` on PATH) and shared by the tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mvt_reader::Reader;
use mvt_reader::feature::Value;
use outpost_domain::LatLon;
use outpost_geo::{BuildError, BuildOptions, BuildReport, Pack, PackError, SearchKind};

mod routing;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn andorra_pbf() -> PathBuf {
    repo().join("data/osm/andorra.osm.pbf")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

struct Built {
    pack: Pack,
    /// Tiles per zoom level, as the build reported them (read back from the pack when
    /// another test process built it).
    tiles_per_zoom: Vec<(u8, u64)>,
    /// Road graph nodes and edges written.
    road_nodes: usize,
    road_edges: usize,
}

/// The Andorra pack, built once per test binary (nextest runs each test in its own
/// process): `CARGO_TARGET_TMPDIR/outpost-geo-andorra-<test binary mtime>.outpost`. A
/// process that finds it complete uses it; otherwise it builds into a temporary name in
/// the same directory and renames it into place (atomic; a concurrent duplicate build is
/// harmless). When this process built it, the build report must agree with the pack.
fn andorra() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(dir).expect("temp dir");
        let stamp = std::env::current_exe()
            .and_then(|exe| exe.metadata())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let out = dir.join(format!("outpost-geo-andorra-{stamp}.outpost"));
        let mut report: Option<BuildReport> = None;
        let pack = match Pack::open(&out) {
            Ok(p) => p,
            Err(_) => {
                // build_pack renames a complete pack into place (atomic).
                let mut opts = BuildOptions::new(andorra_pbf(), &out);
                opts.progress = false;
                report = Some(outpost_geo::build_pack(&opts).expect("build the Andorra pack"));
                // Packs of earlier builds of this test binary are stale now.
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with("outpost-geo-andorra-")
                        && !name.starts_with(&format!("outpost-geo-andorra-{stamp}."))
                    {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
                Pack::open(&out).expect("open the Andorra pack")
            }
        };
        let c =
            rusqlite::Connection::open_with_flags(&out, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the pack with SQLite");
        let tiles_per_zoom: Vec<(u8, u64)> = c
            .prepare(
                "SELECT zoom_level, count(*) FROM tiles GROUP BY zoom_level ORDER BY zoom_level",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get::<_, u8>(0)?, r.get::<_, i64>(1)? as u64)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("tile counts");
        let count = |t: &str| -> usize {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .expect("count") as usize
        };
        let built = Built {
            pack,
            tiles_per_zoom,
            road_nodes: count("road_nodes"),
            road_edges: count("road_edges"),
        };
        if let Some(r) = report {
            assert_eq!(r.tiles_per_zoom, built.tiles_per_zoom);
            assert_eq!(r.road_nodes, built.road_nodes);
            assert_eq!(r.road_edges, built.road_edges);
        }
        built
    })
}

/// XYZ tile containing a point (web mercator).
fn tile_of(lat: f64, lon: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let lr = lat.to_radians();
    let y =
        ((1.0 - (lr.tan() + 1.0 / lr.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u32;
    (x, y)
}

/// West/north corner of an XYZ tile, degrees.
fn tile_corner(z: u8, x: u32, y: u32) -> (f64, f64) {
    let n = f64::from(1u32 << z);
    let lon = f64::from(x) / n * 360.0 - 180.0;
    let lat = (std::f64::consts::PI * (1.0 - 2.0 * f64::from(y) / n))
        .sinh()
        .atan()
        .to_degrees();
    (lon, lat)
}

fn string_prop(f: &mvt_reader::feature::Feature, key: &str) -> Option<String> {
    match f.properties.as_ref()?.get(key)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[test]
fn metadata_describes_the_andorra_extract() {
    let b = andorra();
    let m = b.pack.meta();
    assert_eq!(m.name, "andorra");
    assert_eq!(m.attribution, "© OpenStreetMap contributors");
    // The PBF header bbox of the extract.
    let want = [1.422104, 42.43509, 1.780386, 42.65717];
    for (got, want) in m.bounds.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "{:?}", m.bounds);
    }
    // Centred on Andorra la Vella, the capital.
    let capital = LatLon {
        lat: 42.5069,
        lon: 1.5212,
    };
    assert!(m.center.distance_m(&capital) < 500.0, "{:?}", m.center);
    assert_eq!((m.min_zoom, m.max_zoom), (0, 14));
    assert!((10.0..=13.0).contains(&m.zoom), "{}", m.zoom);
    assert_eq!(m.source_sha256.len(), 64);
    assert!(m.source_sha256.chars().all(|c| c.is_ascii_hexdigit()));
    let age = chrono::Utc::now() - m.built_at;
    assert!(age.num_minutes() < 60, "{}", m.built_at);
}

#[test]
fn tiles_cover_z0_to_z14_and_z14_stays_in_andorra() {
    let b = andorra();
    let zooms: Vec<u8> = b.tiles_per_zoom.iter().map(|(z, _)| *z).collect();
    assert_eq!(zooms, (0..=14).collect::<Vec<u8>>());
    assert!(b.tiles_per_zoom.iter().all(|(_, n)| *n > 0));
    let conn = rusqlite::Connection::open_with_flags(
        b.pack.path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open");
    let mut s = conn
        .prepare("SELECT tile_column, tile_row FROM tiles WHERE zoom_level = 14")
        .expect("query");
    let z14: Vec<(u32, u32)> = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(z14.len() > 100, "{} z14 tiles", z14.len());
    let [w, s_, e, n] = b.pack.meta().bounds;
    for (x, tms_y) in z14 {
        let y = (1u32 << 14) - 1 - tms_y;
        let (west, north) = tile_corner(14, x, y);
        let (east, south) = tile_corner(14, x + 1, y + 1);
        assert!(
            east >= w && west <= e && north >= s_ && south <= n,
            "z14 tile {x}/{y} lies outside Andorra"
        );
    }
    // Low zooms carry the Natural Earth world layer.
    let z0 = b.pack.tile(0, 0, 0).expect("read").expect("z0 tile");
    let z0 = Reader::new(z0).expect("decode z0");
    let layers = z0.get_layer_metadata().expect("layers");
    assert!(layers.iter().any(|l| l.name == "ne_land"), "{layers:?}");
    let countries = layers
        .iter()
        .find(|l| l.name == "ne_countries")
        .expect("ne_countries");
    let names: Vec<String> = z0
        .get_features(countries.layer_index)
        .expect("features")
        .iter()
        .filter_map(|f| string_prop(f, "name"))
        .collect();
    assert!(names.len() > 100, "{} countries at z0", names.len());
    assert!(names.iter().any(|n| n == "China"));
    assert_eq!(b.pack.tile(15, 0, 0).expect("read"), None);
    assert_eq!(b.pack.tile(3, 99, 0).expect("read"), None);
}

#[test]
fn z14_tile_in_andorra_la_vella_has_named_roads() {
    let b = andorra();
    let (x, y) = tile_of(42.5063, 1.5218, 14);
    let mvt = b.pack.tile(14, x, y).expect("read").expect("tile exists");
    let reader = Reader::new(mvt).expect("valid MVT");
    let layers = reader.get_layer_metadata().expect("layers");
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    for want in ["road", "building", "place"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let road = layers
        .iter()
        .find(|l| l.name == "road")
        .expect("road layer");
    let features = reader.get_features(road.layer_index).expect("features");
    let named: Vec<String> = features
        .iter()
        .filter_map(|f| string_prop(f, "name"))
        .filter(|n| !n.is_empty())
        .collect();
    assert!(!named.is_empty(), "no named road in tile 14/{x}/{y}");
    let classes: Vec<String> = features
        .iter()
        .filter_map(|f| string_prop(f, "class"))
        .collect();
    let allowed = [
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "minor",
        "service",
        "track",
        "path",
    ];
    assert!(
        classes.iter().all(|c| allowed.contains(&c.as_str())),
        "{classes:?}"
    );
    // tilemaker drops empty strings, so `brunnel` is absent on ordinary roads.
    let brunnels: Vec<String> = features
        .iter()
        .filter_map(|f| string_prop(f, "brunnel"))
        .collect();
    assert!(
        brunnels.iter().all(|b| b == "bridge" || b == "tunnel"),
        "{brunnels:?}"
    );
    assert!(features.iter().all(|f| matches!(
        f.properties.as_ref().and_then(|p| p.get("oneway")),
        Some(
            Value::Int(0 | 1)
                | Value::UInt(0 | 1)
                | Value::SInt(0 | 1)
                | Value::Double(_)
                | Value::Float(_)
        )
    )));
}

#[test]
fn search_finds_a_street_by_prefix_and_places_in_chinese() {
    let b = andorra();
    let hits = b.pack.search("Avinguda Merit", None, 5).expect("search");
    let first = hits.first().expect("a hit");
    assert_eq!(first.name, "Avinguda Meritxell");
    assert_eq!(first.kind, SearchKind::Street);
    assert!(
        first.address.starts_with("Avinguda Meritxell, "),
        "{}",
        first.address
    );
    // Case and diacritics do not matter.
    let hits = b.pack.search("avinguda merit", None, 5).expect("search");
    assert_eq!(
        hits.first().map(|h| h.name.as_str()),
        Some("Avinguda Meritxell")
    );
    // name:zh of the capital, by a 3-character substring and by 2 characters.
    for q in ["安道尔城", "安道"] {
        let hits = b.pack.search(q, None, 5).expect("search");
        assert!(
            hits.iter().any(|h| h.name == "Andorra la Vella"
                && h.name_zh.as_deref() == Some("安道尔城")
                && h.kind == SearchKind::Place),
            "{q}: {hits:?}"
        );
    }
    // Distances are reported when searching near a point.
    let near = LatLon {
        lat: 42.5063,
        lon: 1.5218,
    };
    let hits = b.pack.search("Avinguda", Some(near), 10).expect("search");
    assert!(hits.len() > 3);
    let d: Vec<f64> = hits.iter().filter_map(|h| h.distance_m).collect();
    assert_eq!(d.len(), hits.len());
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
    // POIs, e.g. the police headquarters, with a street address.
    let hits = b.pack.search("Policia", None, 5).expect("search");
    let police = hits
        .iter()
        .find(|h| h.kind == SearchKind::Poi && h.category == "police")
        .expect("police POI");
    assert_eq!(police.name, "Policia Andorrana");
    assert_eq!(police.address, "Carrer Ciutat de Sabadell, les Escaldes");
    // A short Latin word prefix near Escaldes: every hit has a word starting with it
    // (no name starts with it, so all rank by distance), the town first.
    let escaldes = LatLon {
        lat: 42.5103,
        lon: 1.5386,
    };
    let hits = b.pack.search("Escal", Some(escaldes), 10).expect("search");
    assert!(hits.len() >= 3, "{hits:?}");
    assert_eq!(hits[0].name, "les Escaldes");
    assert!(hits.iter().all(|h| {
        h.name
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w.starts_with("escal"))
    }));
    let d: Vec<f64> = hits.iter().filter_map(|h| h.distance_m).collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
    // The same street prefix from two centres ranks different streets first.
    let far_east = LatLon {
        lat: 42.5424,
        lon: 1.7336,
    };
    let near_alv = b.pack.search("Carrer", Some(near), 5).expect("search");
    let near_pas = b.pack.search("Carrer", Some(far_east), 5).expect("search");
    let first = |h: &[outpost_geo::SearchHit]| h.first().and_then(|h| h.distance_m).expect("hit");
    assert!(first(&near_alv) < 500.0 && first(&near_pas) < 2_000.0);
    assert!(near_alv[0].position.distance_m(&near) < near_pas[0].position.distance_m(&near));
    // Chinese prefix: 安道尔 (the country) and 安道尔城 (the capital) both start with it.
    let hits = b.pack.search("安道尔", Some(near), 5).expect("search");
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    assert!(
        names.contains(&"Andorra") && names.contains(&"Andorra la Vella"),
        "{names:?}"
    );
    // A Latin prefix of the same names.
    let hits = b.pack.search("Andorra la", Some(near), 5).expect("search");
    assert_eq!(
        hits.first().map(|h| h.name.as_str()),
        Some("Andorra la Vella")
    );
    assert!(b.pack.search("   ", None, 5).expect("search").is_empty());
    assert!(b.pack.search("Zzqxv", None, 5).expect("search").is_empty());
}

#[test]
fn describe_names_the_street_and_the_place() {
    let b = andorra();
    let hit = b
        .pack
        .search("Avinguda Meritxell", None, 1)
        .expect("search")
        .into_iter()
        .next()
        .expect("hit");
    let d = b.pack.describe(hit.position).expect("describe");
    assert_eq!(d.street.as_deref(), Some("Avinguda Meritxell"));
    let place = d.place.clone().expect("a place");
    assert_eq!(d.address, format!("Avinguda Meritxell, {place}"));
    // Far from any road (the middle of the Atlantic): no street, coordinates kept simple.
    let sea = LatLon {
        lat: 40.0,
        lon: -30.0,
    };
    let d = b.pack.describe(sea).expect("describe");
    assert_eq!(d.street, None);
}

#[test]
fn road_network_is_a_consistent_graph() {
    let b = andorra();
    let net = b.pack.road_network().expect("roads");
    assert_eq!(net.nodes.len(), b.road_nodes);
    assert_eq!(net.edges.len(), b.road_edges);
    assert!(net.nodes.len() > 10_000, "{}", net.nodes.len());
    for e in &net.edges {
        assert!(e.from < net.nodes.len() && e.to < net.nodes.len());
        let d = net.nodes[e.from].at.distance_m(&net.nodes[e.to].at);
        assert!((d - e.length_m).abs() < 0.01, "{e:?}");
        // Distinct OSM nodes may share a position, so 0 m segments exist.
        assert!(e.length_m >= 0.0 && e.length_m < 10_000.0, "{e:?}");
    }
    assert!(
        net.edges
            .iter()
            .any(|e| e.name.as_deref() == Some("Avinguda Meritxell") && !e.class.is_empty())
    );
    assert!(net.edges.iter().any(|e| e.oneway));
    assert!(net.edges.iter().any(|e| e.maxspeed_kmh.is_some()));
}

fn assert_no_files(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

fn build_bad(input: &Path) -> (BuildError, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bad.outpost");
    let mut opts = BuildOptions::new(input, &out);
    opts.progress = false;
    let err = outpost_geo::build_pack(&opts).expect_err("must fail");
    assert!(!out.exists());
    assert_no_files(dir.path());
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    (err, msg)
}

#[test]
fn missing_input_is_refused() {
    let (err, msg) = build_bad(Path::new("no/such/area.osm.pbf"));
    assert!(matches!(err, BuildError::InputMissing { .. }), "{err:?}");
    assert_eq!(msg, "no/such/area.osm.pbf: file not found");
}

#[test]
fn non_pbf_input_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = dir.path().join("notes.osm.pbf");
    std::fs::write(&fake, "this is not a protobuf file\n").expect("write");
    let (err, msg) = build_bad(&fake);
    assert!(matches!(err, BuildError::NotPbf { .. }), "{err:?}");
    assert!(
        msg.contains("notes.osm.pbf") && msg.contains("not an OpenStreetMap PBF file"),
        "{msg}"
    );
    // An empty file too.
    std::fs::write(&fake, "").expect("write");
    let (err, _) = build_bad(&fake);
    assert!(matches!(err, BuildError::NotPbf { .. }), "{err:?}");
}

#[test]
fn clipped_extract_is_refused() {
    let (err, msg) = build_bad(&fixture("clipped.osm.pbf"));
    match err {
        BuildError::Clipped { missing, ways, .. } => {
            // osmium check-refs reports 490 missing references; 489 distinct nodes.
            assert_eq!(missing, 489);
            assert!(ways > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        msg.contains("clipped.osm.pbf: clipped extract: 489 node(s)"),
        "{msg}"
    );
}

#[test]
fn empty_area_is_refused() {
    let (err, msg) = build_bad(&fixture("empty.osm.pbf"));
    assert!(
        matches!(
            err,
            BuildError::EmptyArea {
                nodes: 0,
                ways: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains("empty.osm.pbf: empty area"), "{msg}");
}

#[test]
fn a_failed_build_keeps_the_previous_pack() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("area.outpost");
    std::fs::write(&out, "previous").expect("write");
    let mut opts = BuildOptions::new(fixture("clipped.osm.pbf"), &out);
    opts.progress = false;
    assert!(outpost_geo::build_pack(&opts).is_err());
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "previous");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}

#[test]
fn opening_a_missing_or_foreign_file_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("gone.outpost");
    let err = Pack::open(&missing).expect_err("missing");
    assert!(matches!(err, PackError::Missing { .. }));
    assert!(
        err.to_string().contains("gone.outpost: file not found"),
        "{err}"
    );

    let text = dir.path().join("text.outpost");
    std::fs::write(
        &text,
        "not sqlite at all, just some text that is long enough",
    )
    .expect("write");
    let err = Pack::open(&text).expect_err("text");
    assert!(matches!(err, PackError::NotAPack { .. }), "{err:?}");
    // What is wrong, not what to do (the console's error screen gives the advice).
    assert_eq!(
        err.to_string(),
        format!(
            "area pack {}: not an Outpost area pack (not an SQLite database)",
            text.display()
        )
    );

    // A directory is not "not found".
    let err = Pack::open(dir.path()).expect_err("directory");
    assert!(matches!(err, PackError::NotAFile { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "area pack {}: is a directory, not an area pack file",
            dir.path().display()
        )
    );

    // A pack built by an older Outpost (format 1: no `road_ch` table): the message says so
    // and how to rebuild it, not "no `road_ch` table".
    let old = dir.path().join("old.outpost");
    std::fs::copy(andorra().pack.path(), &old).expect("copy");
    {
        let c = rusqlite::Connection::open(&old).expect("open copy");
        c.execute_batch(
            "UPDATE metadata SET value = '1' WHERE name = 'outpost_pack_format';
             DROP TABLE road_ch;",
        )
        .expect("make format 1");
    }
    let err = Pack::open(&old).expect_err("format 1");
    assert!(
        matches!(&err, PackError::OtherFormat { found, older: true, .. } if found == "1"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "area pack {}: built by an older Outpost (pack format 1, this build reads format 2); \
             rebuild it from its OpenStreetMap extract with \
             `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`",
            old.display()
        )
    );
    // ... and one from a newer Outpost.
    {
        let c = rusqlite::Connection::open(&old).expect("open copy");
        c.execute_batch("UPDATE metadata SET value = '3' WHERE name = 'outpost_pack_format';")
            .expect("make format 3");
    }
    let err = Pack::open(&old).expect_err("format 3");
    assert!(
        matches!(&err, PackError::OtherFormat { older: false, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(
            "built by a newer Outpost or another program (pack format \"3\", this build reads \
             format 2); update Outpost"
        ),
        "{err}"
    );

    // A truncated copy of a real pack (an interrupted copy to a field laptop): the first
    // 100 KB, and the first half.
    let bytes = std::fs::read(andorra().pack.path()).expect("read pack");
    let truncated = dir.path().join("truncated.outpost");
    for len in [100 * 1024, bytes.len() / 2] {
        std::fs::write(&truncated, &bytes[..len]).expect("write");
        let err = Pack::open(&truncated).expect_err("truncated");
        assert!(matches!(err, PackError::NotAPack { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "area pack {}: not an Outpost area pack (truncated: {len} of {} bytes)",
                truncated.display(),
                bytes.len()
            )
        );
    }

    // A plain MBTiles file (tilemaker output) is not a complete pack.
    let mbtiles = dir.path().join("plain.outpost");
    let c = rusqlite::Connection::open(&mbtiles).expect("create");
    c.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);",
    )
    .expect("schema");
    drop(c);
    let err = Pack::open(&mbtiles).expect_err("plain mbtiles");
    assert!(
        err.to_string()
            .contains("plain.outpost: not an Outpost area pack (no `places` table)"),
        "{err}"
    );
}

#[test]
fn pack_is_shared_across_threads() {
    let b = andorra();
    let (x, y) = tile_of(42.5063, 1.5218, 14);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| b.pack.tile(14, x, y).expect("read").map(|t| t.len())))
            .collect();
        let sizes: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect();
        assert!(sizes.iter().all(|s| s.is_some() && *s == sizes[0]));
    });
}

#[test]
fn a_bad_output_or_name_is_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("area.osm.pbf");
    std::fs::copy(andorra_pbf(), &input).expect("copy extract");
    let refuse = |out: &Path, name: Option<&str>| {
        let mut opts = BuildOptions::new(&input, out);
        opts.progress = false;
        opts.name = name.map(str::to_string);
        // A missing tilemaker would fail the build later; these must fail before it.
        opts.tilemaker = dir.path().join("no-tilemaker-here");
        outpost_geo::build_pack(&opts).expect_err("refused")
    };
    let err = refuse(&input, None);
    assert!(matches!(err, BuildError::OutputIsInput { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the output file is the input extract; choose another output file",
            input.display()
        )
    );
    let err = refuse(dir.path(), None);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: is a directory; give a file name such as {}",
            dir.path().display(),
            dir.path().join("area.outpost").display()
        )
    );
    let out = dir.path().join("gone/a.outpost");
    let err = refuse(&out, None);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: directory {} does not exist",
            out.display(),
            dir.path().join("gone").display()
        )
    );
    let out = dir.path().join("a.outpost");
    let err = refuse(&out, Some(" "));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the area name is empty; give a name, or none to use the input file's name \"area\"",
            out.display()
        )
    );
    // The extract is untouched and nothing else was written.
    assert_eq!(
        std::fs::read(&input).expect("read"),
        std::fs::read(andorra_pbf()).expect("read")
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}

/// Cancelling (what the CLI's Ctrl-C/SIGTERM/SIGHUP handler does) while tilemaker runs kills
/// and reaps tilemaker and removes the temporary pack, its journal and the work dir. The
/// fake tilemaker reports its pid and working directory through a FIFO, so the flag is set
/// exactly while it runs.
#[cfg(unix)]
#[test]
fn cancelling_kills_tilemaker_and_removes_the_temporary_files() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("tilemaker.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let fake = dir.path().join("fake-tilemaker");
    std::fs::write(
        &fake,
        format!(
            r#"#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --output ] && out="$2"; shift; done
: > "$out"; : > "$out-journal"
echo "$$ $PWD" > '{}'
exec sleep 600
"#,
            fifo.display()
        ),
    )
    .expect("write fake tilemaker");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let packs = dir.path().join("packs");
    std::fs::create_dir(&packs).expect("mkdir");
    let out = packs.join("area.outpost");
    let mut opts = BuildOptions::new(andorra_pbf(), &out);
    opts.progress = false;
    opts.tilemaker = fake;
    let cancel = opts.cancel.clone();
    let reporter = std::thread::spawn(move || {
        let report = std::fs::read_to_string(&fifo).expect("read fifo");
        cancel.store(true, Ordering::Relaxed);
        report
    });
    let err = outpost_geo::build_pack(&opts).expect_err("interrupted");
    assert!(matches!(err, BuildError::Interrupted { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: build interrupted", out.display())
    );
    let report = reporter.join().expect("reporter");
    let (pid, work) = report.trim().split_once(' ').expect("pid and dir");
    let alive = std::process::Command::new("kill")
        .args(["-0", pid])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!alive.success(), "tilemaker {pid} still running");
    assert_no_files(&packs);
    assert!(!Path::new(work).exists(), "work dir {work} left behind");
}
