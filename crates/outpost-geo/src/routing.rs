//! Road routing for dispatch: the car profile, the contraction hierarchy, snapping,
//! road ETAs from units to an incident, reach areas (the 1-3-5 minute isochrones),
//! coverage of the road network, and road closures.
//!
//! Three searches, each where it is fastest: the contraction hierarchy for point-to-point
//! routes ([`Router::route`]); one backward Dijkstra from the incident, stopped once every
//! unit's road is settled, for many-to-one ranking ([`Router::etas_to`]); one multi-source
//! Dijkstra bounded by the largest limit for reach and coverage ([`Router::reach`]).
//!
//! * **Graph.** [`RoadGraph::from_network`] keeps the segments a car may use
//!   ([`car_speed_kmh`]: OSM `highway=*` class speeds, a numeric `maxspeed` overrides;
//!   `access`/`motor_vehicle`/`motorcar`/`vehicle` = `no`/`private`/... excluded; one-way
//!   rules kept) and only the largest strongly connected component, so any two snapped
//!   points can reach each other when no closure is active. Edge weights are travel
//!   times in tenths of a second.
//! * **Speed-up.** Contraction hierarchies from the `fast_paths` crate
//!   (<https://github.com/easbar/fast_paths>). The pack stores the contraction *order*
//!   (table `road_ch`, written by `build_pack`); loading re-contracts with that order
//!   (`fast_paths::prepare_with_order`, ~10 ms for Andorra's 16,000 nodes against ~30 ms
//!   for a full preparation), and so does a change of closures, so routes stay exact with
//!   closures active. The hierarchy answers point-to-point routes; ranking many units
//!   uses one bounded backward Dijkstra instead (on Andorra, 500 units: one search about
//!   twice as fast as 500 hierarchy queries, which [`Router::etas_to_ch`] still offers).
//!   [`Router::route_dijkstra`] and [`Router::etas_to_dijkstra`] answer the same by plain
//!   Dijkstra (the reference for tests and the benchmark).
//! * **Snapping.** A point is placed on the nearest segment of the graph (projection),
//!   never on a fragment outside the largest component: a unit parked on a disconnected
//!   service road still gets an ETA, with the off-road leg driven at [`OFFROAD_MPS`].
//!   The point splits its segment: a source leaves towards the segment's end (and its
//!   start when two-way), a destination is reached from its start (and its end).
//! * **Closures.** [`Router::set_closures`] removes the segments a closure shape closes
//!   ([`Router::closed_segments`]) and re-contracts with the same order; the hierarchy has
//!   one extra sentinel node so its node count never changes. A point snapped onto a
//!   closed segment may still leave it or be reached along it (the closure cannot say
//!   where on the segment it starts). When closures cut a destination off, the answer
//!   names the closures responsible ([`Unreachable::ClosedOff`]).
//! * **Reach.** One multi-source Dijkstra bounded by the largest limit gives the earliest
//!   time at every node; a segment counts as reached when its *whole* length is: for a
//!   two-way segment `u`–`v` of drive time `w` the last point reached is at
//!   `(t_u + t_v + w) / 2` (clamped to `max(t_u, t_v) ..= min(t_u, t_v) + w`), for a
//!   one-way `u → v` at `t_u + w`, sources snapped onto the segment counted from their
//!   point. Isochrones and coverage are read off it (network-based reach: the roads
//!   reachable in time, which the map draws wide).
//!
//! Units: metres, seconds, WGS-84 degrees. Nothing here panics on any input; every
//! failure is a [`RoutingError`] or an [`Unreachable`] reason.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use fast_paths::{FastGraph, InputGraph, PathCalculator};
use outpost_domain::LatLon;
use outpost_domain::road_closure::ClosureShape;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::pack::RoadNetwork;

/// Speed of the off-road leg between a point and the road it snaps to, metres per
/// second (15 km/h: a car leaving a yard or a parking lot).
pub const OFFROAD_MPS: f64 = 15.0 / 3.6;
/// A point farther than this from every road of the graph does not snap, metres.
pub const MAX_SNAP_M: f64 = 5_000.0;
/// The 1-3-5 rule's limits (Dongsheng district, Ordos), seconds.
pub const RULE_1_3_5_S: [f64; 3] = [60.0, 180.0, 300.0];
/// A line closure closes segments whose midpoint lies within this distance of the line,
/// metres.
pub const CLOSURE_LINE_TOLERANCE_M: f64 = 12.0;
/// ... and whose direction differs from the line's local direction by at most this,
/// degrees.
pub const CLOSURE_LINE_MAX_ANGLE_DEG: f64 = 35.0;
/// Tolerance of the simplification of coverage lines, metres (invisible on the map).
pub const COVERAGE_SIMPLIFY_M: f64 = 1.0;
/// Highest speed a numeric `maxspeed` may set, km/h.
pub const MAX_CAR_KMH: f64 = 130.0;

/// Metres per degree of latitude (and of longitude at the equator), for the local
/// equirectangular projections used at street scale.
const M_PER_DEG: f64 = 111_320.0;
/// Side of a cell of the snapping grid, metres.
const GRID_CELL_M: f64 = 250.0;
/// Weight unit: tenths of a second.
const TICKS_PER_S: f64 = 10.0;
const INF: u64 = u64::MAX;

/// Free-flow car speed for an OSM `highway=*` class and an optional numeric `maxspeed`
/// (km/h). `None` when cars may not use the class (footway, path, steps, track,
/// cycleway, pedestrian, bridleway, construction, proposed...). The numeric `maxspeed`
/// wins over the class speed, capped at 130 km/h ([`MAX_CAR_KMH`]); a `maxspeed` below
/// 5 km/h or not finite is ignored (a tagging error, not a speed).
///
/// Class speeds are conservative free-flow values for towns in mountain country
/// (motorway 90, trunk 70, primary 50, secondary 40, tertiary 35, links 30,
/// unclassified/road 30, residential 25, service 15, living street 10 km/h).
pub fn car_speed_kmh(class: &str, maxspeed_kmh: Option<f64>) -> Option<f64> {
    let class_kmh = match class {
        "motorway" => 90.0,
        "trunk" => 70.0,
        "primary" => 50.0,
        "secondary" => 40.0,
        "tertiary" => 35.0,
        "motorway_link" | "trunk_link" | "primary_link" | "secondary_link" | "tertiary_link" => {
            30.0
        }
        "unclassified" | "road" => 30.0,
        "residential" => 25.0,
        "service" => 15.0,
        "living_street" => 10.0,
        _ => return None,
    };
    Some(
        maxspeed_kmh
            .filter(|v| v.is_finite() && *v >= 5.0)
            .map_or(class_kmh, |m| m.min(MAX_CAR_KMH)),
    )
}

/// Why routing could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// The pack's road network has no drivable road at all.
    #[error("the area pack has no drivable road network")]
    NoRoads,
    /// The point is farther than [`MAX_SNAP_M`] from every drivable road.
    #[error("no drivable road within {max_m:.0} m of {lat:.6},{lon:.6} (nearest {nearest_m:.0} m)")]
    TooFarFromRoad {
        /// Latitude of the point.
        lat: f64,
        /// Longitude of the point.
        lon: f64,
        /// Distance to the nearest drivable road, metres.
        nearest_m: f64,
        /// The limit, metres.
        max_m: f64,
    },
    /// The stored contraction order does not fit the graph (a damaged pack).
    #[error("the pack's road hierarchy does not match its road graph: {0}")]
    BadOrder(String),
    /// The point is not a valid WGS-84 position (NaN, latitude beyond ±90, longitude
    /// beyond ±180); the message says which coordinate.
    #[error("not a valid position: {0}")]
    InvalidPoint(String),
}

/// Why a destination cannot be reached although both ends snapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Unreachable {
    /// Active closures cut every route; the ids are the closures that do (each alone, or
    /// together when no single one does).
    ClosedOff {
        /// Ids of the closures responsible (as given to [`Router::set_closures`]).
        closures: Vec<String>,
    },
}

/// A point placed on the graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// The point on the road, WGS-84.
    pub on_road: LatLon,
    /// Distance from the given point to `on_road`, metres.
    pub offroad_m: f64,
    /// Index of the segment (into the graph's segments).
    pub segment: usize,
    /// Where along the segment, 0..=1 from its start.
    pub along: f64,
}

/// A route: the road to follow and how long it takes at free flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Travel time, seconds (off-road legs included).
    pub eta_s: f64,
    /// Length, metres (off-road legs included).
    pub distance_m: f64,
    /// The line from the start to the destination, WGS-84 (starts with the given start
    /// point, ends with the given destination).
    pub line: Vec<LatLon>,
}

/// Travel time and distance without the line (for ranking).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    /// Travel time, seconds.
    pub eta_s: f64,
    /// Length, metres.
    pub distance_m: f64,
}

/// The contraction order and counts stored in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchyOrder {
    /// Node ids of the car graph in contraction order (as `fast_paths::get_node_ordering`).
    /// The hierarchy has one more node than [`RoadGraph::node_count`]: a sentinel with
    /// id `node_count` (one edge out, none in) that keeps the node count of the
    /// hierarchy fixed whatever closures remove.
    pub order: Vec<u32>,
}

/// One road segment of the car graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSegment {
    /// Graph node where the segment starts (index for [`RoadGraph::node_position`]).
    pub from: usize,
    /// Graph node where it ends.
    pub to: usize,
    /// Position of `from`, WGS-84.
    pub a: LatLon,
    /// Position of `to`, WGS-84.
    pub b: LatLon,
    /// Length, metres.
    pub length_m: f64,
    /// OSM `highway=*` class.
    pub class: String,
    /// OSM `name`, if any.
    pub name: Option<String>,
    /// True when it may only be driven `from` → `to`.
    pub oneway: bool,
    /// Travel time at the car speed, tenths of a second (≥ 1).
    pub weight: u32,
    /// Index of the edge in the pack's [`RoadNetwork::edges`].
    pub network_edge: usize,
}

impl GraphSegment {
    /// Travel time over the whole segment, seconds.
    pub fn travel_s(&self) -> f64 {
        f64::from(self.weight) / TICKS_PER_S
    }
}

/// A grid of segment ids over a local equirectangular projection, for snapping.
#[derive(Debug, Default)]
struct Grid {
    /// Cosine of the reference latitude (x scale).
    k: f64,
    cells: HashMap<(i32, i32), Vec<u32>>,
}

impl Grid {
    fn xy(&self, p: LatLon) -> (f64, f64) {
        (p.lon * self.k * M_PER_DEG, p.lat * M_PER_DEG)
    }

    fn cell(&self, p: LatLon) -> (i32, i32) {
        let (x, y) = self.xy(p);
        (
            (x / GRID_CELL_M).floor().clamp(-1e9, 1e9) as i32,
            (y / GRID_CELL_M).floor().clamp(-1e9, 1e9) as i32,
        )
    }
}

/// The drivable road graph of a pack: segments of the largest strongly connected
/// component, with their geometry, lengths, class and travel times. Immutable; shared by
/// routers through an `Arc`.
#[derive(Debug)]
pub struct RoadGraph {
    nodes: Vec<LatLon>,
    /// Pack network node index of each graph node.
    network_nodes: Vec<u32>,
    segments: Vec<GraphSegment>,
    /// Directed arcs out of each node: (next node, segment).
    out: Vec<Vec<(u32, u32)>>,
    /// Directed arcs into each node: (previous node, segment).
    inc: Vec<Vec<(u32, u32)>>,
    grid: Grid,
    total_length_m: f64,
}

/// Whether a search follows arcs forward, backward, or both ways (one-way rules off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Forward,
    Backward,
    Both,
}

/// Result of a Dijkstra search: distance in ticks, length in metres and the arc each
/// node was reached by (previous node, segment) — `u32::MAX` for a start.
struct Search {
    dist: Vec<u64>,
    len: Vec<f64>,
    pred: Vec<(u32, u32)>,
}

impl RoadGraph {
    /// Builds the car graph from a pack's road network (see the module doc for the rules).
    ///
    /// Deterministic: the same network gives the same node numbering (graph nodes are the
    /// component's network nodes in network order), which the stored contraction order
    /// relies on.
    ///
    /// # Errors
    /// [`RoutingError::NoRoads`] when no segment is drivable.
    pub fn from_network(net: &RoadNetwork) -> Result<RoadGraph, RoutingError> {
        let n = net.nodes.len();
        // Drivable edges: (network edge, weight).
        let mut drivable: Vec<(usize, u32)> = Vec::new();
        for (i, e) in net.edges.iter().enumerate() {
            if e.from >= n || e.to >= n || e.from == e.to || !e.car_access {
                continue;
            }
            let Some(kmh) = car_speed_kmh(&e.class, e.maxspeed_kmh) else {
                continue;
            };
            let len = if e.length_m.is_finite() {
                e.length_m.max(0.0)
            } else {
                0.0
            };
            let ticks = (len / (kmh / 3.6) * TICKS_PER_S).round();
            let w = if ticks.is_finite() {
                ticks.clamp(1.0, f64::from(u32::MAX / 4)) as u32
            } else {
                1
            };
            drivable.push((i, w));
        }
        if drivable.is_empty() {
            return Err(RoutingError::NoRoads);
        }
        // Largest strongly connected component (petgraph's Tarjan); ties go to the
        // component holding the lowest node, so the graph is the same on every build.
        let mut directed: DiGraph<(), ()> = DiGraph::with_capacity(n, drivable.len() * 2);
        for _ in 0..n {
            directed.add_node(());
        }
        for &(i, _) in &drivable {
            let e = &net.edges[i];
            directed.add_edge(NodeIndex::new(e.from), NodeIndex::new(e.to), ());
            if !e.oneway {
                directed.add_edge(NodeIndex::new(e.to), NodeIndex::new(e.from), ());
            }
        }
        let Some(main) = tarjan_scc(&directed).into_iter().max_by_key(|c| {
            let lowest = c.iter().map(|v| v.index()).min().unwrap_or(usize::MAX);
            (c.len(), Reverse(lowest))
        }) else {
            return Err(RoutingError::NoRoads);
        };
        let size = main.len();
        if size < 2 {
            return Err(RoutingError::NoRoads);
        }
        let mut in_main = vec![false; n];
        for v in &main {
            in_main[v.index()] = true;
        }
        let mut graph_id = vec![u32::MAX; n];
        let mut nodes = Vec::with_capacity(size);
        let mut network_nodes = Vec::with_capacity(size);
        for v in 0..n {
            if in_main[v] {
                graph_id[v] = nodes.len() as u32;
                nodes.push(net.nodes[v].at);
                network_nodes.push(v as u32);
            }
        }
        let mut segments = Vec::new();
        let mut out = vec![Vec::new(); nodes.len()];
        let mut inc = vec![Vec::new(); nodes.len()];
        let mut total_length_m = 0.0;
        for &(i, w) in &drivable {
            let e = &net.edges[i];
            let (a, b) = (graph_id[e.from], graph_id[e.to]);
            if a == u32::MAX || b == u32::MAX {
                continue;
            }
            let s = segments.len() as u32;
            out[a as usize].push((b, s));
            inc[b as usize].push((a, s));
            if !e.oneway {
                out[b as usize].push((a, s));
                inc[a as usize].push((b, s));
            }
            let length_m = if e.length_m.is_finite() {
                e.length_m.max(0.0)
            } else {
                0.0
            };
            total_length_m += length_m;
            segments.push(GraphSegment {
                from: a as usize,
                to: b as usize,
                a: nodes[a as usize],
                b: nodes[b as usize],
                length_m,
                class: e.class.clone(),
                name: e.name.clone(),
                oneway: e.oneway,
                weight: w,
                network_edge: i,
            });
        }
        let mean_lat = nodes.iter().map(|p| p.lat).sum::<f64>() / nodes.len() as f64;
        let mut grid = Grid {
            k: mean_lat.to_radians().cos().max(0.01),
            cells: HashMap::new(),
        };
        for (i, s) in segments.iter().enumerate() {
            let (c0, c1) = (grid.cell(s.a), grid.cell(s.b));
            for cx in c0.0.min(c1.0)..=c0.0.max(c1.0) {
                for cy in c0.1.min(c1.1)..=c0.1.max(c1.1) {
                    grid.cells.entry((cx, cy)).or_default().push(i as u32);
                }
            }
        }
        Ok(RoadGraph {
            nodes,
            network_nodes,
            segments,
            out,
            inc,
            grid,
            total_length_m,
        })
    }

    /// Computes a contraction order (the expensive part of the hierarchy, done once when a
    /// pack is built).
    pub fn contraction_order(&self) -> HierarchyOrder {
        let input = self.input_graph(&[]);
        let ch = fast_paths::prepare(&input);
        HierarchyOrder {
            order: fast_paths::get_node_ordering(&ch)
                .into_iter()
                .map(|v| v as u32)
                .collect(),
        }
    }

    /// The graph for `fast_paths`: open segments (both directions unless one-way) plus the
    /// sentinel edge `node_count → 0` (see [`HierarchyOrder`]).
    fn input_graph(&self, closed: &[bool]) -> InputGraph {
        let mut g = InputGraph::new();
        for (i, s) in self.segments.iter().enumerate() {
            if closed.get(i).copied().unwrap_or(false) {
                continue;
            }
            g.add_edge(s.from, s.to, s.weight as usize);
            if !s.oneway {
                g.add_edge(s.to, s.from, s.weight as usize);
            }
        }
        g.add_edge(self.nodes.len(), 0, 1);
        g.freeze();
        g
    }

    /// Number of graph nodes (junctions and shape points of drivable roads).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of road segments in the graph (a two-way segment counts once).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Total length of the graph's road segments, metres (two-way counted once).
    pub fn total_length_m(&self) -> f64 {
        self.total_length_m
    }

    /// The graph's segments (index = segment id in [`Snap`], [`Reach`] and
    /// [`Router::closed_segments`]).
    pub fn segments(&self) -> &[GraphSegment] {
        &self.segments
    }

    /// Position of a graph node, WGS-84.
    pub fn node_position(&self, node: usize) -> Option<LatLon> {
        self.nodes.get(node).copied()
    }

    /// Index in the pack's [`RoadNetwork::nodes`] of a graph node.
    pub fn network_node(&self, node: usize) -> Option<usize> {
        self.network_nodes.get(node).map(|v| *v as usize)
    }

    /// Places a point on the nearest segment of the graph.
    ///
    /// # Errors
    /// [`RoutingError::InvalidPoint`] for a position that is not WGS-84,
    /// [`RoutingError::TooFarFromRoad`] beyond [`MAX_SNAP_M`].
    pub fn snap(&self, at: LatLon) -> Result<Snap, RoutingError> {
        LatLon::new(at.lat, at.lon).map_err(|e| RoutingError::InvalidPoint(e.to_string()))?;
        let center = self.grid.cell(at);
        let mut best: Option<(f64, usize, f64)> = None;
        let max_ring = (MAX_SNAP_M / GRID_CELL_M).ceil() as i32 + 1;
        for r in 0..=max_ring {
            for cx in center.0 - r..=center.0 + r {
                for cy in center.1 - r..=center.1 + r {
                    if (cx - center.0).abs() != r && (cy - center.1).abs() != r {
                        continue;
                    }
                    if let Some(list) = self.grid.cells.get(&(cx, cy)) {
                        for &s in list {
                            let seg = &self.segments[s as usize];
                            let (d, t) = project(at, seg.a, seg.b);
                            if best
                                .is_none_or(|(bd, bs, _)| d < bd || (d == bd && (s as usize) < bs))
                            {
                                best = Some((d, s as usize, t));
                            }
                        }
                    }
                }
            }
            // Every segment not seen yet lies in a cell at least r cells away.
            if best.is_some_and(|(d, _, _)| d <= f64::from(r) * GRID_CELL_M) {
                break;
            }
        }
        let best = match best {
            Some(b) if b.0 <= MAX_SNAP_M => b,
            _ => {
                let nearest_m = self
                    .segments
                    .iter()
                    .map(|s| project(at, s.a, s.b).0)
                    .fold(f64::INFINITY, f64::min);
                return Err(RoutingError::TooFarFromRoad {
                    lat: at.lat,
                    lon: at.lon,
                    nearest_m,
                    max_m: MAX_SNAP_M,
                });
            }
        };
        let (d, s, t) = best;
        let seg = &self.segments[s];
        Ok(Snap {
            on_road: lerp(seg.a, seg.b, t),
            offroad_m: d,
            segment: s,
            along: t,
        })
    }

    /// Virtual start arcs of a snapped point: graph nodes reachable along its segment and
    /// the cost (ticks) and length (metres) to get there.
    fn starts(&self, s: &Snap) -> Vec<(usize, u64, f64)> {
        let seg = &self.segments[s.segment];
        let w = f64::from(seg.weight);
        let back = (s.along * w).round() as u64;
        let mut v = vec![(
            seg.to,
            ((1.0 - s.along) * w).round() as u64,
            (1.0 - s.along) * seg.length_m,
        )];
        // Against a one-way segment only from its very start (the point is the node).
        if !seg.oneway || back == 0 {
            v.push((seg.from, back, s.along * seg.length_m));
        }
        v
    }

    /// Virtual target arcs: graph nodes from which the point is reached along its segment.
    fn targets(&self, s: &Snap) -> Vec<(usize, u64, f64)> {
        let seg = &self.segments[s.segment];
        let w = f64::from(seg.weight);
        let ahead = ((1.0 - s.along) * w).round() as u64;
        let mut v = vec![(
            seg.from,
            (s.along * w).round() as u64,
            s.along * seg.length_m,
        )];
        // Against a one-way segment only at its very end (the point is the node).
        if !seg.oneway || ahead == 0 {
            v.push((seg.to, ahead, (1.0 - s.along) * seg.length_m));
        }
        v
    }

    /// Cost and length of driving from `a` to `b` on their common segment without
    /// leaving it (`None` on different segments or against a one-way segment).
    fn same_segment(&self, a: &Snap, b: &Snap, both_ways: bool) -> Option<(u64, f64)> {
        if a.segment != b.segment {
            return None;
        }
        let seg = &self.segments[a.segment];
        let d = b.along - a.along;
        if d >= 0.0 || !seg.oneway || both_ways {
            Some((
                (d.abs() * f64::from(seg.weight)).round() as u64,
                d.abs() * seg.length_m,
            ))
        } else {
            None
        }
    }

    /// Plain Dijkstra from `starts` ((node, ticks, metres)), skipping `closed` segments,
    /// settling nodes up to `bound` ticks; stops early once `done(node, dist)` says so.
    fn dijkstra(
        &self,
        starts: &[(usize, u64, f64)],
        dir: Dir,
        closed: &[bool],
        bound: u64,
        mut done: impl FnMut(usize, u64) -> bool,
    ) -> Search {
        let n = self.nodes.len();
        let mut s = Search {
            dist: vec![INF; n],
            len: vec![0.0; n],
            pred: vec![(u32::MAX, u32::MAX); n],
        };
        let mut settled = vec![false; n];
        let mut heap = BinaryHeap::new();
        for &(v, d, l) in starts {
            if v < n && d < s.dist[v] && d <= bound {
                s.dist[v] = d;
                s.len[v] = l;
                heap.push(Reverse((d, v as u32)));
            }
        }
        while let Some(Reverse((d, v))) = heap.pop() {
            let v = v as usize;
            if settled[v] || d > s.dist[v] {
                continue;
            }
            settled[v] = true;
            if done(v, d) {
                break;
            }
            let lists: [&[(u32, u32)]; 2] = match dir {
                Dir::Forward => [&self.out[v], &[]],
                Dir::Backward => [&self.inc[v], &[]],
                Dir::Both => [&self.out[v], &self.inc[v]],
            };
            for list in lists {
                for &(u, seg) in list {
                    if closed.get(seg as usize).copied().unwrap_or(false) {
                        continue;
                    }
                    let sg = &self.segments[seg as usize];
                    let nd = d + u64::from(sg.weight);
                    let u = u as usize;
                    if nd < s.dist[u] && nd <= bound {
                        s.dist[u] = nd;
                        s.len[u] = s.len[v] + sg.length_m;
                        s.pred[u] = (v as u32, seg);
                        heap.push(Reverse((nd, u as u32)));
                    }
                }
            }
        }
        s
    }

    /// The road line between consecutive `points` (each snapped; shortest drive ignoring
    /// one-way rules and closures), for drawing a road closure that follows the road.
    ///
    /// # Errors
    /// A point that is not a valid position or is too far from a road.
    pub fn road_line(&self, points: &[LatLon]) -> Result<Vec<LatLon>, RoutingError> {
        let snaps = points
            .iter()
            .map(|p| self.snap(*p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut line: Vec<LatLon> = Vec::new();
        let push = |line: &mut Vec<LatLon>, p: LatLon| {
            if line.last() != Some(&p) {
                line.push(p);
            }
        };
        if let Some(first) = snaps.first() {
            push(&mut line, first.on_road);
        }
        for pair in snaps.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let both = |s: &Snap| {
                let seg = &self.segments[s.segment];
                let w = f64::from(seg.weight);
                vec![
                    (seg.from, (s.along * w).round() as u64, 0.0),
                    (seg.to, ((1.0 - s.along) * w).round() as u64, 0.0),
                ]
            };
            let (starts, targets) = (both(a), both(b));
            let direct = self.same_segment(a, b, true).map(|(c, _)| c);
            let (best, end) = self.best_meeting(&starts, &targets, Dir::Both, &[], direct);
            if let (Some(search), Some(end)) = (best, end) {
                for v in path_nodes(&search.pred, end) {
                    push(&mut line, self.nodes[v]);
                }
            }
            push(&mut line, b.on_road);
        }
        Ok(line)
    }

    /// Dijkstra from `starts` until the best `targets` entry is settled; returns the
    /// search and the target node of the best path, or `(None, None)` when `direct` (a
    /// same-segment cost) is at least as good or nothing is reachable.
    fn best_meeting(
        &self,
        starts: &[(usize, u64, f64)],
        targets: &[(usize, u64, f64)],
        dir: Dir,
        closed: &[bool],
        direct: Option<u64>,
    ) -> (Option<Search>, Option<usize>) {
        let mut best = direct.unwrap_or(INF);
        let mut best_node: Option<usize> = None;
        let search = self.dijkstra(starts, dir, closed, INF, |v, d| {
            if d >= best {
                return true;
            }
            for &(t, off, _) in targets {
                if t == v && d.saturating_add(off) < best {
                    best = d + off;
                    best_node = Some(v);
                }
            }
            false
        });
        match best_node {
            Some(v) => (Some(search), Some(v)),
            None => (None, None),
        }
    }
}

/// Nodes of the path ending at `end` in a search's predecessor tree, first to last.
fn path_nodes(pred: &[(u32, u32)], end: usize) -> Vec<usize> {
    let mut v = vec![end];
    let mut cur = end;
    while let Some(&(p, _)) = pred.get(cur) {
        if p == u32::MAX || v.len() > pred.len() {
            break;
        }
        cur = p as usize;
        v.push(cur);
    }
    v.reverse();
    v
}

/// Distance from `p` to the segment `a`–`b` (metres) and where the nearest point lies
/// along it (0..=1), in a local equirectangular projection at `p`.
fn project(p: LatLon, a: LatLon, b: LatLon) -> (f64, f64) {
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
    ((cx * cx + cy * cy).sqrt(), t)
}

fn lerp(a: LatLon, b: LatLon, t: f64) -> LatLon {
    LatLon {
        lat: a.lat + (b.lat - a.lat) * t,
        lon: a.lon + (b.lon - a.lon) * t,
    }
}

/// One source of a reach computation: a post, station or unit position.
#[derive(Debug, Clone, PartialEq)]
pub struct ReachSource {
    /// Caller's id (facility id or unit id).
    pub id: String,
    /// Where it is, WGS-84.
    pub at: LatLon,
}

/// For every segment of the graph, the earliest travel time from any source, seconds
/// (`None`: not reached within the limit), and the sources that could not be placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    /// The limit the search stopped at, seconds.
    pub limit_s: f64,
    /// Per segment (index as [`RoadGraph`]'s segments): time the whole segment is reached,
    /// seconds — the latest over its points of the earliest arrival there (two-way
    /// `u`–`v` of drive time `w`: `(t_u + t_v + w) / 2`, clamped to
    /// `max(t_u, t_v) ..= min(t_u, t_v) + w`; one-way `u → v`: `t_u + w`; a source on the
    /// segment counts from its point). `None` when that is beyond the limit. Closed
    /// segments are never reached.
    pub segment_s: Vec<Option<f64>>,
    /// Sources that did not snap (too far from a road), with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Share of the road network reached within each of the 1-3-5 limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Share (0..=1) of the graph's road length reached within 60, 180, 300 s.
    pub share: [f64; 3],
    /// Road length reached within 60, 180, 300 s, metres.
    pub reached_m: [f64; 3],
    /// Total road length of the graph, metres.
    pub total_m: f64,
    /// Lines per band, [lon, lat] pairs (GeoJSON order), consecutive segments of one band
    /// joined: index 0 ≤ 60 s, 1 ≤ 180 s, 2 ≤ 300 s, 3 beyond 300 s (the holes).
    pub bands: [Vec<Vec<[f64; 2]>>; 4],
}

/// Routes, ETAs and reach on a [`RoadGraph`] with a set of active closures. `Send + Sync`.
pub struct Router {
    graph: Arc<RoadGraph>,
    /// Contraction order (node count + 1 ids, see [`HierarchyOrder`]).
    order: Vec<usize>,
    /// The hierarchy without the closed segments.
    ch: FastGraph,
    /// Query scratch space, reused between calls.
    calculators: Mutex<Vec<PathCalculator>>,
    /// Per segment: closed by an active closure.
    closed: Vec<bool>,
    /// Active closures and the segments each closes.
    closures: Vec<(String, Vec<usize>)>,
    /// The active closures' shapes and segments by id, so [`Router::set_closures`] maps
    /// only new or changed shapes.
    mapped: HashMap<String, (ClosureShape, Vec<usize>)>,
    /// How many shapes [`Router::set_closures`] has mapped to segments.
    shapes_mapped: u64,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("nodes", &self.graph.node_count())
            .field("segments", &self.graph.segment_count())
            .field("closures", &self.closures.len())
            .finish_non_exhaustive()
    }
}

/// A path found on the graph: cost in ticks, length in metres, and the graph nodes
/// (empty when the two points are on one segment and the path stays on it).
struct Found {
    ticks: u64,
    length_m: f64,
    nodes: Vec<usize>,
}

impl Router {
    /// A router with no closure, contracted with `order` (from the pack), or computing an
    /// order when `None`.
    ///
    /// # Errors
    /// [`RoutingError::BadOrder`] when `order` does not fit the graph (wrong length, an id
    /// out of range or repeated).
    pub fn new(
        graph: Arc<RoadGraph>,
        order: Option<&HierarchyOrder>,
    ) -> Result<Router, RoutingError> {
        let want = graph.node_count() + 1;
        let order: Vec<usize> = match order {
            Some(o) => {
                if o.order.len() != want {
                    return Err(RoutingError::BadOrder(format!(
                        "{} nodes in the order, {want} in the graph",
                        o.order.len()
                    )));
                }
                let mut seen = vec![false; want];
                for &v in &o.order {
                    let v = v as usize;
                    if v >= want || seen[v] {
                        return Err(RoutingError::BadOrder(format!(
                            "node {v} out of range or repeated"
                        )));
                    }
                    seen[v] = true;
                }
                o.order.iter().map(|v| *v as usize).collect()
            }
            None => graph
                .contraction_order()
                .order
                .into_iter()
                .map(|v| v as usize)
                .collect(),
        };
        let input = graph.input_graph(&[]);
        let ch = fast_paths::prepare_with_order(&input, &order).map_err(RoutingError::BadOrder)?;
        let closed = vec![false; graph.segment_count()];
        Ok(Router {
            graph,
            order,
            ch,
            calculators: Mutex::new(Vec::new()),
            closed,
            closures: Vec::new(),
            mapped: HashMap::new(),
            shapes_mapped: 0,
        })
    }

    /// The graph.
    pub fn graph(&self) -> &Arc<RoadGraph> {
        &self.graph
    }

    /// Replaces the active closures (`(id, shape)`; an empty slice lifts all) and
    /// re-contracts the hierarchy without the closed segments (with the same order).
    /// Returns how many segments are closed.
    ///
    /// The segments of each closure are kept by id with its shape, so a closure given
    /// again with the same shape is not mapped again (drawing one more closure maps only
    /// that one); closures not given are forgotten.
    ///
    /// A point snapped onto a closed segment still leaves it (a unit standing in a closed
    /// street drives out; an incident there is reached up to its point).
    pub fn set_closures(&mut self, closures: &[(String, ClosureShape)]) -> usize {
        let mut closed = vec![false; self.graph.segment_count()];
        let mut known = std::mem::take(&mut self.mapped);
        let mut list = Vec::with_capacity(closures.len());
        for (id, shape) in closures {
            let segs = match known.remove(id) {
                Some((was, segs)) if was == *shape => segs,
                _ => {
                    self.shapes_mapped += 1;
                    self.closed_segments(shape)
                }
            };
            for &s in &segs {
                closed[s] = true;
            }
            self.mapped
                .insert(id.clone(), (shape.clone(), segs.clone()));
            list.push((id.clone(), segs));
        }
        let input = self.graph.input_graph(&closed);
        // The sentinel keeps the node count, so the order always fits; a full preparation
        // is the fallback should it not.
        self.ch = fast_paths::prepare_with_order(&input, &self.order)
            .unwrap_or_else(|_| fast_paths::prepare(&input));
        self.closed = closed;
        self.closures = list;
        self.closed.iter().filter(|c| **c).count()
    }

    /// How many closure shapes [`Router::set_closures`] has mapped to segments since the
    /// router was made (each new or changed closure once; diagnostics and tests).
    pub fn shapes_mapped(&self) -> u64 {
        self.shapes_mapped
    }

    /// The segments the active closure `id` closes (as given to the last
    /// [`Router::set_closures`]), ascending; `None` when it is not active here.
    pub fn active_closure_segments(&self, id: &str) -> Option<&[usize]> {
        self.closures
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, segs)| segs.as_slice())
    }

    /// Ids of the segments a closure shape closes (for tests and the map), ascending.
    ///
    /// A line closes the segments that run along it: midpoint within
    /// [`CLOSURE_LINE_TOLERANCE_M`] of the line (or a midpoint of the line's pieces within
    /// that distance of the segment) and direction within [`CLOSURE_LINE_MAX_ANGLE_DEG`]
    /// of the line's piece there. An area closes the segments with an end or the midpoint
    /// inside the ring, or crossing one of its edges. Invalid points close nothing.
    pub fn closed_segments(&self, shape: &ClosureShape) -> Vec<usize> {
        let pts = shape.points();
        let Some(first) = pts.first() else {
            return Vec::new();
        };
        if pts.iter().any(|p| LatLon::new(p.lat, p.lon).is_err()) {
            return Vec::new();
        }
        let area = matches!(shape, ClosureShape::Area { .. });
        if area && pts.len() < 3 {
            return Vec::new();
        }
        let k = first.lat.to_radians().cos().max(0.01);
        let xy = |p: LatLon| {
            (
                (p.lon - first.lon) * k * M_PER_DEG,
                (p.lat - first.lat) * M_PER_DEG,
            )
        };
        let poly: Vec<(f64, f64)> = pts.iter().map(|p| xy(*p)).collect();
        let (mut minx, mut miny, mut maxx, mut maxy) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(x, y) in &poly {
            (minx, miny, maxx, maxy) = (minx.min(x), miny.min(y), maxx.max(x), maxy.max(y));
        }
        let margin = CLOSURE_LINE_TOLERANCE_M + 1.0;
        let cos_max = CLOSURE_LINE_MAX_ANGLE_DEG.to_radians().cos();
        // Pieces: the line's, or the ring's edges (closing edge included).
        let pieces: Vec<Piece> = if area {
            (0..poly.len())
                .map(|j| (poly[j], poly[(j + 1) % poly.len()]))
                .collect()
        } else {
            poly.windows(2).map(|w| (w[0], w[1])).collect()
        };
        let grid = PieceGrid::new(&pieces, (minx, miny, maxx, maxy), margin);
        // Per piece: the last segment it was tested against (+1), so a piece listed in
        // several cells is tested once.
        let mut seen = vec![0usize; pieces.len()];
        // Per row of the grid (computed on first use): whether each cell's centre is
        // inside the ring.
        let mut rows: Vec<Option<Vec<bool>>> = vec![None; grid.ny];
        let mut near: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for (i, s) in self.graph.segments.iter().enumerate() {
            let (a, b) = (xy(s.a), xy(s.b));
            let sbox = (a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1));
            if sbox.2 < minx - margin
                || sbox.0 > maxx + margin
                || sbox.3 < miny - margin
                || sbox.1 > maxy + margin
            {
                continue;
            }
            // Every piece crossing the segment or within `margin` of one of its points is
            // listed in a cell the segment's bounding box covers.
            near.clear();
            grid.pieces_near(sbox, |p| {
                if seen[p as usize] != i + 1 {
                    seen[p as usize] = i + 1;
                    near.push(p);
                }
            });
            let m = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            let hit = if area {
                near.iter()
                    .any(|&j| crosses(a, b, pieces[j as usize].0, pieces[j as usize].1))
                    || if near.is_empty() {
                        // No edge within `margin` of the segment's bounding box: the box
                        // and the (edge-free) cell of the midpoint lie on one side of the
                        // ring, as does that cell's centre.
                        match grid.cell_of(m) {
                            Some(c) => grid.centre_inside(&poly, &mut rows, c),
                            None => inside(&poly, m),
                        }
                    } else {
                        grid.inside(&poly, &pieces, &mut rows, a)
                            || grid.inside(&poly, &pieces, &mut rows, b)
                            || grid.inside(&poly, &pieces, &mut rows, m)
                    }
            } else {
                near.iter().any(|&j| {
                    let (p, q) = pieces[j as usize];
                    let aligned = {
                        let (ux, uy) = (b.0 - a.0, b.1 - a.1);
                        let (vx, vy) = (q.0 - p.0, q.1 - p.1);
                        let nn = (ux * ux + uy * uy).sqrt() * (vx * vx + vy * vy).sqrt();
                        nn > 0.0 && (ux * vx + uy * vy).abs() / nn >= cos_max
                    };
                    let pm = ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0);
                    aligned
                        && (dist_to_piece(m, p, q) <= CLOSURE_LINE_TOLERANCE_M
                            || dist_to_piece(pm, a, b) <= CLOSURE_LINE_TOLERANCE_M)
                })
            };
            if hit {
                out.push(i);
            }
        }
        out
    }

    fn calculator(&self) -> PathCalculator {
        self.calculators
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| fast_paths::create_calculator(&self.ch))
    }

    fn give_back(&self, calc: PathCalculator) {
        if let Ok(mut p) = self.calculators.lock()
            && p.len() < 4
        {
            p.push(calc);
        }
    }

    /// The open segment `u → v` with the least weight.
    fn arc(&self, u: usize, v: usize) -> Option<&GraphSegment> {
        self.graph
            .out
            .get(u)?
            .iter()
            .filter(|(to, s)| *to as usize == v && !self.closed[*s as usize])
            .map(|(_, s)| &self.graph.segments[*s as usize])
            .min_by_key(|s| s.weight)
    }

    /// Fastest path between two snapped points on the hierarchy.
    fn ch_path(&self, calc: &mut PathCalculator, a: &Snap, b: &Snap) -> Option<Found> {
        let g = &self.graph;
        let starts = g.starts(a);
        let targets = g.targets(b);
        let direct = g.same_segment(a, b, false);
        let n = self.ch.get_num_nodes();
        let as_fp = |v: &[(usize, u64, f64)]| -> Vec<(usize, usize)> {
            v.iter()
                .filter(|(node, _, _)| *node < n)
                .map(|(node, c, _)| (*node, *c as usize))
                .collect()
        };
        let (s, t) = (as_fp(&starts), as_fp(&targets));
        let path = if s.is_empty() || t.is_empty() {
            None
        } else {
            calc.calc_path_multiple_sources_and_targets(&self.ch, s, t)
        };
        let via_graph = path.map(|p| {
            let nodes = p.get_nodes().clone();
            let first = nodes.first().copied().unwrap_or(usize::MAX);
            let last = nodes.last().copied().unwrap_or(usize::MAX);
            let mut len = starts.iter().find(|x| x.0 == first).map_or(0.0, |x| x.2)
                + targets.iter().find(|x| x.0 == last).map_or(0.0, |x| x.2);
            for w in nodes.windows(2) {
                len += self.arc(w[0], w[1]).map_or(0.0, |s| s.length_m);
            }
            Found {
                ticks: p.get_weight() as u64,
                length_m: len,
                nodes,
            }
        });
        pick(direct, via_graph)
    }

    /// Fastest path between two snapped points by plain Dijkstra.
    fn dijkstra_path(&self, a: &Snap, b: &Snap) -> Option<Found> {
        let g = &self.graph;
        let targets = g.targets(b);
        let direct = g.same_segment(a, b, false);
        let (search, end) = g.best_meeting(
            &g.starts(a),
            &targets,
            Dir::Forward,
            &self.closed,
            direct.map(|d| d.0),
        );
        let via_graph = match (search, end) {
            (Some(s), Some(end)) => {
                let off = targets
                    .iter()
                    .find(|x| x.0 == end)
                    .map_or((0, 0.0), |x| (x.1, x.2));
                Some(Found {
                    ticks: s.dist[end] + off.0,
                    length_m: s.len[end] + off.1,
                    nodes: path_nodes(&s.pred, end),
                })
            }
            _ => None,
        };
        pick(direct, via_graph)
    }

    fn snap_both(&self, from: LatLon, to: LatLon) -> Result<(Snap, Snap), RoutingError> {
        Ok((self.graph.snap(from)?, self.graph.snap(to)?))
    }

    fn to_route(&self, from: LatLon, to: LatLon, a: &Snap, b: &Snap, f: Found) -> Route {
        let mut line = vec![from, a.on_road];
        line.extend(
            f.nodes
                .iter()
                .filter_map(|v| self.graph.nodes.get(*v).copied()),
        );
        line.push(b.on_road);
        line.push(to);
        line.dedup();
        Route {
            eta_s: f.ticks as f64 / TICKS_PER_S + (a.offroad_m + b.offroad_m) / OFFROAD_MPS,
            distance_m: f.length_m + a.offroad_m + b.offroad_m,
            line,
        }
    }

    /// The fastest route from `from` to `to` (contraction hierarchy).
    ///
    /// # Errors
    /// `Err(RoutingError)` when a point does not snap; `Ok(Err(Unreachable))` when
    /// closures cut every route.
    pub fn route(
        &self,
        from: LatLon,
        to: LatLon,
    ) -> Result<Result<Route, Unreachable>, RoutingError> {
        let (a, b) = self.snap_both(from, to)?;
        let mut calc = self.calculator();
        let found = self.ch_path(&mut calc, &a, &b);
        self.give_back(calc);
        Ok(match found {
            Some(f) => Ok(self.to_route(from, to, &a, &b, f)),
            None => Err(self.blame(&b).who_cuts(&self.graph, &a)),
        })
    }

    /// Plain Dijkstra point to point (the benchmark's reference for [`Router::route`]).
    ///
    /// # Errors
    /// As [`Router::route`].
    pub fn route_dijkstra(
        &self,
        from: LatLon,
        to: LatLon,
    ) -> Result<Result<Route, Unreachable>, RoutingError> {
        let (a, b) = self.snap_both(from, to)?;
        Ok(match self.dijkstra_path(&a, &b) {
            Some(f) => Ok(self.to_route(from, to, &a, &b, f)),
            None => Err(self.blame(&b).who_cuts(&self.graph, &a)),
        })
    }

    /// Travel times from each of `from` to `to`, in the order given: the many-to-one
    /// ranking of units for an incident.
    ///
    /// One backward Dijkstra from `to` (closures avoided), stopped as soon as both ends of
    /// every source's snapped segment are settled, so a ranking costs one bounded search
    /// whatever the number of units (on Andorra, 500 units: about half the time of one
    /// hierarchy query per unit, [`Router::etas_to_ch`]). The answers are exactly those of
    /// [`Router::etas_to_dijkstra`] (the same search run to the end).
    ///
    /// # Errors
    /// `Err` when `to` does not snap; each source's own failure is in its slot.
    pub fn etas_to(
        &self,
        from: &[LatLon],
        to: LatLon,
    ) -> Result<Vec<Result<Eta, EtaProblem>>, RoutingError> {
        self.etas_backward(from, to, true)
    }

    /// The same answers as [`Router::etas_to`] by one contraction-hierarchy query per
    /// source (one calculator reused): the per-source alternative, kept for the benchmark's
    /// comparison (faster for a handful of sources, slower for hundreds).
    ///
    /// # Errors
    /// As [`Router::etas_to`].
    pub fn etas_to_ch(
        &self,
        from: &[LatLon],
        to: LatLon,
    ) -> Result<Vec<Result<Eta, EtaProblem>>, RoutingError> {
        let b = self.graph.snap(to)?;
        let mut calc = self.calculator();
        let mut blame: Option<Blame> = None;
        let out = from
            .iter()
            .map(|p| {
                let a = self
                    .graph
                    .snap(*p)
                    .map_err(|e| EtaProblem::NoRoad(e.to_string()))?;
                match self.ch_path(&mut calc, &a, &b) {
                    Some(f) => Ok(eta_of(&a, &b, f.ticks, f.length_m)),
                    None => Err(EtaProblem::Unreachable(
                        blame
                            .get_or_insert_with(|| self.blame(&b))
                            .who_cuts(&self.graph, &a),
                    )),
                }
            })
            .collect();
        self.give_back(calc);
        Ok(out)
    }

    /// The same answers as [`Router::etas_to`] by one backward Dijkstra from `to` run over
    /// the whole graph (no early stop): the reference for tests and the benchmark.
    ///
    /// # Errors
    /// As [`Router::etas_to`].
    pub fn etas_to_dijkstra(
        &self,
        from: &[LatLon],
        to: LatLon,
    ) -> Result<Vec<Result<Eta, EtaProblem>>, RoutingError> {
        self.etas_backward(from, to, false)
    }

    /// One backward Dijkstra from `to`; with `early_stop`, it ends once every node a
    /// snapped source leaves by is settled (settled distances are final, so the answers do
    /// not change).
    fn etas_backward(
        &self,
        from: &[LatLon],
        to: LatLon,
        early_stop: bool,
    ) -> Result<Vec<Result<Eta, EtaProblem>>, RoutingError> {
        let g = &self.graph;
        let b = g.snap(to)?;
        let snaps: Vec<Result<Snap, EtaProblem>> = from
            .iter()
            .map(|p| g.snap(*p).map_err(|e| EtaProblem::NoRoad(e.to_string())))
            .collect();
        let mut needed = vec![false; g.node_count()];
        let mut left = 0usize;
        for a in snaps.iter().flatten() {
            for (v, _, _) in g.starts(a) {
                if let Some(slot) = needed.get_mut(v)
                    && !*slot
                {
                    *slot = true;
                    left += 1;
                }
            }
        }
        let back = g.dijkstra(&g.targets(&b), Dir::Backward, &self.closed, INF, |v, _| {
            if !early_stop {
                return false;
            }
            if needed.get(v).copied().unwrap_or(false) {
                left = left.saturating_sub(1);
            }
            left == 0
        });
        let mut blame: Option<Blame> = None;
        Ok(snaps
            .into_iter()
            .map(|a| {
                let a = a?;
                let mut best = g.same_segment(&a, &b, false);
                for (v, c, l) in g.starts(&a) {
                    if back.dist[v] != INF {
                        let cand = (c + back.dist[v], l + back.len[v]);
                        if best.is_none_or(|x| cand.0 < x.0) {
                            best = Some(cand);
                        }
                    }
                }
                match best {
                    Some((t, l)) => Ok(eta_of(&a, &b, t, l)),
                    None => Err(EtaProblem::Unreachable(
                        blame.get_or_insert_with(|| self.blame(&b)).who_cuts(g, &a),
                    )),
                }
            })
            .collect())
    }

    /// For each active closure that closes something: the nodes that can still reach
    /// `b` with only that closure active.
    fn blame(&self, b: &Snap) -> Blame {
        let g = &self.graph;
        let targets = g.targets(b);
        let per_closure = self
            .closures
            .iter()
            .filter(|(_, segs)| !segs.is_empty())
            .map(|(id, segs)| {
                let mut closed = vec![false; g.segment_count()];
                for &s in segs {
                    closed[s] = true;
                }
                let back = g.dijkstra(&targets, Dir::Backward, &closed, INF, |_, _| false);
                (id.clone(), back.dist.iter().map(|d| *d != INF).collect())
            })
            .collect();
        Blame {
            target: *b,
            per_closure,
        }
    }

    /// Time each segment is reached as a whole from the nearest sources, up to `limit_s`
    /// (one multi-source Dijkstra bounded by the limit, closures avoided; off-road legs
    /// included; see [`Reach::segment_s`]). A limit that is
    /// negative or not a number reaches nothing.
    pub fn reach(&self, sources: &[ReachSource], limit_s: f64) -> Reach {
        let g = &self.graph;
        let bound = if limit_s.is_nan() || limit_s < 0.0 {
            None
        } else if limit_s * TICKS_PER_S >= 1e18 {
            Some(INF - 1)
        } else {
            Some((limit_s * TICKS_PER_S).floor() as u64)
        };
        let mut starts = Vec::new();
        let mut own: Vec<(Snap, u64)> = Vec::new();
        let mut skipped = Vec::new();
        for src in sources {
            match g.snap(src.at) {
                Ok(s) => {
                    let off = (s.offroad_m / OFFROAD_MPS * TICKS_PER_S).round() as u64;
                    for (v, c, _) in g.starts(&s) {
                        starts.push((v, off + c, 0.0));
                    }
                    own.push((s, off));
                }
                Err(e) => skipped.push((src.id.clone(), e.to_string())),
            }
        }
        let Some(bound) = bound else {
            return Reach {
                limit_s,
                segment_s: vec![None; g.segment_count()],
                skipped,
            };
        };
        let search = g.dijkstra(&starts, Dir::Forward, &self.closed, bound, |_, _| false);
        let d = &search.dist;
        // Sources snapped onto each segment: (position along it, ticks from its start;
        // time the source is there, ticks).
        let mut on_segment: HashMap<usize, Vec<(f64, f64)>> = HashMap::new();
        for (s, off) in &own {
            let w = f64::from(g.segments[s.segment].weight);
            on_segment
                .entry(s.segment)
                .or_default()
                .push((s.along * w, *off as f64));
        }
        let no_source: Vec<(f64, f64)> = Vec::new();
        let whole: Vec<f64> = g
            .segments
            .iter()
            .enumerate()
            .map(|(i, seg)| {
                let at = |v: usize| {
                    let t = d[v];
                    (t != INF).then_some(t as f64)
                };
                let here = on_segment.get(&i).unwrap_or(&no_source);
                whole_segment_ticks(
                    f64::from(seg.weight),
                    seg.oneway,
                    at(seg.from),
                    at(seg.to),
                    here,
                )
            })
            .collect();
        let limit_ticks = bound as f64;
        let segment_s = whole
            .iter()
            .zip(&self.closed)
            .map(|(t, closed)| (!*closed && *t <= limit_ticks).then(|| *t / TICKS_PER_S))
            .collect();
        Reach {
            limit_s,
            segment_s,
            skipped,
        }
    }

    /// The 1-3-5 coverage of `sources` ([`RULE_1_3_5_S`]). With no source everything is
    /// a hole and every share is 0. Coordinates are rounded to 6 decimals (≈ 0.1 m) and
    /// the lines simplified (Douglas–Peucker, [`COVERAGE_SIMPLIFY_M`]) to keep the payload
    /// small; the shares are computed on the full geometry.
    pub fn coverage(&self, sources: &[ReachSource]) -> Coverage {
        let g = &self.graph;
        let reach = self.reach(sources, RULE_1_3_5_S[2]);
        let mut reached_m = [0.0; 3];
        let mut bands: [Vec<Vec<[f64; 2]>>; 4] = Default::default();
        // The last segment appended to each band's current line, to join the next one.
        let mut last: [Option<usize>; 4] = [None; 4];
        let r6 = |x: f64| (x * 1e6).round() / 1e6;
        for (i, (seg, t)) in g.segments.iter().zip(&reach.segment_s).enumerate() {
            let band = match t {
                Some(t) => RULE_1_3_5_S.iter().position(|l| t <= l).unwrap_or(3),
                None => 3,
            };
            for (k, limit) in RULE_1_3_5_S.iter().enumerate() {
                if t.is_some_and(|t| t <= *limit) {
                    reached_m[k] += seg.length_m;
                }
            }
            let joins = last[band].is_some_and(|j| j + 1 == i && g.segments[j].to == seg.from)
                && bands[band].last().is_some();
            if joins {
                if let Some(line) = bands[band].last_mut() {
                    line.push([r6(seg.b.lon), r6(seg.b.lat)]);
                }
            } else {
                bands[band].push(vec![
                    [r6(seg.a.lon), r6(seg.a.lat)],
                    [r6(seg.b.lon), r6(seg.b.lat)],
                ]);
            }
            last[band] = Some(i);
        }
        for lines in &mut bands {
            for line in lines.iter_mut() {
                *line = simplify(line, COVERAGE_SIMPLIFY_M);
            }
        }
        let total_m = g.total_length_m;
        let share = reached_m.map(|m| {
            if total_m > 0.0 {
                (m / total_m).min(1.0)
            } else {
                0.0
            }
        });
        Coverage {
            share,
            reached_m,
            total_m,
            bands,
        }
    }
}

/// Which single closures cut a target off (for [`Unreachable::ClosedOff`]).
struct Blame {
    target: Snap,
    /// Per closure that closes something: id and, per node, whether the target is
    /// reachable from it with only that closure active.
    per_closure: Vec<(String, Vec<bool>)>,
}

impl Blame {
    fn who_cuts(&self, g: &RoadGraph, a: &Snap) -> Unreachable {
        let same = g.same_segment(a, &self.target, false).is_some();
        let starts = g.starts(a);
        let alone: Vec<String> = self
            .per_closure
            .iter()
            .filter(|(_, ok)| {
                !same
                    && !starts
                        .iter()
                        .any(|(v, _, _)| ok.get(*v).copied().unwrap_or(false))
            })
            .map(|(id, _)| id.clone())
            .collect();
        Unreachable::ClosedOff {
            closures: if alone.is_empty() {
                self.per_closure.iter().map(|(id, _)| id.clone()).collect()
            } else {
                alone
            },
        }
    }
}

/// Time the whole of a segment is reached, ticks (`f64::INFINITY` when some part of it
/// never is): the latest over its points of the earliest arrival there.
///
/// `w` is the segment's drive time (ticks), `t_from`/`t_to` the arrival times at its start
/// and end nodes (`None`: not reached), `sources` the sources snapped onto it (position
/// along it in ticks from its start, time the source is there). A two-way segment is
/// entered from either end and from each source both ways: every arrival is a cone
/// `c + |x - p|` and the answer is the highest point of their lower envelope (for
/// `u`–`v` alone, `(t_u + t_v + w) / 2` clamped to `max(t_u, t_v) ..= min(t_u, t_v) + w`).
/// A one-way segment is driven only forwards: from its start (`t_u + x`) and from each
/// source onwards; its end's time does not reach its interior.
fn whole_segment_ticks(
    w: f64,
    oneway: bool,
    t_from: Option<f64>,
    t_to: Option<f64>,
    sources: &[(f64, f64)],
) -> f64 {
    // Arrivals: (position, time).
    let mut arr: Vec<(f64, f64)> = Vec::with_capacity(sources.len() + 2);
    if let Some(t) = t_from {
        arr.push((0.0, t));
    }
    if !oneway && let Some(t) = t_to {
        arr.push((w, t));
    }
    arr.extend(sources.iter().map(|(p, c)| (p.clamp(0.0, w), *c)));
    if arr.is_empty() {
        return f64::INFINITY;
    }
    if oneway {
        // Earliest arrival just before x: from the arrivals strictly before it.
        let before = |x: f64, strict: bool| {
            arr.iter()
                .filter(|(p, _)| if strict { *p < x } else { *p <= x })
                .map(|(p, c)| c + (x - p))
                .fold(f64::INFINITY, f64::min)
        };
        // Between arrivals the envelope rises; its peaks are just before each arrival
        // point and at the end.
        let mut worst = before(w, false);
        for &(p, _) in &arr {
            if p > 0.0 {
                worst = worst.max(before(p, true));
            }
        }
        if !arr.iter().any(|(p, _)| *p <= 0.0) {
            return f64::INFINITY;
        }
        return worst;
    }
    let env = |x: f64| {
        arr.iter()
            .map(|(p, c)| c + (x - p).abs())
            .fold(f64::INFINITY, f64::min)
    };
    // The envelope's peaks are at 0, w, or where a rising side meets a falling one.
    let mut worst = env(0.0).max(env(w));
    for (i, &(pi, ci)) in arr.iter().enumerate() {
        for &(pj, cj) in &arr[i + 1..] {
            let (l, r) = if pi <= pj {
                ((pi, ci), (pj, cj))
            } else {
                ((pj, cj), (pi, ci))
            };
            let x = (r.1 + r.0 - l.1 + l.0) / 2.0;
            if (0.0..=w).contains(&x) {
                worst = worst.max(env(x));
            }
        }
    }
    worst
}

fn eta_of(a: &Snap, b: &Snap, ticks: u64, length_m: f64) -> Eta {
    Eta {
        eta_s: ticks as f64 / TICKS_PER_S + (a.offroad_m + b.offroad_m) / OFFROAD_MPS,
        distance_m: length_m + a.offroad_m + b.offroad_m,
    }
}

/// The better of a same-segment drive and a path through the graph (the direct one on
/// a tie).
fn pick(direct: Option<(u64, f64)>, via: Option<Found>) -> Option<Found> {
    let direct = direct.map(|(ticks, length_m)| Found {
        ticks,
        length_m,
        nodes: Vec::new(),
    });
    match (direct, via) {
        (Some(d), Some(v)) => Some(if v.ticks < d.ticks { v } else { d }),
        (d, v) => d.or(v),
    }
}

/// Douglas–Peucker simplification of a `[lon, lat]` line with a tolerance in metres
/// (iterative; ends always kept).
fn simplify(line: &[[f64; 2]], tolerance_m: f64) -> Vec<[f64; 2]> {
    if line.len() <= 2 {
        return line.to_vec();
    }
    let k = line[0][1].to_radians().cos() * M_PER_DEG;
    let xy = |p: [f64; 2]| (p[0] * k, p[1] * M_PER_DEG);
    let mut keep = vec![false; line.len()];
    keep[0] = true;
    keep[line.len() - 1] = true;
    let mut stack = vec![(0, line.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (pa, pb) = (xy(line[a]), xy(line[b]));
        let mut far = (0.0, a);
        for (i, p) in line.iter().enumerate().take(b).skip(a + 1) {
            let d = dist_to_piece(xy(*p), pa, pb);
            if d > far.0 {
                far = (d, i);
            }
        }
        if far.0 > tolerance_m {
            keep[far.1] = true;
            stack.push((a, far.1));
            stack.push((far.1, b));
        }
    }
    line.iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(p, _)| *p)
        .collect()
}

/// Distance from `p` to the piece `a`–`b` in a plane, metres.
fn dist_to_piece(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (cx * cx + cy * cy).sqrt()
}

/// Point in polygon (even-odd ray casting).
fn inside(poly: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut c = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            c = !c;
        }
    }
    c
}

/// Whether the pieces `a`–`b` and `c`–`d` intersect (touching counts).
fn crosses(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let orient = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        let v = (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0);
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    };
    let on = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        r.0 >= p.0.min(q.0) && r.0 <= p.0.max(q.0) && r.1 >= p.1.min(q.1) && r.1 <= p.1.max(q.1)
    };
    let (o1, o2, o3, o4) = (
        orient(a, b, c),
        orient(a, b, d),
        orient(c, d, a),
        orient(c, d, b),
    );
    (o1 != o2 && o3 != o4)
        || (o1 == 0 && on(a, b, c))
        || (o2 == 0 && on(a, b, d))
        || (o3 == 0 && on(c, d, a))
        || (o4 == 0 && on(c, d, b))
}

/// A piece of a closure shape (a line piece or a ring edge): its two ends, local metres.
type Piece = ((f64, f64), (f64, f64));

/// The pieces of a closure shape (line pieces or ring edges, local metres) bucketed in a
/// uniform grid over the shape's bounding box grown by a margin: each cell lists the
/// pieces passing within the margin of it, so [`Router::closed_segments`] tests a road
/// segment against the nearby pieces only.
struct PieceGrid {
    /// Lower-left corner of the grid, metres.
    x0: f64,
    y0: f64,
    /// Side of a cell, metres.
    side: f64,
    nx: usize,
    ny: usize,
    /// Per cell (row-major): indices of the pieces passing within the margin.
    cells: Vec<Vec<u32>>,
}

impl PieceGrid {
    /// At most this many cells per piece on average, and this many cells in all.
    const CELLS_PER_PIECE: f64 = 16.0;
    const MAX_CELLS: f64 = 65_536.0;

    fn new(pieces: &[Piece], bbox: (f64, f64, f64, f64), margin: f64) -> Self {
        let (x0, y0) = (bbox.0 - margin, bbox.1 - margin);
        let (w, h) = (
            bbox.2 - bbox.0 + 2.0 * margin,
            bbox.3 - bbox.1 + 2.0 * margin,
        );
        let want = (pieces.len() as f64 * Self::CELLS_PER_PIECE).clamp(1.0, Self::MAX_CELLS);
        let side = (w * h / want).sqrt().max(margin);
        let nx = ((w / side).ceil() as usize).clamp(1, 1024);
        let ny = ((h / side).ceil() as usize).clamp(1, 1024);
        let side = (w / nx as f64).max(h / ny as f64).max(margin);
        let mut grid = PieceGrid {
            x0,
            y0,
            side,
            nx,
            ny,
            cells: vec![Vec::new(); nx * ny],
        };
        for (j, &(p, q)) in pieces.iter().enumerate() {
            // Column by column: the piece's y range over the column's x range (grown by the
            // margin), grown by the margin, gives the rows.
            let (c0, c1) = (
                grid.col(p.0.min(q.0) - margin),
                grid.col(p.0.max(q.0) + margin),
            );
            for cx in c0..=c1 {
                let xa = grid.x0 + cx as f64 * side - margin;
                let xb = xa + side + 2.0 * margin;
                let (ya, yb) = if q.0 == p.0 {
                    (p.1.min(q.1), p.1.max(q.1))
                } else {
                    let ta = ((xa - p.0) / (q.0 - p.0)).clamp(0.0, 1.0);
                    let tb = ((xb - p.0) / (q.0 - p.0)).clamp(0.0, 1.0);
                    let (ya, yb) = (p.1 + ta * (q.1 - p.1), p.1 + tb * (q.1 - p.1));
                    (ya.min(yb), ya.max(yb))
                };
                for cy in grid.row(ya - margin)..=grid.row(yb + margin) {
                    grid.cells[cy * nx + cx].push(j as u32);
                }
            }
        }
        grid
    }

    /// Column of `x`, clamped to the grid.
    fn col(&self, x: f64) -> usize {
        (((x - self.x0) / self.side).floor().max(0.0) as usize).min(self.nx - 1)
    }

    /// Row of `y`, clamped to the grid.
    fn row(&self, y: f64) -> usize {
        (((y - self.y0) / self.side).floor().max(0.0) as usize).min(self.ny - 1)
    }

    /// Calls `f` with every piece listed in a cell that the box `(min x, min y, max x,
    /// max y)` overlaps (a piece may come more than once).
    fn pieces_near(&self, bbox: (f64, f64, f64, f64), mut f: impl FnMut(u32)) {
        for cy in self.row(bbox.1)..=self.row(bbox.3) {
            for cx in self.col(bbox.0)..=self.col(bbox.2) {
                for &j in &self.cells[cy * self.nx + cx] {
                    f(j);
                }
            }
        }
    }

    /// The cell holding `p`, `None` outside the grid.
    fn cell_of(&self, p: (f64, f64)) -> Option<usize> {
        let (fx, fy) = ((p.0 - self.x0) / self.side, (p.1 - self.y0) / self.side);
        if !(fx >= 0.0 && fy >= 0.0) {
            return None;
        }
        let (cx, cy) = (fx.floor() as usize, fy.floor() as usize);
        (cx < self.nx && cy < self.ny).then_some(cy * self.nx + cx)
    }

    /// Whether the centre of cell `c` is inside the ring `poly`: the ray casting of
    /// [`inside`] done for a whole row at once (the crossings of the row's centre line
    /// sorted once), kept in `rows`.
    fn centre_inside(&self, poly: &[(f64, f64)], rows: &mut [Option<Vec<bool>>], c: usize) -> bool {
        let (cx, cy) = (c % self.nx, c / self.nx);
        let row = rows[cy].get_or_insert_with(|| {
            let y = self.y0 + (cy as f64 + 0.5) * self.side;
            let n = poly.len();
            let mut xs: Vec<f64> = (0..n)
                .filter_map(|i| {
                    let (a, b) = (poly[i], poly[(i + n - 1) % n]);
                    ((a.1 > y) != (b.1 > y)).then(|| (b.0 - a.0) * (y - a.1) / (b.1 - a.1) + a.0)
                })
                .collect();
            xs.sort_by(f64::total_cmp);
            (0..self.nx)
                .map(|cx| {
                    let x = self.x0 + (cx as f64 + 0.5) * self.side;
                    // Crossings right of the centre (`x < crossing`, as in `inside`).
                    (xs.len() - xs.partition_point(|&v| v <= x)) % 2 == 1
                })
                .collect()
        });
        row[cx]
    }

    /// Whether `p` is inside the ring `poly` (edges `pieces`): the centre of its cell's
    /// answer, flipped by each edge of the cell crossing the way from the centre to `p`.
    /// When that way passes too near an edge or vertex to tell, or `p` is outside the
    /// grid, [`inside`] itself.
    fn inside(
        &self,
        poly: &[(f64, f64)],
        pieces: &[Piece],
        rows: &mut [Option<Vec<bool>>],
        p: (f64, f64),
    ) -> bool {
        let Some(c) = self.cell_of(p) else {
            return inside(poly, p);
        };
        let (cx, cy) = (c % self.nx, c / self.nx);
        let o = (
            self.x0 + (cx as f64 + 0.5) * self.side,
            self.y0 + (cy as f64 + 0.5) * self.side,
        );
        // Below this (square metres), a cross product's sign is not trusted.
        const CLEAR: f64 = 1e-3;
        let cross = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
            (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
        };
        let mut flip = false;
        for &j in &self.cells[c] {
            let (e0, e1) = pieces[j as usize];
            let v = [
                cross(o, p, e0),
                cross(o, p, e1),
                cross(e0, e1, o),
                cross(e0, e1, p),
            ];
            if v.iter().any(|v| v.abs() < CLEAR) {
                return inside(poly, p);
            }
            if (v[0] > 0.0) != (v[1] > 0.0) && (v[2] > 0.0) != (v[3] > 0.0) {
                flip = !flip;
            }
        }
        self.centre_inside(poly, rows, c) != flip
    }
}

/// Why one unit has no ETA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EtaProblem {
    /// The unit's position is too far from any road (the message says how far).
    NoRoad(String),
    /// Closures cut it off from the destination.
    Unreachable(Unreachable),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{RoadEdge, RoadNode};

    fn node(lat: f64, lon: f64) -> RoadNode {
        RoadNode {
            id: 0,
            at: LatLon { lat, lon },
        }
    }

    fn edge(net: &RoadNetwork, from: usize, to: usize, class: &str, oneway: bool) -> RoadEdge {
        RoadEdge {
            from,
            to,
            length_m: net.nodes[from].at.distance_m(&net.nodes[to].at),
            class: class.into(),
            name: None,
            oneway,
            maxspeed_kmh: None,
            car_access: true,
        }
    }

    const D: f64 = 0.001; // ≈ 111 m of latitude, ≈ 82 m of longitude at 42.5°

    /// A square 0-1-2-3 of two-way residential streets (0 at the south-west corner,
    /// counter-clockwise), a one-way diagonal 0→2, a one-way spur 3→4 (a dead end one
    /// cannot leave), a private drive 1-5 and a footway 2-6.
    fn square() -> RoadNetwork {
        let mut net = RoadNetwork {
            nodes: vec![
                node(42.5, 1.5),
                node(42.5, 1.5 + D),
                node(42.5 + D, 1.5 + D),
                node(42.5 + D, 1.5),
                node(42.5 + 2.0 * D, 1.5),
                node(42.5 - D, 1.5 + D),
                node(42.5 + 2.0 * D, 1.5 + D),
            ],
            edges: Vec::new(),
        };
        net.edges = vec![
            edge(&net, 0, 1, "residential", false),
            edge(&net, 1, 2, "residential", false),
            edge(&net, 2, 3, "residential", false),
            edge(&net, 3, 0, "residential", false),
            edge(&net, 0, 2, "primary", true),
            edge(&net, 3, 4, "residential", true),
            RoadEdge {
                car_access: false,
                ..edge(&net, 1, 5, "service", false)
            },
            edge(&net, 2, 6, "footway", false),
        ];
        net
    }

    fn router(net: &RoadNetwork) -> Router {
        let g = Arc::new(RoadGraph::from_network(net).expect("graph"));
        Router::new(g, None).expect("router")
    }

    #[test]
    fn simplification_drops_points_within_the_tolerance_only() {
        // 0.00001° of latitude ≈ 1.1 m.
        let line = [
            [1.5, 42.5],
            [1.5001, 42.500005],
            [1.5002, 42.5],
            [1.5003, 42.50002],
            [1.5004, 42.5],
        ];
        let out = simplify(&line, 1.0);
        assert_eq!(
            out,
            vec![
                [1.5, 42.5],
                [1.5002, 42.5],
                [1.5003, 42.50002],
                [1.5004, 42.5]
            ]
        );
        assert_eq!(simplify(&line[..2], 1.0), line[..2].to_vec());
    }

    #[test]
    fn car_speeds_by_class_and_maxspeed() {
        assert_eq!(car_speed_kmh("primary", None), Some(50.0));
        assert_eq!(car_speed_kmh("residential", None), Some(25.0));
        assert_eq!(car_speed_kmh("motorway", Some(120.0)), Some(120.0));
        assert_eq!(car_speed_kmh("motorway", Some(200.0)), Some(130.0));
        assert_eq!(car_speed_kmh("primary", Some(2.0)), Some(50.0));
        assert_eq!(car_speed_kmh("primary", Some(f64::NAN)), Some(50.0));
        assert_eq!(car_speed_kmh("residential", Some(30.0)), Some(30.0));
        for class in [
            "footway",
            "path",
            "steps",
            "track",
            "cycleway",
            "pedestrian",
            "construction",
        ] {
            assert_eq!(car_speed_kmh(class, Some(50.0)), None, "{class}");
        }
    }

    #[test]
    fn graph_keeps_drivable_accessible_roads_of_the_largest_component() {
        let net = square();
        let g = RoadGraph::from_network(&net).expect("graph");
        // The spur end 4 cannot be left, 5 is behind a private drive, 6 on a footway.
        assert_eq!(g.node_count(), 4);
        assert_eq!(
            (0..4).map(|i| g.network_node(i)).collect::<Vec<_>>(),
            vec![Some(0), Some(1), Some(2), Some(3)]
        );
        assert_eq!(g.segment_count(), 5);
        let diag = g
            .segments()
            .iter()
            .find(|s| s.class == "primary")
            .expect("diagonal");
        assert!(diag.oneway);
        assert_eq!((diag.from, diag.to), (0, 2));
        // Weight: length / (50 km/h), tenths of a second.
        let want = (diag.length_m / (50.0 / 3.6) * 10.0).round() as u32;
        assert_eq!(diag.weight, want);
        let sides: f64 = net.edges[..5].iter().map(|e| e.length_m).sum();
        assert!((g.total_length_m() - sides).abs() < 1e-9);
        // Nothing drivable at all.
        let mut walk = square();
        for e in &mut walk.edges {
            e.class = "footway".into();
        }
        assert!(matches!(
            RoadGraph::from_network(&walk),
            Err(RoutingError::NoRoads)
        ));
        assert!(matches!(
            RoadGraph::from_network(&RoadNetwork::default()),
            Err(RoutingError::NoRoads)
        ));
    }

    #[test]
    fn one_way_rules_and_same_segment_routes() {
        let net = square();
        let r = router(&net);
        let g = r.graph().clone();
        let w = |a: usize, b: usize| {
            g.segments()
                .iter()
                .find(|s| (s.from, s.to) == (a, b) || (s.from, s.to) == (b, a))
                .map(|s| f64::from(s.weight) / 10.0)
                .expect("segment")
        };
        let at = |i: usize| net.nodes[i].at;
        // 0 → 2 takes the one-way diagonal; 2 → 0 goes round the square.
        let there = r.route(at(0), at(2)).expect("snap").expect("route");
        assert!((there.eta_s - w(0, 2)).abs() < 0.051, "{there:?}");
        let back = r.route(at(2), at(0)).expect("snap").expect("route");
        let round = (w(2, 1) + w(1, 0)).min(w(2, 3) + w(3, 0));
        assert!((back.eta_s - round).abs() < 0.051, "{back:?} vs {round}");
        assert_eq!(back.line.first(), Some(&at(2)));
        assert_eq!(back.line.last(), Some(&at(0)));
        // Same two-way segment 0-1, both directions: the stretch between the points.
        let p = |t: f64| LatLon {
            lat: 42.5,
            lon: 1.5 + D * t,
        };
        for (a, b) in [(0.2, 0.8), (0.8, 0.2)] {
            let route = r.route(p(a), p(b)).expect("snap").expect("route");
            assert!(
                (route.eta_s - 0.6 * w(0, 1)).abs() < 0.051,
                "{a}->{b}: {route:?}"
            );
            assert_eq!(route.line.len(), 2, "{route:?}");
            let dj = r.route_dijkstra(p(a), p(b)).expect("snap").expect("route");
            assert_eq!(route.eta_s, dj.eta_s);
        }
        // Same one-way segment (the diagonal), backwards: round the square.
        let q = |t: f64| LatLon {
            lat: 42.5 + D * t,
            lon: 1.5 + D * t,
        };
        let ahead = r.route(q(0.2), q(0.8)).expect("snap").expect("route");
        assert!((ahead.eta_s - 0.6 * w(0, 2)).abs() < 0.051, "{ahead:?}");
        let behind = r.route(q(0.8), q(0.2)).expect("snap").expect("route");
        let want = 0.2 * w(0, 2) + round + 0.2 * w(0, 2);
        assert!((behind.eta_s - want).abs() < 0.2, "{behind:?} vs {want}");
        let dj = r
            .route_dijkstra(q(0.8), q(0.2))
            .expect("snap")
            .expect("route");
        assert_eq!(behind.eta_s, dj.eta_s);
        let etas = r.etas_to_ch(&[q(0.8), q(0.2)], q(0.2)).expect("snap");
        let etas_dj = r.etas_to_dijkstra(&[q(0.8), q(0.2)], q(0.2)).expect("snap");
        assert_eq!(r.etas_to(&[q(0.8), q(0.2)], q(0.2)).expect("snap"), etas_dj);
        for (ch, dj) in etas.iter().zip(&etas_dj) {
            let (ch, dj) = (ch.clone().expect("eta"), dj.clone().expect("eta"));
            assert_eq!(ch.eta_s, dj.eta_s);
            assert!(
                (ch.distance_m - dj.distance_m).abs() < 0.01,
                "{ch:?} {dj:?}"
            );
        }
        assert!((etas[0].clone().expect("eta").eta_s - behind.eta_s).abs() < 1e-9);
        let here = etas[1].clone().expect("eta");
        assert!(here.eta_s < 1e-9 && here.distance_m < 1e-6, "{here:?}");
    }

    #[test]
    fn snapping_adds_the_off_road_leg_and_refuses_bad_points() {
        let r = router(&square());
        let g = r.graph();
        // 0.0002° south of the 0-1 street: ≈ 22 m off-road.
        let s = g
            .snap(LatLon {
                lat: 42.4998,
                lon: 1.5005,
            })
            .expect("snap");
        assert!((s.offroad_m - 22.26).abs() < 0.1, "{s:?}");
        assert!((s.along - 0.5).abs() < 1e-6, "{s:?}");
        assert!(matches!(
            g.snap(LatLon {
                lat: f64::NAN,
                lon: 1.5
            }),
            Err(RoutingError::InvalidPoint(_))
        ));
        assert!(matches!(
            g.snap(LatLon {
                lat: 91.0,
                lon: 1.5
            }),
            Err(RoutingError::InvalidPoint(_))
        ));
        match g.snap(LatLon {
            lat: 42.6,
            lon: 1.5,
        }) {
            Err(RoutingError::TooFarFromRoad { nearest_m, .. }) => {
                // 0.099° of latitude north of the square's top side.
                assert!((nearest_m - 11_020.7).abs() < 1.0, "{nearest_m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_order_is_refused() {
        let g = Arc::new(RoadGraph::from_network(&square()).expect("graph"));
        let good = g.contraction_order();
        assert_eq!(good.order.len(), g.node_count() + 1);
        assert!(Router::new(g.clone(), Some(&good)).is_ok());
        for bad in [
            vec![0, 1, 2],
            vec![0, 1, 2, 3, 3],
            vec![0, 1, 2, 3, 9],
            vec![],
        ] {
            let r = Router::new(g.clone(), Some(&HierarchyOrder { order: bad.clone() }));
            assert!(matches!(r, Err(RoutingError::BadOrder(_))), "{bad:?}");
        }
    }

    /// A triangle 0-1-2 (2 nearer 0 than 1) with a tail 2-3-4, all two-way residential
    /// streets.
    fn triangle_with_tail() -> RoadNetwork {
        let mut net = RoadNetwork {
            nodes: vec![
                node(42.5, 1.5),
                node(42.5, 1.5 + D),
                node(42.5 + D, 1.5 + 0.3 * D),
                node(42.5 + 2.0 * D, 1.5 + 0.3 * D),
                node(42.5 + 3.0 * D, 1.5 + 0.3 * D),
            ],
            edges: Vec::new(),
        };
        net.edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)]
            .iter()
            .map(|(a, b)| edge(&net, *a, *b, "residential", false))
            .collect();
        net
    }

    #[test]
    fn closures_cut_routes_and_name_the_closures_responsible() {
        let net = triangle_with_tail();
        let mut r = router(&net);
        let at = |i: usize| net.nodes[i].at;
        let mid = |a: usize, b: usize| lerp(at(a), at(b), 0.5);
        let line = |a: usize, b: usize| ClosureShape::Line {
            points: vec![at(a), at(b)],
        };
        let (from, to) = (mid(0, 1), mid(3, 4));
        let open = r.route(from, to).expect("snap").expect("route");
        // The triangle's two sides at corner 2: neither alone cuts the tail off.
        assert_eq!(
            r.set_closures(&[("a".into(), line(1, 2)), ("b".into(), line(2, 0))]),
            2
        );
        assert_eq!(r.closed_segments(&line(1, 2)), vec![1]);
        assert_eq!(
            r.route(from, to).expect("snap"),
            Err(Unreachable::ClosedOff {
                closures: vec!["a".into(), "b".into()]
            })
        );
        // One of them alone: a detour (the open route takes 0-2), never faster.
        r.set_closures(&[("b".into(), line(2, 0))]);
        let detour = r.route(from, to).expect("snap").expect("route");
        assert!(detour.eta_s > open.eta_s, "{detour:?} vs {open:?}");
        // The tail's first segment cuts it alone; the triangle closure is not named.
        r.set_closures(&[("a".into(), line(1, 2)), ("tail".into(), line(2, 3))]);
        let want = Err(Unreachable::ClosedOff {
            closures: vec!["tail".into()],
        });
        assert_eq!(r.route(from, to).expect("snap"), want);
        assert_eq!(r.route_dijkstra(from, to).expect("snap"), want);
        let etas = r.etas_to(&[from, at(3)], to).expect("snap");
        assert_eq!(
            etas[0],
            Err(EtaProblem::Unreachable(Unreachable::ClosedOff {
                closures: vec!["tail".into()]
            }))
        );
        assert!(etas[1].is_ok());
        assert_eq!(etas, r.etas_to_dijkstra(&[from, at(3)], to).expect("snap"));
        let ch = r.etas_to_ch(&[from, at(3)], to).expect("snap");
        assert_eq!(ch[0], etas[0]);
        assert_eq!(
            ch[1].clone().map(|e| e.eta_s),
            etas[1].clone().map(|e| e.eta_s)
        );
        // Lifting all restores the route.
        assert_eq!(r.set_closures(&[]), 0);
        assert_eq!(r.route(from, to).expect("snap"), Ok(open));
    }

    #[test]
    fn closure_shapes_select_segments_along_a_line_or_in_an_area() {
        let net = square();
        let r = router(&net);
        let at = |i: usize| net.nodes[i].at;
        let seg = |a: usize, b: usize| {
            r.graph()
                .segments()
                .iter()
                .position(|s| {
                    (net.edges[s.network_edge].from, net.edges[s.network_edge].to) == (a, b)
                })
                .expect("segment")
        };
        // A line drawn 5 m beside street 0-1, over its middle part: closes 0-1 only
        // (not the diagonal, which starts at 0 but runs at 45°).
        let off = 5.0 / 111_320.0;
        let beside = ClosureShape::Line {
            points: vec![
                LatLon {
                    lat: 42.5 + off,
                    lon: 1.5 + 0.3 * D,
                },
                LatLon {
                    lat: 42.5 + off,
                    lon: 1.5 + 0.7 * D,
                },
            ],
        };
        assert_eq!(r.closed_segments(&beside), vec![seg(0, 1)]);
        // Across the street (perpendicular): nothing.
        let across = ClosureShape::Line {
            points: vec![
                LatLon {
                    lat: 42.5 - 0.0001,
                    lon: 1.5 + 0.5 * D,
                },
                LatLon {
                    lat: 42.5 + 0.0001,
                    lon: 1.5 + 0.5 * D,
                },
            ],
        };
        assert!(r.closed_segments(&across).is_empty());
        // 20 m away: nothing.
        let far = 20.0 / 111_320.0;
        let away = ClosureShape::Line {
            points: vec![
                LatLon {
                    lat: 42.5 - far,
                    lon: 1.5 + 0.3 * D,
                },
                LatLon {
                    lat: 42.5 - far,
                    lon: 1.5 + 0.7 * D,
                },
            ],
        };
        assert!(r.closed_segments(&away).is_empty());
        // A small area around corner 2: the three segments ending there.
        let e = 0.0001;
        let c = at(2);
        let area = ClosureShape::Area {
            ring: vec![
                LatLon {
                    lat: c.lat - e,
                    lon: c.lon - e,
                },
                LatLon {
                    lat: c.lat - e,
                    lon: c.lon + e,
                },
                LatLon {
                    lat: c.lat + e,
                    lon: c.lon + e,
                },
                LatLon {
                    lat: c.lat + e,
                    lon: c.lon - e,
                },
            ],
        };
        let mut want = vec![seg(1, 2), seg(2, 3), seg(0, 2)];
        want.sort_unstable();
        assert_eq!(r.closed_segments(&area), want);
        // An area across the middle of 0-1 with no end inside: closed by crossing.
        let band = ClosureShape::Area {
            ring: vec![
                LatLon {
                    lat: 42.5 - e / 2.0,
                    lon: 1.5 + 0.3 * D,
                },
                LatLon {
                    lat: 42.5 - e / 2.0,
                    lon: 1.5 + 0.4 * D,
                },
                LatLon {
                    lat: 42.5 + e / 2.0,
                    lon: 1.5 + 0.4 * D,
                },
                LatLon {
                    lat: 42.5 + e / 2.0,
                    lon: 1.5 + 0.3 * D,
                },
            ],
        };
        assert_eq!(r.closed_segments(&band), vec![seg(0, 1)]);
        let nan = ClosureShape::Line {
            points: vec![
                LatLon {
                    lat: f64::NAN,
                    lon: 1.5,
                },
                at(1),
            ],
        };
        assert!(r.closed_segments(&nan).is_empty());
    }

    #[test]
    fn reach_times_segments_from_the_sources() {
        let net = triangle_with_tail();
        let mut r = router(&net);
        let g = r.graph().clone();
        let at = |i: usize| net.nodes[i].at;
        let src = |p: LatLon| ReachSource {
            id: "p".into(),
            at: p,
        };
        let w: Vec<f64> = g
            .segments()
            .iter()
            .map(|s| f64::from(s.weight) / 10.0)
            .collect();
        let reach = r.reach(&[src(at(2))], 1e6);
        // From corner 2 (snapped onto 1-2 at its end): 1-2 at once... its far end takes w.
        let s = &reach.segment_s;
        assert_eq!(s.len(), 5);
        assert!((s[3].expect("2-3") - w[3]).abs() < 0.051, "{s:?}");
        assert!((s[4].expect("3-4") - (w[3] + w[4])).abs() < 0.051, "{s:?}");
        // A limit between the two: the tail's end is not reached.
        let short = r.reach(&[src(at(2))], w[3] + 0.5 * w[4]);
        assert!(short.segment_s[3].is_some() && short.segment_s[4].is_none());
        // Closed segments are never reached; what lies beyond them is reached later or not.
        r.set_closures(&[(
            "tail".into(),
            ClosureShape::Line {
                points: vec![at(2), at(3)],
            },
        )]);
        let cut = r.reach(&[src(at(0))], 1e6);
        assert_eq!(cut.segment_s[3], None);
        assert_eq!(cut.segment_s[4], None);
        // A source too far away is reported, not an error.
        let far = r.reach(
            &[src(LatLon {
                lat: 43.5,
                lon: 1.5,
            })],
            60.0,
        );
        assert_eq!(far.skipped.len(), 1);
        assert!(far.segment_s.iter().all(Option::is_none));
        // No source: nothing reached, all holes.
        r.set_closures(&[]);
        let none = r.coverage(&[]);
        assert_eq!(none.share, [0.0; 3]);
        // The holes are the whole network (the straight tail 2-3-4 simplified to one piece).
        let drawn: f64 = none.bands[3]
            .iter()
            .flat_map(|l| l.windows(2))
            .map(|w| {
                let (a, b) = (
                    LatLon {
                        lat: w[0][1],
                        lon: w[0][0],
                    },
                    LatLon {
                        lat: w[1][1],
                        lon: w[1][0],
                    },
                );
                a.distance_m(&b)
            })
            .sum();
        assert!(
            (drawn - g.total_length_m()).abs() < 0.5,
            "{drawn} vs {}",
            g.total_length_m()
        );
        // Two lines: the triangle 0-1-2-0 joined, and the tail 2-4.
        assert_eq!(
            none.bands[3].iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 2]
        );
        assert!(none.bands[..3].iter().all(Vec::is_empty));
    }

    /// A line 0-1-2 of two-way streets (10 s and 30 s) with a one-way loop 1→3→2 (10 s
    /// each) north of it; every street at 36 km/h (10 m/s), so lengths give exact times.
    fn loop_with_one_ways() -> RoadNetwork {
        let mut net = RoadNetwork {
            nodes: vec![
                node(42.5, 1.5),
                node(42.5, 1.5 + D),
                node(42.5, 1.5 + 2.0 * D),
                node(42.5 + D, 1.5 + D),
            ],
            edges: Vec::new(),
        };
        net.edges = [
            (0, 1, 100.0, false),
            (1, 2, 300.0, false),
            (1, 3, 100.0, true),
            (3, 2, 100.0, true),
        ]
        .iter()
        .map(|&(a, b, len, oneway)| RoadEdge {
            length_m: len,
            maxspeed_kmh: Some(36.0),
            ..edge(&net, a, b, "residential", oneway)
        })
        .collect();
        net
    }

    #[test]
    fn a_segment_is_reached_when_its_last_point_is() {
        let net = loop_with_one_ways();
        let r = router(&net);
        let g = r.graph().clone();
        let seg = |a: usize, b: usize| {
            g.segments()
                .iter()
                .position(|s| {
                    (net.edges[s.network_edge].from, net.edges[s.network_edge].to) == (a, b)
                })
                .expect("segment")
        };
        assert_eq!(
            g.segments().iter().map(|s| s.weight).collect::<Vec<_>>(),
            vec![100, 300, 100, 100]
        );
        let at = |i: usize| net.nodes[i].at;
        let src = |id: &str, p: LatLon| ReachSource {
            id: id.into(),
            at: p,
        };
        let times = |sources: &[ReachSource]| {
            let reach = r.reach(sources, 1e6);
            [(0, 1), (1, 2), (1, 3), (3, 2)].map(|(a, b)| reach.segment_s[seg(a, b)])
        };
        let close = |got: [Option<f64>; 4], want: [f64; 4]| {
            for (g, w) in got.iter().zip(want) {
                assert!(
                    g.is_some_and(|g| (g - w).abs() < 1e-6),
                    "{got:?} vs {want:?}"
                );
            }
        };
        // From corner 0: t1 = 10, t3 = 20, t2 = 30 (round the loop, not 40 along 1-2).
        // 1-2 is reached from both ends: its last point at (10 + 30 + 30) / 2 = 35 s (the
        // later end alone would say 30).
        close(times(&[src("a", at(0))]), [10.0, 35.0, 20.0, 30.0]);
        // A second source in the middle of 1-2 (15 s from either end): t2 = 15, but the
        // one-way 3→2 is still reached from 3 only: 20 + 10 = 30 (its end does not help).
        let mid_12 = lerp(at(1), at(2), 0.5);
        close(
            times(&[src("a", at(0)), src("b", mid_12)]),
            [10.0, 15.0, 20.0, 30.0],
        );
        // One source in the middle of the one-way 1→3 alone: ahead of it 3 at 5 s, 2 at
        // 15 s; 1 at 15 + 30 = 45 s; the stretch of 1→3 behind the source is reached from
        // 1: 45 + 5 = 50 s. 1-2: (45 + 15 + 30) / 2 = 45; 0-1: 55 (a dead end from 1).
        let mid_13 = lerp(at(1), at(3), 0.5);
        close(times(&[src("c", mid_13)]), [55.0, 45.0, 50.0, 15.0]);
        // Bands: a limit just below 50 s leaves 1→3 out, 0-1 too; the rest is in.
        let short = r.reach(&[src("c", mid_13)], 49.9);
        assert_eq!(short.segment_s[seg(1, 3)], None);
        assert_eq!(short.segment_s[seg(0, 1)], None);
        assert_eq!(short.segment_s[seg(1, 2)], Some(45.0));
    }

    #[test]
    fn whole_segment_times_follow_the_formula() {
        // Two-way u–v, w = 100 ticks: (t_u + t_v + w) / 2, clamped.
        assert_eq!(
            whole_segment_ticks(100.0, false, Some(0.0), Some(40.0), &[]),
            70.0
        );
        assert_eq!(
            whole_segment_ticks(100.0, false, Some(0.0), Some(100.0), &[]),
            100.0
        );
        // An end time later than t_u + w (not from a Dijkstra, but bounded): min + w.
        assert_eq!(
            whole_segment_ticks(100.0, false, Some(0.0), Some(500.0), &[]),
            100.0
        );
        // Only one end reached: from it, the whole length.
        assert_eq!(
            whole_segment_ticks(100.0, false, None, Some(20.0), &[]),
            120.0
        );
        assert_eq!(
            whole_segment_ticks(100.0, false, None, None, &[]),
            f64::INFINITY
        );
        // One-way u→v: t_u + w whatever t_v.
        assert_eq!(
            whole_segment_ticks(100.0, true, Some(30.0), Some(0.0), &[]),
            130.0
        );
        assert_eq!(
            whole_segment_ticks(100.0, true, None, Some(0.0), &[]),
            f64::INFINITY
        );
        // Sources on the segment: (position, time). Two-way: from both sides of each.
        assert_eq!(
            whole_segment_ticks(100.0, false, Some(50.0), Some(50.0), &[(50.0, 0.0)]),
            50.0
        );
        assert_eq!(
            whole_segment_ticks(100.0, false, Some(10.0), Some(90.0), &[(20.0, 0.0)]),
            80.0
        );
        // One-way: a source covers only what lies ahead of it; behind it waits for t_u.
        assert_eq!(
            whole_segment_ticks(100.0, true, Some(200.0), Some(60.0), &[(40.0, 0.0)]),
            240.0
        );
        assert_eq!(
            whole_segment_ticks(100.0, true, Some(0.0), None, &[(40.0, 0.0)]),
            60.0
        );
        assert_eq!(
            whole_segment_ticks(100.0, true, None, None, &[(40.0, 0.0)]),
            f64::INFINITY
        );
    }

    /// [`Router::closed_segments`] as it was before the piece grid: every segment in the
    /// shape's bounding box against every piece (the reference the fast one must equal).
    fn closed_segments_reference(r: &Router, shape: &ClosureShape) -> Vec<usize> {
        let pts = shape.points();
        let Some(first) = pts.first() else {
            return Vec::new();
        };
        if pts.iter().any(|p| LatLon::new(p.lat, p.lon).is_err()) {
            return Vec::new();
        }
        let k = first.lat.to_radians().cos().max(0.01);
        let xy = |p: LatLon| {
            (
                (p.lon - first.lon) * k * M_PER_DEG,
                (p.lat - first.lat) * M_PER_DEG,
            )
        };
        let poly: Vec<(f64, f64)> = pts.iter().map(|p| xy(*p)).collect();
        let cos_max = CLOSURE_LINE_MAX_ANGLE_DEG.to_radians().cos();
        let mut out = Vec::new();
        for (i, s) in r.graph.segments.iter().enumerate() {
            let (a, b) = (xy(s.a), xy(s.b));
            let m = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            let hit = match shape {
                ClosureShape::Line { .. } => poly.windows(2).any(|piece| {
                    let (p, q) = (piece[0], piece[1]);
                    let (ux, uy) = (b.0 - a.0, b.1 - a.1);
                    let (vx, vy) = (q.0 - p.0, q.1 - p.1);
                    let nn = (ux * ux + uy * uy).sqrt() * (vx * vx + vy * vy).sqrt();
                    let aligned = nn > 0.0 && (ux * vx + uy * vy).abs() / nn >= cos_max;
                    let pm = ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0);
                    aligned
                        && (dist_to_piece(m, p, q) <= CLOSURE_LINE_TOLERANCE_M
                            || dist_to_piece(pm, a, b) <= CLOSURE_LINE_TOLERANCE_M)
                }),
                ClosureShape::Area { .. } => {
                    poly.len() >= 3
                        && (inside(&poly, a)
                            || inside(&poly, b)
                            || inside(&poly, m)
                            || (0..poly.len())
                                .any(|j| crosses(a, b, poly[j], poly[(j + 1) % poly.len()])))
                }
            };
            if hit {
                out.push(i);
            }
        }
        out
    }

    /// A 30 × 30 town of two-way streets (jittered nodes ~100 m apart, some diagonals).
    fn town() -> RoadNetwork {
        let mut seed = 7u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 30;
        let mut net = RoadNetwork {
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        for i in 0..n {
            for j in 0..n {
                let lat = 42.5 + i as f64 * D + (rnd() - 0.5) * D * 0.4;
                let lon = 1.5 + j as f64 * D * 1.35 + (rnd() - 0.5) * D * 0.4;
                net.nodes.push(node(lat, lon));
            }
        }
        for i in 0..n {
            for j in 0..n {
                let v = i * n + j;
                if j + 1 < n {
                    net.edges.push(edge(&net, v, v + 1, "residential", false));
                }
                if i + 1 < n {
                    net.edges.push(edge(&net, v, v + n, "residential", false));
                }
                if i + 1 < n && j + 1 < n && rnd() < 0.2 {
                    net.edges.push(edge(&net, v, v + n + 1, "primary", false));
                }
            }
        }
        net
    }

    #[test]
    fn the_piece_grid_closes_exactly_the_segments_of_the_exhaustive_test() {
        let net = town();
        let r = router(&net);
        let mut seed = 11u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let at = |fi: f64, fj: f64| LatLon {
            lat: 42.5 + fi * 30.0 * D,
            lon: 1.5 + fj * 30.0 * D * 1.35,
        };
        let mut shapes = Vec::new();
        // Zig-zag rings across the whole town (the slow case of finding I1), stars, small
        // rings, self-intersecting rings, and rings through road nodes.
        for teeth in [5usize, 50, 250] {
            let mut ring = Vec::new();
            for t in 0..teeth {
                let fj = -0.1 + 1.2 * t as f64 / teeth as f64;
                ring.push(at(if t % 2 == 0 { -0.1 } else { 1.1 }, fj));
            }
            ring.push(at(1.2, 1.2));
            ring.push(at(1.2, -0.2));
            shapes.push(ClosureShape::Area { ring });
        }
        for _ in 0..40 {
            let (ci, cj, rad) = (rnd(), rnd(), 0.02 + rnd() * 0.5);
            let k = 3 + (rnd() * 60.0) as usize;
            let ring = (0..k)
                .map(|t| {
                    let ang = t as f64 / k as f64 * std::f64::consts::TAU;
                    let rr = rad * (0.3 + rnd());
                    at(ci + rr * ang.sin(), cj + rr * ang.cos())
                })
                .collect();
            shapes.push(ClosureShape::Area { ring });
            let wild = (0..k)
                .map(|_| at(rnd() * 1.2 - 0.1, rnd() * 1.2 - 0.1))
                .collect();
            shapes.push(ClosureShape::Area { ring: wild });
            let v = (rnd() * net.nodes.len() as f64) as usize % net.nodes.len();
            let through: Vec<LatLon> = (0..4)
                .map(|d| net.nodes[(v + d * 31) % net.nodes.len()].at)
                .collect();
            shapes.push(ClosureShape::Area {
                ring: through.clone(),
            });
            // Lines: along a row of road nodes (closes streets), and random ones.
            let row = v / 30;
            let from = v % 30;
            let along = (from..(from + 2 + k % 10).min(30))
                .map(|j| net.nodes[row * 30 + j].at)
                .collect();
            shapes.push(ClosureShape::Line { points: along });
            shapes.push(ClosureShape::Line { points: through });
            let line = (0..k).map(|_| at(rnd(), rnd())).collect();
            shapes.push(ClosureShape::Line { points: line });
        }
        let mut closed_any = 0;
        for shape in &shapes {
            let fast = r.closed_segments(shape);
            assert_eq!(fast, closed_segments_reference(&r, shape), "{shape:?}");
            closed_any += usize::from(!fast.is_empty());
        }
        // The shapes do close roads (the comparison is not between empty lists).
        assert!(
            closed_any > shapes.len() / 2,
            "{closed_any} of {}",
            shapes.len()
        );
    }

    #[test]
    fn set_closures_keeps_the_segments_of_unchanged_closures_only() {
        let net = town();
        let mut r = router(&net);
        let ring = |c: f64| ClosureShape::Area {
            ring: vec![
                LatLon {
                    lat: 42.5 + c * D,
                    lon: 1.5 + c * D,
                },
                LatLon {
                    lat: 42.5 + c * D,
                    lon: 1.5 + (c + 3.0) * D,
                },
                LatLon {
                    lat: 42.5 + (c + 3.0) * D,
                    lon: 1.5 + (c + 3.0) * D,
                },
            ],
        };
        let (a, b) = (
            r.closed_segments(&ring(2.0)),
            r.closed_segments(&ring(10.0)),
        );
        assert!(!a.is_empty() && !b.is_empty());
        r.set_closures(&[("a".into(), ring(2.0))]);
        assert_eq!(r.active_closure_segments("a"), Some(a.as_slice()));
        assert_eq!(r.mapped.len(), 1);
        // "a" changes its shape: mapped again, not taken from before.
        r.set_closures(&[("a".into(), ring(10.0)), ("b".into(), ring(2.0))]);
        assert_eq!(r.active_closure_segments("a"), Some(b.as_slice()));
        assert_eq!(r.active_closure_segments("b"), Some(a.as_slice()));
        // Lifting "a" forgets it; "b" is kept.
        let closed = r.set_closures(&[("b".into(), ring(2.0))]);
        assert_eq!(closed, a.len());
        assert_eq!(r.active_closure_segments("a"), None);
        assert_eq!(r.mapped.keys().collect::<Vec<_>>(), vec!["b"]);
        r.set_closures(&[]);
        assert!(r.mapped.is_empty());
    }
}
