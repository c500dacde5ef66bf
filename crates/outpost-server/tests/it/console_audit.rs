//! `POST /v1/audit/events` (issue 6): a console's audit outbox reaches the hash chain.
//! Over the real TLS server of `outpost_server::testing`: events are recorded as
//! `console:ACTION` with the certificate's device, the console's time and event id in the
//! detail; a re-sent batch records nothing twice; an event naming a person without a grant
//! on the device is recorded as refused; bad batches are refused whole with 400 naming the
//! field (and that refusal is audited); no session → 401.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::access::Role;
use outpost_domain::wire::{
    AuditEventsResponse, AuditRecord, ConsoleAuditEvent, MAX_AUDIT_EVENTS, PROTOCOL_VERSION,
};
use outpost_server::testing::{TestConsole, TestServer};

fn client(server: &TestServer, console: &TestConsole) -> reqwest::blocking::Client {
    let d = &console.device;
    let tls = outpost_sync::tls::client_config(
        server.ca_pem(),
        Some((d.cert_pem.as_str(), d.key_pem.as_str())),
    )
    .expect("TLS config");
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client")
}

fn post(
    http: &reqwest::blocking::Client,
    server: &TestServer,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut req = http.post(format!("{}/v1/audit/events", server.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.json(body).send().expect("request");
    let status = res.status().as_u16();
    let text = res.text().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn event(user: &str, action: &str, outcome: &str, detail: &str) -> ConsoleAuditEvent {
    ConsoleAuditEvent {
        event_id: Uuid::now_v7(),
        at: "2026-11-30T05:01:02.34+01:00".into(),
        user: user.into(),
        action: action.into(),
        target: "offline".into(),
        outcome: outcome.into(),
        detail: detail.into(),
    }
}

fn body(events: &[ConsoleAuditEvent]) -> Value {
    json!({ "protocol": PROTOCOL_VERSION, "events": events })
}

/// Every record of the trail.
fn trail(server: &TestServer) -> Vec<AuditRecord> {
    let log = server.security().audit_log().expect("audit log");
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |r: &AuditRecord| r.seq);
        let page = log.page(after, Some(1000)).expect("page");
        if page.records.is_empty() {
            return out;
        }
        out.extend(page.records);
    }
}

fn console_records(server: &TestServer) -> Vec<AuditRecord> {
    trail(server)
        .into_iter()
        .filter(|r| r.action.starts_with("console:"))
        .collect()
}

#[test]
fn console_events_are_chained_once_with_the_certificates_device() {
    let server = TestServer::start().expect("server");
    let console = server.console(Role::Commander).expect("console");
    let http = client(&server, &console);
    let token = console.login.token.as_str();
    let device = console.device.device_id.clone();

    let mine = event("commander", "sign_in", "ok", "offline sign-in");
    let failed = event("commander", "sign_in_failed", "refused", "wrong code");
    let stranger = event("dispatcher", "sign_in_failed", "refused", "wrong password");
    let garbage = event("-", "sign_in_failed", "refused", "login name not valid");
    let batch = vec![
        mine.clone(),
        failed.clone(),
        stranger.clone(),
        garbage.clone(),
    ];

    let (status, answer) = post(&http, &server, Some(token), &body(&batch));
    assert_eq!(status, 200, "{answer}");
    let answer: AuditEventsResponse = serde_json::from_value(answer).expect("answer");
    assert_eq!(answer.recorded, 4);
    assert_eq!(answer.duplicates, 0);
    assert_eq!(answer.refused, vec![stranger.event_id, garbage.event_id]);

    let records = console_records(&server);
    assert_eq!(records.len(), 4, "{records:#?}");
    let r = &records[0];
    assert_eq!(r.action, "console:sign_in");
    assert_eq!(r.user, "commander");
    assert_eq!(r.device, device, "the device comes from the certificate");
    assert_eq!(r.target, "offline");
    assert_eq!(r.outcome, "ok");
    assert_eq!(
        r.detail,
        format!(
            "console time 2026-11-30T05:01:02.34+01:00; event {}; offline sign-in",
            mine.event_id
        )
    );
    assert_eq!(records[1].action, "console:sign_in_failed");
    assert_eq!(records[1].outcome, "refused");
    // The dispatcher never signed in on this device: refused, kept as evidence under the
    // session's user.
    assert_eq!(records[2].user, "commander");
    assert_eq!(records[2].outcome, "refused");
    assert!(
        records[2]
            .detail
            .starts_with("refused: the event names user \"dispatcher\""),
        "{}",
        records[2].detail
    );
    assert!(records[2].detail.contains(&stranger.event_id.to_string()));
    assert_eq!(records[3].outcome, "refused");

    // The same batch again (its answer was lost): nothing twice.
    let (status, answer) = post(&http, &server, Some(token), &body(&batch));
    assert_eq!(status, 200, "{answer}");
    let answer: AuditEventsResponse = serde_json::from_value(answer).expect("answer");
    assert_eq!((answer.recorded, answer.duplicates), (0, 4));
    assert_eq!(console_records(&server).len(), 4);

    // Once the dispatcher signed in on this device (a grant), their events are theirs.
    server
        .login(&console.device, Role::Dispatcher)
        .expect("dispatcher login");
    let theirs = event("dispatcher", "lock", "ok", "");
    let (status, answer) = post(
        &http,
        &server,
        Some(token),
        &body(std::slice::from_ref(&theirs)),
    );
    assert_eq!(status, 200, "{answer}");
    let records = console_records(&server);
    let last = records.last().expect("record");
    assert_eq!(
        (
            last.user.as_str(),
            last.action.as_str(),
            last.outcome.as_str()
        ),
        ("dispatcher", "console:lock", "ok")
    );
    assert_eq!(
        last.detail,
        format!(
            "console time 2026-11-30T05:01:02.34+01:00; event {}",
            theirs.event_id
        )
    );
    assert!(
        server
            .security()
            .audit_log()
            .expect("log")
            .verify()
            .expect("verify")
            .is_intact()
    );
}

#[test]
fn bad_batches_are_refused_whole_naming_the_field() {
    let server = TestServer::start().expect("server");
    let console = server.console(Role::Viewer).expect("console");
    let http = client(&server, &console);
    let token = console.login.token.as_str();
    let ok = event("viewer", "export", "ok", "GPX, 3 fixes");

    let cases: Vec<(Value, &str)> = vec![
        (
            body(&[ok.clone(), event("viewer", "delete_everything", "ok", "")]),
            "events[1].action: \"delete_everything\" is not one of",
        ),
        (
            body(&[ConsoleAuditEvent {
                at: "yesterday".into(),
                ..ok.clone()
            }]),
            "events[0].at: \"yesterday\" is not an RFC 3339 time",
        ),
        (
            body(&[event("viewer", "lock", "maybe", "")]),
            "events[0].outcome: \"maybe\"",
        ),
        (
            body(&[event("bad name!", "lock", "ok", "")]),
            "events[0].user: \"bad name!\" is not a login name",
        ),
        (
            body(&[ConsoleAuditEvent {
                detail: "x".repeat(1025),
                ..ok.clone()
            }]),
            "events[0].detail: 1025 bytes, at most 1024",
        ),
        (
            json!({"protocol": PROTOCOL_VERSION, "events": [{"event_id": "nope", "at": ok.at,
                "user": "viewer", "action": "lock", "target": "", "outcome": "ok", "detail": ""}]}),
            "events[0].event_id",
        ),
        (
            json!({"protocol": PROTOCOL_VERSION, "events": [{"event_id": ok.event_id}]}),
            "events[0]",
        ),
        (
            body(&vec![ok.clone(); MAX_AUDIT_EVENTS + 1]),
            "events: 1001 events, at most 1000 per request",
        ),
        (
            json!({"protocol": 99, "events": []}),
            "protocol: version 99 is not served here",
        ),
    ];
    for (b, expected) in cases {
        let (status, answer) = post(&http, &server, Some(token), &b);
        assert_eq!(status, 400, "{expected}: {answer}");
        assert_eq!(answer["code"], "bad_request", "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
    // More than 1 MiB: refused before decoding.
    let big = ConsoleAuditEvent {
        detail: "y".repeat(1000),
        ..ok.clone()
    };
    let (status, answer) = post(&http, &server, Some(token), &body(&vec![big; 1000]));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than 1048576 bytes"),
        "{answer}"
    );
    assert!(
        console_records(&server).is_empty(),
        "nothing of a bad batch is recorded"
    );
    // The refusals that reached the check are audited.
    let refusals: Vec<AuditRecord> = trail(&server)
        .into_iter()
        .filter(|r| r.action == "audit.events")
        .collect();
    assert!(refusals.len() >= 6, "{refusals:#?}");
    assert!(
        refusals
            .iter()
            .all(|r| r.outcome == "failed" && r.user == "viewer")
    );

    // No session: 401, nothing recorded.
    let (status, answer) = post(&http, &server, None, &body(std::slice::from_ref(&ok)));
    assert_eq!(status, 401, "{answer}");
    // Any role may post its own events (a viewer here).
    let (status, answer) = post(
        &http,
        &server,
        Some(token),
        &body(std::slice::from_ref(&ok)),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(console_records(&server).len(), 1);
}
