//! S14: op schema versions differ between a console and the server.
//!
//! - A console newer than the server pushes an op of a newer schema in the middle of a
//!   batch: the server parks it with a reason (not dropped, not in the log), the rest of the
//!   batch is accepted, the author keeps it under "needs attention" and un-applies it, and
//!   keeps working.
//! - The server was upgraded and its log holds an op of a newer schema than a console on the
//!   old build reads: the console keeps it aside (deferred), counts it in `sync_status`, its
//!   cursor moves past it, and it keeps writing and syncing.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use outpost_app::ipc::{AddNote, NewIncident};
use outpost_app::{Console, ConsoleOptions};
use outpost_domain::SystemClock;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::IncidentType;
use outpost_domain::op::{Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};
use outpost_sync::SyncEngine;

use crate::common::*;
use crate::extract;

fn note_entry(op: &OpEnvelope) -> Option<String> {
    match &op.body {
        OpBody::TimelineAppend { entry_id, .. } => Some(entry_id.to_string()),
        _ => None,
    }
}

#[test]
fn s14_pushed_newer_schema_op_is_parked_with_a_reason_not_dropped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.path().join("server"), addr);
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    act(&a, &create_incident("fire", "P1"));
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    let fire = incident_named(&a, "fire").to_string();

    // Three notes offline; the middle one is of a schema newer than the server knows (the
    // console was upgraded before the server).
    act(
        &a,
        &format!(
            "{}{}{}",
            note(&fire, "first"),
            note(&fire, "newer schema"),
            note(&fire, "third")
        ),
    );
    let notes: Vec<OpEnvelope> = lock(&a)
        .pending_batch(Lane::Notes, 10)
        .expect("pending notes");
    assert_eq!(notes.len(), 3);
    let newer = &notes[1];
    let changed = lock(&a)
        .conn()
        .execute(
            "UPDATE outbox SET envelope = json_set(envelope, '$.schema', ?2) WHERE op_id = ?1",
            rusqlite::params![newer.op_id.to_string(), SCHEMA_VERSION + 1],
        )
        .expect("tamper schema");
    assert_eq!(changed, 1);

    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");

    // Parked on the server with a reason naming the schema; not in the log.
    let parked = srv.service().parked().expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].key.op_id, newer.op_id);
    assert!(
        parked[0].reason.contains("schema"),
        "reason: {}",
        parked[0].reason
    );
    let log = server_log(srv.service());
    assert!(log.iter().all(|(_, op)| op.op_id != newer.op_id));
    for n in [&notes[0], &notes[2]] {
        assert!(
            log.iter().any(|(_, op)| op.op_id == n.op_id),
            "the rest of the batch is accepted"
        );
    }
    // Kept by its author with the reason; un-applied there; absent everywhere else.
    let mine = lock(&a).parked().expect("parked here");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].envelope.op_id, newer.op_id);
    assert_eq!(mine[0].reason, parked[0].reason);
    let newer_entry = note_entry(newer).expect("a note");
    for (name, s) in [("A", &a), ("B", &b)] {
        let state = extract::state(lock(s).conn());
        assert!(
            state.row("timeline", &newer_entry).is_none(),
            "{name} shows the parked note"
        );
        for n in [&notes[0], &notes[2]] {
            assert!(
                state
                    .row("timeline", &note_entry(n).expect("note"))
                    .is_some(),
                "{name} lacks an accepted note"
            );
        }
    }

    // The console keeps working.
    act(&a, &note(&fire, "after the parked one"));
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    assert_eq!(pending(&a), 0);
    assert_eq!(digest(&a), digest(&b));
    let dump = server_dump(srv.service());
    assert_eq!(dump.digest.as_ref(), Some(&digest(&a)));
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &[position(&a)], true),
            replica("console B", &b, &[position(&b)], true),
        ],
        14,
    );
}

#[test]
fn s14_pulled_newer_schema_op_is_deferred_counted_and_the_console_keeps_working() {
    let tmp = tempfile::tempdir().expect("tmp");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&tmp.path().join("server"), addr);

    // Console A: the real console (use-cases, sync attached), on the old build.
    let a = Arc::new(
        Console::open(
            ConsoleOptions {
                pack: None,
                data_dir: tmp.path().join("a"),
                demo: false,
                user: "cmdr.a".into(),
            },
            Arc::new(SystemClock),
        )
        .expect("console"),
    );
    let link = outpost_app::sync::start(&a, &url, quick()).expect("attach sync");
    let a_store = a.store_handle();
    let fire = a
        .create_incident(NewIncident {
            incident_type: IncidentType::Fire,
            priority: None,
            location: LatLon {
                lat: 42.5,
                lon: 1.52,
            },
            address: "Carrer Major 1".into(),
            description: "smoke".into(),
        })
        .expect("create")
        .summary
        .id;
    assert!(wait_until(30, || caught_up(&a_store, srv.service())));

    // The upgraded server logs an op of schema SCHEMA_VERSION + 1 from a newer console: a
    // note with a field this build does not know.
    let head = srv.service().head().expect("head");
    let fire_id = Uuid::parse_str(&fire).expect("uuid");
    let entry_id = Uuid::now_v7();
    let env = OpEnvelope {
        op_id: Uuid::now_v7(),
        origin: Uuid::now_v7(),
        seq: 1,
        hlc: Hlc {
            wall_ms: Utc::now().timestamp_millis(),
            logical: 0,
        },
        base_version: Some(head.gseq),
        user: "cmdr.newer".into(),
        schema: SCHEMA_VERSION + 1,
        lane: Lane::Notes,
        lane_seq: 1,
        body: OpBody::TimelineAppend {
            entry_id,
            incident_id: fire_id,
            text: "with a photo".into(),
        },
        auth: None,
    };
    let mut raw = serde_json::to_value(&env).expect("json");
    raw["body"]["attachments"] = serde_json::json!([{"kind": "photo", "sha256": "ab12"}]);
    let gseq = srv
        .service()
        .with_storage(|s| -> Result<u64, String> {
            let mut tx = s.begin().map_err(|e| e.to_string())?;
            let g = tx
                .accept(&env, &raw.to_string())
                .map_err(|e| e.to_string())??;
            tx.commit().map_err(|e| e.to_string())?;
            Ok(g)
        })
        .expect("the upgraded server logs it");

    // A keeps working: a new note and an incident written after the newer op.
    a.add_note(AddNote {
        incident_id: fire.clone(),
        text: "second crew on the way".into(),
    })
    .expect("note");
    assert!(
        wait_until(30, || caught_up(&a_store, srv.service())),
        "A catches up past the newer op: {:?}",
        a.sync_status()
    );
    assert!(position(&a_store).cursor > gseq);
    let status = a.sync_status().expect("status");
    assert_eq!(status.deferred, 1, "{status:?}");
    assert_eq!(
        status.pending.critical + status.pending.notes + status.pending.positions,
        0
    );
    let state = extract::state(lock(&a_store).conn());
    assert!(
        state.row("timeline", &entry_id.to_string()).is_none(),
        "an op this build cannot read is not applied"
    );
    // Still unreadable after a retry (no upgrade happened); still kept.
    assert_eq!(lock(&a_store).retry_deferred().expect("retry"), 0);
    assert_eq!(lock(&a_store).deferred_count().expect("count"), 1);

    // A second old console converges with A; the server (which reads the op) differs only in
    // the timeline, by exactly that note.
    let b = console(&tmp.path().join("b"));
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    assert_eq!(lock(&b).deferred_count().expect("count"), 1);
    let da = digest(&a_store);
    assert_eq!(digest(&b), da);
    let server_digest = srv
        .service()
        .with_storage(|s| s.state_digest())
        .expect("server digest");
    for (table, h) in &da {
        if table == "timeline" {
            assert_ne!(server_digest.get(table), Some(h));
        } else {
            assert_eq!(server_digest.get(table), Some(h), "table {table}");
        }
    }
    link.shutdown();

    // The invariants over what this build reads: the log without the newer op.
    let mut dump = server_dump_readable(srv.service());
    dump.log.retain(|(_, op)| op.schema <= SCHEMA_VERSION);
    dump.digest = None;
    assert_invariants(
        &dump,
        &[
            replica("console A", &a_store, &[position(&a_store)], true),
            replica("console B", &b, &[position(&b)], true),
        ],
        141,
    );
}

/// [`server_dump`] for a log that may hold ops this build cannot decode (left out).
fn server_dump_readable(service: &outpost_server::SyncService) -> outpost_check::ServerDump {
    outpost_check::ServerDump {
        log: server_log(service),
        parked: service
            .parked()
            .expect("parked")
            .into_iter()
            .map(|p| (p.key.op_id, p.reason))
            .collect(),
        ..outpost_check::ServerDump::default()
    }
}
