//! Area packs and geometry: building a pack from an OSM extract, reading tiles, metadata,
//! the search index and the road network back out of it.
//!
//! An area pack (`*.outpost`) is one SQLite file: MBTiles 1.3 `metadata` + `tiles` (gzip
//! Mapbox Vector Tiles, TMS rows, made by `tilemaker` from our profile in `tilemaker/`),
//! plus our `places` search corpus (FTS5) and `road_nodes`/`road_edges` road graph
//! (see `schema.rs`).
//!
//! Architecture invariant: a pack is one SQLite file that is complete or absent; readers
//! never write to it. This crate knows nothing of incidents, units, the store or the UI; it
//! depends only on `outpost-domain` for `LatLon`.

mod error;
mod pack;
mod schema;

pub use error::{BuildError, PackError};
pub use pack::{
    LocationDescription, Pack, PackMeta, RoadEdge, RoadNetwork, RoadNode, STREET_RADIUS_M,
    SearchHit, SearchKind, point_segment_distance_m,
};

mod build;

pub use build::{ATTRIBUTION, BuildOptions, BuildReport, SearchCounts, build_pack, parse_maxspeed};
