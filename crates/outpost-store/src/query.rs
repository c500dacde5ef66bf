//! Read queries. Each takes a `&Connection` so it works on the store and inside a
//! [`crate::Store::write`] transaction alike.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use outpost_domain::facility::Facility;
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentStatus, IncidentType, Priority};
use outpost_domain::op::{Fix, Hlc, Lane, OpEnvelope};
use outpost_domain::unit::{UnitKind, UnitStatus};

use crate::sql::{enum_parse, opt_time, sql_u64, time, u64_sql, uuid};
use crate::timeline::{TimelineEvent, TimelineRow};
use crate::{Origin, StoreError};

/// A unit as the board shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    /// Stable id.
    pub id: String,
    /// Radio callsign.
    pub callsign: String,
    /// What it is.
    pub kind: UnitKind,
    /// Home station or post id.
    pub home_station: Option<String>,
    /// Current status.
    pub status: UnitStatus,
    /// When the current status began (UTC).
    pub status_since: DateTime<Utc>,
    /// Local version of the status register (starts at 1, +1 per change).
    pub status_version: u64,
    /// The incident of the active assignment: (id, number).
    pub incident: Option<(Uuid, String)>,
    /// Latest fix (newest fix time).
    pub fix: Option<Fix>,
}

/// An incident with its derived status and assigned callsigns.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Id.
    pub id: Uuid,
    /// Human-readable number, `YYYYMMDD-NNNN`.
    pub number: String,
    /// Type.
    pub incident_type: IncidentType,
    /// Priority.
    pub priority: Priority,
    /// Derived: closed, on scene (an assigned unit is), dispatched (a unit assigned), pending.
    pub status: IncidentStatus,
    /// Location (WGS-84).
    pub location: LatLon,
    /// Address text.
    pub address: String,
    /// Description.
    pub description: String,
    /// Whether acknowledged.
    pub acknowledged: bool,
    /// Created (UTC).
    pub created_at: DateTime<Utc>,
    /// Creator's user name.
    pub created_by: String,
    /// Closed (UTC).
    pub closed_at: Option<DateTime<Utc>>,
    /// Disposition once closed.
    pub disposition: Option<Disposition>,
    /// Closing summary once closed.
    pub summary: Option<String>,
    /// Callsigns of the units actively assigned, in callsign order.
    pub assigned: Vec<String>,
}

/// One assignment of a unit to an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentRow {
    /// Assignment id.
    pub id: Uuid,
    /// Incident.
    pub incident_id: Uuid,
    /// Unit.
    pub unit_id: String,
    /// Unit callsign (now).
    pub callsign: String,
    /// Unit status (now).
    pub unit_status: UnitStatus,
    /// Assigned (UTC).
    pub assigned_at: DateTime<Utc>,
    /// Released (UTC); `None` while active.
    pub released_at: Option<DateTime<Utc>>,
}

/// Delivery state of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Not yet accepted by the server.
    Pending,
    /// Accepted by the server (kept ≥ 14 days for re-push after a server restore).
    Acked,
    /// Refused by the server; kept with its reason (SYNC.md principle 7).
    Parked,
}

impl OutboxStatus {
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "acked" => Ok(Self::Acked),
            "parked" => Ok(Self::Parked),
            other => Err(StoreError::Corrupt {
                column: "outbox.status",
                value: other.to_string(),
            }),
        }
    }
    fn text(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Acked => "acked",
            Self::Parked => "parked",
        }
    }
}

/// One op in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Per-origin sequence number (gap-free from 1).
    pub seq: u64,
    /// Lane.
    pub lane: Lane,
    /// Op kind, e.g. `"incident.create"`.
    pub kind: String,
    /// HLC stamp.
    pub hlc: Hlc,
    /// The whole op as written.
    pub envelope: OpEnvelope,
    /// When appended (UTC).
    pub created_at: DateTime<Utc>,
    /// Delivery state.
    pub status: OutboxStatus,
}

/// The origin row (`None` only before [`crate::Store::open`] created it).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn origin(conn: &Connection) -> Result<Option<Origin>, StoreError> {
    let row = conn
        .query_row(
            "SELECT origin_id, last_seq, hlc_wall_ms, hlc_logical FROM origin WHERE singleton = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            },
        )
        .optional()?;
    row.map(|(id, seq, wall_ms, logical)| {
        Ok(Origin {
            id: uuid("origin.origin_id", &id)?,
            last_seq: sql_u64(seq),
            hlc: Hlc { wall_ms, logical },
        })
    })
    .transpose()
}

/// The last `lane_seq` this origin used in `lane` (0 before its first op there).
///
/// # Errors
/// SQLite errors.
pub fn last_lane_seq(conn: &Connection, lane: Lane) -> Result<u64, StoreError> {
    let last: Option<i64> = conn
        .query_row(
            "SELECT last_seq FROM lane_seqs WHERE lane = ?1",
            [crate::sql::enum_text(&lane)?],
            |r| r.get(0),
        )
        .optional()?;
    Ok(last.map(sql_u64).unwrap_or(0))
}

/// A stored setting.
///
/// # Errors
/// SQLite errors.
pub fn setting(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

const UNIT_SELECT: &str = "
    SELECT u.id, u.callsign, u.kind, u.home_station, u.status, u.status_since, u.status_version,
           a.incident_id, i.number,
           p.fix_time, p.lat, p.lon, p.heading_deg, p.speed_mps, p.accuracy_m
    FROM units u
    LEFT JOIN assignments a ON a.id = (
        SELECT id FROM assignments WHERE unit_id = u.id AND released_at IS NULL
        ORDER BY assigned_at DESC, id DESC LIMIT 1)
    LEFT JOIN incidents i ON i.id = a.incident_id
    LEFT JOIN unit_positions p ON p.unit_id = u.id";

type RawUnit = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<RawFix>,
);
type RawFix = (i64, f64, f64, Option<f64>, Option<f64>, Option<f64>);

fn raw_unit(r: &Row<'_>) -> rusqlite::Result<RawUnit> {
    let fix_time: Option<i64> = r.get(9)?;
    let fix = match fix_time {
        Some(t) => Some((
            t,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
        )),
        None => None,
    };
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        fix,
    ))
}

fn fix_from(raw: RawFix) -> Result<Fix, StoreError> {
    let (t, lat, lon, heading_deg, speed_mps, accuracy_m) = raw;
    Ok(Fix {
        position: LatLon { lat, lon },
        fix_time: time("positions.fix_time", t)?,
        heading_deg,
        speed_mps,
        accuracy_m,
    })
}

fn unit_from(raw: RawUnit) -> Result<UnitRow, StoreError> {
    let (id, callsign, kind, home_station, status, since, version, inc, number, fix) = raw;
    let incident = match (inc, number) {
        (Some(i), Some(n)) => Some((uuid("assignments.incident_id", &i)?, n)),
        _ => None,
    };
    Ok(UnitRow {
        id,
        callsign,
        kind: enum_parse("units.kind", &kind)?,
        home_station,
        status: enum_parse("units.status", &status)?,
        status_since: time("units.status_since", since)?,
        status_version: sql_u64(version),
        incident,
        fix: fix.map(fix_from).transpose()?,
    })
}

/// One unit, with its active incident and latest fix.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn unit(conn: &Connection, unit_id: &str) -> Result<Option<UnitRow>, StoreError> {
    let sql = format!("{UNIT_SELECT} WHERE u.id = ?1");
    // Cached: the CoT feed reads every touched unit this way several times a second.
    let raw = conn
        .prepare_cached(&sql)?
        .query_row([unit_id], raw_unit)
        .optional()?;
    raw.map(unit_from).transpose()
}

/// Every unit, in callsign order.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn units(conn: &Connection) -> Result<Vec<UnitRow>, StoreError> {
    let sql = format!("{UNIT_SELECT} ORDER BY u.callsign, u.id");
    let mut st = conn.prepare_cached(&sql)?;
    let raws = st.query_map([], raw_unit)?.collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(unit_from).collect()
}

const INCIDENT_SELECT: &str = "
    SELECT i.id, i.number, i.incident_type, i.priority, i.lat, i.lon, i.address, i.description,
           i.acknowledged, i.created_at, i.created_by, i.closed_at, i.disposition, i.summary,
           CASE
             WHEN i.closed_at IS NOT NULL THEN 'closed'
             WHEN EXISTS (SELECT 1 FROM assignments a JOIN units u ON u.id = a.unit_id
                          WHERE a.incident_id = i.id AND a.released_at IS NULL
                            AND u.status = 'on_scene') THEN 'on_scene'
             WHEN EXISTS (SELECT 1 FROM assignments a
                          WHERE a.incident_id = i.id AND a.released_at IS NULL) THEN 'dispatched'
             ELSE 'pending'
           END
    FROM incidents i";

struct RawIncident {
    id: String,
    number: String,
    incident_type: String,
    priority: String,
    lat: f64,
    lon: f64,
    address: String,
    description: String,
    acknowledged: bool,
    created_at: i64,
    created_by: String,
    closed_at: Option<i64>,
    disposition: Option<String>,
    summary: Option<String>,
    status: String,
}

fn raw_incident(r: &Row<'_>) -> rusqlite::Result<RawIncident> {
    Ok(RawIncident {
        id: r.get(0)?,
        number: r.get(1)?,
        incident_type: r.get(2)?,
        priority: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        address: r.get(6)?,
        description: r.get(7)?,
        acknowledged: r.get(8)?,
        created_at: r.get(9)?,
        created_by: r.get(10)?,
        closed_at: r.get(11)?,
        disposition: r.get(12)?,
        summary: r.get(13)?,
        status: r.get(14)?,
    })
}

fn incident_from(conn: &Connection, raw: RawIncident) -> Result<IncidentRow, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT u.callsign FROM assignments a JOIN units u ON u.id = a.unit_id
         WHERE a.incident_id = ?1 AND a.released_at IS NULL ORDER BY u.callsign",
    )?;
    let assigned = st
        .query_map([&raw.id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(IncidentRow {
        id: uuid("incidents.id", &raw.id)?,
        number: raw.number,
        incident_type: enum_parse("incidents.incident_type", &raw.incident_type)?,
        priority: enum_parse("incidents.priority", &raw.priority)?,
        status: enum_parse("incidents.status", &raw.status)?,
        location: LatLon {
            lat: raw.lat,
            lon: raw.lon,
        },
        address: raw.address,
        description: raw.description,
        acknowledged: raw.acknowledged,
        created_at: time("incidents.created_at", raw.created_at)?,
        created_by: raw.created_by,
        closed_at: opt_time("incidents.closed_at", raw.closed_at)?,
        disposition: raw
            .disposition
            .map(|d| enum_parse("incidents.disposition", &d))
            .transpose()?,
        summary: raw.summary,
        assigned,
    })
}

/// One incident.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn incident(conn: &Connection, id: Uuid) -> Result<Option<IncidentRow>, StoreError> {
    let sql = format!("{INCIDENT_SELECT} WHERE i.id = ?1");
    let raw = conn
        .prepare_cached(&sql)?
        .query_row([id.to_string()], raw_incident)
        .optional()?;
    raw.map(|r| incident_from(conn, r)).transpose()
}

/// The queue: open incidents and those closed at or after `closed_since`; open ones first,
/// then by priority (P1 first), then by age (oldest first).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn queue(
    conn: &Connection,
    closed_since: DateTime<Utc>,
) -> Result<Vec<IncidentRow>, StoreError> {
    let sql = format!(
        "{INCIDENT_SELECT} WHERE i.closed_at IS NULL OR i.closed_at >= ?1
         ORDER BY i.closed_at IS NOT NULL, i.priority, i.created_at, i.number"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let raws = st
        .query_map([closed_since.timestamp_millis()], raw_incident)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(|r| incident_from(conn, r)).collect()
}

const ASSIGNMENT_SELECT: &str = "
    SELECT a.id, a.incident_id, a.unit_id, u.callsign, u.status, a.assigned_at, a.released_at
    FROM assignments a JOIN units u ON u.id = a.unit_id";

type RawAssignment = (String, String, String, String, String, i64, Option<i64>);

fn raw_assignment(r: &Row<'_>) -> rusqlite::Result<RawAssignment> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn assignment_from(raw: RawAssignment) -> Result<AssignmentRow, StoreError> {
    let (id, incident_id, unit_id, callsign, status, assigned_at, released_at) = raw;
    Ok(AssignmentRow {
        id: uuid("assignments.id", &id)?,
        incident_id: uuid("assignments.incident_id", &incident_id)?,
        unit_id,
        callsign,
        unit_status: enum_parse("units.status", &status)?,
        assigned_at: time("assignments.assigned_at", assigned_at)?,
        released_at: opt_time("assignments.released_at", released_at)?,
    })
}

/// Every assignment of an incident, active and past, oldest first.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn assignments(conn: &Connection, incident_id: Uuid) -> Result<Vec<AssignmentRow>, StoreError> {
    let sql = format!("{ASSIGNMENT_SELECT} WHERE a.incident_id = ?1 ORDER BY a.assigned_at, a.id");
    let mut st = conn.prepare_cached(&sql)?;
    let raws = st
        .query_map([incident_id.to_string()], raw_assignment)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(assignment_from).collect()
}

/// The active assignment of a unit (the newest, if a sync conflict left two).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn active_assignment(
    conn: &Connection,
    unit_id: &str,
) -> Result<Option<AssignmentRow>, StoreError> {
    let sql = format!(
        "{ASSIGNMENT_SELECT} WHERE a.unit_id = ?1 AND a.released_at IS NULL
         ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1"
    );
    let raw = conn.query_row(&sql, [unit_id], raw_assignment).optional()?;
    raw.map(assignment_from).transpose()
}

/// Every active assignment of a unit, oldest first (two or more only after a sync conflict).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn active_assignments_of_unit(
    conn: &Connection,
    unit_id: &str,
) -> Result<Vec<AssignmentRow>, StoreError> {
    let sql = format!(
        "{ASSIGNMENT_SELECT} WHERE a.unit_id = ?1 AND a.released_at IS NULL
         ORDER BY a.assigned_at, a.id"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let raws = st
        .query_map([unit_id], raw_assignment)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(assignment_from).collect()
}

/// An incident's timeline, oldest first (ties in insertion order).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn timeline(conn: &Connection, incident_id: Uuid) -> Result<Vec<TimelineRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, incident_id, at, user, event FROM timeline
         WHERE incident_id = ?1 ORDER BY at, n",
    )?;
    let raws = st
        .query_map([incident_id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|(id, incident, at, user, event)| {
            Ok(TimelineRow {
                id,
                incident_id: uuid("timeline.incident_id", &incident)?,
                at: time("timeline.at", at)?,
                user,
                event: serde_json::from_str::<TimelineEvent>(&event)?,
            })
        })
        .collect()
}

/// Every facility, stations first, then posts, then checkpoints; by id within a kind.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn facilities(conn: &Connection) -> Result<Vec<Facility>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, kind, name_zh, name_en, lat, lon FROM facilities
         ORDER BY CASE kind WHEN 'station' THEN 0 WHEN 'post' THEN 1 ELSE 2 END, id",
    )?;
    let raws = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, f64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|(id, kind, name_zh, name_en, lat, lon)| {
            Ok(Facility {
                id,
                kind: enum_parse("facilities.kind", &kind)?,
                name_zh,
                name_en,
                position: LatLon { lat, lon },
            })
        })
        .collect()
}

/// A unit's track: its fixes with fix time at or after `since`, oldest first.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn track(
    conn: &Connection,
    unit_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Fix>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT fix_time, lat, lon, heading_deg, speed_mps, accuracy_m FROM positions
         WHERE unit_id = ?1 AND fix_time >= ?2 ORDER BY fix_time",
    )?;
    let raws = st
        .query_map(params![unit_id, since.timestamp_millis()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<Vec<RawFix>, _>>()?;
    raws.into_iter().map(fix_from).collect()
}

/// The next incident number for a local date `yyyymmdd`: `"{yyyymmdd}-{NNNN}"`, one more than
/// the highest number already used that day (from 0001).
///
/// # Errors
/// SQLite errors.
pub fn next_incident_number(conn: &Connection, yyyymmdd: &str) -> Result<String, StoreError> {
    let max: Option<i64> = conn.query_row(
        "SELECT MAX(CAST(substr(number, length(?1) + 2) AS INTEGER)) FROM incidents
         WHERE number LIKE ?1 || '-%'",
        [yyyymmdd],
        |r| r.get(0),
    )?;
    Ok(format!("{yyyymmdd}-{:04}", max.unwrap_or(0) + 1))
}

/// Outbox entries in a status, lane order then seq (the order they are pushed in),
/// at most `limit`.
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn outbox(
    conn: &Connection,
    status: OutboxStatus,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT seq, lane, kind, hlc_wall_ms, hlc_logical, envelope, created_at, status
         FROM outbox WHERE status = ?1
         ORDER BY CASE lane WHEN 'critical' THEN 0 WHEN 'notes' THEN 1 ELSE 2 END, seq
         LIMIT ?2",
    )?;
    let raws = st
        .query_map(
            params![status.text(), i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(
            |(seq, lane, kind, wall_ms, logical, env, created, status)| {
                Ok(OutboxRow {
                    seq: sql_u64(seq),
                    lane: enum_parse("outbox.lane", &lane)?,
                    kind,
                    hlc: Hlc { wall_ms, logical },
                    envelope: serde_json::from_str(&env)?,
                    created_at: time("outbox.created_at", created)?,
                    status: OutboxStatus::parse(&status)?,
                })
            },
        )
        .collect()
}

/// Every outbox entry in seq order (for tests and diagnostics).
///
/// # Errors
/// SQLite errors, unreadable values.
pub fn outbox_all(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let mut rows = Vec::new();
    for s in [
        OutboxStatus::Pending,
        OutboxStatus::Acked,
        OutboxStatus::Parked,
    ] {
        rows.extend(outbox(conn, s, usize::MAX)?);
    }
    rows.sort_by_key(|r| r.seq);
    Ok(rows)
}

/// Number of entries with each status: (pending, acked, parked).
///
/// # Errors
/// SQLite errors.
pub fn outbox_counts(conn: &Connection) -> Result<(u64, u64, u64), StoreError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'acked'), 0),
                COALESCE(SUM(status = 'parked'), 0) FROM outbox",
        [],
        |r| Ok((sql_u64(r.get(0)?), sql_u64(r.get(1)?), sql_u64(r.get(2)?))),
    )?)
}

/// Marks an outbox entry with a new status (and a reason when parked).
///
/// # Errors
/// SQLite errors.
pub fn set_outbox_status(
    conn: &Connection,
    seq: u64,
    status: OutboxStatus,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET status = ?2, reason = ?3 WHERE seq = ?1",
        params![u64_sql(seq), status.text(), reason],
    )? == 1)
}
