//! Dispatch intelligence on the console: available units ranked by road ETA to an
//! incident, the field laptop's route to its assignment, the 1-3-5 minute coverage layer,
//! and road closures (ops that sync; routing avoids active ones on every console).
//!
//! The router (`outpost_geo::Router`: the pack's car graph and contraction hierarchy) is
//! built on first use from the pack and kept in [`RoutingState`]; it is re-contracted when
//! the set of active closures changes (a closure drawn here or pulled from the server, or
//! one reaching its expected end). Every call reads what it needs from the store in one
//! short lock and routes after releasing it, so routing never holds up the sync engine or
//! another command's write.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use outpost_domain::facility::FacilityKind;
use outpost_domain::op::OpBody;
use outpost_domain::road_closure::{ClosureShape, RoadClosure};
use outpost_domain::unit::UnitStatus;
use outpost_geo::routing::{EtaProblem, ReachSource, Unreachable};
use outpost_geo::{RoadGraph, Router, RoutingError};
use outpost_store::query::{self, UnitRow};
use outpost_store::{Store, closures};

use crate::console::{Console, lock};
use crate::error::AppError;
use crate::ipc::{
    ClosestUnits, ClosureRef, CoverageView, EtaProblemKind, FieldRoute, IncidentRef,
    NewRoadClosure, RoadClosureView, RoadLineQuery, RouteView, UnitEta,
};
use outpost_domain::LatLon;

/// How many of the ranked units get their route (for the map): the "top five".
pub const ROUTED_UNITS: usize = 5;

/// Fewest and most points `road_line` takes (clicks along a road).
pub const ROAD_LINE_POINTS: std::ops::RangeInclusive<usize> = 2..=50;

/// The console's routing cache: the router (once built) and the closures it was
/// contracted with, why it cannot be built (once known), and the last coverage answer.
#[derive(Debug, Default)]
pub struct RoutingState {
    pub(crate) inner: Mutex<Option<RouterCache>>,
    /// Why no router can be built (no pack, no drivable road): the pack does not change
    /// while the console runs, so this is decided once. A failed read of the pack is not
    /// kept here (it is retried on the next call).
    unavailable: Mutex<Option<String>>,
    /// The last coverage answer and what it was computed from.
    coverage: Mutex<Option<CoverageCache>>,
    /// Per stored closure: its shape and the road segments it closed the last time this
    /// console routed with it active (what a lifted or ended closure shows). Keyed by id
    /// with the shape rather than by set time, as lifting sets the closure again; entries
    /// of closures no longer stored are dropped at each listing.
    closure_counts: Mutex<HashMap<Uuid, (ClosureShape, u32)>>,
}

/// A built router and the ids + versions of the active closures it avoids.
#[derive(Debug)]
pub(crate) struct RouterCache {
    pub(crate) router: Router,
    /// Key of the active closures the router was contracted with (ids and set times).
    pub(crate) closures_key: String,
}

/// A coverage answer, valid while the state revision and the active closures are the same.
#[derive(Debug)]
struct CoverageCache {
    revision: u64,
    closures_key: String,
    view: CoverageView,
}

/// A closure as stored (the shown value of its register) with who set it and when.
#[derive(Debug, Clone)]
struct Stored {
    closure: RoadClosure,
    set_by: String,
    set_at: DateTime<Utc>,
}

/// The closures routing must avoid at one instant.
#[derive(Debug, Default)]
struct Active {
    /// `(closure id, shape)` as given to [`Router::set_closures`], ordered by id.
    shapes: Vec<(String, ClosureShape)>,
    /// Identifies the set: ids, set times and shapes (empty without closures).
    key: String,
    /// Reason of each active closure by id (for "cut off by ..." details).
    reasons: HashMap<String, String>,
}

impl Active {
    /// The closures of `all` that are active at `now` ([`RoadClosure::is_active`]).
    fn at(all: &[Stored], now: DateTime<Utc>) -> Active {
        let mut active: Vec<&Stored> = all.iter().filter(|s| s.closure.is_active(now)).collect();
        active.sort_by_key(|s| s.closure.closure_id);
        let mut key = String::new();
        for s in &active {
            let mut h = DefaultHasher::new();
            for p in s.closure.shape.points() {
                p.lat.to_bits().hash(&mut h);
                p.lon.to_bits().hash(&mut h);
            }
            matches!(s.closure.shape, ClosureShape::Area { .. }).hash(&mut h);
            key.push_str(&format!(
                "{}@{}#{:x};",
                s.closure.closure_id,
                s.set_at.timestamp_millis(),
                h.finish()
            ));
        }
        Active {
            shapes: active
                .iter()
                .map(|s| (s.closure.closure_id.to_string(), s.closure.shape.clone()))
                .collect(),
            key,
            reasons: active
                .iter()
                .map(|s| (s.closure.closure_id.to_string(), s.closure.reason.clone()))
                .collect(),
        }
    }

    fn count(&self) -> u32 {
        u32::try_from(self.shapes.len()).unwrap_or(u32::MAX)
    }

    /// "cut off by road closures: 积水 0.8 m; bridge collapsed" for the closures `ids`.
    fn cut_off_words(&self, ids: &[String]) -> String {
        let reasons: Vec<&str> = ids
            .iter()
            .map(|id| self.reasons.get(id).map_or(id.as_str(), String::as_str))
            .collect();
        if reasons.is_empty() {
            "road closures cut every route to the incident".to_string()
        } else {
            format!(
                "road closures cut every route to the incident: {}",
                reasons.join("; ")
            )
        }
    }
}

/// Every stored closure (shown values, lifted and ended ones included).
fn read_closures(store: &Store) -> Result<Vec<Stored>, AppError> {
    Ok(store
        .road_closures()?
        .into_iter()
        .map(|s| Stored {
            closure: s.closure,
            set_by: s.set_by,
            set_at: s.set_at,
        })
        .collect())
}

/// A new closure id: a UUIDv7 stamped with the console's (injected) clock.
fn new_closure_id(now: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    );
    Uuid::new_v7(ts)
}

fn parse_closure_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text.trim())
        .map_err(|_| AppError::not_found(format!("road closure {text:?} does not exist")))
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// Order of a candidate: ranked by ETA first, then those cut off by closures, off the
/// roads, and without a position; within a group by ETA, else straight-line distance,
/// then callsign.
fn candidate_order(a: &UnitEta, b: &UnitEta) -> std::cmp::Ordering {
    fn group(u: &UnitEta) -> u8 {
        match u.problem {
            None => 0,
            Some(EtaProblemKind::ClosedOff) => 1,
            Some(EtaProblemKind::NoRoad) => 2,
            Some(EtaProblemKind::NoPosition) => 3,
        }
    }
    let measure = |u: &UnitEta| u.eta_s.or(u.straight_m).unwrap_or(f64::INFINITY);
    group(a)
        .cmp(&group(b))
        .then(measure(a).total_cmp(&measure(b)))
        .then_with(|| a.callsign.cmp(&b.callsign))
        .then_with(|| a.unit_id.cmp(&b.unit_id))
}

/// An available unit before ranking: its fix and straight-line distance to `to`.
fn candidate(u: UnitRow, to: LatLon) -> UnitEta {
    let straight_m = u.fix.as_ref().map(|f| f.position.distance_m(&to));
    let no_position = u.fix.is_none();
    UnitEta {
        unit_id: u.id,
        callsign: u.callsign,
        kind: u.kind,
        fix: u.fix,
        eta_s: None,
        distance_m: None,
        straight_m,
        problem: no_position.then_some(EtaProblemKind::NoPosition),
        problem_detail: no_position.then(|| "the unit has never reported a position".into()),
        route: None,
    }
}

/// Ranks `candidates` (sorted on return) by road ETA to `to` and routes the first
/// [`ROUTED_UNITS`]. `Err` says why nothing could be ranked (the incident is off the roads).
fn rank(
    router: &Router,
    candidates: &mut [UnitEta],
    to: LatLon,
    active: &Active,
) -> Result<(), String> {
    let positioned: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].fix.is_some())
        .collect();
    let from: Vec<LatLon> = positioned
        .iter()
        .filter_map(|&i| candidates[i].fix.as_ref().map(|f| f.position))
        .collect();
    if !from.is_empty() {
        let etas = router
            .etas_to(&from, to)
            .map_err(|e| format!("the incident is off the road network: {e}"))?;
        for (&i, answer) in positioned.iter().zip(etas) {
            let c = &mut candidates[i];
            match answer {
                Ok(eta) => {
                    c.eta_s = Some(eta.eta_s);
                    c.distance_m = Some(eta.distance_m);
                }
                Err(EtaProblem::NoRoad(why)) => {
                    c.problem = Some(EtaProblemKind::NoRoad);
                    c.problem_detail = Some(why);
                }
                Err(EtaProblem::Unreachable(Unreachable::ClosedOff { closures })) => {
                    c.problem = Some(EtaProblemKind::ClosedOff);
                    c.problem_detail = Some(active.cut_off_words(&closures));
                }
            }
        }
    }
    candidates.sort_by(candidate_order);
    for c in candidates
        .iter_mut()
        .filter(|c| c.eta_s.is_some())
        .take(ROUTED_UNITS)
    {
        let Some(fix) = &c.fix else { continue };
        if let Ok(Ok(route)) = router.route(fix.position, to) {
            c.route = Some(route.line);
        }
    }
    Ok(())
}

impl Console {
    /// Reads the closures in one short lock of the store.
    fn stored_closures(&self) -> Result<Vec<Stored>, AppError> {
        let handle = self.store_handle();
        let store = lock(&handle);
        read_closures(&store)
    }

    /// Builds the router from the pack: `Err((why, permanent))`.
    fn build_router(&self) -> Result<Router, (String, bool)> {
        let Some(pack) = self.pack() else {
            return Err((
                "no area pack is open, so there is no road network to route on".into(),
                true,
            ));
        };
        let started = Instant::now();
        let net = pack
            .road_network()
            .map_err(|e| (format!("cannot read the pack's road network: {e}"), false))?;
        let graph = Arc::new(
            RoadGraph::from_network(&net)
                .map_err(|e| (format!("{e}; road ETAs and coverage need one"), true))?,
        );
        let order = match pack.hierarchy_order() {
            Ok(order) => order,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the pack's road hierarchy; computing one");
                None
            }
        };
        let router = match Router::new(Arc::clone(&graph), order.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                // A damaged order: computing one takes longer but routes the same.
                tracing::warn!(error = %e, "the pack's road hierarchy does not fit; computing one");
                Router::new(graph, None).map_err(|e| (e.to_string(), true))?
            }
        };
        tracing::info!(
            took_ms = elapsed_ms(started),
            segments = router.graph().segment_count(),
            "router built"
        );
        Ok(router)
    }

    /// Runs `f` with the router, built on first use and contracted without the `active`
    /// closures (`None`: whatever closures it has; for snapping and road lines, which
    /// ignore closures). `Err` says why there is no router.
    fn with_router<T>(
        &self,
        active: Option<&Active>,
        f: impl FnOnce(&Router) -> T,
    ) -> Result<T, String> {
        let mut guard = lock(&self.routing.inner);
        let cache = match &mut *guard {
            Some(cache) => cache,
            empty => {
                if let Some(why) = lock(&self.routing.unavailable).clone() {
                    return Err(why);
                }
                match self.build_router() {
                    Ok(router) => empty.insert(RouterCache {
                        router,
                        closures_key: String::new(),
                    }),
                    Err((why, permanent)) => {
                        if permanent {
                            *lock(&self.routing.unavailable) = Some(why.clone());
                        }
                        return Err(why);
                    }
                }
            }
        };
        if let Some(active) = active
            && cache.closures_key != active.key
        {
            let started = Instant::now();
            let closed = cache.router.set_closures(&active.shapes);
            tracing::debug!(
                closures = active.shapes.len(),
                closed,
                took_ms = elapsed_ms(started),
                "router re-contracted for road closures"
            );
            cache.closures_key = active.key.clone();
        }
        Ok(f(&cache.router))
    }

    /// Builds the router now (reading the pack's roads and contracting the hierarchy, about
    /// 0.1 s for Andorra in a release build), so the first ranking a commander asks for
    /// does not wait for it. The shell calls it on a background thread at start-up; a
    /// failure is kept and reported by the first call that needs the router.
    pub fn prepare_routing(&self) {
        if let Err(why) = self.with_router(None, |_| ()) {
            tracing::info!(%why, "no router");
        }
    }

    /// Available units ranked by road ETA from their latest fix to the incident (fastest
    /// first; units without a position, off the roads or cut off by closures last, with
    /// the reason), with routes for the first five.
    ///
    /// A closed incident is answered too (it changes nothing; dispatching to it is refused
    /// by `assign_unit`). Without a pack or when the incident is off the road network,
    /// `unavailable` says why and the candidates are ordered by straight-line distance.
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::NotFound`] for an unknown incident; storage errors.
    pub fn closest_units(&self, args: IncidentRef) -> Result<ClosestUnits, AppError> {
        let started = Instant::now();
        let id = Uuid::parse_str(args.incident_id.trim()).map_err(|_| {
            AppError::not_found(format!("incident {:?} does not exist", args.incident_id))
        })?;
        let now = self.now();
        let (incident, units, closures) = {
            let handle = self.store_handle();
            let store = lock(&handle);
            let c = store.conn();
            let incident = query::incident(c, id)?
                .ok_or_else(|| AppError::not_found(format!("incident {id} does not exist")))?;
            (incident, query::units(c)?, read_closures(&store)?)
        };
        let to = incident.location;
        let active = Active::at(&closures, now);
        let mut candidates: Vec<UnitEta> = units
            .into_iter()
            // Available and free: a unit shown available while it still holds an assignment
            // (a status and an assignment synced concurrently) is refused by assign_unit.
            .filter(|u| u.status == UnitStatus::Available && u.incident.is_none())
            .map(|u| candidate(u, to))
            .collect();
        let ranked = self.with_router(Some(&active), |router| {
            rank(router, &mut candidates, to, &active)
        });
        let unavailable = match ranked {
            Ok(Ok(())) => None,
            Ok(Err(why)) | Err(why) => {
                candidates.sort_by(candidate_order);
                Some(format!(
                    "{why}; units are listed by straight-line distance, not by road"
                ))
            }
        };
        Ok(ClosestUnits {
            incident_id: id.to_string(),
            candidates,
            closures_active: active.count(),
            unavailable,
            took_ms: elapsed_ms(started),
        })
    }

    /// Field laptop: the route from this unit's latest fix to its active assignment;
    /// `None` outside field mode or without an active assignment.
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::NotFound`] when the field unit has left the roster;
    /// storage errors.
    pub fn field_route(&self) -> Result<Option<FieldRoute>, AppError> {
        let Some(unit_id) = self.field_unit() else {
            return Ok(None);
        };
        let now = self.now();
        let (fix, incident, closures) = {
            let handle = self.store_handle();
            let store = lock(&handle);
            let c = store.conn();
            let unit = query::unit(c, &unit_id)?
                .ok_or_else(|| AppError::not_found(format!("unit {unit_id} does not exist")))?;
            let Some(a) = query::active_assignment(c, &unit_id)? else {
                return Ok(None);
            };
            let Some(incident) = query::incident(c, a.incident_id)? else {
                return Ok(None);
            };
            (unit.fix, incident, read_closures(&store)?)
        };
        let mut out = FieldRoute {
            incident_id: incident.id.to_string(),
            route: None,
            problem: None,
            problem_detail: None,
        };
        let Some(fix) = fix else {
            out.problem = Some(EtaProblemKind::NoPosition);
            out.problem_detail = Some("this unit has no position yet".into());
            return Ok(Some(out));
        };
        let active = Active::at(&closures, now);
        let to = incident.location;
        let answer = self.with_router(Some(&active), |router| {
            // Which end does not snap matters for the message.
            if let Err(e) = router.graph().snap(to) {
                return Err((None, format!("the incident is off the road network: {e}")));
            }
            match router.route(fix.position, to) {
                Ok(Ok(route)) => Ok(route),
                Ok(Err(Unreachable::ClosedOff { closures })) => Err((
                    Some(EtaProblemKind::ClosedOff),
                    active.cut_off_words(&closures),
                )),
                Err(e) => Err((Some(EtaProblemKind::NoRoad), e.to_string())),
            }
        });
        match answer {
            Ok(Ok(route)) => {
                out.route = Some(RouteView {
                    eta_s: route.eta_s,
                    distance_m: route.distance_m,
                    line: route.line,
                });
            }
            Ok(Err((problem, why))) => {
                out.problem = problem;
                out.problem_detail = Some(why);
            }
            Err(why) => out.problem_detail = Some(why),
        }
        Ok(Some(out))
    }

    /// The 1-3-5 minute coverage: the layer from stations, posts and available units with a
    /// position; the figure (`share`) from the available units alone, so it drops as units
    /// are dispatched. The answer is kept until the state changes (a new revision) or the set
    /// of active closures does (one drawn, lifted or reaching its end), so asking again
    /// meanwhile costs a store read.
    ///
    /// # Errors
    /// Storage errors.
    pub fn coverage(&self) -> Result<CoverageView, AppError> {
        let started = Instant::now();
        // Read before the state: a change after this makes the answer's revision stale,
        // never the other way round.
        let revision = self.revision();
        let now = self.now();
        let (facilities, units, closures) = {
            let handle = self.store_handle();
            let store = lock(&handle);
            let c = store.conn();
            (
                query::facilities(c)?,
                query::units(c)?,
                read_closures(&store)?,
            )
        };
        let active = Active::at(&closures, now);
        if let Some(hit) = lock(&self.routing.coverage)
            .as_ref()
            .filter(|c| c.revision == revision && c.closures_key == active.key)
        {
            let mut view = hit.view.clone();
            view.took_ms = elapsed_ms(started);
            return Ok(view);
        }
        // The layer: stations, posts and available units. Checkpoints guard entry roads and
        // do not respond, so they are not sources. The figure: available units only.
        let mut sources: Vec<ReachSource> = facilities
            .iter()
            .filter(|f| f.kind != FacilityKind::Checkpoint)
            .map(|f| ReachSource {
                id: f.id.clone(),
                at: f.position,
            })
            .collect();
        let facility_count = sources.len();
        let unit_sources: Vec<ReachSource> = units
            .iter()
            .filter(|u| u.status == UnitStatus::Available && u.incident.is_none())
            .filter_map(|u| {
                u.fix.as_ref().map(|f| ReachSource {
                    id: u.id.clone(),
                    at: f.position,
                })
            })
            .collect();
        sources.extend(unit_sources.iter().cloned());
        let view = match self.with_router(Some(&active), |router| {
            (router.coverage(&sources), router.coverage(&unit_sources))
        }) {
            Ok((all, by_units)) => CoverageView {
                share: by_units.share.to_vec(),
                reached_m: by_units.reached_m.to_vec(),
                share_with_facilities: all.share.to_vec(),
                total_m: all.total_m,
                bands: all.bands.to_vec(),
                facilities: to_u32(facility_count),
                units: to_u32(unit_sources.len()),
                closures_active: active.count(),
                took_ms: elapsed_ms(started),
                unavailable: None,
            },
            Err(why) => CoverageView {
                share: Vec::new(),
                reached_m: Vec::new(),
                share_with_facilities: Vec::new(),
                total_m: 0.0,
                bands: Vec::new(),
                facilities: 0,
                units: 0,
                closures_active: active.count(),
                took_ms: elapsed_ms(started),
                unavailable: Some(why),
            },
        };
        *lock(&self.routing.coverage) = Some(CoverageCache {
            revision,
            closures_key: active.key,
            view: view.clone(),
        });
        Ok(view)
    }

    /// Every road closure, active first (newest set first within each group).
    /// `closed_segments` counts the segments of this console's pack each shape closes (0
    /// without a pack); for a lifted or ended closure, the count it had when this console
    /// last routed with it active, else 0 (it is not mapped again: listing stays cheap
    /// whatever the number of old closures).
    ///
    /// # Errors
    /// Storage errors.
    pub fn road_closures(&self) -> Result<Vec<RoadClosureView>, AppError> {
        let now = self.now();
        let closures = self.stored_closures()?;
        let mut views = self.closure_views(closures, now);
        views.sort_by(|a, b| {
            b.active
                .cmp(&a.active)
                .then(b.set_at.cmp(&a.set_at))
                .then_with(|| a.closure.closure_id.cmp(&b.closure.closure_id))
        });
        Ok(views)
    }

    /// Views of `closures` (every stored closure) at `now`, with the segments each closes
    /// on this pack.
    ///
    /// The router is re-contracted for the active ones if they changed; it maps a closure
    /// to segments once (when it becomes active or its shape changes) and the counts of
    /// the active ones are read off it, so the router lock is held for a lookup only. A
    /// closure not active now (lifted or ended) is not mapped: it shows the count it had
    /// when this console last routed with it active, for the same shape
    /// ([`RoutingState::closure_counts`]), else 0 (e.g. it arrived already lifted).
    fn closure_views(&self, closures: Vec<Stored>, now: DateTime<Utc>) -> Vec<RoadClosureView> {
        let active = Active::at(&closures, now);
        let counts: HashMap<String, u32> = self
            .with_router(Some(&active), |router| {
                active
                    .shapes
                    .iter()
                    .map(|(id, _)| {
                        let n = router.active_closure_segments(id).map_or(0, <[usize]>::len);
                        (id.clone(), to_u32(n))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut known = lock(&self.routing.closure_counts);
        let stored: HashSet<Uuid> = closures.iter().map(|s| s.closure.closure_id).collect();
        known.retain(|id, _| stored.contains(id));
        closures
            .into_iter()
            .map(|s| {
                let id = s.closure.closure_id;
                let is_active = s.closure.is_active(now);
                let closed_segments = if is_active {
                    match counts.get(&id.to_string()) {
                        Some(&n) => {
                            if !known
                                .get(&id)
                                .is_some_and(|(shape, m)| *m == n && *shape == s.closure.shape)
                            {
                                known.insert(id, (s.closure.shape.clone(), n));
                            }
                            n
                        }
                        None => 0,
                    }
                } else {
                    known
                        .get(&id)
                        .filter(|(shape, _)| *shape == s.closure.shape)
                        .map_or(0, |(_, n)| *n)
                };
                RoadClosureView {
                    active: is_active,
                    closure: s.closure,
                    set_by: s.set_by,
                    set_at: s.set_at,
                    closed_segments,
                }
            })
            .collect()
    }

    /// How many closure shapes this console's router has mapped to road segments (each
    /// closure once when it becomes active or its shape changes; 0 before the router is
    /// built). Diagnostics: listing closures must not add to it.
    pub fn closure_shapes_mapped(&self) -> u64 {
        lock(&self.routing.inner)
            .as_ref()
            .map_or(0, |cache| cache.router.shapes_mapped())
    }

    /// The stored closure `id` as a view (after a write).
    fn closure_view(&self, id: Uuid) -> Result<RoadClosureView, AppError> {
        let now = self.now();
        let closures = self.stored_closures()?;
        self.closure_views(closures, now)
            .into_iter()
            .find(|v| v.closure.closure_id == id)
            .ok_or_else(|| AppError::not_found(format!("road closure {id} does not exist")))
    }

    /// Draws a closure (or changes one): one `road_closure.set` op, on disk before this
    /// returns; routing on this console avoids it at once, on others when the op arrives.
    /// A new closure gets a UUIDv7 id; a changed one keeps its id. Lifting is final
    /// (`outpost_domain::road_closure`): a lifted closure is never changed or reactivated;
    /// to close the road again, draw a new closure. The reason is trimmed.
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::InvalidInput`] for a bad shape or reason (the message says
    /// which point or field), a shape that closes no drivable road of the open pack or an expected end not after now, NotFound for an unknown
    /// `closure_id`, IllegalTransition for a lifted one ("closure X was lifted by USER at
    /// TIME; draw a new closure", TIME in RFC 3339 UTC). Nothing is written then.
    pub fn set_road_closure(&self, args: NewRoadClosure) -> Result<RoadClosureView, AppError> {
        let now = self.now();
        let closure_id = match &args.closure_id {
            None => new_closure_id(now),
            Some(text) => parse_closure_id(text)?,
        };
        let closure = RoadClosure {
            closure_id,
            shape: args.shape,
            reason: args.reason.trim().to_string(),
            ends_at: args.ends_at,
            lifted: false,
        };
        closure.check().map_err(AppError::invalid)?;
        if let Some(end) = closure.ends_at
            && end <= now
        {
            return Err(AppError::invalid(format!(
                "ends_at: the expected end is already past ({} is not after now, {})",
                end.to_rfc3339(),
                now.to_rfc3339()
            )));
        }
        // A closure that closes no road of this console's pack (a line beside the roads, in
        // another city) would be listed as active while routing ignores it: refuse it here.
        // Without a pack there is nothing to check against; closures from other consoles
        // are applied whatever they close.
        if let Ok(0) = self.with_router(None, |r| r.closed_segments(&closure.shape).len()) {
            return Err(AppError::invalid(
                "shape: this closure closes no drivable road of the area pack; draw the line \
                 along a road or the area around one",
            ));
        }
        let change = args.closure_id.is_some();
        self.act(
            |c| {
                if change {
                    let Some(shown) = closures::road_closure(c, closure_id)? else {
                        return Err(AppError::not_found(format!(
                            "road closure {closure_id} does not exist"
                        )));
                    };
                    if shown.closure.lifted {
                        return Err(AppError::illegal(format!(
                            "closure {closure_id} was lifted by {} at {}; draw a new closure",
                            shown.set_by,
                            shown.set_at.to_rfc3339()
                        )));
                    }
                }
                Ok(OpBody::RoadClosureSet { closure })
            },
            |_, _| Ok(()),
        )?;
        self.closure_view(closure_id)
    }

    /// Lifts a closure (a `road_closure.set` with `lifted: true`); one already lifted is
    /// returned unchanged and nothing is written.
    ///
    /// # Errors
    /// NotFound for an unknown closure.
    pub fn lift_road_closure(&self, args: ClosureRef) -> Result<RoadClosureView, AppError> {
        let id = parse_closure_id(&args.closure_id)?;
        let missing = || AppError::not_found(format!("road closure {id} does not exist"));
        let current = {
            let handle = self.store_handle();
            let store = lock(&handle);
            store.road_closure(id)?.ok_or_else(missing)?
        };
        if !current.closure.lifted {
            self.act(
                |c| {
                    // The value shown now (a change pulled meanwhile is kept), lifted.
                    let mut closure = closures::road_closure(c, id)?.ok_or_else(missing)?.closure;
                    closure.lifted = true;
                    Ok(OpBody::RoadClosureSet { closure })
                },
                |_, _| Ok(()),
            )?;
        }
        self.closure_view(id)
    }

    /// The road line through points clicked along a road (each snapped to the nearest
    /// drivable road), for drawing a closed road.
    ///
    /// # Errors
    /// InvalidInput for fewer than 2 or more than 50 points, a point that is not a WGS-84
    /// position, or a point farther than `outpost_geo::routing::MAX_SNAP_M` from any
    /// drivable road (the message names the point by index and says how far);
    /// [`crate::ipc::ErrorCode::Pack`] when there is no road network.
    pub fn road_line(&self, args: RoadLineQuery) -> Result<Vec<LatLon>, AppError> {
        let points = args.points;
        if !ROAD_LINE_POINTS.contains(&points.len()) {
            return Err(AppError::invalid(format!(
                "points: a road line needs {} to {} points along the road, not {}",
                ROAD_LINE_POINTS.start(),
                ROAD_LINE_POINTS.end(),
                points.len()
            )));
        }
        for (i, p) in points.iter().enumerate() {
            LatLon::new(p.lat, p.lon)
                .map_err(|e| AppError::invalid(format!("points[{i}]: {e}")))?;
        }
        let line = self
            .with_router(None, |router| router.graph().road_line(&points))
            .map_err(AppError::pack)?;
        let line = line.map_err(|e| match e {
            RoutingError::TooFarFromRoad {
                lat,
                lon,
                nearest_m,
                max_m,
            } => {
                let which = points
                    .iter()
                    .position(|p| p.lat == lat && p.lon == lon)
                    .map_or_else(|| "a point".to_string(), |i| format!("points[{i}]"));
                AppError::invalid(format!(
                    "{which} ({lat:.6},{lon:.6}) is {nearest_m:.0} m from the nearest drivable \
                     road; click on a road (at most {max_m:.0} m away)"
                ))
            }
            other => AppError::pack(other.to_string()),
        })?;
        // Identical clicks, or clicks that snap to one place (a lake beside one road), give
        // no stretch of road to close.
        let distinct = line.windows(2).any(|w| w[0].distance_m(&w[1]) > 1.0);
        if !distinct {
            return Err(AppError::invalid(
                "points: these points snap to the same place on the road; click further apart \
                 along it",
            ));
        }
        Ok(line)
    }
}
