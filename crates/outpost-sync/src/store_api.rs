//! What the engine needs from the local store, as one trait ([`SyncStore`]), and its
//! implementation for [`outpost_store::Store`].
//!
//! Every method is one short transaction of the store: the engine holds the store's mutex
//! only for one batch or one page, so the UI's writes interleave with a long catch-up.

use outpost_domain::op::{Lane, OpEnvelope};
use outpost_domain::wire::{PullResponse, PushResponse, Snapshot};
use outpost_store::{Store, StoreError};
use uuid::Uuid;

use crate::failpoint::Failpoint;

/// Where this console stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncPosition {
    /// The server epoch last synced with (`None` before the first sync).
    pub epoch: Option<Uuid>,
    /// The pull cursor: the newest `gseq` applied.
    pub cursor: u64,
}

/// What storing a push answer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushRecord {
    /// Ops now acknowledged (accepted or duplicate).
    pub acked: usize,
    /// Ops parked (refused by the server, un-applied locally).
    pub parked: usize,
}

/// What applying a pulled page (or a snapshot) changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullRecord {
    /// Remote ops applied to the state tables (own ops and re-pulled ops excluded).
    pub applied: usize,
}

/// The store functions the sync engine calls. Each is one transaction.
pub trait SyncStore: Send + 'static {
    /// This installation's origin id.
    fn origin(&self) -> Uuid;

    /// Epoch and pull cursor.
    ///
    /// # Errors
    /// Store errors.
    fn position(&self) -> Result<SyncPosition, StoreError>;

    /// Up to `max` ops of `lane` not yet acknowledged by the server, in `lane_seq` order
    /// (parked ops excluded).
    ///
    /// # Errors
    /// Store errors.
    fn pending_batch(&mut self, lane: Lane, max: usize) -> Result<Vec<OpEnvelope>, StoreError>;

    /// Stores the server's answer to a push of `lane`: acks, parked ops (un-applied), and a
    /// `resend_from`.
    ///
    /// # Errors
    /// Store errors (nothing is stored then).
    fn record_push(&mut self, lane: Lane, resp: &PushResponse) -> Result<PushRecord, StoreError>;

    /// Applies one pulled page and stores the cursor and epoch, in one transaction.
    /// `failpoint` is checked inside that transaction, before the commit ([`Failpoint::MidPage`]).
    ///
    /// # Errors
    /// Store errors (nothing is stored then).
    fn apply_pull(
        &mut self,
        page: &PullResponse,
        failpoint: Option<Failpoint>,
    ) -> Result<PullRecord, StoreError>;

    /// The server has a new epoch: every retained op of this origin will be pushed again and
    /// the cursor goes back to 0 (SYNC.md principle 11).
    ///
    /// # Errors
    /// Store errors.
    fn start_resync(&mut self, epoch: Uuid) -> Result<(), StoreError>;

    /// Replaces the replicated state with a snapshot, keeping pending ops.
    ///
    /// # Errors
    /// Store errors.
    fn load_snapshot(&mut self, snapshot: &Snapshot) -> Result<PullRecord, StoreError>;

    /// Ops not yet acknowledged, all lanes.
    ///
    /// # Errors
    /// Store errors.
    fn pending_total(&self) -> Result<u64, StoreError>;
}

// INTERIM ADAPTER (CLIENT): the store's sync API (CORE) is being written at the same time.
// These bodies use only what outpost-store exposes today and are replaced by calls to the
// store's own functions as they land (see the report of the sync engine).
mod interim {
    use outpost_domain::op::{Lane, OpEnvelope};
    use outpost_store::{StoreError, query};
    use rusqlite::{Connection, OptionalExtension, params};
    use uuid::Uuid;

    use super::SyncPosition;

    pub const EPOCH_KEY: &str = "sync.epoch";
    pub const CURSOR_KEY: &str = "sync.cursor";

    pub fn lane_text(lane: Lane) -> &'static str {
        match lane {
            Lane::Critical => "critical",
            Lane::Notes => "notes",
            Lane::Positions => "positions",
        }
    }

    pub fn position(conn: &Connection) -> Result<SyncPosition, StoreError> {
        let epoch = query::setting(conn, EPOCH_KEY)?.and_then(|e| Uuid::parse_str(&e).ok());
        let cursor = query::setting(conn, CURSOR_KEY)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok(SyncPosition { epoch, cursor })
    }

    pub fn set_position(conn: &Connection, pos: SyncPosition) -> Result<(), StoreError> {
        for (k, v) in [
            (EPOCH_KEY, pos.epoch.map(|e| e.to_string()).unwrap_or_default()),
            (CURSOR_KEY, pos.cursor.to_string()),
        ] {
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        Ok(())
    }

    pub fn pending(conn: &Connection, lane: Lane, max: usize) -> Result<Vec<OpEnvelope>, StoreError> {
        let mut st = conn.prepare_cached(
            "SELECT envelope FROM outbox WHERE status = 'pending' AND lane = ?1
             ORDER BY lane_seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(
                params![lane_text(lane), i64::try_from(max).unwrap_or(i64::MAX)],
                |r| r.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|t| serde_json::from_str(t).map_err(StoreError::from))
            .collect()
    }

    /// INTERIM: hashes every row of the state tables (all columns, sorted rows).
    pub fn digest(
        conn: &Connection,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        use std::hash::{Hash, Hasher};
        let mut out = std::collections::BTreeMap::new();
        for table in ["incidents", "units", "assignments", "timeline", "positions", "facilities"] {
            let mut st = conn.prepare(&format!("SELECT * FROM {table}"))?;
            let n = st.column_count();
            let mut rows = st
                .query_map([], |r| {
                    let mut cells = Vec::with_capacity(n);
                    for i in 0..n {
                        cells.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(cells.join("|"))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.sort();
            let mut h = std::hash::DefaultHasher::new();
            rows.hash(&mut h);
            out.insert(table.to_string(), format!("{}:{:016x}", rows.len(), h.finish()));
        }
        Ok(out)
    }

    pub fn applied(conn: &Connection, op_id: Uuid) -> Result<bool, StoreError> {
        Ok(conn
            .query_row(
                "SELECT 1 FROM applied_ops WHERE op_id = ?1",
                [op_id.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

impl SyncStore for Store {
    fn origin(&self) -> Uuid {
        self.origin_id()
    }

    fn position(&self) -> Result<SyncPosition, StoreError> {
        interim::position(self.conn())
    }

    fn pending_batch(&mut self, lane: Lane, max: usize) -> Result<Vec<OpEnvelope>, StoreError> {
        interim::pending(self.conn(), lane, max)
    }

    fn record_push(&mut self, lane: Lane, resp: &PushResponse) -> Result<PushRecord, StoreError> {
        use outpost_domain::wire::Outcome;
        let tx = self.transaction()?;
        let mut rec = PushRecord::default();
        for r in &resp.results {
            let (status, reason) = match &r.outcome {
                Outcome::Accepted { .. } | Outcome::Duplicate { .. } => {
                    rec.acked += 1;
                    ("acked", None)
                }
                Outcome::Parked { reason } => {
                    rec.parked += 1;
                    ("parked", Some(reason.as_str()))
                }
            };
            tx.execute(
                "UPDATE outbox SET status = ?2, reason = ?3 WHERE op_id = ?1 AND status != ?2",
                rusqlite::params![r.op_id.to_string(), status, reason],
            )?;
        }
        if let Some(from) = resp.resend_from {
            tx.execute(
                "UPDATE outbox SET status = 'pending'
                 WHERE lane = ?1 AND lane_seq >= ?2 AND status = 'acked'",
                rusqlite::params![interim::lane_text(lane), i64::try_from(from).unwrap_or(i64::MAX)],
            )?;
        }
        tx.commit()?;
        Ok(rec)
    }

    fn apply_pull(
        &mut self,
        page: &PullResponse,
        failpoint: Option<Failpoint>,
    ) -> Result<PullRecord, StoreError> {
        let origin = self.origin_id();
        let tx = self.transaction()?;
        let mut pos = interim::position(&tx)?;
        let mut rec = PullRecord::default();
        for (i, pulled) in page.ops.iter().enumerate() {
            if i == page.ops.len() / 2 {
                Failpoint::MidPage.hit(failpoint);
            }
            pos.cursor = pos.cursor.max(pulled.gseq);
            let Ok(env) = serde_json::from_value::<OpEnvelope>(pulled.op.clone()) else {
                continue;
            };
            if env.origin == origin || interim::applied(&tx, env.op_id)? {
                continue;
            }
            outpost_store::apply::apply(&tx, &env)?;
            rec.applied += 1;
        }
        pos.epoch = Some(page.epoch);
        interim::set_position(&tx, pos)?;
        tx.commit()?;
        Ok(rec)
    }

    fn start_resync(&mut self, epoch: Uuid) -> Result<(), StoreError> {
        let tx = self.transaction()?;
        tx.execute("UPDATE outbox SET status = 'pending' WHERE status = 'acked'", [])?;
        interim::set_position(
            &tx,
            SyncPosition {
                epoch: Some(epoch),
                cursor: 0,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    fn load_snapshot(&mut self, snapshot: &Snapshot) -> Result<PullRecord, StoreError> {
        // Interim: apply the snapshot's ops like a page (idempotent) and jump the cursor.
        let page = PullResponse {
            epoch: snapshot.epoch,
            ops: snapshot.ops.clone(),
            server_gseq: snapshot.gseq,
            more: false,
        };
        let rec = self.apply_pull(&page, None)?;
        let tx = self.transaction()?;
        interim::set_position(
            &tx,
            SyncPosition {
                epoch: Some(snapshot.epoch),
                cursor: snapshot.gseq,
            },
        )?;
        tx.commit()?;
        Ok(rec)
    }

    fn pending_total(&self) -> Result<u64, StoreError> {
        Ok(outpost_store::query::outbox_counts(self.conn())?.0)
    }
}

/// The state digest of `store`: one hash per replicated table, equal on two replicas that
/// applied the same set of ops.
///
/// # Errors
/// Store errors.
pub fn digest(store: &Store) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    interim::digest(store.conn())
}
