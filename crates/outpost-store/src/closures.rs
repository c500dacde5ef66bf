//! Road closures (issue 5, migration 8): read queries over `road_closures`, the table
//! [`crate::apply`] derives from `road_closure.set` ops (one register per closure id,
//! `merge::Register::RoadClosure`; the newest write by HLC is shown, except that a closure
//! any applied write lifted stays lifted, named after its earliest lift:
//! `crate::apply::project_road_closure`).
//!
//! Each query takes a `&Connection`, so it works on the store, inside a
//! [`crate::Store::write`] transaction (to change or lift a closure from its current value),
//! and on the server's replica alike. Times are UTC; positions WGS-84 degrees.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row};

use outpost_domain::road_closure::RoadClosure;

use crate::StoreError;
use crate::sql::time;

/// A road closure as shown: the winning `road_closure.set` write of its closure id, or,
/// once any applied write lifted it, that winner with `lifted = true` and the earliest lift
/// (in merge order) as `set_by`/`set_at` (lifting is final).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRoadClosure {
    /// The closure as last set (shape in WGS-84 degrees, reason, expected end, lifted).
    /// Whether routing avoids it now is [`RoadClosure::is_active`].
    pub closure: RoadClosure,
    /// Login name of the person whose write is shown (of a lifted closure: who lifted it
    /// first, in merge order).
    pub set_by: String,
    /// When that write was made (UTC): the op's HLC wall time, the same on every replica
    /// (of a lifted closure: the earliest lift's).
    pub set_at: DateTime<Utc>,
}

const COLS: &str = "closure_id, value, set_by, set_at";

fn read(r: &Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn parse(row: (String, String, String, i64)) -> Result<StoredRoadClosure, StoreError> {
    let (id, value, set_by, set_at) = row;
    let closure: RoadClosure = serde_json::from_str(&value).map_err(|_| StoreError::Corrupt {
        column: "road_closures.value",
        value: format!("{id}: {value}"),
    })?;
    Ok(StoredRoadClosure {
        closure,
        set_by,
        set_at: time("road_closures.set_at", set_at)?,
    })
}

/// Every road closure ever set, lifted and ended ones included, newest write first
/// (`set_at` descending, then closure id).
///
/// # Errors
/// SQLite errors; [`StoreError::Corrupt`] for a stored value that is not a `RoadClosure`.
pub fn road_closures(conn: &Connection) -> Result<Vec<StoredRoadClosure>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM road_closures ORDER BY set_at DESC, closure_id"
    ))?;
    let rows = st.query_map([], read)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(parse).collect()
}

/// One road closure by id (`None`: never set here).
///
/// # Errors
/// As [`road_closures`].
pub fn road_closure(
    conn: &Connection,
    closure_id: uuid::Uuid,
) -> Result<Option<StoredRoadClosure>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM road_closures WHERE closure_id = ?1"
    ))?;
    st.query_row([closure_id.to_string()], read)
        .optional()?
        .map(parse)
        .transpose()
}

impl crate::Store {
    /// Every road closure ever set, newest write first ([`road_closures`]).
    ///
    /// # Errors
    /// As [`road_closures`].
    pub fn road_closures(&self) -> Result<Vec<StoredRoadClosure>, StoreError> {
        road_closures(self.conn())
    }

    /// One road closure by id ([`road_closure`]).
    ///
    /// # Errors
    /// As [`road_closures`].
    pub fn road_closure(
        &self,
        closure_id: uuid::Uuid,
    ) -> Result<Option<StoredRoadClosure>, StoreError> {
        road_closure(self.conn(), closure_id)
    }
}
