//! Reads a store's replicated tables into the checker's canonical [`State`] (the same rows
//! and columns as `outpost_check::Model::state`), with plain SQL on the store's connection,
//! so a difference from the model is shown row by row, not only as a differing hash.

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value, json};

use outpost_check::State;

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(format!("{b:?}")),
    }
}

/// Rows of `sql` as JSON objects keyed by column name; `key` builds the primary key text.
fn rows(
    conn: &Connection,
    sql: &str,
    key: impl Fn(&Map<String, Value>) -> String,
) -> Vec<(String, Value)> {
    let mut st = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let mut q = st.query([]).expect("query");
    while let Some(r) = q.next().expect("row") {
        let mut m = Map::new();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.clone(), value(r.get_ref(i).expect("column")));
        }
        out.push((key(&m), Value::Object(m)));
    }
    out
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// The canonical state of the store behind `conn`.
pub fn state(conn: &Connection) -> State {
    let mut s = State::empty();
    let id = |m: &Map<String, Value>| text(m, "id");
    for (k, mut v) in rows(
        conn,
        "SELECT id, number, incident_type, priority, lat, lon, address, description,
                acknowledged, created_at, created_by, closed_at, closed_by, disposition, summary
         FROM incidents",
        id,
    ) {
        if let Some(a) = v.get_mut("acknowledged") {
            *a = json!(a.as_i64().unwrap_or(0) != 0);
        }
        s.put("incidents", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT id, callsign, kind, home_station, status, status_since FROM units",
        id,
    ) {
        s.put("units", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT id, kind, name_zh, name_en, lat, lon, updated_at FROM facilities",
        id,
    ) {
        s.put("facilities", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT id, incident_id, unit_id, assigned_at, assigned_by, released_at, released_by
         FROM assignments",
        id,
    ) {
        s.put("assignments", k, v);
    }
    for (k, mut v) in rows(
        conn,
        "SELECT id, incident_id, at, user, event FROM timeline",
        id,
    ) {
        if let Some(e) = v.get_mut("event")
            && let Some(t) = e.as_str()
        {
            *e = serde_json::from_str(t).unwrap_or(Value::Null);
        }
        s.put("timeline", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m, received_at
         FROM positions",
        |m| format!("{}@{}", text(m, "unit_id"), text(m, "fix_time")),
    ) {
        s.put("positions", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m
         FROM unit_positions",
        |m| text(m, "unit_id"),
    ) {
        s.put("unit_positions", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT device_id, unit_id, bound_at, bound_by FROM device_bindings",
        |m| text(m, "device_id"),
    ) {
        s.put("device_bindings", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT device_id, source, name, first_seen, fix_time, lat, lon, heading_deg,
                speed_mps, accuracy_m, battery_pct, reports FROM devices",
        |m| text(m, "device_id"),
    ) {
        s.put("devices", k, v);
    }
    for (k, v) in rows(
        conn,
        "SELECT device_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m,
                battery_pct, source, name, received_at FROM device_fixes",
        |m| format!("{}@{}", text(m, "device_id"), text(m, "fix_time")),
    ) {
        s.put("device_fixes", k, v);
    }
    for (k, mut v) in rows(
        conn,
        "SELECT closure_id, value, set_by, set_at FROM road_closures",
        |m| text(m, "closure_id"),
    ) {
        if let Some(e) = v.get_mut("value")
            && let Some(t) = e.as_str()
        {
            *e = serde_json::from_str(t).unwrap_or(Value::Null);
        }
        s.put("road_closures", k, v);
    }
    s
}

/// Every op of a store's outbox with its state.
pub fn outbox(store: &outpost_store::Store) -> Vec<outpost_check::OutboxEntry> {
    let mut st = store
        .conn()
        .prepare("SELECT envelope, status, reason FROM outbox ORDER BY seq")
        .expect("outbox query");
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })
    .expect("outbox rows")
    .map(|row| {
        let (env, status, reason) = row.expect("outbox row");
        outpost_check::OutboxEntry {
            op: serde_json::from_str(&env).expect("outbox envelope"),
            state: match status.as_str() {
                "pending" => outpost_check::OutboxState::Pending,
                "acked" => outpost_check::OutboxState::Acked,
                _ => outpost_check::OutboxState::Parked {
                    reason: reason.unwrap_or_default(),
                },
            },
        }
    })
    .collect()
}
