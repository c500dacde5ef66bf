//! Who may do what: the roles of Outpost's accounts and the permission of every op kind and
//! every server endpoint. The server enforces these on every request (a console hiding a
//! button is a convenience, not enforcement); consoles use the same table to grey out what a
//! role cannot do.
//!
//! Sources: the role list; China's MLPS 2.0 level 3 (GB/T 22239-2019 8.1.4.2: separate
//! administrator, security and audit roles, least privilege) and the FBI CJIS Security
//! Policy 5.9.5 §5.5 (access enforcement on the server). The separation of duties: an
//! administrator manages accounts and devices but writes no dispatch op and reads no audit
//! trail; only the auditor reads the audit trail, and writes nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::op::OpBody;

/// The role of an account. Exactly one per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Shift commander: every dispatch op, the roster, facilities, device bindings, road
    /// closures, conflict resolution.
    Commander,
    /// Dispatcher: incidents, assignments, unit statuses, notes, road closures, conflict
    /// resolution; not the roster, facilities or device bindings.
    Dispatcher,
    /// A field unit (a patrol car's laptop or a post): only its own unit's status,
    /// assignments' release, position, and notes on incidents it is assigned to.
    FieldUnit,
    /// Reads the picture, writes nothing.
    Viewer,
    /// Manages accounts and devices; no dispatch op, no audit trail, no picture.
    Administrator,
    /// Reads the audit trail; writes nothing, no picture.
    Auditor,
}

impl Role {
    /// Every role, in the order shown to people.
    pub const ALL: [Role; 6] = [
        Role::Commander,
        Role::Dispatcher,
        Role::FieldUnit,
        Role::Viewer,
        Role::Administrator,
        Role::Auditor,
    ];

    /// The stored and wire form: `commander`, `dispatcher`, `field_unit`, `viewer`,
    /// `administrator`, `auditor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Commander => "commander",
            Role::Dispatcher => "dispatcher",
            Role::FieldUnit => "field_unit",
            Role::Viewer => "viewer",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
        }
    }

    /// Whether this role may read the dispatch picture (pull, snapshot, poke).
    pub fn reads_picture(self) -> bool {
        matches!(
            self,
            Role::Commander | Role::Dispatcher | Role::FieldUnit | Role::Viewer
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}; one of commander, dispatcher, field_unit, viewer, administrator, auditor"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// The person behind a request or an op, as the server knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Login name.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// For [`Role::FieldUnit`]: the unit id the account is bound to (`None` for a field
    /// account bound to no unit, which may then write nothing).
    pub unit_id: Option<String>,
}

/// Why an op or a request was refused; the text names the role and the action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forbidden: {0}")]
pub struct Forbidden(pub String);

/// Whether `actor` may write `op`.
///
/// `unit_on_incident(unit_id, incident_id)` answers whether the unit has (or had) an
/// assignment to the incident in the deciding replica's state; it is asked only for a field
/// unit's note. Ops written by the server's own ingest gateway are not checked here (the
/// gateway is not a person; its input is checked by `check_fix` and the device listeners'
/// own authentication).
///
/// # Errors
/// [`Forbidden`] naming the role, the op kind and, for a field unit, the unit.
pub fn check_op(
    actor: &Actor,
    op: &OpBody,
    unit_on_incident: &dyn Fn(&str, Uuid) -> bool,
) -> Result<(), Forbidden> {
    let kind = op_kind(op);
    let deny = |why: &str| {
        Err(Forbidden(format!(
            "{} {:?} may not write {kind}{why}",
            actor.role, actor.user
        )))
    };
    match actor.role {
        Role::Viewer | Role::Administrator | Role::Auditor => deny(""),
        Role::Commander => Ok(()),
        Role::Dispatcher => match op {
            OpBody::UnitRegister { .. }
            | OpBody::FacilityRegister { .. }
            | OpBody::DeviceBind { .. }
            | OpBody::DeviceReport { .. } => deny(" (commanders manage the roster and devices)"),
            _ => Ok(()),
        },
        Role::FieldUnit => {
            let Some(own) = actor.unit_id.as_deref() else {
                return deny(" (the account is bound to no unit)");
            };
            let own_unit = |unit_id: &str| unit_id == own;
            let ok = match op {
                OpBody::UnitSetStatus {
                    unit_id, releases, ..
                } => own_unit(unit_id) && releases.iter().all(|r| own_unit(&r.unit_id)),
                OpBody::AssignmentRelease { unit_id, .. } => own_unit(unit_id),
                OpBody::PositionReport { unit_id, .. } => own_unit(unit_id),
                OpBody::TimelineAppend { incident_id, .. } => unit_on_incident(own, *incident_id),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                deny(&format!(
                    " (a field unit changes only its own unit {own:?}: its status, position and \
                     notes on its incidents)"
                ))
            }
        }
    }
}

/// The `kind` tag of an op, e.g. `"incident.create"` (the same text as its JSON).
pub fn op_kind(op: &OpBody) -> &'static str {
    match op {
        OpBody::IncidentCreate { .. } => "incident.create",
        OpBody::IncidentSetFields { .. } => "incident.set_fields",
        OpBody::IncidentAcknowledge { .. } => "incident.acknowledge",
        OpBody::IncidentClose { .. } => "incident.close",
        OpBody::UnitSetStatus { .. } => "unit.set_status",
        OpBody::AssignmentAdd { .. } => "assignment.add",
        OpBody::AssignmentRelease { .. } => "assignment.release",
        OpBody::TimelineAppend { .. } => "timeline.append",
        OpBody::PositionReport { .. } => "position.report",
        OpBody::UnitRegister { .. } => "unit.register",
        OpBody::FacilityRegister { .. } => "facility.register",
        OpBody::DeviceBind { .. } => "device.bind",
        OpBody::DeviceReport { .. } => "device.report",
        OpBody::RoadClosureSet { .. } => "road_closure.set",
        OpBody::ConflictResolve { .. } => "conflict.resolve",
    }
}

/// The server's endpoints that need a signed-in user, for [`check_endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/push` (each op is then checked by [`check_op`]).
    Push,
    /// `GET /v1/pull`.
    Pull,
    /// `GET /v1/snapshot`.
    Snapshot,
    /// `GET /v1/poke` (WebSocket).
    Poke,
    /// `GET /v1/ingest/stats`.
    IngestStats,
    /// `GET /v1/security/revocations` (what consoles must honour offline).
    Revocations,
    /// `GET /v1/audit`.
    Audit,
    /// `/v1/admin/…` (accounts, devices, device tokens).
    Admin,
}

impl Endpoint {
    /// Every endpoint, for matrices.
    pub const ALL: [Endpoint; 8] = [
        Endpoint::Push,
        Endpoint::Pull,
        Endpoint::Snapshot,
        Endpoint::Poke,
        Endpoint::IngestStats,
        Endpoint::Revocations,
        Endpoint::Audit,
        Endpoint::Admin,
    ];

    /// The method and path, e.g. `"GET /v1/pull"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Push => "POST /v1/push",
            Endpoint::Pull => "GET /v1/pull",
            Endpoint::Snapshot => "GET /v1/snapshot",
            Endpoint::Poke => "GET /v1/poke",
            Endpoint::IngestStats => "GET /v1/ingest/stats",
            Endpoint::Revocations => "GET /v1/security/revocations",
            Endpoint::Audit => "GET /v1/audit",
            Endpoint::Admin => "/v1/admin/",
        }
    }
}

/// Whether `role` may call `endpoint` at all.
///
/// Push: every role that writes some op (commander, dispatcher, field unit); a viewer's,
/// administrator's or auditor's push is refused whole. Pull, snapshot, poke: the roles that
/// read the picture ([`Role::reads_picture`]). Ingest statistics: commander, administrator.
/// Revocations: every role (a console must learn them whoever is signed in). Audit: auditor
/// only. Admin: administrator only.
///
/// # Errors
/// [`Forbidden`] naming the role and the endpoint.
pub fn check_endpoint(role: Role, endpoint: Endpoint) -> Result<(), Forbidden> {
    let ok = match endpoint {
        Endpoint::Push => matches!(role, Role::Commander | Role::Dispatcher | Role::FieldUnit),
        Endpoint::Pull | Endpoint::Snapshot | Endpoint::Poke => role.reads_picture(),
        Endpoint::IngestStats => matches!(role, Role::Commander | Role::Administrator),
        Endpoint::Revocations => true,
        Endpoint::Audit => role == Role::Auditor,
        Endpoint::Admin => role == Role::Administrator,
    };
    if ok {
        Ok(())
    } else {
        Err(Forbidden(format!(
            "{role} may not call {}",
            endpoint.as_str()
        )))
    }
}
