//! Two consoles converge through the server (sync rounds run on the test thread).

use outpost_store::query;
use outpost_sync::{SyncEngine, SyncStore};

use crate::common::*;

#[test]
fn two_consoles_round_trip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let a = console(&tmp.path().join("a"));
    let b = console(&tmp.path().join("b"));

    act(&a, &first_script("u-01", "i1"));
    assert_eq!(counts(&a), (5, 0, 0));
    let reports =
        SyncEngine::sync_until_quiet(a.clone(), &srv.url(), quick(), 10).expect("a syncs");
    assert_eq!(reports.iter().map(|r| r.acked).sum::<usize>(), 5);
    // Critical ops (register, create, assign) first, then the note, then the position.
    assert_eq!(reports[0].batches, 3);
    assert_eq!(counts(&a), (0, 5, 0));
    let log = server_log(&srv);
    assert_eq!(log.len(), 5);
    assert_eq!(log.iter().map(|(g, _)| *g).collect::<Vec<_>>(), {
        let first = log[0].0;
        (first..first + 5).collect::<Vec<_>>()
    });

    let reports =
        SyncEngine::sync_until_quiet(b.clone(), &srv.url(), quick(), 10).expect("b syncs");
    assert_eq!(reports.iter().map(|r| r.applied).sum::<usize>(), 5);
    let id = incident_named(&a, "i1");
    {
        let s = b.lock().expect("lock");
        let inc = query::incident(s.conn(), id)
            .expect("query")
            .expect("incident on b");
        assert_eq!(inc.address, "Carrer Major 1");
        let units = query::units(s.conn()).expect("units");
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].id, "u-01");
        assert_eq!(s.position().expect("pos").cursor, log[4].0);
    }
    assert_eq!(digest(&a), digest(&b));

    // B answers with a note; A pulls it.
    act(
        &b,
        &format!(r#"{{"action":"note","incident":"{id}","text":"second unit requested"}}"#),
    );
    SyncEngine::sync_until_quiet(b.clone(), &srv.url(), quick(), 10).expect("b syncs");
    let reports =
        SyncEngine::sync_until_quiet(a.clone(), &srv.url(), quick(), 10).expect("a syncs");
    assert_eq!(reports.iter().map(|r| r.applied).sum::<usize>(), 1);
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(server_log(&srv).len(), 6);
    {
        let s = a.lock().expect("lock");
        let texts: Vec<String> = query::timeline(s.conn(), id)
            .expect("timeline")
            .into_iter()
            .map(|t| format!("{:?}", t.event))
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("second unit requested")),
            "{texts:?}"
        );
    }
    // Re-syncing changes nothing and sends nothing.
    let reports = SyncEngine::sync_until_quiet(a.clone(), &srv.url(), quick(), 10).expect("again");
    assert_eq!(reports.len(), 1);
    assert!(reports[0].is_quiet(), "{:?}", reports[0]);
}

#[test]
fn a_backlog_goes_in_batches_critical_first() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let a = console(&tmp.path().join("a"));
    act(&a, &first_script("u-01", "i1"));
    let mut lines = String::new();
    for i in 0..120 {
        lines.push_str(&format!(
            r#"{{"action":"position","unit_id":"u-01","position":{{"lat":42.5,"lon":{}}}}}"#,
            1.5 + f64::from(i) * 0.0001
        ));
        lines.push('\n');
    }
    lines.push_str(r#"{"action":"status","unit_id":"u-01","to":"en_route"}"#);
    act(&a, &lines);
    let options = outpost_sync::SyncOptions {
        push_batch: 50,
        ..quick()
    };
    let reports = SyncEngine::sync_until_quiet(a.clone(), &srv.url(), options, 10).expect("syncs");
    // critical (4 ops) + notes (1) + positions 121 in 50/50/21.
    assert_eq!(reports[0].batches, 5);
    assert_eq!(reports[0].acked, 126);
    let log = server_log(&srv);
    assert_eq!(log.len(), 126);
    // The status change written after 120 positions was ordered before all of them.
    let s = a.lock().expect("lock");
    let outbox = query::outbox_all(s.conn()).expect("outbox");
    let status_op = outbox
        .iter()
        .find(|r| r.kind == "unit.set_status")
        .expect("status op")
        .envelope
        .op_id
        .to_string();
    let pos_of = |id: &str| log.iter().position(|(_, o)| o == id).expect("in log");
    let first_position = outbox
        .iter()
        .find(|r| r.kind == "position.report")
        .expect("position")
        .envelope
        .op_id
        .to_string();
    assert!(pos_of(&status_op) < pos_of(&first_position));
}
