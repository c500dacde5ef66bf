//! pytak (PyPI) as a real TAK client: `tests/pytak/tak_clients.py` sends a CoT position of a
//! bound device to a running server and a second pytak client must receive the unit as CoT;
//! the unit then moves on a console's state (a replica pulling over HTTP).
//!
//! pytak lives in `target/pytak-venv` (made by `scripts/test`'s installer,
//! `ensure_pytak_venv` in scripts/lib/install.sh; `OUTPOST_PYTAK_PYTHON` names another
//! interpreter). Without it the test says so and passes, unless `OUTPOST_REQUIRE_PYTAK=1`
//! (the test suite sets it) makes a missing pytak a failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use chrono::Utc;

use outpost_domain::op::{Lane, OpBody};
use outpost_domain::wire::PullResponse;
use outpost_server::ingest::IngestConfig;
use outpost_server::{Server, ServerConfig};
use outpost_store::Store;

use crate::support::{Author, Client, outcomes, request};

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OUTPOST_PYTAK_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = target.parent()?.join("pytak-venv/bin/python");
    p.is_file().then_some(p)
}

/// Pulls everything new into the console replica.
fn sync(client: &Client, console: &mut Store) {
    loop {
        let after = console.sync_state().expect("sync state").cursor;
        let (status, body) = client.get(&format!("/v1/pull?after={after}&limit=1000"));
        assert_eq!(status, 200, "{body}");
        let page: PullResponse = serde_json::from_value(body).expect("page");
        console.apply_pull(&page, Utc::now()).expect("apply");
        if !page.more {
            return;
        }
    }
}

#[test]
fn pytak_sends_a_position_and_a_second_pytak_client_receives_the_unit() {
    let Some(python) = python() else {
        assert!(
            std::env::var("OUTPOST_REQUIRE_PYTAK").is_err(),
            "pytak is not installed: run scripts/test (it makes target/pytak-venv) or set \
             OUTPOST_PYTAK_PYTHON"
        );
        eprintln!("skipped: no target/pytak-venv (scripts/test installs pytak there)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(
        ServerConfig::plain_for_tests(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .with_ingest(IngestConfig {
                cot_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                ..IngestConfig::default()
            }),
    )
    .expect("start server");
    let client = Client::new(server.url());
    let mut author = Author::new(1);
    let ops = vec![
        author.unit("u-01"),
        author.op(OpBody::DeviceBind {
            device_id: "pytak-device-1".into(),
            unit_id: Some("u-01".into()),
        }),
    ];
    let (status, body) = client.push(&request(author.origin, Lane::Critical, &ops));
    assert_eq!(status, 200, "{body}");
    assert!(
        outcomes(&body).iter().all(|o| o.starts_with("accepted")),
        "{body}"
    );

    let mut console = Store::open_in_memory(Utc::now()).expect("console");
    sync(&client, &mut console);
    let before = outpost_store::query::unit(console.conn(), "u-01")
        .expect("query")
        .expect("unit");
    assert_eq!(before.fix, None);

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/pytak/tak_clients.py");
    let cot = server.cot_addr().expect("cot address");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--cot", &cot.to_string()])
        .args(["--device", "pytak-device-1"])
        .args(["--unit-uid", "outpost-unit-u-01"])
        .args(["--lat", "39.8201", "--lon", "109.9801", "--timeout", "20"])
        .output()
        .expect("run the pytak script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pytak clients failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("received outpost-unit-u-01 at 39.8201,109.9801"),
        "{stdout}"
    );

    // The console pulls the gateway's position.report: the unit moved.
    sync(&client, &mut console);
    let after = outpost_store::query::unit(console.conn(), "u-01")
        .expect("query")
        .expect("unit");
    let fix = after.fix.expect("a fix on the console");
    assert_eq!((fix.position.lat, fix.position.lon), (39.8201, 109.9801));
    assert_eq!(fix.accuracy_m, Some(5.0));
    let stats = server.ingest_stats().view();
    assert_eq!(stats.cot.received, 1, "{stats:?}");
    assert_eq!(stats.gateway.positions_written, 1, "{stats:?}");
    // pytak's hello (t-x-d-d) is housekeeping: ignored and counted, not refused (review F5).
    assert_eq!(stats.cot.ignored, 1, "{stats:?}");
    assert!(stats.cot.refused.is_empty(), "{stats:?}");
    assert!(stats.feed.events_sent >= 1, "{stats:?}");
}
