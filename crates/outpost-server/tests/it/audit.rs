//! The audit trail (`security::audit`): the hash chain verifies, `outpost-server audit
//! verify` (the real binary) names the first altered or missing record, pruning keeps the
//! chain verifiable from its anchor, timestamps have 1/100 s and a UTC offset, and `GET
//! /v1/audit` pages.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use outpost_domain::clock::FixedClock;
use outpost_server::security::audit::{
    self, AuditError, AuditEvent, AuditLog, AuditOutcome, GENESIS_HASH, MAX_FIELD_BYTES, Retention,
    VerifyReport, Zone,
};
use rusqlite::Connection;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 4, 55, 1)
        .single()
        .expect("valid time")
        + chrono::Duration::milliseconds(239)
}

fn plus_one() -> Zone {
    Zone::Fixed(FixedOffset::east_opt(3600).expect("offset"))
}

/// A log on a fixed clock at [`t0`], stamped at +01:00.
fn open(dir: &Path) -> (AuditLog, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(t0()));
    let log = AuditLog::open_with(dir, clock.clone(), plus_one()).expect("open audit log");
    (log, clock)
}

fn event(i: usize) -> AuditEvent {
    let outcome = match i % 3 {
        0 => AuditOutcome::Ok,
        1 => AuditOutcome::Refused,
        _ => AuditOutcome::Failed,
    };
    AuditEvent::new(format!("op:incident.create#{}", i % 7), outcome)
        .user(format!("user{}", i % 5))
        .device(format!("dev-{}", i % 11))
        .target(format!("target-{i:04}"))
        .detail(format!("detail of event {i:04}"))
}

/// `n` records, in batches of 100 through `record_many` with the clock moving 10 ms each.
fn fill(log: &AuditLog, clock: &FixedClock, n: usize) {
    let events: Vec<_> = (0..n).map(event).collect();
    for chunk in events.chunks(100) {
        log.record_many(chunk).expect("record_many");
        clock.set(clock_now(clock) + chrono::Duration::milliseconds(10));
    }
}

fn clock_now(clock: &FixedClock) -> DateTime<Utc> {
    outpost_domain::Clock::now(clock)
}

fn cli(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .arg("audit")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run outpost-server audit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sql(dir: &Path) -> Connection {
    Connection::open(dir.join(audit::AUDIT_FILE)).expect("open audit.db with rusqlite")
}

/// Flips the lowest bit of the first byte of a text column of record `seq` (ASCII stays
/// ASCII: one byte of the stored record changes).
fn flip_field(dir: &Path, seq: u64, column: &str) {
    let c = sql(dir);
    let v: String = c
        .query_row(
            &format!("SELECT {column} FROM audit_log WHERE seq = ?1"),
            [seq as i64],
            |r| r.get(0),
        )
        .expect("read field");
    let mut b = v.into_bytes();
    assert!(
        b[0].is_ascii_alphanumeric(),
        "{column} starts with {:?}",
        b[0] as char
    );
    b[0] ^= 1;
    let flipped = String::from_utf8(b).expect("still UTF-8");
    let n = c
        .execute(
            &format!("UPDATE audit_log SET {column} = ?1 WHERE seq = ?2"),
            rusqlite::params![flipped, seq as i64],
        )
        .expect("update");
    assert_eq!(n, 1);
}

fn assert_broken_at(dir: &Path, seq: u64, why_contains: &str) -> String {
    let o = cli(&["verify"], dir);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = out.lines().next().unwrap_or_default().to_string();
    assert!(
        line.starts_with(&format!("audit trail BROKEN at record #{seq} (")),
        "{line}"
    );
    assert!(line.contains(why_contains), "{line}");
    assert_eq!(out.lines().count(), 1, "{out}");
    line
}

#[test]
fn a_chain_of_1000_records_verifies_through_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 990);
    for i in 990..1000 {
        assert_eq!(log.record(event(i)).expect("record"), i as u64 + 1);
    }
    let report = log.verify().expect("verify");
    let VerifyReport::Intact {
        records,
        first_seq,
        last_seq,
        ref head_hash,
    } = report
    else {
        panic!("{report}");
    };
    assert_eq!((records, first_seq, last_seq), (1000, 1, 1000));
    assert_eq!(log.head().expect("head"), (1000, head_hash.clone()));
    drop(log);

    let o = cli(&["verify"], dir.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout(&o),
        format!("audit trail intact: 1000 records (#1–#1000)\nhead: #1000 {head_hash}\n")
    );
}

#[test]
fn records_link_and_hash_by_the_documented_encoding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _clock) = open(dir.path());
    log.record(
        AuditEvent::new("login", AuditOutcome::Ok)
            .user("alice")
            .device("dev-1"),
    )
    .expect("record");
    log.record(
        AuditEvent::new("op:incident.create", AuditOutcome::Refused)
            .user("张三")
            .target("0192")
            .detail("forbidden: viewer"),
    )
    .expect("record");
    let page = log.page(0, None).expect("page");
    let [a, b] = &page.records[..] else {
        panic!("{page:?}");
    };
    assert_eq!(a.seq, 1);
    assert_eq!(a.at, "2026-11-30T05:55:01.23+01:00");
    assert_eq!(a.prev_hash, GENESIS_HASH);
    // Computed independently (Python hashlib) from the encoding in the module docs.
    assert_eq!(
        a.hash,
        "005254200c2a7b5cf3126fd1b4abfd57601c01c2b57c99fd8f6c32fa3a5fa598"
    );
    assert_eq!(
        (b.seq, b.device.as_str(), b.outcome.as_str()),
        (2, "-", "refused")
    );
    assert_eq!(b.prev_hash, a.hash);
    assert_eq!(
        audit::record_hash(
            GENESIS_HASH,
            1,
            &b.at,
            &b.user,
            &b.device,
            &b.action,
            &b.target,
            &b.outcome,
            &b.detail
        ),
        "94d9388d9ce85cfe277bc9bd660c05cd576d80a66ef01aef88740369a82e64ce"
    );
    assert_eq!(
        b.hash,
        audit::record_hash(
            &a.hash, 2, &b.at, &b.user, &b.device, &b.action, &b.target, &b.outcome, &b.detail
        )
    );
    // Length prefixes: moving a byte from one field to the next changes the hash.
    let h = |user: &str, device: &str| {
        audit::record_hash(GENESIS_HASH, 1, "t", user, device, "a", "", "ok", "")
    };
    assert_ne!(h("ab", "c"), h("a", "bc"));
    assert_ne!(h("", "-"), h("-", ""));
}

#[test]
fn flipping_one_byte_of_any_stored_field_fails_verify_at_that_record() {
    for (column, why) in [
        ("detail", "altered"),
        ("user", "altered"),
        ("device", "altered"),
        ("action", "altered"),
        ("target", "altered"),
        ("outcome", "altered"),
        ("at", "altered"),
        ("hash", "altered"),
        ("prev_hash", "altered"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, clock) = open(dir.path());
        fill(&log, &clock, 300);
        drop(log);
        flip_field(dir.path(), 137, column);
        let line = assert_broken_at(dir.path(), 137, why);
        assert!(line.contains("incident.create#3)"), "{column}: {line}");
        // The library says the same.
        let r = audit::verify(dir.path()).expect("verify");
        assert!(
            matches!(r, VerifyReport::Broken { seq: 137, .. }),
            "{column}: {r}"
        );
    }
}

#[test]
fn a_record_rewritten_with_a_fresh_hash_breaks_the_link_of_the_next() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 100);
    drop(log);
    let c = sql(dir.path());
    let r = audit::read_page(dir.path(), 49, Some(1))
        .expect("page")
        .records[0]
        .clone();
    assert_eq!(r.seq, 50);
    let forged = audit::record_hash(
        &r.prev_hash,
        r.seq,
        &r.at,
        "mallory",
        &r.device,
        &r.action,
        &r.target,
        &r.outcome,
        &r.detail,
    );
    c.execute(
        "UPDATE audit_log SET user = 'mallory', hash = ?1 WHERE seq = 50",
        [forged],
    )
    .expect("update");
    assert_broken_at(dir.path(), 51, "does not link to record #50");
}

#[test]
fn flipping_one_byte_in_the_raw_file_fails_verify_at_that_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 200);
    log.record(AuditEvent::new("login", AuditOutcome::Refused).detail("MARKER-qz7w-wrong-code"))
        .expect("record");
    fill(&log, &clock, 200);
    // Closing the last connection checkpoints the WAL into the main file.
    drop(log);
    let path = dir.path().join(audit::AUDIT_FILE);
    assert!(!dir.path().join("audit.db-wal").exists());
    let mut bytes = std::fs::read(&path).expect("read audit.db");
    let marker = b"MARKER-qz7w";
    let hits: Vec<usize> = bytes
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| w == marker)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "the marker is stored once");
    bytes[hits[0] + 7] ^= 1; // 'q' -> 'p'
    std::fs::write(&path, bytes).expect("write audit.db");
    let line = assert_broken_at(dir.path(), 201, "altered");
    assert!(
        line.contains("(2026-11-30T05:55:01.25+01:00, login)"),
        "{line}"
    );
}

#[test]
fn deleting_a_middle_record_fails_at_the_next_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 500);
    drop(log);
    sql(dir.path())
        .execute("DELETE FROM audit_log WHERE seq = 250", [])
        .expect("delete");
    assert_broken_at(
        dir.path(),
        251,
        "record #250 is missing (removed after #249)",
    );

    // Several in a row, and renumbering the rest to hide the gap breaks the link instead.
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 100);
    drop(log);
    let c = sql(dir.path());
    c.execute("DELETE FROM audit_log WHERE seq BETWEEN 10 AND 12", [])
        .expect("delete");
    assert_broken_at(dir.path(), 13, "records #10–#12 are missing");
    c.execute("UPDATE audit_log SET seq = seq - 3 WHERE seq > 12", [])
        .expect("renumber");
    // Record #10 is now the old #13: its seq is part of its hash.
    assert_broken_at(dir.path(), 10, "altered");

    // The first record deleted (no retention anchor explains it).
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 10);
    drop(log);
    sql(dir.path())
        .execute("DELETE FROM audit_log WHERE seq = 1", [])
        .expect("delete");
    assert_broken_at(
        dir.path(),
        2,
        "record #1 is missing: the trail starts at #2 and there is no retention anchor",
    );
}

#[test]
fn an_inserted_record_fails_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 20);
    drop(log);
    // A forged record #21 that links to #20 but whose hash does not cover its contents.
    // (A record appended with a correct hash by someone who can write the file is not
    // detectable by the chain alone: see the module docs on witnesses.)
    let c = sql(dir.path());
    let head = audit::read_page(dir.path(), 19, Some(1))
        .expect("page")
        .records[0]
        .clone();
    let at = head.at.clone();
    let h = audit::record_hash(GENESIS_HASH, 21, &at, "x", "-", "login", "", "ok", "");
    c.execute(
        "INSERT INTO audit_log VALUES (21, ?1, 'x', '-', 'login', '', 'ok', '', ?2, ?3, 0)",
        rusqlite::params![at, head.hash, h],
    )
    .expect("insert");
    assert_broken_at(dir.path(), 21, "altered");
}

#[test]
fn pruning_keeps_the_chain_verifiable_and_a_tampered_anchor_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    // 10 records a day for 30 days.
    for day in 0..30 {
        let events: Vec<_> = (0..10).map(|i| event(day * 10 + i)).collect();
        log.record_many(&events).expect("record");
        clock.advance_secs(86_400);
    }
    // Nothing is old enough yet under the one-year rule.
    assert_eq!(
        log.prune_expired(Retention::default())
            .expect("prune")
            .removed,
        0
    );
    // Prune the first 12 days (records #1–#120).
    let report = log.prune(t0() + chrono::Duration::days(12)).expect("prune");
    assert_eq!(report.removed, 120);
    assert_eq!(report.anchor_seq, Some(120));
    let page = log.page(0, Some(1)).expect("page");
    assert_eq!(page.records[0].seq, 121);
    // The prune is itself a record.
    let last = log.page(300, None).expect("page").records;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0].action, "audit.prune");
    assert_eq!(last[0].outcome, "ok");
    assert!(
        last[0]
            .detail
            .starts_with("removed 120 records #1–#120 stamped before 2026-12-12T05:55:01.23+01:00"),
        "{}",
        last[0].detail
    );
    // Appending goes on after pruning, and pruning everything still leaves it verifiable.
    log.record(event(1)).expect("record");
    drop(log);

    let o = cli(&["verify"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("audit trail intact: 182 records (#121–#302)\n"),
        "{}",
        stdout(&o)
    );
    let (anchor_seq, anchor_hash) = audit::read_anchor(dir.path())
        .expect("anchor")
        .expect("some anchor");
    assert_eq!(anchor_seq, 120);

    // A flipped byte in the anchor's hash: the first kept record no longer links.
    let mut b = anchor_hash.clone().into_bytes();
    b[5] = if b[5] == b'0' { b'1' } else { b'0' };
    let c = sql(dir.path());
    c.execute(
        "UPDATE audit_anchor SET hash = ?1",
        [String::from_utf8(b).expect("utf8")],
    )
    .expect("update anchor");
    assert_broken_at(dir.path(), 121, "does not link to the retention anchor");
    c.execute("UPDATE audit_anchor SET hash = ?1", [&anchor_hash])
        .expect("restore");
    assert!(audit::verify(dir.path()).expect("verify").is_intact());

    // The anchor moved to hide more removed records.
    c.execute("DELETE FROM audit_log WHERE seq <= 125", [])
        .expect("delete");
    assert_broken_at(
        dir.path(),
        126,
        "records #121–#125 are missing: the retention anchor is #120 but the first kept record is #126",
    );
    c.execute("UPDATE audit_anchor SET seq = 125", [])
        .expect("move anchor");
    assert_broken_at(dir.path(), 126, "does not link to the retention anchor");
    // The anchor deleted.
    c.execute("DELETE FROM audit_anchor", [])
        .expect("delete anchor");
    assert_broken_at(dir.path(), 126, "records #1–#125 are missing");
}

#[test]
fn pruning_everything_then_appending_stays_verifiable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 50);
    clock.advance_secs(3600);
    let r = log.prune(clock_now(&clock)).expect("prune");
    assert_eq!((r.removed, r.anchor_seq), (50, Some(50)));
    // Only the prune record is left.
    assert_eq!(
        log.verify().expect("verify").to_string(),
        "audit trail intact: 1 records (#51–#51)"
    );
    clock.advance_secs(3600);
    let r = log.prune(clock_now(&clock)).expect("prune");
    assert_eq!((r.removed, r.anchor_seq), (1, Some(51)));
    // The second prune record (#52) is all that is left; prune all of it again.
    clock.advance_secs(3600);
    log.prune(clock_now(&clock)).expect("prune");
    log.record(event(0)).expect("record");
    let report = log.verify().expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        report.to_string(),
        "audit trail intact: 2 records (#53–#54)"
    );
}

#[test]
fn pruning_refuses_to_remove_altered_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 100);
    flip_field(dir.path(), 7, "detail");
    clock.advance_secs(3600);
    let err = log.prune(clock_now(&clock)).expect_err("refused");
    let AuditError::PruneRefused(VerifyReport::Broken { seq: 7, .. }) = &err else {
        panic!("{err}");
    };
    assert!(
        err.to_string().starts_with(
            "audit trail: pruning refused, nothing removed: audit trail BROKEN at record #7"
        ),
        "{err}"
    );
    // Nothing removed; the refusal is recorded.
    let page = log.page(0, Some(1)).expect("page");
    assert_eq!(page.records[0].seq, 1);
    let last = log.page(100, None).expect("page").records;
    assert_eq!(last.len(), 1);
    assert_eq!(
        (last[0].action.as_str(), last[0].outcome.as_str()),
        ("audit.prune", "failed")
    );
    assert!(
        last[0].detail.contains("BROKEN at record #7"),
        "{}",
        last[0].detail
    );
    drop(log);
    assert_broken_at(dir.path(), 7, "altered");
}

#[test]
fn retention_refuses_less_than_a_year() {
    let e = Retention::from_days(364).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "--audit-retention-days 364: audit records must be kept at least one year (365 days; \
         FBI CJIS Security Policy 5.9.5 §5.4.7)"
    );
    assert_eq!(Retention::from_days(365).expect("a year").days(), 365);
    assert_eq!(Retention::default().days(), 400);
    assert_eq!(
        Retention::default().cutoff(t0()),
        t0() - chrono::Duration::days(400)
    );
}

/// `YYYY-MM-DDTHH:MM:SS.cc±HH:MM`, exactly.
fn has_centis_and_offset(at: &str) -> bool {
    let b = at.as_bytes();
    b.len() == 28
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 | 25 => *c == b':',
            19 => *c == b'.',
            22 => *c == b'+' || *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn timestamps_have_exactly_two_decimals_and_an_offset() {
    let at = t0() + chrono::Duration::microseconds(9_999); // .248999 s
    let z = |secs| Zone::Fixed(FixedOffset::east_opt(secs).expect("offset"));
    assert_eq!(audit::format_time(at, z(0)), "2026-11-30T04:55:01.24+00:00");
    assert_eq!(
        audit::format_time(at, z(5 * 3600 + 1800)),
        "2026-11-30T10:25:01.24+05:30"
    );
    assert_eq!(
        audit::format_time(at, z(-(3 * 3600 + 1800))),
        "2026-11-30T01:25:01.24-03:30"
    );
    // Truncated, never rounded into the next second.
    let late = Utc
        .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
        .single()
        .expect("time")
        + chrono::Duration::milliseconds(999);
    assert_eq!(
        audit::format_time(late, z(0)),
        "2026-12-31T23:59:59.99+00:00"
    );
    assert_eq!(
        audit::format_time(
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("t"),
            z(0)
        ),
        "2026-01-02T03:04:05.00+00:00"
    );
    // The local zone (the default) gives the same shape.
    let local = audit::format_time(at, Zone::Local);
    assert!(has_centis_and_offset(&local), "{local}");

    // Every stored record, in the system's local zone.
    let dir = tempfile::tempdir().expect("temp dir");
    let log = AuditLog::open(dir.path()).expect("open");
    log.record_many(&(0..20).map(event).collect::<Vec<_>>())
        .expect("record");
    for r in log.page(0, None).expect("page").records {
        assert!(has_centis_and_offset(&r.at), "{}", r.at);
    }
}

#[test]
fn fields_are_one_line_and_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _clock) = open(dir.path());
    let long_user = "é".repeat(MAX_FIELD_BYTES); // 2 bytes each
    log.record(
        AuditEvent::new("login", AuditOutcome::Failed)
            .user(long_user)
            .device("")
            .detail("line one\nline two\t\u{1b}[31m"),
    )
    .expect("record");
    let r = &log.page(0, None).expect("page").records[0];
    assert_eq!(r.detail, "line one line two  [31m");
    assert_eq!(r.device, "-");
    assert!(r.user.len() <= MAX_FIELD_BYTES, "{}", r.user.len());
    assert!(r.user.ends_with("é…"), "{}", r.user);
    assert!(log.verify().expect("verify").is_intact());
}

#[test]
fn many_threads_append_one_gap_free_chain_and_reopening_continues_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _clock) = open(dir.path());
    let log = Arc::new(log);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    if i % 10 == 0 {
                        let batch: Vec<_> = (0..5).map(|j| event(t * 1000 + i * 10 + j)).collect();
                        log.record_many(&batch).expect("record_many");
                    } else {
                        log.record(event(t * 1000 + i)).expect("record");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    // 4 threads × (45 single + 5 batches of 5).
    assert_eq!(log.head().expect("head").0, 4 * (45 + 25));
    drop(log);
    let (log, _clock) = open(dir.path());
    assert_eq!(log.record(event(0)).expect("record"), 281);
    assert_eq!(
        log.verify().expect("verify").to_string(),
        "audit trail intact: 281 records (#1–#281)"
    );
}

#[test]
fn audit_show_prints_records_and_verify_without_a_trail_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = cli(&["verify"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("audit.db: no audit trail here"), "{err}");
    assert!(
        !dir.path().join(audit::AUDIT_FILE).exists(),
        "verify created nothing"
    );

    let (log, clock) = open(dir.path());
    fill(&log, &clock, 30);
    drop(log);
    let o = cli(&["show", "--after", "10", "--limit", "3"], dir.path());
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0],
        "#11 2026-11-30T05:55:01.23+01:00 refused op:incident.create#3 user=user0 device=dev-10 \
         target=target-0010 detail of event 0010"
    );
    assert!(lines[2].starts_with("#13 "), "{out}");
    let o = cli(&["show", "--json", "--limit", "1"], dir.path());
    let r: outpost_domain::wire::AuditRecord =
        serde_json::from_str(stdout(&o).trim()).expect("json line");
    assert_eq!((r.seq, r.prev_hash.as_str()), (1, GENESIS_HASH));
    let o = cli(&["show", "--limit", "0"], dir.path());
    assert_eq!(o.status.code(), Some(2), "clap refuses a limit of 0");
}

#[test]
fn get_audit_pages_and_refuses_bad_queries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 250);
    let log = Arc::new(log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/v1/audit", axum::routing::get(audit::get_audit))
        .with_state(log.clone());
    rt.spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::blocking::Client::new();
    let get = |q: &str| {
        let r = http
            .get(format!("http://{addr}/v1/audit{q}"))
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().expect("json body"))
    };
    let (s, v) = get("");
    assert_eq!(s, 200);
    let page: outpost_domain::wire::AuditPage = serde_json::from_value(v).expect("page");
    assert_eq!(page.records.len(), audit::DEFAULT_PAGE as usize);
    assert_eq!(page.records[0].seq, 1);
    let (s, v) = get("?after=240&limit=5");
    assert_eq!(s, 200);
    let page: outpost_domain::wire::AuditPage = serde_json::from_value(v).expect("page");
    let seqs: Vec<u64> = page.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [241, 242, 243, 244, 245]);
    assert_eq!(
        page.records[0],
        log.page(240, Some(1)).expect("page").records[0]
    );
    let (s, v) = get("?after=250");
    assert_eq!((s, v["records"].as_array().map(Vec::len)), (200, Some(0)));
    for q in [
        "?limit=0",
        "?limit=1001",
        "?after=x",
        "?after=-1",
        "?after=18446744073709551615",
    ] {
        let (s, v) = get(q);
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["code"], "bad_request", "{q}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("query: ")),
            "{q}: {v}"
        );
    }
    drop(rt);
}

#[test]
fn serve_refuses_a_retention_under_a_year() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--audit-retention-days",
            "364",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .expect("run serve");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "error: --audit-retention-days 364: audit records must be kept at least one year \
         (365 days; FBI CJIS Security Policy 5.9.5 §5.4.7)\n"
    );
    assert!(!dir.path().join(audit::AUDIT_FILE).exists());
}

/// `serve` prunes expired records when it starts: records stamped 500 days ago go, the
/// chain verifies from the anchor, and the prune is itself a record.
#[cfg(unix)]
#[test]
fn serve_prunes_expired_records_at_start() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    crate::support::cert_init(data);
    {
        let old = Arc::new(FixedClock::new(Utc::now() - chrono::Duration::days(500)));
        let log = AuditLog::open_with(data, old.clone(), Zone::Local).expect("open");
        log.record_many(&(0..10).map(event).collect::<Vec<_>>())
            .expect("record");
        old.set(Utc::now() - chrono::Duration::days(10));
        log.record(event(10)).expect("record");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("listening on ")))
        .is_some();
    // The first prune runs as the server starts; wait for its anchor (bounded).
    let mut anchor = None;
    for _ in 0..200 {
        anchor = audit::read_anchor(data).expect("anchor");
        if anchor.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "serve did not start");
    assert_eq!(
        anchor.map(|a| a.0),
        Some(10),
        "the first 10 records are pruned"
    );
    let report = audit::verify(data).expect("verify");
    let VerifyReport::Intact { first_seq, .. } = report else {
        panic!("{report}");
    };
    assert_eq!(first_seq, 11);
    let kept = audit::read_page(data, 0, None).expect("page").records;
    assert_eq!(kept[0].seq, 11);
    assert!(
        kept.iter().any(|r| r.action == "audit.prune"
            && r.outcome == "ok"
            && r.detail.starts_with("removed 10 records #1–#10")),
        "{kept:?}"
    );
}

#[test]
fn pruning_goes_by_the_hashed_time_not_the_unhashed_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 10); // #1–#10 at t0
    clock.advance_secs(30 * 86_400);
    fill(&log, &clock, 10); // #11–#20 thirty days later
    // Someone makes the newer records look ancient in the unhashed column.
    sql(dir.path())
        .execute("UPDATE audit_log SET at_utc_ms = 0 WHERE seq > 10", [])
        .expect("update");
    let r = log.prune(t0() + chrono::Duration::days(1)).expect("prune");
    assert_eq!((r.removed, r.anchor_seq), (10, Some(10)));
    assert_eq!(log.page(0, Some(1)).expect("page").records[0].seq, 11);
    assert!(log.verify().expect("verify").is_intact());
}

#[test]
fn a_tampered_record_cannot_send_escape_sequences_to_the_auditors_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    fill(&log, &clock, 5);
    drop(log);
    sql(dir.path())
        .execute(
            "UPDATE audit_log SET action = 'x' || char(27) || '[2J', detail = 'a' || char(10) || 'b' \
             WHERE seq = 3",
            [],
        )
        .expect("update");
    let line = assert_broken_at(dir.path(), 3, "altered");
    assert!(line.contains(", x?[2J)"), "{line}");
    let o = cli(&["show"], dir.path());
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(!out.contains('\u{1b}'), "{out}");
    assert!(out.contains("x?[2J") && out.contains(" a?b"), "{out}");
}

/// A clock that, each time it is read, tries to take `audit.db`'s write lock from a second
/// connection without waiting, and notes whether it was held (by the appending writer).
struct ProbeClock {
    db: std::path::PathBuf,
    at: FixedClock,
    write_lock_held: std::sync::Mutex<Vec<bool>>,
}

impl outpost_domain::clock::Clock for ProbeClock {
    fn now(&self) -> DateTime<Utc> {
        let c = Connection::open(&self.db).expect("second connection");
        c.busy_timeout(std::time::Duration::ZERO)
            .expect("busy timeout");
        let held = c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_err();
        self.write_lock_held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(held);
        clock_now(&self.at)
    }
}

#[test]
fn record_times_are_read_inside_the_transaction_that_assigns_seq() {
    let dir = tempfile::tempdir().expect("temp dir");
    let probe = Arc::new(ProbeClock {
        db: dir.path().join(audit::AUDIT_FILE),
        at: FixedClock::new(t0()),
        write_lock_held: std::sync::Mutex::new(Vec::new()),
    });
    let log = AuditLog::open_with(dir.path(), probe.clone(), plus_one()).expect("open");
    log.record(event(0)).expect("record");
    log.record_many(&[event(1), event(2)]).expect("record_many");
    log.record_new(&[("e-1".into(), event(3))])
        .expect("record_new");
    log.prune(t0() - chrono::Duration::days(1)).expect("prune");
    let held = probe
        .write_lock_held
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert_eq!(
        held,
        vec![true, true, true, true],
        "clock read outside the write lock"
    );
}

#[test]
fn record_times_never_go_backwards_when_the_clock_steps_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, clock) = open(dir.path());
    // t0 + 0.5 s, then the clock steps back 5 s (NTP, or by hand), then forward again.
    clock.set(t0() + chrono::Duration::milliseconds(500));
    log.record(event(0)).expect("record");
    clock.set(t0() - chrono::Duration::seconds(5));
    log.record(event(1)).expect("record");
    log.record_many(&[event(2), event(3)]).expect("record_many");
    log.record_new(&[("e-4".into(), event(4))])
        .expect("record_new");
    clock.set(t0() + chrono::Duration::seconds(2));
    log.record(event(5)).expect("record");
    let ats: Vec<String> = log
        .page(0, None)
        .expect("page")
        .records
        .into_iter()
        .map(|r| r.at)
        .collect();
    let held = "2026-11-30T05:55:01.73+01:00";
    assert_eq!(
        ats,
        vec![held, held, held, held, held, "2026-11-30T05:55:03.23+01:00"]
    );
    // The unhashed index follows the same instants.
    let ms: Vec<i64> = sql(dir.path())
        .prepare("SELECT at_utc_ms FROM audit_log ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let first = (t0() + chrono::Duration::milliseconds(500)).timestamp_millis();
    assert_eq!(&ms[..5], &[first; 5]);
    assert!(log.verify().expect("verify").is_intact());
}
