//! Limits on the work and records an unauthenticated client can cause (security review S3,
//! S8, S11):
//!
//! - [`GuardConfig::password_verifications`]: at most this many password verifications
//!   (argon2id, ~19 MiB and tens of milliseconds each) run at once, for `POST /v1/enroll` and
//!   `POST /v1/login` together; a request that cannot get a slot within
//!   [`GuardConfig::password_wait`] is answered 503 `busy`;
//! - [`RateLimiter`]: at most [`GuardConfig::sign_in_per_minute`] enroll + login requests per
//!   client address per minute (a token bucket: a burst of that many, then one more every
//!   60/N s), more are answered 429 `too_many_requests` with `Retry-After`;
//! - [`GuardConfig::body_limit`] and [`GuardConfig::body_timeout`]: an enroll, login or admin
//!   body larger than the limit is answered 413, one that does not arrive whole in time 408;
//! - [`ConnectionCap`]: at most [`GuardConfig::max_connections`] connections on the sync TLS
//!   port, [`GuardConfig::max_connections_per_address`] from one client address; more are
//!   closed at once and counted;
//! - [`RefusalAudit`]: refusals by unauthenticated clients (device listeners, CoT TLS) are
//!   written to the audit trail at most once per [`GuardConfig::refusal_window`] for the same
//!   address, action and reason; the number suppressed meanwhile goes into the next record of
//!   that key, so a flood costs one record per window and is still visible.
//!
//! - [`GuardConfig::session_recheck`]: an open poke WebSocket checks its session and device
//!   this often and closes once they are no longer valid.
//!
//! Client addresses are keyed as the device listeners key them (an IPv6 address by its /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{AuditEvent, AuditSink};
use crate::ingest::limits::client_key;

/// The limits of [`Guards`] (flags of `serve`; defaults for a small 2-core server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Password verifications running at once (`serve --password-verifications`, default 2).
    pub password_verifications: usize,
    /// How long a sign-in waits for a verification slot before 503, default 10 s.
    pub password_wait: Duration,
    /// Enroll + login requests per client address per minute (`serve
    /// --sign-in-per-minute`, default 10).
    pub sign_in_per_minute: u32,
    /// Largest enroll / login / admin body, bytes (default 64 KiB).
    pub body_limit: usize,
    /// How long such a body may take to arrive (default 10 s).
    pub body_timeout: Duration,
    /// Connections on the sync TLS port (`serve --max-connections`, default 512).
    pub max_connections: usize,
    /// Connections on the sync TLS port from one address (`serve
    /// --max-connections-per-address`, default 64).
    pub max_connections_per_address: usize,
    /// The same refusal (address, action, reason) is audited at most once per this window
    /// (default 10 s).
    pub refusal_window: Duration,
    /// How often an open poke WebSocket checks that its session is still valid (default
    /// 30 s; review S10).
    pub session_recheck: Duration,
    /// Console audit events (`POST /v1/audit/events`) one device may send per UTC day
    /// (default 10,000; fresh review S14).
    pub console_events_per_day: u64,
    /// Bytes of such batches one device may send per UTC day (default 4 MiB).
    pub console_event_bytes_per_day: u64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            password_verifications: 2,
            password_wait: Duration::from_secs(10),
            sign_in_per_minute: 10,
            body_limit: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_connections_per_address: 64,
            refusal_window: Duration::from_secs(10),
            session_recheck: Duration::from_secs(30),
            console_events_per_day: 10_000,
            console_event_bytes_per_day: 4 * 1024 * 1024,
        }
    }
}

/// The shared guards of one server.
pub struct Guards {
    /// The configuration.
    pub config: GuardConfig,
    /// Password verification slots.
    pub passwords: Semaphore,
    /// The threads that run password verifications (as many as the slots), so their
    /// argon2 memory stays in that many allocator arenas (tokio's blocking pool would
    /// spread it over up to 512 threads, each keeping its ~19 MiB resident).
    pub password_pool: PasswordPool,
    /// Enroll + login per address.
    pub sign_in: RateLimiter,
    /// Connections on the sync port.
    pub connections: Arc<ConnectionCap>,
    /// Rate-limited audit of refusals by unauthenticated clients (`None`: no audit trail,
    /// the plain test server).
    pub refusals: Option<Arc<RefusalAudit>>,
    /// Console audit events per device per UTC day.
    pub console_events: DailyBudget,
}

impl std::fmt::Debug for Guards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guards")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Guards {
    /// Guards with `config` (a zero count is taken as 1).
    pub fn new(config: GuardConfig) -> Guards {
        Guards {
            passwords: Semaphore::new(config.password_verifications.max(1)),
            password_pool: PasswordPool::new(config.password_verifications.max(1)),
            sign_in: RateLimiter::new(config.sign_in_per_minute.max(1), Duration::from_secs(60)),
            connections: Arc::new(ConnectionCap::new(
                config.max_connections.max(1),
                config.max_connections_per_address.max(1),
            )),
            refusals: None,
            console_events: DailyBudget::new(
                config.console_events_per_day,
                config.console_event_bytes_per_day,
            ),
            config,
        }
    }
}

impl Guards {
    /// The same, auditing refusals through `refusals`.
    pub fn with_refusals(mut self, refusals: Arc<RefusalAudit>) -> Guards {
        self.refusals = Some(refusals);
        self
    }
}

impl Default for Guards {
    fn default() -> Self {
        Guards::new(GuardConfig::default())
    }
}

/// A token bucket per client address: `burst` requests at once, refilled at `burst` per
/// `period`.
#[derive(Debug)]
pub struct RateLimiter {
    burst: u32,
    period: Duration,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter of `burst` requests per `period` per address.
    pub fn new(burst: u32, period: Duration) -> RateLimiter {
        RateLimiter {
            burst: burst.max(1),
            period,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `ip` now: `Ok(())`, or `Err(seconds)` until the next one is
    /// allowed (at least 1).
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    /// [`RateLimiter::check`] at `now`.
    pub fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let per_token = self.period.as_secs_f64() / f64::from(self.burst);
        let burst = f64::from(self.burst);
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            // Forget the full buckets (nothing to remember about them).
            map.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() / per_token < burst
            });
        }
        let (tokens, at) = map.entry(client_key(ip)).or_insert((burst, now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() / per_token;
        *tokens = (*tokens + refilled).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) * per_token;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// A few threads that run password verifications (see [`Guards::password_pool`]).
pub struct PasswordPool {
    tx: Mutex<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPool").finish_non_exhaustive()
    }
}

impl PasswordPool {
    /// A pool of `threads` threads (they end when the pool is dropped).
    pub fn new(threads: usize) -> PasswordPool {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("outpost-password-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password verification thread");
            }
        }
        PasswordPool { tx: Mutex::new(tx) }
    }

    /// Runs `f` on one of the pool's threads; `None` when the pool is gone or `f` panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            // A panic ends this job only (the caller gets `None`), never the thread.
            if let Ok(v) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(v);
            }
        });
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .ok()?;
        rx.await.ok()
    }
}

/// What one device may send per UTC day (events and bytes), so a signed-in console cannot
/// grow the audit trail without bound (fresh review S14).
#[derive(Debug)]
pub struct DailyBudget {
    events: u64,
    bytes: u64,
    /// Per device: (UTC day number, events, bytes, whether the refusal was audited today).
    used: Mutex<HashMap<String, (i64, u64, u64, bool)>>,
}

/// A batch over a device's [`DailyBudget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    /// Seconds until the budget renews (the next UTC midnight), at least 1.
    pub retry_after_s: u64,
    /// True for the first refusal of the device this day (audit it), false after.
    pub first_today: bool,
}

impl DailyBudget {
    /// At most `events` events and `bytes` bytes per device per UTC day.
    pub fn new(events: u64, bytes: u64) -> DailyBudget {
        DailyBudget {
            events,
            bytes,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a batch of `events` events and `bytes` bytes of `device` at `now_s` (Unix
    /// seconds): nothing is taken when it would go over the budget.
    ///
    /// # Errors
    /// [`OverBudget`] when the batch would exceed the day's budget.
    pub fn take(
        &self,
        device: &str,
        events: u64,
        bytes: u64,
        now_s: i64,
    ) -> Result<(), OverBudget> {
        let day = now_s.div_euclid(86_400);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.len() > 100_000 {
            used.retain(|_, u| u.0 == day);
        }
        let u = used.entry(device.to_string()).or_insert((day, 0, 0, false));
        if u.0 != day {
            *u = (day, 0, 0, false);
        }
        if u.1 + events > self.events || u.2 + bytes > self.bytes {
            let first_today = !u.3;
            u.3 = true;
            let retry_after_s = u64::try_from((day + 1) * 86_400 - now_s)
                .unwrap_or(1)
                .max(1);
            return Err(OverBudget {
                retry_after_s,
                first_today,
            });
        }
        u.1 += events;
        u.2 += bytes;
        Ok(())
    }
}

/// Open connections in total and per client address.
#[derive(Debug)]
pub struct ConnectionCap {
    total: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    refused: AtomicU64,
}

/// One connection's place under a [`ConnectionCap`]; given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    cap: Arc<ConnectionCap>,
    ip: IpAddr,
}

impl ConnectionCap {
    /// At most `total` connections, `per_address` from one address.
    pub fn new(total: usize, per_address: usize) -> ConnectionCap {
        ConnectionCap {
            total,
            per_address,
            open: Mutex::new((0, HashMap::new())),
            refused: AtomicU64::new(0),
        }
    }

    /// A slot for a connection from `ip`, or `None` (counted) when a cap is reached.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let ip = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.total || from >= self.per_address {
            drop(open);
            let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= 10 || n.is_power_of_two() {
                tracing::warn!(%ip, refused = n, "sync port: connection cap reached; closed");
            }
            return None;
        }
        open.0 += 1;
        *open.1.entry(ip).or_insert(0) += 1;
        Some(ConnectionSlot {
            cap: self.clone(),
            ip,
        })
    }

    /// Connections closed at once because a cap was reached, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// Whether the audit trail's writes succeed (review S11): the server keeps serving when they
/// fail (dispatch must not stop), but says so in `GET /v1/health` (`audit_ok`) and logs at
/// error level at most once a minute (and once when writes succeed again).
#[derive(Debug, Default)]
pub struct AuditHealth {
    failing: std::sync::atomic::AtomicBool,
    last_logged: Mutex<Option<Instant>>,
}

impl AuditHealth {
    /// How often a failing trail is logged.
    pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

    /// True unless the last write failed.
    pub fn is_ok(&self) -> bool {
        !self.failing.load(Ordering::Relaxed)
    }

    /// Notes the outcome of a write to the trail at `path`.
    pub fn note<T, E: std::fmt::Display>(&self, path: &std::path::Path, r: &Result<T, E>) {
        match r {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(path = %path.display(), "the audit trail is written again");
                }
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                if last.is_none_or(|t| now.saturating_duration_since(t) >= Self::LOG_INTERVAL) {
                    *last = Some(now);
                    tracing::error!(
                        path = %path.display(),
                        error = %e,
                        "cannot write the audit trail; serving on, events are being lost \
                         (GET /v1/health says audit_ok: false)"
                    );
                }
            }
        }
    }
}

/// The audit trail of a [`super::Security`] as an [`AuditSink`].
#[derive(Debug, Clone)]
pub struct SecurityAudit(pub Arc<super::Security>);

impl AuditSink for SecurityAudit {
    fn record(&self, event: AuditEvent) {
        self.0.audit(event);
    }
}

/// What makes two refusals the same: the client address (keyed), the action, the detail.
type RefusalKey = (Option<IpAddr>, String, String);

/// Refusals written to the audit trail at most once per window for the same
/// (address, action, reason); see the module docs.
pub struct RefusalAudit {
    sink: Arc<dyn AuditSink>,
    window: Duration,
    seen: Mutex<HashMap<RefusalKey, (Instant, u64)>>,
}

impl std::fmt::Debug for RefusalAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalAudit")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RefusalAudit {
    /// Refusals into `sink`, the same one at most once per `window`.
    pub fn new(sink: Arc<dyn AuditSink>, window: Duration) -> RefusalAudit {
        RefusalAudit {
            sink,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `event` (a refusal) from `addr`, unless one with the same address, action and
    /// detail was recorded within the window (then it is counted and the count goes into
    /// the next record of that key). True when a record was written.
    pub fn refused(&self, addr: Option<IpAddr>, event: AuditEvent) -> bool {
        self.refused_at(Instant::now(), addr, event)
    }

    /// [`RefusalAudit::refused`] with `kind` added to what makes two refusals the same
    /// (e.g. the route of a refused request, so each endpoint keeps its own record).
    pub fn refused_kind(&self, addr: Option<IpAddr>, kind: &str, mut event: AuditEvent) -> bool {
        let action = std::mem::take(&mut event.action);
        let keyed = AuditEvent {
            action: format!("{action}\u{0}{kind}"),
            ..event
        };
        self.refused_inner(Instant::now(), addr, keyed, Some(action.len()))
    }

    /// [`RefusalAudit::refused`] at `now`.
    pub fn refused_at(&self, now: Instant, addr: Option<IpAddr>, event: AuditEvent) -> bool {
        self.refused_inner(now, addr, event, None)
    }

    /// The record of `event`; `action_len`: the action is the first that many bytes of
    /// `event.action` (the rest is the kind, part of the key only).
    fn refused_inner(
        &self,
        now: Instant,
        addr: Option<IpAddr>,
        mut event: AuditEvent,
        action_len: Option<usize>,
    ) -> bool {
        let key = (
            addr.map(client_key),
            event.action.clone(),
            event.detail.clone(),
        );
        let suppressed = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() > 10_000 {
                let window = self.window;
                seen.retain(|_, (at, n)| *n > 0 || now.saturating_duration_since(*at) < window);
            }
            match seen.get_mut(&key) {
                Some((at, n)) if now.saturating_duration_since(*at) < self.window => {
                    *n += 1;
                    return false;
                }
                Some((at, n)) => {
                    let s = *n;
                    *at = now;
                    *n = 0;
                    s
                }
                None => {
                    seen.insert(key, (now, 0));
                    0
                }
            }
        };
        if suppressed > 0 {
            event.detail.push_str(&format!(
                " (and {suppressed} more identical refusals from this address not recorded \
                 one by one; at most one per {} s)",
                self.window.as_secs()
            ));
        }
        if let Some(n) = action_len {
            event.action.truncate(n);
        }
        self.sink.record(event);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{AuditOutcome, MemoryAudit};

    #[test]
    fn the_sign_in_limiter_allows_a_burst_then_answers_the_wait() {
        let l = RateLimiter::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for _ in 0..10 {
            assert_eq!(l.check_at(ip, t0), Ok(()));
        }
        assert_eq!(l.check_at(ip, t0), Err(6));
        // Another address has its own bucket.
        assert_eq!(l.check_at("192.0.2.8".parse().expect("ip"), t0), Ok(()));
        // One token back after 6 s.
        assert_eq!(l.check_at(ip, t0 + Duration::from_secs(6)), Ok(()));
        assert_eq!(l.check_at(ip, t0 + Duration::from_secs(6)), Err(6));
    }

    #[test]
    fn the_same_refusal_is_audited_once_per_window_with_the_suppressed_count() {
        let sink = Arc::new(MemoryAudit::default());
        let a = RefusalAudit::new(sink.clone(), Duration::from_secs(10));
        let t0 = Instant::now();
        let ip: Option<IpAddr> = Some("192.0.2.7".parse().expect("ip"));
        let ev = |detail: &str| {
            AuditEvent::new("osmand.token", AuditOutcome::Refused)
                .device("phone-1")
                .target("192.0.2.7")
                .detail(detail)
        };
        assert!(a.refused_at(t0, ip, ev("wrong device token")));
        for i in 1..=5 {
            let t = t0 + Duration::from_secs(i);
            assert!(!a.refused_at(t, ip, ev("wrong device token")));
        }
        // Another reason from the same address is recorded; the same from another address too.
        assert!(a.refused_at(t0, ip, ev("no device token")));
        let other = Some("192.0.2.9".parse().expect("ip"));
        assert!(a.refused_at(t0, other, ev("no device token")));
        let t = t0 + Duration::from_secs(10);
        assert!(a.refused_at(t, ip, ev("wrong device token")));
        let events = sink.events();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].action, "osmand.token");
        assert_eq!(events[0].outcome, AuditOutcome::Refused);
        assert_eq!(events[0].device, "phone-1");
        assert_eq!(events[0].target, "192.0.2.7");
        assert_eq!(events[0].detail, "wrong device token");
        assert_eq!(events[1].detail, "no device token");
        assert_eq!(events[2].detail, "no device token");
        assert!(
            events[3]
                .detail
                .starts_with("wrong device token (and 5 more identical refusals"),
            "{}",
            events[2].detail
        );
    }

    #[test]
    fn the_console_event_budget_renews_each_utc_day() {
        let b = DailyBudget::new(10, 1_000);
        let t = 1_796_000_000 - 1_796_000_000 % 86_400 + 3_600; // 01:00 UTC
        assert_eq!(b.take("dev-1", 6, 100, t), Ok(()));
        let over = b.take("dev-1", 5, 100, t).expect_err("over the events");
        assert_eq!(over.retry_after_s, 23 * 3600);
        assert!(over.first_today);
        assert!(
            !b.take("dev-1", 5, 100, t)
                .expect_err("still over")
                .first_today
        );
        // What fits still passes; another device has its own budget.
        assert_eq!(b.take("dev-1", 4, 100, t), Ok(()));
        assert!(b.take("dev-2", 1, 1_001, t).is_err(), "bytes");
        assert_eq!(b.take("dev-2", 10, 1_000, t), Ok(()));
        // The next day: a fresh budget.
        assert_eq!(b.take("dev-1", 10, 100, t + 86_400), Ok(()));
    }

    #[test]
    fn the_connection_cap_holds_per_address_and_in_total() {
        let cap = Arc::new(ConnectionCap::new(3, 2));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let a1 = cap.take(a).expect("a1");
        let _a2 = cap.take(a).expect("a2");
        assert!(cap.take(a).is_none());
        let _b1 = cap.take(b).expect("b1");
        assert!(cap.take(b).is_none(), "total cap");
        assert_eq!(cap.refused(), 2);
        drop(a1);
        assert_eq!(cap.open(), 2);
        assert!(cap.take(b).is_some());
    }
}
