//! Fresh review S6: the console's first-run account follows the server's login-name rule
//! (`outpost_domain::names`): a name in Hanzi or with `@` is set up, one starting with `-`
//! or with a right-to-left override is refused naming the rule.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use outpost_app::auth::{Gate, GateConfig, GateOptions, KdfParams};
use outpost_app::ipc::{AuthState, SetupAccount};
use outpost_domain::clock::FixedClock;

fn gate(dir: &std::path::Path) -> Gate {
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 30, 8, 0, 0)
        .single()
        .expect("valid date");
    Gate::open_with(
        GateOptions {
            data_dir: dir.to_path_buf(),
            pack: None,
            demo: false,
            field_unit: None,
            server_url: None,
            ca_file: None,
            idle_lock_s: Some(600),
            login_hint: None,
        },
        Arc::new(FixedClock::new(t0)),
        GateConfig {
            kdf: KdfParams::TEST_ONLY,
            server: None,
            start_sync: false,
        },
    )
    .expect("gate")
}

fn setup(gate: &Gate, user: &str) -> Result<(), String> {
    gate.setup_account(SetupAccount {
        user: user.into(),
        display_name: "王伟".into(),
        password: "correct horse battery".into(),
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn setup_accepts_the_servers_login_names_and_refuses_the_rest() {
    for bad in ["-rf", "evil\u{202E}gnp", "ann lee", "\u{0430}dmin"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = gate(dir.path());
        let e = setup(&g, bad).expect_err(bad);
        assert!(e.contains("letters (any script)"), "{bad:?}: {e}");
        assert_eq!(g.auth_status().state, AuthState::Setup);
    }
    for good in ["王伟", "ann@pd"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = gate(dir.path());
        setup(&g, good).expect(good);
    }
}
