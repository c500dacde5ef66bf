//! Device ingest against a server started in-process with its OsmAnd and Cursor-on-Target
//! listeners on 127.0.0.1:0: reports of bound devices become `position.report` ops of their
//! unit, unbound ones `device.report` (throttled), the CoT feed sends the picture, and bad
//! input on every listener is refused and counted without stalling the other clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use outpost_domain::op::{Lane, OpBody};
use outpost_server::ingest::{IngestConfig, IngestStatsView};
use outpost_server::{RunningServer, Server, ServerConfig};

use crate::support::{Author, Client, outcomes, request};

const WINTAK: &str = include_str!("../../../../data/gps/cot_wintak_position.xml");

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Rig {
    server: RunningServer,
    client: Client,
    author: Author,
}

fn start_rig(dir: &Path, max_connections: Option<usize>) -> Rig {
    start_rig_idle(dir, max_connections, None)
}

fn start_rig_idle(dir: &Path, max_connections: Option<usize>, idle: Option<Duration>) -> Rig {
    start_rig_with(
        dir,
        IngestConfig {
            max_connections,
            idle_timeout: idle,
            ..IngestConfig::default()
        },
    )
}

/// A server with both device listeners on 127.0.0.1 and the limits of `config`.
fn start_rig_with(dir: &Path, config: IngestConfig) -> Rig {
    let server = Server::start(ServerConfig::plain_for_tests(dir, any_port()).with_ingest(
        IngestConfig {
            osmand_listen: Some(any_port()),
            cot_listen: Some(any_port()),
            ..config
        },
    ))
    .expect("start server");
    let client = Client::new(server.url());
    Rig {
        server,
        client,
        author: Author::new(1),
    }
}

impl Rig {
    fn osmand(&self) -> SocketAddr {
        self.server.osmand_addr().expect("osmand address")
    }

    fn cot(&self) -> SocketAddr {
        self.server.cot_addr().expect("cot address")
    }

    /// Registers `unit` and binds `device` to it (critical lane).
    fn bind(&mut self, device: &str, unit: &str) {
        let ops = vec![
            self.author.unit(unit),
            self.author.op(OpBody::DeviceBind {
                device_id: device.into(),
                unit_id: Some(unit.into()),
            }),
        ];
        let (status, body) = self
            .client
            .push(&request(self.author.origin, Lane::Critical, &ops));
        assert_eq!(status, 200, "{body}");
        for o in outcomes(&body) {
            assert!(o.starts_with("accepted"), "{o}");
        }
    }

    fn stats(&self) -> IngestStatsView {
        let (status, body) = self.client.get("/v1/ingest/stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).expect("stats")
    }

    /// Every logged op's body, oldest first.
    fn log(&self) -> Vec<Value> {
        let page = self.server.service().pull(0, Some(5_000)).expect("pull");
        page.ops.into_iter().map(|o| o.op["body"].clone()).collect()
    }

    fn log_of(&self, kind: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|b| b["kind"] == kind)
            .collect()
    }

    /// The latest fix of `unit` on the server's replica: (lat, lon, fix time ms).
    fn unit_fix(&self, unit: &str) -> Option<(f64, f64, i64)> {
        let p = self
            .server
            .service()
            .with_reader(|s| s.picture(Some(&[unit.to_string()]), Some(&[])))
            .expect("picture");
        p.units.first().and_then(|u| {
            u.fix.as_ref().map(|f| {
                (
                    f.position.lat,
                    f.position.lon,
                    f.fix_time.timestamp_millis(),
                )
            })
        })
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for: {what}");
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(addr: SocketAddr, method: &str, target: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    // A refused body may be cut off by the server: the answer is still read.
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Ends a CoT stream cleanly and reads what the server sends (the picture) until it closes:
/// closing a socket with unread data would reset the connection instead, and the server
/// could lose what it had not read yet.
fn finish(mut s: TcpStream) {
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    http(addr, "GET", target, "text/plain", b"")
}

fn now_s() -> i64 {
    Utc::now().timestamp()
}

/// The WinTAK sample with its times set to now (the sample is from 2020).
fn wintak_now(uid: &str) -> String {
    let t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    WINTAK
        .replace("2020-02-08T18:10:44.000Z", &t)
        .replace("2020-02-08T18:11:11.000Z", &t)
        .replace("aa0b0312-b5cd-4c2c-bbbc-9c4c70216261", uid)
}

#[test]
fn osmand_reports_of_a_bound_device_move_its_unit_and_unbound_ones_are_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    rig.bind("902064", "u-01");

    // The first sample of data/gps/osmand_samples.txt (2016, ISO time): a bound device.
    let (status, body) = get(
        rig.osmand(),
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
    );
    assert_eq!(status, 200, "{body}");
    wait_until("unit u-01 has the fix", || rig.unit_fix("u-01").is_some());
    let (lat, lon, t) = rig.unit_fix("u-01").expect("fix");
    assert_eq!((lat, lon), (42.06288, -88.23412));
    assert_eq!(t, 1_453_920_947_000); // 2016-01-27T18:55:47Z
    let reports = rig.log_of("position.report");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["unit_id"], "u-01");

    // The Traccar Client JSON form, unbound: kept as a device.report with its battery.
    let json = format!(
        r#"{{"location":{{"timestamp":"{}","coords":{{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5}},"battery":{{"level":0.5,"is_charging":false}}}},"device_id":"48241179"}}"#,
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let (status, body) = http(
        rig.osmand(),
        "POST",
        "/",
        "application/json",
        json.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    wait_until("a device.report", || {
        !rig.log_of("device.report").is_empty()
    });
    let dr = &rig.log_of("device.report")[0]["report"];
    assert_eq!(dr["device_id"], "48241179");
    assert_eq!(dr["source"], "osmand");
    assert_eq!(dr["fix"]["position"]["lat"], 37.4219983);
    assert_eq!(dr["battery_pct"], 50.0);

    // Unbound reports are throttled to one per device per 5 s.
    for i in 0..4 {
        let (status, _) = get(
            rig.osmand(),
            &format!(
                "/?id=48241179&lat=37.42&lon=-122.08&timestamp={}",
                now_s() - 10 + i
            ),
        );
        assert_eq!(status, 200);
    }
    wait_until("4 throttled", || rig.stats().osmand.throttled == 4);
    assert_eq!(rig.log_of("device.report").len(), 1);

    let stats = rig.stats();
    assert_eq!(stats.osmand.received, 6);
    // Received 6 (answered 200); written 2: the bound fix and one unbound report.
    wait_until("2 written", || rig.stats().osmand.accepted == 2);
    assert_eq!(stats.gateway.positions_written, 1);
    assert_eq!(stats.gateway.device_reports_written, 1);
    assert!(stats.gateway.batches >= 2);
    assert_eq!(stats.osmand.refused.values().sum::<u64>(), 0, "{stats:?}");
}

/// Refused for its values: 200 with `refused: <reason>` (Traccar Client and OsmAnd re-send
/// their oldest buffered position until a 2xx; a 400 would block every newer one), counted.
fn assert_refused_200(a: SocketAddr, target: &str, says: &str) {
    let (status, body) = get(a, target);
    assert_eq!(status, 200, "{target}: {body}");
    assert!(body.starts_with("refused: "), "{target}: {body}");
    assert!(body.contains(says), "{target}: {body}");
}

#[test]
fn osmand_bad_input_is_refused_with_its_reason_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), None);
    let a = rig.osmand();
    let t = now_s();

    // Not an OsmAnd report at all: 400. The sample without a device id.
    let (status, body) = get(a, "/?timestamp=1377177267&lat=60.0&lon=30.0");
    assert_eq!(status, 400);
    assert!(body.contains("device id"), "{body}");
    // A device id but no position.
    let (status, body) = get(a, &format!("/?id=d1&timestamp={t}"));
    assert_eq!(status, 400, "{body}");

    // Well-formed reports refused for their values: 200, so the phone moves on.
    assert_refused_200(
        a,
        &format!("/?id=d1&lat=91&lon=30&timestamp={t}"),
        "latitude 91",
    );
    assert_refused_200(
        a,
        &format!("/?id=d1&lat=NaN&lon=30&timestamp={t}"),
        "latitude",
    );
    assert_refused_200(
        a,
        &format!("/?id=d1&lat=10&lon=30&timestamp={}", t + 365 * 86_400),
        "ahead of the clock",
    );
    // 1999-12-31T23:59:59Z: a phone whose clock was reset.
    assert_refused_200(a, "/?id=d1&lat=10&lon=30&timestamp=946684799", "2000");
    assert_refused_200(
        a,
        &format!("/?id=d1&lat=10&lon=30&timestamp={t}&speed=-5"),
        "speed",
    );
    assert_refused_200(a, &format!("/?id=d1&lat=0&lon=0&timestamp={t}"), "0, 0");
    assert_refused_200(a, "/?id=d1&lat=10&lon=30&timestamp=garbage", "timestamp");
    // The same in the JSON form (Traccar Client 9): a fix a year ahead.
    let json = format!(
        r#"{{"location":{{"timestamp":"{}","coords":{{"latitude":37.42,"longitude":-122.08}}}},"device_id":"d2"}}"#,
        (Utc::now() + chrono::Duration::days(365)).to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let (status, body) = http(a, "POST", "/", "application/json", json.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ahead of the clock"), "{body}");

    // Malformed JSON: not a report, 400.
    let (status, body) = http(a, "POST", "/", "application/json", b"{\"location\":");
    assert_eq!(status, 400);
    assert!(body.contains("JSON"), "{body}");
    // 10 MB body: refused from its declared length, before it is read.
    let big = vec![b'a'; 10 * 1024 * 1024];
    let (status, body) = http(a, "POST", "/", "application/x-www-form-urlencoded", &big);
    assert_eq!(status, 413, "{body}");
    // 10 MB chunked (no declared length): refused once 64 KiB have arrived.
    let mut s = TcpStream::connect(a).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("write");
    let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
    for _ in 0..160 {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // No report at all.
    let (status, _) = get(a, "/");
    assert_eq!(status, 400);

    let stats = rig.stats();
    let r = &stats.osmand.refused;
    assert_eq!(r.get("missing_device_id"), Some(&2), "{r:?}");
    assert_eq!(r.get("missing_position"), Some(&1), "{r:?}");
    // 91 and NaN.
    assert_eq!(r.get("latitude"), Some(&2), "{r:?}");
    assert_eq!(r.get("fix_future"), Some(&2), "{r:?}");
    assert_eq!(r.get("fix_past"), Some(&1), "{r:?}");
    assert_eq!(r.get("speed"), Some(&1), "{r:?}");
    assert_eq!(r.get("zero_position"), Some(&1), "{r:?}");
    assert_eq!(r.get("bad_parameter"), Some(&1), "{r:?}");
    assert_eq!(r.get("bad_json"), Some(&1), "{r:?}");
    assert_eq!(r.get("too_large"), Some(&2), "{r:?}");
    assert_eq!(r.values().sum::<u64>(), 14, "{r:?}");
    assert_eq!(stats.osmand.accepted, 0);
    assert!(rig.log_of("device.report").is_empty());

    // The phone's next, good position goes through.
    let (status, body) = get(a, &format!("/?id=d1&lat=10&lon=30&timestamp={t}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.is_empty(), "{body}");
    wait_until("d1 written", || rig.log_of("device.report").len() == 1);
}

#[test]
fn cot_tcp_and_udp_positions_reach_the_log_and_pings_are_answered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    rig.bind("tak-1", "u-07");

    let mut s = TcpStream::connect(rig.cot()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    // As pytak sends: declaration, newline, event; then a ping in the same write.
    let ping = format!(
        "<event version=\"2.0\" uid=\"ping-1\" type=\"t-x-c-t\" how=\"h-g-i-g-o\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"0\" lon=\"0\" hae=\"0\" ce=\"9999999\" le=\"9999999\"/><detail/></event>",
        t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let event = wintak_now("tak-1");
    s.write_all(format!("{event}\n{ping}").as_bytes())
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains("t-x-c-t-r") && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("type=\"t-x-c-t-r\""),
        "no pong in {:?}",
        String::from_utf8_lossy(&got)
    );
    wait_until("u-07 moved", || rig.unit_fix("u-07").is_some());
    let (lat, lon, _) = rig.unit_fix("u-07").expect("fix");
    assert_eq!((lat, lon), (43.97957317, -66.07737696));

    // Whitespace after the last event is not a truncated event.
    let mut tidy = TcpStream::connect(rig.cot()).expect("connect");
    tidy.write_all(format!("{}\r\n", wintak_now("tak-1")).as_bytes())
        .expect("write");
    finish(tidy);
    wait_until("the second report", || rig.stats().cot.accepted == 2);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rig.stats().cot.refused.get("truncated"), None);

    // UDP: one datagram, one event, an unbound device.
    let udp = UdpSocket::bind(any_port()).expect("udp");
    udp.send_to(wintak_now("tak-udp").as_bytes(), rig.cot())
        .expect("send");
    wait_until("a device.report from UDP", || {
        rig.log_of("device.report")
            .iter()
            .any(|b| b["report"]["device_id"] == "tak-udp")
    });
    let dr = rig
        .log_of("device.report")
        .into_iter()
        .find(|b| b["report"]["device_id"] == "tak-udp")
        .expect("report");
    assert_eq!(dr["report"]["source"], "cot");
    assert_eq!(dr["report"]["name"], "Eliopoli HQ");
    assert_eq!(rig.stats().cot.received, 3);
}

#[test]
fn cot_bad_input_is_refused_and_counted_and_never_stalls_a_good_client() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), Some(16));
    rig.bind("good", "u-02");
    let a = rig.cot();
    let t = Utc::now();
    let at = |d: chrono::Duration| (t + d).to_rfc3339_opts(SecondsFormat::Millis, true);
    let ev = |uid: &str, lat: &str, time: &str| {
        format!(
            "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G\" how=\"m-g\" time=\"{time}\" start=\"{time}\" stale=\"{time}\"><point lat=\"{lat}\" lon=\"10\" hae=\"0\" ce=\"5\" le=\"0\"/><detail/></event>"
        )
    };

    // A stalled client holding half an event, connected first.
    let mut stalled = TcpStream::connect(a).expect("connect");
    stalled
        .write_all(b"<event version=\"2.0\" uid=\"slow\" type=\"a-f-G\"")
        .expect("write");

    // Bad events on one connection.
    let mut bad = TcpStream::connect(a).expect("connect");
    let bad_events = [
        "<event uid=\"x\" type=\"a-f-G\"><point lat=\"1\"</event>".to_string(), // malformed
        ev("b1", "91", &at(chrono::Duration::zero())),                          // latitude 91
        ev("b2", "NaN", &at(chrono::Duration::zero())),                         // NaN
        ev("b3", "10", &at(chrono::Duration::days(365))),                       // a year ahead
    ];
    for e in &bad_events {
        bad.write_all(e.as_bytes()).expect("write");
    }
    // 10 MB of one never-ending event.
    let mut huge = TcpStream::connect(a).expect("connect");
    let flood = std::thread::spawn(move || {
        let _ = huge.write_all(b"<event uid=\"huge\" type=\"a-f-G\"><detail>");
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..160 {
            if huge.write_all(&chunk).is_err() {
                break;
            }
        }
    });

    // The good client is served meanwhile.
    let started = Instant::now();
    let mut good = TcpStream::connect(a).expect("connect");
    good.write_all(ev("good", "42.5", &at(chrono::Duration::zero())).as_bytes())
        .expect("write");
    wait_until("the good client's fix", || rig.unit_fix("u-02").is_some());
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = flood.join();

    wait_until("bad events counted", || {
        let r = rig.stats().cot.refused;
        // 91 and NaN; the 10 MB event once.
        r.get("latitude") == Some(&2)
            && r.get("fix_future") == Some(&1)
            && r.contains_key("too_long")
    });
    let r = rig.stats().cot.refused;
    assert_eq!(r.get("malformed_xml"), Some(&1), "{r:?}");
    assert_eq!(r.get("too_long"), Some(&1), "{r:?}");
    assert_eq!(rig.stats().cot.received, 1, "{r:?}");
    let truncated = |rig: &Rig| {
        rig.stats()
            .cot
            .refused
            .get("truncated")
            .copied()
            .unwrap_or(0)
    };
    let truncated_before = truncated(&rig);

    // A truncated stream: the connection ends inside an event.
    let mut cut = TcpStream::connect(a).expect("connect");
    cut.write_all(b"<event version=\"2.0\" uid=\"cut\" type=\"a-f-G\" time=")
        .expect("write");
    finish(cut);
    wait_until("truncated counted", || truncated(&rig) > truncated_before);

    // A flood of connections over the cap (16): the excess is closed and counted, and a
    // report still gets through once they are gone.
    // Left open: the stalled, the bad and the good client (the others are closed).
    wait_until("3 connections open", || {
        rig.stats().cot.connections_open == 3
    });
    let open_now = 3;
    let mut flood: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(a).expect("connect"))
        .collect();
    wait_until("connection_limit counted", || {
        rig.stats()
            .cot
            .refused
            .get("connection_limit")
            .copied()
            .unwrap_or(0)
            >= 40 - (16 - open_now)
    });
    assert!(rig.stats().cot.connections_open <= 16);
    flood.clear();
    drop((bad, good, stalled));
    wait_until("connections closed", || {
        rig.stats().cot.connections_open == 0
    });
    let mut again = TcpStream::connect(a).expect("connect");
    again
        .write_all(ev("good", "42.6", &at(chrono::Duration::seconds(1))).as_bytes())
        .expect("write");
    wait_until("the second fix", || {
        rig.unit_fix("u-02").is_some_and(|(lat, _, _)| lat == 42.6)
    });
}

#[test]
fn osmand_flood_of_connections_is_capped_and_idle_ones_never_block_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), Some(8));
    let a = rig.osmand();
    // A client that announces a body and never sends it does not hold up another one.
    let mut stalled = TcpStream::connect(a).expect("connect");
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"lo")
        .expect("write");
    let started = Instant::now();
    let (status, body) = get(a, &format!("/?id=quick&lat=1&lon=2&timestamp={}", now_s()));
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(stalled);
    wait_until("stalled closed", || {
        rig.stats().osmand.connections_open == 0
    });
    // Idle connections take every slot but one less than the cap.
    let idle: Vec<TcpStream> = (0..7).map(|_| TcpStream::connect(a).expect("c")).collect();
    wait_until("7 open", || rig.stats().osmand.connections_open == 7);
    // The flood: 30 more, of which at most one fits.
    let flood: Vec<TcpStream> = (0..30).map(|_| TcpStream::connect(a).expect("c")).collect();
    wait_until("refused at the cap", || {
        rig.stats()
            .osmand
            .refused
            .get("connection_limit")
            .copied()
            .unwrap_or(0)
            >= 29
    });
    drop(flood);
    drop(idle);
    wait_until("all closed", || rig.stats().osmand.connections_open == 0);
    let (status, body) = get(
        a,
        &format!("/?id=after-flood&lat=1&lon=2&timestamp={}", now_s()),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_tak_client_gets_the_picture_on_connect_and_then_the_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    rig.bind("phone-1", "u-03");
    let (status, _) = get(
        rig.osmand(),
        &format!(
            "/?id=phone-1&lat=39.82&lon=109.98&timestamp={}",
            now_s() - 5
        ),
    );
    assert_eq!(status, 200);
    wait_until("u-03 has a fix", || rig.unit_fix("u-03").is_some());
    let (incident, create) = rig.author.incident();
    let (status, body) = rig
        .client
        .push(&request(rig.author.origin, Lane::Critical, &[create]));
    assert_eq!(status, 200, "{body}");

    let s = TcpStream::connect(rig.cot()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(s);
    let mut read_until = |needle: &str| -> String {
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains(needle) && Instant::now() < deadline {
            let mut chunk = Vec::new();
            match r.read_until(b'>', &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
        assert!(seen.contains(needle), "no {needle} in {seen}");
        seen
    };
    let picture = read_until("outpost-incident-");
    assert!(picture.contains("uid=\"outpost-unit-u-03\""), "{picture}");
    assert!(picture.contains("lat=\"39.82\""), "{picture}");
    assert!(picture.contains("callsign=\"东胜u-03\""), "{picture}");

    // A change: the unit moves; the feed sends its new event.
    let (status, _) = get(
        rig.osmand(),
        &format!("/?id=phone-1&lat=39.83&lon=109.99&timestamp={}", now_s()),
    );
    assert_eq!(status, 200);
    let change = read_until("lat=\"39.83\"");
    assert!(change.contains("outpost-unit-u-03"), "{change}");

    // Closing the incident sends its event once more with stale = time: TAK drops it.
    let close = rig.author.op(OpBody::IncidentClose {
        incident_id: incident,
        disposition: outpost_domain::incident::Disposition::Resolved,
        summary: String::new(),
        releases: vec![],
    });
    let (status, body) = rig
        .client
        .push(&request(rig.author.origin, Lane::Critical, &[close]));
    assert_eq!(status, 200, "{body}");
    let closed = read_until("(closed)");
    let event = closed.rsplit("<event ").next().expect("the closing event");
    let attr = |name: &str| {
        event
            .split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        attr("uid"),
        format!("outpost-incident-{incident}"),
        "{event}"
    );
    assert_eq!(attr("time"), attr("stale"), "{event}");
    // Then the delete, as TAK servers send it: t-x-d-d linking the incident, forced.
    let delete = read_until("<__forcedelete/>");
    let delete = delete.rsplit("<event ").next().expect("the delete event");
    assert!(delete.contains("type=\"t-x-d-d\""), "{delete}");
    assert!(
        delete.contains(&format!(
            "<link uid=\"outpost-incident-{incident}\" relation=\"p-p\" type=\"b-m-p-s-m\"/>"
        )),
        "{delete}"
    );
    assert!(delete.contains("<__forcedelete/>"), "{delete}");
    // Counted once the write returned, which may be just after the client read it.
    wait_until("5 events counted", || rig.stats().feed.events_sent >= 5);
}

#[test]
fn pushed_fixes_far_ahead_of_the_server_clock_are_parked_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), None);
    let mut author = Author::new(9);
    let unit = author.unit("u-09");
    let (status, _) = rig
        .client
        .push(&request(author.origin, Lane::Critical, &[unit]));
    assert_eq!(status, 200);
    let mut ahead = author.position("u-09", 0);
    if let OpBody::PositionReport { fix, .. } = &mut ahead.body {
        fix.fix_time = Utc::now() + chrono::Duration::days(365);
    }
    // A console or laptop whose clock is hours off (SYNC.md S6: +27 h) is not refused
    // (principle 10); only a broken clock beyond two days is.
    let mut skewed = author.position("u-09", 1);
    if let OpBody::PositionReport { fix, .. } = &mut skewed.body {
        fix.fix_time = Utc::now() + chrono::Duration::hours(27);
    }
    let (status, body) =
        rig.client
            .push(&request(author.origin, Lane::Positions, &[ahead, skewed]));
    assert_eq!(status, 200, "{body}");
    let o = outcomes(&body);
    assert!(
        o[0].starts_with("parked: position.report: fix time")
            && o[0].contains("ahead of the server clock")
            && o[0].contains("more than two days"),
        "{o:?}"
    );
    assert!(o[1].starts_with("accepted"), "{o:?}");
}

#[test]
fn the_gateway_keeps_its_origin_and_lane_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let origin_file = dir.path().join("gateway-origin");
    let send = |rig: &Rig, n: usize| {
        for i in 0..n {
            let (status, _) = get(
                rig.osmand(),
                &format!("/?id=dev-{i}&lat=1&lon=2&timestamp={}", now_s()),
            );
            assert_eq!(status, 200);
        }
    };
    let rig = start_rig(dir.path(), None);
    send(&rig, 3);
    wait_until("3 written", || {
        rig.stats().gateway.device_reports_written == 3
    });
    let origin = std::fs::read_to_string(&origin_file).expect("origin file");
    rig.server.shutdown().expect("shutdown");

    let rig = start_rig(dir.path(), None);
    assert_eq!(std::fs::read_to_string(&origin_file).expect("file"), origin);
    std::thread::sleep(Duration::from_millis(10));
    send(&rig, 2);
    wait_until("2 more written", || {
        rig.stats().gateway.device_reports_written == 2
    });
    let page = rig.server.service().pull(0, Some(100)).expect("pull");
    let seqs: Vec<u64> = page
        .ops
        .iter()
        .filter(|o| o.op["origin"].as_str() == Some(origin.trim()))
        .map(|o| o.op["lane_seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert!(rig.server.service().parked().expect("parked").is_empty());
}

#[test]
fn idle_and_half_sent_connections_are_closed_and_counted_while_others_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig_idle(dir.path(), None, Some(Duration::from_millis(300)));
    rig.bind("busy", "u-04");
    // An idle HTTP connection and a CoT connection that sent half an event and stopped.
    let mut idle_http = TcpStream::connect(rig.osmand()).expect("connect");
    let mut half = TcpStream::connect(rig.cot()).expect("connect");
    half.write_all(b"<event version=\"2.0\" uid=\"half\" type=\"a-f-G\" time=\"")
        .expect("write");
    // Meanwhile another device is served.
    let (status, body) = get(
        rig.osmand(),
        &format!("/?id=busy&lat=5&lon=6&timestamp={}", now_s()),
    );
    assert_eq!(status, 200, "{body}");
    wait_until("closed and counted", || {
        let s = rig.stats();
        s.osmand.refused.get("idle_timeout") == Some(&1)
            && s.cot.refused.get("truncated") == Some(&1)
            && s.osmand.connections_open == 0
            && s.cot.connections_open == 0
    });
    // Both were closed by the server: reads end.
    idle_http
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    let mut buf = [0u8; 16];
    assert!(matches!(idle_http.read(&mut buf), Ok(0) | Err(_)));
    half.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut rest = Vec::new();
    let _ = half.read_to_end(&mut rest);
    assert!(rig.unit_fix("u-04").is_some());
}

#[test]
fn bad_udp_datagrams_are_refused_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), None);
    let udp = UdpSocket::bind(any_port()).expect("udp");
    let t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let year =
        (Utc::now() + chrono::Duration::days(365)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let ev = |lat: &str, time: &str| {
        format!(
            "<event version=\"2.0\" uid=\"u1\" type=\"a-f-G\" how=\"m-g\" time=\"{time}\" start=\"{time}\" stale=\"{time}\"><point lat=\"{lat}\" lon=\"1\" hae=\"0\" ce=\"5\" le=\"0\"/><detail/></event>"
        )
    };
    for d in [
        "<event uid=\"x\"><point lat=</event>".to_string(), // malformed
        ev("91", &t),
        ev("NaN", &t),
        ev("10", &year),
        ev("10", &t)[..60].to_string(), // truncated
    ] {
        udp.send_to(d.as_bytes(), rig.cot()).expect("send");
    }
    udp.send_to(ev("10.5", &t).as_bytes(), rig.cot())
        .expect("send");
    wait_until("all counted", || {
        let s = rig.stats().cot;
        s.received == 1 && s.refused.values().sum::<u64>() == 5
    });
    let r = rig.stats().cot.refused;
    assert_eq!(r.get("malformed_xml"), Some(&1), "{r:?}");
    assert_eq!(r.get("latitude"), Some(&2), "{r:?}");
    assert_eq!(r.get("fix_future"), Some(&1), "{r:?}");
    assert_eq!(r.get("truncated"), Some(&1), "{r:?}");
}

#[test]
fn unbound_devices_are_capped_and_a_device_bound_later_moves_its_unit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    let t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let ev = |uid: &str| {
        format!(
            "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G\" how=\"m-g\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"40\" lon=\"110\" hae=\"0\" ce=\"5\" le=\"0\"/><detail/></event>"
        )
    };
    let cap = outpost_server::ingest::MAX_UNBOUND_DEVICES;
    let mut stream = String::new();
    for i in 0..cap + 5 {
        stream.push_str(&ev(&format!("stray-{i}")));
    }
    let mut s = TcpStream::connect(rig.cot()).expect("connect");
    s.write_all(stream.as_bytes()).expect("write");
    finish(s);
    wait_until("cap reached", || {
        let st = rig.stats();
        st.gateway.device_reports_written == cap as u64
            && st.cot.refused.get("unbound_limit") == Some(&5)
    });

    // stray-0 is bound now: its next report moves the unit (the binding cache is reloaded
    // after the accepted device.bind).
    rig.bind("stray-0", "u-05");
    let t2 =
        (Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut s = TcpStream::connect(rig.cot()).expect("connect");
    s.write_all(ev("stray-0").replace(&t, &t2).as_bytes())
        .expect("write");
    finish(s);
    wait_until("u-05 moved", || rig.unit_fix("u-05").is_some());
    assert_eq!(rig.stats().gateway.positions_written, 1);
    let (lat, lon, _) = rig.unit_fix("u-05").expect("fix");
    assert_eq!((lat, lon), (40.0, 110.0));
}

/// The binary: `serve --osmand-listen --cot-listen` prints where each listener is, takes a
/// report and answers the counters; the gateway's origin file is in the data directory.
#[cfg(unix)]
#[test]
fn the_binary_serves_the_device_listeners_and_the_counters() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = crate::support::cert_init(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args([
            "--osmand-listen",
            "127.0.0.1:0",
            "--cot-listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut addrs = std::collections::BTreeMap::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let (what, addr) = line.split_once(" on ").expect("a listening line");
        addrs.insert(what.to_string(), addr.to_string());
        if what == "listening" {
            break;
        }
    }
    let osmand: SocketAddr = addrs["osmand listening"].parse().expect("osmand addr");
    assert!(
        addrs["cot listening"].parse::<SocketAddr>().is_ok(),
        "{addrs:?}"
    );
    let client = crate::support::signed_in_client(
        &addrs["listening"],
        &ca,
        dir.path(),
        "cmdr.li",
        uuid::Uuid::now_v7(),
    );
    let (status, body) = get(
        osmand,
        &format!("/?id=cli-1&lat=1&lon=2&timestamp={}", now_s()),
    );
    assert_eq!(status, 200, "{body}");
    let mut stats = IngestStatsView::default();
    wait_until("written", || {
        let (status, body) = client.get("/v1/ingest/stats");
        assert_eq!(status, 200);
        stats = serde_json::from_value(body).expect("stats");
        stats.gateway.device_reports_written == 1
    });
    assert_eq!(stats.osmand.received, 1);
    let origin = std::fs::read_to_string(dir.path().join("gateway-origin")).expect("origin");
    assert!(uuid::Uuid::parse_str(origin.trim()).is_ok(), "{origin}");
    // SIGTERM: a clean stop.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

/// A TCP connection to `to` from the loopback address `from` (Linux answers the whole of
/// 127.0.0.0/8), so tests can be two different clients.
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::from((from, 0))).expect("bind");
        sock.connect(to).await.expect("connect")
    });
    let s = s.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    s
}

/// One GET on `s` (keep-alive), its answer read: (status, body).
fn get_on(s: &mut TcpStream, target: &str) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                return (status, body.to_string());
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return (0, text),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// True when the server closed `s` (a read ends) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(100))).ok();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_flood_from_one_address_is_held_at_its_cap_while_another_address_is_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig_with(
        dir.path(),
        IngestConfig {
            max_connections_per_address: Some(4),
            ..IngestConfig::default()
        },
    );
    let (a, c) = (rig.osmand(), rig.cot());
    // A report accepted before the flood.
    let (status, body) = get(a, &format!("/?id=early&lat=1&lon=2&timestamp={}", now_s()));
    assert_eq!(status, 200, "{body}");
    wait_until("early written", || rig.log_of("device.report").len() == 1);

    // 127.0.0.1 takes its 4 slots on each listener and holds them, silent.
    let held: Vec<TcpStream> = (0..4)
        .flat_map(|_| {
            [
                connect_from([127, 0, 0, 1], a),
                connect_from([127, 0, 0, 1], c),
            ]
        })
        .collect();
    wait_until("4 + 4 open", || {
        let s = rig.stats();
        s.osmand.connections_open == 4 && s.cot.connections_open == 4
    });
    // The 5th from the same address is closed at once and counted, on both listeners.
    let mut fifth = connect_from([127, 0, 0, 1], a);
    assert!(closed_within(&mut fifth, Duration::from_secs(5)));
    let mut fifth_cot = connect_from([127, 0, 0, 1], c);
    assert!(closed_within(&mut fifth_cot, Duration::from_secs(5)));
    let s = rig.stats();
    assert_eq!(s.osmand.refused.get("address_limit"), Some(&1), "{s:?}");
    assert_eq!(s.cot.refused.get("address_limit"), Some(&1), "{s:?}");
    assert_eq!(s.osmand.connections_open, 4);

    // Another address is served meanwhile: a phone over OsmAnd, a TAK client over CoT.
    let mut phone = connect_from([127, 0, 0, 2], a);
    let (status, body) = get_on(
        &mut phone,
        &format!("/?id=other&lat=3&lon=4&timestamp={}", now_s()),
    );
    assert_eq!(status, 200, "{body}");
    let mut tak = connect_from([127, 0, 0, 2], c);
    tak.write_all(wintak_now("tak-other").as_bytes())
        .expect("write");
    finish(tak);
    wait_until("both written", || {
        let ids: Vec<String> = rig
            .log_of("device.report")
            .iter()
            .map(|b| b["report"]["device_id"].as_str().unwrap_or("").to_string())
            .collect();
        ids == ["early", "other", "tak-other"]
    });
    // Nothing the flood did touched what was already accepted.
    let s = rig.stats();
    assert_eq!(s.osmand.received, 2);
    assert_eq!(s.cot.received, 1);
    assert_eq!(s.gateway.device_reports_written, 3);
    drop(held);
}

#[test]
fn slow_headers_are_cut_at_the_deadline_and_keep_alive_expiry_is_not_a_refusal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let deadline = Duration::from_millis(600);
    let rig = start_rig_with(
        dir.path(),
        IngestConfig {
            header_timeout: Some(deadline),
            ..IngestConfig::default()
        },
    );
    let a = rig.osmand();
    // Slowloris: a request line, then one header line every 100 ms, never the blank line.
    let mut slow = TcpStream::connect(a).expect("connect");
    let started = Instant::now();
    slow.write_all(b"GET /?id=slow&lat=1&lon=2 HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    slow.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut closed_after = None;
    let mut buf = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"X-a: b\r\n").is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        match slow.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed_after = Some(started.elapsed());
                break;
            }
        }
    }
    let closed_after = closed_after.expect("the slow client was never closed");
    assert!(
        closed_after >= Duration::from_millis(500) && closed_after < Duration::from_secs(2),
        "{closed_after:?}"
    );
    wait_until("header_timeout counted", || {
        rig.stats().osmand.refused.get("header_timeout") == Some(&1)
    });

    // A phone's keep-alive connection: one report, answered, then nothing. Closed at the
    // deadline as a normal end: not a refusal.
    let mut phone = TcpStream::connect(a).expect("connect");
    let (status, body) = get_on(
        &mut phone,
        &format!("/?id=phone&lat=1&lon=2&timestamp={}", now_s()),
    );
    assert_eq!(status, 200, "{body}");
    assert!(closed_within(&mut phone, Duration::from_secs(5)));
    wait_until("idle_closed counted", || {
        rig.stats().osmand.idle_closed == 1
    });
    let s = rig.stats();
    assert_eq!(s.osmand.refused.values().sum::<u64>(), 1, "{s:?}");
    assert_eq!(s.osmand.received, 1);
    assert_eq!(s.osmand.connections_open, 0);
}

#[test]
fn a_silent_tak_client_is_closed_though_the_feed_writes_to_it_and_a_pinging_one_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idle = Duration::from_millis(800);
    let mut rig = start_rig_idle(dir.path(), None, Some(idle));
    rig.bind("mover", "u-06");
    let ping = |t: &str| {
        format!(
            "<event version=\"2.0\" uid=\"ping\" type=\"t-x-c-t\" how=\"h-g-i-g-o\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"0\" lon=\"0\" hae=\"0\" ce=\"9999999\" le=\"9999999\"/><detail/></event>"
        )
    };
    let mut silent = TcpStream::connect(rig.cot()).expect("connect");
    let mut talker = TcpStream::connect(rig.cot()).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_millis(50)))
        .ok();
    talker
        .set_read_timeout(Some(Duration::from_millis(50)))
        .ok();
    let started = Instant::now();
    let mut silent_got = String::new();
    let mut silent_closed = None;
    let mut buf = [0u8; 8192];
    let mut i = 0;
    // For 3 s (almost 4 idle periods): the unit moves every 100 ms, so the feed writes to
    // both clients every round; the talker pings every 200 ms, the silent one never sends.
    while started.elapsed() < Duration::from_secs(3) {
        i += 1;
        let (status, _) = get(
            rig.osmand(),
            &format!(
                "/?id=mover&lat={}&lon=110&timestamp={}",
                40.0 + f64::from(i) / 1000.0,
                now_s()
            ),
        );
        assert_eq!(status, 200);
        if i % 2 == 0 {
            let t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            talker
                .write_all(ping(&t).as_bytes())
                .expect("the pinging client stays connected");
        }
        let _ = talker.read(&mut buf);
        if silent_closed.is_none() {
            match silent.read(&mut buf) {
                Ok(0) => silent_closed = Some(started.elapsed()),
                Ok(n) => silent_got.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => silent_closed = Some(started.elapsed()),
            }
        }
    }
    // The feed did write to the silent client (the unit's moves), and it was closed anyway,
    // about one idle period after it connected.
    assert!(silent_got.contains("outpost-unit-u-06"), "{silent_got}");
    let closed = silent_closed.expect("the silent client was never closed");
    assert!(closed < Duration::from_millis(2_000), "{closed:?}");
    let s = rig.stats();
    assert_eq!(s.cot.refused.get("idle_timeout"), Some(&1), "{s:?}");
    assert_eq!(
        s.cot.connections_open, 1,
        "the pinging client is still there"
    );
    talker
        .write_all(ping(&Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)).as_bytes())
        .expect("still open");
}

#[test]
fn two_thousand_devices_each_on_its_own_connection_fit_under_the_default_caps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), None);
    let (a, c) = (rig.osmand(), rig.cot());
    // 2,000 phones and 2,000 TAK clients from 40 addresses (50 each: under the default 64 per
    // address), all connected at once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conns: Vec<TcpStream> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..2_000u32 {
            let from = [127, 0, 1, u8::try_from(10 + i % 40).expect("small")];
            for to in [a, c] {
                let sock = tokio::net::TcpSocket::new_v4().expect("socket");
                sock.bind(SocketAddr::from((from, 0))).expect("bind");
                let s = sock.connect(to).await.expect("connect");
                out.push(s.into_std().expect("std"));
            }
        }
        out
    });
    wait_until("2,000 + 2,000 open", || {
        let s = rig.stats();
        s.osmand.connections_open == 2_000 && s.cot.connections_open == 2_000
    });
    let s = rig.stats();
    assert!(s.osmand.refused.is_empty(), "{s:?}");
    assert!(s.cot.refused.is_empty(), "{s:?}");
    // Any of them reports.
    let mut phone = conns[2 * 1_999].try_clone().expect("clone");
    phone.set_nonblocking(false).expect("blocking");
    let (status, body) = get_on(
        &mut phone,
        &format!("/?id=last&lat=1&lon=2&timestamp={}", now_s()),
    );
    assert_eq!(status, 200, "{body}");
    drop(conns);
}

/// A CoT position event of `uid` at `fix` (its `time`), latitude varied by `k`.
fn cot_at(uid: &str, fix: chrono::DateTime<Utc>, k: u32) -> String {
    let t = fix.to_rfc3339_opts(SecondsFormat::Millis, true);
    format!(
        "<event version=\"2.0\" uid=\"{uid}\" type=\"a-f-G-U-C\" how=\"m-g\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"{lat:.6}\" lon=\"109.95\" hae=\"0\" ce=\"5\" le=\"0\"/><detail/></event>",
        lat = 39.8 + f64::from(k) * 1e-5
    )
}

/// Sends `text` on one CoT TCP stream and closes it once the server has read everything.
fn cot_send(addr: SocketAddr, text: &str) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(text.as_bytes()).expect("write");
    finish(s);
}

/// Every report the CoT listener queued has reached an end in the gateway.
fn cot_settled(s: &IngestStatsView) -> bool {
    s.cot.received == s.cot.accepted + s.cot.duplicate + s.cot.throttled
}

/// Review F3: a flood of one identical valid event of a bound device (TCP or UDP) is written
/// once; the copies are dropped and counted `duplicate`, not written as ops.
#[test]
fn a_flood_of_one_identical_report_of_a_bound_device_is_written_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    rig.bind("tak-flood", "u-01");
    let one = cot_at("tak-flood", Utc::now(), 0);
    cot_send(rig.cot(), &one.repeat(10_000));
    wait_until("10,000 received and settled", || {
        let s = rig.stats();
        s.cot.received == 10_000 && cot_settled(&s)
    });
    let s = rig.stats();
    assert_eq!(s.cot.accepted, 1, "{s:?}");
    assert_eq!(s.cot.duplicate, 9_999, "{s:?}");
    assert_eq!(s.cot.throttled, 0, "{s:?}");
    assert_eq!(s.gateway.positions_written, 1, "{s:?}");
    assert_eq!(rig.log_of("position.report").len(), 1);

    // The same over UDP (no connection to close): still nothing more is written.
    let udp = UdpSocket::bind(any_port()).expect("udp");
    for i in 0..500 {
        udp.send_to(one.as_bytes(), rig.cot()).expect("send");
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    wait_until("UDP copies settled", || {
        let s = rig.stats();
        s.cot.received > 10_000 && cot_settled(&s)
    });
    let s = rig.stats();
    assert_eq!(s.cot.accepted, 1, "{s:?}");
    assert_eq!(s.cot.duplicate, s.cot.received - 1, "{s:?}");
    assert_eq!(rig.log_of("position.report").len(), 1);
}

/// Review F3: a bound device is held to 5 reports a second (more are `throttled`); a late
/// older fix that was not written before still is (it joins the track), a resent written one
/// is a `duplicate`.
#[test]
fn a_bound_device_is_held_to_five_reports_a_second_and_a_late_older_fix_is_still_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    rig.bind("tak-fast", "u-02");
    let base = Utc::now() - chrono::Duration::seconds(60);
    // 100 distinct fixes, 10 ms apart, sent at once.
    let text: String = (0..100u32)
        .map(|k| {
            cot_at(
                "tak-fast",
                base + chrono::Duration::milliseconds(10 * i64::from(k)),
                k,
            )
        })
        .collect();
    cot_send(rig.cot(), &text);
    wait_until("100 received and settled", || {
        let s = rig.stats();
        s.cot.received == 100 && cot_settled(&s)
    });
    let s = rig.stats();
    assert!((5..=10).contains(&s.cot.accepted), "{s:?}");
    assert_eq!(s.cot.accepted + s.cot.throttled, 100, "{s:?}");
    assert_eq!(s.cot.duplicate, 0, "{s:?}");
    let written = rig.log_of("position.report").len() as u64;
    assert_eq!(written, s.cot.accepted);

    // A second later: an older fix (before every one written) and a copy of the first.
    std::thread::sleep(Duration::from_millis(1_100));
    let late = cot_at("tak-fast", base - chrono::Duration::seconds(5), 500);
    let again = cot_at("tak-fast", base, 0);
    cot_send(rig.cot(), &format!("{late}{again}"));
    wait_until("102 received and settled", || {
        let s = rig.stats();
        s.cot.received == 102 && cot_settled(&s)
    });
    let s = rig.stats();
    assert_eq!(s.cot.duplicate, 1, "{s:?}");
    let log = rig.log_of("position.report");
    assert_eq!(log.len() as u64, written + 1);
    let last = log.last().expect("the late fix");
    assert_eq!(last["fix"]["position"]["lat"], 39.805);
    // The marker stays on the newest fix.
    let (_, _, t) = rig.unit_fix("u-02").expect("fix");
    assert!(t > base.timestamp_millis() - 1, "{t}");
}

/// Review F5: a TAK client's housekeeping (pytak's `t-x-d-d` hello, GeoChat `b-t-f`, our own
/// unit echoed back) is counted `ignored`, not refused; a marker a person placed by hand
/// (`a-*`, how `h-g-i-g-o`) is still refused `not_position`.
#[test]
fn tak_housekeeping_is_ignored_and_a_hand_placed_marker_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), None);
    let t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let ev = |uid: &str, ty: &str, how: &str, point: bool| {
        format!(
            "<?xml version=\"1.0\"?>\n<event version=\"2.0\" uid=\"{uid}\" type=\"{ty}\" how=\"{how}\" time=\"{t}\" start=\"{t}\" stale=\"{t}\">{}<detail/></event>",
            if point {
                "<point lat=\"39.8\" lon=\"109.9\" hae=\"0\" ce=\"5\" le=\"0\"/>"
            } else {
                ""
            }
        )
    };
    let text = [
        ev("takPing", "t-x-d-d", "m-g", true),
        ev("takPing-2", "t-x-d-d", "m-g", false),
        ev("GeoChat.x.All Chat Rooms.1", "b-t-f", "h-g-i-g-o", true),
        ev("outpost-unit-u-09", "a-f-G-U-C", "m-g", true),
        ev("marker-1", "a-h-G", "h-g-i-g-o", true),
    ]
    .concat();
    cot_send(rig.cot(), &text);
    wait_until("all counted", || {
        let s = rig.stats().cot;
        s.ignored + s.refused.values().sum::<u64>() == 5
    });
    let s = rig.stats().cot;
    assert_eq!(s.ignored, 4, "{s:?}");
    assert_eq!(s.refused.get("not_position"), Some(&1), "{s:?}");
    assert_eq!(s.refused.len(), 1, "{s:?}");
    assert_eq!(s.received, 0, "{s:?}");
}

/// Review F7: bytes on the CoT port that are not an event are counted (`not_cot`; TAK
/// protocol-1 protobuf `tak_protobuf`), over UDP and TCP, and the events around them are
/// still taken.
#[test]
fn input_that_is_not_cot_is_counted_over_udp_and_tcp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = start_rig(dir.path(), None);
    rig.bind("tak-g", "u-03");
    let udp = UdpSocket::bind(any_port()).expect("udp");
    let mut proto = vec![0xbf, 0x01, 0xbf, 0x12, 0x2a, 0x0a, 0x05];
    proto.extend_from_slice(b"a-f-G");
    let bytes: Vec<u8> = (0..=255u8).collect();
    for d in [&b"hello world"[..], b"", &proto, &bytes] {
        udp.send_to(d, rig.cot()).expect("send");
    }
    wait_until("4 datagrams counted", || {
        rig.stats().cot.refused.values().sum::<u64>() == 4
    });
    let r = rig.stats().cot.refused;
    assert_eq!(r.get("not_cot"), Some(&3), "{r:?}");
    assert_eq!(r.get("tak_protobuf"), Some(&1), "{r:?}");

    // TCP: garbage between two good events, then protobuf on another connection.
    let now = Utc::now();
    let a = cot_at("tak-g", now - chrono::Duration::seconds(2), 1);
    let b = cot_at("tak-g", now - chrono::Duration::seconds(1), 2);
    cot_send(rig.cot(), &format!("{a}\n10 lines of text\nmore\n{b}\n"));
    let mut s = TcpStream::connect(rig.cot()).expect("connect");
    s.write_all(&proto).expect("write");
    finish(s);
    wait_until("counted", || {
        let s = rig.stats().cot;
        s.received == 2 && s.refused.values().sum::<u64>() == 6
    });
    let r = rig.stats().cot.refused;
    assert_eq!(r.get("not_cot"), Some(&4), "{r:?}");
    assert_eq!(r.get("tak_protobuf"), Some(&2), "{r:?}");
    wait_until("both written", || rig.log_of("position.report").len() == 2);
}

/// Review F6: OsmAnd's 200 means "received and checked"; the gateway decides afterwards
/// (the unbound-device cap, the rates) and counts it: `received` counts the 200s,
/// `accepted` only what was written, so `accepted` + the refusals never exceed the requests.
#[test]
fn osmand_200_means_received_and_accepted_counts_only_what_was_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rig = start_rig(dir.path(), None);
    let cap = outpost_server::ingest::MAX_UNBOUND_DEVICES;
    let requests = cap + 10;
    let mut s = TcpStream::connect(rig.osmand()).expect("connect");
    let t = now_s();
    for i in 0..requests {
        let (status, body) = get_on(&mut s, &format!("/?id=flood{i}&lat=1&lon=1&timestamp={t}"));
        assert_eq!((status, body.as_str()), (200, ""), "request {i}");
    }
    // One device again within 5 s: 200, then throttled.
    let (status, _) = get_on(
        &mut s,
        &format!("/?id=flood0&lat=1&lon=1&timestamp={}", t - 1),
    );
    assert_eq!(status, 200);
    drop(s);
    let requests = requests as u64 + 1;
    wait_until("every report decided", || {
        let o = rig.stats().osmand;
        o.accepted + o.throttled + o.refused.values().sum::<u64>() == requests
    });
    let o = rig.stats().osmand;
    assert_eq!(o.received, requests, "{o:?}");
    assert_eq!(o.accepted, cap as u64, "{o:?}");
    assert_eq!(o.refused.get("unbound_limit"), Some(&10), "{o:?}");
    assert_eq!(o.throttled, 1, "{o:?}");
    assert!(
        o.accepted + o.refused.values().sum::<u64>() <= requests,
        "{o:?}"
    );
    assert_eq!(rig.stats().gateway.device_reports_written, cap as u64);
}
