//! The server restored from a backup (S12: new epoch, the console re-pushes and resyncs)
//! and compacted history (S13: snapshot, pending ops kept).

use std::path::Path;

use outpost_sync::{SyncEngine, SyncStore};

use crate::common::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_server_restored_from_a_backup_gets_everything_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("server");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let a = console(&tmp.path().join("a"));

    // Day 1: three critical ops reach the server; then the backup is taken.
    act(
        &a,
        &first_script("u-05", "i5")
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let srv = server_at(&data, addr);
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("sync");
    let old_epoch = a.lock().expect("lock").position().expect("pos").epoch;
    srv.shutdown().expect("stop");
    let backup = tmp.path().join("backup");
    copy_dir(&data, &backup);

    // Two more ops reach the server, which then loses them (restored from the backup).
    let srv = server_at(&data, addr);
    act(
        &a,
        &first_script("u-05", "i5")
            .lines()
            .skip(3)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("sync");
    assert_eq!(counts(&a), (0, 5, 0));
    let cursor_before = a.lock().expect("lock").position().expect("pos").cursor;
    srv.shutdown().expect("stop");
    std::fs::remove_dir_all(&data).expect("rm");
    copy_dir(&backup, &data);
    let srv = server_at(&data, addr);
    assert_eq!(server_log(&srv).len(), 3);

    // The console notices (its cursor is beyond the server's newest op), resyncs and
    // re-pushes what it kept: the server has all five again, once each.
    let reports = SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("resync");
    assert_eq!(reports.iter().map(|r| r.resyncs).sum::<usize>(), 1);
    let log = server_log(&srv);
    assert_eq!(log.len(), 5);
    let unique: std::collections::BTreeSet<&String> = log.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 5);
    let pos = a.lock().expect("lock").position().expect("pos");
    assert_ne!(pos.epoch, old_epoch);
    assert!(
        pos.cursor > cursor_before,
        "new numbers are beyond the lost ones"
    );
    assert_eq!(pos.cursor, log[4].0);
    assert_eq!(counts(&a), (0, 5, 0));

    // A fresh console converges with it.
    let b = console(&tmp.path().join("b"));
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b");
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn a_console_behind_compacted_history_loads_a_snapshot_and_keeps_its_pending_ops() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let url = srv.url();
    let a = console(&tmp.path().join("a"));
    act(&a, &first_script("u-06", "i6"));
    let mut lines = String::new();
    for i in 0..30 {
        lines.push_str(&format!(
            r#"{{"action":"position","unit_id":"u-06","position":{{"lat":42.5,"lon":{}}},"fix_time":"2026-11-29T08:{:02}:00Z"}}"#,
            1.5 + f64::from(i) * 0.001,
            i
        ));
        lines.push('\n');
    }
    act(&a, &lines);
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a");
    let log = server_log(&srv);
    assert_eq!(log.len(), 35);
    srv.service()
        .with_storage(|s| s.compact(log[34].0 + 1))
        .expect("compact");
    let snapshot = srv.service().snapshot().expect("snapshot");
    // 30 of the 31 positions are compacted away (the newest per unit stays as an op).
    assert_eq!(snapshot.ops.len(), 5);
    assert_eq!(snapshot.compacted_positions.len(), 30);

    // B wrote an op of its own before it ever synced.
    let b = console(&tmp.path().join("b"));
    act(
        &b,
        r#"{"action":"register_unit","unit_id":"u-99","callsign":"B99","unit_kind":"motorcycle"}"#,
    );
    let reports = SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b");
    assert_eq!(reports.iter().map(|r| r.snapshots).sum::<usize>(), 1);
    assert_eq!(counts(&b), (0, 1, 0));
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a again");
    assert_eq!(digest(&a), digest(&b));
}

/// S12, noticed late: after the restore a console that never saw the lost ops pushes first,
/// so its new ops get the lost numbers again and no cursor is beyond the server's head. The
/// consoles that had pulled the lost ops find another op at their cursor, resync in place,
/// and the lost ops come back from their author.
#[test]
fn a_restore_noticed_late_still_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("server");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let (a, b, c) = (
        console(&tmp.path().join("a")),
        console(&tmp.path().join("b")),
        console(&tmp.path().join("c")),
    );
    act(
        &a,
        &first_script("u-08", "i8")
            .lines()
            .take(2)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let srv = server_at(&data, addr);
    for s in [&a, &b, &c] {
        SyncEngine::sync_until_quiet(s.clone(), &url, quick(), 10).expect("sync");
    }
    srv.shutdown().expect("stop");
    let backup = tmp.path().join("backup");
    copy_dir(&data, &backup);
    let srv = server_at(&data, addr);

    // C's notes reach the server and B; then they are lost with the restore.
    let id = incident_named(&a, "i8");
    let notes: String = (0..3)
        .map(|i| format!("{{\"action\":\"note\",\"incident\":\"{id}\",\"text\":\"C {i}\"}}\n"))
        .collect();
    act(&c, &notes);
    SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c");
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b");
    srv.shutdown().expect("stop");
    std::fs::remove_dir_all(&data).expect("rm");
    copy_dir(&backup, &data);
    let srv = server_at(&data, addr);

    // A comes first and writes more than was lost.
    let notes: String = (0..5)
        .map(|i| format!("{{\"action\":\"note\",\"incident\":\"{id}\",\"text\":\"A {i}\"}}\n"))
        .collect();
    act(&a, &notes);
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a");
    let rb = SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b");
    let rc = SyncEngine::sync_until_quiet(c.clone(), &url, quick(), 10).expect("c");
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a");
    assert_eq!(rb.iter().map(|r| r.resyncs).sum::<usize>(), 1);
    assert_eq!(rc.iter().map(|r| r.resyncs).sum::<usize>(), 1);

    let log = server_log(&srv);
    assert_eq!(log.len(), 2 + 3 + 5, "every op once: {log:?}");
    let unique: std::collections::BTreeSet<&String> = log.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 10);
    assert_eq!(counts(&c), (0, 3, 0));
    let d = digest(&a);
    assert_eq!(digest(&b), d);
    assert_eq!(digest(&c), d);
}

/// S12, acknowledged but not pulled: the server acknowledged a push and was restored from a
/// backup before the console pulled those ops. The console's cursor is not beyond the
/// restored head, but it knows the `gseq` of its own acknowledged ops: it tells the server,
/// which starts a new epoch, and the ops are pushed again.
#[test]
fn ops_acknowledged_but_not_pulled_survive_a_restore() {
    use outpost_domain::wire::{PROTOCOL_VERSION, PushRequest};
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("server");
    let addr = free_addr();
    let url = format!("http://{addr}");
    let a = console(&tmp.path().join("a"));
    act(
        &a,
        &first_script("u-09", "i9")
            .lines()
            .take(1)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let srv = server_at(&data, addr);
    SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("sync");
    srv.shutdown().expect("stop");
    let backup = tmp.path().join("backup");
    copy_dir(&data, &backup);
    let srv = server_at(&data, addr);

    // Pushed and acknowledged, as the engine does, but the console goes away before pulling.
    act(
        &a,
        &first_script("u-09", "i9")
            .lines()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    {
        let mut s = a.lock().expect("lock");
        let ops = s
            .pending_batch(outpost_domain::op::Lane::Critical, 100)
            .expect("pending");
        assert_eq!(ops.len(), 2);
        let pos = s.position().expect("pos");
        let resp = srv
            .service()
            .push_request(&PushRequest {
                protocol: PROTOCOL_VERSION,
                origin: s.origin(),
                lane: outpost_domain::op::Lane::Critical,
                epoch: pos.epoch,
                cursor: pos.cursor,
                ops: ops
                    .iter()
                    .map(|o| serde_json::to_value(o).expect("json"))
                    .collect(),
            })
            .expect("push");
        SyncStore::record_push(
            &mut *s,
            outpost_domain::op::Lane::Critical,
            &resp,
            chrono::Utc::now(),
        )
        .expect("ack");
    }
    assert_eq!(counts(&a), (0, 3, 0));
    srv.shutdown().expect("stop");
    std::fs::remove_dir_all(&data).expect("rm");
    copy_dir(&backup, &data);
    let srv = server_at(&data, addr);
    assert_eq!(server_log(&srv).len(), 1);

    let reports = SyncEngine::sync_until_quiet(a.clone(), &url, quick(), 10).expect("a");
    assert_eq!(reports.iter().map(|r| r.resyncs).sum::<usize>(), 1);
    let log = server_log(&srv);
    assert_eq!(log.len(), 3);
    assert_eq!(counts(&a), (0, 3, 0));
    let b = console(&tmp.path().join("b"));
    SyncEngine::sync_until_quiet(b.clone(), &url, quick(), 10).expect("b");
    assert_eq!(digest(&a), digest(&b));
}
