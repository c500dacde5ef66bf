//! The pack's own tables, next to the MBTiles `metadata` and `tiles` tables that tilemaker
//! writes (MBTiles 1.3: <https://github.com/mapbox/mbtiles-spec/blob/master/1.3/spec.md>).

/// `metadata` key holding the pack format version; its presence marks an Outpost pack.
pub const FORMAT_KEY: &str = "outpost_pack_format";
/// Current pack format version.
/// Format 2 added `road_edges.car_access` and the `road_ch` table (issue 5).
pub const FORMAT_VERSION: &str = "2";

/// Our tables. `places` is the search corpus (one row per street name+area, place, POI and
/// address); `places_fts` (unicode61, prefix search) and `places_tri` (trigram, substring
/// search that also works for Chinese) index it as external-content FTS5 tables.
/// `road_nodes.idx` is dense from 0 so road edges can refer to nodes by index.
/// `road_ch` holds the contraction order of the car graph (`routing::RoadGraph`, built
/// from the same pack) for `fast_paths::prepare_with_order`; it is empty when the area
/// has no drivable road.
pub const CREATE_OWN_TABLES: &str = "
CREATE TABLE places (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,          -- street | place | poi | address
    category TEXT NOT NULL,      -- OSM class: residential, town, hospital, ...
    name TEXT NOT NULL,
    name_zh TEXT,
    name_en TEXT,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    address TEXT NOT NULL
);
CREATE VIRTUAL TABLE places_fts USING fts5(
    name, name_zh, name_en, content='places', content_rowid='id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE VIRTUAL TABLE places_tri USING fts5(
    name, name_zh, name_en, content='places', content_rowid='id', tokenize = 'trigram'
);
CREATE TABLE road_nodes (
    idx INTEGER PRIMARY KEY,     -- 0..n, referenced by road_edges
    osm_id INTEGER NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL
);
CREATE TABLE road_edges (
    id INTEGER PRIMARY KEY,
    from_node INTEGER NOT NULL REFERENCES road_nodes(idx),
    to_node INTEGER NOT NULL REFERENCES road_nodes(idx),
    length_m REAL NOT NULL,
    highway TEXT NOT NULL,       -- raw OSM highway=* value
    name TEXT,
    name_zh TEXT,
    name_en TEXT,
    oneway INTEGER NOT NULL,     -- 1: only from_node -> to_node
    maxspeed_kmh REAL,
    way_id INTEGER NOT NULL,
    car_access INTEGER NOT NULL  -- 1: cars may use it (OSM access tags), 0: they may not
);
CREATE VIRTUAL TABLE road_edges_rtree USING rtree(id, min_lon, max_lon, min_lat, max_lat);
CREATE TABLE road_ch (
    key TEXT PRIMARY KEY,        -- order | node_count | segment_count
    value BLOB NOT NULL          -- order: little-endian u32 node ids; counts: little-endian u64
);
";

/// Tables `Pack::open` insists on.
pub const REQUIRED_TABLES: &[&str] = &[
    "metadata",
    "tiles",
    "places",
    "places_fts",
    "places_tri",
    "road_nodes",
    "road_edges",
    "road_edges_rtree",
    "road_ch",
];
