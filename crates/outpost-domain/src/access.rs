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

/// What [`check_op`] needs to know of the deciding replica's state (the server's replica
/// inside the push's transaction, or the console's local cache before a write).
pub trait AccessContext {
    /// Whether unit `unit_id` has (or had) an assignment to incident `incident_id`; asked
    /// only for a field unit's note.
    fn unit_on_incident(&self, unit_id: &str, incident_id: Uuid) -> bool;

    /// The unit and incident of assignment `assignment_id` (released or not), or `None`
    /// when the replica has no such assignment; asked only for a field unit's releases.
    fn assignment(&self, assignment_id: Uuid) -> Option<(String, Uuid)>;
}

/// Whether `actor` may write `op`.
///
/// `ctx` answers from the deciding replica's state ([`AccessContext`]). A field unit writes
/// only its own unit's status and position, notes on incidents its unit is (or was) assigned
/// to, and releases of its own unit's assignments: every assignment it releases
/// (`assignment.release`, each `releases` entry of `unit.set_status`) must be, in the
/// replica, an assignment of its own unit on the incident the release names — an op naming
/// its own unit with another unit's assignment id, or an assignment the replica does not
/// know, is refused (security review S1). Ops written by the server's own ingest gateway
/// are not checked here (the gateway is not a person; its input is checked by `check_fix`
/// and the device listeners' own authentication).
///
/// # Errors
/// [`Forbidden`] naming the role, the op kind and, for a field unit, the unit (and the
/// assignment when a release is refused).
pub fn check_op(actor: &Actor, op: &OpBody, ctx: &dyn AccessContext) -> Result<(), Forbidden> {
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
            let not_own = || {
                format!(
                    " (a field unit changes only its own unit {own:?}: its status, position and \
                     notes on its incidents)"
                )
            };
            // A release of `assignment_id` naming `unit_id` on `incident_id`: the name must
            // be its own unit and the replica's assignment must be that unit's on that
            // incident.
            let release_refusal = |assignment_id: Uuid, incident_id: Uuid, unit_id: &str| {
                if !own_unit(unit_id) {
                    return Some(format!(
                        " (a field unit releases only its own unit {own:?}'s assignments)"
                    ));
                }
                match ctx.assignment(assignment_id) {
                    Some((unit, incident)) if unit == own && incident == incident_id => None,
                    Some(_) => Some(format!(
                        " (assignment {assignment_id} is not an assignment of its own unit \
                         {own:?} on incident {incident_id})"
                    )),
                    None => Some(format!(" (assignment {assignment_id} is unknown)")),
                }
            };
            let refusal = match op {
                OpBody::UnitSetStatus {
                    unit_id, releases, ..
                } => {
                    if own_unit(unit_id) {
                        releases.iter().find_map(|r| {
                            release_refusal(r.assignment_id, r.incident_id, &r.unit_id)
                        })
                    } else {
                        Some(not_own())
                    }
                }
                OpBody::AssignmentRelease {
                    assignment_id,
                    incident_id,
                    unit_id,
                    ..
                } => release_refusal(*assignment_id, *incident_id, unit_id),
                OpBody::PositionReport { unit_id, .. } if own_unit(unit_id) => None,
                OpBody::TimelineAppend { incident_id, .. }
                    if ctx.unit_on_incident(own, *incident_id) =>
                {
                    None
                }
                _ => Some(not_own()),
            };
            match refusal {
                None => Ok(()),
                Some(why) => deny(&why),
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::op::Release;
    use crate::unit::UnitStatus;

    /// A replica with assignments by id (unit, incident).
    struct Replica(HashMap<Uuid, (String, Uuid)>);

    impl AccessContext for Replica {
        fn unit_on_incident(&self, unit_id: &str, incident_id: Uuid) -> bool {
            self.0
                .values()
                .any(|(u, i)| u == unit_id && *i == incident_id)
        }
        fn assignment(&self, assignment_id: Uuid) -> Option<(String, Uuid)> {
            self.0.get(&assignment_id).cloned()
        }
    }

    fn field_unit() -> Actor {
        Actor {
            user: "p01".into(),
            role: Role::FieldUnit,
            unit_id: Some("P-01".into()),
        }
    }

    fn release(assignment_id: Uuid, incident_id: Uuid, unit_id: &str) -> OpBody {
        OpBody::AssignmentRelease {
            assignment_id,
            incident_id,
            unit_id: unit_id.into(),
            unit_to: None,
        }
    }

    fn set_status_releasing(assignment_id: Uuid, incident_id: Uuid) -> OpBody {
        OpBody::UnitSetStatus {
            unit_id: "P-01".into(),
            from: UnitStatus::OnScene,
            to: UnitStatus::Available,
            releases: vec![Release {
                assignment_id,
                incident_id,
                unit_id: "P-01".into(),
                unit_to: None,
            }],
        }
    }

    #[test]
    fn a_field_unit_releases_only_its_own_units_assignments() {
        let (own, other, unknown) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (incident, elsewhere) = (Uuid::now_v7(), Uuid::now_v7());
        let replica = Replica(HashMap::from([
            (own, ("P-01".to_string(), incident)),
            (other, ("P-07".to_string(), incident)),
        ]));
        let actor = field_unit();
        // Its own assignment, by either op.
        assert_eq!(
            check_op(&actor, &release(own, incident, "P-01"), &replica),
            Ok(())
        );
        assert_eq!(
            check_op(&actor, &set_status_releasing(own, incident), &replica),
            Ok(())
        );
        // Another unit's assignment named with its own unit (review S1), by either op.
        let err = check_op(&actor, &release(other, incident, "P-01"), &replica)
            .expect_err("another unit's assignment");
        assert_eq!(
            err.0,
            format!(
                "field_unit \"p01\" may not write assignment.release (assignment {other} is not \
                 an assignment of its own unit \"P-01\" on incident {incident})"
            )
        );
        let err = check_op(&actor, &set_status_releasing(other, incident), &replica)
            .expect_err("another unit's assignment in releases");
        assert!(
            err.0
                .starts_with("field_unit \"p01\" may not write unit.set_status")
        );
        assert!(
            err.0.contains(&format!("assignment {other} is not")),
            "{err}"
        );
        // Its own assignment named on another incident.
        assert!(check_op(&actor, &release(own, elsewhere, "P-01"), &replica).is_err());
        assert!(check_op(&actor, &set_status_releasing(own, elsewhere), &replica).is_err());
        // An assignment the replica does not know.
        let err = check_op(&actor, &release(unknown, incident, "P-01"), &replica)
            .expect_err("unknown assignment");
        assert!(
            err.0
                .ends_with(&format!("(assignment {unknown} is unknown)")),
            "{err}"
        );
        assert!(check_op(&actor, &set_status_releasing(unknown, incident), &replica).is_err());
        // Another unit's name, as before.
        assert!(check_op(&actor, &release(other, incident, "P-07"), &replica).is_err());
        // A dispatcher releases any assignment.
        let dispatcher = Actor {
            user: "d".into(),
            role: Role::Dispatcher,
            unit_id: None,
        };
        assert_eq!(
            check_op(&dispatcher, &release(other, incident, "P-07"), &replica),
            Ok(())
        );
    }
}
