//! Password changes (issue 6): `POST /v1/password` by the signed-in person (old password
//! and a fresh code, counted like a login; other sessions end), `outpost-server user
//! passwd` at the host (a reset the person must change) and the `password_change_required`
//! gate on every other endpoint. Time moves on the security layer's injected clock.

use serde_json::{Value, json};

use outpost_domain::access::Role;
use outpost_domain::wire::{LoginRequest, PROTOCOL_VERSION};
use outpost_server::testing::{TEST_PASSWORD, TestDevice, TestServer};
use outpost_sync::tls::client_config;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// An HTTPS client of the test server with `device`'s certificate.
struct Https {
    base: String,
    http: reqwest::blocking::Client,
}

impl Https {
    fn new(server: &TestServer, device: &TestDevice) -> Https {
        let tls = client_config(
            server.ca_pem(),
            Some((device.cert_pem.as_str(), device.key_pem.as_str())),
        )
        .expect("client config");
        Https {
            base: server.url(),
            http: reqwest::blocking::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("https client"),
        }
    }

    /// Status and the error code (`""` when none).
    fn send(&self, rb: reqwest::blocking::RequestBuilder, token: &str) -> (u16, String) {
        let r = rb.bearer_auth(token).send().expect("request");
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        (status, body["code"].as_str().unwrap_or("").to_string())
    }

    fn revocations(&self, token: &str) -> (u16, String) {
        self.send(
            self.http
                .get(format!("{}/v1/security/revocations", self.base)),
            token,
        )
    }

    fn change(&self, token: &str, old: &str, new: &str, code: &str) -> (u16, String) {
        let body = json!({
            "protocol": PROTOCOL_VERSION,
            "old_password": old,
            "new_password": new,
            "totp": code,
        });
        self.send(
            self.http
                .post(format!("{}/v1/password", self.base))
                .json(&body),
            token,
        )
    }
}

fn login(server: &TestServer, device: &TestDevice, password: &str) -> Result<bool, String> {
    server
        .security()
        .login(
            Some(&device.peer()),
            &LoginRequest {
                protocol: PROTOCOL_VERSION,
                user: "commander".into(),
                password: password.into(),
                totp: server.fresh_code(Role::Commander),
            },
        )
        .map(|r| r.must_change_password)
        .map_err(|e| e.code().to_string())
}

fn audit(server: &TestServer) -> Vec<Value> {
    let log = server.security().audit_log().expect("audit log");
    let page = log.page(0, Some(1000)).expect("page");
    page.records.iter().map(|r| json!(r)).collect()
}

#[test]
fn a_changed_password_replaces_the_old_one_and_ends_the_other_sessions() {
    let server = TestServer::start().expect("server");
    let here = server.console(Role::Commander).expect("console");
    let other = server.console(Role::Commander).expect("second console");
    let http = Https::new(&server, &here.device);
    let http_other = Https::new(&server, &other.device);
    assert_eq!(http_other.revocations(&other.login.token).0, 200);

    let code = server.fresh_code(Role::Commander);
    assert_eq!(
        http.change(&here.login.token, TEST_PASSWORD, NEW_PASSWORD, &code),
        (204, String::new())
    );
    // This session goes on; the person's other session ended.
    assert_eq!(http.revocations(&here.login.token).0, 200);
    assert_eq!(
        http_other.revocations(&other.login.token),
        (401, "unauthenticated".to_string())
    );
    // The old password no longer signs in; the new one does.
    assert_eq!(
        login(&server, &here.device, TEST_PASSWORD),
        Err("unauthenticated".to_string())
    );
    assert_eq!(login(&server, &here.device, NEW_PASSWORD), Ok(false));

    let events = audit(&server);
    let change: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "password.change")
        .collect();
    assert_eq!(change.len(), 1);
    assert_eq!(change[0]["outcome"], "ok");
    assert_eq!(change[0]["user"], "commander");
    assert_eq!(change[0]["device"], here.device.device_id.as_str());
    let text = serde_json::to_string(&events).expect("json");
    assert!(!text.contains(NEW_PASSWORD) && !text.contains(TEST_PASSWORD));
}

#[test]
fn wrong_old_passwords_count_towards_the_lockout_and_bad_new_ones_are_refused() {
    let server = TestServer::start().expect("server");
    let c = server.console(Role::Commander).expect("console");
    let http = Https::new(&server, &c.device);
    let t = c.login.token.as_str();
    // The new password's rules come first and cost no failure.
    let code = server.fresh_code(Role::Commander);
    assert_eq!(
        http.change(t, TEST_PASSWORD, "short", &code),
        (400, "bad_request".to_string())
    );
    assert_eq!(
        http.change(t, TEST_PASSWORD, "            ", &code),
        (400, "bad_request".to_string())
    );
    assert_eq!(
        http.change(t, TEST_PASSWORD, TEST_PASSWORD, &code),
        (400, "bad_request".to_string())
    );
    for _ in 0..4 {
        let code = server.fresh_code(Role::Commander);
        assert_eq!(
            http.change(t, "not the password at all", NEW_PASSWORD, &code),
            (401, "unauthenticated".to_string())
        );
    }
    let code = server.fresh_code(Role::Commander);
    assert_eq!(
        http.change(t, "not the password at all", NEW_PASSWORD, &code),
        (403, "locked_out".to_string())
    );
    let outcomes: Vec<String> = audit(&server)
        .into_iter()
        .filter(|e| e["action"] == "password.change")
        .map(|e| e["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    // Bad input is `failed`; a wrong password or a lockout `refused`.
    assert_eq!(
        outcomes,
        [
            "failed", "failed", "failed", "refused", "refused", "refused", "refused", "refused"
        ]
    );
}

#[test]
fn a_reset_at_the_host_must_be_changed_before_anything_else() {
    let server = TestServer::start().expect("server");
    let c = server.console(Role::Commander).expect("console");
    let http = Https::new(&server, &c.device);
    let reset = "set by the administrator";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["user", "passwd", "commander", "--password-stdin", "--data"])
        .arg(server.data_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run user passwd");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{reset}").expect("write password");
    }
    let out = child.wait_with_output().expect("user passwd");
    assert!(
        out.status.success(),
        "user passwd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The reset ended the person's sessions.
    assert_eq!(
        http.revocations(&c.login.token),
        (401, "unauthenticated".to_string())
    );
    assert_eq!(
        login(&server, &c.device, TEST_PASSWORD),
        Err("unauthenticated".to_string())
    );
    // The reset password signs in, and the answer says it must be changed first.
    let session = server
        .security()
        .login(
            Some(&c.device.peer()),
            &LoginRequest {
                protocol: PROTOCOL_VERSION,
                user: "commander".into(),
                password: reset.into(),
                totp: server.fresh_code(Role::Commander),
            },
        )
        .expect("login with the reset password");
    assert!(session.must_change_password);
    let t = session.token.as_str();
    assert_eq!(
        http.revocations(t),
        (403, "password_change_required".to_string())
    );
    let code = server.fresh_code(Role::Commander);
    assert_eq!(
        http.change(t, reset, NEW_PASSWORD, &code),
        (204, String::new())
    );
    assert_eq!(http.revocations(t).0, 200);
    assert_eq!(login(&server, &c.device, NEW_PASSWORD), Ok(false));

    let events = audit(&server);
    let passwd = events
        .iter()
        .find(|e| e["action"] == "admin:user.passwd")
        .expect("reset audited");
    assert_eq!(passwd["outcome"], "ok");
    assert_eq!(passwd["target"], "commander");
    assert_eq!(passwd["device"], "cli");
    assert!(events.iter().any(|e| {
        e["action"] == "revocations"
            && e["outcome"] == "refused"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("password_change_required"))
    }));
}

/// Runs the binary with `args`, `stdin` as its input; (success, stdout, stderr).
fn cli(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run outpost-server");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("outpost-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_account_made_by_user_add_must_change_its_first_password() {
    let server = TestServer::start().expect("server");
    let c = server.console(Role::Commander).expect("console");
    let data = server.data_dir().to_str().expect("utf-8 path").to_owned();
    let first = "chosen by the administrator";
    let mut secrets = Vec::new();
    for (name, extra) in [
        ("new.one", None),
        ("scripted", Some("--no-password-change")),
    ] {
        let mut args = vec![
            "user",
            "add",
            name,
            "--role",
            "dispatcher",
            "--password-stdin",
            "--data",
            &data,
        ];
        args.extend(extra);
        let (ok, out, err) = cli(&args, &format!("{first}\n"));
        assert!(ok, "user add: {err}");
        assert_eq!(
            out.contains("must choose their own password"),
            extra.is_none(),
            "{out}"
        );
        let secret = out
            .lines()
            .find_map(|l| l.strip_prefix("TOTP secret (base32): "))
            .expect("secret line")
            .to_owned();
        secrets.push((name, secret));
    }
    for (name, secret) in secrets {
        use outpost_domain::clock::Clock;
        let totp = outpost_server::security::accounts::totp_code(&secret, server.clock().now())
            .expect("code");
        let session = server
            .security()
            .login(
                Some(&c.device.peer()),
                &LoginRequest {
                    protocol: PROTOCOL_VERSION,
                    user: name.into(),
                    password: first.into(),
                    totp,
                },
            )
            .expect("login");
        assert_eq!(session.must_change_password, name == "new.one", "{name}");
    }
}

#[test]
fn an_account_made_by_an_administrator_over_http_must_change_its_first_password() {
    let server = TestServer::start().expect("server");
    let admin = server
        .console(Role::Administrator)
        .expect("administrator console");
    let session = server
        .security()
        .authenticate(Some(&admin.device.peer()), Some(&admin.login.token))
        .expect("administrator session");
    let created = server
        .security()
        .admin_add_user(
            &session,
            &outpost_server::security::NewAccount {
                name: "made.over.http".into(),
                display_name: Some("Made over HTTP".into()),
                role: Role::Dispatcher,
                unit_id: None,
                password: "chosen by the administrator".into(),
            },
        )
        .expect("add");
    let c = server.console(Role::Commander).expect("console");
    use outpost_domain::clock::Clock;
    let totp =
        outpost_server::security::accounts::totp_code(&created.totp_secret, server.clock().now())
            .expect("code");
    let session = server
        .security()
        .login(
            Some(&c.device.peer()),
            &LoginRequest {
                protocol: PROTOCOL_VERSION,
                user: "made.over.http".into(),
                password: "chosen by the administrator".into(),
                totp,
            },
        )
        .expect("login");
    assert!(session.must_change_password);
}
