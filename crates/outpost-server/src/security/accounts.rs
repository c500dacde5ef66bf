//! `security.db`: the server's accounts, sessions, enrolled devices, offline grants, OsmAnd
//! device tokens and the revocation version (issue 6), and the rules of signing in.
//!
//! | table | rows |
//! |---|---|
//! | `accounts` | one per person: name, display name, role, unit, argon2id PHC hash, TOTP secret, last accepted TOTP step, enabled, locked since |
//! | `login_failures` | one per failed login or enrollment (user, time); cleared by a success or an unlock |
//! | `sessions` | one per login: SHA-256 of the bearer token, user, device, created, expires (12 h), ended |
//! | `devices` | one per enrolled console: id (certificate CN), name, origin, certificate serial, enrolled by/at, revoked at/reason, escrowed cache key |
//! | `grants` | one per login: user, device, from, until (offline grace), ended (disable, revocation; not logout), op key + key id, session |
//! | `device_tokens` | one per OsmAnd phone id: SHA-256 of its token |
//! | `meta` | the revocation version |
//!
//! Rules and their sources:
//! - passwords: argon2id, PHC strings, OWASP parameters by default (m = 19 456 KiB, t = 2,
//!   p = 1; OWASP Password Storage Cheat Sheet); at least [`MIN_PASSWORD_CHARS`] characters;
//! - second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps), the current step or
//!   one either side; a step is accepted at most once per account, and never one at or
//!   before the last accepted step (RFC 6238 §5.2: replay);
//! - lockout: the [`LOCKOUT_FAILURES`]th failure (login or enrollment) within
//!   [`LOCKOUT_WINDOW_S`] locks the account until an administrator unlocks it (CJIS 5.9.5
//!   §5.5.3); a successful sign-in clears the count; a login name with no account is
//!   counted the same way (in memory, bounded) and answers `locked_out` alike, so the
//!   lockout does not reveal which names exist;
//! - sessions: a 256-bit random bearer token of which only the SHA-256 is stored, bound to
//!   the device it was issued to, ending [`SESSION_HOURS`] hours after the login (CJIS 5.9.5
//!   re-authentication) or at logout; a disabled account's sessions end at once.
//!
//! Blocking (one SQLite connection behind a mutex); the HTTP layer calls it from
//! `spawn_blocking`. Time comes from the injected [`Clock`].

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use outpost_domain::access::Role;
use outpost_domain::clock::Clock;
use outpost_domain::wire::{ErrorBody, Revocations};

/// The database file inside the data directory.
pub const DB_FILE: &str = "security.db";

/// The shortest password accepted, characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Failures within [`LOCKOUT_WINDOW_S`] that lock an account (CJIS 5.9.5 §5.5.3: 5).
pub const LOCKOUT_FAILURES: i64 = 5;

/// The window in which failures are counted, seconds (15 minutes).
pub const LOCKOUT_WINDOW_S: i64 = 15 * 60;

/// How long a session lasts after its login, hours.
pub const SESSION_HOURS: i64 = 12;

/// The TOTP step, seconds (RFC 6238 default).
pub const TOTP_STEP_S: u64 = 30;

/// TOTP digits.
pub const TOTP_DIGITS: usize = 6;

/// The TOTP secret's length, bytes (160 bits, RFC 4226 §4's recommendation).
pub const TOTP_SECRET_BYTES: usize = 20;

/// The issuer shown by authenticator apps (the otpauth URI's `issuer`).
pub const TOTP_ISSUER: &str = "Outpost";

/// How far before a grant's login an op's HLC time may lie and still be covered by it,
/// milliseconds: the console's clock may be somewhat behind the server's (SYNC.md principle
/// 10: clocks are advisory).
pub const GRANT_CLOCK_SLACK_MS: i64 = 15 * 60 * 1000;

/// Why a security request was refused; each maps to an HTTP status and an [`ErrorBody`] code
/// of [`outpost_domain::wire`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401 `unauthenticated`: no or unknown token, a token of another device, ended or
    /// expired, a disabled account, a wrong password or code.
    #[error("{0}")]
    Unauthenticated(String),
    /// 401 `certificate_required`: no device certificate, or one this server never enrolled.
    #[error("{0}")]
    CertificateRequired(String),
    /// 403 `locked_out`: too many failures; an administrator must unlock the account.
    #[error("{0}")]
    LockedOut(String),
    /// 403 `device_revoked`: the device's certificate was revoked.
    #[error("{0}")]
    DeviceRevoked(String),
    /// 403 `forbidden`: the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 400 `bad_request`: a field is missing or malformed (the message names it).
    #[error("{0}")]
    BadRequest(String),
    /// 404 `not_found`: no such user or device.
    #[error("{0}")]
    NotFound(String),
    /// 409 `conflict`: the name or origin is taken.
    #[error("{0}")]
    Conflict(String),
    /// 403 `password_change_required`: the account's password was set by an administrator;
    /// only `POST /v1/password` and `POST /v1/logout` are served until the person changes it.
    #[error("{0}")]
    PasswordChangeRequired(String),
    /// 500 `internal`: the security database failed.
    #[error("security database: {0}")]
    Storage(String),
}

impl AuthError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Unauthenticated(_) | AuthError::CertificateRequired(_) => 401,
            AuthError::LockedOut(_)
            | AuthError::DeviceRevoked(_)
            | AuthError::Forbidden(_)
            | AuthError::PasswordChangeRequired(_) => 403,
            AuthError::BadRequest(_) => 400,
            AuthError::NotFound(_) => 404,
            AuthError::Conflict(_) => 409,
            AuthError::Storage(_) => 500,
        }
    }

    /// The machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unauthenticated(_) => "unauthenticated",
            AuthError::CertificateRequired(_) => "certificate_required",
            AuthError::LockedOut(_) => "locked_out",
            AuthError::DeviceRevoked(_) => "device_revoked",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::PasswordChangeRequired(_) => "password_change_required",
            AuthError::BadRequest(_) => "bad_request",
            AuthError::NotFound(_) => "not_found",
            AuthError::Conflict(_) => "conflict",
            AuthError::Storage(_) => "internal",
        }
    }

    /// The error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().into(),
            message: self.to_string(),
            epoch: None,
        }
    }
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::Storage(e.to_string())
    }
}

/// The argon2id cost parameters of new password hashes (verification reads a hash's own
/// parameters from its PHC string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory, KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for PasswordParams {
    /// OWASP's argon2id minimum: m = 19 456 KiB (19 MiB), t = 2, p = 1.
    fn default() -> Self {
        PasswordParams {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl PasswordParams {
    /// The cheapest parameters argon2 allows (m = 8 KiB, t = 1, p = 1): FOR TESTS ONLY, so
    /// test suites that create and sign in many accounts stay fast. Never in production.
    pub fn cheap_for_tests() -> PasswordParams {
        PasswordParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn hasher(self) -> Result<Argon2<'static>, AuthError> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|e| AuthError::BadRequest(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// An account as stored (without its secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Login name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// For a field unit: its unit id.
    pub unit_id: Option<String>,
    /// False once an administrator disabled it.
    pub enabled: bool,
    /// When it was locked by too many failures (UTC); `None` when not locked.
    pub locked_at: Option<DateTime<Utc>>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
}

/// What `user add` / `POST /v1/admin/users` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// Login name: `outpost_domain::names::check_login_name` (1–64 letters of any script,
    /// digits, `.`, `_`, `-`, `@`; not starting with `-`); unique ignoring case and
    /// compatibility forms (`outpost_domain::names::login_name_key`).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The unit id of a field unit's account (required for, and only for, field units).
    #[serde(default)]
    pub unit_id: Option<String>,
    /// Display name (default: the login name); at most 100 characters.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Password: at least [`MIN_PASSWORD_CHARS`] characters.
    pub password: String,
}

/// What a new account's holder needs for the second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedAccount {
    /// Login name.
    pub name: String,
    /// The TOTP secret, base32 (RFC 4648, no padding), for the authenticator app.
    pub totp_secret: String,
    /// The `otpauth://totp/…` URI (a QR code of it is what authenticator apps scan).
    pub otpauth_uri: String,
}

/// An enrolled device as stored (without its escrowed key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device id (its certificate's common name).
    pub device_id: String,
    /// The name people recognise.
    pub name: String,
    /// The console's installation origin; it pushes only ops of this origin.
    pub origin: Uuid,
    /// The certificate's serial, lowercase hex.
    pub cert_serial: String,
    /// Who enrolled it.
    pub enrolled_by: String,
    /// When (UTC).
    pub enrolled_at: DateTime<Utc>,
    /// When it was revoked (UTC), if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
}

/// The `enrolled_by` of a TAK client's device, recorded by `outpost-server cert device`. No
/// account can have this name (login names have no spaces), so it marks the device's kind:
/// only such devices may use the CoT TLS port (review S7); consoles enroll under their
/// person's name.
pub const TAK_DEVICE_ENROLLER: &str = "cert device";

impl DeviceInfo {
    /// True for a TAK client's device (issued by `outpost-server cert device`), false for a
    /// console enrolled by a person.
    pub fn is_tak(&self) -> bool {
        self.enrolled_by == TAK_DEVICE_ENROLLER
    }
}

/// A device as the auth layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Public part.
    pub info: DeviceInfo,
    /// The escrowed cache key (64 hex digits).
    pub cache_key: String,
}

/// A person whose password and code were just checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccount {
    /// Login name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Unit of a field unit.
    pub unit_id: Option<String>,
    /// The TOTP secret, base32.
    pub totp_secret: String,
    /// The password was set by an administrator and must be changed before anything else.
    pub must_change_password: bool,
}

/// A live session, as the auth layer found it for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Login name.
    pub user: String,
    /// Role.
    pub role: Role,
    /// Unit of a field unit.
    pub unit_id: Option<String>,
    /// The device the session is bound to.
    pub device_id: String,
    /// That device's enrolled origin.
    pub origin: Uuid,
    /// SHA-256 (hex) of the token.
    pub token_sha256: String,
    /// When it ends (UTC).
    pub expires_at: DateTime<Utc>,
    /// The account must change its password first (`POST /v1/password`); every other
    /// endpoint but logout is refused with 403 `password_change_required`.
    pub must_change_password: bool,
}

/// A session just opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The bearer token (shown once; only its hash is stored).
    pub token: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// The op key of this login's grant (64 hex digits; `outpost_domain::op_auth`).
    pub op_key: String,
    /// Its key id (16 hex digits).
    pub op_key_id: String,
}

/// One grant of an author on a device, as the push check needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct GrantWindow {
    /// Start of the window: the login minus [`GRANT_CLOCK_SLACK_MS`], ms since the epoch.
    pub from_ms: i64,
    /// End of the window: the earliest of the offline grace's end (login + grace), the
    /// account's disabling and the device's revocation, ms since the epoch. NOT the person's
    /// logout: the console's vault lets them sign in offline there until the grace ends (a
    /// commander who signed out after a shift signs in when the network fails), and the ops
    /// they write then carry their signature.
    pub until_ms: i64,
    /// The op key's id (`None` for grants recorded before op signing: they authorize no op).
    pub key_id: Option<String>,
    /// The op key.
    pub key: Option<[u8; outpost_domain::op_auth::OP_KEY_BYTES]>,
}

impl std::fmt::Debug for GrantWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantWindow")
            .field("from_ms", &self.from_ms)
            .field("until_ms", &self.until_ms)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// An op's author as the push check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorInfo {
    /// Role.
    pub role: Role,
    /// Unit of a field unit.
    pub unit_id: Option<String>,
    /// Enabled?
    pub enabled: bool,
    /// The author's grants on the device (every one ever recorded, ended ones included).
    pub grants: Vec<GrantWindow>,
}

const M1: &str = r#"
CREATE TABLE accounts (
    name           TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL,
    unit_id        TEXT,
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT NOT NULL,
    totp_last_step INTEGER,
    enabled        INTEGER NOT NULL DEFAULT 1,
    locked_at      INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE TABLE login_failures (
    user TEXT NOT NULL,
    at   INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_user ON login_failures(user, at);
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user         TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ended_at     INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions(user);
CREATE TABLE devices (
    device_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    origin        TEXT NOT NULL,
    cert_serial   TEXT NOT NULL,
    enrolled_by   TEXT NOT NULL,
    enrolled_at   INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT,
    cache_key     TEXT NOT NULL
) STRICT;
CREATE INDEX devices_origin ON devices(origin);
CREATE TABLE grants (
    id         INTEGER PRIMARY KEY,
    user       TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX grants_user_device ON grants(user, device_id);
CREATE TABLE device_tokens (
    device_id    TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE TABLE meta (
    singleton           INTEGER PRIMARY KEY CHECK (singleton = 1),
    revocation_version  INTEGER NOT NULL
) STRICT;
INSERT INTO meta(singleton, revocation_version) VALUES (1, 0);
"#;

/// Op signing (review S2): each grant gets the op key issued at its login and ends early at
/// the account's disabling or the device's revocation (`ended_at`; a logout leaves it: the
/// offline grace outlives the session, as the console's vault does).
const M2: &str = r#"
ALTER TABLE grants ADD COLUMN key_id TEXT;
ALTER TABLE grants ADD COLUMN op_key TEXT;
ALTER TABLE grants ADD COLUMN ended_at INTEGER;
ALTER TABLE grants ADD COLUMN session_sha256 TEXT;
CREATE UNIQUE INDEX grants_key_id ON grants(key_id) WHERE key_id IS NOT NULL;
"#;

/// Password changes: an account whose password an administrator chose (`user add`, `user
/// passwd`) must change it before anything else.
const M3: &str = r#"
ALTER TABLE accounts ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(M1).comment("accounts, sessions, devices, grants"),
        M::up(M2).comment("grants: op keys, end at disable/revocation"),
        M::up(M3).comment("accounts: must_change_password"),
    ])
}

/// The accounts database.
pub struct Accounts {
    conn: Mutex<Connection>,
    params: PasswordParams,
    clock: Arc<dyn Clock>,
    /// A hash checked for unknown names, so that a wrong name costs as long as a wrong
    /// password (no user enumeration by timing).
    dummy_hash: OnceLock<String>,
    /// Failures of login names that have no account, counted like an account's so that
    /// the lockout does not tell which names exist (fresh review S3).
    unknown_names: Mutex<UnknownNames>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of `text`, lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `n` random bytes from the operating system.
///
/// # Errors
/// [`AuthError::Storage`] when the OS has no randomness to give (never in practice).
pub fn random_bytes(n: usize) -> Result<Vec<u8>, AuthError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| AuthError::Storage(format!("randomness: {e}")))?;
    Ok(b)
}

/// Compares two strings in time independent of where they differ.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// The TOTP generator of a base32 secret (RFC 6238: SHA-1, 6 digits, 30 s).
///
/// # Errors
/// [`AuthError::BadRequest`] when the secret is not base32 or too short.
pub fn totp(secret_b32: &str, account: &str) -> Result<totp_rs::TOTP, AuthError> {
    let bytes = totp_rs::Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| AuthError::BadRequest(format!("TOTP secret: {e:?}")))?;
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        1,
        TOTP_STEP_S,
        bytes,
        Some(TOTP_ISSUER.to_string()),
        account.to_string(),
    )
    .map_err(|e| AuthError::BadRequest(format!("TOTP secret: {e}")))
}

/// The 6-digit code of `secret_b32` at `at` (for tests and the test fixture).
///
/// # Errors
/// As [`totp`].
pub fn totp_code(secret_b32: &str, at: DateTime<Utc>) -> Result<String, AuthError> {
    Ok(totp(secret_b32, "x")?.generate(u64::try_from(at.timestamp()).unwrap_or(0)))
}

/// The one login-name rule (`outpost_domain::names::check_login_name`, shared with the
/// console audit events; fresh review S6/S12).
fn check_name(name: &str) -> Result<(), AuthError> {
    outpost_domain::names::check_login_name(name)
        .map_err(|e| AuthError::BadRequest(format!("name: {e}")))
}

/// Refuses a password shorter than [`MIN_PASSWORD_CHARS`] or made only of whitespace.
///
/// # Errors
/// [`AuthError::BadRequest`] naming the rule.
pub fn check_password_rules(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::BadRequest(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters are required"
        )));
    }
    if password.chars().all(char::is_whitespace) {
        return Err(AuthError::BadRequest(
            "password: only spaces or other whitespace; choose one with other characters".into(),
        ));
    }
    Ok(())
}

impl Accounts {
    /// Opens (creating and migrating) `DIR/security.db`. `params` are the argon2id costs of
    /// new hashes; `clock` is "now".
    ///
    /// # Errors
    /// [`AuthError::Storage`] naming the file when it cannot be opened or migrated (also
    /// when it was written by a newer Outpost).
    pub fn open(
        data_dir: &Path,
        params: PasswordParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Accounts, AuthError> {
        crate::private_files::private_dir(data_dir).map_err(|e| {
            AuthError::Storage(format!("{}: cannot create: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
        let fail =
            |e: &dyn std::fmt::Display| AuthError::Storage(format!("{}: {e}", path.display()));
        // Owner-only before SQLite opens it, so its -wal/-shm are too (fresh review S11).
        crate::private_files::private_db(&path).map_err(|e| fail(&e))?;
        let mut conn = Connection::open(&path).map_err(|e| fail(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| fail(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| fail(&e))?;
        migrations().to_latest(&mut conn).map_err(|e| fail(&e))?;
        restrict_permissions(&path);
        crate::private_files::private_db(&path).map_err(|e| fail(&e))?;
        Ok(Accounts {
            conn: Mutex::new(conn),
            params,
            clock,
            dummy_hash: OnceLock::new(),
            unknown_names: Mutex::new(UnknownNames::default()),
        })
    }

    fn unknown_names(&self) -> MutexGuard<'_, UnknownNames> {
        self.unknown_names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// "Now" from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Creates an account with a fresh TOTP secret.
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (name, password, unit rules), [`AuthError::Conflict`] (the
    /// name exists), [`AuthError::Storage`].
    pub fn add_user(&self, new: &NewAccount) -> Result<CreatedAccount, AuthError> {
        check_name(&new.name)?;
        check_password_rules(&new.password)?;
        let unit_id = new
            .unit_id
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        match (new.role, unit_id) {
            (Role::FieldUnit, None) => {
                return Err(AuthError::BadRequest(
                    "unit_id: a field unit's account needs its unit (--unit UNIT_ID)".into(),
                ));
            }
            // Like an op's unit id (1-64 characters), and nothing hidden (fresh review S12).
            (Role::FieldUnit, Some(u)) => {
                outpost_domain::names::check_label(
                    "unit_id",
                    u,
                    outpost_domain::merge::MAX_ID_CHARS,
                )
                .map_err(AuthError::BadRequest)?;
            }
            (_, None) => {}
            (role, Some(_)) => {
                return Err(AuthError::BadRequest(format!(
                    "unit_id: only field unit accounts are bound to a unit, not {role}"
                )));
            }
        }
        let display = new
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(&new.name);
        if display.chars().count() > 100 || display.chars().any(char::is_control) {
            return Err(AuthError::BadRequest(
                "display_name: at most 100 characters, no control characters".into(),
            ));
        }
        let hash = self.hash_password(&new.password)?;
        let secret = totp_rs::Secret::Raw(random_bytes(TOTP_SECRET_BYTES)?)
            .to_encoded()
            .to_string();
        let uri = totp(&secret, &new.name)?.get_url();
        let conn = self.conn();
        // Unique case-insensitively after NFKC (fresh review S12): `Commander` beside
        // `commander` would be two people the audit trail cannot tell apart.
        let key = outpost_domain::names::login_name_key(&new.name);
        let names = conn
            .prepare("SELECT name FROM accounts")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(other) = names
            .iter()
            .find(|n| **n != new.name && outpost_domain::names::login_name_key(n) == key)
        {
            return Err(AuthError::Conflict(format!(
                "name: {:?} is too like the existing account {other:?} (login names are \
                 compared ignoring case and compatibility forms); choose another",
                new.name
            )));
        }
        let n = conn.execute(
            "INSERT OR IGNORE INTO accounts(name, display_name, role, unit_id, password_hash,
                 totp_secret, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.name,
                display,
                new.role.as_str(),
                unit_id,
                hash,
                secret,
                ms(self.now())
            ],
        )?;
        if n == 0 {
            return Err(AuthError::Conflict(format!(
                "name: an account {:?} exists already",
                new.name
            )));
        }
        Ok(CreatedAccount {
            name: new.name.clone(),
            totp_secret: secret,
            otpauth_uri: uri,
        })
    }

    fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let salt = SaltString::encode_b64(&random_bytes(16)?)
            .map_err(|e| AuthError::Storage(format!("salt: {e}")))?;
        Ok(self
            .params
            .hasher()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AuthError::Storage(format!("argon2: {e}")))?
            .to_string())
    }

    /// Every account, by name.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn list_users(&self) -> Result<Vec<AccountInfo>, AuthError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, display_name, role, unit_id, enabled, locked_at, created_at
             FROM accounts ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, display_name, role, unit_id, enabled, locked, created) = row?;
            out.push(AccountInfo {
                role: parse_role(&role)?,
                name,
                display_name,
                unit_id,
                enabled,
                locked_at: locked.map(from_ms),
                created_at: from_ms(created),
            });
        }
        Ok(out)
    }

    /// Releases a locked account and clears its failure count.
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::Storage`].
    pub fn unlock(&self, name: &str) -> Result<(), AuthError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE accounts SET locked_at = NULL WHERE name = ?1",
            [name],
        )?;
        if n == 0 {
            return Err(no_user(name));
        }
        conn.execute("DELETE FROM login_failures WHERE user = ?1", [name])?;
        Ok(())
    }

    /// Disables an account: no login, its sessions end, consoles refuse its offline login
    /// once they learn the new revocation version.
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::Storage`].
    pub fn disable(&self, name: &str) -> Result<(), AuthError> {
        let now = ms(self.now());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("UPDATE accounts SET enabled = 0 WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(no_user(name));
        }
        tx.execute(
            "UPDATE sessions SET ended_at = ?2 WHERE user = ?1 AND ended_at IS NULL",
            params![name, now],
        )?;
        tx.execute(
            "UPDATE grants SET ended_at = ?2 WHERE user = ?1 AND ended_at IS NULL",
            params![name, now],
        )?;
        tx.execute(
            "UPDATE meta SET revocation_version = revocation_version + 1",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Checks `user`'s password and TOTP `code` (login and enrollment). A failure is
    /// counted; the [`LOCKOUT_FAILURES`]th within [`LOCKOUT_WINDOW_S`] locks the account. A
    /// success clears the count and consumes the code's step.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] (unknown name, wrong password or code, a disabled
    /// account; with the right password, a code whose step was already used (or a newer
    /// one): [`CODE_ALREADY_USED`], not counted as a failure), [`AuthError::LockedOut`]
    /// (locked, or locked by this
    /// failure), [`AuthError::Storage`].
    pub fn verify_credentials(
        &self,
        user: &str,
        password: &str,
        code: &str,
    ) -> Result<VerifiedAccount, AuthError> {
        let wrong = || AuthError::Unauthenticated("wrong name, password or code".to_string());
        let row = self
            .conn()
            .query_row(
                "SELECT display_name, role, unit_id, password_hash, totp_secret, totp_last_step,
                        enabled, locked_at, must_change_password
                 FROM accounts WHERE name = ?1",
                [user],
                |r| {
                    Ok((
                        (
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ),
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, bool>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                        r.get::<_, bool>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((
            (display_name, role, unit_id, hash, secret),
            last_step,
            enabled,
            locked,
            must_change_password,
        )) = row
        else {
            // A name with no account answers as an account would (fresh review S3): locked
            // at once when "locked", else the cost of a wrong password and a failure counted.
            let now = self.now();
            let mut names = self.unknown_names();
            if names.is_locked(user) {
                return Err(locked_out(user));
            }
            drop(names);
            let _ = self.password_matches(self.dummy_hash(), password);
            names = self.unknown_names();
            if names.count_failure(user, ms(now)) {
                tracing::warn!(
                    failures = LOCKOUT_FAILURES,
                    "sign-ins locked for a login name that has no account"
                );
                return Err(locked_out(user));
            }
            return Err(wrong());
        };
        if locked.is_some() {
            return Err(locked_out(user));
        }
        let now = self.now();
        if !enabled {
            // Said only to someone who knows the password; otherwise a plain failure.
            if self.password_matches(&hash, password) {
                return Err(AuthError::Unauthenticated(format!(
                    "the account {user:?} is disabled"
                )));
            }
            return Err(self.count_failure(user, now).unwrap_or_else(|e| e));
        }
        let step = if self.password_matches(&hash, password) {
            match totp_step(&secret, user, code, now)? {
                Some(step) if last_step.is_none_or(|last| step > last) => Some(step),
                // The right password with a spent code (fresh review S4): said as such and
                // not counted as a failure; no sign-in either.
                Some(_) => return Err(code_already_used()),
                None => None,
            }
        } else {
            None
        };
        let Some(step) = step else {
            return Err(self.count_failure(user, now).unwrap_or_else(|e| e));
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // Consumed only if no concurrent sign-in consumed this step first.
        let n = tx.execute(
            "UPDATE accounts SET totp_last_step = ?2
             WHERE name = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![user, step],
        )?;
        if n == 0 {
            // A concurrent sign-in spent this step first: the same spent code.
            return Err(code_already_used());
        }
        tx.execute("DELETE FROM login_failures WHERE user = ?1", [user])?;
        tx.commit()?;
        Ok(VerifiedAccount {
            name: user.to_string(),
            display_name,
            role: parse_role(&role)?,
            unit_id,
            totp_secret: secret,
            must_change_password,
        })
    }

    /// Records a failure of `user` at `now`; returns the error to answer with (locked out
    /// when this failure locked the account).
    fn count_failure(&self, user: &str, now: DateTime<Utc>) -> Result<AuthError, AuthError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO login_failures(user, at) VALUES (?1, ?2)",
            params![user, ms(now)],
        )?;
        let recent: i64 = tx.query_row(
            "SELECT count(*) FROM login_failures WHERE user = ?1 AND at > ?2",
            params![user, ms(now) - LOCKOUT_WINDOW_S * 1000],
            |r| r.get(0),
        )?;
        let locked = recent >= LOCKOUT_FAILURES;
        if locked {
            tx.execute(
                "UPDATE accounts SET locked_at = ?2 WHERE name = ?1 AND locked_at IS NULL",
                params![user, ms(now)],
            )?;
            tracing::warn!(
                user,
                failures = recent,
                "account locked after failed sign-ins"
            );
        }
        tx.commit()?;
        Ok(if locked {
            locked_out(user)
        } else {
            AuthError::Unauthenticated("wrong name, password or code".to_string())
        })
    }

    fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            self.hash_password("not a password of anyone")
                .unwrap_or_default()
        })
    }

    fn password_matches(&self, phc: &str, password: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        // The hash's own parameters (from the PHC string) are used.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// A new device id, `dev-` and a UUIDv7 in simple form.
    pub fn new_device_id() -> String {
        format!("dev-{}", Uuid::now_v7().simple())
    }

    /// Records an enrolled device. `origin` may not belong to another device that is not
    /// revoked.
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (name, origin or cache key malformed),
    /// [`AuthError::Conflict`] (the origin is enrolled), [`AuthError::Storage`].
    pub fn add_device(
        &self,
        device_id: &str,
        name: &str,
        origin: Uuid,
        cert_serial: &str,
        enrolled_by: &str,
        cache_key: &str,
    ) -> Result<(), AuthError> {
        let conn = self.conn();
        let taken: Option<String> = conn
            .query_row(
                "SELECT device_id FROM devices WHERE origin = ?1 AND revoked_at IS NULL",
                [origin.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            return Err(AuthError::Conflict(format!(
                "origin: {origin} is enrolled already as device {other}; an administrator must \
                 revoke that device first"
            )));
        }
        conn.execute(
            "INSERT INTO devices(device_id, name, origin, cert_serial, enrolled_by, enrolled_at,
                 cache_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                device_id,
                name,
                origin.to_string(),
                cert_serial,
                enrolled_by,
                ms(self.now()),
                cache_key
            ],
        )?;
        Ok(())
    }

    /// The device `device_id`, if enrolled.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, AuthError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{DEVICE_SELECT} WHERE device_id = ?1"))?;
        let mut rows = stmt.query_map([device_id], device_row)?;
        rows.next().transpose()?.map(finish_device).transpose()
    }

    /// Every enrolled device, newest first.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn list_devices(&self) -> Result<Vec<DeviceInfo>, AuthError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{DEVICE_SELECT} ORDER BY enrolled_at DESC"))?;
        let rows = stmt.query_map([], device_row)?;
        rows.map(|r| Ok(finish_device(r?)?.info)).collect()
    }

    /// The enrolled, unrevoked device behind a TLS peer certificate.
    ///
    /// # Errors
    /// [`AuthError::CertificateRequired`] (unknown device, or a certificate of another
    /// serial), [`AuthError::DeviceRevoked`], [`AuthError::Storage`].
    pub fn check_device(
        &self,
        device_id: &str,
        serial_hex: &str,
    ) -> Result<DeviceRecord, AuthError> {
        let Some(dev) = self.device(device_id)? else {
            return Err(AuthError::CertificateRequired(format!(
                "device {device_id} is not enrolled here; enroll the console (POST /v1/enroll)"
            )));
        };
        if !ct_eq(&dev.info.cert_serial, &serial_hex.to_ascii_lowercase()) {
            return Err(AuthError::CertificateRequired(format!(
                "the certificate of device {device_id} is not the one issued to it"
            )));
        }
        if dev.info.revoked_at.is_some() {
            return Err(AuthError::DeviceRevoked(format!(
                "device {device_id} was revoked: {}",
                dev.info.revoke_reason.as_deref().unwrap_or("-")
            )));
        }
        Ok(dev)
    }

    /// Revokes a device: its certificate is refused from now on and its sessions end.
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (empty reason), [`AuthError::NotFound`],
    /// [`AuthError::Storage`].
    pub fn revoke_device(&self, device_id: &str, reason: &str) -> Result<(), AuthError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(AuthError::BadRequest(
                "reason: say why the device is revoked (1-200 characters)".into(),
            ));
        }
        let now = ms(self.now());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE devices SET revoked_at = ?2, revoke_reason = ?3
             WHERE device_id = ?1 AND revoked_at IS NULL",
            params![device_id, now, reason],
        )?;
        if n == 0 {
            let exists: bool = tx
                .query_row(
                    "SELECT 1 FROM devices WHERE device_id = ?1",
                    [device_id],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false);
            return if exists {
                Ok(())
            } else {
                Err(AuthError::NotFound(format!(
                    "device: no enrolled device {device_id:?}"
                )))
            };
        }
        tx.execute(
            "UPDATE sessions SET ended_at = ?2 WHERE device_id = ?1 AND ended_at IS NULL",
            params![device_id, now],
        )?;
        tx.execute(
            "UPDATE grants SET ended_at = ?2 WHERE device_id = ?1 AND ended_at IS NULL",
            params![device_id, now],
        )?;
        tx.execute(
            "UPDATE meta SET revocation_version = revocation_version + 1",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Opens a session for `user` on `device_id` and records a grant of `grace_s` seconds
    /// for offline sign-in and offline-written ops on that device, with a new random op key
    /// (256 bits) and key id that the ops written under it must be signed with.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn start_session(
        &self,
        user: &str,
        device_id: &str,
        grace_s: u64,
    ) -> Result<NewSession, AuthError> {
        let token = hex::encode(random_bytes(32)?);
        let op_key = hex::encode(random_bytes(outpost_domain::op_auth::OP_KEY_BYTES)?);
        let op_key_id = hex::encode(random_bytes(8)?);
        let now = self.now();
        let expires_at = now + chrono::Duration::hours(SESSION_HOURS);
        let grace_ms = i64::try_from(grace_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO sessions(token_sha256, user, device_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sha256_hex(&token), user, device_id, ms(now), ms(expires_at)],
        )?;
        tx.execute(
            "INSERT INTO grants(user, device_id, granted_at, expires_at, key_id, op_key,
                                session_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                user,
                device_id,
                ms(now),
                ms(now).saturating_add(grace_ms),
                op_key_id,
                op_key,
                sha256_hex(&token)
            ],
        )?;
        tx.commit()?;
        Ok(NewSession {
            token,
            expires_at,
            op_key,
            op_key_id,
        })
    }

    /// The live session of `token` presented by `device_id`.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] (unknown token, another device's, ended, expired, or
    /// the account disabled), [`AuthError::Storage`].
    pub fn session(&self, device_id: &str, token: &str) -> Result<SessionInfo, AuthError> {
        let hash = sha256_hex(token);
        let row = self
            .conn()
            .query_row(
                "SELECT s.user, s.device_id, s.expires_at, s.ended_at, a.role, a.unit_id,
                        a.enabled, d.origin, a.must_change_password
                 FROM sessions s JOIN accounts a ON a.name = s.user
                      JOIN devices d ON d.device_id = s.device_id
                 WHERE s.token_sha256 = ?1",
                [&hash],
                |r| {
                    Ok((
                        (
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                        ),
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, bool>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, bool>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some(((user, dev, expires, ended), role, unit_id, enabled, origin, must_change)) = row
        else {
            return Err(AuthError::Unauthenticated(
                "unknown session token; sign in (POST /v1/login)".into(),
            ));
        };
        if dev != device_id {
            return Err(AuthError::Unauthenticated(
                "the session token was issued to another device; sign in on this one".into(),
            ));
        }
        if ended.is_some() {
            return Err(AuthError::Unauthenticated(
                "the session was ended; sign in again".into(),
            ));
        }
        if ms(self.now()) >= expires {
            return Err(AuthError::Unauthenticated(format!(
                "the session expired ({SESSION_HOURS} h after sign-in); sign in again"
            )));
        }
        if !enabled {
            return Err(AuthError::Unauthenticated(format!(
                "the account {user:?} is disabled"
            )));
        }
        Ok(SessionInfo {
            role: parse_role(&role)?,
            user,
            unit_id,
            device_id: dev,
            origin: origin
                .parse()
                .map_err(|e| AuthError::Storage(format!("devices.origin: {e}")))?,
            token_sha256: hash,
            expires_at: from_ms(expires),
            must_change_password: must_change,
        })
    }

    /// The signed-in `user` changes their own password: `old` and `code` are checked as by
    /// [`Accounts::verify_credentials`] (a failure counts towards the lockout, the code's
    /// step is consumed), `new` must pass [`check_password_rules`] and differ from `old`.
    /// Stores the new argon2id hash, clears `must_change_password` and ends the person's
    /// other sessions (every session but `keep_session_sha256`).
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (the new password's rules; checked before the old password,
    /// nothing counted), as [`Accounts::verify_credentials`], [`AuthError::Storage`].
    pub fn change_password(
        &self,
        user: &str,
        old: &str,
        new: &str,
        code: &str,
        keep_session_sha256: &str,
    ) -> Result<(), AuthError> {
        check_password_rules(new).map_err(|e| AuthError::BadRequest(format!("new_{e}")))?;
        if new == old {
            return Err(AuthError::BadRequest(
                "new_password: the same as the current password; choose a new one".into(),
            ));
        }
        self.verify_credentials(user, old, code)?;
        let hash = self.hash_password(new)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE accounts SET password_hash = ?2, must_change_password = 0 WHERE name = ?1",
            params![user, hash],
        )?;
        tx.execute(
            "UPDATE sessions SET ended_at = ?3
             WHERE user = ?1 AND token_sha256 <> ?2 AND ended_at IS NULL",
            params![user, keep_session_sha256, ms(self.now())],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// An administrator at the host sets `name`'s password (`outpost-server user passwd`):
    /// the person must change it at their next sign-in (`must_change_password`), and every
    /// session of theirs ends. The TOTP secret is unchanged.
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (password rules), [`AuthError::NotFound`] (no such
    /// account), [`AuthError::Storage`].
    pub fn reset_password(&self, name: &str, password: &str) -> Result<(), AuthError> {
        check_password_rules(password)?;
        let hash = self.hash_password(password)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE accounts SET password_hash = ?2, must_change_password = 1 WHERE name = ?1",
            params![name, hash],
        )?;
        if n == 0 {
            return Err(AuthError::NotFound(format!("no account {name:?}")));
        }
        tx.execute(
            "UPDATE sessions SET ended_at = ?2 WHERE user = ?1 AND ended_at IS NULL",
            params![name, ms(self.now())],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Sets or clears `name`'s `must_change_password` flag (`outpost-server user add` sets
    /// it: the administrator chose the first password).
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::Storage`].
    pub fn set_must_change_password(&self, name: &str, must: bool) -> Result<(), AuthError> {
        let n = self.conn().execute(
            "UPDATE accounts SET must_change_password = ?2 WHERE name = ?1",
            params![name, must],
        )?;
        if n == 0 {
            return Err(AuthError::NotFound(format!("no account {name:?}")));
        }
        Ok(())
    }

    /// Ends the session whose token hash is `token_sha256` (logout): the token is refused
    /// from now on. The person's grants on the device are NOT ended: the console's vault
    /// still lets them sign in offline there until their offline grace runs out (a
    /// commander who signed out at the end of a shift must be able to sign in when the
    /// network fails), and the ops they write then, signed with their op key, are accepted
    /// when another person's session pushes them. Grants end at the grace's end, at
    /// [`Accounts::disable`] and at [`Accounts::revoke_device`].
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn end_session(&self, token_sha256: &str) -> Result<(), AuthError> {
        self.conn().execute(
            "UPDATE sessions SET ended_at = ?2 WHERE token_sha256 = ?1 AND ended_at IS NULL",
            params![token_sha256, ms(self.now())],
        )?;
        Ok(())
    }

    /// What the push check needs about `user` as an author on `device_id`; `None` when
    /// there is no such account.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn author(&self, user: &str, device_id: &str) -> Result<Option<AuthorInfo>, AuthError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT role, unit_id, enabled FROM accounts WHERE name = ?1",
                [user],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                },
            )
            .optional()?;
        let Some((role, unit_id, enabled)) = row else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT granted_at, expires_at, ended_at, key_id, op_key FROM grants
             WHERE user = ?1 AND device_id = ?2",
        )?;
        let grants = stmt
            .query_map(params![user, device_id], |r| {
                let expires = r.get::<_, i64>(1)?;
                let ended = r.get::<_, Option<i64>>(2)?;
                Ok(GrantWindow {
                    from_ms: r.get::<_, i64>(0)?.saturating_sub(GRANT_CLOCK_SLACK_MS),
                    until_ms: ended.map_or(expires, |e| e.min(expires)),
                    key_id: r.get::<_, Option<String>>(3)?,
                    key: r
                        .get::<_, Option<String>>(4)?
                        .and_then(|k| outpost_domain::op_auth::decode_key(&k)),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(AuthorInfo {
            role: parse_role(&role)?,
            unit_id,
            enabled,
            grants,
        }))
    }

    /// What consoles must honour offline.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn revocations(&self) -> Result<Revocations, AuthError> {
        let conn = self.conn();
        let version: i64 =
            conn.query_row("SELECT revocation_version FROM meta", [], |r| r.get(0))?;
        let list = |sql: &str| -> Result<Vec<String>, AuthError> {
            let mut stmt = conn.prepare(sql)?;
            let v = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        };
        Ok(Revocations {
            version: u64::try_from(version).unwrap_or(0),
            revoked_devices: list(
                "SELECT device_id FROM devices WHERE revoked_at IS NOT NULL ORDER BY device_id",
            )?,
            disabled_users: list("SELECT name FROM accounts WHERE enabled = 0 ORDER BY name")?,
        })
    }

    /// Issues (or replaces) the token of OsmAnd device `device_id` (the phone's id in its
    /// URL) and returns it; only its SHA-256 is stored.
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] (empty or over-long id), [`AuthError::Storage`].
    pub fn issue_device_token(&self, device_id: &str) -> Result<String, AuthError> {
        let id = device_id.trim();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(AuthError::BadRequest(
                "device id: 1-128 characters, no control characters".into(),
            ));
        }
        let token = hex::encode(random_bytes(16)?);
        self.conn().execute(
            "INSERT INTO device_tokens(device_id, token_sha256, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(device_id) DO UPDATE SET token_sha256 = excluded.token_sha256,
                 created_at = excluded.created_at",
            params![id, sha256_hex(&token), ms(self.now())],
        )?;
        Ok(token)
    }

    /// True when `token` is the current token of OsmAnd device `device_id`.
    ///
    /// # Errors
    /// [`AuthError::Storage`].
    pub fn check_device_token(&self, device_id: &str, token: &str) -> Result<bool, AuthError> {
        let stored: Option<String> = self
            .conn()
            .query_row(
                "SELECT token_sha256 FROM device_tokens WHERE device_id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(stored.is_some_and(|s| ct_eq(&s, &sha256_hex(token))))
    }
}

const DEVICE_SELECT: &str = "SELECT device_id, name, origin, cert_serial, enrolled_by, \
     enrolled_at, revoked_at, revoke_reason, cache_key FROM devices";

type DeviceRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn finish_device(row: DeviceRow) -> Result<DeviceRecord, AuthError> {
    let (device_id, name, origin, cert_serial, enrolled_by, at, revoked, reason, cache_key) = row;
    Ok(DeviceRecord {
        info: DeviceInfo {
            origin: origin
                .parse()
                .map_err(|e| AuthError::Storage(format!("devices.origin of {device_id}: {e}")))?,
            device_id,
            name,
            cert_serial,
            enrolled_by,
            enrolled_at: from_ms(at),
            revoked_at: revoked.map(from_ms),
            revoke_reason: reason,
        },
        cache_key,
    })
}

fn parse_role(text: &str) -> Result<Role, AuthError> {
    text.parse()
        .map_err(|e| AuthError::Storage(format!("accounts.role: {e}")))
}

fn no_user(name: &str) -> AuthError {
    AuthError::NotFound(format!("user: no account {name:?}"))
}

/// How many login names without an account [`UnknownNames`] remembers; past it the
/// oldest is forgotten.
pub const UNKNOWN_NAMES_MAX: usize = 10_000;

/// Failed sign-ins of login names that have no account, in memory (a restart forgets
/// them), keyed by SHA-256 of the name's normalized key
/// (`outpost_domain::names::login_name_key`) so that the table's size does not depend on
/// what is typed; at most [`UNKNOWN_NAMES_MAX`] names, the one first seen longest ago
/// dropped first. Such a name is "locked" by the [`LOCKOUT_FAILURES`]th failure within
/// [`LOCKOUT_WINDOW_S`] and stays so, as a real account does until an administrator
/// unlocks it, so 5 tries do not tell an outsider whether a name exists. Nothing else is
/// created for the name.
#[derive(Debug, Default)]
struct UnknownNames {
    entries: HashMap<[u8; 32], UnknownName>,
    /// Keys in the order they were first seen (oldest first).
    order: VecDeque<[u8; 32]>,
}

#[derive(Debug, Default)]
struct UnknownName {
    /// Times of failures (ms since the epoch) within the window, oldest first.
    failures: VecDeque<i64>,
    locked: bool,
}

impl UnknownNames {
    fn key(user: &str) -> [u8; 32] {
        Sha256::digest(outpost_domain::names::login_name_key(user).as_bytes()).into()
    }

    fn is_locked(&self, user: &str) -> bool {
        self.entries.get(&Self::key(user)).is_some_and(|e| e.locked)
    }

    /// Counts a failure of `user` at `now_ms`; true when the name is locked by it.
    fn count_failure(&mut self, user: &str, now_ms: i64) -> bool {
        let key = Self::key(user);
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= UNKNOWN_NAMES_MAX {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
            self.order.push_back(key);
        }
        let entry = self.entries.entry(key).or_default();
        let since = now_ms - LOCKOUT_WINDOW_S * 1000;
        while entry.failures.front().is_some_and(|&t| t <= since) {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now_ms);
        if entry.failures.len() >= usize::try_from(LOCKOUT_FAILURES).unwrap_or(5) {
            entry.locked = true;
        }
        entry.locked
    }
}

fn locked_out(user: &str) -> AuthError {
    AuthError::LockedOut(format!(
        "the account {user:?} is locked after {LOCKOUT_FAILURES} failed sign-ins within \
         {} minutes; an administrator must unlock it (outpost-server user unlock)",
        LOCKOUT_WINDOW_S / 60
    ))
}

/// The TOTP step (unix time / 30) whose code is `code`, among the current step and one
/// either side; `None` when none matches or `code` is not 6 digits.
fn totp_step(
    secret: &str,
    user: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, AuthError> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret, user)?;
    let now_step = now.timestamp().div_euclid(TOTP_STEP_S as i64);
    let mut found = None;
    // Every candidate is computed and compared, whichever matches.
    for step in [now_step - 1, now_step, now_step + 1] {
        let Ok(at) = u64::try_from(step * TOTP_STEP_S as i64) else {
            continue;
        };
        if ct_eq(&t.generate(at), code) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// The answer to the right password with a TOTP code already used (replay, RFC 6238
/// §5.2) — typically enrolling and signing in within the same 30 s (fresh review S4).
pub const CODE_ALREADY_USED: &str = "this code was already used; wait for the next one";

fn code_already_used() -> AuthError {
    AuthError::Unauthenticated(CODE_ALREADY_USED.to_string())
}

/// Makes `path` (holding hashes, TOTP secrets and escrowed keys) readable by its owner
/// only; best effort (a failure is logged).
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict permissions");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_domain::clock::FixedClock;

    fn open(clock: Arc<FixedClock>) -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().expect("temp dir");
        let acc =
            Accounts::open(dir.path(), PasswordParams::cheap_for_tests(), clock).expect("open");
        (dir, acc)
    }

    fn clock() -> Arc<FixedClock> {
        Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 30, 5, 0, 0)
                .single()
                .expect("time"),
        ))
    }

    #[test]
    fn totp_matches_rfc6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); the 6-digit code is
        // its last six digits.
        let secret = totp_rs::Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        let at = Utc.timestamp_opt(59, 0).single().expect("time");
        assert_eq!(totp_code(&secret, at).expect("code"), "287082");
    }

    #[test]
    fn a_code_is_accepted_once_and_a_step_either_side() {
        let c = clock();
        let (_d, acc) = open(c.clone());
        let created = acc
            .add_user(&NewAccount {
                name: "ana".into(),
                role: Role::Commander,
                unit_id: None,
                display_name: None,
                password: "correct horse battery".into(),
            })
            .expect("add");
        let code = totp_code(&created.totp_secret, c.now()).expect("code");
        acc.verify_credentials("ana", "correct horse battery", &code)
            .expect("first use");
        let again = acc.verify_credentials("ana", "correct horse battery", &code);
        assert_eq!(
            again.map(|_| ()).map_err(|e| e.code()),
            Err("unauthenticated")
        );
        // The next step's code, 30 s early, is accepted (one step of skew).
        let next = totp_code(
            &created.totp_secret,
            c.now() + chrono::Duration::seconds(30),
        )
        .expect("code");
        acc.verify_credentials("ana", "correct horse battery", &next)
            .expect("next step");
        // Two steps ahead is not.
        let far = totp_code(
            &created.totp_secret,
            c.now() + chrono::Duration::seconds(90),
        )
        .expect("code");
        assert!(
            acc.verify_credentials("ana", "correct horse battery", &far)
                .is_err()
        );
    }

    #[test]
    fn a_disabled_account_is_refused_and_listed() {
        let c = clock();
        let (_d, acc) = open(c.clone());
        let created = acc
            .add_user(&NewAccount {
                name: "bo".into(),
                role: Role::Viewer,
                unit_id: None,
                display_name: Some("Bo Chen".into()),
                password: "correct horse battery".into(),
            })
            .expect("add");
        acc.disable("bo").expect("disable");
        let code = totp_code(&created.totp_secret, c.now()).expect("code");
        let right = acc.verify_credentials("bo", "correct horse battery", &code);
        assert_eq!(
            right.map(|_| ()),
            Err(AuthError::Unauthenticated(
                "the account \"bo\" is disabled".into()
            ))
        );
        let wrong = acc.verify_credentials("bo", "a wrong password", &code);
        assert_eq!(
            wrong.map(|_| ()),
            Err(AuthError::Unauthenticated(
                "wrong name, password or code".into()
            ))
        );
        let rev = acc.revocations().expect("revocations");
        assert_eq!(rev.version, 1);
        assert_eq!(rev.disabled_users, ["bo"]);
        assert_eq!(
            acc.disable("nobody").map_err(|e| e.code()),
            Err("not_found")
        );
    }

    #[test]
    fn field_units_need_a_unit_and_others_none() {
        let (_d, acc) = open(clock());
        let mut new = NewAccount {
            name: "p03".into(),
            role: Role::FieldUnit,
            unit_id: None,
            display_name: None,
            password: "correct horse battery".into(),
        };
        assert_eq!(
            acc.add_user(&new).map_err(|e| e.code()).err(),
            Some("bad_request")
        );
        new.unit_id = Some("P-03".into());
        acc.add_user(&new).expect("field unit with a unit");
        let dup = acc.add_user(&new).map_err(|e| e.code()).err();
        assert_eq!(dup, Some("conflict"));
        let short = NewAccount {
            name: "x".into(),
            role: Role::Viewer,
            unit_id: None,
            display_name: None,
            password: "short".into(),
        };
        assert_eq!(
            acc.add_user(&short).map_err(|e| e.code()).err(),
            Some("bad_request")
        );
        let users = acc.list_users().expect("list");
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].unit_id.as_deref(), Some("P-03"));
        assert_eq!(users[0].role, Role::FieldUnit);
    }

    #[test]
    fn unknown_names_keep_at_most_the_newest_10000_and_fold_case() {
        let mut names = UnknownNames::default();
        for _ in 0..5 {
            names.count_failure("ghost", 1_000);
        }
        assert!(names.is_locked("GHOST"));
        for i in 0..UNKNOWN_NAMES_MAX - 1 {
            names.count_failure(&format!("n{i}"), 1_000);
        }
        assert_eq!(names.entries.len(), UNKNOWN_NAMES_MAX);
        assert!(names.is_locked("ghost"));
        // One more name: the oldest (ghost) is forgotten, the newest kept.
        names.count_failure("newest", 1_000);
        assert_eq!(names.entries.len(), UNKNOWN_NAMES_MAX);
        assert_eq!(names.order.len(), UNKNOWN_NAMES_MAX);
        assert!(!names.is_locked("ghost"));
        assert!(names.entries.contains_key(&UnknownNames::key("newest")));
    }
}
