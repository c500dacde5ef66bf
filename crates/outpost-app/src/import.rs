//! Importing stations, posts and checkpoints from CSV or GeoJSON whose coordinates are in
//! a declared datum (WGS-84, GCJ-02, BD-09). Everything is stored in WGS-84: GCJ-02 and
//! BD-09 are converted by the `undrift_gps` crate (the published GCJ-02 offset formula and
//! its iterative inverse, about 1e-7° ≈ 1 cm).
//!
//! The columns (CSV header) or properties (GeoJSON) are matched by name, ignoring case
//! and surrounding spaces, in any order:
//!
//! | field     | accepted names                          | required                 |
//! |-----------|-----------------------------------------|--------------------------|
//! | `id`      | `id`, `编号`                             | yes                      |
//! | `kind`    | `kind`, `类型`                           | yes                      |
//! | `name_zh` | `name_zh`; else `name`, `名称`            | one of the two names     |
//! | `name_en` | `name_en`                               | one of the two names     |
//! | `lat`     | `lat`, `latitude`, `纬度` (CSV only)      | yes (GeoJSON: geometry)  |
//! | `lon`     | `lon`, `lng`, `longitude`, `经度` (CSV)   | yes (GeoJSON: geometry)  |
//!
//! Kinds: `station`, `post`, `checkpoint` (any case) or 派出所 / 公安局 / 指挥中心
//! (station), 警务站 (post), 检查站 (checkpoint).
//!
//! GCJ-02 is only defined inside China: `undrift_gps` leaves a point outside its box
//! (latitude 0.8293..55.8271, longitude 72.004..137.8347) unchanged, so such a point
//! declared GCJ-02 (or BD-09, apart from Baidu's own shift) is stored as given.

use std::collections::HashMap;

use crate::console::Console;
use crate::error::AppError;
use crate::ipc::{Datum, ImportFacilities, ImportFormat, ImportProblem, ImportReport};
use outpost_domain::merge::{MAX_ID_CHARS, MAX_NAME_CHARS};
use outpost_domain::{Facility, FacilityKind, LatLon, OpBody};

/// The most rows (CSV, not counting the header) or features (GeoJSON) one file may hold.
pub const MAX_ROWS: usize = 10_000;
/// The largest file accepted, bytes of UTF-8 text (5 MB).
pub const MAX_TEXT_BYTES: usize = 5_000_000;

/// The kind words accepted, as listed in problems.
const KIND_WORDS: &str = "station, post, checkpoint, 派出所, 公安局, 指挥中心 (station), \
                          警务站 (post), 检查站 (checkpoint)";

/// A facility field and the column or property names accepted for it (lower case), in
/// order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Kind,
    NameZh,
    NameEn,
    Lat,
    Lon,
}

impl Field {
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Id => &["id", "编号"],
            Field::Kind => &["kind", "类型"],
            Field::NameZh => &["name_zh", "name", "名称"],
            Field::NameEn => &["name_en"],
            Field::Lat => &["lat", "latitude", "纬度"],
            Field::Lon => &["lon", "lng", "longitude", "经度"],
        }
    }
}

/// Where a record is in the file: a CSV line (the header is line 1) or a GeoJSON
/// feature (from 1).
#[derive(Debug, Clone, Copy)]
enum Origin {
    Line(u64),
    Feature(usize),
}

impl Origin {
    fn at(self) -> String {
        match self {
            Origin::Line(n) => format!("line {n}"),
            Origin::Feature(n) => format!("feature {n}"),
        }
    }

    /// `"line 4, column lat"` or `"feature 2, property kind"`; `name` as in the file.
    fn at_field(self, name: &str) -> String {
        match self {
            Origin::Line(n) => format!("line {n}, column {name}"),
            Origin::Feature(n) => format!("feature {n}, property {name}"),
        }
    }
}

/// One value of a record and the column or property name it came from (as written).
#[derive(Debug, Clone)]
struct Value {
    name: String,
    text: String,
}

/// One row or feature before checking.
#[derive(Debug)]
struct Record {
    origin: Origin,
    id: Option<Value>,
    kind: Option<Value>,
    name_zh: Option<Value>,
    name_en: Option<Value>,
}

/// Collects facilities and problems; remembers ids for the duplicate check.
#[derive(Debug, Default)]
struct Reader {
    facilities: Vec<Facility>,
    problems: Vec<ImportProblem>,
    seen: HashMap<String, Origin>,
}

impl Reader {
    fn problem(&mut self, at: String, message: impl Into<String>) {
        self.problems.push(ImportProblem {
            at,
            message: message.into(),
        });
    }

    /// Checks one record; `position` is the (lat, lon) pair in the file's datum, or the
    /// problems already found with it.
    fn record(&mut self, r: Record, position: Option<(f64, f64)>, datum: Datum) {
        let before = self.problems.len();
        let o = r.origin;
        let (id_text, id_name, given) = match r.id {
            Some(v) => (v.text, v.name, true),
            None => (String::new(), "id".to_string(), false),
        };
        if id_text.is_empty() {
            let what = if given {
                "the id is empty"
            } else {
                "no id given"
            };
            self.problem(o.at_field(&id_name), what);
        } else if let Some(n) = too_long(&id_text, MAX_ID_CHARS) {
            self.problem(
                o.at_field(&id_name),
                format!("the id has {n} characters; at most {MAX_ID_CHARS} are accepted"),
            );
        } else if let Some(first) = self.seen.get(&id_text).copied() {
            self.problem(
                o.at_field(&id_name),
                format!(
                    "the id \"{id_text}\" is also on {}; ids must be unique",
                    first.at()
                ),
            );
        } else {
            self.seen.insert(id_text.clone(), o);
        }

        let kind = match &r.kind {
            Some(v) if !v.text.is_empty() => {
                let k = parse_kind(&v.text);
                if k.is_none() {
                    self.problem(
                        o.at_field(&v.name),
                        format!("unknown kind \"{}\"; accepted: {KIND_WORDS}", v.text),
                    );
                }
                k
            }
            Some(v) => {
                self.problem(
                    o.at_field(&v.name),
                    format!("the kind is empty; accepted: {KIND_WORDS}"),
                );
                None
            }
            None => {
                self.problem(
                    o.at_field("kind"),
                    format!("no kind given; accepted: {KIND_WORDS}"),
                );
                None
            }
        };

        let mut names = [String::new(), String::new()];
        for (slot, v) in names.iter_mut().zip([&r.name_zh, &r.name_en]) {
            let Some(v) = v else { continue };
            if let Some(n) = too_long(&v.text, MAX_NAME_CHARS) {
                self.problem(
                    o.at_field(&v.name),
                    format!("the name has {n} characters; at most {MAX_NAME_CHARS} are accepted"),
                );
            }
            slot.clone_from(&v.text);
        }
        let [name_zh, name_en] = names;
        if name_zh.is_empty() && name_en.is_empty() {
            self.problem(o.at(), "no name: name_zh and name_en are both empty");
        }

        let wgs = position.and_then(|(lat, lon)| {
            let (lat, lon) = to_wgs84(datum, lat, lon);
            match LatLon::new(lat, lon) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.problem(o.at(), format!("after conversion to WGS-84: {e}"));
                    None
                }
            }
        });

        if self.problems.len() > before {
            return;
        }
        if let (Some(kind), Some(position)) = (kind, wgs) {
            self.facilities.push(Facility {
                id: id_text,
                kind,
                name_zh,
                name_en,
                position,
            });
        }
    }

    /// Checks a (lat, lon) pair's ranges, reporting each bad one at its own column or
    /// property (`lat_at`, `lon_at`).
    fn check_range(&mut self, lat: f64, lon: f64, lat_at: String, lon_at: String) -> bool {
        let mut ok = true;
        let swapped = (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat);
        if let Err(e) = LatLon::new(lat, 0.0) {
            let hint = if swapped {
                " (are latitude and longitude swapped?)"
            } else {
                ""
            };
            self.problem(lat_at.clone(), format!("{e}{hint}"));
            ok = false;
        }
        if let Err(e) = LatLon::new(0.0, lon) {
            self.problem(lon_at, e.to_string());
            ok = false;
        }
        if ok && lat == 0.0 && lon == 0.0 {
            // 0°, 0° is in the Gulf of Guinea: an empty cell read as zero, not a facility.
            self.problem(
                lat_at,
                "latitude and longitude are both 0 (the Gulf of Guinea): the position is missing",
            );
            ok = false;
        }
        ok
    }
}

/// The number of characters of `s` when more than `max`.
fn too_long(s: &str, max: usize) -> Option<usize> {
    let n = s.chars().count();
    (n > max).then_some(n)
}

/// The GeoJSON type name of a geometry.
fn geometry_type(g: &geojson::Value) -> &'static str {
    match g {
        geojson::Value::Point(_) => "Point",
        geojson::Value::MultiPoint(_) => "MultiPoint",
        geojson::Value::LineString(_) => "LineString",
        geojson::Value::MultiLineString(_) => "MultiLineString",
        geojson::Value::Polygon(_) => "Polygon",
        geojson::Value::MultiPolygon(_) => "MultiPolygon",
        geojson::Value::GeometryCollection(_) => "GeometryCollection",
    }
}

/// A kind word (see the module docs), or `None`.
fn parse_kind(s: &str) -> Option<FacilityKind> {
    match s.trim().to_lowercase().as_str() {
        "station" | "派出所" | "公安局" | "指挥中心" => Some(FacilityKind::Station),
        "post" | "警务站" => Some(FacilityKind::Post),
        "checkpoint" | "检查站" => Some(FacilityKind::Checkpoint),
        _ => None,
    }
}

/// Converts a (lat, lon) pair in `datum` to WGS-84 degrees. Outside China GCJ-02 is the
/// identity (see the module docs).
fn to_wgs84(datum: Datum, lat: f64, lon: f64) -> (f64, f64) {
    match datum {
        Datum::Wgs84 => (lat, lon),
        Datum::Gcj02 => undrift_gps::gcj_to_wgs(lat, lon),
        Datum::Bd09 => undrift_gps::bd_to_wgs(lat, lon),
    }
}

/// Reads a facility file: every row or feature becomes a [`Facility`] in WGS-84, or an
/// [`ImportProblem`] saying where and what is wrong. Pure: no IO.
///
/// `facilities` holds the rows without problems (for a preview); a row with any problem
/// is left out. Problems are at `"line N"` / `"line N, column X"` (CSV, the header is
/// line 1, X as written in the header), `"feature N"` / `"feature N, property X"` or
/// `"feature N, geometry"` (GeoJSON, from 1), `"line L, column C"` for text that is not
/// JSON (serde_json's position), or `"file"` for the whole file (too big, not a
/// FeatureCollection). Limits: [`MAX_TEXT_BYTES`], [`MAX_ROWS`].
pub fn read_facilities(
    text: &str,
    format: ImportFormat,
    datum: Datum,
) -> (Vec<Facility>, Vec<ImportProblem>) {
    let mut reader = Reader::default();
    if text.len() > MAX_TEXT_BYTES {
        reader.problem(
            "file".into(),
            format!(
                "the file has {} bytes; at most {MAX_TEXT_BYTES} (5 MB) are accepted: split it",
                text.len()
            ),
        );
        return (reader.facilities, reader.problems);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(line) = text
        .lines()
        .position(|l| l.contains('\u{fffd}'))
        .map(|i| i + 1)
    {
        // A file in another encoding (GBK from Excel on Chinese Windows) read as UTF-8:
        // its names would be stored as U+FFFD replacement characters.
        reader.problem(
            format!("line {line}"),
            "the text has characters that could not be read (\u{fffd}): the file is not UTF-8; \
             save it as UTF-8 (Excel: \"CSV UTF-8\") or open it in the console, which also reads GBK/GB18030",
        );
        return (reader.facilities, reader.problems);
    }
    match format {
        ImportFormat::Csv => read_csv(&mut reader, text, datum),
        ImportFormat::Geojson => read_geojson(&mut reader, text, datum),
    }
    (reader.facilities, reader.problems)
}

/// The index of the first column named like `field`.
fn column(header: &[String], field: Field) -> Option<usize> {
    field
        .aliases()
        .iter()
        .find_map(|a| header.iter().position(|h| h.to_lowercase() == *a))
}

/// Reads CSV rows (the header gives the columns, see the module docs) into `reader`.
fn read_csv(reader: &mut Reader, text: &str, datum: Datum) {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = csv.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(h)) => h.iter().map(str::to_string).collect(),
        Some(Err(e)) => {
            reader.problem("line 1".into(), format!("the header cannot be read: {e}"));
            return;
        }
        None => {
            reader.problem(
                "line 1".into(),
                "the file is empty; a header row is needed: id,kind,name_zh,name_en,lat,lon",
            );
            return;
        }
    };
    let col = |f| column(&header, f);
    let (id, kind, name_zh, name_en, lat, lon) = (
        col(Field::Id),
        col(Field::Kind),
        col(Field::NameZh),
        col(Field::NameEn),
        col(Field::Lat),
        col(Field::Lon),
    );
    let mut missing: Vec<&str> = [(id, "id"), (kind, "kind"), (lat, "lat"), (lon, "lon")]
        .into_iter()
        .filter(|(c, _)| c.is_none())
        .map(|(_, n)| n)
        .collect();
    if name_zh.is_none() && name_en.is_none() {
        missing.push("name_zh or name_en");
    }
    let (Some(id), Some(kind), Some(lat), Some(lon), true) =
        (id, kind, lat, lon, missing.is_empty())
    else {
        reader.problem(
            "line 1".into(),
            format!(
                "the header lacks the column(s) {}; found: {}",
                missing.join(", "),
                header.join(", ")
            ),
        );
        return;
    };

    for (n, rec) in records.enumerate() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(n as u64 + 2, csv::Position::line);
                reader.problem(format!("line {line}"), format!("cannot be read: {e}"));
                continue;
            }
        };
        let line = rec.position().map_or(n as u64 + 2, csv::Position::line);
        if n >= MAX_ROWS {
            reader.problem(
                format!("line {line}"),
                format!("more than {MAX_ROWS} rows; split the file"),
            );
            return;
        }
        if rec.len() != header.len() {
            reader.problem(
                format!("line {line}"),
                format!("has {} fields, the header has {}", rec.len(), header.len()),
            );
            continue;
        }
        let value = |i: usize| Value {
            name: header[i].clone(),
            text: rec.get(i).unwrap_or_default().to_string(),
        };
        let origin = Origin::Line(line);
        let number = |reader: &mut Reader, i: usize| -> Option<f64> {
            let v = value(i);
            match v.text.parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) if v.text.is_empty() => {
                    reader.problem(origin.at_field(&v.name), "empty; a number is needed");
                    None
                }
                Err(_) => {
                    reader.problem(
                        origin.at_field(&v.name),
                        format!(
                            "\"{}\" is not a number (decimal degrees, e.g. 39.8180)",
                            v.text
                        ),
                    );
                    None
                }
            }
        };
        let (la, lo) = (number(reader, lat), number(reader, lon));
        let position = match (la, lo) {
            (Some(la), Some(lo)) => reader
                .check_range(
                    la,
                    lo,
                    origin.at_field(&header[lat]),
                    origin.at_field(&header[lon]),
                )
                .then_some((la, lo)),
            _ => None,
        };
        let r = Record {
            origin,
            id: Some(value(id)),
            kind: Some(value(kind)),
            name_zh: name_zh.map(value),
            name_en: name_en.map(value),
        };
        reader.record(r, position, datum);
    }
}

/// Reads the Point features of a GeoJSON FeatureCollection or single Feature into
/// `reader`; each feature is parsed on its own so one broken feature names only itself.
fn read_geojson(reader: &mut Reader, text: &str, datum: Datum) {
    let json: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            reader.problem(
                format!("line {}, column {}", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            );
            return;
        }
    };
    let kind = json
        .get("type")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let features: Vec<serde_json::Value> = match (kind.as_deref(), json) {
        (Some("FeatureCollection"), serde_json::Value::Object(mut o)) => {
            match o.remove("features") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    reader.problem(
                        "file".into(),
                        "the FeatureCollection has no \"features\" array",
                    );
                    return;
                }
            }
        }
        (Some("Feature"), v) => vec![v],
        (k, _) => {
            reader.problem(
                "file".into(),
                format!(
                    "expected a FeatureCollection or a Feature of Point geometries, found {}",
                    k.map_or_else(|| "no \"type\"".to_string(), |k| format!("type \"{k}\""))
                ),
            );
            return;
        }
    };
    for (i, f) in features.into_iter().enumerate() {
        let origin = Origin::Feature(i + 1);
        if i >= MAX_ROWS {
            reader.problem(
                origin.at(),
                format!("more than {MAX_ROWS} features; split the file"),
            );
            return;
        }
        let feature = match geojson::Feature::from_json_value(f) {
            Ok(f) => f,
            Err(e) => {
                reader.problem(origin.at(), format!("not a GeoJSON Feature: {e}"));
                continue;
            }
        };
        let position = match feature.geometry.as_ref().map(|g| &g.value) {
            Some(geojson::Value::Point(c)) if c.len() >= 2 => {
                // GeoJSON positions are [longitude, latitude].
                let (lon, lat) = (c[0], c[1]);
                let at = format!("{}, geometry", origin.at());
                reader
                    .check_range(lat, lon, at.clone(), at)
                    .then_some((lat, lon))
            }
            Some(geojson::Value::Point(_)) => {
                reader.problem(
                    format!("{}, geometry", origin.at()),
                    "the Point needs [longitude, latitude]",
                );
                None
            }
            Some(other) => {
                reader.problem(
                    format!("{}, geometry", origin.at()),
                    format!(
                        "is a {}; only Point features are imported",
                        geometry_type(other)
                    ),
                );
                None
            }
            None => {
                reader.problem(
                    format!("{}, geometry", origin.at()),
                    "no geometry; a Point is needed",
                );
                None
            }
        };
        let props = feature.properties.unwrap_or_default();
        let prop = |field: Field| -> Option<Value> {
            field.aliases().iter().find_map(|a| {
                props
                    .iter()
                    .find(|(k, _)| k.trim().to_lowercase() == *a)
                    .map(|(k, v)| Value {
                        name: k.clone(),
                        text: match v {
                            serde_json::Value::String(s) => s.trim().to_string(),
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        },
                    })
            })
        };
        // The Feature's own "id" member stands in when the properties have none.
        let id = prop(Field::Id).or_else(|| {
            feature.id.as_ref().map(|fid| Value {
                name: "id".into(),
                text: match fid {
                    geojson::feature::Id::String(s) => s.trim().to_string(),
                    geojson::feature::Id::Number(n) => n.to_string(),
                },
            })
        });
        let r = Record {
            origin,
            id,
            kind: prop(Field::Kind),
            name_zh: prop(Field::NameZh),
            name_en: prop(Field::NameEn),
        };
        reader.record(r, position, datum);
    }
}

/// How far outside the pack's bounds a facility may lie before it is flagged, degrees
/// (about 5 km: posts on the district's edge are fine).
const OUTSIDE_PACK_MARGIN_DEG: f64 = 0.05;

/// Warnings for facilities outside the area pack's `bounds` (`[west, south, east, north]`,
/// WGS-84 degrees, the MBTiles metadata) widened by [`OUTSIDE_PACK_MARGIN_DEG`].
fn outside_pack(facilities: &[Facility], bounds: [f64; 4]) -> Vec<ImportProblem> {
    let [w, s, e, n] = bounds;
    let m = OUTSIDE_PACK_MARGIN_DEG;
    facilities
        .iter()
        .filter(|f| {
            let p = f.position;
            !(s - m..=n + m).contains(&p.lat) || !(w - m..=e + m).contains(&p.lon)
        })
        .map(|f| ImportProblem {
            at: format!("facility {}", f.id),
            message: format!(
                "{:.6},{:.6} is outside the area pack ({s:.3}..{n:.3} N, {w:.3}..{e:.3} E): \
                 check the latitude/longitude order and the declared datum",
                f.position.lat, f.position.lon
            ),
        })
        .collect()
}

impl Console {
    /// Imports facilities (see [`read_facilities`]); with `commit`, and only when no row
    /// has a problem, writes one `facility.register` op per facility (an existing
    /// facility with the same id is updated; an unchanged one writes nothing and is not
    /// counted in `written`). A preview (`commit` false) writes nothing.
    ///
    /// Every row is checked before anything is written, and the ops are written in ONE
    /// store transaction ([`outpost_store::Store::write_many`]): a file with a bad row, or
    /// a storage error midway, writes nothing; listeners hear once.
    ///
    /// # Errors
    /// Storage errors.
    pub fn import_facilities(&self, args: ImportFacilities) -> Result<ImportReport, AppError> {
        let (facilities, problems) = read_facilities(&args.text, args.format, args.datum);
        let mut written = 0u32;
        if args.commit && problems.is_empty() {
            // One transaction: the existing facilities are read and every new or changed
            // one written together, so an import is all or nothing even on a disk error.
            let n = self.act_many(|conn| {
                let existing: HashMap<String, Facility> = outpost_store::query::facilities(conn)?
                    .into_iter()
                    .map(|f| (f.id.clone(), f))
                    .collect();
                Ok(facilities
                    .iter()
                    .filter(|f| existing.get(&f.id) != Some(*f))
                    .map(|f| OpBody::FacilityRegister {
                        facility: f.clone(),
                    })
                    .collect())
            })?;
            written = u32::try_from(n).unwrap_or(u32::MAX);
        }
        let warnings = self
            .pack()
            .map(|pack| outside_pack(&facilities, pack.meta().bounds))
            .unwrap_or_default();
        Ok(ImportReport {
            facilities,
            problems,
            warnings,
            written,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_outside_the_pack_are_warned_about() {
        let f = |id: &str, lat: f64, lon: f64| Facility {
            id: id.into(),
            kind: FacilityKind::Post,
            name_zh: "示例".into(),
            name_en: String::new(),
            position: LatLon { lat, lon },
        };
        // Andorra's bounds; a post on the edge (within the margin) is fine, a swapped pair
        // and a point in Dongsheng are not.
        let bounds = [1.41, 42.42, 1.79, 42.66];
        let w = outside_pack(
            &[
                f("inside", 42.5, 1.5),
                f("edge", 42.68, 1.5),
                f("swapped", 1.5, 42.5),
                f("ordos", 39.82, 109.98),
            ],
            bounds,
        );
        assert_eq!(
            w.iter().map(|p| p.at.as_str()).collect::<Vec<_>>(),
            vec!["facility swapped", "facility ordos"]
        );
        assert!(w[0].message.contains("latitude/longitude order"), "{w:?}");
    }
}
