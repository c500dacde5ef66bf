//! The client side of sync on [`Store`]: what to push, what the server answered, pulled
//! pages, epochs (server restored from a backup), snapshots (history compacted), and the
//! outbox bookkeeping. Every call that changes something is one transaction.
//!
//! The sync engine (`outpost-sync`) drives these calls; the protocol is
//! [`outpost_domain::wire`]. Terms: the *cursor* is the newest `gseq` this replica has pulled;
//! the *epoch* is the server database's identity; an op is *pending* until the server
//! acknowledges it, *acked* after, *parked* when the server refused it (kept with its reason,
//! un-applied here).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use uuid::Uuid;

use outpost_domain::op::{Hlc, Lane, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::wire::{Outcome, PullResponse, PushResponse, Snapshot};

use crate::sql::{enum_text, sql_u64, time, u64_sql, uuid};
use crate::{Store, StoreError, apply};

/// Where this replica stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncPosition {
    /// The server epoch last synced with (`None` before the first sync).
    pub epoch: Option<Uuid>,
    /// The pull cursor: the newest `gseq` pulled (0 before the first pull or after a resync).
    pub cursor: u64,
}

/// What [`Store::record_push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushReport {
    /// Ops now acknowledged (accepted or duplicate).
    pub acked: usize,
    /// Ops the server parked.
    pub parked: usize,
    /// The server asked to re-send the lane from this `lane_seq`.
    pub resend_from: Option<u64>,
    /// True when a parked op had been applied here and the state was rebuilt without it.
    pub rebuilt: bool,
}

/// What [`Store::apply_pull`] / [`Store::load_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Other origins' ops applied for the first time.
    pub applied: usize,
    /// This replica's own ops (their `gseq` recorded).
    pub own: usize,
    /// Ops already applied (a page seen twice).
    pub already: usize,
    /// Ops kept aside unapplied (newer schema, unreadable, or referring to something
    /// missing here).
    pub deferred: usize,
    /// The cursor after the page.
    pub cursor: u64,
}

/// Outbox entries by delivery state; pending per lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    /// Pending critical ops.
    pub pending_critical: u64,
    /// Pending notes.
    pub pending_notes: u64,
    /// Pending positions.
    pub pending_positions: u64,
    /// Acknowledged ops still retained.
    pub acked: u64,
    /// Parked ops.
    pub parked: u64,
}

impl OutboxCounts {
    /// All pending ops.
    pub fn pending(&self) -> u64 {
        self.pending_critical + self.pending_notes + self.pending_positions
    }
}

/// One parked op of this replica with the server's reason.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedRow {
    /// The op as written.
    pub envelope: OpEnvelope,
    /// When it was written (UTC).
    pub created_at: DateTime<Utc>,
    /// The server's reason, one line.
    pub reason: String,
}

/// One op of the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerOp {
    /// The op.
    pub envelope: OpEnvelope,
    /// Its server `gseq`, once known.
    pub gseq: Option<u64>,
    /// False when parked (not part of the state).
    pub applied: bool,
}

/// `max(cursor, base of the previous op)`: the `base_version` of the next local op. The
/// cursor counts only up to just below the oldest op kept aside unapplied (a newer schema,
/// or a reference not here yet): a local write has not seen that op, so it must not claim to
/// (else it would beat the op on every replica that applied it, without a conflict).
pub(crate) fn next_base_in(conn: &Connection) -> Result<u64, StoreError> {
    let base: i64 = conn.query_row(
        "SELECT MAX(MIN(cursor, COALESCE((SELECT MIN(gseq) - 1 FROM deferred_ops
                                            WHERE gseq IS NOT NULL), cursor)),
                    last_base)
         FROM sync_state WHERE singleton = 1",
        [],
        |r| r.get(0),
    )?;
    Ok(sql_u64(base))
}

fn position_in(conn: &Connection) -> Result<SyncPosition, StoreError> {
    // Cached: read by every applied page and live-feed frame.
    let (epoch, cursor): (Option<String>, i64) = conn
        .prepare_cached("SELECT epoch, cursor FROM sync_state WHERE singleton = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(SyncPosition {
        epoch: epoch.map(|e| uuid("sync_state.epoch", &e)).transpose()?,
        cursor: sql_u64(cursor),
    })
}

/// Checks a server answer's epoch against the stored one; stores it when none is.
fn adopt_epoch(conn: &Connection, epoch: Uuid) -> Result<(), StoreError> {
    adopt_epoch_over(conn, position_in(conn)?.epoch, epoch)
}

/// [`adopt_epoch`] with the stored epoch already read (`stored`).
fn adopt_epoch_over(
    conn: &Connection,
    stored: Option<Uuid>,
    epoch: Uuid,
) -> Result<(), StoreError> {
    match stored {
        Some(stored) if stored != epoch => Err(StoreError::EpochChanged {
            stored,
            server: epoch,
        }),
        Some(_) => Ok(()),
        None => {
            conn.execute(
                "UPDATE sync_state SET epoch = ?1 WHERE singleton = 1",
                [epoch.to_string()],
            )?;
            Ok(())
        }
    }
}

/// Keeps a pulled op this build cannot apply.
fn defer(conn: &Connection, raw: &Value, gseq: u64, reason: &str) -> Result<(), StoreError> {
    let key = raw
        .get("op_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("gseq:{gseq}"));
    conn.execute(
        "INSERT INTO deferred_ops(op_key, gseq, raw, reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(op_key) DO UPDATE SET gseq = excluded.gseq",
        params![key, u64_sql(gseq), raw.to_string(), reason],
    )?;
    Ok(())
}

/// Decodes a pulled op: `Err(reason)` when this build cannot apply it.
fn decode(raw: &Value) -> Result<OpEnvelope, String> {
    // Deserialized from the borrowed value: no copy of the op's JSON tree per op.
    let op = <OpEnvelope as serde::Deserialize>::deserialize(raw)
        .map_err(|e| format!("not readable by this build: {e}"))?;
    if op.schema > SCHEMA_VERSION {
        return Err(format!(
            "schema version {} is newer than this build's {SCHEMA_VERSION}",
            op.schema
        ));
    }
    Ok(op)
}

/// An own op the server accepted (answer or pull) that has no effects here: parked here
/// before (its outcome was lost with a server restore, see [`Store::record_push`]), or skipped
/// by a rebuild because what it refers to was missing then (`apply::SKIPPED_PREFIX`). It is
/// applied again in the ledger; returns true when so (the caller rebuilds the state, which
/// replays it now that the server shows it applies).
fn revive_if_parked(conn: &Connection, op_id: Uuid) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE ops SET state = 'applied', reason = NULL
             WHERE op_id = ?1 AND (state = 'parked' OR (state = 'applied' AND reason LIKE ?2))",
        )?
        .execute(params![
            op_id.to_string(),
            format!("{}%", apply::SKIPPED_PREFIX)
        ])?
        == 1)
}

/// The server lost history (restored from a backup): every acked op goes back to pending
/// (re-pushed; the server answers duplicates for those it has) and the old cursor is kept as
/// the floor of new ops' `base_version`. Returns the number of ops put back to pending.
fn mark_for_resync(conn: &Connection) -> Result<usize, StoreError> {
    let n = conn.execute(
        "UPDATE outbox SET status = 'pending', acked_at = NULL WHERE status = 'acked'",
        [],
    )?;
    conn.execute(
        "UPDATE sync_state SET last_base = MAX(last_base, cursor) WHERE singleton = 1",
        [],
    )?;
    Ok(n)
}

/// Marks this replica's own op acknowledged at `gseq` (outbox and ledger).
/// One statement per table ([`apply::record_gseq`]'s two updates folded into these).
fn ack_own(conn: &Connection, op_id: Uuid, gseq: u64, now_ms: i64) -> Result<bool, StoreError> {
    let id = op_id.to_string();
    conn.prepare_cached(
        "UPDATE outbox SET gseq = ?2,
                acked_at = CASE status WHEN 'pending' THEN COALESCE(acked_at, ?3) ELSE acked_at END,
                status = CASE status WHEN 'pending' THEN 'acked' ELSE status END
         WHERE op_id = ?1",
    )?
    .execute(params![id, u64_sql(gseq), now_ms])?;
    let n = conn
        .prepare_cached("UPDATE ops SET gseq = ?2 WHERE op_id = ?1")?
        .execute(params![id, u64_sql(gseq)])?;
    Ok(n == 1)
}

impl Store {
    /// The epoch and pull cursor.
    ///
    /// # Errors
    /// SQLite errors, an unreadable stored epoch.
    pub fn sync_state(&self) -> Result<SyncPosition, StoreError> {
        position_in(self.conn())
    }

    /// The `base_version` the next local op gets: `max(pull cursor, previous op's base)`.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn next_base(&self) -> Result<u64, StoreError> {
        next_base_in(self.conn())
    }

    /// Up to `max` pending ops of one lane, in `lane_seq` order (the order they are pushed).
    ///
    /// # Errors
    /// SQLite errors, an unreadable stored envelope.
    pub fn pending_batch(&self, lane: Lane, max: usize) -> Result<Vec<OpEnvelope>, StoreError> {
        let mut st = self.conn().prepare_cached(
            // `seq` rises with `lane_seq` within a lane, and is served by the
            // outbox_pending(status, lane, seq) index (no sort of the whole backlog).
            "SELECT envelope FROM outbox WHERE status = 'pending' AND lane = ?1
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(
                params![enum_text(&lane)?, i64::try_from(max).unwrap_or(i64::MAX)],
                |r| r.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter().map(|t| Ok(serde_json::from_str(t)?)).collect()
    }

    /// Records the server's answer to a push of `lane`, in one transaction: accepted and
    /// duplicate ops become acked with their `gseq` (outbox and ledger); parked ops are marked
    /// parked with the reason on the outbox and the ledger, and the state is rebuilt without
    /// them; `resend_from` puts the lane's acked and parked ops from that `lane_seq` back to
    /// pending (a parked op the server then accepts is applied here again).
    /// `now` stamps the acknowledgement (retention, [`Store::prune_acked`]).
    ///
    /// # Errors
    /// [`StoreError::EpochChanged`] when the answer comes from another epoch than the stored
    /// one (nothing is recorded; resync); SQLite errors.
    pub fn record_push(
        &mut self,
        lane: Lane,
        resp: &PushResponse,
        now: DateTime<Utc>,
    ) -> Result<PushReport, StoreError> {
        let now_ms = now.timestamp_millis();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        adopt_epoch(&tx, resp.epoch)?;
        let mut report = PushReport {
            resend_from: resp.resend_from,
            ..PushReport::default()
        };
        let mut rebuild = false;
        for r in &resp.results {
            match &r.outcome {
                Outcome::Accepted { gseq } | Outcome::Duplicate { gseq } => {
                    ack_own(&tx, r.op_id, *gseq, now_ms)?;
                    rebuild |= revive_if_parked(&tx, r.op_id)?;
                    report.acked += 1;
                }
                Outcome::Parked { reason } => {
                    let id = r.op_id.to_string();
                    tx.execute(
                        "UPDATE outbox SET status = 'parked', reason = ?2 WHERE op_id = ?1",
                        params![id, reason],
                    )?;
                    let unapplied = tx.execute(
                        "UPDATE ops SET state = 'parked', reason = ?2
                         WHERE op_id = ?1 AND state = 'applied'",
                        params![id, reason],
                    )?;
                    rebuild |= unapplied == 1;
                    report.parked += 1;
                }
            }
        }
        if let Some(from) = resp.resend_from {
            // The server has no outcome from `from` on (it was restored from a backup): every
            // op of the lane from there is sent again, parked ones included (the server judges
            // them again; a lane must never wait for a lane_seq this console holds back).
            tx.execute(
                "UPDATE outbox SET status = 'pending', acked_at = NULL, reason = NULL
                 WHERE lane = ?1 AND lane_seq >= ?2 AND status IN ('acked', 'parked')",
                params![enum_text(&lane)?, u64_sql(from)],
            )?;
        }
        if rebuild {
            apply::rebuild(&tx)?;
            report.rebuilt = true;
        }
        tx.commit()?;
        Ok(report)
    }

    /// Applies one pulled page and stores the new cursor, in one transaction: other origins'
    /// ops are applied with their `gseq`; this replica's own ops only get their `gseq` (and
    /// count as acknowledged); ops this build cannot read (newer schema, unknown kind) or
    /// that refer to something missing are kept aside as deferred. The HLC moves past the
    /// newest remote stamp unless it is far ahead of `now` (the wall clock; see
    /// [`MAX_HLC_LEAD_MS`]). A page seen twice changes nothing.
    ///
    /// # Errors
    /// [`StoreError::EpochChanged`] when the page comes from another epoch (nothing is
    /// applied; resync with [`Store::start_resync`]); SQLite errors.
    pub fn apply_pull(
        &mut self,
        page: &PullResponse,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, StoreError> {
        let me = self.origin;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // One read of the position for the epoch check and the cursor (a live-feed frame of
        // a few ops is a transaction of its own: its fixed cost counts).
        let position = position_in(&tx)?;
        adopt_epoch_over(&tx, position.epoch, page.epoch)?;
        let mut report = ApplyReport::default();
        let mut cursor = position.cursor;
        let mut newest: Option<Hlc> = None;
        let mut revived = false;
        for p in &page.ops {
            cursor = cursor.max(p.gseq);
            let op = match decode(&p.op) {
                Ok(op) => op,
                Err(reason) => {
                    defer(&tx, &p.op, p.gseq, &reason)?;
                    report.deferred += 1;
                    continue;
                }
            };
            if op.origin == me && ack_own(&tx, op.op_id, p.gseq, now.timestamp_millis())? {
                revived |= revive_if_parked(&tx, op.op_id)?;
                report.own += 1;
                continue;
            }
            newest = newest.max(Some(op.hlc));
            match apply::apply_with_gseq(&tx, &op, Some(p.gseq)) {
                Ok(true) => report.applied += 1,
                Ok(false) => report.already += 1,
                Err(e @ StoreError::Missing { .. }) => {
                    defer(&tx, &p.op, p.gseq, &e.to_string())?;
                    report.deferred += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if revived {
            apply::rebuild(&tx)?;
        }
        if let Some(remote) = newest {
            receive_hlc(&tx, remote, now)?;
        }
        tx.prepare_cached("UPDATE sync_state SET cursor = ?1 WHERE singleton = 1")?
            .execute(params![u64_sql(cursor)])?;
        tx.commit()?;
        report.cursor = cursor;
        Ok(report)
    }

    /// The server was restored from a backup and has a new epoch: in one transaction every
    /// acked op still retained goes back to pending (re-pushed; the server answers duplicates
    /// for those it has), the cursor becomes 0 and the epoch `new_epoch`. Pulling everything
    /// again then updates every `gseq` (applying is idempotent). The `base_version` of new
    /// local ops never goes back: the old cursor is kept as their floor. Returns the number
    /// of ops put back to pending.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn start_resync(&mut self, new_epoch: Uuid) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = mark_for_resync(&tx)?;
        tx.execute(
            "UPDATE sync_state SET epoch = ?1, cursor = 0 WHERE singleton = 1",
            [new_epoch.to_string()],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Replaces the replicated state with a server snapshot (the history this replica needs
    /// was compacted), in one transaction: the ledger keeps only this replica's pending and
    /// parked ops, the snapshot's ops and compacted fixes are loaded, the state is rebuilt
    /// (so pending ops are re-applied on top), and the cursor becomes `snap.gseq`, the epoch
    /// `snap.epoch`. The outbox is untouched except that own ops found in the snapshot count
    /// as acknowledged — and, when the snapshot comes from another epoch than the stored one
    /// (the server was restored from a backup meanwhile), every acked op goes back to pending
    /// first, as in [`Store::start_resync`]: an op the restore lost is not in the snapshot and
    /// is pushed again (kept in the ledger, so it stays applied here meanwhile).
    ///
    /// # Errors
    /// SQLite and JSON errors.
    pub fn load_snapshot(
        &mut self,
        snap: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, StoreError> {
        let me = self.origin;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if position_in(&tx)?.epoch.is_some_and(|e| e != snap.epoch) {
            mark_for_resync(&tx)?;
        }
        tx.execute(
            "DELETE FROM ops WHERE NOT (origin = ?1 AND op_id IN
                (SELECT op_id FROM outbox WHERE status IN ('pending', 'parked')))",
            [me.to_string()],
        )?;
        tx.execute_batch("DELETE FROM deferred_ops; DELETE FROM snapshot_fixes;")?;
        for f in &snap.compacted_positions {
            tx.execute(
                &format!(
                    "INSERT INTO snapshot_fixes(unit_id, fix_time, lat, lon, heading_deg,
                                                speed_mps, accuracy_m, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(unit_id, fix_time) DO UPDATE SET {} WHERE {}",
                    apply::FIX_TIE_SET,
                    apply::FIX_TIE_WINS
                ),
                params![
                    f.unit_id,
                    f.fix.fix_time.timestamp_millis(),
                    f.fix.position.lat,
                    f.fix.position.lon,
                    f.fix.heading_deg,
                    f.fix.speed_mps,
                    f.fix.accuracy_m,
                    f.received_at_ms
                ],
            )?;
        }
        let mut report = ApplyReport::default();
        let mut newest: Option<Hlc> = None;
        for p in &snap.ops {
            let op = match decode(&p.op) {
                Ok(op) => op,
                Err(reason) => {
                    defer(&tx, &p.op, p.gseq, &reason)?;
                    report.deferred += 1;
                    continue;
                }
            };
            if op.origin == me && ack_own(&tx, op.op_id, p.gseq, now.timestamp_millis())? {
                report.own += 1;
                continue;
            }
            if op.origin != me {
                newest = newest.max(Some(op.hlc));
            }
            apply::insert_ledger(&tx, &op, Some(p.gseq))?;
            report.applied += 1;
        }
        report.deferred += apply::rebuild(&tx)?;
        if let Some(remote) = newest {
            receive_hlc(&tx, remote, now)?;
        }
        tx.execute(
            "UPDATE sync_state SET epoch = ?1, cursor = ?2 WHERE singleton = 1",
            params![snap.epoch.to_string(), u64_sql(snap.gseq)],
        )?;
        tx.commit()?;
        report.cursor = snap.gseq;
        Ok(report)
    }

    /// Tries again to apply the pulled ops kept aside (after an upgrade this build may read
    /// them; an op that referred to something missing may apply now), in `gseq` order, in
    /// one transaction. Ops that still cannot be applied stay deferred. Returns the number
    /// applied.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn retry_deferred(&mut self) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(String, Option<i64>, String)> = {
            let mut st = tx.prepare("SELECT op_key, gseq, raw FROM deferred_ops ORDER BY gseq")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut applied = 0;
        for (key, gseq, raw) in rows {
            let Ok(value) = serde_json::from_str::<Value>(&raw) else {
                continue;
            };
            let Ok(op) = decode(&value) else {
                continue;
            };
            match apply::apply_with_gseq(&tx, &op, gseq.map(sql_u64)) {
                Ok(_) => {
                    tx.execute("DELETE FROM deferred_ops WHERE op_key = ?1", [&key])?;
                    applied += 1;
                }
                Err(StoreError::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        tx.commit()?;
        Ok(applied)
    }

    /// Outbox entries by state, pending per lane.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(status = 'pending' AND lane = 'critical'), 0),
                    COALESCE(SUM(status = 'pending' AND lane = 'notes'), 0),
                    COALESCE(SUM(status = 'pending' AND lane = 'positions'), 0),
                    COALESCE(SUM(status = 'acked'), 0), COALESCE(SUM(status = 'parked'), 0)
             FROM outbox",
            [],
            |r| {
                Ok(OutboxCounts {
                    pending_critical: sql_u64(r.get(0)?),
                    pending_notes: sql_u64(r.get(1)?),
                    pending_positions: sql_u64(r.get(2)?),
                    acked: sql_u64(r.get(3)?),
                    parked: sql_u64(r.get(4)?),
                })
            },
        )?)
    }

    /// What the connection indicator needs, read through the `outbox_pending(status, lane,
    /// seq)` index only (pending ops per lane and parked ops), so its cost follows the
    /// backlog, not the 14 days of acknowledged ops kept for re-push. `acked` is left 0; use
    /// [`Store::outbox_counts`] for it.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn backlog_counts(&self) -> Result<OutboxCounts, StoreError> {
        let mut counts = OutboxCounts::default();
        let mut st = self.conn().prepare_cached(
            "SELECT lane, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY lane",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (lane, n) = row?;
            match lane.as_str() {
                "critical" => counts.pending_critical = sql_u64(n),
                "notes" => counts.pending_notes = sql_u64(n),
                _ => counts.pending_positions = sql_u64(n),
            }
        }
        counts.parked = sql_u64(self.conn().query_row(
            "SELECT COUNT(*) FROM outbox WHERE status = 'parked'",
            [],
            |r| r.get(0),
        )?);
        Ok(counts)
    }

    /// This replica's parked ops with the server's reasons, oldest first.
    ///
    /// # Errors
    /// SQLite errors, unreadable stored values.
    pub fn parked(&self) -> Result<Vec<ParkedRow>, StoreError> {
        let mut st = self.conn().prepare_cached(
            "SELECT envelope, created_at, COALESCE(reason, '') FROM outbox
             WHERE status = 'parked' ORDER BY seq",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(env, created, reason)| {
                Ok(ParkedRow {
                    envelope: serde_json::from_str(&env)?,
                    created_at: time("outbox.created_at", created)?,
                    reason,
                })
            })
            .collect()
    }

    /// Number of pulled ops kept aside unapplied (newer schema or unreadable).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn deferred_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM deferred_ops", [], |r| r.get(0))?;
        Ok(sql_u64(n))
    }

    /// Deletes acked outbox entries acknowledged before `older_than` (callers pass now minus
    /// [`outpost_domain::wire::ACKED_RETENTION_DAYS`]). Pending and parked entries are never
    /// pruned; the ledger keeps every op. Returns the number deleted.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn prune_acked(&mut self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM outbox WHERE status = 'acked'
               AND COALESCE(acked_at, created_at) < ?1",
            [older_than.timestamp_millis()],
        )?)
    }

    /// Every op in the ledger (applied and parked) with its `gseq`, in server order then
    /// `seq` (for the invariant checker and the reference model).
    ///
    /// # Errors
    /// SQLite and JSON errors.
    pub fn ledger(&self) -> Result<Vec<LedgerOp>, StoreError> {
        let mut st = self.conn().prepare_cached(
            "SELECT envelope, gseq, state FROM ops ORDER BY gseq IS NULL, gseq, seq, op_id",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(env, gseq, state)| {
                Ok(LedgerOp {
                    envelope: serde_json::from_str(&env)?,
                    gseq: gseq.map(sql_u64),
                    applied: state == "applied",
                })
            })
            .collect()
    }

    /// The `gseq` recorded for an op, if the op is in the ledger and its `gseq` is known.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn gseq_of(&self, op_id: Uuid) -> Result<Option<u64>, StoreError> {
        let g: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT gseq FROM ops WHERE op_id = ?1",
                [op_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(g.flatten().map(sql_u64))
    }

    /// Rebuilds every state table from the ledger in one transaction (see
    /// [`apply::rebuild`]). Returns the number of ops skipped.
    ///
    /// # Errors
    /// SQLite and JSON errors.
    pub fn rebuild(&mut self) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = apply::rebuild(&tx)?;
        tx.commit()?;
        Ok(n)
    }
}

/// How far ahead of this machine's wall clock a remote stamp may be and still move this
/// origin's HLC, ms (5 minutes).
pub const MAX_HLC_LEAD_MS: i64 = 5 * 60 * 1_000;

/// Moves this origin's HLC past a remote stamp, unless the stamp is more than
/// [`MAX_HLC_LEAD_MS`] ahead of `now`: a console with a clock hours fast must not drag every
/// other console's times forward. Order does not need it: an informed write has a higher
/// `base_version` than everything it saw, and the base comes first in the register order.
fn receive_hlc(conn: &Connection, remote: Hlc, now: DateTime<Utc>) -> Result<(), StoreError> {
    if remote.wall_ms > now.timestamp_millis().saturating_add(MAX_HLC_LEAD_MS) {
        return Ok(());
    }
    // Cached statements: this runs for every applied page and live-feed frame.
    let Some(local) = conn
        .prepare_cached("SELECT hlc_wall_ms, hlc_logical FROM origin WHERE singleton = 1")?
        .query_row([], |r| {
            Ok(Hlc {
                wall_ms: r.get(0)?,
                logical: r.get(1)?,
            })
        })
        .optional()?
    else {
        return Ok(());
    };
    let hlc = Hlc::receive(local, remote, now.timestamp_millis());
    conn.prepare_cached(
        "UPDATE origin SET hlc_wall_ms = ?1, hlc_logical = ?2 WHERE singleton = 1",
    )?
    .execute(params![hlc.wall_ms, hlc.logical])?;
    Ok(())
}
