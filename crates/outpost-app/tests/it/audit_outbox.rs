//! The console audit outbox (issue 6) through the `Gate` against the real TLS server of
//! `outpost_server::testing`: a failed offline sign-in, an offline sign-in, a track export
//! and a local permission refusal are queued in `audit-outbox.jsonl` (0600, never the
//! password or a code), then reach the server's hash chain after an online sign-in (the
//! uploader thread) with the device from the certificate, and the outbox is empty. An upload
//! whose answer is lost is sent again and recorded once. Time is the test server's
//! `FixedClock`; the only waiting is bounded polling of the uploader thread.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Duration;

use outpost_app::auth::audit_outbox::OUTBOX_FILE;
use outpost_app::auth::{
    AuthServer, DeviceIdentity, Gate, GateConfig, GateOptions, KdfParams, ServerError, SyncServer,
};
use outpost_app::ipc::{
    AuthState, EnrollDevice, ErrorCode, ExportTrack, NewIncident, SignIn, TrackFormat, TrackQuery,
};
use outpost_domain::access::Role;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::IncidentType;
use outpost_domain::op::Fix;
use outpost_domain::unit::UnitKind;
use outpost_domain::wire::{
    AuditEventsRequest, AuditEventsResponse, AuditRecord, ConsoleAuditEvent, EnrollRequest,
    EnrollResponse, LoginRequest, LoginResponse, Revocations,
};
use outpost_server::testing::{TEST_PASSWORD, TestServer};

/// The real client, with a switch that makes the server unreachable for sign-in and one
/// that loses the answer of the next audit upload after the server stored it.
#[derive(Default)]
struct Switch {
    offline: AtomicBool,
    lose_next_answer: AtomicBool,
    answers_lost: AtomicUsize,
    answers: Mutex<Vec<AuditEventsResponse>>,
}

impl Switch {
    fn reachable(&self) -> Result<(), ServerError> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(ServerError::Unreachable("network down (test)".into()));
        }
        Ok(())
    }
}

impl AuthServer for Switch {
    fn enroll(
        &self,
        url: &str,
        ca_pem: &str,
        req: &EnrollRequest,
    ) -> Result<EnrollResponse, ServerError> {
        self.reachable()?;
        SyncServer.enroll(url, ca_pem, req)
    }

    fn login(
        &self,
        url: &str,
        device: &DeviceIdentity,
        req: &LoginRequest,
    ) -> Result<LoginResponse, ServerError> {
        self.reachable()?;
        SyncServer.login(url, device, req)
    }

    fn logout(&self, url: &str, device: &DeviceIdentity, token: &str) -> Result<(), ServerError> {
        self.reachable()?;
        SyncServer.logout(url, device, token)
    }

    fn revocations(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
    ) -> Result<Revocations, ServerError> {
        self.reachable()?;
        SyncServer.revocations(url, device, token)
    }

    fn audit_events(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
        req: &AuditEventsRequest,
    ) -> Result<AuditEventsResponse, ServerError> {
        self.reachable()?;
        let answer = SyncServer.audit_events(url, device, token, req)?;
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(answer.clone());
        if self.lose_next_answer.swap(false, Ordering::SeqCst) {
            self.answers_lost.fetch_add(1, Ordering::SeqCst);
            return Err(ServerError::Unreachable(
                "connection reset before the answer (test)".into(),
            ));
        }
        Ok(answer)
    }
}

/// Polls `f` until it holds (the uploader runs on its own thread); fails after 30 s.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn outbox_events(data: &Path) -> Vec<ConsoleAuditEvent> {
    std::fs::read_to_string(data.join(OUTBOX_FILE))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an outbox line"))
        .collect()
}

fn console_records(server: &TestServer) -> Vec<AuditRecord> {
    let log = server.security().audit_log().expect("audit log");
    let mut out: Vec<AuditRecord> = Vec::new();
    loop {
        let after = out.last().map_or(0, |r| r.seq);
        let page = log.page(after, Some(1000)).expect("page");
        if page.records.is_empty() {
            break;
        }
        out.extend(page.records);
    }
    out.retain(|r| r.action.starts_with("console:"));
    out
}

fn sign_in(gate: &Gate, server: &TestServer, role: Role) {
    let user = server.user(role).name.clone();
    let status = gate
        .sign_in(SignIn {
            user,
            password: TEST_PASSWORD.into(),
            code: server.fresh_code(role),
        })
        .expect("sign-in");
    assert_eq!(status.state, AuthState::SignedIn);
}

#[test]
fn offline_sign_ins_exports_and_refusals_reach_the_chain_once() {
    let server = TestServer::start().expect("test server");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("agency-ca.pem");
    std::fs::write(&ca, server.ca_pem()).expect("ca");
    let data = dir.path().join("data");
    let switch = Arc::new(Switch::default());
    let gate = Gate::open_with(
        GateOptions {
            data_dir: data.clone(),
            pack: None,
            demo: false,
            field_unit: None,
            server_url: Some(server.url()),
            ca_file: Some(ca),
            idle_lock_s: None,
            login_hint: None,
        },
        server.clock().clone(),
        GateConfig {
            kdf: KdfParams::TEST_ONLY,
            server: Some(switch.clone() as Arc<dyn AuthServer>),
            start_sync: true,
        },
    )
    .expect("gate");

    // Online first: the commander enrolls, the field unit signs in once (so both may sign in
    // offline here later, and both hold a grant on this device).
    let commander = server.user(Role::Commander).name.clone();
    let status = gate
        .enroll_device(EnrollDevice {
            server_url: server.url(),
            user: commander.clone(),
            password: TEST_PASSWORD.into(),
            code: server.fresh_code(Role::Commander),
            device_name: "patrol car 7".into(),
        })
        .expect("enroll");
    let device_id = status.device_id.clone().expect("enrolled");
    if status.state != AuthState::SignedIn {
        sign_in(&gate, &server, Role::Commander);
    }
    // Online, the uploader empties the outbox by itself.
    until("the sign-in to be uploaded", || {
        outbox_events(&data).is_empty()
    });
    gate.sign_out();
    sign_in(&gate, &server, Role::FieldUnit);
    until("the sign-out and sign-in to be uploaded", || {
        outbox_events(&data).is_empty()
    });
    // A sign-out ends the session: its record waits for the next online session.
    gate.sign_out();
    let online_records = console_records(&server).len();
    assert!(online_records >= 3, "sign-ins of both, sign-out of one");

    // Offline from here on.
    switch.offline.store(true, Ordering::SeqCst);
    let right = server.fresh_code(Role::Commander);
    let wrong = format!(
        "{:06}",
        (right.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    let refused = gate.sign_in(SignIn {
        user: commander.clone(),
        password: TEST_PASSWORD.into(),
        code: wrong.clone(),
    });
    assert_eq!(refused.expect_err("wrong code").code, ErrorCode::AuthFailed);
    let refused = gate.sign_in(SignIn {
        user: "nobody.here".into(),
        password: "not-the-password-9".into(),
        code: "123456".into(),
    });
    assert_eq!(refused.expect_err("unknown").code, ErrorCode::AuthFailed);
    let status = gate
        .sign_in(SignIn {
            user: commander.clone(),
            password: TEST_PASSWORD.into(),
            code: right.clone(),
        })
        .expect("offline sign-in");
    assert!(!status.user.expect("signed in").online);

    // An export of a unit's track.
    let console = gate.console().expect("console");
    console
        .register_unit("u-7", "P-07", UnitKind::PatrolCar, None)
        .expect("unit");
    let now = console.now();
    for i in 0..3 {
        console
            .report_position(
                "u-7",
                Fix {
                    position: LatLon {
                        lat: 42.5 + f64::from(i) * 0.001,
                        lon: 1.52,
                    },
                    fix_time: now - Duration::seconds(60 - i64::from(i)),
                    heading_deg: None,
                    speed_mps: None,
                    accuracy_m: None,
                },
            )
            .expect("fix");
    }
    let exported = console
        .export_track(ExportTrack {
            track: TrackQuery {
                unit_id: "u-7".into(),
                from: None,
                to: None,
            },
            format: TrackFormat::Gpx,
        })
        .expect("export");
    drop(console);
    gate.sign_out();

    // The field unit, offline, tries to open an incident: refused locally.
    let fu_code = server.fresh_code(Role::FieldUnit);
    gate.sign_in(SignIn {
        user: server.user(Role::FieldUnit).name.clone(),
        password: TEST_PASSWORD.into(),
        code: fu_code.clone(),
    })
    .expect("field unit offline");
    let console = gate.console().expect("console");
    let forbidden = console.create_incident(NewIncident {
        incident_type: IncidentType::MissingPerson,
        priority: None,
        location: LatLon {
            lat: 42.5078,
            lon: 1.5211,
        },
        address: "Avinguda Meritxell".into(),
        description: "not mine to open".into(),
    });
    assert_eq!(forbidden.expect_err("forbidden").code, ErrorCode::Forbidden);
    drop(console);
    gate.sign_out();

    // Queued, in order, in a private file without the password or a code.
    let file = data.join(OUTBOX_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("outbox")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let raw = std::fs::read_to_string(&file).expect("outbox");
    for secret in [
        TEST_PASSWORD,
        "not-the-password-9",
        &right,
        &wrong,
        &fu_code,
        "123456",
    ] {
        assert!(!raw.contains(secret), "{secret:?} is in the outbox file");
    }
    let queued = outbox_events(&data);
    let summary: Vec<(String, String, String, String)> = queued
        .iter()
        .map(|e| {
            (
                e.user.clone(),
                e.action.clone(),
                e.target.clone(),
                e.outcome.clone(),
            )
        })
        .collect();
    let fu = server.user(Role::FieldUnit).name.clone();
    let s = |u: &str, a: &str, t: &str, o: &str| (u.into(), a.into(), t.into(), o.into());
    assert_eq!(
        summary,
        vec![
            s(&fu, "sign_out", "online", "ok"),
            s(&commander, "sign_in_failed", "", "refused"),
            s("nobody.here", "sign_in_failed", "", "refused"),
            s(&commander, "sign_in", "offline", "ok"),
            s(&commander, "export", &exported.path, "ok"),
            s(&commander, "sign_out", "offline", "ok"),
            s(&fu, "sign_in", "offline", "ok"),
            s(&fu, "forbidden", "incident.create", "refused"),
            s(&fu, "sign_out", "offline", "ok"),
        ]
    );
    assert!(
        queued[1].detail.contains("wrong code"),
        "{}",
        queued[1].detail
    );
    assert!(
        queued[4].detail.contains("P-07 as GPX, 3 fixes"),
        "{}",
        queued[4].detail
    );
    for e in &queued {
        // 1/100 s and a UTC offset.
        assert_eq!(e.at.as_bytes()[19], b'.', "{}", e.at);
        assert!(
            chrono::DateTime::parse_from_rfc3339(&e.at).is_ok(),
            "{}",
            e.at
        );
        assert_eq!(e.event_id.get_version_num(), 7);
    }

    // Back online; the first upload's answer is lost after the server stored the batch.
    switch.offline.store(false, Ordering::SeqCst);
    switch.lose_next_answer.store(true, Ordering::SeqCst);
    sign_in(&gate, &server, Role::Commander);
    until("the outbox to empty", || outbox_events(&data).is_empty());
    assert_eq!(switch.answers_lost.load(Ordering::SeqCst), 1);
    let answers = switch
        .answers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert!(
        answers.iter().any(|a| a.duplicates > 0),
        "the batch was sent again: {answers:?}"
    );

    // Each queued event is in the chain once, with this device and the console's time.
    let records = console_records(&server);
    let mut by_event: HashMap<String, Vec<&AuditRecord>> = HashMap::new();
    for r in &records {
        if let Some(id) = r.detail.split("; event ").nth(1) {
            by_event.entry(id[..36].to_string()).or_default().push(r);
        }
    }
    for e in &queued {
        let found = by_event
            .get(&e.event_id.to_string())
            .unwrap_or_else(|| panic!("{} {} not in the trail", e.action, e.event_id));
        assert_eq!(found.len(), 1, "{} recorded once", e.event_id);
        let r = found[0];
        assert_eq!(r.device, device_id);
        assert_eq!(r.action, format!("console:{}", e.action));
        assert!(
            r.detail
                .contains(&format!("console time {}; event {}", e.at, e.event_id)),
            "{}",
            r.detail
        );
        if e.user == "nobody.here" {
            // Nobody of that name holds a grant here: kept as evidence, refused.
            assert_eq!(r.user, commander);
            assert_eq!(r.outcome, "refused");
            assert!(r.detail.contains("\"nobody.here\""), "{}", r.detail);
        } else {
            assert_eq!(r.user, e.user);
            assert_eq!(r.outcome, e.outcome);
            assert_eq!(r.target, e.target);
        }
    }
    assert!(records.len() >= online_records + queued.len());
    assert!(
        server
            .security()
            .audit_log()
            .expect("log")
            .verify()
            .expect("verify")
            .is_intact()
    );
    gate.shutdown();
}

#[test]
fn a_standalone_console_records_setup_locks_unlocks_and_failures_without_secrets() {
    use outpost_app::auth::totp;
    use outpost_app::ipc::{SetupAccount, TotpCode, Unlock};
    use outpost_domain::Clock;
    use outpost_domain::clock::FixedClock;

    const PASSWORD: &str = "a long standalone passphrase";
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
    ));
    let gate = Gate::open_with(
        GateOptions {
            data_dir: dir.path().to_path_buf(),
            pack: None,
            demo: false,
            field_unit: None,
            server_url: None,
            ca_file: None,
            idle_lock_s: Some(600),
            login_hint: None,
        },
        clock.clone(),
        GateConfig {
            kdf: KdfParams::TEST_ONLY,
            server: None,
            start_sync: false,
        },
    )
    .expect("gate");
    let enrollment = gate
        .setup_account(SetupAccount {
            user: "cmdr.li".into(),
            display_name: "李队长".into(),
            password: PASSWORD.into(),
        })
        .expect("setup");
    let first = totp::code_at(&enrollment.secret, clock.now()).expect("code");
    let wrong = format!(
        "{:06}",
        (first.parse::<u32>().expect("digits") + 7) % 1_000_000
    );
    assert!(
        gate.confirm_setup(TotpCode {
            code: wrong.clone()
        })
        .is_err()
    );
    gate.confirm_setup(TotpCode {
        code: first.clone(),
    })
    .expect("confirm");
    gate.lock();
    gate.lock(); // already locked: nothing more recorded
    let bad = "not my passphrase at all";
    assert_eq!(
        gate.unlock(Unlock {
            password: bad.into(),
            code: None,
        })
        .expect_err("wrong password")
        .code,
        ErrorCode::AuthFailed
    );
    gate.unlock(Unlock {
        password: PASSWORD.into(),
        code: None,
    })
    .expect("unlock");
    gate.sign_out();

    let raw = std::fs::read_to_string(dir.path().join(OUTBOX_FILE)).expect("outbox");
    for secret in [PASSWORD, bad, &first, &wrong, &enrollment.secret] {
        assert!(!raw.contains(secret), "{secret:?} is in the outbox file");
    }
    let got: Vec<(String, String, String, String)> = outbox_events(dir.path())
        .into_iter()
        .map(|e| (e.user, e.action, e.target, e.outcome))
        .collect();
    let s = |a: &str, t: &str, o: &str| ("cmdr.li".to_string(), a.into(), t.into(), o.into());
    assert_eq!(
        got,
        vec![
            s("sign_in_failed", "setup", "refused"),
            s("sign_in", "setup", "ok"),
            s("lock", "", "ok"),
            s("unlock_failed", "", "refused"),
            s("unlock", "", "ok"),
            s("sign_out", "offline", "ok"),
        ]
    );
    // Nothing to upload without a server.
    assert_eq!(
        gate.flush_audit().expect_err("no server").code,
        ErrorCode::Offline
    );
}
