//! The engine and the sign-in gate's requests against a TLS + auth `outpost-server`
//! (127.0.0.1, port 0, certificates made in a temp dir): the agency CA pinned, a wrong CA
//! refused with a clear error, the device certificate and the session token carried.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_domain::access::Role;
use outpost_domain::wire::{EnrollRequest, LoginRequest, PROTOCOL_VERSION, Revocations};
use outpost_server::security::pki;
use outpost_server::testing::{TEST_PASSWORD, TestDevice, TestServer};
use outpost_server::{RunningServer, Server, ServerConfig};
use outpost_store::Store;
use outpost_sync::{
    LinkState, ServerClient, SyncEngine, SyncError, SyncHandle, SyncOptions, Timeouts, TlsSettings,
    TokenSource, account, script,
};

use crate::common::*;

/// A TLS + auth server whose certificates were made by `cert init --name 127.0.0.1`.
fn tls_server(dir: &Path) -> RunningServer {
    pki::cert_init(dir, &["127.0.0.1".to_string()]).expect("cert init");
    Server::start(ServerConfig::new(dir, "127.0.0.1:0".parse().expect("addr"))).expect("server")
}

fn ca_pem(dir: &Path) -> String {
    pki::Pki::load(dir).expect("pki").ca_pem().to_string()
}

/// A CA of another agency (self-signed, never seen by the server).
fn other_ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    params.self_signed(&key).expect("ca").pem()
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn the_agency_ca_is_trusted_and_another_is_refused_clearly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = tls_server(&tmp.path().join("server"));
    let url = srv.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let good = TlsSettings::new(ca_pem(&tmp.path().join("server")));
    let client = ServerClient::connect(&url, Timeouts::default(), Some(&good), TokenSource::new())
        .expect("client");
    let health = block(client.health()).expect("health over TLS");
    assert!(!health.epoch.is_nil());

    let wrong = TlsSettings::new(other_ca_pem());
    let client = ServerClient::connect(&url, Timeouts::default(), Some(&wrong), TokenSource::new())
        .expect("client");
    match block(client.health()) {
        Err(SyncError::Tls(msg)) => {
            assert!(msg.contains("not signed by the agency CA"), "{msg}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    // Not "offline": the server answered, it is not the agency's.
    let err = block(client.health()).expect_err("refused");
    assert!(
        !err.is_offline() && !err.is_refused() && !err.is_transient(),
        "{err:?}"
    );
}

/// Without a device certificate only enrollment, health and capabilities answer; the rest
/// is refused with the server's reason, not mistaken for "offline".
#[test]
fn without_a_device_certificate_sync_is_refused_not_offline() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = tls_server(&tmp.path().join("server"));
    let tls = TlsSettings::new(ca_pem(&tmp.path().join("server")));
    let client = ServerClient::connect(
        &srv.url(),
        Timeouts::default(),
        Some(&tls),
        TokenSource::new(),
    )
    .expect("client");
    block(client.capabilities()).expect("capabilities need no certificate");
    let err = block(client.pull(0, 10, None)).expect_err("refused");
    match &err {
        SyncError::Unauthenticated { code, message } => {
            assert_eq!(code, "certificate_required", "{message}");
        }
        other => panic!("expected 401 certificate_required, got {other:?}"),
    }
    assert!(err.is_refused() && !err.is_offline() && !err.needs_sign_in());
}

/// Nobody listening: offline, distinguishable from a refusal; a bad address is its own error.
#[test]
fn offline_and_bad_urls_are_told_apart() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let tls = TlsSettings::new(other_ca_pem());
    let req = outpost_domain::wire::LoginRequest {
        protocol: outpost_domain::wire::PROTOCOL_VERSION,
        user: "li.wei".into(),
        password: "pw".into(),
        totp: "000000".into(),
    };
    let err = outpost_sync::account::login(&format!("https://{addr}"), &tls, &req)
        .expect_err("nobody listens");
    assert!(err.is_offline(), "{err:?}");
    for bad in ["http://127.0.0.1:1", "sync.example:7400", "https://"] {
        let err = outpost_sync::account::login(bad, &tls, &req).expect_err("bad url");
        assert!(matches!(err, SyncError::BadUrl { .. }), "{bad}: {err:?}");
    }
}

/// A console in `dir` whose device was enrolled (with its own origin) by `role`'s account,
/// and that account signed in on it: (store, TLS settings with the device identity, token).
fn enrolled(
    srv: &TestServer,
    role: Role,
    dir: &Path,
) -> (Arc<Mutex<Store>>, TlsSettings, TestDevice, String) {
    let store = console(dir);
    let origin = store.lock().expect("lock").origin_id();
    let device = srv
        .enroll_origin(role, &format!("{role} laptop"), origin)
        .expect("enroll");
    let login = srv.login(&device, role).expect("login");
    let tls = TlsSettings::new(srv.ca_pem())
        .with_identity(device.cert_pem.clone(), device.key_pem.clone());
    (store, tls, device, login.token)
}

/// The audit trail's refused records ("action detail").
fn refusals(srv: &TestServer) -> Vec<String> {
    let log = srv.security().audit_log().expect("audit trail");
    let page = log.page(0, Some(1_000)).expect("audit page");
    page.records
        .into_iter()
        .filter(|r| r.outcome == "refused")
        .map(|r| format!("{} {}", r.action, r.detail))
        .collect()
}

/// Performs JSON-lines actions as `user` (the signed-in person: the server checks authors).
fn act_as(store: &Arc<Mutex<Store>>, user: &str, lines: &str) {
    let mut s = store.lock().expect("lock");
    for a in script::parse(lines).expect("script parses") {
        script::perform(&mut s, chrono::Utc::now(), user, &a).expect("action");
    }
}

fn secure_options(tls: &TlsSettings, token: &str) -> SyncOptions {
    SyncOptions {
        tls: Some(tls.clone()),
        token: TokenSource::with_token(token),
        poll_interval: Duration::from_secs(3_600),
        ..quick()
    }
}

fn fresh_login(srv: &TestServer, tls: &TlsSettings, role: Role) -> String {
    let req = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: srv.user(role).name.clone(),
        password: TEST_PASSWORD.to_string(),
        totp: srv.fresh_code(role),
    };
    account::login(&srv.url(), tls, &req)
        .expect("login over HTTPS")
        .token
}

/// Two consoles, each with its device certificate and its person's token, converge over
/// TLS; the poke channel (wss://, same CA, same certificate, the token) is up; each got the
/// revocation list once.
#[test]
fn consoles_sync_over_tls_with_device_certificates_and_tokens() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, tls_a, _, token_a) = enrolled(&srv, Role::Commander, &tmp.path().join("a"));
    let (b, tls_b, _, token_b) = enrolled(&srv, Role::Dispatcher, &tmp.path().join("b"));
    let lists = Arc::new(Mutex::new(Vec::<Revocations>::new()));
    let sink = Arc::clone(&lists);
    let options_b = SyncOptions {
        on_revocations: Some(Arc::new(move |r: &Revocations| {
            sink.lock().expect("lock").push(r.clone());
        })),
        ..secure_options(&tls_b, &token_b)
    };
    let ha = SyncEngine::start(
        a.clone(),
        &srv.url(),
        Arc::new(|| {}),
        secure_options(&tls_a, &token_a),
    )
    .expect("a");
    let hb = SyncEngine::start(b.clone(), &srv.url(), Arc::new(|| {}), options_b).expect("b");
    assert!(wait_until(20, || ha.status().state == LinkState::Online
        && hb.status().state == LinkState::Online
        && hb.status().poke_connected));

    act_as(&a, "commander", &first_script("u-01", "i1"));
    ha.poke_local();
    let id = incident_named(&a, "i1");
    assert!(wait_until(20, || counts(&a) == (0, 5, 0)));
    // B hears of it through the poke (its poll interval is an hour).
    assert!(wait_until(20, || {
        let s = b.lock().expect("lock");
        outpost_store::query::incident(s.conn(), id)
            .expect("query")
            .is_some()
    }));
    assert!(wait_until(20, || digest(&a) == digest(&b)));
    assert_eq!(server_log(srv.server()).len(), 5);
    let delivered = lists.lock().expect("lock").clone();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(delivered[0].revoked_devices.is_empty());
    assert_eq!(hb.status().revocations_version, Some(delivered[0].version));
    assert_eq!(
        ha.status().revocations_version,
        None,
        "A does not ask for them"
    );
    ha.shutdown();
    hb.shutdown();
}

/// The engine with a CA of another agency stops with a permanent error saying so.
#[test]
fn the_engine_names_a_wrong_ca() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, tls, device, token) = enrolled(&srv, Role::Commander, &tmp.path().join("a"));
    let wrong = TlsSettings::new(other_ca_pem()).with_identity(device.cert_pem, device.key_pem);
    act_as(&a, "commander", &first_script("u-01", "i1"));
    let h = SyncEngine::start(
        a.clone(),
        &srv.url(),
        Arc::new(|| {}),
        secure_options(&wrong, &token),
    )
    .expect("start");
    assert!(wait_until(20, || h.status().state == LinkState::Offline));
    let st = h.status();
    assert!(st.error_is_permanent, "{st:?}");
    let e = st.last_error.unwrap_or_default();
    assert!(e.contains("not signed by the agency CA"), "{e}");
    assert_eq!(counts(&a), (5, 0, 0));
    h.shutdown();
    // The same console with the right CA gets everything through.
    let reports =
        SyncEngine::sync_until_quiet(a.clone(), &srv.url(), secure_options(&tls, &token), 10)
            .expect("sync");
    assert_eq!(reports.iter().map(|r| r.acked).sum::<usize>(), 5);
    assert_eq!(counts(&a), (0, 5, 0));
}

/// Signed out on the server (logout), then the session expired (12 h on the server's
/// clock): each time the engine stops on "sign-in required" with every op kept, and a
/// fresh token from an online sign-in pushes everything.
#[test]
fn a_lost_session_stops_sync_keeps_the_outbox_and_a_new_token_resumes() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, tls, _, token) = enrolled(&srv, Role::Commander, &tmp.path().join("a"));
    let h = SyncEngine::start(
        a.clone(),
        &srv.url(),
        Arc::new(|| {}),
        secure_options(&tls, &token),
    )
    .expect("start");
    act_as(&a, "commander", &first_script("u-01", "i1"));
    h.poke_local();
    assert!(wait_until(20, || counts(&a) == (0, 5, 0)
        && h.status().state == LinkState::Online));

    // 1. Signed out (from another window, or the Gate): the server forgets the token.
    account::logout(&srv.url(), &tls, &token).expect("logout");
    act_as(
        &a,
        "commander",
        r#"{"action":"note","incident":"i1","text":"written after sign-out"}
{"action":"position","unit_id":"u-01","position":{"lat":42.52,"lon":1.54}}
"#,
    );
    h.poke_local();
    assert!(wait_until(20, || h.status().state == LinkState::SignInRequired));
    let st = h.status();
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("sign-in required")),
        "{st:?}"
    );
    assert!(st.state.needs_attention());
    assert_eq!(counts(&a), (2, 5, 0), "every op is kept");
    assert_eq!(server_log(srv.server()).len(), 5);

    let token2 = fresh_login(&srv, &tls, Role::Commander);
    h.set_token(token2);
    assert!(wait_until(20, || counts(&a) == (0, 7, 0)
        && h.status().state == LinkState::Online));
    assert_eq!(server_log(srv.server()).len(), 7);
    // While it waited (until the new sign-in), it knocked once: the refused push.
    let refused = refusals(&srv);
    assert_eq!(refused.len(), 1, "{refused:?}");

    // 2. The session expires 12 hours after the login (server clock).
    srv.clock().advance_secs(12 * 3_600 + 60);
    act_as(
        &a,
        "commander",
        r#"{"action":"note","incident":"i1","text":"written after the session expired"}
"#,
    );
    h.poke_local();
    assert!(wait_until(20, || h.status().state == LinkState::SignInRequired));
    assert_eq!(counts(&a), (1, 7, 0));
    let token3 = fresh_login(&srv, &tls, Role::Commander);
    h.token().set(token3);
    assert!(wait_until(20, || counts(&a) == (0, 8, 0)
        && h.status().state == LinkState::Online));
    let st = h.status();
    assert_eq!(st.last_error, None);
    assert_eq!(server_log(srv.server()).len(), 8);
    h.shutdown();
}

fn start_with_revocations(
    srv: &TestServer,
    store: &Arc<Mutex<Store>>,
    tls: &TlsSettings,
    token: &str,
    known: Option<u64>,
) -> (SyncHandle, Arc<Mutex<Vec<Revocations>>>) {
    let lists = Arc::new(Mutex::new(Vec::<Revocations>::new()));
    let sink = Arc::clone(&lists);
    let options = SyncOptions {
        on_revocations: Some(Arc::new(move |r: &Revocations| {
            sink.lock().expect("lock").push(r.clone());
        })),
        revocations_version: known,
        ..secure_options(tls, token)
    };
    let h = SyncEngine::start(store.clone(), &srv.url(), Arc::new(|| {}), options).expect("start");
    (h, lists)
}

/// Revocations reach a console when their version changes (not again when it does not); the
/// revoked device's own engine stops on "device revoked" with its outbox kept.
#[test]
fn revocations_are_delivered_on_change_and_a_revoked_device_stops() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, tls_a, _, token_a) = enrolled(&srv, Role::Commander, &tmp.path().join("a"));
    let (x, tls_x, device_x, token_x) = enrolled(&srv, Role::Dispatcher, &tmp.path().join("x"));
    let (ha, lists) = start_with_revocations(&srv, &a, &tls_a, &token_a, None);
    let hx = SyncEngine::start(
        x.clone(),
        &srv.url(),
        Arc::new(|| {}),
        secure_options(&tls_x, &token_x),
    )
    .expect("x");
    assert!(wait_until(20, || ha.status().state == LinkState::Online
        && hx.status().state == LinkState::Online));
    let first = lists.lock().expect("lock").clone();
    assert_eq!(first.len(), 1);
    // Another round, same version: nothing new delivered.
    act_as(&a, "commander", &first_script("u-01", "i1"));
    ha.poke_local();
    assert!(wait_until(20, || counts(&a) == (0, 5, 0)));
    assert_eq!(lists.lock().expect("lock").len(), 1);

    srv.security()
        .accounts()
        .revoke_device(&device_x.device_id, "laptop stolen")
        .expect("revoke");
    ha.poke_local();
    assert!(wait_until(20, || lists.lock().expect("lock").len() == 2));
    let second = lists.lock().expect("lock")[1].clone();
    assert!(second.version > first[0].version, "{first:?} → {second:?}");
    assert_eq!(second.revoked_devices, vec![device_x.device_id.clone()]);
    assert_eq!(ha.status().revocations_version, Some(second.version));

    act_as(
        &x,
        "dispatcher",
        r#"{"action":"create_incident","name":"x1","incident_type":"fire","priority":"P3","location":{"lat":42.5,"lon":1.52},"address":"from a stolen laptop"}
"#,
    );
    hx.poke_local();
    assert!(wait_until(20, || hx.status().state == LinkState::DeviceRevoked));
    let st = hx.status();
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("device revoked")),
        "{st:?}"
    );
    assert_eq!(counts(&x).0, 1, "the op stays in the outbox");
    ha.shutdown();
    hx.shutdown();

    // A console that already has this version is not handed it again.
    let (hb, again) = start_with_revocations(&srv, &a, &tls_a, &token_a, Some(second.version));
    assert!(wait_until(20, || hb.status().state == LinkState::Online));
    assert!(again.lock().expect("lock").is_empty());
    assert_eq!(hb.status().revocations_version, Some(second.version));
    hb.shutdown();
}

/// The headless client logs in (password file, TOTP computed from the secret) with the
/// device certificate and syncs over TLS.
#[test]
fn the_headless_client_logs_in_and_syncs_over_tls() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("h");
    let origin = console(&data).lock().expect("lock").origin_id();
    // Enrolled by the commander; the dispatcher signs in on it (their code is unused).
    let device = srv
        .enroll_origin(Role::Commander, "headless", origin)
        .expect("enroll");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).expect("dir");
    let write = |name: &str, text: &str| {
        let p = files.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    };
    let ca = write("ca.pem", srv.ca_pem());
    let cert = write("device.pem", &device.cert_pem);
    let key = write("device.key", &device.key_pem);
    let password = write("password", &format!("{TEST_PASSWORD}\n"));
    let script = write(
        "script.jsonl",
        r#"{"action":"create_incident","name":"h1","incident_type":"fire","priority":"P2","location":{"lat":42.5,"lon":1.52},"address":"Carrer Major 1"}
"#,
    );
    // The binary computes the code from the real clock.
    srv.clock().set(chrono::Utc::now());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"))
        .env_remove(outpost_sync::FAILPOINT_ENV)
        .args(["--data", &data.to_string_lossy(), "--server", &srv.url()])
        .args(["--ca", &ca, "--cert", &cert, "--key", &key])
        .args(["--login", "dispatcher", "--password-file", &password])
        .args(["--totp-secret", &srv.user(Role::Dispatcher).totp_secret])
        .args(["--script", &script, "--until-quiet"])
        .output()
        .expect("client runs");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or_default()).expect("summary JSON");
    assert_eq!(summary["pending"], 0, "{summary}");
    assert_eq!(summary["acked"], 1, "{summary}");
    let log = server_log(srv.server());
    assert_eq!(log.len(), 1);

    // Without a token the same client is refused with the server's reason.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"))
        .env_remove(outpost_sync::FAILPOINT_ENV)
        .args(["--data", &data.to_string_lossy(), "--server", &srv.url()])
        .args(["--ca", &ca, "--cert", &cert, "--key", &key, "--sync-once"])
        .output()
        .expect("client runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthenticated"), "{err}");
}

/// The sign-in gate's requests over HTTPS: enroll (no client certificate yet), login with
/// the new certificate, revocations, logout; refusals carry the server's reason.
#[test]
fn the_gate_requests_enroll_login_revocations_and_logout() {
    let srv = TestServer::start().expect("server");
    let url = srv.url();
    let (key_pem, csr_pem) = outpost_server::testing::key_and_csr().expect("csr");
    let enroll = |password: &str, totp: String| EnrollRequest {
        protocol: PROTOCOL_VERSION,
        user: "commander".into(),
        password: password.into(),
        totp,
        device_name: "巡逻车 03 笔记本".into(),
        origin: uuid::Uuid::now_v7(),
        csr_pem: csr_pem.clone(),
        cache_key: "ab".repeat(32),
    };
    let err = account::enroll(
        &url,
        srv.ca_pem(),
        &enroll("wrong", srv.fresh_code(Role::Commander)),
    )
    .expect_err("wrong password");
    assert!(err.is_refused() && !err.is_offline(), "{err:?}");
    assert!(matches!(&err, SyncError::Unauthenticated { code, .. } if code == "unauthenticated"));

    let enrolled = account::enroll(
        &url,
        srv.ca_pem(),
        &enroll(TEST_PASSWORD, srv.fresh_code(Role::Commander)),
    )
    .expect("enroll over HTTPS");
    assert_eq!(enrolled.ca_pem.trim(), srv.ca_pem().trim());
    assert!(!enrolled.device_id.is_empty());

    let tls = TlsSettings::new(enrolled.ca_pem.clone())
        .with_identity(enrolled.certificate_pem.clone(), key_pem);
    let token = fresh_login(&srv, &tls, Role::Commander);
    let list = account::revocations(&url, &tls, &token).expect("revocations");
    assert!(list.revoked_devices.is_empty());

    // Without the device certificate, login is refused as such.
    let no_identity = TlsSettings::new(enrolled.ca_pem.clone());
    let req = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: "commander".into(),
        password: TEST_PASSWORD.into(),
        totp: srv.fresh_code(Role::Commander),
    };
    let err = account::login(&url, &no_identity, &req).expect_err("no certificate");
    assert!(
        matches!(&err, SyncError::Unauthenticated { code, .. } if code == "certificate_required"),
        "{err:?}"
    );

    account::logout(&url, &tls, &token).expect("logout");
    let err = account::revocations(&url, &tls, &token).expect_err("signed out");
    assert!(err.needs_sign_in(), "{err:?}");
    assert!(!err.to_string().is_empty());
}

/// A console signed in offline starts its engine with no token: it does not knock (every
/// refusal is audited) but waits on "sign-in required"; the online sign-in's token pushes
/// what was written offline.
#[test]
fn an_offline_sign_in_waits_for_an_online_one() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, tls, _, token) = enrolled(&srv, Role::Commander, &tmp.path().join("a"));
    act_as(&a, "commander", &first_script("u-01", "i1"));
    let options = SyncOptions {
        token: TokenSource::new(),
        ..secure_options(&tls, &token)
    };
    let h = SyncEngine::start(a.clone(), &srv.url(), Arc::new(|| {}), options).expect("start");
    assert!(wait_until(20, || h.status().state == LinkState::SignInRequired));
    let e = h.status().last_error.unwrap_or_default();
    assert!(e.contains("nobody is signed in online"), "{e}");
    assert_eq!(counts(&a), (5, 0, 0));
    assert!(server_log(srv.server()).is_empty());
    assert_eq!(refusals(&srv), Vec::<String>::new(), "it never knocked");
    h.set_token(token);
    assert!(wait_until(20, || counts(&a) == (0, 5, 0)
        && h.status().state == LinkState::Online));
    h.shutdown();
}

/// The headless client opens a console's encrypted cache with its key file; without it the
/// open fails (nothing is overwritten).
#[test]
fn the_headless_client_opens_an_encrypted_cache_with_its_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("c");
    std::fs::create_dir_all(&data).expect("dir");
    let key = outpost_store::CacheKey::from_bytes([7; 32]);
    {
        let mut store =
            Store::open_with_key(&data.join("outpost.db"), Some(&key), chrono::Utc::now())
                .expect("encrypted store");
        for a in script::parse(&first_script("u-01", "i1")).expect("script") {
            script::perform(&mut store, chrono::Utc::now(), "commander", &a).expect("action");
        }
    }
    let key_file = tmp.path().join("cache.key");
    std::fs::write(&key_file, format!("{}\n", key.to_hex())).expect("key file");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"))
            .env_remove(outpost_sync::FAILPOINT_ENV)
            .args(["--data", &data.to_string_lossy()])
            .args(extra)
            .output()
            .expect("client runs")
    };
    let out = run(&["--cache-key-file", &key_file.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or_default()).expect("summary JSON");
    assert_eq!(summary["pending"], 5, "{summary}");
    let out = run(&[]);
    assert!(
        !out.status.success(),
        "a keyless open of an encrypted cache fails"
    );
}

/// Fresh review D2: `--enroll` makes the key and CSR, enrolls this data directory's origin
/// with the person's password and code, writes the certificate and key (0600) and syncs
/// with the session the enrollment answered; a second `--enroll` is refused (enrolled
/// already), and the written files work as `--cert`/`--key` for a `--login` run.
#[test]
fn the_headless_client_enrolls_itself_and_syncs_with_the_enrollment_session() {
    let srv = TestServer::start().expect("server");
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("h");
    let origin = console(&data).lock().expect("lock").origin_id();
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).expect("dir");
    let write = |name: &str, text: &str| {
        let p = files.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    };
    let ca = write("ca.pem", srv.ca_pem());
    let password = write("password", &format!("{TEST_PASSWORD}\n"));
    let script = write(
        "script.jsonl",
        r#"{"action":"create_incident","name":"e1","incident_type":"fire","priority":"P2","location":{"lat":42.5,"lon":1.52},"address":"Carrer Major 2"}
"#,
    );
    let secret = srv.user(Role::Dispatcher).totp_secret.clone();
    // The binary computes the code from the real clock.
    srv.clock().set(chrono::Utc::now());
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"))
            .env_remove(outpost_sync::FAILPOINT_ENV)
            .args(["--data", &data.to_string_lossy(), "--server", &srv.url()])
            .args(["--ca", &ca])
            .args(["--login", "dispatcher", "--password-file", &password])
            .args(["--totp-secret", &secret])
            .args(extra)
            .output()
            .expect("client runs")
    };
    let out = run(&[
        "--enroll",
        "--device-name",
        "headless car 7",
        "--script",
        &script,
        "--until-quiet",
    ]);
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or_default()).expect("summary JSON");
    assert_eq!(summary["pending"], 0, "{summary}");
    assert_eq!(summary["acked"], 1, "{summary}");
    assert_eq!(summary["parked"], 0, "{summary}");
    assert_eq!(server_log(srv.server()).len(), 1);

    // The device is enrolled with this console's origin, by the dispatcher.
    let devices = srv.security().accounts().list_devices().expect("devices");
    let dev = devices
        .iter()
        .find(|d| d.name == "headless car 7")
        .expect("enrolled device");
    assert_eq!(dev.origin, origin);
    assert_eq!(dev.enrolled_by, "dispatcher");
    let (cert, key) = (data.join("device.pem"), data.join("device.key"));
    assert!(
        std::fs::read_to_string(&cert)
            .expect("cert")
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        std::fs::read_to_string(&key)
            .expect("key")
            .contains("PRIVATE KEY")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&cert, &key] {
            let mode = std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }

    // Enrolled already: refused, nothing overwritten.
    let before = std::fs::read(&key).expect("key");
    let out = run(&["--enroll", "--device-name", "again"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("enrolled already"), "{err}");
    assert_eq!(std::fs::read(&key).expect("key"), before);

    // The written identity works as --cert/--key for a later sign-in (the commander,
    // whose current code is unused).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"))
        .env_remove(outpost_sync::FAILPOINT_ENV)
        .args(["--data", &data.to_string_lossy(), "--server", &srv.url()])
        .args(["--ca", &ca])
        .args([
            "--cert",
            &cert.to_string_lossy(),
            "--key",
            &key.to_string_lossy(),
        ])
        .args(["--login", "commander", "--password-file", &password])
        .args(["--totp-secret", &srv.user(Role::Commander).totp_secret])
        .arg("--sync-once")
        .output()
        .expect("client runs");
    assert!(
        out.status.success(),
        "sign-in with the enrolled identity: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fresh review D2: with `--token` the client must be told whose token it is; it refuses
/// to start rather than writing ops as "headless" (which the server parks as forbidden).
#[test]
fn the_headless_client_with_a_token_needs_the_user() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"))
        .env_remove(outpost_sync::FAILPOINT_ENV)
        .args(["--data", &tmp.path().join("t").to_string_lossy()])
        .args(["--server", "https://127.0.0.1:9", "--token", "abc"])
        .output()
        .expect("client runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("give --user: the person the token belongs to"),
        "{err}"
    );
    assert!(!tmp.path().join("t").exists(), "nothing created");
}
