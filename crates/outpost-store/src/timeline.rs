//! Timeline entries: immutable records of what happened to an incident, derived from ops.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use outpost_domain::timeline::TimelineEvent;

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
