//! The security matrix (issue 6): over the real TLS server of `outpost_server::testing`,
//! every endpoint (`access::Endpoint::ALL`, every admin route, and `POST /v1/login`,
//! `/v1/enroll`, `/v1/logout`) meets no credentials, a token without its device
//! certificate, every role, an expired and a foreign device certificate, a revoked device,
//! and replayed tokens (after logout, from another device, expired); every op kind meets
//! every role. Each refusal is checked twice: the answer (status and error code, or for an
//! op: parked with a reason starting `forbidden`) and an audit record with outcome `refused`
//! that this very request appended (read from the trail itself, and through `GET /v1/audit`
//! as the auditor). The allowed cases succeed: the commander writes every op kind, the
//! dispatcher all but the roster and devices, the field unit only its own unit.
//!
//! Mismatches are collected and reported together, so one run lists every gap.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::access::{self, Actor, Endpoint, Role};
use outpost_domain::device::{DeviceReport, DeviceSource};
use outpost_domain::facility::{Facility, FacilityKind};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::op::{
    Fix, Hlc, IncidentFields, Lane, OpBody, OpEnvelope, Release, SCHEMA_VERSION,
};
use outpost_domain::road_closure::{ClosureShape, RoadClosure};
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_domain::wire::{AuditRecord, PROTOCOL_VERSION, PushRequest};
use outpost_server::testing::{TEST_FIELD_UNIT, TEST_PASSWORD, TestDevice, TestServer};

// ---------------------------------------------------------------------------------------
// HTTP

/// A blocking HTTPS client trusting only the agency CA, with or without a device
/// certificate.
fn client(server: &TestServer, device: Option<&TestDevice>) -> reqwest::blocking::Client {
    let identity = device.map(|d| (d.cert_pem.as_str(), d.key_pem.as_str()));
    let tls = outpost_sync::tls::client_config(server.ca_pem(), identity).expect("TLS config");
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client")
}

/// One request of the matrix.
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// The audit action of a refusal by the auth layer.
    action: &'static str,
}

impl Call {
    fn get(path: impl Into<String>, action: &'static str) -> Call {
        Call {
            method: "GET",
            path: path.into(),
            body: None,
            action,
        }
    }

    fn post(path: impl Into<String>, body: Value, action: &'static str) -> Call {
        Call {
            method: "POST",
            path: path.into(),
            body: Some(body),
            action,
        }
    }

    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The answer: status and JSON body (`Null` when empty), or the transport error (TLS).
type Answer = Result<(u16, Value), String>;

fn send(
    http: &reqwest::blocking::Client,
    server: &TestServer,
    call: &Call,
    token: Option<&str>,
) -> Answer {
    let url = format!("{}{}", server.url(), call.path);
    let mut req = match call.method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = &call.body {
        req = req.json(b);
    }
    let res = req.send().map_err(|e| format!("{e:?}"))?;
    let status = res.status().as_u16();
    let text = res.text().map_err(|e| format!("{e:?}"))?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Every call of `endpoint` (the admin endpoint has several routes). Bodies are valid for
/// the allowed case; refusals happen before they are read.
fn calls_of(endpoint: Endpoint, origin: Uuid, admin: &AdminTargets) -> Vec<Call> {
    match endpoint {
        Endpoint::Push => vec![Call::post(
            "/v1/push",
            serde_json::to_value(push_request(origin, Lane::Critical, &[])).expect("json"),
            "push",
        )],
        Endpoint::Pull => vec![Call::get("/v1/pull?after=0", "pull")],
        Endpoint::Snapshot => vec![Call::get("/v1/snapshot", "snapshot")],
        Endpoint::Poke => vec![Call::get("/v1/poke", "poke")],
        Endpoint::IngestStats => vec![Call::get("/v1/ingest/stats", "ingest.stats")],
        Endpoint::Revocations => vec![Call::get("/v1/security/revocations", "revocations")],
        Endpoint::Audit => vec![Call::get("/v1/audit?after=0&limit=5", "audit.read")],
        Endpoint::Admin => vec![
            Call::get("/v1/admin/users", "admin"),
            Call::post(
                "/v1/admin/users",
                json!({
                    "name": admin.new_user,
                    "role": "viewer",
                    "password": TEST_PASSWORD,
                }),
                "admin",
            ),
            Call::post(
                format!("/v1/admin/users/{}/unlock", admin.new_user),
                json!({}),
                "admin",
            ),
            Call::post(
                format!("/v1/admin/users/{}/disable", admin.new_user),
                json!({}),
                "admin",
            ),
            Call::get("/v1/admin/devices", "admin"),
            Call::post(
                format!("/v1/admin/devices/{}/revoke", admin.device_to_revoke),
                json!({"reason": "matrix test"}),
                "admin",
            ),
            Call::post(
                format!("/v1/admin/device-tokens/{}", admin.phone),
                json!({}),
                "admin",
            ),
        ],
    }
}

/// Targets of the admin routes (each allowed call succeeds once).
struct AdminTargets {
    new_user: String,
    device_to_revoke: String,
    phone: String,
}

impl AdminTargets {
    fn dummy() -> AdminTargets {
        AdminTargets {
            new_user: "nobody".into(),
            device_to_revoke: "dev-nobody".into(),
            phone: "phone-nobody".into(),
        }
    }
}

/// Every call needing a session: each endpoint's and `POST /v1/logout`.
fn all_session_calls(origin: Uuid) -> Vec<(Option<Endpoint>, Call)> {
    let admin = AdminTargets::dummy();
    let mut v: Vec<_> = Endpoint::ALL
        .into_iter()
        .flat_map(|e| {
            calls_of(e, origin, &admin)
                .into_iter()
                .map(move |c| (Some(e), c))
        })
        .collect();
    v.push((None, Call::post("/v1/logout", json!({}), "logout")));
    v
}

fn push_request(origin: Uuid, lane: Lane, ops: &[OpEnvelope]) -> PushRequest {
    PushRequest {
        protocol: PROTOCOL_VERSION,
        origin,
        lane,
        epoch: None,
        cursor: 0,
        ops: ops
            .iter()
            .map(|o| serde_json::to_value(o).expect("op json"))
            .collect(),
    }
}

fn login_body(server: &TestServer, role: Role, password: &str) -> Value {
    json!({
        "protocol": PROTOCOL_VERSION,
        "user": server.user(role).name,
        "password": password,
        "totp": server.fresh_code(role),
    })
}

// ---------------------------------------------------------------------------------------
// Audit

fn head(server: &TestServer) -> u64 {
    server
        .security()
        .audit_log()
        .expect("the TLS server keeps audit.db")
        .head()
        .expect("audit head")
        .0
}

fn records_after(server: &TestServer, after: u64) -> Vec<AuditRecord> {
    let log = server.security().audit_log().expect("audit log");
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let page = log.page(after, Some(1000)).expect("audit page");
        let Some(last) = page.records.last() else {
            return out;
        };
        after = last.seq;
        out.extend(page.records);
    }
}

/// What a refusal must look like.
struct Refusal<'a> {
    status: u16,
    code: &'a str,
    /// The audit action (`pull`, `login`, `op:unit.register`, …).
    action: &'a str,
    /// The audit user (`"-"` when unknown).
    user: &'a str,
    /// The audit device (`"-"` without a certificate).
    device: &'a str,
}

/// Collects mismatches; panics once at the end with all of them.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    checked: usize,
}

impl Findings {
    fn fail(&mut self, what: impl Into<String>) {
        self.failures.push(what.into());
    }

    /// Sends `call` and checks the answer and that it appended a matching refused record.
    fn refused(
        &mut self,
        server: &TestServer,
        case: &str,
        answer: impl FnOnce() -> Answer,
        want: &Refusal<'_>,
    ) {
        self.checked += 1;
        let before = head(server);
        let answer = answer();
        match &answer {
            Ok((status, body)) => {
                if *status != want.status || body["code"] != want.code {
                    self.fail(format!(
                        "{case}: expected {} {}, got {status} {body}",
                        want.status, want.code
                    ));
                }
            }
            Err(e) => {
                self.fail(format!(
                    "{case}: expected {} {}, got no answer: {e}",
                    want.status, want.code
                ));
                return;
            }
        }
        self.audited(server, case, before, want);
    }

    /// Checks that a refused record matching `want` was appended after `before`.
    fn audited(&mut self, server: &TestServer, case: &str, before: u64, want: &Refusal<'_>) {
        let new = records_after(server, before);
        let found = new.iter().any(|r| {
            r.outcome == "refused"
                && r.action == want.action
                && r.user == want.user
                && r.device == want.device
        });
        if !found {
            self.fail(format!(
                "{case}: no audit record (refused, {}, user {}, device {}); appended: {}",
                want.action,
                want.user,
                want.device,
                describe(&new)
            ));
        }
    }

    /// Panics with every failure; `checks` is how many cases the matrix has (so a change
    /// that silently drops cases fails too).
    fn finish(self, what: &str, checks: usize) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} checks failed:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
        assert_eq!(self.checked, checks, "{what}: cases checked");
    }
}

fn describe(records: &[AuditRecord]) -> String {
    if records.is_empty() {
        return "none".into();
    }
    records
        .iter()
        .map(|r| {
            format!(
                "[#{} {} {} user={} device={} target={} {}]",
                r.seq, r.outcome, r.action, r.user, r.device, r.target, r.detail
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// Credentials

#[test]
fn every_endpoint_without_credentials_is_refused_and_audited() {
    let server = TestServer::start().expect("test server");
    let http = client(&server, None);
    let mut f = Findings::default();
    for (_, call) in all_session_calls(Uuid::now_v7()) {
        f.refused(
            &server,
            &format!("no credentials: {}", call.label()),
            || send(&http, &server, &call, None),
            &Refusal {
                status: 401,
                code: "certificate_required",
                action: call.action,
                user: "-",
                device: "-",
            },
        );
    }
    // Login needs the device certificate even with the right password and code.
    let login = Call::post(
        "/v1/login",
        login_body(&server, Role::Commander, TEST_PASSWORD),
        "login",
    );
    f.refused(
        &server,
        "no device certificate: POST /v1/login",
        || send(&http, &server, &login, None),
        &Refusal {
            status: 401,
            code: "certificate_required",
            action: "login",
            user: "commander",
            device: "-",
        },
    );
    // Enrollment needs a person's credentials: a wrong password is refused.
    let (_key, csr) = outpost_server::testing::key_and_csr().expect("csr");
    let enroll = Call::post(
        "/v1/enroll",
        json!({
            "protocol": PROTOCOL_VERSION,
            "user": "dispatcher",
            "password": "not-the-password",
            "totp": server.fresh_code(Role::Dispatcher),
            "device_name": "stolen laptop",
            "origin": Uuid::now_v7(),
            "csr_pem": csr,
            "cache_key": "00".repeat(32),
        }),
        "enroll",
    );
    f.refused(
        &server,
        "wrong password: POST /v1/enroll",
        || send(&http, &server, &enroll, None),
        &Refusal {
            status: 401,
            code: "unauthenticated",
            action: "enroll",
            user: "dispatcher",
            device: "-",
        },
    );
    // The public endpoints answer without credentials.
    for path in ["/v1/health", "/v1/capabilities"] {
        match send(&http, &server, &Call::get(path, "-"), None) {
            Ok((200, _)) => {}
            other => f.fail(format!("GET {path} without credentials: {other:?}")),
        }
    }
    f.finish("no credentials", 17);
}

#[test]
fn a_device_certificate_without_a_token_and_a_token_without_its_certificate_are_refused() {
    let server = TestServer::start().expect("test server");
    let console = server.console(Role::Commander).expect("console");
    let device = &console.device;
    let with_cert = client(&server, Some(device));
    let without_cert = client(&server, None);
    let mut f = Findings::default();
    for (_, call) in all_session_calls(device.origin) {
        f.refused(
            &server,
            &format!("certificate, no token: {}", call.label()),
            || send(&with_cert, &server, &call, None),
            &Refusal {
                status: 401,
                code: "unauthenticated",
                action: call.action,
                user: "-",
                device: &device.device_id,
            },
        );
        f.refused(
            &server,
            &format!("token, no certificate: {}", call.label()),
            || send(&without_cert, &server, &call, Some(&console.login.token)),
            &Refusal {
                status: 401,
                code: "certificate_required",
                action: call.action,
                user: "-",
                device: "-",
            },
        );
        f.refused(
            &server,
            &format!("certificate, made-up token: {}", call.label()),
            || send(&with_cert, &server, &call, Some(&"ab".repeat(32))),
            &Refusal {
                status: 401,
                code: "unauthenticated",
                action: call.action,
                user: "-",
                device: &device.device_id,
            },
        );
    }
    // A wrong password at login, with the certificate.
    let login = Call::post(
        "/v1/login",
        login_body(&server, Role::Commander, "wrong-password-123"),
        "login",
    );
    f.refused(
        &server,
        "wrong password: POST /v1/login",
        || send(&with_cert, &server, &login, None),
        &Refusal {
            status: 401,
            code: "unauthenticated",
            action: "login",
            user: "commander",
            device: &device.device_id,
        },
    );
    // The session still works.
    match send(
        &with_cert,
        &server,
        &Call::get("/v1/pull?after=0", "pull"),
        Some(&console.login.token),
    ) {
        Ok((200, _)) => {}
        other => f.fail(format!("the commander's own pull: {other:?}")),
    }
    f.finish("certificate / token", 46);
}

#[test]
fn every_role_reaches_only_its_endpoints() {
    let server = TestServer::start().expect("test server");
    let mut f = Findings::default();
    for role in Role::ALL {
        let console = server.console(role).expect("console");
        let http = client(&server, Some(&console.device));
        let token = console.login.token.as_str();
        let name = server.user(role).name.clone();
        // Targets for the administrator's allowed admin calls.
        let spare = server
            .enroll(Role::Commander, &format!("spare for {name}"))
            .expect("spare device");
        let admin = AdminTargets {
            new_user: format!("new-{name}"),
            device_to_revoke: spare.device_id.clone(),
            phone: format!("phone-{name}"),
        };
        for endpoint in Endpoint::ALL {
            let allowed = access::check_endpoint(role, endpoint).is_ok();
            for call in calls_of(endpoint, console.device.origin, &admin) {
                let case = format!("{name}: {}", call.label());
                if allowed {
                    f.checked += 1;
                    let before = head(&server);
                    match send(&http, &server, &call, Some(token)) {
                        // The poke is a WebSocket: a plain GET passed the auth layer when
                        // it is refused only for the missing upgrade.
                        Ok((s, b)) if endpoint == Endpoint::Poke => {
                            if s == 401 || s == 403 || s >= 500 {
                                f.fail(format!("{case}: allowed, got {s} {b}"));
                            }
                        }
                        Ok((s, _)) if (200..300).contains(&s) => {}
                        other => f.fail(format!("{case}: allowed, got {other:?}")),
                    }
                    let refused: Vec<_> = records_after(&server, before)
                        .into_iter()
                        .filter(|r| r.outcome == "refused")
                        .collect();
                    if !refused.is_empty() {
                        f.fail(format!(
                            "{case}: allowed but audited {}",
                            describe(&refused)
                        ));
                    }
                } else {
                    f.refused(
                        &server,
                        &case,
                        || send(&http, &server, &call, Some(token)),
                        &Refusal {
                            status: 403,
                            code: "forbidden",
                            action: call.action,
                            user: &name,
                            device: &console.device.device_id,
                        },
                    );
                }
            }
        }
        // Every role may sign out; the sign-out is audited.
        let before = head(&server);
        match send(
            &http,
            &server,
            &Call::post("/v1/logout", json!({}), "logout"),
            Some(token),
        ) {
            Ok((204, _)) => {}
            other => f.fail(format!("{name}: POST /v1/logout: {other:?}")),
        }
        if !records_after(&server, before)
            .iter()
            .any(|r| r.action == "logout" && r.outcome == "ok" && r.user == name)
        {
            f.fail(format!("{name}: the logout is not audited"));
        }
    }
    f.finish("roles × endpoints", 84);
}

#[test]
fn an_expired_or_foreign_device_certificate_fails_the_handshake() {
    bad_certificates(false);
}

/// The same refusals each leave an audit record (`tls.handshake`, refused, device = the
/// certificate's common name), written by the TLS layer's verifier. The verifier records the
/// same certificate refused for the same reason at most once a minute (on the security
/// clock), so the security clock moves a minute before each call.
#[test]
fn a_refused_client_certificate_is_audited() {
    bad_certificates(true);
}

/// Every endpoint and login with an expired device certificate of the agency CA and with one
/// of another CA: the handshake fails; with `audited`, each appended a `tls.handshake`
/// refused record naming the device (the server writes it as the handshake fails, so it is
/// awaited a little; the clock moves past the once-a-minute limit before each call).
fn bad_certificates(audited: bool) {
    let server = TestServer::start().expect("test server");
    let console = server.console(Role::Commander).expect("console");
    // The same device, certified by the agency CA, but the validity ended yesterday.
    let pki = outpost_server::security::pki::Pki::load(server.data_dir()).expect("pki");
    let (key_pem, csr) = outpost_server::testing::key_and_csr().expect("csr");
    let now = time::OffsetDateTime::now_utc();
    let expired = pki
        .sign_device_csr_between(
            &csr,
            &console.device.device_id,
            now - time::Duration::days(400),
            now - time::Duration::days(1),
        )
        .expect("sign");
    let expired_device = TestDevice {
        cert_pem: expired.cert_pem,
        key_pem,
        serial_hex: expired.serial_hex,
        ..console.device.clone()
    };
    // A certificate of another agency's CA, same device id.
    let other = tempfile::tempdir().expect("temp dir");
    outpost_server::security::pki::cert_init(other.path(), &["127.0.0.1".to_string()])
        .expect("other CA");
    let other_pki = outpost_server::security::pki::Pki::load(other.path()).expect("pki");
    let (key_pem, csr) = outpost_server::testing::key_and_csr().expect("csr");
    let foreign = other_pki
        .sign_device_csr(&csr, &console.device.device_id, 30)
        .expect("sign");
    let foreign_device = TestDevice {
        cert_pem: foreign.cert_pem,
        key_pem,
        serial_hex: foreign.serial_hex,
        ..console.device.clone()
    };
    let mut f = Findings::default();
    for (what, device) in [("expired", &expired_device), ("foreign", &foreign_device)] {
        let http = client(&server, Some(device));
        let mut calls: Vec<Call> = all_session_calls(device.origin)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        calls.push(Call::post(
            "/v1/login",
            login_body(&server, Role::Commander, TEST_PASSWORD),
            "login",
        ));
        for call in calls {
            f.checked += 1;
            if audited {
                server.clock().advance_secs(60);
            }
            let before = head(&server);
            match send(&http, &server, &call, Some(&console.login.token)) {
                Err(_) => {}
                Ok(answer) => f.fail(format!(
                    "{what} certificate: {}: the handshake succeeded: {answer:?}",
                    call.label()
                )),
            }
            if !audited {
                continue;
            }
            let found = |new: &[AuditRecord]| {
                new.iter().any(|r| {
                    r.outcome == "refused"
                        && r.action == "tls.handshake"
                        && r.user == "-"
                        && r.device == device.device_id
                        && r.detail.contains(&device.serial_hex)
                })
            };
            let mut new = records_after(&server, before);
            for _ in 0..100 {
                if found(&new) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                new = records_after(&server, before);
            }
            if !found(&new) {
                f.fail(format!(
                    "{what} certificate: {}: no audit record (refused, tls.handshake, naming the device and serial); appended: {}",
                    call.label(),
                    describe(&new)
                ));
            }
        }
    }
    f.finish("expired / foreign certificates", 32);
}

#[test]
fn a_revoked_device_is_refused_everywhere() {
    let server = TestServer::start().expect("test server");
    let admin = server.console(Role::Administrator).expect("admin console");
    let victim = server.console(Role::Dispatcher).expect("console");
    let admin_http = client(&server, Some(&admin.device));
    match send(
        &admin_http,
        &server,
        &Call::post(
            format!("/v1/admin/devices/{}/revoke", victim.device.device_id),
            json!({"reason": "laptop stolen from car 7"}),
            "admin",
        ),
        Some(&admin.login.token),
    ) {
        Ok((204, _)) => {}
        other => panic!("revoke: {other:?}"),
    }
    let http = client(&server, Some(&victim.device));
    let mut f = Findings::default();
    for (_, call) in all_session_calls(victim.device.origin) {
        f.refused(
            &server,
            &format!("revoked device: {}", call.label()),
            || send(&http, &server, &call, Some(&victim.login.token)),
            &Refusal {
                status: 403,
                code: "device_revoked",
                action: call.action,
                user: "-",
                device: &victim.device.device_id,
            },
        );
    }
    let login = Call::post(
        "/v1/login",
        login_body(&server, Role::Dispatcher, TEST_PASSWORD),
        "login",
    );
    f.refused(
        &server,
        "revoked device: POST /v1/login",
        || send(&http, &server, &login, None),
        &Refusal {
            status: 403,
            code: "device_revoked",
            action: "login",
            user: "dispatcher",
            device: &victim.device.device_id,
        },
    );
    // Consoles learn it.
    match send(
        &admin_http,
        &server,
        &Call::get("/v1/security/revocations", "revocations"),
        Some(&admin.login.token),
    ) {
        Ok((200, v))
            if v["revoked_devices"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == victim.device.device_id.as_str())) => {}
        other => f.fail(format!("revocations do not list the device: {other:?}")),
    }
    f.finish("revoked device", 16);
}

#[test]
fn replayed_tokens_are_refused_after_logout_from_another_device_and_after_expiry() {
    let server = TestServer::start().expect("test server");
    let mut f = Findings::default();

    // After logout.
    let a = server.console(Role::Commander).expect("console");
    let http_a = client(&server, Some(&a.device));
    match send(
        &http_a,
        &server,
        &Call::post("/v1/logout", json!({}), "logout"),
        Some(&a.login.token),
    ) {
        Ok((204, _)) => {}
        other => panic!("logout: {other:?}"),
    }
    for (_, call) in all_session_calls(a.device.origin) {
        f.refused(
            &server,
            &format!("token after logout: {}", call.label()),
            || send(&http_a, &server, &call, Some(&a.login.token)),
            &Refusal {
                status: 401,
                code: "unauthenticated",
                action: call.action,
                user: "-",
                device: &a.device.device_id,
            },
        );
    }

    // From another device: B's certificate with A's live token.
    let a = server.console(Role::Commander).expect("console");
    let b = server.console(Role::Dispatcher).expect("console");
    let http_b = client(&server, Some(&b.device));
    for (_, call) in all_session_calls(b.device.origin) {
        f.refused(
            &server,
            &format!("token of another device: {}", call.label()),
            || send(&http_b, &server, &call, Some(&a.login.token)),
            &Refusal {
                status: 401,
                code: "unauthenticated",
                action: call.action,
                user: "-",
                device: &b.device.device_id,
            },
        );
    }
    // A's own token still works on A.
    let http_a = client(&server, Some(&a.device));
    match send(
        &http_a,
        &server,
        &Call::get("/v1/pull?after=0", "pull"),
        Some(&a.login.token),
    ) {
        Ok((200, _)) => {}
        other => f.fail(format!("A's own token on A: {other:?}")),
    }

    // Expired: 12 hours after the login (CJIS re-authentication).
    server.clock().advance_secs(12 * 3600 + 60);
    for (_, call) in all_session_calls(a.device.origin) {
        f.refused(
            &server,
            &format!("expired token: {}", call.label()),
            || send(&http_a, &server, &call, Some(&a.login.token)),
            &Refusal {
                status: 401,
                code: "unauthenticated",
                action: call.action,
                user: "-",
                device: &a.device.device_id,
            },
        );
    }
    f.finish("replayed tokens", 45);
}

#[test]
fn a_disabled_account_is_refused_everywhere_and_a_locked_one_cannot_sign_in() {
    let server = TestServer::start().expect("test server");
    let admin = server.console(Role::Administrator).expect("admin console");
    let viewer = server.console(Role::Viewer).expect("console");
    let admin_http = client(&server, Some(&admin.device));
    match send(
        &admin_http,
        &server,
        &Call::post("/v1/admin/users/viewer/disable", json!({}), "admin"),
        Some(&admin.login.token),
    ) {
        Ok((204, _)) => {}
        other => panic!("disable: {other:?}"),
    }
    let http = client(&server, Some(&viewer.device));
    let mut f = Findings::default();
    for (_, call) in all_session_calls(viewer.device.origin) {
        f.refused(
            &server,
            &format!("disabled account: {}", call.label()),
            || send(&http, &server, &call, Some(&viewer.login.token)),
            &Refusal {
                status: 401,
                code: "unauthenticated",
                action: call.action,
                user: "-",
                device: &viewer.device.device_id,
            },
        );
    }
    let login = Call::post(
        "/v1/login",
        login_body(&server, Role::Viewer, TEST_PASSWORD),
        "login",
    );
    f.refused(
        &server,
        "disabled account: POST /v1/login",
        || send(&http, &server, &login, None),
        &Refusal {
            status: 401,
            code: "unauthenticated",
            action: "login",
            user: "viewer",
            device: &viewer.device.device_id,
        },
    );

    // Five wrong passwords within 15 minutes lock the dispatcher (CJIS 5.9.5 §5.5.3): the
    // fifth is answered locked_out, and then the right password and code too. Each audited.
    let device = server.enroll(Role::Commander, "shared").expect("device");
    let http = client(&server, Some(&device));
    for i in 0..5 {
        let wrong = Call::post(
            "/v1/login",
            login_body(&server, Role::Dispatcher, &format!("wrong password {i}")),
            "login",
        );
        let (status, code) = if i < 4 {
            (401, "unauthenticated")
        } else {
            (403, "locked_out")
        };
        f.refused(
            &server,
            &format!("wrong password #{}", i + 1),
            || send(&http, &server, &wrong, None),
            &Refusal {
                status,
                code,
                action: "login",
                user: "dispatcher",
                device: &device.device_id,
            },
        );
    }
    let right = Call::post(
        "/v1/login",
        login_body(&server, Role::Dispatcher, TEST_PASSWORD),
        "login",
    );
    f.refused(
        &server,
        "locked account, right password",
        || send(&http, &server, &right, None),
        &Refusal {
            status: 403,
            code: "locked_out",
            action: "login",
            user: "dispatcher",
            device: &device.device_id,
        },
    );
    f.finish("disabled / locked accounts", 22);
}

// ---------------------------------------------------------------------------------------
// Ops

/// One console's op author (its enrolled origin, gap-free seq and lane_seq).
struct Writer {
    origin: Uuid,
    user: String,
    seq: u64,
    lanes: BTreeMap<Lane, u64>,
    /// Signs the ops, as the person's console does (op signing, review S2).
    key: Option<outpost_domain::op_auth::OpSigner>,
}

impl Writer {
    fn new(origin: Uuid, user: &str) -> Writer {
        Writer {
            origin,
            user: user.to_string(),
            seq: 0,
            lanes: BTreeMap::new(),
            key: None,
        }
    }

    /// Signs the ops with the op key of `login` (its person's sign-in on this device).
    fn signing(mut self, login: &outpost_domain::wire::LoginResponse) -> Writer {
        self.key = Some(
            outpost_domain::op_auth::OpSigner::new(&login.user, &login.op_key_id, &login.op_key)
                .expect("op key"),
        );
        self
    }

    fn op(&mut self, body: OpBody) -> OpEnvelope {
        self.seq += 1;
        let lane = body.lane();
        let lane_seq = self.lanes.entry(lane).or_insert(0);
        *lane_seq += 1;
        let mut env = OpEnvelope {
            op_id: Uuid::now_v7(),
            origin: self.origin,
            seq: self.seq,
            hlc: Hlc {
                wall_ms: Utc::now().timestamp_millis(),
                logical: 0,
            },
            base_version: None,
            user: self.user.clone(),
            schema: SCHEMA_VERSION,
            lane,
            lane_seq: *lane_seq,
            body,
            auth: None,
        };
        if let Some(k) = &self.key {
            k.sign(&mut env).expect("sign");
        }
        env
    }
}

const ANDORRA: LatLon = LatLon {
    lat: 42.5063,
    lon: 1.5218,
};

fn fix() -> Fix {
    Fix {
        position: ANDORRA,
        fix_time: Utc::now() - chrono::Duration::seconds(5),
        heading_deg: Some(90.0),
        speed_mps: Some(8.0),
        accuracy_m: Some(5.0),
    }
}

fn new_incident(number: &str) -> (Uuid, OpBody) {
    let id = Uuid::now_v7();
    (
        id,
        OpBody::IncidentCreate {
            incident_id: id,
            number: number.into(),
            incident_type: IncidentType::Theft,
            priority: Priority::P2,
            location: ANDORRA,
            address: "Avinguda Meritxell 1".into(),
            description: "matrix".into(),
        },
    )
}

/// The world the ops refer to, written by the commander first.
struct World {
    /// An incident per role, to act on.
    incident: BTreeMap<&'static str, Uuid>,
    /// The incident the field unit is assigned to, and that assignment.
    field_incident: Uuid,
    field_assignment: Uuid,
    /// The other unit's assignment to the same incident.
    other_assignment: Uuid,
    /// Another unit than the field unit's.
    other_unit: &'static str,
}

/// The expectation's view of the server's state: the field unit is on its incident, and the
/// two assignments of the world are known.
impl access::AccessContext for World {
    fn unit_on_incident(&self, unit_id: &str, incident_id: Uuid) -> bool {
        unit_id == TEST_FIELD_UNIT && incident_id == self.field_incident
    }

    fn assignment(&self, assignment_id: Uuid) -> Option<(String, Uuid)> {
        if assignment_id == self.field_assignment {
            Some((TEST_FIELD_UNIT.to_string(), self.field_incident))
        } else if assignment_id == self.other_assignment {
            Some((self.other_unit.to_string(), self.field_incident))
        } else {
            None
        }
    }
}

/// One op of every kind as `role` would write it on `world` (its own unit for a field
/// unit), plus a field unit's attempts on another unit or incident.
fn ops_for(role: Role, world: &World, n: usize) -> Vec<(String, OpBody)> {
    let me = role.as_str();
    let incident = world.incident[me];
    let own_unit = match role {
        Role::FieldUnit => TEST_FIELD_UNIT.to_string(),
        _ => world.other_unit.to_string(),
    };
    let (_, create) = new_incident(&format!("M-{me}-{n}"));
    let assignment = Uuid::now_v7();
    let mut v = vec![
        ("incident.create".to_string(), create),
        (
            "incident.set_fields".into(),
            OpBody::IncidentSetFields {
                incident_id: incident,
                fields: IncidentFields {
                    priority: Some(Priority::P1),
                    description: Some(format!("set by {me}")),
                    ..IncidentFields::default()
                },
            },
        ),
        (
            "incident.acknowledge".into(),
            OpBody::IncidentAcknowledge {
                incident_id: incident,
            },
        ),
        (
            "unit.set_status".into(),
            OpBody::UnitSetStatus {
                unit_id: own_unit.clone(),
                from: UnitStatus::Available,
                to: UnitStatus::Busy,
                releases: vec![],
            },
        ),
        (
            "assignment.add".into(),
            OpBody::AssignmentAdd {
                assignment_id: assignment,
                incident_id: incident,
                unit_id: world.other_unit.into(),
            },
        ),
        (
            "assignment.release".into(),
            match role {
                Role::FieldUnit => OpBody::AssignmentRelease {
                    assignment_id: world.field_assignment,
                    incident_id: world.field_incident,
                    unit_id: TEST_FIELD_UNIT.into(),
                    unit_to: None,
                },
                _ => OpBody::AssignmentRelease {
                    assignment_id: assignment,
                    incident_id: incident,
                    unit_id: world.other_unit.into(),
                    unit_to: None,
                },
            },
        ),
        (
            "timeline.append".into(),
            OpBody::TimelineAppend {
                entry_id: Uuid::now_v7(),
                incident_id: match role {
                    Role::FieldUnit => world.field_incident,
                    _ => incident,
                },
                text: format!("note by {me}"),
            },
        ),
        (
            "position.report".into(),
            OpBody::PositionReport {
                unit_id: own_unit.clone(),
                fix: fix(),
            },
        ),
        (
            "unit.register".into(),
            OpBody::UnitRegister {
                unit_id: format!("U-{me}-{n}"),
                callsign: format!("unit of {me}"),
                unit_kind: UnitKind::PatrolCar,
                home_station: None,
            },
        ),
        (
            "facility.register".into(),
            OpBody::FacilityRegister {
                facility: Facility {
                    id: format!("F-{me}-{n}"),
                    kind: FacilityKind::Checkpoint,
                    name_zh: "检查站".into(),
                    name_en: format!("checkpoint of {me}"),
                    position: ANDORRA,
                },
            },
        ),
        (
            "device.bind".into(),
            OpBody::DeviceBind {
                device_id: format!("phone-{me}-{n}"),
                unit_id: Some(world.other_unit.into()),
            },
        ),
        (
            "device.report".into(),
            OpBody::DeviceReport {
                report: DeviceReport {
                    device_id: format!("phone-{me}-{n}"),
                    source: DeviceSource::Osmand,
                    name: Some("phone".into()),
                    fix: fix(),
                    battery_pct: Some(80.0),
                },
            },
        ),
        (
            "road_closure.set".into(),
            OpBody::RoadClosureSet {
                closure: RoadClosure {
                    closure_id: Uuid::now_v7(),
                    shape: ClosureShape::Line {
                        points: vec![
                            ANDORRA,
                            LatLon {
                                lat: 42.5070,
                                lon: 1.5230,
                            },
                        ],
                    },
                    reason: format!("closed by {me}"),
                    ends_at: None,
                    lifted: false,
                },
            },
        ),
        (
            "conflict.resolve".into(),
            OpBody::ConflictResolve {
                conflict_id: format!("double:{}", world.other_unit),
                releases: vec![],
                note: format!("resolved by {me}"),
            },
        ),
        (
            "incident.close".into(),
            OpBody::IncidentClose {
                incident_id: incident,
                disposition: Disposition::Resolved,
                summary: format!("closed by {me}"),
                releases: vec![],
            },
        ),
    ];
    if role == Role::FieldUnit {
        // Another unit's assignment released in its own unit's name (review S1), by either
        // op, and an assignment nobody made.
        v.push((
            "assignment.release (another unit's assignment, own unit named)".into(),
            OpBody::AssignmentRelease {
                assignment_id: world.other_assignment,
                incident_id: world.field_incident,
                unit_id: TEST_FIELD_UNIT.into(),
                unit_to: None,
            },
        ));
        v.push((
            "unit.set_status releasing another unit's assignment".into(),
            OpBody::UnitSetStatus {
                unit_id: TEST_FIELD_UNIT.into(),
                from: UnitStatus::Busy,
                to: UnitStatus::Available,
                releases: vec![Release {
                    assignment_id: world.other_assignment,
                    incident_id: world.field_incident,
                    unit_id: TEST_FIELD_UNIT.into(),
                    unit_to: None,
                }],
            },
        ));
        v.push((
            "assignment.release (an unknown assignment)".into(),
            OpBody::AssignmentRelease {
                assignment_id: Uuid::now_v7(),
                incident_id: world.field_incident,
                unit_id: TEST_FIELD_UNIT.into(),
                unit_to: None,
            },
        ));
        // Another unit's status and position, a note on an incident it is not on.
        v.push((
            "unit.set_status (another unit)".into(),
            OpBody::UnitSetStatus {
                unit_id: world.other_unit.into(),
                from: UnitStatus::Available,
                to: UnitStatus::Busy,
                releases: vec![],
            },
        ));
        v.push((
            "position.report (another unit)".into(),
            OpBody::PositionReport {
                unit_id: world.other_unit.into(),
                fix: fix(),
            },
        ));
        v.push((
            "timeline.append (an incident it is not on)".into(),
            OpBody::TimelineAppend {
                entry_id: Uuid::now_v7(),
                incident_id: world.incident["commander"],
                text: "not mine".into(),
            },
        ));
    }
    v
}

/// Pushes `ops` one per request; returns each op's outcome JSON (or the refusal answer).
fn push_one(
    server: &TestServer,
    http: &reqwest::blocking::Client,
    token: &str,
    op: &OpEnvelope,
) -> Answer {
    let body = serde_json::to_value(push_request(op.origin, op.lane, std::slice::from_ref(op)))
        .expect("json");
    send(
        http,
        server,
        &Call {
            method: "POST",
            path: "/v1/push".into(),
            body: Some(body),
            action: "push",
        },
        Some(token),
    )
}

#[test]
fn every_op_kind_is_checked_against_every_role() {
    let server = TestServer::start().expect("test server");
    let commander = server.console(Role::Commander).expect("console");
    let http_c = client(&server, Some(&commander.device));
    let mut cw = Writer::new(commander.device.origin, "commander").signing(&commander.login);

    // The world, by the commander: units, an incident per role, the field unit assigned to
    // one of them.
    let other_unit = "P-02";
    let mut setup = vec![
        cw.op(OpBody::UnitRegister {
            unit_id: TEST_FIELD_UNIT.into(),
            callsign: "巡逻 01".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        }),
        cw.op(OpBody::UnitRegister {
            unit_id: other_unit.into(),
            callsign: "巡逻 02".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        }),
    ];
    let mut incident = BTreeMap::new();
    for role in Role::ALL {
        let (id, body) = new_incident(&format!("W-{}", role.as_str()));
        setup.push(cw.op(body));
        incident.insert(role.as_str(), id);
    }
    let (field_incident, body) = new_incident("W-field");
    setup.push(cw.op(body));
    let field_assignment = Uuid::now_v7();
    setup.push(cw.op(OpBody::AssignmentAdd {
        assignment_id: field_assignment,
        incident_id: field_incident,
        unit_id: TEST_FIELD_UNIT.into(),
    }));
    let other_assignment = Uuid::now_v7();
    setup.push(cw.op(OpBody::AssignmentAdd {
        assignment_id: other_assignment,
        incident_id: field_incident,
        unit_id: other_unit.into(),
    }));
    let req = push_request(commander.device.origin, Lane::Critical, &setup);
    match send(
        &http_c,
        &server,
        &Call::post(
            "/v1/push",
            serde_json::to_value(&req).expect("json"),
            "push",
        ),
        Some(&commander.login.token),
    ) {
        Ok((200, v)) => {
            let accepted = v["results"].as_array().map_or(0, |r| {
                r.iter().filter(|o| o["outcome"] == "accepted").count()
            });
            assert_eq!(accepted, setup.len(), "setup: {v}");
        }
        other => panic!("setup push: {other:?}"),
    }
    let mut setup_writer = Some(cw);
    let world = World {
        incident,
        field_incident,
        field_assignment,
        other_assignment,
        other_unit,
    };

    let mut f = Findings::default();
    let mut accepted_kinds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for role in Role::ALL {
        let console = if role == Role::Commander {
            commander.clone()
        } else {
            server.console(role).expect("console")
        };
        let name = server.user(role).name.clone();
        let http = client(&server, Some(&console.device));
        // The commander goes on with the writer of the setup (its seq and lane_seq).
        let mut w = match (role, setup_writer.take()) {
            (Role::Commander, Some(w)) => w,
            _ => Writer::new(console.device.origin, &name).signing(&console.login),
        };
        let actor = Actor {
            user: name.clone(),
            role,
            unit_id: server.user(role).unit_id.clone(),
        };
        let push_allowed = access::check_endpoint(role, Endpoint::Push).is_ok();
        for (label, body) in ops_for(role, &world, 1) {
            let case = format!("{name} writes {label}");
            let allowed = access::check_op(&actor, &body, &world).is_ok();
            let op = w.op(body);
            let kind = access::op_kind(&op.body);
            let audit_action = if op.lane == Lane::Positions {
                "op:positions".to_string()
            } else {
                format!("op:{kind}")
            };
            if !push_allowed {
                f.refused(
                    &server,
                    &case,
                    || push_one(&server, &http, &console.login.token, &op),
                    &Refusal {
                        status: 403,
                        code: "forbidden",
                        action: "push",
                        user: &name,
                        device: &console.device.device_id,
                    },
                );
                continue;
            }
            f.checked += 1;
            let before = head(&server);
            let answer = push_one(&server, &http, &console.login.token, &op);
            let outcome = match &answer {
                Ok((200, v)) => v["results"][0].clone(),
                other => {
                    f.fail(format!("{case}: push answered {other:?}"));
                    continue;
                }
            };
            let new = records_after(&server, before);
            let audited = |outcome: &str| {
                new.iter().any(|r| {
                    r.action == audit_action
                        && r.outcome == outcome
                        && r.user == name
                        && r.device == console.device.device_id
                })
            };
            if allowed {
                if outcome["outcome"] != "accepted" {
                    f.fail(format!("{case}: allowed, but {outcome}"));
                } else {
                    accepted_kinds
                        .entry(role.as_str())
                        .or_default()
                        .push(label.clone());
                }
                if !audited("ok") {
                    f.fail(format!(
                        "{case}: no audit record (ok, {audit_action}); appended: {}",
                        describe(&new)
                    ));
                }
            } else {
                let reason = outcome["reason"].as_str().unwrap_or_default();
                if outcome["outcome"] != "parked" || !reason.starts_with("forbidden") {
                    f.fail(format!("{case}: expected parked forbidden, got {outcome}"));
                }
                if !audited("refused") {
                    f.fail(format!(
                        "{case}: no audit record (refused, {audit_action}); appended: {}",
                        describe(&new)
                    ));
                }
            }
        }
    }
    // The expectations themselves, independently of `check_op`: the commander writes every
    // kind, the dispatcher all but the roster and devices, the field unit its own unit.
    let kinds = |role: &str| accepted_kinds.get(role).cloned().unwrap_or_default();
    if kinds("commander").len() != 15 {
        f.fail(format!("commander accepted {:?}", kinds("commander")));
    }
    let mut dispatcher = kinds("dispatcher");
    dispatcher.sort();
    if dispatcher.len() != 11
        || dispatcher.iter().any(|k| {
            [
                "unit.register",
                "facility.register",
                "device.bind",
                "device.report",
            ]
            .contains(&k.as_str())
        })
    {
        f.fail(format!("dispatcher accepted {dispatcher:?}"));
    }
    let mut field = kinds("field_unit");
    field.sort();
    if field
        != [
            "assignment.release",
            "position.report",
            "timeline.append",
            "unit.set_status",
        ]
    {
        f.fail(format!("field unit accepted {field:?}"));
    }
    f.finish("op kinds × roles", 96);
}

#[test]
fn ops_of_another_person_or_another_origin_are_refused() {
    let server = TestServer::start().expect("test server");
    let console = server.console(Role::Dispatcher).expect("console");
    let http = client(&server, Some(&console.device));
    let mut f = Findings::default();

    // An op signed with the commander's name from the dispatcher's session: the commander
    // never signed in on this device.
    let mut w = Writer::new(console.device.origin, "commander");
    let op = w.op(new_incident("X-1").1);
    f.checked += 1;
    let before = head(&server);
    match push_one(&server, &http, &console.login.token, &op) {
        Ok((200, v))
            if v["results"][0]["outcome"] == "parked"
                && v["results"][0]["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("forbidden")) => {}
        other => f.fail(format!("an op in another person's name: {other:?}")),
    }
    let new = records_after(&server, before);
    if !new.iter().any(|r| {
        // The record names the session's person, whom the server can prove; the claimed
        // author is in the detail.
        r.action == "op:incident.create"
            && r.outcome == "refused"
            && r.user == "dispatcher"
            && r.detail.contains("claimed author \"commander\"")
    }) {
        f.fail(format!(
            "an op in another person's name: not audited; appended: {}",
            describe(&new)
        ));
    }

    // A push of another installation's origin.
    let mut w = Writer::new(Uuid::now_v7(), "dispatcher");
    let op = w.op(new_incident("X-2").1);
    f.refused(
        &server,
        "a push of another origin",
        || push_one(&server, &http, &console.login.token, &op),
        &Refusal {
            status: 403,
            code: "forbidden",
            action: "push",
            user: "dispatcher",
            device: &console.device.device_id,
        },
    );
    f.finish("authors and origins", 2);
}

#[test]
fn the_auditor_reads_the_refusals_through_get_audit() {
    let server = TestServer::start().expect("test server");
    let viewer = server.console(Role::Viewer).expect("console");
    let http_v = client(&server, Some(&viewer.device));
    // A viewer's refused push and refused audit read.
    let mut w = Writer::new(viewer.device.origin, "viewer");
    let op = w.op(new_incident("V-1").1);
    let (s, _) = push_one(&server, &http_v, &viewer.login.token, &op).expect("answer");
    assert_eq!(s, 403);
    let (s, body) = send(
        &http_v,
        &server,
        &Call::get("/v1/audit", "audit.read"),
        Some(&viewer.login.token),
    )
    .expect("answer");
    assert_eq!((s, body["code"].as_str()), (403, Some("forbidden")));

    let auditor = server.console(Role::Auditor).expect("console");
    let http_a = client(&server, Some(&auditor.device));
    // Page up to the newest record there was when paging started: each read is itself
    // audited (`audit.read`), so paging "until an empty page" would chase its own records.
    let stop = head(&server);
    let mut records: Vec<AuditRecord> = Vec::new();
    let mut after = 0;
    while after < stop {
        let (s, page) = send(
            &http_a,
            &server,
            &Call::get(format!("/v1/audit?after={after}&limit=2"), "audit.read"),
            Some(&auditor.login.token),
        )
        .expect("answer");
        assert_eq!(s, 200, "{page}");
        let page: outpost_domain::wire::AuditPage =
            serde_json::from_value(page).expect("an AuditPage");
        let Some(last) = page.records.last() else {
            panic!("an empty page after #{after}, before #{stop}");
        };
        after = last.seq;
        records.extend(page.records.into_iter().filter(|r| r.seq <= stop));
    }
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == "refused" && r.user == "viewer")
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(refused, ["push", "audit.read"], "{}", describe(&records));
    // What the auditor read is the trail itself, and it verifies; the reads were audited.
    let trail = records_after(&server, 0);
    assert_eq!(records[..], trail[..records.len()]);
    assert_eq!(records.len() as u64, stop);
    assert!(
        trail[records.len()..]
            .iter()
            .any(|r| r.action == "audit.read" && r.outcome == "ok" && r.user == "auditor"),
        "{}",
        describe(&trail[records.len()..])
    );
    let report = audit_verify(&server);
    assert!(report.is_intact(), "{report}");
    for r in &records {
        assert!(r.at.len() == 28 && r.at.as_bytes()[19] == b'.', "{}", r.at);
    }
}

fn audit_verify(server: &TestServer) -> outpost_server::security::audit::VerifyReport {
    outpost_server::security::audit::verify(server.data_dir()).expect("verify")
}
