//! Sign-in on the console (issue 6): the [`Gate`] in front of [`Console`].
//!
//! The console's cache is encrypted (SQLCipher) with a random 256-bit cache key. The key is
//! never stored in the clear: the vault (`vault.json` in the data directory, [`vault`]) keeps,
//! per person who signed in here, the cache key and their TOTP secret sealed with a key
//! derived from their password (argon2id). So an offline sign-in needs the password (it opens
//! the entry) and the code (checked against the secret inside). A console with a server also
//! has the key escrowed by the server for this device, returned at every online sign-in, so a
//! person who never signed in here before can open it online.
//!
//! Rules (FBI CJIS Security Policy 5.9.5 §5.5.3, §5.6.2.2; issue 6):
//! - a code is accepted at the current 30-second step ±1, and a step once used for a person
//!   is refused again for them while this process runs (replay);
//! - 5 failed offline sign-ins (or unlocks) of one person within 15 minutes refuse their
//!   offline sign-in for 15 minutes ([`LOCKOUT_FAILURES`], [`LOCKOUT_WINDOW_S`]); the
//!   failures are kept in the vault, so a restart does not reset them;
//! - an offline sign-in needs an entry whose `offline_until` has not passed, an account the
//!   stored revocations do not list, and a device that is not revoked;
//! - 12 hours after the last full sign-in ([`REAUTH_S`]) the console locks and unlocking
//!   needs the code as well as the password; a lock before that needs only the password.
//!
//! Until someone signs in, no [`Console`] exists and every other command answers
//! [`ErrorCode::SignedOut`].

pub mod audit_outbox;
pub mod device;
pub mod server;
pub mod totp;
pub mod vault;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use outpost_domain::Clock;
use outpost_domain::access::{Actor, Role};
use outpost_domain::op_auth::OpSigner;
use outpost_domain::wire::{
    EnrollRequest, LoginRequest, LoginResponse, PROTOCOL_VERSION, PasswordChangeRequest,
    Revocations,
};
use outpost_store::CacheKey;

use crate::ipc::{
    AuthState, AuthStatus, ChangePassword, EnrollDevice, ErrorCode, KnownUser, SetupAccount,
    SignIn, SignedInUser, TotpCode, TotpEnrollment, Unlock,
};
use crate::{AppError, Console, ConsoleAccess, ConsoleOptions};

pub use audit_outbox::AuditOutbox;
pub use server::{AuthServer, DeviceIdentity, ServerError, SyncServer};
pub use vault::{KdfParams, VaultError};

use audit_outbox::Outcome;
use vault::{Entry, EntryKey, Profile, Secrets, Vault};

/// The shortest password, in characters (the server's rule too).
const MIN_PASSWORD_CHARS: usize = 12;

/// Failed offline sign-ins of one person that lock their offline sign-in.
pub const LOCKOUT_FAILURES: usize = 5;

/// The window the failures are counted in, and how long the lock lasts, seconds.
pub const LOCKOUT_WINDOW_S: i64 = 15 * 60;

/// Seconds after a full sign-in (password and code) when the console locks and needs both
/// again (CJIS 5.9.5 re-authentication).
pub const REAUTH_S: i64 = 12 * 3600;

/// What the [`Gate`] needs to know at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOptions {
    /// The data directory (vault, device identity, encrypted cache).
    pub data_dir: PathBuf,
    /// The area pack to open once signed in (`None`: the last one used).
    pub pack: Option<PathBuf>,
    /// True when the demo replay runs.
    pub demo: bool,
    /// Field laptop mode: the unit's callsign (exempt from the idle lock).
    pub field_unit: Option<String>,
    /// The sync server (`https://HOST:PORT`), if any; also remembered in the data directory.
    pub server_url: Option<String>,
    /// The agency CA certificate (PEM file) to trust for the server; copied into the data
    /// directory at enrollment.
    pub ca_file: Option<PathBuf>,
    /// Lock after this many seconds without input (`None`: never; forced `None` in field mode).
    pub idle_lock_s: Option<u32>,
    /// The login name to pre-fill on the sign-in screen (`--user`), shown as
    /// [`AuthStatus::login_hint`].
    pub login_hint: Option<String>,
}

/// What the [`Gate`] is built with besides its options: the argon2id cost of new vault
/// entries and the server client.
#[derive(Clone)]
pub struct GateConfig {
    /// argon2id parameters for entries sealed from now on (existing entries keep theirs).
    pub kdf: KdfParams,
    /// The server's sign-in calls (`None`: no server client; enrollment and online sign-in
    /// answer [`ErrorCode::Offline`]).
    pub server: Option<Arc<dyn AuthServer>>,
    /// Start the sync engine for each console a sign-in opens on an enrolled device (TLS with
    /// the device identity, the session token, revocations fed back to the Gate). Tests of
    /// the sign-in logic with a fake server turn it off.
    pub start_sync: bool,
}

impl Default for GateConfig {
    /// Production: [`KdfParams::OWASP`] and the real server client ([`SyncServer`], called
    /// only when a server is configured).
    fn default() -> Self {
        GateConfig {
            kdf: KdfParams::OWASP,
            server: Some(Arc::new(SyncServer)),
            start_sync: true,
        }
    }
}

impl std::fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateConfig")
            .field("kdf", &self.kdf)
            .field("server", &self.server.is_some())
            .field("start_sync", &self.start_sync)
            .finish()
    }
}

/// What [`Gate::on_signed_in`] calls with each newly opened console.
pub type OnSignedIn = Box<dyn Fn(&Arc<Console>) + Send + Sync>;

type SignedInListener = Arc<dyn Fn(&Arc<Console>) + Send + Sync>;

/// The sign-in state machine in front of the [`Console`]. `Send + Sync`.
pub struct Gate {
    options: GateOptions,
    clock: Arc<dyn Clock>,
    config: GateConfig,
    inner: Mutex<Inner>,
    listeners: Mutex<Vec<SignedInListener>>,
    /// The session token the sync engine reads on every request: set by an online sign-in,
    /// cleared by an offline one and by sign-out (the outbox then waits).
    token: outpost_sync::TokenSource,
    /// Revocation lists the sync engine fetched, applied at the Gate's next call (the
    /// engine's thread never takes the Gate's lock).
    fetched_revocations: Arc<Mutex<Option<Revocations>>>,
    /// The console audit outbox (sign-ins, locks, exports, refusals; [`audit_outbox`]).
    audit: Arc<AuditOutbox>,
}

struct PendingSetup {
    user: String,
    display_name: String,
    secret: String,
    key: EntryKey,
    salt_hex: String,
}

struct Session {
    profile: Profile,
    console: Arc<Console>,
    locked: bool,
    /// The last full sign-in (password and code).
    full_at: DateTime<Utc>,
    /// The server session's bearer token, for an online sign-in.
    token: Option<String>,
    /// The server said the password was chosen by an administrator: the console stays
    /// closed ([`AuthState::PasswordChange`]) until [`Gate::change_password`].
    must_change_password: bool,
}

struct Inner {
    vault: Vault,
    device: Option<(DeviceIdentity, String)>,
    pending: Option<PendingSetup>,
    session: Option<Session>,
    /// The sync engine attached to the session's console.
    sync: Option<Arc<crate::sync::SyncAttachment>>,
    /// The thread uploading the audit outbox while a session runs on an enrolled device.
    uploader: Option<Uploader>,
    /// The newest code step used per person (replay refusal, this process only).
    used_steps: HashMap<String, u64>,
    /// Failed sign-ins of names without a vault entry (not persisted).
    unknown_failures: HashMap<String, Vec<DateTime<Utc>>>,
    message: Option<String>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("data_dir", &self.options.data_dir)
            .finish_non_exhaustive()
    }
}

fn auth_failed(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::AuthFailed, message)
}

fn storage(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::Storage, message)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Until when `failures` lock sign-in at `now`: [`LOCKOUT_FAILURES`] failures within
/// [`LOCKOUT_WINDOW_S`] lock it for [`LOCKOUT_WINDOW_S`] after the last of them.
fn lockout_until(failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let window = Duration::seconds(LOCKOUT_WINDOW_S);
    let mut sorted = failures.to_vec();
    sorted.sort();
    sorted
        .windows(LOCKOUT_FAILURES)
        .filter(|w| w[LOCKOUT_FAILURES - 1] - w[0] <= window)
        .map(|w| w[LOCKOUT_FAILURES - 1] + window)
        .max()
        .filter(|until| *until > now)
}

/// The server's login-name rule (`outpost_domain::names`; fresh review S6).
fn valid_login_name(user: &str) -> bool {
    outpost_domain::names::is_login_name(user)
}

impl Gate {
    /// Reads the vault and the device identity of `options.data_dir`; opens nothing else.
    /// Production settings ([`GateConfig::default`]: OWASP argon2id, the real server client).
    ///
    /// # Errors
    /// [`ErrorCode::Storage`] when the vault is unreadable.
    pub fn open(options: GateOptions, clock: Arc<dyn Clock>) -> Result<Gate, AppError> {
        Self::open_with(options, clock, GateConfig::default())
    }

    /// As [`Gate::open`], with the argon2id cost and the server client given.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`] naming the file when the vault or the device identity is
    /// unreadable (never silently reset).
    pub fn open_with(
        options: GateOptions,
        clock: Arc<dyn Clock>,
        config: GateConfig,
    ) -> Result<Gate, AppError> {
        crate::prepare_data_dir(&options.data_dir)?;
        let vault = Vault::load(&options.data_dir).map_err(|e| storage(e.to_string()))?;
        let device = device::load(&options.data_dir).map_err(storage)?;
        let audit = Arc::new(AuditOutbox::open(&options.data_dir, Arc::clone(&clock)));
        Ok(Gate {
            options,
            clock,
            config,
            inner: Mutex::new(Inner {
                vault,
                device,
                pending: None,
                session: None,
                sync: None,
                uploader: None,
                used_steps: HashMap::new(),
                unknown_failures: HashMap::new(),
                message: None,
            }),
            listeners: Mutex::new(Vec::new()),
            token: outpost_sync::TokenSource::new(),
            fetched_revocations: Arc::new(Mutex::new(None)),
            audit,
        })
    }

    /// Registers `f`, called (after the Gate's lock is released, on the calling thread) with
    /// each [`Console`] a sign-in opens — not on an unlock, nor on a sign-in that keeps the
    /// open console (same person, role and unit).
    ///
    /// The Gate stops a console's sync engine (and waits for its thread) while holding its
    /// lock, so a [`Console::on_change`] listener, which the engine's thread runs, must not
    /// call the Gate; emitting an event for the UI is fine.
    pub fn on_signed_in(&self, f: OnSignedIn) {
        lock(&self.listeners).push(Arc::from(f));
    }

    /// Stops the sync engine and closes the console (the shell calls it on exit).
    pub fn shutdown(&self) {
        let mut inner = lock(&self.inner);
        stop_sync(&mut inner);
        inner.session = None;
    }

    /// The signed-in person's server session token, while signed in online and unlocked
    /// (for the sync engine's bearer header).
    pub fn session_token(&self) -> Option<String> {
        let mut inner = lock(&self.inner);
        self.refresh(&mut inner);
        inner
            .session
            .as_ref()
            .filter(|s| !s.locked)
            .and_then(|s| s.token.clone())
    }

    /// This device's TLS identity once enrolled, with the server URL it was enrolled with.
    pub fn device_identity(&self) -> Option<(DeviceIdentity, String)> {
        lock(&self.inner).device.clone()
    }

    fn server_url(&self, inner: &Inner) -> Option<String> {
        self.options
            .server_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| inner.device.as_ref().map(|(_, url)| url.clone()))
    }

    /// Applies revocations the sync engine fetched (and a `device_revoked` answer it got);
    /// locks a session whose full sign-in is 12 hours old.
    fn refresh(&self, inner: &mut Inner) {
        let fetched = lock(&self.fetched_revocations).take();
        if let Some(revs) = fetched {
            self.store_revocations(inner, revs);
            if let Err(e) = inner.vault.save(&self.options.data_dir) {
                tracing::error!(error = %e, "revocations not stored in the vault");
            }
        }
        // The server answered 403 device_revoked to the engine (it then cannot fetch the
        // revocation list either): this device is revoked.
        if inner
            .sync
            .as_ref()
            .is_some_and(|a| a.handle().status().state == outpost_sync::LinkState::DeviceRevoked)
        {
            self.revoke_device(inner);
        }
        let now = self.clock.now();
        if let Some(s) = inner.session.as_mut()
            && !s.locked
            && now >= s.full_at + Duration::seconds(REAUTH_S)
        {
            s.locked = true;
            let user = s.profile.user.clone();
            inner.message = Some(
                "12 hours since your sign-in: unlock with your password and a current code".into(),
            );
            self.audit.record(
                &user,
                "lock",
                "reauth",
                Outcome::Ok,
                "12 hours since the last full sign-in",
                &[],
            );
        }
    }

    fn status(&self, inner: &Inner) -> AuthStatus {
        let server_url = self.server_url(inner);
        let state = if inner.vault.device_revoked {
            AuthState::Revoked
        } else if let Some(s) = &inner.session {
            if s.locked {
                AuthState::Locked
            } else if s.must_change_password {
                AuthState::PasswordChange
            } else {
                AuthState::SignedIn
            }
        } else if server_url.is_some() && inner.device.is_none() {
            AuthState::Enroll
        } else if server_url.is_none() && inner.vault.users.is_empty() {
            AuthState::Setup
        } else {
            AuthState::SignedOut
        };
        let disabled = &inner.vault.revocations.disabled_users;
        AuthStatus {
            state,
            server_url,
            device_id: inner.device.as_ref().map(|(d, _)| d.device_id.clone()),
            known_users: inner
                .vault
                .users
                .iter()
                .filter(|e| !disabled.contains(&e.user))
                .map(|e| KnownUser {
                    user: e.user.clone(),
                    display_name: e.display_name.clone(),
                    role: e.role.as_str().to_owned(),
                    offline_until: e.offline_until,
                })
                .collect(),
            user: inner.session.as_ref().map(|s| SignedInUser {
                user: s.profile.user.clone(),
                display_name: s.profile.display_name.clone(),
                role: s.profile.role.as_str().to_owned(),
                unit_id: s.profile.unit_id.clone(),
                online: s.token.is_some(),
                reauth_at: s.full_at + Duration::seconds(REAUTH_S),
            }),
            idle_lock_s: if self.options.field_unit.is_some() {
                None
            } else {
                self.options.idle_lock_s
            },
            login_hint: self.options.login_hint.clone(),
            message: inner.message.clone(),
        }
    }

    /// Where sign-in stands.
    pub fn auth_status(&self) -> AuthStatus {
        let mut inner = lock(&self.inner);
        self.refresh(&mut inner);
        self.status(&inner)
    }

    /// Starts the first account of a console without a server: returns the TOTP secret for
    /// the authenticator app; [`Gate::confirm_setup`] finishes it.
    ///
    /// # Errors
    /// `InvalidInput` (name: 1–64 letters, digits, `.`, `-`, `_`; display name 1–100
    /// characters; password at least 12 characters), `IllegalTransition` (an account exists,
    /// or a server is configured: people come from the server then).
    pub fn setup_account(&self, args: SetupAccount) -> Result<TotpEnrollment, AppError> {
        let mut inner = lock(&self.inner);
        if self.server_url(&inner).is_some() {
            return Err(AppError::illegal(
                "this console has a server: enroll the device and sign in with a server account",
            ));
        }
        if !inner.vault.users.is_empty() || inner.vault.device_revoked {
            return Err(AppError::illegal(
                "this console already has an account; sign in with it",
            ));
        }
        let user = args.user.trim().to_owned();
        if !valid_login_name(&user) {
            return Err(AppError::invalid(format!(
                "login name {user:?}: use {}",
                outpost_domain::names::LOGIN_NAME_RULE
            )));
        }
        let display_name = args.display_name.trim().to_owned();
        let n = display_name.chars().count();
        if !(1..=100).contains(&n) {
            return Err(AppError::invalid(format!(
                "display name: 1–100 characters, this one has {n}"
            )));
        }
        let len = args.password.chars().count();
        if len < 12 {
            return Err(AppError::invalid(format!(
                "password: at least 12 characters, this one has {len}"
            )));
        }
        let secret = totp::new_secret().map_err(storage)?;
        let uri = totp::uri(&secret, &user).map_err(storage)?;
        let salt = vault::random::<16>().map_err(|e| storage(e.to_string()))?;
        let key = vault::derive(&args.password, &salt, self.config.kdf)
            .map_err(|e| storage(e.to_string()))?;
        inner.pending = Some(PendingSetup {
            user,
            display_name,
            secret: secret.clone(),
            key,
            salt_hex: vault::to_hex(&salt),
        });
        inner.message = None;
        Ok(TotpEnrollment { secret, uri })
    }

    /// Confirms the first account with a current code; creates the encrypted cache with a
    /// random key and signs the person in as this console's commander (no offline expiry).
    ///
    /// # Errors
    /// `IllegalTransition` (no [`Gate::setup_account`] before), `AuthFailed` (wrong code;
    /// the setup stays pending), `Storage`.
    pub fn confirm_setup(&self, args: TotpCode) -> Result<AuthStatus, AppError> {
        let user = lock(&self.inner).pending.as_ref().map(|p| p.user.clone());
        let r = self.confirm_setup_inner(&args);
        if let Some(user) = user {
            let secrets = [args.code.trim()];
            match &r {
                Ok(_) => self.audit.record(
                    &user,
                    "sign_in",
                    "setup",
                    Outcome::Ok,
                    "first account of this console",
                    &secrets,
                ),
                Err(e) => self.audit.record(
                    &user,
                    "sign_in_failed",
                    "setup",
                    outcome_of(e),
                    &e.message,
                    &secrets,
                ),
            }
        }
        r
    }

    fn confirm_setup_inner(&self, args: &TotpCode) -> Result<AuthStatus, AppError> {
        let now = self.clock.now();
        let (status, opened) = {
            let mut inner = lock(&self.inner);
            let Some(p) = inner.pending.as_ref() else {
                return Err(AppError::illegal(
                    "no account is being set up: start with setup_account",
                ));
            };
            let step = totp::matching_step(&p.secret, &args.code, now)
                .map_err(storage)?
                .ok_or_else(|| {
                    auth_failed(
                        "wrong code: enter the 6-digit code your authenticator app shows now \
                         for Outpost",
                    )
                })?;
            let profile = Profile {
                user: p.user.clone(),
                display_name: p.display_name.clone(),
                role: Role::Commander,
                unit_id: None,
                offline_until: None,
            };
            let secrets = Secrets {
                cache_key: CacheKey::from_bytes(
                    vault::random::<32>().map_err(|e| storage(e.to_string()))?,
                ),
                totp_secret: p.secret.clone(),
                op_key: None,
            };
            let entry = vault::seal_with(
                &profile,
                &p.key,
                self.config.kdf,
                &p.salt_hex,
                &secrets,
                now,
            )
            .map_err(|e| storage(e.to_string()))?;
            // The vault first: a cache encrypted with a key nobody kept would be lost.
            let mut next = inner.vault.clone();
            next.upsert(entry);
            next.save(&self.options.data_dir)
                .map_err(|e| storage(e.to_string()))?;
            inner.vault = next;
            let opened =
                match self.start_session(&mut inner, profile, secrets.cache_key, None, None, now) {
                    Ok(opened) => opened,
                    Err(e) => {
                        // Take the entry back so setup can be retried (e.g. after moving away a
                        // cache encrypted with a lost key).
                        inner.vault.users.clear();
                        let _ = inner.vault.save(&self.options.data_dir);
                        return Err(e);
                    }
                };
            let user = inner.pending.take().map(|p| p.user).unwrap_or_default();
            inner.used_steps.insert(user, step);
            inner.message = None;
            (self.status(&inner), opened)
        };
        self.announce(opened);
        Ok(status)
    }

    /// Enrolls this device with the server (a new key and CSR; the cache key escrowed) and
    /// signs the person in online with the session the enrollment answers with
    /// ([`EnrollResponse::session`](outpost_domain::wire::EnrollResponse::session): the server
    /// takes each code once, so a login with the enrollment's code would be refused). A server
    /// of an earlier version answers without one: then a login follows. When the sign-in is
    /// refused (an administrator's or auditor's account, or that login) the device stays
    /// enrolled and the status says why (and, for the login, to sign in with the next code).
    ///
    /// # Errors
    /// `Offline` (no answer, or no server client), `AuthFailed` (the server refused),
    /// `InvalidInput` (no CA file, bad URL), `IllegalTransition` (already enrolled),
    /// `Storage`.
    pub fn enroll_device(&self, args: EnrollDevice) -> Result<AuthStatus, AppError> {
        let now = self.clock.now();
        let Some(server) = self.config.server.clone() else {
            return Err(AppError::new(
                ErrorCode::Offline,
                "this console has no server client; it works alone",
            ));
        };
        let url = args.server_url.trim().to_owned();
        if !url.starts_with("https://") {
            return Err(AppError::invalid(format!(
                "server {url:?}: give https://HOST:PORT (sync runs over TLS only)"
            )));
        }
        {
            let inner = lock(&self.inner);
            if inner.vault.device_revoked {
                return Err(auth_failed(
                    "this device was revoked by an administrator; it cannot enroll again with \
                     this data directory",
                ));
            }
            if let Some((d, _)) = &inner.device {
                return Err(AppError::illegal(format!(
                    "this device is already enrolled as {}",
                    d.device_id
                )));
            }
        }
        let ca_path = self.options.ca_file.as_ref().ok_or_else(|| {
            AppError::invalid(
                "enrolling needs the agency CA certificate to trust the server: start Outpost \
                 with --ca FILE.pem (from `outpost-server cert init`)",
            )
        })?;
        let ca_pem = std::fs::read_to_string(ca_path).map_err(|e| {
            AppError::invalid(format!(
                "cannot read the CA certificate {}: {e}",
                ca_path.display()
            ))
        })?;
        let name = args.device_name.trim().to_owned();
        if !(1..=100).contains(&name.chars().count()) {
            return Err(AppError::invalid("device name: 1–100 characters"));
        }
        let cache_key = self.cache_key_for_enrollment(&args.user, &args.password)?;
        let origin = outpost_store::Store::open_with_key(
            &self.options.data_dir.join(crate::DB_FILE),
            Some(&cache_key),
            now,
        )?
        .origin_id();
        let (key_pem, csr_pem) = outpost_sync::account::new_key_and_csr(&name).map_err(storage)?;
        let req = EnrollRequest {
            protocol: PROTOCOL_VERSION,
            user: args.user.trim().to_owned(),
            password: args.password.clone(),
            totp: args.code.trim().to_owned(),
            device_name: name,
            origin,
            csr_pem,
            cache_key: cache_key.to_hex(),
        };
        let resp = server.enroll(&url, &ca_pem, &req).map_err(|e| match e {
            ServerError::Unreachable(m) => AppError::new(
                ErrorCode::Offline,
                format!("the server {url} cannot be reached to enroll: {m}"),
            ),
            ServerError::Refused { message, .. } => {
                auth_failed(format!("the server refused the enrollment: {message}"))
            }
        })?;
        let identity = DeviceIdentity {
            device_id: resp.device_id.clone(),
            cert_pem: resp.certificate_pem,
            key_pem,
            ca_pem: resp.ca_pem,
        };
        device::save(&self.options.data_dir, &identity, &url).map_err(storage)?;
        lock(&self.inner).device = Some((identity.clone(), url.clone()));
        let signed_in = match resp.session {
            Some(login) => {
                let user = args.user.trim().to_owned();
                let secrets = [args.password.as_str(), args.code.trim()];
                let (result, opened) = {
                    let mut inner = lock(&self.inner);
                    let r = self.online_signed_in(
                        &mut inner,
                        login,
                        &args.password,
                        &args.code,
                        &url,
                        &identity,
                        now,
                    );
                    self.sign_in_outcome(&mut inner, &user, r, &secrets)
                };
                self.announce(opened);
                result
            }
            None => self.sign_in(SignIn {
                user: args.user,
                password: args.password,
                code: args.code,
            }),
        };
        match signed_in {
            Ok(status) => Ok(status),
            Err(e) if e.code == ErrorCode::Forbidden => {
                let mut inner = lock(&self.inner);
                inner.message = Some(format!(
                    "this device is enrolled as {}; {}",
                    resp.device_id, e.message
                ));
                Ok(self.status(&inner))
            }
            Err(e) if e.code == ErrorCode::AuthFailed || e.code == ErrorCode::Offline => {
                let mut inner = lock(&self.inner);
                inner.message = Some(format!(
                    "this device is enrolled as {}; sign in with your password and the next \
                     code ({})",
                    resp.device_id, e.message
                ));
                Ok(self.status(&inner))
            }
            Err(e) => Err(e),
        }
    }

    /// The cache key to escrow at enrollment: the one of an existing encrypted cache (from
    /// the person's vault entry), else a new random key (a new cache, or a plaintext one of
    /// an earlier version, which opening with the key encrypts).
    fn cache_key_for_enrollment(&self, user: &str, password: &str) -> Result<CacheKey, AppError> {
        let db = self.options.data_dir.join(crate::DB_FILE);
        let exists = db.metadata().map(|m| m.len() > 0).unwrap_or(false);
        let plaintext = outpost_store::cipher::is_plaintext(&db)?;
        if !exists || plaintext {
            return Ok(CacheKey::from_bytes(
                vault::random::<32>().map_err(|e| storage(e.to_string()))?,
            ));
        }
        let inner = lock(&self.inner);
        let entry = inner.vault.entry(user.trim()).ok_or_else(|| {
            storage(format!(
                "{} is encrypted with a key only this console's own accounts can open, and \
                 {user:?} has none here; enroll with such an account",
                db.display()
            ))
        })?;
        let (secrets, _) = entry.open(password).map_err(vault_refusal)?;
        Ok(secrets.cache_key)
    }

    /// Signs in online when the server answers, else offline from the vault.
    ///
    /// # Errors
    /// `AuthFailed` with the reason: wrong password or code, a code already used, the offline
    /// sign-in period over, the account disabled, the device revoked, too many failures
    /// (offline sign-in refused for 15 minutes), or the server's refusal.
    pub fn sign_in(&self, args: SignIn) -> Result<AuthStatus, AppError> {
        let now = self.clock.now();
        let user = args.user.trim().to_owned();
        let secrets = [args.password.as_str(), args.code.trim()];
        let (result, opened) = {
            let mut inner = lock(&self.inner);
            self.refresh(&mut inner);
            let r = self.sign_in_locked(&mut inner, &user, &args.password, &args.code, now);
            self.sign_in_outcome(&mut inner, &user, r, &secrets)
        };
        self.announce(opened);
        result
    }

    /// Records a sign-in's outcome in the audit outbox; the status to answer and the console
    /// it opened.
    fn sign_in_outcome(
        &self,
        inner: &mut Inner,
        user: &str,
        r: Result<Option<Arc<Console>>, AppError>,
        secrets: &[&str],
    ) -> (Result<AuthStatus, AppError>, Option<Arc<Console>>) {
        match r {
            Ok(opened) => {
                let status = self.status(inner);
                let online = status.user.as_ref().is_some_and(|u| u.online);
                let detail = inner.message.clone().unwrap_or_else(|| {
                    if online {
                        "online sign-in"
                    } else {
                        "offline sign-in"
                    }
                    .into()
                });
                self.audit.record(
                    user,
                    "sign_in",
                    if online { "online" } else { "offline" },
                    Outcome::Ok,
                    &detail,
                    secrets,
                );
                (Ok(status), opened)
            }
            Err(e) => {
                self.audit.record(
                    user,
                    "sign_in_failed",
                    "",
                    outcome_of(&e),
                    &e.message,
                    secrets,
                );
                (Err(e), None)
            }
        }
    }

    fn sign_in_locked(
        &self,
        inner: &mut Inner,
        user: &str,
        password: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Console>>, AppError> {
        if inner.vault.device_revoked {
            return Err(revoked_error());
        }
        if let (Some(server), Some(url), Some((device, _))) = (
            self.config.server.clone(),
            self.server_url(inner),
            inner.device.clone(),
        ) {
            let req = LoginRequest {
                protocol: PROTOCOL_VERSION,
                user: user.to_owned(),
                password: password.to_owned(),
                totp: code.trim().to_owned(),
            };
            match server.login(&url, &device, &req) {
                Ok(resp) => {
                    return self.online_signed_in(inner, resp, password, code, &url, &device, now);
                }
                Err(ServerError::Unreachable(m)) => {
                    tracing::info!(error = %m, "server unreachable; trying an offline sign-in");
                    let opened = self.offline_sign_in(inner, user, password, code, now)?;
                    inner.message = Some(format!(
                        "signed in offline (the server cannot be reached: {m}); your changes \
                         wait in the outbox until you sign in online"
                    ));
                    return Ok(opened);
                }
                Err(ServerError::Refused { code, message }) => {
                    if code == "device_revoked" {
                        self.revoke_device(inner);
                        return Err(revoked_error());
                    }
                    inner.message = Some(message.clone());
                    return Err(auth_failed(format!(
                        "the server refused the sign-in: {message}"
                    )));
                }
            }
        }
        self.offline_sign_in(inner, user, password, code, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn online_signed_in(
        &self,
        inner: &mut Inner,
        resp: LoginResponse,
        password: &str,
        code: &str,
        url: &str,
        device: &DeviceIdentity,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Console>>, AppError> {
        if let Err(e) = console_role(&resp.user, resp.role) {
            // Nothing kept for offline use; the server session just opened is ended.
            if let Some(server) = self.config.server.clone()
                && let Err(end) = server.logout(url, device, &resp.token)
            {
                tracing::warn!(error = %end, "the refused person's server session was not ended");
            }
            inner.message = Some(e.message.clone());
            return Err(e);
        }
        let cache_key = CacheKey::from_hex(&resp.cache_key).map_err(|e| {
            storage(format!(
                "the server's cache key for this device is unusable: {e}"
            ))
        })?;
        let grace = i64::try_from(resp.offline_grace_s).unwrap_or(i64::MAX / 2);
        let profile = Profile {
            user: resp.user.clone(),
            display_name: resp.display_name.clone(),
            role: resp.role,
            unit_id: resp.unit_id.clone(),
            offline_until: Some(
                now.checked_add_signed(Duration::seconds(grace.min(3650 * 86_400)))
                    .unwrap_or(now),
            ),
        };
        // The op key of this sign-in signs the person's ops (review S2); a server from
        // before op signing sends none.
        let op_key = if resp.op_key.is_empty() {
            None
        } else {
            Some(
                OpSigner::new(&resp.user, &resp.op_key_id, &resp.op_key)
                    .map_err(|e| storage(format!("the server's op key is unusable: {e}")))?,
            )
        };
        let secrets = Secrets {
            cache_key: cache_key.clone(),
            totp_secret: resp.totp_secret.clone(),
            op_key: op_key.clone(),
        };
        let (entry, _) = vault::seal(&profile, password, self.config.kdf, &secrets, now)
            .map_err(|e| storage(e.to_string()))?;
        inner.vault.upsert(entry);
        // The code just used online is used here too.
        if let Ok(Some(step)) = totp::matching_step(&resp.totp_secret, code, now) {
            note_step(&mut inner.used_steps, &resp.user, step);
        }
        let server = self.config.server.clone();
        if let Some(server) = server {
            match server.revocations(url, device, &resp.token) {
                Ok(revs) => {
                    self.store_revocations(inner, revs);
                    if inner.vault.device_revoked {
                        return Err(revoked_error());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "revocations not fetched at sign-in"),
            }
        }
        inner
            .vault
            .save(&self.options.data_dir)
            .map_err(|e| storage(e.to_string()))?;
        if inner.vault.revocations.disabled_users.contains(&resp.user) {
            return Err(disabled_error(&resp.user));
        }
        inner.message = None;
        let opened =
            self.start_session(inner, profile, cache_key, Some(resp.token), op_key, now)?;
        if let Some(s) = inner.session.as_mut() {
            s.must_change_password = resp.must_change_password;
        }
        if resp.must_change_password {
            inner.message = Some(
                "your password was set by an administrator: choose your own password to continue"
                    .into(),
            );
        }
        Ok(opened)
    }

    fn offline_sign_in(
        &self,
        inner: &mut Inner,
        user: &str,
        password: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Console>>, AppError> {
        if inner
            .vault
            .revocations
            .disabled_users
            .iter()
            .any(|u| u == user)
        {
            return Err(disabled_error(user));
        }
        let failures = match inner.vault.entry(user) {
            Some(e) => e.failures.clone(),
            None => inner
                .unknown_failures
                .get(user)
                .cloned()
                .unwrap_or_default(),
        };
        if let Some(until) = lockout_until(&failures, now) {
            return Err(lockout_error(user, until));
        }
        let Some(entry) = inner.vault.entry(user).cloned() else {
            self.record_failure(inner, user, now);
            return Err(auth_failed(format!(
                "{user:?} cannot sign in offline here: nobody of that name signed in on this \
                 console before (it keeps the last {} people); sign in while the server can be \
                 reached",
                vault::MAX_USERS
            )));
        };
        let secrets = match entry.open(password) {
            Ok((s, _)) => s,
            Err(VaultError::WrongPassword) => {
                return Err(self.fail(inner, user, now, format!("wrong password for {user:?}")));
            }
            Err(e) => return Err(vault_refusal(e)),
        };
        if let Some(until) = entry.offline_until
            && now >= until
        {
            return Err(auth_failed(format!(
                "the offline sign-in period of {user:?} on this console ended at {} UTC; sign \
                 in while the server can be reached",
                utc_text(until)
            )));
        }
        self.check_code(inner, user, &secrets.totp_secret, code, now)?;
        if entry.offline_until.is_some() && secrets.op_key.is_none() {
            // Sealed before op signing: the server would refuse every op written now.
            return Err(auth_failed(format!(
                "{user:?} must sign in once while the server can be reached before signing in \
                 offline on this console again (this console's offline entry has no op key yet)"
            )));
        }
        if let Some(e) = inner.vault.entry_mut(user) {
            e.failures.clear();
            e.last_sign_in = now;
        }
        let _ = inner.vault.save(&self.options.data_dir);
        let profile = entry.profile();
        inner.message = None;
        self.start_session(inner, profile, secrets.cache_key, None, secrets.op_key, now)
    }

    /// Checks a code against a person's secret: current step ±1, not used before.
    fn check_code(
        &self,
        inner: &mut Inner,
        user: &str,
        secret: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        match totp::matching_step(secret, code, now).map_err(storage)? {
            None => Err(self.fail(
                inner,
                user,
                now,
                format!("wrong code for {user:?}: enter the code your authenticator shows now"),
            )),
            Some(step) if inner.used_steps.get(user).is_some_and(|used| step <= *used) => Err(self
                .fail(
                    inner,
                    user,
                    now,
                    format!(
                        "this code was already used for {user:?}; wait for the next code of \
                         your authenticator"
                    ),
                )),
            Some(step) => {
                note_step(&mut inner.used_steps, user, step);
                Ok(())
            }
        }
    }

    /// Records a failure and returns the error to give (the lockout message when this was
    /// the 5th).
    fn fail(&self, inner: &mut Inner, user: &str, now: DateTime<Utc>, why: String) -> AppError {
        let failures = self.record_failure(inner, user, now);
        match lockout_until(&failures, now) {
            Some(until) => lockout_error(user, until),
            None => {
                inner.message = Some(why.clone());
                auth_failed(why)
            }
        }
    }

    fn record_failure(
        &self,
        inner: &mut Inner,
        user: &str,
        now: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let window = Duration::seconds(LOCKOUT_WINDOW_S);
        let list = match inner.vault.entry_mut(user) {
            Some(e) => &mut e.failures,
            None => inner.unknown_failures.entry(user.to_owned()).or_default(),
        };
        // A failure matters for one window (counting) plus one more (the lock it starts).
        list.retain(|f| *f > now - window - window);
        list.push(now);
        let out = list.clone();
        if inner.vault.entry(user).is_some()
            && let Err(e) = inner.vault.save(&self.options.data_dir)
        {
            tracing::error!(error = %e, "failed sign-in not recorded in the vault");
        }
        out
    }

    /// Opens (or keeps) the console for `profile` and makes it the session.
    /// `op_key` signs the person's ops from now on (`None`: unsigned, a standalone console).
    fn start_session(
        &self,
        inner: &mut Inner,
        profile: Profile,
        cache_key: CacheKey,
        token: Option<String>,
        op_key: Option<OpSigner>,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Console>>, AppError> {
        // Every sign-in ends here (online, offline, setup, a 12-hour unlock).
        if let Err(e) = console_role(&profile.user, profile.role) {
            inner.message = Some(e.message.clone());
            return Err(e);
        }
        let same = inner.session.as_ref().is_some_and(|s| {
            s.profile.user == profile.user
                && s.profile.role == profile.role
                && s.profile.unit_id == profile.unit_id
        });
        if same && let Some(s) = inner.session.as_mut() {
            s.locked = false;
            s.full_at = now;
            s.profile = profile;
            match &token {
                Some(t) => self.token.set(t.clone()),
                None => self.token.clear(),
            }
            s.token = token;
            s.must_change_password = false;
            s.console.set_op_signer(op_key);
            self.start_uploader(inner);
            return Ok(None);
        }
        // Another person: their console replaces the open one.
        stop_sync(inner);
        inner.session = None;
        match &token {
            Some(t) => self.token.set(t.clone()),
            None => self.token.clear(),
        }
        let console = Console::open_signed_in(
            ConsoleOptions {
                pack: self.options.pack.clone(),
                data_dir: self.options.data_dir.clone(),
                demo: self.options.demo,
                user: profile.user.clone(),
            },
            Arc::clone(&self.clock),
            ConsoleAccess {
                actor: Actor {
                    user: profile.user.clone(),
                    role: profile.role,
                    unit_id: profile.unit_id.clone(),
                },
                cache_key: Some(cache_key),
            },
        )?;
        let console = Arc::new(console);
        console.set_op_signer(op_key);
        console.attach_audit(Arc::clone(&self.audit));
        inner.session = Some(Session {
            profile,
            console: Arc::clone(&console),
            locked: false,
            full_at: now,
            token,
            must_change_password: false,
        });
        self.start_sync(inner, &console);
        self.start_uploader(inner);
        Ok(Some(console))
    }

    /// Starts the sync engine for `console` on an enrolled device (a failure is logged: the
    /// console works alone, as without a server).
    fn start_sync(&self, inner: &mut Inner, console: &Arc<Console>) {
        if !self.config.start_sync {
            return;
        }
        let (Some(url), Some((device, _))) = (self.server_url(inner), inner.device.clone()) else {
            return;
        };
        let slot = Arc::clone(&self.fetched_revocations);
        let options = crate::sync::SyncOptions {
            clock: Arc::clone(&self.clock),
            tls: Some(
                outpost_sync::TlsSettings::new(device.ca_pem.clone())
                    .with_identity(device.cert_pem.clone(), device.key_pem.clone()),
            ),
            token: self.token.clone(),
            on_revocations: Some(Arc::new(move |revs: &Revocations| {
                *lock(&slot) = Some(revs.clone());
            })),
            revocations_version: Some(inner.vault.revocations.version),
            ..crate::sync::SyncOptions::default()
        };
        match crate::sync::start(console, &url, options) {
            Ok(attachment) => inner.sync = Some(attachment),
            Err(e) => {
                tracing::error!(server = %url, error = %e.message, "sync not started; working alone");
            }
        }
    }

    /// Starts the audit uploader for the session on an enrolled device (once; it uploads
    /// whenever the session token is set, i.e. after an online sign-in).
    fn start_uploader(&self, inner: &mut Inner) {
        if inner.uploader.is_some() || !self.config.start_sync {
            return;
        }
        let (Some(server), Some(url), Some((device, _)), Some(user)) = (
            self.config.server.clone(),
            self.server_url(inner),
            inner.device.clone(),
            inner.session.as_ref().map(|s| s.profile.user.clone()),
        ) else {
            return;
        };
        inner.uploader = Uploader::start(
            Arc::clone(&self.audit),
            server,
            url,
            device,
            self.token.clone(),
            user,
        );
    }

    /// The console audit outbox of this data directory.
    pub fn audit_outbox(&self) -> &Arc<AuditOutbox> {
        &self.audit
    }

    /// Uploads the audit outbox now (the uploader thread does it by itself after an online
    /// sign-in and whenever an event is recorded); returns how many events the server took.
    ///
    /// # Errors
    /// `Offline` when there is no online session (or no answer), `AuthFailed` when the
    /// server refused.
    pub fn flush_audit(&self) -> Result<usize, AppError> {
        let (server, url, device, user) = {
            let inner = lock(&self.inner);
            (
                self.config.server.clone(),
                self.server_url(&inner),
                inner.device.clone(),
                inner.session.as_ref().map(|s| s.profile.user.clone()),
            )
        };
        let offline = || AppError::new(ErrorCode::Offline, "no online session to upload with");
        let (Some(server), Some(url), Some((device, _)), Some(user), Some(token)) =
            (server, url, device, user, self.token.get())
        else {
            return Err(offline());
        };
        let send = |req: &outpost_domain::wire::AuditEventsRequest| {
            server.audit_events(&url, &device, &token, req)
        };
        self.audit.upload(&user, &send).map_err(|e| match e {
            ServerError::Unreachable(m) => AppError::new(ErrorCode::Offline, m),
            ServerError::Refused { message, .. } => auth_failed(message),
        })
    }

    fn announce(&self, opened: Option<Arc<Console>>) {
        if let Some(console) = opened {
            let listeners: Vec<SignedInListener> = lock(&self.listeners).clone();
            for f in listeners {
                f(&console);
            }
        }
    }

    /// Stores what the server revoked and honours it: a disabled account's vault entry is
    /// deleted (and its open session ended); when this device is revoked, every entry and
    /// the device key are deleted and nothing opens any more. The sync engine calls this
    /// with each list it fetches.
    ///
    /// # Errors
    /// `Storage` when the vault cannot be written.
    pub fn apply_revocations(&self, revs: Revocations) -> Result<AuthStatus, AppError> {
        let mut inner = lock(&self.inner);
        self.store_revocations(&mut inner, revs);
        inner
            .vault
            .save(&self.options.data_dir)
            .map_err(|e| storage(e.to_string()))?;
        Ok(self.status(&inner))
    }

    fn store_revocations(&self, inner: &mut Inner, revs: Revocations) {
        if revs.version < inner.vault.revocations.version {
            return;
        }
        let disabled = revs.disabled_users.clone();
        inner.vault.users.retain(|e| !disabled.contains(&e.user));
        if inner
            .session
            .as_ref()
            .is_some_and(|s| disabled.contains(&s.profile.user))
        {
            stop_sync(inner);
            self.token.clear();
            inner.session = None;
            inner.message = Some("your account was disabled by an administrator".into());
        }
        let own = inner.device.as_ref().map(|(d, _)| d.device_id.clone());
        let revoked = own.is_some_and(|id| revs.revoked_devices.contains(&id));
        inner.vault.revocations = vault::Revoked {
            version: revs.version,
            revoked_devices: revs.revoked_devices,
            disabled_users: revs.disabled_users,
        };
        if revoked {
            self.revoke_device(inner);
        }
    }

    /// This device was revoked: forget every vault entry and the device key; end the session.
    fn revoke_device(&self, inner: &mut Inner) {
        stop_sync(inner);
        self.token.clear();
        inner.vault.users.clear();
        inner.vault.device_revoked = true;
        inner.session = None;
        inner.pending = None;
        if let Err(e) = device::forget(&self.options.data_dir) {
            tracing::error!(error = %e, "the revoked device's key could not be deleted");
        }
        inner.device = None;
        if let Err(e) = inner.vault.save(&self.options.data_dir) {
            tracing::error!(error = %e, "the revoked device's vault could not be cleared");
        }
        inner.message = Some(revoked_error().message);
    }

    /// Unlocks for the same person: the password, and a current code when the full sign-in
    /// is 12 hours old (which is then a full sign-in again, online when the server answers).
    ///
    /// # Errors
    /// `IllegalTransition` (not locked), `AuthFailed` (wrong password or code, code missing
    /// after 12 hours, locked out, account disabled).
    pub fn unlock(&self, args: Unlock) -> Result<AuthStatus, AppError> {
        let now = self.clock.now();
        let secrets = [
            args.password.as_str(),
            args.code.as_deref().unwrap_or("").trim(),
        ];
        let (result, opened) = {
            let mut inner = lock(&self.inner);
            self.refresh(&mut inner);
            let user = inner.session.as_ref().map(|s| s.profile.user.clone());
            let r = self.unlock_locked(&mut inner, &args, now);
            let user = user.unwrap_or_else(|| "-".into());
            match r {
                Ok(opened) => {
                    self.audit
                        .record(&user, "unlock", "", Outcome::Ok, "", &secrets);
                    (Ok(self.status(&inner)), opened)
                }
                Err(e) => {
                    self.audit.record(
                        &user,
                        "unlock_failed",
                        "",
                        outcome_of(&e),
                        &e.message,
                        &secrets,
                    );
                    (Err(e), None)
                }
            }
        };
        self.announce(opened);
        result
    }

    fn unlock_locked(
        &self,
        inner: &mut Inner,
        args: &Unlock,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<Console>>, AppError> {
        let Some(s) = inner.session.as_ref() else {
            return Err(AppError::new(
                ErrorCode::SignedOut,
                "nobody is signed in: sign in instead",
            ));
        };
        if !s.locked {
            return Err(AppError::illegal("the console is not locked"));
        }
        let user = s.profile.user.clone();
        let full_due = now >= s.full_at + Duration::seconds(REAUTH_S);
        if full_due {
            let Some(code) = args.code.as_deref().filter(|c| !c.trim().is_empty()) else {
                return Err(auth_failed(
                    "12 hours since your sign-in: enter a current code as well as your password",
                ));
            };
            return self.sign_in_locked(inner, &user, &args.password, code, now);
        }
        if inner.vault.revocations.disabled_users.contains(&user) {
            return Err(disabled_error(&user));
        }
        let entry: Entry = inner.vault.entry(&user).cloned().ok_or_else(|| {
            auth_failed(format!(
                "{user:?} has no sign-in data on this console any more"
            ))
        })?;
        if let Some(until) = lockout_until(&entry.failures, now) {
            return Err(lockout_error(&user, until));
        }
        match entry.open(&args.password) {
            Ok(_) => {}
            Err(VaultError::WrongPassword) => {
                return Err(self.fail(inner, &user, now, format!("wrong password for {user:?}")));
            }
            Err(e) => return Err(vault_refusal(e)),
        }
        if let Some(e) = inner.vault.entry_mut(&user)
            && !e.failures.is_empty()
        {
            e.failures.clear();
            let _ = inner.vault.save(&self.options.data_dir);
        }
        if let Some(s) = inner.session.as_mut() {
            s.locked = false;
        }
        inner.message = None;
        Ok(None)
    }

    /// The signed-in (unlocked) person changes their password. With a server (an enrolled
    /// device) it is online only: the server checks the old password and the code (counted
    /// like a sign-in) and ends the person's other sessions. Without one (the first-run local
    /// account) the old password and the code are checked here (failures counted like an
    /// offline sign-in). Either way the person's vault entry is then re-sealed under the new
    /// password (fresh salt and nonce; the vault file is replaced atomically), so the new
    /// password signs in offline and the old one no longer does. Clears
    /// [`AuthState::PasswordChange`].
    ///
    /// # Errors
    /// `SignedOut` (nobody signed in, or locked), `InvalidInput` (the new password: at least
    /// 12 characters, not only spaces, not the old one), `Offline` (a console with a server
    /// that cannot reach it, or signed in offline), `AuthFailed` (wrong old password or code,
    /// the server's refusal with its message), `Storage`.
    pub fn change_password(&self, args: ChangePassword) -> Result<AuthStatus, AppError> {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        self.refresh(&mut inner);
        let Some(s) = inner.session.as_ref().filter(|s| !s.locked) else {
            return Err(AppError::new(
                ErrorCode::SignedOut,
                "sign in (or unlock) first to change your password",
            ));
        };
        let user = s.profile.user.clone();
        let token = s.token.clone();
        let new = args.new_password.as_str();
        if new.chars().count() < MIN_PASSWORD_CHARS || new.trim().is_empty() {
            return Err(AppError::invalid(format!(
                "new password: at least {MIN_PASSWORD_CHARS} characters, not only spaces"
            )));
        }
        if new == args.old_password {
            return Err(AppError::invalid(
                "new password: the same as the current one; choose a new one",
            ));
        }
        let code = args.code.trim();
        let entry: Entry = inner.vault.entry(&user).cloned().ok_or_else(|| {
            auth_failed(format!(
                "{user:?} has no sign-in data on this console any more; sign in again"
            ))
        })?;
        let server = match (
            self.config.server.clone(),
            self.server_url(&inner),
            inner.device.clone(),
        ) {
            (Some(server), Some(url), Some((device, _))) => Some((server, url, device)),
            _ => None,
        };
        let secrets =
            if let Some((server, url, device)) = server {
                let Some(token) = token else {
                    return Err(AppError::new(
                        ErrorCode::Offline,
                        "you signed in offline: a password can be changed only while the server \
                     can be reached (sign in online, then change it)",
                    ));
                };
                let req = PasswordChangeRequest {
                    protocol: PROTOCOL_VERSION,
                    old_password: args.old_password.clone(),
                    new_password: args.new_password.clone(),
                    totp: code.to_owned(),
                };
                match server.change_password(&url, &device, &token, &req) {
                    Ok(()) => {}
                    Err(ServerError::Unreachable(m)) => {
                        return Err(AppError::new(
                            ErrorCode::Offline,
                            format!(
                                "the server cannot be reached ({m}): your password is unchanged; \
                             try again when it answers"
                            ),
                        ));
                    }
                    Err(ServerError::Refused { message, .. }) => {
                        return Err(auth_failed(format!(
                            "the server refused the password change: {message}"
                        )));
                    }
                }
                let secrets = entry.open(&args.old_password).map(|(s, _)| s).map_err(|e| {
                storage(format!(
                    "the server changed your password, but this console's offline entry did \
                     not open with the old one ({e}); sign out and sign in online with the new \
                     password"
                ))
            })?;
                // The code the server just took is spent here too.
                if let Ok(Some(step)) = totp::matching_step(&secrets.totp_secret, code, now) {
                    note_step(&mut inner.used_steps, &user, step);
                }
                secrets
            } else {
                if let Some(until) = lockout_until(&entry.failures, now) {
                    return Err(lockout_error(&user, until));
                }
                let secrets = match entry.open(&args.old_password) {
                    Ok((secrets, _)) => secrets,
                    Err(VaultError::WrongPassword) => {
                        return Err(self.fail(
                            &mut inner,
                            &user,
                            now,
                            format!("wrong current password for {user:?}"),
                        ));
                    }
                    Err(e) => return Err(vault_refusal(e)),
                };
                self.check_code(&mut inner, &user, &secrets.totp_secret, code, now)?;
                secrets
            };
        let (mut sealed, _) = vault::seal(&entry.profile(), new, self.config.kdf, &secrets, now)
            .map_err(|e| storage(e.to_string()))?;
        sealed.last_sign_in = entry.last_sign_in;
        inner.vault.upsert(sealed);
        inner
            .vault
            .save(&self.options.data_dir)
            .map_err(|e| storage(e.to_string()))?;
        if let Some(s) = inner.session.as_mut() {
            s.must_change_password = false;
        }
        inner.message = Some("password changed".into());
        Ok(self.status(&inner))
    }

    /// Locks the console (idle timer or the person). The console stays open underneath
    /// (sync and field GPS keep running); [`Gate::console`] answers `SignedOut` until unlocked.
    pub fn lock(&self) -> AuthStatus {
        let mut inner = lock(&self.inner);
        self.refresh(&mut inner);
        if let Some(s) = inner.session.as_mut()
            && !s.locked
        {
            s.locked = true;
            let user = s.profile.user.clone();
            self.audit.record(&user, "lock", "", Outcome::Ok, "", &[]);
        }
        self.status(&inner)
    }

    /// Signs the person out (ending their server session when online, best effort) and
    /// closes the console.
    pub fn sign_out(&self) -> AuthStatus {
        let mut inner = lock(&self.inner);
        stop_sync(&mut inner);
        self.token.clear();
        let session = inner.session.take();
        if let Some(s) = &session {
            let how = if s.token.is_some() {
                "online"
            } else {
                "offline"
            };
            self.audit
                .record(&s.profile.user, "sign_out", how, Outcome::Ok, "", &[]);
        }
        if let Some(s) = session
            && let (Some(token), Some(server), Some(url), Some((device, _))) = (
                s.token,
                self.config.server.clone(),
                self.server_url(&inner),
                inner.device.clone(),
            )
            && let Err(e) = server.logout(&url, &device, &token)
        {
            tracing::warn!(error = %e, "the server session was not ended");
        }
        inner.message = None;
        self.status(&inner)
    }

    /// The console, when someone is signed in and it is not locked.
    ///
    /// # Errors
    /// `SignedOut` (nobody signed in, locked, or 12 hours since the sign-in).
    pub fn console(&self) -> Result<Arc<Console>, AppError> {
        let mut inner = lock(&self.inner);
        self.refresh(&mut inner);
        match &inner.session {
            Some(s) if !s.locked && s.must_change_password => Err(AppError::new(
                ErrorCode::SignedOut,
                "your password was set by an administrator: change it to open the console",
            )),
            Some(s) if !s.locked => Ok(Arc::clone(&s.console)),
            Some(_) => Err(AppError::new(
                ErrorCode::SignedOut,
                "the console is locked: unlock it to continue",
            )),
            None => Err(AppError::new(ErrorCode::SignedOut, "nobody is signed in")),
        }
    }
}

/// Stops the attached sync engine and the audit uploader, if any (waits for their threads).
fn stop_sync(inner: &mut Inner) {
    if let Some(sync) = inner.sync.take() {
        sync.shutdown();
    }
    if let Some(up) = inner.uploader.take() {
        up.shutdown();
    }
}

/// How a refusal is recorded: `refused` for a rule (wrong credentials, a role that may
/// not), `failed` otherwise.
fn outcome_of(e: &AppError) -> Outcome {
    match e.code {
        ErrorCode::AuthFailed | ErrorCode::Forbidden | ErrorCode::SignedOut => Outcome::Refused,
        _ => Outcome::Failed,
    }
}

/// How long the uploader waits between attempts when nothing new is recorded.
const UPLOAD_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// The thread uploading the audit outbox whenever the Gate holds a session token.
struct Uploader {
    stop: Arc<std::sync::atomic::AtomicBool>,
    outbox: Arc<AuditOutbox>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Uploader {
    fn start(
        outbox: Arc<AuditOutbox>,
        server: Arc<dyn AuthServer>,
        url: String,
        device: DeviceIdentity,
        token: outpost_sync::TokenSource,
        user: String,
    ) -> Option<Uploader> {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop2, outbox2) = (Arc::clone(&stop), Arc::clone(&outbox));
        let thread = std::thread::Builder::new()
            .name("audit-upload".into())
            .spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    if let Some(tok) = token.get() {
                        let send = |req: &outpost_domain::wire::AuditEventsRequest| {
                            server.audit_events(&url, &device, &tok, req)
                        };
                        if let Err(e) = outbox2.upload(&user, &send) {
                            tracing::warn!(error = %e, "audit events not uploaded yet");
                        }
                    }
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    outbox2.wait(UPLOAD_RETRY);
                }
            });
        match thread {
            Ok(t) => Some(Uploader {
                stop,
                outbox,
                thread: Some(t),
            }),
            Err(e) => {
                tracing::error!(error = %e, "the audit uploader did not start");
                None
            }
        }
    }

    /// Stops the thread and waits for it (an upload in flight ends first: at most the
    /// client's request timeout).
    fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Uploader {
    /// A Gate dropped without [`Gate::shutdown`] stops its uploader too.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.outbox.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn note_step(used: &mut HashMap<String, u64>, user: &str, step: u64) {
    let e = used.entry(user.to_owned()).or_insert(step);
    *e = (*e).max(step);
}

/// The console's picture is for the roles that work with it: the server refuses
/// administrators and auditors the picture (`access::check_endpoint`), so the console does
/// not open it for them either (MLPS 2.0 level 3: separate administrator and audit roles).
///
/// # Errors
/// `Forbidden` naming the role and the server's tools they use instead.
fn console_role(user: &str, role: Role) -> Result<(), AppError> {
    match role {
        Role::Administrator | Role::Auditor => Err(AppError::new(
            ErrorCode::Forbidden,
            format!(
                "{role} {user:?} cannot sign in on a console: administrators and auditors use \
                 the server's tools: `outpost-server user …`, `outpost-server audit …`"
            ),
        )),
        _ => Ok(()),
    }
}

fn revoked_error() -> AppError {
    auth_failed(
        "this device was revoked by an administrator: its sign-in data and device key were \
         deleted and nothing opens here any more",
    )
}

fn disabled_error(user: &str) -> AppError {
    auth_failed(format!(
        "the account {user:?} was disabled by an administrator; this console refuses its sign-in"
    ))
}

fn lockout_error(user: &str, until: DateTime<Utc>) -> AppError {
    auth_failed(format!(
        "too many failed sign-ins for {user:?} on this console ({LOCKOUT_FAILURES} within 15 \
         minutes): offline sign-in is refused for 15 minutes, until {} UTC",
        utc_text(until)
    ))
}

fn vault_refusal(e: VaultError) -> AppError {
    match e {
        VaultError::WrongPassword => auth_failed("wrong password"),
        VaultError::Altered(_) => auth_failed(e.to_string()),
        VaultError::File(m) => storage(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_within_15_minutes_lock_for_15_minutes_after_the_fifth() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default();
        let four: Vec<_> = [0, 60, 120, 180].map(t).to_vec();
        assert_eq!(lockout_until(&four, t(200)), None);
        let mut five = four.clone();
        five.push(t(240));
        assert_eq!(lockout_until(&five, t(241)), Some(t(240 + 900)));
        assert_eq!(lockout_until(&five, t(240 + 899)), Some(t(240 + 900)));
        assert_eq!(lockout_until(&five, t(240 + 900)), None);
        // Spread over more than 15 minutes: no lock.
        let spread: Vec<_> = [0, 300, 600, 900, 901].map(t).to_vec();
        assert_eq!(lockout_until(&spread, t(902)), None);
    }
}
