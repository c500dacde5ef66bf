//! One pass over an OSM PBF file (format: <https://wiki.openstreetmap.org/wiki/PBF_Format>)
//! keeping what the search index and the road graph need, and checking that the extract is
//! usable (a PBF, not empty, not clipped).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::ProgressBar;
use osmpbf::{BlobDecode, BlobReader, Element};

use crate::error::BuildError;

/// Tags kept from OSM objects; everything else is dropped while scanning.
const KEPT_TAGS: &[&str] = &[
    "name",
    "name:zh",
    "name:en",
    "highway",
    "oneway",
    "junction",
    "maxspeed",
    "access",
    "motor_vehicle",
    "motorcar",
    "vehicle",
    "area",
    "place",
    "population",
    "amenity",
    "shop",
    "tourism",
    "office",
    "emergency",
    "healthcare",
    "leisure",
    "addr:housenumber",
    "addr:street",
];

/// Tags that make a node worth keeping (besides being part of a way).
const NODE_KEYS: &[&str] = &[
    "place",
    "amenity",
    "shop",
    "tourism",
    "office",
    "emergency",
    "healthcare",
    "leisure",
    "addr:housenumber",
];

/// Tag list of one object (only [`KEPT_TAGS`]).
pub type Tags = HashMap<String, String>;

/// A tagged node.
#[derive(Debug, Clone)]
pub struct TaggedNode {
    /// Latitude, WGS-84 degrees.
    pub lat: f64,
    /// Longitude, WGS-84 degrees.
    pub lon: f64,
    /// Kept tags.
    pub tags: Tags,
}

/// A tagged way.
#[derive(Debug, Clone)]
pub struct TaggedWay {
    /// OSM id.
    pub id: i64,
    /// Node ids in order.
    pub refs: Vec<i64>,
    /// Kept tags.
    pub tags: Tags,
}

/// What the scan keeps.
#[derive(Debug, Default)]
pub struct OsmData {
    /// Header bounding box `[w, s, e, n]`, if the file has one.
    pub header_bbox: Option<[f64; 4]>,
    /// Number of nodes in the file.
    pub node_count: u64,
    /// Number of ways in the file.
    pub way_count: u64,
    /// All node positions `(id, lat, lon)`, sorted by id.
    nodes: Vec<(i64, f64, f64)>,
    /// Nodes with one of [`NODE_KEYS`].
    pub tagged_nodes: Vec<TaggedNode>,
    /// Ways with any of [`KEPT_TAGS`].
    pub ways: Vec<TaggedWay>,
}

impl OsmData {
    /// Position `(lat, lon)` of a node.
    pub fn node(&self, id: i64) -> Option<(f64, f64)> {
        self.nodes
            .binary_search_by_key(&id, |n| n.0)
            .ok()
            .map(|i| (self.nodes[i].1, self.nodes[i].2))
    }

    /// Bounding box `[w, s, e, n]` of all nodes that ways use, if any.
    pub fn data_bbox(&self) -> Option<[f64; 4]> {
        let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        let mut any = false;
        for w in &self.ways {
            for r in &w.refs {
                if let Some((lat, lon)) = self.node(*r) {
                    any = true;
                    b = [b[0].min(lon), b[1].min(lat), b[2].max(lon), b[3].max(lat)];
                }
            }
        }
        any.then_some(b)
    }
}

fn keep(tags: impl Iterator<Item = (impl AsRef<str>, impl AsRef<str>)>) -> Tags {
    tags.filter(|(k, _)| KEPT_TAGS.contains(&k.as_ref()))
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
        .collect()
}

/// Reads the whole file. `progress` is a byte-length bar (position = file offset).
pub fn scan(
    path: &Path,
    progress: &ProgressBar,
    cancel: &AtomicBool,
) -> Result<OsmData, BuildError> {
    let not_pbf = |detail: String| BuildError::NotPbf {
        path: path.to_path_buf(),
        detail,
    };
    let reader = BlobReader::seekable_from_path(path).map_err(|e| match e.kind() {
        osmpbf::ErrorKind::Io(io) => BuildError::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::new(io.kind(), io.to_string()),
        },
        _ => not_pbf(e.to_string()),
    })?;
    let mut data = OsmData::default();
    let mut all_refs: Vec<(i64, i64)> = Vec::new(); // (node id, way id)
    let mut seen_header = false;
    for blob in reader {
        if cancel.load(Ordering::Relaxed) {
            return Err(BuildError::Interrupted {
                path: path.to_path_buf(),
            });
        }
        let blob = blob.map_err(|e| not_pbf(e.to_string()))?;
        if let Some(off) = blob.offset() {
            progress.set_position(off.0);
        }
        match blob.decode().map_err(|e| not_pbf(e.to_string()))? {
            BlobDecode::OsmHeader(h) => {
                seen_header = true;
                data.header_bbox = h.bbox().map(|b| [b.left, b.bottom, b.right, b.top]);
            }
            BlobDecode::OsmData(block) => {
                if !seen_header {
                    return Err(not_pbf("data before the OSMHeader block".into()));
                }
                block.for_each_element(|el| match el {
                    Element::DenseNode(n) => {
                        data.node_count += 1;
                        data.nodes.push((n.id(), n.lat(), n.lon()));
                        let mut tags = n.tags().peekable();
                        if tags.peek().is_some() {
                            let tags = keep(tags);
                            if NODE_KEYS.iter().any(|k| tags.contains_key(*k)) {
                                data.tagged_nodes.push(TaggedNode {
                                    lat: n.lat(),
                                    lon: n.lon(),
                                    tags,
                                });
                            }
                        }
                    }
                    Element::Node(n) => {
                        data.node_count += 1;
                        data.nodes.push((n.id(), n.lat(), n.lon()));
                        let tags = keep(n.tags());
                        if NODE_KEYS.iter().any(|k| tags.contains_key(*k)) {
                            data.tagged_nodes.push(TaggedNode {
                                lat: n.lat(),
                                lon: n.lon(),
                                tags,
                            });
                        }
                    }
                    Element::Way(w) => {
                        data.way_count += 1;
                        let refs: Vec<i64> = w.refs().collect();
                        all_refs.extend(refs.iter().map(|r| (*r, w.id())));
                        let tags = keep(w.tags());
                        if !tags.is_empty() {
                            data.ways.push(TaggedWay {
                                id: w.id(),
                                refs,
                                tags,
                            });
                        }
                    }
                    Element::Relation(_) => {}
                });
            }
            BlobDecode::Unknown(_) => {}
        }
    }
    if !seen_header {
        return Err(not_pbf("no OSMHeader block".into()));
    }
    if data.node_count == 0 || data.way_count == 0 {
        return Err(BuildError::EmptyArea {
            path: path.to_path_buf(),
            nodes: data.node_count,
            ways: data.way_count,
        });
    }
    data.nodes.sort_unstable_by_key(|n| n.0);
    data.nodes.dedup_by_key(|n| n.0);
    let mut missing: Vec<(i64, i64)> = all_refs
        .into_iter()
        .filter(|(node, _)| data.node(*node).is_none())
        .collect();
    if !missing.is_empty() {
        let mut ways: Vec<i64> = missing.iter().map(|m| m.1).collect();
        ways.sort_unstable();
        ways.dedup();
        let (example_node, example_way) = missing[0];
        missing.sort_unstable();
        missing.dedup_by_key(|m| m.0);
        return Err(BuildError::Clipped {
            path: path.to_path_buf(),
            missing: missing.len(),
            ways: ways.len(),
            example_node,
            example_way,
        });
    }
    progress.set_position(progress.length().unwrap_or(0));
    Ok(data)
}
