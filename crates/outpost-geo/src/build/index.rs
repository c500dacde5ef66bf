//! Our own tables in the pack: the road graph and the search corpus, written from the scan.

use std::collections::HashMap;

use indicatif::ProgressBar;
use outpost_domain::LatLon;
use rusqlite::{Transaction, params};

use super::osm::{OsmData, Tags};
use crate::pack::{SearchKind, describe_at};

/// `highway=*` values that become road edges (drivable roads, tracks and paths; consumers
/// filter by class).
pub const ROAD_HIGHWAYS: &[&str] = &[
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "residential",
    "unclassified",
    "living_street",
    "road",
    "pedestrian",
    "service",
    "track",
    "footway",
    "path",
    "cycleway",
    "steps",
    "bridleway",
];

/// `place=*` values indexed as places (and used to describe locations).
pub const PLACE_CLASSES: &[&str] = &[
    "country",
    "state",
    "city",
    "town",
    "village",
    "suburb",
    "quarter",
    "hamlet",
    "neighbourhood",
    "locality",
    "isolated_dwelling",
];

/// Rank of a road class for picking a street's category (lower is more important).
fn highway_rank(h: &str) -> usize {
    ROAD_HIGHWAYS
        .iter()
        .position(|x| *x == h)
        .unwrap_or(ROAD_HIGHWAYS.len())
}

/// Parses OSM `maxspeed` (<https://wiki.openstreetmap.org/wiki/Key:maxspeed>) to km/h:
/// `"50"`, `"50 km/h"`, `"30 mph"`. Zone codes (`"ES:urban"`), `"none"`, `"signals"` → None.
pub fn parse_maxspeed(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, factor) = if let Some(n) = v.strip_suffix("mph") {
        (n.trim(), 1.609_344)
    } else if let Some(n) = v.strip_suffix("km/h") {
        (n.trim(), 1.0)
    } else if let Some(n) = v.strip_suffix("kmh") {
        (n.trim(), 1.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(|s| s * factor)
}

/// Whether a way may only be driven in its node order (after reversing `oneway=-1` ways).
/// Rules from <https://wiki.openstreetmap.org/wiki/Key:oneway>.
fn oneway(tags: &Tags) -> (bool, bool) {
    let v = tags.get("oneway").map(String::as_str).unwrap_or("");
    match v {
        "yes" | "1" | "true" => (true, false),
        "-1" | "reverse" => (true, true),
        "no" | "0" | "false" => (false, false),
        _ => {
            let implied = tags.get("junction").is_some_and(|j| j == "roundabout")
                || tags
                    .get("highway")
                    .is_some_and(|h| h == "motorway" || h == "motorway_link");
            (implied, false)
        }
    }
}

/// Whether OSM access tags let a car (a police car on a normal dispatch) use a way.
///
/// The most specific tag present decides: `motorcar`, then `motor_vehicle`, then
/// `vehicle`, then `access` (<https://wiki.openstreetmap.org/wiki/Key:access>, "more
/// specific keys override"). Refused (conservative: a dispatch ETA must not count on a
/// gate, a bollard, a private drive or a farm road; police obey `no`/`private` on a normal
/// dispatch): `no`, `private`, `agricultural`, `forestry`, `delivery` (pedestrian zones
/// with delivery windows), `permit`, `military`, `use_sidepath`. Allowed: `yes`,
/// `permissive`, `designated`, `destination` (an incident is a destination), `customers`
/// (parking lots), `discouraged`, `emergency`, and any other value. A `;` list is
/// allowed when any of its values is. No tag: allowed (the `highway` class decides).
pub fn car_access(tags: &Tags) -> bool {
    const REFUSED: &[&str] = &[
        "no",
        "private",
        "agricultural",
        "forestry",
        "delivery",
        "permit",
        "military",
        "use_sidepath",
    ];
    let Some(v) = ["motorcar", "motor_vehicle", "vehicle", "access"]
        .iter()
        .find_map(|k| tags.get(*k).filter(|v| !v.trim().is_empty()))
    else {
        return true;
    };
    v.split(';')
        .map(|p| p.trim().to_ascii_lowercase())
        .any(|p| !REFUSED.contains(&p.as_str()))
}

fn is_road(tags: &Tags) -> bool {
    tags.get("highway")
        .is_some_and(|h| ROAD_HIGHWAYS.contains(&h.as_str()))
        && tags.get("area").is_none_or(|a| a != "yes")
}

/// Counts written by [`write_roads`].
pub struct RoadCounts {
    /// Rows in `road_nodes`.
    pub nodes: usize,
    /// Rows in `road_edges`.
    pub edges: usize,
}

/// Writes `road_nodes`, `road_edges` and the `road_edges_rtree` index.
pub fn write_roads(
    tx: &Transaction,
    osm: &OsmData,
    progress: &ProgressBar,
) -> rusqlite::Result<RoadCounts> {
    let mut index: HashMap<i64, i64> = HashMap::new();
    let mut node_stmt =
        tx.prepare("INSERT INTO road_nodes (idx, osm_id, lat, lon) VALUES (?1, ?2, ?3, ?4)")?;
    let mut edge_stmt = tx.prepare(
        "INSERT INTO road_edges (id, from_node, to_node, length_m, highway, name, name_zh, name_en, oneway, maxspeed_kmh, way_id, car_access)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut rtree_stmt = tx.prepare(
        "INSERT INTO road_edges_rtree (id, min_lon, max_lon, min_lat, max_lat) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let roads: Vec<_> = osm.ways.iter().filter(|w| is_road(&w.tags)).collect();
    progress.set_length(roads.len() as u64);
    let mut edges = 0i64;
    for way in roads {
        progress.inc(1);
        let (one, reverse) = oneway(&way.tags);
        let mut refs = way.refs.clone();
        if reverse {
            refs.reverse();
        }
        let highway = way.tags.get("highway").map(String::as_str).unwrap_or("");
        let maxspeed = way.tags.get("maxspeed").and_then(|m| parse_maxspeed(m));
        let access = car_access(&way.tags) as i64;
        let mut prev: Option<(i64, LatLon, i64)> = None;
        for r in refs {
            let Some((lat, lon)) = osm.node(r) else {
                continue;
            };
            let at = LatLon { lat, lon };
            let next = index.len() as i64;
            let idx = *index.entry(r).or_insert_with(|| next);
            if idx == next {
                node_stmt.execute(params![idx, r, lat, lon])?;
            }
            if let Some((prev_id, prev_at, prev_idx)) = prev
                && prev_id != r
            {
                edge_stmt.execute(params![
                    edges,
                    prev_idx,
                    idx,
                    prev_at.distance_m(&at),
                    highway,
                    way.tags.get("name"),
                    way.tags.get("name:zh"),
                    way.tags.get("name:en"),
                    one as i64,
                    maxspeed,
                    way.id,
                    access,
                ])?;
                rtree_stmt.execute(params![
                    edges,
                    prev_at.lon.min(lon),
                    prev_at.lon.max(lon),
                    prev_at.lat.min(lat),
                    prev_at.lat.max(lat),
                ])?;
                edges += 1;
            }
            prev = Some((r, at, idx));
        }
    }
    Ok(RoadCounts {
        nodes: index.len(),
        edges: edges as usize,
    })
}

/// One row of the `places` table.
struct Entry {
    kind: SearchKind,
    category: String,
    name: String,
    name_zh: Option<String>,
    name_en: Option<String>,
    at: LatLon,
    address: String,
}

/// Search entries written into a pack, by kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct SearchCounts {
    /// Named streets (one per name and area).
    pub streets: usize,
    /// Places.
    pub places: usize,
    /// POIs.
    pub pois: usize,
    /// Addresses.
    pub addresses: usize,
}

fn centroid(osm: &OsmData, refs: &[i64]) -> Option<LatLon> {
    let pts: Vec<(f64, f64)> = refs.iter().filter_map(|r| osm.node(*r)).collect();
    if pts.is_empty() {
        return None;
    }
    let n = pts.len() as f64;
    Some(LatLon {
        lat: pts.iter().map(|p| p.0).sum::<f64>() / n,
        lon: pts.iter().map(|p| p.1).sum::<f64>() / n,
    })
}

/// The class a POI is drawn with (same rules as `tilemaker/process.lua` `poiClassOf`).
pub fn poi_class(tags: &Tags) -> Option<String> {
    let get = |k: &str| tags.get(k).filter(|v| !v.is_empty());
    if let Some(a) = get("amenity") {
        return Some(a.clone());
    }
    if tags.get("emergency").is_some_and(|e| e == "fire_station") {
        return Some("fire_station".into());
    }
    if get("shop").is_some() {
        return Some("shop".into());
    }
    if let Some(t) = get("tourism") {
        return Some(t.clone());
    }
    if let Some(h) = get("healthcare") {
        return Some(h.clone());
    }
    if let Some(o) = get("office") {
        return Some(if o == "government" {
            "townhall".into()
        } else {
            "office".into()
        });
    }
    match get("leisure").map(String::as_str) {
        Some(l @ ("sports_centre" | "stadium")) => Some(l.to_string()),
        _ => None,
    }
}

fn nonempty(tags: &Tags, k: &str) -> Option<String> {
    tags.get(k).filter(|v| !v.trim().is_empty()).cloned()
}

/// Writes the `places` corpus and fills both FTS5 indexes. Needs the road tables (for
/// addresses of POIs) to be written first. Returns the counts and the places list.
pub fn write_search(
    tx: &Transaction,
    osm: &OsmData,
    progress: &ProgressBar,
) -> rusqlite::Result<(SearchCounts, Vec<(String, LatLon)>)> {
    let mut counts = SearchCounts::default();
    let mut entries: Vec<Entry> = Vec::new();

    // Places: nodes, and closed ways by their centroid.
    let mut places: Vec<(String, LatLon)> = Vec::new();
    let place_items = osm
        .tagged_nodes
        .iter()
        .map(|n| {
            (
                &n.tags,
                Some(LatLon {
                    lat: n.lat,
                    lon: n.lon,
                }),
            )
        })
        .chain(osm.ways.iter().map(|w| (&w.tags, None)));
    for (tags, at) in place_items {
        let (Some(class), Some(name)) = (tags.get("place"), nonempty(tags, "name")) else {
            continue;
        };
        if !PLACE_CLASSES.contains(&class.as_str()) {
            continue;
        }
        let at = match at {
            Some(a) => a,
            None => match osm
                .ways
                .iter()
                .find(|w| std::ptr::eq(&w.tags, tags))
                .and_then(|w| centroid(osm, &w.refs))
            {
                Some(a) => a,
                None => continue,
            },
        };
        places.push((name.clone(), at));
        entries.push(Entry {
            kind: SearchKind::Place,
            category: class.clone(),
            name_zh: nonempty(tags, "name:zh"),
            name_en: nonempty(tags, "name:en"),
            address: name.clone(),
            name,
            at,
        });
        counts.places += 1;
    }
    let nearest_place = |at: LatLon| {
        places
            .iter()
            .min_by(|a, b| at.distance_m(&a.1).total_cmp(&at.distance_m(&b.1)))
            .map(|p| p.0.clone())
    };
    let with_place = |first: &str, at: LatLon| match nearest_place(at) {
        Some(p) if p != first => format!("{first}, {p}"),
        _ => first.to_string(),
    };

    // Streets: named road ways grouped by name, split into areas where the ways of one name
    // neither touch nor come within STREET_GAP_M of each other.
    const STREET_GAP_M: f64 = 300.0;
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, w) in osm.ways.iter().enumerate() {
        if is_road(&w.tags)
            && let Some(name) = w.tags.get("name").filter(|n| !n.trim().is_empty())
        {
            by_name.entry(name.as_str()).or_default().push(i);
        }
    }
    let mut names: Vec<_> = by_name.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    progress.set_length((names.len() + osm.tagged_nodes.len() + osm.ways.len()) as u64);
    for (name, ways) in names {
        progress.inc(1);
        let pts: Vec<Vec<LatLon>> = ways
            .iter()
            .map(|i| {
                osm.ways[*i]
                    .refs
                    .iter()
                    .filter_map(|r| osm.node(*r).map(|(lat, lon)| LatLon { lat, lon }))
                    .collect()
            })
            .collect();
        // Union-find over the ways of this name.
        let mut parent: Vec<usize> = (0..ways.len()).collect();
        fn find(p: &mut [usize], i: usize) -> usize {
            let mut i = i;
            while p[i] != i {
                p[i] = p[p[i]];
                i = p[i];
            }
            i
        }
        for a in 0..ways.len() {
            for b in (a + 1)..ways.len() {
                let near = pts[a]
                    .iter()
                    .any(|p| pts[b].iter().any(|q| p.distance_m(q) <= STREET_GAP_M));
                if near {
                    let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                    parent[ra] = rb;
                }
            }
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..ways.len() {
            let r = find(&mut parent, i);
            groups.entry(r).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.sort();
        for g in groups {
            let all: Vec<LatLon> = g.iter().flat_map(|i| pts[*i].iter().copied()).collect();
            if all.is_empty() {
                continue;
            }
            let n = all.len() as f64;
            let mid = LatLon {
                lat: all.iter().map(|p| p.lat).sum::<f64>() / n,
                lon: all.iter().map(|p| p.lon).sum::<f64>() / n,
            };
            // A node of the street itself, nearest the middle of the street.
            let Some(rep) = all
                .iter()
                .min_by(|a, b| mid.distance_m(a).total_cmp(&mid.distance_m(b)))
                .copied()
            else {
                continue;
            };
            let main = g
                .iter()
                .map(|i| &osm.ways[ways[*i]].tags)
                .min_by_key(|t| highway_rank(t.get("highway").map(String::as_str).unwrap_or("")))
                .cloned()
                .unwrap_or_default();
            let any = |k: &str| g.iter().find_map(|i| nonempty(&osm.ways[ways[*i]].tags, k));
            entries.push(Entry {
                kind: SearchKind::Street,
                category: main.get("highway").cloned().unwrap_or_default(),
                name: name.to_string(),
                name_zh: any("name:zh"),
                name_en: any("name:en"),
                at: rep,
                address: with_place(name, rep),
            });
            counts.streets += 1;
        }
    }

    // POIs and addresses, from nodes and from ways (by centroid).
    let items = osm
        .tagged_nodes
        .iter()
        .map(|n| {
            (
                &n.tags,
                Some(LatLon {
                    lat: n.lat,
                    lon: n.lon,
                }),
            )
        })
        .chain(
            osm.ways
                .iter()
                .filter(|w| !is_road(&w.tags))
                .map(|w| (&w.tags, centroid(osm, &w.refs))),
        );
    for (tags, at) in items {
        progress.inc(1);
        let Some(at) = at else { continue };
        let housenumber = nonempty(tags, "addr:housenumber");
        let poi = poi_class(tags);
        let name = nonempty(tags, "name");
        let needs_street = housenumber.is_some() || (poi.is_some() && name.is_some());
        if !needs_street {
            continue;
        }
        let described = describe_at(tx, &places, at)?;
        let street = nonempty(tags, "addr:street").or(described.street.clone());
        let street_line = match (&street, &housenumber) {
            (Some(s), Some(h)) => Some(format!("{s} {h}")),
            (Some(s), None) => Some(s.clone()),
            (None, _) => None,
        };
        let address = match (&street_line, &described.place) {
            (Some(s), Some(p)) => format!("{s}, {p}"),
            (Some(s), None) => s.clone(),
            (None, _) => described.address.clone(),
        };
        if let (Some(class), Some(name)) = (&poi, &name) {
            entries.push(Entry {
                kind: SearchKind::Poi,
                category: class.clone(),
                name: name.clone(),
                name_zh: nonempty(tags, "name:zh"),
                name_en: nonempty(tags, "name:en"),
                at,
                address: address.clone(),
            });
            counts.pois += 1;
        } else if let (Some(_), Some(line)) = (&housenumber, &street_line) {
            entries.push(Entry {
                kind: SearchKind::Address,
                category: "address".into(),
                name: line.clone(),
                name_zh: None,
                name_en: None,
                at,
                address,
            });
            counts.addresses += 1;
        }
    }

    let mut stmt = tx.prepare(
        "INSERT INTO places (kind, category, name, name_zh, name_en, lat, lon, address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in &entries {
        stmt.execute(params![
            e.kind.as_str(),
            e.category,
            e.name,
            e.name_zh,
            e.name_en,
            e.at.lat,
            e.at.lon,
            e.address
        ])?;
    }
    tx.execute_batch(
        "INSERT INTO places_fts(places_fts) VALUES ('rebuild');
         INSERT INTO places_tri(places_tri) VALUES ('rebuild');",
    )?;
    Ok((counts, places))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(kv: &[(&str, &str)]) -> Tags {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn car_access_takes_the_most_specific_tag() {
        assert!(car_access(&tags(&[("highway", "residential")])));
        assert!(!car_access(&tags(&[("access", "private")])));
        assert!(!car_access(&tags(&[("access", "no")])));
        assert!(car_access(&tags(&[("access", "destination")])));
        assert!(car_access(&tags(&[("access", "customers")])));
        assert!(!car_access(&tags(&[("access", "delivery")])));
        assert!(!car_access(&tags(&[("access", "agricultural;forestry")])));
        assert!(car_access(&tags(&[("access", "agricultural;destination")])));
        // motorcar > motor_vehicle > vehicle > access.
        assert!(car_access(&tags(&[
            ("access", "no"),
            ("motor_vehicle", "yes")
        ])));
        assert!(!car_access(&tags(&[("access", "yes"), ("vehicle", "no")])));
        assert!(car_access(&tags(&[
            ("vehicle", "no"),
            ("motorcar", "permissive")
        ])));
        assert!(!car_access(&tags(&[
            ("motor_vehicle", "yes"),
            ("motorcar", "private")
        ])));
        assert!(!car_access(&tags(&[("motor_vehicle", "No")])));
    }

    #[test]
    fn maxspeed_forms() {
        assert_eq!(parse_maxspeed("50"), Some(50.0));
        assert_eq!(parse_maxspeed("50 km/h"), Some(50.0));
        let mph = parse_maxspeed("30 mph").expect("mph");
        assert!((mph - 48.28).abs() < 0.01, "{mph}");
        assert_eq!(parse_maxspeed("ES:urban"), None);
        assert_eq!(parse_maxspeed("none"), None);
    }

    #[test]
    fn oneway_rules() {
        let t = |pairs: &[(&str, &str)]| -> Tags {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(oneway(&t(&[("oneway", "yes")])), (true, false));
        assert_eq!(oneway(&t(&[("oneway", "-1")])), (true, true));
        assert_eq!(
            oneway(&t(&[("junction", "roundabout"), ("highway", "primary")])),
            (true, false)
        );
        assert_eq!(
            oneway(&t(&[("highway", "motorway"), ("oneway", "no")])),
            (false, false)
        );
        assert_eq!(oneway(&t(&[("highway", "residential")])), (false, false));
    }

    #[test]
    fn poi_classes() {
        let t = |k: &str, v: &str| -> Tags { [(k.to_string(), v.to_string())].into() };
        assert_eq!(
            poi_class(&t("amenity", "police")).as_deref(),
            Some("police")
        );
        assert_eq!(
            poi_class(&t("emergency", "fire_station")).as_deref(),
            Some("fire_station")
        );
        assert_eq!(poi_class(&t("shop", "bakery")).as_deref(), Some("shop"));
        assert_eq!(poi_class(&t("highway", "primary")), None);
    }
}
