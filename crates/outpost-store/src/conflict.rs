//! Open conflicts, derived from the ledger and the register writes by the rules of
//! [`outpost_domain::merge`] (never stored as decisions): field conflicts (the heads of a
//! critical incident register disagree), double assignments (a unit with two or more active
//! assignments) and edits concurrent with a close (no `conflict.resolve` with that id yet).
//! Each conflict comes with its sides for display: the writes or ops that disagree, who made
//! them and when, and which one the console shows.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use uuid::Uuid;

use outpost_domain::merge::{self, ConflictId, OpMeta, Register};
use outpost_domain::op::{OpBody, OpEnvelope};

use crate::apply::{META_COLS, meta_row, register_writes};
use crate::sql::{time, uuid};

/// An op row read for conflict detection: metadata, user, kind, envelope.
type OpRow = (OpMeta, String, String, OpEnvelope);
use crate::{Store, StoreError};

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictSide {
    /// The op (for a double assignment: the `assignment.add`).
    pub op_id: Uuid,
    /// Its metadata.
    pub meta: OpMeta,
    /// Who.
    pub user: String,
    /// When (the op's HLC wall time, UTC).
    pub at: DateTime<Utc>,
    /// The op kind, e.g. `"incident.set_fields"`.
    pub kind: String,
    /// The value: a register value for a field conflict, the closure for a close,
    /// `{"assignment_id","incident_id","unit_id"}` for an assignment, the fields of an edit.
    pub value: Value,
    /// True for the side the console shows (the register winner; the newest active
    /// assignment; the close).
    pub shown: bool,
    /// The assignment this side stands for (double assignment, or an edit that assigned).
    pub assignment_id: Option<Uuid>,
    /// The incident of that assignment.
    pub incident_id: Option<Uuid>,
}

/// One open conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Its id (the same on every replica).
    pub id: ConflictId,
    /// The sides, oldest first.
    pub sides: Vec<ConflictSide>,
}

fn side(
    meta: OpMeta,
    user: String,
    kind: String,
    value: Value,
) -> Result<ConflictSide, StoreError> {
    Ok(ConflictSide {
        op_id: meta.op_id,
        meta,
        user,
        at: time("ops.hlc_wall_ms", meta.hlc.wall_ms)?,
        kind,
        value,
        shown: false,
        assignment_id: None,
        incident_id: None,
    })
}

/// Every open conflict, in id order.
///
/// # Errors
/// SQLite and JSON errors.
pub fn conflicts(conn: &Connection) -> Result<Vec<Conflict>, StoreError> {
    let mut out = Vec::new();
    field_conflicts(conn, &mut out)?;
    double_assignments(conn, &mut out)?;
    edits_after_close(conn, &mut out)?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The ids of the open conflicts, in text form.
///
/// # Errors
/// SQLite and JSON errors.
pub fn conflict_ids(conn: &Connection) -> Result<BTreeSet<String>, StoreError> {
    Ok(conflicts(conn)?
        .into_iter()
        .map(|c| c.id.to_string())
        .collect())
}

fn field_conflicts(conn: &Connection, out: &mut Vec<Conflict>) -> Result<(), StoreError> {
    let candidates: Vec<(String, String)> = {
        let mut st = conn.prepare_cached(
            "SELECT w.entity, w.register FROM reg_writes w JOIN ops o ON o.op_id = w.op_id
             WHERE w.register IN ('incident_type', 'priority', 'location', 'closure')
               AND o.state = 'applied'
             GROUP BY w.entity, w.register HAVING COUNT(*) >= 2",
        )?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (entity, reg_name) in candidates {
        let Some(register) = Register::from_name(&reg_name) else {
            continue;
        };
        let Ok(incident_id) = Uuid::parse_str(&entity) else {
            continue;
        };
        let writes = register_writes(conn, &entity, register)?;
        let metas: Vec<OpMeta> = writes.iter().map(|w| w.meta).collect();
        let heads = merge::heads(&metas);
        let with_values: Vec<(OpMeta, Value)> = heads
            .iter()
            .filter_map(|h| {
                writes
                    .iter()
                    .find(|w| w.meta == *h)
                    .map(|w| (*h, w.value.clone()))
            })
            .collect();
        if !merge::field_conflict(register, &with_values) {
            continue;
        }
        let winner = merge::winner(&metas);
        let mut sides = Vec::new();
        for w in writes.into_iter().filter(|w| heads.contains(&w.meta)) {
            let mut s = side(w.meta, w.user, w.kind, w.value)?;
            s.shown = Some(w.meta) == winner;
            sides.push(s);
        }
        out.push(Conflict {
            id: ConflictId::Field {
                incident_id,
                register,
            },
            sides,
        });
    }
    Ok(())
}

fn double_assignments(conn: &Connection, out: &mut Vec<Conflict>) -> Result<(), StoreError> {
    let units: Vec<String> = {
        let mut st = conn.prepare_cached(
            "SELECT unit_id FROM assignments WHERE released_at IS NULL
             GROUP BY unit_id HAVING COUNT(*) >= 2",
        )?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for unit_id in units {
        let sql = format!(
            "SELECT {META_COLS}, a.id, a.incident_id FROM assignments a
               JOIN ops o ON o.op_id = a.op_id
             WHERE a.unit_id = ?1 AND a.released_at IS NULL
             ORDER BY a.assigned_at, a.id"
        );
        let rows: Vec<((OpMeta, String, String), String, String)> = {
            let mut st = conn.prepare_cached(&sql)?;
            st.query_map([&unit_id], |r| Ok((meta_row(r)?, r.get(9)?, r.get(10)?)))?
                .collect::<Result<_, _>>()?
        };
        let n = rows.len();
        let mut sides = Vec::new();
        for (i, ((meta, user, kind), assignment, incident)) in rows.into_iter().enumerate() {
            let assignment_id = uuid("assignments.id", &assignment)?;
            let incident_id = uuid("assignments.incident_id", &incident)?;
            let mut s = side(
                meta,
                user,
                kind,
                json!({"assignment_id": assignment, "incident_id": incident, "unit_id": unit_id}),
            )?;
            // The board shows the newest active assignment (query::active_assignment).
            s.shown = i + 1 == n;
            s.assignment_id = Some(assignment_id);
            s.incident_id = Some(incident_id);
            sides.push(s);
        }
        out.push(Conflict {
            id: ConflictId::DoubleAssignment { unit_id },
            sides,
        });
    }
    Ok(())
}

fn edits_after_close(conn: &Connection, out: &mut Vec<Conflict>) -> Result<(), StoreError> {
    let resolved: BTreeSet<String> = {
        let mut st = conn.prepare_cached(
            "SELECT json_extract(envelope, '$.body.conflict_id') FROM ops
             WHERE kind = 'conflict.resolve' AND state = 'applied'",
        )?;
        st.query_map([], |r| r.get::<_, Option<String>>(0))?
            .filter_map(|r| r.transpose())
            .collect::<Result<_, _>>()?
    };
    let sql = format!(
        "SELECT {META_COLS}, o.incident_id, o.envelope FROM ops o
         WHERE o.kind = ?1 AND o.state = 'applied' AND o.incident_id IS NOT NULL"
    );
    let load = |kind: &str, incident: Option<&str>| -> Result<Vec<OpRow>, StoreError> {
        let (q, args): (String, Vec<String>) = match incident {
            None => (sql.clone(), vec![kind.to_string()]),
            Some(i) => (
                format!("{sql} AND o.incident_id = ?2"),
                vec![kind.to_string(), i.to_string()],
            ),
        };
        let mut st = conn.prepare_cached(&q)?;
        let rows: Vec<((OpMeta, String, String), String)> = st
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((meta_row(r)?, r.get(10)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|((meta, user, kind), env)| Ok((meta, user, kind, serde_json::from_str(&env)?)))
            .collect()
    };
    for (close, close_user, close_kind, close_env) in load("incident.close", None)? {
        let Some(incident_id) = merge::incident_of(&close_env.body) else {
            continue;
        };
        let inc = incident_id.to_string();
        let mut edits = load("incident.set_fields", Some(&inc))?;
        edits.extend(load("assignment.add", Some(&inc))?);
        for (edit, user, kind, env) in edits {
            if !merge::concurrent(&close, &edit) {
                continue;
            }
            let id = ConflictId::EditAfterClose {
                incident_id,
                close_op: close.op_id,
                edit_op: edit.op_id,
            };
            if resolved.contains(&id.to_string()) {
                continue;
            }
            let close_value = match &close_env.body {
                OpBody::IncidentClose {
                    disposition,
                    summary,
                    ..
                } => json!({"disposition": disposition, "summary": summary}),
                _ => Value::Null,
            };
            let mut c = side(close, close_user.clone(), close_kind.clone(), close_value)?;
            c.shown = true;
            let (value, assignment_id) = match &env.body {
                OpBody::IncidentSetFields { fields, .. } => (json!(fields), None),
                OpBody::AssignmentAdd {
                    assignment_id,
                    incident_id,
                    unit_id,
                } => (
                    json!({"assignment_id": assignment_id, "incident_id": incident_id,
                           "unit_id": unit_id}),
                    Some(*assignment_id),
                ),
                _ => (Value::Null, None),
            };
            let mut e = side(edit, user, kind, value)?;
            e.assignment_id = assignment_id;
            e.incident_id = Some(incident_id);
            let mut sides = vec![c, e];
            sides.sort_by_key(|s| s.meta.hlc);
            out.push(Conflict { id, sides });
        }
    }
    Ok(())
}

/// Whether a conflict is still open.
///
/// # Errors
/// SQLite and JSON errors.
pub fn is_open(conn: &Connection, id: &ConflictId) -> Result<bool, StoreError> {
    Ok(conflicts(conn)?.iter().any(|c| &c.id == id))
}

/// The envelope of an op in the ledger.
///
/// # Errors
/// SQLite and JSON errors.
pub fn op_envelope(conn: &Connection, op_id: Uuid) -> Result<Option<OpEnvelope>, StoreError> {
    let mut st = conn.prepare_cached("SELECT envelope FROM ops WHERE op_id = ?1")?;
    let mut rows = st.query(params![op_id.to_string()])?;
    match rows.next()? {
        Some(r) => Ok(Some(serde_json::from_str(&r.get::<_, String>(0)?)?)),
        None => Ok(None),
    }
}

impl Store {
    /// Every open conflict with its sides ([`conflicts`]).
    ///
    /// # Errors
    /// SQLite and JSON errors.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, StoreError> {
        conflicts(self.conn())
    }

    /// The ids of the open conflicts, text form ([`conflict_ids`]).
    ///
    /// # Errors
    /// SQLite and JSON errors.
    pub fn conflict_ids(&self) -> Result<BTreeSet<String>, StoreError> {
        conflict_ids(self.conn())
    }
}
