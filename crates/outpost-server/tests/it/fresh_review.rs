//! Fixes of the fresh-user security review of issue 6 (S4, S12, S13, S8): each test names
//! its finding.

use outpost_domain::access::Role;
use outpost_domain::wire::{LoginRequest, PROTOCOL_VERSION};
use outpost_server::security::accounts::{AuthError, CODE_ALREADY_USED};
use outpost_server::testing::TestServer;

/// S4: the right password with a code already spent answers "this code was already used;
/// wait for the next one", signs nobody in, and is not counted toward the lockout (six of
/// them in a row leave the account usable with the next code); a wrong password with the
/// same code is the usual failure.
#[test]
fn s4_a_replayed_code_with_the_right_password_is_named_and_not_counted() {
    let server = TestServer::start().expect("server");
    let device = server
        .enroll(Role::Administrator, "replay")
        .expect("enroll");
    let user = server.user(Role::Dispatcher).clone();
    let req = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: user.name.clone(),
        password: user.password.clone(),
        totp: server.fresh_code(Role::Dispatcher),
    };
    let sec = server.security();
    sec.login(Some(&device.peer()), &req).expect("first use");
    for i in 0..6 {
        match sec.login(Some(&device.peer()), &req) {
            Err(AuthError::Unauthenticated(m)) => assert_eq!(m, CODE_ALREADY_USED, "try {i}"),
            other => panic!("try {i}: {other:?}"),
        }
    }
    let wrong = LoginRequest {
        password: "not the password".into(),
        ..req.clone()
    };
    match sec.login(Some(&device.peer()), &wrong) {
        Err(AuthError::Unauthenticated(m)) => assert_eq!(m, "wrong name, password or code"),
        other => panic!("{other:?}"),
    }
    // Not locked: six replays and one wrong password are one failure.
    let next = server
        .login(&device, Role::Dispatcher)
        .expect("next code signs in");
    assert_eq!(next.user, user.name);
}

/// S13: a CSR with an RSA key (or ECDSA on P-384) is refused for its key, not as "its
/// signature does not verify"; the console's own P-256 CSR is still signed. Fixtures made
/// with `openssl req -new -newkey rsa:1024` / `-newkey ec -pkeyopt ec_paramgen_curve:P-384`
/// (the keys were thrown away).
#[test]
fn s13_a_csr_with_an_unsupported_key_names_the_key_types_accepted() {
    use outpost_server::security::pki::{Pki, PkiError, UNSUPPORTED_KEY};
    let server = TestServer::start().expect("server");
    let pki = Pki::load(server.data_dir()).expect("pki");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, what) in [
        ("rsa1024.csr.pem", "an RSA key"),
        ("p384.csr.pem", "an ECDSA key on another curve"),
    ] {
        let csr = std::fs::read_to_string(fixtures.join(file)).expect("fixture");
        match pki.sign_device_csr(&csr, "dev-test", 30) {
            Err(PkiError::BadCsr(m)) => {
                assert_eq!(
                    m,
                    format!("{UNSUPPORTED_KEY} (this request carries {what})")
                );
                assert!(!m.contains("does not verify"), "{m}");
            }
            other => panic!("{file}: {other:?}"),
        }
        // Through enrollment, as a console sees it (400 naming csr_pem).
        let user = server.user(Role::Commander).clone();
        let err = server
            .security()
            .enroll(&outpost_domain::wire::EnrollRequest {
                protocol: PROTOCOL_VERSION,
                user: user.name.clone(),
                password: user.password.clone(),
                totp: server.fresh_code(Role::Commander),
                device_name: "rsa laptop".into(),
                origin: uuid::Uuid::now_v7(),
                csr_pem: csr,
                cache_key: "ab".repeat(32),
            })
            .expect_err("refused");
        assert!(err.to_string().contains(UNSUPPORTED_KEY), "{file}: {err}");
    }
    let (_, csr) = outpost_server::testing::key_and_csr().expect("csr");
    pki.sign_device_csr(&csr, "dev-test", 30)
        .expect("a P-256 request is signed");
}

fn audit_cli(args: &[&str]) -> (i32, String, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-server"))
        .arg("audit")
        .args(args)
        .output()
        .expect("run outpost-server");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn record(log: &outpost_server::security::audit::AuditLog, n: usize, detail: &str) {
    use outpost_server::security::audit::{AuditEvent, AuditOutcome};
    for i in 0..n {
        log.record(AuditEvent::new("login", AuditOutcome::Ok).detail(format!("{detail} {i}")))
            .expect("record");
    }
}

/// S8: `audit head` prints SEQ:HASH; `audit verify --expect-head` passes on the same trail,
/// fails naming the record when the newest records were cut off (the chain alone still says
/// intact), and when the trail was rewritten (a new chain with the same numbers).
#[test]
fn s8_a_head_kept_elsewhere_catches_a_cut_tail_and_a_rewrite() {
    use outpost_server::security::audit::AuditLog;
    let t = tempfile::tempdir().expect("tmp");
    let dir = t.path();
    let d = dir.to_str().expect("utf-8 path");
    let log = AuditLog::open(dir).expect("audit log");
    record(&log, 5, "first");
    let (seq, hash) = log.head().expect("head");
    assert_eq!(seq, 5);

    let (rc, out, err) = audit_cli(&["head", "--data", d]);
    assert_eq!(rc, 0, "{err}");
    let kept = out.trim().to_string();
    assert_eq!(kept, format!("5:{hash}"));
    let (rc, out, err) = audit_cli(&["verify", "--data", d, "--expect-head", &kept]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(
        out.contains("the head kept elsewhere (#5) is in the trail"),
        "{out}"
    );

    // Cut the tail: the chain alone is still intact, the kept head is not there.
    let conn = rusqlite::Connection::open(dir.join("audit.db")).expect("sqlite");
    conn.execute("DELETE FROM audit_log WHERE seq > 3", [])
        .expect("cut");
    let (rc, out, _) = audit_cli(&["verify", "--data", d]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("intact: 3 records"), "{out}");
    let (rc, out, _) = audit_cli(&["verify", "--data", d, "--expect-head", &kept]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("BROKEN at record #5"), "{out}");
    assert!(out.contains("missing: the trail ends at #3"), "{out}");

    // Rewrite everything: a new consistent chain of 5 records.
    conn.execute("DELETE FROM audit_log", []).expect("wipe");
    record(&log, 5, "forged");
    let (rc, out, _) = audit_cli(&["verify", "--data", d]);
    assert_eq!(rc, 0, "{out}");
    let (rc, out, _) = audit_cli(&["verify", "--data", d, "--expect-head", &kept]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("BROKEN at record #5"), "{out}");
    assert!(out.contains("differs"), "{out}");

    // A malformed head is a usage error naming the format.
    let (rc, _, err) = audit_cli(&["verify", "--data", d, "--expect-head", "5-abc"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("SEQ:HASH"), "{err}");
}

fn add(
    server: &TestServer,
    name: &str,
    role: Role,
    unit: Option<&str>,
    password: &str,
) -> Result<(), String> {
    server
        .security()
        .accounts()
        .add_user(&outpost_server::security::accounts::NewAccount {
            name: name.into(),
            role,
            unit_id: unit.map(str::to_string),
            display_name: None,
            password: password.into(),
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// S12 + S6: one login-name rule (any script, `@`), names unique ignoring case and
/// compatibility forms, no whitespace-only password, a field unit's unit id without hidden
/// characters, and a device name without bidi/control/non-characters; the console audit
/// events accept every name the accounts accept.
#[test]
fn s12_login_names_one_rule_unique_ignoring_case_and_hidden_characters_refused() {
    let server = TestServer::start().expect("server");
    let pw = "a good password 123";
    // Any script and '@' work, and their console audit events keep the name.
    for name in ["王伟", "ann@pd"] {
        add(&server, name, Role::Commander, None, pw).expect(name);
        let ev = outpost_domain::wire::ConsoleAuditEvent {
            event_id: uuid::Uuid::now_v7(),
            at: "2026-11-30T05:44:00.12+00:00".into(),
            user: name.into(),
            action: "sign_in".into(),
            target: "offline".into(),
            outcome: "ok".into(),
            detail: String::new(),
        };
        assert_eq!(ev.validate(), Ok(()), "{name}");
    }
    // `Commander` beside `commander` (and full-width forms) refused with a clear message.
    for look_alike in ["Commander", "COMMANDER", "ｃｏｍｍａｎｄｅｒ"] {
        let e = add(&server, look_alike, Role::Viewer, None, pw).expect_err(look_alike);
        assert!(
            e.contains("too like the existing account \"commander\""),
            "{e}"
        );
    }
    let e = add(&server, "commander", Role::Viewer, None, pw).expect_err("same");
    assert!(e.contains("exists already"), "{e}");
    // Look-alike scripts, flags, hidden characters.
    for (bad, why) in [
        ("\u{0430}dministrator", "mixed with Greek or Cyrillic"),
        ("-rf", "starts with '-'"),
        ("evil\u{202E}gnp", "U+202E"),
        ("a\u{200B}b", "U+200B"),
    ] {
        let e = add(&server, bad, Role::Viewer, None, pw).expect_err(bad);
        assert!(e.starts_with("name: "), "{e}");
        assert!(e.contains(why), "{bad:?}: {e}");
    }
    // A password of only spaces.
    let e = add(&server, "spacey", Role::Viewer, None, &" ".repeat(12)).expect_err("spaces");
    assert!(e.contains("password: only spaces"), "{e}");
    // A field unit's unit id: hidden or control characters refused, surrounding space trimmed.
    let e = add(&server, "r3", Role::FieldUnit, Some("u-01\u{0007}x"), pw).expect_err("bell");
    assert!(e.starts_with("unit_id: U+0007"), "{e}");
    let e = add(&server, "r4", Role::FieldUnit, Some(&"u".repeat(65)), pw).expect_err("long");
    assert!(e.contains("65 characters"), "{e}");
    add(&server, "r5", Role::FieldUnit, Some("u-02\n"), pw).expect("trimmed");
    let users = server.security().accounts().list_users().expect("list");
    let r5 = users.iter().find(|u| u.name == "r5").expect("r5");
    assert_eq!(r5.unit_id.as_deref(), Some("u-02"));

    // Enrollment: a device name with a right-to-left override, a zero-width space or a
    // non-character is refused, naming the field.
    let user = server.user(Role::Commander).clone();
    for bad in ["laptop \u{202E}gnp.exe", "x\u{200B}y", "laptop \u{FFFF}"] {
        let (_, csr) = outpost_server::testing::key_and_csr().expect("csr");
        let e = server
            .security()
            .enroll(&outpost_domain::wire::EnrollRequest {
                protocol: PROTOCOL_VERSION,
                user: user.name.clone(),
                password: user.password.clone(),
                totp: server.fresh_code(Role::Commander),
                device_name: bad.into(),
                origin: uuid::Uuid::now_v7(),
                csr_pem: csr,
                cache_key: "ab".repeat(32),
            })
            .expect_err(bad)
            .to_string();
        assert!(e.starts_with("device_name: U+"), "{bad:?}: {e}");
    }
}
