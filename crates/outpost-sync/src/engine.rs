//! The engine: a tokio runtime on its own thread that runs sync rounds.
//!
//! A round pushes every pending op, lane by lane (critical → notes → positions, the lane
//! order re-checked after each batch so a new critical op overtakes a positions backlog),
//! then pulls pages until the server says there are no more. Between rounds the engine
//! waits for a local write ([`SyncHandle::poke_local`]), a server poke, or the poll timer;
//! after a failed round it waits for the backoff timer only (SYNC.md principle 12: retries
//! do not depend on new local writes). Nothing is ever deleted: a failed request leaves the
//! outbox and the cursor as they were.
//!
//! Auth: every request carries the token of [`SyncOptions::token`]. A 401 `unauthenticated`
//! stops the engine in [`LinkState::SignInRequired`] (a 403 `device_revoked` in
//! [`LinkState::DeviceRevoked`]) until a new token is set; the outbox is untouched. With
//! [`SyncOptions::on_revocations`], each round (and at least every 5 minutes) fetches
//! `GET /v1/security/revocations` and hands a changed list to the app.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use outpost_domain::clock::{Clock, SystemClock};
use outpost_domain::op::{Lane, OpEnvelope};
use outpost_domain::wire::{
    ACKED_RETENTION_DAYS, Capabilities, MAX_BATCH_OPS, MAX_PULL_LIMIT, MAX_PUSH_BYTES,
    PROTOCOL_VERSION, PushRequest, Revocations,
};
use outpost_store::StoreError;

use crate::backoff::{Backoff, BackoffPolicy};
use crate::client::{ServerClient, Timeouts, TlsSettings};
use crate::error::SyncError;
use crate::failpoint::Failpoint;
use crate::status::{EngineStatus, LinkState};
use crate::store_api::{PullRecord, SyncPosition, SyncStore};
use crate::token::TokenSource;

/// Lanes in push order (SYNC.md principle 8).
pub const LANES: [Lane; 3] = [Lane::Critical, Lane::Notes, Lane::Positions];

/// Called after the engine changed the state tables (remote ops applied, an op parked and
/// un-applied, a resync or a snapshot): the console refreshes its views.
pub type OnApplied = Arc<dyn Fn() + Send + Sync>;

/// Receives the server's revocation list (`GET /v1/security/revocations`) when its version
/// differs from the last one delivered (or from [`SyncOptions::revocations_version`]); the
/// app stores it (the vault) and honours it offline. Runs on the engine's thread: keep it
/// short.
pub type OnRevocations = Arc<dyn Fn(&Revocations) + Send + Sync>;

/// The longest time between two revocation fetches while the link is up.
pub const REVOCATIONS_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// While the server refuses connections (nothing listens: it is restarting, or the link
/// to it is down), the engine also tries a bare TCP connect to the server's address this
/// often during its backoff wait, and starts a round as soon as one is accepted. A refused
/// connect costs the server nothing, so a returning server is noticed within about this
/// interval instead of at the end of a backoff that may have grown to a minute. A server
/// that answers but fails (5xx, a timeout: up but overloaded) is never probed: it gets the
/// whole backoff.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// Rounds started by a probe that failed again before the engine stops probing until the
/// next success (a server that accepts connections and then drops them gets the plain
/// backoff, not a round every [`PROBE_INTERVAL`]).
const PROBE_STRIKES: u32 = 2;

/// How the engine behaves.
#[derive(Clone)]
pub struct SyncOptions {
    /// Retry schedule after failed rounds.
    pub backoff: BackoffPolicy,
    /// When idle, pull at least this often (the poke channel usually wakes it sooner).
    pub poll_interval: Duration,
    /// Most ops per push (≤ [`MAX_BATCH_OPS`]).
    pub push_batch: usize,
    /// Most ops per pull page.
    pub pull_limit: usize,
    /// HTTP timeouts.
    pub timeouts: Timeouts,
    /// Open the WebSocket poke channel.
    pub poke: bool,
    /// Armed crash point (S4 tests); [`Failpoint::from_env`] by default.
    pub failpoint: Option<Failpoint>,
    /// Source of "now" for the status times.
    pub clock: Arc<dyn Clock>,
    /// TLS to the server: the agency CA (the only trust anchor) and the device identity.
    /// Required for `https://`; `None` for plain `http://` test servers.
    pub tls: Option<TlsSettings>,
    /// The person's session token, read on every request; the app replaces it at sign-in
    /// and clears it at sign-out. Empty by default (plain test servers need none).
    pub token: TokenSource,
    /// Where the revocation list goes; `None`: it is not fetched.
    pub on_revocations: Option<OnRevocations>,
    /// The version of the revocation list the app already has (not delivered again).
    pub revocations_version: Option<u64>,
}

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("backoff", &self.backoff)
            .field("poll_interval", &self.poll_interval)
            .field("push_batch", &self.push_batch)
            .field("pull_limit", &self.pull_limit)
            .field("timeouts", &self.timeouts)
            .field("poke", &self.poke)
            .field("failpoint", &self.failpoint)
            .field("tls", &self.tls)
            .field("token", &self.token)
            .field("on_revocations", &self.on_revocations.is_some())
            .field("revocations_version", &self.revocations_version)
            .finish_non_exhaustive()
    }
}

impl Default for SyncOptions {
    /// Backoff 0.5 s → 60 s, poll every 30 s, push batches of [`MAX_BATCH_OPS`], pull pages
    /// of 1,000, poke channel on, failpoint from the environment, the system clock; no TLS,
    /// no token, revocations not fetched.
    fn default() -> Self {
        Self {
            backoff: BackoffPolicy::default(),
            poll_interval: Duration::from_secs(30),
            push_batch: MAX_BATCH_OPS,
            pull_limit: 1_000,
            timeouts: Timeouts::default(),
            poke: true,
            failpoint: Failpoint::from_env(),
            clock: Arc::new(SystemClock),
            tls: None,
            token: TokenSource::new(),
            on_revocations: None,
            revocations_version: None,
        }
    }
}

/// What one round moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundReport {
    /// Pushes sent.
    pub batches: usize,
    /// Ops acknowledged by the server (accepted or duplicate).
    pub acked: usize,
    /// Ops parked by the server.
    pub parked: usize,
    /// Pull pages read.
    pub pages: usize,
    /// Ops received in pull pages (own ops included).
    pub pulled: usize,
    /// Remote ops applied to the state tables.
    pub applied: usize,
    /// Resyncs after an epoch change.
    pub resyncs: usize,
    /// Snapshots loaded.
    pub snapshots: usize,
}

impl RoundReport {
    /// True when the round moved nothing (no push, nothing pulled).
    pub fn is_quiet(&self) -> bool {
        self.batches == 0 && self.pulled == 0 && self.resyncs == 0 && self.snapshots == 0
    }
}

/// State shared between the handle and the engine's tasks.
pub(crate) struct Shared {
    status: Mutex<EngineStatus>,
    /// Set when the link was lost (a failed round, the poke channel dropping) and at start:
    /// the next round first checks that the server still has the history this console
    /// pulled (a server restored from a backup may not).
    verify_history: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EngineStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub(crate) fn set_poke_connected(&self, connected: bool) {
        self.lock().poke_connected = connected;
    }
    pub(crate) fn link_lost(&self) {
        self.verify_history.store(true, Ordering::SeqCst);
    }
    fn set_revocations_version(&self, version: u64) {
        self.lock().revocations_version = Some(version);
    }
    fn new(server_url: &str) -> Shared {
        Shared {
            status: Mutex::new(EngineStatus::new(server_url.to_string())),
            verify_history: AtomicBool::new(true),
        }
    }
    /// False from a lost link until the next round checked the server's history.
    pub(crate) fn history_verified(&self) -> bool {
        !self.verify_history.load(Ordering::SeqCst)
    }
    /// Counts live-feed frames applied, or one fallback to a pull.
    pub(crate) fn feed_counted(&self, frames_applied: u64, fell_back: bool) {
        let mut s = self.lock();
        s.feed_frames_applied += frames_applied;
        s.feed_fallbacks += u64::from(fell_back);
    }
    pub(crate) fn saw_server_gseq(&self, gseq: u64) {
        let mut s = self.lock();
        s.server_gseq = s.server_gseq.max(gseq);
    }
}

/// The sync engine's entry point.
#[derive(Debug)]
pub struct SyncEngine;

impl SyncEngine {
    /// Starts the engine on its own thread (a tokio runtime) and returns at once; the first
    /// round starts immediately.
    ///
    /// `store` is the console's store (the engine locks it for one batch or one page at a
    /// time); `on_applied` runs on the engine's thread after it changed the state tables.
    ///
    /// # Errors
    /// [`SyncError::BadUrl`] for an unusable URL (or a scheme that does not match
    /// [`SyncOptions::tls`]); [`SyncError::Tls`] for unreadable TLS settings;
    /// [`SyncError::Worker`] when the thread or runtime cannot start.
    pub fn start<S: SyncStore>(
        store: Arc<Mutex<S>>,
        server_url: &str,
        on_applied: OnApplied,
        options: SyncOptions,
    ) -> Result<SyncHandle, SyncError> {
        let client = client_for(server_url, &options)?;
        let shared = Arc::new(Shared::new(server_url));
        let wake = Arc::new(Notify::new());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("outpost-sync")
            .build()
            .map_err(|e| SyncError::Worker(format!("cannot start the sync runtime: {e}")))?;
        let token = options.token.clone();
        let session = Session::new(client, store, options, on_applied, Arc::clone(&shared));
        let thread_wake = Arc::clone(&wake);
        let thread = std::thread::Builder::new()
            .name("outpost-sync".into())
            .spawn(move || runtime.block_on(session.run(thread_wake, shutdown_rx)))
            .map_err(|e| SyncError::Worker(format!("cannot start the sync thread: {e}")))?;
        Ok(SyncHandle {
            shared,
            token,
            wake,
            shutdown: shutdown_tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs sync rounds on the calling thread until one moves nothing and no op is pending,
    /// at most `max_rounds` (the headless client and tests). Returns the rounds' reports.
    ///
    /// # Errors
    /// The first failed round's error ([`SyncError::Unauthenticated`] when the server
    /// refused the token: nothing was lost, sign in and sync again).
    pub fn sync_until_quiet<S: SyncStore>(
        store: Arc<Mutex<S>>,
        server_url: &str,
        options: SyncOptions,
        max_rounds: usize,
    ) -> Result<Vec<RoundReport>, SyncError> {
        let client = client_for(server_url, &options)?;
        let shared = Arc::new(Shared::new(server_url));
        let mut session = Session::new(client, store, options, Arc::new(|| {}), shared);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SyncError::Worker(format!("cannot start the sync runtime: {e}")))?;
        runtime.block_on(async move {
            let mut reports = Vec::new();
            for _ in 0..max_rounds.max(1) {
                let report = session.round().await?;
                reports.push(report);
                let pending = session.with_store(|s| s.pending_total()).await?;
                if report.is_quiet() && pending == 0 {
                    break;
                }
            }
            Ok(reports)
        })
    }
}

fn client_for(server_url: &str, options: &SyncOptions) -> Result<ServerClient, SyncError> {
    ServerClient::connect(
        server_url,
        options.timeouts,
        options.tls.as_ref(),
        options.token.clone(),
    )
}

/// The running engine. Dropping it shuts the engine down.
pub struct SyncHandle {
    shared: Arc<Shared>,
    token: TokenSource,
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl SyncHandle {
    /// The engine's status now.
    pub fn status(&self) -> EngineStatus {
        self.shared.lock().clone()
    }

    /// The token source the engine reads (the same as [`SyncOptions::token`]).
    pub fn token(&self) -> &TokenSource {
        &self.token
    }

    /// Sets the person's session token (after an online sign-in); an engine stopped on
    /// "sign-in required" resumes and pushes everything it kept.
    pub fn set_token(&self, token: impl Into<String>) {
        self.token.set(token);
    }

    /// Forgets the session token (sign-out): the next request is refused and the engine
    /// waits in [`LinkState::SignInRequired`].
    pub fn clear_token(&self) {
        self.token.clear();
    }

    /// A local write happened: push soon (at once when idle; after the current backoff when
    /// offline — a local write never shortens a backoff).
    pub fn poke_local(&self) {
        self.wake.notify_one();
    }

    /// Stops the engine and waits for its thread (an in-flight request is abandoned; the
    /// store's transactions are whole, so nothing half-done remains). Idempotent.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::warn!("the sync thread panicked");
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One engine's working state.
struct Session<S> {
    client: ServerClient,
    store: Arc<Mutex<S>>,
    options: SyncOptions,
    on_applied: OnApplied,
    shared: Arc<Shared>,
    /// The cursor after the last applied page (filters pokes).
    applied_gseq: Arc<AtomicU64>,
    /// Current push batch size after 413s / oversized batches (0: not set yet).
    batch_limit: usize,
    /// What the server said it speaks (asked once per engine).
    caps: Option<Capabilities>,
    /// When acknowledged ops were last pruned.
    pruned_at: Option<DateTime<Utc>>,
    /// The revocation list version last delivered (or known to the app).
    revocations_version: Option<u64>,
}

impl<S: SyncStore> Session<S> {
    fn new(
        client: ServerClient,
        store: Arc<Mutex<S>>,
        options: SyncOptions,
        on_applied: OnApplied,
        shared: Arc<Shared>,
    ) -> Self {
        let revocations_version = options.revocations_version;
        if let Some(v) = revocations_version {
            shared.set_revocations_version(v);
        }
        Self {
            client,
            store,
            options,
            on_applied,
            shared,
            applied_gseq: Arc::new(AtomicU64::new(0)),
            batch_limit: 0,
            caps: None,
            pruned_at: None,
            revocations_version,
        }
    }

    async fn run(mut self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        if let Ok(pos) = self.with_store(|s| s.position()).await {
            self.applied_gseq.store(pos.cursor, Ordering::SeqCst);
        }
        // The poke channel connecting is the server saying it is back: it ends a backoff
        // wait early (a local write never does).
        let server_up = Arc::new(Notify::new());
        if self.options.poke {
            tokio::spawn(crate::poke::run(
                self.client.clone(),
                Arc::clone(&self.shared),
                Arc::clone(&wake),
                Arc::clone(&server_up),
                Arc::clone(&self.applied_gseq),
                crate::poke::policy(self.options.backoff),
                Some(crate::poke::Feed {
                    store: Arc::clone(&self.store),
                    on_applied: Arc::clone(&self.on_applied),
                    failpoint: self.options.failpoint,
                    clock: Arc::clone(&self.options.clock),
                }),
                shutdown.clone(),
            ));
        }
        let mut backoff = Backoff::new(self.options.backoff);
        // Rounds started by a probe that failed anyway (see PROBE_STRIKES).
        let mut probe_strikes = 0u32;
        let mut probed_in = false;
        loop {
            let generation = self.client.token().generation();
            let result = tokio::select! {
                r = self.round() => r,
                _ = shutdown.changed() => return,
            };
            let wait = match result {
                Ok(report) => {
                    backoff.reset();
                    probe_strikes = 0;
                    probed_in = false;
                    self.round_succeeded(&report);
                    self.idle_interval()
                }
                Err(e) if e.needs_sign_in() || e.is_device_revoked() => {
                    // A person (or an administrator) must act: no retries meanwhile, the
                    // outbox is kept as it is. A new token resumes at once.
                    self.auth_refused(&e);
                    tokio::select! {
                        _ = self.client.token().token_set_after(generation) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff.reset();
                    self.resuming();
                    continue;
                }
                Err(e) => {
                    if std::mem::take(&mut probed_in) {
                        probe_strikes += 1;
                    }
                    let delay = backoff.next_delay();
                    let delay = if e.is_transient() {
                        delay
                    } else {
                        delay.max(self.options.backoff.max / 2)
                    };
                    self.round_failed(&e, backoff.failures(), delay);
                    // Offline: the timer, the server coming back (the poke channel, or a
                    // probe while nothing listened), or shutdown ends the wait.
                    let probe = e.is_connect_failure() && probe_strikes < PROBE_STRIKES;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = server_up.notified() => {}
                        _ = wait_until_listening(self.client.base().clone()), if probe => {
                            tracing::debug!("the server accepts connections again");
                            probed_in = true;
                        }
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn round_succeeded(&self, report: &RoundReport) {
        let now = self.options.clock.now();
        let mut s = self.shared.lock();
        s.state = LinkState::Online;
        s.offline_since = None;
        s.last_sync = Some(now);
        s.last_error = None;
        s.error_is_permanent = false;
        s.rounds += 1;
        s.failures = 0;
        tracing::debug!(?report, "sync round done");
    }

    /// How long to idle after a successful round: the poll interval, at most
    /// [`REVOCATIONS_INTERVAL`] when revocations are fetched.
    fn idle_interval(&self) -> Duration {
        if self.options.on_revocations.is_some() {
            self.options.poll_interval.min(REVOCATIONS_INTERVAL)
        } else {
            self.options.poll_interval
        }
    }

    /// 401 `unauthenticated` or 403 `device_revoked`: the status says who must act.
    fn auth_refused(&self, e: &SyncError) {
        let now = self.options.clock.now();
        self.shared.link_lost();
        let mut s = self.shared.lock();
        if s.offline_since.is_none() {
            s.offline_since = Some(now);
        }
        let (state, what) = if e.is_device_revoked() {
            (LinkState::DeviceRevoked, "device revoked")
        } else {
            (LinkState::SignInRequired, "sign-in required")
        };
        s.state = state;
        s.last_error = Some(format!("{what}: {}", e.one_line()));
        s.error_is_permanent = true;
        tracing::warn!(error = %e, "sync stopped: {what}; the outbox is kept");
    }

    /// A new token after a refusal: connecting again.
    fn resuming(&self) {
        let mut s = self.shared.lock();
        s.state = LinkState::Connecting;
        s.failures = 0;
    }

    fn round_failed(&self, e: &SyncError, failures: u32, delay: Duration) {
        let now = self.options.clock.now();
        self.shared.link_lost();
        let mut s = self.shared.lock();
        if s.offline_since.is_none() {
            s.offline_since = Some(now);
        }
        s.state = LinkState::Offline;
        s.last_error = Some(e.one_line());
        s.error_is_permanent = !e.is_transient();
        s.failures = failures;
        if failures <= 1 || !e.is_transient() {
            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "sync failed");
        } else {
            tracing::debug!(error = %e, failures, retry_in_ms = delay.as_millis() as u64, "sync failed again");
        }
    }

    fn syncing(&self) {
        let mut s = self.shared.lock();
        if s.state != LinkState::Syncing {
            s.state = LinkState::Syncing;
        }
    }

    /// Runs one store call on the blocking pool with the store locked.
    async fn with_store<T, F>(&self, f: F) -> Result<T, SyncError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(r) => r.map_err(|e| match e {
                StoreError::EpochChanged { server, .. } => {
                    SyncError::EpochChanged { epoch: server }
                }
                other => SyncError::from(other),
            }),
            Err(e) => Err(SyncError::Worker(format!("a store call failed: {e}"))),
        }
    }

    fn applied(&self) {
        (self.on_applied)();
    }

    /// One round: push everything, then pull to the end; an epoch change resyncs and starts
    /// over (at most twice per round).
    async fn round(&mut self) -> Result<RoundReport, SyncError> {
        self.check_capabilities().await?;
        if self.client.tls_config().is_some() && self.client.token().get().is_none() {
            // The server answered (capabilities are public), but nobody signed in online:
            // do not knock with no token (each refusal is audited); wait for one.
            return Err(SyncError::Unauthenticated {
                code: "unauthenticated".into(),
                message: "nobody is signed in online on this console".into(),
            });
        }
        self.check_revocations().await?;
        let mut report = RoundReport::default();
        let mut resyncs_left = 2;
        loop {
            let result = async {
                if self.shared.verify_history.swap(false, Ordering::SeqCst)
                    && let Err(e) = self.verify_history(&mut report).await
                {
                    self.shared.link_lost();
                    return Err(e);
                }
                self.push_all(&mut report).await?;
                self.pull_all(&mut report).await
            }
            .await;
            match result {
                Err(SyncError::EpochChanged { epoch }) if resyncs_left > 0 => {
                    resyncs_left -= 1;
                    tracing::warn!(%epoch, "the server has a new epoch (restored from a backup); resyncing");
                    self.with_store(move |s| s.start_resync(epoch)).await?;
                    self.applied_gseq.store(0, Ordering::SeqCst);
                    report.resyncs += 1;
                    self.applied();
                }
                Ok(()) => {
                    self.prune().await;
                    return Ok(report);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// After the link was lost: does the server still have the ops this console knows it
    /// has — the op pulled at the cursor, and this console's newest acknowledged op (its
    /// `gseq` may be beyond the cursor: acknowledged, not pulled yet)? A server restored from
    /// a backup may not (SYNC.md principle 11, S12):
    ///
    /// - its newest `gseq` is below one of them: a push carrying that `gseq` as the cursor
    ///   tells it; it starts a new epoch and answers 409, and the round resyncs;
    /// - another op sits at that `gseq` (the restore went unnoticed and new ops got the lost
    ///   numbers): the console resyncs in place — re-pushes what it kept (duplicates for what
    ///   the server has, the rest ordered anew) and pulls everything again.
    ///
    /// An op compacted away is not compared.
    async fn verify_history(&mut self, report: &mut RoundReport) -> Result<(), SyncError> {
        let (pos, own, origin) = self
            .with_store(|s| Ok((s.position()?, s.newest_own_acked()?, s.origin())))
            .await?;
        let mut known = Vec::new();
        if pos.cursor > 0 {
            let cursor = pos.cursor;
            if let Some(id) = self.with_store(move |s| s.op_at_gseq(cursor)).await? {
                known.push((cursor, id));
            }
        }
        known.extend(own.filter(|(g, _)| *g != pos.cursor && *g > 0));
        for (gseq, ours) in known {
            let page = match self.client.pull(gseq.saturating_sub(1), 1, pos.epoch).await {
                Err(SyncError::SnapshotRequired) => continue,
                other => other?,
            };
            if pos.epoch.is_some_and(|e| e != page.epoch) {
                return Err(SyncError::EpochChanged { epoch: page.epoch });
            }
            if page.server_gseq < gseq {
                tracing::warn!(
                    gseq,
                    server_gseq = page.server_gseq,
                    "the server lost ops this console knows (restored from a backup); telling it"
                );
                let tell = SyncPosition {
                    epoch: pos.epoch,
                    cursor: gseq,
                };
                let req = push_request(origin, Lane::Critical, tell, &[])?;
                self.client.push(&req).await?;
                return Err(SyncError::NoProgress(format!(
                    "the server's newest op is {} but this console knows op {gseq}, and the \
                     server did not start a new epoch",
                    page.server_gseq
                )));
            }
            let theirs = page
                .ops
                .first()
                .filter(|p| p.gseq == gseq)
                .and_then(|p| p.op.get("op_id"))
                .and_then(serde_json::Value::as_str)
                .and_then(|t| uuid::Uuid::parse_str(t).ok());
            if let Some(theirs) = theirs
                && theirs != ours
            {
                tracing::warn!(
                    gseq,
                    %ours,
                    %theirs,
                    "the server's history differs from what this console knows (restored from \
                     a backup); resyncing"
                );
                let epoch = page.epoch;
                self.with_store(move |s| s.start_resync(epoch)).await?;
                self.applied_gseq.store(0, Ordering::SeqCst);
                report.resyncs += 1;
                self.applied();
                return Ok(());
            }
        }
        Ok(())
    }

    /// Asks the server once what it speaks; a server without this build's protocol is a
    /// permanent error (upgrade one side). Limits are the smaller of ours and the server's.
    async fn check_capabilities(&mut self) -> Result<(), SyncError> {
        if self.caps.is_some() {
            return Ok(());
        }
        let caps = match self.client.capabilities().await {
            Ok(c) => c,
            // A server from before the endpoint: assume the limits of this protocol.
            Err(SyncError::Server { status: 404, .. }) => Capabilities {
                protocols: vec![PROTOCOL_VERSION],
                max_schema: outpost_domain::op::SCHEMA_VERSION,
                max_batch_ops: MAX_BATCH_OPS,
                max_push_bytes: MAX_PUSH_BYTES,
                max_pull_limit: MAX_PULL_LIMIT,
                server: "unknown".into(),
            },
            Err(e) => return Err(e),
        };
        if !caps.protocols.contains(&PROTOCOL_VERSION) {
            return Err(SyncError::Server {
                status: 400,
                code: "protocol".into(),
                message: format!(
                    "{} speaks sync protocol {:?}; this console speaks {PROTOCOL_VERSION}: \
                     upgrade the older side",
                    caps.server, caps.protocols
                ),
            });
        }
        tracing::info!(server = %caps.server, max_schema = caps.max_schema, "sync server");
        self.caps = Some(caps);
        Ok(())
    }

    /// Fetches the revocation list (when the app receives it) and delivers it when its
    /// version changed. A server without the endpoint (404: a plain test server) has none.
    async fn check_revocations(&mut self) -> Result<(), SyncError> {
        let Some(deliver) = self.options.on_revocations.clone() else {
            return Ok(());
        };
        let list = match self.client.revocations().await {
            Ok(list) => list,
            Err(SyncError::Server { status: 404, .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.revocations_version != Some(list.version) {
            tracing::info!(
                version = list.version,
                revoked_devices = list.revoked_devices.len(),
                disabled_users = list.disabled_users.len(),
                "revocation list changed"
            );
            deliver(&list);
            self.revocations_version = Some(list.version);
            self.shared.set_revocations_version(list.version);
        }
        Ok(())
    }

    fn max_batch(&self) -> usize {
        let server = self
            .caps
            .as_ref()
            .map_or(MAX_BATCH_OPS, |c| c.max_batch_ops);
        self.options.push_batch.min(server).clamp(1, MAX_BATCH_OPS)
    }

    fn max_push_bytes(&self) -> usize {
        self.caps
            .as_ref()
            .map_or(MAX_PUSH_BYTES, |c| c.max_push_bytes.min(MAX_PUSH_BYTES))
    }

    fn pull_limit(&self) -> usize {
        let server = self
            .caps
            .as_ref()
            .map_or(MAX_PULL_LIMIT, |c| c.max_pull_limit);
        self.options.pull_limit.min(server).max(1)
    }

    /// Deletes acknowledged ops older than [`ACKED_RETENTION_DAYS`], at most once an hour.
    /// A failure only logs: pruning is housekeeping.
    async fn prune(&mut self) {
        let now = self.options.clock.now();
        if self
            .pruned_at
            .is_some_and(|t| now - t < chrono::Duration::hours(1))
        {
            return;
        }
        self.pruned_at = Some(now);
        let before = now - chrono::Duration::days(ACKED_RETENTION_DAYS);
        match self.with_store(move |s| s.prune_acked(before)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "acknowledged ops past retention pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning acknowledged ops failed"),
        }
    }

    async fn push_all(&mut self, report: &mut RoundReport) -> Result<(), SyncError> {
        let max = self.max_batch();
        let max_bytes = self.max_push_bytes();
        if self.batch_limit == 0 || self.batch_limit > max {
            self.batch_limit = max;
        }
        let mut stalls = 0;
        loop {
            let limit = self.batch_limit;
            let next = self
                .with_store(move |s| {
                    for lane in LANES {
                        let ops = s.pending_batch(lane, limit)?;
                        if !ops.is_empty() {
                            return Ok(Some((lane, ops, s.position()?, s.origin())));
                        }
                    }
                    Ok(None)
                })
                .await?;
            let Some((lane, ops, pos, origin)) = next else {
                return Ok(());
            };
            self.syncing();
            let req = push_request(origin, lane, pos, &ops)?;
            if let Some(smaller) = shrink_if_oversized(&req, max_bytes) {
                self.batch_limit = smaller;
                continue;
            }
            let resp = match self.client.push(&req).await {
                Err(SyncError::TooLarge(_)) if ops.len() > 1 => {
                    self.batch_limit = (ops.len() / 2).max(1);
                    continue;
                }
                other => other?,
            };
            report.batches += 1;
            self.shared.saw_server_gseq(resp.server_gseq);
            {
                let mut s = self.shared.lock();
                s.epoch = Some(resp.epoch);
            }
            if pos.epoch.is_some_and(|e| e != resp.epoch) {
                return Err(SyncError::EpochChanged { epoch: resp.epoch });
            }
            Failpoint::AfterAckBeforeCommit.hit(self.options.failpoint);
            let answered = resp.results.len();
            let resend = resp.resend_from;
            let now = self.options.clock.now();
            let rec = self
                .with_store(move |s| s.record_push(lane, &resp, now))
                .await?;
            report.acked += rec.acked;
            report.parked += rec.parked;
            if rec.rebuilt {
                self.applied();
            }
            // A batch that moved nothing must not loop forever.
            if answered == 0 || (resend.is_some() && rec.acked + rec.parked == 0) {
                stalls += 1;
                if stalls > 3 {
                    return Err(SyncError::NoProgress(format!(
                        "the server answered no op of the {lane:?} lane (resend_from {resend:?})"
                    )));
                }
            } else {
                stalls = 0;
            }
            if self.batch_limit < max {
                // Grow back after a successful smaller batch.
                self.batch_limit = (self.batch_limit * 2).min(max);
            }
        }
    }

    async fn pull_all(&mut self, report: &mut RoundReport) -> Result<(), SyncError> {
        let limit = self.pull_limit();
        let mut told_server = false;
        let mut snapshot_loaded = false;
        loop {
            let pos = self.with_store(|s| s.position()).await?;
            let page = match self.client.pull(pos.cursor, limit, pos.epoch).await {
                Err(SyncError::SnapshotRequired) => {
                    // One snapshot per round: a server that still answers 410 after it
                    // (e.g. a compaction floor beyond its newest op) is retried later, not
                    // downloaded again in a loop.
                    if snapshot_loaded {
                        return Err(SyncError::NoProgress(format!(
                            "the server asks for a snapshot again right after one was loaded \
                             (cursor {})",
                            pos.cursor
                        )));
                    }
                    snapshot_loaded = true;
                    self.syncing();
                    let snapshot = self.client.snapshot().await?;
                    if pos.epoch.is_some_and(|e| e != snapshot.epoch) {
                        return Err(SyncError::EpochChanged {
                            epoch: snapshot.epoch,
                        });
                    }
                    let gseq = snapshot.gseq;
                    let now = self.options.clock.now();
                    let rec: PullRecord = self
                        .with_store(move |s| s.load_snapshot(&snapshot, now))
                        .await?;
                    report.snapshots += 1;
                    report.applied += rec.applied;
                    self.applied_gseq.store(gseq, Ordering::SeqCst);
                    self.applied();
                    continue;
                }
                other => other?,
            };
            self.shared.saw_server_gseq(page.server_gseq);
            {
                let mut s = self.shared.lock();
                s.epoch = Some(page.epoch);
            }
            if pos.epoch.is_some_and(|e| e != page.epoch) {
                return Err(SyncError::EpochChanged { epoch: page.epoch });
            }
            if page.server_gseq < pos.cursor && page.ops.is_empty() {
                // The server is behind what this console applied: it was restored from a
                // backup without knowing. An (empty) push with our cursor tells it; it
                // answers 409 with its new epoch.
                if told_server {
                    return Err(SyncError::NoProgress(format!(
                        "the server's newest op is {} but this console applied up to {}",
                        page.server_gseq, pos.cursor
                    )));
                }
                told_server = true;
                let origin = self.with_store(|s| Ok(s.origin())).await?;
                let req = push_request(origin, Lane::Critical, pos, &[])?;
                self.client.push(&req).await?;
                continue;
            }
            let more = page.more && !page.ops.is_empty();
            if !page.ops.is_empty() {
                self.syncing();
            }
            report.pages += 1;
            report.pulled += page.ops.len();
            let failpoint = self.options.failpoint;
            let now = self.options.clock.now();
            let rec = self
                .with_store(move |s| s.apply_pull(&page, now, failpoint))
                .await?;
            report.applied += rec.applied;
            if rec.applied > 0 {
                self.applied();
            }
            self.applied_gseq.store(rec.cursor, Ordering::SeqCst);
            if !more {
                return Ok(());
            }
        }
    }
}

/// Returns once a TCP connection to `base`'s host and port is accepted (closed at once),
/// trying every [`PROBE_INTERVAL`]; never returns when the address does not resolve.
async fn wait_until_listening(base: reqwest::Url) {
    let (Some(host), Some(port)) = (
        base.host_str().map(str::to_owned),
        base.port_or_known_default(),
    ) else {
        return std::future::pending().await;
    };
    // An IPv6 literal comes bracketed in URLs; connect wants it bare.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    loop {
        let attempt = tokio::time::timeout(
            PROBE_INTERVAL,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        );
        let started = tokio::time::Instant::now();
        if let Ok(Ok(stream)) = attempt.await {
            drop(stream);
            return;
        }
        tokio::time::sleep_until(started + PROBE_INTERVAL).await;
    }
}

fn push_request(
    origin: uuid::Uuid,
    lane: Lane,
    pos: SyncPosition,
    ops: &[OpEnvelope],
) -> Result<PushRequest, SyncError> {
    let ops = ops
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SyncError::Store(StoreError::Json(e)))?;
    Ok(PushRequest {
        protocol: PROTOCOL_VERSION,
        origin,
        lane,
        epoch: pos.epoch,
        cursor: pos.cursor,
        ops,
    })
}

/// A smaller batch size when `req` would exceed `max_bytes` (with 10% headroom); `None`
/// when it fits or has one op only (the server then decides).
fn shrink_if_oversized(req: &PushRequest, max_bytes: usize) -> Option<usize> {
    if req.ops.len() <= 1 {
        return None;
    }
    let size = serde_json::to_vec(req).map(|v| v.len()).unwrap_or(0);
    (size > max_bytes / 10 * 9).then_some((req.ops.len() / 2).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_batches_are_halved() {
        let op = serde_json::json!({ "pad": "x".repeat(10_000) });
        let mut req = PushRequest {
            protocol: PROTOCOL_VERSION,
            origin: uuid::Uuid::nil(),
            lane: Lane::Notes,
            epoch: None,
            cursor: 0,
            ops: vec![op.clone(); 10],
        };
        assert_eq!(shrink_if_oversized(&req, MAX_PUSH_BYTES), None);
        req.ops = vec![op.clone(); 400];
        assert_eq!(shrink_if_oversized(&req, MAX_PUSH_BYTES), Some(200));
        assert_eq!(shrink_if_oversized(&req, 100_000), Some(200));
        req.ops = vec![op.clone(); 10];
        assert_eq!(shrink_if_oversized(&req, 50_000), Some(5));
        req.ops = vec![serde_json::json!({ "pad": "x".repeat(MAX_PUSH_BYTES) })];
        assert_eq!(shrink_if_oversized(&req, MAX_PUSH_BYTES), None);
    }

    #[test]
    fn quiet_rounds() {
        assert!(RoundReport::default().is_quiet());
        let r = RoundReport {
            pulled: 1,
            ..RoundReport::default()
        };
        assert!(!r.is_quiet());
    }
}
