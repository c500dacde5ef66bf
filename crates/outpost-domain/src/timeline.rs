//! The incident timeline: immutable records of what happened, derived from ops
//! (SYNC.md principle 4: append-only where natural).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::incident::{Disposition, IncidentType, Priority};
use crate::op::IncidentFields;
use crate::unit::UnitStatus;

/// What happened to an incident, in one timeline entry. Derived from the op that caused it;
/// stored as JSON tagged by `kind` (e.g. `{"kind":"note","text":"…"}`) and sent to the UI in
/// the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
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
    /// A person resolved a sync conflict on this incident (`conflict.resolve`).
    ConflictResolved {
        /// The conflict id ([`crate::merge::ConflictId`] text form).
        conflict_id: String,
        /// Why (may be empty).
        note: String,
    },
}
