//! The replay on the real console: [`ReplayConsole`] (the [`DemoConsole`] of an
//! `outpost_app::Console`), and [`start`].
//!
//! Every change goes through a public `Console` use-case, so the domain rules, the op log
//! and the timelines apply to the demo as to a person. Who the changes are recorded as is
//! decided once, at start:
//! - a console that does not sync: `Console::acting_as(DEMO_USER, …)`, so the demo's actions
//!   read "demo" in the timelines and nothing else sees them;
//! - a console that syncs (`Console::syncs`): the signed-in person, with their role checked
//!   as for their own actions. The server takes ops only from its accounts and only what the
//!   author's role may write (issue 6), and its audit trail must name a person; "demo" is no
//!   account, so its ops would all be parked. On a viewer's console the replay writes
//!   nothing (each refusal is counted in its stats).

use std::sync::Arc;

use outpost_app::ipc::{CloseIncident, IncidentRef, NewIncident, SetUnitStatus, UnitOnIncident};
use outpost_app::{AppError, Console};
use outpost_domain::op::Fix;
use outpost_domain::{Disposition, Facility, LatLon, UnitStatus};
use outpost_geo::RoadNetwork;

use crate::replay::{
    DEMO_USER, DemoConsole, DemoHandle, DemoOptions, IncidentSnapshot, UnitSnapshot, start_with,
};
use crate::roster::{Roster, RosterUnit};

/// A console as the replay drives it: the console and who the replay writes as (see the
/// module documentation).
pub struct ReplayConsole {
    console: Arc<Console>,
    /// `None`: as [`DEMO_USER`] (`Console::acting_as`); `Some`: as the console's own user.
    person: Option<String>,
}

impl std::fmt::Debug for ReplayConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayConsole")
            .field("author", &self.author())
            .finish_non_exhaustive()
    }
}

impl ReplayConsole {
    /// The replay's view of `console`: as the signed-in person when a sync engine is attached
    /// now, else as [`DEMO_USER`].
    pub fn new(console: Arc<Console>) -> ReplayConsole {
        let person = console.syncs().then(|| console.user().to_owned());
        ReplayConsole { console, person }
    }

    /// Runs one use-case as the replay's author.
    fn act<T>(&self, f: impl FnOnce(&Console) -> T) -> T {
        match self.person {
            Some(_) => f(&self.console),
            None => self.console.acting_as(DEMO_USER, f),
        }
    }
}

impl DemoConsole for ReplayConsole {
    type Error = AppError;

    fn author(&self) -> String {
        self.person.clone().unwrap_or_else(|| DEMO_USER.to_owned())
    }

    fn register_facility(&self, facility: Facility) -> Result<(), AppError> {
        self.act(|c| c.register_facility(facility))
    }

    fn register_unit(&self, unit: &RosterUnit) -> Result<(), AppError> {
        self.act(|c| c.register_unit(&unit.id, &unit.callsign, unit.kind, Some(unit.home.clone())))
    }

    fn report_position(&self, unit_id: &str, fix: Fix) -> Result<(), AppError> {
        self.act(|c| c.report_position(unit_id, fix))
    }

    fn create_incident(&self, args: NewIncident) -> Result<String, AppError> {
        self.act(|c| c.create_incident(args)).map(|d| d.summary.id)
    }

    fn assign_unit(&self, incident_id: &str, unit_id: &str) -> Result<(), AppError> {
        self.act(|c| {
            c.assign_unit(UnitOnIncident {
                incident_id: incident_id.to_string(),
                unit_id: unit_id.to_string(),
            })
        })
        .map(|_| ())
    }

    fn set_unit_status(&self, unit_id: &str, to: UnitStatus) -> Result<(), AppError> {
        self.act(|c| {
            c.set_unit_status(SetUnitStatus {
                unit_id: unit_id.to_string(),
                to,
            })
        })
        .map(|_| ())
    }

    fn close_incident(
        &self,
        incident_id: &str,
        disposition: Disposition,
        summary: &str,
    ) -> Result<(), AppError> {
        self.act(|c| {
            c.close_incident(CloseIncident {
                incident_id: incident_id.to_string(),
                disposition,
                summary: summary.to_string(),
            })
        })
        .map(|_| ())
    }

    fn units(&self) -> Result<Vec<UnitSnapshot>, AppError> {
        Ok(self
            .console
            .console_state()?
            .units
            .into_iter()
            .map(|u| UnitSnapshot {
                unit_id: u.id,
                status: u.status,
                incident_id: u.incident_id,
            })
            .collect())
    }

    fn open_incidents(&self) -> Result<Vec<String>, AppError> {
        Ok(self
            .console
            .console_state()?
            .incidents
            .into_iter()
            .filter(|i| i.status != outpost_domain::IncidentStatus::Closed)
            .map(|i| i.id)
            .collect())
    }

    fn incident(&self, incident_id: &str) -> Result<Option<IncidentSnapshot>, AppError> {
        match self.console.incident_detail(IncidentRef {
            incident_id: incident_id.to_string(),
        }) {
            Ok(d) => Ok(Some(IncidentSnapshot {
                location: d.summary.location,
                created_by: d.created_by,
                closed: d.closed_at.is_some(),
                incident_type: d.summary.incident_type,
                assigned: d.summary.assigned.len(),
            })),
            Err(e) if e.code == outpost_app::ipc::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn road_network(&self) -> Option<RoadNetwork> {
        match self.console.pack()?.road_network() {
            Ok(net) => Some(net),
            Err(e) => {
                tracing::warn!(target: "outpost_demo", "no road network, units stay home: {e}");
                None
            }
        }
    }

    fn describe(&self, at: LatLon) -> Option<String> {
        self.console.pack()?.describe(at).ok().map(|d| d.address)
    }
}

/// Starts the `--demo` replay on `console`.
///
/// Before it returns, the roster's facilities and units are registered (idempotent: a
/// second launch re-registers the same ids and keeps unit statuses) and every unit has
/// reported a first position at its home facility, so the map shows every unit at once.
/// The replay then runs on its own thread until the handle is stopped or dropped.
///
/// It acts as [`DEMO_USER`], or as the signed-in person when the console syncs
/// ([`ReplayConsole::new`]); start it after the sync engine is attached (the sign-in does
/// that before the shell hears of the console).
///
/// The shell calls it once after opening the console with `demo: true`:
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(console: Arc<outpost_app::Console>) -> Result<(), outpost_demo::RosterError> {
/// let roster = outpost_demo::Roster::andorra()?;
/// let handle = outpost_demo::start(console, roster, outpost_demo::DemoOptions::default());
/// // keep `handle` alive as long as the window; dropping it stops the replay
/// # drop(handle); Ok(()) }
/// ```
pub fn start(console: Arc<Console>, roster: Roster, opts: DemoOptions) -> DemoHandle {
    start_with(Arc::new(ReplayConsole::new(console)), roster, opts)
}
