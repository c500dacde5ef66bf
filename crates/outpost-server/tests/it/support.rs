//! Test helpers: a scripted author of ops (one origin, gap-free seq and lane_seq) and a
//! blocking HTTP client for the wire protocol.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::incident::{IncidentType, Priority};
use outpost_domain::op::{Fix, Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::unit::UnitKind;
use outpost_domain::wire::{PROTOCOL_VERSION, PushRequest};

/// One console's op author: gap-free `seq` and per-lane `lane_seq`, HLC from a fake clock.
pub struct Author {
    pub origin: Uuid,
    seq: u64,
    lanes: BTreeMap<Lane, u64>,
    wall_ms: i64,
}

impl Author {
    pub fn new(n: u128) -> Author {
        Author {
            origin: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | n),
            seq: 0,
            lanes: BTreeMap::new(),
            wall_ms: 1_764_400_000_000,
        }
    }

    /// The next op with `body`.
    pub fn op(&mut self, body: OpBody) -> OpEnvelope {
        self.seq += 1;
        self.wall_ms += 1_000;
        let lane = body.lane();
        let lane_seq = self.lanes.entry(lane).or_insert(0);
        *lane_seq += 1;
        OpEnvelope {
            op_id: Uuid::now_v7(),
            origin: self.origin,
            seq: self.seq,
            hlc: Hlc {
                wall_ms: self.wall_ms,
                logical: 0,
            },
            base_version: None,
            user: "cmdr.li".into(),
            schema: SCHEMA_VERSION,
            lane,
            lane_seq: *lane_seq,
            body,
            auth: None,
        }
    }

    pub fn unit(&mut self, unit_id: &str) -> OpEnvelope {
        self.op(OpBody::UnitRegister {
            unit_id: unit_id.into(),
            callsign: format!("东胜{unit_id}"),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        })
    }

    /// An `incident.create`; the incident id is returned with it.
    pub fn incident(&mut self) -> (Uuid, OpEnvelope) {
        let id = Uuid::now_v7();
        let op = self.op(OpBody::IncidentCreate {
            incident_id: id,
            number: format!("20261129-{:04}", self.seq + 1),
            incident_type: IncidentType::Theft,
            priority: Priority::P2,
            location: LatLon {
                lat: 42.5063,
                lon: 1.5218,
            },
            address: "Avinguda Meritxell 1".into(),
            description: "bicycle stolen".into(),
        });
        (id, op)
    }

    pub fn note(&mut self, incident_id: Uuid, text: &str) -> OpEnvelope {
        self.op(OpBody::TimelineAppend {
            entry_id: Uuid::now_v7(),
            incident_id,
            text: text.into(),
        })
    }

    /// A position report `i` seconds after a base time.
    pub fn position(&mut self, unit_id: &str, i: i64) -> OpEnvelope {
        self.op(OpBody::PositionReport {
            unit_id: unit_id.into(),
            fix: Fix {
                position: LatLon {
                    lat: 42.5 + i as f64 * 1e-4,
                    lon: 1.52,
                },
                fix_time: Utc
                    .timestamp_millis_opt(1_764_400_000_000 + i * 1_000)
                    .single()
                    .expect("time"),
                heading_deg: Some(90.0),
                speed_mps: Some(8.5),
                accuracy_m: Some(5.0),
            },
        })
    }
}

/// A push request of `ops` (all of one lane) from `origin`.
pub fn request(origin: Uuid, lane: Lane, ops: &[OpEnvelope]) -> PushRequest {
    PushRequest {
        protocol: PROTOCOL_VERSION,
        origin,
        lane,
        epoch: None,
        cursor: 0,
        ops: ops
            .iter()
            .map(|o| serde_json::to_value(o).expect("op json"))
            .collect(),
    }
}

/// `outpost-server cert init --data DATA --name 127.0.0.1` (the binary); returns the agency
/// CA's PEM for clients to trust.
pub fn cert_init(data: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["cert", "init", "--name", "127.0.0.1", "--data"])
        .arg(data)
        .output()
        .expect("run cert init");
    assert!(
        out.status.success(),
        "cert init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(data.join("tls").join("ca.pem")).expect("ca.pem")
}

/// A client of the TLS server at `addr` (data directory `data`, CA `ca_pem`) signed in as
/// `user` (a commander) on a device enrolled straight in the data directory with `origin`
/// (`outpost_server::testing::direct_session`; the binary may be running).
pub fn signed_in_client(
    addr: impl std::fmt::Display,
    ca_pem: &str,
    data: &std::path::Path,
    user: &str,
    origin: Uuid,
) -> Client {
    let (device, token) = outpost_server::testing::direct_session(
        data,
        user,
        outpost_domain::access::Role::Commander,
        origin,
    )
    .expect("device and session");
    let tls = outpost_sync::tls::client_config(
        ca_pem,
        Some((device.cert_pem.as_str(), device.key_pem.as_str())),
    )
    .expect("TLS client config");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    Client {
        base: format!("https://{addr}"),
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .use_preconfigured_tls(tls)
            .default_headers(headers)
            .build()
            .expect("https client"),
    }
}

/// A blocking HTTP client for one server.
pub struct Client {
    pub base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Client {
        Client {
            base: base.into(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        }
    }

    /// A client of a TLS server (`https://` base) with the rustls configuration `tls`
    /// (e.g. `outpost_sync::tls::client_config` trusting the agency CA).
    pub fn with_tls(base: impl Into<String>, tls: rustls::ClientConfig) -> Client {
        Client {
            base: base.into(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .use_preconfigured_tls(tls)
                .build()
                .expect("https client"),
        }
    }

    /// GET `path`: (status, JSON body).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// POST raw bytes to `/v1/push`: (status, JSON body).
    pub fn push_raw(&self, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/push", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn push(&self, req: &PushRequest) -> (u16, Value) {
        self.push_raw(serde_json::to_vec(req).expect("request json"))
    }

    /// A push that may meet a dead server: `None` when the connection failed or the answer
    /// was cut off.
    pub fn try_push(&self, req: &PushRequest) -> Option<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}/v1/push", self.base))
            .json(req)
            .send()
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().ok()?))
    }

    /// The status of a GET whatever its body; `Err` with the cause when no answer came
    /// (connection or TLS failure).
    pub fn try_status(&self, path: &str) -> Result<u16, String> {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"))
    }

    /// A GET that may meet a dead server (see [`Client::try_push`]).
    pub fn try_get(&self, path: &str) -> Option<(u16, Value)> {
        let r = self.http.get(format!("{}{path}", self.base)).send().ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().ok()?))
    }
}

/// The outcomes of a push answer as compact strings: `"accepted 3"`, `"duplicate 3"`,
/// `"parked: reason"`.
pub fn outcomes(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| match r["outcome"].as_str() {
                    Some("parked") => format!("parked: {}", r["reason"].as_str().unwrap_or("")),
                    Some(o) => format!("{o} {}", r["gseq"]),
                    None => "?".into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `json!` of an op, for tampering.
pub fn op_json(op: &OpEnvelope) -> Value {
    json!(op)
}
