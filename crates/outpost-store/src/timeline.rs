//! Timeline entries: immutable records of what happened to an incident, derived from ops.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::op::IncidentFields;
use outpost_domain::unit::UnitStatus;

/// What happened, as stored in `timeline.event` (JSON, tagged by `kind`). The IPC type
/// `outpost_app::ipc::TimelineEvent` has the same shape; the app converts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// The incident was created.
    Created {
        /// Type at creation.
        incident_type: IncidentType,
        /// Priority at creation.
        priority: Priority,
        /// Address at creation.
        address: String,
    },
    /// Fields changed (only the ones written are `Some`).
    FieldsChanged {
        /// The new values.
        fields: IncidentFields,
    },
    /// A commander acknowledged it.
    Acknowledged,
    /// A unit was dispatched.
    UnitAssigned {
        /// Unit id.
        unit_id: String,
        /// Callsign at the time.
        callsign: String,
    },
    /// A unit was released from the incident.
    UnitReleased {
        /// Unit id.
        unit_id: String,
        /// Callsign at the time.
        callsign: String,
    },
    /// An assigned unit changed status (to `available` means cleared, which also releases).
    UnitStatus {
        /// Unit id.
        unit_id: String,
        /// Callsign at the time.
        callsign: String,
        /// New status.
        to: UnitStatus,
    },
    /// A note.
    Note {
        /// Text.
        text: String,
    },
    /// Closed.
    Closed {
        /// Disposition.
        disposition: Disposition,
        /// Closing summary.
        summary: String,
    },
}

/// One stored timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// The op id that caused it (for notes, the note's entry id).
    pub id: String,
    /// The incident.
    pub incident_id: Uuid,
    /// When (the op's HLC wall time, UTC, millisecond precision).
    pub at: DateTime<Utc>,
    /// Who.
    pub user: String,
    /// What.
    pub event: TimelineEvent,
}
