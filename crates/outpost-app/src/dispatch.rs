//! Dispatch intelligence on the console: available units ranked by road ETA to an
//! incident, the field laptop's route to its assignment, the 1-3-5 minute coverage layer,
//! and road closures (ops that sync; routing avoids active ones on every console).
//!
//! The router (`outpost_geo::Router`: the pack's car graph and contraction hierarchy) is
//! built on first use from the pack and kept in [`RoutingState`]; it is re-contracted when
//! the set of active closures changes (a closure drawn here or pulled from the server, or
//! one reaching its expected end).

use std::sync::Mutex;

use outpost_geo::Router;

use crate::console::Console;
use crate::error::AppError;
use crate::ipc::{
    ClosestUnits, ClosureRef, CoverageView, FieldRoute, IncidentRef, NewRoadClosure,
    RoadClosureView, RoadLineQuery,
};
use outpost_domain::LatLon;

/// The console's routing cache: the router (once built) and the closures it was
/// contracted with.
#[derive(Debug, Default)]
pub struct RoutingState {
    pub(crate) inner: Mutex<Option<RouterCache>>,
}

/// A built router and the ids + versions of the active closures it avoids.
#[derive(Debug)]
pub(crate) struct RouterCache {
    pub(crate) router: Router,
    /// Key of the active closures the router was contracted with (ids and set times).
    pub(crate) closures_key: String,
}

impl Console {
    /// Available units ranked by road ETA from their latest fix to the incident (fastest
    /// first; units without a position, off the roads or cut off by closures last, with
    /// the reason), with routes for the first five.
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::NotFound`] for an unknown incident; storage errors.
    pub fn closest_units(&self, args: IncidentRef) -> Result<ClosestUnits, AppError> {
        let _ = args;
        todo!("dispatch helper")
    }

    /// Field laptop: the route from this unit's latest fix to its active assignment;
    /// `None` outside field mode or without an active assignment.
    ///
    /// # Errors
    /// Storage errors.
    pub fn field_route(&self) -> Result<Option<FieldRoute>, AppError> {
        todo!("dispatch helper")
    }

    /// The 1-3-5 minute coverage of stations, posts, checkpoints and available units.
    ///
    /// # Errors
    /// Storage errors.
    pub fn coverage(&self) -> Result<CoverageView, AppError> {
        todo!("dispatch helper")
    }

    /// Every road closure, active first (newest set first within each group).
    ///
    /// # Errors
    /// Storage errors.
    pub fn road_closures(&self) -> Result<Vec<RoadClosureView>, AppError> {
        todo!("dispatch helper")
    }

    /// Draws a closure (or changes one): one `road_closure.set` op, on disk before this
    /// returns; routing on this console avoids it at once, on others when the op arrives.
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::InvalidInput`] for a bad shape or reason (the message says
    /// which point or field), NotFound for an unknown `closure_id`.
    pub fn set_road_closure(&self, args: NewRoadClosure) -> Result<RoadClosureView, AppError> {
        let _ = args;
        todo!("dispatch helper")
    }

    /// Lifts a closure (a `road_closure.set` with `lifted: true`).
    ///
    /// # Errors
    /// NotFound for an unknown closure.
    pub fn lift_road_closure(&self, args: ClosureRef) -> Result<RoadClosureView, AppError> {
        let _ = args;
        todo!("dispatch helper")
    }

    /// The road line through points clicked along a road (each snapped to the nearest
    /// drivable road), for drawing a closed road.
    ///
    /// # Errors
    /// InvalidInput for fewer than 2 or more than 50 points or a point far from any road.
    pub fn road_line(&self, args: RoadLineQuery) -> Result<Vec<LatLon>, AppError> {
        let _ = args;
        todo!("dispatch helper")
    }
}
