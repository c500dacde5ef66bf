//! Importing stations, posts and checkpoints (`outpost_app::import`): the datum
//! conversions against reference points, every problem with its exact place, and the
//! console's preview / commit.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use outpost_app::import::{MAX_ROWS, MAX_TEXT_BYTES, read_facilities};
use outpost_app::ipc::{Datum, ImportFacilities, ImportFormat, ImportProblem};
use outpost_app::{Console, ConsoleOptions};
use outpost_domain::clock::FixedClock;
use outpost_domain::facility::{Facility, FacilityKind};
use outpost_domain::geo::LatLon;
use outpost_store::query;

/// Tiananmen in WGS-84; its GCJ-02 is (39.9101255, 116.4037426) and its BD-09
/// (39.9164647, 116.4101156), computed with `undrift_gps::wgs_to_gcj` / `wgs_to_bd` and
/// matching the published pair (39.910125, 116.403741).
const TIANANMEN: (f64, f64) = (39.908722, 116.397499);
/// A point in Dongsheng, Ordos, in WGS-84; GCJ-02 (39.8190151, 109.9876917), BD-09
/// (39.8247054, 109.9942849).
const DONGSHENG: (f64, f64) = (39.8180, 109.9820);

const GCJ_CSV: &str = include_str!("../fixtures/import/gcj02-chinese-header.csv");
const BD_GEOJSON: &str = include_str!("../fixtures/import/bd09.geojson");
const BAD_CSV: &str = include_str!("../fixtures/import/bad-rows.csv");
const SAMPLE: &str = include_str!("../../../../data/facilities/dongsheng-example-gcj02.csv");

fn ll((lat, lon): (f64, f64)) -> LatLon {
    LatLon { lat, lon }
}

fn by_id<'a>(fs: &'a [Facility], id: &str) -> &'a Facility {
    fs.iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("{id} imported"))
}

fn ats(problems: &[ImportProblem]) -> Vec<&str> {
    problems.iter().map(|p| p.at.as_str()).collect()
}

fn csv(text: &str) -> (Vec<Facility>, Vec<ImportProblem>) {
    read_facilities(text, ImportFormat::Csv, Datum::Wgs84)
}

fn geojson(text: &str) -> (Vec<Facility>, Vec<ImportProblem>) {
    read_facilities(text, ImportFormat::Geojson, Datum::Wgs84)
}

#[test]
fn gcj02_csv_with_chinese_header_and_bom_converts_to_wgs84() {
    let (fs, problems) = read_facilities(GCJ_CSV, ImportFormat::Csv, Datum::Gcj02);
    assert_eq!(problems, vec![]);
    assert_eq!(fs.len(), 2);
    let bj = by_id(&fs, "bj-tiananmen");
    assert_eq!(bj.kind, FacilityKind::Station, "公安局 is a station");
    assert_eq!(bj.name_zh, "示例 天安门", "名称 is name_zh");
    assert_eq!(bj.name_en, "");
    let back = bj.position.distance_m(&ll(TIANANMEN));
    assert!(back < 0.5, "round trip off by {back} m");
    // The offset is real: the GCJ-02 input is hundreds of metres from WGS-84.
    let offset = ll((39.9101255, 116.4037426)).distance_m(&ll(TIANANMEN));
    assert!((300.0..700.0).contains(&offset), "GCJ-02 offset {offset} m");

    let ds = by_id(&fs, "ds-centre");
    assert_eq!(ds.kind, FacilityKind::Post, "警务站 is a post");
    let back = ds.position.distance_m(&ll(DONGSHENG));
    assert!(back < 0.5, "round trip off by {back} m");
    let offset = ll((39.8190151, 109.9876917)).distance_m(&ll(DONGSHENG));
    assert!((300.0..700.0).contains(&offset), "GCJ-02 offset {offset} m");

    // The same file read as WGS-84 keeps the numbers as written.
    let (fs, _) = csv(GCJ_CSV);
    assert_eq!(
        by_id(&fs, "bj-tiananmen").position,
        ll((39.9101255, 116.4037426))
    );
}

#[test]
fn bd09_geojson_converts_to_wgs84() {
    let (fs, problems) = read_facilities(BD_GEOJSON, ImportFormat::Geojson, Datum::Bd09);
    assert_eq!(problems, vec![]);
    assert_eq!(fs.len(), 2);
    let bj = by_id(&fs, "bj-tiananmen");
    assert_eq!(bj.kind, FacilityKind::Checkpoint);
    assert_eq!(
        (bj.name_zh.as_str(), bj.name_en.as_str()),
        ("示例 天安门", "Example Tiananmen")
    );
    let back = bj.position.distance_m(&ll(TIANANMEN));
    assert!(back < 0.5, "round trip off by {back} m");
    // BD-09 adds Baidu's own shift (~0.006°, ~0.0065°) to GCJ-02's in about the same
    // direction: 1,378 m at Tiananmen.
    let offset = ll((39.9164647, 116.4101156)).distance_m(&ll(TIANANMEN));
    assert!(
        (1000.0..1600.0).contains(&offset),
        "BD-09 offset {offset} m"
    );

    // The Feature's own numeric "id" stands in for a missing id property.
    let ds = by_id(&fs, "17");
    assert_eq!(ds.kind, FacilityKind::Checkpoint, "检查站 is a checkpoint");
    let back = ds.position.distance_m(&ll(DONGSHENG));
    assert!(back < 0.5, "round trip off by {back} m");
    let offset = ll((39.8247054, 109.9942849)).distance_m(&ll(DONGSHENG));
    assert!(
        (1000.0..1600.0).contains(&offset),
        "BD-09 offset {offset} m"
    );
}

#[test]
fn gcj02_outside_china_is_stored_unchanged() {
    let text = "id,kind,name_en,lat,lon\nad-1,post,Andorra la Vella,42.5063,1.5218\n";
    let (fs, problems) = read_facilities(text, ImportFormat::Csv, Datum::Gcj02);
    assert_eq!(problems, vec![]);
    assert_eq!(fs[0].position, ll((42.5063, 1.5218)));
}

#[test]
fn every_bad_csv_row_is_named_by_line_and_column() {
    let (fs, problems) = csv(BAD_CSV);
    let ids: Vec<&str> = fs.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, vec!["ok-1"], "only the good row is read");
    assert_eq!(
        ats(&problems),
        vec![
            "line 3, column lat",
            "line 4, column lat",
            "line 5, column lon",
            "line 6, column kind",
            "line 7, column id",
            "line 8, column id",
            "line 9, column name_zh",
            "line 10, column id",
            "line 11",
            "line 12",
            "line 13, column lat",
        ]
    );
    let m: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        m[0],
        "\"39.8x\" is not a number (decimal degrees, e.g. 39.8180)"
    );
    assert_eq!(m[1], "latitude 95 is outside −90..90");
    assert_eq!(m[2], "longitude 190 is outside −180..180");
    assert_eq!(
        m[3],
        "unknown kind \"office\"; accepted: station, post, checkpoint, 派出所, 公安局, \
         指挥中心 (station), 警务站 (post), 检查站 (checkpoint)"
    );
    assert_eq!(m[4], "the id is empty");
    assert_eq!(
        m[5],
        "the id \"ok-1\" is also on line 2; ids must be unique"
    );
    assert_eq!(
        m[6],
        "the name has 101 characters; at most 100 are accepted"
    );
    assert_eq!(m[7], "the id has 65 characters; at most 64 are accepted");
    assert_eq!(m[8], "no name: name_zh and name_en are both empty");
    assert_eq!(m[9], "has 3 fields, the header has 6");
    assert_eq!(
        m[10],
        "latitude 109.98 is outside −90..90 (are latitude and longitude swapped?)"
    );
}

#[test]
fn csv_header_problems_are_on_line_1() {
    let (fs, problems) = csv("id,kind,name,latitude\nA,post,x,39.8\n");
    assert!(fs.is_empty());
    assert_eq!(ats(&problems), vec!["line 1"]);
    assert_eq!(
        problems[0].message,
        "the header lacks the column(s) lon; found: id, kind, name, latitude"
    );

    let (_, problems) = csv("ID,Kind,lat,lon\n");
    assert_eq!(ats(&problems), vec!["line 1"]);
    assert!(problems[0].message.contains("name_zh or name_en"));

    let (_, problems) = csv("");
    assert_eq!(ats(&problems), vec!["line 1"]);

    // Any order, any case, aliases; the column name in a problem is as written.
    let (fs, problems) =
        csv("LNG, Latitude ,Name_EN,KIND,Id\n109.982,39.818,Example,Checkpoint,c1\n");
    assert_eq!(problems, vec![]);
    assert_eq!(
        fs,
        vec![Facility {
            id: "c1".into(),
            kind: FacilityKind::Checkpoint,
            name_zh: String::new(),
            name_en: "Example".into(),
            position: ll(DONGSHENG),
        }]
    );
    let (_, problems) = csv("经度,纬度,名称,类型,编号\n109.98,north,示例,派出所,s1\n");
    assert_eq!(ats(&problems), vec!["line 2, column 纬度"]);
}

#[test]
fn geojson_problems_are_named_by_feature_and_property() {
    let text = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 39.818]},
       "properties": {"id": "p1", "kind": "post", "name_zh": "示例"}},
      {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[109.9, 39.8], [110.0, 39.8]]},
       "properties": {"id": "l1", "kind": "post", "name_zh": "示例"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 39.818]},
       "properties": {"id": "k1", "kind": "office", "name_zh": "示例"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 39.818]},
       "properties": {"kind": "post", "name_zh": "示例"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 95.0]},
       "properties": {"id": "r1", "kind": "post", "name_en": "Example"}},
      {"type": "Feature", "geometry": null, "properties": {"id": "n1", "kind": "post", "name_en": "x"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 39.818]},
       "properties": {"id": "p1", "kind": "station", "name_en": "Example"}},
      {"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 39.818]},
       "properties": {"id": "e1", "kind": "post", "name_en": ""}}
    ]}"#;
    let (fs, problems) = geojson(text);
    let ids: Vec<&str> = fs.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, vec!["p1"]);
    assert_eq!(fs[0].position, ll(DONGSHENG), "[lon, lat] order");
    assert_eq!(
        ats(&problems),
        vec![
            "feature 2, geometry",
            "feature 3, property kind",
            "feature 4, property id",
            "feature 5, geometry",
            "feature 6, geometry",
            "feature 7, property id",
            "feature 8",
        ]
    );
    let m: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(m[0], "is a LineString; only Point features are imported");
    assert!(m[1].starts_with("unknown kind \"office\"; accepted: station, post"));
    assert_eq!(m[2], "no id given");
    assert_eq!(m[3], "latitude 95 is outside −90..90");
    assert_eq!(m[4], "no geometry; a Point is needed");
    assert_eq!(
        m[5],
        "the id \"p1\" is also on feature 1; ids must be unique"
    );
    assert_eq!(m[6], "no name: name_zh and name_en are both empty");

    // A single Feature is accepted.
    let one = r#"{"type": "Feature", "geometry": {"type": "Point", "coordinates": [109.982, 39.818]},
                  "properties": {"编号": "s1", "类型": "指挥中心", "名称": "示例"}}"#;
    let (fs, problems) = geojson(one);
    assert_eq!(problems, vec![]);
    assert_eq!(fs[0].kind, FacilityKind::Station);

    // Broken JSON: one problem with serde_json's line and column.
    let (fs, problems) = geojson("{\"type\": \"FeatureCollection\",\n  \"features\": [,]}");
    assert!(fs.is_empty());
    assert_eq!(ats(&problems), vec!["line 2, column 16"]);
    assert!(problems[0].message.starts_with("not valid JSON: "));

    // Not a FeatureCollection.
    let (_, problems) = geojson(r#"{"type": "Point", "coordinates": [1.0, 2.0]}"#);
    assert_eq!(ats(&problems), vec!["file"]);
    assert_eq!(
        problems[0].message,
        "expected a FeatureCollection or a Feature of Point geometries, found type \"Point\""
    );
}

#[test]
fn limits_give_a_problem_not_a_hang() {
    let mut text = String::from("id,kind,name_en,lat,lon\n");
    for i in 0..=MAX_ROWS {
        text.push_str(&format!("p{i},post,Example {i},39.8,109.98\n"));
    }
    let (fs, problems) = csv(&text);
    assert_eq!(fs.len(), MAX_ROWS);
    assert_eq!(ats(&problems), vec!["line 10002"]);
    assert_eq!(problems[0].message, "more than 10000 rows; split the file");

    let big = format!("id,kind,name_en,lat,lon\n{}", " ".repeat(MAX_TEXT_BYTES));
    let (fs, problems) = csv(&big);
    assert!(fs.is_empty());
    assert_eq!(ats(&problems), vec!["file"]);
    assert!(problems[0].message.contains("at most 5000000 (5 MB)"));
}

fn console(dir: &std::path::Path) -> Console {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
            .single()
            .expect("valid date"),
    ));
    Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.to_path_buf(),
            demo: false,
            user: "cmdr.li".into(),
        },
        clock,
    )
    .expect("open console")
}

fn import(c: &Console, text: &str, commit: bool) -> outpost_app::ipc::ImportReport {
    c.import_facilities(ImportFacilities {
        text: text.into(),
        format: ImportFormat::Csv,
        datum: Datum::Gcj02,
        commit,
    })
    .expect("import")
}

fn facility_ops(dir: &std::path::Path) -> usize {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date");
    let store = outpost_store::Store::open(&dir.join("outpost.db"), t).expect("open store");
    query::outbox_all(store.conn())
        .expect("outbox")
        .iter()
        .filter(|r| r.kind == "facility.register")
        .count()
}

/// The sample's points as generated in WGS-84 (the file holds their GCJ-02).
const SAMPLE_WGS84: [(&str, f64, f64); 11] = [
    ("example-centre", 39.8180, 109.9820),
    ("example-post-1", 39.8230, 109.9610),
    ("example-post-2", 39.8105, 109.9745),
    ("example-post-3", 39.8300, 109.9900),
    ("example-post-4", 39.8150, 110.0050),
    ("example-post-5", 39.8050, 109.9550),
    ("example-post-6", 39.8370, 109.9700),
    ("example-post-7", 39.8265, 110.0130),
    ("example-checkpoint-1", 39.8020, 109.9420),
    ("example-checkpoint-2", 39.8400, 110.0180),
    ("example-checkpoint-3", 39.8010, 110.0100),
];

#[test]
fn console_preview_commit_and_refusal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = console(dir.path());
    let rev = c.revision();

    // Preview: converted and checked, nothing written.
    let report = import(&c, SAMPLE, false);
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.facilities.len(), 11);
    assert_eq!(report.written, 0);
    assert!(c.console_state().expect("state").facilities.is_empty());
    assert_eq!(facility_ops(dir.path()), 0);
    assert_eq!(c.revision(), rev);

    // Commit: 11 facilities of the right kinds, in WGS-84.
    let report = import(&c, SAMPLE, true);
    assert_eq!(report.written, 11);
    let fs = c.console_state().expect("state").facilities;
    assert_eq!(fs.len(), 11);
    let count = |k| fs.iter().filter(|f| f.kind == k).count();
    assert_eq!(count(FacilityKind::Station), 1);
    assert_eq!(count(FacilityKind::Post), 7);
    assert_eq!(count(FacilityKind::Checkpoint), 3);
    for (id, lat, lon) in SAMPLE_WGS84 {
        let f = by_id(&fs, id);
        let d = f.position.distance_m(&ll((lat, lon)));
        assert!(d < 0.5, "{id} is {d} m from its WGS-84 point");
        assert!(f.name_zh.starts_with("示例") && f.name_en.starts_with("Example"));
        assert!((39.7999..39.8401).contains(&f.position.lat));
        assert!((109.9399..110.0201).contains(&f.position.lon));
    }
    assert_eq!(
        by_id(&fs, "example-centre").name_en,
        "Example command centre"
    );
    assert_eq!(facility_ops(dir.path()), 11);

    // The same file again: nothing changed, nothing written.
    assert_eq!(import(&c, SAMPLE, true).written, 0);
    assert_eq!(facility_ops(dir.path()), 11);

    // A changed row updates that facility (register semantics).
    let renamed = SAMPLE.replace("Example post 3", "Example post 3 (moved)");
    assert_eq!(import(&c, &renamed, true).written, 1);
    let fs = c.console_state().expect("state").facilities;
    assert_eq!(fs.len(), 11);
    assert_eq!(
        by_id(&fs, "example-post-3").name_en,
        "Example post 3 (moved)"
    );

    // One bad row: nothing written, not even the good rows.
    let bad = format!(
        "{}new-post,post,示例新站,Example new post,39.81,109.97\nbad,post,示例,Example,39.8,abc\n",
        SAMPLE
    );
    let report = import(&c, &bad, true);
    assert_eq!(ats(&report.problems), vec!["line 14, column lon"]);
    assert_eq!(report.written, 0);
    assert_eq!(c.console_state().expect("state").facilities.len(), 11);
    assert_eq!(facility_ops(dir.path()), 12);

    let report = import(&c, BAD_CSV, true);
    assert_eq!(report.written, 0);
    assert_eq!(report.problems.len(), 11);
    assert_eq!(c.console_state().expect("state").facilities.len(), 11);
}

#[test]
fn text_that_was_not_utf8_and_a_zero_position_are_problems() {
    // GBK bytes read as UTF-8 become U+FFFD: refused on the line where they are, so no
    // garbled name is ever stored.
    let (fs, problems) =
        csv("id,kind,name_zh,lat,lon\npost-1,post,\u{fffd}\u{fffd}\u{fffd},39.82,109.98\n");
    assert!(fs.is_empty());
    assert_eq!(ats(&problems), vec!["line 2"]);
    assert!(problems[0].message.contains("not UTF-8"), "{problems:?}");
    // 0,0 is an empty cell read as zero.
    let (fs, problems) = csv("id,kind,name_zh,lat,lon\npost-1,post,示例,0,0\n");
    assert!(fs.is_empty());
    assert_eq!(ats(&problems), vec!["line 2, column lat"]);
    assert!(problems[0].message.contains("both 0"), "{problems:?}");
}
