//! S1: property-based — 2–6 consoles, random scripts of all op kinds through the console's
//! rules (road closures through the store: set, changed and lifted by several consoles),
//! random push/pull schedules with lost requests, lost answers, lanes pushed in
//! random order and duplicated deliveries; then heal, sync to quiescence, and check I1–I6
//! and the reference model. Failing cases are kept in `proptest-regressions/`.
//!
//! `PROPTEST_CASES` sets the number of cases (default 24: each case opens up to 6 SQLite
//! databases with `synchronous=FULL`).

use proptest::prelude::*;

use outpost_domain::op::Lane;

use crate::harness::{Action, PullFault, PushFault, World};
use crate::support::{CLOSURES, ClosureSpec, closure_spec};

#[derive(Debug, Clone)]
enum Step {
    Act(usize, Action),
    Push(usize, Lane, PushFault),
    Pull(usize, PullFault),
    Advance(i64),
    Reboot(usize),
    /// The server compacts position reports below this quarter of its newest gseq.
    Compact(u64),
    /// A backup of the server's database is taken.
    Backup,
    /// The server is restored from the last backup (S12).
    Restore,
    /// The server's ingest gateway writes a device's fix (`World::ingest`).
    Ingest {
        device: usize,
        secs: i64,
        battery: Option<u8>,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let i = 0usize..6;
    let u = 0usize..4;
    prop_oneof![
        3 => (0u8..4).prop_map(|kind| Action::Create { kind }),
        2 => (i.clone(), 0u8..4).prop_map(|(inc, p)| Action::SetPriority { inc, p }),
        1 => (i.clone(), 0u8..4).prop_map(|(inc, t)| Action::SetType { inc, t }),
        1 => (i.clone(), 0u8..4).prop_map(|(inc, d)| Action::SetLocation { inc, d }),
        1 => (i.clone(), 0u8..4).prop_map(|(inc, n)| Action::SetAddress { inc, n }),
        1 => i.clone().prop_map(|inc| Action::Acknowledge { inc }),
        3 => (i.clone(), u.clone()).prop_map(|(inc, unit)| Action::Assign { inc, unit }),
        1 => (i.clone(), u.clone()).prop_map(|(inc, unit)| Action::Release { inc, unit }),
        2 => (u.clone(), 0u8..6).prop_map(|(unit, to)| Action::Status { unit, to }),
        2 => i.clone().prop_map(|inc| Action::Note { inc }),
        2 => (i.clone(), 0u8..3).prop_map(|(inc, d)| Action::Close { inc, d }),
        2 => (u, -600i64..600).prop_map(|(unit, secs)| Action::Position { unit, secs }),
        1 => (0usize..4, 0usize..3).prop_map(|(conflict, side)| Action::Resolve { conflict, side }),
        2 => (0usize..3, proptest::option::of(0usize..4))
            .prop_map(|(device, unit)| Action::Bind { device, unit }),
        3 => (0usize..3, -600i64..240, proptest::option::of(0u8..=100))
            .prop_map(|(device, secs, battery)| Action::DeviceFix { device, secs, battery }),
        2 => closure_spec().prop_map(Action::SetClosure),
        1 => (0..CLOSURES).prop_map(|which| Action::LiftClosure { which }),
    ]
}

fn lane() -> impl Strategy<Value = Lane> {
    prop_oneof![
        Just(Lane::Critical),
        Just(Lane::Notes),
        Just(Lane::Positions)
    ]
}

fn push_fault() -> impl Strategy<Value = PushFault> {
    prop_oneof![
        5 => Just(PushFault::None),
        1 => Just(PushFault::RequestLost),
        1 => Just(PushFault::ResponseLost),
        1 => Just(PushFault::Twice),
    ]
}

fn pull_fault() -> impl Strategy<Value = PullFault> {
    prop_oneof![
        5 => Just(PullFault::None),
        1 => Just(PullFault::Lost),
        1 => Just(PullFault::Twice),
    ]
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..n, action()).prop_map(|(i, a)| Step::Act(i, a)),
        3 => (0..n, lane(), push_fault()).prop_map(|(i, l, f)| Step::Push(i, l, f)),
        3 => (0..n, pull_fault()).prop_map(|(i, f)| Step::Pull(i, f)),
        1 => (1i64..120_000).prop_map(Step::Advance),
        1 => (0..n).prop_map(Step::Reboot),
        1 => (1u64..=4).prop_map(Step::Compact),
        ingests() => (0usize..3, -600i64..240, proptest::option::of(0u8..=100))
            .prop_map(|(device, secs, battery)| Step::Ingest { device, secs, battery }),
        restores() => Just(Step::Backup),
        restores() => Just(Step::Restore),
    ]
}

/// (consoles, clock skews ms, steps, pull page size, push batch size).
type Scenario = (usize, Vec<i64>, Vec<Step>, usize, usize);

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..=6).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec(-3_600_000i64..3_600_000, n),
            proptest::collection::vec(step(n), 20..100),
            1usize..20,
            1usize..10,
        )
    })
}

/// Plays a scenario: `n` consoles that all know three incidents, then `steps`.
fn run(n: usize, skews: &[i64], steps: &[Step], page: usize, batch: usize) -> World {
    let mut w = World::new(n, skews);
    w.page = page;
    w.batch = batch;
    // Three incidents every console knows, so that concurrent edits meet.
    for kind in 0..3 {
        w.act(0, &Action::Create { kind });
    }
    w.sync_all();
    for s in steps {
        match s {
            Step::Act(i, a) => {
                w.act(*i, a);
            }
            Step::Push(i, l, f) => {
                w.push(*i, *l, *f);
            }
            Step::Pull(i, f) => w.pull(*i, *f),
            Step::Advance(ms) => w.advance(*ms),
            Step::Reboot(i) => w.reboot(*i),
            Step::Compact(q) => w.server.compact(*q),
            Step::Backup => w.backup(),
            Step::Restore => w.restore(),
            Step::Ingest {
                device,
                secs,
                battery,
            } => {
                w.ingest(*device, *secs, *battery);
            }
        }
    }
    w
}

/// Weight of server backups and restores: 0 unless `S1_RESTORES=1` — with them S1 meets
/// the defect pinned by `s1_found_pending_edit_across_restore_and_resync` (see the report);
/// turn them on by default once it is fixed.
fn restores() -> u32 {
    u32::from(std::env::var("S1_RESTORES").is_ok_and(|v| v == "1"))
}

/// Weight of the server gateway's writes: 2, or 0 with restores — a gateway op the restore
/// lost stays on the consoles that pulled it (nobody re-pushes it), the limitation pinned by
/// `s1_found_gateway_ops_lost_by_a_restore_stay_on_consoles_that_pulled_them`.
fn ingests() -> u32 {
    if restores() > 0 { 0 } else { 2 }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn s1_random_consoles_and_schedules_converge_to_the_model(
        (n, skews, steps, page, batch) in scenario()
    ) {
        let mut w = run(n, &skews, &steps, page, batch);
        let model = w.heal_and_check(steps.len() as u64);
        if std::env::var("S1_DEBUG").is_ok() {
            let parked_ops = w.server.service.parked().unwrap_or_default();
            for p in &parked_ops {
                eprintln!("parked: {} {}", p.reason, p.raw);
            }
            let parked = parked_ops.len();
            let kinds = |k: &str| model.ops().filter(|m| m.op.body.kind() == k).count();
            let state = model.state();
            eprintln!(
                "consoles {n} steps {} snapshots {} restores {} ops {} (device.bind {}, \
                 device.report {}; bound {}, devices {}; road_closure.set {}, closures {}) \
                 parked {parked} conflicts {:?}",
                steps.len(),
                w.snapshots,
                w.restores,
                model.len(),
                kinds("device.bind"),
                kinds("device.report"),
                state
                    .table("device_bindings")
                    .filter(|(_, r)| !r["unit_id"].is_null())
                    .count(),
                state.table("devices").count(),
                kinds("road_closure.set"),
                state.table("road_closures").count(),
                model.conflicts().iter().map(|c| c.split(':').next().unwrap_or("")).collect::<Vec<_>>()
            );
        }
        // The replicas' conflicts are the model's (checked by I3); every replica also
        // agrees on them after a second quiet round.
        let again = w.heal_and_check(1 + steps.len() as u64);
        prop_assert_eq!(model.conflicts(), again.conflicts());
    }
}

/// The minimal case S1 found (with `S1_RESTORES=1`): console 1 edits an incident it had
/// pulled (pending); the server is restored from a backup that lost the incident, and — the
/// server having been compacted — console 1's resync loads a snapshot. The rebuild skips the
/// pending edit (its incident is missing *for now*) but the ledger keeps it as applied; when
/// the incident is re-pushed and the edit is accepted, the pull treats it as an own op already
/// applied. Every replica had the edit except its author (I3). Fixed in the store: a
/// rebuild marks such an op skipped, and it is replayed once the server accepts it.
#[test]
fn s1_found_pending_edit_across_restore_and_resync() {
    use Action::*;
    let steps = vec![
        Step::Compact(2),
        Step::Act(0, Create { kind: 0 }),
        Step::Backup,
        Step::Act(0, Create { kind: 0 }),
        Step::Act(0, SetPriority { inc: 2, p: 1 }),
        Step::Push(0, Lane::Critical, PushFault::None),
        Step::Pull(1, PullFault::None),
        Step::Act(1, SetPriority { inc: 2, p: 0 }),
        Step::Restore,
        Step::Act(0, Create { kind: 0 }),
        Step::Act(0, SetType { inc: 0, t: 1 }),
        Step::Advance(6453),
        Step::Reboot(1),
        Step::Act(0, Status { unit: 2, to: 4 }),
        Step::Pull(1, PullFault::None),
        Step::Backup,
        Step::Push(0, Lane::Positions, PushFault::None),
        Step::Act(
            0,
            Position {
                unit: 0,
                secs: -216,
            },
        ),
        Step::Push(0, Lane::Positions, PushFault::None),
        Step::Act(0, Create { kind: 3 }),
    ];
    let mut w = run(2, &[0, 0], &steps, 18, 6);
    w.heal_and_check(1);
}

/// Found by S1 with `S1_RESTORES=1` after the fix above (not a store defect; server epochs):
/// a backup taken in epoch E0 is restored, a console's too-high cursor starts epoch E1,
/// then the same backup is restored again — the server is back in epoch E0 with head 7.
/// Consoles of E1 are told E0 (409; a console of another epoch never starts a new one) and
/// resync into E0 from 0, so E0's gseqs are handed out a second time and one (epoch, gseq)
/// names two different ops: cursors go back within E0 (I5). (A console that pulled the lost
/// E0 ops and was away during both restores is left to the real engine's history check,
/// which this harness does not run.) A fix belongs in the server, e.g.: a push from an epoch
/// newer than the server's (epochs are UUIDv7) proves a restore and starts a new epoch.
#[test]
fn s1_found_restore_of_an_older_epoch_reuses_its_gseqs() {
    use Action::*;
    let steps = vec![
        Step::Compact(2),
        Step::Backup,
        Step::Act(0, Create { kind: 0 }),
        Step::Push(0, Lane::Critical, PushFault::ResponseLost),
        Step::Pull(2, PullFault::None),
        Step::Restore,
        Step::Pull(0, PullFault::Lost),
        Step::Pull(3, PullFault::None),
        Step::Restore,
        Step::Pull(2, PullFault::None),
        Step::Pull(1, PullFault::None),
    ];
    let mut w = run(4, &[0; 4], &steps, 14, 7);
    w.heal_and_check(1);
}

/// Found by S1 with `S1_RESTORES=1` once the server's gateway wrote device reports: the
/// gateway's op is pulled by console 1, then the server is restored from a backup taken
/// before it. Consoles re-push their own retained ops after a restore, but the gateway lives
/// inside the server and has nothing to re-push, so the op stays applied on console 1 only
/// (I3: its `device_fixes` and `devices` differ from the server's). The same holds for any
/// author that never returns (ARCHITECTURE.md, known limitations of a restore); a fix needs
/// either consoles that drop other origins' ops a new epoch lacks, or a gateway that keeps
/// its recent ops and re-pushes them after a restore.
#[test]
#[ignore = "known limitation: gateway ops lost by a server restore stay on consoles that pulled them"]
fn s1_found_gateway_ops_lost_by_a_restore_stay_on_consoles_that_pulled_them() {
    let steps = vec![
        Step::Backup,
        Step::Ingest {
            device: 0,
            secs: -60,
            battery: None,
        },
        Step::Pull(1, PullFault::None),
        Step::Restore,
    ];
    let mut w = run(2, &[0, 0], &steps, 10, 5);
    w.heal_and_check(1);
}

/// Two consoles set one road closure without seeing each other's write (both saw the same
/// server state): after sync every console shows the write with the newer HLC — the later
/// one with equal clocks, and the one from the clock an hour ahead even though it was
/// written first — and no conflict is raised (not a critical register). A lift on one
/// console then reaches every console.
#[test]
fn s1_a_closure_set_concurrently_by_two_consoles_shows_the_newest_write_everywhere() {
    let spec = |reason: u8, points: Vec<(u8, u8)>| ClosureSpec {
        which: 0,
        area: false,
        points,
        reason,
        ends: Some(3_600),
        lifted: false,
    };
    let first = spec(0, vec![(0, 0), (5, 5)]);
    let second = spec(1, vec![(0, 0), (5, 5), (9, 7)]);
    let id = ClosureSpec::id(0).to_string();
    for (skews, winner, spec_won) in [
        // Equal clocks: console 1 writes a second later and wins.
        ([0, 0], "cmdr.1", &second),
        // Console 0's clock is an hour ahead: its write has the newer HLC although it was
        // written first in real time.
        ([3_600_000, 0], "cmdr.0", &first),
    ] {
        let steps = vec![
            Step::Act(0, Action::SetClosure(first.clone())),
            Step::Advance(1_000),
            Step::Act(1, Action::SetClosure(second.clone())),
        ];
        let mut w = run(2, &skews, &steps, 10, 5);
        let model = w.heal_and_check(1);
        let want = spec_won.closure();
        for i in 0..2 {
            let state = w.state(i);
            let row = state.row("road_closures", &id).expect("closure row");
            assert_eq!(row["set_by"], winner, "console {i}, skews {skews:?}");
            assert_eq!(
                row["value"],
                serde_json::to_value(&want).expect("json"),
                "console {i}, skews {skews:?}"
            );
            assert!(
                w.conflicts(i).is_empty(),
                "console {i}: {:?}",
                w.conflicts(i)
            );
        }
        assert_eq!(
            model
                .ops()
                .filter(|m| m.op.body.kind() == "road_closure.set")
                .count(),
            2
        );
        assert!(model.conflicts().is_empty());

        // Console 0 lifts the closure it shows; every console shows it lifted.
        assert!(w.act(0, &Action::LiftClosure { which: 0 }));
        let model = w.heal_and_check(2);
        let lifted = model.state();
        let row = lifted.row("road_closures", &id).expect("closure row");
        assert_eq!(row["value"]["lifted"], true);
        assert_eq!(row["value"]["reason"], want.reason.as_str());
        assert_eq!(row["set_by"], "cmdr.0");
        for i in 0..2 {
            assert_eq!(w.state(i).row("road_closures", &id), Some(row));
        }
    }
    // A console that never saw a closure cannot lift it.
    let mut w = run(2, &[0, 0], &[], 10, 5);
    assert!(!w.act(1, &Action::LiftClosure { which: 2 }));
}

/// Lifting is final (SYNC.md: never silently overwrite a colleague's decision): console 0,
/// offline, lifts a closure while console 1, online and not having seen the lift, extends it
/// a second later (its write wins the register by HLC). After healing, every console and
/// the model show the extension lifted, named after console 0's lift, with no conflict.
#[test]
fn s1_an_offline_lift_concurrent_with_an_online_extension_stays_lifted_everywhere() {
    let spec = |ends: i64| ClosureSpec {
        which: 1,
        area: false,
        points: vec![(0, 0), (5, 5), (9, 7)],
        reason: 0,
        ends: Some(ends),
        lifted: false,
    };
    let id = ClosureSpec::id(1).to_string();
    let mut w = run(2, &[0, 0], &[], 10, 5);
    assert!(w.act(0, &Action::SetClosure(spec(3_600))));
    w.sync_all();
    // Console 0 is offline from here: it lifts, and does not push.
    assert!(w.act(0, &Action::LiftClosure { which: 1 }));
    let lift_at = w.state(0).row("road_closures", &id).expect("row")["set_at"].clone();
    w.advance(1_000);
    // Console 1 extends the closure and syncs it at once.
    let extended = spec(7_200);
    assert!(w.act(1, &Action::SetClosure(extended.clone())));
    w.drain(1);
    let model = w.heal_and_check(3);
    let state = model.state();
    let row = state.row("road_closures", &id).expect("closure row");
    let mut want = serde_json::to_value(extended.closure()).expect("json");
    want["lifted"] = serde_json::Value::Bool(true);
    assert_eq!(row["value"], want, "the extension's value, lifted");
    assert_eq!(row["set_by"], "cmdr.0");
    assert_eq!(row["set_at"], lift_at);
    for i in 0..2 {
        assert_eq!(
            w.state(i).row("road_closures", &id),
            Some(row),
            "console {i}"
        );
        assert!(
            w.conflicts(i).is_empty(),
            "console {i}: {:?}",
            w.conflicts(i)
        );
    }
}
