//! Reading an area pack: metadata, tiles, search and the road network.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use outpost_domain::LatLon;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::PackError;
use crate::routing::HierarchyOrder;
use crate::schema;

/// Radius within which `describe` names a street, metres.
pub const STREET_RADIUS_M: f64 = 150.0;

/// What a pack covers and where it came from (MBTiles `metadata` plus our keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackMeta {
    /// Human name of the area, e.g. `"andorra"`.
    pub name: String,
    /// Bounds `[west, south, east, north]`, WGS-84 degrees (MBTiles `bounds`).
    pub bounds: [f64; 4],
    /// Default map centre (MBTiles `center`).
    pub center: LatLon,
    /// Default zoom level for `center` (web-mercator zoom).
    pub zoom: f64,
    /// Lowest zoom level with tiles.
    pub min_zoom: u8,
    /// Highest zoom level with tiles.
    pub max_zoom: u8,
    /// Attribution to show on the map, e.g. `"© OpenStreetMap contributors"`.
    pub attribution: String,
    /// When the pack was built (UTC).
    pub built_at: DateTime<Utc>,
    /// SHA-256 (lowercase hex) of the OSM PBF file the pack was built from.
    pub source_sha256: String,
}

/// What kind of thing a search hit is. Crosses the IPC as `PlaceKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "PlaceKind")]
pub enum SearchKind {
    /// A named street (one hit per street name and area).
    Street,
    /// A town, village, suburb, locality (OSM `place=*`).
    Place,
    /// A point of interest (amenity, shop, tourism, office...).
    Poi,
    /// An address (`addr:housenumber` + `addr:street`).
    Address,
}

impl SearchKind {
    /// The value stored in the `places.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Street => "street",
            SearchKind::Place => "place",
            SearchKind::Poi => "poi",
            SearchKind::Address => "address",
        }
    }

    fn parse(s: &str) -> Option<SearchKind> {
        Some(match s {
            "street" => SearchKind::Street,
            "place" => SearchKind::Place,
            "poi" => SearchKind::Poi,
            "address" => SearchKind::Address,
            _ => return None,
        })
    }

    fn order(self) -> u8 {
        match self {
            SearchKind::Street => 0,
            SearchKind::Place => 1,
            SearchKind::Poi => 2,
            SearchKind::Address => 3,
        }
    }
}

/// One offline search result. Crosses the IPC as `PlaceHit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(rename = "PlaceHit")]
pub struct SearchHit {
    /// OSM `name` (for addresses: `"<street> <housenumber>"`).
    pub name: String,
    /// OSM `name:zh`, if tagged.
    pub name_zh: Option<String>,
    /// OSM `name:en`, if tagged.
    pub name_en: Option<String>,
    /// What it is.
    pub kind: SearchKind,
    /// OSM class, e.g. `"residential"`, `"hospital"`, `"town"`.
    pub category: String,
    /// A representative point (WGS-84); for streets a point on the street.
    pub position: LatLon,
    /// Distance from `near`, metres, when `near` was given.
    pub distance_m: Option<f64>,
    /// Street + nearest named place, ready to use as an incident address.
    pub address: String,
}

/// A human description of a point, for a new incident's address (also an IPC type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LocationDescription {
    /// `"street, place"`, or whichever of the two exists, or `"lat, lon"` if neither.
    pub address: String,
    /// Nearest named street within [`STREET_RADIUS_M`].
    pub street: Option<String>,
    /// Nearest named place (OSM `place=*`).
    pub place: Option<String>,
}

/// A node of the road graph.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoadNode {
    /// OSM node id.
    pub id: i64,
    /// Position (WGS-84).
    pub at: LatLon,
}

/// A directed-or-not road segment between two consecutive nodes of an OSM way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoadEdge {
    /// Index into [`RoadNetwork::nodes`] where the segment starts.
    pub from: usize,
    /// Index into [`RoadNetwork::nodes`] where the segment ends.
    pub to: usize,
    /// Great-circle length, metres.
    pub length_m: f64,
    /// Raw OSM `highway=*` value (`"primary"`, `"residential"`, `"footway"`...).
    pub class: String,
    /// OSM `name`, if any.
    pub name: Option<String>,
    /// True when the segment may only be driven `from` → `to` (OSM `oneway=yes|1|true`,
    /// `junction=roundabout`, motorways; `oneway=-1` ways are stored reversed).
    pub oneway: bool,
    /// OSM `maxspeed` in km/h, when tagged numerically (`"50"`, `"30 mph"` converted).
    pub maxspeed_kmh: Option<f64>,
    /// True when OSM access tags let a car use the segment (the most specific of
    /// `motorcar`, `motor_vehicle`, `vehicle`, `access`; see `build::index::car_access`).
    pub car_access: bool,
}

/// The road graph of a pack: every OSM `highway=*` way split into segments at each node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoadNetwork {
    /// Nodes; edges refer to them by index.
    pub nodes: Vec<RoadNode>,
    /// Segments.
    pub edges: Vec<RoadEdge>,
}

/// A read-only handle on an area pack file. `Send + Sync`; each call borrows one SQLite
/// connection from a small pool, so tile requests can run in parallel.
#[derive(Debug)]
pub struct Pack {
    path: PathBuf,
    meta: PackMeta,
    places: Vec<(String, LatLon)>,
    pool: Mutex<Vec<Connection>>,
}

impl Pack {
    /// Opens a pack and checks that it is complete (our format key, metadata, all tables).
    ///
    /// # Errors
    /// [`PackError::Missing`] if the file does not exist, [`PackError::NotAFile`] if the
    /// path is a directory, [`PackError::OtherFormat`] for an Outpost pack of another format
    /// version (an older or newer Outpost), [`PackError::NotAPack`] if it is not SQLite, is
    /// shorter than its SQLite header says (an interrupted copy), or is not a complete
    /// Outpost pack.
    pub fn open(path: &Path) -> Result<Pack, PackError> {
        let not_a_pack = |reason: String| PackError::NotAPack {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(PackError::NotAFile {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PackError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(not_a_pack(e.to_string())),
        }
        // A truncated copy opens fine and fails later, page by page (or on the first query,
        // as "database disk image is malformed"); catch it from the header before any query.
        check_sqlite_header(path).map_err(not_a_pack)?;
        let conn = open_conn(path).map_err(|e| not_a_pack(e.to_string()))?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| not_a_pack(e.to_string()))?;
        let read_meta = || {
            conn.prepare("SELECT name, value FROM metadata")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                        .collect::<Result<HashMap<String, String>, _>>()
                })
                .map_err(|e| not_a_pack(e.to_string()))
        };
        // The format version first: a pack of another version lacks tables or columns of
        // this one, and "no `road_ch` table" would not say what to do.
        if tables.iter().any(|t| t == "metadata")
            && let Some(found) = read_meta()?.get(schema::FORMAT_KEY)
            && found != schema::FORMAT_VERSION
        {
            let older = match (
                found.trim().parse::<u32>(),
                schema::FORMAT_VERSION.parse::<u32>(),
            ) {
                (Ok(f), Ok(cur)) => f < cur,
                _ => false,
            };
            return Err(PackError::OtherFormat {
                path: path.to_path_buf(),
                found: found.clone(),
                older,
            });
        }
        for t in schema::REQUIRED_TABLES {
            if !tables.iter().any(|have| have == t) {
                return Err(not_a_pack(format!("no `{t}` table")));
            }
        }
        let kv = read_meta()?;
        let meta = parse_meta(&kv).map_err(not_a_pack)?;
        let places = load_places(&conn).map_err(|e| not_a_pack(e.to_string()))?;
        Ok(Pack {
            path: path.to_path_buf(),
            meta,
            places,
            pool: Mutex::new(vec![conn]),
        })
    }

    /// The pack's file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pack's metadata.
    pub fn meta(&self) -> &PackMeta {
        &self.meta
    }

    /// One vector tile, XYZ scheme (as MapLibre asks for it), as *uncompressed* Mapbox Vector
    /// Tile bytes. `Ok(None)` when the pack has no tile there (outside the area, or beyond
    /// the zoom range).
    ///
    /// # Errors
    /// [`PackError::Read`] on an SQLite error, [`PackError::CorruptTile`] if the stored
    /// gzip data does not inflate.
    pub fn tile(&self, z: u8, x: u32, y: u32) -> Result<Option<Vec<u8>>, PackError> {
        if z > 30 || u64::from(x) >= 1u64 << z || u64::from(y) >= 1u64 << z {
            return Ok(None);
        }
        // MBTiles rows are TMS (origin south-west).
        let tms_y = (1u64 << z) - 1 - u64::from(y);
        let data: Option<Vec<u8>> = self.with_conn(
            || format!("tile {z}/{x}/{y}"),
            |c| {
                c.prepare_cached(
                    "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
                )?
                .query_row(params![z, x, tms_y as i64], |r| r.get(0))
                .optional()
            },
        )?;
        let Some(data) = data else { return Ok(None) };
        if data.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(data.len() * 3);
            flate2::read::GzDecoder::new(&data[..])
                .read_to_end(&mut out)
                .map_err(|cause| PackError::CorruptTile {
                    path: self.path.clone(),
                    z,
                    x,
                    y,
                    cause,
                })?;
            Ok(Some(out))
        } else {
            Ok(Some(data))
        }
    }

    /// Offline search of streets, places, POIs and addresses by `name`, `name:zh` and
    /// `name:en`. Words match by prefix ("Avinguda Merit" finds "Avinguda Meritxell",
    /// diacritics ignored); text with Chinese characters (or that finds nothing by prefix)
    /// matches as a substring. Hits whose name starts with the text come first, then by
    /// distance from `near` (if given), else streets before places, POIs and addresses.
    ///
    /// # Errors
    /// [`PackError::Read`] on an SQLite error.
    pub fn search(
        &self,
        text: &str,
        near: Option<LatLon>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, PackError> {
        let text = text.trim();
        if text.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        const CANDIDATES: i64 = 500;
        let what = || format!("search {text:?}");
        let mut rows: Vec<(i64, SearchHit)> = Vec::new();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        if !words.is_empty() {
            let query = words
                .iter()
                .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" ");
            rows = self.with_conn(what, |c| {
                query_hits(
                    c,
                    "SELECT p.id, p.kind, p.category, p.name, p.name_zh, p.name_en, p.lat, p.lon, p.address
                     FROM places_fts JOIN places p ON p.id = places_fts.rowid
                     WHERE places_fts MATCH ?1 ORDER BY rank LIMIT ?2",
                    params![query, CANDIDATES],
                )
            })?;
        }
        let has_cjk = text.chars().any(is_cjk);
        if has_cjk || rows.is_empty() {
            let more = if text.chars().count() >= 3 {
                let q = format!("\"{}\"", text.replace('"', "\"\""));
                self.with_conn(what, |c| {
                    query_hits(
                        c,
                        "SELECT p.id, p.kind, p.category, p.name, p.name_zh, p.name_en, p.lat, p.lon, p.address
                         FROM places_tri JOIN places p ON p.id = places_tri.rowid
                         WHERE places_tri MATCH ?1 LIMIT ?2",
                        params![q, CANDIDATES],
                    )
                })?
            } else {
                let pattern = format!(
                    "%{}%",
                    text.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                self.with_conn(what, |c| {
                    query_hits(
                        c,
                        "SELECT id, kind, category, name, name_zh, name_en, lat, lon, address FROM places
                         WHERE name LIKE ?1 ESCAPE '\\' OR name_zh LIKE ?1 ESCAPE '\\' OR name_en LIKE ?1 ESCAPE '\\'
                         LIMIT ?2",
                        params![pattern, CANDIDATES],
                    )
                })?
            };
            for (id, hit) in more {
                if !rows.iter().any(|(have, _)| *have == id) {
                    rows.push((id, hit));
                }
            }
        }
        let lower = text.to_lowercase();
        let starts = |h: &SearchHit| {
            [Some(&h.name), h.name_zh.as_ref(), h.name_en.as_ref()]
                .into_iter()
                .flatten()
                .any(|n| n.to_lowercase().starts_with(&lower))
        };
        let mut hits: Vec<(usize, SearchHit)> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (_, mut h))| {
                h.distance_m = near.map(|n| n.distance_m(&h.position));
                (i, h)
            })
            .collect();
        hits.sort_by(|(ia, a), (ib, b)| {
            starts(b)
                .cmp(&starts(a))
                .then_with(|| match (a.distance_m, b.distance_m) {
                    (Some(da), Some(db)) => da.total_cmp(&db),
                    _ => a
                        .kind
                        .order()
                        .cmp(&b.kind.order())
                        .then(ia.cmp(ib))
                        .then(a.name.len().cmp(&b.name.len())),
                })
        });
        Ok(hits.into_iter().take(limit).map(|(_, h)| h).collect())
    }

    /// Describes a point as "street, place": the nearest named road within
    /// [`STREET_RADIUS_M`] and the nearest named place (OSM `place=*`).
    ///
    /// # Errors
    /// [`PackError::Read`] on an SQLite error.
    pub fn describe(&self, at: LatLon) -> Result<LocationDescription, PackError> {
        self.with_conn(
            || format!("describe {:.6},{:.6}", at.lat, at.lon),
            |c| describe_at(c, &self.places, at),
        )
    }

    /// The whole road graph (for routing and the demo's unit movement).
    ///
    /// # Errors
    /// [`PackError::Read`] on an SQLite error.
    pub fn road_network(&self) -> Result<RoadNetwork, PackError> {
        self.with_conn(|| "road network".to_string(), read_road_network)
    }

    /// The contraction order of the car graph stored at build time (table `road_ch`);
    /// `Ok(None)` when the pack has none (an area without drivable roads).
    ///
    /// # Errors
    /// [`PackError::Read`] on an SQLite error, [`PackError::NotAPack`] when the stored
    /// order is malformed (length not a multiple of 4, or not matching its node count).
    pub fn hierarchy_order(&self) -> Result<Option<HierarchyOrder>, PackError> {
        let rows: Vec<(String, Vec<u8>)> = self.with_conn(
            || "road hierarchy".to_string(),
            |c| {
                c.prepare("SELECT key, value FROM road_ch")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            },
        )?;
        let get = |k: &str| rows.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let Some(blob) = get("order") else {
            return Ok(None);
        };
        let bad = |reason: String| PackError::NotAPack {
            path: self.path.clone(),
            reason,
        };
        if blob.len() % 4 != 0 {
            return Err(bad(format!(
                "road_ch order is {} bytes, not a multiple of 4",
                blob.len()
            )));
        }
        let order: Vec<u32> = blob
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(n) = get("node_count") {
            let n = <[u8; 8]>::try_from(n.as_slice())
                .map(u64::from_le_bytes)
                .map_err(|_| bad("road_ch node_count is not 8 bytes".into()))?;
            // The hierarchy has one sentinel node more than the graph (see HierarchyOrder).
            if order.len() as u64 != n + 1 {
                return Err(bad(format!(
                    "road_ch order has {} nodes for a graph of {n}",
                    order.len()
                )));
            }
        }
        Ok(Some(HierarchyOrder { order }))
    }

    fn with_conn<T>(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, PackError> {
        let read_err = |what: String, cause| PackError::Read {
            path: self.path.clone(),
            what,
            cause,
        };
        let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let conn = match pooled.map_or_else(|| open_conn(&self.path), Ok) {
            Ok(c) => c,
            Err(e) => return Err(read_err(what(), e)),
        };
        let result = f(&conn);
        if let Ok(mut p) = self.pool.lock()
            && p.len() < 8
        {
            p.push(conn);
        }
        result.map_err(|e| read_err(what(), e))
    }
}

/// Reads `road_nodes` and `road_edges` (shared by the reader and the builder, which
/// contracts the car graph from exactly what the reader will see).
pub(crate) fn read_road_network(c: &Connection) -> rusqlite::Result<RoadNetwork> {
    let nodes = c
        .prepare("SELECT osm_id, lat, lon FROM road_nodes ORDER BY idx")?
        .query_map([], |r| {
            Ok(RoadNode {
                id: r.get(0)?,
                at: LatLon {
                    lat: r.get(1)?,
                    lon: r.get(2)?,
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let edges = c
        .prepare(
            "SELECT from_node, to_node, length_m, highway, name, oneway, maxspeed_kmh, car_access
             FROM road_edges ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(RoadEdge {
                from: r.get::<_, i64>(0)? as usize,
                to: r.get::<_, i64>(1)? as usize,
                length_m: r.get(2)?,
                class: r.get(3)?,
                name: r.get(4)?,
                oneway: r.get::<_, i64>(5)? != 0,
                maxspeed_kmh: r.get(6)?,
                car_access: r.get::<_, i64>(7)? != 0,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RoadNetwork { nodes, edges })
}

/// The nearest named road within [`STREET_RADIUS_M`] of `at` (via the `road_edges_rtree`
/// index) and the nearest of `places`, shared by the reader and the builder.
pub(crate) fn describe_at(
    c: &Connection,
    places: &[(String, LatLon)],
    at: LatLon,
) -> rusqlite::Result<LocationDescription> {
    let dlat = STREET_RADIUS_M / 111_320.0;
    let dlon = STREET_RADIUS_M / (111_320.0 * at.lat.to_radians().cos().max(0.01));
    let mut s = c.prepare_cached(
        "SELECT e.name, a.lat, a.lon, b.lat, b.lon
         FROM road_edges_rtree r
         JOIN road_edges e ON e.id = r.id
         JOIN road_nodes a ON a.idx = e.from_node
         JOIN road_nodes b ON b.idx = e.to_node
         WHERE r.max_lon >= ?1 AND r.min_lon <= ?2 AND r.max_lat >= ?3 AND r.min_lat <= ?4
           AND e.name IS NOT NULL AND e.name <> ''",
    )?;
    let segments = s
        .query_map(
            params![at.lon - dlon, at.lon + dlon, at.lat - dlat, at.lat + dlat],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    LatLon {
                        lat: r.get(1)?,
                        lon: r.get(2)?,
                    },
                    LatLon {
                        lat: r.get(3)?,
                        lon: r.get(4)?,
                    },
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let street = segments
        .into_iter()
        .map(|(name, a, b)| (name, point_segment_distance_m(at, a, b)))
        .filter(|(_, d)| *d <= STREET_RADIUS_M)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n);
    let place = places
        .iter()
        .map(|(n, p)| (n, at.distance_m(p)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n.clone());
    let address = match (&street, &place) {
        (Some(s), Some(p)) if s != p => format!("{s}, {p}"),
        (Some(s), _) => s.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => format!("{:.5}, {:.5}", at.lat, at.lon),
    };
    Ok(LocationDescription {
        address,
        street,
        place,
    })
}

/// Checks the 100-byte SQLite database header (<https://www.sqlite.org/fileformat.html>,
/// section 1.3): the magic string, and that the file holds at least the `page_size *
/// page_count` bytes the header announces. `Err` is the reason for [`PackError::NotAPack`].
fn check_sqlite_header(path: &Path) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let actual = file.metadata().map_err(|e| e.to_string())?.len();
    let mut header = [0u8; 100];
    if actual < header.len() as u64
        || file.read_exact(&mut header).is_err()
        || &header[..16] != b"SQLite format 3\0"
    {
        return Err("not an SQLite database".into());
    }
    // Page size: big-endian u16 at offset 16, where 1 means 65536.
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    // In-header database size in pages: big-endian u32 at offset 28, valid only when the
    // change counter (offset 24) equals the version-valid-for number (offset 92).
    let page_count = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    let size_valid = page_count > 0 && header[24..28] == header[92..96];
    let expected = page_size * page_count;
    if size_valid && actual < expected {
        return Err(format!("truncated: {actual} of {expected} bytes"));
    }
    Ok(())
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

fn query_hits(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<(i64, SearchHit)>> {
    let mut s = c.prepare_cached(sql)?;
    let rows = s.query_map(params, |r| {
        let kind: String = r.get(1)?;
        Ok((
            r.get::<_, i64>(0)?,
            SearchHit {
                kind: SearchKind::parse(&kind).unwrap_or(SearchKind::Poi),
                category: r.get(2)?,
                name: r.get(3)?,
                name_zh: r.get(4)?,
                name_en: r.get(5)?,
                position: LatLon {
                    lat: r.get(6)?,
                    lon: r.get(7)?,
                },
                distance_m: None,
                address: r.get(8)?,
            },
        ))
    })?;
    rows.collect()
}

pub(crate) fn load_places(c: &Connection) -> rusqlite::Result<Vec<(String, LatLon)>> {
    c.prepare("SELECT name, lat, lon FROM places WHERE kind = 'place'")?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                LatLon {
                    lat: r.get(1)?,
                    lon: r.get(2)?,
                },
            ))
        })?
        .collect()
}

fn parse_meta(kv: &HashMap<String, String>) -> Result<PackMeta, String> {
    let get = |k: &str| {
        kv.get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("metadata has no `{k}`"))
    };
    let format = get(schema::FORMAT_KEY)?;
    if format != schema::FORMAT_VERSION {
        return Err(format!(
            "pack format {format}, this build reads format {}",
            schema::FORMAT_VERSION
        ));
    }
    let nums = |k: &str| -> Result<Vec<f64>, String> {
        get(k)?
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("metadata `{k}`: {e}"))
    };
    let b = nums("bounds")?;
    let c = nums("center")?;
    if b.len() != 4 || c.len() != 3 {
        return Err("metadata `bounds`/`center` malformed".into());
    }
    let zoom_of = |k: &str| -> Result<u8, String> {
        get(k)?
            .trim()
            .parse::<u8>()
            .map_err(|e| format!("metadata `{k}`: {e}"))
    };
    let built_at = DateTime::parse_from_rfc3339(get("outpost_built_at")?)
        .map_err(|e| format!("metadata `outpost_built_at`: {e}"))?
        .with_timezone(&Utc);
    Ok(PackMeta {
        name: get("name")?.to_string(),
        bounds: [b[0], b[1], b[2], b[3]],
        center: LatLon::new(c[1], c[0]).map_err(|e| format!("metadata `center`: {e}"))?,
        zoom: c[2],
        min_zoom: zoom_of("minzoom")?,
        max_zoom: zoom_of("maxzoom")?,
        attribution: get("attribution")?.to_string(),
        built_at,
        source_sha256: get("outpost_source_sha256")?.to_string(),
    })
}

/// True for CJK ideographs and kana/hangul, where words are not separated by spaces.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// Distance from `p` to the segment `a`–`b`, metres (local equirectangular projection,
/// accurate to well under a metre at street scale).
pub fn point_segment_distance_m(p: LatLon, a: LatLon, b: LatLon) -> f64 {
    const M_PER_DEG: f64 = 111_320.0;
    let k = p.lat.to_radians().cos();
    let (ax, ay) = ((a.lon - p.lon) * k * M_PER_DEG, (a.lat - p.lat) * M_PER_DEG);
    let (bx, by) = ((b.lon - p.lon) * k * M_PER_DEG, (b.lat - p.lat) * M_PER_DEG);
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (ax + t * dx, ay + t * dy);
    (cx * cx + cy * cy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon { lat, lon }
    }

    #[test]
    fn distance_to_segment_is_perpendicular_inside_and_to_end_outside() {
        // 0.001° of latitude ≈ 111.3 m.
        let a = ll(42.0, 1.0);
        let b = ll(42.0, 1.01);
        let d = point_segment_distance_m(ll(42.001, 1.005), a, b);
        assert!((d - 111.3).abs() < 0.5, "{d}");
        let d = point_segment_distance_m(ll(42.0, 0.999), a, b);
        assert!((d - 82.7).abs() < 0.5, "{d}");
    }

    #[test]
    fn cjk_detection() {
        assert!(is_cjk('东'));
        assert!(!is_cjk('A'));
        assert!(!is_cjk('é'));
    }

    #[test]
    fn pack_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Pack>();
    }
}
