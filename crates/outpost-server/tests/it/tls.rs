//! TLS and the agency PKI (issue 6): `cert init`, the sync port over TLS (trusted CA,
//! foreign CA, device certificates of another CA, expired ones, plain HTTP on the TLS port),
//! the [`PeerDevice`] a verified client certificate becomes, the OsmAnd device token and
//! HTTPS, and CoT over TLS with a required device certificate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use outpost_server::ingest::{DeviceTokenCheck, IngestConfig};
use outpost_server::security::pki::{self, Pki};
use outpost_server::security::tls::{self as stls, ClientAuth, DeviceCertCheck, PeerDevice};
use outpost_server::{RunningServer, Server, ServerConfig};
use outpost_sync::tls::client_config;

use crate::support::Client;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// `cert init` for 127.0.0.1 and localhost in `dir`, loaded back.
fn init(dir: &Path) -> Pki {
    pki::cert_init(dir, &["127.0.0.1".into(), "localhost".into()]).expect("cert init");
    Pki::load(dir).expect("load pki")
}

/// A new device key and its certificate signed by `pki` for `device_id` (cert PEM, key PEM).
fn device(pki: &Pki, device_id: &str) -> (String, String) {
    let (csr, key) = csr();
    let signed = pki.sign_device_csr(&csr, device_id, 30).expect("sign");
    (signed.cert_pem, key)
}

/// A certificate signing request PEM and its key PEM, as a console makes them.
fn csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .expect("params")
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("csr pem");
    (csr, key.serialize_pem())
}

fn start_tls(dir: &Path) -> RunningServer {
    Server::start(ServerConfig::new(dir, any_port())).expect("start TLS server")
}

fn https(server: &RunningServer, ca: &str, identity: Option<(&str, &str)>) -> Client {
    Client::with_tls(
        server.url(),
        client_config(ca, identity).expect("client config"),
    )
}

/// A GET that may fail at the TLS layer: its status, or `Err(message)`.
fn try_get(c: &Client, path: &str) -> Result<u16, String> {
    c.try_status(path)
}

#[test]
fn cert_init_writes_the_ca_and_server_files_with_private_keys_0600_and_never_overwrites_a_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args([
            "cert",
            "init",
            "--name",
            "outpost.example",
            "--name",
            "10.1.2.3",
            "--data",
        ])
        .arg(&data)
        .output()
        .expect("run cert init");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tls = data.join("tls");
    for f in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(
            stdout.contains(&format!("wrote {}", tls.join(f).display())),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("server certificate for outpost.example, 10.1.2.3"),
        "{stdout}"
    );
    // The printed fingerprint is the SHA-256 of the CA certificate written.
    let pki = Pki::load(&data).expect("load");
    let fp = pki.ca_fingerprint();
    assert_eq!(fp.len(), 32 * 3 - 1);
    assert!(
        stdout.contains(&format!("CA fingerprint (SHA-256): {fp}")),
        "{stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(tls.join(f))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("ca.key"), 0o600);
        assert_eq!(mode("server.key"), 0o600);
        assert_eq!(mode("ca.pem"), 0o644);
    }
    // The CA and server certificate read back with their names and lifetimes.
    let der = pki::first_cert_der(pki.ca_pem(), Path::new("ca.pem")).expect("ca der");
    let (_, ca) = x509_parser::parse_x509_certificate(&der).expect("ca parses");
    let cn = |c: &x509_parser::certificate::X509Certificate<'_>| {
        c.subject()
            .iter_common_name()
            .next()
            .and_then(|n| n.as_str().ok())
            .map(str::to_string)
    };
    assert_eq!(cn(&ca).as_deref(), Some("Outpost agency CA"));
    assert!(ca.is_ca());
    let ca_days =
        (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()) / 86_400;
    assert_eq!(
        ca_days, 3_652,
        "10 years (+ the hour of backdating, rounded down)"
    );
    let der = pki::first_cert_der(pki.server_cert_pem(), Path::new("server.pem")).expect("der");
    let (_, server) = x509_parser::parse_x509_certificate(&der).expect("server parses");
    assert_eq!(cn(&server).as_deref(), Some("outpost.example"));
    let days = (server.validity().not_after.timestamp() - server.validity().not_before.timestamp())
        / 86_400;
    assert_eq!(days, 825);
    let sans = server
        .subject_alternative_name()
        .expect("san ext")
        .expect("san present")
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>();
    assert_eq!(sans.len(), 2, "{sans:?}");

    let ca_before = std::fs::read(tls.join("ca.pem")).expect("read");
    let again = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["cert", "init", "--name", "other.example", "--data"])
        .arg(&data)
        .output()
        .expect("run cert init again");
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ca.") && err.contains("an agency CA already exists"),
        "{err}"
    );
    assert_eq!(std::fs::read(tls.join("ca.pem")).expect("read"), ca_before);
}

#[test]
fn the_tls_server_refuses_to_start_without_certificates_and_says_how_to_make_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let e = Server::start(ServerConfig::new(dir.path(), any_port())).expect_err("no tls dir");
    let msg = e.to_string();
    assert!(
        msg.contains("run `outpost-server cert init --data DIR --name HOST` first"),
        "{msg}"
    );
    assert!(
        !dir.path().join("security.db").exists(),
        "nothing is created before the check"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cert init"), "{err}");
}

#[test]
fn a_client_trusting_the_agency_ca_reaches_health_over_tls_and_others_do_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let server = start_tls(dir.path());
    assert!(server.url().starts_with("https://127.0.0.1:"));

    let (status, body) = https(&server, pki.ca_pem(), None).get("/v1/health");
    assert_eq!(status, 200, "{body}");

    // A client trusting another agency's CA refuses the server's certificate.
    let other = tempfile::tempdir().expect("temp dir");
    let other_pki = init(other.path());
    let foreign = https(&server, other_pki.ca_pem(), None);
    assert!(try_get(&foreign, "/v1/health").is_err());

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = Client::new(format!("http://{}", server.local_addr()));
    assert!(try_get(&plain, "/v1/health").is_err());
    let mut raw = TcpStream::connect(server.local_addr()).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(20))).ok();
    raw.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1 200"),
        "{got:?}"
    );

    // The server still serves after those.
    let (status, _) = https(&server, pki.ca_pem(), None).get("/v1/health");
    assert_eq!(status, 200);
    server.shutdown().expect("shutdown");
}

#[test]
fn device_certificates_of_another_ca_or_expired_fail_the_handshake_and_a_valid_one_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let server = start_tls(dir.path());

    let (cert, key) = device(&pki, "dev-ok");
    let good = https(&server, pki.ca_pem(), Some((&cert, &key)));
    assert_eq!(try_get(&good, "/v1/health"), Ok(200));

    let other = tempfile::tempdir().expect("temp dir");
    let other_pki = init(other.path());
    let (cert, key) = device(&other_pki, "dev-foreign");
    let foreign = https(&server, pki.ca_pem(), Some((&cert, &key)));
    assert!(try_get(&foreign, "/v1/health").is_err());

    let (csr, key) = csr();
    let now = time::OffsetDateTime::now_utc();
    let expired = pki
        .sign_device_csr_between(
            &csr,
            "dev-expired",
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .expect("sign expired");
    let c = https(&server, pki.ca_pem(), Some((&expired.cert_pem, &key)));
    assert!(try_get(&c, "/v1/health").is_err());
    server.shutdown().expect("shutdown");
}

#[test]
fn a_csr_that_does_not_parse_or_whose_signature_fails_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let e = pki
        .sign_device_csr("not a csr", "dev-1", 30)
        .expect_err("garbage");
    assert_eq!(
        e.to_string(),
        "certificate signing request: not a PEM PKCS#10 certificate signing request"
    );
    // The last byte of the public key changed: the request parses, its signature fails.
    let (csr, _) = csr();
    let der = csr_der(&csr);
    let (_, parsed) =
        <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<
            '_,
            x509_parser::error::X509Error,
        >>::from_der(&der)
        .expect("csr parses");
    let key = parsed
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    let at = der
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .expect("key in the request")
        + key.len()
        - 1;
    let mut tampered = der.clone();
    tampered[at] ^= 0x01;
    let tampered_pem = to_pem("CERTIFICATE REQUEST", &tampered);
    let e = pki
        .sign_device_csr(&tampered_pem, "dev-1", 30)
        .expect_err("tampered");
    let msg = e.to_string();
    assert_eq!(
        msg,
        "certificate signing request: its signature does not verify (the request was altered \
         or is not signed by the key it carries)"
    );
    let e = pki.sign_device_csr(&csr, "bad id", 30).expect_err("id");
    assert!(e.to_string().contains("device id \"bad id\""), "{e}");

    // A good one: CN = device id, client-auth EKU, the serial reported, the expiry asked.
    let signed = pki.sign_device_csr(&csr, "dev-0042", 30).expect("sign");
    let der = pem_body(&signed.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parses");
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|n| n.as_str().ok()),
        Some("dev-0042")
    );
    assert_eq!(hex_of(cert.raw_serial()), signed.serial_hex);
    let eku = cert
        .extended_key_usage()
        .expect("eku ext")
        .expect("eku present")
        .value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(
        cert.validity().not_after.timestamp(),
        signed.not_after.unix_timestamp()
    );
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pem_body(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("certificate pem")
        .to_vec()
}

fn csr_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .expect("csr pem")
        .as_ref()
        .to_vec()
}

fn to_pem(tag: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    let body = out
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    format!("-----BEGIN {tag}-----\n{body}\n-----END {tag}-----\n")
}

#[test]
fn a_verified_client_certificate_becomes_the_peer_device_of_each_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let config = stls::server_config(&pki, ClientAuth::Optional).expect("config");
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|req: axum::extract::Request| async move {
            match req.extensions().get::<PeerDevice>() {
                Some(p) => format!("{} {}", p.device_id, p.serial_hex),
                None => "anonymous".to_string(),
            }
        }),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (listener, addr) = runtime.block_on(async {
        let l = tokio::net::TcpListener::bind(any_port())
            .await
            .expect("bind");
        let a = l.local_addr().expect("addr");
        (l, a)
    });
    let served = runtime.spawn(stls::serve_https(listener, config, app, stop_rx));

    let (csr, key) = csr();
    let signed = pki.sign_device_csr(&csr, "dev-7f3a", 30).expect("sign");
    let text = |identity: Option<(&str, &str)>| {
        let c = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(client_config(pki.ca_pem(), identity).expect("config"))
            .build()
            .expect("client");
        // Two requests on one connection: both carry the device.
        (0..2)
            .map(|_| {
                c.get(format!("https://127.0.0.1:{}/whoami", addr.port()))
                    .send()
                    .expect("GET")
                    .text()
                    .expect("text")
            })
            .collect::<Vec<_>>()
    };
    let with = text(Some((&signed.cert_pem, &key)));
    let expected = format!("dev-7f3a {}", signed.serial_hex);
    assert_eq!(with, [expected.clone(), expected]);
    assert_eq!(signed.serial_hex.len(), 32);
    assert_eq!(text(None), ["anonymous", "anonymous"]);

    stop_tx.send(true).expect("stop");
    runtime
        .block_on(served)
        .expect("join")
        .expect("served cleanly");
}

/// Tokens as the security store would answer: one device, one token.
#[derive(Debug)]
struct FixedTokens;

impl DeviceTokenCheck for FixedTokens {
    fn check(&self, device_id: &str, token: &str) -> bool {
        device_id == "phone-1" && token == "s3cret-token"
    }
}

fn now_s() -> i64 {
    Utc::now().timestamp()
}

#[test]
fn osmand_with_tokens_required_refuses_a_missing_or_wrong_token_with_401_and_counts_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let mut config = ServerConfig::new(dir.path(), any_port()).with_ingest(IngestConfig {
        osmand_listen: Some(any_port()),
        osmand_require_token: true,
        osmand_tls: true,
        ..IngestConfig::default()
    });
    config.device_tokens = Some(Arc::new(FixedTokens));
    let server = Server::start(config).expect("start");
    let osmand = server.osmand_addr().expect("osmand");
    let c = Client::with_tls(
        format!("https://127.0.0.1:{}", osmand.port()),
        client_config(pki.ca_pem(), None).expect("config"),
    );
    let stats = server.ingest_stats().clone();
    let q = |extra: &str| format!("/?id=phone-1&lat=42.5&lon=1.5&timestamp={}{extra}", now_s());

    assert_eq!(try_get(&c, &q("")), Ok(401));
    assert_eq!(stats.osmand.refused_count("token"), 1);
    assert_eq!(try_get(&c, &q("&token=wrong")), Ok(401));
    assert_eq!(stats.osmand.refused_count("token"), 2);
    // The right token of another device is still wrong for this one.
    let other = format!(
        "/?id=phone-2&lat=42.5&lon=1.5&timestamp={}&token=s3cret-token",
        now_s()
    );
    assert_eq!(try_get(&c, &other), Ok(401));
    assert_eq!(stats.osmand.refused_count("token"), 3);
    assert_eq!(try_get(&c, &q("&token=s3cret-token")), Ok(200));
    assert_eq!(stats.osmand.refused_count("token"), 3);

    // JSON (Traccar Client) with the token in the body.
    let http = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(pki.ca_pem(), None).expect("config"))
        .build()
        .expect("client");
    let body = |token: &str| {
        serde_json::json!({
            "device_id": "phone-1",
            "token": token,
            "location": {
                "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                "coords": {"latitude": 42.51, "longitude": 1.52}
            }
        })
    };
    let post = |token: &str| {
        http.post(format!("https://127.0.0.1:{}/", osmand.port()))
            .json(&body(token))
            .send()
            .expect("POST")
            .status()
            .as_u16()
    };
    assert_eq!(post("nope"), 401);
    assert_eq!(post("s3cret-token"), 200);
    assert_eq!(stats.osmand.refused_count("token"), 4);

    // Plain HTTP on the HTTPS OsmAnd port: no answer, counted as a failed handshake.
    let plain = Client::new(format!("http://{osmand}"));
    assert!(try_get(&plain, &q("&token=s3cret-token")).is_err());
    server.shutdown().expect("shutdown");
}

/// Device certificate check as the security store would answer: these device ids revoked.
#[derive(Debug)]
struct RevokedList(Vec<String>);

impl DeviceCertCheck for RevokedList {
    fn check(&self, peer: &PeerDevice) -> Result<(), String> {
        if self.0.contains(&peer.device_id) {
            Err(format!("device {} revoked", peer.device_id))
        } else {
            Ok(())
        }
    }
}

fn ping() -> String {
    format!(
        "<event version=\"2.0\" uid=\"ping-1\" type=\"t-x-c-t\" how=\"h-g-i-g-o\" time=\"{t}\" start=\"{t}\" stale=\"{t}\"><point lat=\"0\" lon=\"0\" hae=\"0\" ce=\"9999999\" le=\"9999999\"/><detail/></event>",
        t = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

/// Connects to the CoT TLS port with `identity`, sends a ping and reads until the pong or
/// the end: Ok(what was read) or Err(the TLS error).
fn cot_ping(addr: SocketAddr, ca: &str, identity: Option<(&str, &str)>) -> Result<String, String> {
    let config = Arc::new(client_config(ca, identity).expect("config"));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(ping().as_bytes())
        .map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("t-x-c-t-r") {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn cot_over_tls_answers_an_agency_device_and_refuses_a_client_without_a_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let mut config = ServerConfig::new(dir.path(), any_port()).with_ingest(IngestConfig {
        cot_listen: Some(any_port()),
        cot_tls: true,
        ..IngestConfig::default()
    });
    config.device_certs = Some(Arc::new(RevokedList(vec!["tak-revoked".into()])));
    let server = Server::start(config).expect("start");
    let cot = server.cot_addr().expect("cot");
    let (cert, key) = device(&pki, "tak-1");
    let got = cot_ping(cot, pki.ca_pem(), Some((&cert, &key))).expect("an agency device");
    assert!(got.contains("type=\"t-x-c-t-r\""), "{got}");

    let refused = cot_ping(cot, pki.ca_pem(), None);
    assert!(
        !refused.as_ref().is_ok_and(|got| got.contains("t-x-c-t-r")),
        "{refused:?}"
    );
    let other = tempfile::tempdir().expect("temp dir");
    let other_pki = init(other.path());
    let (cert, key) = device(&other_pki, "tak-2");
    let foreign = cot_ping(cot, pki.ca_pem(), Some((&cert, &key)));
    assert!(
        !foreign.as_ref().is_ok_and(|got| got.contains("t-x-c-t-r")),
        "{foreign:?}"
    );
    // Both refusals are counted once the server has dropped them.
    let stats = server.ingest_stats().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.cot.refused_count("tls_handshake") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stats.cot.refused_count("tls_handshake"), 2);

    // A certificate of the agency whose device was revoked: the check refuses it.
    let (cert, key) = device(&pki, "tak-revoked");
    let revoked = cot_ping(cot, pki.ca_pem(), Some((&cert, &key)));
    assert!(
        !revoked.as_ref().is_ok_and(|got| got.contains("t-x-c-t-r")),
        "{revoked:?}"
    );
    assert_eq!(stats.cot.refused_count("device_refused"), 1);
    server.shutdown().expect("shutdown");
}

#[test]
fn cert_device_issues_a_tak_client_certificate_that_cot_tls_accepts_until_the_device_is_revoked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let pki = init(&data);
    let out = dir.path().join("tak");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_outpost-server"))
            .args(args)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("run outpost-server")
    };
    let issued = run(&[
        "cert",
        "device",
        "--id",
        "ANDROID-589520cc",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&issued.stdout);
    assert!(
        issued.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    assert!(
        stdout.contains("device ANDROID-589520cc: certificate serial "),
        "{stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("ANDROID-589520cc.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cert = std::fs::read_to_string(out.join("ANDROID-589520cc.pem")).expect("cert");
    let key = std::fs::read_to_string(out.join("ANDROID-589520cc.key")).expect("key");
    assert_eq!(
        std::fs::read_to_string(out.join("ca.pem")).expect("ca"),
        pki.ca_pem()
    );
    // Issuing the same id again does not overwrite the files.
    let again = run(&[
        "cert",
        "device",
        "--id",
        "ANDROID-589520cc",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(again.status.code(), Some(1));

    // The server's own device check (security.db): the issued device is let in...
    let server = Server::start(
        ServerConfig::new(&data, any_port()).with_ingest(IngestConfig {
            cot_listen: Some(any_port()),
            cot_tls: true,
            ..IngestConfig::default()
        }),
    )
    .expect("start");
    let cot = server.cot_addr().expect("cot");
    let got = cot_ping(cot, pki.ca_pem(), Some((&cert, &key))).expect("issued device");
    assert!(got.contains("type=\"t-x-c-t-r\""), "{got}");
    // ...a certificate of the agency CA for a device never recorded is not...
    let (other_cert, other_key) = device(&pki, "never-recorded");
    let unknown = cot_ping(cot, pki.ca_pem(), Some((&other_cert, &other_key)));
    assert!(
        !unknown.as_ref().is_ok_and(|g| g.contains("t-x-c-t-r")),
        "{unknown:?}"
    );
    // ...and once revoked, neither is the issued one.
    let revoked = run(&["device", "revoke", "ANDROID-589520cc", "--reason", "lost"]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let after = cot_ping(cot, pki.ca_pem(), Some((&cert, &key)));
    assert!(
        !after.as_ref().is_ok_and(|g| g.contains("t-x-c-t-r")),
        "{after:?}"
    );
    let stats = server.ingest_stats().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.cot.refused_count("device_refused") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stats.cot.refused_count("device_refused"), 2);
    server.shutdown().expect("shutdown");
}

#[test]
fn osmand_tokens_issued_by_device_token_are_the_ones_the_listener_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    init(dir.path());
    let issued = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["device", "token", "phone-9", "--data"])
        .arg(dir.path())
        .output()
        .expect("device token");
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let token = String::from_utf8_lossy(&issued.stdout).trim().to_string();
    assert!(token.len() >= 20, "{token:?}");
    // No device_tokens given: the server's own store (security.db) answers.
    let server = Server::start(ServerConfig::new(dir.path(), any_port()).with_ingest(
        IngestConfig {
            osmand_listen: Some(any_port()),
            osmand_require_token: true,
            ..IngestConfig::default()
        },
    ))
    .expect("start");
    let c = Client::new(format!("http://{}", server.osmand_addr().expect("osmand")));
    let q = |t: &str| {
        format!(
            "/?id=phone-9&lat=42.5&lon=1.5&timestamp={}&token={t}",
            now_s()
        )
    };
    assert_eq!(try_get(&c, &q("wrong")), Ok(401));
    assert_eq!(try_get(&c, &q(&token)), Ok(200));
    assert_eq!(server.ingest_stats().osmand.refused_count("token"), 1);
    server.shutdown().expect("shutdown");
}

/// A GET of `/v1/health` on the TLS server at `addr` with `identity`: the body, or the error.
fn health_with(
    addr: SocketAddr,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<String, String> {
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(ca, identity).expect("config"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    c.get(format!("https://127.0.0.1:{}/v1/health", addr.port()))
        .send()
        .and_then(|r| r.text())
        .map_err(|e| format!("{e:?}"))
}

/// Waits (at most 20 s) until `sink` holds `n` events; returns them.
fn events_when(
    sink: &outpost_server::security::MemoryAudit,
    n: usize,
) -> Vec<outpost_server::security::AuditEvent> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.events().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    sink.events()
}

#[test]
fn the_sync_port_audits_refused_client_certificates_once_a_minute_and_not_plain_http() {
    use outpost_domain::clock::FixedClock;
    use outpost_server::security::{AuditOutcome, MemoryAudit};

    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sink = Arc::new(MemoryAudit::default());
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let audit = Arc::new(stls::HandshakeAudit::new(
        sink.clone(),
        clock.clone(),
        stls::TlsListener::Sync,
    ));
    let config =
        stls::server_config_audited(&pki, ClientAuth::Optional, Some(audit)).expect("config");
    let app = axum::Router::new().route("/v1/health", axum::routing::get(|| async { "ok" }));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (listener, addr) = runtime.block_on(async {
        let l = tokio::net::TcpListener::bind(any_port())
            .await
            .expect("bind");
        let a = l.local_addr().expect("addr");
        (l, a)
    });
    let served = runtime.spawn(stls::serve_https(listener, config, app, stop_rx));

    // Expired (the agency's), another CA's, and the server's own certificate (server-auth
    // EKU only, so not for client authentication): each refused and recorded.
    let (csr, expired_key) = csr();
    let now = time::OffsetDateTime::now_utc();
    let expired = pki
        .sign_device_csr_between(
            &csr,
            "dev-expired",
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .expect("sign expired");
    let other = tempfile::tempdir().expect("temp dir");
    let other_pki = init(other.path());
    let (foreign_cert, foreign_key) = device(&other_pki, "dev-foreign");
    let ca = pki.ca_pem();
    for identity in [
        (expired.cert_pem.as_str(), expired_key.as_str()),
        (foreign_cert.as_str(), foreign_key.as_str()),
        (pki.server_cert_pem(), pki.server_key_pem()),
    ] {
        let got = health_with(addr, ca, Some(identity));
        assert!(got.is_err(), "the handshake succeeded: {got:?}");
    }
    let mut events = events_when(&sink, 3);
    assert_eq!(events.len(), 3, "{events:?}");
    events.sort_by(|a, b| a.device.cmp(&b.device));
    for e in &events {
        assert_eq!(
            (e.action.as_str(), e.outcome, e.user.as_str()),
            ("tls.handshake", AuditOutcome::Refused, "-")
        );
        assert!(
            e.target.starts_with("sync port from 127.0.0.1:"),
            "{}",
            e.target
        );
    }
    let devices: Vec<&str> = events.iter().map(|e| e.device.as_str()).collect();
    assert_eq!(devices, ["127.0.0.1", "dev-expired", "dev-foreign"]);
    assert!(
        events[0]
            .detail
            .starts_with("client certificate refused: certificate not for client authentication"),
        "{}",
        events[0].detail
    );
    let expired_detail = &events[1].detail;
    assert!(
        expired_detail.starts_with("client certificate refused: certificate expired at ")
            && expired_detail.contains(" (now ")
            && expired_detail.ends_with(&format!("; serial {}", expired.serial_hex)),
        "{expired_detail}"
    );
    assert!(
        // Another agency's CA has the same name as ours, so webpki finds it by name and the
        // signature fails (bad_signature); a CA of another name gives unknown_issuer.
        events[2]
            .detail
            .starts_with("client certificate refused: certificate not signed by the agency CA")
            && events[2].detail.ends_with("(not verified)"),
        "{}",
        events[2].detail
    );

    // Plain HTTP on the TLS port and a client that leaves at once: counted, not audited.
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).ok();
    tcp.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("ok"));
    drop(TcpStream::connect(addr).expect("connect"));
    // The expired certificate twice more within the minute: no new record.
    for _ in 0..2 {
        assert!(health_with(addr, ca, Some((&expired.cert_pem, &expired_key))).is_err());
    }
    // A valid certificate passes (and, served after them, shows nothing else was recorded).
    let (cert, key) = device(&pki, "dev-ok");
    assert_eq!(
        health_with(addr, ca, Some((&cert, &key))).as_deref(),
        Ok("ok")
    );
    assert_eq!(sink.events().len(), 3, "{:?}", sink.events());

    // A minute later the expired certificate is recorded again, with the count suppressed.
    clock.advance_secs(60);
    assert!(health_with(addr, ca, Some((&expired.cert_pem, &expired_key))).is_err());
    let events = events_when(&sink, 4);
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[3].device, "dev-expired");
    assert!(
        events[3]
            .detail
            .contains("; 2 more identical refusals since "),
        "{}",
        events[3].detail
    );

    stop_tx.send(true).expect("stop");
    runtime
        .block_on(served)
        .expect("join")
        .expect("served cleanly");
}

#[test]
fn the_cot_tls_port_audits_a_refused_certificate_but_not_a_client_without_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = init(dir.path());
    let config = ServerConfig::new(dir.path(), any_port()).with_ingest(IngestConfig {
        cot_listen: Some(any_port()),
        cot_tls: true,
        ..IngestConfig::default()
    });
    let server = Server::start(config).expect("start");
    let cot = server.cot_addr().expect("cot");
    let log = server
        .security()
        .and_then(|s| s.audit_log())
        .expect("audit log")
        .clone();
    let handshakes = || {
        log.page(0, Some(1000))
            .expect("page")
            .records
            .into_iter()
            .filter(|r| r.action == "tls.handshake")
            .collect::<Vec<_>>()
    };

    let without = cot_ping(cot, pki.ca_pem(), None);
    assert!(
        !without.as_ref().is_ok_and(|got| got.contains("t-x-c-t-r")),
        "{without:?}"
    );
    let other = tempfile::tempdir().expect("temp dir");
    let other_pki = init(other.path());
    let (cert, key) = device(&other_pki, "tak-foreign");
    let foreign = cot_ping(cot, pki.ca_pem(), Some((&cert, &key)));
    assert!(
        !foreign.as_ref().is_ok_and(|got| got.contains("t-x-c-t-r")),
        "{foreign:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while handshakes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Both refusals counted; only the certificate is in the trail.
    let stats = server.ingest_stats().clone();
    while stats.cot.refused_count("tls_handshake") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stats.cot.refused_count("tls_handshake"), 2);
    let records = handshakes();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(
        (r.user.as_str(), r.device.as_str(), r.outcome.as_str()),
        ("-", "tak-foreign", "refused")
    );
    assert!(
        r.target.starts_with("CoT TLS port from 127.0.0.1:"),
        "{}",
        r.target
    );
    assert!(
        r.detail
            .starts_with("client certificate refused: certificate not signed by the agency CA"),
        "{}",
        r.detail
    );
    server.shutdown().expect("shutdown");
}
