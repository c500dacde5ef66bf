//! The live feed on the poke socket (`GET /v1/poke?feed=1`, issue 7): each committed push
//! as one binary frame carrying what a pull returns; plain pokes unchanged; a slow
//! subscriber never holds up pushes; only roles that may pull get it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use outpost_domain::access::Role;
use outpost_domain::op::Lane;
use outpost_domain::wire::PullResponse;
use outpost_server::service::FEED_CAPACITY;
use outpost_server::testing::TestServer;
use outpost_server::{Server, ServerConfig};

use crate::support::{Author, Client, request};

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn a_feed_frame_carries_exactly_what_a_pull_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        Server::start(ServerConfig::plain_for_tests(dir.path(), any_port())).expect("start");
    let c = Client::new(server.url());
    let mut a = Author::new(1);
    let unit = a.unit("u-1");
    let (incident, create) = a.incident();
    let (status, body) = c.push(&request(a.origin, Lane::Critical, &[unit, create]));
    assert_eq!(status, 200, "{body}");
    let feed_url = format!("ws://{}/v1/poke?feed=1", server.local_addr());
    let plain_url = format!("ws://{}/v1/poke", server.local_addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut feed, _) = tokio_tungstenite::connect_async(&feed_url)
            .await
            .expect("connect feed");
        let (mut plain, _) = tokio_tungstenite::connect_async(&plain_url)
            .await
            .expect("connect plain");
        // Both start with a text poke of the head.
        for ws in [&mut feed, &mut plain] {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let p: Value = serde_json::from_str(t.as_str()).expect("poke");
                    assert_eq!(p["gseq"], 2);
                }
                other => panic!("expected the first poke, got {other:?}"),
            }
        }
        let notes: Vec<_> = (0..3)
            .map(|i| a.note(incident, &format!("live {i}")))
            .collect();
        let base = c.base.clone();
        let origin = a.origin;
        tokio::task::spawn_blocking(move || {
            let (status, body) = Client::new(base).push(&request(origin, Lane::Notes, &notes));
            assert_eq!(status, 200, "{body}");
        })
        .await
        .expect("push");
        let frame = match tokio::time::timeout(Duration::from_secs(10), feed.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => b,
            other => panic!("expected a binary feed frame, got {other:?}"),
        };
        let frame: Value = serde_json::from_slice(&frame).expect("frame json");
        assert_eq!(frame["after"], 2);
        assert_eq!(frame["gseq"], 5);
        let base = c.base.clone();
        let (_, page) =
            tokio::task::spawn_blocking(move || Client::new(base).get("/v1/pull?after=2&limit=10"))
                .await
                .expect("pull");
        let page: PullResponse = serde_json::from_value(page).expect("pull");
        assert_eq!(frame["epoch"], page.epoch.to_string());
        let ops: Vec<outpost_domain::wire::PulledOp> =
            serde_json::from_value(frame["ops"].clone()).expect("ops");
        assert_eq!(ops, page.ops);
        assert_eq!(ops.len(), 3);
        // The feed socket gets no extra text poke for that push; the plain one gets only
        // the poke.
        let extra = tokio::time::timeout(Duration::from_millis(600), feed.next()).await;
        assert!(
            extra.is_err(),
            "unexpected message after the frame: {extra:?}"
        );
        match tokio::time::timeout(Duration::from_secs(10), plain.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let p: Value = serde_json::from_str(t.as_str()).expect("poke");
                assert_eq!(p["gseq"], 5);
            }
            other => panic!("expected a text poke on the plain socket, got {other:?}"),
        }
    });
}

#[test]
fn a_slow_feed_subscriber_never_holds_up_pushes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server =
        Server::start(ServerConfig::plain_for_tests(dir.path(), any_port())).expect("start");
    let c = Client::new(server.url());
    let mut a = Author::new(2);
    let unit = a.unit("u-1");
    let (incident, create) = a.incident();
    let (status, _) = c.push(&request(a.origin, Lane::Critical, &[unit, create]));
    assert_eq!(status, 200);
    // A subscriber that never reads.
    let mut slow = server.service().subscribe_feed();
    let pushes = FEED_CAPACITY + 20;
    let started = Instant::now();
    for i in 0..pushes {
        let note = a.note(incident, &format!("n{i}"));
        let (status, body) = c.push(&request(a.origin, Lane::Notes, &[note]));
        assert_eq!(status, 200, "{body}");
    }
    // Every push went through (nothing waited for the subscriber) ...
    let (_, h) = c.get("/v1/health");
    assert_eq!(h["server_gseq"], 2 + pushes as u64);
    eprintln!("{pushes} pushes in {:?}", started.elapsed());
    // ... and the subscriber learns that it lagged (its socket then pokes instead).
    match slow.try_recv() {
        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 20),
        other => panic!("expected Lagged, got {other:?}"),
    }
    // After the lag it continues with the newest frames, still in commit order.
    let f = slow.try_recv().expect("a frame");
    assert_eq!(f.gseq, 2 + 21);
    let next = slow.try_recv().expect("a frame");
    assert_eq!(next.gseq, f.gseq + 1);
}

/// TLS + device certificate + bearer, by hand; returns the status line of the upgrade and
/// the stream.
fn open_feed(
    server: &TestServer,
    console: &outpost_server::testing::TestConsole,
) -> (
    String,
    rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
) {
    let config = outpost_sync::tls::client_config(
        server.ca_pem(),
        Some((&console.device.cert_pem, &console.device.key_pem)),
    )
    .expect("config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = std::net::TcpStream::connect(server.server().local_addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "GET /v1/poke?feed=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        console.login.token
    );
    tls.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    (head.lines().next().unwrap_or("").to_string(), tls)
}

#[test]
fn only_roles_that_may_pull_get_the_feed() {
    let server = TestServer::start().expect("server");
    for role in [Role::Auditor, Role::Administrator] {
        let console = server.console(role).expect("console");
        let (status, _) = open_feed(&server, &console);
        assert!(status.starts_with("HTTP/1.1 403"), "{role}: {status}");
    }
    let viewer = server.console(Role::Viewer).expect("viewer");
    let (status, mut tls) = open_feed(&server, &viewer);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    // A commit (straight through the service): the viewer's socket carries its op.
    let mut a = Author::new(3);
    let unit = a.unit("u-9");
    let op_id = unit.op_id.to_string();
    server
        .server()
        .service()
        .push_request(&request(a.origin, Lane::Critical, &[unit]))
        .expect("push");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains(&op_id) {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains(&op_id),
        "the viewer's feed did not carry the op"
    );
}
