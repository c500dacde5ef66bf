//! Shortest routes on the pack's road network, for moving demo units along real roads.
//!
//! The graph is built from [`outpost_geo::RoadNetwork`] for one travel [`Mode`]: cars keep
//! to drivable OSM `highway=*` classes and respect `oneway`; people on foot use footways and
//! steps too and ignore `oneway`. Edge cost is travel time in seconds at the class speed
//! (or the tagged `maxspeed`); routes run A* with a straight-line heuristic at the top
//! speed, so they are exact. Only the largest strongly connected component is used, so any
//! two nodes handed out can reach each other.

use outpost_domain::LatLon;
use outpost_geo::RoadNetwork;
use outpost_geo::routing::car_speed_kmh;
use petgraph::algo::{astar, kosaraju_scc};
use petgraph::graph::{DiGraph, NodeIndex};
use rand::{Rng, RngExt};

use crate::track::Polyline;

/// How a unit travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Cars and motorcycles: drivable roads, one-way rules kept.
    Drive,
    /// Officers on foot: every road and path, both ways.
    Walk,
}

/// Walking pace on patrol, metres per second (≈ 4.7 km/h).
pub const WALK_MPS: f64 = 1.3;

/// Free-flow speed of an OSM `highway=*` class in km/h for driving, `None` if cars may not
/// use it: the dispatch car profile's class table ([`outpost_geo::routing::car_speed_kmh`]
/// without a `maxspeed`).
pub fn class_speed_kmh(class: &str) -> Option<f64> {
    car_speed_kmh(class, None)
}

/// True for the classes people walk on that cars may not use.
fn walkable_only(class: &str) -> bool {
    matches!(
        class,
        "pedestrian" | "footway" | "path" | "steps" | "track" | "cycleway" | "bridleway"
    )
}

/// One directed edge of the graph.
#[derive(Debug, Clone, Copy)]
struct Hop {
    /// Travel time, seconds.
    cost_s: f64,
}

/// A route found on the graph: the line to follow and how long it takes at free flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The road geometry, node to node.
    pub line: Polyline,
    /// Travel time at the class speeds, seconds.
    pub duration_s: f64,
}

impl Route {
    /// Average speed over the route, metres per second (0 for a zero-length route).
    pub fn mean_speed_mps(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.line.length_m() / self.duration_s
        } else {
            0.0
        }
    }
}

/// A named road segment, for placing incidents on real streets.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedSegment {
    /// OSM `name`.
    pub name: String,
    /// The segment's midpoint (WGS-84).
    pub midpoint: LatLon,
}

/// The road graph for one mode, restricted to its largest strongly connected component.
#[derive(Debug, Clone)]
pub struct RoadGraph {
    mode: Mode,
    graph: DiGraph<LatLon, Hop>,
    /// Nodes of the largest strongly connected component.
    main: Vec<NodeIndex>,
    /// Top speed in the graph, m/s (for the A* heuristic).
    top_mps: f64,
}

impl RoadGraph {
    /// Builds the graph for `mode` from a pack's road network.
    pub fn new(net: &RoadNetwork, mode: Mode) -> RoadGraph {
        let mut graph: DiGraph<LatLon, Hop> =
            DiGraph::with_capacity(net.nodes.len(), net.edges.len() * 2);
        for n in &net.nodes {
            graph.add_node(n.at);
        }
        let mut top_mps: f64 = WALK_MPS;
        for e in &net.edges {
            if e.from >= net.nodes.len() || e.to >= net.nodes.len() || e.from == e.to {
                continue;
            }
            let speed_mps = match mode {
                Mode::Walk => {
                    if class_speed_kmh(&e.class).is_none() && !walkable_only(&e.class) {
                        continue; // e.g. "construction", "proposed"
                    }
                    WALK_MPS
                }
                Mode::Drive => {
                    // Demo units keep below 90 km/h even where a higher limit is tagged.
                    let Some(kmh) = car_speed_kmh(
                        &e.class,
                        e.maxspeed_kmh
                            .filter(|m| m.is_finite())
                            .map(|m| m.min(90.0)),
                    ) else {
                        continue;
                    };
                    kmh / 3.6
                }
            };
            top_mps = top_mps.max(speed_mps);
            let hop = Hop {
                cost_s: e.length_m.max(0.0) / speed_mps,
            };
            let (a, b) = (NodeIndex::new(e.from), NodeIndex::new(e.to));
            graph.add_edge(a, b, hop);
            if mode == Mode::Walk || !e.oneway {
                graph.add_edge(b, a, hop);
            }
        }
        // Kosaraju: iterative, so a large graph cannot overflow a thread stack.
        let main = kosaraju_scc(&graph)
            .into_iter()
            .max_by_key(Vec::len)
            .unwrap_or_default();
        RoadGraph {
            mode,
            graph,
            main,
            top_mps,
        }
    }

    /// The travel mode it was built for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many nodes the usable (largest connected) part has.
    pub fn size(&self) -> usize {
        self.main.len()
    }

    /// Position of a node.
    pub fn position(&self, n: NodeIndex) -> Option<LatLon> {
        self.graph.node_weight(n).copied()
    }

    /// The usable node nearest to `p` (linear scan; called once per leg, not per tick).
    pub fn nearest(&self, p: LatLon) -> Option<NodeIndex> {
        self.main
            .iter()
            .copied()
            .map(|n| (n, self.graph[n].distance_m(&p)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(n, _)| n)
    }

    /// A random usable node within `radius_m` metres of `center`, or the nearest one if none
    /// is that close. `None` only for an empty graph.
    pub fn random_node_near<R: Rng>(
        &self,
        center: LatLon,
        radius_m: f64,
        rng: &mut R,
    ) -> Option<NodeIndex> {
        let near: Vec<NodeIndex> = self
            .main
            .iter()
            .copied()
            .filter(|&n| self.graph[n].distance_m(&center) <= radius_m)
            .collect();
        if near.is_empty() {
            return self.nearest(center);
        }
        Some(near[rng.random_range(0..near.len())])
    }

    /// The fastest route from `from` to `to`. `None` when there is none (different
    /// components) or either index is out of range.
    pub fn route(&self, from: NodeIndex, to: NodeIndex) -> Option<Route> {
        let goal = *self.graph.node_weight(to)?;
        self.graph.node_weight(from)?;
        let top = self.top_mps;
        let (cost, path) = astar(
            &self.graph,
            from,
            |n| n == to,
            |e| e.weight().cost_s,
            |n| self.graph[n].distance_m(&goal) / top,
        )?;
        let pts: Vec<LatLon> = path.iter().map(|&n| self.graph[n]).collect();
        Some(Route {
            line: Polyline::new(pts)?,
            duration_s: cost,
        })
    }

    /// The fastest route between the usable nodes nearest to two points, with the two
    /// points themselves added at the ends (so a unit leaves its station and reaches the
    /// incident's door, not just the nearest junction).
    pub fn route_between(&self, a: LatLon, b: LatLon) -> Option<Route> {
        let (na, nb) = (self.nearest(a)?, self.nearest(b)?);
        let inner = self.route(na, nb)?;
        let mut pts = vec![a];
        pts.extend_from_slice(inner.line.points());
        pts.push(b);
        let line = Polyline::new(pts)?;
        // The two end stubs at walking pace for Walk, 20 km/h for Drive.
        let stub_mps = match self.mode {
            Mode::Walk => WALK_MPS,
            Mode::Drive => 20.0 / 3.6,
        };
        let extra = (line.length_m() - inner.line.length_m()).max(0.0) / stub_mps;
        Some(Route {
            line,
            duration_s: inner.duration_s + extra,
        })
    }
}

/// Named segments of drivable roads and pedestrian streets whose midpoint lies within
/// `radius_m` of any of `anchors` (the roster's stations and posts), for placing incidents
/// where people are. Footways, paths, tracks and steps are left out: a mountain-bike trail
/// is a poor address for a 911 call.
pub fn named_segments_near(
    net: &RoadNetwork,
    anchors: &[LatLon],
    radius_m: f64,
) -> Vec<NamedSegment> {
    net.edges
        .iter()
        .filter(|e| class_speed_kmh(&e.class).is_some() || e.class == "pedestrian")
        .filter_map(|e| {
            let name = e.name.as_ref().filter(|n| !n.trim().is_empty())?;
            let (a, b) = (net.nodes.get(e.from)?.at, net.nodes.get(e.to)?.at);
            let mid = LatLon {
                lat: (a.lat + b.lat) / 2.0,
                lon: (a.lon + b.lon) / 2.0,
            };
            anchors
                .iter()
                .any(|p| p.distance_m(&mid) <= radius_m)
                .then(|| NamedSegment {
                    name: name.clone(),
                    midpoint: mid,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_geo::{RoadEdge, RoadNode};
    use rand::SeedableRng;

    fn node(id: i64, lat: f64, lon: f64) -> RoadNode {
        RoadNode {
            id,
            at: LatLon { lat, lon },
        }
    }

    fn edge(net: &RoadNetwork, from: usize, to: usize, class: &str, oneway: bool) -> RoadEdge {
        RoadEdge {
            from,
            to,
            length_m: net.nodes[from].at.distance_m(&net.nodes[to].at),
            class: class.into(),
            name: Some(format!("Carrer {from}-{to}")),
            oneway,
            maxspeed_kmh: None,
            car_access: true,
        }
    }

    /// A square 0-1-2-3 of ~111 m sides with a one-way diagonal 0→2 and a footway 3-4.
    fn square() -> RoadNetwork {
        let d = 0.001;
        let mut net = RoadNetwork {
            nodes: vec![
                node(10, 42.5, 1.5),
                node(11, 42.5 + d, 1.5),
                node(12, 42.5 + d, 1.5 + d),
                node(13, 42.5, 1.5 + d),
                node(14, 42.5 - d, 1.5 + d),
            ],
            edges: vec![],
        };
        net.edges = vec![
            edge(&net, 0, 1, "residential", false),
            edge(&net, 1, 2, "residential", false),
            edge(&net, 2, 3, "residential", false),
            edge(&net, 3, 0, "residential", false),
            edge(&net, 0, 2, "primary", true),
            edge(&net, 3, 4, "footway", false),
        ];
        net
    }

    #[test]
    fn one_way_streets_are_kept_when_driving() {
        let net = square();
        let g = RoadGraph::new(&net, Mode::Drive);
        // The footway's end node 4 is not drivable, so not in the main component.
        assert_eq!(g.size(), 4);
        let there = g.route(NodeIndex::new(0), NodeIndex::new(2)).expect("0→2");
        assert_eq!(there.line.points().len(), 2, "takes the one-way diagonal");
        let back = g.route(NodeIndex::new(2), NodeIndex::new(0)).expect("2→0");
        assert_eq!(back.line.points().len(), 3, "goes round the square");
        // 50 km/h on the primary diagonal of ~134 m.
        let want = there.line.length_m() / (50.0 / 3.6);
        assert!((there.duration_s - want).abs() < 1e-6);
        assert!((there.mean_speed_mps() - 50.0 / 3.6).abs() < 1e-6);
    }

    #[test]
    fn walkers_use_footways_and_ignore_one_way() {
        let net = square();
        let g = RoadGraph::new(&net, Mode::Walk);
        assert_eq!(g.size(), 5);
        let r = g.route(NodeIndex::new(2), NodeIndex::new(4)).expect("2→4");
        assert_eq!(r.line.points().len(), 3);
        assert!((r.mean_speed_mps() - WALK_MPS).abs() < 1e-9);
        let back = g.route(NodeIndex::new(2), NodeIndex::new(0)).expect("2→0");
        assert_eq!(
            back.line.points().len(),
            2,
            "walks the one-way diagonal backwards"
        );
    }

    #[test]
    fn nearest_and_random_nodes() {
        let net = square();
        let g = RoadGraph::new(&net, Mode::Drive);
        let p = LatLon {
            lat: 42.50099,
            lon: 1.50101,
        };
        assert_eq!(g.nearest(p), Some(NodeIndex::new(2)));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let n = g.random_node_near(p, 50.0, &mut rng).expect("node");
            assert_eq!(n, NodeIndex::new(2), "only node 2 is within 50 m");
        }
        // Nothing within 1 m of a far point: the nearest node is handed out instead.
        let far = LatLon {
            lat: 43.0,
            lon: 1.5,
        };
        assert!(g.random_node_near(far, 1.0, &mut rng).is_some());
    }

    #[test]
    fn routes_between_points_start_and_end_at_them() {
        let net = square();
        let g = RoadGraph::new(&net, Mode::Drive);
        let a = LatLon {
            lat: 42.49995,
            lon: 1.49995,
        };
        let b = LatLon {
            lat: 42.50105,
            lon: 1.50105,
        };
        let r = g.route_between(a, b).expect("route");
        assert_eq!(r.line.start(), a);
        assert_eq!(r.line.end(), b);
        assert!(r.duration_s > 0.0);
    }

    #[test]
    fn named_segments_are_filtered_by_distance() {
        let net = square();
        let anchor = [LatLon {
            lat: 42.5,
            lon: 1.5,
        }];
        let near = named_segments_near(&net, &anchor, 80.0);
        let names: Vec<_> = near.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["Carrer 0-1", "Carrer 3-0", "Carrer 0-2"]);
        // The footway is never a spot.
        assert_eq!(named_segments_near(&net, &anchor, 1e6).len(), 5);
    }

    #[test]
    fn class_speeds() {
        assert_eq!(class_speed_kmh("primary"), Some(50.0));
        assert_eq!(class_speed_kmh("footway"), None);
        assert!(walkable_only("steps"));
    }
}
