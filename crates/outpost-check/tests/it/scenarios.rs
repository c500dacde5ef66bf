//! Scenarios S2, S6, S7, S8 of `design/SYNC.md` on real consoles and the real server logic.

use chrono::Duration;
use serde_json::json;

use outpost_app::ipc::{
    CloseIncident, NewIncident, ResolveConflict, UnitOnIncident, UpdateIncident,
};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::merge::ConflictKind;
use outpost_domain::op::{IncidentFields, Lane};

use crate::harness::{Action, PullFault, PushFault, World};

const HOUR_MS: i64 = 3_600_000;

/// Node `i` creates an incident; returns its id.
fn create(w: &World, i: usize, address: &str) -> String {
    w.nodes[i]
        .console
        .create_incident(NewIncident {
            incident_type: IncidentType::Theft,
            priority: None,
            location: LatLon {
                lat: 42.5,
                lon: 1.52,
            },
            address: address.into(),
            description: "bike stolen".into(),
        })
        .expect("create incident")
        .summary
        .id
}

fn update(w: &World, i: usize, id: &str, fields: IncidentFields) {
    w.nodes[i]
        .console
        .update_incident(UpdateIncident {
            incident_id: id.into(),
            fields,
        })
        .expect("update incident");
}

fn prio(p: Priority) -> IncidentFields {
    IncidentFields {
        priority: Some(p),
        ..IncidentFields::default()
    }
}

fn incident_field(w: &World, i: usize, id: &str, col: &str) -> serde_json::Value {
    w.state(i)
        .row("incidents", id)
        .unwrap_or_else(|| panic!("incident {id} missing on node {i}"))[col]
        .clone()
}

/// Resolves conflict `conflict_id` on node `i`, keeping the side written by `keep_user`.
fn resolve(w: &World, i: usize, conflict_id: &str, keep_user: &str) {
    let c = &w.nodes[i].console;
    let list = c.conflicts().expect("conflicts");
    let view = list
        .iter()
        .find(|v| v.id == conflict_id)
        .unwrap_or_else(|| panic!("node {i} does not show {conflict_id}: {list:?}"));
    let keep = view
        .sides
        .iter()
        .find(|s| s.user == keep_user)
        .unwrap_or_else(|| panic!("no side by {keep_user} in {view:?}"));
    c.resolve_conflict(ResolveConflict {
        conflict_id: conflict_id.into(),
        keep_op_id: keep.op_id.clone(),
        note: "checked by radio".into(),
    })
    .expect("resolve conflict");
}

/// S7a: three consoles edit different fields of one incident offline: no conflict, every
/// edit kept everywhere.
#[test]
fn s7_different_fields_on_three_consoles_merge_without_conflict() {
    let mut w = World::new(3, &[]);
    let id = create(&w, 0, "Carrer Major 1");
    w.sync_all();
    w.advance(60_000);
    update(&w, 0, &id, prio(Priority::P1));
    update(
        &w,
        1,
        &id,
        IncidentFields {
            incident_type: Some(IncidentType::Assault),
            ..IncidentFields::default()
        },
    );
    update(
        &w,
        2,
        &id,
        IncidentFields {
            address: Some("Carrer Major 3".into()),
            ..IncidentFields::default()
        },
    );
    w.heal_and_check(7);
    for i in 0..3 {
        assert!(w.conflicts(i).is_empty(), "node {i}: {:?}", w.conflicts(i));
        assert_eq!(incident_field(&w, i, &id, "priority"), json!("P1"));
        assert_eq!(
            incident_field(&w, i, &id, "incident_type"),
            json!("assault")
        );
        assert_eq!(
            incident_field(&w, i, &id, "address"),
            json!("Carrer Major 3")
        );
    }
}

/// S7b: the same critical field on three consoles: one conflict on every replica, the
/// same value shown everywhere; resolving it on one console clears it everywhere.
#[test]
fn s7_same_critical_field_on_three_consoles_conflicts_until_resolved() {
    let mut w = World::new(3, &[]);
    let id = create(&w, 0, "Carrer Major 1");
    w.sync_all();
    w.advance(60_000);
    update(&w, 0, &id, prio(Priority::P1));
    update(&w, 1, &id, prio(Priority::P2));
    update(&w, 2, &id, prio(Priority::P4));
    w.heal_and_check(71);
    let cid = format!("field:{id}:priority");
    let shown = incident_field(&w, 0, &id, "priority");
    for i in 0..3 {
        assert_eq!(
            w.conflicts(i).into_iter().collect::<Vec<_>>(),
            vec![cid.clone()]
        );
        assert_eq!(incident_field(&w, i, &id, "priority"), shown);
    }
    let views = w.nodes[1].console.conflicts().expect("conflicts");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].kind, ConflictKind::Field);
    assert_eq!(views[0].sides.len(), 3, "{views:?}");
    assert_eq!(views[0].sides.iter().filter(|s| s.shown).count(), 1);

    w.advance(60_000);
    resolve(&w, 1, &cid, "cmdr.2"); // keep P4
    w.heal_and_check(72);
    for i in 0..3 {
        assert!(w.conflicts(i).is_empty(), "node {i}: {:?}", w.conflicts(i));
        assert_eq!(incident_field(&w, i, &id, "priority"), json!("P4"));
    }
}

/// S7c: an edit and an assignment concurrent with a close: edit-after-close conflicts on
/// every replica; resolving them clears them everywhere.
#[test]
fn s7_edit_and_assignment_concurrent_with_close_conflict_until_resolved() {
    let mut w = World::new(3, &[]);
    let id = create(&w, 0, "Carrer Major 1");
    w.sync_all();
    w.advance(60_000);
    w.nodes[0]
        .console
        .close_incident(CloseIncident {
            incident_id: id.clone(),
            disposition: Disposition::ReportTaken,
            summary: "gone on arrival".into(),
        })
        .expect("close");
    update(
        &w,
        1,
        &id,
        IncidentFields {
            description: Some("suspect seen on foot".into()),
            ..IncidentFields::default()
        },
    );
    w.nodes[2]
        .console
        .assign_unit(UnitOnIncident {
            incident_id: id.clone(),
            unit_id: "u-01".into(),
        })
        .expect("assign");
    w.heal_and_check(73);
    let ids = w.conflicts(0);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|c| c.starts_with(&format!("closed:{id}:"))));
    for i in 1..3 {
        assert_eq!(w.conflicts(i), ids);
    }
    assert_eq!(
        incident_field(&w, 2, &id, "disposition"),
        json!("report_taken")
    );

    w.advance(60_000);
    for cid in &ids {
        resolve(&w, 0, cid, "cmdr.0"); // keep the close
    }
    w.heal_and_check(74);
    for i in 0..3 {
        assert!(w.conflicts(i).is_empty(), "node {i}: {:?}", w.conflicts(i));
    }
    // Keeping the close ends the assignment made after it; the unit is free again.
    let unit = w.state(2).row("units", "u-01").cloned().expect("unit");
    assert_eq!(unit["status"], json!("available"), "{unit}");
}

/// S8: one unit assigned to two incidents by two disconnected consoles: both assignments and
/// a double-assignment conflict on every replica; releasing one clears it everywhere.
#[test]
fn s8_double_assignment_is_surfaced_everywhere_then_resolved() {
    let mut w = World::new(3, &[]);
    let a = create(&w, 0, "Carrer A");
    let b = create(&w, 1, "Carrer B");
    w.sync_all();
    w.advance(60_000);
    for (i, inc) in [(0, &a), (1, &b)] {
        w.nodes[i]
            .console
            .assign_unit(UnitOnIncident {
                incident_id: inc.clone(),
                unit_id: "u-02".into(),
            })
            .expect("assign");
    }
    w.heal_and_check(8);
    for i in 0..3 {
        assert_eq!(
            w.conflicts(i).into_iter().collect::<Vec<_>>(),
            vec!["double:u-02".to_string()]
        );
        let active = w
            .state(i)
            .table("assignments")
            .filter(|(_, r)| r["unit_id"] == json!("u-02") && r["released_at"].is_null())
            .count();
        assert_eq!(active, 2, "node {i}");
    }
    w.advance(60_000);
    resolve(&w, 2, "double:u-02", "cmdr.1"); // keep console 1's assignment (incident B)
    w.heal_and_check(81);
    for i in 0..3 {
        assert!(w.conflicts(i).is_empty(), "node {i}: {:?}", w.conflicts(i));
        let active: Vec<String> = w
            .state(i)
            .table("assignments")
            .filter(|(_, r)| r["unit_id"] == json!("u-02") && r["released_at"].is_null())
            .map(|(_, r)| r["incident_id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(active, vec![b.clone()], "node {i}");
        let unit = w.state(i).row("units", "u-02").cloned().expect("unit");
        assert_eq!(unit["status"], json!("dispatched"), "node {i}");
    }
}

/// S2: every push delivered 2–3 times (including an answer lost after the server committed)
/// and every pull page applied twice: nothing lost, nothing doubled, all converge.
#[test]
fn s2_every_push_delivered_repeatedly_and_every_page_twice() {
    let mut w = World::new(3, &[]);
    let script = [
        Action::Create { kind: 0 },
        Action::Create { kind: 1 },
        Action::Assign { inc: 0, unit: 0 },
        Action::Note { inc: 0 },
        Action::Position { unit: 0, secs: 5 },
        Action::SetPriority { inc: 1, p: 0 },
        Action::Acknowledge { inc: 1 },
        Action::Status { unit: 0, to: 2 },
        Action::Position { unit: 1, secs: 9 },
        Action::Note { inc: 1 },
        Action::Close { inc: 0, d: 1 },
    ];
    for (step, a) in script.iter().enumerate() {
        for i in 0..3 {
            w.act(i, a);
            w.advance(1_000);
            for lane in [Lane::Critical, Lane::Notes, Lane::Positions] {
                // Answer lost after commit, then a double delivery of the retry.
                w.push(i, lane, PushFault::ResponseLost);
                w.push(i, lane, PushFault::Twice);
                if step % 3 == 0 {
                    w.push(i, lane, PushFault::Twice);
                }
            }
            w.pull(i, PullFault::Twice);
        }
    }
    let model = w.heal_and_check(2);
    let log_len = model.len();
    let outboxes: usize = w.replicas().iter().map(|r| r.outbox.len()).sum::<usize>();
    assert_eq!(log_len, outboxes, "every op in the log exactly once");
}

/// S6: clocks −3 h, +3 h, +27 h; a wall clock jumping back while offline; a reboot while
/// offline. Skew never rejects anything and never lets a stale write beat an informed one.
#[test]
fn s6_clock_skew_jumps_and_reboot_do_not_break_convergence() {
    let mut w = World::new(3, &[-3 * HOUR_MS, 3 * HOUR_MS, 27 * HOUR_MS]);
    let id = create(&w, 2, "Carrer Major 1");
    w.sync_all();
    // The +27 h console writes P4; the −3 h console pulls it and then writes P1, informed:
    // P1 wins everywhere, no conflict, although its clock is 30 h behind.
    update(&w, 2, &id, prio(Priority::P4));
    w.drain(2);
    w.pull(0, PullFault::None);
    update(&w, 0, &id, prio(Priority::P1));
    w.heal_and_check(6);
    for i in 0..3 {
        assert_eq!(
            incident_field(&w, i, &id, "priority"),
            json!("P1"),
            "node {i}"
        );
        assert!(w.conflicts(i).is_empty(), "node {i}: {:?}", w.conflicts(i));
    }

    // Console 1 goes offline; its wall clock jumps back 2 h; it keeps working, reboots, and
    // works on. Its ops keep increasing HLC stamps.
    w.nodes[1].skew_ms = 3 * HOUR_MS - 2 * HOUR_MS;
    w.advance(1_000);
    w.act(1, &Action::Note { inc: 0 });
    w.act(1, &Action::Assign { inc: 0, unit: 3 });
    w.reboot(1);
    w.advance(1_000);
    w.act(1, &Action::Status { unit: 3, to: 2 });
    w.act(1, &Action::Position { unit: 3, secs: -30 });
    let ops: Vec<_> = w.replicas()[1]
        .outbox
        .iter()
        .map(|e| e.op.clone())
        .collect();
    for pair in ops.windows(2) {
        assert!(pair[0].hlc < pair[1].hlc, "HLC went back: {pair:?}");
        assert_eq!(pair[0].seq + 1, pair[1].seq);
    }
    // Meanwhile a concurrent priority change on the +27 h console is a conflict however the
    // clocks lie.
    update(&w, 2, &id, prio(Priority::P2));
    update(&w, 1, &id, prio(Priority::P3));
    w.heal_and_check(61);
    for i in 0..3 {
        assert_eq!(
            w.conflicts(i).into_iter().collect::<Vec<_>>(),
            vec![format!("field:{id}:priority")]
        );
    }
    // The HLC wall time of the op, not arrival, is the time shown; skewed times are kept.
    let created = incident_field(&w, 0, &id, "created_at");
    assert_eq!(
        created,
        json!((crate::harness::t0() + Duration::milliseconds(27 * HOUR_MS)).timestamp_millis())
    );
}

/// Lanes pushed out of order (notes before critical — the reorder S1 injects): a note on an
/// incident created offline reaches the server before the incident and is parked for good
/// ("incident … is not known to the server"), although the incident arrives a moment later.
/// I1 still holds (parked, with the reason shown to its author under "needs attention"), but
/// the note is lost from every other replica. The real engine always drains the critical lane
/// first, so only a client that pushes lanes independently meets this; see the report.
#[test]
fn notes_pushed_before_their_incident_are_parked_not_held() {
    let mut w = World::new(2, &[]);
    let id = create(&w, 0, "Carrer Major 1");
    assert!(w.act(0, &Action::Note { inc: 0 }));
    assert!(w.push(0, Lane::Notes, PushFault::None));
    w.heal_and_check(91);
    let parked = w.nodes[0].console.parked_ops().expect("parked ops");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].kind, "timeline.append");
    assert!(
        parked[0].reason.contains("not known"),
        "{}",
        parked[0].reason
    );
    // The incident itself synced; the note is on no replica.
    for i in 0..2 {
        let notes = w
            .state(i)
            .table("timeline")
            .filter(|(_, r)| r["incident_id"] == json!(id) && r["event"]["kind"] == json!("note"))
            .count();
        assert_eq!(notes, 0, "node {i}");
    }
}

/// S12 end to end, for the contract gap the model shows
/// (`model::an_informed_write_stays_informed_after_a_server_restore`): console 1 changes a
/// priority having seen console 0's change; the server is then restored from a backup that
/// lost both; after the resync the two writes carry new gseqs but the old `base_version`, and
/// every console shows a field conflict nobody made.
#[test]
#[ignore = "known limitation (ARCHITECTURE.md, restore): ops re-pushed after a restore get new \
            gseqs while later ops' base_version still counts the old ones, so an informed write \
            can show as a conflict (never as a silent overwrite)"]
fn s12_an_informed_write_is_not_a_conflict_after_a_restore() {
    let mut w = World::new(2, &[]);
    let id = create(&w, 0, "Carrer Major 1");
    w.sync_all();
    let backup = w.server.dir.path().with_extension("backup.db");
    w.server.backup(&backup);
    update(&w, 0, &id, prio(Priority::P1));
    w.sync_all();
    update(&w, 1, &id, prio(Priority::P2)); // informed: console 1 pulled P1
    w.sync_all();
    assert!(w.conflicts(0).is_empty());
    w.server.restore(&backup);
    w.heal_and_check(12);
    for i in 0..2 {
        assert_eq!(incident_field(&w, i, &id, "priority"), json!("P2"));
        assert!(w.conflicts(i).is_empty(), "node {i}: {:?}", w.conflicts(i));
    }
    let _ = std::fs::remove_file(&backup);
}

/// S12 when the restore is noticed late: the server is restored from a backup; before any
/// console that saw the lost ops comes back, another console (which never saw them) pushes
/// enough new ops that the server's newest gseq passes the returning consoles' cursors. The
/// server then never sees "a cursor beyond my newest gseq", keeps its epoch, and the new ops
/// reuse the gseqs of the lost ones: the returning consoles must still converge.
///
/// Fails today (I1: console 1's acked ops are never re-pushed; I3: consoles 1 and 2 keep
/// the lost ops and never pull the new ones numbered below their cursors): the restored
/// database keeps the backup's epoch id and the server detects a restore only from a cursor
/// beyond its newest gseq. See the report.
#[test]
#[ignore = "this harness pushes through the store API without the engine's history check; \
            the same case through the real engine passes: \
            tests/scenarios/s12_restore.rs s12_restore_noticed_late_loses_nothing"]
fn s12_restore_noticed_after_new_ops_reused_the_lost_gseqs() {
    let mut w = World::new(3, &[]);
    let a = create(&w, 0, "Carrer A");
    w.sync_all();
    let backup = w.server.dir.path().with_extension("late-backup.db");
    w.server.backup(&backup);
    // Console 1 works and syncs; console 2 pulls it too; console 0 is away.
    for p in PRIOS_CYCLE {
        w.act(1, &Action::Note { inc: 0 });
        update(&w, 1, &a, prio(p));
    }
    w.drain(1);
    w.pull(1, PullFault::None);
    w.pull(2, PullFault::None);
    // Restore; console 0, which never saw the lost ops, pushes more than they were.
    w.server.restore(&backup);
    for _ in 0..10 {
        w.act(0, &Action::Note { inc: 0 });
    }
    w.drain(0);
    w.pull(0, PullFault::None);
    w.heal_and_check(121);
    let _ = std::fs::remove_file(&backup);
}

const PRIOS_CYCLE: [Priority; 3] = [Priority::P1, Priority::P2, Priority::P4];

/// A console with a clock 27 h fast does not drag the others' timestamps: a console with a
/// correct clock that pulled its ops stamps its own next op at its own time (the store
/// ignores remote stamps more than `MAX_HLC_LEAD_MS` ahead), so the times it shows stay true.
#[test]
fn s6_a_fast_clock_does_not_drag_the_others_timestamps() {
    let mut w = World::new(2, &[0, 27 * HOUR_MS]);
    create(&w, 1, "Carrer Fast");
    w.sync_all();
    w.advance(1_000);
    let id = create(&w, 0, "Carrer Right");
    let created = incident_field(&w, 0, &id, "created_at");
    assert_eq!(created, json!(w.now.timestamp_millis()));
    w.sync_all();
    assert_eq!(incident_field(&w, 1, &id, "created_at"), created);
}

/// S12, the simplest form: a console pushes (the server acknowledges) and nobody has pulled
/// those ops yet when the server is restored from a backup taken just before. No cursor is
/// beyond the restored server's newest gseq, so no epoch change is ever noticed, and the
/// console, holding them as acknowledged, never pushes them again: acknowledged ops are lost
/// (I1) and the console keeps showing them (I3).
#[test]
#[ignore = "this harness pushes through the store API without the engine's history check \
            (it reports the newest acknowledged gseq); through the real engine: outpost-sync \
            tests/it/recovery.rs (acknowledged but not pulled)"]
fn s12_ops_acknowledged_but_not_pulled_survive_a_restore() {
    let mut w = World::new(2, &[]);
    w.backup();
    let id = create(&w, 0, "Carrer Major 1");
    update(&w, 0, &id, prio(Priority::P1));
    w.drain(0); // acknowledged; no console pulls
    // The plain restore, with no detection beyond what the engine does (cursors).
    let backup = w.vault.path().join("server-backup.db");
    w.server.restore(&backup);
    w.heal_and_check(122);
}
