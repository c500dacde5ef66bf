//! `outpost-server serve` and `compact` as processes: the listening line, SIGTERM stops it
//! cleanly, compaction while it serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_domain::op::Lane;

use crate::support::{Author, cert_init, request, signed_in_client};

#[test]
fn serve_announces_its_address_stops_on_sigterm_and_compact_works_while_it_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = cert_init(&dir.path().join("data"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line");
    let mut a = Author::new(1);
    let c = signed_in_client(addr, &ca, &dir.path().join("data"), "cmdr.li", a.origin);

    let unit = a.unit("u-01");
    let (status, _) = c.push(&request(a.origin, Lane::Critical, &[unit]));
    assert_eq!(status, 200);
    let positions: Vec<_> = (0..5).map(|i| a.position("u-01", i)).collect();
    let (status, _) = c.push(&request(a.origin, Lane::Positions, &positions));
    assert_eq!(status, 200);

    let out = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["compact", "--before-gseq", "5", "--data"])
        .arg(dir.path().join("data"))
        .output()
        .expect("compact");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "removed 3 position reports; history now starts at gseq 5\n"
    );
    let (status, e) = c.get("/v1/pull?after=0");
    assert_eq!(status, 410, "{e}");
    let (status, snap) = c.get("/v1/snapshot");
    assert_eq!(status, 200);
    assert_eq!(
        snap["compacted_positions"].as_array().map(Vec::len),
        Some(3)
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn compact_of_a_missing_data_dir_fails_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["compact", "--before-gseq", "5", "--data"])
        .arg(dir.path().join("nowhere"))
        .output()
        .expect("compact");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {}: no such data directory\n",
            dir.path().join("nowhere").display()
        )
    );
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn serve_on_a_file_or_a_port_in_use_fails_with_one_error_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "x").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&file)
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().last(),
        Some(format!("error: {}: File exists (os error 17)", file.display()).as_str()),
        "{err}"
    );

    cert_init(&dir.path().join("data"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--listen", &addr.to_string(), "--data"])
        .arg(dir.path().join("data"))
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("error: "))
            .collect::<Vec<_>>(),
        [format!(
            "error: cannot listen on {addr}: Address already in use (os error 98)"
        )],
        "{err}"
    );
}
