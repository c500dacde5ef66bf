//! The single place where ops change state: local actions (through [`crate::Store::write`])
//! and, later, remote ops pulled from the server go through [`apply`].
//!
//! `apply` records what an op says; it does not judge whether a person was allowed to do it
//! (the app checks the domain rules before writing a local op; the sync merge rules decide
//! for remote ops). It is idempotent per op: the `applied_ops` ledger is checked first, so
//! re-applying an op changes nothing.
//!
//! The time of every change is the op's HLC wall time (UTC milliseconds), so every replica
//! that applies the same op records the same instant.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use outpost_domain::op::{OpBody, OpEnvelope, Release};
use outpost_domain::unit::UnitStatus;

use crate::StoreError;
use crate::sql::enum_text;
use crate::timeline::TimelineEvent;

/// Applies one op to the state tables (incidents, units, assignments, timeline, positions,
/// facilities) inside the caller's transaction.
///
/// # Errors
/// [`StoreError::Missing`] when the op refers to an incident, unit or assignment that does
/// not exist; SQLite errors.
pub fn apply(conn: &Connection, op: &OpEnvelope) -> Result<(), StoreError> {
    let at = op.hlc.wall_ms;
    let user = op.user.as_str();
    let op_id = op.op_id.to_string();
    // The ledger of applied ops makes `apply` idempotent for every kind at once: a re-sent
    // or re-pulled op is recognised here, before any branch can bump a version or a time.
    let fresh = conn.execute(
        "INSERT OR IGNORE INTO applied_ops(op_id) VALUES (?1)",
        [&op_id],
    )? == 1;
    if !fresh {
        return Ok(());
    }
    match &op.body {
        OpBody::IncidentCreate {
            incident_id,
            number,
            incident_type,
            priority,
            location,
            address,
            description,
        } => {
            let inserted = conn.execute(
                "INSERT INTO incidents(id, number, incident_type, priority, lat, lon, address,
                                       description, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO NOTHING",
                params![
                    incident_id.to_string(),
                    number,
                    enum_text(incident_type)?,
                    enum_text(priority)?,
                    location.lat,
                    location.lon,
                    address,
                    description,
                    at,
                    user,
                ],
            )?;
            if inserted == 1 {
                timeline(
                    conn,
                    &op_id,
                    *incident_id,
                    at,
                    user,
                    &TimelineEvent::Created {
                        incident_type: *incident_type,
                        priority: *priority,
                        address: address.clone(),
                    },
                )?;
            }
        }
        OpBody::IncidentSetFields {
            incident_id,
            fields,
        } => {
            let type_text = fields.incident_type.as_ref().map(enum_text).transpose()?;
            let prio_text = fields.priority.as_ref().map(enum_text).transpose()?;
            let changed = conn.execute(
                "UPDATE incidents SET
                    incident_type = COALESCE(?2, incident_type), v_type = v_type + (?2 IS NOT NULL),
                    priority = COALESCE(?3, priority), v_priority = v_priority + (?3 IS NOT NULL),
                    lat = COALESCE(?4, lat), lon = COALESCE(?5, lon),
                    v_location = v_location + (?4 IS NOT NULL),
                    address = COALESCE(?6, address), v_address = v_address + (?6 IS NOT NULL),
                    description = COALESCE(?7, description),
                    v_description = v_description + (?7 IS NOT NULL)
                 WHERE id = ?1",
                params![
                    incident_id.to_string(),
                    type_text,
                    prio_text,
                    fields.location.map(|l| l.lat),
                    fields.location.map(|l| l.lon),
                    fields.address,
                    fields.description,
                ],
            )?;
            require(changed, "incident", incident_id)?;
            timeline(
                conn,
                &op_id,
                *incident_id,
                at,
                user,
                &TimelineEvent::FieldsChanged {
                    fields: fields.clone(),
                },
            )?;
        }
        OpBody::IncidentAcknowledge { incident_id } => {
            let changed = conn.execute(
                "UPDATE incidents SET acknowledged = 1 WHERE id = ?1",
                params![incident_id.to_string()],
            )?;
            require(changed, "incident", incident_id)?;
            timeline(
                conn,
                &op_id,
                *incident_id,
                at,
                user,
                &TimelineEvent::Acknowledged,
            )?;
        }
        OpBody::IncidentClose {
            incident_id,
            disposition,
            summary,
            releases,
        } => {
            let id = incident_id.to_string();
            let exists: Option<i64> = conn
                .query_row("SELECT 1 FROM incidents WHERE id = ?1", [&id], |r| r.get(0))
                .optional()?;
            require(usize::from(exists.is_some()), "incident", incident_id)?;
            conn.execute(
                "UPDATE incidents SET closed_at = ?2, closed_by = ?3, disposition = ?4,
                        summary = ?5, v_status = v_status + 1
                 WHERE id = ?1 AND closed_at IS NULL",
                params![id, at, user, enum_text(disposition)?, summary],
            )?;
            apply_releases(conn, releases, at, user)?;
            timeline(
                conn,
                &op_id,
                *incident_id,
                at,
                user,
                &TimelineEvent::Closed {
                    disposition: *disposition,
                    summary: summary.clone(),
                },
            )?;
        }
        OpBody::UnitSetStatus {
            unit_id,
            to,
            releases,
            ..
        } => {
            let callsign = callsign(conn, unit_id)?;
            let active = active_assignments_of_unit(conn, unit_id)?;
            for (n, (_, incident_id)) in active.iter().enumerate() {
                let entry = if n == 0 {
                    op_id.clone()
                } else {
                    format!("{op_id}+{n}")
                };
                let incident = crate::sql::uuid("assignments.incident_id", incident_id)?;
                timeline(
                    conn,
                    &entry,
                    incident,
                    at,
                    user,
                    &TimelineEvent::UnitStatus {
                        unit_id: unit_id.clone(),
                        callsign: callsign.clone(),
                        to: *to,
                    },
                )?;
            }
            apply_releases(conn, releases, at, user)?;
            set_unit_status(conn, unit_id, *to, at)?;
        }
        OpBody::AssignmentAdd {
            assignment_id,
            incident_id,
            unit_id,
        } => {
            let callsign = callsign(conn, unit_id)?;
            let iid = incident_id.to_string();
            let exists: Option<i64> = conn
                .query_row("SELECT 1 FROM incidents WHERE id = ?1", [&iid], |r| {
                    r.get(0)
                })
                .optional()?;
            require(usize::from(exists.is_some()), "incident", incident_id)?;
            let inserted = conn.execute(
                "INSERT INTO assignments(id, incident_id, unit_id, assigned_at, assigned_by)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO NOTHING",
                params![assignment_id.to_string(), iid, unit_id, at, user],
            )?;
            if inserted == 1 {
                set_unit_status(conn, unit_id, UnitStatus::Dispatched, at)?;
                timeline(
                    conn,
                    &op_id,
                    *incident_id,
                    at,
                    user,
                    &TimelineEvent::UnitAssigned {
                        unit_id: unit_id.clone(),
                        callsign,
                    },
                )?;
            }
        }
        OpBody::AssignmentRelease {
            assignment_id,
            incident_id,
            unit_id,
            unit_to,
        } => {
            let callsign = callsign(conn, unit_id)?;
            let released = release(conn, &assignment_id.to_string(), at, user)?;
            if released && let Some(to) = unit_to {
                set_unit_status(conn, unit_id, *to, at)?;
            }
            if released {
                timeline(
                    conn,
                    &op_id,
                    *incident_id,
                    at,
                    user,
                    &TimelineEvent::UnitReleased {
                        unit_id: unit_id.clone(),
                        callsign,
                    },
                )?;
            }
        }
        OpBody::TimelineAppend {
            entry_id,
            incident_id,
            text,
        } => {
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM incidents WHERE id = ?1",
                    [incident_id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            require(usize::from(exists.is_some()), "incident", incident_id)?;
            timeline(
                conn,
                &entry_id.to_string(),
                *incident_id,
                at,
                user,
                &TimelineEvent::Note { text: text.clone() },
            )?;
        }
        OpBody::PositionReport { unit_id, fix } => {
            callsign(conn, unit_id)?;
            let t = fix.fix_time.timestamp_millis();
            conn.execute(
                "INSERT INTO positions(unit_id, fix_time, lat, lon, heading_deg, speed_mps,
                                       accuracy_m, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(unit_id, fix_time) DO NOTHING",
                params![
                    unit_id,
                    t,
                    fix.position.lat,
                    fix.position.lon,
                    fix.heading_deg,
                    fix.speed_mps,
                    fix.accuracy_m,
                    at
                ],
            )?;
            // SYNC.md principle 9: the newest fix time wins; a late older fix never moves
            // the latest position back.
            conn.execute(
                "INSERT INTO unit_positions(unit_id, fix_time, lat, lon, heading_deg, speed_mps,
                                            accuracy_m)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(unit_id) DO UPDATE SET
                    fix_time = excluded.fix_time, lat = excluded.lat, lon = excluded.lon,
                    heading_deg = excluded.heading_deg, speed_mps = excluded.speed_mps,
                    accuracy_m = excluded.accuracy_m
                 WHERE excluded.fix_time > unit_positions.fix_time",
                params![
                    unit_id,
                    t,
                    fix.position.lat,
                    fix.position.lon,
                    fix.heading_deg,
                    fix.speed_mps,
                    fix.accuracy_m
                ],
            )?;
        }
        OpBody::UnitRegister {
            unit_id,
            callsign,
            unit_kind,
            home_station,
        } => {
            conn.execute(
                "INSERT INTO units(id, callsign, kind, home_station, status, status_since)
                 VALUES (?1, ?2, ?3, ?4, 'available', ?5)
                 ON CONFLICT(id) DO UPDATE SET callsign = excluded.callsign,
                    kind = excluded.kind, home_station = excluded.home_station",
                params![unit_id, callsign, enum_text(unit_kind)?, home_station, at],
            )?;
        }
        OpBody::ConflictResolve {
            conflict_id,
            releases,
            note,
        } => {
            apply_releases(conn, releases, at, user)?;
            if let Some(incident_id) = outpost_domain::merge::incident_of(&op.body) {
                timeline(
                    conn,
                    &op_id,
                    incident_id,
                    at,
                    user,
                    &TimelineEvent::ConflictResolved {
                        conflict_id: conflict_id.clone(),
                        note: note.clone(),
                    },
                )?;
            }
        }
        OpBody::FacilityRegister { facility } => {
            conn.execute(
                "INSERT INTO facilities(id, kind, name_zh, name_en, lat, lon, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name_zh = excluded.name_zh,
                    name_en = excluded.name_en, lat = excluded.lat, lon = excluded.lon,
                    updated_at = excluded.updated_at",
                params![
                    facility.id,
                    enum_text(&facility.kind)?,
                    facility.name_zh,
                    facility.name_en,
                    facility.position.lat,
                    facility.position.lon,
                    at
                ],
            )?;
        }
    }
    Ok(())
}

fn require(changed: usize, what: &'static str, id: &Uuid) -> Result<(), StoreError> {
    if changed == 0 {
        return Err(StoreError::Missing {
            what,
            id: id.to_string(),
        });
    }
    Ok(())
}

fn callsign(conn: &Connection, unit_id: &str) -> Result<String, StoreError> {
    conn.query_row("SELECT callsign FROM units WHERE id = ?1", [unit_id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::Missing {
        what: "unit",
        id: unit_id.to_string(),
    })
}

fn timeline(
    conn: &Connection,
    id: &str,
    incident_id: Uuid,
    at: i64,
    user: &str,
    event: &TimelineEvent,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO timeline(id, incident_id, at, user, event) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO NOTHING",
        params![
            id,
            incident_id.to_string(),
            at,
            user,
            serde_json::to_string(event)?
        ],
    )?;
    Ok(())
}

fn set_unit_status(
    conn: &Connection,
    unit_id: &str,
    to: UnitStatus,
    at: i64,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE units SET status = ?2, status_since = ?3, status_version = status_version + 1
         WHERE id = ?1",
        params![unit_id, enum_text(&to)?, at],
    )?;
    if changed == 0 {
        return Err(StoreError::Missing {
            what: "unit",
            id: unit_id.to_string(),
        });
    }
    Ok(())
}

/// (assignment id, incident id) of the active assignments of a unit.
fn active_assignments_of_unit(
    conn: &Connection,
    unit_id: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, incident_id FROM assignments
         WHERE unit_id = ?1 AND released_at IS NULL ORDER BY assigned_at, id",
    )?;
    let rows = st.query_map([unit_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ends the assignments an op names; a release with `unit_to` sets that unit's status.
fn apply_releases(
    conn: &Connection,
    releases: &[Release],
    at: i64,
    user: &str,
) -> Result<(), StoreError> {
    for r in releases {
        let released = release(conn, &r.assignment_id.to_string(), at, user)?;
        if released && let Some(to) = r.unit_to {
            set_unit_status(conn, &r.unit_id, to, at)?;
        }
    }
    Ok(())
}

/// Ends an assignment. Returns whether it was active.
fn release(conn: &Connection, assignment_id: &str, at: i64, user: &str) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE assignments SET released_at = ?2, released_by = ?3
         WHERE id = ?1 AND released_at IS NULL",
        params![assignment_id, at, user],
    )?;
    Ok(changed == 1)
}
