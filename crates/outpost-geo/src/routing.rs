//! Road routing for dispatch: the car profile, the contraction hierarchy, snapping,
//! road ETAs from units to an incident, reach areas (the 1-3-5 minute isochrones),
//! coverage of the road network, and road closures.
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
//!   (`fast_paths::prepare_with_order`, tens of ms for a city), and so does a change of
//!   closures, so routes stay exact with closures active.
//! * **Snapping.** A point is placed on the nearest segment of the graph (projection),
//!   never on a fragment outside the largest component: a unit parked on a disconnected
//!   service road still gets an ETA, with the off-road leg driven at [`OFFROAD_MPS`].
//! * **Reach.** One multi-source Dijkstra bounded by the largest limit gives, for every
//!   segment, the earliest time a source reaches it; isochrones and coverage are read off
//!   it (network-based reach: the roads reachable in time, which the map draws wide).
//!
//! Units: metres, seconds, WGS-84 degrees. Nothing here panics on any input; every
//! failure is a [`RoutingError`] or an [`Unreachable`] reason.

use std::sync::Arc;

use outpost_domain::LatLon;
use outpost_domain::road_closure::ClosureShape;
use serde::{Deserialize, Serialize};

use crate::pack::RoadNetwork;

/// Speed of the off-road leg between a point and the road it snaps to, metres per
/// second (15 km/h: a car leaving a yard or a parking lot).
pub const OFFROAD_MPS: f64 = 15.0 / 3.6;
/// A point farther than this from every road of the graph does not snap, metres.
pub const MAX_SNAP_M: f64 = 5_000.0;
/// The 1-3-5 rule's limits (Dongsheng district, Ordos), seconds.
pub const RULE_1_3_5_S: [f64; 3] = [60.0, 180.0, 300.0];

/// Free-flow car speed for an OSM `highway=*` class and an optional numeric `maxspeed`
/// (km/h). `None` when cars may not use the class (footway, path, steps, track,
/// cycleway, pedestrian, bridleway, construction, proposed...). The numeric `maxspeed`
/// wins over the class speed, capped at 130 km/h.
pub fn car_speed_kmh(class: &str, maxspeed_kmh: Option<f64>) -> Option<f64> {
    let _ = (class, maxspeed_kmh);
    todo!("routing helper")
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
    pub order: Vec<u32>,
}

/// The drivable road graph of a pack: segments of the largest strongly connected
/// component, with their geometry, lengths, class and travel times. Immutable; shared by
/// routers through an `Arc`.
#[derive(Debug)]
pub struct RoadGraph {
    _private: (),
}

impl RoadGraph {
    /// Builds the car graph from a pack's road network (see the module doc for the rules).
    ///
    /// # Errors
    /// [`RoutingError::NoRoads`] when no segment is drivable.
    pub fn from_network(net: &RoadNetwork) -> Result<RoadGraph, RoutingError> {
        let _ = net;
        todo!("routing helper")
    }

    /// Computes a contraction order (the expensive part of the hierarchy, done once when a
    /// pack is built).
    pub fn contraction_order(&self) -> HierarchyOrder {
        todo!("routing helper")
    }

    /// Number of graph nodes (junctions and shape points of drivable roads).
    pub fn node_count(&self) -> usize {
        todo!("routing helper")
    }

    /// Number of road segments in the graph (a two-way segment counts once).
    pub fn segment_count(&self) -> usize {
        todo!("routing helper")
    }

    /// Total length of the graph's road segments, metres (two-way counted once).
    pub fn total_length_m(&self) -> f64 {
        todo!("routing helper")
    }

    /// Places a point on the nearest segment of the graph.
    ///
    /// # Errors
    /// [`RoutingError::TooFarFromRoad`] beyond [`MAX_SNAP_M`].
    pub fn snap(&self, at: LatLon) -> Result<Snap, RoutingError> {
        let _ = at;
        todo!("routing helper")
    }

    /// The road line between consecutive `points` (each snapped; shortest drive ignoring
    /// one-way rules and closures), for drawing a road closure that follows the road.
    ///
    /// # Errors
    /// A point too far from a road.
    pub fn road_line(&self, points: &[LatLon]) -> Result<Vec<LatLon>, RoutingError> {
        let _ = points;
        todo!("routing helper")
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
/// (`None`: not reached within the limit), and which source reached it first.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    /// The limit the search stopped at, seconds.
    pub limit_s: f64,
    /// Per segment (index as [`RoadGraph`]'s segments): time the whole segment is reached
    /// (the later of its two ends), seconds.
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
#[derive(Debug)]
pub struct Router {
    graph: Arc<RoadGraph>,
}

impl Router {
    /// A router with no closure, contracted with `order` (from the pack), or computing an
    /// order when `None`.
    ///
    /// # Errors
    /// [`RoutingError::BadOrder`] when `order` does not fit the graph.
    pub fn new(graph: Arc<RoadGraph>, order: Option<&HierarchyOrder>) -> Result<Router, RoutingError> {
        let _ = order;
        let _ = &graph;
        todo!("routing helper")
    }

    /// The graph.
    pub fn graph(&self) -> &Arc<RoadGraph> {
        &self.graph
    }

    /// Replaces the active closures (`(id, shape)`; an empty slice lifts all) and
    /// re-contracts the hierarchy without the closed segments. Returns how many segments
    /// are closed.
    pub fn set_closures(&mut self, closures: &[(String, ClosureShape)]) -> usize {
        let _ = closures;
        todo!("routing helper")
    }

    /// Ids of the segments a closure shape closes (for tests and the map).
    pub fn closed_segments(&self, shape: &ClosureShape) -> Vec<usize> {
        let _ = shape;
        todo!("routing helper")
    }

    /// The fastest route from `from` to `to` (contraction hierarchy).
    ///
    /// # Errors
    /// `Err(RoutingError)` when a point does not snap; `Ok(Err(Unreachable))` when
    /// closures cut every route.
    pub fn route(&self, from: LatLon, to: LatLon) -> Result<Result<Route, Unreachable>, RoutingError> {
        let _ = (from, to);
        todo!("routing helper")
    }

    /// Travel times from each of `from` to `to` (contraction hierarchy, one query per
    /// source, one calculator reused), in the order given.
    ///
    /// # Errors
    /// `Err` when `to` does not snap; each source's own failure is in its slot.
    pub fn etas_to(
        &self,
        from: &[LatLon],
        to: LatLon,
    ) -> Result<Vec<Result<Eta, EtaProblem>>, RoutingError> {
        let _ = (from, to);
        todo!("routing helper")
    }

    /// The same answers as [`Router::etas_to`] by plain Dijkstra (one backward search
    /// from `to` over the whole graph): the reference for tests and the benchmark.
    ///
    /// # Errors
    /// As [`Router::etas_to`].
    pub fn etas_to_dijkstra(
        &self,
        from: &[LatLon],
        to: LatLon,
    ) -> Result<Vec<Result<Eta, EtaProblem>>, RoutingError> {
        let _ = (from, to);
        todo!("routing helper")
    }

    /// Plain Dijkstra point to point (the benchmark's reference for [`Router::route`]).
    ///
    /// # Errors
    /// As [`Router::route`].
    pub fn route_dijkstra(&self, from: LatLon, to: LatLon) -> Result<Result<Route, Unreachable>, RoutingError> {
        let _ = (from, to);
        todo!("routing helper")
    }

    /// Earliest travel time from any source to every segment, up to `limit_s` (one
    /// multi-source Dijkstra, closures avoided).
    pub fn reach(&self, sources: &[ReachSource], limit_s: f64) -> Reach {
        let _ = (sources, limit_s);
        todo!("routing helper")
    }

    /// The 1-3-5 coverage of `sources` ([`RULE_1_3_5_S`]).
    pub fn coverage(&self, sources: &[ReachSource]) -> Coverage {
        let _ = sources;
        todo!("routing helper")
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
