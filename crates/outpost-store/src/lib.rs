//! The console's local SQLite cache (rusqlite, WAL): migrations, queries, the outbox, and the
//! console's side of sync.
//!
//! Owns: the schema ([`schema`], append-only migrations), the one place where ops change
//! state ([`apply`]: the merge rules of `outpost_domain::merge` over a ledger of applied ops,
//! used by the console, the server's replica and the checker alike), the open conflicts
//! derived from it ([`conflict`]), the canonical digest of the replicated state ([`digest`]),
//! the client sync API on [`Store`] ([`sync`]: pending batches, push answers, pulled pages,
//! resync, snapshots, pruning), the read queries the console needs ([`query`]; devices,
//! bindings and unit tracks in [`devices`]; road closures in [`closures`]), settings,
//! this installation's origin id and the outbox of ops (`design/SYNC.md`).
//!
//! Architecture invariant: every user action is one transaction that changes the state
//! tables and appends its op to the outbox together ([`Store::write`]); every sync step is
//! one transaction too. Nothing here knows about Tauri, HTTP or the UI's types. Domain rules
//! (which transitions are legal) are checked by the caller inside that transaction;
//! [`apply::apply`] only records what an op says.

pub mod apply;
pub mod cipher;
pub mod closures;
pub mod conflict;
pub mod devices;
pub mod digest;
pub mod picture;
pub mod query;
pub mod schema;
mod sql;
pub mod sync;
pub mod timeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use outpost_domain::op::{Hlc, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::op_auth::OpSigner;

pub use cipher::CacheKey;
pub use closures::StoredRoadClosure;
pub use query::{AssignmentRow, IncidentRow, OutboxRow, OutboxStatus, UnitRow};
pub use timeline::{TimelineEvent, TimelineRow};

/// How long a writer waits for another connection's lock before giving up (SQLite busy
/// timeout), milliseconds.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database was written by a newer Outpost (permanent until the binary is upgraded).
    #[error(
        "{path}: the database has schema version {found}, but this Outpost knows only up to \
         version {known}; run a newer Outpost, or start with another --data-dir"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// `user_version` found in the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The file could not be opened or is not a database.
    #[error("{path}: cannot open the database: {source}")]
    Open {
        /// The database file.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The cache key does not open this encrypted database (another console's cache, or the
    /// key was lost). Nothing was written to the file.
    #[error(
        "{path}: the key does not open this encrypted cache (it belongs to another key or \
         another console); the file was left untouched"
    )]
    WrongKey {
        /// The database file.
        path: String,
    },
    /// Converting a plaintext cache (an earlier Outpost) into an encrypted one failed; the
    /// plaintext file is still there, unchanged in content.
    #[error("{path}: cannot encrypt the existing cache ({step}): {detail}")]
    Convert {
        /// The database file.
        path: String,
        /// The step that failed, e.g. "export into the encrypted copy".
        step: String,
        /// The underlying error.
        detail: String,
    },
    /// A migration failed (the transaction was rolled back).
    #[error("{path}: cannot upgrade the database schema: {source}")]
    Migrate {
        /// The database file.
        path: String,
        /// The migration error.
        source: rusqlite_migration::Error,
    },
    /// Any other SQLite error (disk full, I/O, constraint).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An op or a stored value could not be (de)serialized.
    #[error("stored JSON is not readable: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value does not parse (e.g. an unknown status name).
    #[error("stored value {value:?} in {column} is not readable")]
    Corrupt {
        /// Table and column.
        column: &'static str,
        /// The text found.
        value: String,
    },
    /// A server answer comes from another epoch than the one this replica synced with (the
    /// server was restored from a backup): resync ([`Store::start_resync`]).
    #[error("the server's epoch is {server}, but this console synced with epoch {stored}; resync")]
    EpochChanged {
        /// The epoch stored here.
        stored: Uuid,
        /// The epoch the server answered with.
        server: Uuid,
    },
    /// A local op carries a value that cannot be stored (a road closure failing
    /// `RoadClosure::check`: too few points, a position outside WGS-84 ranges, an empty
    /// reason). Nothing was written.
    #[error("{kind}: {message}")]
    Invalid {
        /// The op kind, e.g. `"road_closure.set"`.
        kind: &'static str,
        /// What is wrong and where, e.g. `"shape.points[1]: latitude 91 is out of range"`.
        message: String,
    },
    /// An op refers to something that does not exist (e.g. an assignment of an unknown unit).
    #[error("{what} {id} does not exist")]
    Missing {
        /// "incident", "unit", "assignment".
        what: &'static str,
        /// Its id.
        id: String,
    },
}

impl StoreError {
    /// True when retrying the same action later may succeed (database locked or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// The schema version that introduced the merge-rule tables (`reg_writes`, `releases`).
const MERGE_SCHEMA_VERSION: i64 = 5;

/// The schema version that introduced `road_closures` (issue 5).
const ROAD_CLOSURE_SCHEMA_VERSION: i64 = 8;

/// This installation's identity and sync clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// One UUIDv7 per installation, created on first open.
    pub id: Uuid,
    /// The last outbox sequence number used (0 before the first op).
    pub last_seq: u64,
    /// The last HLC stamp issued.
    pub hlc: Hlc,
}

/// The local database. Not `Sync`: the app keeps it behind a mutex.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    origin: Uuid,
    signer: Option<OpSigner>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`: WAL journal, foreign keys on,
    /// busy timeout [`BUSY_TIMEOUT_MS`], migrated to the latest schema, origin id created on
    /// first open. `now` stamps the origin row when it is created.
    ///
    /// # Errors
    /// [`StoreError::TooNew`] when the file's schema is newer than this build;
    /// [`StoreError::Open`] / [`StoreError::Migrate`] naming the file otherwise.
    pub fn open(path: &Path, now: DateTime<Utc>) -> Result<Store, StoreError> {
        Self::open_with_key(path, None, now)
    }

    /// As [`Store::open`], encrypted with `key` when given (SQLCipher; see [`cipher`]): a
    /// new file is created encrypted, a plaintext file from an earlier Outpost is converted
    /// to an encrypted one first, an encrypted file is opened only when the key reads it.
    /// `None` is a plain SQLite open (tests, tools, the server's files).
    ///
    /// # Errors
    /// [`StoreError::WrongKey`] when `key` does not open the existing file (nothing written);
    /// [`StoreError::Convert`] when a plaintext cache cannot be converted (it stays as it
    /// was); otherwise as [`Store::open`].
    pub fn open_with_key(
        path: &Path,
        key: Option<&CacheKey>,
        now: DateTime<Utc>,
    ) -> Result<Store, StoreError> {
        let conn = match key {
            Some(key) => cipher::open_keyed(path, key)?,
            None => Connection::open(path).map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?,
        };
        Self::init(conn, path.to_path_buf(), now)
    }

    /// A fresh in-memory database (tests, previews).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_in_memory(now: DateTime<Utc>) -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".into(),
            source,
        })?;
        Self::init(conn, PathBuf::from(":memory:"), now)
    }

    fn init(mut conn: Connection, path: PathBuf, now: DateTime<Utc>) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let open_err = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(open_err)?;
        // Reading user_version is the first real read: a file that is not SQLite fails here.
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        let known = schema::latest_version();
        if found > known {
            return Err(StoreError::TooNew {
                path: shown,
                found,
                known,
            });
        }
        // journal_mode returns a row; in-memory databases answer "memory".
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        // FULL: in WAL mode NORMAL may lose the last commits on power loss; an action must
        // be on disk before the UI confirms it (issue 2, SYNC.md principle 1).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        schema::migrations()
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: shown.clone(),
                source,
            })?;
        if found > 0 && found < MERGE_SCHEMA_VERSION {
            // Ops written before the merge rules: index their writes and releases (the state
            // tables already show them).
            let tx = conn.transaction()?;
            apply::backfill_indexes(&tx)?;
            tx.commit()?;
        }
        if found > 0 && found < ROAD_CLOSURE_SCHEMA_VERSION {
            // A ledger from before `road_closures` may hold closures already (written by a
            // build that knew the op but not the table): show them.
            let tx = conn.transaction()?;
            apply::project_all_road_closures(&tx)?;
            tx.commit()?;
        }
        let origin = ensure_origin(&conn, now)?;
        let mut store = Store {
            conn,
            path,
            origin,
            signer: None,
        };
        if store.deferred_count()? > 0 {
            // Ops a previous build kept aside may be readable now.
            store.retry_deferred()?;
        }
        Ok(store)
    }

    /// The database file (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This installation's origin id.
    pub fn origin_id(&self) -> Uuid {
        self.origin
    }

    /// Sets (or with `None` removes) the signer of the ops this store stamps: from then on
    /// [`Store::write`] and [`Store::write_many`] sign each op whose user is the signer's
    /// person (`OpEnvelope::auth`, [`outpost_domain::op_auth`]) before it is applied and
    /// queued; other people's ops stay unsigned. The console sets it at sign-in.
    pub fn set_signer(&mut self, signer: Option<OpSigner>) {
        self.signer = signer;
    }

    /// The connection, for the read queries of [`query`].
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs one local action as ONE transaction: `decide` reads what it needs through the
    /// transaction, checks the domain rules and returns the op to perform (or an error, and
    /// nothing is written); the op's own values are checked ([`check_body`]); the op then gets the next gap-free `seq` and an HLC stamp from
    /// `now`, is applied to the state tables ([`apply::apply`]) and appended to the outbox.
    /// Committed before this returns.
    ///
    /// # Errors
    /// Whatever `decide` returns, or a [`StoreError`] converted into `E`
    /// ([`StoreError::Invalid`] for a value [`check_body`] refuses).
    pub fn write<E, F>(
        &mut self,
        now: DateTime<Utc>,
        user: &str,
        decide: F,
    ) -> Result<OpEnvelope, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<OpBody, E>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let body = decide(&tx)?;
        check_body(&body)?;
        let env = append_local(&tx, self.origin, now, user, body, self.signer.as_ref())?;
        tx.commit().map_err(StoreError::from)?;
        Ok(env)
    }

    /// Runs several local actions as ONE transaction (an import): `decide` returns the ops
    /// to perform, each is checked ([`check_body`]), stamped (consecutive `seq`s) and
    /// applied in order, and all are committed together, or none when any fails.
    ///
    /// # Errors
    /// Whatever `decide` returns, or the first [`StoreError`] (e.g. [`StoreError::Invalid`]
    /// naming the refused op's field), converted into `E`; nothing is written then.
    pub fn write_many<E, F>(
        &mut self,
        now: DateTime<Utc>,
        user: &str,
        decide: F,
    ) -> Result<Vec<OpEnvelope>, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<Vec<OpBody>, E>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let bodies = decide(&tx)?;
        let mut out = Vec::with_capacity(bodies.len());
        for body in bodies {
            check_body(&body)?;
            out.push(append_local(
                &tx,
                self.origin,
                now,
                user,
                body,
                self.signer.as_ref(),
            )?);
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// A plain transaction for writes that are not ops (settings).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Reads a setting (`None` when never stored).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        query::setting(&self.conn, key)
    }

    /// Stores a setting, replacing any previous value.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.set_settings(&[(key, value)])
    }

    /// Stores several settings in one transaction: all of them or none.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_settings(&mut self, pairs: &[(&str, &str)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (key, value) in pairs {
            tx.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Checks the values of a local op that the state cannot hold, before anything is written:
/// a `road_closure.set` must pass `RoadClosure::check` (the rule the server applies too,
/// `merge::validate`).
///
/// # Errors
/// [`StoreError::Invalid`] naming the op kind, the field and what is wrong.
pub fn check_body(body: &OpBody) -> Result<(), StoreError> {
    if let OpBody::RoadClosureSet { closure } = body {
        closure.check().map_err(|message| StoreError::Invalid {
            kind: body.kind(),
            message,
        })?;
    }
    Ok(())
}

/// Reads (creating on first open) the origin row.
fn ensure_origin(conn: &Connection, now: DateTime<Utc>) -> Result<Uuid, StoreError> {
    if let Some(o) = query::origin(conn)? {
        return Ok(o.id);
    }
    let id = Uuid::now_v7();
    conn.execute(
        "INSERT INTO origin(singleton, origin_id, created_at) VALUES (1, ?1, ?2)",
        params![id.to_string(), now.timestamp_millis()],
    )?;
    Ok(id)
}

/// Stamps `body` as the next op of this origin (signed by `signer` when it is its person's),
/// applies it and appends it to the outbox, inside the caller's transaction.
fn append_local(
    tx: &Connection,
    origin: Uuid,
    now: DateTime<Utc>,
    user: &str,
    body: OpBody,
    signer: Option<&OpSigner>,
) -> Result<OpEnvelope, StoreError> {
    let o = query::origin(tx)?.ok_or_else(|| StoreError::Missing {
        what: "origin",
        id: origin.to_string(),
    })?;
    let seq = o.last_seq + 1;
    let hlc = Hlc::tick(o.hlc, now.timestamp_millis());
    let lane = body.lane();
    let lane_text = sql::enum_text(&lane)?;
    let lane_seq = query::last_lane_seq(tx, lane)? + 1;
    let base = sync::next_base_in(tx)?;
    let mut env = OpEnvelope {
        op_id: Uuid::now_v7(),
        origin,
        seq,
        hlc,
        base_version: (base > 0).then_some(base),
        user: user.to_string(),
        schema: SCHEMA_VERSION,
        lane,
        lane_seq,
        body,
        auth: None,
    };
    if let Some(signer) = signer {
        signer.sign(&mut env).map_err(|e| StoreError::Invalid {
            kind: env.body.kind(),
            message: format!("cannot sign the op: {e}"),
        })?;
    }
    tx.execute(
        "UPDATE origin SET last_seq = ?1, hlc_wall_ms = ?2, hlc_logical = ?3 WHERE singleton = 1",
        params![sql::u64_sql(seq), hlc.wall_ms, hlc.logical],
    )?;
    tx.execute(
        "INSERT INTO lane_seqs(lane, last_seq) VALUES (?1, ?2)
         ON CONFLICT(lane) DO UPDATE SET last_seq = excluded.last_seq",
        params![lane_text, sql::u64_sql(lane_seq)],
    )?;
    tx.execute(
        "UPDATE sync_state SET last_base = ?1 WHERE singleton = 1",
        params![sql::u64_sql(base)],
    )?;
    apply::apply_with_gseq(tx, &env, None)?;
    tx.execute(
        "INSERT INTO outbox(seq, op_id, origin, lane, kind, hlc_wall_ms, hlc_logical, envelope,
                            created_at, lane_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            sql::u64_sql(seq),
            env.op_id.to_string(),
            origin.to_string(),
            lane_text,
            env.body.kind(),
            hlc.wall_ms,
            hlc.logical,
            serde_json::to_string(&env)?,
            now.timestamp_millis(),
            sql::u64_sql(lane_seq),
        ],
    )?;
    Ok(env)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cipher;
#[cfg(test)]
mod tests_closures;
#[cfg(test)]
mod tests_devices;
#[cfg(test)]
mod tests_sync;
