//! Area packs and geometry: building a pack from an OSM extract, reading tiles, metadata,
//! the search index and the road network back out of it.
//!
//! An area pack (`*.outpost`) is one SQLite file: MBTiles 1.3 `metadata` + `tiles` (gzip
//! Mapbox Vector Tiles, TMS rows, made by `tilemaker` from our profile in `tilemaker/`),
//! plus our `places` search corpus (FTS5) and `road_nodes`/`road_edges` road graph
//! (see `schema.rs`).
//!
//! # Vector layers (the contract with the console's map style)
//!
//! | layer | zooms | geometry | attributes |
//! |---|---|---|---|
//! | `ne_land` | 0–6 | polygons | none (Natural Earth 1:50m, whole world) |
//! | `ne_countries` | 0–6 | polygons | `name` (English) |
//! | `boundary` | 0–14 | lines | `admin_level` (number) |
//! | `water` | 6–14 | polygons | `class`: OSM `water=*` or `lake`, `reservoir`, `basin`, `river`, `dock`, `swimming_pool` |
//! | `waterway` | 10–14 | lines | `class` (`river`, `stream`, `canal`, `ditch`), `name` |
//! | `landuse` | 8–14 | polygons | `class`: OSM `landuse=*` value, or `wood`, `scrub`, `grass`, `heath`, `rock`, `wetland`, `sand`, `park`, `pitch`, `cemetery`, `school`, `hospital`... |
//! | `building` | 13–14 | polygons | none |
//! | `road` | 6–14 | lines | `class` (`motorway`, `trunk`, `primary`, `secondary`, `tertiary`, `minor`, `service`, `track`, `path`), `name`, `name_zh`, `name_en`, `ref`, `brunnel` (`bridge`/`tunnel`; absent otherwise: tilemaker drops empty strings), `oneway` (number 0/1) |
//! | `place` | 4–14 | points | `class` (`country`, `state`, `city`, `town`, `village`, `suburb`, `hamlet`, `neighbourhood`, `locality`), `name`, `name_zh`, `name_en` |
//! | `poi` | 12–14 | points | `class` (OSM `amenity=*` value such as `police`, `hospital`, `school`, `pharmacy`, `fuel`, `townhall`; `fire_station`; `shop` for any shop; `tourism=*`/`healthcare=*` value; `office`), `name`, `name_zh`, `name_en` |
//! | `housenumber` | 14 | points | `housenumber` |
//!
//! `name_zh` / `name_en` are present only where OSM has `name:zh` / `name:en`. Road minimum
//! zooms: motorway/trunk 6, primary 8, secondary 9, tertiary 10, minor 12, service/track 13,
//! path 14. POIs: police, fire station, hospital from 12; school, townhall, pharmacy, fuel
//! from 13; the rest at 14.
//!
//! Architecture invariant: a pack is one SQLite file that is complete or absent; readers
//! never write to it. This crate knows nothing of incidents, units, the store or the UI; it
//! depends only on `outpost-domain` for `LatLon`.

mod error;
mod pack;
pub mod routing;
mod schema;

pub use error::{BuildError, PackError};
pub use pack::{
    LocationDescription, Pack, PackMeta, RoadEdge, RoadNetwork, RoadNode, STREET_RADIUS_M,
    SearchHit, SearchKind, point_segment_distance_m,
};
pub use routing::{RoadGraph, Router, RoutingError};

mod build;

pub use build::{ATTRIBUTION, BuildOptions, BuildReport, SearchCounts, build_pack, parse_maxspeed};
