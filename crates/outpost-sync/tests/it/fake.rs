//! The engine against a scripted fake server (plain HTTP/1.1 on 127.0.0.1): answers the
//! real server never gives on demand — another protocol, 413 for big batches, 503.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use outpost_domain::wire::{
    Capabilities, OpResult, Outcome, PullResponse, PushRequest, PushResponse,
};
use outpost_sync::{LinkState, SyncEngine, SyncOptions};
use uuid::Uuid;

use crate::common::*;

type Handler = dyn Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync;

/// Serves `handler(method, path_and_query, body) -> (status, JSON body)` until the process
/// ends; one request per connection.
fn fake_server(handler: Arc<Handler>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default().to_string();
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let (status, text) = handler(&method, &path, &body);
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    addr
}

fn caps(protocols: Vec<u32>) -> String {
    serde_json::to_string(&Capabilities {
        protocols,
        max_schema: 1,
        max_batch_ops: 1_000,
        max_push_bytes: 4 * 1024 * 1024,
        max_pull_limit: 5_000,
        server: "fake 0".into(),
    })
    .expect("json")
}

fn no_poke() -> SyncOptions {
    SyncOptions {
        poke: false,
        ..quick()
    }
}

#[test]
fn a_server_of_another_protocol_is_a_permanent_error() {
    let addr = fake_server(Arc::new(|_, path, _| {
        if path.starts_with("/v1/capabilities") {
            (200, caps(vec![2]))
        } else {
            (500, "{}".into())
        }
    }));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = console(&tmp.path().join("a"));
    let err = SyncEngine::sync_until_quiet(a.clone(), &format!("http://{addr}"), no_poke(), 3)
        .expect_err("refused");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("upgrade"), "{err}");

    let h =
        SyncEngine::start(a, &format!("http://{addr}"), Arc::new(|| {}), no_poke()).expect("start");
    assert!(wait_until(10, || h.status().state == LinkState::Offline));
    let st = h.status();
    assert!(st.error_is_permanent);
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("protocol [2]")),
        "{st:?}"
    );
}

#[test]
fn batches_are_halved_on_413_and_503_is_retried() {
    let epoch = Uuid::now_v7();
    let gseq = Arc::new(AtomicU64::new(0));
    let pushes = Arc::new(Mutex::new(Vec::<usize>::new()));
    let unavailable = Arc::new(AtomicUsize::new(2));
    let (g, p, u) = (
        Arc::clone(&gseq),
        Arc::clone(&pushes),
        Arc::clone(&unavailable),
    );
    let addr = fake_server(Arc::new(move |method, path, body| {
        if path.starts_with("/v1/capabilities") {
            return (200, caps(vec![1]));
        }
        if u.load(Ordering::SeqCst) > 0 {
            u.fetch_sub(1, Ordering::SeqCst);
            return (
                503,
                r#"{"code":"unavailable","message":"shutting down; retry"}"#.into(),
            );
        }
        if method == "POST" && path == "/v1/push" {
            let req: PushRequest = serde_json::from_slice(body).expect("push request");
            p.lock().expect("lock").push(req.ops.len());
            if req.ops.len() > 8 {
                return (
                    413,
                    r#"{"code":"too_large","message":"ops: too many"}"#.into(),
                );
            }
            let results = req
                .ops
                .iter()
                .map(|op| OpResult {
                    op_id: Uuid::parse_str(op["op_id"].as_str().unwrap_or_default())
                        .unwrap_or_default(),
                    lane_seq: op["lane_seq"].as_u64().unwrap_or_default(),
                    outcome: Outcome::Accepted {
                        gseq: g.fetch_add(1, Ordering::SeqCst) + 1,
                    },
                })
                .collect();
            let resp = PushResponse {
                epoch,
                results,
                resend_from: None,
                high_water: 0,
                server_gseq: g.load(Ordering::SeqCst),
            };
            return (200, serde_json::to_string(&resp).expect("json"));
        }
        if path.starts_with("/v1/pull") {
            let page = PullResponse {
                epoch,
                ops: vec![],
                server_gseq: g.load(Ordering::SeqCst),
                more: false,
            };
            return (200, serde_json::to_string(&page).expect("json"));
        }
        (404, r#"{"code":"not_found","message":"no"}"#.into())
    }));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = console(&tmp.path().join("a"));
    let mut lines = String::new();
    for i in 0..20 {
        lines.push_str(&format!(
            "{{\"action\":\"register_unit\",\"unit_id\":\"u-{i}\",\"callsign\":\"C{i}\",\"unit_kind\":\"patrol_car\"}}\n"
        ));
    }
    act(&a, &lines);
    let h = SyncEngine::start(
        a.clone(),
        &format!("http://{addr}"),
        Arc::new(|| {}),
        no_poke(),
    )
    .expect("start");
    assert!(wait_until(10, || counts(&a) == (0, 20, 0)));
    assert!(wait_until(10, || h.status().state == LinkState::Online));
    h.shutdown();
    assert_eq!(
        unavailable.load(Ordering::SeqCst),
        0,
        "the 503s were retried"
    );
    let sizes = pushes.lock().expect("lock").clone();
    // 20 refused, 10 refused, then batches of 5 (growing back to 10 is refused again).
    assert_eq!(sizes[0], 20);
    assert_eq!(sizes[1], 10);
    assert!(
        sizes.iter().filter(|n| **n <= 8).sum::<usize>() == 20,
        "{sizes:?}"
    );
    assert_eq!(gseq.load(Ordering::SeqCst), 20);
}

/// A fake that accepts every op except the incident.create of the incident with id `park`,
/// which it parks; pulls are empty.
fn parking_server(park: Uuid) -> SocketAddr {
    let epoch = Uuid::now_v7();
    let gseq = Arc::new(AtomicU64::new(0));
    fake_server(Arc::new(move |method, path, body| {
        if path.starts_with("/v1/capabilities") {
            return (200, caps(vec![1]));
        }
        if method == "POST" && path == "/v1/push" {
            let req: PushRequest = serde_json::from_slice(body).expect("push request");
            let results = req
                .ops
                .iter()
                .map(|op| {
                    let parked = op["body"]["kind"] == "incident.create"
                        && op["body"]["incident_id"] == park.to_string();
                    OpResult {
                        op_id: Uuid::parse_str(op["op_id"].as_str().unwrap_or_default())
                            .unwrap_or_default(),
                        lane_seq: op["lane_seq"].as_u64().unwrap_or_default(),
                        outcome: if parked {
                            Outcome::Parked {
                                reason: "incident.create: the number is already taken".into(),
                            }
                        } else {
                            Outcome::Accepted {
                                gseq: gseq.fetch_add(1, Ordering::SeqCst) + 1,
                            }
                        },
                    }
                })
                .collect();
            let resp = PushResponse {
                epoch,
                results,
                resend_from: None,
                high_water: 0,
                server_gseq: gseq.load(Ordering::SeqCst),
            };
            return (200, serde_json::to_string(&resp).expect("json"));
        }
        let page = PullResponse {
            epoch,
            ops: vec![],
            server_gseq: gseq.load(Ordering::SeqCst),
            more: false,
        };
        (200, serde_json::to_string(&page).expect("json"))
    }))
}

#[test]
fn a_parked_op_is_kept_with_its_reason_and_unapplied() {
    let refused = Uuid::now_v7();
    let addr = parking_server(refused);
    let tmp = tempfile::tempdir().expect("tmp");
    let a = console(&tmp.path().join("a"));
    act(
        &a,
        &format!(
            r#"{{"action":"create_incident","name":"ok1","incident_type":"fire","priority":"P2","location":{{"lat":42.5,"lon":1.5}}}}
{{"action":"create_incident","incident_id":"{refused}","incident_type":"theft","priority":"P3","location":{{"lat":42.5,"lon":1.5}}}}
{{"action":"create_incident","name":"ok2","incident_type":"medical","priority":"P1","location":{{"lat":42.5,"lon":1.5}}}}"#
        ),
    );
    {
        let s = a.lock().expect("lock");
        assert!(
            outpost_store::query::incident(s.conn(), refused)
                .expect("q")
                .is_some()
        );
    }
    let applied = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&applied);
    let h = SyncEngine::start(
        a.clone(),
        &format!("http://{addr}"),
        Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
        no_poke(),
    )
    .expect("start");
    assert!(wait_until(10, || counts(&a) == (0, 2, 1)));
    assert!(wait_until(10, || h.status().state == LinkState::Online));
    h.shutdown();
    assert!(applied.load(Ordering::SeqCst) >= 1, "the console was told");
    let s = a.lock().expect("lock");
    let parked = s.parked().expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0].reason,
        "incident.create: the number is already taken"
    );
    // Un-applied here, as on the server (I3); the others stay.
    assert!(
        outpost_store::query::incident(s.conn(), refused)
            .expect("q")
            .is_none()
    );
    let queue = outpost_store::query::queue(s.conn(), chrono::Utc::now()).expect("queue");
    assert_eq!(queue.len(), 2);
}
