//! The invariant checker: I1–I6 of `design/SYNC.md`, evaluated after a scenario has healed
//! and gone quiet, over a dump of the server's log and observations of every replica.
//!
//! The checker is given plain data ([`ServerDump`], [`Replica`]) so it can be fed by any
//! harness (in-process stores, processes, a benchmark) and checks nothing through the code
//! under test: I3 compares every replica with the server *and* with a [`Model`] fed the
//! server's log in a shuffled order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use uuid::Uuid;

use outpost_domain::merge;
use outpost_domain::op::{Lane, OpBody, OpEnvelope};
use outpost_domain::wire::CompactedFix;

use crate::model::Model;
use crate::state::State;

/// The server's side after a scenario.
#[derive(Debug, Clone, Default)]
pub struct ServerDump {
    /// The op log: every accepted op with its `gseq` (any order).
    pub log: Vec<(u64, OpEnvelope)>,
    /// Parked ops: op id → reason.
    pub parked: BTreeMap<Uuid, String>,
    /// The server replica's state digest (per table), if it keeps one.
    pub digest: Option<BTreeMap<String, String>>,
    /// The server replica's canonical state, if the harness can read it.
    pub state: Option<State>,
    /// The server replica's open conflict ids, if known.
    pub conflicts: Option<BTreeSet<String>>,
    /// Fixes of position reports compacted out of the log (their ops count as logged for I1
    /// and their fixes stay in the model's track history).
    pub compacted: Vec<CompactedFix>,
}

/// What became of an op in a console's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxState {
    /// Not acknowledged yet.
    Pending,
    /// Acknowledged by the server.
    Acked,
    /// Refused by the server; kept with the reason for its author.
    Parked {
        /// The server's reason.
        reason: String,
    },
}

/// One op of a console's outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The op.
    pub op: OpEnvelope,
    /// Its state.
    pub state: OutboxState,
}

/// One observation of a console's pull position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorObservation {
    /// The server epoch the console synced with (`None` before the first sync).
    pub epoch: Option<Uuid>,
    /// Its cursor (newest applied `gseq`).
    pub cursor: u64,
}

/// A console (replica) after a scenario.
#[derive(Debug, Clone, Default)]
pub struct Replica {
    /// A name for messages, e.g. `"console 2"`.
    pub name: String,
    /// Every op ever committed to its outbox (including those acked and pruned from the
    /// real outbox, when the harness remembers them).
    pub outbox: Vec<OutboxEntry>,
    /// Its state digest (per table), if it computes one.
    pub digest: Option<BTreeMap<String, String>>,
    /// Its canonical state, if the harness can read it.
    pub state: Option<State>,
    /// Its open conflict ids.
    pub conflicts: BTreeSet<String>,
    /// Its cursor as observed during the scenario, oldest first.
    pub cursors: Vec<CursorObservation>,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `"I1"` … `"I6"`.
    pub invariant: &'static str,
    /// What is wrong, naming the replica, op or row.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

fn v(invariant: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        invariant,
        detail: detail.into(),
    }
}

/// Checks I1–I6; `shuffle_seed` picks the order the model is fed the server log in (I3).
/// Returns every violation found (empty = all hold).
pub fn check_invariants(
    server: &ServerDump,
    replicas: &[Replica],
    shuffle_seed: u64,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut by_id: BTreeMap<Uuid, Vec<u64>> = BTreeMap::new();
    for (g, op) in &server.log {
        by_id.entry(op.op_id).or_default().push(*g);
    }

    // I1: every outbox op is in the log exactly once (a compacted position report counts by
    // its fix), or parked with a reason.
    let compacted: BTreeSet<(String, i64)> = server
        .compacted
        .iter()
        .map(|c| (c.unit_id.clone(), c.fix.fix_time.timestamp_millis()))
        .collect();
    for r in replicas {
        for e in &r.outbox {
            let id = e.op.op_id;
            let mut n = by_id.get(&id).map_or(0, Vec::len);
            if let OpBody::PositionReport { unit_id, fix } = &e.op.body
                && n == 0
                && compacted.contains(&(unit_id.clone(), fix.fix_time.timestamp_millis()))
            {
                n = 1;
            }
            match &e.state {
                OutboxState::Parked { reason } => {
                    if reason.trim().is_empty() {
                        out.push(v(
                            "I1",
                            format!("{}: op {id} parked without a reason", r.name),
                        ));
                    }
                    if n != 0 {
                        out.push(v(
                            "I1",
                            format!("{}: op {id} is parked here but in the server log", r.name),
                        ));
                    }
                    if !server.parked.is_empty() && !server.parked.contains_key(&id) {
                        out.push(v(
                            "I1",
                            format!("{}: op {id} parked here, not parked on the server", r.name),
                        ));
                    }
                }
                OutboxState::Pending | OutboxState::Acked => {
                    if n != 1 {
                        let parked = server
                            .parked
                            .get(&id)
                            .map(|why| format!(" (server parked it: {why})"))
                            .unwrap_or_default();
                        out.push(v(
                            "I1",
                            format!(
                                "{}: op {id} ({} seq {}) is {:?} in the outbox and {n} times in the server log{parked}",
                                r.name,
                                e.op.body.kind(),
                                e.op.seq,
                                e.state
                            ),
                        ));
                    }
                    if e.state == OutboxState::Pending {
                        out.push(v(
                            "I1",
                            format!(
                                "{}: op {id} still pending after the scenario went quiet",
                                r.name
                            ),
                        ));
                    }
                }
            }
        }
    }

    // I2: no duplicate op ids or gseqs in the log; no duplicate ops in an outbox.
    for (id, gs) in &by_id {
        if gs.len() > 1 {
            out.push(v(
                "I2",
                format!("op {id} is in the server log at gseqs {gs:?}"),
            ));
        }
    }
    let mut gseqs: BTreeMap<u64, usize> = BTreeMap::new();
    for (g, _) in &server.log {
        *gseqs.entry(*g).or_default() += 1;
    }
    for (g, n) in gseqs {
        if n > 1 {
            out.push(v("I2", format!("gseq {g} is given to {n} ops")));
        }
    }
    for r in replicas {
        let mut seen = BTreeSet::new();
        let mut seqs = BTreeSet::new();
        for e in &r.outbox {
            if !seen.insert(e.op.op_id) {
                out.push(v(
                    "I2",
                    format!("{}: op {} twice in the outbox", r.name, e.op.op_id),
                ));
            }
            if !seqs.insert(e.op.seq) {
                out.push(v("I2", format!("{}: seq {} used twice", r.name, e.op.seq)));
            }
        }
    }

    // I3: convergence — every replica equals the server and the model of the server log.
    let mut log = server.log.clone();
    shuffle(&mut log, shuffle_seed);
    let mut model = Model::from_ops(log.into_iter().map(|(g, op)| (op, Some(g))));
    for c in &server.compacted {
        model.insert_compacted(c);
    }
    let model_state = model.state();
    let model_digest = model_state.digest();
    let model_conflicts = model.conflicts();
    let digest_vs_model = |who: &str, d: &BTreeMap<String, String>, out: &mut Vec<Violation>| {
        for (table, h) in &model_digest {
            if d.get(table) != Some(h) {
                out.push(v(
                    "I3",
                    format!("{who}: digest of table {table} differs from the model's"),
                ));
            }
        }
    };
    if let Some(d) = &server.digest {
        digest_vs_model("server", d, &mut out);
    }
    if let Some(s) = &server.state {
        for d in model_state.diff(s, 5) {
            out.push(v("I3", format!("server vs model: model {d}")));
        }
    }
    if let Some(c) = &server.conflicts
        && *c != model_conflicts
    {
        out.push(v(
            "I3",
            format!(
                "server conflicts {:?} ≠ model conflicts {:?}",
                c, model_conflicts
            ),
        ));
    }
    for r in replicas {
        if let (Some(a), Some(b)) = (&r.digest, &server.digest) {
            for (table, h) in b {
                if a.get(table) != Some(h) {
                    out.push(v(
                        "I3",
                        format!(
                            "{}: digest of table {table} differs from the server's",
                            r.name
                        ),
                    ));
                }
            }
            for table in a.keys() {
                if !b.contains_key(table) {
                    out.push(v(
                        "I3",
                        format!(
                            "{}: table {table} in its digest, not in the server's",
                            r.name
                        ),
                    ));
                }
            }
        }
        if let Some(d) = &r.digest {
            digest_vs_model(&r.name, d, &mut out);
        }
        if let Some(s) = &r.state {
            for d in model_state.diff(s, 5) {
                out.push(v("I3", format!("{} vs model: model {d}", r.name)));
            }
        }
        if r.conflicts != model_conflicts {
            out.push(v(
                "I3",
                format!(
                    "{}: conflicts {:?} ≠ model conflicts {:?}",
                    r.name, r.conflicts, model_conflicts
                ),
            ));
        }
    }

    // I4: at most one active assignment per unit, or an open double-assignment conflict on
    // every replica.
    let mut per_unit: BTreeMap<String, usize> = BTreeMap::new();
    for (_, unit) in model.active_assignments().into_values() {
        *per_unit.entry(unit).or_default() += 1;
    }
    for (unit, n) in per_unit {
        if n < 2 {
            continue;
        }
        let id = merge::ConflictId::DoubleAssignment {
            unit_id: unit.clone(),
        }
        .to_string();
        for r in replicas {
            if !r.conflicts.contains(&id) {
                out.push(v(
                    "I4",
                    format!(
                        "{}: unit {unit} has {n} active assignments and no open {id}",
                        r.name
                    ),
                ));
            }
        }
    }
    for r in replicas {
        if let Some(s) = &r.state {
            let mut active: BTreeMap<String, usize> = BTreeMap::new();
            for (_, row) in s.table("assignments") {
                if row.get("released_at").is_none_or(|x| x.is_null())
                    && let Some(u) = row.get("unit_id").and_then(|u| u.as_str())
                {
                    *active.entry(u.to_string()).or_default() += 1;
                }
            }
            for (unit, n) in active {
                let id = format!("double:{unit}");
                if n >= 2 && !r.conflicts.contains(&id) {
                    out.push(v(
                        "I4",
                        format!(
                            "{}: unit {unit} shows {n} active assignments, no {id}",
                            r.name
                        ),
                    ));
                }
            }
        }
    }

    // I5: cursors never go back within one epoch.
    for r in replicas {
        for w in r.cursors.windows(2) {
            if w[0].epoch == w[1].epoch && w[1].cursor < w[0].cursor {
                out.push(v(
                    "I5",
                    format!(
                        "{}: cursor went back from {} to {} in epoch {:?}",
                        r.name, w[0].cursor, w[1].cursor, w[0].epoch
                    ),
                ));
            }
        }
    }

    // I6: lane order and creation before reference, in gseq order.
    let mut sorted = server.log.clone();
    sorted.sort_by_key(|(g, _)| *g);
    let mut lane_hw: BTreeMap<(Uuid, Lane), u64> = BTreeMap::new();
    let mut created: BTreeSet<Uuid> = BTreeSet::new();
    let mut units: BTreeSet<String> = BTreeSet::new();
    for (g, op) in &sorted {
        let k = (op.origin, op.lane);
        if let Some(prev) = lane_hw.get(&k)
            && op.lane_seq <= *prev
        {
            out.push(v(
                "I6",
                format!(
                    "gseq {g}: op {} of origin {} lane {:?} has lane_seq {} after lane_seq {prev}",
                    op.op_id, op.origin, op.lane, op.lane_seq
                ),
            ));
        }
        lane_hw.insert(k, op.lane_seq);
        match &op.body {
            OpBody::IncidentCreate { incident_id, .. } => {
                created.insert(*incident_id);
            }
            OpBody::UnitRegister { unit_id, .. } => {
                units.insert(unit_id.clone());
            }
            body => {
                if let Some(i) = merge::incident_of(body)
                    && !created.contains(&i)
                {
                    out.push(v(
                        "I6",
                        format!(
                            "gseq {g}: {} {} refers to incident {i} before its creation",
                            body.kind(),
                            op.op_id
                        ),
                    ));
                }
                for u in merge::units_of(body) {
                    if !units.contains(&u) {
                        out.push(v(
                            "I6",
                            format!(
                                "gseq {g}: {} {} refers to unit {u} before its registration",
                                body.kind(),
                                op.op_id
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Fisher–Yates with a SplitMix64 stream (deterministic per seed, no extra dependency).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}
