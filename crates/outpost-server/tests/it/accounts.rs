//! Accounts, sign-in and enforcement (issue 6) on the TLS test server of
//! `outpost_server::testing`: lockout on the 5th failure within 15 minutes (and its
//! release by an administrator), TOTP replay, session tokens replayed from another device,
//! after logout or after expiry, the push authorization of each op (author, grants, roles,
//! a field unit's own unit) and the endpoint permissions of the roles. Time moves on the
//! security layer's injected clock; nothing sleeps.

use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::access::Role;
use outpost_domain::op::{Lane, OpBody, OpEnvelope, Release};
use outpost_domain::op_auth::OpSigner;
use outpost_domain::unit::UnitStatus;
use outpost_domain::wire::{EnrollRequest, LoginRequest, LoginResponse, PROTOCOL_VERSION};
use outpost_server::security::AuthError;
use outpost_server::testing::{TEST_FIELD_UNIT, TEST_PASSWORD, TestDevice, TestServer};
use outpost_sync::tls::client_config;

use crate::support::{Author, outcomes, request};

/// An HTTPS client of the test server with `device`'s certificate (or none).
struct Https {
    base: String,
    http: reqwest::blocking::Client,
}

impl Https {
    fn new(server: &TestServer, device: Option<&TestDevice>) -> Https {
        let identity = device.map(|d| (d.cert_pem.as_str(), d.key_pem.as_str()));
        let tls = client_config(server.ca_pem(), identity).expect("client config");
        Https {
            base: server.url(),
            http: reqwest::blocking::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("https client"),
        }
    }

    fn send(&self, rb: reqwest::blocking::RequestBuilder, token: Option<&str>) -> (u16, Value) {
        let rb = match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        let r = rb.send().expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)), token)
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(
            self.http.post(format!("{}{path}", self.base)).json(body),
            token,
        )
    }
}

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["code"].as_str().unwrap_or(""))
}

fn login_body(server: &TestServer, role: Role, password: &str, totp: String) -> Value {
    json!(LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: server.user(role).name.clone(),
        password: password.into(),
        totp,
    })
}

fn err_code<T: std::fmt::Debug>(r: Result<T, AuthError>) -> &'static str {
    r.expect_err("refused").code()
}

/// An op of `author` written by `user` at `wall_ms`.
fn by(mut op: OpEnvelope, user: &str, wall_ms: Option<i64>) -> OpEnvelope {
    op.user = user.into();
    if let Some(ms) = wall_ms {
        op.hlc.wall_ms = ms;
    }
    op
}

/// `ops`, each signed with the op key of the login (of those given) of its author, as the
/// author's console does (op signing, review S2); ops of others stay unsigned.
fn signed(ops: &[OpEnvelope], logins: &[&LoginResponse]) -> Vec<OpEnvelope> {
    ops.iter()
        .cloned()
        .map(|mut op| {
            if let Some(l) = logins.iter().find(|l| l.user == op.user) {
                OpSigner::new(&l.user, &l.op_key_id, &l.op_key)
                    .expect("op key")
                    .sign(&mut op)
                    .expect("sign");
            }
            op
        })
        .collect()
}

/// An author with `device`'s origin.
fn author_of(device: &TestDevice) -> Author {
    let mut a = Author::new(0);
    a.origin = device.origin;
    a
}

#[test]
fn an_unknown_login_name_is_locked_out_like_a_real_account_no_user_enumeration() {
    let server = TestServer::start().expect("server");
    let device = server.enroll(Role::Administrator, "probe").expect("enroll");
    let http = Https::new(&server, Some(&device));
    let try_login = |user: &str, i: usize| {
        let (status, body) = http.post(
            "/v1/login",
            None,
            &json!(LoginRequest {
                protocol: PROTOCOL_VERSION,
                user: user.into(),
                password: format!("not the password {i}"),
                totp: "000000".into(),
            }),
        );
        let message = body["message"].as_str().unwrap_or("").replace(user, "NAME");
        (
            status,
            body["code"].as_str().unwrap_or("").to_owned(),
            message,
        )
    };
    // Failures of a real account and of a name with no account, side by side: the same
    // answers, try by try; the 5th and the 6th are locked_out for both.
    for i in 0..6 {
        let real = try_login("dispatcher", i);
        let unknown = try_login("no.such.person", i);
        assert_eq!(unknown, real, "try {}", i + 1);
        let expected = if i < 4 {
            (401, "unauthenticated")
        } else {
            (403, "locked_out")
        };
        assert_eq!((real.0, real.1.as_str()), expected, "try {}", i + 1);
        server.clock().advance_secs(60);
    }
    let (_, _, message) = try_login("no.such.person", 9);
    assert!(
        message.starts_with("the account \"NAME\" is locked"),
        "{message}"
    );
    // The name is keyed like account names (case and width folded).
    assert_eq!(try_login("No.Such.Person", 10).1, "locked_out");
    // Nothing was created for it; another unknown name is not locked.
    let users = server.security().accounts().list_users().expect("list");
    assert!(
        users.iter().all(|u| u.name != "no.such.person"),
        "{users:?}"
    );
    assert_eq!(try_login("someone.else", 11).1, "unauthenticated");
    // Failures more than 15 minutes apart do not add up, as for an account.
    for i in 0..8 {
        assert_eq!(
            try_login("slow.prober", i).1,
            "unauthenticated",
            "try {}",
            i + 1
        );
        server.clock().advance_secs(4 * 60);
    }
}

#[test]
fn the_fifth_failure_within_15_minutes_locks_until_an_administrator_unlocks() {
    let server = TestServer::start().expect("server");
    let sec = server.security();
    let device = server
        .enroll(Role::Administrator, "lockout")
        .expect("enroll");
    let wrong = |i: usize| LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: "dispatcher".into(),
        password: format!("not the password {i}"),
        totp: server.totp_code(Role::Dispatcher),
    };
    // Four failures, then the right password and code: signed in (the count is cleared).
    for i in 0..4 {
        assert_eq!(
            err_code(sec.login(Some(&device.peer()), &wrong(i))),
            "unauthenticated"
        );
    }
    server
        .login(&device, Role::Dispatcher)
        .expect("4 failures do not lock");
    // Failures more than 15 minutes apart do not add up.
    for i in 0..4 {
        assert_eq!(
            err_code(sec.login(Some(&device.peer()), &wrong(i))),
            "unauthenticated"
        );
    }
    server.clock().advance_secs(15 * 60 + 1);
    assert_eq!(
        err_code(sec.login(Some(&device.peer()), &wrong(9))),
        "unauthenticated"
    );
    server
        .login(&device, Role::Dispatcher)
        .expect("old failures expired");
    // Five failures within 15 minutes (the fifth is answered locked_out)...
    for i in 0..4 {
        assert_eq!(
            err_code(sec.login(Some(&device.peer()), &wrong(i))),
            "unauthenticated"
        );
        server.clock().advance_secs(60);
    }
    assert_eq!(
        err_code(sec.login(Some(&device.peer()), &wrong(4))),
        "locked_out"
    );
    // ...and then even the right password and a fresh code are refused, over HTTP too.
    let http = Https::new(&server, Some(&device));
    let right = login_body(
        &server,
        Role::Dispatcher,
        TEST_PASSWORD,
        server.fresh_code(Role::Dispatcher),
    );
    assert_eq!(
        code(&http.post("/v1/login", None, &right)),
        (403, "locked_out")
    );
    let listed = sec.accounts().list_users().expect("list");
    let d = listed
        .iter()
        .find(|u| u.name == "dispatcher")
        .expect("dispatcher");
    assert!(d.locked_at.is_some());
    // Hours later it is still locked: only an administrator releases it.
    server.clock().advance_secs(6 * 3600);
    let right = login_body(
        &server,
        Role::Dispatcher,
        TEST_PASSWORD,
        server.fresh_code(Role::Dispatcher),
    );
    assert_eq!(
        code(&http.post("/v1/login", None, &right)),
        (403, "locked_out")
    );
    // The administrator unlocks over HTTP; the dispatcher signs in.
    let admin = server
        .login(&device, Role::Administrator)
        .expect("admin login");
    let (status, _) = http.post(
        "/v1/admin/users/dispatcher/unlock",
        Some(&admin.token),
        &json!({}),
    );
    assert_eq!(status, 204);
    let right = login_body(
        &server,
        Role::Dispatcher,
        TEST_PASSWORD,
        server.fresh_code(Role::Dispatcher),
    );
    let (status, body) = http.post("/v1/login", None, &right);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "dispatcher");
    assert_eq!(body["token"].as_str().map(str::len), Some(64));
    // Each step of it is in the audit trail.
    let events = audit(&server);
    let logins: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "login" && e["user"] == "dispatcher")
        .map(|e| e["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(logins.iter().filter(|o| **o == "ok").count(), 3);
    assert_eq!(
        logins.iter().filter(|o| **o == "refused").count(),
        4 + 5 + 5 + 2
    );
    assert!(events.iter().any(|e| e["action"] == "admin:user.unlock"
        && e["target"] == "dispatcher"
        && e["user"] == "administrator"
        && e["outcome"] == "ok"));
}

#[test]
fn enrollment_failures_count_towards_the_lockout() {
    let server = TestServer::start().expect("server");
    let sec = server.security();
    let (_key, csr_pem) = outpost_server::testing::key_and_csr().expect("csr");
    let enroll = |password: &str, totp: String| EnrollRequest {
        protocol: PROTOCOL_VERSION,
        user: "viewer".into(),
        password: password.into(),
        totp,
        device_name: "stolen laptop".into(),
        origin: Uuid::now_v7(),
        csr_pem: csr_pem.clone(),
        cache_key: "ab".repeat(32),
    };
    for _ in 0..3 {
        assert_eq!(
            err_code(sec.enroll(&enroll("guess-guess-guess", server.totp_code(Role::Viewer)))),
            "unauthenticated"
        );
    }
    let device = server.enroll(Role::Commander, "other").expect("enroll");
    let wrong = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: "viewer".into(),
        password: "guess-guess-guess".into(),
        totp: server.totp_code(Role::Viewer),
    };
    assert_eq!(
        err_code(sec.login(Some(&device.peer()), &wrong)),
        "unauthenticated"
    );
    assert_eq!(
        err_code(sec.login(Some(&device.peer()), &wrong)),
        "locked_out"
    );
    // Locked: a right enrollment is refused too.
    assert_eq!(
        err_code(sec.enroll(&enroll(TEST_PASSWORD, server.fresh_code(Role::Viewer)))),
        "locked_out"
    );
    assert_eq!(sec.accounts().list_devices().expect("devices").len(), 1);
}

#[test]
fn a_totp_code_is_accepted_once() {
    let server = TestServer::start().expect("server");
    let device = server
        .enroll(Role::Administrator, "replay")
        .expect("enroll");
    let http = Https::new(&server, Some(&device));
    let totp = server.fresh_code(Role::Commander);
    let body = login_body(&server, Role::Commander, TEST_PASSWORD, totp.clone());
    let (status, first) = http.post("/v1/login", None, &body);
    assert_eq!(status, 200, "{first}");
    // The same code again, within its 30 s: refused ("already used"; not counted).
    assert_eq!(
        code(&http.post("/v1/login", None, &body)),
        (401, "unauthenticated")
    );
    // Still refused 30 s later (the step was used; one step of skew is tolerated).
    server.clock().advance_secs(30);
    assert_eq!(
        code(&http.post("/v1/login", None, &body)),
        (401, "unauthenticated")
    );
    // The next step's code works.
    let next = login_body(
        &server,
        Role::Commander,
        TEST_PASSWORD,
        server.totp_code(Role::Commander),
    );
    assert_ne!(next["totp"], json!(totp));
    let (status, _) = http.post("/v1/login", None, &next);
    assert_eq!(status, 200);
    // A wrong password with a right code does not consume the code's step.
    server.clock().advance_secs(30);
    let code_now = server.totp_code(Role::Commander);
    let bad = login_body(
        &server,
        Role::Commander,
        "wrong password!!",
        code_now.clone(),
    );
    assert_eq!(
        code(&http.post("/v1/login", None, &bad)),
        (401, "unauthenticated")
    );
    let good = login_body(&server, Role::Commander, TEST_PASSWORD, code_now);
    assert_eq!(http.post("/v1/login", None, &good).0, 200);
}

#[test]
fn a_token_works_only_on_its_device_until_logout_or_expiry() {
    let server = TestServer::start().expect("server");
    let a = server.console(Role::Commander).expect("console a");
    let b = server
        .enroll(Role::Dispatcher, "console b")
        .expect("device b");
    let on_a = Https::new(&server, Some(&a.device));
    let on_b = Https::new(&server, Some(&b));
    let none = Https::new(&server, None);
    let token = a.login.token.as_str();
    assert_eq!(on_a.get("/v1/pull?after=0", Some(token)).0, 200);
    // Health and capabilities need nothing.
    assert_eq!(none.get("/v1/health", None).0, 200);
    // No certificate, no token, an unknown token, another device's token.
    assert_eq!(
        code(&none.get("/v1/pull?after=0", Some(token))),
        (401, "certificate_required")
    );
    assert_eq!(
        code(&on_a.get("/v1/pull?after=0", None)),
        (401, "unauthenticated")
    );
    assert_eq!(
        code(&on_a.get("/v1/pull?after=0", Some(&"0".repeat(64)))),
        (401, "unauthenticated")
    );
    assert_eq!(
        code(&on_b.get("/v1/pull?after=0", Some(token))),
        (401, "unauthenticated")
    );
    // Expired 12 h after the login.
    server.clock().advance_secs(12 * 3600 - 1);
    assert_eq!(on_a.get("/v1/pull?after=0", Some(token)).0, 200);
    server.clock().advance_secs(1);
    assert_eq!(
        code(&on_a.get("/v1/pull?after=0", Some(token))),
        (401, "unauthenticated")
    );
    // A new login, then logout: the token is dead.
    let again = server.login(&a.device, Role::Commander).expect("login");
    assert_eq!(on_a.get("/v1/snapshot", Some(&again.token)).0, 200);
    assert_eq!(
        on_a.post("/v1/logout", Some(&again.token), &json!({})).0,
        204
    );
    assert_eq!(
        code(&on_a.get("/v1/snapshot", Some(&again.token))),
        (401, "unauthenticated")
    );
    // A disabled account's live session ends.
    let viewer = server.login(&b, Role::Viewer).expect("viewer");
    assert_eq!(on_b.get("/v1/pull?after=0", Some(&viewer.token)).0, 200);
    server
        .security()
        .accounts()
        .disable("viewer")
        .expect("disable");
    assert_eq!(
        code(&on_b.get("/v1/pull?after=0", Some(&viewer.token))),
        (401, "unauthenticated")
    );
    let rev = on_b.get(
        "/v1/security/revocations",
        Some(&server.login(&b, Role::Dispatcher).expect("login").token),
    );
    assert_eq!(rev.0, 200);
    assert_eq!(rev.1["disabled_users"], json!(["viewer"]));
    // A revoked device: 403 device_revoked, whatever the token.
    let c = server.console(Role::Dispatcher).expect("console c");
    let on_c = Https::new(&server, Some(&c.device));
    server
        .security()
        .accounts()
        .revoke_device(&c.device.device_id, "laptop stolen")
        .expect("revoke");
    assert_eq!(
        code(&on_c.get("/v1/pull?after=0", Some(&c.login.token))),
        (403, "device_revoked")
    );
    let login = login_body(
        &server,
        Role::Dispatcher,
        TEST_PASSWORD,
        server.fresh_code(Role::Dispatcher),
    );
    assert_eq!(
        code(&on_c.post("/v1/login", None, &login)),
        (403, "device_revoked")
    );
    // Every refusal was audited.
    let refused = audit(&server)
        .into_iter()
        .filter(|e| e["action"] == "pull" && e["outcome"] == "refused")
        .count();
    assert_eq!(refused, 7);
}

#[test]
fn roles_reach_only_their_endpoints() {
    let server = TestServer::start().expect("server");
    let auditor = server.console(Role::Auditor).expect("auditor");
    let http = Https::new(&server, Some(&auditor.device));
    let t = Some(auditor.login.token.as_str());
    assert_eq!(code(&http.get("/v1/pull?after=0", t)), (403, "forbidden"));
    assert_eq!(code(&http.get("/v1/snapshot", t)), (403, "forbidden"));
    assert_eq!(code(&http.get("/v1/admin/users", t)), (403, "forbidden"));
    assert_eq!(http.get("/v1/audit?after=0", t).0, 200);
    assert_eq!(http.get("/v1/security/revocations", t).0, 200);
    let admin = server.console(Role::Administrator).expect("admin");
    let http = Https::new(&server, Some(&admin.device));
    let t = Some(admin.login.token.as_str());
    assert_eq!(code(&http.get("/v1/audit?after=0", t)), (403, "forbidden"));
    assert_eq!(code(&http.get("/v1/pull?after=0", t)), (403, "forbidden"));
    let (status, users) = http.get("/v1/admin/users", t);
    assert_eq!(status, 200);
    assert_eq!(users.as_array().map(Vec::len), Some(6));
    // The administrator adds an account; its TOTP secret comes back once.
    let (status, created) = http.post(
        "/v1/admin/users",
        t,
        &json!({"name": "p02", "role": "field_unit", "unit_id": "P-02", "password": "long enough pw"}),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["totp_secret"].as_str().map(str::len), Some(32));
    assert!(
        created["otpauth_uri"]
            .as_str()
            .unwrap_or("")
            .starts_with("otpauth://totp/")
    );
    let (status, devices) = http.get("/v1/admin/devices", t);
    assert_eq!(status, 200);
    assert_eq!(devices.as_array().map(Vec::len), Some(2));
    // The auditor's refused pull is in the trail with the auditor's name.
    assert!(audit(&server).iter().any(|e| e["action"] == "pull"
        && e["user"] == "auditor"
        && e["outcome"] == "refused"
        && e["detail"].as_str().unwrap_or("").contains("forbidden")));
}

#[test]
fn pushes_of_roles_that_write_nothing_are_refused_whole() {
    let server = TestServer::start().expect("server");
    for role in [Role::Administrator, Role::Viewer, Role::Auditor] {
        let c = server.console(role).expect("console");
        let http = Https::new(&server, Some(&c.device));
        let mut a = author_of(&c.device);
        let op = by(a.unit("U-1"), &c.login.user, None);
        let req = request(c.device.origin, Lane::Critical, &[op]);
        let r = http.post("/v1/push", Some(&c.login.token), &json!(req));
        assert_eq!(code(&r), (403, "forbidden"), "{role}");
    }
    assert_eq!(server.server().service().head().expect("head").gseq, 0);
}

#[test]
fn a_push_of_another_origin_is_refused() {
    let server = TestServer::start().expect("server");
    let c = server.console(Role::Commander).expect("console");
    let http = Https::new(&server, Some(&c.device));
    let mut a = Author::new(77);
    let op = by(a.unit("U-1"), "commander", None);
    let req = request(a.origin, Lane::Critical, &[op]);
    let r = http.post("/v1/push", Some(&c.login.token), &json!(req));
    assert_eq!(code(&r), (403, "forbidden"));
    assert!(
        r.1["message"]
            .as_str()
            .unwrap_or("")
            .contains("enrolled with origin")
    );
    assert_eq!(server.server().service().head().expect("head").gseq, 0);
}

#[test]
fn each_op_is_checked_against_its_author() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let http = Https::new(&server, Some(&cmd.device));
    let token = cmd.login.token.clone();
    // The viewer signed in on this device earlier: their grant covers now, but a viewer
    // writes nothing, so their op in the commander's push is parked as forbidden.
    let viewer = server
        .login(&cmd.device, Role::Viewer)
        .expect("viewer login");
    let now_ms = server.clock_now_ms();
    let mut a = author_of(&cmd.device);
    let ops = vec![
        by(a.unit("P-01"), "commander", Some(now_ms)),
        by(a.unit("P-02"), "viewer", Some(now_ms)),
        // A dispatcher never signed in on this device: no grant.
        by(a.unit("P-03"), "dispatcher", Some(now_ms)),
        // Nobody of that name.
        by(a.unit("P-04"), "mallory", Some(now_ms)),
    ];
    // Each op signed by its author's key where they have one here (the dispatcher and
    // mallory have none: unsigned).
    let req = request(
        cmd.device.origin,
        Lane::Critical,
        &signed(&ops, &[&cmd.login, &viewer]),
    );
    let (status, answer) = http.post("/v1/push", Some(&token), &json!(req));
    assert_eq!(status, 200, "{answer}");
    let o = outcomes(&answer);
    assert_eq!(o[0], "accepted 1");
    assert!(
        o[1].starts_with("parked: forbidden: viewer \"viewer\" may not write unit.register"),
        "{o:?}"
    );
    assert!(
        o[2].starts_with("parked: forbidden: not signed by \"dispatcher\""),
        "{o:?}"
    );
    assert!(
        o[3].starts_with("parked: forbidden: the author \"mallory\" has no account"),
        "{o:?}"
    );
    // A dispatcher who signed in here may have an op written offline (within the grace)
    // pushed later under the commander's session; one written after the grace ended may not.
    let disp = server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher login");
    let signed_in = server.clock_now_ms();
    let (incident, create) = a.incident();
    let ops = signed(
        &[
            by(create, "dispatcher", Some(signed_in + 3_600_000)),
            by(
                a.note(incident, "late"),
                "dispatcher",
                Some(signed_in + 73 * 3_600_000),
            ),
        ],
        &[&disp],
    );
    let req = request(cmd.device.origin, Lane::Critical, &ops[..1]);
    let (_, answer) = http.post("/v1/push", Some(&token), &json!(req));
    assert_eq!(outcomes(&answer), ["accepted 2"]);
    let req = request(cmd.device.origin, Lane::Notes, &ops[1..]);
    let (_, answer) = http.post("/v1/push", Some(&token), &json!(req));
    let o = outcomes(&answer);
    assert!(
        o[0].starts_with("parked: forbidden: \"dispatcher\" signed this op"),
        "{o:?}"
    );
    // Parked ops are in the server's parked list with the reason; the audit has one record
    // per critical/notes op with its outcome.
    let parked = server.server().service().parked().expect("parked");
    assert_eq!(parked.len(), 4);
    let events = audit(&server);
    let ops: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("op:"))
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["user"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let s = |a: &str, u: &str, o: &str| (a.to_string(), u.to_string(), o.to_string());
    assert_eq!(
        ops,
        [
            // A refused op is recorded under the session's person (the one the server can
            // prove), its claimed author in the detail; an accepted one under its author,
            // whose signature verified.
            s("op:unit.register", "commander", "ok"),
            s("op:unit.register", "commander", "refused"),
            s("op:unit.register", "commander", "refused"),
            s("op:unit.register", "commander", "refused"),
            s("op:incident.create", "dispatcher", "ok"),
            s("op:timeline.append", "commander", "refused"),
        ]
    );
    let claimed: Vec<&str> = events
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("op:")))
        .filter_map(|e| e["detail"].as_str())
        .filter_map(|d| d.split("claimed author ").nth(1))
        .collect();
    assert_eq!(
        claimed,
        [
            "\"viewer\"",
            "\"dispatcher\"",
            "\"mallory\"",
            "\"dispatcher\""
        ]
    );
}

#[test]
fn a_field_unit_sets_its_own_status_only() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let cmd_http = Https::new(&server, Some(&cmd.device));
    let mut a = author_of(&cmd.device);
    let units = [a.unit(TEST_FIELD_UNIT), a.unit("P-02")];
    let (incident, create) = a.incident();
    let (other, create_other) = a.incident();
    let assign = a.op(OpBody::AssignmentAdd {
        assignment_id: Uuid::now_v7(),
        incident_id: incident,
        unit_id: TEST_FIELD_UNIT.into(),
    });
    let [u1, u2] = units;
    let ops: Vec<OpEnvelope> = vec![u1, u2, create, create_other, assign]
        .into_iter()
        .map(|o| by(o, "commander", None))
        .collect();
    let (status, answer) = cmd_http.post(
        "/v1/push",
        Some(&cmd.login.token),
        &json!(request(
            cmd.device.origin,
            Lane::Critical,
            &signed(&ops, &[&cmd.login])
        )),
    );
    assert_eq!(status, 200);
    assert_eq!(
        outcomes(&answer),
        [
            "accepted 1",
            "accepted 2",
            "accepted 3",
            "accepted 4",
            "accepted 5"
        ]
    );

    let field = server.console(Role::FieldUnit).expect("field unit");
    let http = Https::new(&server, Some(&field.device));
    let mut f = author_of(&field.device);
    let status_of = |f: &mut Author, unit: &str| {
        by(
            f.op(OpBody::UnitSetStatus {
                unit_id: unit.into(),
                from: UnitStatus::Dispatched,
                to: UnitStatus::EnRoute,
                releases: Vec::<Release>::new(),
            }),
            "field_unit",
            None,
        )
    };
    let ops = vec![
        status_of(&mut f, TEST_FIELD_UNIT),
        status_of(&mut f, "P-02"),
    ];
    let (status, answer) = http.post(
        "/v1/push",
        Some(&field.login.token),
        &json!(request(
            field.device.origin,
            Lane::Critical,
            &signed(&ops, &[&field.login])
        )),
    );
    assert_eq!(status, 200, "{answer}");
    let o = outcomes(&answer);
    assert!(o[0].starts_with("accepted"), "{o:?}");
    assert!(
        o[1].starts_with(
            "parked: forbidden: field_unit \"field_unit\" may not write unit.set_status"
        ),
        "{o:?}"
    );
    // Notes: on its own incident yes, on another no.
    let notes = vec![
        by(
            f.note(incident, "on scene, two suspects"),
            "field_unit",
            None,
        ),
        by(f.note(other, "not mine"), "field_unit", None),
    ];
    let (_, answer) = http.post(
        "/v1/push",
        Some(&field.login.token),
        &json!(request(
            field.device.origin,
            Lane::Notes,
            &signed(&notes, &[&field.login])
        )),
    );
    let o = outcomes(&answer);
    assert!(o[0].starts_with("accepted"), "{o:?}");
    assert!(o[1].starts_with("parked: forbidden: field_unit"), "{o:?}");
    // Positions: own unit accepted, another's refused; one audit record for the push.
    let positions = vec![
        by(f.position(TEST_FIELD_UNIT, 1), "field_unit", None),
        by(f.position("P-02", 2), "field_unit", None),
    ];
    let (_, answer) = http.post(
        "/v1/push",
        Some(&field.login.token),
        &json!(request(
            field.device.origin,
            Lane::Positions,
            &signed(&positions, &[&field.login])
        )),
    );
    let o = outcomes(&answer);
    assert!(o[0].starts_with("accepted"), "{o:?}");
    assert!(o[1].starts_with("parked: forbidden"), "{o:?}");
    let events = audit(&server);
    let pos: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "op:positions")
        .collect();
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0]["target"], "2 ops");
    assert_eq!(pos[0]["detail"], "1 accepted, 1 refused, 0 parked");
    assert_eq!(pos[0]["outcome"], "refused");
}

/// The audit trail as JSON records (oldest first).
fn audit(server: &TestServer) -> Vec<Value> {
    let log = server.security().audit_log().expect("audit log");
    let page = log.page(0, Some(1000)).expect("page");
    page.records.iter().map(|r| json!(r)).collect()
}

trait ClockMs {
    fn clock_now_ms(&self) -> i64;
}

impl ClockMs for TestServer {
    fn clock_now_ms(&self) -> i64 {
        use outpost_domain::clock::Clock;
        self.clock().now().timestamp_millis()
    }
}

/// Runs `outpost-server ARGS` with `stdin`; (exit code, stdout, stderr).
fn cli(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    cli_env(args, stdin, &[])
}

/// [`cli`] with environment variables set (`Some`) or removed (`None`).
fn cli_env(
    args: &[&str],
    stdin: &str,
    env: &[(&str, Option<&str>)],
) -> (Option<i32>, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost-server"));
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn user_and_device_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let add = |name: &str, extra: &[&str], password: &str| {
        let mut args = vec!["user", "add", "--data", data, name, "--password-stdin"];
        args.extend_from_slice(extra);
        cli(&args, &format!("{password}\n"))
    };
    // Too short a password: refused, nothing created.
    let (status, _, err) = add("li.wei", &["--role", "commander"], "short");
    assert_eq!(status, Some(1));
    assert_eq!(
        err,
        "error: password: at least 12 characters are required\n"
    );
    // A field unit needs its unit.
    let (status, _, err) = add("p03", &["--role", "field_unit"], "long enough password");
    assert_eq!(status, Some(1));
    assert!(err.contains("--unit UNIT_ID"), "{err}");
    let (status, out, err) = add(
        "li.wei",
        &["--role", "commander", "--display-name", "李伟"],
        "long enough password",
    );
    assert_eq!(status, Some(0), "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("TOTP secret (base32): "))
        .expect("secret line");
    assert_eq!(secret.len(), 32);
    assert!(
        out.contains(&format!("otpauth://totp/Outpost:li.wei?secret={secret}")),
        "{out}"
    );
    let (status, _, err) = add("li.wei", &["--role", "viewer"], "long enough password");
    assert_eq!(status, Some(1));
    assert!(err.contains("exists already"), "{err}");
    let (status, out, _) = add(
        "p03",
        &["--role", "field_unit", "--unit", "P-03"],
        "another long one",
    );
    assert_eq!(status, Some(0));
    assert!(
        out.starts_with("account \"p03\" created (field_unit)"),
        "{out}"
    );
    let (status, out, _) = cli(&["user", "list", "--data", data], "");
    assert_eq!(status, Some(0));
    assert_eq!(
        out,
        "li.wei\tcommander\t-\t李伟\tenabled\np03\tfield_unit\tP-03\tp03\tenabled\n"
    );
    let (status, _, _) = cli(&["user", "disable", "--data", data, "p03"], "");
    assert_eq!(status, Some(0));
    let (status, out, _) = cli(&["user", "unlock", "--data", data, "li.wei"], "");
    assert_eq!(
        (status, out.as_str()),
        (Some(0), "account \"li.wei\" unlocked\n")
    );
    let (status, _, err) = cli(&["user", "unlock", "--data", data, "nobody"], "");
    assert_eq!(status, Some(1));
    assert_eq!(err, "error: user: no account \"nobody\"\n");
    let (_, out, _) = cli(&["user", "list", "--data", data], "");
    assert!(
        out.ends_with("p03\tfield_unit\tP-03\tp03\tdisabled\n"),
        "{out}"
    );
    // Devices: an OsmAnd token, an unknown device to revoke.
    let (status, out, _) = cli(&["device", "token", "--data", data, "phone-7"], "");
    assert_eq!(status, Some(0));
    assert_eq!(out.trim().len(), 32);
    let (status, _, err) = cli(
        &[
            "device", "revoke", "--data", data, "dev-x", "--reason", "lost",
        ],
        "",
    );
    assert_eq!(status, Some(1));
    assert!(err.contains("no enrolled device \"dev-x\""), "{err}");
    let (status, out, _) = cli(&["device", "list", "--data", data], "");
    assert_eq!((status, out.as_str()), (Some(0), "no enrolled devices\n"));
    // Every command is in the audit trail, by the local operator (the OS account).
    let log = outpost_server::security::audit::AuditLog::open(dir.path()).expect("audit");
    let page = log.page(0, Some(1000)).expect("page");
    let actions: Vec<(String, String)> = page
        .records
        .iter()
        .map(|r| (r.action.clone(), r.outcome.clone()))
        .collect();
    assert!(actions.contains(&("admin:user.add".into(), "ok".into())));
    assert!(actions.contains(&("admin:user.add".into(), "failed".into())));
    assert!(actions.contains(&("admin:device.token".into(), "ok".into())));
    assert!(
        page.records
            .iter()
            .all(|r| r.user != "local-admin" && r.user != "-" && r.device == "cli")
    );
}

#[test]
fn cli_audit_records_name_the_os_user_who_ran_the_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let add = |name: &str, role: &str, env: &[(&str, Option<&str>)]| {
        let args = [
            "user",
            "add",
            "--data",
            data,
            name,
            "--role",
            role,
            "--password-stdin",
        ];
        cli_env(&args, "long enough password\n", env)
    };
    // Behind sudo: the person who ran sudo, not root.
    let (status, _, err) = add(
        "aud.one",
        "auditor",
        &[("SUDO_USER", Some("ops.chen")), ("USER", Some("root"))],
    );
    assert_eq!(status, Some(0), "{err}");
    // Without sudo: $USER, else $LOGNAME.
    let (status, _, err) = add(
        "adm.two",
        "administrator",
        &[("SUDO_USER", None), ("USER", Some("li.ming"))],
    );
    assert_eq!(status, Some(0), "{err}");
    let (status, _, err) = add(
        "viewer.three",
        "viewer",
        &[
            ("SUDO_USER", None),
            ("USER", None),
            ("LOGNAME", Some("wang.fang")),
        ],
    );
    assert_eq!(status, Some(0), "{err}");
    let log = outpost_server::security::audit::AuditLog::open(dir.path()).expect("audit");
    let by: Vec<(String, String, String)> = log
        .page(0, Some(100))
        .expect("page")
        .records
        .into_iter()
        .map(|r| (r.user, r.device, r.target))
        .collect();
    let expect = |u: &str, t: &str| (u.to_string(), "cli".to_string(), t.to_string());
    assert_eq!(
        by,
        vec![
            expect("ops.chen", "aud.one"),
            expect("li.ming", "adm.two"),
            expect("wang.fang", "viewer.three"),
        ]
    );
    // Nothing set at all: the uid.
    use outpost_server::security::local_operator_from;
    assert_eq!(local_operator_from(|_| None, Some(1000)), "uid:1000");
    assert_eq!(
        local_operator_from(|k| (k == "USER").then(|| " ".to_string()), None),
        "-"
    );
}

#[test]
fn an_administrator_cannot_create_administrator_or_auditor_accounts_over_http() {
    let server = TestServer::start().expect("server");
    let admin = server.console(Role::Administrator).expect("admin");
    let http = Https::new(&server, Some(&admin.device));
    let t = Some(admin.login.token.as_str());
    for (name, role) in [
        ("sneaky.auditor", "auditor"),
        ("sneaky.admin", "administrator"),
    ] {
        let r = http.post(
            "/v1/admin/users",
            t,
            &json!({"name": name, "role": role, "password": "pw-sneaky-0123456789"}),
        );
        assert_eq!(code(&r), (403, "forbidden"), "{role}: {}", r.1);
        let message = r.1["message"].as_str().unwrap_or("");
        assert!(
            message.contains("outpost-server user add") && message.contains("separation of duties"),
            "{message}"
        );
        assert!(r.1.get("totp_secret").is_none(), "{}", r.1);
        // Refused and audited under the administrator's name.
        assert!(
            audit(&server)
                .iter()
                .any(|e| e["action"] == "admin:user.add"
                    && e["user"] == "administrator"
                    && e["target"] == name
                    && e["outcome"] == "refused"),
            "{role}"
        );
    }
    // Nothing was created.
    let (status, users) = http.get("/v1/admin/users", t);
    assert_eq!(status, 200);
    assert_eq!(users.as_array().map(Vec::len), Some(6));
    // The four operational roles are still created over HTTP.
    for (name, role, unit) in [
        ("c2", "commander", None),
        ("d2", "dispatcher", None),
        ("p09", "field_unit", Some("P-09")),
        ("v2", "viewer", None),
    ] {
        let r = http.post(
            "/v1/admin/users",
            t,
            &json!({"name": name, "role": role, "unit_id": unit, "password": "long enough pw"}),
        );
        assert_eq!(r.0, 201, "{role}: {}", r.1);
    }
}

#[test]
fn enrollment_answers_with_a_session_on_the_new_device() {
    let server = TestServer::start().expect("server");
    let (key_pem, csr_pem) = outpost_server::testing::key_and_csr().expect("csr");
    let origin = Uuid::now_v7();
    let totp = server.fresh_code(Role::Dispatcher);
    let req = EnrollRequest {
        protocol: PROTOCOL_VERSION,
        user: "dispatcher".into(),
        password: TEST_PASSWORD.into(),
        totp: totp.clone(),
        device_name: "巡逻车 03 笔记本".into(),
        origin,
        csr_pem,
        cache_key: "AB".repeat(32),
    };
    let (status, body) = Https::new(&server, None).post("/v1/enroll", None, &json!(req));
    assert_eq!(status, 200, "{body}");
    let resp: outpost_domain::wire::EnrollResponse =
        serde_json::from_value(body).expect("enroll response");
    let session = resp.session.expect("a session comes with the enrollment");
    assert_eq!(session.user, "dispatcher");
    assert_eq!(session.role, Role::Dispatcher);
    assert_eq!(session.cache_key, "ab".repeat(32));
    assert_eq!(
        session.totp_secret,
        server.user(Role::Dispatcher).totp_secret
    );
    // The token works with the new device's certificate, no second code needed.
    let device = TestDevice {
        device_id: resp.device_id.clone(),
        origin,
        cert_pem: resp.certificate_pem.clone(),
        key_pem,
        serial_hex: server
            .security()
            .accounts()
            .device(&resp.device_id)
            .expect("device")
            .expect("enrolled")
            .info
            .cert_serial,
        cache_key: "ab".repeat(32),
    };
    let on_device = Https::new(&server, Some(&device));
    assert_eq!(
        on_device.get("/v1/pull?after=0", Some(&session.token)).0,
        200
    );
    // The enrollment's code stays used: a login with it is refused.
    assert_eq!(
        code(&on_device.post(
            "/v1/login",
            None,
            &login_body(&server, Role::Dispatcher, TEST_PASSWORD, totp)
        )),
        (401, "unauthenticated")
    );
    // The grant covers ops written offline on this device from now on.
    let author = server
        .security()
        .accounts()
        .author("dispatcher", &resp.device_id)
        .expect("author")
        .expect("account");
    let now = server.clock_now_ms();
    assert!(
        author
            .grants
            .iter()
            .any(|g| g.from_ms <= now && now < g.until_ms && g.key.is_some()),
        "{:?}",
        author.grants
    );
    // Audited as a login at enrollment, after the enrollment, each with the client's
    // address (fresh review S3).
    let trail = audit(&server);
    let actions: Vec<(&str, &str, &str, bool)> = trail
        .iter()
        .filter(|e| e["user"] == "dispatcher")
        .map(|e| {
            let detail = e["detail"].as_str().unwrap_or("");
            let (what, from) = detail
                .split_once("; from 127.0.0.1:")
                .unwrap_or((detail, ""));
            (
                e["action"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
                what,
                from.parse::<u16>().is_ok(),
            )
        })
        .collect();
    assert_eq!(
        &actions[..2],
        &[
            ("enroll", "ok", "device \"巡逻车 03 笔记本\"", true),
            ("login", "ok", "at enrollment", true)
        ]
    );
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "login" && e["device"] == resp.device_id.as_str())
    );
}

/// `POST /v1/enroll` of `role` with `origin`, without a client certificate.
fn enroll_over_https(server: &TestServer, role: Role, origin: Uuid) -> (u16, Value) {
    let (_key, csr_pem) = outpost_server::testing::key_and_csr().expect("csr");
    let req = EnrollRequest {
        protocol: PROTOCOL_VERSION,
        user: server.user(role).name.clone(),
        password: TEST_PASSWORD.into(),
        totp: server.fresh_code(role),
        device_name: format!("{} laptop", role.as_str()),
        origin,
        csr_pem,
        cache_key: "cd".repeat(32),
    };
    Https::new(server, None).post("/v1/enroll", None, &json!(req))
}

#[test]
fn enrollment_refuses_the_gateway_origin_and_origins_of_other_installations() {
    let server = TestServer::start().expect("server");
    // The commander's console pushes one op: its origin is in the log.
    let cmd = server.console(Role::Commander).expect("commander");
    let mut a = author_of(&cmd.device);
    let op = by(a.unit("P-01"), "commander", None);
    let (status, answer) = Https::new(&server, Some(&cmd.device)).post(
        "/v1/push",
        Some(&cmd.login.token),
        &json!(request(
            cmd.device.origin,
            Lane::Critical,
            &signed(&[op], &[&cmd.login])
        )),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(outcomes(&answer)[0].starts_with("accepted"), "{answer}");
    // Its device is revoked (a stolen laptop): the origin is free in security.db, but its
    // ops are still in the log.
    server
        .security()
        .accounts()
        .revoke_device(&cmd.device.device_id, "stolen")
        .expect("revoke");
    // Another person may not take that origin over (review S4)…
    let (status, body) = enroll_over_https(&server, Role::Dispatcher, cmd.device.origin);
    assert_eq!(
        (status, body["code"].as_str().unwrap_or("")),
        (409, "conflict"),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "origin: {} already has ops in the server's log",
            cmd.device.origin
        )),
        "{message}"
    );
    // …nor the ingest gateway's origin, even before the gateway wrote anything.
    let gateway = Uuid::now_v7();
    std::fs::write(
        server.data_dir().join("gateway-origin"),
        gateway.to_string(),
    )
    .expect("gateway origin file");
    let (status, body) = enroll_over_https(&server, Role::Viewer, gateway);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("device ingest gateway"),
        "{body}"
    );
    // The same account enrolling that installation again may, and a fresh origin is fine.
    let (status, body) = enroll_over_https(&server, Role::Commander, cmd.device.origin);
    assert_eq!(status, 200, "{body}");
    let (status, body) = enroll_over_https(&server, Role::Viewer, Uuid::now_v7());
    assert_eq!(status, 200, "{body}");
    // Both refusals are in the audit trail, with who and which origin.
    let events = audit(&server);
    let refused: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["action"] == "enroll" && e["outcome"] != "ok")
        .map(|e| {
            (
                e["user"].as_str().unwrap_or(""),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (
                "dispatcher",
                format!("origin {}", cmd.device.origin).as_str()
            ),
            ("viewer", format!("origin {gateway}").as_str()),
        ]
    );
}

#[test]
fn only_roles_that_write_start_a_new_epoch_and_each_start_is_audited() {
    let server = TestServer::start().expect("server");
    let viewer = server.console(Role::Viewer).expect("viewer");
    let cmd = server.console(Role::Commander).expect("commander");
    let v_http = Https::new(&server, Some(&viewer.device));
    let c_http = Https::new(&server, Some(&cmd.device));
    let epoch_of = |http: &Https, token: &str| -> (String, u64) {
        let (status, page) = http.get("/v1/pull?after=0", Some(token));
        assert_eq!(status, 200, "{page}");
        (
            page["epoch"].as_str().unwrap_or_default().to_string(),
            page["server_gseq"].as_u64().unwrap_or_default(),
        )
    };
    let (epoch, gseq) = epoch_of(&v_http, &viewer.login.token);
    let beyond = format!("/v1/pull?after={}&epoch={epoch}", gseq + 100);
    // A viewer's cursor beyond the newest gseq: told the current epoch, no new epoch.
    let (status, body) = v_http.get(&beyond, Some(&viewer.login.token));
    assert_eq!(
        (status, body["code"].as_str().unwrap_or("")),
        (409, "epoch_changed"),
        "{body}"
    );
    assert_eq!(body["epoch"].as_str(), Some(epoch.as_str()));
    assert_eq!(epoch_of(&v_http, &viewer.login.token).0, epoch);
    // A commander's: a restore from a backup, a new epoch (SYNC.md principle 11).
    let (status, body) = c_http.get(&beyond, Some(&cmd.login.token));
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("epoch_changed"))
    );
    let new = body["epoch"].as_str().unwrap_or_default().to_string();
    assert_ne!(new, epoch);
    assert_eq!(epoch_of(&c_http, &cmd.login.token).0, new);
    // The audit trail: the viewer's attempt refused, the commander's start with who/where.
    let events = audit(&server);
    let starts: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .filter(|e| e["action"] == "sync.epoch_start")
        .map(|e| {
            (
                e["user"].as_str().unwrap_or(""),
                e["device"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        starts,
        [
            (
                "viewer",
                viewer.device.device_id.as_str(),
                "refused",
                "epoch"
            ),
            (
                "commander",
                cmd.device.device_id.as_str(),
                "ok",
                format!("epoch {new}").as_str()
            ),
        ]
    );
}

#[test]
fn administrators_and_auditors_get_no_cache_key_and_no_totp_secret() {
    let server = TestServer::start().expect("server");
    let device = server.enroll(Role::Commander, "shared").expect("enroll");
    for role in Role::ALL {
        let login = server.login(&device, role).expect("login");
        let console = role.reads_picture();
        let expect = |secret: &str| {
            if console {
                secret.to_string()
            } else {
                String::new()
            }
        };
        assert_eq!(login.cache_key, expect(&device.cache_key), "{role}");
        assert_eq!(
            login.totp_secret,
            expect(&server.user(role).totp_secret),
            "{role}"
        );
        assert!(!login.token.is_empty(), "{role}: still a session");
    }
    // The session an enrollment answers with follows the same rule.
    for role in [Role::Administrator, Role::Viewer] {
        let (_key, csr_pem) = outpost_server::testing::key_and_csr().expect("csr");
        let resp = server
            .security()
            .enroll(&EnrollRequest {
                protocol: PROTOCOL_VERSION,
                user: server.user(role).name.clone(),
                password: TEST_PASSWORD.into(),
                totp: server.fresh_code(role),
                device_name: format!("{role} laptop"),
                origin: Uuid::now_v7(),
                csr_pem,
                cache_key: "ef".repeat(32),
            })
            .expect("enroll");
        let session = resp.session.expect("session");
        let console = role == Role::Viewer;
        assert_eq!(session.cache_key.is_empty(), !console, "{role}");
        assert_eq!(session.totp_secret.is_empty(), !console, "{role}");
    }
}
