//! The server's storage, behind one trait ([`SyncStorage`]) so that another database (e.g.
//! PostgreSQL) can be added without touching the sync logic of [`crate::service`].
//!
//! What a storage keeps: the epoch (a UUID that changes when the server learns it was
//! restored from a backup), the global sequence counter (`gseq`), the op log (gseq, op id,
//! origin, lane, lane_seq, the op's raw JSON), one high-water mark per (origin, lane) with the
//! stored outcome of every op at or below it (accepted at gseq, or parked with a reason), the
//! compaction floor with the fixes of compacted position reports, and the materialized state
//! (the server's own replica, changed by the merge rules in the same transaction as the log).
//!
//! Architecture invariant: storages decide nothing about the protocol; they record what the
//! sync logic tells them, each push in ONE transaction ([`SyncStorage::begin`]).

pub mod sqlite;

use std::collections::BTreeMap;

use outpost_domain::op::{Lane, OpBody, OpEnvelope};
use outpost_domain::wire::CompactedFix;
use uuid::Uuid;

pub use sqlite::SqliteStorage;

/// What can go wrong in a storage. All of these are answered 500 `internal` except
/// [`StorageError::is_transient`] ones (503, retry). Each message carries its cause (one
/// line; no separate error source, so a report prints it once).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The materialized state (the server's replica, an `outpost_store::Store`).
    #[error("server state: {0}")]
    Store(outpost_store::StoreError),
    /// The log tables.
    #[error("server log: {0}")]
    Sqlite(rusqlite::Error),
    /// A stored op or fix that no longer reads.
    #[error("server log: stored JSON is not readable: {0}")]
    Json(serde_json::Error),
    /// A stored value out of range or of the wrong form.
    #[error("server log: {0}")]
    Corrupt(String),
    /// The data directory cannot be created or used.
    #[error("{path}: {cause}")]
    Io {
        /// The directory or file.
        path: String,
        /// The cause.
        cause: std::io::Error,
    },
}

impl From<outpost_store::StoreError> for StorageError {
    fn from(e: outpost_store::StoreError) -> Self {
        StorageError::Store(e)
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Sqlite(e)
    }
}

impl From<serde_json::Error> for StorageError {
    fn from(e: serde_json::Error) -> Self {
        StorageError::Json(e)
    }
}

impl StorageError {
    /// True when retrying later may succeed (database busy or locked, e.g. by a running
    /// `compact`).
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Store(e) => e.is_transient(),
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// The head of the log: what every answer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// The current epoch.
    pub epoch: Uuid,
    /// The newest `gseq` given out (0 before the first op). Never decreases, not even through
    /// compaction.
    pub gseq: u64,
    /// Compaction floor: ops with `gseq` below it may have been removed from the log (0 when
    /// never compacted). A pull after `A` needs `A + 1 >= floor`.
    pub floor: u64,
}

/// The stored outcome of an op at or below its lane's high-water mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredOutcome {
    /// Accepted at `gseq`.
    Accepted {
        /// The op.
        op_id: Uuid,
        /// Its global sequence number.
        gseq: u64,
    },
    /// Parked with a reason.
    Parked {
        /// The op.
        op_id: Uuid,
        /// Why.
        reason: String,
    },
}

/// The identity of an op as the sync logic read it from the raw JSON (enough to park it even
/// when its body does not decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpKey {
    /// The op.
    pub op_id: Uuid,
    /// Its origin.
    pub origin: Uuid,
    /// Its lane.
    pub lane: Lane,
    /// Its per-(origin, lane) sequence number.
    pub lane_seq: u64,
}

/// One op of the log: its `gseq` and raw JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedOp {
    /// Its global sequence number.
    pub gseq: u64,
    /// The op as the author sent it (`OpEnvelope` JSON, possibly of a newer schema).
    pub raw: String,
}

/// A page of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The head when the page was read.
    pub head: LogHead,
    /// Ops with `gseq` greater than the `after` asked for, oldest first.
    pub ops: Vec<LoggedOp>,
    /// True when more ops follow.
    pub more: bool,
}

/// Everything retained, read in one consistent view.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotData {
    /// The head when it was read.
    pub head: LogHead,
    /// Every op still in the log, oldest first.
    pub ops: Vec<LoggedOp>,
    /// The fixes of compacted position reports.
    pub compacted: Vec<CompactedFix>,
}

/// A parked op, for audit and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedOp {
    /// Its identity.
    pub key: OpKey,
    /// Why it was parked.
    pub reason: String,
    /// The op as sent.
    pub raw: String,
}

/// What `compact` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// Position reports removed from the log (their fixes kept as history).
    pub removed: u64,
    /// The compaction floor afterwards.
    pub floor: u64,
}

/// The whole server storage. Implementations are used from one thread at a time (the sync
/// logic holds a mutex around them) and may block.
pub trait SyncStorage: Send {
    /// The current head.
    ///
    /// # Errors
    /// Storage errors.
    fn head(&mut self) -> Result<LogHead, StorageError>;

    /// Starts the write transaction of one push (SQLite: `BEGIN IMMEDIATE`). Dropping the
    /// returned transaction without [`PushTx::commit`] rolls everything back.
    ///
    /// # Errors
    /// Storage errors (busy: [`StorageError::is_transient`]).
    fn begin(&mut self) -> Result<Box<dyn PushTx + '_>, StorageError>;

    /// Up to `limit` ops with `gseq > after`, oldest first, and the head, read consistently.
    ///
    /// # Errors
    /// Storage errors.
    fn pull(&mut self, after: u64, limit: usize) -> Result<LogPage, StorageError>;

    /// Every retained op and compacted fix, read consistently.
    ///
    /// # Errors
    /// Storage errors.
    fn snapshot(&mut self) -> Result<SnapshotData, StorageError>;

    /// Every parked op, in the order they were parked.
    ///
    /// # Errors
    /// Storage errors.
    fn parked(&mut self) -> Result<Vec<ParkedOp>, StorageError>;

    /// Removes `position.report` ops with `gseq < before_gseq` from the log, except the newest
    /// one of each unit, keeping their fixes as compacted history; raises the floor to
    /// `before_gseq` (never lowers it). One transaction.
    ///
    /// # Errors
    /// Storage errors.
    fn compact(&mut self, before_gseq: u64) -> Result<CompactReport, StorageError>;

    /// The per-table SHA-256 of the materialized state, comparable with a console's
    /// `outpost_store::Store::state_digest` (invariant I3).
    ///
    /// # Errors
    /// Storage errors.
    fn state_digest(&mut self) -> Result<BTreeMap<String, String>, StorageError>;

    /// Every bound device of the replica with its unit, `(device_id, unit_id)` (the shown
    /// binding: the winning `device.bind`; unbound devices left out). The device ingest turns
    /// a bound device's report into its unit's `position.report`.
    ///
    /// # Errors
    /// Storage errors.
    fn device_bindings(&mut self) -> Result<Vec<(String, String)>, StorageError>;

    /// The CAD picture for TAK clients from the replica: units with a latest fix and
    /// incidents. `units`/`incidents` `None`: every unit with a fix and every OPEN incident
    /// (the picture sent on connect); `Some(ids)`: just those (what the log says changed;
    /// closed incidents included, so the feed can send their last event).
    ///
    /// # Errors
    /// Storage errors.
    fn picture(
        &mut self,
        units: Option<&[String]>,
        incidents: Option<&[Uuid]>,
    ) -> Result<Picture, StorageError>;
}

/// Units and incidents as the replica shows them, for the Cursor-on-Target feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picture {
    /// Units with a latest fix.
    pub units: Vec<outpost_store::UnitRow>,
    /// Incidents.
    pub incidents: Vec<outpost_store::IncidentRow>,
}

/// The write transaction of one push. Every method works inside it; nothing is visible to
/// readers before [`PushTx::commit`].
pub trait PushTx {
    /// The head at the start of the transaction, updated by [`PushTx::accept`] and
    /// [`PushTx::new_epoch`].
    fn head(&self) -> LogHead;

    /// Starts a new epoch: a new random epoch id, and the gseq counter jumps by
    /// [`outpost_domain::wire::EPOCH_GSEQ_GAP`].
    ///
    /// # Errors
    /// Storage errors.
    fn new_epoch(&mut self) -> Result<LogHead, StorageError>;

    /// The high-water mark of (origin, lane): the highest `lane_seq` answered (0 if none).
    ///
    /// # Errors
    /// Storage errors.
    fn high_water(&mut self, origin: Uuid, lane: Lane) -> Result<u64, StorageError>;

    /// The stored outcome of (origin, lane, lane_seq), if that op was answered.
    ///
    /// # Errors
    /// Storage errors.
    fn outcome(
        &mut self,
        origin: Uuid,
        lane: Lane,
        lane_seq: u64,
    ) -> Result<Option<StoredOutcome>, StorageError>;

    /// True when an op with this id is in the log (accepted under any lane_seq).
    ///
    /// # Errors
    /// Storage errors.
    fn is_logged(&mut self, op_id: Uuid) -> Result<bool, StorageError>;

    /// True when an accepted `incident.create` created this incident.
    ///
    /// # Errors
    /// Storage errors.
    fn has_incident(&mut self, incident_id: Uuid) -> Result<bool, StorageError>;

    /// True when an accepted `unit.register` created this unit.
    ///
    /// # Errors
    /// Storage errors.
    fn has_unit(&mut self, unit_id: &str) -> Result<bool, StorageError>;

    /// True when the replica has (or had) an assignment of unit `unit_id` to incident
    /// `incident_id` (a field unit may write notes on its incidents; `access::check_op`).
    ///
    /// # Errors
    /// Storage errors.
    fn unit_on_incident(&mut self, unit_id: &str, incident_id: Uuid) -> Result<bool, StorageError>;

    /// The unit and incident of assignment `assignment_id` in the replica (released or
    /// not), `None` when there is none (a field unit releases only its own unit's
    /// assignments; `access::check_op`, security review S1).
    ///
    /// # Errors
    /// Storage errors.
    fn assignment(&mut self, assignment_id: Uuid) -> Result<Option<(String, Uuid)>, StorageError>;

    /// Accepts `op` as the next op of its lane: gives it the next `gseq`, appends it to the
    /// log with `raw`, applies it to the materialized state, records the outcome and raises
    /// the lane's high-water mark to `op.lane_seq`. `Ok(Err(reason))` when the state refused
    /// the op (nothing of it is kept; the caller parks it).
    ///
    /// # Errors
    /// Storage errors (the whole push then fails and rolls back).
    fn accept(&mut self, op: &OpEnvelope, raw: &str) -> Result<Result<u64, String>, StorageError>;

    /// Parks the op `key`: records the outcome with `reason` and the raw text, and raises
    /// the lane's high-water mark to `key.lane_seq`.
    ///
    /// # Errors
    /// Storage errors.
    fn park(&mut self, key: &OpKey, raw: &str, reason: &str) -> Result<(), StorageError>;

    /// Commits everything; returns the head afterwards.
    ///
    /// # Errors
    /// Storage errors (nothing is kept).
    fn commit(self: Box<Self>) -> Result<LogHead, StorageError>;
}

/// What an op creates that later ops may refer to: (`"incident"`, id) or (`"unit"`, id).
pub fn created_entity(body: &OpBody) -> Option<(&'static str, String)> {
    match body {
        OpBody::IncidentCreate { incident_id, .. } => Some(("incident", incident_id.to_string())),
        OpBody::UnitRegister { unit_id, .. } => Some(("unit", unit_id.clone())),
        _ => None,
    }
}

/// A `u64` as SQL integer; errors above `i64::MAX`.
pub(crate) fn to_sql(n: u64) -> Result<i64, StorageError> {
    i64::try_from(n).map_err(|_| StorageError::Corrupt(format!("{n} is too large to store")))
}

/// An SQL integer as `u64`; errors when negative.
pub(crate) fn from_sql(n: i64) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| StorageError::Corrupt(format!("stored number {n} is negative")))
}
