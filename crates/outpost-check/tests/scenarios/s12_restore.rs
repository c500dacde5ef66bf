//! S12: the server is restored from a backup that lost its last ops. Consoles A and B run
//! the real engine the whole time; console C syncs only before the backup and comes back
//! after the restore. A backup is taken mid-run (`VACUUM INTO`, a consistent copy while the
//! server runs), work goes on and is acked and pulled by everyone, the server stops, its data
//! dir is replaced by the backup, and it restarts on the same address. The consoles detect
//! the restore (their cursor is beyond the server's newest gseq → new epoch, 409), re-push
//! what they kept, re-pull everything, and converge; no op is lost or duplicated.

use std::sync::Arc;
use std::time::Duration;

use outpost_server::storage::sqlite::DB_FILE;
use outpost_sync::SyncEngine;

use crate::common::*;

#[test]
fn s12_server_restored_from_backup_consoles_repush_and_converge() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("server");
    let backup = tmp.path().join("backup");
    std::fs::create_dir_all(&backup).expect("backup dir");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&data, addr);

    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    let c = console(&tmp.path().join("c"));
    let mut cur_a = Vec::new();
    let mut cur_b = Vec::new();
    let mut cur_c = Vec::new();

    // Before the backup: a roster, an incident with a unit on it, a note.
    act(
        &a,
        &format!(
            "{}{}{}{}{}",
            register_unit("u-01"),
            register_unit("u-02"),
            register_unit("u-03"),
            create_incident("fire", "P1"),
            assign("fire", "u-01")
        ),
    );
    let ha = SyncEngine::start(a.clone(), &url, Arc::new(|| {}), quick()).expect("a engine");
    let hb = SyncEngine::start(b.clone(), &url, Arc::new(|| {}), quick()).expect("b engine");
    assert!(wait_until(30, || caught_up(&a, srv.service())
        && caught_up(&b, srv.service())));
    SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c syncs");
    let fire = incident_named(&a, "fire");
    act(
        &b,
        &note(&fire.to_string(), "B: smoke from the second floor"),
    );
    act(&c, &note(&fire.to_string(), "C: hydrant at the corner"));
    SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c syncs");
    hb.poke_local();
    assert!(wait_until(30, || caught_up(&a, srv.service())
        && caught_up(&b, srv.service())));
    for (s, v) in [(&a, &mut cur_a), (&b, &mut cur_b), (&c, &mut cur_c)] {
        v.push(position(s));
    }

    // The backup, taken while the server runs.
    let head_at_backup = srv.service().head().expect("head");
    {
        let conn = rusqlite::Connection::open(data.join(DB_FILE)).expect("open server db");
        conn.execute(
            "VACUUM INTO ?1",
            [backup.join(DB_FILE).to_string_lossy().to_string()],
        )
        .expect("backup");
    }

    // The "last two hours": more work on A and B, acked and pulled by both. C is away.
    act(
        &a,
        &format!(
            "{}{}{}{}",
            create_incident("theft", "P3"),
            assign("theft", "u-02"),
            status("u-01", "on_scene"),
            position_line("u-01", 10, 0)
        ),
    );
    ha.poke_local();
    act(
        &b,
        &format!(
            "{}{}",
            note(&fire.to_string(), "B: second crew requested"),
            position_line("u-02", 20, 0)
        ),
    );
    hb.poke_local();
    assert!(wait_until(30, || caught_up(&a, srv.service())
        && caught_up(&b, srv.service())));
    let head_before_loss = srv.service().head().expect("head");
    assert!(head_before_loss.gseq > head_at_backup.gseq);
    for (s, v) in [(&a, &mut cur_a), (&b, &mut cur_b)] {
        v.push(position(s));
    }
    let lost_ops = head_before_loss.gseq - head_at_backup.gseq;

    // Disaster: the server stops; the backup is restored; it restarts on the same address.
    srv.shutdown().expect("server stops");
    for f in std::fs::read_dir(&data).expect("data dir") {
        let f = f.expect("entry").path();
        if f.is_file() {
            std::fs::remove_file(&f).expect("remove");
        }
    }
    std::fs::copy(backup.join(DB_FILE), data.join(DB_FILE)).expect("restore");
    // While it is down, A keeps working.
    act(
        &a,
        &note(&fire.to_string(), "A: written while the server was down"),
    );
    let srv = server_at(&data, addr);
    assert_eq!(
        srv.service().head().expect("head").gseq,
        head_at_backup.gseq,
        "the restored server has the backup's head"
    );
    ha.poke_local();
    hb.poke_local();

    // A and B notice (their cursor is beyond the restored head), resync, re-push, re-pull.
    let settled = wait_until(60, || {
        cur_a.push(position(&a));
        cur_b.push(position(&b));
        caught_up(&a, srv.service()) && caught_up(&b, srv.service())
    });
    let head = srv.service().head().expect("head");
    assert!(
        settled,
        "A and B catch up with the restored server (head {head:?}, A {:?}, B {:?}, A engine {:?})",
        position(&a),
        position(&b),
        ha.status()
    );
    assert_ne!(head.epoch, head_at_backup.epoch, "a new epoch was started");
    assert!(
        head.gseq >= head_at_backup.gseq + outpost_domain::wire::EPOCH_GSEQ_GAP,
        "new gseqs never reuse the lost numbers: {head:?}"
    );

    // C comes back with the old epoch and an old cursor, and a pending op written away.
    act(&c, &note(&fire.to_string(), "C: back from the dead zone"));
    let reports = SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c syncs");
    assert!(
        reports.iter().map(|r| r.resyncs).sum::<usize>() >= 1,
        "C resynced: {reports:?}"
    );
    cur_c.push(position(&c));
    // A and B pull C's note.
    ha.poke_local();
    hb.poke_local();
    assert!(wait_until(30, || caught_up(&a, srv.service())
        && caught_up(&b, srv.service())
        && caught_up(&c, srv.service())));
    std::thread::sleep(Duration::from_millis(50));
    ha.shutdown();
    hb.shutdown();
    for (s, v) in [(&a, &mut cur_a), (&b, &mut cur_b), (&c, &mut cur_c)] {
        v.push(position(s));
    }

    // Nothing lost: every op any console ever wrote is in the restored server's log once.
    let dump = server_dump(srv.service());
    let total: usize = [&a, &b, &c].iter().map(|s| outbox(&lock(s)).len()).sum();
    assert_eq!(dump.log.len(), total, "lost {lost_ops} ops at the restore");
    assert!(dump.parked.is_empty(), "parked: {:?}", dump.parked);
    let d = digest(&a);
    assert_eq!(digest(&b), d);
    assert_eq!(digest(&c), d);
    assert_eq!(dump.digest.as_ref(), Some(&d));
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &cur_a, true),
            replica("console B", &b, &cur_b, true),
            replica("console C", &c, &cur_c, true),
        ],
        12,
    );
}

/// S12, the restore noticed late: a console that never saw the lost ops (A) reaches the
/// restored server first and pushes; its new ops get the lost gseq numbers again, in the
/// same (restored) epoch. Consoles that had pulled the lost ops (B, C) come back with a
/// cursor no longer beyond the server's head. The engine's history check (after a lost link
/// it asks the server for the op at its cursor and for its newest acknowledged op) notices
/// the difference and resyncs, so nothing is skipped and C's lost notes are pushed again.
#[test]
fn s12_restore_noticed_late_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("server");
    let backup = tmp.path().join("backup");
    std::fs::create_dir_all(&backup).expect("backup dir");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&data, addr);
    let (a, b, c) = (
        console(&tmp.path().join("a")),
        console(&tmp.path().join("b")),
        console(&tmp.path().join("c")),
    );
    act(
        &a,
        &format!("{}{}", register_unit("u-01"), create_incident("fire", "P1")),
    );
    for s in [&a, &b, &c] {
        SyncEngine::sync_until_quiet(s.clone(), &url, quick(), 10).expect("sync");
    }
    let fire = incident_named(&a, "fire").to_string();
    {
        let conn = rusqlite::Connection::open(data.join(DB_FILE)).expect("open server db");
        conn.execute(
            "VACUUM INTO ?1",
            [backup.join(DB_FILE).to_string_lossy().to_string()],
        )
        .expect("backup");
    }
    // After the backup: C's notes, acked and pulled by B and C. A is away.
    act(
        &c,
        &format!(
            "{}{}{}",
            note(&fire, "C: one"),
            note(&fire, "C: two"),
            note(&fire, "C: three")
        ),
    );
    SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c syncs");
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    let mut cursors = [vec![position(&a)], vec![position(&b)], vec![position(&c)]];

    // Restore, restart on the same address.
    srv.shutdown().expect("server stops");
    for f in std::fs::read_dir(&data).expect("data dir") {
        let f = f.expect("entry").path();
        if f.is_file() {
            std::fs::remove_file(&f).expect("remove");
        }
    }
    std::fs::copy(backup.join(DB_FILE), data.join(DB_FILE)).expect("restore");
    let srv = server_at(&data, addr);

    // A comes first and writes more than was lost.
    let mut lines = String::new();
    for i in 0..5 {
        lines.push_str(&note(&fire, &format!("A: {i}")));
    }
    act(&a, &lines);
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    // B and C come back (nothing new to push).
    for s in [&b, &c, &a] {
        SyncEngine::sync_until_quiet(s.clone(), &url, quick(), 10).expect("sync");
    }
    for (i, s) in [&a, &b, &c].iter().enumerate() {
        cursors[i].push(position(s));
    }
    let dump = server_dump(srv.service());
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &cursors[0], true),
            replica("console B", &b, &cursors[1], true),
            replica("console C", &c, &cursors[2], true),
        ],
        121,
    );
}

/// S12 with a parked op: after the backup, a console's op is parked by the server (a newer
/// schema) and a later op of the same lane is accepted. The restore loses both outcomes. On
/// resync the console re-pushes what was acked; the parked op stays parked with its reason,
/// and the lane must still drain (the server must not wait forever for the parked lane_seq).
#[test]
fn s12_restore_after_a_parked_op_the_lane_still_drains() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("server");
    let backup = tmp.path().join("backup");
    std::fs::create_dir_all(&backup).expect("backup dir");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let srv = server_at(&data, addr);
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));
    act(
        &a,
        &format!("{}{}", register_unit("u-01"), create_incident("fire", "P1")),
    );
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    let fire = incident_named(&a, "fire").to_string();
    {
        let conn = rusqlite::Connection::open(data.join(DB_FILE)).expect("open server db");
        conn.execute(
            "VACUUM INTO ?1",
            [backup.join(DB_FILE).to_string_lossy().to_string()],
        )
        .expect("backup");
    }

    // After the backup: three notes, the middle one of a newer schema (parked).
    act(
        &a,
        &format!(
            "{}{}{}",
            note(&fire, "one"),
            note(&fire, "newer schema"),
            note(&fire, "three")
        ),
    );
    let newer = lock(&a)
        .pending_batch(outpost_domain::op::Lane::Notes, 10)
        .expect("notes")[1]
        .op_id;
    lock(&a)
        .conn()
        .execute(
            "UPDATE outbox SET envelope = json_set(envelope, '$.schema', ?2) WHERE op_id = ?1",
            rusqlite::params![newer.to_string(), outpost_domain::op::SCHEMA_VERSION + 1],
        )
        .expect("tamper schema");
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    assert_eq!(lock(&a).parked().expect("parked").len(), 1);

    // Restore.
    srv.shutdown().expect("server stops");
    for f in std::fs::read_dir(&data).expect("data dir") {
        let f = f.expect("entry").path();
        if f.is_file() {
            std::fs::remove_file(&f).expect("remove");
        }
    }
    std::fs::copy(backup.join(DB_FILE), data.join(DB_FILE)).expect("restore");
    let srv = server_at(&data, addr);

    let synced = SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10);
    assert!(
        synced.is_ok(),
        "A's notes lane must drain after the restore: {synced:?}; outbox {:?}",
        outbox(&lock(&a))
            .iter()
            .map(|e| (e.op.lane_seq, e.op.body.kind(), e.state.clone()))
            .collect::<Vec<_>>()
    );
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b syncs");
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a syncs");
    let parked = lock(&a).parked().expect("parked");
    assert_eq!(parked.len(), 1, "the parked op is kept with its reason");
    assert!(!parked[0].reason.is_empty());
    let dump = server_dump(srv.service());
    assert_invariants(
        &dump,
        &[
            replica("console A", &a, &[position(&a)], true),
            replica("console B", &b, &[position(&b)], true),
        ],
        122,
    );
}
