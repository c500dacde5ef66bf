//! Security of the server (issue 6): accounts and sign-in, the agency PKI and TLS serving,
//! the audit trail, and the enforcement of who may do what.
//!
//! - [`accounts`]: `security.db` (accounts, sessions, devices, grants, device tokens,
//!   revocations), passwords (argon2id), TOTP, lockout;
//! - [`audit`]: the tamper-evident audit trail (`audit.db`, a SHA-256 hash chain), `audit verify`;
//! - [`pki`]: the agency CA and server certificate (`cert init`), signing device CSRs;
//! - [`tls`]: the rustls server configuration, the TLS serving loop, [`tls::PeerDevice`].
//!
//! [`Security`] ties them together for the HTTP layer: enrollment, login, logout, the
//! authentication of every other request, the authorization of each pushed op
//! ([`PushAuth`], a [`crate::service::PushGuard`]) and the audit records of all of it.
//! Rules: `outpost_domain::access` (what each role may do), CJIS 5.9.5 §5.5.3 (lockout),
//! §5.6.2.2 (multi-factor), §5.4 (audit).

pub mod accounts;
pub mod audit;
pub mod console_audit;
pub mod epoch;
pub mod guards;
pub mod pki;
pub mod tls;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use outpost_domain::access::{self, Actor, Endpoint};
use outpost_domain::clock::{Clock, SystemClock};
use outpost_domain::op::{Lane, OpEnvelope};
use outpost_domain::op_auth;
use outpost_domain::wire::{
    EnrollRequest, EnrollResponse, LoginRequest, LoginResponse, Outcome, PROTOCOL_VERSION,
    PushRequest, PushResponse, Revocations,
};

pub use accounts::{
    AccountInfo, Accounts, AuthError, CreatedAccount, DeviceInfo, GrantWindow, NewAccount,
    PasswordParams, SessionInfo,
};
pub use audit::{AuditEvent, AuditOutcome};

/// Where audit events go. [`audit::AuditLog`] is the real one; [`MemoryAudit`] keeps them
/// in memory (tests). Recording never fails a request: a sink logs its own write errors.
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: AuditEvent);
    /// Records several events at once (one transaction where the sink has them).
    fn record_many(&self, events: Vec<AuditEvent>) {
        for e in events {
            self.record(e);
        }
    }
}

impl AuditSink for audit::AuditLog {
    fn record(&self, event: AuditEvent) {
        // A failure is logged (once a minute) and shown in `GET /v1/health` by the log.
        let _ = audit::AuditLog::record(self, event);
    }

    fn record_many(&self, events: Vec<AuditEvent>) {
        if events.is_empty() {
            return;
        }
        let _ = audit::AuditLog::record_many(self, &events);
    }
}

/// An [`AuditSink`] that keeps events in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryAudit(Mutex<Vec<AuditEvent>>);

impl MemoryAudit {
    /// Every event recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

/// The default offline grace: 72 hours (`serve --offline-grace-h`).
pub const DEFAULT_OFFLINE_GRACE_H: u64 = 72;

/// How long a device certificate is valid, days.
pub const DEVICE_CERT_DAYS: u32 = 365;

/// How the security layer is set up.
#[derive(Clone)]
pub struct SecurityConfig {
    /// argon2id costs of new password hashes (OWASP by default).
    pub password: PasswordParams,
    /// How long after an online login a person may sign in offline on that device and
    /// have ops written there accepted, seconds (default 72 h).
    pub offline_grace_s: u64,
    /// "Now" for sessions, lockout, TOTP and grants (the system clock by default).
    pub clock: Arc<dyn Clock>,
    /// Validity of device certificates, days.
    pub device_cert_days: u32,
    /// How long audit records are kept (`serve --audit-retention-days`; at least a year).
    pub audit_retention: audit::Retention,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("password", &self.password)
            .field("offline_grace_s", &self.offline_grace_s)
            .field("device_cert_days", &self.device_cert_days)
            .field("audit_retention", &self.audit_retention)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SecurityConfig {
    fn eq(&self, other: &Self) -> bool {
        self.password == other.password
            && self.offline_grace_s == other.offline_grace_s
            && self.device_cert_days == other.device_cert_days
            && self.audit_retention == other.audit_retention
            && Arc::ptr_eq(&self.clock, &other.clock)
    }
}

impl Eq for SecurityConfig {}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            password: PasswordParams::default(),
            offline_grace_s: DEFAULT_OFFLINE_GRACE_H * 3600,
            clock: Arc::new(SystemClock),
            device_cert_days: DEVICE_CERT_DAYS,
            audit_retention: audit::Retention::default(),
        }
    }
}

impl SecurityConfig {
    /// The configuration of tests: cheap argon2 parameters
    /// ([`PasswordParams::cheap_for_tests`]) and the given clock.
    pub fn for_tests(clock: Arc<dyn Clock>) -> SecurityConfig {
        SecurityConfig {
            password: PasswordParams::cheap_for_tests(),
            clock,
            ..SecurityConfig::default()
        }
    }
}

/// The security state of a running server.
pub struct Security {
    accounts: Accounts,
    pki: Option<pki::Pki>,
    audit: Arc<dyn AuditSink>,
    audit_log: Option<Arc<audit::AuditLog>>,
    config: SecurityConfig,
    /// The data directory: enrollment reads the ingest gateway's origin file there.
    data_dir: std::path::PathBuf,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("accounts", &self.accounts)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A request that passed the auth layer: who, on which device. Put into the request's
/// extensions by the auth layer of [`crate::http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub SessionInfo);

impl Security {
    /// Opens the security state of `data_dir`: `security.db`, `audit.db` and, when
    /// `DIR/tls/` exists, the agency PKI (without it enrollment is refused).
    ///
    /// # Errors
    /// [`AuthError::Storage`] naming the file that cannot be opened.
    pub fn open(data_dir: &Path, config: SecurityConfig) -> Result<Security, AuthError> {
        let accounts = Accounts::open(data_dir, config.password, config.clock.clone())?;
        let pki = if pki::exists(data_dir) {
            Some(pki::Pki::load(data_dir).map_err(|e| AuthError::Storage(e.to_string()))?)
        } else {
            None
        };
        let log = Arc::new(
            audit::AuditLog::open_with(data_dir, config.clock.clone(), audit::Zone::Local)
                .map_err(|e| AuthError::Storage(e.to_string()))?,
        );
        Ok(Security {
            accounts,
            pki,
            audit: log.clone(),
            audit_log: Some(log),
            config,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The same security state with another audit sink (tests).
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Security {
        self.audit = sink;
        self.audit_log = None;
        self
    }

    /// The accounts database.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The audit trail (`GET /v1/audit`), when it is the real one.
    pub fn audit_log(&self) -> Option<&Arc<audit::AuditLog>> {
        self.audit_log.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &SecurityConfig {
        &self.config
    }

    /// Records an audit event.
    pub fn audit(&self, event: AuditEvent) {
        self.audit.record(event);
    }

    /// `POST /v1/enroll`: checks the person's credentials (a failure counts towards the
    /// lockout), signs the device's CSR with the agency CA, binds the device to the
    /// console's origin and escrows its cache key. Audited (`enroll`). Then starts the
    /// person's session on the new device with its offline grant, as a login does
    /// ([`EnrollResponse::session`]; audited as `login`), because the enrollment used the
    /// code's step and a login right after would need the next code. A session that cannot
    /// be stored leaves the enrollment done and `session` `None` (the console then logs in).
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (protocol, device name, cache key, origin, CSR),
    /// [`AuthError::Unauthenticated`], [`AuthError::LockedOut`], [`AuthError::Conflict`]
    /// (origin enrolled, or the gateway's), [`AuthError::Storage`] (also: no PKI in the data
    /// directory).
    pub fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, AuthError> {
        self.enroll_checked(req, &|_| Ok(false))
    }

    /// [`Security::enroll`] that also refuses (409, audited) an origin that already has ops
    /// in the server's log (`origin_has_ops`, asked of the sync service) unless the same
    /// account enrolled a device of that origin before (the same installation enrolling
    /// again), and always the ingest gateway's origin: a console enrolled with another
    /// installation's origin would push into that origin's lanes, and its parked ops would
    /// move their high-water marks under the real owner (security review S4). `POST
    /// /v1/enroll` calls this one.
    ///
    /// # Errors
    /// As [`Security::enroll`]; [`AuthError::Storage`] when `origin_has_ops` fails.
    pub fn enroll_checked(
        &self,
        req: &EnrollRequest,
        origin_has_ops: &dyn Fn(Uuid) -> Result<bool, String>,
    ) -> Result<EnrollResponse, AuthError> {
        self.enroll_from(req, None, origin_has_ops)
    }

    /// [`Security::enroll_checked`] of a request from the network address `client` (the
    /// TLS connection's peer, IP:port): the `enroll` record, and the `login` record of the
    /// session at enrollment, end their detail with `from IP:port` (fresh review S3), the
    /// refused ones too. `None` (in-process callers) adds nothing. `POST /v1/enroll` calls
    /// this one.
    ///
    /// # Errors
    /// As [`Security::enroll_checked`].
    pub fn enroll_from(
        &self,
        req: &EnrollRequest,
        client: Option<std::net::SocketAddr>,
        origin_has_ops: &dyn Fn(Uuid) -> Result<bool, String>,
    ) -> Result<EnrollResponse, AuthError> {
        let r = self.enroll_inner(req, origin_has_ops);
        let event = AuditEvent::new("enroll", outcome_of(&r))
            .user(req.user.as_str())
            .target(format!("origin {}", req.origin));
        self.audit(match &r {
            Ok((resp, _)) => event.device(resp.device_id.as_str()).detail(from_client(
                format!("device {:?}", req.device_name.trim()),
                client,
            )),
            Err(e) => event.detail(from_client(e.to_string(), client)),
        });
        let (mut resp, account) = r?;
        resp.session = self.session_at_enrollment(account, &resp.device_id, &req.cache_key, client);
        Ok(resp)
    }

    /// Refuses `origin` for a new device of `user`: the ingest gateway's origin
    /// (`DIR/gateway-origin`), and an origin with ops in the log unless `user` enrolled a
    /// device of that origin before ([`Security::enroll_checked`]).
    fn check_origin_free(
        &self,
        origin: Uuid,
        user: &str,
        origin_has_ops: &dyn Fn(Uuid) -> Result<bool, String>,
    ) -> Result<(), AuthError> {
        let gateway_file = self.data_dir.join(crate::ingest::GATEWAY_ORIGIN_FILE);
        let gateway = std::fs::read_to_string(&gateway_file)
            .ok()
            .and_then(|t| Uuid::parse_str(t.trim()).ok());
        if gateway == Some(origin) {
            return Err(AuthError::Conflict(format!(
                "origin: {origin} is the origin of this server's device ingest gateway; a \
                 console enrolls with its own installation origin"
            )));
        }
        if !origin_has_ops(origin).map_err(AuthError::Storage)? {
            return Ok(());
        }
        let again = self
            .accounts
            .list_devices()?
            .iter()
            .any(|d| d.origin == origin && d.enrolled_by == user);
        if again {
            return Ok(());
        }
        Err(AuthError::Conflict(format!(
            "origin: {origin} already has ops in the server's log from an installation that \
             {user:?} never enrolled; a console enrolls only with its own origin (a copied \
             or restored console data directory needs a new installation origin)"
        )))
    }

    /// The session [`Security::enroll`] answers with: bound to the new device, a grant
    /// recorded, audited as a `login` (detail "at enrollment").
    fn session_at_enrollment(
        &self,
        account: accounts::VerifiedAccount,
        device_id: &str,
        cache_key: &str,
        client: Option<std::net::SocketAddr>,
    ) -> Option<LoginResponse> {
        let event = AuditEvent::new("login", AuditOutcome::Ok)
            .user(account.name.as_str())
            .device(device_id);
        let grace = self.config.offline_grace_s;
        let r = self
            .accounts
            .start_session(&account.name, device_id, grace)
            .map(|session| LoginResponse {
                token: session.token,
                expires_at: session.expires_at,
                user: account.name,
                display_name: account.display_name,
                role: account.role,
                unit_id: account.unit_id,
                totp_secret: console_secret(account.role, account.totp_secret),
                offline_grace_s: grace,
                cache_key: console_secret(account.role, cache_key.trim().to_ascii_lowercase()),
                op_key: session.op_key,
                op_key_id: session.op_key_id,
                must_change_password: account.must_change_password,
            });
        let event = AuditEvent {
            outcome: outcome_of(&r),
            ..event
        };
        match r {
            Ok(resp) => {
                self.audit(event.detail(from_client("at enrollment".into(), client)));
                Some(resp)
            }
            Err(e) => {
                tracing::error!(error = %e, "no session at enrollment; the console logs in");
                self.audit(event.detail(from_client(
                    format!("at enrollment: {}: {e}", e.code()),
                    client,
                )));
                None
            }
        }
    }

    fn enroll_inner(
        &self,
        req: &EnrollRequest,
        origin_has_ops: &dyn Fn(Uuid) -> Result<bool, String>,
    ) -> Result<(EnrollResponse, accounts::VerifiedAccount), AuthError> {
        check_protocol(req.protocol)?;
        let name = req.device_name.trim();
        // No control, invisible, bidi-override or non-characters (fresh review S12).
        outpost_domain::names::check_label("device_name", name, 100)
            .map_err(AuthError::BadRequest)?;
        let key = req.cache_key.trim();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::BadRequest(
                "cache_key: 64 hex digits (a 256-bit key) expected".into(),
            ));
        }
        if req.origin.is_nil() {
            return Err(AuthError::BadRequest(
                "origin: the nil UUID is not an installation origin".into(),
            ));
        }
        let Some(pki) = &self.pki else {
            return Err(AuthError::Storage(
                "this server has no agency CA; run `outpost-server cert init`".into(),
            ));
        };
        let account = self
            .accounts
            .verify_credentials(&req.user, &req.password, &req.totp)?;
        self.check_origin_free(req.origin, &account.name, origin_has_ops)?;
        let device_id = Accounts::new_device_id();
        let signed = pki
            .sign_device_csr(&req.csr_pem, &device_id, self.config.device_cert_days)
            .map_err(|e| AuthError::BadRequest(format!("csr_pem: {e}")))?;
        self.accounts.add_device(
            &device_id,
            name,
            req.origin,
            &signed.serial_hex,
            &account.name,
            &key.to_ascii_lowercase(),
        )?;
        let not_after = DateTime::<Utc>::from_timestamp(signed.not_after.unix_timestamp(), 0)
            .unwrap_or_default();
        let resp = EnrollResponse {
            device_id,
            certificate_pem: signed.cert_pem,
            ca_pem: pki.ca_pem().to_string(),
            not_after,
            session: None,
        };
        Ok((resp, account))
    }

    /// `POST /v1/login` from the device `peer`: password and TOTP (a failure counts towards
    /// the lockout), then a session bound to the device and a grant for offline use.
    /// Audited (`login`).
    ///
    /// # Errors
    /// [`AuthError::CertificateRequired`], [`AuthError::DeviceRevoked`],
    /// [`AuthError::BadRequest`] (protocol), [`AuthError::Unauthenticated`],
    /// [`AuthError::LockedOut`], [`AuthError::Storage`].
    pub fn login(
        &self,
        peer: Option<&tls::PeerDevice>,
        req: &LoginRequest,
    ) -> Result<LoginResponse, AuthError> {
        self.login_from(peer, None, req)
    }

    /// [`Security::login`] of a request from the network address `client` (the TLS
    /// connection's peer, IP:port): the `login` record's detail ends with `from IP:port`
    /// (fresh review S3), refused or not. `None` (in-process callers) adds nothing. `POST
    /// /v1/login` calls this one.
    ///
    /// # Errors
    /// As [`Security::login`].
    pub fn login_from(
        &self,
        peer: Option<&tls::PeerDevice>,
        client: Option<std::net::SocketAddr>,
        req: &LoginRequest,
    ) -> Result<LoginResponse, AuthError> {
        let r = self.login_inner(peer, req);
        let detail = match &r {
            Ok(_) => String::new(),
            Err(e) => format!("{}: {e}", e.code()),
        };
        let event = AuditEvent::new("login", outcome_of(&r))
            .user(req.user.as_str())
            .device(peer.map_or("-", |p| p.device_id.as_str()))
            .detail(from_client(detail, client));
        self.audit(event);
        r
    }

    fn login_inner(
        &self,
        peer: Option<&tls::PeerDevice>,
        req: &LoginRequest,
    ) -> Result<LoginResponse, AuthError> {
        let device = self.device_of(peer)?;
        check_protocol(req.protocol)?;
        let account = self
            .accounts
            .verify_credentials(&req.user, &req.password, &req.totp)?;
        let session = self.accounts.start_session(
            &account.name,
            &device.info.device_id,
            self.config.offline_grace_s,
        )?;
        Ok(LoginResponse {
            token: session.token,
            expires_at: session.expires_at,
            user: account.name,
            display_name: account.display_name,
            role: account.role,
            unit_id: account.unit_id,
            totp_secret: console_secret(account.role, account.totp_secret),
            offline_grace_s: self.config.offline_grace_s,
            cache_key: console_secret(account.role, device.cache_key),
            op_key: session.op_key,
            op_key_id: session.op_key_id,
            must_change_password: account.must_change_password,
        })
    }

    fn device_of(
        &self,
        peer: Option<&tls::PeerDevice>,
    ) -> Result<accounts::DeviceRecord, AuthError> {
        let Some(peer) = peer else {
            return Err(AuthError::CertificateRequired(
                "a device certificate is required (mutual TLS); enroll this console first".into(),
            ));
        };
        self.accounts
            .check_device(&peer.device_id, &peer.serial_hex)
    }

    /// The session of a request: the device certificate must belong to an enrolled,
    /// unrevoked device and `bearer` to a live session issued to that device. Not audited
    /// here (the caller knows the path).
    ///
    /// # Errors
    /// [`AuthError::CertificateRequired`], [`AuthError::DeviceRevoked`],
    /// [`AuthError::Unauthenticated`], [`AuthError::Storage`].
    pub fn authenticate(
        &self,
        peer: Option<&tls::PeerDevice>,
        bearer: Option<&str>,
    ) -> Result<SessionInfo, AuthError> {
        let device = self.device_of(peer)?;
        let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(AuthError::Unauthenticated(
                "no session token (Authorization: Bearer TOKEN); sign in (POST /v1/login)".into(),
            ));
        };
        self.accounts.session(&device.info.device_id, token)
    }

    /// [`Security::authenticate`] and then the role's permission for `endpoint`
    /// (`access::check_endpoint`). A refusal is audited with `action` and `target`.
    ///
    /// # Errors
    /// As [`Security::authenticate`]; [`AuthError::Forbidden`].
    pub fn authorize(
        &self,
        peer: Option<&tls::PeerDevice>,
        bearer: Option<&str>,
        endpoint: Option<Endpoint>,
        action: &str,
        target: &str,
    ) -> Result<SessionInfo, AuthError> {
        let r = self.authenticate(peer, bearer).and_then(|s| {
            if s.must_change_password && !PASSWORD_CHANGE_ACTIONS.contains(&action) {
                return Err(AuthError::PasswordChangeRequired(format!(
                    "the password of {:?} was set by an administrator; change it first \
                     (POST /v1/password)",
                    s.user
                )));
            }
            if let Some(ep) = endpoint {
                access::check_endpoint(s.role, ep)
                    .map_err(|f| AuthError::Forbidden(f.to_string()))?;
            }
            Ok(s)
        });
        if let Err(e) = &r {
            // The user when the token is known (a forbidden role), else "-".
            let user = peer
                .zip(bearer)
                .and_then(|(p, t)| self.accounts.session(&p.device_id, t.trim()).ok())
                .map_or_else(|| "-".to_string(), |s| s.user);
            self.audit(
                AuditEvent::new(action, AuditOutcome::Refused)
                    .user(user)
                    .device(peer.map_or("-", |p| p.device_id.as_str()))
                    .target(target)
                    .detail(format!("{}: {e}", e.code())),
            );
        }
        r
    }

    /// `POST /v1/password`: the signed-in person changes their own password (old password
    /// and a fresh code, counted like a login; the new one ≥ 12 characters, not blank,
    /// not the old one). Their other sessions end. Audited `password.change` ok/refused
    /// (never a password).
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (protocol, new password rules),
    /// [`AuthError::Unauthenticated`], [`AuthError::LockedOut`], [`AuthError::Storage`].
    pub fn change_password(
        &self,
        session: &SessionInfo,
        req: &outpost_domain::wire::PasswordChangeRequest,
    ) -> Result<(), AuthError> {
        let r = check_protocol(req.protocol).and_then(|()| {
            self.accounts.change_password(
                &session.user,
                &req.old_password,
                &req.new_password,
                &req.totp,
                &session.token_sha256,
            )
        });
        let mut event = AuditEvent::new("password.change", outcome_of(&r))
            .user(session.user.as_str())
            .device(session.device_id.as_str())
            .target(session.user.as_str());
        match &r {
            Err(e) => event = event.detail(format!("{}: {e}", e.code())),
            Ok(()) => event = event.detail("other sessions ended"),
        }
        self.audit(event);
        r
    }

    /// `POST /v1/logout`: ends the session (its token). The person's grant on the device
    /// stays until its offline grace runs out (see [`Accounts::end_session`]). Audited.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn logout(&self, session: &SessionInfo) -> Result<(), AuthError> {
        let r = self.accounts.end_session(&session.token_sha256);
        self.audit(
            AuditEvent::new("logout", outcome_of(&r))
                .user(session.user.as_str())
                .device(session.device_id.as_str()),
        );
        r
    }

    /// `GET /v1/security/revocations`.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn revocations(&self) -> Result<Revocations, AuthError> {
        self.accounts.revocations()
    }

    /// An administrator's action (`admin:ACTION` on `target`), audited with its outcome.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn admin<T>(
        &self,
        session: &SessionInfo,
        action: &str,
        target: &str,
        f: impl FnOnce(&Accounts) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let r = f(&self.accounts);
        let mut event = AuditEvent::new(format!("admin:{action}"), outcome_of(&r))
            .user(session.user.as_str())
            .device(session.device_id.as_str())
            .target(target);
        if let Err(e) = &r {
            event = event.detail(e.to_string());
        }
        self.audit(event);
        r
    }

    /// `POST /v1/admin/users`: an administrator adds an account of a role in
    /// [`HTTP_CREATABLE_ROLES`] (audited `admin:user.add`). Administrator and auditor
    /// accounts are refused here ([`check_http_creatable`]): separation of duties (MLPS 2.0
    /// level 3, GB/T 22239-2019 8.1.4.2: separate system administrator, security and audit
    /// roles) — one administrator must not be able to make itself an auditor or another
    /// administrator and learn its credentials; those accounts are made only by
    /// `outpost-server user add` at the server host.
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] (403 `forbidden`) for those roles, audited as refused; as
    /// [`Accounts::add_user`].
    pub fn admin_add_user(
        &self,
        session: &SessionInfo,
        new: &NewAccount,
    ) -> Result<CreatedAccount, AuthError> {
        self.admin(session, "user.add", &new.name, |a| {
            check_http_creatable(new.role)?;
            let created = a.add_user(new)?;
            // The administrator chose this password: the person replaces it at their first
            // sign-in, as with `outpost-server user add`.
            a.set_must_change_password(&new.name, true)?;
            Ok(created)
        })
    }

    /// An administrator's action from the command line on the server (`user add`,
    /// `device revoke`, …): audited as `admin:ACTION` by the local operator (user: the OS
    /// account that ran the command, [`local_operator`]; device `"cli"`).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn admin_local<T>(
        &self,
        action: &str,
        target: &str,
        f: impl FnOnce(&Accounts) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let r = f(&self.accounts);
        let mut event = AuditEvent::new(format!("admin:{action}"), outcome_of(&r))
            .user(local_operator())
            .device("cli")
            .target(target);
        if let Err(e) = &r {
            event = event.detail(e.to_string());
        }
        self.audit(event);
        r
    }

    /// The push check for a request of `session` ([`crate::service::PushGuard`]).
    pub fn push_auth<'a>(&'a self, session: &'a SessionInfo) -> PushAuth<'a> {
        PushAuth {
            security: self,
            session,
            authors: RefCell::new(HashMap::new()),
            seen: RefCell::new(Vec::new()),
        }
    }
}

impl tls::DeviceCertCheck for Security {
    fn check(&self, peer: &tls::PeerDevice) -> Result<(), String> {
        self.accounts
            .check_device(&peer.device_id, &peer.serial_hex)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn check_tak(&self, peer: &tls::PeerDevice) -> Result<(), String> {
        let dev = self
            .accounts
            .check_device(&peer.device_id, &peer.serial_hex)
            .map_err(|e| e.to_string())?;
        if dev.info.is_tak() {
            Ok(())
        } else {
            Err(format!(
                "device {} is a console (enrolled by {}), not a TAK client issued by \
                 `outpost-server cert device`",
                peer.device_id, dev.info.enrolled_by
            ))
        }
    }
}

impl crate::ingest::DeviceTokenCheck for Security {
    fn check(&self, device_id: &str, token: &str) -> bool {
        match self
            .accounts
            .check_device_token(device_id.trim(), token.trim())
        {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!(error = %e, "cannot check an OsmAnd device token");
                false
            }
        }
    }
}

fn session_actor(s: &SessionInfo) -> Actor {
    Actor {
        user: s.user.clone(),
        role: s.role,
        unit_id: s.unit_id.clone(),
    }
}

fn time_text(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

fn check_protocol(protocol: u32) -> Result<(), AuthError> {
    if protocol == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(AuthError::BadRequest(format!(
            "protocol: version {protocol} is not served here (this server speaks \
             {PROTOCOL_VERSION})"
        )))
    }
}

/// The audit actions (see `http::endpoint_of`) still served to a session whose account must
/// change its password: the change itself and logout.
pub const PASSWORD_CHANGE_ACTIONS: [&str; 2] = ["password.change", "logout"];

/// The roles an administrator may create over HTTP (`POST /v1/admin/users`). Administrator
/// and auditor accounts are created only at the server host (`outpost-server user add`):
/// separation of duties, see [`Security::admin_add_user`].
pub const HTTP_CREATABLE_ROLES: [access::Role; 4] = [
    access::Role::Commander,
    access::Role::Dispatcher,
    access::Role::FieldUnit,
    access::Role::Viewer,
];

/// `Ok` for a role in [`HTTP_CREATABLE_ROLES`].
///
/// # Errors
/// [`AuthError::Forbidden`] for administrator and auditor, saying where they are created.
pub fn check_http_creatable(role: access::Role) -> Result<(), AuthError> {
    if HTTP_CREATABLE_ROLES.contains(&role) {
        return Ok(());
    }
    Err(AuthError::Forbidden(format!(
        "role: {role} accounts are not created over the network (separation of duties: \
         separate administrator, security and audit roles, MLPS 2.0); create them at the \
         server host with `outpost-server user add NAME --role {role}`"
    )))
}

/// The operating-system account running this process, for the audit records of
/// command-line administration ([`Security::admin_local`]): `$SUDO_USER` (the person behind
/// `sudo`), else `$USER`, else `$LOGNAME`, else `uid:N` (N the real user id, Unix), else `"-"`.
pub fn local_operator() -> String {
    local_operator_from(|k| std::env::var(k).ok(), current_uid())
}

/// [`local_operator`] from given variables and uid (testable without the environment).
pub fn local_operator_from(var: impl Fn(&str) -> Option<String>, uid: Option<u32>) -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|k| var(k))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
        .or_else(|| uid.map(|u| format!("uid:{u}")))
        .unwrap_or_else(|| "-".to_string())
}

#[cfg(unix)]
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    // The owner of this process's /proc entry is its real user (Linux); no libc needed.
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(not(unix))]
fn current_uid() -> Option<u32> {
    None
}

/// `detail` with the client's address appended (`"…; from 127.0.0.1:40123"`, or just
/// `"from 127.0.0.1:40123"` when `detail` is empty); `detail` unchanged without one.
fn from_client(detail: String, client: Option<std::net::SocketAddr>) -> String {
    match client {
        None => detail,
        Some(a) if detail.is_empty() => format!("from {a}"),
        Some(a) => format!("{detail}; from {a}"),
    }
}

fn outcome_of<T>(r: &Result<T, AuthError>) -> AuditOutcome {
    match r {
        Ok(_) => AuditOutcome::Ok,
        Err(AuthError::Storage(_) | AuthError::BadRequest(_) | AuthError::Conflict(_)) => {
            AuditOutcome::Failed
        }
        Err(AuthError::NotFound(_)) => AuditOutcome::Failed,
        Err(_) => AuditOutcome::Refused,
    }
}

/// `secret` (a TOTP seed or a device's cache key) for a login answer of `role`: only the
/// roles that may sign in on a console (those that read the picture) get it; an
/// administrator or auditor gets an empty string, so neither the picture's key nor an
/// offline second factor leaves the server for them (security review S9).
fn console_secret(role: access::Role, secret: String) -> String {
    if role.reads_picture() {
        secret
    } else {
        String::new()
    }
}

/// The authorization of one push by a signed-in person (issue 6): the push's origin must be
/// the device's enrolled origin; each new op's author (`op.user`) must be the session's user
/// or hold a grant on this device whose window covers the op's HLC time, the author's
/// account must be enabled, and `access::check_op` must pass (its questions about
/// assignments answered by the server's replica). A refused op is parked with a reason starting
/// `forbidden: `. Then [`PushAuth::audit`] records the push's ops.
///
/// Op signing (review S2; the HLC time is the author's choice, so only a signature ties an
/// op to a sign-in): an op of another person than the session's must carry a valid
/// signature (`OpEnvelope::auth`, `outpost_domain::op_auth`) by the op key of one of the
/// author's grants on this device, and that grant's window (its login minus 15 minutes until
/// the earliest of login + offline grace, the account's disabling and the device's
/// revocation) must cover the op's HLC time. The person's logout does NOT end the window
/// (it ends only their session token): the console's vault lets them sign in offline until
/// the grace runs out — the commander who signed out after a shift and must sign in when the
/// network fails — and their ops from then carry their signature. A signature on an op of
/// the session's person must verify under one of their op keys on this device (any window:
/// the person is signed in now, and a console clock behind by hours must not get their ops
/// refused, SYNC.md principle 10); their unsigned ops are still accepted (the headless
/// client, the benchmarks and consoles from before op signing do not sign yet), so a stolen
/// token with the device's key can still write as the token's person (follow-up: require
/// it).
pub struct PushAuth<'a> {
    security: &'a Security,
    session: &'a SessionInfo,
    authors: RefCell<HashMap<String, Option<accounts::AuthorInfo>>>,
    /// The ops checked (new ops that decoded): id, kind, author, lane.
    seen: RefCell<Vec<(Uuid, &'static str, String, Lane)>>,
}

impl std::fmt::Debug for PushAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushAuth")
            .field("session", &self.session.user)
            .finish_non_exhaustive()
    }
}

impl PushAuth<'_> {
    fn actor_of(&self, env: &OpEnvelope) -> Result<Actor, String> {
        let s = self.session;
        let own = env.user == s.user;
        if own && env.auth.is_none() {
            return Ok(session_actor(s));
        }
        let Some(info) = self.author(&env.user)? else {
            return Err(format!(
                "forbidden: the author {:?} has no account on this server",
                env.user
            ));
        };
        if !info.enabled {
            return Err(format!("forbidden: the account {:?} is disabled", env.user));
        }
        self.check_signature(env, &info, own)?;
        Ok(if own {
            session_actor(s)
        } else {
            Actor {
                user: env.user.clone(),
                role: info.role,
                unit_id: info.unit_id.clone(),
            }
        })
    }

    fn author(&self, user: &str) -> Result<Option<accounts::AuthorInfo>, String> {
        let mut authors = self.authors.borrow_mut();
        if let Some(info) = authors.get(user) {
            return Ok(info.clone());
        }
        let info = self
            .security
            .accounts
            .author(user, &self.session.device_id)
            .map_err(|e| format!("forbidden: cannot check the author: {e}"))?;
        authors.insert(user.to_string(), info.clone());
        Ok(info)
    }

    /// The op's signature must verify under the op key of one of the author's grants on
    /// this device, and (unless `own`: the author is the session's person) that grant's
    /// window must cover the op's HLC time.
    fn check_signature(
        &self,
        env: &OpEnvelope,
        info: &accounts::AuthorInfo,
        own: bool,
    ) -> Result<(), String> {
        let s = self.session;
        let who = &env.user;
        let Some(auth) = env.auth.as_deref() else {
            return Err(format!(
                "forbidden: not signed by {who:?}: an op of another person than the one signed \
                 in ({:?}) must carry its author's signature from a sign-in on device {} (a \
                 console from before op signing cannot push it; {who:?} must sign in there \
                 online)",
                s.user, s.device_id
            ));
        };
        let Some(key_id) = op_auth::key_id_of(auth) else {
            return Err(format!(
                "forbidden: not signed by {who:?}: {}",
                op_auth::OpAuthError::Malformed
            ));
        };
        let grant = info
            .grants
            .iter()
            .find(|g| g.key_id.as_deref() == Some(key_id));
        let (Some(grant), Some(key)) = (grant, grant.and_then(|g| g.key)) else {
            return Err(format!(
                "forbidden: not signed by {who:?}: key {key_id:?} is not an op key of {who:?} \
                 on device {}",
                s.device_id
            ));
        };
        op_auth::verify(env, &key).map_err(|e| format!("forbidden: not signed by {who:?}: {e}"))?;
        let at = env.hlc.wall_ms;
        if !own && (at < grant.from_ms || at > grant.until_ms) {
            return Err(format!(
                "forbidden: {who:?} signed this op (at {}) with the key of a sign-in on device \
                 {} whose window ({} to {}) does not cover it; a sign-in's window ends when its \
                 offline grace runs out, at the account's disabling or at the device's \
                 revocation (not at the person's logout)",
                time_text(at),
                s.device_id,
                time_text(grant.from_ms),
                time_text(grant.until_ms)
            ));
        }
        Ok(())
    }

    /// Records the ops of this push in the audit trail from the service's answer: one
    /// record per critical or notes op (`op:KIND`, target the op id, outcome ok / refused
    /// (forbidden) / failed (parked for another reason); the user is the author of an
    /// accepted op, else the session's person with the claimed author in the detail — a
    /// refused op's author is only a claim), one record for the positions of
    /// the push (the counts). Ops answered from a stored outcome (resent) are not recorded
    /// again.
    pub fn audit(&self, resp: &PushResponse) {
        let seen = self.seen.borrow();
        let outcomes: HashMap<Uuid, &Outcome> =
            resp.results.iter().map(|r| (r.op_id, &r.outcome)).collect();
        let mut events = Vec::new();
        let (mut pos_ok, mut pos_refused, mut pos_failed) = (0usize, 0usize, 0usize);
        let device = self.session.device_id.as_str();
        for (op_id, kind, user, lane) in seen.iter() {
            let Some(outcome) = outcomes.get(op_id) else {
                continue;
            };
            let (result, detail) = match outcome {
                Outcome::Accepted { gseq } => (AuditOutcome::Ok, format!("gseq {gseq}")),
                Outcome::Parked { reason } if reason.starts_with("forbidden:") => {
                    (AuditOutcome::Refused, reason.clone())
                }
                Outcome::Parked { reason } => (AuditOutcome::Failed, reason.clone()),
                Outcome::Duplicate { .. } => continue,
            };
            if *lane == Lane::Positions {
                match result {
                    AuditOutcome::Ok => pos_ok += 1,
                    AuditOutcome::Refused => pos_refused += 1,
                    AuditOutcome::Failed => pos_failed += 1,
                }
                continue;
            }
            // The record names the person the server can prove: the author of an accepted op
            // (the session's person, or a colleague whose signature verified), but the
            // session's person for a refused or parked one, whose author is only a claim.
            let session_user = self.session.user.as_str();
            let (who, detail) = if user.as_str() == session_user {
                (session_user, detail)
            } else if result == AuditOutcome::Ok {
                (
                    user.as_str(),
                    format!("{detail}; pushed by {session_user:?}"),
                )
            } else {
                (
                    session_user,
                    format!("{detail}; claimed author {:?}", user.as_str()),
                )
            };
            events.push(
                AuditEvent::new(format!("op:{kind}"), result)
                    .user(who)
                    .device(device)
                    .target(op_id.to_string())
                    .detail(detail),
            );
        }
        let total = pos_ok + pos_refused + pos_failed;
        if total > 0 {
            let outcome = if pos_refused > 0 {
                AuditOutcome::Refused
            } else if pos_failed > 0 {
                AuditOutcome::Failed
            } else {
                AuditOutcome::Ok
            };
            events.push(
                AuditEvent::new("op:positions", outcome)
                    .user(self.session.user.as_str())
                    .device(device)
                    .target(format!("{total} ops"))
                    .detail(format!(
                        "{pos_ok} accepted, {pos_refused} refused, {pos_failed} parked"
                    )),
            );
        }
        self.security.audit.record_many(events);
    }

    /// Audits a push refused whole (its origin is not the device's).
    pub fn audit_refused(&self, req: &PushRequest, why: &str) {
        self.security.audit(
            AuditEvent::new("push", AuditOutcome::Refused)
                .user(self.session.user.as_str())
                .device(self.session.device_id.as_str())
                .target(format!("origin {}", req.origin))
                .detail(why),
        );
    }
}

impl crate::service::PushGuard for PushAuth<'_> {
    fn check_push(&self, req: &PushRequest) -> Result<(), String> {
        if req.origin != self.session.origin {
            let why = format!(
                "forbidden: the push is of origin {} but device {} was enrolled with origin {}",
                req.origin, self.session.device_id, self.session.origin
            );
            self.audit_refused(req, &why);
            return Err(why);
        }
        Ok(())
    }

    fn check_op(&self, env: &OpEnvelope, ctx: &dyn access::AccessContext) -> Result<(), String> {
        self.seen.borrow_mut().push((
            env.op_id,
            access::op_kind(&env.body),
            env.user.clone(),
            env.lane,
        ));
        let actor = self.actor_of(env)?;
        access::check_op(&actor, &env.body, ctx).map_err(|f| f.to_string())
    }
}
