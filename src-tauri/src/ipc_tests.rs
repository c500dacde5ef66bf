//! The IPC as the webview sees it: commands invoked by name with JSON `{ args }` through
//! Tauri's mock runtime, on a real `Console` over a temp data directory (no pack).

use std::sync::mpsc;
use std::time::Duration;

use outpost_app::ipc::COMMANDS;
use serde_json::{Value, json};
use tauri::Listener;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow};

use outpost_app::auth::{Gate, GateConfig, GateOptions, KdfParams};
use outpost_domain::SystemClock;

use super::*;
use crate::session::{Shell, StartPlan};

struct Harness {
    app: App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
    _dir: tempfile::TempDir,
}

/// The password of the harness's first account.
const PASSWORD: &str = "correct horse battery";

/// The app on a fresh data directory: nobody signed in yet (the Gate's setup state).
fn harness_signed_out() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = GateOptions {
        data_dir: dir.path().to_path_buf(),
        pack: None,
        demo: false,
        field_unit: None,
        server_url: None,
        ca_file: None,
        idle_lock_s: Some(900),
        login_hint: Some("li.wei".into()),
    };
    // Small argon2id parameters: the test is about the IPC, not the KDF's cost.
    let config = GateConfig {
        kdf: KdfParams::TEST_ONLY,
        ..GateConfig::default()
    };
    let gate = Gate::open_with(options, Arc::new(SystemClock), config).expect("gate opens");
    let plan = StartPlan {
        map_base_url: tiles::MAP_BASE_URL.to_owned(),
        gps_speed: 1.0,
        ..StartPlan::default()
    };
    let shell = Arc::new(Shell::new(Arc::new(gate), plan));
    let app = wire(mock_builder(), shell)
        .build(mock_context(noop_assets()))
        .expect("mock app builds");
    emit_changes(app.handle());
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("mock window");
    Harness {
        app,
        webview,
        _dir: dir,
    }
}

/// The current code of a TOTP secret (base32).
fn code(secret: &str) -> String {
    outpost_app::auth::totp::code_at(secret, chrono::Utc::now()).expect("valid secret")
}

/// Creates the first account "li.wei" through the IPC (setup_account, then confirm_setup with
/// the current code); returns its TOTP secret.
fn set_up(h: &Harness) -> String {
    let enrollment = invoke(
        h,
        "setup_account",
        json!({ "args": { "user": "li.wei", "display_name": "李伟", "password": PASSWORD } }),
    )
    .expect("setup_account");
    let secret = enrollment["secret"].as_str().expect("secret").to_owned();
    assert!(
        enrollment["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("otpauth://totp/") && u.contains(&secret)),
        "{enrollment}"
    );
    let status = invoke(
        h,
        "confirm_setup",
        json!({ "args": { "code": code(&secret) } }),
    )
    .expect("confirm_setup");
    assert_eq!(status["state"], "signed_in", "{status}");
    assert_eq!(status["user"]["user"], "li.wei");
    assert_eq!(status["user"]["role"], "commander");
    secret
}

/// The app with "li.wei" signed in (a console without a server).
fn harness() -> Harness {
    let h = harness_signed_out();
    set_up(&h);
    h
}

/// Invokes `cmd` as `invoke(cmd, body)` from the page would.
fn invoke(h: &Harness, cmd: &str, body: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(&h.webview, request).map(|b| b.deserialize::<Value>().expect("JSON response"))
}

#[test]
fn every_contract_command_is_registered() {
    let h = harness();
    // The harness tells an unknown command apart...
    let unknown = invoke(&h, "no_such_command", json!({})).expect_err("unknown command");
    assert!(unknown.to_string().contains("not found"), "{unknown}");
    // ...and none of the contract's commands is unknown (with or without valid args).
    for c in COMMANDS {
        if let Err(e) = invoke(&h, c.name, json!({})) {
            assert!(
                !e.to_string().contains("not found"),
                "{} is not registered: {e}",
                c.name
            );
        }
    }
}

#[test]
fn startup_without_a_pack_is_the_error_screen() {
    let h = harness();
    let v = invoke(&h, "startup", json!({})).expect("startup resolves");
    assert_eq!(v["state"], "pack_error");
    assert!(
        v["problem"]["hint"]
            .as_str()
            .is_some_and(|s| s.contains("--demo")),
        "{v}"
    );
}

#[test]
fn sync_commands_answer_without_a_server() {
    let h = harness();
    let v = invoke(&h, "sync_status", json!({})).expect("sync_status");
    assert_eq!(v["state"], "disabled");
    assert_eq!(
        v["pending"],
        json!({"critical": 0, "notes": 0, "positions": 0})
    );
    assert_eq!(
        invoke(&h, "conflicts", json!({})).expect("conflicts"),
        json!([])
    );
    assert_eq!(
        invoke(&h, "parked_ops", json!({})).expect("parked"),
        json!([])
    );
    let err = invoke(
        &h,
        "resolve_conflict",
        json!({"args": {"conflict_id": "field:nope", "keep_op_id": "x", "note": ""}}),
    )
    .expect_err("no such conflict");
    assert!(err["code"].is_string(), "{err}");
}

#[test]
fn settings_round_trip() {
    let h = harness();
    let v = invoke(&h, "get_settings", json!({})).expect("settings");
    assert_eq!(
        v,
        json!({"language": "auto", "theme": "auto", "stale_after_s": 120, "server_url": null})
    );
    let want = json!({"language": "zh_cn", "theme": "night", "stale_after_s": 90,
                      "server_url": "http://127.0.0.1:7400"});
    let saved = invoke(&h, "save_settings", json!({ "args": want })).expect("saved");
    assert_eq!(saved, want);
    assert_eq!(
        invoke(&h, "get_settings", json!({})).expect("settings"),
        want
    );
}

#[test]
fn create_incident_persists_and_emits_state_changed() {
    let h = harness();
    let (tx, rx) = mpsc::channel::<String>();
    h.app.listen_any(STATE_CHANGED_EVENT, move |event| {
        let _ = tx.send(event.payload().to_owned());
    });

    let detail = invoke(
        &h,
        "create_incident",
        json!({ "args": {
            "incident_type": "theft",
            "priority": null,
            "location": { "lat": 42.5069, "lon": 1.5212 },
            "address": "Avinguda Meritxell, Andorra la Vella",
            "description": "bicycle taken from the rack"
        }}),
    )
    .expect("incident created");
    assert_eq!(detail["summary"]["incident_type"], "theft");
    assert_eq!(
        detail["summary"]["address"],
        "Avinguda Meritxell, Andorra la Vella"
    );
    assert_eq!(detail["description"], "bicycle taken from the rack");
    assert_eq!(detail["created_by"], "li.wei");
    assert_eq!(detail["timeline"][0]["event"]["kind"], "created");

    let payload = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("state-changed emitted");
    assert_eq!(
        serde_json::from_str::<Value>(&payload).expect("JSON payload"),
        json!({ "revision": 1 })
    );

    let state = invoke(&h, "console_state", json!({})).expect("state");
    assert_eq!(state["revision"], 1);
    assert_eq!(state["incidents"][0]["id"], detail["summary"]["id"]);

    let id = detail["summary"]["id"].clone();
    let again = invoke(
        &h,
        "incident_detail",
        json!({ "args": { "incident_id": id } }),
    )
    .expect("detail");
    assert_eq!(again, detail);
}

#[test]
fn errors_cross_as_code_and_message() {
    let h = harness();
    let e = invoke(
        &h,
        "incident_detail",
        json!({ "args": { "incident_id": "00000000-0000-0000-0000-000000000000" } }),
    )
    .expect_err("unknown incident");
    assert_eq!(e["code"], "not_found", "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");

    let e = invoke(
        &h,
        "set_unit_status",
        json!({ "args": { "unit_id": "u-99", "to": "en_route" } }),
    )
    .expect_err("unknown unit");
    assert_eq!(e["code"], "not_found", "{e}");
}

#[test]
fn device_track_and_field_commands_answer_as_json() {
    let h = harness();
    assert_eq!(
        invoke(&h, "list_devices", json!({})).expect("devices"),
        json!([])
    );
    // Not a field laptop: no field view, nothing to acknowledge.
    assert_eq!(
        invoke(&h, "field_view", json!({})).expect("view"),
        Value::Null
    );
    let e = invoke(&h, "acknowledge_assignment", json!({})).expect_err("not in field mode");
    assert_eq!(e["code"], "invalid_input", "{e}");
    let e = invoke(
        &h,
        "bind_device",
        json!({ "args": { "device_id": "phone-7", "unit_id": null } }),
    )
    .expect_err("never reported");
    assert_eq!(e["code"], "not_found", "{e}");
    let e = invoke(
        &h,
        "unit_track",
        json!({ "args": { "unit_id": "u-99", "from": null, "to": "2026-11-29T10:00:00Z" } }),
    )
    .expect_err("unknown unit");
    assert_eq!(e["code"], "not_found", "{e}");
    let e = invoke(
        &h,
        "export_track",
        json!({ "args": { "track": { "unit_id": "u-99", "from": null, "to": null },
                          "format": "kml" } }),
    )
    .expect_err("unknown unit");
    assert_eq!(e["code"], "not_found", "{e}");
}

#[test]
fn before_sign_in_only_the_sign_in_commands_answer() {
    let h = harness_signed_out();
    let status = invoke(&h, "auth_status", json!({})).expect("auth_status");
    assert_eq!(status["state"], "setup", "{status}");
    assert_eq!(status["idle_lock_s"], 900);
    assert_eq!(status["login_hint"], "li.wei");
    for cmd in ["startup", "console_state", "sync_status", "get_settings"] {
        let e = invoke(&h, cmd, json!({})).expect_err("signed out");
        assert_eq!(e["code"], "signed_out", "{cmd}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    // A wrong code is refused with its message; nothing opens.
    invoke(
        &h,
        "setup_account",
        json!({ "args": { "user": "li.wei", "display_name": "李伟", "password": PASSWORD } }),
    )
    .expect("setup_account");
    let e = invoke(&h, "confirm_setup", json!({ "args": { "code": "000000" } }))
        .expect_err("wrong code");
    assert_eq!(e["code"], "auth_failed", "{e}");
    let e = invoke(&h, "console_state", json!({})).expect_err("still signed out");
    assert_eq!(e["code"], "signed_out", "{e}");
}

#[test]
fn lock_refuses_the_console_until_unlocked_and_sign_out_ends_it() {
    let h = harness_signed_out();
    let secret = set_up(&h);
    invoke(&h, "console_state", json!({})).expect("signed in");

    let status = invoke(&h, "lock", json!({})).expect("lock");
    assert_eq!(status["state"], "locked", "{status}");
    assert_eq!(status["user"]["user"], "li.wei");
    let e = invoke(&h, "console_state", json!({})).expect_err("locked");
    assert_eq!(e["code"], "signed_out", "{e}");

    let e = invoke(
        &h,
        "unlock",
        json!({ "args": { "password": "not the password", "code": null } }),
    )
    .expect_err("wrong password");
    assert_eq!(e["code"], "auth_failed", "{e}");
    let status = invoke(
        &h,
        "unlock",
        json!({ "args": { "password": PASSWORD, "code": null } }),
    )
    .expect("unlock");
    assert_eq!(status["state"], "signed_in", "{status}");
    invoke(&h, "console_state", json!({})).expect("unlocked");

    let status = invoke(&h, "sign_out", json!({})).expect("sign_out");
    assert_eq!(status["state"], "signed_out", "{status}");
    assert_eq!(status["known_users"][0]["user"], "li.wei");
    let e = invoke(&h, "console_state", json!({})).expect_err("signed out");
    assert_eq!(e["code"], "signed_out", "{e}");

    // Signing in again opens the console again; its changes are still emitted.
    // The code of this 30-second step was used by confirm_setup and is refused (replay);
    // the next step's code is within the ±1 step window and not used yet.
    let e = invoke(
        &h,
        "sign_in",
        json!({ "args": { "user": "li.wei", "password": PASSWORD, "code": code(&secret) } }),
    )
    .expect_err("a used code again");
    assert_eq!(e["code"], "auth_failed", "{e}");
    let next = outpost_app::auth::totp::code_at(
        &secret,
        chrono::Utc::now() + chrono::Duration::seconds(30),
    )
    .expect("valid secret");
    let status = invoke(
        &h,
        "sign_in",
        json!({ "args": { "user": "li.wei", "password": PASSWORD, "code": next } }),
    )
    .expect("sign_in after sign_out");
    assert_eq!(status["state"], "signed_in", "{status}");
    let (tx, rx) = mpsc::channel::<String>();
    h.app.listen_any(STATE_CHANGED_EVENT, move |event| {
        let _ = tx.send(event.payload().to_owned());
    });
    invoke(
        &h,
        "create_incident",
        json!({ "args": {
            "incident_type": "theft",
            "priority": null,
            "location": { "lat": 42.5069, "lon": 1.5212 },
            "address": "Carrer Major",
            "description": ""
        }}),
    )
    .expect("incident created after signing in again");
    rx.recv_timeout(Duration::from_secs(5))
        .expect("state-changed emitted by the new console");
}
