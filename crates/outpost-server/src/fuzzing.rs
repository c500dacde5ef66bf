//! The bodies of the fuzz targets (SYNC.md S17), shared by the cargo-fuzz project in `fuzz/`
//! (nightly, libFuzzer) and the stable test harness (`tests/it/fuzz.rs`, proptest), so that
//! CI with only the stable toolchain runs the same checks.
//!
//! Each target takes arbitrary bytes and panics (a finding) only when a property is broken:
//! - [`push_decode`]: a push of any bytes to a server with some state either fails with
//!   nothing stored (log, high-water marks, parked ops and state digest unchanged) or answers
//!   outcomes that match what was stored;
//! - [`pull_decode`]: a console decoding any pull page or snapshot never panics, and what
//!   decodes re-encodes to the same value;
//! - [`apply_op`]: decoding, validating and applying any op to a store in a transaction
//!   either commits fully (and re-applying changes nothing) or leaves nothing behind.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use outpost_domain::merge;
use outpost_domain::op::{Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_domain::wire::{
    Outcome, PROTOCOL_VERSION, PullResponse, PushRequest, PushResponse, Snapshot,
};
use outpost_store::Store;

use crate::service::SyncService;
use crate::storage::{LogHead, SqliteStorage};

/// The origin of the seed ops ([`seeded_service`]).
pub const SEED_ORIGIN: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00aa);
/// The unit the seed registers.
pub const SEED_UNIT: &str = "u-01";
/// The incident the seed creates.
pub const SEED_INCIDENT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00bb);

/// The seed ops: unit [`SEED_UNIT`] and incident [`SEED_INCIDENT`], critical lane 1 and 2.
pub fn seed_ops() -> Vec<OpEnvelope> {
    let op = |seq: u64, body: OpBody| OpEnvelope {
        op_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0100 + u128::from(seq)),
        origin: SEED_ORIGIN,
        seq,
        hlc: Hlc {
            wall_ms: 1_764_400_000_000 + i64::try_from(seq).unwrap_or(0),
            logical: 0,
        },
        base_version: None,
        user: "seed".into(),
        schema: SCHEMA_VERSION,
        lane: Lane::Critical,
        lane_seq: seq,
        body,
        auth: None,
    };
    let body = |v: serde_json::Value| serde_json::from_value::<OpBody>(v);
    let unit = body(json!({"kind": "unit.register", "unit_id": SEED_UNIT,
        "callsign": "东胜01", "unit_kind": "patrol_car", "home_station": null}));
    let incident = body(
        json!({"kind": "incident.create", "incident_id": SEED_INCIDENT,
        "number": "20261129-0001", "incident_type": "theft", "priority": "P2",
        "location": {"lat": 42.5, "lon": 1.52}, "address": "Meritxell 1",
        "description": "bicycle"}),
    );
    match (unit, incident) {
        (Ok(u), Ok(i)) => vec![op(1, u), op(2, i)],
        // The seed bodies are fixed text; they decode unless the op format changed.
        _ => Vec::new(),
    }
}

/// An in-memory server with the seed ops accepted (gseq 1 and 2).
///
/// # Panics
/// When the in-memory storage cannot be created or the seed is refused (a bug).
#[allow(clippy::expect_used)]
pub fn seeded_service() -> SyncService {
    let storage = SqliteStorage::open_in_memory().expect("in-memory storage");
    let service = SyncService::new(Box::new(storage));
    let ops = seed_ops();
    let req = PushRequest {
        protocol: PROTOCOL_VERSION,
        origin: SEED_ORIGIN,
        lane: Lane::Critical,
        epoch: None,
        cursor: 0,
        ops: ops
            .iter()
            .map(|o| serde_json::to_value(o).expect("seed json"))
            .collect(),
    };
    service.push_request(&req).expect("seed push");
    service
}

/// Everything a push may change, for before/after comparison.
#[derive(Debug, PartialEq)]
struct Observed {
    head: LogHead,
    log: Vec<(u64, String)>,
    parked: usize,
    digest: BTreeMap<String, String>,
}

#[allow(clippy::expect_used)]
fn observe(service: &SyncService) -> Observed {
    service.with_storage(|s| {
        let snap = s.snapshot().expect("snapshot");
        Observed {
            head: snap.head,
            log: snap.ops.into_iter().map(|o| (o.gseq, o.raw)).collect(),
            parked: s.parked().expect("parked").len(),
            digest: s.state_digest().expect("digest"),
        }
    })
}

/// Fuzz target `push_decode`: see the module doc.
///
/// # Panics
/// When a property is broken (a finding).
#[allow(clippy::expect_used, clippy::panic)]
pub fn push_decode(data: &[u8]) {
    let service = seeded_service();
    let before = observe(&service);
    match service.push(data) {
        Err(e) => {
            assert!(
                matches!(e.status(), 400 | 409 | 413),
                "unexpected error {e}"
            );
            let after = observe(&service);
            if e.status() == 409 {
                // Only the epoch (and the gseq counter) may move: a too-high cursor.
                assert_eq!(after.log, before.log);
                assert_eq!(after.digest, before.digest);
                assert_eq!(after.parked, before.parked);
            } else {
                assert_eq!(after, before, "a refused push changed something: {e}");
            }
        }
        Ok(r) => check_push_answer(&service, &before, &r),
    }
}

/// The properties of a successful push answer.
#[allow(clippy::expect_used)]
fn check_push_answer(service: &SyncService, before: &Observed, r: &PushResponse) {
    let after = observe(service);
    let mut next = before.head.gseq + 1;
    let mut accepted = Vec::new();
    let mut new_parked = 0;
    for res in &r.results {
        match &res.outcome {
            Outcome::Accepted { gseq } => {
                assert_eq!(*gseq, next, "accepted gseqs are consecutive");
                next += 1;
                accepted.push((res.op_id, *gseq));
            }
            Outcome::Duplicate { gseq } => assert!(*gseq <= before.head.gseq),
            Outcome::Parked { reason } => {
                assert!(!reason.is_empty());
                new_parked += 1;
            }
        }
    }
    assert_eq!(r.server_gseq, before.head.gseq + accepted.len() as u64);
    assert_eq!(after.head.gseq, r.server_gseq);
    assert_eq!(after.log.len(), before.log.len() + accepted.len());
    assert!(after.parked <= before.parked + new_parked);
    for (op_id, gseq) in accepted {
        let (_, raw) = after
            .log
            .iter()
            .find(|(g, _)| *g == gseq)
            .expect("an accepted op is in the log");
        let env: OpEnvelope = serde_json::from_str(raw).expect("a logged op decodes");
        assert_eq!(env.op_id, op_id);
        assert_eq!(merge::validate(&env), Ok(()));
    }
    if r.results.is_empty() && r.resend_from.is_none() {
        assert_eq!(after.digest, before.digest);
    }
}

/// Fuzz target `pull_decode`: see the module doc.
///
/// # Panics
/// When a decoded page does not round-trip (a finding).
#[allow(clippy::expect_used)]
pub fn pull_decode(data: &[u8]) {
    if let Ok(page) = serde_json::from_slice::<PullResponse>(data) {
        let text = serde_json::to_vec(&page).expect("encode page");
        let again: PullResponse = serde_json::from_slice(&text).expect("decode page again");
        assert_eq!(again, page);
        for o in &page.ops {
            if let Ok(env) = serde_json::from_value::<OpEnvelope>(o.op.clone()) {
                let _ = merge::validate(&env);
                let _ = merge::writes_of(&env.body);
                let _ = merge::releases_of(&env.body);
                let _ = merge::units_of(&env.body);
            }
        }
    }
    if let Ok(snap) = serde_json::from_slice::<Snapshot>(data) {
        let text = serde_json::to_vec(&snap).expect("encode snapshot");
        let again: Snapshot = serde_json::from_slice(&text).expect("decode snapshot again");
        assert_eq!(again, snap);
    }
    if let Ok(r) = serde_json::from_slice::<PushResponse>(data) {
        let text = serde_json::to_vec(&r).expect("encode push response");
        let again: PushResponse = serde_json::from_slice(&text).expect("decode again");
        assert_eq!(again, r);
    }
}

/// Fuzz target `apply_op`: see the module doc.
///
/// # Panics
/// When an apply leaves a partial effect or is not idempotent (a finding).
#[allow(clippy::expect_used)]
pub fn apply_op(data: &[u8]) {
    let Ok(env) = serde_json::from_slice::<OpEnvelope>(data) else {
        return;
    };
    if merge::validate(&env).is_err() {
        return;
    }
    let now = Utc.timestamp_millis_opt(1_764_400_000_000).single();
    let Some(now) = now else { return };
    let mut store = Store::open_in_memory(now).expect("in-memory store");
    {
        let tx = store.transaction().expect("tx");
        for (i, op) in seed_ops().iter().enumerate() {
            outpost_store::apply::apply_with_gseq(&tx, op, Some(i as u64 + 1)).expect("seed");
        }
        tx.commit().expect("commit seed");
    }
    let before = store.state_digest().expect("digest");
    let ledger_before = store.ledger().expect("ledger").len();
    let tx = store.transaction().expect("tx");
    let applied = outpost_store::apply::apply_with_gseq(&tx, &env, Some(3));
    match applied {
        Ok(_) => {
            tx.commit().expect("commit");
            let once = store.state_digest().expect("digest");
            // Idempotent: applying it again changes nothing.
            let tx = store.transaction().expect("tx");
            let again = outpost_store::apply::apply_with_gseq(&tx, &env, Some(3));
            assert!(matches!(again, Ok(false)), "re-apply: {again:?}");
            tx.commit().expect("commit");
            assert_eq!(store.state_digest().expect("digest"), once);
        }
        Err(e) => {
            // The op's own savepoint rolled back; the transaction commits with nothing of it.
            tx.commit().expect("commit after a refused op");
            assert_eq!(
                store.state_digest().expect("digest"),
                before,
                "a refused op ({e}) left a partial effect"
            );
            assert_eq!(store.ledger().expect("ledger").len(), ledger_before);
        }
    }
}
