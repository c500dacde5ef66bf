//! A secured test server for integration tests of this and other crates (issue 6): TLS with
//! a fresh agency CA, one account per role with a known password and TOTP secret, helpers to
//! enroll a device and sign in. FOR TESTS ONLY: cheap argon2 parameters, keys in a temporary
//! directory that is deleted with the [`TestServer`].
//!
//! ```no_run
//! use outpost_server::testing::TestServer;
//! use outpost_domain::access::Role;
//!
//! let server = TestServer::start().expect("test server");
//! // A console enrolled by the commander and signed in as the commander:
//! let console = server.console(Role::Commander).expect("console");
//! // console.url, console.ca_pem, console.device.cert_pem / key_pem, console.login.token
//! // A second person on the same device (the clock moves to a fresh TOTP step if needed):
//! let login = server.login(&console.device, Role::Viewer).expect("login");
//! # let _ = login;
//! ```
//!
//! Time: the security layer (sessions, lockout, TOTP, grants) runs on a [`FixedClock`] that
//! starts at the real time; [`TestServer::clock`] moves it (no sleeping in tests). The sync
//! service keeps the system clock. [`TestServer::totp_code`] gives the code of the
//! security clock's current step; enrollment and sign-in through the helpers move the clock
//! to the next step when the person's current step was already used (a step is accepted
//! once per account).
//!
//! Everything the helpers do goes through the same [`Security`] the server uses, in
//! process (no HTTP client here); a test that wants the HTTP path posts the same requests
//! itself with a TLS client trusting [`TestServer::ca_pem`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use uuid::Uuid;

use outpost_domain::access::Role;
use outpost_domain::clock::{Clock, FixedClock};
use outpost_domain::wire::{EnrollRequest, LoginRequest, LoginResponse, PROTOCOL_VERSION};

use crate::security::accounts::{TOTP_STEP_S, totp_code};
use crate::security::tls::PeerDevice;
use crate::security::{NewAccount, Security, SecurityConfig};
use crate::server::{RunningServer, Server, ServerConfig};

/// The password of every test account (17 characters).
pub const TEST_PASSWORD: &str = "correct-horse-17c";

/// The unit of the field unit's account.
pub const TEST_FIELD_UNIT: &str = "P-01";

/// Why the test server could not be set up (one line with the step that failed).
#[derive(Debug, thiserror::Error)]
#[error("test server: {0}")]
pub struct TestServerError(pub String);

fn err(what: &str) -> impl Fn(&dyn std::fmt::Display) -> TestServerError + '_ {
    move |e| TestServerError(format!("{what}: {e}"))
}

/// A test account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// Login name: the role's name (`commander`, `field_unit`, …).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The unit of the field unit ([`TEST_FIELD_UNIT`]); `None` for the others.
    pub unit_id: Option<String>,
    /// [`TEST_PASSWORD`].
    pub password: String,
    /// The TOTP secret, base32.
    pub totp_secret: String,
}

/// An enrolled device: what a console keeps in `DATA/device/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDevice {
    /// Device id (the certificate's common name).
    pub device_id: String,
    /// The console's installation origin the device was enrolled with.
    pub origin: Uuid,
    /// The device certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate's serial, lowercase hex.
    pub serial_hex: String,
    /// The escrowed cache key, 64 hex digits.
    pub cache_key: String,
}

impl TestDevice {
    /// The [`PeerDevice`] the TLS layer reports for this device's certificate.
    pub fn peer(&self) -> PeerDevice {
        PeerDevice {
            device_id: self.device_id.clone(),
            serial_hex: self.serial_hex.clone(),
        }
    }

    /// Certificate and key in one PEM text (what `reqwest::Identity::from_pem` takes).
    pub fn identity_pem(&self) -> String {
        format!("{}\n{}", self.cert_pem.trim_end(), self.key_pem)
    }
}

/// What a console needs to talk to the test server as a signed-in person.
#[derive(Debug, Clone)]
pub struct TestConsole {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The agency CA, PEM (trust only this).
    pub ca_pem: String,
    /// The enrolled device.
    pub device: TestDevice,
    /// The sign-in (token, role, TOTP secret, cache key, …).
    pub login: LoginResponse,
}

/// How to start a [`TestServer`].
#[derive(Debug, Clone, Default)]
pub struct TestServerOptions {
    /// The offline grace, seconds (default 72 h).
    pub offline_grace_s: Option<u64>,
    /// Device listeners to start as well (ingest tests).
    pub ingest: crate::ingest::IngestConfig,
    /// The server's guards; `None`: the defaults but 100,000 sign-ins a minute per address
    /// (every test client is 127.0.0.1; the guard tests set their own).
    pub guards: Option<crate::security::guards::GuardConfig>,
}

/// A running TLS server with accounts; everything is removed on drop.
pub struct TestServer {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    clock: Arc<FixedClock>,
    ca_pem: String,
    users: HashMap<Role, TestUser>,
    /// The last TOTP step used per account, so helpers never replay one.
    used_steps: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("dir", &self.dir.path())
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// [`TestServer::start_with`] the default options.
    ///
    /// # Errors
    /// [`TestServerError`] naming the step that failed.
    pub fn start() -> Result<TestServer, TestServerError> {
        TestServer::start_with(TestServerOptions::default())
    }

    /// Creates a temporary data directory, runs `cert init` (names `127.0.0.1`,
    /// `localhost`), creates one account per role (named after the role, password
    /// [`TEST_PASSWORD`], the field unit bound to [`TEST_FIELD_UNIT`]) and starts the TLS
    /// server on `127.0.0.1:0`.
    ///
    /// # Errors
    /// [`TestServerError`] naming the step that failed.
    pub fn start_with(options: TestServerOptions) -> Result<TestServer, TestServerError> {
        let dir = tempfile::tempdir().map_err(|e| err("temp dir")(&e))?;
        let clock = Arc::new(FixedClock::new(Utc::now()));
        let config = test_config(clock.clone(), options.offline_grace_s);
        crate::security::pki::cert_init(
            dir.path(),
            &["127.0.0.1".to_string(), "localhost".to_string()],
        )
        .map_err(|e| err("cert init")(&e))?;
        let users = provision_users(dir.path(), &config)?;
        let ca_file =
            crate::security::pki::tls_dir(dir.path()).join(crate::security::pki::CA_CERT_FILE);
        let ca_pem = std::fs::read_to_string(ca_file).map_err(|e| err("ca.pem")(&e))?;
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = Server::start(
            ServerConfig::new(dir.path(), listen)
                .with_ingest(options.ingest)
                .with_security(config)
                .with_guards(
                    options
                        .guards
                        .unwrap_or(crate::security::guards::GuardConfig {
                            sign_in_per_minute: 100_000,
                            ..Default::default()
                        }),
                ),
        )
        .map_err(|e| err("start")(&e))?;
        Ok(TestServer {
            server: Some(server),
            dir,
            clock,
            ca_pem,
            users,
            used_steps: Mutex::new(HashMap::new()),
        })
    }

    /// The running server.
    ///
    /// # Panics
    /// Never: the server is there until drop.
    #[allow(clippy::expect_used)]
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("the server runs until drop")
    }

    /// The server's security state (accounts, sessions, devices, audit).
    ///
    /// # Panics
    /// Never: a TLS server always has one.
    #[allow(clippy::expect_used)]
    pub fn security(&self) -> &Arc<Security> {
        self.server()
            .security()
            .expect("the TLS server has a security state")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match &self.server {
            Some(s) => format!("https://{}", s.local_addr()),
            None => String::new(),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The agency CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The security layer's clock (move it instead of sleeping).
    pub fn clock(&self) -> &Arc<FixedClock> {
        &self.clock
    }

    /// The account of `role`.
    ///
    /// # Panics
    /// Never: there is one account per role.
    #[allow(clippy::expect_used)]
    pub fn user(&self, role: Role) -> &TestUser {
        self.users.get(&role).expect("one account per role")
    }

    /// The TOTP code of `role`'s account at the security clock's current time (may be a
    /// step already used; see [`TestServer::fresh_code`]).
    pub fn totp_code(&self, role: Role) -> String {
        totp_code(&self.user(role).totp_secret, self.clock.now()).unwrap_or_default()
    }

    /// A code of `role`'s account that was not used yet: moves the security clock to the
    /// next 30-s step when the current one was used by a helper.
    pub fn fresh_code(&self, role: Role) -> String {
        let user = self.user(role);
        let mut used = self
            .used_steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let step = |c: &FixedClock| c.now().timestamp().div_euclid(TOTP_STEP_S as i64);
        if let Some(&last) = used.get(&user.name)
            && step(&self.clock) <= last
        {
            let next = (last + 1) * TOTP_STEP_S as i64;
            self.clock
                .set(chrono::DateTime::from_timestamp(next, 0).unwrap_or_else(Utc::now));
        }
        used.insert(user.name.clone(), step(&self.clock));
        totp_code(&user.totp_secret, self.clock.now()).unwrap_or_default()
    }

    /// Enrolls a new device with `role`'s credentials: a fresh key pair and CSR (rcgen), a
    /// fresh origin and cache key.
    ///
    /// # Errors
    /// [`TestServerError`] with the server's refusal.
    pub fn enroll(&self, role: Role, device_name: &str) -> Result<TestDevice, TestServerError> {
        self.enroll_origin(role, device_name, Uuid::now_v7())
    }

    /// [`TestServer::enroll`] for a given installation origin.
    ///
    /// # Errors
    /// [`TestServerError`] with the server's refusal.
    pub fn enroll_origin(
        &self,
        role: Role,
        device_name: &str,
        origin: Uuid,
    ) -> Result<TestDevice, TestServerError> {
        let (key_pem, csr_pem) = key_and_csr()?;
        let cache_key = hex::encode(
            crate::security::accounts::random_bytes(32).map_err(|e| err("cache key")(&e))?,
        );
        let user = self.user(role);
        let resp = self
            .security()
            .enroll(&EnrollRequest {
                protocol: PROTOCOL_VERSION,
                user: user.name.clone(),
                password: user.password.clone(),
                totp: self.fresh_code(role),
                device_name: device_name.to_string(),
                origin,
                csr_pem,
                cache_key: cache_key.clone(),
            })
            .map_err(|e| err("enroll")(&e))?;
        let (_, serial_hex) = crate::security::pki::first_cert_der(
            &resp.certificate_pem,
            Path::new("device certificate"),
        )
        .map_err(|e| err("device certificate")(&e))
        .and_then(|der| {
            crate::security::pki::device_of_cert(&der).map_err(|e| err("device certificate")(&e))
        })?;
        Ok(TestDevice {
            device_id: resp.device_id,
            origin,
            cert_pem: resp.certificate_pem,
            key_pem,
            serial_hex,
            cache_key,
        })
    }

    /// Signs `role`'s account in on `device` (in process, as `POST /v1/login` does).
    ///
    /// # Errors
    /// [`TestServerError`] with the server's refusal.
    pub fn login(&self, device: &TestDevice, role: Role) -> Result<LoginResponse, TestServerError> {
        let user = self.user(role);
        self.security()
            .login(
                Some(&device.peer()),
                &LoginRequest {
                    protocol: PROTOCOL_VERSION,
                    user: user.name.clone(),
                    password: user.password.clone(),
                    totp: self.fresh_code(role),
                },
            )
            .map_err(|e| err("login")(&e))
    }

    /// A device enrolled by `role`'s account and that account signed in on it.
    ///
    /// # Errors
    /// [`TestServerError`] with the server's refusal.
    pub fn console(&self, role: Role) -> Result<TestConsole, TestServerError> {
        let device = self.enroll(role, &format!("{} console", role.as_str()))?;
        let login = self.login(&device, role)?;
        Ok(TestConsole {
            url: self.url(),
            ca_pem: self.ca_pem.clone(),
            device,
            login,
        })
    }

    /// Stops the server (the data directory stays until drop).
    ///
    /// # Errors
    /// As [`RunningServer::shutdown`].
    pub fn shutdown(&mut self) -> Result<(), crate::server::ServerError> {
        match self.server.take() {
            Some(s) => s.shutdown(),
            None => Ok(()),
        }
    }
}

/// A device and a session made straight in the security database of `data_dir` (which
/// must have had `cert init`), for tests that run the real binary: no password, no TOTP, no
/// HTTP. The account `user` (role `role`, unit [`TEST_FIELD_UNIT`] for a field unit,
/// password [`TEST_PASSWORD`]) is created when missing. The binary may be running: it
/// reads sessions and devices from the database on every request. Uses the system clock.
///
/// Returns the device (enrolled with `origin`) and the bearer token.
///
/// # Errors
/// [`TestServerError`] naming the step that failed (no PKI, origin enrolled already, …).
pub fn direct_session(
    data_dir: &Path,
    user: &str,
    role: Role,
    origin: Uuid,
) -> Result<(TestDevice, String), TestServerError> {
    let clock: Arc<dyn Clock> = Arc::new(outpost_domain::clock::SystemClock);
    let accounts = crate::security::Accounts::open(
        data_dir,
        crate::security::PasswordParams::cheap_for_tests(),
        clock,
    )
    .map_err(|e| err("security.db")(&e))?;
    let unit_id = (role == Role::FieldUnit).then(|| TEST_FIELD_UNIT.to_string());
    match accounts.add_user(&NewAccount {
        name: user.to_string(),
        role,
        unit_id,
        display_name: None,
        password: TEST_PASSWORD.to_string(),
    }) {
        Ok(_) | Err(crate::security::AuthError::Conflict(_)) => {}
        Err(e) => return Err(err("user add")(&e)),
    }
    let pki = crate::security::pki::Pki::load(data_dir).map_err(|e| err("pki")(&e))?;
    let (key_pem, csr_pem) = key_and_csr()?;
    let device_id = crate::security::Accounts::new_device_id();
    let signed = pki
        .sign_device_csr(&csr_pem, &device_id, 30)
        .map_err(|e| err("sign")(&e))?;
    let cache_key = "00".repeat(32);
    accounts
        .add_device(
            &device_id,
            "test device",
            origin,
            &signed.serial_hex,
            user,
            &cache_key,
        )
        .map_err(|e| err("device")(&e))?;
    let session = accounts
        .start_session(
            user,
            &device_id,
            crate::security::DEFAULT_OFFLINE_GRACE_H * 3600,
        )
        .map_err(|e| err("session")(&e))?;
    Ok((
        TestDevice {
            device_id,
            origin,
            cert_pem: signed.cert_pem,
            key_pem,
            serial_hex: signed.serial_hex,
            cache_key,
        },
        session.token,
    ))
}

/// The security configuration of tests: cheap argon2, the given clock and grace.
fn test_config(clock: Arc<FixedClock>, grace_s: Option<u64>) -> SecurityConfig {
    let mut c = SecurityConfig::for_tests(clock);
    if let Some(g) = grace_s {
        c.offline_grace_s = g;
    }
    c
}

/// Creates one account per role in `dir`'s `security.db`.
fn provision_users(
    dir: &Path,
    config: &SecurityConfig,
) -> Result<HashMap<Role, TestUser>, TestServerError> {
    let accounts = crate::security::Accounts::open(dir, config.password, config.clock.clone())
        .map_err(|e| err("security.db")(&e))?;
    let mut users = HashMap::new();
    for role in Role::ALL {
        let unit_id = (role == Role::FieldUnit).then(|| TEST_FIELD_UNIT.to_string());
        let created = accounts
            .add_user(&NewAccount {
                name: role.as_str().to_string(),
                role,
                unit_id: unit_id.clone(),
                display_name: None,
                password: TEST_PASSWORD.to_string(),
            })
            .map_err(|e| err("user add")(&e))?;
        users.insert(
            role,
            TestUser {
                name: created.name,
                role,
                unit_id,
                password: TEST_PASSWORD.to_string(),
                totp_secret: created.totp_secret,
            },
        );
    }
    Ok(users)
}

/// A fresh ECDSA P-256 key (PKCS#8 PEM) and a CSR for it (PEM), as a console makes them.
///
/// # Errors
/// [`TestServerError`] when rcgen fails.
pub fn key_and_csr() -> Result<(String, String), TestServerError> {
    let key = rcgen::KeyPair::generate().map_err(|e| err("key pair")(&e))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CSR")(&e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "outpost console");
    let csr = params
        .serialize_request(&key)
        .map_err(|e| err("CSR")(&e))?
        .pem()
        .map_err(|e| err("CSR")(&e))?;
    Ok((key.serialize_pem(), csr))
}
