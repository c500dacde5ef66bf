//! [`Console`]: the use-cases behind every IPC command, plus the roster and position calls of
//! the demo replay.
//!
//! Every state-changing method is one SQLite transaction (through
//! [`outpost_store::Store::write`]) that checks the domain rules, changes the state tables
//! and appends the op to the outbox; it is committed before the method returns. After the
//! commit the revision counter goes up and the [`Console::on_change`] callbacks run (outside
//! the database lock, so a callback may read the console).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{Duration, Local};
use rusqlite::Connection;
use uuid::Uuid;

use outpost_domain::access::{self, Actor, Role};
use outpost_domain::clock::Clock;
use outpost_domain::facility::Facility;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{MAX_ADDRESS_CHARS, MAX_TEXT_CHARS};
use outpost_domain::op::{Fix, IncidentFields, OpBody, OpEnvelope, Release};
use outpost_domain::unit::{StatusError, UnitKind, UnitStatus};
use outpost_geo::{Pack, PackError};
use outpost_store::query::{self, IncidentRow, UnitRow};
use outpost_store::{CacheKey, Store};

use crate::error::AppError;
use crate::ipc::{
    AddNote, AssignmentView, CloseIncident, ConflictView, ConsoleInit, ConsoleState, ErrorCode,
    IncidentDetail, IncidentRef, IncidentSummary, Language, LocationDescription, NewIncident,
    PackInfo, PackProblem, ParkedOp, PlaceHit, PlaceQuery, ResolveConflict, STALE_AFTER_S_MAX,
    STALE_AFTER_S_MIN, SetUnitStatus, Settings, Startup, SyncStatus, Theme, TimelineEntry,
    UnitOnIncident, UnitView, UpdateIncident,
};
use crate::ipc::{
    BindDevice, DeviceView, ExportTrack, ExportedTrack, FieldView, GpsStatus, MAX_TRACK_POINTS,
    Track, TrackFormat, TrackQuery,
};
use crate::ipc::{ConflictSide as IpcConflictSide, LaneCounts, SyncState};
use crate::sync::SyncLink;
use outpost_domain::merge::{ConflictId, Register};
use outpost_store::conflict::{Conflict, ConflictSide as StoreConflictSide};

/// The database file inside the data directory.
pub const DB_FILE: &str = "outpost.db";

/// Settings key of the last area pack opened successfully (absolute path).
pub const LAST_PACK_KEY: &str = "last_pack";

/// Settings key of the sync server's base URL (empty: work alone).
pub const SERVER_URL_KEY: &str = "server_url";

/// How long closed incidents stay in the queue, hours.
pub const CLOSED_VISIBLE_HOURS: i64 = 24;

/// How [`Console::open`] is configured (the shell fills it from the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleOptions {
    /// The area pack to open; `None` reopens the last pack used (stored in settings).
    pub pack: Option<PathBuf>,
    /// Per-user data directory; holds [`DB_FILE`]. Created if missing.
    pub data_dir: PathBuf,
    /// True when the demo replay runs (the UI says so).
    pub demo: bool,
    /// The logged-in user's name, written into every op and timeline entry.
    pub user: String,
}

/// Who a [`Console`] opened by sign-in acts for, and the key of its encrypted cache
/// ([`Console::open_signed_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleAccess {
    /// The signed-in person: every op is written as `actor.user` and refused locally, with
    /// [`ErrorCode::Forbidden`], when `access::check_op` refuses it for their role.
    pub actor: Actor,
    /// The cache key (`None`: a plain SQLite cache, for tests and tools).
    pub cache_key: Option<CacheKey>,
}

type Listener = Arc<dyn Fn(u64) + Send + Sync>;

/// The console's use-cases. `Send + Sync`: the shell shares one in an `Arc`.
pub struct Console {
    store: Arc<Mutex<Store>>,
    sync: Mutex<Option<Arc<dyn SyncLink>>>,
    pack: Option<Pack>,
    pack_problem: Option<PackProblem>,
    clock: Arc<dyn Clock>,
    user: String,
    /// The signed-in person's role and unit (`None`: opened without sign-in, by tests and
    /// tools, and every op is allowed as before issue 6).
    actor: Option<Actor>,
    demo: bool,
    revision: AtomicU64,
    listeners: Mutex<Vec<Listener>>,
    map_base_url: Mutex<String>,
    data_dir: PathBuf,
    /// Field laptop mode: the id of the unit this console is.
    field_unit: Mutex<Option<String>>,
    /// The receiver reader's status, when one runs.
    gps: Mutex<Option<Arc<Mutex<GpsStatus>>>>,
    /// The router built from the pack on first use (`dispatch.rs`).
    pub(crate) routing: crate::dispatch::RoutingState,
    /// The audit outbox the Gate attached: exports and local refusals are recorded there.
    audit: Mutex<Option<Arc<crate::auth::AuditOutbox>>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("user", &self.user)
            .field("demo", &self.demo)
            .field("pack", &self.pack.as_ref().map(|p| p.path().to_path_buf()))
            .field("revision", &self.revision.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// The per-user data directory by OS convention (`directories::ProjectDirs` for "Outpost":
/// `~/.local/share/outpost` on Linux, `%APPDATA%\Outpost\data` on Windows,
/// `~/Library/Application Support/Outpost` on macOS). `None` when the OS reports no home
/// directory; the shell then asks for `--data-dir`.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "Outpost").map(|d| d.data_dir().to_path_buf())
}

/// Creates the data directory (and its parents) if it does not exist yet.
///
/// # Errors
/// [`ErrorCode::Storage`] naming the path when it exists but is not a directory, or when it
/// cannot be created (permissions, read-only file system).
pub fn prepare_data_dir(dir: &Path) -> Result<(), AppError> {
    if dir.exists() && !dir.is_dir() {
        return Err(AppError::new(
            ErrorCode::Storage,
            format!(
                "the data directory {} is a file, not a directory; give --data-dir a folder",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        AppError::new(
            ErrorCode::Storage,
            format!("cannot create the data directory {}: {e}", dir.display()),
        )
    })
}

impl Console {
    /// Opens the local database in `opts.data_dir` (creating both if needed) and the area
    /// pack. A store problem is fatal; a pack problem is not: [`Console::startup`] then
    /// reports it for the error screen.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`] when the data directory cannot be created or the database
    /// cannot be opened (including a database newer than this build, named with both versions).
    pub fn open(opts: ConsoleOptions, clock: Arc<dyn Clock>) -> Result<Console, AppError> {
        Self::open_inner(opts, clock, None, None)
    }

    /// As [`Console::open`], for a signed-in person ([`crate::auth::Gate`]): the cache is
    /// opened with `access.cache_key` (a plaintext cache of an earlier version is encrypted
    /// on the way, see `outpost_store::cipher`), ops are written as `access.actor.user` and
    /// each is checked against the actor's role before anything is written.
    ///
    /// # Errors
    /// As [`Console::open`]; [`ErrorCode::Storage`] also when the key does not open the cache.
    pub fn open_signed_in(
        mut opts: ConsoleOptions,
        clock: Arc<dyn Clock>,
        access: ConsoleAccess,
    ) -> Result<Console, AppError> {
        opts.user = access.actor.user.clone();
        Self::open_inner(opts, clock, access.cache_key.as_ref(), Some(access.actor))
    }

    fn open_inner(
        opts: ConsoleOptions,
        clock: Arc<dyn Clock>,
        key: Option<&CacheKey>,
        actor: Option<Actor>,
    ) -> Result<Console, AppError> {
        prepare_data_dir(&opts.data_dir)?;
        let mut store = Store::open_with_key(&opts.data_dir.join(DB_FILE), key, clock.now())?;
        let pack_path = match opts.pack {
            Some(p) => Some(p),
            None => store.setting(LAST_PACK_KEY)?.map(PathBuf::from),
        };
        let (pack, pack_problem) = match pack_path {
            None => (
                None,
                Some(PackProblem {
                    path: String::new(),
                    problem: "no area pack has been opened on this computer yet".into(),
                    hint: "start Outpost with --pack FILE.outpost, or with --demo to open the \
                           demo area (Andorra)"
                        .into(),
                }),
            ),
            Some(path) => match Pack::open(&path) {
                Ok(pack) => {
                    let stored = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
                    store.set_setting(LAST_PACK_KEY, &stored.to_string_lossy())?;
                    (Some(pack), None)
                }
                Err(e) => (None, Some(pack_problem(&path, &e))),
            },
        };
        Ok(Console {
            store: Arc::new(Mutex::new(store)),
            sync: Mutex::new(None),
            pack,
            pack_problem,
            clock,
            user: opts.user,
            actor,
            demo: opts.demo,
            revision: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            map_base_url: Mutex::new(String::new()),
            data_dir: opts.data_dir,
            field_unit: Mutex::new(None),
            gps: Mutex::new(None),
            routing: crate::dispatch::RoutingState::default(),
            audit: Mutex::new(None),
        })
    }

    /// Records this console's exports and local permission refusals in `outbox` from now on
    /// (the Gate attaches its audit outbox to each console it opens).
    pub fn attach_audit(&self, outbox: Arc<crate::auth::AuditOutbox>) {
        *lock(&self.audit) = Some(outbox);
    }

    /// Records an event in the attached audit outbox, if any.
    fn audit(
        &self,
        user: &str,
        action: &str,
        target: &str,
        outcome: crate::auth::audit_outbox::Outcome,
        detail: &str,
    ) {
        let outbox = lock(&self.audit).clone();
        if let Some(o) = outbox {
            o.record(user, action, target, outcome, detail, &[]);
        }
    }

    /// The store, shared with the sync engine, which holds the lock for one transaction at
    /// a time: one push batch's outcomes or one pulled page (short), or, rarely, a rebuild of
    /// the state from the whole ledger after the server parked an op already applied here or
    /// when a snapshot is loaded (as long as the ledger is big; UI commands wait meanwhile).
    pub fn store_handle(&self) -> Arc<Mutex<Store>> {
        Arc::clone(&self.store)
    }

    /// Attaches a running sync engine: `sync_status` reports its link from now on.
    pub fn attach_sync(&self, link: Arc<dyn SyncLink>) {
        *lock(&self.sync) = Some(link);
    }

    /// True while a sync engine is attached ([`Console::attach_sync`]): this console's ops go
    /// to the server, which takes ops only from its accounts (so the demo replay acts as the
    /// signed-in person here, not as `"demo"`).
    pub fn syncs(&self) -> bool {
        lock(&self.sync).is_some()
    }

    /// The user this console's own changes are recorded as (the signed-in person's login
    /// name; [`Console::acting_as`] overrides it per thread).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Something changed the state outside a console action (the sync engine applied remote
    /// ops, parked an op, loaded a snapshot): the revision goes up and listeners run. Call it
    /// without holding the store's lock.
    pub fn notify_changed(&self) {
        self.revision.fetch_add(1, Ordering::SeqCst);
        self.notify();
    }

    /// Registers `f`, called with the new revision after each committed change.
    pub fn on_change(&self, f: Box<dyn Fn(u64) + Send + Sync>) {
        lock(&self.listeners).push(Arc::from(f));
    }

    /// The open area pack (for the shell's tile protocol), if it opened.
    pub fn pack(&self) -> Option<&Pack> {
        self.pack.as_ref()
    }

    /// Sets the base URL of the shell's custom protocol (e.g. `outpost://localhost`),
    /// returned by [`Console::startup`].
    pub fn set_map_base_url(&self, url: String) {
        *lock(&self.map_base_url) = url;
    }

    /// The current revision (0 after open; +1 per committed change).
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    /// `startup`: the console's start-up data, or the pack error screen.
    pub fn startup(&self) -> Startup {
        let Some(pack) = &self.pack else {
            return Startup::PackError {
                problem: self.pack_problem.clone().unwrap_or_else(|| PackProblem {
                    path: String::new(),
                    problem: "no area pack is open".into(),
                    hint: "start Outpost with --pack FILE.outpost".into(),
                }),
            };
        };
        let m = pack.meta();
        let settings = self.get_settings().unwrap_or_default();
        Startup::Ready {
            init: ConsoleInit {
                pack: PackInfo {
                    path: pack.path().display().to_string(),
                    name: m.name.clone(),
                    bounds: m.bounds,
                    center: m.center,
                    zoom: m.zoom,
                    min_zoom: m.min_zoom,
                    max_zoom: m.max_zoom,
                    attribution: m.attribution.clone(),
                    built_at: m.built_at,
                },
                map_base_url: lock(&self.map_base_url).clone(),
                demo: self.demo,
                user: self.user.clone(),
                settings,
                field_unit: self.field_unit(),
            },
        }
    }

    /// `console_state`: units in callsign order; open incidents (priority, then oldest
    /// first) followed by those closed in the last [`CLOSED_VISIBLE_HOURS`]; facilities.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn console_state(&self) -> Result<ConsoleState, AppError> {
        let store = lock(&self.store);
        let c = store.conn();
        let since = self.clock.now() - Duration::hours(CLOSED_VISIBLE_HOURS);
        Ok(ConsoleState {
            revision: self.revision(),
            units: query::units(c)?.into_iter().map(unit_view).collect(),
            incidents: query::queue(c, since)?
                .into_iter()
                .map(incident_summary)
                .collect(),
            facilities: query::facilities(c)?,
        })
    }

    /// `incident_detail`.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for an unknown id.
    pub fn incident_detail(&self, args: IncidentRef) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        let store = lock(&self.store);
        detail(store.conn(), id)
    }

    /// `create_incident`: a new incident numbered `YYYYMMDD-NNNN` (local date). An empty
    /// address is filled from the pack's description of the location.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] for a coordinate outside WGS-84 ranges, an address over
    /// [`MAX_ADDRESS_CHARS`] or a description over [`MAX_TEXT_CHARS`] characters.
    pub fn create_incident(&self, args: NewIncident) -> Result<IncidentDetail, AppError> {
        let location = check_location(args.location)?;
        let mut address = check_text("address", &args.address, MAX_ADDRESS_CHARS)?;
        let description = check_text("description", &args.description, MAX_TEXT_CHARS)?;
        if address.is_empty() {
            address = self
                .pack
                .as_ref()
                .and_then(|p| p.describe(location).ok())
                .map(|d| d.address)
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| format!("{:.5}, {:.5}", location.lat, location.lon));
        }
        let day = self
            .clock
            .now()
            .with_timezone(&Local)
            .format("%Y%m%d")
            .to_string();
        let incident_id = Uuid::now_v7();
        let priority = args
            .priority
            .unwrap_or_else(|| args.incident_type.default_priority());
        self.act(
            |c| {
                Ok(OpBody::IncidentCreate {
                    incident_id,
                    number: query::next_incident_number(c, &day)?,
                    incident_type: args.incident_type,
                    priority,
                    location,
                    address,
                    description,
                })
            },
            |c, _| detail(c, incident_id),
        )
    }

    /// `update_incident`: per-field changes of type, priority, location, address, description.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`], [`ErrorCode::IncidentClosed`], [`ErrorCode::InvalidInput`]
    /// (nothing to change, bad coordinate, text over its limit).
    pub fn update_incident(&self, args: UpdateIncident) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        let mut fields = args.fields;
        if let Some(l) = fields.location {
            fields.location = Some(check_location(l)?);
        }
        fields.address = fields
            .address
            .map(|a| check_text("address", &a, MAX_ADDRESS_CHARS))
            .transpose()?;
        fields.description = fields
            .description
            .map(|d| check_text("description", &d, MAX_TEXT_CHARS))
            .transpose()?;
        if fields == IncidentFields::default() {
            return Err(AppError::invalid("nothing to change: no field was given"));
        }
        self.act(
            |c| {
                open_incident(c, id)?;
                Ok(OpBody::IncidentSetFields {
                    incident_id: id,
                    fields,
                })
            },
            |c, _| detail(c, id),
        )
    }

    /// `acknowledge_incident`: a commander has seen it. Acknowledging an incident that is
    /// already acknowledged writes nothing and returns its detail.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`], [`ErrorCode::IncidentClosed`].
    pub fn acknowledge_incident(&self, args: IncidentRef) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        // Acknowledging twice (a second press of A) records nothing more.
        {
            let store = lock(&self.store);
            if open_incident(store.conn(), id)?.acknowledged {
                return detail(store.conn(), id);
            }
        }
        self.act(
            |c| {
                open_incident(c, id)?;
                Ok(OpBody::IncidentAcknowledge { incident_id: id })
            },
            |c, _| detail(c, id),
        )
    }

    /// `assign_unit`: dispatches an available unit; the unit becomes `dispatched`.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`], [`ErrorCode::IncidentClosed`], [`ErrorCode::IllegalTransition`]
    /// when the unit is not available or already assigned.
    pub fn assign_unit(&self, args: UnitOnIncident) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        self.act(
            |c| {
                let inc = open_incident(c, id)?;
                let unit = find_unit(c, &args.unit_id)?;
                let active = query::active_assignment(c, &unit.id)?;
                unit.status
                    .check_dispatch(active.is_some())
                    .map_err(|e| dispatch_refused(&unit, &inc, active.is_some(), e))?;
                Ok(OpBody::AssignmentAdd {
                    assignment_id: Uuid::now_v7(),
                    incident_id: id,
                    unit_id: unit.id,
                })
            },
            |c, _| detail(c, id),
        )
    }

    /// `release_unit`: ends the unit's assignment to the incident; the unit becomes available.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] (incident, unit, or no active assignment of that unit there),
    /// [`ErrorCode::IncidentClosed`].
    pub fn release_unit(&self, args: UnitOnIncident) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        self.act(
            |c| {
                let inc = open_incident(c, id)?;
                let unit = find_unit(c, &args.unit_id)?;
                let assignment = query::active_assignment(c, &unit.id)?
                    .filter(|a| a.incident_id == id)
                    .ok_or_else(|| {
                        AppError::not_found(format!(
                            "unit {} is not assigned to incident {}",
                            unit.callsign, inc.number
                        ))
                    })?;
                let others = query::active_assignments_of_unit(c, &unit.id)?
                    .iter()
                    .any(|a| a.id != assignment.id);
                Ok(OpBody::AssignmentRelease {
                    assignment_id: assignment.id,
                    incident_id: id,
                    unit_to: (!others).then_some(UnitStatus::Available),
                    unit_id: unit.id,
                })
            },
            |c, _| detail(c, id),
        )
    }

    /// `set_unit_status`: a status button. Checked against the transition table
    /// ([`UnitStatus::check_transition`]); `available` from an assignment clears the unit and
    /// releases the assignment.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`], [`ErrorCode::IllegalTransition`] naming the unit and both
    /// statuses (nothing is written).
    pub fn set_unit_status(&self, args: SetUnitStatus) -> Result<UnitView, AppError> {
        let unit_id = args.unit_id.clone();
        self.act(
            |c| {
                let unit = find_unit(c, &args.unit_id)?;
                let assigned = query::active_assignment(c, &unit.id)?.is_some();
                unit.status
                    .check_transition(args.to, assigned)
                    .map_err(|e| transition_refused(&unit, args.to, e))?;
                // A change to a free status ends the unit's active assignments; the unit's
                // status is the one chosen, so the releases leave it alone.
                let releases = if args.to.is_committed() {
                    Vec::new()
                } else {
                    query::active_assignments_of_unit(c, &unit.id)?
                        .into_iter()
                        .map(|a| Release {
                            assignment_id: a.id,
                            incident_id: a.incident_id,
                            unit_id: a.unit_id,
                            unit_to: None,
                        })
                        .collect()
                };
                Ok(OpBody::UnitSetStatus {
                    unit_id: unit.id,
                    from: unit.status,
                    to: args.to,
                    releases,
                })
            },
            |c, _| Ok(unit_view(find_unit(c, &unit_id)?)),
        )
    }

    /// `add_note`: appends a note to the incident's timeline.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] for empty text or more than [`MAX_TEXT_CHARS`] characters,
    /// [`ErrorCode::NotFound`],
    /// [`ErrorCode::IncidentClosed`].
    pub fn add_note(&self, args: AddNote) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        let text = check_text("note", &args.text, MAX_TEXT_CHARS)?;
        if text.is_empty() {
            return Err(AppError::invalid("a note needs some text"));
        }
        self.act(
            |c| {
                open_incident(c, id)?;
                Ok(OpBody::TimelineAppend {
                    entry_id: Uuid::now_v7(),
                    incident_id: id,
                    text,
                })
            },
            |c, _| detail(c, id),
        )
    }

    /// `close_incident`: closes with a disposition; every active assignment is released and
    /// those units become available.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`], [`ErrorCode::IncidentClosed`] when already closed,
    /// [`ErrorCode::InvalidInput`] for a summary over [`MAX_TEXT_CHARS`] characters.
    pub fn close_incident(&self, args: CloseIncident) -> Result<IncidentDetail, AppError> {
        let id = parse_incident_id(&args.incident_id)?;
        let summary = check_text("closing summary", &args.summary, MAX_TEXT_CHARS)?;
        self.act(
            |c| {
                open_incident(c, id)?;
                Ok(OpBody::IncidentClose {
                    incident_id: id,
                    disposition: args.disposition,
                    summary,
                    releases: close_releases(c, id)?,
                })
            },
            |c, _| detail(c, id),
        )
    }

    /// `search_places`: offline search in the pack (at most 50 hits).
    ///
    /// # Errors
    /// [`ErrorCode::Pack`] when no pack is open or it cannot be read;
    /// [`ErrorCode::InvalidInput`] for a bad `near` coordinate.
    pub fn search_places(&self, args: PlaceQuery) -> Result<Vec<PlaceHit>, AppError> {
        let pack = self.require_pack()?;
        let near = args.near.map(check_location).transpose()?;
        let limit = args.limit.clamp(1, 50) as usize;
        Ok(pack.search(&args.text, near, limit)?)
    }

    /// `describe_location`: nearest named street within 150 m + nearest named place.
    ///
    /// # Errors
    /// [`ErrorCode::Pack`], [`ErrorCode::InvalidInput`] for a bad coordinate.
    pub fn describe_location(&self, args: LatLon) -> Result<LocationDescription, AppError> {
        let pack = self.require_pack()?;
        Ok(pack.describe(check_location(args)?)?)
    }

    /// `get_settings`: stored values, defaults for anything never stored or unreadable.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn get_settings(&self) -> Result<Settings, AppError> {
        let store = lock(&self.store);
        let d = Settings::default();
        let read = |key: &str| store.setting(key);
        Ok(Settings {
            language: read("language")?
                .and_then(|v| parse_enum::<Language>(&v))
                .unwrap_or(d.language),
            theme: read("theme")?
                .and_then(|v| parse_enum::<Theme>(&v))
                .unwrap_or(d.theme),
            stale_after_s: read("stale_after_s")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.stale_after_s),
            server_url: read(SERVER_URL_KEY)?.filter(|v| !v.trim().is_empty()),
        })
    }

    /// `save_settings`: stores all three settings in one transaction.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] when `stale_after_s` is outside
    /// [`STALE_AFTER_S_MIN`]..=[`STALE_AFTER_S_MAX`] seconds;
    /// [`ErrorCode::Storage`].
    pub fn save_settings(&self, args: Settings) -> Result<Settings, AppError> {
        if !(STALE_AFTER_S_MIN..=STALE_AFTER_S_MAX).contains(&args.stale_after_s) {
            return Err(AppError::invalid(format!(
                "stale_after_s must be between {STALE_AFTER_S_MIN} and {STALE_AFTER_S_MAX} seconds, not {}",
                args.stale_after_s
            )));
        }
        let language = crate::ipc::wire_name(&args.language);
        let theme = crate::ipc::wire_name(&args.theme);
        let stale = args.stale_after_s.to_string();
        let server_url = match args.server_url.as_deref().map(str::trim) {
            None | Some("") => String::new(),
            Some(url) => check_server_url(url)?,
        };
        lock(&self.store).set_settings(&[
            ("language", &language),
            ("theme", &theme),
            ("stale_after_s", &stale),
            (SERVER_URL_KEY, &server_url),
        ])?;
        self.get_settings()
    }

    /// Adds or updates a station, post or checkpoint (a `facility.register` op); registering
    /// it unchanged writes nothing.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] for an empty id or a bad position.
    pub fn register_facility(&self, f: Facility) -> Result<(), AppError> {
        if f.id.trim().is_empty() {
            return Err(AppError::invalid("a facility needs an id"));
        }
        check_location(f.position)?;
        // The roster is registered at every demo start: an unchanged facility writes no op,
        // so the outbox (and later the server's log) holds each real change once.
        let unchanged = query::facilities(lock(&self.store).conn())?.contains(&f);
        if unchanged {
            return Ok(());
        }
        self.act(
            |_| Ok(OpBody::FacilityRegister { facility: f }),
            |_, _| Ok(()),
        )
    }

    /// Adds or updates a unit in the roster (a `unit.register` op). A new unit starts
    /// `available`; re-registering keeps its status; re-registering it unchanged writes
    /// nothing.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] for an empty id or callsign.
    pub fn register_unit(
        &self,
        unit_id: &str,
        callsign: &str,
        kind: UnitKind,
        home_station: Option<String>,
    ) -> Result<(), AppError> {
        if unit_id.trim().is_empty() || callsign.trim().is_empty() {
            return Err(AppError::invalid("a unit needs an id and a callsign"));
        }
        // As for facilities: re-registering an unchanged unit writes no op.
        let unchanged = query::unit(lock(&self.store).conn(), unit_id)?.is_some_and(|u| {
            u.callsign == callsign.trim() && u.kind == kind && u.home_station == home_station
        });
        if unchanged {
            return Ok(());
        }
        self.act(
            |_| {
                Ok(OpBody::UnitRegister {
                    unit_id: unit_id.to_string(),
                    callsign: callsign.trim().to_string(),
                    unit_kind: kind,
                    home_station,
                })
            },
            |_, _| Ok(()),
        )
    }

    /// Records a unit's fix (a `position.report` op in the positions lane). The latest
    /// position moves only when this fix is newer than the one shown.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for an unknown unit, [`ErrorCode::InvalidInput`] for a bad
    /// position.
    pub fn report_position(&self, unit_id: &str, fix: Fix) -> Result<(), AppError> {
        check_location(fix.position)?;
        self.act(
            |c| {
                let unit = find_unit(c, unit_id)?;
                Ok(OpBody::PositionReport {
                    unit_id: unit.id,
                    fix,
                })
            },
            |_, _| Ok(()),
        )
    }

    fn require_pack(&self) -> Result<&Pack, AppError> {
        self.pack.as_ref().ok_or_else(|| {
            AppError::pack(
                self.pack_problem
                    .as_ref()
                    .map(|p| p.problem.clone())
                    .unwrap_or_else(|| "no area pack is open".into()),
            )
        })
    }

    /// One local action: `decide` (rules) -> op -> apply + outbox in one transaction, then
    /// `result` reads the answer under the same lock; after that the revision goes up and
    /// listeners run.
    pub(crate) fn act<T>(
        &self,
        decide: impl FnOnce(&Connection) -> Result<OpBody, AppError>,
        result: impl FnOnce(&Connection, &OpEnvelope) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let out = {
            let mut store = lock(&self.store);
            let env = store.write(self.clock.now(), &self.author(), |c| {
                let body = decide(c)?;
                self.permit(c, &body)?;
                Ok::<_, AppError>(body)
            })?;
            tracing::debug!(seq = env.seq, kind = env.body.kind(), "op committed");
            // The op is on disk now; a failure to read the answer back is still an error,
            // but listeners must hear about the change either way.
            let out = result(store.conn(), &env);
            self.revision.fetch_add(1, Ordering::SeqCst);
            out
        };
        self.notify();
        out
    }

    /// Several actions in one transaction ([`Store::write_many`]): all written or none;
    /// listeners hear once. Returns how many ops were written.
    pub(crate) fn act_many(
        &self,
        decide: impl FnOnce(&Connection) -> Result<Vec<OpBody>, AppError>,
    ) -> Result<usize, AppError> {
        let n = {
            let mut store = lock(&self.store);
            let envs = store.write_many(self.clock.now(), &self.author(), |c| {
                let bodies = decide(c)?;
                for body in &bodies {
                    self.permit(c, body)?;
                }
                Ok::<_, AppError>(bodies)
            })?;
            if envs.is_empty() {
                return Ok(0);
            }
            self.revision.fetch_add(1, Ordering::SeqCst);
            envs.len()
        };
        self.notify();
        Ok(n)
    }

    /// Whether the signed-in person may write `body` (`access::check_op`, the rule the
    /// server applies too); checked inside the write's transaction, before anything is
    /// written. A console opened without sign-in allows everything; the demo replay
    /// ([`Console::acting_as`]) acts as a commander.
    fn permit(&self, c: &Connection, body: &OpBody) -> Result<(), AppError> {
        let actor = match ACTING_AS.with(|a| a.borrow().clone()) {
            Some(user) => Actor {
                user,
                role: Role::Commander,
                unit_id: None,
            },
            None => match &self.actor {
                Some(actor) => actor.clone(),
                None => return Ok(()),
            },
        };
        access::check_op(&actor, body, &LocalAccess(c)).map_err(|e| {
            let err = AppError::new(ErrorCode::Forbidden, e.to_string());
            self.audit(
                &actor.user,
                "forbidden",
                access::op_kind(body),
                crate::auth::audit_outbox::Outcome::Refused,
                &err.message,
            );
            err
        })
    }

    /// The signed-in person's role and unit (`None` for a console opened without sign-in).
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// Sets (or with `None` removes) the signer of the signed-in person's ops: every op this
    /// console writes for them from now on carries their signature (`OpEnvelope::auth`,
    /// review S2), online or offline; the Gate sets it at each sign-in.
    pub fn set_op_signer(&self, signer: Option<outpost_domain::op_auth::OpSigner>) {
        lock(&self.store).set_signer(signer);
    }

    /// Who writes an op: the user `acting_as` set on this thread (the demo), else the
    /// console's user.
    fn author(&self) -> String {
        ACTING_AS
            .with(|a| a.borrow().clone())
            .unwrap_or_else(|| self.user.clone())
    }

    fn notify(&self) {
        let rev = self.revision();
        let listeners: Vec<Listener> = lock(&self.listeners).clone();
        for f in listeners {
            f(rev);
        }
    }
}

/// The sync commands: the connection indicator, conflicts and parked ops.
impl Console {
    /// `sync_status`: the link as the attached sync engine reports it (`disabled` when none
    /// is attached), with the outbox counts, parked ops, open conflicts and deferred ops from
    /// the store.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn sync_status(&self) -> Result<SyncStatus, AppError> {
        let link = lock(&self.sync).clone().map(|l| l.link_status());
        let (counts, conflicts, deferred) = {
            let store = lock(&self.store);
            (
                store.backlog_counts()?,
                store.conflicts()?.len(),
                store.deferred_count()?,
            )
        };
        let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let pending = LaneCounts {
            critical: n(counts.pending_critical),
            notes: n(counts.pending_notes),
            positions: n(counts.pending_positions),
        };
        Ok(match link {
            Some(l) => SyncStatus {
                state: shown_state(l.state, pending, l.last_sync, self.clock.now()),
                server_url: Some(l.server_url),
                offline_since: l.offline_since,
                last_sync: l.last_sync,
                pending,
                parked: n(counts.parked),
                conflicts: u32::try_from(conflicts).unwrap_or(u32::MAX),
                deferred: n(deferred),
                last_error: l.last_error,
            },
            None => SyncStatus {
                state: SyncState::Disabled,
                server_url: None,
                offline_since: None,
                last_sync: None,
                pending,
                parked: n(counts.parked),
                conflicts: u32::try_from(conflicts).unwrap_or(u32::MAX),
                deferred: n(deferred),
                last_error: None,
            },
        })
    }

    /// `conflicts`: the open conflicts, each with its sides (who, when, what) and the side
    /// shown marked.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn conflicts(&self) -> Result<Vec<ConflictView>, AppError> {
        let store = lock(&self.store);
        conflict_views(store.conn())
    }

    /// `resolve_conflict`: one explicit decision, written as an op that syncs. A field
    /// conflict is resolved by writing the kept value again (an informed write: it has seen
    /// every side); a double assignment by releasing the unit's other assignments; an edit
    /// after close by a `conflict.resolve` op that releases an assignment the edit made (the
    /// incident stays closed). Returns the conflicts left open.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] for a malformed conflict id or a `keep_op_id` that is not
    /// one of its sides, or a note over [`MAX_TEXT_CHARS`]; [`ErrorCode::NotFound`] when the
    /// conflict is not open (already resolved here or by someone else).
    pub fn resolve_conflict(&self, args: ResolveConflict) -> Result<Vec<ConflictView>, AppError> {
        let id = ConflictId::parse(args.conflict_id.trim()).ok_or_else(|| {
            AppError::invalid(format!("{:?} is not a conflict id", args.conflict_id))
        })?;
        let keep = Uuid::parse_str(args.keep_op_id.trim())
            .map_err(|_| AppError::invalid(format!("{:?} is not an op id", args.keep_op_id)))?;
        let note = check_text("note", &args.note, MAX_TEXT_CHARS)?;
        self.act(
            |c| {
                let conflict = outpost_store::conflict::conflicts(c)?
                    .into_iter()
                    .find(|x| x.id == id)
                    .ok_or_else(|| {
                        AppError::not_found(format!(
                            "conflict {id} is not open (it may have been resolved already)"
                        ))
                    })?;
                let kept = conflict
                    .sides
                    .iter()
                    .find(|s| s.op_id == keep)
                    .cloned()
                    .ok_or_else(|| {
                        AppError::invalid(format!("op {keep} is not a side of conflict {id}"))
                    })?;
                resolution(c, &conflict, &kept, note)
            },
            |c, _| conflict_views(c),
        )
    }

    /// `parked_ops`: this console's ops the server refused, with its reason, oldest first.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn parked_ops(&self) -> Result<Vec<ParkedOp>, AppError> {
        let store = lock(&self.store);
        let rows = store.parked()?;
        Ok(rows
            .into_iter()
            .map(|p| ParkedOp {
                op_id: p.envelope.op_id.to_string(),
                kind: p.envelope.body.kind().to_string(),
                lane: p.envelope.lane,
                written_at: p.created_at,
                summary: op_words(store.conn(), &p.envelope.body),
                reason: p.reason,
            })
            .collect())
    }
}

/// The op that resolves `conflict` keeping the side `kept`.
fn resolution(
    c: &Connection,
    conflict: &Conflict,
    kept: &StoreConflictSide,
    note: String,
) -> Result<OpBody, AppError> {
    let conflict_id = conflict.id.to_string();
    match &conflict.id {
        ConflictId::Field {
            incident_id,
            register,
        } => {
            let bad =
                || AppError::invalid(format!("the kept value of {conflict_id} is unreadable"));
            let mut fields = IncidentFields::default();
            match register {
                Register::IncidentType => {
                    fields.incident_type =
                        Some(serde_json::from_value(kept.value.clone()).map_err(|_| bad())?);
                }
                Register::Priority => {
                    fields.priority =
                        Some(serde_json::from_value(kept.value.clone()).map_err(|_| bad())?);
                }
                Register::Location => {
                    fields.location =
                        Some(serde_json::from_value(kept.value.clone()).map_err(|_| bad())?);
                }
                Register::Address => {
                    fields.address =
                        Some(serde_json::from_value(kept.value.clone()).map_err(|_| bad())?);
                }
                Register::Description => {
                    fields.description =
                        Some(serde_json::from_value(kept.value.clone()).map_err(|_| bad())?);
                }
                Register::Closure => {
                    // Two closes with different dispositions: close again (informed) with
                    // the kept one; the releases were made by the closes themselves.
                    let disposition = kept
                        .value
                        .get("disposition")
                        .cloned()
                        .and_then(|d| serde_json::from_value(d).ok())
                        .ok_or_else(bad)?;
                    let summary = kept
                        .value
                        .get("summary")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string();
                    return Ok(OpBody::IncidentClose {
                        incident_id: *incident_id,
                        disposition,
                        summary,
                        releases: Vec::new(),
                    });
                }
                _ => return Err(bad()),
            }
            Ok(OpBody::IncidentSetFields {
                incident_id: *incident_id,
                fields,
            })
        }
        ConflictId::DoubleAssignment { unit_id } => {
            // The unit stays on the kept incident (its status is left alone).
            let releases = conflict
                .sides
                .iter()
                .filter(|s| s.op_id != kept.op_id)
                .filter_map(|s| {
                    Some(Release {
                        assignment_id: s.assignment_id?,
                        incident_id: s.incident_id?,
                        unit_id: unit_id.clone(),
                        unit_to: None,
                    })
                })
                .collect();
            Ok(OpBody::ConflictResolve {
                conflict_id,
                releases,
                note,
            })
        }
        ConflictId::EditAfterClose { edit_op, .. } => {
            // The incident stays closed: a unit the concurrent edit sent there is released.
            let edit = conflict.sides.iter().find(|s| s.op_id == *edit_op);
            let mut releases = Vec::new();
            if let Some(e) = edit
                && let (Some(assignment_id), Some(incident_id)) = (e.assignment_id, e.incident_id)
                && let Some(unit_id) = e.value.get("unit_id").and_then(|u| u.as_str())
            {
                let active = query::active_assignments_of_unit(c, unit_id)?;
                if active.iter().any(|a| a.id == assignment_id) {
                    let others = active.iter().any(|a| a.id != assignment_id);
                    releases.push(Release {
                        assignment_id,
                        incident_id,
                        unit_id: unit_id.to_string(),
                        unit_to: (!others).then_some(UnitStatus::Available),
                    });
                }
            }
            Ok(OpBody::ConflictResolve {
                conflict_id,
                releases,
                note,
            })
        }
    }
}

/// The open conflicts as the UI shows them.
fn conflict_views(c: &Connection) -> Result<Vec<ConflictView>, AppError> {
    let mut out = Vec::new();
    for conflict in outpost_store::conflict::conflicts(c)? {
        let incident_id = conflict.id.incident();
        let incident_number = match incident_id {
            Some(i) => query::incident(c, i)?.map(|r| r.number),
            None => None,
        };
        let (unit_id, callsign) = match &conflict.id {
            ConflictId::DoubleAssignment { unit_id } => (
                Some(unit_id.clone()),
                query::unit(c, unit_id)?.map(|u| u.callsign),
            ),
            _ => (None, None),
        };
        let register = match &conflict.id {
            ConflictId::Field { register, .. } => Some(*register),
            _ => None,
        };
        let mut sides = Vec::new();
        for s in &conflict.sides {
            sides.push(IpcConflictSide {
                op_id: s.op_id.to_string(),
                user: s.user.clone(),
                at: s.at,
                summary: side_words(c, &conflict.id, s)?,
                value: s.value.clone(),
                shown: s.shown,
                assignment_id: s.assignment_id.map(|a| a.to_string()),
            });
        }
        out.push(ConflictView {
            id: conflict.id.to_string(),
            kind: conflict.id.kind(),
            register,
            incident_id: incident_id.map(|i| i.to_string()),
            incident_number,
            unit_id,
            callsign,
            sides,
        });
    }
    Ok(out)
}

/// A register value in words: `"P1"`, `"fire"`, `"42.50700, 1.52100"`, `"closed: arrest"`.
fn value_words(register: Register, v: &serde_json::Value) -> String {
    match register {
        Register::Location => match (
            v.get("lat").and_then(|x| x.as_f64()),
            v.get("lon").and_then(|x| x.as_f64()),
        ) {
            (Some(lat), Some(lon)) => format!("{lat:.5}, {lon:.5}"),
            _ => v.to_string(),
        },
        Register::Closure => format!(
            "closed: {}",
            v.get("disposition")
                .and_then(|d| d.as_str())
                .unwrap_or("?")
                .replace('_', " ")
        ),
        _ => match v.as_str() {
            Some(s) => s.replace('_', " "),
            None => v.to_string(),
        },
    }
}

/// One side of a conflict in words.
fn side_words(c: &Connection, id: &ConflictId, s: &StoreConflictSide) -> Result<String, AppError> {
    Ok(match id {
        ConflictId::Field { register, .. } => value_words(*register, &s.value),
        ConflictId::DoubleAssignment { .. } => {
            let number = match s.incident_id {
                Some(i) => query::incident(c, i)?.map(|r| r.number),
                None => None,
            };
            format!("assigned to incident {}", number.unwrap_or_default())
        }
        ConflictId::EditAfterClose { .. } => match s.kind.as_str() {
            "incident.close" => value_words(Register::Closure, &s.value),
            "assignment.add" => {
                let unit = s
                    .value
                    .get("unit_id")
                    .and_then(|u| u.as_str())
                    .unwrap_or("");
                let callsign = query::unit(c, unit)?.map(|u| u.callsign);
                format!(
                    "{} dispatched",
                    callsign.unwrap_or_else(|| unit.to_string())
                )
            }
            _ => {
                let fields: IncidentFields =
                    serde_json::from_value(s.value.clone()).unwrap_or_default();
                fields_words(&fields)
            }
        },
    })
}

/// Changed fields in words: `"changed priority P1, address Carrer Major"`.
fn fields_words(f: &IncidentFields) -> String {
    let mut parts = Vec::new();
    if let Some(t) = f.incident_type {
        parts.push(format!(
            "type {}",
            crate::ipc::wire_name(&t).replace('_', " ")
        ));
    }
    if let Some(p) = f.priority {
        parts.push(format!("priority {}", crate::ipc::wire_name(&p)));
    }
    if let Some(l) = f.location {
        parts.push(format!("location {:.5}, {:.5}", l.lat, l.lon));
    }
    if let Some(a) = &f.address {
        parts.push(format!("address {a}"));
    }
    if f.description.is_some() {
        parts.push("description".into());
    }
    format!("changed {}", parts.join(", "))
}

/// What an op did, one line (for the parked list).
fn op_words(c: &Connection, body: &OpBody) -> String {
    let number = |id: &Uuid| {
        query::incident(c, *id)
            .ok()
            .flatten()
            .map(|r| r.number)
            .unwrap_or_else(|| id.to_string())
    };
    let callsign = |u: &str| {
        query::unit(c, u)
            .ok()
            .flatten()
            .map(|r| r.callsign)
            .unwrap_or_else(|| u.to_string())
    };
    match body {
        OpBody::IncidentCreate {
            number, address, ..
        } => {
            format!("new incident {number} at {address}")
        }
        OpBody::IncidentSetFields {
            incident_id,
            fields,
        } => format!("incident {}: {}", number(incident_id), fields_words(fields)),
        OpBody::IncidentAcknowledge { incident_id } => {
            format!("incident {} acknowledged", number(incident_id))
        }
        OpBody::IncidentClose {
            incident_id,
            disposition,
            ..
        } => format!(
            "incident {} closed: {}",
            number(incident_id),
            crate::ipc::wire_name(disposition).replace('_', " ")
        ),
        OpBody::UnitSetStatus { unit_id, to, .. } => {
            format!("{} {}", callsign(unit_id), to.words())
        }
        OpBody::AssignmentAdd {
            incident_id,
            unit_id,
            ..
        } => format!(
            "{} dispatched to incident {}",
            callsign(unit_id),
            number(incident_id)
        ),
        OpBody::AssignmentRelease {
            incident_id,
            unit_id,
            ..
        } => format!(
            "{} released from incident {}",
            callsign(unit_id),
            number(incident_id)
        ),
        OpBody::TimelineAppend { incident_id, .. } => {
            format!("note on incident {}", number(incident_id))
        }
        OpBody::PositionReport { unit_id, .. } => format!("position of {}", callsign(unit_id)),
        OpBody::UnitRegister { callsign, .. } => format!("unit {callsign} registered"),
        OpBody::FacilityRegister { facility } => format!("facility {} registered", facility.id),
        OpBody::ConflictResolve { conflict_id, .. } => format!("conflict {conflict_id} resolved"),
        OpBody::DeviceBind {
            device_id,
            unit_id: Some(u),
        } => format!("device {device_id} bound to {}", callsign(u)),
        OpBody::DeviceBind {
            device_id,
            unit_id: None,
        } => format!("device {device_id} unbound"),
        OpBody::DeviceReport { report } => format!(
            "report from unbound {} device {}",
            report.source.as_str(),
            report.device_id
        ),
        OpBody::RoadClosureSet { closure } if closure.lifted => {
            format!("road closure lifted ({})", closure.reason)
        }
        OpBody::RoadClosureSet { closure } => format!("road closed: {}", closure.reason),
    }
}

thread_local! {
    /// The user this thread's changes are recorded as, while [`Console::acting_as`] runs.
    static ACTING_AS: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

impl Console {
    /// Runs `f` with every change it makes *on this thread* recorded as `user` (ops and
    /// timelines) instead of the console's user, allowed as a commander's; other threads (the
    /// UI's commands) are not affected. The demo replay acts as `"demo"` this way on a console
    /// that does not sync (on one that does, it acts as the signed-in person: see
    /// `outpost_demo::ReplayConsole`).
    pub fn acting_as<T>(&self, user: &str, f: impl FnOnce(&Console) -> T) -> T {
        /// Puts the previous override back, also when `f` panics.
        struct Restore(Option<String>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                ACTING_AS.with(|a| *a.borrow_mut() = previous);
            }
        }
        let _restore = Restore(ACTING_AS.with(|a| a.replace(Some(user.to_string()))));
        f(self)
    }
}

/// Locks a mutex, recovering from poisoning (a panicked reader cannot corrupt SQLite state:
/// an unfinished transaction rolls back when dropped).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pack_problem(path: &Path, e: &PackError) -> PackProblem {
    let hint = match e {
        PackError::Missing { .. } => {
            "check the path, or start Outpost with --demo to open the demo area (Andorra), or \
             build a pack with `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`"
        }
        PackError::NotAFile { .. } => "pick the .outpost file inside that folder with --pack",
        PackError::OtherFormat { older: true, .. } => {
            "this pack was built by an older Outpost: rebuild it from its OpenStreetMap extract \
             with `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`, or pick \
             another file with --pack"
        }
        PackError::OtherFormat { older: false, .. } => {
            "update Outpost to open this pack, or rebuild it with this version's \
             `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`, or pick \
             another file with --pack"
        }
        PackError::NotAPack { .. } | PackError::CorruptTile { .. } => {
            "copy the pack again if it came from another machine, or rebuild it with \
             `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`, or pick another \
             file with --pack"
        }
        _ => "check that the file is readable, or pick another file with --pack",
    };
    PackProblem {
        path: path.display().to_string(),
        problem: e.to_string(),
        hint: hint.into(),
    }
}

/// Trims `text` and checks it against `max` characters; `what` names the field in the error.
fn check_text(what: &str, text: &str, max: usize) -> Result<String, AppError> {
    let text = text.trim();
    let n = text.chars().count();
    if n > max {
        return Err(AppError::invalid(format!(
            "the {what} is {n} characters long; at most {max} are kept"
        )));
    }
    Ok(text.to_string())
}

/// A server URL: `http://` or `https://`, a host, an optional port, nothing after but `/`.
/// Returned without a trailing slash.
fn check_server_url(url: &str) -> Result<String, AppError> {
    let bad = || {
        AppError::invalid(format!(
            "the server address {url:?} is not of the form http://host:port or https://host:port"
        ))
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    if host_port.is_empty() || host_port.contains(['/', ' ', '?', '#', '@']) {
        return Err(bad());
    }
    if let Some((host, port)) = host_port.rsplit_once(':')
        && !host.ends_with(']')
        && (host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(bad());
    }
    Ok(url.strip_suffix('/').unwrap_or(url).to_string())
}

fn check_location(l: LatLon) -> Result<LatLon, AppError> {
    LatLon::new(l.lat, l.lon).map_err(|e| AppError::invalid(format!("bad location: {e}")))
}

fn parse_incident_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text.trim())
        .map_err(|_| AppError::not_found(format!("incident {text:?} does not exist")))
}

fn find_unit(c: &Connection, unit_id: &str) -> Result<UnitRow, AppError> {
    query::unit(c, unit_id)?
        .ok_or_else(|| AppError::not_found(format!("unit {unit_id} does not exist")))
}

/// The incident, refused when closed.
fn open_incident(c: &Connection, id: Uuid) -> Result<IncidentRow, AppError> {
    let inc = query::incident(c, id)?
        .ok_or_else(|| AppError::not_found(format!("incident {id} does not exist")))?;
    if inc.closed_at.is_some() {
        return Err(AppError::new(
            ErrorCode::IncidentClosed,
            format!(
                "incident {} is closed; it can no longer be changed",
                inc.number
            ),
        ));
    }
    Ok(inc)
}

/// The releases of a close: every active assignment of the incident; a unit with no other
/// active assignment becomes available.
fn close_releases(c: &Connection, id: Uuid) -> Result<Vec<Release>, AppError> {
    let mut out = Vec::new();
    for a in query::assignments(c, id)?
        .into_iter()
        .filter(|a| a.released_at.is_none())
    {
        let others = query::active_assignments_of_unit(c, &a.unit_id)?
            .iter()
            .any(|o| o.id != a.id);
        out.push(Release {
            assignment_id: a.id,
            incident_id: a.incident_id,
            unit_to: (!others).then_some(UnitStatus::Available),
            unit_id: a.unit_id,
        });
    }
    Ok(out)
}

fn transition_refused(unit: &UnitRow, to: UnitStatus, e: StatusError) -> AppError {
    let why = match e {
        StatusError::NeedsAssignment(_) => " without being assigned to an incident",
        _ if to == UnitStatus::Dispatched => ": assign it to an incident instead",
        _ => "",
    };
    AppError::illegal(format!(
        "unit {} ({}) is {} and cannot become {}{why}",
        unit.callsign,
        unit.id,
        unit.status.words(),
        to.words()
    ))
}

fn dispatch_refused(unit: &UnitRow, inc: &IncidentRow, assigned: bool, e: StatusError) -> AppError {
    let why = match (&e, assigned, &unit.incident) {
        (StatusError::AlreadyAssigned, true, Some((_, number))) => {
            format!("it is already assigned to incident {number}")
        }
        (StatusError::AlreadyAssigned, _, _) => "it is already assigned to an incident".into(),
        _ => "only available units can be dispatched".into(),
    };
    AppError::illegal(format!(
        "unit {} ({}) is {} and cannot be dispatched to incident {}: {why}",
        unit.callsign,
        unit.id,
        unit.status.words(),
        inc.number
    ))
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn unit_view(u: UnitRow) -> UnitView {
    let (incident_id, incident_number) = match u.incident {
        Some((id, n)) => (Some(id.to_string()), Some(n)),
        None => (None, None),
    };
    UnitView {
        id: u.id,
        callsign: u.callsign,
        kind: u.kind,
        home_station: u.home_station,
        status: u.status,
        status_since: u.status_since,
        incident_id,
        incident_number,
        fix: u.fix,
    }
}

fn incident_summary(i: IncidentRow) -> IncidentSummary {
    IncidentSummary {
        id: i.id.to_string(),
        number: i.number,
        incident_type: i.incident_type,
        priority: i.priority,
        status: i.status,
        location: i.location,
        address: i.address,
        created_at: i.created_at,
        acknowledged: i.acknowledged,
        assigned: i.assigned,
    }
}

fn detail(c: &Connection, id: Uuid) -> Result<IncidentDetail, AppError> {
    let inc = query::incident(c, id)?
        .ok_or_else(|| AppError::not_found(format!("incident {id} does not exist")))?;
    let assignments = query::assignments(c, id)?
        .into_iter()
        .map(|a| AssignmentView {
            id: a.id.to_string(),
            unit_id: a.unit_id,
            callsign: a.callsign,
            unit_status: a.unit_status,
            assigned_at: a.assigned_at,
            released_at: a.released_at,
        })
        .collect();
    let timeline = query::timeline(c, id)?
        .into_iter()
        .map(|t| TimelineEntry {
            id: t.id,
            at: t.at,
            user: t.user,
            event: t.event,
        })
        .collect();
    let description = inc.description.clone();
    let created_by = inc.created_by.clone();
    let disposition = inc.disposition;
    let closed_at = inc.closed_at;
    Ok(IncidentDetail {
        summary: incident_summary(inc),
        description,
        created_by,
        disposition,
        closed_at,
        assignments,
        timeline,
    })
}

/// The most ops still to send that a live console keeps "online" for: position reports of a
/// busy shift are always a few ops behind, and a commander must not read "syncing" all night.
pub const LIVE_BACKLOG_OPS: u32 = 50;

/// How recent the last completed sync must be for a live console to show "online", seconds.
pub const LIVE_SYNC_AGE_S: i64 = 15;

/// What the indicator shows: the engine is "syncing" in every round, but a connected console
/// that synced in the last [`LIVE_SYNC_AGE_S`] seconds, has no critical op waiting and fewer
/// than [`LIVE_BACKLOG_OPS`] ops in all shows "online"; "syncing" means a real backlog.
pub fn shown_state(
    engine: SyncState,
    pending: LaneCounts,
    last_sync: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> SyncState {
    let total = pending.critical + pending.notes + pending.positions;
    let recent = last_sync.is_some_and(|t| (now - t).num_seconds() <= LIVE_SYNC_AGE_S);
    if engine == SyncState::Syncing && recent && pending.critical == 0 && total < LIVE_BACKLOG_OPS {
        SyncState::Online
    } else {
        engine
    }
}

/// The folder inside the data directory that track exports are written to.
pub const EXPORTS_DIR: &str = "exports";

/// Devices, tracks and the field laptop mode (issue 4).
impl Console {
    /// The console's clock reading now (UTC).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Field laptop mode (`outpost --unit CALLSIGN`): from now on this console is the unit
    /// with that callsign (matched ignoring case and surrounding spaces; a unit id is
    /// accepted too). [`Console::startup`] reports it in `field_unit`, `field_view` shows
    /// it, and the receiver's fixes become its positions.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] naming the callsign and the callsigns this console knows
    /// when no unit has it (a new field laptop needs its roster from the server first).
    pub fn set_field_unit(&self, callsign: &str) -> Result<UnitView, AppError> {
        let wanted = callsign.trim();
        let units = query::units(lock(&self.store).conn())?;
        let found = units
            .iter()
            .find(|u| u.callsign.trim().eq_ignore_ascii_case(wanted))
            .or_else(|| units.iter().find(|u| u.id == wanted))
            .cloned();
        let Some(unit) = found else {
            let mut known: Vec<&str> = units.iter().map(|u| u.callsign.as_str()).collect();
            known.truncate(20);
            let known = if known.is_empty() {
                "this console's roster is empty: start it once with --server URL so the \
                 roster syncs, or check the data directory"
                    .to_string()
            } else {
                format!(
                    "units known here: {}{}",
                    known.join(", "),
                    if units.len() > 20 { ", …" } else { "" }
                )
            };
            return Err(AppError::not_found(format!(
                "--unit {wanted:?}: no unit has that callsign ({known})"
            )));
        };
        *lock(&self.field_unit) = Some(unit.id.clone());
        tracing::info!(unit = %unit.id, callsign = %unit.callsign, "field laptop mode");
        Ok(unit_view(unit))
    }

    /// The id of the unit this console is in field laptop mode, if any.
    pub fn field_unit(&self) -> Option<String> {
        lock(&self.field_unit).clone()
    }

    /// Attaches the receiver reader's status (shown by `field_view`).
    pub fn attach_gps(&self, status: Arc<Mutex<GpsStatus>>) {
        *lock(&self.gps) = Some(status);
    }

    /// Records a fix of this console's own unit from its receiver, then written as a
    /// `position.report` (positions lane of the outbox; kept on disk while offline).
    ///
    /// The fix is checked as [`outpost_domain::device::check_fix`] does (ranges, not 0°, 0°,
    /// not before 2000) **except** the "not ahead of the clock" rule: the receiver's time comes
    /// from the satellites and is usually better than this laptop's, and clock skew must never
    /// cause a rejection (SYNC.md principle 10). A fix more than
    /// [`outpost_domain::device::MAX_FIX_AHEAD_S`] ahead of this console's clock is recorded
    /// all the same and the skew is returned as a warning for the receiver's status
    /// ("receiver time is 12 min ahead of this laptop's clock…") and logged; the server still
    /// parks a fix that is ahead of *its* clock.
    ///
    /// A fix more than [`MAX_RECEIVER_AHEAD_S`] (a day) ahead is refused: a receiver with a
    /// broken clock would otherwise pin the marker.
    ///
    /// Returns `Ok(None)`, or `Ok(Some(warning))` when the receiver is ahead of this clock.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] when not in field laptop mode or the fix is refused
    /// (the reason names the value); [`ErrorCode::Storage`].
    pub fn report_field_fix(&self, fix: Fix) -> Result<Option<String>, AppError> {
        let unit = self.field_unit().ok_or_else(|| {
            AppError::invalid("this console is not a field laptop (start it with --unit)")
        })?;
        let now = self.clock.now();
        // Every check but "ahead of the clock": against max(now, fix time) that one cannot
        // fire.
        outpost_domain::device::check_fix(&fix, now.max(fix.fix_time))
            .map_err(|e| AppError::invalid(format!("fix refused: {e}")))?;
        let ahead_s = (fix.fix_time - now).num_seconds();
        if ahead_s > MAX_RECEIVER_AHEAD_S {
            // More than a day: far likelier a receiver with a broken clock than a laptop a
            // day slow, and the newest fix time wins, so one such fix would pin this unit's
            // marker (offline, until the server could park it).
            return Err(AppError::invalid(format!(
                "fix refused: receiver time {} is {} ahead of this laptop's clock (more than \
                 a day): check the receiver, or set the laptop's clock",
                fix.fix_time.to_rfc3339(),
                skew_text(ahead_s)
            )));
        }
        let warning = (ahead_s > outpost_domain::device::MAX_FIX_AHEAD_S).then(|| {
            format!(
                "receiver time is {} ahead of this laptop's clock; fixes are recorded with \
                 the receiver's time — set the laptop's clock",
                skew_text(ahead_s)
            )
        });
        self.report_position(&unit, fix)?;
        Ok(warning)
    }

    /// `list_devices`: unbound devices first (newest fix first), then bound ones by
    /// callsign.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn list_devices(&self) -> Result<Vec<DeviceView>, AppError> {
        let store = lock(&self.store);
        Ok(outpost_store::devices::devices(store.conn())?
            .into_iter()
            .map(device_view)
            .collect())
    }

    /// `bind_device`: binds a device to a unit or unbinds it (a `device.bind` op in the
    /// critical lane; the newest binding wins on every replica). Binding it to the unit it
    /// is already bound to (or unbinding an unbound device) writes nothing.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] for a device id [`outpost_domain::device::device_id`]
    /// refuses (empty after trimming, over-long, a control character — the decoders' rule); [`ErrorCode::NotFound`] for an unknown unit, or for unbinding a device this
    /// console has never heard of. Binding a device before its first report is allowed.
    pub fn bind_device(&self, args: BindDevice) -> Result<DeviceView, AppError> {
        // The same rule as the decoders, so every device that reports can be bound.
        let device_id = outpost_domain::device::device_id(&args.device_id)
            .map_err(|e| {
                let shown: String = args.device_id.chars().take(64).collect();
                AppError::invalid(format!("device id {shown:?}: {e}"))
            })?
            .to_string();
        let unit_id = args
            .unit_id
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        {
            let store = lock(&self.store);
            let c = store.conn();
            // A device may be bound before it first reports (its id read off the phone, as
            // Traccar registers devices); only unbinding needs a device this console knows.
            let current = outpost_store::devices::device(c, &device_id)?;
            if current.is_none() && unit_id.is_none() {
                return Err(AppError::not_found(format!(
                    "device {device_id:?} is not bound and has not reported to this console; \
                     there is nothing to unbind"
                )));
            }
            if let Some(u) = &unit_id {
                find_unit(c, u)?;
            }
            if let Some(current) = current
                && current.unit_id == unit_id
            {
                return Ok(device_view(current));
            }
        }
        self.act(
            |c| {
                if let Some(u) = &unit_id {
                    find_unit(c, u)?;
                }
                Ok(OpBody::DeviceBind {
                    device_id: device_id.clone(),
                    unit_id: unit_id.clone(),
                })
            },
            |c, _| {
                outpost_store::devices::device(c, &device_id)?
                    .map(device_view)
                    .ok_or_else(|| AppError::not_found(format!("device {device_id:?} vanished")))
            },
        )
    }

    /// `unit_track`: the unit's fixes with fix time in the window (both ends included, open
    /// when `None`), each once, oldest first; at most [`MAX_TRACK_POINTS`] (the newest, with
    /// `truncated` set).
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] for an unknown unit; [`ErrorCode::InvalidInput`] when `from`
    /// is after `to`.
    pub fn unit_track(&self, args: TrackQuery) -> Result<Track, AppError> {
        let store = lock(&self.store);
        track(store.conn(), &args, MAX_TRACK_POINTS)
    }

    /// `export_track`: writes the window of the unit's track as GPX 1.1 or KML 2.2 to
    /// `<data dir>/exports/<callsign>-<from>-<to>.<gpx|kml>` (times of the first and last
    /// fix, UTC, `YYYYMMDDTHHMMSSZ`), replacing a file of that name.
    ///
    /// An export carries up to [`MAX_EXPORT_POINTS`] fixes (a week at one fix a second), more
    /// than one `unit_track` answer.
    ///
    /// # Errors
    /// As [`Console::unit_track`]; [`ErrorCode::InvalidInput`] when the window holds no
    /// fix or more than [`MAX_EXPORT_POINTS`]; [`ErrorCode::Storage`] naming the path when
    /// the file cannot be written.
    pub fn export_track(&self, args: ExportTrack) -> Result<ExportedTrack, AppError> {
        // One query under the store lock; the guard is dropped at the end of this block, so
        // the sync engine and the UI's commands are not held up while up to
        // MAX_EXPORT_POINTS fixes are formatted and written.
        let t = {
            let store = lock(&self.store);
            track(store.conn(), &args.track, MAX_EXPORT_POINTS)?
        };
        if t.truncated {
            return Err(AppError::invalid(format!(
                "{} has more than {MAX_EXPORT_POINTS} fixes in that time window; export a \
                 shorter window",
                t.callsign
            )));
        }
        let (Some(first), Some(last)) = (t.points.first(), t.points.last()) else {
            return Err(AppError::invalid(format!(
                "{} has no position in that time window; nothing to export",
                t.callsign
            )));
        };
        let stamp = |f: &Fix| f.fix_time.format("%Y%m%dT%H%M%SZ").to_string();
        let ext = match args.format {
            TrackFormat::Gpx => "gpx",
            TrackFormat::Kml => "kml",
        };
        let dir = self.data_dir.join(EXPORTS_DIR);
        let path = dir.join(format!(
            "{}-{}-{}.{ext}",
            crate::export::file_safe(&t.callsign),
            stamp(first),
            stamp(last)
        ));
        let storage = |e: std::io::Error, what: &Path| {
            AppError::new(
                ErrorCode::Storage,
                format!("cannot write the export {}: {e}", what.display()),
            )
        };
        std::fs::create_dir_all(&dir).map_err(|e| storage(e, &dir))?;
        // Streamed into a file beside, synced, and renamed, so a reader never sees half a
        // file and a power cut never leaves an empty one under the final name.
        let tmp = dir.join(format!(".{}.part", Uuid::now_v7()));
        let written = (|| {
            let file = std::fs::File::create(&tmp).map_err(|e| storage(e, &tmp))?;
            let mut w = std::io::BufWriter::new(file);
            match args.format {
                TrackFormat::Gpx => crate::export::write_gpx(&t, &mut w),
                TrackFormat::Kml => crate::export::write_kml(&t, &mut w),
            }
            .map_err(|e| AppError::new(e.code, format!("{} ({})", e.message, path.display())))?;
            let file = w.into_inner().map_err(|e| storage(e.into_error(), &tmp))?;
            file.sync_all().map_err(|e| storage(e, &tmp))?;
            std::fs::rename(&tmp, &path).map_err(|e| storage(e, &path))
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename itself is durable once the directory is synced (where it can be opened:
        // not on Windows).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        let full = std::path::absolute(&path).unwrap_or(path);
        self.audit(
            &self.author(),
            "export",
            &full.display().to_string(),
            crate::auth::audit_outbox::Outcome::Ok,
            &format!(
                "track of {} as {}, {} fixes from {} to {}",
                t.callsign,
                ext.to_uppercase(),
                t.points.len(),
                stamp(first),
                stamp(last)
            ),
        );
        Ok(ExportedTrack {
            path: full.display().to_string(),
            points: u32::try_from(t.points.len()).unwrap_or(u32::MAX),
        })
    }

    /// `field_view`: in field laptop mode, this console's unit, the incident of its active
    /// assignment (with timeline) and when the unit acknowledged it, and the receiver's
    /// status; `None` otherwise.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`] when the unit has left the roster; [`ErrorCode::Storage`].
    pub fn field_view(&self) -> Result<Option<FieldView>, AppError> {
        let Some(unit_id) = self.field_unit() else {
            return Ok(None);
        };
        let gps = lock(&self.gps).as_ref().map(|s| lock(s).clone());
        let store = lock(&self.store);
        let c = store.conn();
        let unit = find_unit(c, &unit_id)?;
        let active = query::active_assignment(c, &unit_id)?;
        let (assignment, acknowledged_at) = match active {
            Some(a) => {
                let d = detail(c, a.incident_id)?;
                let ack = acknowledged_at(&d, &unit.callsign, a.assigned_at);
                (Some(d), ack)
            }
            None => (None, None),
        };
        Ok(Some(FieldView {
            unit: unit_view(unit),
            assignment,
            acknowledged_at,
            gps,
        }))
    }

    /// `acknowledge_assignment`: the field unit confirms its assignment (确认): a timeline
    /// note "<callsign> acknowledged" on the assigned incident (notes lane; syncs). Pressing
    /// it again writes nothing. Returns the field view.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidInput`] when not in field laptop mode; [`ErrorCode::NotFound`]
    /// when the unit has no active assignment; [`ErrorCode::IncidentClosed`].
    pub fn acknowledge_assignment(&self) -> Result<FieldView, AppError> {
        let unit_id = self.field_unit().ok_or_else(|| {
            AppError::invalid("only a field laptop (outpost --unit) acknowledges assignments")
        })?;
        let already = self.field_view()?.and_then(|v| v.acknowledged_at);
        if already.is_none() {
            self.act(
                |c| {
                    let unit = find_unit(c, &unit_id)?;
                    let a = query::active_assignment(c, &unit_id)?.ok_or_else(|| {
                        AppError::not_found(format!(
                            "{} has no assignment to acknowledge",
                            unit.callsign
                        ))
                    })?;
                    open_incident(c, a.incident_id)?;
                    Ok(OpBody::TimelineAppend {
                        entry_id: Uuid::now_v7(),
                        incident_id: a.incident_id,
                        text: ack_text(&unit.callsign),
                    })
                },
                |_, _| Ok(()),
            )?;
        }
        self.field_view()?
            .ok_or_else(|| AppError::invalid("this console is not a field laptop"))
    }
}

/// The timeline note of an acknowledgement.
fn ack_text(callsign: &str) -> String {
    format!("{callsign} acknowledged")
}

/// When `callsign` acknowledged the assignment made at `assigned_at`: its acknowledgement
/// note at or after that time.
fn acknowledged_at(
    d: &IncidentDetail,
    callsign: &str,
    assigned_at: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = ack_text(callsign);
    d.timeline.iter().find_map(|t| match &t.event {
        outpost_domain::TimelineEvent::Note { text: n } if *n == text && t.at >= assigned_at => {
            Some(t.at)
        }
        _ => None,
    })
}

/// Most fixes one track export writes (seven days at one fix a second).
pub const MAX_EXPORT_POINTS: usize = 7 * 86_400;

/// A clock difference for people: `12 min`, `3 h 5 min`, `400 days`.
fn skew_text(seconds: i64) -> String {
    let m = seconds / 60;
    if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{} days", m / (24 * 60))
    }
}

fn track(c: &Connection, q: &TrackQuery, limit: usize) -> Result<Track, AppError> {
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from > to
    {
        return Err(AppError::invalid(format!(
            "the track window starts ({from}) after it ends ({to})"
        )));
    }
    let unit = find_unit(c, q.unit_id.trim())?;
    let rows = outpost_store::devices::unit_track(
        c,
        &unit.id,
        q.from.map(|t| t.timestamp_millis()),
        q.to.map(|t| t.timestamp_millis()),
        limit,
    )?;
    Ok(Track {
        unit_id: unit.id,
        callsign: unit.callsign,
        points: rows.fixes,
        truncated: rows.truncated,
    })
}

fn device_view(d: outpost_store::devices::DeviceRow) -> DeviceView {
    DeviceView {
        device_id: d.device_id,
        source: d.source,
        name: d.name,
        unit_id: d.unit_id,
        callsign: d.callsign,
        last_fix: d.last_fix,
        reports: d.reports,
        battery_pct: d.battery_pct,
    }
}

/// How far a field laptop's own receiver may be ahead of the laptop's clock before a fix is
/// refused, seconds (one day): up to this the receiver's satellite time is trusted over a
/// slow laptop clock (SYNC.md principle 10), beyond it the receiver's clock is broken.
pub const MAX_RECEIVER_AHEAD_S: i64 = 24 * 3600;

/// The console's local cache as `access::check_op` asks it (inside the write's
/// transaction). A failed query answers "no", so the op is refused rather than allowed.
struct LocalAccess<'a>(&'a Connection);

impl access::AccessContext for LocalAccess<'_> {
    fn unit_on_incident(&self, unit_id: &str, incident_id: Uuid) -> bool {
        self.0
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM assignments WHERE unit_id = ?1 AND incident_id = ?2)",
                rusqlite::params![unit_id, incident_id.to_string()],
                |r| r.get::<_, bool>(0),
            )
            .unwrap_or(false)
    }

    fn assignment(&self, assignment_id: Uuid) -> Option<(String, Uuid)> {
        let (unit, incident): (String, String) = self
            .0
            .query_row(
                "SELECT unit_id, incident_id FROM assignments WHERE id = ?1",
                [assignment_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()?;
        Some((unit, Uuid::parse_str(&incident).ok()?))
    }
}
