//! The sync endpoints against a server started in-process on 127.0.0.1:0: ordering,
//! idempotent re-sends, gaps, parking (S9), bad input (400/413), epochs, compaction and
//! snapshots, restart on the same data directory, pokes, shutdown.

use std::net::SocketAddr;

use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::incident::Priority;
use outpost_domain::op::{IncidentFields, Lane, OpBody, OpEnvelope};
use outpost_domain::wire::{
    EPOCH_GSEQ_GAP, MAX_BATCH_OPS, MAX_PUSH_BYTES, PullResponse, PushResponse, Snapshot,
};
use outpost_server::{RunningServer, Server, ServerConfig};

use crate::support::{Author, Client, op_json, outcomes, request};

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn start(dir: &std::path::Path) -> (RunningServer, Client) {
    let server =
        Server::start(ServerConfig::plain_for_tests(dir, any_port())).expect("start server");
    let client = Client::new(server.url());
    (server, client)
}

fn push_ok(c: &Client, origin: Uuid, lane: Lane, ops: &[OpEnvelope]) -> PushResponse {
    let (status, body) = c.push(&request(origin, lane, ops));
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("push response")
}

fn pull(c: &Client, after: u64, limit: usize) -> PullResponse {
    let (status, body) = c.get(&format!("/v1/pull?after={after}&limit={limit}"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("pull response")
}

fn gseq_of(c: &Client) -> u64 {
    let (_, h) = c.get("/v1/health");
    h["server_gseq"].as_u64().expect("server_gseq")
}

/// A unit and an incident, pushed in the critical lane: gseq 1 and 2.
fn seed(c: &Client, a: &mut Author) -> Uuid {
    let unit = a.unit("u-01");
    let (incident, create) = a.incident();
    let r = push_ok(c, a.origin, Lane::Critical, &[unit, create]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["accepted 1", "accepted 2"]
    );
    incident
}

#[test]
fn health_and_capabilities() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let (status, h) = c.get("/v1/health");
    assert_eq!(status, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["server_gseq"], 0);
    assert!(Uuid::parse_str(h["epoch"].as_str().expect("epoch")).is_ok());
    let (status, caps) = c.get("/v1/capabilities");
    assert_eq!(status, 200);
    assert_eq!(caps["protocols"], json!([1]));
    assert_eq!(caps["max_schema"], 1);
    assert_eq!(caps["max_batch_ops"], 1000);
    assert_eq!(caps["max_push_bytes"], 4 * 1024 * 1024);
    assert_eq!(caps["max_pull_limit"], 5000);
    assert_eq!(caps["server"], "outpost-server 0.1.0");
    let (status, e) = c.get("/v1/nothing");
    assert_eq!(status, 404);
    assert_eq!(e["code"], "not_found");
    let (status, e) = c.get("/v1/push");
    assert_eq!(status, 405);
    assert_eq!(
        e["message"],
        "wrong method: push, enroll, login, logout and admin changes are POST, reads GET"
    );
}

#[test]
fn push_then_pull_in_global_order_with_paging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let mut b = Author::new(2);
    let incident = seed(&c, &mut a);
    let notes: Vec<_> = (0..3)
        .map(|i| b.note(incident, &format!("note {i}")))
        .collect();
    let r = push_ok(&c, b.origin, Lane::Notes, &notes);
    assert_eq!(r.high_water, 3);
    assert_eq!(r.server_gseq, 5);
    assert_eq!(r.resend_from, None);
    let positions: Vec<_> = (0..4).map(|i| a.position("u-01", i)).collect();
    let r = push_ok(&c, a.origin, Lane::Positions, &positions);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["accepted 6", "accepted 7", "accepted 8", "accepted 9"]
    );

    let p1 = pull(&c, 0, 4);
    assert_eq!(
        p1.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(p1.more);
    assert_eq!(p1.server_gseq, 9);
    // The op comes back as the author wrote it.
    assert_eq!(p1.ops[2].op, op_json(&notes[0]));
    let p2 = pull(&c, 4, 4);
    assert_eq!(
        p2.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(),
        [5, 6, 7, 8]
    );
    assert!(p2.more);
    let p3 = pull(&c, 8, 4);
    assert_eq!(p3.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(), [9]);
    assert!(!p3.more);
    assert_eq!(p3.ops[0].op, op_json(&positions[3]));
    let p4 = pull(&c, 9, 4);
    assert!(p4.ops.is_empty() && !p4.more);
    // Default and oversized limits.
    let (status, all) = c.get("/v1/pull?after=0");
    assert_eq!(status, 200);
    assert_eq!(all["ops"].as_array().map(Vec::len), Some(9));
    let (status, all) = c.get("/v1/pull?after=0&limit=999999");
    assert_eq!(status, 200);
    assert_eq!(all["ops"].as_array().map(Vec::len), Some(9));
    let (status, one) = c.get("/v1/pull?after=0&limit=0");
    assert_eq!(status, 200);
    assert_eq!(one["ops"].as_array().map(Vec::len), Some(1));
}

#[test]
fn resend_gets_the_stored_outcomes_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let first = a.note(incident, "first");
    let mut bad = a.note(incident, "x");
    if let OpBody::TimelineAppend { text, .. } = &mut bad.body {
        text.clear(); // empty note: parked
    }
    let good = a.note(incident, "second");
    let batch = [first, bad, good];
    let first = push_ok(&c, a.origin, Lane::Notes, &batch);
    let first_outcomes = outcomes(&serde_json::to_value(&first).expect("json"));
    assert_eq!(
        first_outcomes,
        ["accepted 3", "parked: text is empty", "accepted 4"]
    );
    for _ in 0..3 {
        let again = push_ok(&c, a.origin, Lane::Notes, &batch);
        assert_eq!(
            outcomes(&serde_json::to_value(&again).expect("json")),
            ["duplicate 3", "parked: text is empty", "duplicate 4"]
        );
        assert_eq!(again.high_water, 3);
        assert_eq!(again.server_gseq, 4);
    }
    // A re-send of the tail plus a new op: the new one is accepted.
    let next = a.note(incident, "third");
    let r = push_ok(&c, a.origin, Lane::Notes, &[batch[2].clone(), next.clone()]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["duplicate 4", "accepted 5"]
    );
    let all = pull(&c, 0, 100);
    let ids: Vec<_> = all.ops.iter().map(|o| o.op["op_id"].clone()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), 5);
    assert_eq!(unique.len(), 5);
    assert_eq!(all.ops[4].op, op_json(&next));
}

#[test]
fn a_gap_stops_the_batch_with_resend_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let notes: Vec<_> = (1..=5)
        .map(|i| a.note(incident, &format!("n{i}")))
        .collect();
    push_ok(&c, a.origin, Lane::Notes, &notes[..2]);
    // lane_seq 4 and 5 without 3.
    let r = push_ok(&c, a.origin, Lane::Notes, &notes[3..]);
    assert!(r.results.is_empty());
    assert_eq!(r.resend_from, Some(3));
    assert_eq!(r.high_water, 2);
    assert_eq!(gseq_of(&c), 4);
    // 2 (re-sent), 3, then 5 without 4: answered up to 3, then resend_from 4.
    let r = push_ok(
        &c,
        a.origin,
        Lane::Notes,
        &[notes[1].clone(), notes[2].clone(), notes[4].clone()],
    );
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["duplicate 4", "accepted 5"]
    );
    assert_eq!(r.resend_from, Some(4));
    let r = push_ok(&c, a.origin, Lane::Notes, &notes[3..]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["accepted 6", "accepted 7"]
    );
    assert_eq!(r.resend_from, None);
    // Lanes are independent: the critical lane's mark is untouched.
    let (_, incident2) = a.incident();
    let r = push_ok(&c, a.origin, Lane::Critical, &[incident2]);
    assert_eq!(r.high_water, 3);
}

#[test]
fn s9_one_bad_op_in_a_batch_of_100_is_parked_and_the_other_99_apply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, c) = start(dir.path());
    let mut a = Author::new(1);
    seed(&c, &mut a);
    let mut batch = Vec::new();
    for i in 0..100 {
        if i == 57 {
            let (id, mut op) = a.incident();
            if let OpBody::IncidentCreate { location, .. } = &mut op.body {
                location.lat = 91.0;
            }
            let _ = id;
            batch.push(op);
        } else {
            let (id, op) = a.incident();
            let _ = id;
            batch.push(op);
        }
    }
    let r = push_ok(&c, a.origin, Lane::Critical, &batch);
    assert_eq!(r.results.len(), 100);
    assert_eq!(r.high_water, 102);
    assert_eq!(r.server_gseq, 2 + 99);
    let mut expected_gseq = 3;
    for (i, res) in r.results.iter().enumerate() {
        assert_eq!(res.op_id, batch[i].op_id);
        assert_eq!(res.lane_seq, batch[i].lane_seq);
        if i == 57 {
            assert_eq!(
                res.outcome,
                outpost_domain::wire::Outcome::Parked {
                    reason: "location.lat 91 is outside -90..90".into()
                }
            );
        } else {
            assert_eq!(
                res.outcome,
                outpost_domain::wire::Outcome::Accepted {
                    gseq: expected_gseq
                }
            );
            expected_gseq += 1;
        }
    }
    // The parked op is not in the log, and is kept with its reason.
    let all = pull(&c, 0, 1000);
    assert_eq!(all.ops.len(), 101);
    assert!(
        all.ops
            .iter()
            .all(|o| o.op["op_id"] != json!(batch[57].op_id))
    );
    let parked = server.service().parked().expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].key.op_id, batch[57].op_id);
    assert_eq!(parked[0].key.lane_seq, 60);
    assert_eq!(parked[0].reason, "location.lat 91 is outside -90..90");
    assert_eq!(
        serde_json::from_str::<Value>(&parked[0].raw).expect("raw"),
        op_json(&batch[57])
    );
}

#[test]
fn ops_referring_to_unknown_things_and_newer_schemas_are_parked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let unknown_incident = a.op(OpBody::IncidentSetFields {
        incident_id: Uuid::from_u128(42),
        fields: IncidentFields {
            priority: Some(Priority::P1),
            ..IncidentFields::default()
        },
    });
    let unknown_unit = a.op(OpBody::AssignmentAdd {
        assignment_id: Uuid::now_v7(),
        incident_id: incident,
        unit_id: "u-99".into(),
    });
    // A future op: schema 2, a kind this build does not know.
    let mut future = op_json(&a.op(OpBody::IncidentAcknowledge {
        incident_id: incident,
    }));
    future["schema"] = json!(2);
    future["body"] = json!({"kind": "incident.merge", "into": incident});
    // Schema 1 with an unknown kind: does not decode, parked with the place.
    let mut odd = op_json(&a.op(OpBody::IncidentAcknowledge {
        incident_id: incident,
    }));
    odd["body"]["kind"] = json!("incident.teleport");
    // A base_version no server can have given out.
    let mut huge = a.op(OpBody::IncidentAcknowledge {
        incident_id: incident,
    });
    huge.base_version = Some(u64::MAX);
    // Creating an incident id that exists (another op's): parked.
    let (_, mut again_create) = a.incident();
    if let OpBody::IncidentCreate { incident_id, .. } = &mut again_create.body {
        *incident_id = incident;
    }
    let fine = a.op(OpBody::AssignmentAdd {
        assignment_id: Uuid::now_v7(),
        incident_id: incident,
        unit_id: "u-01".into(),
    });
    let mut req = request(a.origin, Lane::Critical, &[unknown_incident, unknown_unit]);
    req.ops.push(future.clone());
    req.ops.push(odd);
    req.ops.push(op_json(&huge));
    req.ops.push(op_json(&again_create));
    req.ops.push(op_json(&fine));
    let (status, body) = c.push(&req);
    assert_eq!(status, 200, "{body}");
    let got = outcomes(&body);
    assert_eq!(got.len(), 7);
    assert_eq!(
        got[0],
        format!(
            "parked: incident.set_fields: incident {} is not known to the server",
            Uuid::from_u128(42)
        )
    );
    assert_eq!(
        got[1],
        "parked: assignment.add: unit u-99 is not known to the server"
    );
    assert_eq!(
        got[2],
        "parked: schema version 2 is newer than this server knows (1); upgrade the server"
    );
    assert!(
        got[3].starts_with("parked: ops[3].body.kind: unknown variant `incident.teleport`"),
        "{}",
        got[3]
    );
    assert_eq!(
        got[4],
        "parked: base_version 18446744073709551615 is out of range (at most 9223372036854775807)"
    );
    assert_eq!(
        got[5],
        format!("parked: incident.create: incident {incident} already exists")
    );
    assert_eq!(got[6], "accepted 3");
    // The re-send of the future op gets the same answer.
    let mut again = request(a.origin, Lane::Critical, &[]);
    again.ops.push(future);
    let (_, body) = c.push(&again);
    assert_eq!(
        outcomes(&body),
        ["parked: schema version 2 is newer than this server knows (1); upgrade the server"]
    );
}

#[test]
fn undecodable_and_truncated_pushes_are_400_naming_the_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let before = gseq_of(&c);
    let note = a.note(incident, "n");
    let good = serde_json::to_vec(&request(a.origin, Lane::Notes, std::slice::from_ref(&note)))
        .expect("json");

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"hello".to_vec(), "body: expected value at line 1 column 1"),
        (good[..good.len() / 2].to_vec(), "ops[0].body: EOF while parsing a string"),
        (b"{}".to_vec(), "body: missing field `protocol`"),
        (
            br#"{"protocol":1,"origin":"x","lane":"notes","epoch":null,"cursor":0,"ops":[]}"#
                .to_vec(),
            "origin: UUID parsing failed",
        ),
        (
            format!(
                r#"{{"protocol":1,"origin":"{}","lane":"notes","epoch":null,"cursor":0,"ops":{{}}}}"#,
                a.origin
            )
            .into_bytes(),
            "ops: invalid type: map, expected a sequence",
        ),
        (
            format!(
                r#"{{"protocol":1,"origin":"{}","lane":"sideways","epoch":null,"cursor":0,"ops":[]}}"#,
                a.origin
            )
            .into_bytes(),
            "lane: unknown variant `sideways`",
        ),
        (
            format!(
                r#"{{"protocol":1,"origin":"{}","lane":"notes","epoch":null,"cursor":0,"ops":[{{"op_id":"{}"}}]}}"#,
                a.origin, note.op_id
            )
            .into_bytes(),
            "ops[0]: missing field `origin`",
        ),
        (
            [good.as_slice(), b"trailing"].concat(),
            "body: trailing characters",
        ),
    ];
    for (body, expected) in cases {
        let (status, e) = c.push_raw(body);
        assert_eq!(status, 400, "{e}");
        assert_eq!(e["code"], "bad_request");
        let msg = e["message"].as_str().unwrap_or("");
        assert!(
            msg.starts_with(expected),
            "{msg:?} should start with {expected:?}"
        );
    }
    // Wrong protocol version.
    let mut req = request(a.origin, Lane::Notes, std::slice::from_ref(&note));
    req.protocol = 2;
    let (status, e) = c.push(&req);
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        "protocol: version 2 is not served here (this server speaks 1)"
    );
    assert_eq!(gseq_of(&c), before);
    // The good push still works afterwards: nothing half-stored.
    let r = push_ok(&c, a.origin, Lane::Notes, &[note]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["accepted 3"]
    );
}

#[test]
fn ops_of_another_origin_or_lane_are_400_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let mut b = Author::new(2);
    let incident = seed(&c, &mut a);
    let n1 = a.note(incident, "mine");
    let other = b.note(incident, "someone else's");
    let (status, e) = c.push(&request(a.origin, Lane::Notes, &[n1.clone(), other]));
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        format!(
            "ops[1].origin: {} is not the pushing origin {}",
            b.origin, a.origin
        )
    );
    let (_, inc) = a.incident();
    let (status, e) = c.push(&request(a.origin, Lane::Notes, &[n1.clone(), inc]));
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        "ops[1].lane: Critical in a push of lane Notes"
    );
    let mut zero = op_json(&n1);
    zero["lane_seq"] = json!(0);
    let mut req = request(a.origin, Lane::Notes, &[]);
    req.ops.push(zero);
    let (status, e) = c.push(&req);
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        "ops[0].lane_seq: lane sequence numbers start at 1"
    );
    assert_eq!(gseq_of(&c), 2);
    // n1 was not stored: it is accepted now, not a duplicate.
    let r = push_ok(&c, a.origin, Lane::Notes, &[n1]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["accepted 3"]
    );
}

#[test]
fn too_many_ops_or_bytes_are_413() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let notes: Vec<_> = (0..=MAX_BATCH_OPS)
        .map(|i| a.note(incident, &format!("{i}")))
        .collect();
    let (status, e) = c.push(&request(a.origin, Lane::Notes, &notes));
    assert_eq!(status, 413, "{e}");
    assert_eq!(e["code"], "too_large");
    assert_eq!(
        e["message"],
        "ops: 1001 ops in one push; at most 1000 are accepted"
    );
    // Exactly the limit is fine.
    let r = push_ok(&c, a.origin, Lane::Notes, &notes[..MAX_BATCH_OPS]);
    assert_eq!(r.high_water, 1000);
    // A body over 4 MiB.
    let mut big = a.note(incident, "x");
    if let OpBody::TimelineAppend { text, .. } = &mut big.body {
        *text = "x".repeat(MAX_PUSH_BYTES);
    }
    let (status, e) = c.push(&request(a.origin, Lane::Notes, &[big]));
    assert_eq!(status, 413);
    assert_eq!(e["code"], "too_large");
    assert_eq!(gseq_of(&c), 1002);
}

#[test]
fn a_cursor_beyond_the_newest_gseq_starts_a_new_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let (_, h) = c.get("/v1/health");
    let old_epoch: Uuid = serde_json::from_value(h["epoch"].clone()).expect("epoch");

    // The console knew gseq 7: the server lost ops (restored from a backup).
    let note = a.note(incident, "after restore");
    let mut req = request(a.origin, Lane::Notes, std::slice::from_ref(&note));
    req.epoch = Some(old_epoch);
    req.cursor = 7;
    let (status, e) = c.push(&req);
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["code"], "epoch_changed");
    let new_epoch: Uuid = serde_json::from_value(e["epoch"].clone()).expect("epoch");
    assert_ne!(new_epoch, old_epoch);
    let (_, h) = c.get("/v1/health");
    assert_eq!(h["epoch"], json!(new_epoch));
    assert_eq!(h["server_gseq"], 2 + EPOCH_GSEQ_GAP);

    // Pushing with the old epoch: 409 with the current one, nothing stored.
    let (status, e) = c.push(&req);
    assert_eq!(status, 409);
    assert_eq!(e["epoch"], json!(new_epoch));
    // Resynced: cursor 0 and the new epoch.
    req.epoch = Some(new_epoch);
    req.cursor = 0;
    let (status, body) = c.push(&req);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        outcomes(&body),
        [format!("accepted {}", 3 + EPOCH_GSEQ_GAP)]
    );
    let all = pull(&c, 0, 100);
    assert_eq!(
        all.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(),
        [1, 2, 3 + EPOCH_GSEQ_GAP]
    );
    assert_eq!(all.epoch, new_epoch);

    // A pull beyond the newest gseq without an epoch proves nothing: 400, same epoch.
    let (status, e) = c.get(&format!("/v1/pull?after={}", 10 + EPOCH_GSEQ_GAP));
    assert_eq!(status, 400, "{e}");
    let (_, h) = c.get("/v1/health");
    assert_eq!(h["epoch"], json!(new_epoch));
    // A made-up epoch from the future proves nothing either.
    let future = Uuid::from_u128(u128::MAX >> 2);
    let (status, e) = c.get(&format!("/v1/pull?after=0&epoch={future}"));
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["epoch"], json!(new_epoch));
    // A console of this epoch pulling beyond the newest gseq reveals a restore.
    let (status, e) = c.get(&format!(
        "/v1/pull?after={}&epoch={new_epoch}",
        10 + EPOCH_GSEQ_GAP
    ));
    assert_eq!(status, 409);
    assert_eq!(e["code"], "epoch_changed");
    assert_ne!(e["epoch"], json!(new_epoch));
}

#[test]
fn a_console_of_another_epoch_never_starts_a_new_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let (_, h) = c.get("/v1/health");
    let epoch: Uuid = serde_json::from_value(h["epoch"].clone()).expect("epoch");

    // A console that synced with another server (another epoch) and knew gseq 7 there.
    let mut b = Author::new(2);
    let note = b.note(incident, "from a console of another server");
    let mut req = request(b.origin, Lane::Notes, std::slice::from_ref(&note));
    req.epoch = Some(Uuid::from_u128(99));
    req.cursor = 7;
    let (status, e) = c.push(&req);
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["epoch"], json!(epoch), "told the current epoch");
    let (status, e) = c.get(&format!("/v1/pull?after=7&epoch={}", Uuid::from_u128(99)));
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["epoch"], json!(epoch));
    // The server's epoch and numbering are untouched.
    let (_, h) = c.get("/v1/health");
    assert_eq!(h["epoch"], json!(epoch));
    assert_eq!(h["server_gseq"], 2);
    // With the current epoch, a pull answers normally.
    let (status, page) = c.get(&format!("/v1/pull?after=0&epoch={epoch}"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["ops"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_push_that_is_not_json_is_refused_with_415_and_a_huge_after_with_400() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let unit = a.unit("u-01");
    let req = request(a.origin, Lane::Critical, std::slice::from_ref(&unit));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/push", c.base))
        .header("content-type", "text/plain")
        .body(serde_json::to_vec(&req).expect("json"))
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 415);
    let e: serde_json::Value = r.json().expect("error body");
    assert_eq!(e["code"], "unsupported_media_type");
    let (_, h) = c.get("/v1/health");
    assert_eq!(h["server_gseq"], 0, "nothing stored");
    let (status, e) = c.get("/v1/pull?after=18446744073709551615");
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("after=")),
        "{e}"
    );
}

#[test]
fn a_compaction_floor_beyond_the_newest_op_never_sends_a_caught_up_console_to_a_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, c) = start(dir.path());
    let mut a = Author::new(1);
    seed(&c, &mut a); // gseq 1, 2
    let report = server
        .service()
        .with_storage(|s| s.compact(1_000_000))
        .expect("compact");
    assert_eq!(report.floor, 3, "clamped to the newest gseq + 1");
    // Caught up (after = 2): an empty page, not 410.
    let (status, page) = c.get("/v1/pull?after=2");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["ops"].as_array().map(Vec::len), Some(0));
}

#[test]
fn compaction_answers_410_and_the_snapshot_keeps_the_fixes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a); // 1, 2
    let positions: Vec<_> = (0..10).map(|i| a.position("u-01", i)).collect(); // 3..=12
    push_ok(&c, a.origin, Lane::Positions, &positions);
    let note = a.note(incident, "after the positions"); // 13
    push_ok(&c, a.origin, Lane::Notes, std::slice::from_ref(&note));

    let report = server
        .service()
        .with_storage(|s| s.compact(10))
        .expect("compact");
    // gseq 3..=9 removed (7 ops); 10, 11, 12 stay (12 is the newest of u-01 anyway).
    assert_eq!(report.removed, 7);
    assert_eq!(report.floor, 10);

    let (status, e) = c.get("/v1/pull?after=0");
    assert_eq!(status, 410);
    assert_eq!(e["code"], "snapshot_required");
    let (status, _) = c.get("/v1/pull?after=8");
    assert_eq!(status, 410);
    let p = pull(&c, 9, 100);
    assert_eq!(
        p.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(),
        [10, 11, 12, 13]
    );

    let (status, body) = c.get("/v1/snapshot");
    assert_eq!(status, 200);
    let snap: Snapshot = serde_json::from_value(body).expect("snapshot");
    // The HTTP text (stored op text copied as is) is the service's snapshot.
    assert_eq!(snap, server.service().snapshot().expect("snapshot"));
    assert_eq!(
        pull(&c, 9, 100),
        server.service().pull(9, Some(100)).expect("pull")
    );
    assert_eq!(snap.gseq, 13);
    assert_eq!(
        snap.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(),
        [1, 2, 10, 11, 12, 13]
    );
    assert_eq!(snap.compacted_positions.len(), 7);
    for (i, f) in snap.compacted_positions.iter().enumerate() {
        assert_eq!(f.unit_id, "u-01");
        let OpBody::PositionReport { fix, .. } = &positions[i].body else {
            panic!("not a position");
        };
        assert_eq!(&f.fix, fix);
        assert_eq!(f.received_at_ms, positions[i].hlc.wall_ms);
    }
    // A re-send of a compacted op is still a duplicate with its gseq.
    let r = push_ok(&c, a.origin, Lane::Positions, &positions[..2]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["duplicate 3", "duplicate 4"]
    );
    // Compacting again below the floor changes nothing.
    let report = server
        .service()
        .with_storage(|s| s.compact(5))
        .expect("compact");
    assert_eq!((report.removed, report.floor), (0, 10));
}

#[test]
fn a_restart_on_the_same_data_dir_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = Author::new(1);
    let (epoch, batch, first) = {
        let (server, c) = start(dir.path());
        let incident = seed(&c, &mut a);
        let batch: Vec<_> = (0..5).map(|i| a.note(incident, &format!("{i}"))).collect();
        push_ok(&c, a.origin, Lane::Notes, &batch);
        let (_, h) = c.get("/v1/health");
        let first = pull(&c, 0, 100);
        server.shutdown().expect("shutdown");
        (h["epoch"].clone(), batch, first)
    };
    let (_server, c) = start(dir.path());
    let (_, h) = c.get("/v1/health");
    assert_eq!(h["epoch"], epoch);
    assert_eq!(h["server_gseq"], 7);
    assert_eq!(pull(&c, 0, 100), first);
    let r = push_ok(&c, a.origin, Lane::Notes, &batch);
    assert_eq!(r.results.len(), 5);
    assert!(
        r.results
            .iter()
            .all(|x| matches!(x.outcome, outpost_domain::wire::Outcome::Duplicate { .. }))
    );
    assert_eq!(r.high_water, 5);
}

#[test]
fn after_shutdown_starts_requests_get_503() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    server.service().close();
    let (status, e) = c.push(&request(a.origin, Lane::Notes, &[a.note(incident, "late")]));
    assert_eq!(status, 503);
    assert_eq!(e["code"], "unavailable");
    let (status, _) = c.get("/v1/pull?after=0");
    assert_eq!(status, 503);
    let (status, h) = c.get("/v1/health");
    assert_eq!(status, 200);
    assert_eq!(h["status"], "shutting_down");
    server.shutdown().expect("shutdown");
}

#[test]
fn the_poke_socket_announces_new_gseqs() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().expect("temp dir");
    let (server, c) = start(dir.path());
    let mut a = Author::new(1);
    let incident = seed(&c, &mut a);
    let url = format!("ws://{}/v1/poke", server.local_addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect");
        let next = |m: Option<Result<Message, _>>| -> Value {
            match m {
                Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).expect("poke json"),
                other => panic!("expected a text message, got {other:?}"),
            }
        };
        let first = next(ws.next().await);
        assert_eq!(first["gseq"], 2);
        let note = a.note(incident, "poke me");
        let base = c.base.clone();
        let origin = a.origin;
        tokio::task::spawn_blocking(move || {
            let c = Client::new(base);
            c.push(&request(origin, Lane::Notes, &[note]))
        })
        .await
        .expect("push");
        let poke = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a poke within 10 s");
        let poke = next(poke);
        assert_eq!(poke["gseq"], 3);
        assert_eq!(poke["epoch"], first["epoch"]);

        // A burst of 20 commits: merged pokes (at most one per 250 ms), the last one
        // announcing the newest gseq.
        let notes: Vec<_> = (0..20)
            .map(|i| a.note(incident, &format!("burst {i}")))
            .collect();
        let base = c.base.clone();
        tokio::task::spawn_blocking(move || {
            let c = Client::new(base);
            for n in notes {
                let (status, _) = c.push(&request(origin, Lane::Notes, &[n]));
                assert_eq!(status, 200);
            }
        })
        .await
        .expect("pushes");
        let mut seen = Vec::new();
        while let Ok(m) =
            tokio::time::timeout(std::time::Duration::from_millis(800), ws.next()).await
        {
            seen.push(next(m)["gseq"].as_u64().expect("gseq"));
        }
        assert_eq!(seen.last(), Some(&23));
        assert!(seen.len() < 20, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    });
    // Shutdown closes the socket instead of hanging.
    server.shutdown().expect("shutdown");
}

#[test]
fn the_servers_replica_applies_accepted_ops_with_their_gseq() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = Author::new(1);
    {
        let (server, c) = start(dir.path());
        let incident = seed(&c, &mut a);
        push_ok(&c, a.origin, Lane::Notes, &[a.note(incident, "n")]);
        server.shutdown().expect("shutdown");
    }
    let store = outpost_store::Store::open(
        &dir.path().join(outpost_server::storage::sqlite::DB_FILE),
        chrono::Utc::now(),
    )
    .expect("open replica");
    let rows: Vec<(String, Option<i64>)> = {
        let mut stmt = store
            .conn()
            .prepare("SELECT kind, gseq FROM ops ORDER BY gseq")
            .expect("ledger");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(
        rows,
        [
            ("unit.register".to_string(), Some(1)),
            ("incident.create".to_string(), Some(2)),
            ("timeline.append".to_string(), Some(3)),
        ]
    );
}

#[test]
fn location_in_range_is_accepted() {
    // Guards the S9 test's premise: the same op with a valid latitude is accepted.
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, c) = start(dir.path());
    let mut a = Author::new(1);
    let (_, mut op) = a.incident();
    if let OpBody::IncidentCreate { location, .. } = &mut op.body {
        *location = LatLon {
            lat: 90.0,
            lon: -180.0,
        };
    }
    let r = push_ok(&c, a.origin, Lane::Critical, &[op]);
    assert_eq!(
        outcomes(&serde_json::to_value(&r).expect("json")),
        ["accepted 1"]
    );
}

#[test]
fn a_push_in_flight_at_shutdown_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = Author::new(1);
    let (server, c) = start(dir.path());
    let incident = seed(&c, &mut a);
    let notes: Vec<_> = (0..MAX_BATCH_OPS)
        .map(|i| a.note(incident, &format!("{i}")))
        .collect();
    let req = request(a.origin, Lane::Notes, &notes);
    let base = c.base.clone();
    let pusher = std::thread::spawn(move || Client::new(base).try_push(&req));
    std::thread::sleep(std::time::Duration::from_millis(30));
    server.shutdown().expect("shutdown");
    let answer = pusher.join().expect("pusher");
    let (_server, c) = start(dir.path());
    let stored = gseq_of(&c) - 2;
    match answer {
        Some((200, body)) => {
            // Answered: every op of it is stored.
            assert_eq!(outcomes(&body).len(), MAX_BATCH_OPS);
            assert_eq!(stored, MAX_BATCH_OPS as u64);
        }
        // Refused or cut off: all of it or none of it.
        other => assert!(
            stored == 0 || stored == MAX_BATCH_OPS as u64,
            "{stored} ops stored after {other:?}"
        ),
    }
}
