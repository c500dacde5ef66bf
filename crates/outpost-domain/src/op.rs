//! Sync operations, in the format of `design/SYNC.md` (principle 2).
//!
//! Every user action is one [`OpEnvelope`]: a stable `op_id` (UUIDv7), the `origin`
//! (one id per installation), a gap-free per-origin `seq`, a hybrid logical clock stamp,
//! the server version the author last saw (`base_version`), the user and the schema version.
//! The body is an explicit domain operation, never a row diff. JSON wire form:
//!
//! ```json
//! {"op_id":"0193…","origin":"0193…","seq":7,"hlc":{"wall_ms":1764400000000,"logical":0},
//!  "base_version":null,"user":"cmdr.li","schema":1,"lane":"critical","lane_seq":5,
//!  "body":{"kind":"unit.set_status","unit_id":"u-01","from":"dispatched","to":"en_route",
//!          "releases":[]}}
//! ```
//!
//! Every op says exactly what it writes: an op that ends assignments (a close, a status
//! change to a free status, a conflict resolution) names them in `releases`, decided by the
//! author when it was written. That is what makes the merge rules of [`crate::merge`] pure
//! functions of the *set* of ops (SYNC.md principle 13): nothing depends on what else a
//! replica happened to have applied first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::facility::Facility;
use crate::geo::LatLon;
use crate::incident::{Disposition, IncidentType, Priority};
use crate::unit::{UnitKind, UnitStatus};

/// The op schema version this build writes. Bumped when a body changes shape.
pub const SCHEMA_VERSION: u32 = 1;

/// Sync lanes (SYNC.md principle 8): critical before notes, notes before positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Incidents, assignments, statuses, registry.
    Critical,
    /// Timeline notes.
    Notes,
    /// Position reports.
    Positions,
}

/// A hybrid logical clock stamp: wall-clock milliseconds since the Unix epoch (UTC) and a
/// logical counter that breaks ties and survives a wall clock that jumps back
/// (Kulkarni et al., "Logical Physical Clocks", 2014). Ordered by (wall_ms, logical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hlc {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub wall_ms: i64,
    /// Counter within the same `wall_ms`.
    pub logical: u32,
}

impl Hlc {
    /// The stamp for a local event, given the last stamp this origin issued and the wall
    /// clock now (ms). Never goes backwards, whatever the wall clock does.
    pub fn tick(last: Hlc, now_ms: i64) -> Hlc {
        if now_ms > last.wall_ms {
            Hlc {
                wall_ms: now_ms,
                logical: 0,
            }
        } else {
            Hlc {
                wall_ms: last.wall_ms,
                logical: last.logical.saturating_add(1),
            }
        }
    }

    /// The stamp after receiving a remote stamp `remote`, so that local events that follow
    /// are ordered after everything already seen.
    pub fn receive(last: Hlc, remote: Hlc, now_ms: i64) -> Hlc {
        let wall = now_ms.max(last.wall_ms).max(remote.wall_ms);
        let logical = if wall == last.wall_ms && wall == remote.wall_ms {
            last.logical.max(remote.logical).saturating_add(1)
        } else if wall == last.wall_ms {
            last.logical.saturating_add(1)
        } else if wall == remote.wall_ms {
            remote.logical.saturating_add(1)
        } else {
            0
        };
        Hlc {
            wall_ms: wall,
            logical,
        }
    }
}

/// One sync operation with its metadata. See the module doc for the wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpEnvelope {
    /// Stable id (UUIDv7); the idempotency key.
    pub op_id: Uuid,
    /// The installation that wrote it.
    pub origin: Uuid,
    /// Gap-free per-origin sequence number, from 1.
    pub seq: u64,
    /// Hybrid logical clock stamp when written.
    pub hlc: Hlc,
    /// The server version the author last saw: the global sequence number (`gseq`) of the
    /// newest server op this origin had pulled when it wrote the op (its pull cursor), never
    /// lower than the `base_version` of this origin's previous op. `None` before any sync
    /// (read as 0). [`crate::merge`] uses it for causality ("the author had seen op X") and as
    /// the first part of the register order, so a stale write never beats an informed one.
    pub base_version: Option<u64>,
    /// Login name of the person who acted.
    pub user: String,
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema: u32,
    /// The lane it travels in; always [`OpBody::lane`] of the body.
    pub lane: Lane,
    /// Gap-free per-(origin, lane) sequence number, from 1: lanes are pushed independently
    /// (critical first), and the server keeps one high-water mark per origin and lane.
    pub lane_seq: u64,
    /// The operation.
    pub body: OpBody,
    /// The author's signature (issue 6, review S2):
    /// `KEYID.HEX(HMAC-SHA256(op_key, signed bytes))` with the op key the server issued to
    /// this person on this device at an online login; the signed bytes are defined in
    /// [`crate::op_auth::signed_bytes`] (this envelope's JSON without `auth`). Absent on ops
    /// of the ingest gateway, of consoles before issue 6 and of tests that run without
    /// accounts; absent from the JSON when `None`, so older envelopes parse unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// A fix: one position of a unit as measured by its receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Fix {
    /// Where (WGS-84).
    pub position: LatLon,
    /// When the receiver measured it (UTC). Positions are ordered by this, not arrival.
    pub fix_time: DateTime<Utc>,
    /// Course over ground, degrees clockwise from true north, 0..360.
    pub heading_deg: Option<f64>,
    /// Speed over ground, metres per second.
    pub speed_mps: Option<f64>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f64>,
}

/// Changes to the mutable fields of an incident. `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentFields {
    /// New type.
    pub incident_type: Option<IncidentType>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New location (WGS-84).
    pub location: Option<LatLon>,
    /// New address text.
    pub address: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// One assignment ended by an op, as the author decided it when writing the op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Release {
    /// The assignment that ends.
    pub assignment_id: Uuid,
    /// Its incident.
    pub incident_id: Uuid,
    /// Its unit.
    pub unit_id: String,
    /// The unit's status after the release (`available` when the author saw no other
    /// active assignment of the unit); `None` leaves the unit's status alone.
    pub unit_to: Option<UnitStatus>,
}

/// The domain operations. Serialized with a `kind` tag such as `"incident.create"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum OpBody {
    /// A new incident.
    #[serde(rename = "incident.create")]
    IncidentCreate {
        /// New id (UUIDv7).
        incident_id: Uuid,
        /// Human-readable number, e.g. `"20261129-0007"` (local date + origin-local count).
        number: String,
        /// Type.
        incident_type: IncidentType,
        /// Priority.
        priority: Priority,
        /// Location (WGS-84).
        location: LatLon,
        /// Address text (street + nearest named place).
        address: String,
        /// What the caller said.
        description: String,
    },
    /// Per-field register writes (SYNC.md principle 5).
    #[serde(rename = "incident.set_fields")]
    IncidentSetFields {
        /// Target.
        incident_id: Uuid,
        /// Fields to change.
        fields: IncidentFields,
    },
    /// A commander has seen the incident (stops the unacknowledged-P1 alert).
    #[serde(rename = "incident.acknowledge")]
    IncidentAcknowledge {
        /// Target.
        incident_id: Uuid,
    },
    /// Closed with a disposition; ends the assignments the author saw active.
    #[serde(rename = "incident.close")]
    IncidentClose {
        /// Target.
        incident_id: Uuid,
        /// How it ended.
        disposition: Disposition,
        /// Free-text closing summary (may be empty).
        summary: String,
        /// The assignments this close ends (those active at the author).
        #[serde(default)]
        releases: Vec<Release>,
    },
    /// A unit's status changed by a person (not by assignment).
    #[serde(rename = "unit.set_status")]
    UnitSetStatus {
        /// Target.
        unit_id: String,
        /// The status the author saw (for conflict detection).
        from: UnitStatus,
        /// New status.
        to: UnitStatus,
        /// Assignments this change ends (a change to a free status ends the unit's active
        /// assignments the author saw; their `unit_to` is `None`, `to` is the status).
        #[serde(default)]
        releases: Vec<Release>,
    },
    /// A unit dispatched to an incident; the unit becomes `dispatched`.
    #[serde(rename = "assignment.add")]
    AssignmentAdd {
        /// New id (UUIDv7).
        assignment_id: Uuid,
        /// Incident.
        incident_id: Uuid,
        /// Unit.
        unit_id: String,
    },
    /// An assignment ended (the unit cleared or was taken off the incident).
    #[serde(rename = "assignment.release")]
    AssignmentRelease {
        /// The assignment.
        assignment_id: Uuid,
        /// Incident.
        incident_id: Uuid,
        /// Unit.
        unit_id: String,
        /// The unit's status afterwards (`available` when the author saw no other active
        /// assignment of the unit), or `None` to leave it.
        #[serde(default)]
        unit_to: Option<UnitStatus>,
    },
    /// A note on an incident's timeline.
    #[serde(rename = "timeline.append")]
    TimelineAppend {
        /// New id (UUIDv7).
        entry_id: Uuid,
        /// Incident.
        incident_id: Uuid,
        /// Note text.
        text: String,
    },
    /// A unit's position (AVL).
    #[serde(rename = "position.report")]
    PositionReport {
        /// Unit.
        unit_id: String,
        /// The fix.
        fix: Fix,
    },
    /// A unit added to (or updated in) the roster.
    #[serde(rename = "unit.register")]
    UnitRegister {
        /// Stable id, e.g. `"u-01"`.
        unit_id: String,
        /// Radio callsign, e.g. `"东胜01"`.
        callsign: String,
        /// What it is.
        unit_kind: UnitKind,
        /// Home station or post id.
        home_station: Option<String>,
    },
    /// A station, post or checkpoint added to (or updated in) the roster.
    #[serde(rename = "facility.register")]
    FacilityRegister {
        /// The facility.
        facility: Facility,
    },
    /// A commander binds a device to a unit (`Some`) or unbinds it (`None`). A register per
    /// device (`merge::Register::DeviceBinding`); the newest write wins like a roster entry.
    /// The server's ingest reads it when a report arrives: reports of a bound device become
    /// `position.report` ops of its unit, reports of an unbound one `device.report` ops.
    #[serde(rename = "device.bind")]
    DeviceBind {
        /// The device's id (OsmAnd `id`, CoT `uid`).
        device_id: String,
        /// The unit, or `None` to unbind.
        unit_id: Option<String>,
    },
    /// A report from a device bound to no unit, kept so a commander can see and bind it
    /// (written by the server's ingest; travels in the positions lane).
    #[serde(rename = "device.report")]
    DeviceReport {
        /// The report as decoded.
        report: crate::device::DeviceReport,
    },
    /// A road closure drawn, changed or lifted (the whole value; a register per closure id,
    /// `merge::Register::RoadClosure`, newest write shown). Critical lane: routing on every
    /// console must avoid a closed road as soon as the op arrives.
    #[serde(rename = "road_closure.set")]
    RoadClosureSet {
        /// The closure as it is now.
        closure: crate::road_closure::RoadClosure,
    },
    /// A person resolved a conflict that is not settled by a plain write (an edit or an
    /// assignment concurrent with a close). Field conflicts are resolved by an informed
    /// `incident.set_fields`, double assignments by `assignment.release`.
    #[serde(rename = "conflict.resolve")]
    ConflictResolve {
        /// The conflict's id ([`crate::merge::ConflictId`] text form).
        conflict_id: String,
        /// Assignments the resolution ends (e.g. a unit sent to an incident that was closed).
        #[serde(default)]
        releases: Vec<Release>,
        /// Why (may be empty); shown on the incident's timeline.
        #[serde(default)]
        note: String,
    },
}

impl OpBody {
    /// The lane an op travels in (SYNC.md principle 8).
    pub fn lane(&self) -> Lane {
        match self {
            OpBody::TimelineAppend { .. } => Lane::Notes,
            OpBody::PositionReport { .. } | OpBody::DeviceReport { .. } => Lane::Positions,
            _ => Lane::Critical,
        }
    }

    /// The wire name of the op kind, e.g. `"incident.create"`.
    pub fn kind(&self) -> &'static str {
        match self {
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
            OpBody::ConflictResolve { .. } => "conflict.resolve",
            OpBody::DeviceBind { .. } => "device.bind",
            OpBody::DeviceReport { .. } => "device.report",
            OpBody::RoadClosureSet { .. } => "road_closure.set",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_never_goes_back() {
        let a = Hlc {
            wall_ms: 1_000,
            logical: 0,
        };
        let b = Hlc::tick(a, 900); // wall clock jumped back
        assert_eq!(
            b,
            Hlc {
                wall_ms: 1_000,
                logical: 1
            }
        );
        let c = Hlc::tick(b, 2_000);
        assert_eq!(
            c,
            Hlc {
                wall_ms: 2_000,
                logical: 0
            }
        );
        assert!(a < b && b < c);
    }

    #[test]
    fn hlc_receive_orders_after_remote() {
        let local = Hlc {
            wall_ms: 1_000,
            logical: 3,
        };
        let remote = Hlc {
            wall_ms: 5_000,
            logical: 2,
        };
        let r = Hlc::receive(local, remote, 1_500);
        assert_eq!(
            r,
            Hlc {
                wall_ms: 5_000,
                logical: 3
            }
        );
        assert!(r > remote && r > local);
    }

    #[test]
    fn body_wire_form_has_kind_tag() {
        let body = OpBody::UnitSetStatus {
            unit_id: "u-01".into(),
            from: UnitStatus::Dispatched,
            to: UnitStatus::EnRoute,
            releases: vec![],
        };
        let json = serde_json::to_value(&body).ok();
        assert_eq!(
            json,
            Some(
                serde_json::json!({"kind":"unit.set_status","unit_id":"u-01","from":"dispatched","to":"en_route","releases":[]})
            )
        );
        // An op written without `releases` (older writer) still reads.
        let old: Result<OpBody, _> = serde_json::from_value(
            serde_json::json!({"kind":"unit.set_status","unit_id":"u-01","from":"dispatched","to":"en_route"}),
        );
        assert_eq!(old.ok(), Some(body.clone()));
        assert_eq!(body.lane(), Lane::Critical);
        assert_eq!(body.kind(), "unit.set_status");
    }
}
