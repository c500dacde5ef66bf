//! Op signing (issue 6, security review S2) on the TLS test server of
//! `outpost_server::testing`: an op of another person than the session's is accepted only
//! with that person's signature by the op key of a sign-in on this device whose window
//! covers the op's HLC time; a grant's window ends at the earliest of login + offline grace,
//! disabling and revocation — NOT at logout, which ends only the session token (the
//! console's vault still signs the person in offline until the grace ends); a signature on
//! the session's own op must verify. Time moves on the security layer's injected clock.

use serde_json::{Value, json};

use outpost_domain::access::Role;
use outpost_domain::clock::Clock;
use outpost_domain::op::{Lane, OpEnvelope};
use outpost_domain::op_auth::OpSigner;
use outpost_domain::wire::LoginResponse;
use outpost_server::testing::{TestConsole, TestDevice, TestServer};
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
fn an_op_outside_its_sign_ins_window_is_refused_and_a_logout_keeps_the_grant() {
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
    // The dispatcher logs out: the session token is dead...
    server.clock().advance_secs(120);
    let (status, _) = http.post("/v1/logout", &disp.token, &json!({}));
    assert_eq!(status, 204);
    let (status, answer) = http.post(
        "/v1/push",
        &disp.token,
        &json!(request(cmd.device.origin, Lane::Critical, &[])),
    );
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], "unauthenticated", "{answer}");
    // ...but not the grant: the console's vault signs them in offline until the grace ends
    // (the network failed after their shift), and what they sign then is accepted when the
    // commander's session pushes it.
    let logout_ms = now_ms(&server);
    let before = signed(a.incident().1, &disp, logout_ms - 1_000);
    let after = signed(a.incident().1, &disp, logout_ms + 1_000);
    let o = http.push(
        &cmd.device,
        &cmd.login.token,
        Lane::Critical,
        &[before, after],
    );
    assert_eq!(o, ["accepted 2", "accepted 3"]);
    // Up to the end of the 72 h grace counted from the login, not one second more.
    let grace_end = login_ms + 72 * 3_600_000;
    server.clock().advance_secs(72 * 3600 - 300);
    let last = signed(a.incident().1, &disp, grace_end);
    let over = signed(a.incident().1, &disp, grace_end + 1_000);
    // The commander's 12-h session has expired meanwhile: they sign in again to push.
    let cmd2 = server
        .login(&cmd.device, Role::Commander)
        .expect("commander");
    let o = http.push(&cmd.device, &cmd2.token, Lane::Critical, &[last, over]);
    assert_eq!(o[0], "accepted 4", "{o:?}");
    assert!(
        o[1].starts_with("parked: forbidden: \"dispatcher\" signed this op (at "),
        "{o:?}"
    );
    assert!(
        o[1].contains("not at the person's logout"),
        "the reason names the rule: {o:?}"
    );
    // Far in the future (beyond the 72 h grace) is refused too, even with a fresh login.
    let disp2 = server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher");
    let late = signed(a.incident().1, &disp2, now_ms(&server) + 73 * 3_600_000);
    let o = http.push(&cmd.device, &cmd2.token, Lane::Critical, &[late]);
    assert!(
        o[0].starts_with("parked: forbidden: \"dispatcher\" signed this op (at "),
        "{o:?}"
    );
}

/// A commander's console on which the dispatcher signed in online and then logged out; an
/// op the dispatcher signed (offline, through the vault) after the logout was pushed under
/// the commander's session and accepted. Returns the server, the console, its client, the
/// dispatcher's login and the op author.
fn dispatcher_signed_out() -> (TestServer, TestConsole, Https, LoginResponse, Author) {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let http = Https::new(&server, &cmd.device);
    let disp = server
        .login(&cmd.device, Role::Dispatcher)
        .expect("dispatcher");
    let (status, _) = http.post("/v1/logout", &disp.token, &json!({}));
    assert_eq!(status, 204);
    server.clock().advance_secs(600);
    let mut a = author_of(&cmd.device);
    let offline = signed(a.incident().1, &disp, now_ms(&server));
    let o = http.push(&cmd.device, &cmd.login.token, Lane::Critical, &[offline]);
    assert_eq!(o, ["accepted 1"]);
    (server, cmd, http, disp, a)
}

#[test]
fn after_a_logout_an_op_is_refused_once_the_account_is_disabled() {
    let (server, cmd, http, disp, mut a) = dispatcher_signed_out();
    server
        .security()
        .accounts()
        .disable("dispatcher")
        .expect("disable");
    server.clock().advance_secs(60);
    let after = signed(a.incident().1, &disp, now_ms(&server));
    let o = http.push(&cmd.device, &cmd.login.token, Lane::Critical, &[after]);
    assert_eq!(
        o,
        ["parked: forbidden: the account \"dispatcher\" is disabled"]
    );
}

#[test]
fn after_a_logout_an_op_is_refused_once_the_device_is_revoked() {
    let (server, cmd, http, disp, mut a) = dispatcher_signed_out();
    let accounts = server.security().accounts();
    let revoked_ms = now_ms(&server);
    accounts
        .revoke_device(&cmd.device.device_id, "stolen")
        .expect("revoke");
    // The grant that outlived the logout ends at the revocation...
    let grants = accounts
        .author("dispatcher", &cmd.device.device_id)
        .expect("author")
        .expect("account")
        .grants;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].until_ms, revoked_ms);
    // ...and nothing more is pushed from the device.
    server.clock().advance_secs(60);
    let after = signed(a.incident().1, &disp, now_ms(&server));
    let (status, answer) = http.post(
        "/v1/push",
        &cmd.login.token,
        &json!(request(cmd.device.origin, Lane::Critical, &[after])),
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["code"], "device_revoked", "{answer}");
}

#[test]
fn a_logout_keeps_the_grant_disabling_and_revoking_end_it() {
    let server = TestServer::start().expect("server");
    let cmd = server.console(Role::Commander).expect("commander");
    let disp = server
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
    // The logout ends the session, not the grant (login + 72 h still).
    server.clock().advance_secs(30);
    let http = Https::new(&server, &cmd.device);
    let (status, _) = http.post("/v1/logout", &disp.token, &json!({}));
    assert_eq!(status, 204);
    assert_eq!(open("dispatcher"), before);
    server.clock().advance_secs(30);
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
