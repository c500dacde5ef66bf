//! The tamper-evident audit trail (`audit.db` in the server's data directory): every op,
//! login, failed login, enrollment, logout, export, permission refusal and every 401/403 is
//! one record in a SHA-256 hash chain (issue 6; FBI CJIS Security Policy 5.9.5 §5.4: audit
//! events, content, protection and retention; MLPS 2.0 level 3 GB/T 22239-2019 8.1.4.3:
//! audit records protected against deletion and alteration).
//!
//! # The chain
//! Records are numbered from 1 (`seq`, gap-free). Each holds the hex SHA-256 of the record
//! before it (`prev_hash`; 64 zeros, [`GENESIS_HASH`], for record #1) and its own `hash`,
//! computed by [`record_hash`] over `prev_hash` and every field in this fixed encoding:
//!
//! ```text
//! hash = hex(SHA-256( "outpost-audit-v1"                       16 bytes, no length
//!                     || for f in [prev_hash, seq, at, user, device, action, target,
//!                                  outcome, detail]:
//!                          len(f) as 8-byte big-endian || f as UTF-8 bytes ))
//! ```
//!
//! `seq` is its decimal text (`"17"`), `prev_hash` its 64 lowercase hex digits. The length
//! prefix of every field means no field can absorb part of another (`user "ab", device "c"`
//! and `user "a", device "bc"` hash differently). Changing any stored field changes that
//! record's hash ([`verify`]: "altered"); removing or inserting a record breaks the next
//! record's `seq` or `prev_hash` ("missing", "does not link").
//!
//! # Time
//! `at` is stamped from an injected [`Clock`] in the server's local UTC offset (or a fixed
//! one, [`Zone`]) as `%Y-%m-%dT%H:%M:%S%.2f%:z`, e.g. `2026-11-30T05:01:02.34+01:00`: to
//! 1/100 s with the UTC offset (CJIS 5.9.5 §5.4.1.1). [`format_time`] truncates, never rounds
//! up into the next second.
//!
//! Times never go backwards along the chain: the clock is read inside the write transaction
//! that assigns `seq` (so a writer that waited for the lock cannot append an older time after
//! a newer one), and when the clock reads earlier than the previous record's `at` (the clock
//! was stepped back, e.g. by NTP or by hand) the record takes the previous record's time
//! instead, and a warning is logged when that is more than a second. A clock that was once set
//! ahead therefore holds later records at that time until it catches up; `seq` remains the
//! order of events (fresh review S17).
//!
//! # Retention
//! Records are kept at least a year (CJIS 5.9.5 §5.4.7); [`Retention`] refuses less than
//! 365 days and defaults to 400. [`AuditLog::prune`] removes the oldest records (a prefix of
//! the chain, after checking it intact, so pruning never launders an altered record) and
//! stores the *anchor*, the `seq` and `hash` of the last removed record, in `audit_anchor`;
//! [`verify`] starts from it: the first kept record must be `anchor.seq + 1` and link to
//! `anchor.hash`. A prune is itself a record (`audit.prune`).
//!
//! # What the chain does not prove
//! A hash chain inside the file it protects shows that records were altered, removed or
//! inserted *inside* the chain. Someone who can write the file can also cut records off the
//! newest end, or cut the oldest and forge the anchor, and leave a consistent chain. The
//! defence is a witness outside the file: [`retention_task`] logs the head (`seq`, `hash`)
//! once a day to the server log, `audit head` and `audit verify` print it, and the auditor
//! copies it off the server (daily); `audit verify --expect-head SEQ:HASH`
//! ([`verify_expecting`]) then fails when that record is missing or differs.
//!
//! # Files and tables
//! `audit.db`, WAL, `synchronous = FULL`, its own append-only migrations
//! (`PRAGMA user_version`):
//!
//! | table | rows |
//! |---|---|
//! | `audit_log` | one per record: the fields above, `hash`, and `at_utc_ms` (the same instant as ms since the Unix epoch; not hashed: it finds what may be pruned, and pruning confirms each record by its hashed `at`) |
//! | `audit_anchor` | at most one: the last pruned record's `seq`, `hash`, `at`, and when it was pruned |
//! | `audit_ingested` | one per console audit event recorded ([`AuditLog::record_new`]): its `event_id` and the `seq` of its record, so a re-sent event is not recorded twice (kept when records are pruned: an id stays known) |
//!
//! Reading and checking ([`verify`], [`read_page`]) opens the file without creating or
//! migrating it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Local, Timelike, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use outpost_domain::clock::{Clock, SystemClock};
use outpost_domain::wire::{AuditPage, AuditRecord, ErrorBody};

/// The audit trail's file inside the data directory.
pub const AUDIT_FILE: &str = "audit.db";

/// The `prev_hash` of record #1: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first bytes hashed for every record (the encoding's version; see the module docs).
pub const HASH_DOMAIN: &[u8; 16] = b"outpost-audit-v1";

/// The longest stored `user`, `device`, `action`, `target` or `detail`, bytes; longer text
/// (e.g. a login name an attacker made up) is cut at a character boundary and ends in `…`.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Records per page of [`AuditLog::page`] when no limit is given.
pub const DEFAULT_PAGE: u32 = 200;

/// The most records one page returns.
pub const MAX_PAGE: u32 = 1000;

/// How often [`retention_task`] prunes.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long SQLite waits for another writer (the server and an admin command), ms.
const BUSY_TIMEOUT_MS: u64 = 5_000;

const M1_AUDIT: &str = r#"
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    user      TEXT NOT NULL,
    device    TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    at_utc_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_log_at ON audit_log(at_utc_ms);
CREATE TABLE audit_anchor (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    at        TEXT NOT NULL,
    pruned_at TEXT NOT NULL
) STRICT;
"#;

const M2_INGESTED: &str = r#"
CREATE TABLE audit_ingested (
    event_id TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL
) STRICT;
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(M1_AUDIT).comment("audit chain and retention anchor"),
        M::up(M2_INGESTED).comment("ids of console audit events already recorded"),
    ])
}

/// The schema version this build writes (the number of migrations).
const SCHEMA_VERSION: i64 = 2;

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// Done.
    Ok,
    /// Refused by a rule: no or bad credentials, a role that may not, a revoked device.
    Refused,
    /// Tried and failed for another reason (a storage error, bad input).
    Failed,
}

impl AuditOutcome {
    /// The stored and wire text: `ok`, `refused`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Failed => "failed",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to record; the log adds `seq`, the time and the hashes.
///
/// Text is stored as given except that control characters (newlines, tabs, escapes) become
/// spaces, so a record is one line, and each field is cut to [`MAX_FIELD_BYTES`]. An empty
/// `user` or `device` is stored as `"-"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Login name; `"-"` when unknown (a request with no credentials).
    pub user: String,
    /// Device id; `"-"` when none.
    pub device: String,
    /// What was attempted: `login`, `enroll`, `logout`, `op:incident.create`, `pull`,
    /// `export`, `admin:user.add`, `audit.prune`, …
    pub action: String,
    /// What it was done to (an op id, a user, a path); may be empty.
    pub target: String,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// One line: the refusal's reason, a count; may be empty.
    pub detail: String,
}

impl AuditEvent {
    /// An event with unknown user and device (`"-"`), no target and no detail.
    pub fn new(action: impl Into<String>, outcome: AuditOutcome) -> Self {
        AuditEvent {
            user: "-".into(),
            device: "-".into(),
            action: action.into(),
            target: String::new(),
            outcome,
            detail: String::new(),
        }
    }

    /// Sets the login name.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the device id.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.device = device.into();
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    /// Sets the detail line.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Which UTC offset [`AuditLog`] stamps records with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The server's local time zone at each instant (the default).
    #[default]
    Local,
    /// A fixed offset (tests; a server kept in UTC).
    Fixed(FixedOffset),
}

/// Errors of the audit trail. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// `audit.db` does not exist (reading commands never create it).
    #[error("{path}: no audit trail here; give the --data directory of `outpost-server serve`")]
    Missing {
        /// The file looked for.
        path: String,
    },
    /// The file could not be opened or is not a database.
    #[error("{path}: cannot open the audit trail: {source}")]
    Open {
        /// The file.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer build.
    #[error(
        "{path}: the audit trail has schema version {found}, newer than this build knows \
         ({known}); use a newer outpost-server"
    )]
    TooNew {
        /// The file.
        path: String,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// What this build writes.
        known: i64,
    },
    /// The file is a database but not an audit trail (no schema).
    #[error("{path}: not an audit trail (no audit tables)")]
    NotAudit {
        /// The file.
        path: String,
    },
    /// A migration failed (rolled back).
    #[error("{path}: cannot upgrade the audit trail's schema: {source}")]
    Migrate {
        /// The file.
        path: String,
        /// The migration error.
        source: rusqlite_migration::Error,
    },
    /// Any other SQLite error (disk full, I/O, a malformed file).
    #[error("audit trail: database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A retention shorter than a year.
    #[error(
        "--audit-retention-days {days}: audit records must be kept at least one year \
         (365 days; FBI CJIS Security Policy 5.9.5 §5.4.7)"
    )]
    RetentionTooShort {
        /// What was asked for.
        days: u32,
    },
    /// A page query out of range.
    #[error("query: {0}")]
    BadQuery(String),
    /// Pruning refused because the records it would remove do not verify (removing them
    /// would destroy the evidence).
    #[error("audit trail: pruning refused, nothing removed: {0}")]
    PruneRefused(VerifyReport),
}

/// The answer of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every kept record's hash matches its contents and links to the one before (or to the
    /// retention anchor).
    Intact {
        /// Records checked.
        records: u64,
        /// The first kept record's `seq` (`anchor + 1`, 1 without pruning).
        first_seq: u64,
        /// The newest record's `seq` (`first_seq - 1` when there are none).
        last_seq: u64,
        /// The newest record's hash (the anchor's, or [`GENESIS_HASH`], when there are
        /// none): compare it with a copy kept outside the server.
        head_hash: String,
    },
    /// The first record that does not verify.
    Broken {
        /// Its `seq`.
        seq: u64,
        /// Its stored time.
        at: String,
        /// Its stored action.
        action: String,
        /// Why, one line: altered (hash mismatch), missing records (seq gap), does not link
        /// (prev_hash mismatch: a record was removed or inserted before it).
        why: String,
    },
}

impl VerifyReport {
    /// Whether the chain verified.
    pub fn is_intact(&self) -> bool {
        matches!(self, VerifyReport::Intact { .. })
    }
}

impl fmt::Display for VerifyReport {
    /// `audit trail intact: N records (#a–#b)` or `audit trail BROKEN at record #k (time,
    /// action): why`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyReport::Intact {
                records: 0,
                first_seq,
                ..
            } => {
                if *first_seq > 1 {
                    write!(
                        f,
                        "audit trail intact: 0 records (all up to #{} pruned)",
                        first_seq - 1
                    )
                } else {
                    write!(f, "audit trail intact: 0 records")
                }
            }
            VerifyReport::Intact {
                records,
                first_seq,
                last_seq,
                ..
            } => write!(
                f,
                "audit trail intact: {records} records (#{first_seq}–#{last_seq})"
            ),
            VerifyReport::Broken {
                seq,
                at,
                action,
                why,
            } => write!(
                f,
                "audit trail BROKEN at record #{seq} ({}, {}): {why}",
                one_line(at),
                one_line(action)
            ),
        }
    }
}

/// What [`AuditLog::prune`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed.
    pub removed: u64,
    /// The anchor after pruning (the last removed record's `seq`), if anything was ever
    /// pruned.
    pub anchor_seq: Option<u64>,
}

/// How long records are kept: at least 365 days (CJIS 5.9.5 §5.4.7), 400 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    /// The least retention accepted, days (one year).
    pub const MIN_DAYS: u32 = 365;
    /// The default retention, days.
    pub const DEFAULT_DAYS: u32 = 400;

    /// A retention of `days`.
    ///
    /// # Errors
    /// [`AuditError::RetentionTooShort`] below [`Retention::MIN_DAYS`].
    pub fn from_days(days: u32) -> Result<Self, AuditError> {
        if days < Self::MIN_DAYS {
            return Err(AuditError::RetentionTooShort { days });
        }
        Ok(Retention { days })
    }

    /// The retention in days.
    pub fn days(self) -> u32 {
        self.days
    }

    /// Records stamped before this instant are expired at `now`.
    pub fn cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::from(self.days))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: Self::DEFAULT_DAYS,
        }
    }
}

/// The audit trail, open for appending. Thread-safe (one connection behind a mutex); every
/// write is one IMMEDIATE transaction, so another process (an admin command) may append too.
pub struct AuditLog {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    zone: Zone,
    path: PathBuf,
    /// Whether the last write failed (`GET /v1/health` `audit_ok`; review S11).
    health: crate::security::guards::AuditHealth,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating and migrating if needed) `DIR/audit.db`, stamped by the system clock
    /// in the local time zone. The directory must exist.
    ///
    /// # Errors
    /// [`AuditError::Open`], [`AuditError::TooNew`], [`AuditError::Migrate`].
    pub fn open(data_dir: &Path) -> Result<Self, AuditError> {
        Self::open_with(data_dir, Arc::new(SystemClock), Zone::Local)
    }

    /// Like [`AuditLog::open`] with a clock and a zone of the caller's.
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn open_with(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        zone: Zone,
    ) -> Result<Self, AuditError> {
        let path = data_dir.join(AUDIT_FILE);
        let shown = path.display().to_string();
        let open_err = |source| AuditError::Open {
            path: shown.clone(),
            source,
        };
        // Owner-only before and after SQLite opens it (fresh review S11).
        let private = |p: &Path| {
            crate::private_files::private_db(p).map_err(|e| AuditError::Open {
                path: shown.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })
        };
        private(&path)?;
        let mut conn = Connection::open(&path).map_err(open_err)?;
        private(&path)?;
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(open_err)?;
        // The first real read: a file that is not SQLite fails here.
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > SCHEMA_VERSION {
            return Err(AuditError::TooNew {
                path: shown,
                found,
                known: SCHEMA_VERSION,
            });
        }
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        // FULL: a record must be on disk before the request it records is answered.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| AuditError::Migrate {
                path: shown.clone(),
                source,
            })?;
        Ok(AuditLog {
            conn: Mutex::new(conn),
            clock,
            zone,
            path,
            health: crate::security::guards::AuditHealth::default(),
        })
    }

    /// False while writes fail (the last write failed): `GET /v1/health` reports it as
    /// `audit_ok`. Failures are logged at error level at most once a minute.
    pub fn is_ok(&self) -> bool {
        self.health.is_ok()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half transaction (rusqlite rolls back on
        // drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one record; returns its `seq`.
    ///
    /// # Errors
    /// [`AuditError::Sqlite`] (nothing appended).
    pub fn record(&self, event: AuditEvent) -> Result<u64, AuditError> {
        self.record_many(std::slice::from_ref(&event))
    }

    /// Appends records in one transaction, all stamped with the same instant (read inside the
    /// transaction, never earlier than the previous record's; see the module docs, *Time*);
    /// returns the last `seq` (the chain's head; unchanged when `events` is empty).
    ///
    /// # Errors
    /// [`AuditError::Sqlite`] (nothing appended).
    pub fn record_many(&self, events: &[AuditEvent]) -> Result<u64, AuditError> {
        let r = (|| {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last = append(&tx, events, self.clock.now(), self.zone)?;
            tx.commit()?;
            Ok(last)
        })();
        self.health.note(&self.path, &r);
        r
    }

    /// Appends the events whose key (a console audit event's id) was never recorded, in one
    /// transaction with the keys, so a re-sent batch appends nothing twice even across a
    /// crash; keys repeated inside `events` count once. Returns `(appended, duplicates)`.
    ///
    /// # Errors
    /// [`AuditError::Sqlite`] (nothing appended).
    pub fn record_new(&self, events: &[(String, AuditEvent)]) -> Result<(u32, u32), AuditError> {
        let r = self.record_new_inner(events);
        self.health.note(&self.path, &r);
        r
    }

    fn record_new_inner(&self, events: &[(String, AuditEvent)]) -> Result<(u32, u32), AuditError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = self.clock.now();
        let mut fresh: Vec<AuditEvent> = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        let mut duplicates = 0u32;
        for (key, event) in events {
            let known: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM audit_ingested WHERE event_id = ?1)",
                [key],
                |r| r.get(0),
            )?;
            if known || keys.contains(&key.as_str()) {
                duplicates += 1;
                continue;
            }
            keys.push(key);
            fresh.push(event.clone());
        }
        let last = append(&tx, &fresh, now, self.zone)?;
        let first = last + 1 - fresh.len() as u64;
        for (i, key) in keys.iter().enumerate() {
            tx.execute(
                "INSERT INTO audit_ingested (event_id, seq) VALUES (?1, ?2)",
                params![key, (first + i as u64) as i64],
            )?;
        }
        tx.commit()?;
        Ok((u32::try_from(fresh.len()).unwrap_or(u32::MAX), duplicates))
    }

    /// Records after `after`, oldest first, at most `limit` ([`DEFAULT_PAGE`] when `None`).
    ///
    /// # Errors
    /// [`AuditError::BadQuery`] for a limit of 0 or above [`MAX_PAGE`] or `after` beyond
    /// `i64::MAX`; [`AuditError::Sqlite`].
    pub fn page(&self, after: u64, limit: Option<u32>) -> Result<AuditPage, AuditError> {
        page(&self.lock(), after, limit)
    }

    /// The newest record's `seq` and hash (the anchor's or `(0, GENESIS_HASH)` when there
    /// are none).
    ///
    /// # Errors
    /// [`AuditError::Sqlite`].
    pub fn head(&self) -> Result<(u64, String), AuditError> {
        Ok(head(&self.lock())?)
    }

    /// Removes the records stamped before `older_than`: the chain's prefix up to (not
    /// including) the first record at or after it, so a record out of time order keeps
    /// everything after it. The removed records are checked first (from the current anchor);
    /// the last one becomes the anchor; an `audit.prune` record says what was removed. One
    /// transaction.
    ///
    /// # Errors
    /// [`AuditError::PruneRefused`] when the records to remove do not verify (nothing is
    /// removed; an `audit.prune` record with outcome `failed` says why);
    /// [`AuditError::Sqlite`].
    pub fn prune(&self, older_than: DateTime<Utc>) -> Result<PruneReport, AuditError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = self.clock.now();
        let anchor = anchor(&tx)?;
        let first_after: Option<i64> = tx.query_row(
            "SELECT MIN(seq) FROM audit_log WHERE at_utc_ms >= ?1",
            [older_than.timestamp_millis()],
            |r| r.get(0),
        )?;
        let max: Option<i64> = tx.query_row("SELECT MAX(seq) FROM audit_log", [], |r| r.get(0))?;
        let Some(max) = max else {
            return Ok(PruneReport {
                removed: 0,
                anchor_seq: anchor.map(|a| a.0),
            });
        };
        let last_removed = match first_after {
            Some(s) => s - 1,
            None => max,
        };
        // `at_utc_ms` is not hashed: it only finds the candidates. Each is confirmed by its
        // hashed `at`, so a changed `at_utc_ms` cannot make pruning remove newer records
        // (the prefix ends before the first record whose `at` is not before the cutoff).
        let last_removed = confirmed_prefix(&tx, last_removed, older_than)?;
        let min: i64 = tx.query_row("SELECT MIN(seq) FROM audit_log", [], |r| r.get(0))?;
        if last_removed < min {
            return Ok(PruneReport {
                removed: 0,
                anchor_seq: anchor.map(|a| a.0),
            });
        }
        let last_removed = last_removed as u64;
        let check = check_chain(&tx, anchor.clone(), Some(last_removed))?;
        if !check.is_intact() {
            drop(tx);
            let ev = AuditEvent::new("audit.prune", AuditOutcome::Failed)
                .target(AUDIT_FILE)
                .detail(format!(
                    "refused to prune records before {}: {check}",
                    format_time(older_than, self.zone)
                ));
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            append(&tx, &[ev], self.clock.now(), self.zone)?;
            tx.commit()?;
            return Err(AuditError::PruneRefused(check));
        }
        let (hash, at): (String, String) = tx.query_row(
            "SELECT hash, at FROM audit_log WHERE seq = ?1",
            [last_removed as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let removed = tx.execute(
            "DELETE FROM audit_log WHERE seq <= ?1",
            [last_removed as i64],
        )? as u64;
        tx.execute(
            "INSERT INTO audit_anchor (singleton, seq, hash, at, pruned_at) \
             VALUES (1, ?1, ?2, ?3, ?4) \
             ON CONFLICT (singleton) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             at = excluded.at, pruned_at = excluded.pruned_at",
            params![last_removed as i64, hash, at, format_time(now, self.zone)],
        )?;
        let first_removed = last_removed + 1 - removed;
        let ev = AuditEvent::new("audit.prune", AuditOutcome::Ok)
            .target(AUDIT_FILE)
            .detail(format!(
                "removed {removed} records #{first_removed}–#{last_removed} stamped before {}; \
                 anchor #{last_removed} {hash}",
                format_time(older_than, self.zone)
            ));
        append(&tx, &[ev], now, self.zone)?;
        tx.commit()?;
        Ok(PruneReport {
            removed,
            anchor_seq: Some(last_removed),
        })
    }

    /// [`AuditLog::prune`] of the records `retention` lets expire at the clock's now.
    ///
    /// # Errors
    /// As [`AuditLog::prune`].
    pub fn prune_expired(&self, retention: Retention) -> Result<PruneReport, AuditError> {
        self.prune(retention.cutoff(self.clock.now()))
    }

    /// Checks the whole chain (as [`verify`], on this open log).
    ///
    /// # Errors
    /// [`AuditError::Sqlite`] when it cannot be read.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let a = anchor(&tx)?;
        Ok(check_chain(&tx, a, None)?)
    }
}

/// `at` for an instant: `%Y-%m-%dT%H:%M:%S%.2f%:z` in `zone` (1/100 s, truncated; a leap
/// second shows as `.99`).
pub fn format_time(at: DateTime<Utc>, zone: Zone) -> String {
    let local: DateTime<FixedOffset> = match zone {
        Zone::Local => at.with_timezone(&Local).fixed_offset(),
        Zone::Fixed(off) => at.with_timezone(&off),
    };
    let centis = (local.nanosecond() / 10_000_000).min(99);
    format!(
        "{}.{centis:02}{}",
        local.format("%Y-%m-%dT%H:%M:%S"),
        local.format("%:z")
    )
}

/// The hash of one record (see the module docs for the encoding): lowercase hex SHA-256.
#[allow(clippy::too_many_arguments)]
pub fn record_hash(
    prev_hash: &str,
    seq: u64,
    at: &str,
    user: &str,
    device: &str,
    action: &str,
    target: &str,
    outcome: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    let seq = seq.to_string();
    for field in [
        prev_hash, &seq, at, user, device, action, target, outcome, detail,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Checks the chain of `DIR/audit.db` from its anchor (or record #1) to the newest record.
/// Reads one consistent snapshot; works while the server appends. Never creates or changes
/// the file.
///
/// # Errors
/// [`AuditError::Missing`] without the file, [`AuditError::Open`] / [`AuditError::NotAudit`]
/// / [`AuditError::TooNew`] for another file, [`AuditError::Sqlite`] when it cannot be read
/// (a malformed file). A readable file whose records do not verify is
/// `Ok(VerifyReport::Broken)`.
pub fn verify(data_dir: &Path) -> Result<VerifyReport, AuditError> {
    let mut conn = open_existing(data_dir)?;
    let tx = conn.transaction()?;
    let a = anchor(&tx)?;
    Ok(check_chain(&tx, a, None)?)
}

/// Records of `DIR/audit.db` after `after` (as [`AuditLog::page`]) without opening it for
/// writing (`audit show`).
///
/// # Errors
/// As [`verify`] and [`AuditLog::page`].
pub fn read_page(data_dir: &Path, after: u64, limit: Option<u32>) -> Result<AuditPage, AuditError> {
    let conn = open_existing(data_dir)?;
    page(&conn, after, limit)
}

/// The retention anchor of `DIR/audit.db`: the last pruned record's `seq` and hash.
///
/// # Errors
/// As [`verify`].
pub fn read_anchor(data_dir: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let conn = open_existing(data_dir)?;
    Ok(anchor(&conn)?)
}

/// The newest record's `seq` and hash of `DIR/audit.db` (`audit head`: the witness an
/// auditor copies off the server, daily, and later gives to [`verify_expecting`]); the
/// anchor's, or `(0, GENESIS_HASH)`, when there are no records.
///
/// # Errors
/// As [`verify`].
pub fn read_head(data_dir: &Path) -> Result<ExpectedHead, AuditError> {
    let conn = open_existing(data_dir)?;
    let (seq, hash) = head(&conn)?;
    Ok(ExpectedHead { seq, hash })
}

/// A head kept outside the server, `SEQ:HASH` (`17:3fa9…`, 64 lowercase hex digits), as
/// `audit head` prints it and `audit verify --expect-head` reads it (fresh review S8: a
/// chain inside its file cannot show that its newest records were cut off or that the
/// whole file was rewritten; a copy of an earlier head can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedHead {
    /// The record's `seq`.
    pub seq: u64,
    /// Its hash, lowercase hex.
    pub hash: String,
}

impl fmt::Display for ExpectedHead {
    /// `SEQ:HASH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for ExpectedHead {
    type Err = String;

    /// Parses `SEQ:HASH` (an optional leading `#` on SEQ; HASH 64 hex digits, any case).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected SEQ:HASH (as `audit head` prints it)"))?;
        let seq: u64 = seq
            .trim_start_matches('#')
            .parse()
            .map_err(|_| format!("{s:?}: SEQ must be a record number"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{s:?}: HASH must be 64 hex digits"));
        }
        Ok(ExpectedHead {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// [`verify`], then the record `expected.seq` must exist (or be the retention anchor) with
/// hash `expected.hash`: otherwise `Ok(VerifyReport::Broken)` naming it — "missing" when the
/// trail now ends before it (records cut off the newest end), "differs" when its hash is
/// another (the trail was rewritten up to there), "pruned" when retention removed it (take a
/// newer head: the check cannot be made).
///
/// # Errors
/// As [`verify`].
pub fn verify_expecting(
    data_dir: &Path,
    expected: &ExpectedHead,
) -> Result<VerifyReport, AuditError> {
    let mut conn = open_existing(data_dir)?;
    let tx = conn.transaction()?;
    let a = anchor(&tx)?;
    let report = check_chain(&tx, a.clone(), None)?;
    let VerifyReport::Intact { last_seq, .. } = &report else {
        return Ok(report);
    };
    let broken = |at: String, action: String, why: String| VerifyReport::Broken {
        seq: expected.seq,
        at,
        action,
        why,
    };
    if expected.seq > *last_seq {
        return Ok(broken(
            "-".into(),
            "-".into(),
            format!(
                "missing: the trail ends at #{last_seq}, but the head kept elsewhere is                  #{} (records were cut off the newest end)",
                expected.seq
            ),
        ));
    }
    if let Some((aseq, ahash)) = &a {
        if expected.seq == *aseq {
            return Ok(if *ahash == expected.hash {
                report
            } else {
                broken(
                    "-".into(),
                    "(retention anchor)".into(),
                    format!(
                        "differs: the anchor's hash is {ahash}, the head kept elsewhere says                          {} (the trail was rewritten)",
                        expected.hash
                    ),
                )
            });
        }
        if expected.seq < *aseq {
            return Ok(broken(
                "-".into(),
                "-".into(),
                format!(
                    "pruned: retention removed records up to #{aseq}; check against a newer                      head"
                ),
            ));
        }
    }
    let row: Option<(String, String, String)> = tx
        .query_row(
            "SELECT hash, at, action FROM audit_log WHERE seq = ?1",
            [i64::try_from(expected.seq).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        None if expected.seq == 0 && expected.hash == GENESIS_HASH => report,
        None => broken(
            "-".into(),
            "-".into(),
            "missing: no such record in the trail".into(),
        ),
        Some((hash, ..)) if hash == expected.hash => report,
        Some((hash, at, action)) => broken(
            at,
            action,
            format!(
                "differs: its hash is {hash}, the head kept elsewhere says {} (the trail                  was rewritten up to here)",
                expected.hash
            ),
        ),
    })
}

/// Prunes at start, then every [`PRUNE_INTERVAL`], until `shutdown` becomes true (or its
/// sender is dropped). Each round logs the chain's head (`seq`, hash) at info level, a
/// witness outside the file, and a failed prune at error level; it never stops serving.
pub async fn retention_task(
    log: Arc<AuditLog>,
    retention: Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let l = log.clone();
        let round = tokio::task::spawn_blocking(move || {
            let pruned = l.prune_expired(retention);
            (pruned, l.head())
        })
        .await;
        match round {
            Ok((pruned, head)) => {
                match pruned {
                    Ok(r) if r.removed > 0 => tracing::info!(
                        removed = r.removed,
                        anchor = r.anchor_seq,
                        days = retention.days(),
                        "audit trail: pruned expired records"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "audit trail: pruning failed"),
                }
                match head {
                    Ok((seq, hash)) => tracing::info!(
                        seq,
                        hash,
                        head = %format!("{seq}:{hash}"),
                        "audit trail head (auditors: copy it off this server; \
                         `audit verify --expect-head SEQ:HASH` checks it later)"
                    ),
                    Err(e) => tracing::error!(error = %e, "audit trail: cannot read the head"),
                }
            }
            Err(e) => tracing::error!(error = %e, "audit trail: the retention round aborted"),
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The query of `GET /v1/audit`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct AuditQuery {
    /// Records after this `seq` (default 0: from the oldest kept).
    pub after: Option<u64>,
    /// At most this many, 1–[`MAX_PAGE`] (default [`DEFAULT_PAGE`]).
    pub limit: Option<u32>,
}

/// `GET /v1/audit?after=SEQ&limit=N`: an [`AuditPage`], oldest first. The caller's role
/// (auditor only, `access::check_endpoint`) is checked by the auth layer before this runs.
/// 400 `bad_request` for a bad query, 500 `internal` when the trail cannot be read. To have
/// the log as state, the router's state implements `FromRef` for `Arc<AuditLog>`.
pub async fn get_audit(
    State(log): State<Arc<AuditLog>>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("query: {} (expected after=SEQ&limit=N)", e.body_text()),
            );
        }
    };
    let result = tokio::task::spawn_blocking(move || log.page(q.after.unwrap_or(0), q.limit)).await;
    match result {
        Ok(Ok(page)) => Json(page).into_response(),
        Ok(Err(AuditError::BadQuery(m))) => error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("query: {m}"),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "GET /v1/audit failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the audit trail cannot be read; see the server log".into(),
            )
        }
        Err(e) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("request aborted: {e}"),
        ),
    }
}

fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            code: code.into(),
            message,
            epoch: None,
        }),
    )
        .into_response()
}

/// Opens an existing trail for reading: no create, no migration.
fn open_existing(data_dir: &Path) -> Result<Connection, AuditError> {
    let path = data_dir.join(AUDIT_FILE);
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(AuditError::Missing { path: shown });
    }
    let open_err = |source| AuditError::Open {
        path: shown.clone(),
        source,
    };
    // Read-write without create: a read-only connection cannot always open a WAL file whose
    // -shm is gone. Nothing here writes.
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(open_err)?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(AuditError::TooNew {
            path: shown,
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found < 1 {
        return Err(AuditError::NotAudit { path: shown });
    }
    Ok(conn)
}

/// `text` safe to print on a terminal as one line: control characters (newlines, escape
/// sequences a tampered file might carry) become `?`. For `audit show` and [`VerifyReport`].
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// Cleans one field for storage: control characters become spaces; cut to
/// [`MAX_FIELD_BYTES`] at a character boundary, ending in `…`.
fn clean(s: &str, empty_as_dash: bool) -> String {
    if s.is_empty() && empty_as_dash {
        return "-".into();
    }
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_FIELD_BYTES {
        let mut cut = MAX_FIELD_BYTES - '…'.len_utf8();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Appends `events` after the head inside `tx`, stamped `now` or, when that is earlier, the
/// previous record's time ([`not_before_previous`]); returns the new head's `seq`.
fn append(
    tx: &rusqlite::Transaction<'_>,
    events: &[AuditEvent],
    now: DateTime<Utc>,
    zone: Zone,
) -> Result<u64, rusqlite::Error> {
    let (mut seq, mut prev) = head(tx)?;
    if events.is_empty() {
        return Ok(seq);
    }
    let now = not_before_previous(tx, now)?;
    let at = format_time(now, zone);
    let at_ms = now.timestamp_millis();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO audit_log \
         (seq, at, user, device, action, target, outcome, detail, prev_hash, hash, at_utc_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for e in events {
        seq += 1;
        let user = clean(&e.user, true);
        let device = clean(&e.device, true);
        let action = clean(&e.action, false);
        let target = clean(&e.target, false);
        let detail = clean(&e.detail, false);
        let outcome = e.outcome.as_str();
        let hash = record_hash(
            &prev, seq, &at, &user, &device, &action, &target, outcome, &detail,
        );
        stmt.execute(params![
            seq as i64, at, user, device, action, target, outcome, detail, prev, hash, at_ms
        ])?;
        prev = hash;
    }
    Ok(seq)
}

/// `now`, or the time of the newest record (the anchor's when every record was pruned) when
/// the clock reads earlier: record times never go backwards along the chain. The previous
/// time is its hashed `at` (1/100 s), refined by its `at_utc_ms` when that falls inside the
/// same 1/100 s (the unhashed column cannot push later records elsewhere).
fn not_before_previous(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, rusqlite::Error> {
    let last: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT at, at_utc_ms FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, Some(r.get(1)?))),
        )
        .optional()?;
    let last = match last {
        Some(l) => Some(l),
        None => conn
            .query_row("SELECT at FROM audit_anchor WHERE singleton = 1", [], |r| {
                Ok((r.get(0)?, None))
            })
            .optional()?,
    };
    let Some((at, at_ms)) = last else {
        return Ok(now);
    };
    let Ok(shown) = DateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M:%S%.f%:z") else {
        // An unreadable time is `audit verify`'s business; stamp the clock's.
        return Ok(now);
    };
    let shown = shown.with_timezone(&Utc);
    let previous = at_ms
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .filter(|p| *p >= shown && *p - shown < chrono::Duration::milliseconds(10))
        .unwrap_or(shown);
    if now >= previous {
        return Ok(now);
    }
    if previous - now > chrono::Duration::seconds(1) {
        tracing::warn!(
            clock = %now,
            previous = %previous,
            "audit trail: the clock reads earlier than the newest record; \
             stamping the newest record's time (times never go backwards)"
        );
    }
    Ok(previous)
}

/// The last `seq` up to `last` of the unbroken run, from the oldest record, whose `at`
/// (the hashed time) reads as an instant before `older_than`; `MIN(seq) - 1` when the oldest
/// is not.
fn confirmed_prefix(
    conn: &Connection,
    last: i64,
    older_than: DateTime<Utc>,
) -> Result<i64, rusqlite::Error> {
    let mut stmt = conn.prepare("SELECT seq, at FROM audit_log WHERE seq <= ?1 ORDER BY seq")?;
    let mut rows = stmt.query([last])?;
    let mut confirmed: Option<i64> = None;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let at: String = row.get(1)?;
        let before = DateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M:%S%.f%:z")
            .is_ok_and(|t| t.with_timezone(&Utc) < older_than);
        if !before {
            return Ok(confirmed.unwrap_or(seq - 1));
        }
        confirmed = Some(seq);
    }
    Ok(confirmed.unwrap_or(last))
}

fn anchor(conn: &Connection) -> Result<Option<(u64, String)>, rusqlite::Error> {
    conn.query_row(
        "SELECT seq, hash FROM audit_anchor WHERE singleton = 1",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
    )
    .optional()
}

fn head(conn: &Connection) -> Result<(u64, String), rusqlite::Error> {
    let last = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
        )
        .optional()?;
    match last {
        Some(h) => Ok(h),
        None => Ok(anchor(conn)?.unwrap_or_else(|| (0, GENESIS_HASH.to_string()))),
    }
}

fn page(conn: &Connection, after: u64, limit: Option<u32>) -> Result<AuditPage, AuditError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AuditError::BadQuery(format!(
            "limit={limit}: give 1 to {MAX_PAGE} records per page"
        )));
    }
    let after = i64::try_from(after).map_err(|_| {
        AuditError::BadQuery(format!(
            "after={after}: a record number is at most {}",
            i64::MAX
        ))
    })?;
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, user, device, action, target, outcome, detail, prev_hash, hash \
         FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let records = stmt
        .query_map(params![after, i64::from(limit)], read_record)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuditPage { records })
}

fn read_record(r: &rusqlite::Row<'_>) -> Result<AuditRecord, rusqlite::Error> {
    Ok(AuditRecord {
        seq: r.get::<_, i64>(0)? as u64,
        at: r.get(1)?,
        user: r.get(2)?,
        device: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        outcome: r.get(6)?,
        detail: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

/// Walks the chain from `anchor` (or genesis) in `seq` order, up to `upto` (inclusive) or
/// the end; the first record that does not verify is the answer.
fn check_chain(
    conn: &Connection,
    anchor: Option<(u64, String)>,
    upto: Option<u64>,
) -> Result<VerifyReport, rusqlite::Error> {
    let (start_seq, start_hash) = anchor
        .clone()
        .unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
    let mut expected = start_seq + 1;
    let mut prev = start_hash;
    let mut records = 0u64;
    let upto = upto.map_or(i64::MAX, |u| u as i64);
    let mut stmt = conn.prepare(
        "SELECT seq, at, user, device, action, target, outcome, detail, prev_hash, hash \
         FROM audit_log WHERE seq <= ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([upto])?;
    while let Some(row) = rows.next()? {
        let r = read_record(row)?;
        let broken = |why: String| VerifyReport::Broken {
            seq: r.seq,
            at: r.at.clone(),
            action: r.action.clone(),
            why,
        };
        let computed = record_hash(
            &r.prev_hash,
            r.seq,
            &r.at,
            &r.user,
            &r.device,
            &r.action,
            &r.target,
            &r.outcome,
            &r.detail,
        );
        if computed != r.hash {
            return Ok(broken(
                "altered: its stored hash does not match its contents (a field or the hash \
                 was changed after it was written)"
                    .into(),
            ));
        }
        if r.seq != expected {
            let why = if records == 0 && r.seq < expected {
                format!(
                    "it is numbered at or before the retention anchor #{start_seq}: the anchor \
                     was changed or a record re-inserted"
                )
            } else if records == 0 && anchor.is_some() {
                format!(
                    "{}: the retention anchor is #{start_seq} but the first kept record is #{}",
                    missing(expected, r.seq - 1),
                    r.seq
                )
            } else if records == 0 {
                format!(
                    "{}: the trail starts at #{} and there is no retention anchor",
                    missing(expected, r.seq - 1),
                    r.seq
                )
            } else {
                format!(
                    "{} (removed after #{})",
                    missing(expected, r.seq - 1),
                    expected - 1
                )
            };
            return Ok(broken(why));
        }
        if r.prev_hash != prev {
            let why = if records == 0 && anchor.is_some() {
                format!(
                    "it does not link to the retention anchor (hash of pruned record \
                     #{start_seq}): the anchor or this record was changed"
                )
            } else if records == 0 {
                "its prev_hash is not the genesis value (64 zeros): it was changed or records \
                 before it were removed"
                    .to_string()
            } else {
                format!(
                    "it does not link to record #{}: a record was removed or inserted before \
                     it, or #{} was rewritten",
                    r.seq - 1,
                    r.seq - 1
                )
            };
            return Ok(broken(why));
        }
        prev = r.hash;
        expected += 1;
        records += 1;
    }
    Ok(VerifyReport::Intact {
        records,
        first_seq: start_seq + 1,
        last_seq: expected - 1,
        head_hash: prev,
    })
}

fn missing(from: u64, to: u64) -> String {
    if from == to {
        format!("record #{from} is missing")
    } else {
        format!("records #{from}–#{to} are missing")
    }
}
