//! The reference model: the merge rules of `outpost_domain::merge` (and the design brief)
//! evaluated directly over a *set* of ops, each with its server `gseq` when known.
//!
//! Nothing here is incremental: every call to [`Model::state`] or [`Model::conflicts`]
//! recomputes the whole state from the set, so the result cannot depend on the order the ops
//! were inserted in (that is the point: the store applies op by op, the model does not).
//!
//! Rules, as implemented (each is a pure function of the set):
//! - **Incidents** exist once an `incident.create` is in the set. `number`, `created_at` (HLC
//!   wall ms of the create) and `created_by` come from the create. Type, priority, location,
//!   address and description are the [`merge::winner`] (greatest `(base, HLC, origin)`) of
//!   all writes to that register ([`merge::writes_of`], the create's included).
//!   `acknowledged` ⇔ some `incident.acknowledge` names it. Closed ⇔ some Closure write
//!   exists; `closed_at`/`closed_by`/`disposition`/`summary` come from the Closure winner.
//! - **Units** exist once a `unit.register` is in the set; callsign/kind/home station are
//!   the roster winner. Status is the UnitStatus winner (`status_since` = its HLC wall ms),
//!   or `available` since the unit's creation (the first `unit.register` in register order)
//!   when no status write exists.
//! - **Facilities**: the Facility winner; `updated_at` = its HLC wall ms.
//! - **Assignments**: one per `assignment.add`; released ⇔ some op's
//!   [`merge::releases_of`] names it (a release may arrive before its add);
//!   `released_at`/`released_by` come from the first releasing op in register order.
//! - **Timeline**: one entry per op that touches an existing incident, id = op id (a note:
//!   its entry id), time = HLC wall ms. A `unit.set_status` makes one entry per incident the
//!   unit was on as its author saw it (the incidents of its releases; without releases, the
//!   unit's assignments in the op's causal past not released in it), ids `{op_id}`,
//!   `{op_id}+1`, …
//! - **Positions**: the set of fixes by (unit, fix time ms) — from position reports, plus
//!   the fixes of reports the server compacted away ([`Model::insert_compacted`]);
//!   `received_at` = the op's HLC wall ms; the unit's latest position is the fix with the
//!   greatest fix time. Two fixes of one unit at one fix time: the greater (lat, lon,
//!   heading, speed, accuracy, received_at) is kept, a missing value lowest (the store's rule).
//! - **Device bindings**: the DeviceBinding winner of each device (`unit_id` null when it
//!   unbinds); `bound_at`/`bound_by` = its HLC wall ms and user.
//! - **Device fixes**: the set of `device.report` fixes by (device, fix time ms), with the
//!   report's battery, source and name; `received_at` = the op's HLC wall ms. Two reports of
//!   one device at one fix time: the greater (lat, lon, heading, speed, accuracy, battery,
//!   source, name, received_at) is kept, a missing value lowest (the store's rule).
//! - **Devices** (the unbound-device registry): per device with kept fixes, the newest fix
//!   with its source and battery, the name of the newest fix that has one, first seen = the
//!   earliest `received_at` of its kept fixes, `reports` = how many fixes are kept.
//! - **Road closures**: per closure id, the [`merge::winner`] of its `road_closure.set` ops
//!   (the newest write: a change replaces the closure); `value` = that op's whole closure,
//!   `set_by`/`set_at` = its user and HLC wall ms. Lifting is final: when any of the
//!   closure's sets has `lifted: true`, `value` is the winner's closure with `lifted = true`
//!   and `set_by`/`set_at` are those of the earliest lifting set (least
//!   [`OpMeta::order_key`]). Never a conflict (not a critical register).
//! - **Conflicts** ([`Model::conflicts`]): field (a critical register's [`merge::heads`]
//!   disagree, [`merge::field_conflict`]), double assignment (≥ 2 active assignments of a
//!   unit), edit-after-close (a `set_fields` / `assignment.add` [`merge::concurrent`] with a
//!   close of the same incident, no `conflict.resolve` with that id).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::device::DeviceReport;
use outpost_domain::merge::{self, ConflictId, OpMeta, Register};
use outpost_domain::op::{Fix, OpBody, OpEnvelope};
use outpost_domain::road_closure::RoadClosure;
use outpost_domain::timeline::TimelineEvent;
use outpost_domain::unit::UnitStatus;
use outpost_domain::wire::CompactedFix;

use crate::state::State;

/// An op in the model's set, with its server `gseq` once known.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOp {
    /// The op as its author wrote it.
    pub op: OpEnvelope,
    /// The server's global sequence number (`None`: not acknowledged yet).
    pub gseq: Option<u64>,
}

impl ModelOp {
    fn meta(&self) -> OpMeta {
        OpMeta::of(&self.op, self.gseq)
    }
}

/// The reference model: a set of ops keyed by `op_id`.
#[derive(Debug, Clone, Default)]
pub struct Model {
    ops: BTreeMap<Uuid, ModelOp>,
    /// Fixes of position reports the server compacted away: (unit, fix time ms) → fix and
    /// its receive time (HLC wall ms of the op).
    compacted: BTreeMap<(String, i64), (Fix, i64)>,
}

/// One register write with the op that made it.
struct RegWrite<'a> {
    meta: OpMeta,
    value: Value,
    op: &'a OpEnvelope,
}

impl Model {
    /// An empty model.
    pub fn new() -> Model {
        Model::default()
    }

    /// A model of the given ops (any order; duplicates collapse).
    pub fn from_ops(ops: impl IntoIterator<Item = (OpEnvelope, Option<u64>)>) -> Model {
        let mut m = Model::new();
        for (op, g) in ops {
            m.insert(op, g);
        }
        m
    }

    /// Adds an op to the set. A second insert of the same `op_id` only fills in a `gseq`
    /// that was unknown. Returns true when the op was new.
    pub fn insert(&mut self, op: OpEnvelope, gseq: Option<u64>) -> bool {
        match self.ops.get_mut(&op.op_id) {
            Some(existing) => {
                if existing.gseq.is_none() {
                    existing.gseq = gseq;
                }
                false
            }
            None => {
                self.ops.insert(op.op_id, ModelOp { op, gseq });
                true
            }
        }
    }

    /// Adds the fix of a compacted position report (`wire::Snapshot::compacted_positions`):
    /// it stays in the track history although its op left the server's log.
    pub fn insert_compacted(&mut self, c: &CompactedFix) {
        let slot = self
            .compacted
            .entry((c.unit_id.clone(), c.fix.fix_time.timestamp_millis()))
            .or_insert((c.fix.clone(), c.received_at_ms));
        if fix_rank(&c.fix, c.received_at_ms) > fix_rank(&slot.0, slot.1) {
            *slot = (c.fix.clone(), c.received_at_ms);
        }
    }

    /// Number of distinct ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when no op was inserted.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops, by `op_id`.
    pub fn ops(&self) -> impl Iterator<Item = &ModelOp> {
        self.ops.values()
    }

    fn registers(&self) -> BTreeMap<(String, Register), Vec<RegWrite<'_>>> {
        let mut regs: BTreeMap<(String, Register), Vec<RegWrite<'_>>> = BTreeMap::new();
        for m in self.ops.values() {
            // One op writing one register twice (a release naming the op's own unit) counts
            // once, with its last value.
            let mut own: BTreeMap<(String, Register), Value> = BTreeMap::new();
            for w in merge::writes_of(&m.op.body) {
                own.insert((w.entity, w.register), w.value);
            }
            for (key, value) in own {
                regs.entry(key).or_default().push(RegWrite {
                    meta: m.meta(),
                    value,
                    op: &m.op,
                });
            }
        }
        regs
    }

    /// The canonical state (same tables and columns as the store's replicated state).
    pub fn state(&self) -> State {
        let regs = self.registers();
        let win = |entity: &str, reg: Register| -> Option<&RegWrite<'_>> {
            let ws = regs.get(&(entity.to_string(), reg))?;
            let metas: Vec<OpMeta> = ws.iter().map(|w| w.meta).collect();
            let best = merge::winner(&metas)?;
            ws.iter().find(|w| w.meta.op_id == best.op_id)
        };
        let mut s = State::empty();

        // Incidents.
        let mut creates: BTreeMap<Uuid, &ModelOp> = BTreeMap::new();
        for m in self.ops.values() {
            if let OpBody::IncidentCreate { incident_id, .. } = &m.op.body {
                let slot = creates.entry(*incident_id).or_insert(m);
                if m.meta().order_key() < slot.meta().order_key() {
                    *slot = m;
                }
            }
        }
        let acknowledged: BTreeSet<Uuid> = self
            .ops
            .values()
            .filter_map(|m| match &m.op.body {
                OpBody::IncidentAcknowledge { incident_id } => Some(*incident_id),
                _ => None,
            })
            .collect();
        for (id, c) in &creates {
            let OpBody::IncidentCreate { number, .. } = &c.op.body else {
                continue;
            };
            let key = id.to_string();
            let val = |r: Register| win(&key, r).map(|w| w.value.clone());
            let location = val(Register::Location).unwrap_or(Value::Null);
            let closure = win(&key, Register::Closure);
            s.put(
                "incidents",
                key.clone(),
                json!({
                    "id": key,
                    "number": number,
                    "incident_type": val(Register::IncidentType),
                    "priority": val(Register::Priority),
                    "lat": location.get("lat"),
                    "lon": location.get("lon"),
                    "address": val(Register::Address),
                    "description": val(Register::Description),
                    "acknowledged": acknowledged.contains(id),
                    "created_at": c.op.hlc.wall_ms,
                    "created_by": c.op.user,
                    "closed_at": closure.map(|w| w.op.hlc.wall_ms),
                    "closed_by": closure.map(|w| w.op.user.clone()),
                    "disposition": closure.and_then(|w| w.value.get("disposition").cloned()),
                    "summary": closure.and_then(|w| w.value.get("summary").cloned()),
                }),
            );
        }

        // Units.
        let mut registered: BTreeMap<&str, &ModelOp> = BTreeMap::new();
        for m in self.ops.values() {
            if let OpBody::UnitRegister { unit_id, .. } = &m.op.body {
                let slot = registered.entry(unit_id.as_str()).or_insert(m);
                if m.meta().order_key() < slot.meta().order_key() {
                    *slot = m;
                }
            }
        }
        let mut callsigns: BTreeMap<String, String> = BTreeMap::new();
        for (unit, first) in &registered {
            let Some(roster) = win(unit, Register::UnitRoster) else {
                continue;
            };
            let (status, since) = match win(unit, Register::UnitStatus) {
                Some(w) => (w.value.clone(), w.op.hlc.wall_ms),
                None => (json!(UnitStatus::Available), first.op.hlc.wall_ms),
            };
            let callsign = roster.value.get("callsign").cloned().unwrap_or(Value::Null);
            if let Some(c) = callsign.as_str() {
                callsigns.insert((*unit).to_string(), c.to_string());
            }
            s.put(
                "units",
                *unit,
                json!({
                    "id": unit,
                    "callsign": callsign,
                    "kind": roster.value.get("unit_kind"),
                    "home_station": roster.value.get("home_station"),
                    "status": status,
                    "status_since": since,
                }),
            );
        }

        // Facilities.
        for ((entity, reg), _) in regs.iter() {
            if *reg != Register::Facility {
                continue;
            }
            if let Some(w) = win(entity, Register::Facility) {
                let f = &w.value;
                s.put(
                    "facilities",
                    entity.clone(),
                    json!({
                        "id": entity,
                        "kind": f.get("kind"),
                        "name_zh": f.get("name_zh"),
                        "name_en": f.get("name_en"),
                        "lat": f.pointer("/position/lat"),
                        "lon": f.pointer("/position/lon"),
                        "updated_at": w.op.hlc.wall_ms,
                    }),
                );
            }
        }

        // Assignments and their releases.
        let releases = self.releases();
        for m in self.ops.values() {
            if let OpBody::AssignmentAdd {
                assignment_id,
                incident_id,
                unit_id,
            } = &m.op.body
            {
                let first = releases.get(assignment_id).and_then(|rs| rs.first());
                s.put(
                    "assignments",
                    assignment_id.to_string(),
                    json!({
                        "id": assignment_id.to_string(),
                        "incident_id": incident_id.to_string(),
                        "unit_id": unit_id,
                        "assigned_at": m.op.hlc.wall_ms,
                        "assigned_by": m.op.user,
                        "released_at": first.map(|r| r.op.hlc.wall_ms),
                        "released_by": first.map(|r| r.op.user.clone()),
                    }),
                );
            }
        }

        // Timeline.
        for m in self.ops.values() {
            let author_active = match &m.op.body {
                OpBody::UnitSetStatus { releases, .. } if releases.is_empty() => {
                    self.active_seen_by(&m.meta())
                }
                _ => BTreeMap::new(),
            };
            for (id, incident, event) in timeline_entries(&m.op, &callsigns, &author_active) {
                if !creates.contains_key(&incident) {
                    continue;
                }
                s.put(
                    "timeline",
                    id.clone(),
                    json!({
                        "id": id,
                        "incident_id": incident.to_string(),
                        "at": m.op.hlc.wall_ms,
                        "user": m.op.user,
                        "event": serde_json::to_value(&event).unwrap_or(Value::Null),
                    }),
                );
            }
        }

        // Positions: history by (unit, fix time) from position reports and compacted fixes;
        // two fixes of one unit at one instant: the greater `fix_rank` is kept (the store's
        // rule); latest = greatest fix time. (row without received_at, received_at, rank).
        type Slot = (Value, i64, (f64, f64, f64, f64, f64, i64));
        let mut history: BTreeMap<(String, i64), Slot> = BTreeMap::new();
        let mut keep = |unit: &str, fix: &Fix, received: i64| {
            let rank = fix_rank(fix, received);
            let key = (unit.to_string(), fix.fix_time.timestamp_millis());
            match history.get(&key) {
                Some((_, _, r)) if *r >= rank => {}
                _ => {
                    history.insert(key, (fix_row(unit, fix), received, rank));
                }
            }
        };
        for ((unit, _), (fix, received)) in &self.compacted {
            if registered.contains_key(unit.as_str()) {
                keep(unit, fix, *received);
            }
        }
        for m in self.ops.values() {
            if let OpBody::PositionReport { unit_id, fix } = &m.op.body {
                keep(unit_id, fix, m.op.hlc.wall_ms);
            }
        }
        let mut latest: BTreeMap<String, Value> = BTreeMap::new();
        for ((unit, t), (row, received, _)) in &history {
            let mut hist = row.clone();
            if let Value::Object(o) = &mut hist {
                o.insert("received_at".into(), json!(received));
            }
            s.put("positions", format!("{unit}@{t}"), hist);
            // BTreeMap order: the last fix of a unit is its newest.
            latest.insert(unit.clone(), row.clone());
        }
        for (unit, row) in latest {
            s.put("unit_positions", unit, row);
        }

        // Device bindings: the DeviceBinding winner of each device (unit or null).
        for ((entity, reg), _) in regs.iter() {
            if *reg != Register::DeviceBinding {
                continue;
            }
            if let Some(w) = win(entity, Register::DeviceBinding) {
                s.put(
                    "device_bindings",
                    entity.clone(),
                    json!({
                        "device_id": entity,
                        "unit_id": w.value,
                        "bound_at": w.op.hlc.wall_ms,
                        "bound_by": w.op.user,
                    }),
                );
            }
        }

        // Unbound-device reports: each fix once by (device, fix time), the greater
        // `device_fix_rank` kept; the registry row derived from a device's kept fixes.
        let mut fixes: BTreeMap<(String, i64), (&DeviceReport, i64)> = BTreeMap::new();
        for m in self.ops.values() {
            if let OpBody::DeviceReport { report } = &m.op.body {
                let received = m.op.hlc.wall_ms;
                let key = (
                    report.device_id.clone(),
                    report.fix.fix_time.timestamp_millis(),
                );
                match fixes.get(&key) {
                    Some((r, at))
                        if device_fix_rank(r, *at) >= device_fix_rank(report, received) => {}
                    _ => {
                        fixes.insert(key, (report, received));
                    }
                }
            }
        }
        let mut per_device: BTreeMap<&str, Vec<(&DeviceReport, i64)>> = BTreeMap::new();
        for ((device, t), (report, received)) in &fixes {
            let f = &report.fix;
            s.put(
                "device_fixes",
                format!("{device}@{t}"),
                json!({
                    "device_id": device,
                    "fix_time": t,
                    "lat": f.position.lat,
                    "lon": f.position.lon,
                    "heading_deg": f.heading_deg,
                    "speed_mps": f.speed_mps,
                    "accuracy_m": f.accuracy_m,
                    "battery_pct": report.battery_pct,
                    "source": report.source.as_str(),
                    "name": report.name,
                    "received_at": received,
                }),
            );
            // BTreeMap order: each device's fixes oldest first.
            per_device
                .entry(device.as_str())
                .or_default()
                .push((report, *received));
        }
        for (device, kept) in per_device {
            let Some((newest, _)) = kept.last() else {
                continue;
            };
            let f = &newest.fix;
            let name = kept.iter().rev().find_map(|(r, _)| r.name.clone());
            let first_seen = kept.iter().map(|(_, at)| *at).min();
            s.put(
                "devices",
                device,
                json!({
                    "device_id": device,
                    "source": newest.source.as_str(),
                    "name": name,
                    "first_seen": first_seen,
                    "fix_time": f.fix_time.timestamp_millis(),
                    "lat": f.position.lat,
                    "lon": f.position.lon,
                    "heading_deg": f.heading_deg,
                    "speed_mps": f.speed_mps,
                    "accuracy_m": f.accuracy_m,
                    "battery_pct": newest.battery_pct,
                    "reports": kept.len(),
                }),
            );
        }

        // Road closures: per closure id, the newest `road_closure.set` by the register
        // order of `merge::winner`; its whole closure is the value (read from the op body,
        // not from `merge::writes_of`), `set_by`/`set_at` its user and HLC wall ms. Lifting
        // is final: if any set of the closure has `lifted: true`, the value is the winner's
        // closure with `lifted = true`, and `set_by`/`set_at` come from the lifting set with
        // the least `(base, HLC, origin)`.
        let mut sets: BTreeMap<Uuid, Vec<(&ModelOp, &RoadClosure)>> = BTreeMap::new();
        for m in self.ops.values() {
            if let OpBody::RoadClosureSet { closure } = &m.op.body {
                sets.entry(closure.closure_id)
                    .or_default()
                    .push((m, closure));
            }
        }
        for (id, writes) in sets {
            let metas: Vec<OpMeta> = writes.iter().map(|(m, _)| m.meta()).collect();
            let Some(best) = merge::winner(&metas) else {
                continue;
            };
            let Some((m, closure)) = writes.iter().find(|(m, _)| m.op.op_id == best.op_id) else {
                continue;
            };
            let mut shown = (*closure).clone();
            let mut by = &m.op;
            let mut lifts: Vec<&ModelOp> = writes
                .iter()
                .filter(|(_, c)| c.lifted)
                .map(|(l, _)| *l)
                .collect();
            lifts.sort_by_key(|l| l.meta().order_key());
            if let Some(first) = lifts.first() {
                shown.lifted = true;
                by = &first.op;
            }
            s.put(
                "road_closures",
                id.to_string(),
                json!({
                    "closure_id": id.to_string(),
                    "value": serde_json::to_value(&shown).unwrap_or(Value::Null),
                    "set_by": by.user,
                    "set_at": by.hlc.wall_ms,
                }),
            );
        }
        s
    }

    /// Releases by assignment id, each list in register order (first = earliest).
    fn releases(&self) -> BTreeMap<Uuid, Vec<&ModelOp>> {
        let mut out: BTreeMap<Uuid, Vec<&ModelOp>> = BTreeMap::new();
        for m in self.ops.values() {
            let mut ids: Vec<Uuid> = merge::releases_of(&m.op.body)
                .into_iter()
                .map(|r| r.assignment_id)
                .collect();
            ids.sort();
            ids.dedup();
            for id in ids {
                out.entry(id).or_default().push(m);
            }
        }
        for v in out.values_mut() {
            v.sort_by_key(|m| m.meta().order_key());
        }
        out
    }

    /// The assignments the author of `op` saw active: added by an op in `op`'s causal past
    /// and not released by one. Assignment id → (incident id, unit id).
    pub fn active_seen_by(&self, op: &OpMeta) -> BTreeMap<Uuid, (Uuid, String)> {
        let releases = self.releases();
        self.ops
            .values()
            .filter_map(|m| match &m.op.body {
                OpBody::AssignmentAdd {
                    assignment_id,
                    incident_id,
                    unit_id,
                } if merge::happened_before(&m.meta(), op)
                    && !releases.get(assignment_id).is_some_and(|rs| {
                        rs.iter().any(|r| merge::happened_before(&r.meta(), op))
                    }) =>
                {
                    Some((*assignment_id, (*incident_id, unit_id.clone())))
                }
                _ => None,
            })
            .collect()
    }

    /// The active assignments: assignment id → (incident id, unit id).
    pub fn active_assignments(&self) -> BTreeMap<Uuid, (Uuid, String)> {
        let released = self.releases();
        self.ops
            .values()
            .filter_map(|m| match &m.op.body {
                OpBody::AssignmentAdd {
                    assignment_id,
                    incident_id,
                    unit_id,
                } if !released.contains_key(assignment_id) => {
                    Some((*assignment_id, (*incident_id, unit_id.clone())))
                }
                _ => None,
            })
            .collect()
    }

    /// The open conflicts, as [`ConflictId`] text.
    pub fn conflicts(&self) -> BTreeSet<String> {
        self.conflict_ids().iter().map(|c| c.to_string()).collect()
    }

    /// The open conflicts.
    pub fn conflict_ids(&self) -> BTreeSet<ConflictId> {
        let mut out = BTreeSet::new();
        // Field conflicts: the heads of a critical incident register disagree.
        for ((entity, reg), ws) in self.registers() {
            if !reg.is_critical() || !reg.is_incident() {
                continue;
            }
            let Ok(incident_id) = Uuid::parse_str(&entity) else {
                continue;
            };
            let metas: Vec<OpMeta> = ws.iter().map(|w| w.meta).collect();
            let heads: Vec<(OpMeta, Value)> = merge::heads(&metas)
                .into_iter()
                .filter_map(|h| {
                    ws.iter()
                        .find(|w| w.meta.op_id == h.op_id)
                        .map(|w| (h, w.value.clone()))
                })
                .collect();
            if merge::field_conflict(reg, &heads) {
                out.insert(ConflictId::Field {
                    incident_id,
                    register: reg,
                });
            }
        }
        // Double assignments.
        let mut per_unit: BTreeMap<String, usize> = BTreeMap::new();
        for (_, unit) in self.active_assignments().into_values() {
            *per_unit.entry(unit).or_default() += 1;
        }
        for (unit_id, n) in per_unit {
            if n >= 2 {
                out.insert(ConflictId::DoubleAssignment { unit_id });
            }
        }
        // Edits concurrent with a close.
        let resolved: BTreeSet<String> = self
            .ops
            .values()
            .filter_map(|m| match &m.op.body {
                OpBody::ConflictResolve { conflict_id, .. } => Some(conflict_id.clone()),
                _ => None,
            })
            .collect();
        let closes: Vec<(&ModelOp, Uuid)> = self
            .ops
            .values()
            .filter_map(|m| match &m.op.body {
                OpBody::IncidentClose { incident_id, .. } => Some((m, *incident_id)),
                _ => None,
            })
            .collect();
        for (close, incident_id) in &closes {
            for edit in self.ops.values() {
                if !merge::is_incident_edit(&edit.op.body)
                    || merge::incident_of(&edit.op.body) != Some(*incident_id)
                    || !merge::concurrent(&close.meta(), &edit.meta())
                {
                    continue;
                }
                let id = ConflictId::EditAfterClose {
                    incident_id: *incident_id,
                    close_op: close.op.op_id,
                    edit_op: edit.op.op_id,
                };
                if !resolved.contains(&id.to_string()) {
                    out.insert(id);
                }
            }
        }
        out
    }

    /// Per-table SHA-256 of [`Model::state`] (see [`State::digest`]).
    pub fn digest(&self) -> BTreeMap<String, String> {
        self.state().digest()
    }
}

/// The timeline entries an op makes: (entry id, incident, event). Entry ids: the op id, or
/// for extra entries of one op `{op_id}+{n}`; notes use their entry id.
fn timeline_entries(
    op: &OpEnvelope,
    callsigns: &BTreeMap<String, String>,
    author_active: &BTreeMap<Uuid, (Uuid, String)>,
) -> Vec<(String, Uuid, TimelineEvent)> {
    let id = op.op_id.to_string();
    let cs = |u: &str| callsigns.get(u).cloned().unwrap_or_default();
    match &op.body {
        OpBody::DeviceBind { .. } | OpBody::DeviceReport { .. } | OpBody::RoadClosureSet { .. } => {
            Vec::new()
        }
        OpBody::IncidentCreate {
            incident_id,
            incident_type,
            priority,
            address,
            ..
        } => vec![(
            id,
            *incident_id,
            TimelineEvent::Created {
                incident_type: *incident_type,
                priority: *priority,
                address: address.clone(),
            },
        )],
        OpBody::IncidentSetFields {
            incident_id,
            fields,
        } => vec![(
            id,
            *incident_id,
            TimelineEvent::FieldsChanged {
                fields: fields.clone(),
            },
        )],
        OpBody::IncidentAcknowledge { incident_id } => {
            vec![(id, *incident_id, TimelineEvent::Acknowledged)]
        }
        OpBody::IncidentClose {
            incident_id,
            disposition,
            summary,
            ..
        } => vec![(
            id,
            *incident_id,
            TimelineEvent::Closed {
                disposition: *disposition,
                summary: summary.clone(),
            },
        )],
        OpBody::UnitSetStatus {
            unit_id,
            to,
            releases,
            ..
        } => {
            // The incidents the unit was on as the author saw it: those the op releases, or
            // (a change between committed statuses) the unit's assignments in the op's causal
            // past that no op in its causal past released, by assignment id.
            let incidents: Vec<Uuid> = if releases.is_empty() {
                author_active
                    .iter()
                    .filter(|(_, (_, u))| u == unit_id)
                    .map(|(_, (i, _))| *i)
                    .collect()
            } else {
                releases.iter().map(|r| r.incident_id).collect()
            };
            incidents
                .into_iter()
                .enumerate()
                .map(|(n, incident)| {
                    (
                        extra(&id, n),
                        incident,
                        TimelineEvent::UnitStatus {
                            unit_id: unit_id.clone(),
                            callsign: cs(unit_id),
                            to: *to,
                        },
                    )
                })
                .collect()
        }
        OpBody::AssignmentAdd {
            incident_id,
            unit_id,
            ..
        } => vec![(
            id,
            *incident_id,
            TimelineEvent::UnitAssigned {
                unit_id: unit_id.clone(),
                callsign: cs(unit_id),
            },
        )],
        OpBody::AssignmentRelease {
            incident_id,
            unit_id,
            ..
        } => vec![(
            id,
            *incident_id,
            TimelineEvent::UnitReleased {
                unit_id: unit_id.clone(),
                callsign: cs(unit_id),
            },
        )],
        OpBody::TimelineAppend {
            entry_id,
            incident_id,
            text,
        } => vec![(
            entry_id.to_string(),
            *incident_id,
            TimelineEvent::Note { text: text.clone() },
        )],
        OpBody::ConflictResolve {
            conflict_id, note, ..
        } => match ConflictId::parse(conflict_id).and_then(|c| c.incident()) {
            Some(incident) => vec![(
                id,
                incident,
                TimelineEvent::ConflictResolved {
                    conflict_id: conflict_id.clone(),
                    note: note.clone(),
                },
            )],
            None => Vec::new(),
        },
        OpBody::PositionReport { .. }
        | OpBody::UnitRegister { .. }
        | OpBody::FacilityRegister { .. } => Vec::new(),
    }
}

/// The store's tie rule for two fixes of one unit at one fix time: the greater
/// (lat, lon, heading, speed, accuracy, received_at) is kept, a missing value lowest.
fn fix_rank(fix: &Fix, received: i64) -> (f64, f64, f64, f64, f64, i64) {
    let v = |x: Option<f64>| x.unwrap_or(f64::NEG_INFINITY);
    (
        fix.position.lat,
        fix.position.lon,
        v(fix.heading_deg),
        v(fix.speed_mps),
        v(fix.accuracy_m),
        received,
    )
}

/// The store's tie rule for two reports of one device at one fix time: the greater
/// (lat, lon, heading, speed, accuracy, battery, source name, name, received_at) is kept, a
/// missing number lowest, a missing name below any name, text compared byte-wise.
#[allow(clippy::type_complexity)]
fn device_fix_rank(
    r: &DeviceReport,
    received: i64,
) -> (
    (f64, f64, f64, f64, f64, f64),
    &'static str,
    Option<&str>,
    i64,
) {
    let v = |x: Option<f64>| x.unwrap_or(f64::NEG_INFINITY);
    let f = &r.fix;
    (
        (
            f.position.lat,
            f.position.lon,
            v(f.heading_deg),
            v(f.speed_mps),
            v(f.accuracy_m),
            v(r.battery_pct),
        ),
        r.source.as_str(),
        r.name.as_deref(),
        received,
    )
}

/// A position row without its receive time.
fn fix_row(unit_id: &str, fix: &Fix) -> Value {
    json!({
        "unit_id": unit_id,
        "fix_time": fix.fix_time.timestamp_millis(),
        "lat": fix.position.lat,
        "lon": fix.position.lon,
        "heading_deg": fix.heading_deg,
        "speed_mps": fix.speed_mps,
        "accuracy_m": fix.accuracy_m,
    })
}

fn extra(op_id: &str, n: usize) -> String {
    if n == 0 {
        op_id.to_string()
    } else {
        format!("{op_id}+{n}")
    }
}
