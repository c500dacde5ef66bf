//! S4: the headless client is killed (abort) between the server's ack and the local commit,
//! and in the middle of applying a pulled page; the next run converges with nothing lost or
//! duplicated.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

fn client(data: &Path, url: &str, extra: &[&str], failpoint: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost-sync-client"));
    cmd.arg("--data")
        .arg(data)
        .arg("--server")
        .arg(url)
        .args(extra);
    cmd.env_remove(outpost_sync::FAILPOINT_ENV);
    if let Some(f) = failpoint {
        cmd.env(outpost_sync::FAILPOINT_ENV, f);
    }
    cmd.output().expect("client runs")
}

fn summary(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("summary JSON")
}

#[test]
fn killed_between_ack_and_commit_then_mid_page() {
    let tmp = tempfile::tempdir().expect("tmp");
    let srv = server(&tmp.path().join("server"));
    let url = srv.url();
    let a = tmp.path().join("a");
    let script = tmp.path().join("a.jsonl");
    let mut text = first_script("u-03", "i3");
    for i in 0..15 {
        text.push_str(&format!(
            "{{\"action\":\"note\",\"incident\":\"i3\",\"text\":\"note {i}\"}}\n"
        ));
    }
    std::fs::write(&script, text).expect("script");

    // Crash after the server acknowledged the first push, before the ack was stored.
    let script_arg = script.to_string_lossy().into_owned();
    let out = client(
        &a,
        &url,
        &["--script", &script_arg, "--sync-once"],
        Some("after_ack_before_commit"),
    );
    assert!(!out.status.success(), "the failpoint aborts the client");
    let log = server_log(&srv);
    assert_eq!(
        log.len(),
        3,
        "the first (critical) batch reached the server"
    );

    // Restart: the unacknowledged ops are re-sent, answered as duplicates, nothing doubled.
    let s = summary(&client(&a, &url, &["--until-quiet"], None));
    assert_eq!(s["pending"], 0);
    assert_eq!(s["acked"], 20);
    assert_eq!(s["parked"], 0);
    let log = server_log(&srv);
    assert_eq!(log.len(), 20);
    let unique: std::collections::BTreeSet<&String> = log.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 20);

    // A second console crashes in the middle of applying its first page.
    let b = tmp.path().join("b");
    let out = client(&b, &url, &["--sync-once"], Some("mid_page"));
    assert!(!out.status.success(), "the failpoint aborts the client");
    let after_crash = summary(&client(&b, &url, &[], None));
    assert_eq!(
        after_crash["cursor"], 0,
        "the half-applied page left nothing behind"
    );
    let sb = summary(&client(&b, &url, &["--until-quiet"], None));
    let sa = summary(&client(&a, &url, &["--until-quiet"], None));
    assert_eq!(sb["cursor"], serde_json::json!(log[19].0));
    assert_eq!(sa["digest"], sb["digest"]);

    // A third console joins with the background engine (--timed) and reports its milestones.
    let c = tmp.path().join("c");
    let sc = summary(&client(&c, &url, &["--timed", "--timeout-s", "30"], None));
    assert_eq!(sc["digest"], sa["digest"]);
    assert!(sc["timings"]["caught_up_ms"].as_u64().is_some(), "{sc}");
    assert_eq!(
        sc["timings"]["critical_acked_ms"].as_u64().map(|_| ()),
        Some(())
    );
}
