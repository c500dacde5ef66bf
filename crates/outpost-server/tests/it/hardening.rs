//! Fixes of the security review (issue 6): S6 (the OsmAnd token is checked for the device the
//! report is filed under), S7 (CoT TLS takes only TAK devices, binds each event's uid to the
//! certificate and drops a revoked device's open connection), S3 (sign-in rate, body limit),
//! S8 (rate-limited refusal audit, sync-port connection cap), S11 (device-listener refusals
//! audited, the audit trail's health), S10 (the poke socket ends with its session).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use outpost_domain::access::Role;
use outpost_domain::wire::AuditRecord;
use outpost_server::ingest::IngestConfig;
use outpost_server::security::accounts::TAK_DEVICE_ENROLLER;
use outpost_server::security::guards::GuardConfig;
use outpost_server::security::pki::Pki;
use outpost_server::testing::{TestServer, TestServerOptions};

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Every audit record of the server so far.
fn audit_records(server: &TestServer) -> Vec<AuditRecord> {
    let log = server.security().audit_log().expect("audit log");
    log.page(0, Some(1000)).expect("audit page").records
}

fn refused(server: &TestServer, action: &str) -> Vec<AuditRecord> {
    audit_records(server)
        .into_iter()
        .filter(|r| r.action == action && r.outcome == "refused")
        .collect()
}

// ---------------------------------------------------------------------------------------
// S6: OsmAnd tokens

fn osmand_server() -> (TestServer, String) {
    let server = TestServer::start_with(TestServerOptions {
        ingest: IngestConfig {
            osmand_listen: Some(any_port()),
            osmand_require_token: true,
            ..IngestConfig::default()
        },
        ..TestServerOptions::default()
    })
    .expect("server");
    let token = server
        .security()
        .accounts()
        .issue_device_token("mine")
        .expect("token");
    (server, token)
}

fn post(server: &TestServer, content_type: &str, body: String) -> u16 {
    let addr = server.server().osmand_addr().expect("osmand");
    reqwest::blocking::Client::new()
        .post(format!("http://{addr}/"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("POST")
        .status()
        .as_u16()
}

fn received(server: &TestServer) -> u64 {
    server.server().ingest_stats().view().osmand.received
}

#[test]
fn an_osmand_token_is_checked_for_the_device_a_form_body_is_filed_under() {
    let (server, token) = osmand_server();
    let form = "application/x-www-form-urlencoded";
    // The decoder stops at '#': the report is "victim"'s, the token after it is not read.
    let hash = format!("id=victim&lat=42.5&lon=1.5#&id=mine&token={token}");
    assert_eq!(post(&server, form, hash), 401);
    // The decoder reads after the first '?': again "victim"'s report, no token there.
    let question = format!("id=mine&token={token}&x=?id=victim&lat=42.5&lon=1.5");
    assert_eq!(post(&server, form, question), 401);
    assert_eq!(received(&server), 0);
    assert_eq!(
        server.server().ingest_stats().osmand.refused_count("token"),
        2
    );
    // The device's own report with its token passes.
    let own = format!("id=mine&lat=42.5&lon=1.5&token={token}");
    assert_eq!(post(&server, form, own), 200);
    assert_eq!(received(&server), 1);
    // Both refusals are in the audit trail, for the device the report named (S11); the
    // second from the same address for the same reason within 10 s is counted, not written.
    let records = refused(&server, "osmand.token");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].device, "victim");
    assert_eq!(records[0].target, "127.0.0.1");
    assert_eq!(records[0].detail, "no device token");
}

#[test]
fn an_osmand_token_is_checked_for_a_numeric_json_device_id() {
    let (server, token) = osmand_server();
    let json = |device_id: serde_json::Value, token: &str| {
        serde_json::json!({
            "device_id": device_id,
            "id": "mine",
            "token": token,
            "location": {
                "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                "coords": {"latitude": 42.51, "longitude": 1.52}
            }
        })
        .to_string()
    };
    // "mine"'s token on a report filed for 123456: refused.
    assert_eq!(
        post(&server, "application/json", json(123_456.into(), &token)),
        401
    );
    assert_eq!(received(&server), 0);
    // 123456's own token with the numeric id (Traccar Client's default ids are numbers).
    let numeric = server
        .security()
        .accounts()
        .issue_device_token("123456")
        .expect("token");
    assert_eq!(
        post(&server, "application/json", json(123_456.into(), &numeric)),
        200
    );
    assert_eq!(received(&server), 1);
    let records = refused(&server, "osmand.token");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].device, "123456");
    assert_eq!(records[0].detail, "wrong device token");
}

#[test]
fn a_json_report_may_carry_its_token_in_the_url() {
    let (server, token) = osmand_server();
    let addr = server.server().osmand_addr().expect("osmand");
    let body = serde_json::json!({
        "device_id": "mine",
        "location": {"coords": {"latitude": 42.51, "longitude": 1.52}}
    });
    let post = |query: &str| {
        reqwest::blocking::Client::new()
            .post(format!("http://{addr}/{query}"))
            .json(&body)
            .send()
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(post("?token=wrong"), 401);
    assert_eq!(post(&format!("?token={token}")), 200);
    // The URL's id does not move the report: the body's id is the one checked.
    let other = serde_json::json!({
        "device_id": "victim",
        "location": {"coords": {"latitude": 42.51, "longitude": 1.52}}
    });
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/?id=mine&token={token}"))
        .json(&other)
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(received(&server), 1);
}

// ---------------------------------------------------------------------------------------
// S7: CoT TLS

fn cot_server() -> TestServer {
    TestServer::start_with(TestServerOptions {
        ingest: IngestConfig {
            cot_listen: Some(any_port()),
            cot_tls: true,
            ..IngestConfig::default()
        },
        ..TestServerOptions::default()
    })
    .expect("server")
}

/// A TAK client's device as `outpost-server cert device` records it: (cert PEM, key PEM).
fn tak_device(server: &TestServer, id: &str) -> (String, String) {
    let pki = Pki::load(server.data_dir()).expect("pki");
    let (signed, key) = pki.issue_device(id, 30).expect("issue");
    server
        .security()
        .accounts()
        .add_device(
            id,
            &format!("TAK client {id}"),
            uuid::Uuid::now_v7(),
            &signed.serial_hex,
            TAK_DEVICE_ENROLLER,
            "",
        )
        .expect("record device");
    (signed.cert_pem, key)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn cot_connect(server: &TestServer, cert: &str, key: &str) -> Tls {
    let addr = server.server().cot_addr().expect("cot");
    let config =
        outpost_sync::tls::client_config(server.ca_pem(), Some((cert, key))).expect("config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    rustls::StreamOwned::new(conn, tcp)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ping() -> String {
    format!(
        "<event version=\"2.0\" uid=\"ping-1\" type=\"t-x-c-t\" how=\"h-g-i-g-o\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"0\" lon=\"0\" hae=\"0\" ce=\"9999999\" le=\"9999999\"/><detail/></event>",
        t = now()
    )
}

fn position(uid: &str) -> String {
    format!(
        "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G\" how=\"m-g\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"42.5\" lon=\"1.5\" hae=\"0\" ce=\"5\" le=\"0\"/><detail/></event>",
        t = now()
    )
}

/// Sends `text` and reads until `until` is seen (Ok(all read)) or the stream ends (Err(what
/// was read or the error)).
fn exchange(tls: &mut Tls, text: &str, until: &str) -> Result<String, String> {
    tls.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    read_until(tls, until)
}

fn read_until(tls: &mut Tls, until: &str) -> Result<String, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&got).contains(until) {
        match tls.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&got))),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Waits (bounded) until `f` holds; the counters are updated by the server's tasks.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn cot_tls_refuses_a_console_certificate_and_audits_it() {
    let server = cot_server();
    let console = server.enroll(Role::Dispatcher, "laptop").expect("enroll");
    let mut tls = cot_connect(&server, &console.cert_pem, &console.key_pem);
    let got = exchange(&mut tls, &ping(), "t-x-c-t-r");
    assert!(got.is_err(), "a console got the CoT port: {got:?}");
    let stats = server.server().ingest_stats().clone();
    eventually("device_refused counted", || {
        stats.cot.refused_count("device_refused") == 1
    });
    let records = refused(&server, "cot.device");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].device, console.device_id);
    assert!(
        records[0].detail.contains("is a console"),
        "{}",
        records[0].detail
    );
}

#[test]
fn cot_tls_takes_only_the_certificates_uid_and_closes_when_the_device_is_revoked() {
    let server = cot_server();
    let (cert, key) = tak_device(&server, "tak-7");
    let mut tls = cot_connect(&server, &cert, &key);
    exchange(&mut tls, &ping(), "t-x-c-t-r").expect("a TAK device is answered");
    let stats = server.server().ingest_stats().clone();
    // Another uid (e.g. a bound unit's device) on this certificate: dropped and counted.
    tls.write_all(position("victim-uid").as_bytes())
        .expect("write");
    tls.write_all(position("tak-7").as_bytes()).expect("write");
    exchange(&mut tls, &ping(), "t-x-c-t-r").expect("pong");
    eventually("events handled", || {
        stats.cot.refused_count("uid_mismatch") == 1 && stats.view().cot.received == 1
    });
    let uid = refused(&server, "cot.uid");
    assert_eq!(uid.len(), 1, "{uid:?}");
    assert_eq!(uid[0].device, "tak-7");

    // Revoked while connected: the server closes the connection (rechecked every 5 s).
    server
        .security()
        .accounts()
        .revoke_device("tak-7", "lost")
        .expect("revoke");
    let end = read_until(&mut tls, "never-sent-by-the-server");
    assert!(end.is_err(), "{end:?}");
    eventually("device_refused counted", || {
        stats.cot.refused_count("device_refused") == 1
    });
    let records = refused(&server, "cot.device");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0].detail.contains("revoked"),
        "{}",
        records[0].detail
    );
}

// ---------------------------------------------------------------------------------------
// S3: sign-in guards

fn https(server: &TestServer) -> reqwest::blocking::Client {
    let tls = outpost_sync::tls::client_config(server.ca_pem(), None).expect("TLS config");
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client")
}

#[test]
fn enroll_and_login_are_limited_per_address_with_429_and_retry_after() {
    let server = TestServer::start_with(TestServerOptions {
        guards: Some(GuardConfig {
            sign_in_per_minute: 3,
            ..GuardConfig::default()
        }),
        ..TestServerOptions::default()
    })
    .expect("server");
    let c = https(&server);
    let body = serde_json::json!({"user": "nobody", "password": "x", "totp": "000000"});
    let enroll = |path: &str| {
        c.post(format!("{}{path}", server.url()))
            .json(&body)
            .send()
            .expect("POST")
    };
    // Three answered by the security layer (malformed or refused), whatever they are...
    for path in ["/v1/enroll", "/v1/login", "/v1/enroll"] {
        let r = enroll(path);
        assert_ne!(r.status().as_u16(), 429, "{path}");
    }
    // ...the fourth within the minute is not, enroll and login alike.
    for path in ["/v1/login", "/v1/enroll"] {
        let r = enroll(path);
        assert_eq!(r.status().as_u16(), 429, "{path}");
        let retry: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=20).contains(&retry), "{retry}");
        let e: serde_json::Value = r.json().expect("error body");
        assert_eq!(e["code"], "too_many_requests");
    }
    // Audited once per window for the same address and reason.
    let login = refused(&server, "login");
    assert!(
        login
            .iter()
            .any(|r| r.detail.starts_with("too_many_requests")),
        "{login:?}"
    );
}

#[test]
fn an_enroll_body_over_the_limit_is_refused_413_before_any_password_work() {
    let server = TestServer::start().expect("server");
    let c = https(&server);
    let big = format!(
        "{{\"user\":\"commander\",\"password\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let r = c
        .post(format!("{}/v1/enroll", server.url()))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 413);
    let e: serde_json::Value = r.json().expect("error body");
    assert_eq!(e["code"], "too_large");
    // No enroll record from the security layer (nothing was verified); the guard's own.
    let records = refused(&server, "enroll");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].detail.starts_with("too_large"), "{records:?}");
}

// ---------------------------------------------------------------------------------------
// S11: the audit trail's health

fn health(server: &TestServer) -> serde_json::Value {
    https(server)
        .get(format!("{}/v1/health", server.url()))
        .send()
        .expect("GET /v1/health")
        .json()
        .expect("health body")
}

#[test]
fn health_says_audit_ok_false_while_the_trail_cannot_be_written_and_the_server_serves_on() {
    let server = TestServer::start().expect("server");
    assert_eq!(health(&server)["audit_ok"], true);
    // Another writer holds audit.db: the server's next record fails (after its busy wait).
    let db = rusqlite::Connection::open(server.data_dir().join("audit.db")).expect("open");
    db.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let c = https(&server);
    let refused = c
        .get(format!("{}/v1/pull?after=0", server.url()))
        .send()
        .expect("GET /v1/pull");
    // The request is answered all the same.
    assert_eq!(refused.status().as_u16(), 401);
    let h = health(&server);
    assert_eq!(h["audit_ok"], false, "{h}");
    assert_eq!(h["status"], "ok");
    db.execute_batch("ROLLBACK").expect("unlock");
    // The next record is written: healthy again.
    let again = c
        .get(format!("{}/v1/snapshot", server.url()))
        .send()
        .expect("GET /v1/snapshot");
    assert_eq!(again.status().as_u16(), 401);
    assert_eq!(health(&server)["audit_ok"], true);
}

// ---------------------------------------------------------------------------------------
// S10: the poke socket lives as long as its session

/// Opens the poke WebSocket of `console` by hand over TLS (device certificate + bearer) and
/// reads up to the answer's headers.
fn open_poke(server: &TestServer, console: &outpost_server::testing::TestConsole) -> Tls {
    let mut tls = cot_connect_to(
        server.server().local_addr(),
        server.ca_pem(),
        &console.device.cert_pem,
        &console.device.key_pem,
    );
    let request = format!(
        "GET /v1/poke HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        console.login.token
    );
    let head = exchange(&mut tls, &request, "\r\n\r\n").expect("upgrade answer");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls
}

fn cot_connect_to(addr: SocketAddr, ca: &str, cert: &str, key: &str) -> Tls {
    let config = outpost_sync::tls::client_config(ca, Some((cert, key))).expect("config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    rustls::StreamOwned::new(conn, tcp)
}

/// Reads frames until the server closes the socket (a close frame or the end): true when it
/// did, false when the read timed out with the socket still open.
fn closed_by_server(tls: &mut Tls) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return true,
            // A close frame: FIN + opcode 8.
            Ok(n) if buf[..n].contains(&0x88) => return true,
            Ok(_) => {}
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn the_poke_socket_closes_when_its_session_ends() {
    let server = TestServer::start_with(TestServerOptions {
        guards: Some(GuardConfig {
            sign_in_per_minute: 1_000,
            session_recheck: Duration::from_secs(1),
            ..GuardConfig::default()
        }),
        ..TestServerOptions::default()
    })
    .expect("server");
    let console = server.console(Role::Dispatcher).expect("console");
    let mut poke = open_poke(&server, &console);
    // Logged out elsewhere: the socket closes at the next check.
    let identity = (
        console.device.cert_pem.as_str(),
        console.device.key_pem.as_str(),
    );
    let tls = outpost_sync::tls::client_config(server.ca_pem(), Some(identity)).expect("tls");
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .expect("client");
    let out = c
        .post(format!("{}/v1/logout", server.url()))
        .bearer_auth(&console.login.token)
        .send()
        .expect("logout");
    assert_eq!(out.status().as_u16(), 204);
    assert!(
        closed_by_server(&mut poke),
        "the poke socket outlived its session"
    );
}

// ---------------------------------------------------------------------------------------
// S8: anonymous clients cannot flood the trail or the sync port

#[test]
fn repeated_anonymous_refusals_are_audited_once_per_window_per_route() {
    let server = TestServer::start().expect("server");
    let c = https(&server);
    for _ in 0..5 {
        let r = c
            .get(format!("{}/v1/pull?after=0", server.url()))
            .send()
            .expect("GET /v1/pull");
        assert_eq!(r.status().as_u16(), 401);
        let e: serde_json::Value = r.json().expect("error body");
        assert_eq!(e["code"], "certificate_required");
    }
    // Random ids in an admin path are one route.
    for name in ["a", "b", "c"] {
        let r = c
            .post(format!("{}/v1/admin/users/{name}/unlock", server.url()))
            .send()
            .expect("POST unlock");
        assert_eq!(r.status().as_u16(), 401);
    }
    let pull = refused(&server, "pull");
    assert_eq!(pull.len(), 1, "{pull:?}");
    assert_eq!(pull[0].target, "GET /v1/pull");
    assert!(
        pull[0].detail.starts_with("certificate_required: ")
            && pull[0].detail.ends_with("(no credentials)"),
        "{}",
        pull[0].detail
    );
    let admin = refused(&server, "admin");
    assert_eq!(admin.len(), 1, "{admin:?}");
}

#[test]
fn the_sync_port_caps_connections_per_address() {
    let server = TestServer::start_with(TestServerOptions {
        guards: Some(GuardConfig {
            sign_in_per_minute: 1_000,
            max_connections_per_address: 2,
            ..GuardConfig::default()
        }),
        ..TestServerOptions::default()
    })
    .expect("server");
    let addr = server.server().local_addr();
    // Two silent connections (no TLS handshake yet) hold both places of 127.0.0.1.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // A third is closed at once: even a health check does not get through...
    let c = https(&server);
    let refused = c.get(format!("{}/v1/health", server.url())).send();
    assert!(refused.is_err(), "{refused:?}");
    // ...until one of them is gone.
    drop(held);
    eventually("a place frees", || {
        c.get(format!("{}/v1/health", server.url()))
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)
    });
}

// ---------------------------------------------------------------------------------------
// Fresh review S14: console audit events have a daily budget per device

#[test]
fn a_device_over_its_daily_console_event_budget_is_answered_429_and_recorded_once() {
    let server = TestServer::start_with(TestServerOptions {
        guards: Some(GuardConfig {
            sign_in_per_minute: 1_000,
            console_events_per_day: 3,
            ..GuardConfig::default()
        }),
        ..TestServerOptions::default()
    })
    .expect("server");
    let console = server.console(Role::Dispatcher).expect("console");
    let identity = (
        console.device.cert_pem.as_str(),
        console.device.key_pem.as_str(),
    );
    let tls = outpost_sync::tls::client_config(server.ca_pem(), Some(identity)).expect("tls");
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .expect("client");
    let post = |n: usize| {
        let events: Vec<serde_json::Value> = (0..n)
            .map(|_| {
                serde_json::json!({
                    "event_id": uuid::Uuid::now_v7(),
                    "at": "2026-11-30T05:01:02.34+01:00",
                    "user": "dispatcher",
                    "action": "lock",
                    "target": "",
                    "outcome": "ok",
                    "detail": ""
                })
            })
            .collect();
        c.post(format!("{}/v1/audit/events", server.url()))
            .bearer_auth(&console.login.token)
            .json(&serde_json::json!({
                "protocol": outpost_domain::wire::PROTOCOL_VERSION,
                "events": events
            }))
            .send()
            .expect("POST /v1/audit/events")
    };
    assert_eq!(post(2).status().as_u16(), 200);
    for _ in 0..3 {
        let r = post(2);
        assert_eq!(r.status().as_u16(), 429);
        assert!(r.headers().get("retry-after").is_some());
    }
    // What still fits is taken.
    assert_eq!(post(1).status().as_u16(), 200);
    let records = refused(&server, "audit.events");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].device, console.device.device_id);
    assert!(
        records[0].detail.starts_with("too_many_requests"),
        "{records:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Fresh review S3: enroll and login records name the client's address

/// `detail` ends with `from 127.0.0.1:PORT` (the client's side of the TLS connection).
fn assert_from_client(record: &AuditRecord) {
    let port = record
        .detail
        .rsplit_once("from 127.0.0.1:")
        .and_then(|(_, port)| port.parse::<u16>().ok());
    assert!(port.is_some_and(|p| p > 0), "no client address: {record:?}");
}

#[test]
fn enroll_and_login_records_carry_the_clients_address_refused_or_not() {
    let server = TestServer::start().expect("server");
    let c = https(&server);
    let user = server.user(Role::Commander).clone();
    let (key_pem, csr_pem) = outpost_server::testing::key_and_csr().expect("CSR");
    let mut enroll = serde_json::json!({
        "protocol": outpost_domain::wire::PROTOCOL_VERSION,
        "user": user.name,
        "password": "not-the-password-1",
        "totp": server.fresh_code(Role::Commander),
        "device_name": "laptop",
        "origin": uuid::Uuid::now_v7(),
        "csr_pem": csr_pem,
        "cache_key": "ab".repeat(32),
    });
    let post = |c: &reqwest::blocking::Client, path: &str, body: &serde_json::Value| {
        c.post(format!("{}{path}", server.url()))
            .json(body)
            .send()
            .expect("POST")
    };
    // A refused enrollment...
    assert_eq!(post(&c, "/v1/enroll", &enroll).status().as_u16(), 401);
    // ...and an accepted one (which also signs the person in).
    enroll["password"] = user.password.clone().into();
    enroll["totp"] = server.fresh_code(Role::Commander).into();
    let r = post(&c, "/v1/enroll", &enroll);
    assert_eq!(r.status().as_u16(), 200);
    let resp: serde_json::Value = r.json().expect("enroll response");
    let cert_pem = resp["certificate_pem"]
        .as_str()
        .expect("certificate")
        .to_owned();
    // Logins on the new device: refused, then accepted.
    let tls = outpost_sync::tls::client_config(server.ca_pem(), Some((&cert_pem, &key_pem)))
        .expect("TLS config");
    let dev = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client");
    let mut login = serde_json::json!({
        "protocol": outpost_domain::wire::PROTOCOL_VERSION,
        "user": user.name,
        "password": "not-the-password-2",
        "totp": server.fresh_code(Role::Commander),
    });
    assert_eq!(post(&dev, "/v1/login", &login).status().as_u16(), 401);
    login["password"] = user.password.clone().into();
    login["totp"] = server.fresh_code(Role::Commander).into();
    assert_eq!(post(&dev, "/v1/login", &login).status().as_u16(), 200);

    let records: Vec<AuditRecord> = audit_records(&server)
        .into_iter()
        .filter(|r| r.action == "enroll" || r.action == "login")
        .collect();
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("enroll", "refused"),
            ("enroll", "ok"),
            ("login", "ok"),
            ("login", "refused"),
            ("login", "ok"),
        ]
    );
    for r in &records {
        assert_from_client(r);
    }
    assert!(
        records[0].detail.contains("wrong name, password or code"),
        "{records:?}"
    );
    assert!(
        records[2].detail.starts_with("at enrollment; from "),
        "{records:?}"
    );
    assert!(
        records[4].detail.starts_with("from 127.0.0.1:"),
        "{records:?}"
    );
}
