//! Differential test of the store's `apply` against the reference model, without a server:
//! random sets of hand-built ops from several authors (with causality through
//! `base_version`), applied to a real store in random causal orders (each op after the ops
//! its author had seen), must give the model's state and conflicts, whatever the order and
//! however often an op is applied.

use proptest::prelude::*;
use uuid::Uuid;

use outpost_check::check::shuffle;
use outpost_check::{Author, Model};
use outpost_domain::device::{DeviceReport, DeviceSource};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::merge::{self, OpMeta};
use outpost_domain::op::{Fix, IncidentFields, OpBody, OpEnvelope, Release};
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_store::Store;

use crate::extract;
use crate::support::{ClosureSpec, closure_spec, t0};

const UNITS: [&str; 3] = ["u-01", "u-02", "u-03"];
const PRIOS: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

#[derive(Debug, Clone)]
enum Ev {
    Create,
    Fields {
        inc: usize,
        p: Option<u8>,
        addr: Option<u8>,
    },
    Ack {
        inc: usize,
    },
    Close {
        inc: usize,
        d: u8,
        release_all: bool,
    },
    Status {
        unit: usize,
        to: u8,
        release: bool,
    },
    Assign {
        inc: usize,
        unit: usize,
    },
    Release {
        asg: usize,
        free: bool,
    },
    Note {
        inc: usize,
    },
    Position {
        unit: usize,
        t: i64,
    },
    Resolve {
        which: usize,
    },
    Bind {
        device: usize,
        unit: Option<usize>,
    },
    DeviceReport {
        device: usize,
        t: i64,
        lat: u8,
        battery: Option<u8>,
        named: bool,
    },
    Closure(ClosureSpec),
}

const DEVICES: [&str; 3] = ["phone-1", "ANDROID-2", "ANDROID-3"];

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        2 => Just(Ev::Create),
        3 => (0usize..5, proptest::option::of(0u8..4), proptest::option::of(0u8..3))
            .prop_map(|(inc, p, addr)| Ev::Fields { inc, p, addr }),
        1 => (0usize..5).prop_map(|inc| Ev::Ack { inc }),
        2 => (0usize..5, 0u8..3, any::<bool>())
            .prop_map(|(inc, d, release_all)| Ev::Close { inc, d, release_all }),
        2 => (0usize..3, 0u8..6, any::<bool>())
            .prop_map(|(unit, to, release)| Ev::Status { unit, to, release }),
        3 => (0usize..5, 0usize..3).prop_map(|(inc, unit)| Ev::Assign { inc, unit }),
        1 => (0usize..8, any::<bool>()).prop_map(|(asg, free)| Ev::Release { asg, free }),
        1 => (0usize..5).prop_map(|inc| Ev::Note { inc }),
        2 => (0usize..3, -100i64..100).prop_map(|(unit, t)| Ev::Position { unit, t }),
        1 => (0usize..4).prop_map(|which| Ev::Resolve { which }),
        1 => (0usize..3, proptest::option::of(0usize..3))
            .prop_map(|(device, unit)| Ev::Bind { device, unit }),
        // Few fix times and values, so that duplicates and ties at one fix time happen.
        2 => (0usize..3, 0i64..6, 0u8..3, proptest::option::of(0u8..3), any::<bool>())
            .prop_map(|(device, t, lat, battery, named)| Ev::DeviceReport {
                device, t, lat, battery, named
            }),
        2 => closure_spec().prop_map(Ev::Closure),
    ]
}

/// A log built by several authors: each event is written by one author who has seen a
/// prefix of the log (its base), then accepted (next gseq).
fn build(authors: usize, events: &[(usize, u8, Ev)]) -> Vec<(u64, OpEnvelope)> {
    let mut log: Vec<(u64, OpEnvelope)> = Vec::new();
    let mut auth: Vec<Author> = (0..authors)
        .map(|k| Author::new(k as u128 + 1, &format!("user{k}"), t0().timestamp_millis()))
        .collect();
    // Every unit registered by author 0 first; every author has seen that.
    for u in UNITS {
        let op = auth[0].op(OpBody::UnitRegister {
            unit_id: u.into(),
            callsign: format!("东胜{u}"),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        });
        let g = log.len() as u64 + 1;
        log.push((g, op));
    }
    for a in auth.iter_mut() {
        a.saw(log.len() as u64);
    }
    let mut incidents: Vec<Uuid> = Vec::new();
    let mut assignments: Vec<(Uuid, Uuid, String)> = Vec::new();
    let mut n = 0u128;
    for (k, catch_up, e) in events {
        let k = k % authors;
        // The author catches up to a random later point of the log (never back).
        let seen = (log.len() as u64 * u64::from(*catch_up) / 255).max(auth[k].base);
        auth[k].saw(seen);
        auth[k].tick(1_000);
        // What the author can refer to: what it has seen, plus its own ops.
        let visible = |id: &Uuid, log: &[(u64, OpEnvelope)], me: Uuid| {
            log.iter().any(|(g, op)| {
                (op.origin == me || *g <= seen)
                    && match &op.body {
                        OpBody::IncidentCreate { incident_id, .. } => incident_id == id,
                        OpBody::AssignmentAdd { assignment_id, .. } => assignment_id == id,
                        _ => false,
                    }
            })
        };
        let me = auth[k].origin;
        let pick_inc = |i: usize, log: &[(u64, OpEnvelope)]| {
            let vis: Vec<Uuid> = incidents
                .iter()
                .copied()
                .filter(|x| visible(x, log, me))
                .collect();
            (!vis.is_empty()).then(|| vis[i % vis.len()])
        };
        let model = Model::from_ops(
            log.iter()
                .filter(|(g, op)| op.origin == me || *g <= seen)
                .map(|(g, op)| (op.clone(), Some(*g))),
        );
        let body = match e {
            Ev::Create => {
                n += 1;
                let id = Uuid::from_u128(0xC000_0000 + n);
                incidents.push(id);
                Some(OpBody::IncidentCreate {
                    incident_id: id,
                    number: format!("N{n}"),
                    incident_type: IncidentType::Theft,
                    priority: Priority::P3,
                    location: LatLon {
                        lat: 42.5,
                        lon: 1.5,
                    },
                    address: "A".into(),
                    description: "D".into(),
                })
            }
            Ev::Fields { inc, p, addr } => {
                pick_inc(*inc, &log).map(|id| OpBody::IncidentSetFields {
                    incident_id: id,
                    fields: IncidentFields {
                        priority: p.map(|p| PRIOS[usize::from(p) % 4]),
                        address: addr.map(|a| format!("Carrer {a}")),
                        ..IncidentFields::default()
                    },
                })
            }
            Ev::Ack { inc } => {
                pick_inc(*inc, &log).map(|id| OpBody::IncidentAcknowledge { incident_id: id })
            }
            Ev::Close {
                inc,
                d,
                release_all,
            } => pick_inc(*inc, &log).map(|id| {
                let releases = model
                    .active_assignments()
                    .into_iter()
                    .filter(|(_, (i, _))| *i == id && *release_all)
                    .map(|(a, (i, u))| Release {
                        assignment_id: a,
                        incident_id: i,
                        unit_id: u,
                        unit_to: Some(UnitStatus::Available),
                    })
                    .collect();
                OpBody::IncidentClose {
                    incident_id: id,
                    disposition: [
                        Disposition::Resolved,
                        Disposition::Arrest,
                        Disposition::Unfounded,
                    ][usize::from(*d) % 3],
                    summary: format!("s{d}"),
                    releases,
                }
            }),
            Ev::Status { unit, to, release } => {
                let u = UNITS[*unit].to_string();
                let to = UnitStatus::ALL[usize::from(*to) % 6];
                let releases = if *release && !to.is_committed() {
                    model
                        .active_assignments()
                        .into_iter()
                        .filter(|(_, (_, x))| *x == u)
                        .map(|(a, (i, x))| Release {
                            assignment_id: a,
                            incident_id: i,
                            unit_id: x,
                            unit_to: None,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Some(OpBody::UnitSetStatus {
                    unit_id: u,
                    from: UnitStatus::Available,
                    to,
                    releases,
                })
            }
            Ev::Assign { inc, unit } => pick_inc(*inc, &log).map(|id| {
                n += 1;
                let a = Uuid::from_u128(0xA000_0000 + n);
                assignments.push((a, id, UNITS[*unit].to_string()));
                OpBody::AssignmentAdd {
                    assignment_id: a,
                    incident_id: id,
                    unit_id: UNITS[*unit].into(),
                }
            }),
            Ev::Release { asg, free } => {
                let vis: Vec<&(Uuid, Uuid, String)> = assignments
                    .iter()
                    .filter(|(a, _, _)| visible(a, &log, me))
                    .collect();
                (!vis.is_empty()).then(|| {
                    let (a, i, u) = vis[asg % vis.len()].clone();
                    OpBody::AssignmentRelease {
                        assignment_id: a,
                        incident_id: i,
                        unit_id: u,
                        unit_to: free.then_some(UnitStatus::Available),
                    }
                })
            }
            Ev::Note { inc } => pick_inc(*inc, &log).map(|id| {
                n += 1;
                OpBody::TimelineAppend {
                    entry_id: Uuid::from_u128(0xE000_0000 + n),
                    incident_id: id,
                    text: "note".into(),
                }
            }),
            Ev::Position { unit, t } => {
                n += 1;
                Some(OpBody::PositionReport {
                    unit_id: UNITS[*unit].into(),
                    fix: Fix {
                        position: LatLon {
                            lat: 42.5,
                            lon: 1.5 + (*t as f64) * 1e-4,
                        },
                        // Distinct per op: n in the milliseconds.
                        fix_time: t0()
                            + chrono::Duration::seconds(*t)
                            + chrono::Duration::milliseconds(n as i64 % 1000),
                        heading_deg: None,
                        speed_mps: None,
                        accuracy_m: None,
                    },
                })
            }
            Ev::Bind { device, unit } => Some(OpBody::DeviceBind {
                device_id: DEVICES[*device].into(),
                unit_id: unit.map(|u| UNITS[u].to_string()),
            }),
            Ev::DeviceReport {
                device,
                t,
                lat,
                battery,
                named,
            } => Some(OpBody::DeviceReport {
                report: DeviceReport {
                    device_id: DEVICES[*device].into(),
                    source: [DeviceSource::Osmand, DeviceSource::Cot][*device % 2],
                    name: named.then(|| format!("TAK {lat}")),
                    fix: Fix {
                        position: LatLon {
                            lat: 39.8 + f64::from(*lat) * 0.01,
                            lon: 109.98,
                        },
                        fix_time: t0() + chrono::Duration::seconds(*t),
                        heading_deg: None,
                        speed_mps: Some(3.0),
                        accuracy_m: None,
                    },
                    battery_pct: battery.map(|b| f64::from(b) * 40.0),
                },
            }),
            Ev::Closure(spec) => Some(OpBody::RoadClosureSet {
                closure: spec.closure(),
            }),
            Ev::Resolve { which } => {
                let open: Vec<String> = model
                    .conflicts()
                    .into_iter()
                    .filter(|c| c.starts_with("closed:"))
                    .collect();
                (!open.is_empty()).then(|| OpBody::ConflictResolve {
                    conflict_id: open[which % open.len()].clone(),
                    releases: Vec::new(),
                    note: String::new(),
                })
            }
        };
        if let Some(b) = body {
            let op = auth[k].op(b);
            let g = log.len() as u64 + 1;
            log.push((g, op));
        }
    }
    log
}

/// A random causal order of the log: a random linear extension of `happened_before` (every
/// op after the ops its author had seen — the orders pulls, snapshots and local writes give).
fn causal_order(log: &[(u64, OpEnvelope)], seed: u64) -> Vec<(u64, OpEnvelope)> {
    let metas: Vec<OpMeta> = log.iter().map(|(g, op)| OpMeta::of(op, Some(*g))).collect();
    let mut rank: Vec<usize> = (0..log.len()).collect();
    shuffle(&mut rank, seed);
    let mut done = vec![false; log.len()];
    let mut out = Vec::with_capacity(log.len());
    while out.len() < log.len() {
        let next = (0..log.len())
            .filter(|&i| !done[i])
            .filter(|&i| {
                (0..log.len()).all(|j| done[j] || !merge::happened_before(&metas[j], &metas[i]))
            })
            .min_by_key(|&i| rank[i])
            .expect("happened_before is acyclic");
        done[next] = true;
        out.push(log[next].clone());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64),
        max_shrink_iters: 500,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_apply_in_any_order_equals_the_model(
        authors in 2usize..4,
        events in proptest::collection::vec((0usize..4, any::<u8>(), ev()), 1..40),
        seed in any::<u64>(),
    ) {
        let log = build(authors, &events);
        let model = Model::from_ops(log.iter().map(|(g, op)| (op.clone(), Some(*g))));
        let want = model.state();
        let ops = causal_order(&log, seed);
        // Some ops twice (re-pulled).
        let mut store = Store::open_in_memory(t0()).expect("store");
        {
            let tx = store.transaction().expect("tx");
            for (k, (g, op)) in ops.iter().enumerate() {
                outpost_store::apply::apply_with_gseq(&tx, op, Some(*g)).expect("apply");
                if k % 3 == 0 {
                    outpost_store::apply::apply_with_gseq(&tx, op, Some(*g)).expect("apply again");
                }
            }
            tx.commit().expect("commit");
        }
        if std::env::var("S_DEBUG").is_ok() {
            eprintln!("ops {} conflicts {:?} timeline {}", log.len(), model.conflicts(), want.table("timeline").count());
        }
        let got = extract::state(store.conn());
        let diff = want.diff(&got, 8);
        prop_assert!(diff.is_empty(), "model ≠ store:\n{}", diff.join("\n"));
        // The store's own canonical digest (digest.rs) agrees with the model's too.
        prop_assert_eq!(store.state_digest().expect("digest"), want.digest());
        let conflicts = store.conflict_ids().expect("conflict ids");
        prop_assert_eq!(conflicts, model.conflicts());
    }
}

/// The fixed case of "lifting is final": B lifts a closure while A, which has not seen the
/// lift, extends it later (same base, newer HLC: A's write is the register winner). Store
/// and model both show the extension lifted, named after B's lift, in every causal order
/// and for either server order of the two writes.
#[test]
fn a_lift_concurrent_with_a_later_extension_stays_lifted_in_store_and_model() {
    let spec = |lifted: bool, ends: i64| ClosureSpec {
        which: 0,
        area: false,
        points: vec![(0, 0), (1, 1), (2, 1)],
        reason: 0,
        ends: Some(ends),
        lifted,
    };
    let t0ms = t0().timestamp_millis();
    let mut a = Author::new(1, "cmdr.a", t0ms);
    let mut b = Author::new(2, "cmdr.b", t0ms);
    let body = |s: ClosureSpec| OpBody::RoadClosureSet {
        closure: s.closure(),
    };
    a.tick(1_000);
    let drawn = a.op(body(spec(false, 3_600)));
    a.saw(1);
    b.saw(1).tick(2_000);
    let lift = b.op(body(spec(true, 3_600)));
    a.tick(5_000);
    let extended = spec(false, 7_200).closure();
    let ext = a.op(body(spec(false, 7_200)));
    // The extension is the register winner: without the rule it would undo the lift.
    let metas = [OpMeta::of(&lift, Some(2)), OpMeta::of(&ext, Some(3))];
    assert_eq!(
        merge::winner(&metas).map(|m| m.op_id),
        Some(ext.op_id),
        "the extension wins the register"
    );
    for log in [
        vec![(1, drawn.clone()), (2, lift.clone()), (3, ext.clone())],
        vec![(1, drawn.clone()), (2, ext.clone()), (3, lift.clone())],
    ] {
        let model = Model::from_ops(log.iter().map(|(g, op)| (op.clone(), Some(*g))));
        let want = model.state();
        let id = ClosureSpec::id(0).to_string();
        let row = want.row("road_closures", &id).expect("a closure row");
        let mut shown = serde_json::to_value(&extended).expect("json");
        shown["lifted"] = serde_json::Value::Bool(true);
        assert_eq!(row["value"], shown, "the extension's value, lifted");
        assert_eq!(row["set_by"], "cmdr.b");
        assert_eq!(row["set_at"], lift.hlc.wall_ms);
        for seed in 0..6 {
            let store = Store::open_in_memory(t0()).expect("store");
            for (g, op) in causal_order(&log, seed) {
                outpost_store::apply::apply_with_gseq(store.conn(), &op, Some(g)).expect("apply");
            }
            let got = extract::state(store.conn());
            let diff = want.diff(&got, 8);
            assert!(diff.is_empty(), "model ≠ store:\n{}", diff.join("\n"));
            assert!(store.conflict_ids().expect("conflicts").is_empty());
        }
    }
}
