//! The IPC contract between the Rust backend and the TypeScript UI.
//!
//! Every command takes at most one argument, always named `args`, and returns one value or
//! rejects with an [`ErrorPayload`]. [`COMMANDS`] lists them; [`typescript_bindings`] turns
//! the types and the table into `ui/src/bindings.ts` (committed; a test fails when stale).
//! Times are UTC instants as RFC 3339 text; positions are WGS-84 degrees.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::{Config, TS};

use outpost_domain::device::DeviceSource;
use outpost_domain::facility::Facility;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{
    Disposition, IncidentStatus, IncidentType, MAX_ADDRESS_CHARS, MAX_TEXT_CHARS, Priority,
};
use outpost_domain::merge::{ConflictKind, Register};
use outpost_domain::op::{Fix, IncidentFields, Lane};
use outpost_domain::road_closure::{ClosureShape, RoadClosure};
pub use outpost_domain::timeline::TimelineEvent;
use outpost_domain::unit::{UnitKind, UnitStatus};
pub use outpost_geo::{LocationDescription, SearchHit as PlaceHit, SearchKind as PlaceKind};

/// The error codes the UI branches on. Grows only when the UI needs a new branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The incident, unit or facility does not exist.
    NotFound,
    /// A status change or assignment the domain refuses.
    IllegalTransition,
    /// Input that fails validation (empty text, out-of-range coordinate).
    InvalidInput,
    /// The incident is closed; nothing more can be changed.
    IncidentClosed,
    /// The local database failed (disk full, corrupt file).
    Storage,
    /// The area pack is missing, corrupt or lacks what was asked.
    Pack,
    /// Nobody is signed in, the console is locked, or the session expired: show the sign-in
    /// or lock screen (see [`auth_status`](crate::auth::Gate::auth_status)).
    SignedOut,
    /// Wrong password or code, unknown user, or the account is locked out or disabled.
    AuthFailed,
    /// The signed-in person's role may not do this (the message names role and action).
    Forbidden,
    /// The server could not be reached (for a step that needs it, e.g. enrollment).
    Offline,
}

/// What a failed command rejects with: a code for the UI to branch on and a message for
/// a person (already in plain words; the UI may localise by code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ErrorPayload {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation of what was wrong and where.
    pub message: String,
}

/// Where sign-in stands on this console (issue 6). The login screen branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    /// No account on this console and no server configured: create the first account
    /// ([`SetupAccount`]; it becomes a commander on this console only).
    Setup,
    /// A server is configured and this device has no certificate yet: enroll it
    /// ([`EnrollDevice`]) with a person's credentials.
    Enroll,
    /// Nobody is signed in: [`SignIn`].
    SignedOut,
    /// Locked (idle, by the person, or 12 hours since the last full sign-in): the same person
    /// unlocks ([`Unlock`]) or someone else signs in.
    Locked,
    /// Someone is signed in; every other command works.
    SignedIn,
    /// Someone signed in with a password an administrator chose (the server's
    /// `must_change_password`): the console stays closed until they change it
    /// ([`ChangePassword`]) or sign out.
    PasswordChange,
    /// This device was revoked by an administrator: its cache key is forgotten, nothing opens.
    Revoked,
}

/// A person who signed in on this console before and may sign in here offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct KnownUser {
    /// Login name.
    pub user: String,
    /// Display name.
    pub display_name: String,
    /// Role (`commander`, `dispatcher`, `field_unit`, `viewer`, `administrator`, `auditor`).
    pub role: String,
    /// Until when an offline sign-in is allowed (UTC); `None`: no limit (a console-only
    /// account of a console without a server).
    pub offline_until: Option<DateTime<Utc>>,
}

/// The signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SignedInUser {
    /// Login name (written into every op).
    pub user: String,
    /// Display name.
    pub display_name: String,
    /// Role, as in [`KnownUser::role`].
    pub role: String,
    /// For a field unit: its unit id.
    pub unit_id: Option<String>,
    /// True when the server confirmed this sign-in (the sync runs under it); false for an
    /// offline sign-in (the outbox waits for an online sign-in to push).
    pub online: bool,
    /// When the full sign-in (password and code) expires and the console locks: 12 hours
    /// after it (CJIS 5.9.5).
    pub reauth_at: DateTime<Utc>,
}

/// The answer of every sign-in command: what the login screen should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AuthStatus {
    /// Where sign-in stands.
    pub state: AuthState,
    /// The configured server, if any.
    pub server_url: Option<String>,
    /// This device's id once enrolled.
    pub device_id: Option<String>,
    /// Who may sign in here offline (newest first).
    pub known_users: Vec<KnownUser>,
    /// The signed-in (or, when locked, the locked-out) person.
    pub user: Option<SignedInUser>,
    /// Lock after this many seconds without input; `None` in field laptop mode (CJIS allows
    /// vehicles the exemption) or when switched off.
    pub idle_lock_s: Option<u32>,
    /// The login name to pre-fill (`--user`), if given.
    pub login_hint: Option<String>,
    /// A line for the screen, e.g. why the last sign-in failed offline.
    pub message: Option<String>,
}

/// `setup_account`: the first account of a console that has no server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SetupAccount {
    /// Login name: 1–64 letters, digits, `.`, `-`, `_`.
    pub user: String,
    /// Display name, 1–100 characters.
    pub display_name: String,
    /// At least 12 characters.
    pub password: String,
}

/// A TOTP secret to put into an authenticator app (RFC 6238: SHA-1, 6 digits, 30 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TotpEnrollment {
    /// The secret, base32 (for typing in).
    pub secret: String,
    /// `otpauth://totp/Outpost:USER?secret=…&issuer=Outpost` (for a QR code).
    pub uri: String,
}

/// `confirm_setup`: a current code from the authenticator, proving it was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TotpCode {
    /// Six digits.
    pub code: String,
}

/// `enroll_device`: get this device a certificate from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EnrollDevice {
    /// The server, `https://HOST:PORT`.
    pub server_url: String,
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Current TOTP code.
    pub code: String,
    /// A name people recognise for this device.
    pub device_name: String,
}

/// `sign_in`: password and code; online when the server answers, else offline from the
/// vault for a person who signed in here before within the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SignIn {
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Current TOTP code.
    pub code: String,
}

/// `unlock`: the locked-out person's password (and code, when the 12-hour sign-in expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Unlock {
    /// Password.
    pub password: String,
    /// Current TOTP code; required only after 12 hours.
    pub code: Option<String>,
}

/// `change_password`: the signed-in person changes their password (with a server: online
/// only, checked by the server; without one: on this console). The new password needs at
/// least 12 characters, not only spaces, and must differ from the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ChangePassword {
    /// The current password.
    pub old_password: String,
    /// The new password.
    pub new_password: String,
    /// Current TOTP code.
    pub code: String,
}

/// The metadata of the open area pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PackInfo {
    /// Path of the pack file on this machine.
    pub path: String,
    /// Display name, e.g. `"Andorra"`.
    pub name: String,
    /// Bounding box `[west, south, east, north]`, WGS-84 degrees.
    pub bounds: [f64; 4],
    /// Initial map centre.
    pub center: LatLon,
    /// Initial zoom level.
    pub zoom: f64,
    /// Lowest tile zoom in the pack.
    pub min_zoom: u8,
    /// Highest tile zoom in the pack.
    pub max_zoom: u8,
    /// Attribution text to show on the map, e.g. `"© OpenStreetMap contributors"`.
    pub attribution: String,
    /// When the pack was built (UTC).
    pub built_at: DateTime<Utc>,
}

/// Why the console cannot show a map, for the error screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PackProblem {
    /// The file that was tried.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
    /// What the user can do about it (a command to run, a flag to pass).
    pub hint: String,
}

/// Display language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Follow the operating system's locale.
    Auto,
    /// Simplified Chinese.
    ZhCn,
    /// English.
    En,
}

/// Map theme. Dispatch rooms are dark: `night` is the default at night.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Night from 19:00 to 07:00 local time, day otherwise.
    Auto,
    /// Light basemap.
    Day,
    /// Dark basemap.
    Night,
}

/// Per-user console settings, stored in the local database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Settings {
    /// Display language.
    pub language: Language,
    /// Map theme.
    pub theme: Theme,
    /// A unit's fix older than this many seconds is drawn as stale (default 120).
    pub stale_after_s: u32,
    /// The sync server's base URL (`http://host:port`), or `None` to work alone. `--server`
    /// on the command line overrides it for one run.
    #[serde(default)]
    pub server_url: Option<String>,
}

/// The shortest stale threshold a user may set, seconds.
pub const STALE_AFTER_S_MIN: u32 = 10;
/// The longest stale threshold a user may set, seconds (one day).
pub const STALE_AFTER_S_MAX: u32 = 86_400;

impl Default for Settings {
    fn default() -> Self {
        Self {
            language: Language::Auto,
            theme: Theme::Auto,
            stale_after_s: 120,
            server_url: None,
        }
    }
}

/// Everything the UI needs once at start-up, when the pack opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConsoleInit {
    /// The open pack.
    pub pack: PackInfo,
    /// Base URL of the custom protocol that serves `style/{theme}.json`, `tiles/{z}/{x}/{y}.pbf`,
    /// `glyphs/{fontstack}/{range}.pbf` and `sprites/…` with no network request.
    pub map_base_url: String,
    /// True when `--demo` replays simulated life; the UI says so plainly.
    pub demo: bool,
    /// The logged-in user's name (shown in timelines).
    pub user: String,
    /// The settings.
    pub settings: Settings,
    /// Field laptop mode (`outpost --unit CALLSIGN`): the id of the unit this console is.
    /// The UI then opens the field view (`field_view`) instead of the command layout.
    pub field_unit: Option<String>,
}

/// The result of `startup`: a console, or an error screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Startup {
    /// The pack opened.
    Ready {
        /// Start-up data.
        init: ConsoleInit,
    },
    /// No usable pack: show the error screen.
    PackError {
        /// What went wrong.
        problem: PackProblem,
    },
}

/// One unit on the status board and the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct UnitView {
    /// Stable id.
    pub id: String,
    /// Radio callsign.
    pub callsign: String,
    /// What it is.
    pub kind: UnitKind,
    /// Home station or post id.
    pub home_station: Option<String>,
    /// Current status.
    pub status: UnitStatus,
    /// When the current status began (UTC); the board ticks from it.
    pub status_since: DateTime<Utc>,
    /// The incident of the active assignment.
    pub incident_id: Option<String>,
    /// That incident's number.
    pub incident_number: Option<String>,
    /// Latest fix (the newest fix time), if any.
    pub fix: Option<Fix>,
}

/// One incident in the queue and on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentSummary {
    /// Id (UUID text).
    pub id: String,
    /// Human-readable number.
    pub number: String,
    /// Type.
    pub incident_type: IncidentType,
    /// Priority.
    pub priority: Priority,
    /// Derived status.
    pub status: IncidentStatus,
    /// Location (WGS-84).
    pub location: LatLon,
    /// Address text.
    pub address: String,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// Whether a commander acknowledged it.
    pub acknowledged: bool,
    /// Callsigns of the units actively assigned.
    pub assigned: Vec<String>,
}

/// The live picture: every unit, open incident and facility. Closed incidents of the last
/// 24 hours are included so the queue can show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConsoleState {
    /// Increases with every change; the `state-changed` event carries it.
    #[ts(type = "number")]
    pub revision: u64,
    /// Units in callsign order.
    pub units: Vec<UnitView>,
    /// Incidents, priority then age.
    pub incidents: Vec<IncidentSummary>,
    /// Stations, posts, checkpoints.
    pub facilities: Vec<Facility>,
}

/// A unit's assignment to an incident, as the detail panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AssignmentView {
    /// Assignment id.
    pub id: String,
    /// Unit id.
    pub unit_id: String,
    /// Unit callsign.
    pub callsign: String,
    /// Unit's current status.
    pub unit_status: UnitStatus,
    /// When assigned (UTC).
    pub assigned_at: DateTime<Utc>,
    /// When released (UTC); `None` while active.
    pub released_at: Option<DateTime<Utc>>,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TimelineEntry {
    /// Op id of the change (UUID text).
    pub id: String,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Who.
    pub user: String,
    /// What.
    pub event: TimelineEvent,
}

/// The incident card: everything about one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentDetail {
    /// The summary fields.
    pub summary: IncidentSummary,
    /// Description.
    pub description: String,
    /// Who created it.
    pub created_by: String,
    /// Disposition, once closed.
    pub disposition: Option<Disposition>,
    /// When closed (UTC).
    pub closed_at: Option<DateTime<Utc>>,
    /// Every assignment, active and past.
    pub assignments: Vec<AssignmentView>,
    /// Every change, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// Arguments of `create_incident`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct NewIncident {
    /// Type.
    pub incident_type: IncidentType,
    /// Priority; `None` takes the type's default.
    pub priority: Option<Priority>,
    /// Location (WGS-84).
    pub location: LatLon,
    /// Address text; empty asks the backend to describe the location from the pack.
    pub address: String,
    /// Description.
    pub description: String,
}

/// Arguments of `update_incident`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct UpdateIncident {
    /// Target.
    pub incident_id: String,
    /// Changes.
    pub fields: IncidentFields,
}

/// Arguments naming one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentRef {
    /// Target.
    pub incident_id: String,
}

/// Arguments of `assign_unit` and `release_unit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct UnitOnIncident {
    /// Incident.
    pub incident_id: String,
    /// Unit.
    pub unit_id: String,
}

/// Arguments of `set_unit_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SetUnitStatus {
    /// Unit.
    pub unit_id: String,
    /// New status (checked against the domain's transition table).
    pub to: UnitStatus,
}

/// Arguments of `add_note`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AddNote {
    /// Incident.
    pub incident_id: String,
    /// Note text (non-empty).
    pub text: String,
}

/// Arguments of `close_incident`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CloseIncident {
    /// Incident.
    pub incident_id: String,
    /// Disposition code.
    pub disposition: Disposition,
    /// Closing summary (may be empty).
    pub summary: String,
}

/// Arguments of `search_places`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PlaceQuery {
    /// What the user typed: a prefix of a street, place, POI or address, Chinese or Latin.
    pub text: String,
    /// Rank by distance from here (usually the map centre).
    pub near: Option<LatLon>,
    /// At most this many hits (1..=50).
    pub limit: u32,
}

/// The sync connection as the indicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// No server configured: the console works alone.
    Disabled,
    /// Connected and caught up.
    Online,
    /// Connected, pushing or pulling a backlog.
    Syncing,
    /// The server cannot be reached (since `offline_since`); work goes on locally.
    Offline,
    /// The server answers but wants a session: nobody signed in online (an offline sign-in,
    /// or the 12-hour session ended). Ops wait in the outbox until an online sign-in.
    SignInRequired,
    /// The server revoked this device: it syncs no more (the Gate forgets its sign-in data).
    DeviceRevoked,
}

/// Ops waiting in the outbox, per lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LaneCounts {
    /// Incidents, assignments, statuses.
    pub critical: u32,
    /// Notes.
    pub notes: u32,
    /// Positions.
    pub positions: u32,
}

/// `sync_status`: what the connection indicator shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SyncStatus {
    /// Connection state.
    pub state: SyncState,
    /// The server URL in use, if any.
    pub server_url: Option<String>,
    /// When the link was lost (UTC), while offline.
    pub offline_since: Option<DateTime<Utc>>,
    /// The last time a push or pull completed (UTC).
    pub last_sync: Option<DateTime<Utc>>,
    /// Ops not yet acknowledged by the server, per lane.
    pub pending: LaneCounts,
    /// Ops the server refused (needs attention).
    pub parked: u32,
    /// Open conflicts.
    pub conflicts: u32,
    /// Ops from newer consoles this build cannot show yet (upgrade to see them).
    pub deferred: u32,
    /// The last error met, one line (e.g. `"connection refused"`), while not online.
    pub last_error: Option<String>,
}

/// One side of a conflict: a write, who made it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConflictSide {
    /// The op.
    pub op_id: String,
    /// Who.
    pub user: String,
    /// When (the op's HLC time, UTC).
    pub at: DateTime<Utc>,
    /// What it says, one line in the console's language terms (e.g. `"P1"`, `"closed: arrest"`,
    /// `"东胜03 dispatched"`).
    pub summary: String,
    /// The value written, as JSON (a register value, or `null`).
    #[ts(type = "unknown")]
    pub value: serde_json::Value,
    /// True for the side the console currently shows (the merge rules' winner).
    pub shown: bool,
    /// For a double assignment: the assignment this side stands for.
    pub assignment_id: Option<String>,
}

/// One open conflict (SYNC.md principle 5–6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConflictView {
    /// Conflict id (stable on every replica).
    pub id: String,
    /// Kind.
    pub kind: ConflictKind,
    /// The register, for field conflicts.
    pub register: Option<Register>,
    /// The incident concerned.
    pub incident_id: Option<String>,
    /// Its number.
    pub incident_number: Option<String>,
    /// The unit concerned (double assignment).
    pub unit_id: Option<String>,
    /// Its callsign.
    pub callsign: Option<String>,
    /// The conflicting sides, oldest first.
    pub sides: Vec<ConflictSide>,
}

/// `resolve_conflict`: one explicit decision, written as an op that syncs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ResolveConflict {
    /// The conflict.
    pub conflict_id: String,
    /// The side kept: for a field conflict its value is written again as an informed write;
    /// for a double assignment the other assignments are released; for an edit after close
    /// the edit is accepted (an assignment it made is released).
    pub keep_op_id: String,
    /// Why (may be empty).
    pub note: String,
}

/// A position-reporting device (OsmAnd phone, TAK client, laptop receiver) as the device
/// registry shows it: bound to a unit, or waiting to be bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DeviceView {
    /// The device's own id (OsmAnd `id`, CoT `uid`).
    pub device_id: String,
    /// The protocol its newest unbound report came by; `None` for a device bound before any
    /// report of it reached this console (its reports are its unit's positions).
    pub source: Option<DeviceSource>,
    /// The name the device gives itself (CoT callsign), if any.
    pub name: Option<String>,
    /// The unit it is bound to (`None`: listed for binding, not on the map).
    pub unit_id: Option<String>,
    /// That unit's callsign.
    pub callsign: Option<String>,
    /// Its newest fix while unbound (a bound device's fixes are its unit's positions).
    pub last_fix: Option<Fix>,
    /// How many reports this console holds from it while it was unbound.
    pub reports: u64,
    /// Battery level in percent from its last report, if sent.
    pub battery_pct: Option<f64>,
}

/// Binds a device to a unit, or unbinds it (`unit_id: None`). Syncs as a `device.bind` op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct BindDevice {
    /// The device.
    pub device_id: String,
    /// The unit, or `None` to unbind.
    pub unit_id: Option<String>,
}

/// A time window of one unit's track. `None` bounds are open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TrackQuery {
    /// The unit.
    pub unit_id: String,
    /// Earliest fix time included (UTC).
    pub from: Option<DateTime<Utc>>,
    /// Latest fix time included (UTC).
    pub to: Option<DateTime<Utc>>,
}

/// A unit's position history, each fix once, in fix-time order (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Track {
    /// The unit.
    pub unit_id: String,
    /// Its callsign.
    pub callsign: String,
    /// The fixes (WGS-84), oldest first.
    pub points: Vec<Fix>,
    /// True when the window held more fixes than [`MAX_TRACK_POINTS`] and the oldest were
    /// left out.
    pub truncated: bool,
}

/// Most fixes one `unit_track` answer carries.
pub const MAX_TRACK_POINTS: usize = 20_000;

/// File format of a track export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TrackFormat {
    /// GPX 1.1 (one `trk` with one `trkseg`).
    Gpx,
    /// KML 2.2 (a `gx:Track`-free `LineString` placemark plus one timed point per fix).
    Kml,
}

/// Exports a unit's track to a file in the export folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ExportTrack {
    /// The window.
    pub track: TrackQuery,
    /// The format.
    pub format: TrackFormat,
}

/// Where an export was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ExportedTrack {
    /// Full path of the written file on this machine.
    pub path: String,
    /// Fixes written.
    pub points: u32,
}

/// The GNSS receiver of a field laptop (`outpost --gps SOURCE`), as the field view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct GpsStatus {
    /// The source as given (`/dev/ttyUSB0`, `gpsd://127.0.0.1:2947`, a log file).
    pub source: String,
    /// True while the source is open and delivering sentences.
    pub connected: bool,
    /// NMEA sentences read.
    pub sentences: u64,
    /// Fixes written as position reports.
    pub fixes: u64,
    /// Sentences skipped (unreadable, unsupported talker or vendor sentence, bad checksum).
    pub skipped: u64,
    /// The newest fix, if any.
    pub last_fix: Option<Fix>,
    /// The last error (source closed, device missing, a fix refused), or a warning that the
    /// receiver's time is more than five minutes ahead of this laptop's clock (its fixes are
    /// still recorded), if any.
    pub error: Option<String>,
}

/// What the field laptop shows: its own unit, its current assignment, its receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FieldView {
    /// This console's unit.
    pub unit: UnitView,
    /// The incident of its active assignment, with timeline.
    pub assignment: Option<IncidentDetail>,
    /// When this unit acknowledged that assignment (`acknowledge_assignment`; UTC), if it has.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The receiver, when `--gps` was given.
    pub gps: Option<GpsStatus>,
}

/// An op the server refused: shown under "needs attention" with the server's reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ParkedOp {
    /// The op.
    pub op_id: String,
    /// Its kind, e.g. `"incident.set_fields"`.
    pub kind: String,
    /// Its lane.
    pub lane: Lane,
    /// When it was written (UTC).
    pub written_at: DateTime<Utc>,
    /// What it did, one line.
    pub summary: String,
    /// The server's reason.
    pub reason: String,
}

/// Why a unit has no road ETA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum EtaProblemKind {
    /// The unit has never reported a position.
    NoPosition,
    /// Its position is farther than `outpost_geo::routing::MAX_SNAP_M` from a drivable road.
    NoRoad,
    /// Active road closures cut every route to the incident.
    ClosedOff,
}

/// One available unit's road ETA to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct UnitEta {
    /// Unit id.
    pub unit_id: String,
    /// Callsign.
    pub callsign: String,
    /// What it is.
    pub kind: UnitKind,
    /// The fix the ETA starts from (its age is shown next to the ETA).
    pub fix: Option<Fix>,
    /// Driving time at free flow, seconds (`None` with a `problem`).
    pub eta_s: Option<f64>,
    /// Driving distance, metres.
    pub distance_m: Option<f64>,
    /// Straight-line distance, metres (when the unit has a position).
    pub straight_m: Option<f64>,
    /// Why there is no ETA.
    pub problem: Option<EtaProblemKind>,
    /// Details of the problem in English (closure reasons, distance to the road).
    pub problem_detail: Option<String>,
    /// The route, WGS-84, for the first five ranked units only.
    pub route: Option<Vec<LatLon>>,
}

/// Available units ranked by road ETA to one incident (`closest_units`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ClosestUnits {
    /// The incident.
    pub incident_id: String,
    /// Available units: those with an ETA by ETA (fastest first), then those without.
    pub candidates: Vec<UnitEta>,
    /// Active road closures routing avoided.
    pub closures_active: u32,
    /// Set when no ranking is possible at all (no pack, no drivable roads, the incident is
    /// off the road network); `candidates` are then unranked.
    pub unavailable: Option<String>,
    /// Time the ranking took, milliseconds.
    pub took_ms: f64,
}

/// A route on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RouteView {
    /// Driving time at free flow, seconds.
    pub eta_s: f64,
    /// Length, metres.
    pub distance_m: f64,
    /// The line, WGS-84.
    pub line: Vec<LatLon>,
}

/// The field laptop's route to its assignment (`field_route`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FieldRoute {
    /// The incident of the active assignment.
    pub incident_id: String,
    /// The route from the unit's latest position, when there is one.
    pub route: Option<RouteView>,
    /// Why there is no route (no position, off the roads, cut off by closures).
    pub problem: Option<EtaProblemKind>,
    /// Details in English.
    pub problem_detail: Option<String>,
}

/// The 1-3-5 minute coverage layer and figure (`coverage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CoverageView {
    /// The live figure: share (0..=1) of the drivable road length reachable within 1, 3 and
    /// 5 minutes by an AVAILABLE UNIT with a position (issue 5: it drops as units get busy;
    /// 0 when none is available).
    pub share: Vec<f64>,
    /// Road length reached within 1, 3, 5 minutes by available units, metres.
    pub reached_m: Vec<f64>,
    /// The same share counting stations and street police posts as well as available units
    /// (what the layer draws).
    pub share_with_facilities: Vec<f64>,
    /// Total drivable road length of the pack, metres.
    pub total_m: f64,
    /// Lines per band as [lon, lat] pairs, reached from stations, posts and available
    /// units: 0 within 1 min, 1 within 3, 2 within 5, 3 beyond 5 minutes (the holes).
    pub bands: Vec<Vec<Vec<[f64; 2]>>>,
    /// Stations and posts counted as sources of the layer (checkpoints are not: they
    /// guard entry roads, they do not respond).
    pub facilities: u32,
    /// Available units with a position counted as sources.
    pub units: u32,
    /// Active road closures avoided.
    pub closures_active: u32,
    /// Time the computation took, milliseconds.
    pub took_ms: f64,
    /// Set when there is no road network (no pack); everything else is empty then.
    pub unavailable: Option<String>,
}

/// A road closure as the console lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RoadClosureView {
    /// The closure (id, shape, reason, expected end, lifted).
    pub closure: RoadClosure,
    /// True when routing avoids it now (not lifted, expected end ahead).
    pub active: bool,
    /// Who last set it.
    pub set_by: String,
    /// When it was last set (UTC, the op's time).
    pub set_at: DateTime<Utc>,
    /// Road segments of this console's pack it closes.
    pub closed_segments: u32,
}

/// Arguments of `set_road_closure`: a new closure (`closure_id` null) or a change of one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct NewRoadClosure {
    /// The closure to change (not a lifted one: lifting is final), or null for a new one.
    pub closure_id: Option<String>,
    /// What is closed (a line as returned by `road_line`, or an area).
    pub shape: ClosureShape,
    /// Why.
    pub reason: String,
    /// Expected end (UTC), or null until lifted.
    pub ends_at: Option<DateTime<Utc>>,
}

/// Arguments of `lift_road_closure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ClosureRef {
    /// The closure.
    pub closure_id: String,
}

/// Arguments of `road_line`: points clicked along a road.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RoadLineQuery {
    /// The points, in order (2..=50).
    pub points: Vec<LatLon>,
}

/// The datum coordinates in an imported file are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Datum {
    /// WGS-84 (GPS, OpenStreetMap): stored as is.
    Wgs84,
    /// GCJ-02 (Chinese web maps such as AMap/高德, Tencent): converted to WGS-84.
    Gcj02,
    /// BD-09 (Baidu maps): converted to WGS-84.
    Bd09,
}

/// The format of an imported facility file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    /// CSV with a header row: `id`, `kind`, `name_zh`, `name_en`, `lat`, `lon`.
    Csv,
    /// A GeoJSON FeatureCollection of Point features with those properties.
    Geojson,
}

/// Arguments of `import_facilities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ImportFacilities {
    /// The file's text (UTF-8; a byte-order mark is ignored).
    pub text: String,
    /// Its format.
    pub format: ImportFormat,
    /// The datum of its coordinates.
    pub datum: Datum,
    /// False: check and convert only (preview). True: write every facility, or nothing
    /// when any row has a problem.
    pub commit: bool,
}

/// One problem in an imported file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ImportProblem {
    /// Where: `"line 4"` (CSV, counting the header as line 1) or `"feature 3"` (GeoJSON,
    /// from 1), with the column or property when known.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// The result of `import_facilities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ImportReport {
    /// The facilities read, converted to WGS-84.
    pub facilities: Vec<Facility>,
    /// Problems; when any, nothing is written.
    pub problems: Vec<ImportProblem>,
    /// Warnings that do not stop the import: a facility outside the open area pack (often
    /// latitude and longitude swapped, or the wrong datum declared). `at` names the
    /// facility (`"facility ID"`).
    pub warnings: Vec<ImportProblem>,
    /// Facilities written (0 for a preview or when there are problems).
    pub written: u32,
}

/// The name of the event the backend emits after any change; payload `{ revision: number }`.
pub const STATE_CHANGED_EVENT: &str = "state-changed";

/// One command of the IPC contract.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// The Tauri command name (snake_case).
    pub name: &'static str,
    /// The TypeScript function name.
    pub ts_name: &'static str,
    /// TypeScript type of the single `args` argument, if any.
    pub args: Option<&'static str>,
    /// TypeScript type of the result.
    pub returns: &'static str,
    /// One line for the generated doc comment.
    pub doc: &'static str,
}

/// Every command the UI may invoke. The Tauri shell registers exactly these.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "auth_status",
        ts_name: "authStatus",
        args: None,
        returns: "AuthStatus",
        doc: "Where sign-in stands: setup, enroll, signed out, locked, signed in, revoked.",
    },
    CommandSpec {
        name: "setup_account",
        ts_name: "setupAccount",
        args: Some("SetupAccount"),
        returns: "TotpEnrollment",
        doc: "A console without a server: starts its first account; returns the TOTP secret to confirm.",
    },
    CommandSpec {
        name: "confirm_setup",
        ts_name: "confirmSetup",
        args: Some("TotpCode"),
        returns: "AuthStatus",
        doc: "Confirms the first account with a current code; creates the encrypted cache and signs in.",
    },
    CommandSpec {
        name: "enroll_device",
        ts_name: "enrollDevice",
        args: Some("EnrollDevice"),
        returns: "AuthStatus",
        doc: "Gets this device a certificate from the server with a person's credentials, then signs them in.",
    },
    CommandSpec {
        name: "sign_in",
        ts_name: "signIn",
        args: Some("SignIn"),
        returns: "AuthStatus",
        doc: "Signs in with password and code: online when the server answers, else offline from the vault.",
    },
    CommandSpec {
        name: "unlock",
        ts_name: "unlock",
        args: Some("Unlock"),
        returns: "AuthStatus",
        doc: "Unlocks a locked console for the same person (password; the code too after 12 hours).",
    },
    CommandSpec {
        name: "change_password",
        ts_name: "changePassword",
        args: Some("ChangePassword"),
        returns: "AuthStatus",
        doc: "The signed-in person changes their password (online with a server); re-seals their offline entry.",
    },
    CommandSpec {
        name: "lock",
        ts_name: "lock",
        args: None,
        returns: "AuthStatus",
        doc: "Locks the console (idle timer or the person); sync and field GPS keep running.",
    },
    CommandSpec {
        name: "sign_out",
        ts_name: "signOut",
        args: None,
        returns: "AuthStatus",
        doc: "Signs the person out (and ends their server session).",
    },
    CommandSpec {
        name: "startup",
        ts_name: "startup",
        args: None,
        returns: "Startup",
        doc: "Opens the pack and the local database; the console or the error screen.",
    },
    CommandSpec {
        name: "console_state",
        ts_name: "consoleState",
        args: None,
        returns: "ConsoleState",
        doc: "The live picture: units, incidents, facilities.",
    },
    CommandSpec {
        name: "incident_detail",
        ts_name: "incidentDetail",
        args: Some("IncidentRef"),
        returns: "IncidentDetail",
        doc: "One incident with its assignments and timeline.",
    },
    CommandSpec {
        name: "create_incident",
        ts_name: "createIncident",
        args: Some("NewIncident"),
        returns: "IncidentDetail",
        doc: "Creates an incident (on disk before it resolves).",
    },
    CommandSpec {
        name: "update_incident",
        ts_name: "updateIncident",
        args: Some("UpdateIncident"),
        returns: "IncidentDetail",
        doc: "Changes type, priority, location, address or description.",
    },
    CommandSpec {
        name: "acknowledge_incident",
        ts_name: "acknowledgeIncident",
        args: Some("IncidentRef"),
        returns: "IncidentDetail",
        doc: "Marks the incident as seen by a commander.",
    },
    CommandSpec {
        name: "assign_unit",
        ts_name: "assignUnit",
        args: Some("UnitOnIncident"),
        returns: "IncidentDetail",
        doc: "Dispatches an available unit to the incident.",
    },
    CommandSpec {
        name: "release_unit",
        ts_name: "releaseUnit",
        args: Some("UnitOnIncident"),
        returns: "IncidentDetail",
        doc: "Releases (clears) a unit from the incident.",
    },
    CommandSpec {
        name: "set_unit_status",
        ts_name: "setUnitStatus",
        args: Some("SetUnitStatus"),
        returns: "UnitView",
        doc: "Changes a unit's status; illegal transitions are refused.",
    },
    CommandSpec {
        name: "add_note",
        ts_name: "addNote",
        args: Some("AddNote"),
        returns: "IncidentDetail",
        doc: "Appends a note to the incident's timeline.",
    },
    CommandSpec {
        name: "close_incident",
        ts_name: "closeIncident",
        args: Some("CloseIncident"),
        returns: "IncidentDetail",
        doc: "Closes with a disposition, releasing every unit.",
    },
    CommandSpec {
        name: "search_places",
        ts_name: "searchPlaces",
        args: Some("PlaceQuery"),
        returns: "PlaceHit[]",
        doc: "Offline search of the pack's streets, places, POIs and addresses.",
    },
    CommandSpec {
        name: "describe_location",
        ts_name: "describeLocation",
        args: Some("LatLon"),
        returns: "LocationDescription",
        doc: "Street + nearest named place for a point.",
    },
    CommandSpec {
        name: "sync_status",
        ts_name: "syncStatus",
        args: None,
        returns: "SyncStatus",
        doc: "The connection indicator: online/syncing/offline, pending ops per lane, last sync.",
    },
    CommandSpec {
        name: "conflicts",
        ts_name: "conflicts",
        args: None,
        returns: "ConflictView[]",
        doc: "Open conflicts, both sides with who and when.",
    },
    CommandSpec {
        name: "resolve_conflict",
        ts_name: "resolveConflict",
        args: Some("ResolveConflict"),
        returns: "ConflictView[]",
        doc: "Resolves one conflict with an explicit decision (an op that syncs); the conflicts left.",
    },
    CommandSpec {
        name: "parked_ops",
        ts_name: "parkedOps",
        args: None,
        returns: "ParkedOp[]",
        doc: "Ops the server refused, with its reason (needs attention).",
    },
    CommandSpec {
        name: "get_settings",
        ts_name: "getSettings",
        args: None,
        returns: "Settings",
        doc: "The stored settings.",
    },
    CommandSpec {
        name: "save_settings",
        ts_name: "saveSettings",
        args: Some("Settings"),
        returns: "Settings",
        doc: "Stores the settings.",
    },
    CommandSpec {
        name: "list_devices",
        ts_name: "listDevices",
        args: None,
        returns: "DeviceView[]",
        doc: "The device registry: unbound devices first (newest report first), then bound ones.",
    },
    CommandSpec {
        name: "bind_device",
        ts_name: "bindDevice",
        args: Some("BindDevice"),
        returns: "DeviceView",
        doc: "Binds a device to a unit or unbinds it (an op that syncs).",
    },
    CommandSpec {
        name: "unit_track",
        ts_name: "unitTrack",
        args: Some("TrackQuery"),
        returns: "Track",
        doc: "A unit's position history in a time window, each fix once, oldest first.",
    },
    CommandSpec {
        name: "export_track",
        ts_name: "exportTrack",
        args: Some("ExportTrack"),
        returns: "ExportedTrack",
        doc: "Writes a unit's track as GPX or KML into the export folder.",
    },
    CommandSpec {
        name: "field_view",
        ts_name: "fieldView",
        args: None,
        returns: "FieldView | null",
        doc: "Field laptop mode: this console's unit, its assignment and receiver; null otherwise.",
    },
    CommandSpec {
        name: "acknowledge_assignment",
        ts_name: "acknowledgeAssignment",
        args: None,
        returns: "FieldView",
        doc: "Field laptop mode: the unit acknowledges its assignment (a timeline note that syncs).",
    },
    CommandSpec {
        name: "closest_units",
        ts_name: "closestUnits",
        args: Some("IncidentRef"),
        returns: "ClosestUnits",
        doc: "Available units ranked by road ETA to the incident; routes for the first five.",
    },
    CommandSpec {
        name: "field_route",
        ts_name: "fieldRoute",
        args: None,
        returns: "FieldRoute | null",
        doc: "Field laptop: the route from this unit to its assignment.",
    },
    CommandSpec {
        name: "coverage",
        ts_name: "coverage",
        args: None,
        returns: "CoverageView",
        doc: "1-3-5 minute reach of facilities and available units, and the share of roads covered.",
    },
    CommandSpec {
        name: "road_closures",
        ts_name: "roadClosures",
        args: None,
        returns: "RoadClosureView[]",
        doc: "Road closures, active first.",
    },
    CommandSpec {
        name: "set_road_closure",
        ts_name: "setRoadClosure",
        args: Some("NewRoadClosure"),
        returns: "RoadClosureView",
        doc: "Closes a road or an area (or changes a closure); routing avoids it at once.",
    },
    CommandSpec {
        name: "lift_road_closure",
        ts_name: "liftRoadClosure",
        args: Some("ClosureRef"),
        returns: "RoadClosureView",
        doc: "Lifts a road closure.",
    },
    CommandSpec {
        name: "road_line",
        ts_name: "roadLine",
        args: Some("RoadLineQuery"),
        returns: "LatLon[]",
        doc: "The road line through points clicked along a road (for drawing a closure).",
    },
    CommandSpec {
        name: "import_facilities",
        ts_name: "importFacilities",
        args: Some("ImportFacilities"),
        returns: "ImportReport",
        doc: "Imports stations, posts and checkpoints from CSV or GeoJSON in a declared datum.",
    },
];

fn decls(cfg: &Config) -> Vec<String> {
    use outpost_domain::facility::FacilityKind;
    vec![
        LatLon::decl(cfg),
        Priority::decl(cfg),
        IncidentType::decl(cfg),
        IncidentStatus::decl(cfg),
        Disposition::decl(cfg),
        UnitKind::decl(cfg),
        UnitStatus::decl(cfg),
        FacilityKind::decl(cfg),
        Facility::decl(cfg),
        Fix::decl(cfg),
        IncidentFields::decl(cfg),
        ErrorCode::decl(cfg),
        AuthState::decl(cfg),
        KnownUser::decl(cfg),
        SignedInUser::decl(cfg),
        AuthStatus::decl(cfg),
        SetupAccount::decl(cfg),
        TotpEnrollment::decl(cfg),
        TotpCode::decl(cfg),
        EnrollDevice::decl(cfg),
        SignIn::decl(cfg),
        Unlock::decl(cfg),
        ChangePassword::decl(cfg),
        ErrorPayload::decl(cfg),
        PackInfo::decl(cfg),
        PackProblem::decl(cfg),
        Language::decl(cfg),
        Theme::decl(cfg),
        Settings::decl(cfg),
        ConsoleInit::decl(cfg),
        Startup::decl(cfg),
        UnitView::decl(cfg),
        IncidentSummary::decl(cfg),
        ConsoleState::decl(cfg),
        AssignmentView::decl(cfg),
        TimelineEvent::decl(cfg),
        TimelineEntry::decl(cfg),
        IncidentDetail::decl(cfg),
        NewIncident::decl(cfg),
        UpdateIncident::decl(cfg),
        IncidentRef::decl(cfg),
        UnitOnIncident::decl(cfg),
        SetUnitStatus::decl(cfg),
        AddNote::decl(cfg),
        CloseIncident::decl(cfg),
        PlaceQuery::decl(cfg),
        PlaceKind::decl(cfg),
        PlaceHit::decl(cfg),
        LocationDescription::decl(cfg),
        Lane::decl(cfg),
        Register::decl(cfg),
        ConflictKind::decl(cfg),
        SyncState::decl(cfg),
        LaneCounts::decl(cfg),
        SyncStatus::decl(cfg),
        ConflictSide::decl(cfg),
        ConflictView::decl(cfg),
        ResolveConflict::decl(cfg),
        ParkedOp::decl(cfg),
        DeviceSource::decl(cfg),
        DeviceView::decl(cfg),
        BindDevice::decl(cfg),
        TrackQuery::decl(cfg),
        Track::decl(cfg),
        TrackFormat::decl(cfg),
        ExportTrack::decl(cfg),
        EtaProblemKind::decl(cfg),
        UnitEta::decl(cfg),
        ClosestUnits::decl(cfg),
        RouteView::decl(cfg),
        FieldRoute::decl(cfg),
        CoverageView::decl(cfg),
        ClosureShape::decl(cfg),
        RoadClosure::decl(cfg),
        RoadClosureView::decl(cfg),
        NewRoadClosure::decl(cfg),
        ClosureRef::decl(cfg),
        RoadLineQuery::decl(cfg),
        Datum::decl(cfg),
        ImportFormat::decl(cfg),
        ImportFacilities::decl(cfg),
        ImportProblem::decl(cfg),
        ImportReport::decl(cfg),
        ExportedTrack::decl(cfg),
        GpsStatus::decl(cfg),
        FieldView::decl(cfg),
    ]
}

/// The domain tables the UI draws with (menu orders, the status transition table, default
/// priorities), rendered from outpost-domain so the UI never keeps a copy that can drift.
fn domain_tables() -> String {
    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }
    let next: serde_json::Map<String, serde_json::Value> = UnitStatus::ALL
        .iter()
        .map(|s| (wire_name(s), serde_json::json!(s.allowed_next())))
        .collect();
    let default_priority: serde_json::Map<String, serde_json::Value> = IncidentType::ALL
        .iter()
        .map(|t| (wire_name(t), serde_json::json!(t.default_priority())))
        .collect();
    let priorities = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];
    format!(
        "/** Priorities, most urgent first. */\nexport const PRIORITIES: Priority[] = {};\n\n\
         /** Unit statuses in board order (`UnitStatus::ALL`). */\nexport const UNIT_STATUSES: UnitStatus[] = {};\n\n\
         /** Incident types in menu order (`IncidentType::ALL`). */\nexport const INCIDENT_TYPES: IncidentType[] = {};\n\n\
         /** Dispositions in menu order (`Disposition::ALL`). */\nexport const DISPOSITIONS: Disposition[] = {};\n\n\
         /** `UnitStatus::allowed_next`: the status buttons a person may press (dispatch is an assignment, not a button). */\n\
         export const UNIT_STATUS_NEXT: Record<UnitStatus, UnitStatus[]> = {};\n\n\
         /** `IncidentType::default_priority`: the priority a new incident gets unless the call-taker says otherwise. */\n\
         export const DEFAULT_PRIORITY: Record<IncidentType, Priority> = {};\n\n",
        json(&priorities),
        json(&UnitStatus::ALL),
        json(&IncidentType::ALL),
        json(&Disposition::ALL),
        json(&next),
        json(&default_priority),
    )
}

/// The wire name of a unit-variant enum value, e.g. `"en_route"` (its JSON string form).
pub(crate) fn wire_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The whole of `ui/src/bindings.ts`: every IPC type and one typed function per command.
/// Deterministic, so a test can compare it with the committed file.
pub fn typescript_bindings() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated by outpost-app (crates/outpost-app/src/ipc.rs). Do not edit by hand:\n\
         // run `UPDATE_BINDINGS=1 cargo test -p outpost-app bindings` after changing the Rust types.\n\n\
         import { invoke } from \"@tauri-apps/api/core\";\n\n",
    );
    for d in decls(&cfg) {
        out.push_str("export ");
        out.push_str(d.trim());
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "/** Event emitted after every change; payload `{{ revision: number }}`. */\nexport const STATE_CHANGED_EVENT = {STATE_CHANGED_EVENT:?};\n\n"
    ));
    out.push_str(&format!(
        "/** Longest incident address the backend keeps, in characters. */\nexport const MAX_ADDRESS_CHARS = {MAX_ADDRESS_CHARS};\n\n\
         /** Longest description, note or closing summary the backend keeps, in characters. */\nexport const MAX_TEXT_CHARS = {MAX_TEXT_CHARS};\n\n\
         /** Range of `Settings.stale_after_s` the backend accepts, seconds. */\nexport const STALE_AFTER_S_MIN = {STALE_AFTER_S_MIN};\nexport const STALE_AFTER_S_MAX = {STALE_AFTER_S_MAX};\n\n"
    ));
    out.push_str(&domain_tables());
    for c in COMMANDS {
        out.push_str(&format!("/** {} */\n", c.doc));
        match c.args {
            Some(a) => out.push_str(&format!(
                "export function {}(args: {a}): Promise<{}> {{\n  return invoke(\"{}\", {{ args }});\n}}\n\n",
                c.ts_name, c.returns, c.name
            )),
            None => out.push_str(&format!(
                "export function {}(): Promise<{}> {{\n  return invoke(\"{}\");\n}}\n\n",
                c.ts_name, c.returns, c.name
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when `ui/src/bindings.ts` is stale. `UPDATE_BINDINGS=1` rewrites it.
    #[test]
    fn bindings_are_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings.ts");
        let want = typescript_bindings();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &want).expect("write bindings");
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p outpost-app bindings`"
        );
    }

    #[test]
    fn command_names_are_unique() {
        let mut names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
    }
}
