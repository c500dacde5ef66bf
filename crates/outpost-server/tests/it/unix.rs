//! Refusing bad `--out` and `--name` values before any work, clean one-line errors, and
//! SIGTERM/SIGHUP handling, with a fake `tilemaker` first on `PATH`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::pack_build;

fn andorra_pbf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/osm/andorra.osm.pbf")
}

/// A directory holding a fake `tilemaker` running `body` (a shell script), to put first on
/// `PATH` so the build runs it instead of the real one.
fn fake_tilemaker(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let exe = bin.join("tilemaker");
    std::fs::write(&exe, format!("#!/bin/sh\n{body}\n")).expect("write fake tilemaker");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

fn path_with(bin: &Path) -> OsString {
    let mut path = bin.as_os_str().to_owned();
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    path
}

/// Runs `outpost-server pack build --quiet ARGS` with a `tilemaker` that only leaves a
/// marker file (so a test sees whether the build got as far as tilemaker).
fn refused_up_front(dir: &Path, args: &[&OsStr]) -> (std::process::Output, PathBuf) {
    let marker = dir.join("tilemaker-ran");
    let bin = fake_tilemaker(dir, &format!("touch '{}'; exit 3", marker.display()));
    let o = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["pack", "build", "--quiet"])
        .args(args)
        .env("PATH", path_with(&bin))
        .output()
        .expect("run outpost-server");
    (o, marker)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn out_equal_to_the_input_is_refused_and_the_extract_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let original = std::fs::read(andorra_pbf()).expect("read extract");
    let same = work.join("same.osm.pbf");
    std::fs::write(&same, &original).expect("copy extract");
    let hard = work.join("hard.osm.pbf");
    std::fs::hard_link(&same, &hard).expect("hard link");
    let dotted = work.join(".").join("same.osm.pbf");
    for out in [&same, &dotted, &hard] {
        let (o, marker) = refused_up_front(
            dir.path(),
            &[
                "--osm".as_ref(),
                same.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
            ],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!(
                "error: {}: the output file is the input extract; choose another output file\n",
                out.display()
            )
        );
        assert!(!marker.exists());
        assert_eq!(std::fs::read(&same).expect("read"), original);
        assert_eq!(files_in(&work), ["hard.osm.pbf", "same.osm.pbf"]);
        std::fs::remove_dir_all(dir.path().join("bin")).expect("clean bin");
    }
}

#[test]
fn out_in_a_missing_directory_or_a_directory_is_refused_up_front() {
    let dir = tempfile::tempdir().expect("temp dir");
    let osm = andorra_pbf();
    let out = dir.path().join("nonexist/sub/a.outpost");
    let (o, marker) = refused_up_front(
        dir.path(),
        &[
            "--osm".as_ref(),
            osm.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    // One clean line: no temporary file name, the cause once.
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "error: {}: directory {} does not exist\n",
            out.display(),
            dir.path().join("nonexist/sub").display()
        )
    );
    assert!(!marker.exists());
    assert_eq!(files_in(dir.path()), ["bin"]);
    std::fs::remove_dir_all(dir.path().join("bin")).expect("clean bin");

    let packs = dir.path().join("packs");
    std::fs::create_dir(&packs).expect("mkdir");
    let (o, marker) = refused_up_front(
        dir.path(),
        &[
            "--osm".as_ref(),
            osm.as_os_str(),
            "--out".as_ref(),
            packs.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "error: {}: is a directory; give a file name such as {}\n",
            packs.display(),
            packs.join("area.outpost").display()
        )
    );
    assert!(!marker.exists(), "refused only after running tilemaker");
    assert!(files_in(&packs).is_empty());
}

#[test]
fn an_io_error_is_printed_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "x").expect("write");
    let osm = file.join("area.osm.pbf");
    let o = pack_build(&osm, &dir.path().join("a.outpost"));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("error: {}: Not a directory (os error 20)\n", osm.display())
    );
}

#[test]
fn a_blank_area_name_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let osm = andorra_pbf();
    let out = dir.path().join("a.outpost");
    for name in ["", "  \t"] {
        let (o, marker) = refused_up_front(
            dir.path(),
            &[
                "--osm".as_ref(),
                osm.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
                "--name".as_ref(),
                name.as_ref(),
            ],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!(
                "error: {}: the area name is empty; give a name, or none to use the input file's name \"andorra\"\n",
                out.display()
            )
        );
        assert!(!marker.exists());
        assert_eq!(files_in(dir.path()), ["bin"]);
        std::fs::remove_dir_all(dir.path().join("bin")).expect("clean bin");
    }
}

/// SIGTERM / SIGHUP while tilemaker runs: the build stops like on Ctrl-C, tilemaker is
/// killed and reaped, and neither the temporary pack, its journal nor the work dir is left.
/// The fake tilemaker creates the output and its journal, reports its pid and working
/// directory through a FIFO (so the signal is sent exactly while it runs), then waits.
fn interrupted_by(signal: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("tilemaker.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let bin = fake_tilemaker(
        dir.path(),
        &format!(
            r#"while [ $# -gt 0 ]; do [ "$1" = --output ] && out="$2"; shift; done
: > "$out"; : > "$out-journal"
echo "$$ $PWD" > '{}'
exec sleep 600"#,
            fifo.display()
        ),
    );
    let packs = dir.path().join("packs");
    std::fs::create_dir(&packs).expect("mkdir");
    let out = packs.join("area.outpost");
    let mut server = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["pack", "build", "--quiet", "--osm"])
        .arg(andorra_pbf())
        .arg("--out")
        .arg(&out)
        .env("PATH", path_with(&bin))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run outpost-server");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_fifo = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read_to_string(reader_fifo));
    });
    // Wait for tilemaker to report in; fail (instead of hanging) if the build ends first.
    let report = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(r) => break r.expect("read fifo"),
            Err(_) => {
                if let Some(status) = server.try_wait().expect("try_wait") {
                    let o = server.wait_with_output().expect("output");
                    panic!(
                        "build ended ({status}) before tilemaker ran: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            }
        }
    };
    let (pid, work) = report.trim().split_once(' ').expect("pid and dir");
    assert!(Path::new(work).is_dir());
    assert!(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(server.id().to_string())
            .status()
            .expect("kill")
            .success()
    );
    let o = server.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1), "{signal}: {:?}", o.status);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("error: {}: build interrupted\n", out.display())
    );
    // tilemaker was killed and waited for: its pid is gone (not even a zombie).
    let alive = Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!alive.success(), "tilemaker {pid} still running");
    assert!(files_in(&packs).is_empty(), "{:?}", files_in(&packs));
    assert!(!Path::new(work).exists(), "work dir {work} left behind");
}

#[test]
fn sigterm_stops_the_build_and_cleans_up() {
    interrupted_by("TERM");
}

#[test]
fn sighup_stops_the_build_and_cleans_up() {
    interrupted_by("HUP");
}
