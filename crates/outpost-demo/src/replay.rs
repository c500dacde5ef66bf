//! The replay engine: units on real roads, real call types at real arrival rhythms.
//!
//! [`Sim`] is the deterministic core: it is handed the simulated time on every
//! [`Sim::tick`] and acts only through a [`DemoConsole`], so tests drive it with a fake
//! console and explicit times. [`start_with`] runs it on a thread in real time.
//!
//! What it does, per unit kind (distances from the home facility):
//! - patrol cars and motorcycles drive shortest routes to random road nodes within
//!   [`DemoOptions::patrol_radius_m`] at 60 % of the class speed, pausing 10–40 s;
//! - traffic units do the same within half that radius and spend longer at their checkpoint;
//! - foot patrols walk within 400 m; post teams and the tactical team stay at home;
//! - the unit with `replays_track` drives to the start of the real GPX track, follows it,
//!   and returns home, over and over.
//!
//! Every call of the schedule becomes an incident at the midpoint of a random named road
//! segment near the roster's stations and posts, described as street + nearest named place.
//! A share of them ([`DemoOptions::auto_dispatch_share`]) is dispatched after
//! [`DemoOptions::dispatch_delay_s`] to the nearest available unit, which goes en route along
//! the roads at 1.25 × class speed, is on scene for 45–120 s, and closes the incident with a
//! disposition that fits its type. The rest wait for a person for
//! [`DemoOptions::left_for_person_s`]; if nobody has assigned a unit by then, the demo
//! dispatches them too, so an unattended demo never fills up with stale calls. Units that a
//! person dispatches and sets en route are driven to their incident. On a second launch the
//! demo's own open incidents from before are picked up again.

use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use outpost_app::ipc::NewIncident;
use outpost_domain::op::Fix;
use outpost_domain::{
    Clock, Disposition, Facility, FacilityKind, IncidentType, LatLon, UnitKind, UnitStatus,
};
use outpost_geo::RoadNetwork;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::calls::{CallRecord, ScheduleOptions, compress_schedule};
use crate::roster::{Roster, RosterUnit};
use crate::routing::{Mode, NamedSegment, RoadGraph, WALK_MPS, named_segments_near};
use crate::track::Polyline;

/// Speed factor over the class speed when en route to a call (lights and siren); patrols
/// drive at 0.6. Capped at 70 km/h (80 for motorcycles).
const EN_ROUTE_FACTOR: f64 = 1.25;

/// The user name demo actions are recorded under on a console that does not sync (on one
/// that does, the signed-in person's: [`DemoConsole::author`]).
pub const DEMO_USER: &str = "demo";

/// One unit as the console sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSnapshot {
    /// Unit id.
    pub unit_id: String,
    /// Current status.
    pub status: UnitStatus,
    /// Incident of the active assignment.
    pub incident_id: Option<String>,
}

/// One incident as the replay needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSnapshot {
    /// Where it is (WGS-84).
    pub location: LatLon,
    /// Who created it (the replay finishes only incidents created by its
    /// [`DemoConsole::author`]).
    pub created_by: String,
    /// True once closed.
    pub closed: bool,
    /// Its type.
    pub incident_type: IncidentType,
    /// How many units are actively assigned.
    pub assigned: usize,
}

/// What the replay needs from the console. Implemented for `outpost_app::Console` (so every
/// demo action is an ordinary use-case call with its domain checks and its op); tests use a
/// fake.
pub trait DemoConsole: Send + Sync + 'static {
    /// The console's error, shown in logs.
    type Error: Display;
    /// The user the replay's changes are recorded as ([`DEMO_USER`] unless the console says
    /// otherwise); the replay finishes only incidents this user created. Asked once, at start.
    fn author(&self) -> String {
        DEMO_USER.to_owned()
    }
    /// Registers (or re-registers, idempotently) a facility.
    fn register_facility(&self, facility: Facility) -> Result<(), Self::Error>;
    /// Registers (or re-registers, idempotently) a unit.
    fn register_unit(&self, unit: &RosterUnit) -> Result<(), Self::Error>;
    /// Records a position report.
    fn report_position(&self, unit_id: &str, fix: Fix) -> Result<(), Self::Error>;
    /// Creates an incident as [`DemoConsole::author`]; returns its id.
    fn create_incident(&self, args: NewIncident) -> Result<String, Self::Error>;
    /// Dispatches a unit to an incident.
    fn assign_unit(&self, incident_id: &str, unit_id: &str) -> Result<(), Self::Error>;
    /// Changes a unit's status (checked against the transition table).
    fn set_unit_status(&self, unit_id: &str, to: UnitStatus) -> Result<(), Self::Error>;
    /// Closes an incident, releasing its units.
    fn close_incident(
        &self,
        incident_id: &str,
        disposition: Disposition,
        summary: &str,
    ) -> Result<(), Self::Error>;
    /// Every unit's status and assignment.
    fn units(&self) -> Result<Vec<UnitSnapshot>, Self::Error>;
    /// Ids of the open (not closed) incidents, whoever created them.
    fn open_incidents(&self) -> Result<Vec<String>, Self::Error>;
    /// One incident, `None` if unknown.
    fn incident(&self, incident_id: &str) -> Result<Option<IncidentSnapshot>, Self::Error>;
    /// The open pack's road network; `None` without a pack.
    fn road_network(&self) -> Option<RoadNetwork>;
    /// "street, place" for a point; `None` without a pack.
    fn describe(&self, at: LatLon) -> Option<String>;
}

/// Knobs of the replay. `Default` is what `--demo` uses.
#[derive(Clone)]
pub struct DemoOptions {
    /// The source of fix times (UTC); the console's own clock in production.
    pub clock: Arc<dyn Clock>,
    /// The calls to replay (type and arrival rhythm); the Montgomery County sample by default.
    pub calls: Arc<Vec<CallRecord>>,
    /// How recorded gaps become demo delays.
    pub schedule: ScheduleOptions,
    /// Seconds after start before the first incident.
    pub first_call_after_s: f64,
    /// The real GPX track for the unit with `replays_track`; `None` leaves it on patrol.
    pub track: Option<Polyline>,
    /// Seconds between two position reports of a moving unit.
    pub report_every_s: f64,
    /// Seconds between two position reports of a parked unit.
    pub parked_report_every_s: f64,
    /// Real time between two simulation steps.
    pub tick: Duration,
    /// Simulated seconds per real second (1 = real time; tests speed it up).
    pub time_scale: f64,
    /// Share of incidents (0..=1) the demo dispatches itself; the rest wait for a person.
    pub auto_dispatch_share: f64,
    /// Seconds an incident stays pending before the demo dispatches it.
    pub dispatch_delay_s: f64,
    /// Seconds an incident left for a person stays pending before the demo dispatches it
    /// after all.
    pub left_for_person_s: f64,
    /// Patrol cars and motorcycles roam within this many metres of home.
    pub patrol_radius_m: f64,
    /// Incidents are placed on named streets within this many metres of a station or post
    /// (checkpoints stand on empty mountain roads and are left out).
    pub incident_radius_m: f64,
    /// The demo dispatches only units within this straight-line distance (metres); farther
    /// incidents wait for a closer unit to clear, or for a person.
    pub max_dispatch_distance_m: f64,
    /// No new call is created while this many incidents are open (the county's volume would
    /// otherwise bury a town of Andorra's size).
    pub max_open_incidents: usize,
    /// Random seed; `None` seeds from the clock so each launch differs.
    pub seed: Option<u64>,
}

impl std::fmt::Debug for DemoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOptions")
            .field("calls", &self.calls.len())
            .field("schedule", &self.schedule)
            .field("first_call_after_s", &self.first_call_after_s)
            .field("track", &self.track.as_ref().map(Polyline::length_m))
            .field("report_every_s", &self.report_every_s)
            .field("tick", &self.tick)
            .field("time_scale", &self.time_scale)
            .field("auto_dispatch_share", &self.auto_dispatch_share)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Default for DemoOptions {
    /// The built-in call sample and GPX track, the system clock, reports every 2 s (every
    /// 15 s when parked), the default call schedule, first call after 5 s, 80 %
    /// auto-dispatch after 20 s to units within 5 km, at most 10 open incidents, patrols
    /// within 2.5 km, incidents within 1.5 km of a station or post.
    fn default() -> Self {
        Self {
            clock: Arc::new(outpost_domain::SystemClock),
            calls: Arc::new(crate::calls::montco_calls().unwrap_or_default()),
            schedule: ScheduleOptions::default(),
            first_call_after_s: 5.0,
            track: crate::track::andorra_track().ok(),
            report_every_s: 2.0,
            parked_report_every_s: 15.0,
            tick: Duration::from_millis(250),
            time_scale: 1.0,
            auto_dispatch_share: 0.8,
            dispatch_delay_s: 20.0,
            left_for_person_s: 300.0,
            patrol_radius_m: 2500.0,
            incident_radius_m: 1500.0,
            max_dispatch_distance_m: 5000.0,
            max_open_incidents: 10,
            seed: None,
        }
    }
}

/// Counters of what the replay did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoStats {
    /// Facilities registered at start.
    pub facilities_registered: usize,
    /// Units registered at start.
    pub units_registered: usize,
    /// Position reports accepted by the console.
    pub positions_reported: u64,
    /// Incidents created.
    pub incidents_created: u64,
    /// Units the demo dispatched.
    pub dispatches: u64,
    /// Incidents the demo closed.
    pub incidents_closed: u64,
    /// Usable nodes of the driving graph (0 until built, or without a pack).
    pub road_nodes: usize,
    /// Console calls that failed (a person acted first, or a real error).
    pub errors: u64,
    /// The last few error messages, newest last.
    pub recent_errors: VecDeque<String>,
}

impl DemoStats {
    fn error(&mut self, msg: String) {
        tracing::debug!(target: "outpost_demo", "{msg}");
        self.errors += 1;
        self.recent_errors.push_back(msg);
        while self.recent_errors.len() > 20 {
            self.recent_errors.pop_front();
        }
    }
}

/// One leg of a unit's plan.
#[derive(Debug, Clone)]
enum Step {
    /// Follow a line at a speed (m/s).
    Go { line: Polyline, speed_mps: f64 },
    /// Stay put for this many seconds.
    Wait { secs: f64 },
}

/// Where a unit is with an incident.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// Assigned; goes en route shortly.
    Dispatched { since: f64 },
    /// Driving there.
    EnRoute,
    /// There, until the time given (only for the demo's own incidents).
    OnScene { until: f64 },
    /// A person's assignment that the demo only moves (never changes status); `driving`
    /// once it has been sent on its way.
    Follow {
        /// A drive to the incident has been planned.
        driving: bool,
    },
}

#[derive(Debug, Clone)]
struct Job {
    incident_id: String,
    location: LatLon,
    incident_type: IncidentType,
    stage: Stage,
    /// Created by the demo, so the demo may change statuses and close it.
    ours: bool,
}

#[derive(Debug)]
struct UnitSim {
    id: String,
    kind: UnitKind,
    home: LatLon,
    replays_track: bool,
    pos: LatLon,
    heading_deg: Option<f64>,
    speed_mps: f64,
    plan: VecDeque<Step>,
    /// Start time of `plan[0]`.
    step_started: f64,
    next_report: f64,
    status: UnitStatus,
    job: Option<Job>,
    /// Out of service or busy: sent home and parked.
    benched: bool,
}

impl UnitSim {
    fn moving(&self) -> bool {
        matches!(self.plan.front(), Some(Step::Go { .. }))
    }
}

/// An incident the demo created and may dispatch.
#[derive(Debug, Clone)]
struct PendingDispatch {
    incident_id: String,
    location: LatLon,
    incident_type: IncidentType,
    at: f64,
}

/// The deterministic replay core; see the module doc.
pub struct Sim<C: DemoConsole> {
    console: Arc<C>,
    opts: DemoOptions,
    rng: StdRng,
    units: Vec<UnitSim>,
    anchors: Vec<LatLon>,
    drive: Option<RoadGraph>,
    walk: Option<RoadGraph>,
    spots: Vec<NamedSegment>,
    delays: Vec<f64>,
    call_index: usize,
    next_call_at: f64,
    dispatches: Vec<PendingDispatch>,
    next_sync: f64,
    resumed: bool,
    stats: Arc<Mutex<DemoStats>>,
    /// [`DemoConsole::author`], asked at start.
    author: String,
}

impl<C: DemoConsole> Sim<C> {
    /// Registers the roster and reports every unit at its home facility (so the map shows
    /// every unit at once). Roads are not loaded yet: call [`Sim::load_roads`].
    pub fn new(console: Arc<C>, roster: &Roster, opts: DemoOptions) -> Sim<C> {
        let seed = opts
            .seed
            .unwrap_or_else(|| opts.clock.now().timestamp_micros() as u64);
        let mut rng = StdRng::seed_from_u64(seed);
        let stats = Arc::new(Mutex::new(DemoStats::default()));
        let delays = compress_schedule(&opts.calls, opts.schedule);
        let call_index = if opts.calls.is_empty() {
            0
        } else {
            rng.random_range(0..opts.calls.len())
        };
        let author = console.author();
        let mut sim = Sim {
            console,
            author,
            rng,
            units: Vec::new(),
            anchors: roster
                .facilities
                .iter()
                .filter(|f| f.kind != FacilityKind::Checkpoint)
                .map(|f| f.position)
                .collect(),
            drive: None,
            walk: None,
            spots: Vec::new(),
            delays,
            call_index,
            next_call_at: opts.first_call_after_s,
            dispatches: Vec::new(),
            next_sync: 0.0,
            resumed: false,
            stats,
            opts,
        };
        sim.register(roster);
        sim
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, DemoStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A shared view of the counters.
    pub fn stats_handle(&self) -> Arc<Mutex<DemoStats>> {
        Arc::clone(&self.stats)
    }

    fn register(&mut self, roster: &Roster) {
        for f in &roster.facilities {
            match self.console.register_facility(f.to_facility()) {
                Ok(()) => self.stats().facilities_registered += 1,
                Err(e) => self
                    .stats()
                    .error(format!("register facility {}: {e}", f.id)),
            }
        }
        for u in &roster.units {
            let Some(home) = roster.home_of(u) else {
                continue; // validated rosters always have a home
            };
            match self.console.register_unit(u) {
                Ok(()) => self.stats().units_registered += 1,
                Err(e) => {
                    self.stats().error(format!("register unit {}: {e}", u.id));
                    continue;
                }
            }
            self.units.push(UnitSim {
                id: u.id.clone(),
                kind: u.kind,
                home,
                replays_track: u.replays_track,
                pos: home,
                heading_deg: None,
                speed_mps: 0.0,
                plan: VecDeque::new(),
                step_started: 0.0,
                next_report: 0.0,
                status: UnitStatus::Available,
                job: None,
                benched: false,
            });
        }
        // The first report of every unit, at home, now; later reports spread over the
        // interval so the console sees a steady trickle rather than bursts of 22 writes.
        let n = self.units.len().max(1) as f64;
        for i in 0..self.units.len() {
            self.report(i, 0.0);
            self.units[i].next_report = self.opts.report_every_s * i as f64 / n;
        }
    }

    /// Loads the road network from the console's pack and builds the routing graphs.
    /// Without a pack units stay at home and incidents are placed at facilities.
    pub fn load_roads(&mut self) {
        let Some(net) = self.console.road_network() else {
            return;
        };
        let drive = RoadGraph::new(&net, Mode::Drive);
        let walk = RoadGraph::new(&net, Mode::Walk);
        self.spots = named_segments_near(&net, &self.anchors, self.opts.incident_radius_m);
        self.stats().road_nodes = drive.size();
        if drive.size() > 1 {
            self.drive = Some(drive);
        }
        if walk.size() > 1 {
            self.walk = Some(walk);
        }
    }

    /// Advances the replay to simulated time `t` (seconds since start): moves units, reports
    /// positions that are due, creates incidents that are due, runs the demo's dispatches.
    pub fn tick(&mut self, t: f64) {
        if !self.resumed {
            self.resumed = true;
            self.resume_open_incidents(t);
        }
        if t >= self.next_sync {
            self.sync(t);
            self.next_sync = t + 2.0;
        }
        while !self.opts.calls.is_empty() && t >= self.next_call_at {
            self.create_next_incident(t);
        }
        self.run_dispatches(t);
        for i in 0..self.units.len() {
            self.advance(i, t);
            if t >= self.units[i].next_report {
                self.report(i, t);
            }
        }
    }

    fn report(&mut self, i: usize, t: f64) {
        let u = &mut self.units[i];
        let moving = u.moving();
        let fix = Fix {
            position: u.pos,
            fix_time: self.opts.clock.now(),
            heading_deg: if moving { u.heading_deg } else { None },
            speed_mps: Some(if moving { u.speed_mps } else { 0.0 }),
            accuracy_m: Some(5.0),
        };
        u.next_report = t + if moving {
            self.opts.report_every_s
        } else {
            self.opts.parked_report_every_s
        };
        let id = u.id.clone();
        match self.console.report_position(&id, fix) {
            Ok(()) => self.stats().positions_reported += 1,
            Err(e) => self.stats().error(format!("report position of {id}: {e}")),
        }
    }

    /// After a restart: the demo's own open incidents that no unit serves go back into the
    /// dispatch queue (units already assigned are picked up by [`Sim::sync`]).
    fn resume_open_incidents(&mut self, t: f64) {
        let ids = match self.console.open_incidents() {
            Ok(ids) => ids,
            Err(e) => {
                self.stats().error(format!("list open incidents: {e}"));
                return;
            }
        };
        for id in ids {
            match self.console.incident(&id) {
                Ok(Some(s)) if s.created_by == self.author && !s.closed && s.assigned == 0 => {
                    self.dispatches.push(PendingDispatch {
                        incident_id: id,
                        location: s.location,
                        incident_type: s.incident_type,
                        at: t + self.opts.dispatch_delay_s,
                    });
                }
                Ok(_) => {}
                Err(e) => self.stats().error(format!("read incident {id}: {e}")),
            }
        }
    }

    /// Reads the console's view of every unit and adopts what a person changed.
    fn sync(&mut self, t: f64) {
        let snaps = match self.console.units() {
            Ok(s) => s,
            Err(e) => {
                self.stats().error(format!("read units: {e}"));
                return;
            }
        };
        let by_id: HashMap<&str, &UnitSnapshot> =
            snaps.iter().map(|s| (s.unit_id.as_str(), s)).collect();
        for i in 0..self.units.len() {
            let Some(s) = by_id.get(self.units[i].id.as_str()) else {
                continue;
            };
            let (status, incident) = (s.status, s.incident_id.clone());
            let u = &mut self.units[i];
            u.status = status;
            match status {
                UnitStatus::Available => {
                    u.benched = false;
                    if u.job.is_some() {
                        // Released or closed by a person: back to patrol.
                        u.job = None;
                        u.plan.clear();
                    }
                }
                UnitStatus::Busy | UnitStatus::OutOfService => {
                    if !u.benched {
                        u.benched = true;
                        u.job = None;
                        u.plan.clear();
                    }
                }
                UnitStatus::Dispatched | UnitStatus::EnRoute | UnitStatus::OnScene => {
                    let Some(incident_id) = incident else {
                        continue;
                    };
                    let known = u.job.as_ref().is_some_and(|j| j.incident_id == incident_id);
                    if !known {
                        self.adopt(i, &incident_id, status, t);
                        continue;
                    }
                    // A person set their unit en route: drive it there, once.
                    let follow_to = match &mut u.job {
                        Some(Job {
                            stage: Stage::Follow { driving },
                            location,
                            ..
                        }) if !*driving && status != UnitStatus::Dispatched => {
                            *driving = true;
                            Some(*location)
                        }
                        _ => None,
                    };
                    if let Some(to) = follow_to {
                        let from = u.pos;
                        u.plan.clear();
                        u.step_started = t;
                        self.plan_drive(i, from, to, EN_ROUTE_FACTOR);
                    }
                }
            }
        }
    }

    /// Takes over a unit that is committed to an incident the demo did not plan: after a
    /// restart (a demo incident) or a person's dispatch (moved only).
    fn adopt(&mut self, i: usize, incident_id: &str, status: UnitStatus, t: f64) {
        let snap = match self.console.incident(incident_id) {
            Ok(Some(s)) if !s.closed => s,
            Ok(_) => return,
            Err(e) => {
                self.stats()
                    .error(format!("read incident {incident_id}: {e}"));
                return;
            }
        };
        let ours = snap.created_by == self.author;
        let stage = match (ours, status) {
            (true, UnitStatus::Dispatched) => Stage::Dispatched { since: t },
            (true, _) => Stage::EnRoute,
            (false, s) => Stage::Follow {
                driving: s != UnitStatus::Dispatched,
            },
        };
        let u = &mut self.units[i];
        u.plan.clear();
        u.step_started = t;
        u.job = Some(Job {
            incident_id: incident_id.to_string(),
            location: snap.location,
            incident_type: snap.incident_type,
            stage: stage.clone(),
            ours,
        });
        if stage == Stage::EnRoute || stage == (Stage::Follow { driving: true }) {
            let from = self.units[i].pos;
            self.plan_drive(i, from, snap.location, EN_ROUTE_FACTOR);
        }
    }

    fn create_next_incident(&mut self, t: f64) {
        let n = self.opts.calls.len();
        let call = self.opts.calls[self.call_index % n].clone();
        let delay = self
            .delays
            .get(self.call_index % n)
            .copied()
            .unwrap_or_else(|| self.wrap_delay());
        self.call_index = (self.call_index + 1) % n;
        self.next_call_at += delay.max(0.5);
        match self.console.open_incidents() {
            Ok(open) if open.len() >= self.opts.max_open_incidents => return,
            Ok(_) => {}
            Err(e) => self.stats().error(format!("count open incidents: {e}")),
        }

        let (location, street) = self.incident_spot();
        let address = self
            .console
            .describe(location)
            .filter(|a| !a.trim().is_empty())
            .unwrap_or(street);
        let incident_type = call.incident_type();
        let args = NewIncident {
            incident_type,
            priority: None,
            location,
            address,
            description: format!(
                "{} — 演示回放 / demo replay of a Montgomery County 911 call of {}",
                call.clean_title(),
                call.at.format("%Y-%m-%d %H:%M")
            ),
        };
        match self.console.create_incident(args) {
            Ok(id) => {
                self.stats().incidents_created += 1;
                let wait = if self
                    .rng
                    .random_bool(self.opts.auto_dispatch_share.clamp(0.0, 1.0))
                {
                    self.opts.dispatch_delay_s
                } else {
                    self.opts.left_for_person_s
                };
                self.dispatches.push(PendingDispatch {
                    incident_id: id,
                    location,
                    incident_type,
                    at: t + wait,
                });
            }
            Err(e) => self.stats().error(format!("create incident: {e}")),
        }
    }

    /// The pause after the last call before the sample starts over: one cut gap.
    fn wrap_delay(&self) -> f64 {
        let sched = self.opts.schedule;
        let speedup = if sched.speedup.is_finite() && sched.speedup > 0.0 {
            sched.speedup
        } else {
            1.0
        };
        (sched.max_gap_s / speedup).max(sched.min_delay_s).max(1.0)
    }

    /// A real point on a named street near the roster, and the street's name.
    fn incident_spot(&mut self) -> (LatLon, String) {
        if !self.spots.is_empty() {
            let s = &self.spots[self.rng.random_range(0..self.spots.len())];
            return (s.midpoint, s.name.clone());
        }
        // No pack: beside a random facility.
        let a = match self.anchors.len() {
            0 => LatLon { lat: 0.0, lon: 0.0 },
            n => self.anchors[self.rng.random_range(0..n)],
        };
        let p = LatLon {
            lat: a.lat + self.rng.random_range(-0.002..0.002),
            lon: a.lon + self.rng.random_range(-0.002..0.002),
        };
        (p, format!("{:.5}, {:.5}", p.lat, p.lon))
    }

    fn run_dispatches(&mut self, t: f64) {
        let due: Vec<PendingDispatch> = {
            let (due, later): (Vec<_>, Vec<_>) = self.dispatches.drain(..).partition(|d| t >= d.at);
            self.dispatches = later;
            due
        };
        for mut d in due {
            // A person may have acted meanwhile: closed it, or sent a unit.
            match self.console.incident(&d.incident_id) {
                Ok(Some(s)) if !s.closed && s.assigned == 0 => {}
                Ok(_) => continue,
                Err(e) => {
                    self.stats()
                        .error(format!("read incident {}: {e}", d.incident_id));
                    continue;
                }
            }
            let Some(i) = self.nearest_available(d.location, d.incident_type) else {
                // Everyone is busy or far: try again when someone may have cleared.
                d.at = t + 15.0;
                self.dispatches.push(d);
                continue;
            };
            let unit_id = self.units[i].id.clone();
            match self.console.assign_unit(&d.incident_id, &unit_id) {
                Ok(()) => {
                    self.stats().dispatches += 1;
                    let u = &mut self.units[i];
                    u.status = UnitStatus::Dispatched;
                    u.plan.clear();
                    u.step_started = t;
                    u.job = Some(Job {
                        incident_id: d.incident_id,
                        location: d.location,
                        incident_type: d.incident_type,
                        stage: Stage::Dispatched { since: t },
                        ours: true,
                    });
                }
                Err(e) => self
                    .stats()
                    .error(format!("assign {unit_id} to {}: {e}", d.incident_id)),
            }
        }
    }

    /// The nearest unit the demo may send: available, not benched, within
    /// [`DemoOptions::max_dispatch_distance_m`], of a kind that answers the call (traffic
    /// units only for traffic calls, the tactical team only for assaults, foot patrols
    /// within 1 km, post teams never: they keep their post).
    fn nearest_available(&self, at: LatLon, incident_type: IncidentType) -> Option<usize> {
        self.units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.status == UnitStatus::Available && u.job.is_none() && !u.benched)
            .filter(|(_, u)| u.pos.distance_m(&at) <= self.opts.max_dispatch_distance_m)
            .filter(|(_, u)| match u.kind {
                UnitKind::PatrolCar | UnitKind::Motorcycle => true,
                UnitKind::Traffic => matches!(
                    incident_type,
                    IncidentType::TrafficAccident | IncidentType::TrafficHazard
                ),
                UnitKind::FootPatrol => u.pos.distance_m(&at) <= 1000.0,
                UnitKind::Tactical => incident_type == IncidentType::Assault,
                UnitKind::PostTeam => false,
            })
            .map(|(i, u)| (i, u.pos.distance_m(&at)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// Moves unit `i` to time `t` along its plan, making a new plan when it runs out.
    fn advance(&mut self, i: usize, t: f64) {
        // At most a few steps per tick (a zero-length step must not spin forever).
        for _ in 0..8 {
            if self.units[i].plan.is_empty() {
                self.next_plan(i, t);
                if self.units[i].plan.is_empty() {
                    self.units[i].speed_mps = 0.0;
                    return;
                }
            }
            let u = &mut self.units[i];
            let elapsed = t - u.step_started;
            let done = match u.plan.front() {
                Some(Step::Go { line, speed_mps }) => {
                    let p = line.at_time(*speed_mps, elapsed);
                    u.pos = p.position;
                    if p.heading_deg.is_some() {
                        u.heading_deg = p.heading_deg;
                    }
                    u.speed_mps = *speed_mps;
                    if p.at_end {
                        Some(if *speed_mps > 0.0 {
                            line.length_m() / speed_mps
                        } else {
                            0.0
                        })
                    } else {
                        None
                    }
                }
                Some(Step::Wait { secs }) => {
                    u.speed_mps = 0.0;
                    (elapsed >= *secs).then_some(*secs)
                }
                None => None,
            };
            match done {
                Some(took) => {
                    u.plan.pop_front();
                    u.step_started += took.min(elapsed).max(0.0);
                    if u.plan.is_empty() {
                        u.step_started = t;
                        self.on_plan_done(i, t);
                    }
                }
                None => return,
            }
        }
    }

    /// A plan ran out: move the incident job on (arrival, on scene, clear).
    fn on_plan_done(&mut self, i: usize, t: f64) {
        let Some(job) = self.units[i].job.clone() else {
            return;
        };
        let unit_id = self.units[i].id.clone();
        match job.stage {
            Stage::EnRoute if job.ours => {
                match self.console.set_unit_status(&unit_id, UnitStatus::OnScene) {
                    Ok(()) => {
                        let dwell = self.rng.random_range(45.0..120.0);
                        let u = &mut self.units[i];
                        u.status = UnitStatus::OnScene;
                        if let Some(j) = &mut u.job {
                            j.stage = Stage::OnScene { until: t + dwell };
                        }
                        u.plan.push_back(Step::Wait { secs: dwell });
                    }
                    Err(e) => {
                        self.stats().error(format!("{unit_id} on scene: {e}"));
                        self.units[i].job = None;
                    }
                }
            }
            Stage::OnScene { until } if job.ours && t >= until => {
                let disposition = disposition_for(job.incident_type);
                match self.console.close_incident(
                    &job.incident_id,
                    disposition,
                    "演示：现场处置完毕 / Demo: handled on scene",
                ) {
                    Ok(()) => {
                        self.stats().incidents_closed += 1;
                        self.units[i].status = UnitStatus::Available;
                    }
                    Err(e) => self
                        .stats()
                        .error(format!("close {}: {e}", job.incident_id)),
                }
                self.units[i].job = None;
            }
            _ => {}
        }
    }

    /// Chooses what unit `i` does next when its plan is empty.
    fn next_plan(&mut self, i: usize, t: f64) {
        self.units[i].step_started = t;
        if let Some(job) = self.units[i].job.clone() {
            match job.stage {
                Stage::Dispatched { since } if job.ours => {
                    if t - since < 3.0 {
                        self.units[i].plan.push_back(Step::Wait {
                            secs: 3.0 - (t - since),
                        });
                        return;
                    }
                    let unit_id = self.units[i].id.clone();
                    match self.console.set_unit_status(&unit_id, UnitStatus::EnRoute) {
                        Ok(()) => {
                            self.units[i].status = UnitStatus::EnRoute;
                            if let Some(j) = &mut self.units[i].job {
                                j.stage = Stage::EnRoute;
                            }
                            let from = self.units[i].pos;
                            self.plan_drive(i, from, job.location, EN_ROUTE_FACTOR);
                            if self.units[i].plan.is_empty() {
                                // No road: arrive at once.
                                self.units[i].pos = job.location;
                                self.on_plan_done(i, t);
                            }
                        }
                        Err(e) => {
                            self.stats().error(format!("{unit_id} en route: {e}"));
                            self.units[i].job = None;
                        }
                    }
                }
                // Waiting for a person, or arrived and holding.
                _ => self.units[i].plan.push_back(Step::Wait { secs: 5.0 }),
            }
            return;
        }
        let (kind, home, pos) = (self.units[i].kind, self.units[i].home, self.units[i].pos);
        if self.units[i].benched {
            if pos.distance_m(&home) > 30.0 {
                self.plan_drive(i, pos, home, 0.6);
            }
            if self.units[i].plan.is_empty() {
                self.units[i].pos = home;
                self.units[i].plan.push_back(Step::Wait { secs: 30.0 });
            }
            return;
        }
        if self.units[i].replays_track
            && let Some(track) = self.opts.track.clone()
        {
            // Out to the track, along it, back home, rest.
            self.plan_drive(i, pos, track.start(), 0.7);
            self.units[i].plan.push_back(Step::Go {
                line: track.clone(),
                speed_mps: 30.0 / 3.6,
            });
            self.plan_drive(i, track.end(), home, 0.7);
            self.units[i].plan.push_back(Step::Wait { secs: 60.0 });
            return;
        }
        match kind {
            UnitKind::PostTeam | UnitKind::Tactical => {
                if pos.distance_m(&home) > 30.0 {
                    self.plan_drive(i, pos, home, 0.6);
                }
                self.units[i].plan.push_back(Step::Wait { secs: 60.0 });
            }
            UnitKind::FootPatrol => {
                let target = self.random_point_near(Mode::Walk, home, 400.0);
                if let Some(target) = target {
                    self.plan_walk(i, pos, target, WALK_MPS);
                }
                let pause = self.rng.random_range(20.0..60.0);
                self.units[i].plan.push_back(Step::Wait { secs: pause });
            }
            UnitKind::PatrolCar | UnitKind::Motorcycle | UnitKind::Traffic => {
                let radius = if kind == UnitKind::Traffic {
                    self.opts.patrol_radius_m / 2.0
                } else {
                    self.opts.patrol_radius_m
                };
                // Traffic units go back to their checkpoint every other leg and stay a while.
                let at_home = pos.distance_m(&home) < 50.0;
                let target = if kind == UnitKind::Traffic && !at_home && self.rng.random_bool(0.5) {
                    Some(home)
                } else {
                    self.random_point_near(Mode::Drive, home, radius)
                };
                if let Some(target) = target {
                    self.plan_drive(i, pos, target, 0.6);
                }
                let pause = if kind == UnitKind::Traffic && target == Some(home) {
                    self.rng.random_range(60.0..180.0)
                } else {
                    self.rng.random_range(10.0..40.0)
                };
                self.units[i].plan.push_back(Step::Wait { secs: pause });
            }
        }
    }

    fn random_point_near(&mut self, mode: Mode, center: LatLon, radius_m: f64) -> Option<LatLon> {
        let g = match mode {
            Mode::Drive => self.drive.as_ref()?,
            Mode::Walk => self.walk.as_ref()?,
        };
        let n = g.random_node_near(center, radius_m, &mut self.rng)?;
        g.position(n)
    }

    /// Appends a drive from `a` to `b` at `factor` × class speed ([`EN_ROUTE_FACTOR`] to a call).
    /// Foot patrols walk instead (hurrying at 2 m/s when en route).
    fn plan_drive(&mut self, i: usize, a: LatLon, b: LatLon, factor: f64) {
        if self.units[i].kind == UnitKind::FootPatrol {
            let speed = if factor >= EN_ROUTE_FACTOR {
                2.0
            } else {
                WALK_MPS
            };
            return self.plan_walk(i, a, b, speed);
        }
        let Some(route) = self.drive.as_ref().and_then(|g| g.route_between(a, b)) else {
            return;
        };
        let cap = match self.units[i].kind {
            UnitKind::Motorcycle => 80.0,
            _ => 70.0,
        } / 3.6;
        let speed = (route.mean_speed_mps() * factor).clamp(2.0, cap);
        self.units[i].plan.push_back(Step::Go {
            line: route.line,
            speed_mps: speed,
        });
    }

    fn plan_walk(&mut self, i: usize, a: LatLon, b: LatLon, speed_mps: f64) {
        if let Some(route) = self.walk.as_ref().and_then(|g| g.route_between(a, b)) {
            self.units[i].plan.push_back(Step::Go {
                line: route.line,
                speed_mps,
            });
        }
    }

    /// Positions of the units now, by id (for tests and logs).
    pub fn positions(&self) -> Vec<(String, LatLon)> {
        self.units.iter().map(|u| (u.id.clone(), u.pos)).collect()
    }
}

/// The disposition the demo closes its own incidents with.
pub fn disposition_for(t: IncidentType) -> Disposition {
    use IncidentType::*;
    match t {
        Medical => Disposition::Transported,
        Fire | FloodRescue => Disposition::Referred,
        Alarm => Disposition::FalseAlarm,
        TrafficAccident | Theft => Disposition::ReportTaken,
        Assault => Disposition::Arrest,
        TrafficHazard | Disturbance | MissingPerson | PublicService => Disposition::Resolved,
        Other => Disposition::NoActionRequired,
    }
}

/// A running replay. Stops (and joins its thread) on [`DemoHandle::stop`] or drop.
#[derive(Debug)]
pub struct DemoHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<DemoStats>>,
}

impl DemoHandle {
    /// A copy of the counters now.
    pub fn stats(&self) -> DemoStats {
        self.stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Stops the replay and waits for its thread (at most one tick).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// True until stopped (or the thread ended).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for DemoHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registers the roster, reports every unit at home (both before returning), then runs the
/// replay on a thread named `outpost-demo` in real time × [`DemoOptions::time_scale`].
pub fn start_with<C: DemoConsole>(
    console: Arc<C>,
    roster: Roster,
    opts: DemoOptions,
) -> DemoHandle {
    let tick = opts.tick.max(Duration::from_millis(10));
    let scale = if opts.time_scale.is_finite() && opts.time_scale > 0.0 {
        opts.time_scale
    } else {
        1.0
    };
    let mut sim = Sim::new(console, &roster, opts);
    let stats = sim.stats_handle();
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("outpost-demo".into())
        .stack_size(8 << 20)
        .spawn(move || {
            sim.load_roads();
            let started = Instant::now();
            // A message or a dropped sender stops it; a timeout is the next tick.
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(tick) {
                sim.tick(started.elapsed().as_secs_f64() * scale);
            }
        });
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            if let Ok(mut s) = stats.lock() {
                s.error(format!("cannot start the demo thread: {e}"));
            }
            None
        }
    };
    DemoHandle {
        stop: Some(tx),
        thread,
        stats,
    }
}
