//! Sign-in (issue 6) through the `Gate`: a standalone console's setup, offline sign-in, lock
//! and unlock, the 12-hour re-authentication, every refusal with its message, the vault's
//! integrity, the encrypted cache, and a server's sign-in through a fake `AuthServer`.
//! Time is a `FixedClock`; nothing sleeps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};

use outpost_app::auth::{
    AuthServer, DeviceIdentity, Gate, GateConfig, GateOptions, KdfParams, ServerError, totp,
};
use outpost_app::ipc::{
    AuthState, AuthStatus, ChangePassword, EnrollDevice, ErrorCode, NewIncident, SetupAccount,
    SignIn, TotpCode, Unlock,
};
use outpost_app::{AppError, Console};
use outpost_domain::access::Role;
use outpost_domain::clock::FixedClock;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::IncidentType;
use outpost_domain::wire::{
    EnrollRequest, EnrollResponse, LoginRequest, LoginResponse, PasswordChangeRequest, Revocations,
};
use outpost_store::query;

/// Must never appear in the raw cache files.
const SECRET_TEXT: &str = "KNOWN-INCIDENT-TEXT 被困群众";
const PASSWORD: &str = "correct horse battery";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0)
        .single()
        .expect("valid date")
}

fn options(dir: &Path, server_url: Option<&str>, ca_file: Option<PathBuf>) -> GateOptions {
    GateOptions {
        data_dir: dir.to_path_buf(),
        pack: None,
        demo: false,
        field_unit: None,
        server_url: server_url.map(str::to_owned),
        ca_file,
        idle_lock_s: Some(600),
        login_hint: None,
    }
}

fn config(server: Option<Arc<FakeServer>>) -> GateConfig {
    GateConfig {
        kdf: KdfParams::TEST_ONLY,
        server: server.map(|s| s as Arc<dyn AuthServer>),
        start_sync: false,
    }
}

fn code(secret: &str, clock: &FixedClock) -> String {
    use outpost_domain::Clock;
    totp::code_at(secret, clock.now()).expect("code")
}

fn incident(description: &str) -> NewIncident {
    NewIncident {
        incident_type: IncidentType::MissingPerson,
        priority: None,
        location: LatLon {
            lat: 42.5078,
            lon: 1.5211,
        },
        address: "Avinguda Meritxell".into(),
        description: description.into(),
    }
}

fn err(r: Result<impl std::fmt::Debug, AppError>) -> AppError {
    r.expect_err("must be refused")
}

fn assert_refused(r: Result<impl std::fmt::Debug, AppError>, code: ErrorCode, text: &str) {
    let e = err(r);
    assert_eq!(e.code, code, "{}", e.message);
    assert!(e.message.contains(text), "{:?} lacks {text:?}", e.message);
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn raw_cache(dir: &Path) -> Vec<u8> {
    let db = std::fs::read(dir.join("outpost.db")).unwrap_or_default();
    let wal = std::fs::read(dir.join("outpost.db-wal")).unwrap_or_default();
    [db, wal].concat()
}

fn outbox_len(console: &Console) -> usize {
    let store = console.store_handle();
    let store = store.lock().expect("store");
    query::outbox_all(store.conn()).expect("outbox").len()
}

/// A standalone console after setup: (dir, clock, gate, TOTP secret); signed in as
/// "cmdr.li" at t0 + 10 s.
fn standalone() -> (tempfile::TempDir, Arc<FixedClock>, Gate, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let gate = Gate::open_with(options(dir.path(), None, None), clock.clone(), config(None))
        .expect("gate");
    assert_eq!(gate.auth_status().state, AuthState::Setup);
    let enrollment = gate
        .setup_account(SetupAccount {
            user: "cmdr.li".into(),
            display_name: "李队长".into(),
            password: PASSWORD.into(),
        })
        .expect("setup");
    assert!(
        enrollment
            .uri
            .starts_with("otpauth://totp/Outpost:cmdr.li?secret="),
        "{}",
        enrollment.uri
    );
    assert_eq!(enrollment.secret.len(), 32, "20 bytes in base32");
    clock.advance_secs(10);
    let status = gate
        .confirm_setup(TotpCode {
            code: code(&enrollment.secret, &clock),
        })
        .expect("confirm");
    assert_eq!(status.state, AuthState::SignedIn);
    (dir, clock, gate, enrollment.secret)
}

#[test]
fn setup_then_offline_sign_in_lock_and_unlock() {
    let (dir, clock, gate, secret) = standalone();
    let status = gate.auth_status();
    let me = status.user.expect("signed in");
    assert_eq!(me.user, "cmdr.li");
    assert_eq!(me.role, "commander");
    assert!(!me.online);
    assert_eq!(me.reauth_at, t0() + Duration::seconds(10 + 12 * 3600));
    assert_eq!(status.known_users.len(), 1);
    assert_eq!(status.known_users[0].offline_until, None, "no expiry");

    let console = gate.console().expect("console");
    let created = console
        .create_incident(incident(SECRET_TEXT))
        .expect("create");
    assert_eq!(created.description, SECRET_TEXT);
    assert_eq!(created.created_by, "cmdr.li");
    assert_eq!(outbox_len(&console), 1);
    let opened = Arc::new(Mutex::new(0));
    {
        let opened = opened.clone();
        gate.on_signed_in(Box::new(move |_| *opened.lock().expect("count") += 1));
    }

    // Lock: the console is kept but not handed out; the password unlocks.
    assert_eq!(gate.lock().state, AuthState::Locked);
    assert_refused(gate.console(), ErrorCode::SignedOut, "locked");
    assert_refused(
        gate.unlock(Unlock {
            password: "not the password".into(),
            code: None,
        }),
        ErrorCode::AuthFailed,
        "wrong password",
    );
    let status = gate
        .unlock(Unlock {
            password: PASSWORD.into(),
            code: None,
        })
        .expect("unlock");
    assert_eq!(status.state, AuthState::SignedIn);
    assert!(Arc::ptr_eq(&gate.console().expect("console"), &console));
    assert_eq!(*opened.lock().expect("count"), 0, "an unlock opens nothing");

    // Sign out, then an offline sign-in with the next code.
    assert_eq!(gate.sign_out().state, AuthState::SignedOut);
    assert_refused(gate.console(), ErrorCode::SignedOut, "nobody is signed in");
    drop(console);
    clock.advance_secs(30);
    let status = gate
        .sign_in(SignIn {
            user: "cmdr.li".into(),
            password: PASSWORD.into(),
            code: code(&secret, &clock),
        })
        .expect("offline sign-in");
    assert_eq!(status.state, AuthState::SignedIn);
    assert_eq!(
        *opened.lock().expect("count"),
        1,
        "a sign-in opens a console"
    );
    let console = gate.console().expect("console");
    let detail = console
        .incident_detail(outpost_app::ipc::IncidentRef {
            incident_id: created.summary.id.clone(),
        })
        .expect("the incident is in the encrypted cache");
    assert_eq!(detail.description, SECRET_TEXT);

    // 12 hours after the full sign-in: locked; the password alone no longer unlocks.
    clock.advance_secs(12 * 3600);
    let status = gate.auth_status();
    assert_eq!(status.state, AuthState::Locked);
    assert!(
        status.message.as_deref().unwrap_or("").contains("12 hours"),
        "{:?}",
        status.message
    );
    assert_refused(gate.console(), ErrorCode::SignedOut, "locked");
    assert_refused(
        gate.unlock(Unlock {
            password: PASSWORD.into(),
            code: None,
        }),
        ErrorCode::AuthFailed,
        "12 hours",
    );
    let status = gate
        .unlock(Unlock {
            password: PASSWORD.into(),
            code: Some(code(&secret, &clock)),
        })
        .expect("unlock with the code");
    assert_eq!(status.state, AuthState::SignedIn);
    let me = status.user.expect("user");
    assert_eq!(
        me.reauth_at,
        clock_now(&clock) + Duration::seconds(12 * 3600)
    );

    // The raw cache never holds the incident text.
    assert!(!contains(&raw_cache(dir.path()), SECRET_TEXT));
    drop(console);
    gate.shutdown();
    assert!(!contains(&raw_cache(dir.path()), SECRET_TEXT));
}

fn clock_now(clock: &FixedClock) -> DateTime<Utc> {
    use outpost_domain::Clock;
    clock.now()
}

#[test]
fn offline_refusals_name_their_reason() {
    let (_dir, clock, gate, secret) = standalone();
    gate.sign_out();
    clock.advance_secs(30);
    let sign_in = |password: &str, code: String| {
        gate.sign_in(SignIn {
            user: "cmdr.li".into(),
            password: password.into(),
            code,
        })
    };
    assert_refused(
        sign_in("wrong password!", code(&secret, &clock)),
        ErrorCode::AuthFailed,
        "wrong password for \"cmdr.li\"",
    );
    assert_refused(
        sign_in(PASSWORD, "000000".into()),
        ErrorCode::AuthFailed,
        "wrong code",
    );
    assert_refused(
        gate.sign_in(SignIn {
            user: "nobody".into(),
            password: PASSWORD.into(),
            code: code(&secret, &clock),
        }),
        ErrorCode::AuthFailed,
        "nobody of that name signed in on this console before",
    );
    let good = code(&secret, &clock);
    sign_in(PASSWORD, good.clone()).expect("sign in");
    gate.sign_out();
    assert_refused(
        sign_in(PASSWORD, good),
        ErrorCode::AuthFailed,
        "already used",
    );
    // The previous step's code (±1 step) is older than the one used: also refused.
    let previous = totp::code_at(&secret, clock_now(&clock) - Duration::seconds(30)).expect("code");
    assert_refused(
        sign_in(PASSWORD, previous),
        ErrorCode::AuthFailed,
        "already used",
    );
    clock.advance_secs(30);
    sign_in(PASSWORD, code(&secret, &clock)).expect("the next code works");
}

#[test]
fn five_failures_in_15_minutes_refuse_offline_sign_in_for_15_minutes() {
    let (dir, clock, gate, secret) = standalone();
    gate.sign_out();
    for i in 1..=4 {
        clock.advance_secs(60);
        assert_refused(
            gate.sign_in(SignIn {
                user: "cmdr.li".into(),
                password: format!("wrong {i}"),
                code: code(&secret, &clock),
            }),
            ErrorCode::AuthFailed,
            "wrong password",
        );
    }
    clock.advance_secs(60);
    assert_refused(
        gate.sign_in(SignIn {
            user: "cmdr.li".into(),
            password: PASSWORD.into(),
            code: "123456".into(),
        }),
        ErrorCode::AuthFailed,
        "offline sign-in is refused for 15 minutes",
    );
    // The right password and code are refused too, also by a restarted console.
    drop(gate);
    let gate = Gate::open_with(options(dir.path(), None, None), clock.clone(), config(None))
        .expect("gate");
    clock.advance_secs(14 * 60);
    assert_refused(
        gate.sign_in(SignIn {
            user: "cmdr.li".into(),
            password: PASSWORD.into(),
            code: code(&secret, &clock),
        }),
        ErrorCode::AuthFailed,
        "too many failed sign-ins for \"cmdr.li\"",
    );
    clock.advance_secs(61);
    gate.sign_in(SignIn {
        user: "cmdr.li".into(),
        password: PASSWORD.into(),
        code: code(&secret, &clock),
    })
    .expect("15 minutes later");
}

#[test]
fn a_role_changed_in_the_vault_is_refused_and_a_damaged_vault_is_not_reset() {
    let (dir, clock, gate, secret) = standalone();
    drop(gate);
    let path = dir.path().join("vault.json");
    let text = std::fs::read_to_string(&path).expect("vault");
    assert!(text.contains("\"role\": \"commander\""), "{text}");
    assert!(!text.contains(&secret), "the TOTP secret is sealed");
    std::fs::write(
        &path,
        text.replace("\"role\": \"commander\"", "\"role\": \"viewer\""),
    )
    .expect("tamper");
    let gate = Gate::open_with(options(dir.path(), None, None), clock.clone(), config(None))
        .expect("gate");
    clock.advance_secs(30);
    assert_refused(
        gate.sign_in(SignIn {
            user: "cmdr.li".into(),
            password: PASSWORD.into(),
            code: code(&secret, &clock),
        }),
        ErrorCode::AuthFailed,
        "was altered outside Outpost",
    );
    drop(gate);

    std::fs::write(&path, b"{ not json").expect("damage");
    let e = Gate::open_with(options(dir.path(), None, None), clock.clone(), config(None))
        .expect_err("damaged vault");
    assert_eq!(e.code, ErrorCode::Storage);
    assert!(e.message.contains("vault.json"), "{}", e.message);
    assert!(e.message.contains("damaged"), "{}", e.message);
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        b"{ not json",
        "never silently reset"
    );
}

// ---- with a server ----

struct Account {
    password: String,
    secret: String,
    role: Role,
    unit_id: Option<String>,
}

/// A server in memory: accounts, the escrowed cache key, revocations, reachability. Like
/// the real one it takes each code step once per account, and its enrollment answers with a
/// session (unless `session_at_enroll` is off: a server of an earlier version).
struct FakeServer {
    clock: Arc<FixedClock>,
    online: AtomicBool,
    accounts: HashMap<String, Account>,
    escrow: Mutex<Option<String>>,
    revocations: Mutex<Revocations>,
    grace_s: u64,
    logins: Mutex<u32>,
    used_steps: Mutex<HashMap<String, u64>>,
    session_at_enroll: AtomicBool,
    logouts: Mutex<Vec<String>>,
    /// Passwords changed through `POST /v1/password`.
    changed: Mutex<HashMap<String, String>>,
    /// Sign-ins answer `must_change_password` (an administrator's reset).
    must_change: AtomicBool,
}

const DEVICE_ID: &str = "dev-test-0001";

impl FakeServer {
    fn new(clock: Arc<FixedClock>) -> Arc<FakeServer> {
        let mut accounts = HashMap::new();
        for (user, role, unit) in [
            ("cmdr.wang", Role::Commander, None),
            ("disp.zhao", Role::Dispatcher, None),
            ("view.chen", Role::Viewer, None),
            ("field.03", Role::FieldUnit, Some("u-03")),
            ("admin.li", Role::Administrator, None),
            ("audit.sun", Role::Auditor, None),
        ] {
            accounts.insert(
                user.to_owned(),
                Account {
                    password: format!("{user} password"),
                    secret: totp::new_secret().expect("secret"),
                    role,
                    unit_id: unit.map(str::to_owned),
                },
            );
        }
        Arc::new(FakeServer {
            clock,
            online: AtomicBool::new(true),
            accounts,
            escrow: Mutex::new(None),
            revocations: Mutex::new(Revocations::default()),
            grace_s: 3600,
            logins: Mutex::new(0),
            used_steps: Mutex::new(HashMap::new()),
            session_at_enroll: AtomicBool::new(true),
            logouts: Mutex::new(Vec::new()),
            changed: Mutex::new(HashMap::new()),
            must_change: AtomicBool::new(false),
        })
    }

    fn session(&self, user: &str) -> LoginResponse {
        let a = &self.accounts[user];
        LoginResponse {
            token: format!("token-{user}"),
            expires_at: clock_now(&self.clock) + Duration::hours(12),
            user: user.to_owned(),
            display_name: format!("{user} (server)"),
            role: a.role,
            unit_id: a.unit_id.clone(),
            totp_secret: a.secret.clone(),
            offline_grace_s: self.grace_s,
            cache_key: self
                .escrow
                .lock()
                .expect("escrow")
                .clone()
                .expect("enrolled"),
            op_key: "42".repeat(32),
            op_key_id: "fakekey".into(),
            must_change_password: self.must_change.load(Ordering::SeqCst),
        }
    }

    fn secret(&self, user: &str) -> String {
        self.accounts[user].secret.clone()
    }

    fn check(&self, user: &str, password: &str, code: &str) -> Result<&Account, ServerError> {
        let refused = || ServerError::Refused {
            code: "unauthenticated".into(),
            message: "wrong user, password or code".into(),
        };
        let a = self.accounts.get(user).ok_or_else(refused)?;
        let current = self.changed.lock().expect("changed").get(user).cloned();
        if current.as_deref().unwrap_or(&a.password) != password {
            return Err(refused());
        }
        let step = totp::matching_step(&a.secret, code, clock_now(&self.clock))
            .expect("secret")
            .ok_or_else(refused)?;
        let mut used = self.used_steps.lock().expect("steps");
        if used.get(user).is_some_and(|last| step <= *last) {
            return Err(refused());
        }
        used.insert(user.to_owned(), step);
        Ok(a)
    }

    fn reachable(&self) -> Result<(), ServerError> {
        if self.online.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ServerError::Unreachable("connection refused".into()))
        }
    }
}

impl AuthServer for FakeServer {
    fn enroll(
        &self,
        _url: &str,
        _ca_pem: &str,
        req: &EnrollRequest,
    ) -> Result<EnrollResponse, ServerError> {
        self.reachable()?;
        self.check(&req.user, &req.password, &req.totp)?;
        assert!(
            req.csr_pem.contains("CERTIFICATE REQUEST"),
            "{}",
            req.csr_pem
        );
        *self.escrow.lock().expect("escrow") = Some(req.cache_key.clone());
        Ok(EnrollResponse {
            device_id: DEVICE_ID.into(),
            certificate_pem: "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"
                .into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n".into(),
            not_after: clock_now(&self.clock) + Duration::days(365),
            session: self
                .session_at_enroll
                .load(Ordering::SeqCst)
                .then(|| self.session(&req.user)),
        })
    }

    fn login(
        &self,
        _url: &str,
        device: &DeviceIdentity,
        req: &LoginRequest,
    ) -> Result<LoginResponse, ServerError> {
        self.reachable()?;
        if self
            .revocations
            .lock()
            .expect("revs")
            .revoked_devices
            .contains(&device.device_id)
        {
            return Err(ServerError::Refused {
                code: "device_revoked".into(),
                message: "this device was revoked".into(),
            });
        }
        self.check(&req.user, &req.password, &req.totp)?;
        *self.logins.lock().expect("logins") += 1;
        Ok(self.session(&req.user))
    }

    fn logout(&self, _url: &str, _device: &DeviceIdentity, token: &str) -> Result<(), ServerError> {
        self.reachable()?;
        self.logouts.lock().expect("logouts").push(token.to_owned());
        Ok(())
    }

    fn revocations(
        &self,
        _url: &str,
        _device: &DeviceIdentity,
        _token: &str,
    ) -> Result<Revocations, ServerError> {
        self.reachable()?;
        Ok(self.revocations.lock().expect("revs").clone())
    }

    fn change_password(
        &self,
        _url: &str,
        _device: &DeviceIdentity,
        token: &str,
        req: &PasswordChangeRequest,
    ) -> Result<(), ServerError> {
        self.reachable()?;
        let user = token.strip_prefix("token-").expect("a fake token");
        self.check(user, &req.old_password, &req.totp)?;
        self.changed
            .lock()
            .expect("changed")
            .insert(user.to_owned(), req.new_password.clone());
        self.must_change.store(false, Ordering::SeqCst);
        Ok(())
    }
}

const URL: &str = "https://outpost.test:8443";

/// A console enrolled with the fake server by "cmdr.wang" (signed in online at t0 + 10 s).
fn enrolled() -> (tempfile::TempDir, Arc<FixedClock>, Arc<FakeServer>, Gate) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let server = FakeServer::new(clock.clone());
    let ca = dir.path().join("agency-ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    )
    .expect("ca");
    let data = dir.path().join("data");
    let gate = Gate::open_with(
        options(&data, Some(URL), Some(ca)),
        clock.clone(),
        config(Some(server.clone())),
    )
    .expect("gate");
    assert_eq!(gate.auth_status().state, AuthState::Enroll);
    clock.advance_secs(10);
    let status = gate
        .enroll_device(EnrollDevice {
            server_url: URL.into(),
            user: "cmdr.wang".into(),
            password: "cmdr.wang password".into(),
            code: code(&server.secret("cmdr.wang"), &clock),
            device_name: "巡逻车 03 笔记本".into(),
        })
        .expect("enroll");
    assert_eq!(status.state, AuthState::SignedIn, "{:?}", status.message);
    assert_eq!(status.device_id.as_deref(), Some(DEVICE_ID));
    let me = status.user.expect("user");
    assert!(me.online);
    assert_eq!(me.role, "commander");
    (dir, clock, server, gate)
}

fn sign_in_as(
    gate: &Gate,
    server: &FakeServer,
    clock: &FixedClock,
    user: &str,
) -> Result<outpost_app::ipc::AuthStatus, AppError> {
    gate.sign_in(SignIn {
        user: user.into(),
        password: format!("{user} password"),
        code: code(&server.secret(user), clock),
    })
}

#[test]
fn enrollment_stores_the_device_identity_privately_and_signs_in_online() {
    let (dir, _clock, server, gate) = enrolled();
    let device = dir.path().join("data/device");
    let key = std::fs::read_to_string(device.join("key.pem")).expect("key");
    assert!(key.contains("PRIVATE KEY"), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(device.join("key.pem"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(gate.session_token().as_deref(), Some("token-cmdr.wang"));
    // Signed in with the enrollment's session: no login (it would need the next code).
    assert_eq!(*server.logins.lock().expect("logins"), 0);
    // The escrowed key opens the cache; the vault keeps the person for offline use.
    let status = gate.auth_status();
    assert_eq!(status.known_users.len(), 1);
    assert_eq!(
        status.known_users[0].offline_until,
        Some(t0() + Duration::seconds(10 + 3600))
    );
}

/// A console with the fake server, not enrolled yet (the CA file given).
fn unenrolled() -> (tempfile::TempDir, Arc<FixedClock>, Arc<FakeServer>, Gate) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let server = FakeServer::new(clock.clone());
    let ca = dir.path().join("agency-ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    )
    .expect("ca");
    let gate = Gate::open_with(
        options(&dir.path().join("data"), Some(URL), Some(ca)),
        clock.clone(),
        config(Some(server.clone())),
    )
    .expect("gate");
    (dir, clock, server, gate)
}

fn enroll_as(gate: &Gate, server: &FakeServer, clock: &FixedClock, user: &str) -> AuthStatus {
    gate.enroll_device(EnrollDevice {
        server_url: URL.into(),
        user: user.into(),
        password: format!("{user} password"),
        code: code(&server.secret(user), clock),
        device_name: "laptop".into(),
    })
    .expect("enrolled")
}

#[test]
fn a_server_without_a_session_at_enrollment_asks_for_the_next_code() {
    let (_dir, clock, server, gate) = unenrolled();
    server.session_at_enroll.store(false, Ordering::SeqCst);
    let status = enroll_as(&gate, &server, &clock, "cmdr.wang");
    assert_eq!(status.state, AuthState::SignedOut);
    assert_eq!(status.device_id.as_deref(), Some(DEVICE_ID));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("enrolled as dev-test-0001; sign in with your password and the next code"),
        "{message}"
    );
    clock.advance_secs(30);
    let me = sign_in_as(&gate, &server, &clock, "cmdr.wang")
        .expect("next code")
        .user
        .expect("user");
    assert!(me.online);
}

const CONSOLE_ROLE_REFUSAL: &str = "administrators and auditors use the server's tools: \
                                    `outpost-server user …`, `outpost-server audit …`";

#[test]
fn administrators_and_auditors_are_refused_the_console_online() {
    let (dir, clock, server, gate) = enrolled();
    gate.sign_out();
    for user in ["admin.li", "audit.sun"] {
        clock.advance_secs(30);
        let e = err(sign_in_as(&gate, &server, &clock, user));
        assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
        assert!(e.message.contains(CONSOLE_ROLE_REFUSAL), "{}", e.message);
        assert!(e.message.contains(user), "{}", e.message);
        let status = gate.auth_status();
        assert_eq!(status.state, AuthState::SignedOut);
        assert!(status.user.is_none());
        assert_eq!(
            gate.console().map(|_| ()).err().map(|e| e.code),
            Some(ErrorCode::SignedOut)
        );
        // The server session the login opened is ended; nothing kept for offline use.
        assert!(
            server
                .logouts
                .lock()
                .expect("logouts")
                .contains(&format!("token-{user}")),
            "{user}'s session ended"
        );
        assert!(status.known_users.iter().all(|k| k.user != user));
        let vault = std::fs::read_to_string(dir.path().join("data/vault.json")).expect("vault");
        assert!(!vault.contains(user), "{vault}");
    }
    // The others still sign in.
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("commander");
}

#[test]
fn an_administrator_enrolls_the_device_but_does_not_open_the_console() {
    let (_dir, clock, server, gate) = unenrolled();
    let status = enroll_as(&gate, &server, &clock, "admin.li");
    assert_eq!(status.state, AuthState::SignedOut);
    assert_eq!(status.device_id.as_deref(), Some(DEVICE_ID));
    let message = status.message.unwrap_or_default();
    assert!(message.contains("enrolled as dev-test-0001"), "{message}");
    assert!(message.contains(CONSOLE_ROLE_REFUSAL), "{message}");
    assert!(status.known_users.is_empty());
    // A commander signs in on the enrolled device.
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("commander");
}

#[test]
fn an_auditor_entry_in_an_older_vault_is_refused_offline() {
    use outpost_app::auth::vault::{self, Profile, Secrets, Vault};
    let (dir, clock, server, gate) = enrolled();
    gate.sign_out();
    drop(gate);
    let data = dir.path().join("data");
    let cache_key = server
        .escrow
        .lock()
        .expect("escrow")
        .clone()
        .expect("escrowed");
    let profile = Profile {
        user: "audit.sun".into(),
        display_name: "Sun".into(),
        role: Role::Auditor,
        unit_id: None,
        offline_until: Some(clock_now(&clock) + Duration::days(1)),
    };
    let secrets = Secrets {
        cache_key: outpost_store::CacheKey::from_hex(&cache_key).expect("key"),
        totp_secret: server.secret("audit.sun"),
        op_key: Some(
            outpost_domain::op_auth::OpSigner::new("audit.sun", "fakekey", &"42".repeat(32))
                .expect("op key"),
        ),
    };
    let (entry, _) = vault::seal(
        &profile,
        "audit.sun password",
        KdfParams::TEST_ONLY,
        &secrets,
        clock_now(&clock),
    )
    .expect("seal");
    let mut v = Vault::load(&data).expect("vault");
    v.upsert(entry);
    v.save(&data).expect("save");
    server.online.store(false, Ordering::SeqCst);
    let gate = Gate::open_with(
        options(&data, Some(URL), None),
        clock.clone(),
        config(Some(server.clone())),
    )
    .expect("gate");
    clock.advance_secs(30);
    let e = err(sign_in_as(&gate, &server, &clock, "audit.sun"));
    assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
    assert!(e.message.contains(CONSOLE_ROLE_REFUSAL), "{}", e.message);
    assert!(gate.auth_status().user.is_none());
    // The commander still signs in offline.
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("commander offline");
}

#[test]
fn without_a_ca_file_enrollment_says_what_to_give() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let server = FakeServer::new(clock.clone());
    let gate = Gate::open_with(
        options(dir.path(), Some(URL), None),
        clock.clone(),
        config(Some(server.clone())),
    )
    .expect("gate");
    assert_refused(
        gate.enroll_device(EnrollDevice {
            server_url: URL.into(),
            user: "cmdr.wang".into(),
            password: "cmdr.wang password".into(),
            code: code(&server.secret("cmdr.wang"), &clock),
            device_name: "laptop".into(),
        }),
        ErrorCode::InvalidInput,
        "--ca",
    );
}

#[test]
fn offline_grace_ends_offline_sign_in() {
    let (_dir, clock, server, gate) = enrolled();
    gate.sign_out();
    server.online.store(false, Ordering::SeqCst);
    clock.advance_secs(30);
    let status = sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("offline within grace");
    assert!(!status.user.expect("user").online);
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or("")
            .contains("signed in offline"),
        "{:?}",
        status.message
    );
    gate.sign_out();
    clock.advance_secs(3600);
    assert_refused(
        sign_in_as(&gate, &server, &clock, "cmdr.wang"),
        ErrorCode::AuthFailed,
        "offline sign-in period of \"cmdr.wang\" on this console ended",
    );
    // Online again, the server's answer renews it.
    server.online.store(true, Ordering::SeqCst);
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("online");
}

#[test]
fn a_disabled_account_is_refused_offline_and_forgotten() {
    let (_dir, clock, server, gate) = enrolled();
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "disp.zhao").expect("dispatcher online");
    gate.sign_out();
    assert_eq!(gate.auth_status().known_users.len(), 2);
    server.revocations.lock().expect("revs").version = 2;
    server
        .revocations
        .lock()
        .expect("revs")
        .disabled_users
        .push("disp.zhao".into());
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("commander online");
    gate.sign_out();
    let known: Vec<String> = gate
        .auth_status()
        .known_users
        .into_iter()
        .map(|u| u.user)
        .collect();
    assert_eq!(known, vec!["cmdr.wang".to_owned()]);
    server.online.store(false, Ordering::SeqCst);
    clock.advance_secs(30);
    assert_refused(
        sign_in_as(&gate, &server, &clock, "disp.zhao"),
        ErrorCode::AuthFailed,
        "was disabled by an administrator",
    );
}

#[test]
fn a_revoked_device_forgets_its_vault_and_key() {
    let (dir, clock, server, gate) = enrolled();
    gate.sign_out();
    {
        let mut revs = server.revocations.lock().expect("revs");
        revs.version = 3;
        revs.revoked_devices.push(DEVICE_ID.into());
    }
    clock.advance_secs(30);
    assert_refused(
        sign_in_as(&gate, &server, &clock, "cmdr.wang"),
        ErrorCode::AuthFailed,
        "this device was revoked",
    );
    let status = gate.auth_status();
    assert_eq!(status.state, AuthState::Revoked);
    assert!(status.known_users.is_empty());
    assert!(
        !dir.path().join("data/device").exists(),
        "device key deleted"
    );
    let vault = std::fs::read_to_string(dir.path().join("data/vault.json")).expect("vault");
    assert!(!vault.contains("cmdr.wang"), "{vault}");
    // Offline, after a restart: still revoked.
    server.online.store(false, Ordering::SeqCst);
    drop(gate);
    let gate = Gate::open_with(
        options(&dir.path().join("data"), Some(URL), None),
        clock.clone(),
        config(Some(server.clone())),
    )
    .expect("gate");
    assert_eq!(gate.auth_status().state, AuthState::Revoked);
    clock.advance_secs(30);
    assert_refused(
        sign_in_as(&gate, &server, &clock, "cmdr.wang"),
        ErrorCode::AuthFailed,
        "revoked",
    );
}

#[test]
fn a_viewer_console_refuses_writes_locally_and_writes_nothing() {
    let (_dir, clock, server, gate) = enrolled();
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "view.chen").expect("viewer online");
    let console = gate.console().expect("console");
    assert_eq!(console.actor().map(|a| a.role), Some(Role::Viewer));
    let before = outbox_len(&console);
    let e = err(console.create_incident(incident("viewer tries")));
    assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
    assert!(e.message.contains("viewer"), "{}", e.message);
    assert!(e.message.contains("incident.create"), "{}", e.message);
    assert_eq!(outbox_len(&console), before, "nothing reached the outbox");
    assert!(console.console_state().expect("state").incidents.is_empty());
    // The demo replay acts as a commander.
    console
        .acting_as("demo", |c| c.create_incident(incident("demo call")))
        .expect("the demo writes");
    assert_eq!(outbox_len(&console), before + 1);
}

// ---- against the real TLS server ----

/// Polls `f` until it holds (the sync engine runs on its own thread); fails after 30 s.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_gate_enrolls_signs_in_and_syncs_with_a_real_tls_server() {
    use outpost_server::testing::{TEST_PASSWORD, TestServer};

    let server = TestServer::start().expect("test server");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("agency-ca.pem");
    std::fs::write(&ca, server.ca_pem()).expect("ca");
    let data = dir.path().join("data");
    let clock: Arc<FixedClock> = server.clock().clone();
    let gate = Gate::open_with(
        options(&data, Some(&server.url()), Some(ca)),
        clock.clone(),
        GateConfig {
            kdf: KdfParams::TEST_ONLY,
            server: Some(Arc::new(outpost_app::auth::SyncServer)),
            start_sync: true,
        },
    )
    .expect("gate");
    assert_eq!(gate.auth_status().state, AuthState::Enroll);
    let commander = server.user(Role::Commander).name.clone();
    let status = gate
        .enroll_device(EnrollDevice {
            server_url: server.url(),
            user: commander.clone(),
            password: TEST_PASSWORD.into(),
            code: server.fresh_code(Role::Commander),
            device_name: "巡逻车 03 笔记本".into(),
        })
        .expect("enroll");
    let device_id = status.device_id.clone().expect("enrolled");
    // Signed in by the enrollment's session (the server takes a code once: a login with
    // the enrollment's code would be refused).
    assert_eq!(status.state, AuthState::SignedIn, "{:?}", status.message);
    let me = gate.auth_status().user.expect("signed in");
    assert!(me.online, "signed in online");
    assert!(gate.session_token().is_some());

    // An incident written here reaches the server over TLS under the session.
    let console = gate.console().expect("console");
    console
        .create_incident(incident(SECRET_TEXT))
        .expect("create");
    until("the outbox to drain", || {
        let s = console.sync_status().expect("status");
        s.pending.critical == 0 && s.parked == 0
    });
    assert!(
        !contains(&raw_cache(&data), SECRET_TEXT),
        "the cache is encrypted"
    );

    // A viewer on the same device: refused locally, nothing queued.
    gate.sign_out();
    drop(console);
    let viewer = server.user(Role::Viewer).name.clone();
    gate.sign_in(SignIn {
        user: viewer,
        password: TEST_PASSWORD.into(),
        code: server.fresh_code(Role::Viewer),
    })
    .expect("viewer online");
    let console = gate.console().expect("viewer console");
    let before = outbox_len(&console);
    assert_refused(
        console.create_incident(incident("viewer tries")),
        ErrorCode::Forbidden,
        "incident.create",
    );
    assert_eq!(outbox_len(&console), before);
    drop(console);

    // The administrator revokes the device while the commander works: the engine's next
    // request is refused (403 device_revoked) and the Gate forgets vault and key.
    gate.sign_out();
    gate.sign_in(SignIn {
        user: commander.clone(),
        password: TEST_PASSWORD.into(),
        code: server.fresh_code(Role::Commander),
    })
    .expect("commander again");
    let console = gate.console().expect("console");
    server
        .security()
        .admin_local("device.revoke", &device_id, |a| {
            a.revoke_device(&device_id, "laptop stolen")
        })
        .expect("revoke");
    console
        .create_incident(incident("after the revocation"))
        .expect("written locally");
    until("the Gate to learn the revocation", || {
        gate.auth_status().state == AuthState::Revoked
    });
    drop(console);
    assert_refused(gate.console(), ErrorCode::SignedOut, "nobody is signed in");
    assert!(gate.auth_status().known_users.is_empty());
    assert!(!data.join("device").exists());
    assert_refused(
        gate.sign_in(SignIn {
            user: commander,
            password: TEST_PASSWORD.into(),
            code: server.fresh_code(Role::Commander),
        }),
        ErrorCode::AuthFailed,
        "revoked",
    );
    gate.shutdown();
}

#[test]
fn a_field_unit_changes_only_its_own_unit() {
    use outpost_app::ipc::{SetUnitStatus, UnitOnIncident};
    use outpost_domain::unit::{UnitKind, UnitStatus};

    let (_dir, clock, server, gate) = enrolled();
    let console = gate.console().expect("commander console");
    for (id, cs) in [("u-01", "东胜01"), ("u-02", "东胜02"), ("u-03", "东胜03")] {
        console
            .register_unit(id, cs, UnitKind::PatrolCar, None)
            .expect("register");
    }
    // Two units on one incident, so the field unit has an assignment of its own to release
    // (the console answers `check_op`'s assignment question from its cache; review S1).
    let call = console
        .create_incident(incident("two cars"))
        .expect("incident")
        .summary
        .id;
    for unit in ["u-02", "u-03"] {
        console
            .assign_unit(UnitOnIncident {
                incident_id: call.clone(),
                unit_id: unit.into(),
            })
            .expect("assign");
    }
    gate.sign_out();
    drop(console);
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "field.03").expect("field unit online");
    let console = gate.console().expect("field console");
    let before = outbox_len(&console);
    // Its own assignment it releases (the unit becomes available); the other car's it may
    // not.
    let release = |unit: &str| {
        console.release_unit(UnitOnIncident {
            incident_id: call.clone(),
            unit_id: unit.into(),
        })
    };
    assert_refused(release("u-02"), ErrorCode::Forbidden, "assignment.release");
    assert_eq!(outbox_len(&console), before);
    let detail = release("u-03").expect("own assignment");
    assert_eq!(detail.summary.id, call);
    let before = before + 1;
    assert_eq!(outbox_len(&console), before);
    let to_busy = |unit: &str| {
        console.set_unit_status(SetUnitStatus {
            unit_id: unit.into(),
            to: UnitStatus::Busy,
        })
    };
    let e = err(to_busy("u-01"));
    assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
    assert!(e.message.contains("field_unit"), "{}", e.message);
    assert!(e.message.contains("unit.set_status"), "{}", e.message);
    assert_eq!(outbox_len(&console), before);
    assert_eq!(to_busy("u-03").expect("own unit").status, UnitStatus::Busy);
    assert_refused(
        console.register_unit("u-09", "东胜09", UnitKind::PatrolCar, None),
        ErrorCode::Forbidden,
        "unit.register",
    );
    assert_eq!(outbox_len(&console), before + 1);
}

/// The `auth` of the newest op in the console's outbox.
fn last_op_auth(console: &Console) -> outpost_domain::op::OpEnvelope {
    let store = console.store_handle();
    let store = store.lock().expect("store");
    query::outbox_all(store.conn())
        .expect("outbox")
        .into_iter()
        .max_by_key(|r| r.envelope.seq)
        .expect("an op")
        .envelope
}

/// Op signing (review S2): every op the console writes for the signed-in person carries
/// their signature by the op key of their online sign-in, offline too (from the vault); an
/// entry sealed before op signing must sign in online once.
#[test]
fn the_console_signs_the_persons_ops_online_and_offline() {
    use outpost_app::auth::vault::{self, Profile, Secrets, Vault};
    use outpost_domain::op_auth;
    let (dir, clock, server, gate) = enrolled();
    let key = op_auth::decode_key(&"42".repeat(32)).expect("key");
    let console = gate.console().expect("console");
    console
        .create_incident(incident("signed online"))
        .expect("incident");
    let online = last_op_auth(&console);
    assert_eq!(online.user, "cmdr.wang");
    assert!(
        online
            .auth
            .as_deref()
            .is_some_and(|a| a.starts_with("fakekey."))
    );
    assert_eq!(op_auth::verify(&online, &key), Ok(()));
    drop(console);
    gate.sign_out();
    server.online.store(false, Ordering::SeqCst);
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("offline");
    let console = gate.console().expect("console");
    console
        .create_incident(incident("signed offline"))
        .expect("incident");
    let offline = last_op_auth(&console);
    assert!(offline.seq > online.seq);
    assert_eq!(op_auth::verify(&offline, &key), Ok(()));
    drop(console);
    gate.sign_out();
    drop(gate);
    // The same person's entry as an older console sealed it (no op key): offline refused.
    let data = dir.path().join("data");
    let mut v = Vault::load(&data).expect("vault");
    let cache_key = server
        .escrow
        .lock()
        .expect("escrow")
        .clone()
        .expect("escrowed");
    let profile = Profile {
        user: "cmdr.wang".into(),
        display_name: "cmdr.wang (server)".into(),
        role: Role::Commander,
        unit_id: None,
        offline_until: Some(clock_now(&clock) + Duration::days(1)),
    };
    let secrets = Secrets {
        cache_key: outpost_store::CacheKey::from_hex(&cache_key).expect("key"),
        totp_secret: server.secret("cmdr.wang"),
        op_key: None,
    };
    let (entry, _) = vault::seal(
        &profile,
        "cmdr.wang password",
        KdfParams::TEST_ONLY,
        &secrets,
        clock_now(&clock),
    )
    .expect("seal");
    v.upsert(entry);
    v.save(&data).expect("save");
    let gate = Gate::open_with(
        options(&data, Some(URL), None),
        clock.clone(),
        config(Some(server.clone())),
    )
    .expect("gate");
    clock.advance_secs(30);
    assert_refused(
        sign_in_as(&gate, &server, &clock, "cmdr.wang"),
        ErrorCode::AuthFailed,
        "must sign in once while the server can be reached",
    );
    // Online, the new sign-in's key is sealed again and signs.
    server.online.store(true, Ordering::SeqCst);
    clock.advance_secs(30);
    sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("online");
    let console = gate.console().expect("console");
    console
        .create_incident(incident("signed again"))
        .expect("incident");
    assert_eq!(op_auth::verify(&last_op_auth(&console), &key), Ok(()));
}

const NEW_PASSWORD: &str = "a brand new passphrase";

fn change(old: &str, new: &str, code: String) -> ChangePassword {
    ChangePassword {
        old_password: old.into(),
        new_password: new.into(),
        code,
    }
}

#[test]
fn a_local_password_change_reseals_the_entry_for_the_new_password_only() {
    let (_dir, clock, gate, secret) = standalone();
    clock.advance_secs(30);
    assert_refused(
        gate.change_password(change(PASSWORD, "short", code(&secret, &clock))),
        ErrorCode::InvalidInput,
        "at least 12 characters",
    );
    assert_refused(
        gate.change_password(change(PASSWORD, PASSWORD, code(&secret, &clock))),
        ErrorCode::InvalidInput,
        "the same as the current one",
    );
    assert_refused(
        gate.change_password(change(
            "not the password",
            NEW_PASSWORD,
            code(&secret, &clock),
        )),
        ErrorCode::AuthFailed,
        "wrong current password",
    );
    let status = gate
        .change_password(change(PASSWORD, NEW_PASSWORD, code(&secret, &clock)))
        .expect("change");
    assert_eq!(status.state, AuthState::SignedIn);
    assert_eq!(status.message.as_deref(), Some("password changed"));
    // The console stays open; locked, the new password unlocks it.
    gate.console().expect("console");
    gate.lock();
    assert_refused(
        gate.unlock(Unlock {
            password: PASSWORD.into(),
            code: None,
        }),
        ErrorCode::AuthFailed,
        "wrong password",
    );
    gate.unlock(Unlock {
        password: NEW_PASSWORD.into(),
        code: None,
    })
    .expect("unlock with the new password");

    gate.sign_out();
    clock.advance_secs(30);
    assert_refused(
        gate.sign_in(SignIn {
            user: "cmdr.li".into(),
            password: PASSWORD.into(),
            code: code(&secret, &clock),
        }),
        ErrorCode::AuthFailed,
        "wrong password",
    );
    let status = gate
        .sign_in(SignIn {
            user: "cmdr.li".into(),
            password: NEW_PASSWORD.into(),
            code: code(&secret, &clock),
        })
        .expect("offline sign-in with the new password");
    assert_eq!(status.state, AuthState::SignedIn);
}

#[test]
fn a_required_change_keeps_the_console_closed_and_is_online_only() {
    let (_dir, clock, server, gate) = enrolled();
    server.must_change.store(true, Ordering::SeqCst);
    gate.sign_out();
    clock.advance_secs(30);
    let status = sign_in_as(&gate, &server, &clock, "cmdr.wang").expect("online sign-in");
    assert_eq!(status.state, AuthState::PasswordChange);
    assert_refused(gate.console(), ErrorCode::SignedOut, "change it");
    let old = "cmdr.wang password";
    let secret = server.secret("cmdr.wang");

    // Unreachable: refused as offline, nothing changed.
    server.online.store(false, Ordering::SeqCst);
    clock.advance_secs(30);
    assert_refused(
        gate.change_password(change(old, NEW_PASSWORD, code(&secret, &clock))),
        ErrorCode::Offline,
        "cannot be reached",
    );
    assert_eq!(gate.auth_status().state, AuthState::PasswordChange);
    server.online.store(true, Ordering::SeqCst);
    assert_refused(
        gate.change_password(change(
            "not the password",
            NEW_PASSWORD,
            code(&secret, &clock),
        )),
        ErrorCode::AuthFailed,
        "the server refused the password change",
    );
    clock.advance_secs(30);
    let status = gate
        .change_password(change(old, NEW_PASSWORD, code(&secret, &clock)))
        .expect("change online");
    assert_eq!(status.state, AuthState::SignedIn);
    gate.console().expect("the console opens");

    // Offline, the re-sealed entry takes the new password only.
    gate.sign_out();
    server.online.store(false, Ordering::SeqCst);
    clock.advance_secs(30);
    assert_refused(
        gate.sign_in(SignIn {
            user: "cmdr.wang".into(),
            password: old.into(),
            code: code(&secret, &clock),
        }),
        ErrorCode::AuthFailed,
        "wrong password",
    );
    let status = gate
        .sign_in(SignIn {
            user: "cmdr.wang".into(),
            password: NEW_PASSWORD.into(),
            code: code(&secret, &clock),
        })
        .expect("offline sign-in with the new password");
    assert_eq!(status.state, AuthState::SignedIn);
    // Signed in offline: a change needs the server.
    clock.advance_secs(30);
    assert_refused(
        gate.change_password(change(
            NEW_PASSWORD,
            "yet another passphrase",
            code(&secret, &clock),
        )),
        ErrorCode::Offline,
        "signed in offline",
    );
}
