//! One Tauri command per entry of [`outpost_app::ipc::COMMANDS`], each forwarding to the
//! same-named [`Gate`](outpost_app::auth::Gate) method (the sign-in commands) or
//! [`Console`] method (every other one, on the signed-in console: `signed_out` when nobody is
//! signed in or the console is locked). No logic lives here.
//!
//! Commands are `async` and run the (blocking, SQLite) use-case on Tauri's blocking pool, so
//! a slow disk never freezes the window's event loop. The single argument is always named
//! `args`, as the generated `ui/src/bindings.ts` sends it; errors reject with
//! [`ErrorPayload`] (`{code, message}`).

use std::sync::Arc;

use outpost_app::ipc::{
    AddNote, AuthStatus, BindDevice, ChangePassword, CloseIncident, ClosestUnits, ClosureRef,
    ConflictView, ConsoleState, CoverageView, DeviceView, EnrollDevice, ErrorCode, ErrorPayload,
    ExportTrack, ExportedTrack, FieldRoute, FieldView, ImportFacilities, ImportReport,
    IncidentDetail, IncidentRef, LocationDescription, NewIncident, NewRoadClosure, ParkedOp,
    PlaceHit, PlaceQuery, ResolveConflict, RoadClosureView, RoadLineQuery, SetUnitStatus, Settings,
    SetupAccount, SignIn, Startup, SyncStatus, TotpCode, TotpEnrollment, Track, TrackQuery,
    UnitOnIncident, UnitView, Unlock, UpdateIncident,
};
use outpost_domain::LatLon;
use tauri::State;

use outpost_app::{AppError, Console};

use crate::session::Shell;

/// The managed state every command receives: the Gate and what runs for its console.
pub type SharedShell = Arc<Shell>;

/// Runs `f` on the signed-in console on the blocking pool and turns its error into the IPC
/// payload; `signed_out` when nobody is signed in or the console is locked.
async fn blocking<T, F>(shell: &State<'_, SharedShell>, f: F) -> Result<T, ErrorPayload>
where
    T: Send + 'static,
    F: FnOnce(&Console) -> Result<T, AppError> + Send + 'static,
{
    on_shell(shell, move |s| f(&*s.console()?)).await
}

/// Runs `f` on the shell (the sign-in commands) on the blocking pool: argon2 and the
/// server's answer take time.
async fn on_shell<T, F>(shell: &State<'_, SharedShell>, f: F) -> Result<T, ErrorPayload>
where
    T: Send + 'static,
    F: FnOnce(&Shell) -> Result<T, AppError> + Send + 'static,
{
    let shell = Arc::clone(shell.inner());
    match tauri::async_runtime::spawn_blocking(move || f(&shell)).await {
        Ok(result) => result.map_err(ErrorPayload::from),
        Err(join) => Err(ErrorPayload {
            code: ErrorCode::Storage,
            message: format!("the console backend failed while handling the request: {join}"),
        }),
    }
}

/// Where sign-in stands (the UI asks every few seconds; when the Gate dropped the console on
/// its own — a revoked device — what ran for it stops here).
#[tauri::command]
async fn auth_status(console: State<'_, SharedShell>) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, |s| Ok(s.after_sign_out(s.gate().auth_status()))).await
}

/// A console without a server: starts its first account; returns the TOTP secret.
#[tauri::command]
async fn setup_account(
    console: State<'_, SharedShell>,
    args: SetupAccount,
) -> Result<TotpEnrollment, ErrorPayload> {
    on_shell(&console, move |s| s.gate().setup_account(args)).await
}

/// Confirms the first account with a current code; signs in.
#[tauri::command]
async fn confirm_setup(
    console: State<'_, SharedShell>,
    args: TotpCode,
) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, move |s| {
        s.after_sign_in(s.gate().confirm_setup(args)?)
    })
    .await
}

/// Enrolls this device with the server, then signs the person in.
#[tauri::command]
async fn enroll_device(
    console: State<'_, SharedShell>,
    args: EnrollDevice,
) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, move |s| {
        s.after_sign_in(s.gate().enroll_device(args)?)
    })
    .await
}

/// Signs in online, or offline from the vault.
#[tauri::command]
async fn sign_in(
    console: State<'_, SharedShell>,
    args: SignIn,
) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, move |s| s.after_sign_in(s.gate().sign_in(args)?)).await
}

/// The signed-in person changes their password; a required change (`password_change`)
/// opens the console once done.
#[tauri::command]
async fn change_password(
    console: State<'_, SharedShell>,
    args: ChangePassword,
) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, move |s| {
        s.after_sign_in(s.gate().change_password(args)?)
    })
    .await
}

/// Unlocks for the same person.
#[tauri::command]
async fn unlock(console: State<'_, SharedShell>, args: Unlock) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, move |s| s.after_sign_in(s.gate().unlock(args)?)).await
}

/// Locks the console (sync, field GPS and the replay keep running).
#[tauri::command]
async fn lock(console: State<'_, SharedShell>) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, |s| Ok(s.gate().lock())).await
}

/// Signs the person out; what ran for the console stops.
#[tauri::command]
async fn sign_out(console: State<'_, SharedShell>) -> Result<AuthStatus, ErrorPayload> {
    on_shell(&console, |s| Ok(s.after_sign_out(s.gate().sign_out()))).await
}

/// The open pack, settings and user for the console, or the pack error screen.
#[tauri::command]
async fn startup(console: State<'_, SharedShell>) -> Result<Startup, ErrorPayload> {
    blocking(&console, |c| Ok(c.startup())).await
}

/// The live picture: units, incidents, facilities.
#[tauri::command]
async fn console_state(console: State<'_, SharedShell>) -> Result<ConsoleState, ErrorPayload> {
    blocking(&console, Console::console_state).await
}

/// One incident with its assignments and timeline.
#[tauri::command]
async fn incident_detail(
    console: State<'_, SharedShell>,
    args: IncidentRef,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.incident_detail(args)).await
}

/// Creates an incident (on disk before it resolves).
#[tauri::command]
async fn create_incident(
    console: State<'_, SharedShell>,
    args: NewIncident,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.create_incident(args)).await
}

/// Changes type, priority, location, address or description.
#[tauri::command]
async fn update_incident(
    console: State<'_, SharedShell>,
    args: UpdateIncident,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.update_incident(args)).await
}

/// Marks the incident as seen by a commander.
#[tauri::command]
async fn acknowledge_incident(
    console: State<'_, SharedShell>,
    args: IncidentRef,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.acknowledge_incident(args)).await
}

/// Dispatches an available unit to the incident.
#[tauri::command]
async fn assign_unit(
    console: State<'_, SharedShell>,
    args: UnitOnIncident,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.assign_unit(args)).await
}

/// Releases (clears) a unit from the incident.
#[tauri::command]
async fn release_unit(
    console: State<'_, SharedShell>,
    args: UnitOnIncident,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.release_unit(args)).await
}

/// Changes a unit's status; illegal transitions are refused.
#[tauri::command]
async fn set_unit_status(
    console: State<'_, SharedShell>,
    args: SetUnitStatus,
) -> Result<UnitView, ErrorPayload> {
    blocking(&console, move |c| c.set_unit_status(args)).await
}

/// Appends a note to the incident's timeline.
#[tauri::command]
async fn add_note(
    console: State<'_, SharedShell>,
    args: AddNote,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.add_note(args)).await
}

/// Closes with a disposition, releasing every unit.
#[tauri::command]
async fn close_incident(
    console: State<'_, SharedShell>,
    args: CloseIncident,
) -> Result<IncidentDetail, ErrorPayload> {
    blocking(&console, move |c| c.close_incident(args)).await
}

/// Offline search of the pack's streets, places, POIs and addresses.
#[tauri::command]
async fn search_places(
    console: State<'_, SharedShell>,
    args: PlaceQuery,
) -> Result<Vec<PlaceHit>, ErrorPayload> {
    blocking(&console, move |c| c.search_places(args)).await
}

/// Street + nearest named place for a point.
#[tauri::command]
async fn describe_location(
    console: State<'_, SharedShell>,
    args: LatLon,
) -> Result<LocationDescription, ErrorPayload> {
    blocking(&console, move |c| c.describe_location(args)).await
}

/// The connection indicator: online/syncing/offline, pending ops per lane, last sync.
#[tauri::command]
async fn sync_status(console: State<'_, SharedShell>) -> Result<SyncStatus, ErrorPayload> {
    blocking(&console, Console::sync_status).await
}

/// Open conflicts, both sides with who and when.
#[tauri::command]
async fn conflicts(console: State<'_, SharedShell>) -> Result<Vec<ConflictView>, ErrorPayload> {
    blocking(&console, Console::conflicts).await
}

/// Resolves one conflict with an explicit decision (an op that syncs); the conflicts left.
#[tauri::command]
async fn resolve_conflict(
    console: State<'_, SharedShell>,
    args: ResolveConflict,
) -> Result<Vec<ConflictView>, ErrorPayload> {
    blocking(&console, move |c| c.resolve_conflict(args)).await
}

/// Ops the server refused, with its reason (needs attention).
#[tauri::command]
async fn parked_ops(console: State<'_, SharedShell>) -> Result<Vec<ParkedOp>, ErrorPayload> {
    blocking(&console, Console::parked_ops).await
}

/// The stored settings.
#[tauri::command]
async fn get_settings(console: State<'_, SharedShell>) -> Result<Settings, ErrorPayload> {
    blocking(&console, Console::get_settings).await
}

/// Stores the settings.
#[tauri::command]
async fn save_settings(
    console: State<'_, SharedShell>,
    args: Settings,
) -> Result<Settings, ErrorPayload> {
    blocking(&console, move |c| c.save_settings(args)).await
}

/// The device registry: unbound devices first, then bound ones.
#[tauri::command]
async fn list_devices(console: State<'_, SharedShell>) -> Result<Vec<DeviceView>, ErrorPayload> {
    blocking(&console, Console::list_devices).await
}

/// Binds a device to a unit or unbinds it.
#[tauri::command]
async fn bind_device(
    console: State<'_, SharedShell>,
    args: BindDevice,
) -> Result<DeviceView, ErrorPayload> {
    blocking(&console, move |c| c.bind_device(args)).await
}

/// A unit's position history in a time window.
#[tauri::command]
async fn unit_track(
    console: State<'_, SharedShell>,
    args: TrackQuery,
) -> Result<Track, ErrorPayload> {
    blocking(&console, move |c| c.unit_track(args)).await
}

/// Writes a unit's track as GPX or KML into the export folder.
#[tauri::command]
async fn export_track(
    console: State<'_, SharedShell>,
    args: ExportTrack,
) -> Result<ExportedTrack, ErrorPayload> {
    blocking(&console, move |c| c.export_track(args)).await
}

/// Field laptop mode: this console's unit, its assignment and receiver; null otherwise.
#[tauri::command]
async fn field_view(console: State<'_, SharedShell>) -> Result<Option<FieldView>, ErrorPayload> {
    blocking(&console, Console::field_view).await
}

/// Field laptop mode: the unit acknowledges its assignment.
#[tauri::command]
async fn acknowledge_assignment(
    console: State<'_, SharedShell>,
) -> Result<FieldView, ErrorPayload> {
    blocking(&console, Console::acknowledge_assignment).await
}

/// Available units ranked by road ETA to the incident; routes for the first five.
#[tauri::command]
async fn closest_units(
    console: State<'_, SharedShell>,
    args: IncidentRef,
) -> Result<ClosestUnits, ErrorPayload> {
    blocking(&console, move |c| c.closest_units(args)).await
}

/// Field laptop: the route from this unit to its assignment.
#[tauri::command]
async fn field_route(console: State<'_, SharedShell>) -> Result<Option<FieldRoute>, ErrorPayload> {
    blocking(&console, Console::field_route).await
}

/// 1-3-5 minute reach of facilities and available units, and the share of roads covered.
#[tauri::command]
async fn coverage(console: State<'_, SharedShell>) -> Result<CoverageView, ErrorPayload> {
    blocking(&console, Console::coverage).await
}

/// Road closures, active first.
#[tauri::command]
async fn road_closures(
    console: State<'_, SharedShell>,
) -> Result<Vec<RoadClosureView>, ErrorPayload> {
    blocking(&console, Console::road_closures).await
}

/// Closes a road or an area (or changes a closure).
#[tauri::command]
async fn set_road_closure(
    console: State<'_, SharedShell>,
    args: NewRoadClosure,
) -> Result<RoadClosureView, ErrorPayload> {
    blocking(&console, move |c| c.set_road_closure(args)).await
}

/// Lifts a road closure.
#[tauri::command]
async fn lift_road_closure(
    console: State<'_, SharedShell>,
    args: ClosureRef,
) -> Result<RoadClosureView, ErrorPayload> {
    blocking(&console, move |c| c.lift_road_closure(args)).await
}

/// The road line through points clicked along a road.
#[tauri::command]
async fn road_line(
    console: State<'_, SharedShell>,
    args: RoadLineQuery,
) -> Result<Vec<LatLon>, ErrorPayload> {
    blocking(&console, move |c| c.road_line(args)).await
}

/// Imports stations, posts and checkpoints from CSV or GeoJSON in a declared datum.
#[tauri::command]
async fn import_facilities(
    console: State<'_, SharedShell>,
    args: ImportFacilities,
) -> Result<ImportReport, ErrorPayload> {
    blocking(&console, move |c| c.import_facilities(args)).await
}

/// Declares the registered commands once, so the handler and the name list cannot drift.
macro_rules! registered {
    ($($name:ident),* $(,)?) => {
        /// Names of the commands the handler registers, in registration order.
        pub const REGISTERED: &[&str] = &[$(stringify!($name)),*];

        /// The invoke handler with every command of [`REGISTERED`].
        pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }
    };
}

registered![
    auth_status,
    setup_account,
    confirm_setup,
    enroll_device,
    sign_in,
    unlock,
    change_password,
    lock,
    sign_out,
    startup,
    console_state,
    incident_detail,
    create_incident,
    update_incident,
    acknowledge_incident,
    assign_unit,
    release_unit,
    set_unit_status,
    add_note,
    close_incident,
    search_places,
    describe_location,
    sync_status,
    conflicts,
    resolve_conflict,
    parked_ops,
    get_settings,
    save_settings,
    list_devices,
    bind_device,
    unit_track,
    export_track,
    field_view,
    acknowledge_assignment,
    closest_units,
    field_route,
    coverage,
    road_closures,
    set_road_closure,
    lift_road_closure,
    road_line,
    import_facilities,
];

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_app::ipc::COMMANDS;

    /// The shell registers exactly the commands of the IPC contract, in the same order.
    #[test]
    fn registered_commands_equal_the_contract() {
        let contract: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(REGISTERED, contract.as_slice());
    }
}
