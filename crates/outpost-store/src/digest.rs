//! The replicated state in canonical form, and its per-table digest (invariant I3: every
//! replica's state equals the server's and the reference model's).
//!
//! Tables and rows ([`TABLES`]): each row is a JSON object of the replicated columns only —
//! local bookkeeping (`timeline.n`, version counters, `assignments.op_id`) is left out — keyed
//! by its primary key (`positions`: `"{unit_id}@{fix_time}"`, `device_fixes`:
//! `"{device_id}@{fix_time}"`; `road_closures`: the closure id, its `value` the winning
//! `RoadClosure` as a JSON object). Canonical text of a table: one
//! line per row, `key TAB json`, rows in key (byte) order, object keys sorted at every level,
//! numbers as serde_json prints them. The digest of a table is the SHA-256 (lower-case hex) of
//! its text. `outpost-check`'s model renders the same form.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rusqlite::Connection;
use serde_json::{Value, json};

pub use outpost_domain::canonical::canonical_json;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The replicated tables, in report order.
pub const TABLES: [&str; 11] = [
    "incidents",
    "units",
    "facilities",
    "assignments",
    "timeline",
    "positions",
    "unit_positions",
    "device_bindings",
    "devices",
    "device_fixes",
    "road_closures",
];

/// Table name → row key → row.
pub type StateTables = BTreeMap<String, BTreeMap<String, Value>>;

fn rows(
    conn: &Connection,
    sql: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(String, Value)>,
) -> Result<BTreeMap<String, Value>, StoreError> {
    let mut st = conn.prepare(sql)?;
    let out = st.query_map([], row)?.collect::<Result<_, _>>()?;
    Ok(out)
}

/// Every replicated table's rows (see the module doc).
///
/// # Errors
/// SQLite errors.
pub fn state_tables(conn: &Connection) -> Result<StateTables, StoreError> {
    let mut t = StateTables::new();
    t.insert(
        "incidents".into(),
        rows(
            conn,
            "SELECT id, number, incident_type, priority, lat, lon, address, description,
                    acknowledged, created_at, created_by, closed_at, closed_by, disposition,
                    summary FROM incidents",
            |r| {
                let id: String = r.get(0)?;
                Ok((
                    id.clone(),
                    json!({
                        "id": id,
                        "number": r.get::<_, String>(1)?,
                        "incident_type": r.get::<_, String>(2)?,
                        "priority": r.get::<_, String>(3)?,
                        "lat": r.get::<_, f64>(4)?,
                        "lon": r.get::<_, f64>(5)?,
                        "address": r.get::<_, String>(6)?,
                        "description": r.get::<_, String>(7)?,
                        "acknowledged": r.get::<_, bool>(8)?,
                        "created_at": r.get::<_, i64>(9)?,
                        "created_by": r.get::<_, String>(10)?,
                        "closed_at": r.get::<_, Option<i64>>(11)?,
                        "closed_by": r.get::<_, Option<String>>(12)?,
                        "disposition": r.get::<_, Option<String>>(13)?,
                        "summary": r.get::<_, Option<String>>(14)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "units".into(),
        rows(
            conn,
            "SELECT id, callsign, kind, home_station, status, status_since FROM units",
            |r| {
                let id: String = r.get(0)?;
                Ok((
                    id.clone(),
                    json!({
                        "id": id,
                        "callsign": r.get::<_, String>(1)?,
                        "kind": r.get::<_, String>(2)?,
                        "home_station": r.get::<_, Option<String>>(3)?,
                        "status": r.get::<_, String>(4)?,
                        "status_since": r.get::<_, i64>(5)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "facilities".into(),
        rows(
            conn,
            "SELECT id, kind, name_zh, name_en, lat, lon, updated_at FROM facilities",
            |r| {
                let id: String = r.get(0)?;
                Ok((
                    id.clone(),
                    json!({
                        "id": id,
                        "kind": r.get::<_, String>(1)?,
                        "name_zh": r.get::<_, String>(2)?,
                        "name_en": r.get::<_, String>(3)?,
                        "lat": r.get::<_, f64>(4)?,
                        "lon": r.get::<_, f64>(5)?,
                        "updated_at": r.get::<_, i64>(6)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "assignments".into(),
        rows(
            conn,
            "SELECT id, incident_id, unit_id, assigned_at, assigned_by, released_at, released_by
             FROM assignments",
            |r| {
                let id: String = r.get(0)?;
                Ok((
                    id.clone(),
                    json!({
                        "id": id,
                        "incident_id": r.get::<_, String>(1)?,
                        "unit_id": r.get::<_, String>(2)?,
                        "assigned_at": r.get::<_, i64>(3)?,
                        "assigned_by": r.get::<_, String>(4)?,
                        "released_at": r.get::<_, Option<i64>>(5)?,
                        "released_by": r.get::<_, Option<String>>(6)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "timeline".into(),
        rows(
            conn,
            "SELECT id, incident_id, at, user, event FROM timeline",
            |r| {
                let id: String = r.get(0)?;
                let event: String = r.get(4)?;
                Ok((
                    id.clone(),
                    json!({
                        "id": id,
                        "incident_id": r.get::<_, String>(1)?,
                        "at": r.get::<_, i64>(2)?,
                        "user": r.get::<_, String>(3)?,
                        "event": serde_json::from_str::<Value>(&event).unwrap_or(Value::String(event)),
                    }),
                ))
            },
        )?,
    );
    let fix = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Value> {
        Ok(json!({
            "unit_id": r.get::<_, String>(0)?,
            "fix_time": r.get::<_, i64>(1)?,
            "lat": r.get::<_, f64>(2)?,
            "lon": r.get::<_, f64>(3)?,
            "heading_deg": r.get::<_, Option<f64>>(4)?,
            "speed_mps": r.get::<_, Option<f64>>(5)?,
            "accuracy_m": r.get::<_, Option<f64>>(6)?,
        }))
    };
    t.insert(
        "positions".into(),
        rows(
            conn,
            "SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m, received_at
             FROM positions",
            |r| {
                let mut row = fix(r)?;
                if let Value::Object(o) = &mut row {
                    o.insert("received_at".into(), json!(r.get::<_, i64>(7)?));
                }
                let key = format!("{}@{}", r.get::<_, String>(0)?, r.get::<_, i64>(1)?);
                Ok((key, row))
            },
        )?,
    );
    t.insert(
        "unit_positions".into(),
        rows(
            conn,
            "SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m
             FROM unit_positions",
            |r| Ok((r.get::<_, String>(0)?, fix(r)?)),
        )?,
    );
    t.insert(
        "device_bindings".into(),
        rows(
            conn,
            "SELECT device_id, unit_id, bound_at, bound_by FROM device_bindings",
            |r| {
                let id: String = r.get(0)?;
                Ok((
                    id.clone(),
                    json!({
                        "device_id": id,
                        "unit_id": r.get::<_, Option<String>>(1)?,
                        "bound_at": r.get::<_, i64>(2)?,
                        "bound_by": r.get::<_, String>(3)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "devices".into(),
        rows(
            conn,
            "SELECT device_id, source, name, first_seen, fix_time, lat, lon, heading_deg,
                    speed_mps, accuracy_m, battery_pct, reports FROM devices",
            |r| {
                let id: String = r.get(0)?;
                Ok((
                    id.clone(),
                    json!({
                        "device_id": id,
                        "source": r.get::<_, String>(1)?,
                        "name": r.get::<_, Option<String>>(2)?,
                        "first_seen": r.get::<_, i64>(3)?,
                        "fix_time": r.get::<_, i64>(4)?,
                        "lat": r.get::<_, f64>(5)?,
                        "lon": r.get::<_, f64>(6)?,
                        "heading_deg": r.get::<_, Option<f64>>(7)?,
                        "speed_mps": r.get::<_, Option<f64>>(8)?,
                        "accuracy_m": r.get::<_, Option<f64>>(9)?,
                        "battery_pct": r.get::<_, Option<f64>>(10)?,
                        "reports": r.get::<_, i64>(11)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "device_fixes".into(),
        rows(
            conn,
            "SELECT device_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m,
                    battery_pct, source, name, received_at FROM device_fixes",
            |r| {
                let id: String = r.get(0)?;
                let fix_time: i64 = r.get(1)?;
                Ok((
                    format!("{id}@{fix_time}"),
                    json!({
                        "device_id": id,
                        "fix_time": fix_time,
                        "lat": r.get::<_, f64>(2)?,
                        "lon": r.get::<_, f64>(3)?,
                        "heading_deg": r.get::<_, Option<f64>>(4)?,
                        "speed_mps": r.get::<_, Option<f64>>(5)?,
                        "accuracy_m": r.get::<_, Option<f64>>(6)?,
                        "battery_pct": r.get::<_, Option<f64>>(7)?,
                        "source": r.get::<_, String>(8)?,
                        "name": r.get::<_, Option<String>>(9)?,
                        "received_at": r.get::<_, i64>(10)?,
                    }),
                ))
            },
        )?,
    );
    t.insert(
        "road_closures".into(),
        rows(
            conn,
            "SELECT closure_id, value, set_by, set_at FROM road_closures",
            |r| {
                let id: String = r.get(0)?;
                let value: String = r.get(1)?;
                Ok((
                    id.clone(),
                    json!({
                        "closure_id": id,
                        "value": serde_json::from_str::<Value>(&value).unwrap_or(Value::String(value)),
                        "set_by": r.get::<_, String>(2)?,
                        "set_at": r.get::<_, i64>(3)?,
                    }),
                ))
            },
        )?,
    );
    Ok(t)
}

/// The canonical text of one table's rows (see the module doc).
pub fn render(rows: &BTreeMap<String, Value>) -> String {
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k}\t{}", canonical_json(v));
    }
    out
}

/// SHA-256 (lower-case hex) of each table's canonical text.
pub fn digest(tables: &StateTables) -> BTreeMap<String, String> {
    tables
        .iter()
        .map(|(name, rows)| {
            let mut h = Sha256::new();
            h.update(render(rows).as_bytes());
            let mut hex = String::with_capacity(64);
            for b in h.finalize() {
                let _ = write!(hex, "{b:02x}");
            }
            (name.clone(), hex)
        })
        .collect()
}

/// The per-table digest of the replicated state.
///
/// # Errors
/// SQLite errors.
pub fn state_digest(conn: &Connection) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(digest(&state_tables(conn)?))
}

impl crate::Store {
    /// The per-table SHA-256 of the replicated state ([`state_digest`]).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn state_digest(&self) -> Result<BTreeMap<String, String>, StoreError> {
        state_digest(self.conn())
    }

    /// The replicated state's rows ([`state_tables`]), for comparing replicas row by row.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn state_tables(&self) -> Result<StateTables, StoreError> {
        state_tables(self.conn())
    }
}
