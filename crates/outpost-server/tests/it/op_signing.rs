//! Op signing (issue 6, security review S2) on the TLS test server of
//! `outpost_server::testing`: an op of another person than the session's is accepted only
//! with that person's signature by the op key of a sign-in on this device whose window
//! covers the op's HLC time; grants end at logout, disabling and revocation; a signature on
//! the session's own op must verify. Time moves on the security layer's injected clock.

use serde_json::{Value, json};

use outpost_domain::access::Role;
use outpost_domain::clock::Clock;
use outpost_domain::op::{Lane, OpEnvelope};
use outpost_domain::op_auth::OpSigner;
use outpost_domain::wire::LoginResponse;
use outpost_server::testing::{TestDevice, TestServer};
use outpost_sync::tls::client_config;

use crate::support::{Author, outcomes, request};

/// An HTTPS client of the test server with `device`'s certificate.
struct Https {
    base: String,
    http: reqwest::blocking::Client,
}

impl Https {
    fn new(server: &TestServer, device: &TestDevice) -> Https {
        let identity = Some((device.cert_pem.as_str(), device.key_pem.as_str()));
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

    fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .bearer_auth(token)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Pushes `ops` (one lane) under `token`; the outcomes.
    fn push(
        &self,
        device: &TestDevice,
        token: &str,
        lane: Lane,
        ops: &[OpEnvelope],
    ) -> Vec<String> {
        let req = request(device.origin, lane, ops);
        let (status, answer) = self.post("/v1/push", token, &json!(req));
        assert_eq!(status, 200, "{answer}");
        outcomes(&answer)
    }
}

fn now_ms(server: &TestServer) -> i64 {
    server.clock().now().timestamp_millis()
}

/// `op` as written by `login`'s person at `wall_ms`, signed with their op key.
fn signed(mut op: OpEnvelope, login: &LoginResponse, wall_ms: i64) -> OpEnvelope {
    op.user = login.user.clone();
    op.hlc.wall_ms = wall_ms;
    signer(login).sign(&mut op).expect("sign");
    assert!(op.auth.is_some());
    op
}

fn signer(login: &LoginResponse) -> OpSigner {
    OpSigner::new(&login.user, &login.op_key_id, &login.op_key).expect("op key")
}

fn author_of(device: &TestDevice) -> Author {
    let mut a = Author::new(0);
    a.origin = device.origin;
    a
}

#[test]
fn logins_hand_out_distinct_op_keys() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    assert_eq!(cmd.login.op_key.len(), 64);
    assert!(!cmd.login.op_key_id.is_empty() && !cmd.login.op_key_id.contains('.'));
    let again = server.login(&cmd.device, Role::Commander).expect("login");
    assert_ne!(again.op_key, cmd.login.op_key);
    assert_ne!(again.op_key_id, cmd.login.op_key_id);
}

#[test]
fn a_forged_op_of_another_person_is_parked_forbidden() {
    let server = TestServer::start().expect("server");
    // The commander signed in on the patrol car's laptop once; a field unit holds it now.
    let fu = server.console(Role::FieldUnit).expect("field unit");
    let cmd_login = server
        .login(&fu.device, Role::Commander)
        .expect("commander");
    let fu_login = server
        .login(&fu.device, Role::FieldUnit)
        .expect("field unit");
    let http = Https::new(&server, &fu.device);
    let at = now_ms(&server);
    let mut a = author_of(&fu.device);
    // Unsigned, "written" by the commander inside their grant's window.
    let mut unsigned = a.unit("P-01");
    unsigned.user = "commander".into();
    unsigned.hlc.wall_ms = at;
    // Signed with the field unit's own key but named the commander's.
    let mut own_key = a.unit("P-02");
    own_key.user = "commander".into();
    own_key.hlc.wall_ms = at;
    own_key.auth = Some(signer(&fu_login).auth_for(&own_key).expect("mac"));
    // The commander's key id with a made-up MAC.
    let mut made_up = a.unit("P-03");
    made_up.user = "commander".into();
    made_up.hlc.wall_ms = at;
    made_up.auth = Some(format!("{}.{}", cmd_login.op_key_id, "00".repeat(32)));
    // A genuine signature, then the body changed.
    let mut altered = signed(a.unit("P-04"), &cmd_login, at);
    altered.hlc.wall_ms -= 60_000;
    let o = http.push(
        &fu.device,
        &fu_login.token,
        Lane::Critical,
        &[unsigned, own_key, made_up, altered],
    );
    assert_eq!(o.len(), 4, "{o:?}");
    assert!(
        o[0].starts_with("parked: forbidden: not signed by \"commander\": an op of another person"),
        "{o:?}"
    );
    assert!(
        o[1].starts_with(&format!(
            "parked: forbidden: not signed by \"commander\": key \"{}\" is not an op key of \
             \"commander\"",
            fu_login.op_key_id
        )),
        "{o:?}"
    );
    for (i, r) in o[2..].iter().enumerate() {
        assert_eq!(
            r,
            &format!(
                "parked: forbidden: not signed by \"commander\": the op's signature does not \
                 verify under key {}",
                cmd_login.op_key_id
            ),
            "op {}",
            i + 2
        );
    }
    // Nothing of it reached the state: the server's replica has no unit.
    let parked = server.server().service().parked().expect("parked");
    assert_eq!(parked.len(), 4);
}

#[test]
fn a_signed_offline_op_of_a_person_who_signed_out_is_accepted_under_anothers_session() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let http = Https::new(&server, &cmd.device);
    let disp = server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher");
    // The dispatcher writes while the link is down, 10 minutes later; then logs out.
    server.clock().advance_secs(600);
    let written = now_ms(&server);
    let mut a = author_of(&cmd.device);
    let (_, create) = a.incident();
    let op = signed(create, &disp, written);
    server.clock().advance_secs(60);
    let (status, _) = http.post("/v1/logout", &disp.token, &json!({}));
    assert_eq!(status, 204);
    // Later, under the commander's session, the outbox is pushed: accepted.
    server.clock().advance_secs(3600);
    let o = http.push(&cmd.device, &cmd.login.token, Lane::Critical, &[op]);
    assert_eq!(o, ["accepted 1"]);
}

#[test]
fn an_op_outside_its_sign_ins_window_is_refused_and_grants_end_at_logout() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let http = Https::new(&server, &cmd.device);
    let disp = server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher");
    let login_ms = now_ms(&server);
    let mut a = author_of(&cmd.device);
    // Backdated an hour before the login (the window starts 15 minutes before it).
    let backdated = signed(a.incident().1, &disp, login_ms - 3_600_000);
    // Within the 15 minutes of clock slack: accepted.
    let slack = signed(a.incident().1, &disp, login_ms - 10 * 60_000);
    let o = http.push(
        &cmd.device,
        &cmd.login.token,
        Lane::Critical,
        &[backdated, slack],
    );
    assert!(
        o[0].starts_with("parked: forbidden: \"dispatcher\" signed this op (at "),
        "{o:?}"
    );
    assert!(o[0].contains("whose window ("), "{o:?}");
    assert_eq!(o[1], "accepted 1", "{o:?}");
    // The dispatcher logs out: their key signs nothing written after it.
    server.clock().advance_secs(120);
    let (status, _) = http.post("/v1/logout", &disp.token, &json!({}));
    assert_eq!(status, 204);
    let logout_ms = now_ms(&server);
    let before = signed(a.incident().1, &disp, logout_ms - 1_000);
    let after = signed(a.incident().1, &disp, logout_ms + 1_000);
    let o = http.push(
        &cmd.device,
        &cmd.login.token,
        Lane::Critical,
        &[before, after],
    );
    assert_eq!(o[0], "accepted 2", "{o:?}");
    assert!(
        o[1].starts_with("parked: forbidden: \"dispatcher\" signed this op (at "),
        "{o:?}"
    );
    // Far in the future (beyond the 72 h grace) is refused too, even with a fresh login.
    let disp2 = server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher");
    let late = signed(a.incident().1, &disp2, now_ms(&server) + 73 * 3_600_000);
    let o = http.push(&cmd.device, &cmd.login.token, Lane::Critical, &[late]);
    assert!(
        o[0].starts_with("parked: forbidden: \"dispatcher\" signed this op (at "),
        "{o:?}"
    );
}

#[test]
fn disabling_and_revoking_end_grants() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher");
    let accounts = server.security().accounts();
    let open = |user: &str| {
        accounts
            .author(user, &cmd.device.device_id)
            .expect("author")
            .expect("account")
            .grants
    };
    let before = open("dispatcher");
    assert_eq!(before.len(), 1);
    assert_eq!(
        before[0].until_ms - before[0].from_ms,
        (72 * 3600 + 15 * 60) * 1000
    );
    server.clock().advance_secs(60);
    accounts.disable("dispatcher").expect("disable");
    let g = &open("dispatcher")[0];
    assert_eq!(g.until_ms, now_ms(&server));
    server.clock().advance_secs(60);
    accounts
        .revoke_device(&cmd.device.device_id, "stolen")
        .expect("revoke");
    let c = open("commander");
    assert!(!c.is_empty());
    assert!(c.iter().all(|g| g.until_ms == now_ms(&server)), "{c:?}");
}

#[test]
fn a_signature_on_the_sessions_own_op_must_verify() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let http = Https::new(&server, &cmd.device);
    let at = now_ms(&server);
    let mut a = author_of(&cmd.device);
    // Unsigned own ops are still accepted (clients that do not sign yet).
    let mut unsigned = a.unit("P-01");
    unsigned.user = "commander".into();
    unsigned.hlc.wall_ms = at;
    let mut bad = signed(a.unit("P-02"), &cmd.login, at);
    bad.auth = Some(format!("{}.{}", cmd.login.op_key_id, "11".repeat(32)));
    let good = signed(a.unit("P-03"), &cmd.login, at);
    // The person's own op from a console clock 5 hours behind: no window for their own ops
    // (SYNC.md principle 10).
    let skewed = signed(a.unit("P-04"), &cmd.login, at - 5 * 3_600_000);
    let o = http.push(
        &cmd.device,
        &cmd.login.token,
        Lane::Critical,
        &[unsigned, bad, good, skewed],
    );
    assert_eq!(o[0], "accepted 1", "{o:?}");
    assert_eq!(
        o[1],
        format!(
            "parked: forbidden: not signed by \"commander\": the op's signature does not \
             verify under key {}",
            cmd.login.op_key_id
        )
    );
    assert_eq!(o[2], "accepted 2", "{o:?}");
    assert_eq!(o[3], "accepted 3", "{o:?}");
}
