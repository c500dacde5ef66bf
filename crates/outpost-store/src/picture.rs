//! The CAD picture for TAK clients: units with their latest fix and incidents, read for the
//! server's Cursor-on-Target feed (issue 4).
//!
//! The feed sends the whole picture when a TAK client connects and every 60 s, and in between
//! only what the op log says changed; these queries serve both. Each takes a `&Connection`
//! (the server's replica). Rows are the board's [`UnitRow`] and [`IncidentRow`], so the feed
//! shows exactly what a console shows: the latest fix is the one with the newest fix time
//! (SYNC.md principle 9), positions WGS-84, times UTC.

use rusqlite::Connection;
use uuid::Uuid;

use crate::StoreError;
use crate::query::{self, IncidentRow, UnitRow};
use crate::sql::uuid;

/// Every unit that has a latest fix (a unit never heard from is not on a TAK map), in
/// callsign order.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn units_with_fix(conn: &Connection) -> Result<Vec<UnitRow>, StoreError> {
    Ok(query::units(conn)?
        .into_iter()
        .filter(|u| u.fix.is_some())
        .collect())
}

/// The units among `ids` that exist and have a latest fix, in the order of `ids` (unknown
/// ids and units without a fix are left out).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn units_by_id(conn: &Connection, ids: &[String]) -> Result<Vec<UnitRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(u) = query::unit(conn, id)?
            && u.fix.is_some()
        {
            out.push(u);
        }
    }
    Ok(out)
}

/// Every open incident (not closed), oldest first.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn open_incidents(conn: &Connection) -> Result<Vec<IncidentRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM incidents WHERE closed_at IS NULL ORDER BY created_at, id",
    )?;
    let ids = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(i) = query::incident(conn, uuid("incidents.id", &id)?)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// The incidents among `ids` that exist, open or closed, in the order of `ids`.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn incidents_by_id(conn: &Connection, ids: &[Uuid]) -> Result<Vec<IncidentRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(i) = query::incident(conn, *id)? {
            out.push(i);
        }
    }
    Ok(out)
}
