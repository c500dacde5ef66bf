//! The merge rules of sync (`design/SYNC.md` principles 4–6, 9, 13): pure functions of the
//! set of ops, shared by the console's store, the server and the reference model.
//!
//! # The model
//! - **Append-only records** (timeline entries, notes, positions, acknowledgements,
//!   assignments and their releases) are sets keyed by id: applying them in any order, any
//!   number of times, gives the same result.
//! - **Registers** ([`Register`]): every mutable field is written by ops ([`writes_of`]). The
//!   value shown is the write with the greatest [`OpMeta::order_key`] — `(base_version, HLC,
//!   origin)` — so a write made after seeing another always wins over it (its base is higher),
//!   and a skewed wall clock only breaks ties between writes that did not see each other
//!   (principle 10).
//! - **Causality** ([`happened_before`]): op `a` is in the past of op `b` when both come from
//!   one origin and `a.seq < b.seq`, or when the server had ordered `a` (global sequence
//!   `gseq`) at or below the `base_version` that `b`'s author had pulled. Two writes neither
//!   of which saw the other are [`concurrent`].
//! - **Conflicts** ([`ConflictId`]) are derived, never stored as decisions, and are decided
//!   from versions, never from wall clocks:
//!   - a critical register ([`Register::is_critical`]) whose [`heads`] (writes no other write
//!     saw) hold two or more different values ([`Register::conflict_value`]); an informed
//!     write (one that saw every head) resolves it;
//!   - a unit with two or more active assignments (principle 6); releasing all but one
//!     resolves it;
//!   - an incident edit or assignment concurrent with the incident's close; a
//!     `conflict.resolve` op with its id resolves it.
//!
//! Every replica that has applied the same set of ops (with the server's `gseq` for each)
//! therefore shows the same values and the same open conflicts, whatever order it applied
//! them in.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ts_rs::TS;
use uuid::Uuid;

use crate::device::{MAX_DEVICE_ID_CHARS, MAX_DEVICE_NAME_CHARS};
use crate::geo::LatLon;
use crate::incident::{MAX_ADDRESS_CHARS, MAX_TEXT_CHARS};
use crate::op::{Hlc, OpBody, OpEnvelope, Release, SCHEMA_VERSION};
use crate::unit::UnitStatus;

/// The longest unit or facility id accepted, characters.
pub const MAX_ID_CHARS: usize = 64;
/// The longest callsign or facility name accepted, characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest login name accepted, characters.
pub const MAX_USER_CHARS: usize = 100;

/// What the merge rules need to know about one op besides its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpMeta {
    /// The op's id.
    pub op_id: Uuid,
    /// Its origin (installation).
    pub origin: Uuid,
    /// Its per-origin sequence number.
    pub seq: u64,
    /// The server's global sequence number, once known (`None` for a local op the server has
    /// not acknowledged yet).
    pub gseq: Option<u64>,
    /// The author's `base_version` (`None` read as 0).
    pub base: u64,
    /// Its HLC stamp.
    pub hlc: Hlc,
}

impl OpMeta {
    /// The metadata of an envelope, with the server's `gseq` when known.
    pub fn of(op: &OpEnvelope, gseq: Option<u64>) -> OpMeta {
        OpMeta {
            op_id: op.op_id,
            origin: op.origin,
            seq: op.seq,
            gseq,
            base: op.base_version.unwrap_or(0),
            hlc: op.hlc,
        }
    }

    /// The register order: `(base_version, HLC, origin)`; the greatest key wins. Consistent
    /// with causality: if `a` happened before `b`, `a.order_key() < b.order_key()`.
    pub fn order_key(&self) -> (u64, Hlc, Uuid) {
        (self.base, self.hlc, self.origin)
    }
}

/// True when `a` is in the causal past of `b` (b's author had seen a). Irreflexive.
pub fn happened_before(a: &OpMeta, b: &OpMeta) -> bool {
    if a.op_id == b.op_id {
        return false;
    }
    if a.origin == b.origin {
        return a.seq < b.seq;
    }
    matches!(a.gseq, Some(g) if g <= b.base)
}

/// True when neither op saw the other.
pub fn concurrent(a: &OpMeta, b: &OpMeta) -> bool {
    a.op_id != b.op_id && !happened_before(a, b) && !happened_before(b, a)
}

/// The writes no other write in `writes` saw (the maximal elements under
/// [`happened_before`]), in `writes` order.
pub fn heads(writes: &[OpMeta]) -> Vec<OpMeta> {
    writes
        .iter()
        .filter(|w| !writes.iter().any(|o| happened_before(w, o)))
        .copied()
        .collect()
}

/// The winning write: the greatest [`OpMeta::order_key`].
pub fn winner(writes: &[OpMeta]) -> Option<OpMeta> {
    writes.iter().max_by_key(|w| w.order_key()).copied()
}

/// A mutable field ("register") of an incident, unit or facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Register {
    /// Incident type (critical).
    IncidentType,
    /// Incident priority (critical).
    Priority,
    /// Incident location (critical).
    Location,
    /// Incident address text.
    Address,
    /// Incident description.
    Description,
    /// Incident closure: disposition and summary (critical; written by `incident.close`).
    Closure,
    /// A unit's status.
    UnitStatus,
    /// A unit's roster entry (callsign, kind, home station).
    UnitRoster,
    /// A facility's entry.
    Facility,
    /// The unit a device is bound to (`null` when unbound); keyed by device id.
    DeviceBinding,
    /// A road closure ([`crate::road_closure::RoadClosure`]); keyed by closure id.
    RoadClosure,
}

impl Register {
    /// Every register.
    pub const ALL: [Register; 11] = [
        Register::IncidentType,
        Register::Priority,
        Register::Location,
        Register::Address,
        Register::Description,
        Register::Closure,
        Register::UnitStatus,
        Register::UnitRoster,
        Register::Facility,
        Register::DeviceBinding,
        Register::RoadClosure,
    ];

    /// The wire name, e.g. `"priority"`.
    pub fn name(self) -> &'static str {
        match self {
            Register::IncidentType => "incident_type",
            Register::Priority => "priority",
            Register::Location => "location",
            Register::Address => "address",
            Register::Description => "description",
            Register::Closure => "closure",
            Register::UnitStatus => "unit_status",
            Register::UnitRoster => "unit_roster",
            Register::Facility => "facility",
            Register::DeviceBinding => "device_binding",
            Register::RoadClosure => "road_closure",
        }
    }

    /// The register named `name` ([`Register::name`]).
    pub fn from_name(name: &str) -> Option<Register> {
        Register::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Critical registers raise a conflict on concurrent different writes (SYNC.md
    /// principle 5: incident priority, type, location, status).
    pub fn is_critical(self) -> bool {
        matches!(
            self,
            Register::IncidentType | Register::Priority | Register::Location | Register::Closure
        )
    }

    /// True for the registers of an incident (entity = incident id).
    pub fn is_incident(self) -> bool {
        !matches!(
            self,
            Register::UnitStatus
                | Register::UnitRoster
                | Register::Facility
                | Register::DeviceBinding
                | Register::RoadClosure
        )
    }

    /// The part of a written value that decides whether two heads disagree: the
    /// disposition for a closure (two closes with the same disposition but different
    /// summaries are not a conflict), the whole value otherwise.
    pub fn conflict_value(self, value: &Value) -> Value {
        match self {
            Register::Closure => value.get("disposition").cloned().unwrap_or(Value::Null),
            _ => value.clone(),
        }
    }
}

/// One register write made by an op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    /// The entity: incident id (UUID text), unit id or facility id.
    pub entity: String,
    /// The register.
    pub register: Register,
    /// The value written, as JSON: type `"fire"`, priority `"P1"`, location
    /// `{"lat":..,"lon":..}`, address/description text, closure
    /// `{"disposition":"report_taken","summary":".."}`, unit status `"dispatched"`, unit
    /// roster `{"callsign":..,"unit_kind":..,"home_station":..}`, facility as
    /// [`crate::facility::Facility`].
    pub value: Value,
}

fn w(entity: impl Into<String>, register: Register, value: Value) -> Write {
    Write {
        entity: entity.into(),
        register,
        value,
    }
}

fn release_writes(releases: &[Release], out: &mut Vec<Write>) {
    for r in releases {
        if let Some(to) = r.unit_to {
            out.push(w(r.unit_id.clone(), Register::UnitStatus, json!(to)));
        }
    }
}

/// The register writes an op makes. An `incident.create` writes the five incident fields;
/// `incident.close` writes the closure; status writes come from `unit.set_status`,
/// `assignment.add` (`dispatched`) and every [`Release`] with a `unit_to`.
pub fn writes_of(body: &OpBody) -> Vec<Write> {
    let mut out = Vec::new();
    match body {
        OpBody::IncidentCreate {
            incident_id,
            incident_type,
            priority,
            location,
            address,
            description,
            ..
        } => {
            let id = incident_id.to_string();
            out.push(w(id.clone(), Register::IncidentType, json!(incident_type)));
            out.push(w(id.clone(), Register::Priority, json!(priority)));
            out.push(w(id.clone(), Register::Location, json!(location)));
            out.push(w(id.clone(), Register::Address, json!(address)));
            out.push(w(id, Register::Description, json!(description)));
        }
        OpBody::IncidentSetFields {
            incident_id,
            fields,
        } => {
            let id = incident_id.to_string();
            if let Some(t) = fields.incident_type {
                out.push(w(id.clone(), Register::IncidentType, json!(t)));
            }
            if let Some(p) = fields.priority {
                out.push(w(id.clone(), Register::Priority, json!(p)));
            }
            if let Some(l) = fields.location {
                out.push(w(id.clone(), Register::Location, json!(l)));
            }
            if let Some(a) = &fields.address {
                out.push(w(id.clone(), Register::Address, json!(a)));
            }
            if let Some(d) = &fields.description {
                out.push(w(id, Register::Description, json!(d)));
            }
        }
        OpBody::IncidentClose {
            incident_id,
            disposition,
            summary,
            releases,
        } => {
            out.push(w(
                incident_id.to_string(),
                Register::Closure,
                json!({"disposition": disposition, "summary": summary}),
            ));
            release_writes(releases, &mut out);
        }
        OpBody::UnitSetStatus {
            unit_id,
            to,
            releases,
            ..
        } => {
            out.push(w(unit_id.clone(), Register::UnitStatus, json!(to)));
            release_writes(releases, &mut out);
        }
        OpBody::AssignmentAdd { unit_id, .. } => {
            out.push(w(
                unit_id.clone(),
                Register::UnitStatus,
                json!(UnitStatus::Dispatched),
            ));
        }
        OpBody::AssignmentRelease {
            unit_id, unit_to, ..
        } => {
            if let Some(to) = unit_to {
                out.push(w(unit_id.clone(), Register::UnitStatus, json!(to)));
            }
        }
        OpBody::UnitRegister {
            unit_id,
            callsign,
            unit_kind,
            home_station,
        } => out.push(w(
            unit_id.clone(),
            Register::UnitRoster,
            json!({"callsign": callsign, "unit_kind": unit_kind, "home_station": home_station}),
        )),
        OpBody::FacilityRegister { facility } => {
            out.push(w(facility.id.clone(), Register::Facility, json!(facility)))
        }
        OpBody::ConflictResolve { releases, .. } => release_writes(releases, &mut out),
        OpBody::DeviceBind { device_id, unit_id } => out.push(w(
            device_id.clone(),
            Register::DeviceBinding,
            json!(unit_id),
        )),
        OpBody::RoadClosureSet { closure } => out.push(w(
            closure.closure_id.to_string(),
            Register::RoadClosure,
            json!(closure),
        )),
        OpBody::IncidentAcknowledge { .. }
        | OpBody::TimelineAppend { .. }
        | OpBody::PositionReport { .. }
        | OpBody::DeviceReport { .. } => {}
    }
    out
}

/// The assignments an op ends.
pub fn releases_of(body: &OpBody) -> Vec<Release> {
    match body {
        OpBody::IncidentClose { releases, .. }
        | OpBody::UnitSetStatus { releases, .. }
        | OpBody::ConflictResolve { releases, .. } => releases.clone(),
        OpBody::AssignmentRelease {
            assignment_id,
            incident_id,
            unit_id,
            unit_to,
        } => vec![Release {
            assignment_id: *assignment_id,
            incident_id: *incident_id,
            unit_id: unit_id.clone(),
            unit_to: *unit_to,
        }],
        _ => Vec::new(),
    }
}

/// The incident an op refers to (creates, changes, or adds to), if any.
pub fn incident_of(body: &OpBody) -> Option<Uuid> {
    match body {
        OpBody::IncidentCreate { incident_id, .. }
        | OpBody::IncidentSetFields { incident_id, .. }
        | OpBody::IncidentAcknowledge { incident_id }
        | OpBody::IncidentClose { incident_id, .. }
        | OpBody::AssignmentAdd { incident_id, .. }
        | OpBody::AssignmentRelease { incident_id, .. }
        | OpBody::TimelineAppend { incident_id, .. } => Some(*incident_id),
        OpBody::ConflictResolve { conflict_id, .. } => {
            ConflictId::parse(conflict_id).and_then(|c| c.incident())
        }
        _ => None,
    }
}

/// The units an op refers to (must exist before it applies), without the one a
/// `unit.register` creates.
pub fn units_of(body: &OpBody) -> Vec<String> {
    let mut units: Vec<String> = match body {
        OpBody::UnitSetStatus { unit_id, .. }
        | OpBody::AssignmentAdd { unit_id, .. }
        | OpBody::PositionReport { unit_id, .. } => vec![unit_id.clone()],
        OpBody::DeviceBind {
            unit_id: Some(unit_id),
            ..
        } => vec![unit_id.clone()],
        _ => Vec::new(),
    };
    units.extend(releases_of(body).into_iter().map(|r| r.unit_id));
    units.sort();
    units.dedup();
    units
}

/// True when the op is an edit that conflicts with a concurrent close of its incident: a
/// field change or an assignment.
pub fn is_incident_edit(body: &OpBody) -> bool {
    matches!(
        body,
        OpBody::IncidentSetFields { .. } | OpBody::AssignmentAdd { .. }
    )
}

/// The kind of a conflict, for display and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A critical field changed concurrently to different values.
    Field,
    /// A unit assigned to two incidents at once.
    DoubleAssignment,
    /// An incident edited or assigned concurrently with its close.
    EditAfterClose,
}

/// A conflict's identity, the same on every replica. Text form (the `conflict.resolve` op
/// and the UI use it): `field:{incident}:{register}`, `double:{unit}`,
/// `closed:{incident}:{close op}:{edit op}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictId {
    /// Concurrent different writes to a critical register of an incident.
    Field {
        /// The incident.
        incident_id: Uuid,
        /// The register.
        register: Register,
    },
    /// A unit with two or more active assignments.
    DoubleAssignment {
        /// The unit.
        unit_id: String,
    },
    /// An edit concurrent with a close.
    EditAfterClose {
        /// The incident.
        incident_id: Uuid,
        /// The `incident.close` op.
        close_op: Uuid,
        /// The edit (`incident.set_fields` or `assignment.add`) op.
        edit_op: Uuid,
    },
}

impl ConflictId {
    /// Its kind.
    pub fn kind(&self) -> ConflictKind {
        match self {
            ConflictId::Field { .. } => ConflictKind::Field,
            ConflictId::DoubleAssignment { .. } => ConflictKind::DoubleAssignment,
            ConflictId::EditAfterClose { .. } => ConflictKind::EditAfterClose,
        }
    }

    /// The incident it concerns, if any.
    pub fn incident(&self) -> Option<Uuid> {
        match self {
            ConflictId::Field { incident_id, .. }
            | ConflictId::EditAfterClose { incident_id, .. } => Some(*incident_id),
            ConflictId::DoubleAssignment { .. } => None,
        }
    }

    /// Parses the text form; `None` when it is not one.
    pub fn parse(text: &str) -> Option<ConflictId> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "field" => {
                let (inc, reg) = rest.split_once(':')?;
                Some(ConflictId::Field {
                    incident_id: Uuid::parse_str(inc).ok()?,
                    register: Register::from_name(reg)?,
                })
            }
            "double" if !rest.is_empty() => Some(ConflictId::DoubleAssignment {
                unit_id: rest.to_string(),
            }),
            "closed" => {
                let mut it = rest.split(':');
                let c = ConflictId::EditAfterClose {
                    incident_id: Uuid::parse_str(it.next()?).ok()?,
                    close_op: Uuid::parse_str(it.next()?).ok()?,
                    edit_op: Uuid::parse_str(it.next()?).ok()?,
                };
                it.next().is_none().then_some(c)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ConflictId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictId::Field {
                incident_id,
                register,
            } => write!(f, "field:{incident_id}:{}", register.name()),
            ConflictId::DoubleAssignment { unit_id } => write!(f, "double:{unit_id}"),
            ConflictId::EditAfterClose {
                incident_id,
                close_op,
                edit_op,
            } => write!(f, "closed:{incident_id}:{close_op}:{edit_op}"),
        }
    }
}

/// True when the heads of a critical register disagree (a field conflict is open).
/// `heads` pairs each head's metadata with the value it wrote.
pub fn field_conflict(register: Register, heads: &[(OpMeta, Value)]) -> bool {
    if !register.is_critical() || heads.len() < 2 {
        return false;
    }
    let first = register.conflict_value(&heads[0].1);
    heads[1..]
        .iter()
        .any(|(_, v)| register.conflict_value(v) != first)
}

/// Why an op is refused before it is stored (static checks that need no state), shared by
/// the console (before writing) and the server (before accepting; a refused op is parked
/// with this text as its reason).
///
/// # Errors
/// A one-line reason naming the field, e.g. `"fix.position.lat 91 is outside -90..90"`.
pub fn validate(op: &OpEnvelope) -> Result<(), String> {
    if op.schema == 0 || op.schema > SCHEMA_VERSION {
        return Err(format!(
            "schema version {} is not known here (this build knows 1..={SCHEMA_VERSION})",
            op.schema
        ));
    }
    if op.seq == 0 || op.lane_seq == 0 {
        return Err("seq and lane_seq start at 1".into());
    }
    if op.lane != op.body.lane() {
        return Err(format!(
            "{} travels in lane {:?}, not {:?}",
            op.body.kind(),
            op.body.lane(),
            op.lane
        ));
    }
    if op.hlc.wall_ms < 0 {
        return Err(format!("hlc.wall_ms {} is before 1970", op.hlc.wall_ms));
    }
    text("user", &op.user, 1, MAX_USER_CHARS)?;
    let loc = |name: &str, l: &LatLon| -> Result<(), String> {
        if !l.lat.is_finite() || !(-90.0..=90.0).contains(&l.lat) {
            return Err(format!("{name}.lat {} is outside -90..90", l.lat));
        }
        if !l.lon.is_finite() || !(-180.0..=180.0).contains(&l.lon) {
            return Err(format!("{name}.lon {} is outside -180..180", l.lon));
        }
        Ok(())
    };
    for r in releases_of(&op.body) {
        text("releases.unit_id", &r.unit_id, 1, MAX_ID_CHARS)?;
    }
    match &op.body {
        OpBody::IncidentCreate {
            number,
            location,
            address,
            description,
            ..
        } => {
            text("number", number, 1, MAX_NAME_CHARS)?;
            loc("location", location)?;
            text("address", address, 0, MAX_ADDRESS_CHARS)?;
            text("description", description, 0, MAX_TEXT_CHARS)?;
        }
        OpBody::IncidentSetFields { fields, .. } => {
            if let Some(l) = &fields.location {
                loc("fields.location", l)?;
            }
            if let Some(a) = &fields.address {
                text("fields.address", a, 0, MAX_ADDRESS_CHARS)?;
            }
            if let Some(d) = &fields.description {
                text("fields.description", d, 0, MAX_TEXT_CHARS)?;
            }
        }
        OpBody::IncidentClose { summary, .. } => text("summary", summary, 0, MAX_TEXT_CHARS)?,
        OpBody::TimelineAppend { text: t, .. } => text("text", t, 1, MAX_TEXT_CHARS)?,
        OpBody::UnitSetStatus { unit_id, .. }
        | OpBody::AssignmentAdd { unit_id, .. }
        | OpBody::AssignmentRelease { unit_id, .. } => {
            text("unit_id", unit_id, 1, MAX_ID_CHARS)?;
        }
        OpBody::PositionReport { unit_id, fix } => {
            text("unit_id", unit_id, 1, MAX_ID_CHARS)?;
            fix_ranges("fix", fix)?;
        }
        OpBody::UnitRegister {
            unit_id,
            callsign,
            home_station,
            ..
        } => {
            text("unit_id", unit_id, 1, MAX_ID_CHARS)?;
            text("callsign", callsign, 1, MAX_NAME_CHARS)?;
            if let Some(h) = home_station {
                text("home_station", h, 1, MAX_ID_CHARS)?;
            }
        }
        OpBody::FacilityRegister { facility } => {
            text("facility.id", &facility.id, 1, MAX_ID_CHARS)?;
            text("facility.name_zh", &facility.name_zh, 0, MAX_NAME_CHARS)?;
            text("facility.name_en", &facility.name_en, 0, MAX_NAME_CHARS)?;
            loc("facility.position", &facility.position)?;
        }
        OpBody::ConflictResolve {
            conflict_id, note, ..
        } => {
            if ConflictId::parse(conflict_id).is_none() {
                return Err(format!("conflict_id {conflict_id:?} is not a conflict id"));
            }
            text("note", note, 0, MAX_TEXT_CHARS)?;
        }
        OpBody::DeviceBind { device_id, unit_id } => {
            text("device_id", device_id, 1, MAX_DEVICE_ID_CHARS)?;
            if let Some(u) = unit_id {
                text("unit_id", u, 1, MAX_ID_CHARS)?;
            }
        }
        OpBody::DeviceReport { report } => {
            text(
                "report.device_id",
                &report.device_id,
                1,
                MAX_DEVICE_ID_CHARS,
            )?;
            if let Some(n) = &report.name {
                text("report.name", n, 0, MAX_DEVICE_NAME_CHARS)?;
            }
            fix_ranges("report.fix", &report.fix)?;
            if let Some(b) = report.battery_pct
                && (!b.is_finite() || !(0.0..=100.0).contains(&b))
            {
                return Err(format!("report.battery_pct {b} is outside 0..100"));
            }
        }
        OpBody::RoadClosureSet { closure } => closure.check()?,
        OpBody::IncidentAcknowledge { .. } => {}
    }
    Ok(())
}

/// The static range checks of a fix (the clock-dependent fix-time check is
/// [`crate::device::check_fix`], done where reports arrive).
fn fix_ranges(name: &str, fix: &crate::op::Fix) -> Result<(), String> {
    crate::device::check_fix_ranges(fix).map_err(|e| format!("{name}: {e}"))
}

fn text(name: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n < min {
        return Err(format!("{name} is empty"));
    }
    if n > max {
        return Err(format!(
            "{name} has {n} characters; at most {max} are accepted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(origin: u128, seq: u64, gseq: Option<u64>, base: u64, wall: i64) -> OpMeta {
        OpMeta {
            op_id: Uuid::from_u128(origin * 1000 + u128::from(seq)),
            origin: Uuid::from_u128(origin),
            seq,
            gseq,
            base,
            hlc: Hlc {
                wall_ms: wall,
                logical: 0,
            },
        }
    }

    #[test]
    fn causality_from_origin_and_base() {
        let a = meta(1, 1, Some(10), 0, 1_000);
        let b = meta(1, 2, None, 0, 2_000);
        let c = meta(2, 1, Some(12), 10, 500); // saw a (gseq 10 <= base 10)
        let d = meta(3, 1, Some(11), 9, 9_000_000); // did not see a
        assert!(happened_before(&a, &b) && !happened_before(&b, &a));
        assert!(happened_before(&a, &c));
        assert!(concurrent(&a, &d));
        assert!(!concurrent(&a, &a));
        assert_eq!(heads(&[a, c, d]), vec![c, d]);
        // c saw a and wins over it although its wall clock is behind; d (clock +2.5 h,
        // stale base) loses to the informed c.
        assert_eq!(winner(&[a, c, d]).map(|m| m.op_id), Some(c.op_id));
    }

    #[test]
    fn conflict_ids_round_trip() {
        let ids = [
            ConflictId::Field {
                incident_id: Uuid::from_u128(7),
                register: Register::Priority,
            },
            ConflictId::DoubleAssignment {
                unit_id: "u-01".into(),
            },
            ConflictId::EditAfterClose {
                incident_id: Uuid::from_u128(7),
                close_op: Uuid::from_u128(8),
                edit_op: Uuid::from_u128(9),
            },
        ];
        for id in ids {
            assert_eq!(ConflictId::parse(&id.to_string()), Some(id.clone()));
        }
        assert_eq!(ConflictId::parse("field:nope:priority"), None);
        assert_eq!(ConflictId::parse("double:"), None);
        assert_eq!(ConflictId::parse("other:x"), None);
    }

    #[test]
    fn field_conflict_needs_different_values_on_a_critical_register() {
        let a = meta(1, 1, Some(1), 0, 1);
        let b = meta(2, 1, Some(2), 0, 2);
        let p1 = (a, json!("P1"));
        let p2 = (b, json!("P2"));
        assert!(field_conflict(
            Register::Priority,
            &[p1.clone(), p2.clone()]
        ));
        assert!(!field_conflict(
            Register::Priority,
            &[p1.clone(), (b, json!("P1"))]
        ));
        assert!(!field_conflict(Register::Address, &[p1, p2]));
        let c1 = (a, json!({"disposition":"arrest","summary":"x"}));
        let c2 = (b, json!({"disposition":"arrest","summary":"y"}));
        assert!(!field_conflict(Register::Closure, &[c1, c2]));
    }
}
