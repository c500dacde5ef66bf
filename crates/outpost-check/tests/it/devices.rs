//! Device and position scenarios (issue 4) on real consoles and the real server logic:
//! out-of-order and duplicate fixes (SYNC.md principle 9: the marker never moves back, the
//! history has each fix once, on every replica), a device bound after its reports, and
//! concurrent binds of one device.

use std::collections::BTreeMap;

use chrono::Duration;

use outpost_domain::geo::LatLon;
use outpost_domain::op::{Fix, Lane};

use crate::harness::{Action, PullFault, PushFault, World};
use crate::support::t0;

/// A fix of a unit driving north through Dongsheng, `secs` after t0.
fn fix(secs: i64) -> Fix {
    Fix {
        position: LatLon {
            lat: 39.8 + secs as f64 * 1e-4,
            lon: 109.98,
        },
        fix_time: t0() + Duration::seconds(secs),
        heading_deg: Some(0.0),
        speed_mps: Some(8.0),
        accuracy_m: Some(5.0),
    }
}

fn report(w: &World, i: usize, unit: &str, secs: i64) {
    w.nodes[i]
        .console
        .report_position(unit, fix(secs))
        .expect("report position");
}

/// The marker's fix time (ms) of `unit` on node `i`.
fn marker(w: &World, i: usize, unit: &str) -> Option<i64> {
    w.state(i)
        .row("unit_positions", unit)
        .and_then(|r| r["fix_time"].as_i64())
}

/// The fix times (ms) of `unit`'s history on node `i`, as many times as they are kept.
fn history(w: &World, i: usize, unit: &str) -> Vec<i64> {
    w.state(i)
        .table("positions")
        .filter(|(_, r)| r["unit_id"] == unit)
        .filter_map(|(_, r)| r["fix_time"].as_i64())
        .collect()
}

fn ms(secs: i64) -> i64 {
    (t0() + Duration::seconds(secs)).timestamp_millis()
}

#[test]
fn out_of_order_and_duplicate_fixes_never_move_the_marker_back_on_any_replica() {
    let mut w = World::new(4, &[0, 1_500, -2_000, 0]);
    w.advance(120_000);
    // Two gateways relay one unit's fixes, out of order and some twice (the same fix
    // through both, and once more through one after a lost answer).
    report(&w, 1, "u-01", 30);
    report(&w, 1, "u-01", 10);
    report(&w, 1, "u-01", 50);
    report(&w, 2, "u-01", 20);
    report(&w, 2, "u-01", 50);
    report(&w, 2, "u-01", 40);
    report(&w, 2, "u-01", 10);
    report(&w, 1, "u-01", 30);
    let mut seen: BTreeMap<usize, i64> = BTreeMap::new();
    let mut observe = |w: &World| {
        for i in 0..w.nodes.len() {
            if let Some(m) = marker(w, i, "u-01") {
                let prev = seen.insert(i, m).unwrap_or(i64::MIN);
                assert!(
                    m >= prev,
                    "node {i}: the marker moved back from {prev} to {m}"
                );
            }
        }
    };
    observe(&w);
    // Node 2 pushes first, one op per batch, an answer lost and a batch delivered twice;
    // pulls happen between pushes, some twice.
    w.batch = 1;
    w.push(2, Lane::Positions, PushFault::None);
    w.pull(0, PullFault::None);
    observe(&w);
    w.push(2, Lane::Positions, PushFault::ResponseLost);
    w.push(1, Lane::Positions, PushFault::Twice);
    w.pull(3, PullFault::Twice);
    w.pull(0, PullFault::None);
    observe(&w);
    w.push(2, Lane::Positions, PushFault::None);
    w.push(1, Lane::Positions, PushFault::None);
    w.pull(1, PullFault::None);
    w.pull(3, PullFault::None);
    observe(&w);
    w.batch = 5;
    w.sync_all();
    observe(&w);
    let model = w.heal_and_check(7);
    observe(&w);
    let want: Vec<i64> = [10, 20, 30, 40, 50].into_iter().map(ms).collect();
    for i in 0..w.nodes.len() {
        assert_eq!(history(&w, i, "u-01"), want, "node {i}: each fix once");
        assert_eq!(marker(&w, i, "u-01"), Some(ms(50)), "node {i}");
        let row = w.state(i);
        let latest = row.row("unit_positions", "u-01").expect("latest");
        assert_eq!(latest["lat"].as_f64(), Some(39.8 + 50.0 * 1e-4));
    }
    assert_eq!(
        model.state().row("unit_positions", "u-01"),
        w.state(0).row("unit_positions", "u-01")
    );
    // Eight reports, all accepted (none parked), five fixes kept.
    assert_eq!(
        model
            .ops()
            .filter(|m| m.op.body.kind() == "position.report")
            .count(),
        8
    );
}

#[test]
fn a_device_bound_after_its_reports_moves_its_unit_from_then_on() {
    let mut w = World::new(3, &[0, 0, 0]);
    w.advance(60_000);
    // Node 2 is the gateway: the device is unbound, so its fixes are device reports.
    for secs in [5, -5, 5] {
        assert!(w.act(
            2,
            &Action::DeviceFix {
                device: 1,
                secs,
                battery: Some(77),
            },
        ));
    }
    w.sync_all();
    for i in 0..3 {
        let s = w.state(i);
        let d = s.row("devices", "ANDROID-2").expect("listed for binding");
        // Two distinct fixes (one reported twice); the newest by fix time shown.
        assert_eq!(d["reports"].as_i64(), Some(2), "node {i}");
        assert_eq!(
            d["fix_time"].as_i64(),
            Some((w.now + Duration::seconds(5) + Duration::milliseconds(2)).timestamp_millis())
        );
        assert_eq!(d["battery_pct"].as_f64(), Some(77.0));
        assert!(s.row("unit_positions", "u-02").is_none(), "not a unit yet");
    }
    // A commander on node 0 binds it to u-02; the gateway learns the binding by pulling.
    assert!(w.act(
        0,
        &Action::Bind {
            device: 1,
            unit: Some(1),
        },
    ));
    w.sync_all();
    assert!(w.act(
        2,
        &Action::DeviceFix {
            device: 1,
            secs: 10,
            battery: None,
        },
    ));
    w.sync_all();
    let model = w.heal_and_check(3);
    let fix_ms = (w.now + Duration::seconds(10) + Duration::milliseconds(2)).timestamp_millis();
    for i in 0..3 {
        let s = w.state(i);
        assert_eq!(
            s.row("device_bindings", "ANDROID-2")
                .map(|r| r["unit_id"].clone()),
            Some(serde_json::json!("u-02"))
        );
        assert_eq!(marker(&w, i, "u-02"), Some(fix_ms), "node {i}");
        // Its unbound reports stay with the device.
        assert_eq!(
            s.row("devices", "ANDROID-2")
                .and_then(|d| d["reports"].as_i64()),
            Some(2)
        );
    }
    assert_eq!(
        model
            .ops()
            .filter(|m| m.op.body.kind() == "device.report")
            .count(),
        3
    );
}

#[test]
fn concurrent_binds_of_one_device_converge_without_a_conflict() {
    let mut w = World::new(3, &[0, 900, -900]);
    w.advance(10_000);
    // Two commanders bind one phone to different units, neither having seen the other.
    assert!(w.act(
        0,
        &Action::Bind {
            device: 0,
            unit: Some(0),
        },
    ));
    assert!(w.act(
        1,
        &Action::Bind {
            device: 0,
            unit: Some(2),
        },
    ));
    // Node 1 reaches the server first.
    w.drain(1);
    w.drain(0);
    w.sync_all();
    let model = w.heal_and_check(11);
    let shown: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            w.state(i)
                .row("device_bindings", "phone-1")
                .map(|r| r["unit_id"].clone())
                .unwrap_or_default()
        })
        .collect();
    assert!(shown.iter().all(|u| *u == shown[0]), "{shown:?}");
    assert!(shown[0] == "u-01" || shown[0] == "u-03", "{shown:?}");
    assert!(model.conflicts().is_empty());
    for i in 0..3 {
        assert!(w.conflicts(i).is_empty(), "node {i}");
    }
}

#[test]
fn the_server_gateway_writes_device_reports_until_the_binding_reaches_the_server() {
    let mut w = World::new(2, &[0, 700]);
    w.advance(30_000);
    // Unbound: the gateway writes device reports; node 0 relays one of the same fixes (a
    // duplicate from another origin: same fix time and values, another receive time).
    assert!(w.ingest(2, -20, Some(64)));
    assert!(w.ingest(2, -10, Some(63)));
    assert!(w.act(
        0,
        &Action::DeviceFix {
            device: 2,
            secs: -10,
            battery: Some(63),
        },
    ));
    // Node 1 binds the device but has not pushed yet: the gateway still sees it unbound.
    assert!(w.act(
        1,
        &Action::Bind {
            device: 2,
            unit: Some(3),
        },
    ));
    assert!(w.ingest(2, -5, None));
    w.drain(1);
    // Now bound on the server: the next fix is u-04's position.
    assert!(w.ingest(2, 0, None));
    let model = w.heal_and_check(5);
    let kinds = |k: &str| model.ops().filter(|m| m.op.body.kind() == k).count();
    assert_eq!((kinds("device.report"), kinds("position.report")), (4, 1));
    for i in 0..2 {
        let s = w.state(i);
        let d = s.row("devices", "ANDROID-3").expect("device");
        // Fixes at -20, -10 (twice: one kept) and -5; the newest shown.
        assert_eq!(d["reports"].as_i64(), Some(3), "node {i}");
        assert_eq!(
            d["fix_time"].as_i64(),
            Some((w.now + Duration::seconds(-5)).timestamp_millis())
        );
        assert_eq!(
            marker(&w, i, "u-04"),
            Some(w.now.timestamp_millis()),
            "node {i}"
        );
    }
    assert_eq!(w.state(0), w.state(1));
}
