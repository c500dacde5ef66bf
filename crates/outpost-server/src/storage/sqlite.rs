//! [`SqliteStorage`]: the server's storage in one SQLite file (`server.db` in the data
//! directory), WAL, `synchronous = FULL`.
//!
//! The file is an `outpost_store::Store` (the server's replica of the state, migrated by the
//! store) plus the server's own tables, all named `srv_*` so they never meet the store's:
//!
//! | table | rows |
//! |---|---|
//! | `srv_meta` | one: epoch, gseq counter, compaction floor, layout version |
//! | `srv_log` | accepted ops: gseq, op id, origin, lane, lane_seq, kind, unit (positions), raw JSON |
//! | `srv_outcome` | one per answered (origin, lane, lane_seq): op id, gseq or parked reason (+ raw) |
//! | `srv_lanes` | high-water mark per (origin, lane) |
//! | `srv_entities` | incidents and units created by accepted ops |
//! | `srv_compacted` | fixes of compacted position reports |
//!
//! Because both live in one file, an op's log row and its effect on the state commit in one
//! transaction (an ATTACHed second file would not be atomic in WAL mode).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use uuid::Uuid;

use outpost_domain::op::{Fix, Lane, OpBody, OpEnvelope};
use outpost_domain::wire::{CompactedFix, EPOCH_GSEQ_GAP};
use outpost_store::{Store, StoreError};

use super::{
    CompactReport, LogHead, LogPage, LoggedOp, OpKey, ParkedOp, Picture, PushTx, SnapshotData,
    StorageError, StoredOutcome, SyncStorage, created_entity, from_sql, to_sql,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "server.db";

/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 256;
/// SQLite's page cache per connection, KiB (the pages it holds; allocated as used).
const CACHE_KIB: u32 = 64 * 1024;
/// WAL pages (4 KiB each) after which a commit checkpoints (SQLite's default: 1,000).
const CHECKPOINT_PAGES: u32 = 10_000;

/// The layout version of the `srv_*` tables this build writes.
const LAYOUT_VERSION: i64 = 1;

const LAYOUT_V1: &str = r#"
CREATE TABLE IF NOT EXISTS srv_meta (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    layout    INTEGER NOT NULL,
    epoch     TEXT NOT NULL,
    gseq      INTEGER NOT NULL,
    floor     INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS srv_log (
    gseq        INTEGER PRIMARY KEY,
    op_id       TEXT NOT NULL UNIQUE,
    origin      TEXT NOT NULL,
    lane        TEXT NOT NULL,
    lane_seq    INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    unit_id     TEXT,
    raw         TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS srv_log_positions ON srv_log(unit_id, gseq)
    WHERE kind = 'position.report';
CREATE TABLE IF NOT EXISTS srv_outcome (
    origin      TEXT NOT NULL,
    lane        TEXT NOT NULL,
    lane_seq    INTEGER NOT NULL,
    op_id       TEXT NOT NULL,
    gseq        INTEGER,
    reason      TEXT,
    raw         TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (origin, lane, lane_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS srv_outcome_op ON srv_outcome(op_id);
CREATE INDEX IF NOT EXISTS srv_outcome_parked ON srv_outcome(received_at)
    WHERE gseq IS NULL;
CREATE TABLE IF NOT EXISTS srv_lanes (
    origin     TEXT NOT NULL,
    lane       TEXT NOT NULL,
    high_water INTEGER NOT NULL,
    PRIMARY KEY (origin, lane)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS srv_entities (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS srv_compacted (
    gseq           INTEGER PRIMARY KEY,
    unit_id        TEXT NOT NULL,
    fix            TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL
) STRICT;
"#;

/// The SQLite storage. See the module doc.
#[derive(Debug)]
pub struct SqliteStorage {
    store: Store,
}

impl SqliteStorage {
    /// Opens (creating if needed) the storage in `data_dir` (created `0700` if missing): the
    /// file [`DB_FILE`] (`0600`, as its `-wal`/`-shm`; wider permissions are tightened, see
    /// [`crate::private_files`]), migrated; a new epoch when the file is new.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directory cannot be created; the store's open errors
    /// (a file of a newer Outpost, not a database) naming the file; SQLite errors.
    pub fn open(data_dir: &Path) -> Result<SqliteStorage, StorageError> {
        crate::private_files::private_dir(data_dir).map_err(|cause| StorageError::Io {
            path: data_dir.display().to_string(),
            cause,
        })?;
        let path: PathBuf = data_dir.join(DB_FILE);
        // Owner-only before and after SQLite opens it (fresh review S11).
        let private = |path: &Path| {
            crate::private_files::private_db(path).map_err(|cause| StorageError::Io {
                path: path.display().to_string(),
                cause,
            })
        };
        private(&path)?;
        let store = Store::open(&path, Utc::now())?;
        private(&path)?;
        Self::init(store)
    }

    /// A storage in memory (tests, fuzzing).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn open_in_memory() -> Result<SqliteStorage, StorageError> {
        Self::init(Store::open_in_memory(Utc::now())?)
    }

    fn init(mut store: Store) -> Result<SqliteStorage, StorageError> {
        // Every statement of a push is cached (the store's apply and the `srv_*` writes):
        // room for all of them, so a mixed push never re-prepares.
        store
            .conn()
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // A push of positions updates index pages all over the log's and the replica's
        // per-unit indexes: a page cache that holds them (instead of SQLite's 2 MiB) keeps
        // them from being spilled and re-read within a push, and a larger WAL before the
        // automatic checkpoint copies each hot page back once per several pushes, not after
        // every push. Durability is unchanged (WAL, synchronous = FULL on every commit).
        store.conn().execute_batch(&format!(
            "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};"
        ))?;
        let tx = store.transaction()?;
        tx.execute_batch(LAYOUT_V1)?;
        let layout: Option<i64> = tx
            .query_row("SELECT layout FROM srv_meta", [], |r| r.get(0))
            .optional()?;
        match layout {
            None => {
                tx.execute(
                    "INSERT INTO srv_meta(singleton, layout, epoch, gseq, floor)
                     VALUES (1, ?1, ?2, 0, 0)",
                    params![LAYOUT_VERSION, Uuid::now_v7().to_string()],
                )?;
            }
            Some(v) if v > LAYOUT_VERSION => {
                return Err(StorageError::Corrupt(format!(
                    "{}: the server tables have layout {v}, this build knows up to \
                     {LAYOUT_VERSION}; run a newer outpost-server",
                    store_path(&tx)
                )));
            }
            Some(_) => {}
        }
        tx.commit()?;
        Ok(SqliteStorage { store })
    }

    /// The server's replica of the state (read-only use: queries, state digests).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn store_path(conn: &Connection) -> String {
    conn.path().unwrap_or(":memory:").to_string()
}

fn lane_text(lane: Lane) -> &'static str {
    match lane {
        Lane::Critical => "critical",
        Lane::Notes => "notes",
        Lane::Positions => "positions",
    }
}

fn read_head(conn: &Connection) -> Result<LogHead, StorageError> {
    let (epoch, gseq, floor): (String, i64, i64) =
        conn.query_row("SELECT epoch, gseq, floor FROM srv_meta", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(LogHead {
        epoch: parse_uuid(&epoch)?,
        gseq: from_sql(gseq)?,
        floor: from_sql(floor)?,
    })
}

fn parse_uuid(text: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(text).map_err(|_| StorageError::Corrupt(format!("{text:?} is not a UUID")))
}

fn read_ops(
    conn: &Connection,
    after: u64,
    until: u64,
    limit: usize,
) -> Result<Vec<LoggedOp>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT gseq, raw FROM srv_log WHERE gseq > ?1 AND gseq <= ?2 ORDER BY gseq LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![to_sql(after)?, to_sql(until)?, limit], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (gseq, raw) = row?;
        out.push(LoggedOp {
            gseq: from_sql(gseq)?,
            raw,
        });
    }
    Ok(out)
}

impl SyncStorage for SqliteStorage {
    fn head(&mut self) -> Result<LogHead, StorageError> {
        read_head(self.store.conn())
    }

    fn begin(&mut self) -> Result<Box<dyn PushTx + '_>, StorageError> {
        let tx = self.store.transaction()?;
        let head = read_head(&tx)?;
        Ok(Box::new(SqlitePushTx {
            tx,
            head,
            stored_gseq: head.gseq,
            lanes: BTreeMap::new(),
        }))
    }

    fn pull(&mut self, after: u64, limit: usize) -> Result<LogPage, StorageError> {
        // A read transaction: the head and the page come from one snapshot of the file.
        let tx = self.store.conn().unchecked_transaction()?;
        let head = read_head(&tx)?;
        let mut ops = read_ops(&tx, after, head.gseq, limit.saturating_add(1))?;
        let more = ops.len() > limit;
        ops.truncate(limit);
        tx.finish()?;
        Ok(LogPage { head, ops, more })
    }

    fn snapshot(&mut self) -> Result<SnapshotData, StorageError> {
        let tx = self.store.conn().unchecked_transaction()?;
        let head = read_head(&tx)?;
        let ops = read_ops(&tx, 0, head.gseq, usize::MAX)?;
        let mut compacted = Vec::new();
        {
            let mut stmt =
                tx.prepare("SELECT unit_id, fix, received_at_ms FROM srv_compacted ORDER BY gseq")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (unit_id, fix, received_at_ms) = row?;
                compacted.push(CompactedFix {
                    unit_id,
                    fix: serde_json::from_str::<Fix>(&fix)?,
                    received_at_ms,
                });
            }
        }
        tx.finish()?;
        Ok(SnapshotData {
            head,
            ops,
            compacted,
        })
    }

    fn parked(&mut self) -> Result<Vec<ParkedOp>, StorageError> {
        let conn = self.store.conn();
        let mut stmt = conn.prepare(
            "SELECT op_id, origin, lane, lane_seq, reason, raw FROM srv_outcome
             WHERE gseq IS NULL ORDER BY received_at, origin, lane, lane_seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (op_id, origin, lane, lane_seq, reason, raw) = row?;
            let lane = match lane.as_str() {
                "critical" => Lane::Critical,
                "notes" => Lane::Notes,
                "positions" => Lane::Positions,
                other => return Err(StorageError::Corrupt(format!("lane {other:?}"))),
            };
            out.push(ParkedOp {
                key: OpKey {
                    op_id: parse_uuid(&op_id)?,
                    origin: parse_uuid(&origin)?,
                    lane,
                    lane_seq: from_sql(lane_seq)?,
                },
                reason: reason.unwrap_or_default(),
                raw: raw.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    fn compact(&mut self, before_gseq: u64) -> Result<CompactReport, StorageError> {
        let tx = self.store.transaction()?;
        let before = to_sql(before_gseq)?;
        // Position reports below the floor, except the newest of each unit.
        let victims: Vec<(i64, String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT l.gseq, l.unit_id, l.raw FROM srv_log l
                 WHERE l.kind = 'position.report' AND l.gseq < ?1
                   AND l.gseq < (SELECT MAX(n.gseq) FROM srv_log n
                                 WHERE n.kind = 'position.report' AND n.unit_id = l.unit_id)
                 ORDER BY l.gseq",
            )?;
            let rows = stmt.query_map([before], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    r.get::<_, String>(2)?,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut removed = 0u64;
        for (gseq, unit_id, raw) in victims {
            let env: OpEnvelope = serde_json::from_str(&raw)?;
            let OpBody::PositionReport { fix, .. } = &env.body else {
                continue;
            };
            tx.execute(
                "INSERT OR REPLACE INTO srv_compacted(gseq, unit_id, fix, received_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![gseq, unit_id, serde_json::to_string(fix)?, env.hlc.wall_ms],
            )?;
            tx.execute("DELETE FROM srv_log WHERE gseq = ?1", [gseq])?;
            removed += 1;
        }
        // Never above the newest gseq + 1: a console that is caught up must not be sent to
        // a snapshot (it would load one, pull, and be sent again, forever).
        let newest = to_sql(read_head(&tx)?.gseq)?;
        tx.execute(
            "UPDATE srv_meta SET floor = MAX(floor, MIN(?1, ?2 + 1)) WHERE singleton = 1",
            [before, newest],
        )?;
        let head = read_head(&tx)?;
        tx.commit()?;
        Ok(CompactReport {
            removed,
            floor: head.floor,
        })
    }

    fn device_bindings(&mut self) -> Result<Vec<(String, String)>, StorageError> {
        Ok(outpost_store::devices::device_bindings(self.store.conn())?)
    }

    fn picture(
        &mut self,
        units: Option<&[String]>,
        incidents: Option<&[Uuid]>,
    ) -> Result<Picture, StorageError> {
        use outpost_store::picture;
        // One read transaction: units and incidents of the same commit.
        let tx = self.store.conn().unchecked_transaction()?;
        let units = match units {
            None => picture::units_with_fix(&tx)?,
            Some(ids) => picture::units_by_id(&tx, ids)?,
        };
        let incidents = match incidents {
            None => picture::open_incidents(&tx)?,
            Some(ids) => picture::incidents_by_id(&tx, ids)?,
        };
        tx.finish()?;
        Ok(Picture { units, incidents })
    }

    fn state_digest(&mut self) -> Result<BTreeMap<String, String>, StorageError> {
        self.digest()
    }
}

impl SqliteStorage {
    fn digest(&self) -> Result<BTreeMap<String, String>, StorageError> {
        Ok(self.store.state_digest()?)
    }
}

/// The transaction of one push.
///
/// The gseq counter (`srv_meta.gseq`) and the lanes' high-water marks (`srv_lanes`) change
/// with every op; they are kept here and written once, at [`PushTx::commit`] (inside the
/// transaction, so a push still commits all of it or nothing), instead of once per op.
struct SqlitePushTx<'a> {
    tx: Transaction<'a>,
    head: LogHead,
    /// The gseq `srv_meta` holds (`head.gseq` is written at commit when it differs).
    stored_gseq: u64,
    /// High-water marks raised by this transaction, not yet in `srv_lanes`.
    lanes: BTreeMap<(Uuid, &'static str), u64>,
}

impl SqlitePushTx<'_> {
    fn set_high_water(&mut self, origin: Uuid, lane: Lane, hw: u64) {
        let mark = self.lanes.entry((origin, lane_text(lane))).or_insert(0);
        *mark = (*mark).max(hw);
    }
}

/// True for store errors that say something about the op (it refers to something missing,
/// carries a value the state cannot hold), not about the database: the op is parked.
fn refused_by_state(e: &StoreError) -> bool {
    !matches!(
        e,
        StoreError::Sqlite(_) | StoreError::Open { .. } | StoreError::Migrate { .. }
    )
}

/// Applies an accepted op to the server's replica. The one call site of the store's apply.
fn apply_to_replica(conn: &Connection, op: &OpEnvelope, gseq: u64) -> Result<(), StoreError> {
    // The gseq goes into the replica's ledger: the merge rules need it for causality.
    outpost_store::apply::apply_with_gseq(conn, op, Some(gseq)).map(|_| ())
}

impl PushTx for SqlitePushTx<'_> {
    fn head(&self) -> LogHead {
        self.head
    }

    fn new_epoch(&mut self) -> Result<LogHead, StorageError> {
        let epoch = Uuid::now_v7();
        let gseq = self.head.gseq.saturating_add(EPOCH_GSEQ_GAP);
        self.tx
            .prepare_cached("UPDATE srv_meta SET epoch = ?1, gseq = ?2 WHERE singleton = 1")?
            .execute(params![epoch.to_string(), to_sql(gseq)?])?;
        self.head.epoch = epoch;
        self.head.gseq = gseq;
        self.stored_gseq = gseq;
        Ok(self.head)
    }

    fn high_water(&mut self, origin: Uuid, lane: Lane) -> Result<u64, StorageError> {
        if let Some(hw) = self.lanes.get(&(origin, lane_text(lane))) {
            // Raised by this transaction (marks only ever go up).
            return Ok(*hw);
        }
        let hw: Option<i64> = self
            .tx
            .prepare_cached("SELECT high_water FROM srv_lanes WHERE origin = ?1 AND lane = ?2")?
            .query_row(params![origin.to_string(), lane_text(lane)], |r| r.get(0))
            .optional()?;
        hw.map_or(Ok(0), from_sql)
    }

    fn outcome(
        &mut self,
        origin: Uuid,
        lane: Lane,
        lane_seq: u64,
    ) -> Result<Option<StoredOutcome>, StorageError> {
        let row: Option<(String, Option<i64>, Option<String>)> = self
            .tx
            .prepare_cached(
                "SELECT op_id, gseq, reason FROM srv_outcome
                 WHERE origin = ?1 AND lane = ?2 AND lane_seq = ?3",
            )?
            .query_row(
                params![origin.to_string(), lane_text(lane), to_sql(lane_seq)?],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((op_id, gseq, reason)) = row else {
            return Ok(None);
        };
        let op_id = parse_uuid(&op_id)?;
        Ok(Some(match gseq {
            Some(g) => StoredOutcome::Accepted {
                op_id,
                gseq: from_sql(g)?,
            },
            None => StoredOutcome::Parked {
                op_id,
                reason: reason.unwrap_or_default(),
            },
        }))
    }

    fn is_logged(&mut self, op_id: Uuid) -> Result<bool, StorageError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM srv_outcome WHERE op_id = ?1 AND gseq IS NOT NULL")?
            .query_row([op_id.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn has_incident(&mut self, incident_id: Uuid) -> Result<bool, StorageError> {
        entity_exists(&self.tx, "incident", &incident_id.to_string())
    }

    fn has_unit(&mut self, unit_id: &str) -> Result<bool, StorageError> {
        entity_exists(&self.tx, "unit", unit_id)
    }

    fn unit_on_incident(&mut self, unit_id: &str, incident_id: Uuid) -> Result<bool, StorageError> {
        // The store's replica (outpost-store's `assignments` table, in this same file).
        Ok(self
            .tx
            .prepare_cached(
                "SELECT 1 FROM assignments WHERE unit_id = ?1 AND incident_id = ?2 LIMIT 1",
            )?
            .query_row(params![unit_id, incident_id.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn assignment(&mut self, assignment_id: Uuid) -> Result<Option<(String, Uuid)>, StorageError> {
        let row: Option<(String, String)> = self
            .tx
            .prepare_cached("SELECT unit_id, incident_id FROM assignments WHERE id = ?1")?
            .query_row([assignment_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        // An incident id the replica cannot read back is no assignment the check can
        // vouch for: refused like an unknown one.
        Ok(row.and_then(|(unit, incident)| Some((unit, Uuid::parse_str(&incident).ok()?))))
    }

    fn accept(&mut self, op: &OpEnvelope, raw: &str) -> Result<Result<u64, String>, StorageError> {
        let gseq = self.head.gseq + 1;
        let now = Utc::now().timestamp_millis();
        let unit_id = match &op.body {
            OpBody::PositionReport { unit_id, .. } => Some(unit_id.as_str()),
            _ => None,
        };
        // The replica first: it applies the op inside a savepoint of its own, so an op the
        // state refuses leaves nothing behind and no savepoint is needed around the rest
        // (any SQL error below fails the whole push, whose transaction then rolls back).
        match apply_to_replica(&self.tx, op, gseq) {
            Ok(()) => {}
            Err(e) if refused_by_state(&e) => {
                return Ok(Err(format!("the server cannot apply it: {e}")));
            }
            Err(e) => return Err(e.into()),
        }
        // The ids as text without allocating (each is written twice).
        let mut op_id_buf = Uuid::encode_buffer();
        let op_id: &str = op.op_id.hyphenated().encode_lower(&mut op_id_buf);
        let mut origin_buf = Uuid::encode_buffer();
        let origin: &str = op.origin.hyphenated().encode_lower(&mut origin_buf);
        self.tx
            .prepare_cached(
                "INSERT INTO srv_log(gseq, op_id, origin, lane, lane_seq, kind, unit_id, raw,
                                     received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                to_sql(gseq)?,
                op_id,
                origin,
                lane_text(op.lane),
                to_sql(op.lane_seq)?,
                op.body.kind(),
                unit_id,
                raw,
                now,
            ])?;
        if let Some((kind, id)) = created_entity(&op.body) {
            self.tx
                .prepare_cached("INSERT OR IGNORE INTO srv_entities(kind, id) VALUES (?1, ?2)")?
                .execute(params![kind, id])?;
        }
        self.tx
            .prepare_cached(
                "INSERT INTO srv_outcome(origin, lane, lane_seq, op_id, gseq, reason, raw,
                                         received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6)",
            )?
            .execute(params![
                origin,
                lane_text(op.lane),
                to_sql(op.lane_seq)?,
                op_id,
                to_sql(gseq)?,
                now,
            ])?;
        self.set_high_water(op.origin, op.lane, op.lane_seq);
        self.head.gseq = gseq;
        Ok(Ok(gseq))
    }

    fn park(&mut self, key: &OpKey, raw: &str, reason: &str) -> Result<(), StorageError> {
        self.tx.prepare_cached(
            "INSERT INTO srv_outcome(origin, lane, lane_seq, op_id, gseq, reason, raw, received_at)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7)",
        )?
        .execute(
            params![
                key.origin.to_string(),
                lane_text(key.lane),
                to_sql(key.lane_seq)?,
                key.op_id.to_string(),
                reason,
                raw,
                Utc::now().timestamp_millis(),
            ],
        )?;
        self.set_high_water(key.origin, key.lane, key.lane_seq);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<LogHead, StorageError> {
        let head = self.head;
        if head.gseq != self.stored_gseq {
            self.tx
                .prepare_cached("UPDATE srv_meta SET gseq = ?1 WHERE singleton = 1")?
                .execute([to_sql(head.gseq)?])?;
        }
        for ((origin, lane), hw) in &self.lanes {
            self.tx
                .prepare_cached(
                    "INSERT INTO srv_lanes(origin, lane, high_water) VALUES (?1, ?2, ?3)
                     ON CONFLICT(origin, lane)
                     DO UPDATE SET high_water = MAX(high_water, excluded.high_water)",
                )?
                .execute(params![origin.to_string(), lane, to_sql(*hw)?])?;
        }
        self.tx.commit()?;
        Ok(head)
    }
}

fn entity_exists(conn: &Connection, kind: &str, id: &str) -> Result<bool, StorageError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM srv_entities WHERE kind = ?1 AND id = ?2")?
        .query_row(params![kind, id], |_| Ok(()))
        .optional()?
        .is_some())
}
