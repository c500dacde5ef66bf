//! Area packs and geometry: building a pack from an OSM extract, reading tiles, metadata,
//! the search index and the road network back out of it.
//!
//! Architecture invariant: a pack is one SQLite file that is complete or absent; readers
//! never write to it.
