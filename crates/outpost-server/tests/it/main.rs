//! Integration tests of `outpost-server`. Here: the `pack build` command line (bad input
//! gives one line on stderr naming the file, a non-zero exit status, and no output file).
//! The sync server: [`sync`] (in-process, HTTP) and [`crash`] (the real binary, SIGKILL).

use std::path::Path;
use std::process::Command;

/// Tests that use a fake `tilemaker` shell script, hard links, FIFOs and signals.
#[cfg(unix)]
mod unix;

mod accounts;
mod audit;
#[cfg(unix)]
mod cli;
mod console_audit;
#[cfg(unix)]
mod crash;
mod feed;
mod fresh_review;
mod fuzz;
mod hardening;
mod ingest;
mod op_signing;
mod password;
mod pytak;
mod security;
mod support;
mod sync;
mod tls;

fn pack_build(osm: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["pack", "build", "--quiet", "--osm"])
        .arg(osm)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run outpost-server")
}

#[test]
fn missing_input_fails_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("x.outpost");
    let o = pack_build(&dir.path().join("nowhere.osm.pbf"), &out);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("nowhere.osm.pbf: file not found"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn clipped_input_fails_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("x.outpost");
    let clipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../outpost-geo/tests/fixtures/clipped.osm.pbf");
    let o = pack_build(&clipped, &out);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("clipped.osm.pbf: clipped extract"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn help_lists_pack_build() {
    let o = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["pack", "build", "--help"])
        .output()
        .expect("run");
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in ["--osm", "--out", "--name"] {
        assert!(text.contains(flag), "{text}");
    }
}
