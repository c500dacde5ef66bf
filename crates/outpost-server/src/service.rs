//! The sync logic of the server, without HTTP: decoding and checking pushes, ordering ops
//! (gseq), high-water marks and stored outcomes, parking, epochs, pull pages, snapshots and
//! pokes ([`outpost_domain::wire`] describes the protocol).
//!
//! Architecture invariant: blocking code (the storage is behind a `std` mutex); the HTTP layer
//! ([`crate::http`]) calls it from `spawn_blocking`. In-process callers (tests, the reference
//! model's harness) can use [`SyncService`] directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use outpost_domain::clock::{Clock, SystemClock};
use outpost_domain::device::MAX_PUSHED_FIX_AHEAD_S;
use outpost_domain::merge;
use outpost_domain::op::{Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::wire::{
    Capabilities, ErrorBody, Health, MAX_BATCH_OPS, MAX_PULL_LIMIT, MAX_PUSH_BYTES, OpResult,
    Outcome, PROTOCOL_VERSION, Poke, PullResponse, PulledOp, PushRequest, PushResponse, Snapshot,
};

use crate::storage::{
    LogHead, LogPage, LoggedOp, OpKey, ParkedOp, StorageError, StoredOutcome, SyncStorage,
};

/// The page size of a pull without `limit`.
pub const DEFAULT_PULL_LIMIT: usize = 1_000;

/// Why a request is refused; each maps to one HTTP status and an [`ErrorBody`] code.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// 400 `bad_request`: undecodable or truncated payload, ops of another origin or lane,
    /// an unknown protocol version. Nothing was stored.
    #[error("{0}")]
    BadRequest(String),
    /// 413 `too_large`: more than [`MAX_BATCH_OPS`] ops or [`MAX_PUSH_BYTES`] bytes.
    #[error("{0}")]
    TooLarge(String),
    /// 409 `epoch_changed`: the console must resync with `epoch`.
    #[error("the server's epoch is now {epoch}; resync (re-push kept ops, pull from 0)")]
    EpochChanged {
        /// The current epoch.
        epoch: Uuid,
    },
    /// 410 `snapshot_required`: the ops after `after` were compacted away.
    #[error(
        "ops after gseq {after} were compacted (history starts at {floor}); load GET /v1/snapshot"
    )]
    SnapshotRequired {
        /// The `after` asked for.
        after: u64,
        /// The compaction floor.
        floor: u64,
    },
    /// 403 `forbidden`: the signed-in person may not make this push at all (its origin is
    /// not the device's enrolled origin; issue 6). Nothing was stored.
    #[error("{0}")]
    Forbidden(String),
    /// 503 `unavailable`: shutting down, or the database is busy. Retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 500 `internal`: the storage failed.
    #[error("{0}")]
    Storage(StorageError),
}

impl From<StorageError> for SyncError {
    fn from(e: StorageError) -> Self {
        if e.is_transient() {
            SyncError::Unavailable(format!("the server is busy, retry: {e}"))
        } else {
            SyncError::Storage(e)
        }
    }
}

impl SyncError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            SyncError::BadRequest(_) => 400,
            SyncError::TooLarge(_) => 413,
            SyncError::EpochChanged { .. } => 409,
            SyncError::SnapshotRequired { .. } => 410,
            SyncError::Forbidden(_) => 403,
            SyncError::Unavailable(_) => 503,
            SyncError::Storage(_) => 500,
        }
    }

    /// The error body.
    pub fn body(&self) -> ErrorBody {
        let code = match self {
            SyncError::BadRequest(_) => "bad_request",
            SyncError::TooLarge(_) => "too_large",
            SyncError::EpochChanged { .. } => "epoch_changed",
            SyncError::SnapshotRequired { .. } => "snapshot_required",
            SyncError::Forbidden(_) => "forbidden",
            SyncError::Unavailable(_) => "unavailable",
            SyncError::Storage(_) => "internal",
        };
        ErrorBody {
            code: code.into(),
            message: self.to_string(),
            epoch: match self {
                SyncError::EpochChanged { epoch } => Some(*epoch),
                _ => None,
            },
        }
    }
}

/// The identity fields every op must carry, read before the body (so an op whose body does
/// not decode can still be answered and parked).
#[derive(Deserialize)]
struct Header {
    op_id: Uuid,
    origin: Uuid,
    lane: Lane,
    lane_seq: u64,
    #[serde(default)]
    schema: u32,
}

/// Who may start a new epoch (security review S5): a request whose cursor is beyond the
/// newest gseq of the current epoch (or names a later epoch) proves a restore from a backup
/// (SYNC.md principle 11) and starts a new epoch, which makes every console resync. With
/// issue 6 the request is a signed-in person's, so the server asks this guard first and
/// tells it afterwards (implemented by [`crate::security::epoch::EpochAuth`] and
/// [`crate::security::PushAuth`]; the audit action is `sync.epoch_start`).
pub trait EpochGuard {
    /// Before a new epoch is started on `evidence` (a one-line description of the cursor and
    /// the head). `Err(reason)`: no epoch is started and the request answers 409
    /// `epoch_changed` with the CURRENT epoch (the console resyncs to the server as it is).
    ///
    /// # Errors
    /// The reason, one line.
    fn may_start_epoch(&self, evidence: &str) -> Result<(), String>;

    /// After the new epoch `new` replaced `old` (committed).
    fn epoch_started(&self, old: Uuid, new: Uuid, evidence: &str);
}

/// The authorization of a person's push (issue 6; implemented by
/// [`crate::security::PushAuth`]). The service calls it inside the push: a refused push
/// stores nothing, a refused op is parked like any op the server cannot accept, so its
/// author's console un-applies it. The ingest gateway's pushes have no guard (the gateway is
/// not a person). A push that proves a restore asks the [`EpochGuard`] first.
pub trait PushGuard: EpochGuard {
    /// Before anything is stored. `Err(reason)` refuses the whole push
    /// ([`SyncError::Forbidden`]).
    ///
    /// # Errors
    /// The reason, one line starting `forbidden: `.
    fn check_push(&self, req: &PushRequest) -> Result<(), String>;

    /// For each new op that decoded and passed static validation, in order, before its
    /// references are checked; `ctx` (assignments of a unit, an assignment's unit and
    /// incident) answers from the server's replica inside the push's transaction.
    /// `Err(reason)` parks the op with `reason`.
    ///
    /// # Errors
    /// The reason, one line starting `forbidden: `.
    fn check_op(
        &self,
        env: &OpEnvelope,
        ctx: &dyn outpost_domain::access::AccessContext,
    ) -> Result<(), String>;
}

/// The sync service: one storage, the poke channel and the shutdown flag.
pub struct SyncService {
    storage: Mutex<Box<dyn SyncStorage>>,
    /// More handles on the same data for pulls, snapshots and health, so that readers do
    /// not wait behind pushes nor each other (SQLite WAL: readers see the last commit).
    /// Empty: the writer serves reads too (in-memory storages).
    readers: Vec<Mutex<Box<dyn SyncStorage>>>,
    next_reader: std::sync::atomic::AtomicUsize,
    pokes: broadcast::Sender<Poke>,
    /// The live feed: every committed push that accepted ops, its ops serialised once
    /// ([`FeedFrame`]); only built while someone subscribes.
    feed: broadcast::Sender<FeedFrame>,
    closing: AtomicBool,
    /// Bumped after every push that accepted a `device.bind`: the ingest's binding cache
    /// reloads when it changes (bindings change only through accepted ops).
    bindings_generation: std::sync::atomic::AtomicU64,
    /// The server's clock: the fix-time check of pushed positions reads it.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SyncService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService")
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// Decodes `T` from JSON bytes; the error names the place (`ops[3].lane: unknown variant`).
fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| place(&e))?;
    de.end().map_err(|e| format!("body: {e}"))?;
    Ok(value)
}

/// Decodes `T` from a JSON value; the error names the place below `prefix`.
fn decode_value<'a, T: Deserialize<'a>>(value: &'a Value, prefix: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = clean_path(e.path());
        let inner = e.into_inner();
        if path == "." {
            format!("{prefix}: {inner}")
        } else {
            format!("{prefix}.{path}: {inner}")
        }
    })
}

/// The path of a decoding error without its unknown (`?`) segments.
fn clean_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    let text = text.trim_end_matches(".?").trim_end_matches('?');
    if text.is_empty() {
        ".".into()
    } else {
        text.to_string()
    }
}

fn place(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = clean_path(e.path());
    if path == "." {
        format!("body: {}", e.inner())
    } else {
        format!("{path}: {}", e.inner())
    }
}

impl SyncService {
    /// A service over `storage` (reads and writes through the one handle).
    pub fn new(storage: Box<dyn SyncStorage>) -> SyncService {
        SyncService::with_readers(storage, Vec::new())
    }

    /// A service that writes through `storage` and serves pulls, snapshots and health from
    /// `readers`, more handles on the same data (e.g. more connections to one SQLite file).
    pub fn with_readers(
        storage: Box<dyn SyncStorage>,
        readers: Vec<Box<dyn SyncStorage>>,
    ) -> SyncService {
        let (pokes, _) = broadcast::channel(256);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        SyncService {
            storage: Mutex::new(storage),
            readers: readers.into_iter().map(Mutex::new).collect(),
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            pokes,
            feed,
            closing: AtomicBool::new(false),
            bindings_generation: std::sync::atomic::AtomicU64::new(0),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same service reading "now" from `clock` instead of the system clock (tests that
    /// simulate time; the fix-time check of pushed positions uses it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> SyncService {
        self.clock = clock;
        self
    }

    /// The server's "now" (UTC), from its clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    fn storage(&self) -> MutexGuard<'_, Box<dyn SyncStorage>> {
        // A panic while holding the lock cannot leave a half-written push behind (the
        // transaction rolls back on drop), so a poisoned lock is safe to reuse.
        self.storage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A free reader, else the next one in turn (the writer when there are none).
    fn reader(&self) -> MutexGuard<'_, Box<dyn SyncStorage>> {
        if self.readers.is_empty() {
            return self.storage();
        }
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to pokes (one after every push that accepted ops or changed the epoch).
    pub fn subscribe(&self) -> broadcast::Receiver<Poke> {
        self.pokes.subscribe()
    }

    /// Subscribes to the live feed: one [`FeedFrame`] per committed push that accepted ops,
    /// in commit order. A receiver more than [`FEED_CAPACITY`] frames behind gets
    /// `Lagged` (its console must pull); the sender never waits for a receiver.
    pub fn subscribe_feed(&self) -> broadcast::Receiver<FeedFrame> {
        self.feed.subscribe()
    }

    /// From now on, pushes, pulls and snapshots answer 503 and health says `shutting_down`.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// True after [`SyncService::close`].
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn check_open(&self) -> Result<(), SyncError> {
        if self.is_closing() {
            Err(SyncError::Unavailable(
                "the server is shutting down; retry".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// The head of the log.
    ///
    /// # Errors
    /// Storage errors.
    pub fn head(&self) -> Result<LogHead, SyncError> {
        Ok(self.reader().head()?)
    }

    /// Whether any op of `origin` was ever pushed (accepted or parked: a lane of it has a
    /// high-water mark); enrollment refuses such an origin to a new installation (security
    /// review S4).
    ///
    /// # Errors
    /// Storage errors.
    pub fn origin_has_ops(&self, origin: Uuid) -> Result<bool, SyncError> {
        let mut storage = self.storage();
        let mut tx = storage.begin()?;
        for lane in [Lane::Critical, Lane::Notes, Lane::Positions] {
            if tx.high_water(origin, lane)? > 0 {
                return Ok(true);
            }
        }
        // Dropped without commit: nothing was written.
        Ok(false)
    }

    /// Called when a pulling console of `console_epoch` that knows `known_gseq` may prove a
    /// restore ([`reveals_restore`]): starts a new epoch if it does (re-checked inside the
    /// write transaction) and returns the epoch the console must resync to, or `None` when
    /// the console is simply of the current epoch.
    ///
    /// # Errors
    /// Storage errors; [`SyncError::Unavailable`] while shutting down.
    pub fn check_console_epoch(
        &self,
        console_epoch: Uuid,
        known_gseq: u64,
    ) -> Result<Option<Uuid>, SyncError> {
        self.check_console_epoch_guarded(console_epoch, known_gseq, None)
    }

    /// [`SyncService::check_console_epoch`] for a signed-in person: `guard` decides whether
    /// their cursor may start a new epoch (refused: the current epoch is returned, no epoch
    /// starts) and records the epoch started.
    ///
    /// # Errors
    /// As [`SyncService::check_console_epoch`].
    pub fn check_console_epoch_guarded(
        &self,
        console_epoch: Uuid,
        known_gseq: u64,
        guard: Option<&dyn EpochGuard>,
    ) -> Result<Option<Uuid>, SyncError> {
        self.check_open()?;
        let head = self.reader().head()?;
        if console_epoch == head.epoch && known_gseq <= head.gseq {
            return Ok(None);
        }
        let mut storage = self.storage();
        let mut tx = storage.begin()?;
        let head = tx.head();
        if !reveals_restore(console_epoch, known_gseq, head.epoch, head.gseq) {
            return Ok((console_epoch != head.epoch).then_some(head.epoch));
        }
        let evidence = format!(
            "a pull of epoch {console_epoch} after gseq {known_gseq}; the server is at gseq {} \
             of epoch {}",
            head.gseq, head.epoch
        );
        if let Some(g) = guard
            && g.may_start_epoch(&evidence).is_err()
        {
            return Ok(Some(head.epoch));
        }
        let new = tx.new_epoch()?;
        tx.commit()?;
        drop(storage);
        if let Some(g) = guard {
            g.epoch_started(head.epoch, new.epoch, &evidence);
        }
        tracing::warn!(
            console_epoch = %console_epoch,
            known_gseq,
            server_gseq = head.gseq,
            epoch = %new.epoch,
            "a pulling console proves a restore from a backup; new epoch"
        );
        let _ = self.pokes.send(Poke {
            gseq: new.gseq,
            epoch: new.epoch,
        });
        Ok(Some(new.epoch))
    }

    /// `GET /v1/health`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn health(&self) -> Result<Health, SyncError> {
        let head = self.head()?;
        Ok(Health {
            status: if self.is_closing() {
                "shutting_down"
            } else {
                "ok"
            }
            .into(),
            epoch: head.epoch,
            server_gseq: head.gseq,
            // The service has no audit trail; the HTTP layer fills it in.
            audit_ok: true,
        })
    }

    /// `GET /v1/capabilities`.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            protocols: vec![PROTOCOL_VERSION],
            max_schema: SCHEMA_VERSION,
            max_batch_ops: MAX_BATCH_OPS,
            max_push_bytes: MAX_PUSH_BYTES,
            max_pull_limit: MAX_PULL_LIMIT,
            server: format!("outpost-server {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// `POST /v1/push` with the request body `bytes`: ONE storage transaction.
    ///
    /// Per op in order: at or below the lane's high-water mark → its stored outcome
    /// (`duplicate` or the same `parked`); the next `lane_seq` → accepted (next gseq, logged,
    /// applied) or parked (undecodable body, newer schema, [`merge::validate`] fails, an
    /// incident or unit the server does not have, or the state refuses it); beyond a gap →
    /// the batch stops with `resend_from`.
    ///
    /// # Errors
    /// [`SyncError::TooLarge`] (body > [`MAX_PUSH_BYTES`], ops > [`MAX_BATCH_OPS`]);
    /// [`SyncError::BadRequest`] (undecodable, wrong protocol, an op of another origin or
    /// lane, an op without `op_id`/`origin`/`lane`/`lane_seq`); [`SyncError::EpochChanged`]
    /// (the console's epoch is not the current one, or its cursor is beyond the newest gseq:
    /// a new epoch is started); [`SyncError::Unavailable`]; storage errors. In every error
    /// case nothing of the push is stored.
    pub fn push(&self, bytes: &[u8]) -> Result<PushResponse, SyncError> {
        self.check_open()?;
        if bytes.len() > MAX_PUSH_BYTES {
            return Err(SyncError::TooLarge(format!(
                "the push has {} bytes; at most {MAX_PUSH_BYTES} are accepted",
                bytes.len()
            )));
        }
        let req: PushRequest = decode(bytes).map_err(SyncError::BadRequest)?;
        self.push_request(&req)
    }

    /// Decodes a push body as [`SyncService::push`] does, without pushing it (the HTTP
    /// layer decodes once, then calls [`SyncService::push_request_guarded`]).
    ///
    /// # Errors
    /// [`SyncError::TooLarge`], [`SyncError::BadRequest`].
    pub fn decode_push(bytes: &[u8]) -> Result<PushRequest, SyncError> {
        if bytes.len() > MAX_PUSH_BYTES {
            return Err(SyncError::TooLarge(format!(
                "the push has {} bytes; at most {MAX_PUSH_BYTES} are accepted",
                bytes.len()
            )));
        }
        decode(bytes).map_err(SyncError::BadRequest)
    }

    /// [`SyncService::push`] of an already decoded request.
    ///
    /// # Errors
    /// As [`SyncService::push`].
    pub fn push_request(&self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.push_request_guarded(req, None)
    }

    /// [`SyncService::push_request`] checked by `guard` (a signed-in person's push): a
    /// refused push answers [`SyncError::Forbidden`] and stores nothing; a refused op is
    /// parked with the guard's reason.
    ///
    /// # Errors
    /// As [`SyncService::push`]; [`SyncError::Forbidden`].
    pub fn push_request_guarded(
        &self,
        req: &PushRequest,
        guard: Option<&dyn PushGuard>,
    ) -> Result<PushResponse, SyncError> {
        self.check_open()?;
        if req.protocol != PROTOCOL_VERSION {
            return Err(SyncError::BadRequest(format!(
                "protocol: version {} is not served here (this server speaks {PROTOCOL_VERSION})",
                req.protocol
            )));
        }
        if req.ops.len() > MAX_BATCH_OPS {
            return Err(SyncError::TooLarge(format!(
                "ops: {} ops in one push; at most {MAX_BATCH_OPS} are accepted",
                req.ops.len()
            )));
        }
        let mut headers = Vec::with_capacity(req.ops.len());
        for (i, op) in req.ops.iter().enumerate() {
            let h: Header =
                decode_value(op, &format!("ops[{i}]")).map_err(SyncError::BadRequest)?;
            if h.origin != req.origin {
                return Err(SyncError::BadRequest(format!(
                    "ops[{i}].origin: {} is not the pushing origin {}",
                    h.origin, req.origin
                )));
            }
            if h.lane != req.lane {
                return Err(SyncError::BadRequest(format!(
                    "ops[{i}].lane: {:?} in a push of lane {:?}",
                    h.lane, req.lane
                )));
            }
            if h.lane_seq == 0 {
                return Err(SyncError::BadRequest(format!(
                    "ops[{i}].lane_seq: lane sequence numbers start at 1"
                )));
            }
            headers.push(h);
        }
        if let Some(g) = guard {
            g.check_push(req).map_err(SyncError::Forbidden)?;
        }
        let push = Push {
            origin: req.origin,
            lane: req.lane,
            epoch: req.epoch,
            cursor: req.cursor,
            ops: req.ops.iter().map(PushOp::Wire).collect(),
        };
        self.push_checked(&push, &headers, guard)
    }

    /// A push of ops built in this process (the ingest gateway): the same transaction, checks
    /// and outcomes as [`SyncService::push_request`] of their JSON, without the JSON value
    /// round trip (each op is serialised once, as stored). No epoch (the pusher lives in the
    /// server and can never prove a restore), no guard, and no [`MAX_BATCH_OPS`] cap (the cap
    /// bounds what a console may send over HTTP; the caller bounds its own batches).
    ///
    /// # Errors
    /// [`SyncError::BadRequest`] for an op of another origin or lane, or with `lane_seq` 0
    /// (nothing stored); [`SyncError::Unavailable`]; storage errors.
    pub fn push_ops(
        &self,
        origin: Uuid,
        lane: Lane,
        cursor: u64,
        ops: &[OpEnvelope],
    ) -> Result<PushResponse, SyncError> {
        self.check_open()?;
        let mut headers = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            if op.origin != origin || op.lane != lane || op.lane_seq == 0 {
                return Err(SyncError::BadRequest(format!(
                    "ops[{i}]: origin {} lane {:?} lane_seq {} in a push of origin {origin} lane \
                     {lane:?} (lane sequence numbers start at 1)",
                    op.origin, op.lane, op.lane_seq
                )));
            }
            headers.push(Header {
                op_id: op.op_id,
                origin: op.origin,
                lane: op.lane,
                lane_seq: op.lane_seq,
                schema: op.schema,
            });
        }
        let push = Push {
            origin,
            lane,
            epoch: None,
            cursor,
            ops: ops.iter().map(PushOp::Typed).collect(),
        };
        self.push_checked(&push, &headers, None)
    }

    /// The transaction of a push whose request was checked ([`SyncService::push_request_guarded`],
    /// [`SyncService::push_ops`]); `headers[i]` belongs to `req.ops[i]`.
    fn push_checked(
        &self,
        req: &Push<'_>,
        headers: &[Header],
        guard: Option<&dyn PushGuard>,
    ) -> Result<PushResponse, SyncError> {
        let mut storage = self.storage();
        let mut tx = storage.begin()?;
        let head = tx.head();
        if req
            .epoch
            .is_some_and(|e| reveals_restore(e, req.cursor, head.epoch, head.gseq))
        {
            // A console of this epoch (or of a later one: the same backup restored twice) has
            // seen ops this server does not have: the server was restored from a backup. (A
            // console of an older epoch is told the current epoch below and resyncs; it
            // never starts a new epoch.)
            let evidence = format!(
                "a push of origin {} with cursor {} in epoch {}; the server is at gseq {} of \
                 epoch {}",
                req.origin,
                req.cursor,
                req.epoch.unwrap_or_default(),
                head.gseq,
                head.epoch
            );
            if let Some(g) = guard
                && g.may_start_epoch(&evidence).is_err()
            {
                return Err(SyncError::EpochChanged { epoch: head.epoch });
            }
            let new = tx.new_epoch()?;
            tx.commit()?;
            drop(storage);
            if let Some(g) = guard {
                g.epoch_started(head.epoch, new.epoch, &evidence);
            }
            tracing::warn!(
                origin = %req.origin,
                cursor = req.cursor,
                server_gseq = head.gseq,
                epoch = %new.epoch,
                "a console knows ops beyond the newest gseq: restored from a backup; new epoch"
            );
            let _ = self.pokes.send(Poke {
                gseq: new.gseq,
                epoch: new.epoch,
            });
            return Err(SyncError::EpochChanged { epoch: new.epoch });
        }
        if let Some(epoch) = req.epoch
            && epoch != head.epoch
        {
            return Err(SyncError::EpochChanged { epoch: head.epoch });
        }

        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let mut binds = 0usize;
        let mut hw = tx.high_water(req.origin, req.lane)?;
        let mut results = Vec::with_capacity(req.ops.len());
        // The accepted ops as stored, for the live feed (only while someone listens).
        let feeding = self.feed.receiver_count() > 0;
        let mut fed: Vec<LoggedOp> = Vec::new();
        let mut resend_from = None;
        let mut accepted = 0usize;
        let mut parked = 0usize;
        for (i, (op, h)) in req.ops.iter().zip(headers).enumerate() {
            let key = OpKey {
                op_id: h.op_id,
                origin: h.origin,
                lane: h.lane,
                lane_seq: h.lane_seq,
            };
            if h.lane_seq <= hw {
                results.push(OpResult {
                    op_id: h.op_id,
                    lane_seq: h.lane_seq,
                    outcome: stored(tx.outcome(h.origin, h.lane, h.lane_seq)?, h.op_id),
                });
                continue;
            }
            if h.lane_seq > hw + 1 {
                resend_from = Some(hw + 1);
                break;
            }
            let (raw_text, judged) = op.judge(h, i, now)?;
            let verdict = match judged {
                Err(reason) => Err(reason),
                Ok(env) => {
                    flag_skew(&env, now_ms);
                    let denied = match guard {
                        Some(g) => authorize(g, tx.as_mut(), &env)?,
                        None => None,
                    };
                    match denied {
                        Some(reason) => Err(reason),
                        None => match refers_to_unknown(tx.as_mut(), &env)? {
                            Some(reason) => Err(reason),
                            None if tx.is_logged(env.op_id)? => Err(format!(
                                "op {} was already accepted under another lane_seq",
                                env.op_id
                            )),
                            None => {
                                let verdict = tx.accept(&env, &raw_text)?;
                                if verdict.is_ok() && matches!(env.body, OpBody::DeviceBind { .. })
                                {
                                    binds += 1;
                                }
                                verdict
                            }
                        },
                    }
                }
            };
            let outcome = match verdict {
                Ok(gseq) => {
                    accepted += 1;
                    if feeding {
                        fed.push(LoggedOp {
                            gseq,
                            raw: raw_text,
                        });
                    }
                    Outcome::Accepted { gseq }
                }
                Err(reason) => {
                    parked += 1;
                    tracing::info!(op_id = %h.op_id, origin = %h.origin, lane_seq = h.lane_seq, %reason, "op parked");
                    tx.park(&key, &raw_text, &reason)?;
                    Outcome::Parked { reason }
                }
            };
            hw = h.lane_seq;
            results.push(OpResult {
                op_id: h.op_id,
                lane_seq: h.lane_seq,
                outcome,
            });
        }
        let head = tx.commit()?;
        if feeding && accepted > 0 {
            // Sent while the writer is still held, so frames leave in commit order.
            let _ = self.feed.send(FeedFrame::new(head.epoch, head.gseq, &fed));
        }
        drop(storage);
        if binds > 0 {
            self.bindings_generation.fetch_add(1, Ordering::SeqCst);
        }
        if accepted > 0 {
            let _ = self.pokes.send(Poke {
                gseq: head.gseq,
                epoch: head.epoch,
            });
        }
        tracing::debug!(
            origin = %req.origin,
            lane = ?req.lane,
            ops = req.ops.len(),
            accepted,
            parked,
            ?resend_from,
            server_gseq = head.gseq,
            "push"
        );
        Ok(PushResponse {
            epoch: head.epoch,
            results,
            resend_from,
            high_water: hw,
            server_gseq: head.gseq,
        })
    }

    /// `GET /v1/pull?after=A&limit=N`: up to `limit` (default [`DEFAULT_PULL_LIMIT`], at
    /// most [`MAX_PULL_LIMIT`], at least 1) ops with `gseq > after`.
    ///
    /// # Errors
    /// [`SyncError::SnapshotRequired`] when ops after `after` were compacted;
    /// [`SyncError::EpochChanged`] when `after` is beyond the newest gseq (the server was
    /// restored from a backup: a new epoch is started); [`SyncError::Unavailable`]; storage
    /// errors.
    pub fn pull(&self, after: u64, limit: Option<usize>) -> Result<PullResponse, SyncError> {
        let page = self.pull_page(after, limit)?;
        Ok(PullResponse {
            epoch: page.head.epoch,
            ops: pulled(page.ops)?,
            server_gseq: page.head.gseq,
            more: page.more,
        })
    }

    /// [`SyncService::pull`] as the JSON text of a [`PullResponse`], with every op's stored
    /// text copied as is (no decoding and re-encoding of ops: the HTTP path).
    ///
    /// # Errors
    /// As [`SyncService::pull`].
    pub fn pull_json(&self, after: u64, limit: Option<usize>) -> Result<String, SyncError> {
        let page = self.pull_page(after, limit)?;
        let mut out =
            String::with_capacity(64 + page.ops.iter().map(|o| o.raw.len() + 24).sum::<usize>());
        out.push_str(&format!("{{\"epoch\":\"{}\",\"ops\":", page.head.epoch));
        push_ops_json(&mut out, &page.ops);
        out.push_str(&format!(
            ",\"server_gseq\":{},\"more\":{}}}",
            page.head.gseq, page.more
        ));
        Ok(out)
    }

    fn pull_page(&self, after: u64, limit: Option<usize>) -> Result<LogPage, SyncError> {
        self.check_open()?;
        let limit = limit.unwrap_or(DEFAULT_PULL_LIMIT).clamp(1, MAX_PULL_LIMIT);
        let page = self.reader().pull(after, limit)?;
        let page = if after > page.head.gseq {
            let mut storage = self.storage();
            let mut tx = storage.begin()?;
            // Re-checked inside the write transaction: the reader may be behind the writer.
            if after > tx.head().gseq {
                let new = tx.new_epoch()?;
                tx.commit()?;
                drop(storage);
                tracing::warn!(after, epoch = %new.epoch, "a console pulls beyond the newest gseq: restored from a backup; new epoch");
                let _ = self.pokes.send(Poke {
                    gseq: new.gseq,
                    epoch: new.epoch,
                });
                return Err(SyncError::EpochChanged { epoch: new.epoch });
            }
            drop(tx);
            storage.pull(after, limit)?
        } else {
            page
        };
        if after.saturating_add(1) < page.head.floor {
            return Err(SyncError::SnapshotRequired {
                after,
                floor: page.head.floor,
            });
        }
        Ok(page)
    }

    /// `GET /v1/snapshot`: every retained op and the compacted fixes, complete up to the
    /// newest gseq.
    ///
    /// # Errors
    /// [`SyncError::Unavailable`]; storage errors.
    pub fn snapshot(&self) -> Result<Snapshot, SyncError> {
        self.check_open()?;
        let data = self.reader().snapshot()?;
        Ok(Snapshot {
            epoch: data.head.epoch,
            gseq: data.head.gseq,
            ops: pulled(data.ops)?,
            compacted_positions: data.compacted,
        })
    }

    /// [`SyncService::snapshot`] as the JSON text of a [`Snapshot`], with every op's stored
    /// text copied as is (the HTTP path).
    ///
    /// # Errors
    /// As [`SyncService::snapshot`].
    pub fn snapshot_json(&self) -> Result<String, SyncError> {
        self.check_open()?;
        let data = self.reader().snapshot()?;
        let fixes = serde_json::to_string(&data.compacted).map_err(StorageError::from)?;
        let mut out = String::with_capacity(
            96 + fixes.len() + data.ops.iter().map(|o| o.raw.len() + 24).sum::<usize>(),
        );
        out.push_str(&format!(
            "{{\"epoch\":\"{}\",\"gseq\":{},\"ops\":",
            data.head.epoch, data.head.gseq
        ));
        push_ops_json(&mut out, &data.ops);
        out.push_str(",\"compacted_positions\":");
        out.push_str(&fixes);
        out.push('}');
        Ok(out)
    }

    /// Up to `limit` logged ops after `after` as stored (raw JSON, not decoded) with the head:
    /// the CoT feed follows the log with it and skips what it cannot read.
    ///
    /// # Errors
    /// As [`SyncService::pull`].
    pub fn pull_raw(&self, after: u64, limit: usize) -> Result<LogPage, SyncError> {
        self.pull_page(after, Some(limit))
    }

    /// Runs `f` on a read handle (a reader when there are some, else the writer): queries of
    /// the server's replica (bindings, the CoT picture) that must not wait behind pushes.
    pub fn with_reader<R>(&self, f: impl FnOnce(&mut dyn SyncStorage) -> R) -> R {
        let mut guard = self.reader();
        f(guard.as_mut())
    }

    /// A counter bumped after every push that accepted a `device.bind` (starts at 0): a
    /// cache of the bindings is current while this is unchanged.
    pub fn bindings_generation(&self) -> u64 {
        self.bindings_generation.load(Ordering::SeqCst)
    }

    /// Every parked op (audit, tests).
    ///
    /// # Errors
    /// Storage errors.
    pub fn parked(&self) -> Result<Vec<ParkedOp>, SyncError> {
        Ok(self.storage().parked()?)
    }

    /// Runs `f` on the storage under the service's lock (admin commands, tests).
    pub fn with_storage<R>(&self, f: impl FnOnce(&mut dyn SyncStorage) -> R) -> R {
        let mut guard = self.storage();
        f(guard.as_mut())
    }
}

/// The answer for an op at or below the high-water mark.
fn stored(found: Option<StoredOutcome>, op_id: Uuid) -> Outcome {
    match found {
        Some(StoredOutcome::Accepted { op_id: id, gseq }) if id == op_id => {
            Outcome::Duplicate { gseq }
        }
        Some(StoredOutcome::Parked { op_id: id, reason }) if id == op_id => {
            Outcome::Parked { reason }
        }
        Some(
            StoredOutcome::Accepted { op_id: id, .. } | StoredOutcome::Parked { op_id: id, .. },
        ) => Outcome::Parked {
            reason: format!(
                "this lane_seq was already used by op {id}; the console's outbox does not \
                     match what the server received (restored console?)"
            ),
        },
        None => Outcome::Parked {
            reason: "this lane_seq was skipped by an earlier push".into(),
        },
    }
}

/// Decodes and validates op `i`; `Err(reason)` parks it. `now` is the server clock: a fix
/// (of a `position.report` or `device.report`) more than
/// [`MAX_PUSHED_FIX_AHEAD_S`] (two days) ahead of it is parked, because the newest fix time
/// wins the latest position and such a fix would pin the marker (SYNC.md principle 9); skew
/// of hours is accepted (principle 10). Reports arriving live at the device listeners are
/// held to the tighter `MAX_FIX_AHEAD_S` (5 min) instead.
fn judge(
    raw: &Value,
    h: &Header,
    i: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<OpEnvelope, String> {
    if h.schema > SCHEMA_VERSION {
        return Err(format!(
            "schema version {} is newer than this server knows ({SCHEMA_VERSION}); upgrade the \
             server",
            h.schema
        ));
    }
    let env: OpEnvelope = decode_value(raw, &format!("ops[{i}]"))?;
    check_env(&env, now)?;
    Ok(env)
}

/// The checks of a decoded op (see [`judge`]); `Err(reason)` parks it.
fn check_env(env: &OpEnvelope, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    merge::validate(env)?;
    let fix = match &env.body {
        OpBody::PositionReport { fix, .. } => Some(fix),
        OpBody::DeviceReport { report } => Some(&report.fix),
        _ => None,
    };
    if let Some(fix) = fix
        && fix.fix_time > now + chrono::Duration::seconds(MAX_PUSHED_FIX_AHEAD_S)
    {
        return Err(format!(
            "{}: fix time {} is ahead of the server clock ({}) by more than two days; check \
             the device's clock",
            env.body.kind(),
            fix.fix_time.to_rfc3339(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    // Stores keep these as SQL integers (i64).
    for (name, n) in [
        ("seq", env.seq),
        ("base_version", env.base_version.unwrap_or(0)),
    ] {
        if i64::try_from(n).is_err() {
            return Err(format!("{name} {n} is out of range (at most {})", i64::MAX));
        }
    }
    Ok(())
}

/// A push as [`SyncService::push_checked`] runs it: a console's (decoded from the wire) or
/// the gateway's (built in-process).
struct Push<'a> {
    origin: Uuid,
    lane: Lane,
    epoch: Option<Uuid>,
    cursor: u64,
    ops: Vec<PushOp<'a>>,
}

/// One op of a [`Push`].
enum PushOp<'a> {
    /// A JSON value of a console's push: decoded and judged here.
    Wire(&'a Value),
    /// An op built in this process: already typed.
    Typed(&'a OpEnvelope),
}

impl PushOp<'_> {
    /// The op's JSON text as stored, and the decoded op or why it is parked ([`judge`]).
    fn judge(
        &self,
        h: &Header,
        i: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(String, Result<std::borrow::Cow<'_, OpEnvelope>, String>), SyncError> {
        match self {
            PushOp::Wire(raw) => Ok((
                serde_json::to_string(raw).map_err(StorageError::from)?,
                judge(raw, h, i, now).map(std::borrow::Cow::Owned),
            )),
            PushOp::Typed(env) => {
                let verdict = if h.schema > SCHEMA_VERSION {
                    Err(format!(
                        "schema version {} is newer than this server knows ({SCHEMA_VERSION})",
                        h.schema
                    ))
                } else {
                    check_env(env, now).map(|()| std::borrow::Cow::Borrowed(*env))
                };
                Ok((
                    serde_json::to_string(env).map_err(StorageError::from)?,
                    verdict,
                ))
            }
        }
    }
}

/// How far ahead of the server's clock an op's HLC may be before the log flags the author's
/// clock, ms.
const SKEW_FLAG_MS: i64 = 5 * 60 * 1000;

/// Logs an op stamped in the future (SYNC.md principle 10: clocks are advisory, skew is
/// flagged, never refused). Ops from the past are normal (written offline).
fn flag_skew(env: &OpEnvelope, now_ms: i64) {
    let ahead = env.hlc.wall_ms.saturating_sub(now_ms);
    if ahead > SKEW_FLAG_MS {
        tracing::warn!(
            origin = %env.origin,
            op_id = %env.op_id,
            ahead_s = ahead / 1000,
            "op stamped in the future: the author's clock is ahead of the server's"
        );
    }
}

/// The replica inside a push's transaction as `access::check_op` asks it; a storage error
/// answers "no" and is kept for [`authorize`] to return.
struct TxAccess<'a, 'b> {
    tx: std::cell::RefCell<&'a mut (dyn crate::storage::PushTx + 'b)>,
    failed: std::cell::RefCell<Option<StorageError>>,
}

impl TxAccess<'_, '_> {
    fn answer<T>(&self, r: Result<T, StorageError>, no: T) -> T {
        r.unwrap_or_else(|e| {
            *self.failed.borrow_mut() = Some(e);
            no
        })
    }
}

impl outpost_domain::access::AccessContext for TxAccess<'_, '_> {
    fn unit_on_incident(&self, unit_id: &str, incident_id: Uuid) -> bool {
        let r = self.tx.borrow_mut().unit_on_incident(unit_id, incident_id);
        self.answer(r, false)
    }

    fn assignment(&self, assignment_id: Uuid) -> Option<(String, Uuid)> {
        let r = self.tx.borrow_mut().assignment(assignment_id);
        self.answer(r, None)
    }
}

/// The guard's verdict on `env` (`Some(reason)`: park it), with its questions about the
/// state answered from the replica inside the push's transaction.
fn authorize(
    guard: &dyn PushGuard,
    tx: &mut dyn crate::storage::PushTx,
    env: &OpEnvelope,
) -> Result<Option<String>, StorageError> {
    let ctx = TxAccess {
        tx: std::cell::RefCell::new(tx),
        failed: std::cell::RefCell::new(None),
    };
    let verdict = guard.check_op(env, &ctx);
    if let Some(e) = ctx.failed.into_inner() {
        return Err(e);
    }
    Ok(verdict.err())
}

/// A reason when the op refers to an incident or unit the server does not have, or creates
/// an incident that exists.
fn refers_to_unknown(
    tx: &mut dyn crate::storage::PushTx,
    env: &OpEnvelope,
) -> Result<Option<String>, StorageError> {
    let creates = matches!(env.body, OpBody::IncidentCreate { .. });
    if let OpBody::IncidentCreate { incident_id, .. } = &env.body
        && tx.has_incident(*incident_id)?
    {
        // Another op created it already: one incident, one creation (I2).
        return Ok(Some(format!(
            "incident.create: incident {incident_id} already exists"
        )));
    }
    if !creates
        && let Some(incident) = merge::incident_of(&env.body)
        && !tx.has_incident(incident)?
    {
        return Ok(Some(format!(
            "{}: incident {incident} is not known to the server",
            env.body.kind()
        )));
    }
    for unit in merge::units_of(&env.body) {
        if !tx.has_unit(&unit)? {
            return Ok(Some(format!(
                "{}: unit {unit} is not known to the server",
                env.body.kind()
            )));
        }
    }
    Ok(None)
}

/// How many live-feed frames wait for a slow receiver before it is told it lagged.
pub const FEED_CAPACITY: usize = 256;

/// The largest live-feed frame carrying ops, bytes (JSON). A push whose accepted ops make a
/// larger frame goes out as a frame without ops (a poke: consoles pull it), so the feed's
/// memory stays below [`FEED_CAPACITY`] × this.
pub const FEED_MAX_FRAME_BYTES: usize = 128 * 1024;

/// One committed push on the live feed (`GET /v1/poke?feed=1`).
///
/// `bytes` is the frame as sent, serialised once for every socket: the JSON object
/// `{"gseq":G,"epoch":"E","after":A,"ops":[{"gseq":..,"op":RAW},...]}` — a [`Poke`] (newest
/// `gseq`, epoch) plus the ops with `gseq` in `after+1..=gseq`, contiguous, exactly as a pull
/// returns them. Without ops (`"after"` and `"ops"` absent) when the ops did not fit
/// [`FEED_MAX_FRAME_BYTES`] or were not contiguous.
#[derive(Debug, Clone)]
pub struct FeedFrame {
    /// The server's epoch.
    pub epoch: Uuid,
    /// The newest `gseq` after this push.
    pub gseq: u64,
    /// The frame's JSON text.
    pub bytes: axum::body::Bytes,
}

impl FeedFrame {
    /// The frame of a push that committed `ops` (accepted, in order) and left the log at
    /// `gseq` in `epoch`.
    pub fn new(epoch: Uuid, gseq: u64, ops: &[LoggedOp]) -> FeedFrame {
        let contiguous = !ops.is_empty()
            && ops.last().map(|o| o.gseq) == Some(gseq)
            && ops.windows(2).all(|w| w[1].gseq == w[0].gseq + 1);
        let size: usize = ops.iter().map(|o| o.raw.len() + 24).sum();
        let mut out = String::with_capacity(96 + if contiguous { size } else { 0 });
        out.push_str(&format!("{{\"gseq\":{gseq},\"epoch\":\"{epoch}\""));
        if contiguous && size <= FEED_MAX_FRAME_BYTES {
            let after = ops[0].gseq - 1;
            out.push_str(&format!(",\"after\":{after},\"ops\":"));
            push_ops_json(&mut out, ops);
        }
        out.push('}');
        FeedFrame {
            epoch,
            gseq,
            bytes: axum::body::Bytes::from(out),
        }
    }
}

/// Appends `[{"gseq":G,"op":RAW},...]` to `out`.
fn push_ops_json(out: &mut String, ops: &[LoggedOp]) {
    out.push('[');
    for (i, o) in ops.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{{\"gseq\":{},\"op\":", o.gseq));
        out.push_str(&o.raw);
        out.push('}');
    }
    out.push(']');
}

fn pulled(ops: Vec<LoggedOp>) -> Result<Vec<PulledOp>, SyncError> {
    ops.into_iter()
        .map(|o| {
            Ok(PulledOp {
                gseq: o.gseq,
                op: serde_json::from_str(&o.raw).map_err(StorageError::from)?,
            })
        })
        .collect()
}

/// True when a console that synced in `console_epoch` and knows the server assigned
/// `known_gseq` proves that the server was restored from a backup: it is of the server's own
/// epoch and knows a `gseq` beyond the server's newest, or it is of a LATER epoch (epochs are
/// UUIDv7, ordered by creation time: a backup taken in an earlier epoch was restored after
/// consoles had moved on). A console of an older epoch proves nothing; it only resyncs. (A
/// console that synced with another, newer server would also start a new epoch here: a
/// needless resync of every console, never a loss.)
///
/// A "later" epoch must also have been minted before now (its UUIDv7 time), so a made-up
/// epoch id from the future proves nothing.
pub fn reveals_restore(
    console_epoch: Uuid,
    known_gseq: u64,
    server_epoch: Uuid,
    server_gseq: u64,
) -> bool {
    (console_epoch == server_epoch && known_gseq > server_gseq)
        || (console_epoch > server_epoch && minted_by_now(console_epoch))
}

/// True when `epoch` is a UUIDv7 whose time is not after now (plus one minute of skew).
fn minted_by_now(epoch: Uuid) -> bool {
    let Some(ts) = epoch.get_timestamp() else {
        return false;
    };
    let (secs, _) = ts.to_unix();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs <= now.saturating_add(60)
}
