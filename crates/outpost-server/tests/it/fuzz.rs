//! S17 on the stable toolchain: the fuzz targets of `outpost_server::fuzzing` (also run by
//! cargo-fuzz from `fuzz/` on nightly) fed by proptest with arbitrary bytes and with
//! structured pushes: valid ops of every kind, then JSON leaves replaced, fields dropped,
//! lane_seqs shuffled and bodies truncated. A failure is a finding; its input becomes a
//! regression test below.

use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::op::Lane;
use outpost_domain::wire::PROTOCOL_VERSION;
use outpost_server::fuzzing::{
    SEED_INCIDENT, SEED_UNIT, apply_op, pull_decode, push_decode, seeded_service,
};

/// A valid op body of kind `k` (0..12), referring to the seed unit and incident or to
/// unknown ones.
fn body(k: u8, n: u64, known: bool) -> Value {
    let incident = if known {
        SEED_INCIDENT
    } else {
        Uuid::from_u128(u128::from(n) + 77)
    };
    let unit = if known {
        SEED_UNIT.to_string()
    } else {
        format!("u-{n}")
    };
    let id = Uuid::from_u128(0x0194_0000_0000_7000_8000_0000_0000_0000 + u128::from(n));
    let release = json!([{"assignment_id": id, "incident_id": incident, "unit_id": unit,
                          "unit_to": "available"}]);
    match k % 12 {
        0 => json!({"kind": "incident.create", "incident_id": id, "number": format!("N-{n}"),
            "incident_type": "fire", "priority": "P1", "location": {"lat": 42.5, "lon": 1.5},
            "address": "a", "description": "d"}),
        1 => json!({"kind": "incident.set_fields", "incident_id": incident,
            "fields": {"priority": "P3", "address": "b", "incident_type": null,
                       "location": null, "description": null}}),
        2 => json!({"kind": "incident.acknowledge", "incident_id": incident}),
        3 => json!({"kind": "incident.close", "incident_id": incident,
            "disposition": "resolved", "summary": "s", "releases": release}),
        4 => json!({"kind": "unit.set_status", "unit_id": unit, "from": "available",
            "to": "busy", "releases": []}),
        5 => json!({"kind": "assignment.add", "assignment_id": id, "incident_id": incident,
            "unit_id": unit}),
        6 => json!({"kind": "assignment.release", "assignment_id": id,
            "incident_id": incident, "unit_id": unit, "unit_to": "available"}),
        7 => json!({"kind": "timeline.append", "entry_id": id, "incident_id": incident,
            "text": "note"}),
        8 => json!({"kind": "position.report", "unit_id": unit, "fix": {
            "position": {"lat": 42.5, "lon": 1.5}, "fix_time": "2026-11-29T20:00:00Z",
            "heading_deg": 10.0, "speed_mps": 3.0, "accuracy_m": 4.0}}),
        9 => json!({"kind": "unit.register", "unit_id": format!("u-{n}"), "callsign": "c",
            "unit_kind": "motorcycle", "home_station": null}),
        10 => json!({"kind": "facility.register", "facility": {"id": "f-1",
            "kind": "post", "name_zh": "岗", "name_en": "Post",
            "position": {"lat": 42.5, "lon": 1.5}}}),
        _ => json!({"kind": "conflict.resolve", "conflict_id": format!("double:{unit}"),
            "releases": release, "note": ""}),
    }
}

fn lane_of(k: u8) -> &'static str {
    match k % 12 {
        7 => "notes",
        8 => "positions",
        _ => "critical",
    }
}

fn envelope(origin: Uuid, seq: u64, lane_seq: u64, k: u8, known: bool) -> Value {
    json!({
        "op_id": Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0000 + u128::from(seq)),
        "origin": origin, "seq": seq,
        "hlc": {"wall_ms": 1_764_400_000_000i64 + seq as i64, "logical": 0},
        "base_version": 2, "user": "u", "schema": 1, "lane": lane_of(k),
        "lane_seq": lane_seq, "body": body(k, seq, known),
    })
}

/// Replaces the `pick`-th leaf (depth-first) of `v` with `with`.
fn replace_leaf(v: &mut Value, pick: &mut usize, with: &Value) -> bool {
    match v {
        Value::Object(m) => m.values_mut().any(|c| replace_leaf(c, pick, with)),
        Value::Array(a) => a.iter_mut().any(|c| replace_leaf(c, pick, with)),
        leaf => {
            if *pick == 0 {
                *leaf = with.clone();
                true
            } else {
                *pick -= 1;
                false
            }
        }
    }
}

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!("")),
        Just(json!("x".repeat(5000))),
        Just(json!([])),
        Just(json!({})),
        Just(json!(true)),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z0-9:_-]{0,12}".prop_map(|s| json!(s)),
    ]
}

/// A push of 0..12 ops of one origin and lane, then mutations.
fn structured_push() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((0u8..12, any::<bool>()), 0..12),
        prop::collection::vec((any::<prop::sample::Index>(), odd_value()), 0..3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<prop::sample::Index>()),
        0u64..4,
    )
        .prop_map(|(kinds, mutations, shuffle, drop_field, cut, cursor)| {
            let origin = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
            // All ops in the lane of the first one, numbered in order.
            let lane = kinds.first().map_or("critical", |(k, _)| lane_of(*k));
            let mut ops: Vec<Value> = kinds
                .iter()
                .filter(|(k, _)| lane_of(*k) == lane)
                .enumerate()
                .map(|(i, (k, known))| envelope(origin, i as u64 + 1, i as u64 + 1, *k, *known))
                .collect();
            if shuffle && ops.len() > 1 {
                ops.swap(0, 1);
            }
            let mut req = json!({"protocol": PROTOCOL_VERSION, "origin": origin,
                "lane": lane, "epoch": null, "cursor": cursor, "ops": ops});
            let leaves = count_leaves(&req);
            for (idx, with) in mutations {
                let mut pick = idx.index(leaves.max(1));
                replace_leaf(&mut req, &mut pick, &with);
            }
            if drop_field && let Some(first) = req["ops"].get_mut(0).and_then(Value::as_object_mut)
            {
                first.remove("body");
            }
            let mut bytes = serde_json::to_vec(&req).unwrap_or_default();
            if let Some(cut) = cut {
                let at = cut.index(bytes.len().max(1));
                bytes.truncate(at);
            }
            bytes
        })
}

fn count_leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(count_leaves).sum(),
        Value::Array(a) => a.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn push_of_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        push_decode(&data);
    }

    #[test]
    fn push_of_mutated_requests(data in structured_push()) {
        push_decode(&data);
    }

    #[test]
    fn pull_pages_of_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        pull_decode(&data);
    }

    #[test]
    fn apply_of_mutated_ops(
        k in 0u8..12,
        known in any::<bool>(),
        mutation in prop::option::of((any::<prop::sample::Index>(), odd_value())),
    ) {
        let mut op = envelope(Uuid::from_u128(5), 1, 1, k, known);
        if let Some((idx, with)) = mutation {
            let mut pick = idx.index(count_leaves(&op));
            replace_leaf(&mut op, &mut pick, &with);
        }
        apply_op(&serde_json::to_vec(&op).unwrap_or_default());
    }
}

#[test]
fn every_structured_kind_is_accepted_when_it_refers_to_known_things() {
    // The generator's premise: unmutated ops about the seed unit and incident are valid.
    for k in 0u8..12 {
        let service = seeded_service();
        let origin = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
        let lane = match lane_of(k) {
            "notes" => Lane::Notes,
            "positions" => Lane::Positions,
            _ => Lane::Critical,
        };
        let req = json!({"protocol": 1, "origin": origin, "lane": lane, "epoch": null,
            "cursor": 0, "ops": [envelope(origin, 1, 1, k, true)]});
        let r = service
            .push(&serde_json::to_vec(&req).expect("json"))
            .expect("push");
        assert!(
            matches!(
                r.results[0].outcome,
                outpost_domain::wire::Outcome::Accepted { gseq: 3 }
            ),
            "kind {k}: {:?}",
            r.results[0].outcome
        );
    }
}

#[test]
fn fuzz_targets_hold_for_the_corpus_seeds() {
    let origin = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    for k in 0u8..12 {
        let op = envelope(origin, 1, 1, k, true);
        let bytes = serde_json::to_vec(&op).expect("json");
        apply_op(&bytes);
        let req = json!({"protocol": 1, "origin": origin, "lane": lane_of(k), "epoch": null,
            "cursor": 0, "ops": [op]});
        push_decode(&serde_json::to_vec(&req).expect("json"));
        let page = json!({"epoch": origin, "ops": [{"gseq": 3, "op": req["ops"][0]}],
            "server_gseq": 3, "more": false});
        pull_decode(&serde_json::to_vec(&page).expect("json"));
    }
}
