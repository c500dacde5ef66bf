//! The single place where ops change state: local actions (through [`crate::Store::write`]),
//! ops pulled from the server, and the server's own replica all go through
//! [`apply_with_gseq`] (or [`apply`], without a `gseq`).
//!
//! The state is a pure function of the *set* of applied ops and each op's server `gseq`
//! (the merge rules of [`outpost_domain::merge`]), whatever order they were applied in:
//! - every op is recorded in the ledger (`ops`: envelope, metadata, `gseq`, applied/parked);
//!   an op already there is not applied again (only a newly learnt `gseq` is recorded);
//! - every register write ([`merge::writes_of`]) is kept in `reg_writes`; the value shown in
//!   `incidents` / `units` / `facilities` is recomputed from them as the [`merge::winner`];
//! - every release ([`merge::releases_of`]) is kept in `releases`; an assignment is active
//!   while no applied op releases it (a release may be applied before its assignment);
//! - timeline entries, positions and acknowledgements are sets keyed by id. The entries of
//!   a status change go to the incidents its author saw the unit on: those it releases, or
//!   the unit's assignments in its causal past ([`merge::happened_before`]). That needs the
//!   ops applied in an order that respects causality — server order (`gseq`) with this
//!   replica's own ops in `seq` order, which is how every replica applies them.
//! - positions: the history keeps each fix once by (unit, fix time); the latest position is
//!   the newest fix time, so a late older fix never moves the marker back (SYNC.md
//!   principle 9). Device reports likewise: each fix once by (device, fix time), and the
//!   registry row (`devices`) derived from them; a device's binding is a register
//!   (`device_bindings` shows its winner); so is a road closure (`road_closures` shows the
//!   winning `RoadClosure`, but lifted — by its earliest lift — once any applied write
//!   lifted it: lifting is final, [`project_road_closure`]).
//!
//! `apply` records what an op says; it does not judge whether a person was allowed to do it
//! (the app checks the domain rules before writing a local op; the server refuses invalid
//! ops). The time of every change is the op's HLC wall time (UTC milliseconds), so every
//! replica that applies the same op records the same instant.
//!
//! [`rebuild`] recomputes every state table from the ledger (used when the server parks an op
//! this replica had already applied: the console un-applies it).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use uuid::Uuid;

use outpost_domain::merge::{self, OpMeta, Register};
use outpost_domain::op::{Hlc, OpBody, OpEnvelope};
use outpost_domain::unit::UnitStatus;

use crate::StoreError;
use crate::sql::{enum_text, sql_u64, u64_sql};
use crate::timeline::TimelineEvent;

/// Applies one op (without a known `gseq`) inside the caller's transaction. See
/// [`apply_with_gseq`].
///
/// # Errors
/// As [`apply_with_gseq`].
pub fn apply(conn: &Connection, op: &OpEnvelope) -> Result<(), StoreError> {
    apply_with_gseq(conn, op, None).map(|_| ())
}

/// Applies one op inside the caller's transaction, with the server's global sequence number
/// when known (pulled ops, the server's replica). Idempotent: an op already in the ledger
/// changes nothing, except that a `gseq` it did not have yet is recorded (on the ledger and,
/// for this replica's own ops, on the outbox). The op's effects are all-or-nothing: when it
/// is refused (an error other than [`StoreError::Sqlite`]) nothing of it is left in the
/// transaction (a savepoint; a position report is checked before its first write instead).
/// After a database error ([`StoreError::Sqlite`]) the caller must abort the transaction.
///
/// Returns true when the op was new here.
///
/// # Errors
/// [`StoreError::Missing`] when the op refers to an incident or unit that does not exist
/// here; SQLite and JSON errors.
pub fn apply_with_gseq(
    conn: &Connection,
    op: &OpEnvelope,
    gseq: Option<u64>,
) -> Result<bool, StoreError> {
    let op_id = op.op_id.to_string();
    let known: Option<Option<i64>> = conn
        .prepare_cached("SELECT gseq FROM ops WHERE op_id = ?1")?
        .query_row([&op_id], |r| r.get(0))
        .optional()?;
    if let Some(stored) = known {
        if let Some(g) = gseq
            && stored != Some(u64_sql(g))
        {
            record_gseq(conn, op.op_id, g)?;
        }
        return Ok(false);
    }
    if let OpBody::PositionReport { unit_id, fix } = &op.body {
        // The most frequent op (every console applies every unit's every fix), without the
        // savepoint's two statements: everything that can refuse a fix is checked before its
        // first write (the unit exists, the envelope serialises), so a refused fix leaves
        // nothing. Only a database error can come after a write.
        callsign(conn, unit_id)?;
        let envelope = serde_json::to_string(op)?;
        insert_ledger_json(conn, op, gseq, &envelope)?;
        position_effects(conn, unit_id, fix, op.hlc.wall_ms)?;
        return Ok(true);
    }
    // Cached: this runs once per op (a server push of positions applies thousands).
    conn.prepare_cached("SAVEPOINT apply_op")?.execute([])?;
    let result = insert_ledger(conn, op, gseq).and_then(|()| effects(conn, op));
    match result {
        Ok(()) => {
            conn.prepare_cached("RELEASE apply_op")?.execute([])?;
            Ok(true)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO apply_op; RELEASE apply_op")?;
            Err(e)
        }
    }
}

/// Records the server's `gseq` of an op already in the ledger (and on the outbox when it is
/// this replica's own op). Returns whether the op is in the ledger.
///
/// # Errors
/// SQLite errors.
pub fn record_gseq(conn: &Connection, op_id: Uuid, gseq: u64) -> Result<bool, StoreError> {
    let id = op_id.to_string();
    let n = conn
        .prepare_cached("UPDATE ops SET gseq = ?2 WHERE op_id = ?1")?
        .execute(params![id, u64_sql(gseq)])?;
    conn.prepare_cached("UPDATE outbox SET gseq = ?2 WHERE op_id = ?1")?
        .execute(params![id, u64_sql(gseq)])?;
    Ok(n == 1)
}

/// Adds an op to the ledger as applied, without its effects (the caller rebuilds).
pub(crate) fn insert_ledger(
    conn: &Connection,
    op: &OpEnvelope,
    gseq: Option<u64>,
) -> Result<(), StoreError> {
    insert_ledger_json(conn, op, gseq, &serde_json::to_string(op)?)
}

/// [`insert_ledger`] with the op's envelope JSON already serialised (`envelope`).
fn insert_ledger_json(
    conn: &Connection,
    op: &OpEnvelope,
    gseq: Option<u64>,
    envelope: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ops(op_id, origin, seq, gseq, base, hlc_wall_ms, hlc_logical, user, kind,
                         incident_id, envelope, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'applied')",
    )?
    .execute(params![
        op.op_id.to_string(),
        op.origin.to_string(),
        u64_sql(op.seq),
        gseq.map(u64_sql),
        u64_sql(op.base_version.unwrap_or(0)),
        op.hlc.wall_ms,
        op.hlc.logical,
        op.user,
        op.body.kind(),
        merge::incident_of(&op.body).map(|i| i.to_string()),
        envelope,
    ])?;
    Ok(())
}

/// The `reason` of a ledger op that [`rebuild`] could not replay (its incident or unit was
/// missing at that point); it stays `applied` in the ledger without effects until the next
/// rebuild finds what it needs.
pub(crate) const SKIPPED_PREFIX: &str = "skipped: ";

/// The tie rule for two fixes of one unit with the same fix time (ms): the row with the
/// greater `(lat, lon, heading_deg, speed_mps, accuracy_m, received_at)` tuple is kept, a
/// missing value counting below any number. It depends only on the fixes, so every replica
/// (and a snapshot's compacted fixes) ends with the same row whatever the arrival order.
/// SQL for an upsert into `positions` (or `snapshot_fixes`): `excluded` wins when true.
pub(crate) const FIX_TIE_WINS: &str = "(excluded.lat, excluded.lon,
        COALESCE(excluded.heading_deg, -9e999), COALESCE(excluded.speed_mps, -9e999),
        COALESCE(excluded.accuracy_m, -9e999), excluded.received_at)
    > (lat, lon, COALESCE(heading_deg, -9e999), COALESCE(speed_mps, -9e999),
        COALESCE(accuracy_m, -9e999), received_at)";

/// The upsert of one fix into `positions` (built once: every position op runs it).
static POSITION_UPSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO positions(unit_id, fix_time, lat, lon, heading_deg, speed_mps,
                               accuracy_m, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(unit_id, fix_time) DO UPDATE SET {FIX_TIE_SET}
         WHERE {FIX_TIE_WINS}"
    )
});

/// The `SET` list of the [`FIX_TIE_WINS`] upsert.
pub(crate) const FIX_TIE_SET: &str = "lat = excluded.lat, lon = excluded.lon,
    heading_deg = excluded.heading_deg, speed_mps = excluded.speed_mps,
    accuracy_m = excluded.accuracy_m, received_at = excluded.received_at";

/// The tie rule for two reports of one device with the same fix time (ms), as
/// [`FIX_TIE_WINS`] with the report's fields added: the row with the greater `(lat, lon,
/// heading_deg, speed_mps, accuracy_m, battery_pct, source, name, received_at)` tuple is kept,
/// a missing number counting below any number and a missing name below any name (text
/// compared byte-wise). SQL for the upsert into `device_fixes`: `excluded` wins when true.
pub(crate) const DEVICE_FIX_TIE_WINS: &str = "(excluded.lat, excluded.lon,
        COALESCE(excluded.heading_deg, -9e999), COALESCE(excluded.speed_mps, -9e999),
        COALESCE(excluded.accuracy_m, -9e999), COALESCE(excluded.battery_pct, -9e999),
        excluded.source, excluded.name IS NOT NULL, COALESCE(excluded.name, ''),
        excluded.received_at)
    > (lat, lon, COALESCE(heading_deg, -9e999), COALESCE(speed_mps, -9e999),
        COALESCE(accuracy_m, -9e999), COALESCE(battery_pct, -9e999),
        source, name IS NOT NULL, COALESCE(name, ''), received_at)";

/// Keeps a `device.report`'s fix in `device_fixes` (each fix once, [`DEVICE_FIX_TIE_WINS`]
/// between two at one fix time) and recomputes the device's registry row. `at` is the op's
/// HLC wall time (ms, UTC), kept as `received_at`.
fn device_report(
    conn: &Connection,
    report: &outpost_domain::device::DeviceReport,
    at: i64,
) -> Result<(), StoreError> {
    let fix = &report.fix;
    let fix_ms = fix.fix_time.timestamp_millis();
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM device_fixes WHERE device_id = ?1 AND fix_time = ?2")?
        .query_row(params![report.device_id, fix_ms], |r| r.get(0))
        .optional()?;
    conn.execute(
        &format!(
            "INSERT INTO device_fixes(device_id, fix_time, lat, lon, heading_deg, speed_mps,
                                      accuracy_m, battery_pct, source, name, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(device_id, fix_time) DO UPDATE SET
                lat = excluded.lat, lon = excluded.lon, heading_deg = excluded.heading_deg,
                speed_mps = excluded.speed_mps, accuracy_m = excluded.accuracy_m,
                battery_pct = excluded.battery_pct, source = excluded.source,
                name = excluded.name, received_at = excluded.received_at
             WHERE {DEVICE_FIX_TIE_WINS}"
        ),
        params![
            report.device_id,
            fix_ms,
            fix.position.lat,
            fix.position.lon,
            fix.heading_deg,
            fix.speed_mps,
            fix.accuracy_m,
            report.battery_pct,
            report.source.as_str(),
            report.name,
            at
        ],
    )?;
    project_device(conn, &report.device_id, known.is_none())
}

/// Recomputes a device's registry row from its kept fixes: the newest fix (by fix time) with
/// its source and battery, the name of the newest fix that has one, the earliest
/// `received_at` as first seen, the number of fixes. Each is an index lookup except the
/// count, which goes up by one when `added` (a new fix time; fixes are only ever added, and
/// [`rebuild`] replays every report), so a report costs the same after a day of reports.
fn project_device(conn: &Connection, device_id: &str, added: bool) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE devices SET (source, name, first_seen, fix_time, lat, lon, heading_deg,
                             speed_mps, accuracy_m, battery_pct, reports) =
            (SELECT f.source,
                    (SELECT n.name FROM device_fixes n WHERE n.device_id = f.device_id
                       AND n.name IS NOT NULL ORDER BY n.fix_time DESC LIMIT 1),
                    (SELECT MIN(received_at) FROM device_fixes a
                      WHERE a.device_id = f.device_id),
                    f.fix_time, f.lat, f.lon, f.heading_deg, f.speed_mps, f.accuracy_m,
                    f.battery_pct, devices.reports + ?2
               FROM device_fixes f WHERE f.device_id = ?1 ORDER BY f.fix_time DESC LIMIT 1)
         WHERE device_id = ?1",
        )?
        .execute(params![device_id, i64::from(added)])?;
    if updated > 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO devices(device_id, source, name, first_seen, fix_time, lat, lon,
                             heading_deg, speed_mps, accuracy_m, battery_pct, reports)
         SELECT f.device_id, f.source,
                (SELECT n.name FROM device_fixes n WHERE n.device_id = f.device_id
                   AND n.name IS NOT NULL ORDER BY n.fix_time DESC LIMIT 1),
                (SELECT MIN(received_at) FROM device_fixes a WHERE a.device_id = f.device_id),
                f.fix_time, f.lat, f.lon, f.heading_deg, f.speed_mps, f.accuracy_m,
                f.battery_pct,
                (SELECT COUNT(*) FROM device_fixes c WHERE c.device_id = f.device_id)
           FROM device_fixes f WHERE f.device_id = ?1 ORDER BY f.fix_time DESC LIMIT 1
         ON CONFLICT(device_id) DO UPDATE SET
            source = excluded.source, name = excluded.name, first_seen = excluded.first_seen,
            fix_time = excluded.fix_time, lat = excluded.lat, lon = excluded.lon,
            heading_deg = excluded.heading_deg, speed_mps = excluded.speed_mps,
            accuracy_m = excluded.accuracy_m, battery_pct = excluded.battery_pct,
            reports = excluded.reports",
    )?
    .execute([device_id])?;
    Ok(())
}

/// Recomputes every state table from the ledger's applied ops (parked ops left out), plus
/// the fixes of a loaded snapshot, inside the caller's transaction. Ops are replayed in
/// server order (`gseq`), then this replica's unacknowledged ops in `seq` order; an op whose
/// incident or unit no longer exists (it depended on a parked op) is skipped — the server
/// parks it too. Returns the number of ops skipped.
///
/// # Errors
/// SQLite and JSON errors.
pub fn rebuild(conn: &Connection) -> Result<usize, StoreError> {
    conn.execute_batch(
        "DELETE FROM timeline; DELETE FROM assignments; DELETE FROM unit_positions;
         DELETE FROM positions; DELETE FROM incidents; DELETE FROM units;
         DELETE FROM facilities; DELETE FROM reg_writes; DELETE FROM releases;
         DELETE FROM device_bindings; DELETE FROM devices; DELETE FROM device_fixes;
         DELETE FROM road_closures;
         UPDATE ops SET reason = NULL WHERE state = 'applied' AND reason IS NOT NULL;",
    )?;
    let envelopes: Vec<String> = {
        let mut st = conn.prepare(
            "SELECT envelope FROM ops WHERE state = 'applied'
             ORDER BY gseq IS NULL, gseq, seq, op_id",
        )?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut skipped = 0;
    for text in envelopes {
        let op: OpEnvelope = serde_json::from_str(&text)?;
        conn.execute_batch("SAVEPOINT replay_op")?;
        match effects(conn, &op) {
            Ok(()) => conn.execute_batch("RELEASE replay_op")?,
            Err(e @ StoreError::Missing { .. }) => {
                conn.execute_batch("ROLLBACK TO replay_op; RELEASE replay_op")?;
                // Still in the ledger, without effects: marked, so that it is replayed when
                // the server's answer or a pull shows it applies (`SKIPPED` in sync.rs).
                conn.prepare_cached("UPDATE ops SET reason = ?2 WHERE op_id = ?1")?
                    .execute(params![
                        op.op_id.to_string(),
                        format!("{SKIPPED_PREFIX}{e}")
                    ])?;
                skipped += 1;
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK TO replay_op; RELEASE replay_op")?;
                return Err(e);
            }
        }
    }
    conn.execute_batch(&format!(
        "INSERT INTO positions(unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m,
                               received_at)
         SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m, received_at
           FROM snapshot_fixes WHERE unit_id IN (SELECT id FROM units)
         ON CONFLICT(unit_id, fix_time) DO UPDATE SET {FIX_TIE_SET} WHERE {FIX_TIE_WINS};
         INSERT INTO unit_positions(unit_id, fix_time, lat, lon, heading_deg, speed_mps,
                                    accuracy_m)
         SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m
           FROM positions p
          WHERE fix_time = (SELECT MAX(fix_time) FROM positions q WHERE q.unit_id = p.unit_id)
         ON CONFLICT(unit_id) DO UPDATE SET
            fix_time = excluded.fix_time, lat = excluded.lat, lon = excluded.lon,
            heading_deg = excluded.heading_deg, speed_mps = excluded.speed_mps,
            accuracy_m = excluded.accuracy_m;"
    ))?;
    Ok(skipped)
}

/// Fills `reg_writes` and `releases` from the ledger without touching the state tables
/// (after upgrading a database written before the merge rules existed).
pub(crate) fn backfill_indexes(conn: &Connection) -> Result<(), StoreError> {
    let envelopes: Vec<String> = {
        let mut st = conn.prepare("SELECT envelope FROM ops WHERE state = 'applied'")?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for text in envelopes {
        let Ok(op) = serde_json::from_str::<OpEnvelope>(&text) else {
            continue;
        };
        record_writes(conn, &op)?;
    }
    Ok(())
}

/// A fix's effect: its row in the history (`positions`, [`FIX_TIE_WINS`] on a tie) and the
/// unit's latest position (`unit_positions`). `at` is the op's HLC wall time (ms), stored as
/// the row's `received_at`. The unit must exist (checked by the caller).
fn position_effects(
    conn: &Connection,
    unit_id: &str,
    fix: &outpost_domain::op::Fix,
    at: i64,
) -> Result<(), StoreError> {
    let t = fix.fix_time.timestamp_millis();
    // Two different fixes of one unit at the same instant: FIX_TIE_WINS decides,
    // whatever order they arrive in (every replica keeps the same one).
    conn.prepare_cached(&POSITION_UPSERT)?.execute(params![
        unit_id,
        t,
        fix.position.lat,
        fix.position.lon,
        fix.heading_deg,
        fix.speed_mps,
        fix.accuracy_m,
        at
    ])?;
    // SYNC.md principle 9: the latest position is the fix with the newest fix time
    // (a late older fix never moves it back), as kept in the history.
    conn.prepare_cached(
        "INSERT INTO unit_positions(unit_id, fix_time, lat, lon, heading_deg, speed_mps,
                                    accuracy_m)
         SELECT unit_id, fix_time, lat, lon, heading_deg, speed_mps, accuracy_m
           FROM positions WHERE unit_id = ?1 ORDER BY fix_time DESC LIMIT 1
         ON CONFLICT(unit_id) DO UPDATE SET
            fix_time = excluded.fix_time, lat = excluded.lat, lon = excluded.lon,
            heading_deg = excluded.heading_deg, speed_mps = excluded.speed_mps,
            accuracy_m = excluded.accuracy_m",
    )?
    .execute(params![unit_id])?;
    Ok(())
}

/// The op's effect on the state tables (the ledger row already exists).
fn effects(conn: &Connection, op: &OpEnvelope) -> Result<(), StoreError> {
    let at = op.hlc.wall_ms;
    let user = op.user.as_str();
    let op_id = op.op_id.to_string();
    match &op.body {
        OpBody::DeviceBind { unit_id, .. } => {
            // A binding names a unit this replica has (the server parks one that does not);
            // unbinding needs nothing. The shown binding is projected from the register.
            if let Some(u) = unit_id {
                callsign(conn, u)?;
            }
        }
        OpBody::DeviceReport { report } => device_report(conn, report, at)?,
        OpBody::IncidentCreate {
            incident_id,
            number,
            incident_type,
            priority,
            location,
            address,
            description,
        } => {
            conn.prepare_cached(
                "INSERT INTO incidents(id, number, incident_type, priority, lat, lon, address,
                                       description, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO NOTHING",
            )?
            .execute(params![
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
            ])?;
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
        OpBody::IncidentSetFields {
            incident_id,
            fields,
        } => {
            require_incident(conn, incident_id)?;
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
            require_incident(conn, incident_id)?;
            conn.prepare_cached("UPDATE incidents SET acknowledged = 1 WHERE id = ?1")?
                .execute(params![incident_id.to_string()])?;
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
            ..
        } => {
            require_incident(conn, incident_id)?;
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
            // The incidents the unit was on as its author saw it: those it releases, or (for
            // a change between committed statuses) its assignments in the op's causal past.
            let incidents: Vec<Uuid> = if releases.is_empty() {
                active_at_author(conn, unit_id, &OpMeta::of(op, None))?
            } else {
                releases.iter().map(|r| r.incident_id).collect()
            };
            for (n, incident) in incidents.into_iter().enumerate() {
                if incident_exists(conn, &incident)? {
                    timeline(
                        conn,
                        &extra_id(&op_id, n),
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
            }
        }
        OpBody::AssignmentAdd {
            assignment_id,
            incident_id,
            unit_id,
        } => {
            let callsign = callsign(conn, unit_id)?;
            require_incident(conn, incident_id)?;
            conn.prepare_cached(
                "INSERT INTO assignments(id, incident_id, unit_id, assigned_at, assigned_by, op_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
            )?
            .execute(params![
                assignment_id.to_string(),
                incident_id.to_string(),
                unit_id,
                at,
                user,
                op_id
            ])?;
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
        OpBody::AssignmentRelease {
            incident_id,
            unit_id,
            ..
        } => {
            let callsign = callsign(conn, unit_id)?;
            if incident_exists(conn, incident_id)? {
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
            require_incident(conn, incident_id)?;
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
            position_effects(conn, unit_id, fix, at)?;
        }
        OpBody::ConflictResolve {
            conflict_id, note, ..
        } => {
            if let Some(incident_id) = merge::incident_of(&op.body)
                && incident_exists(conn, &incident_id)?
            {
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
        OpBody::UnitRegister { .. }
        | OpBody::FacilityRegister { .. }
        | OpBody::RoadClosureSet { .. } => {}
    }
    let touched = record_writes(conn, op)?;
    for (entity, register) in touched.registers {
        match register {
            Register::UnitStatus => project_unit_status(conn, &entity)?,
            Register::UnitRoster => project_unit_roster(conn, &entity)?,
            Register::Facility => project_facility(conn, &entity)?,
            Register::DeviceBinding => project_device_binding(conn, &entity)?,
            Register::RoadClosure => project_road_closure(conn, &entity)?,
            _ => project_incident(conn, &entity)?,
        }
    }
    if let OpBody::IncidentCreate { incident_id, .. } = &op.body {
        project_incident(conn, &incident_id.to_string())?;
    }
    if let OpBody::AssignmentAdd { assignment_id, .. } = &op.body {
        project_assignment(conn, &assignment_id.to_string())?;
    }
    for assignment in touched.assignments {
        project_assignment(conn, &assignment)?;
    }
    Ok(())
}

/// What [`record_writes`] touched.
struct Touched {
    /// (entity, register) pairs written.
    registers: std::collections::BTreeSet<(String, Register)>,
    /// Assignment ids released.
    assignments: std::collections::BTreeSet<String>,
}

/// Stores the op's register writes and releases. One op writing one register twice keeps
/// its last value.
fn record_writes(conn: &Connection, op: &OpEnvelope) -> Result<Touched, StoreError> {
    let op_id = op.op_id.to_string();
    let mut own: BTreeMap<(String, Register), Value> = BTreeMap::new();
    for w in merge::writes_of(&op.body) {
        own.insert((w.entity, w.register), w.value);
    }
    for ((entity, register), value) in &own {
        conn.prepare_cached(
            "INSERT INTO reg_writes(entity, register, op_id, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(entity, register, op_id) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![
            entity,
            register.name(),
            op_id,
            serde_json::to_string(value)?
        ])?;
    }
    let mut assignments = std::collections::BTreeSet::new();
    for r in merge::releases_of(&op.body) {
        let id = r.assignment_id.to_string();
        conn.prepare_cached(
            "INSERT INTO releases(assignment_id, op_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, op_id])?;
        assignments.insert(id);
    }
    Ok(Touched {
        registers: own.into_keys().collect(),
        assignments,
    })
}

/// One stored register write with the metadata of its op.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWrite {
    /// The op's metadata (with its `gseq` when known).
    pub meta: OpMeta,
    /// Who wrote it.
    pub user: String,
    /// The op kind, e.g. `"incident.set_fields"`.
    pub kind: String,
    /// The value written (see [`merge::Write::value`]).
    pub value: Value,
}

/// The ledger columns [`meta_row`] reads, from `ops o`.
pub(crate) const META_COLS: &str =
    "o.op_id, o.origin, o.seq, o.gseq, o.base, o.hlc_wall_ms, o.hlc_logical, o.user, o.kind";

/// Reads [`META_COLS`] (columns 0..9): metadata, user, kind.
pub(crate) fn meta_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OpMeta, String, String)> {
    let op_id: String = r.get(0)?;
    let origin: String = r.get(1)?;
    let parse = |i: usize, t: &str| {
        Uuid::parse_str(t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok((
        OpMeta {
            op_id: parse(0, &op_id)?,
            origin: parse(1, &origin)?,
            seq: sql_u64(r.get(2)?),
            gseq: r.get::<_, Option<i64>>(3)?.map(sql_u64),
            base: sql_u64(r.get(4)?),
            hlc: Hlc {
                wall_ms: r.get(5)?,
                logical: r.get(6)?,
            },
        },
        r.get(7)?,
        r.get(8)?,
    ))
}

/// Every applied write to one register of one entity, in ledger order.
///
/// # Errors
/// SQLite and JSON errors.
pub fn register_writes(
    conn: &Connection,
    entity: &str,
    register: Register,
) -> Result<Vec<StoredWrite>, StoreError> {
    let sql = format!(
        "SELECT {META_COLS}, w.value FROM reg_writes w JOIN ops o ON o.op_id = w.op_id
         WHERE w.entity = ?1 AND w.register = ?2 AND o.state = 'applied'
         ORDER BY o.hlc_wall_ms, o.hlc_logical, o.origin, o.op_id"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st
        .query_map(params![entity, register.name()], |r| {
            Ok((meta_row(r)?, r.get::<_, String>(9)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|((meta, user, kind), value)| {
            Ok(StoredWrite {
                meta,
                user,
                kind,
                value: serde_json::from_str(&value)?,
            })
        })
        .collect()
}

/// The winning write of a register ([`merge::winner`]: the greatest
/// [`OpMeta::order_key`], ties to the greatest op id, as the last of the ledger order), if
/// any. Only the winning row is read and decoded: SQLite orders by the same key (`base`,
/// then the HLC, then the origin; ids are lowercase hyphenated UUIDs, whose text order is
/// their byte order).
///
/// # Errors
/// SQLite and JSON errors.
pub fn register_winner(
    conn: &Connection,
    entity: &str,
    register: Register,
) -> Result<Option<StoredWrite>, StoreError> {
    let sql = format!(
        "SELECT {META_COLS}, w.value FROM reg_writes w JOIN ops o ON o.op_id = w.op_id
         WHERE w.entity = ?1 AND w.register = ?2 AND o.state = 'applied'
         ORDER BY o.base DESC, o.hlc_wall_ms DESC, o.hlc_logical DESC, o.origin DESC,
                  o.op_id DESC
         LIMIT 1"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let row = st
        .query_row(params![entity, register.name()], |r| {
            Ok((meta_row(r)?, r.get::<_, String>(9)?))
        })
        .optional()?;
    row.map(|((meta, user, kind), value)| {
        Ok(StoredWrite {
            meta,
            user,
            kind,
            value: serde_json::from_str(&value)?,
        })
    })
    .transpose()
}

/// The applied ops releasing an assignment, earliest first in register order.
fn release_ops(
    conn: &Connection,
    assignment_id: &str,
) -> Result<Vec<(OpMeta, String)>, StoreError> {
    let sql = format!(
        "SELECT {META_COLS} FROM releases r JOIN ops o ON o.op_id = r.op_id
         WHERE r.assignment_id = ?1 AND o.state = 'applied'"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st
        .query_map([assignment_id], |r| {
            let (m, user, _) = meta_row(r)?;
            Ok((m, user))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.sort_by_key(|(m, _)| m.order_key());
    Ok(rows)
}

/// The incident ids of a unit's assignments that `op`'s author saw active: added by an op in
/// `op`'s causal past and not released by one. Sorted by assignment id.
///
/// One query: the releases in `op`'s causal past ([`merge::happened_before`]: same origin
/// and a lower `seq`, or another origin's op with a `gseq` at or below `op`'s base) are
/// ruled out in SQL, so a unit's long history of released assignments costs an index probe
/// each, not a query and a decode each.
fn active_at_author(
    conn: &Connection,
    unit_id: &str,
    op: &OpMeta,
) -> Result<Vec<Uuid>, StoreError> {
    let sql = format!(
        "SELECT {META_COLS}, a.id, a.incident_id FROM assignments a JOIN ops o ON o.op_id = a.op_id
         WHERE a.unit_id = ?1 AND o.state = 'applied'
           AND NOT EXISTS (
             SELECT 1 FROM releases r JOIN ops ro ON ro.op_id = r.op_id
             WHERE r.assignment_id = a.id AND ro.state = 'applied' AND ro.op_id <> ?2
               AND ((ro.origin = ?3 AND ro.seq < ?4)
                    OR (ro.origin <> ?3 AND ro.gseq IS NOT NULL AND ro.gseq <= ?5)))
         ORDER BY a.id"
    );
    let rows: Vec<(OpMeta, String)> = {
        let mut st = conn.prepare_cached(&sql)?;
        st.query_map(
            params![
                unit_id,
                op.op_id.to_string(),
                op.origin.to_string(),
                crate::sql::u64_sql(op.seq),
                crate::sql::u64_sql(op.base),
            ],
            |r| Ok((meta_row(r)?.0, r.get(10)?)),
        )?
        .collect::<Result<_, _>>()?
    };
    rows.into_iter()
        .filter(|(add, _)| merge::happened_before(add, op))
        .map(|(_, incident)| crate::sql::uuid("assignments.incident_id", &incident))
        .collect()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Shows an incident's register winners in its row (no-op until the incident exists).
fn project_incident(conn: &Connection, id: &str) -> Result<(), StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM incidents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Ok(());
    }
    for (register, column) in [
        (Register::IncidentType, "incident_type"),
        (Register::Priority, "priority"),
        (Register::Address, "address"),
        (Register::Description, "description"),
    ] {
        if let Some(w) = register_winner(conn, id, register)? {
            conn.execute(
                &format!("UPDATE incidents SET {column} = ?2 WHERE id = ?1 AND {column} IS NOT ?2"),
                params![id, text_of(&w.value)],
            )?;
        }
    }
    if let Some(w) = register_winner(conn, id, Register::Location)? {
        let lat = w.value.get("lat").and_then(Value::as_f64);
        let lon = w.value.get("lon").and_then(Value::as_f64);
        if let (Some(lat), Some(lon)) = (lat, lon) {
            conn.prepare_cached("UPDATE incidents SET lat = ?2, lon = ?3 WHERE id = ?1")?
                .execute(params![id, lat, lon])?;
        }
    }
    match register_winner(conn, id, Register::Closure)? {
        Some(w) => {
            let disposition = w.value.get("disposition").map(text_of);
            let summary = w.value.get("summary").map(text_of);
            conn.prepare_cached(
                "UPDATE incidents SET closed_at = ?2, closed_by = ?3, disposition = ?4,
                        summary = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id,
                w.meta.hlc.wall_ms,
                w.user,
                disposition,
                summary
            ])?;
        }
        None => {
            conn.prepare_cached(
                "UPDATE incidents SET closed_at = NULL, closed_by = NULL, disposition = NULL,
                        summary = NULL WHERE id = ?1",
            )?
            .execute([id])?;
        }
    }
    Ok(())
}

/// Shows a unit's roster winner (creating the unit row on its first registration) and then
/// its status.
fn project_unit_roster(conn: &Connection, unit_id: &str) -> Result<(), StoreError> {
    let Some(w) = register_winner(conn, unit_id, Register::UnitRoster)? else {
        return Ok(());
    };
    let callsign = w.value.get("callsign").map(text_of).unwrap_or_default();
    let kind = w.value.get("unit_kind").map(text_of).unwrap_or_default();
    let home = w.value.get("home_station").and_then(Value::as_str);
    conn.prepare_cached(
        "INSERT INTO units(id, callsign, kind, home_station, status, status_since)
         VALUES (?1, ?2, ?3, ?4, 'available', ?5)
         ON CONFLICT(id) DO UPDATE SET callsign = excluded.callsign,
            kind = excluded.kind, home_station = excluded.home_station",
    )?
    .execute(params![unit_id, callsign, kind, home, w.meta.hlc.wall_ms])?;
    project_unit_status(conn, unit_id)
}

/// Shows a unit's status winner; `available` since the unit's first registration when no
/// status was ever written. The local `status_version` goes up when the status changes.
fn project_unit_status(conn: &Connection, unit_id: &str) -> Result<(), StoreError> {
    let (status, since) = match register_winner(conn, unit_id, Register::UnitStatus)? {
        Some(w) => (text_of(&w.value), w.meta.hlc.wall_ms),
        None => {
            let roster = register_writes(conn, unit_id, Register::UnitRoster)?;
            let Some(first) = roster.iter().min_by_key(|w| w.meta.order_key()) else {
                return Ok(());
            };
            (enum_text(&UnitStatus::Available)?, first.meta.hlc.wall_ms)
        }
    };
    conn.prepare_cached(
        "UPDATE units SET status = ?2, status_since = ?3, status_version = status_version + 1
         WHERE id = ?1 AND (status IS NOT ?2 OR status_since IS NOT ?3)",
    )?
    .execute(params![unit_id, status, since])?;
    Ok(())
}

/// Shows a facility's winner.
fn project_facility(conn: &Connection, id: &str) -> Result<(), StoreError> {
    let Some(w) = register_winner(conn, id, Register::Facility)? else {
        return Ok(());
    };
    let f = &w.value;
    let num = |p: &str| f.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    conn.prepare_cached(
        "INSERT INTO facilities(id, kind, name_zh, name_en, lat, lon, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name_zh = excluded.name_zh,
            name_en = excluded.name_en, lat = excluded.lat, lon = excluded.lon,
            updated_at = excluded.updated_at",
    )?
    .execute(params![
        id,
        f.get("kind").map(text_of).unwrap_or_default(),
        f.get("name_zh").map(text_of).unwrap_or_default(),
        f.get("name_en").map(text_of).unwrap_or_default(),
        num("/position/lat"),
        num("/position/lon"),
        w.meta.hlc.wall_ms
    ])?;
    Ok(())
}

/// Shows a device's binding winner: its unit, or NULL when the winning write unbinds it.
fn project_device_binding(conn: &Connection, device_id: &str) -> Result<(), StoreError> {
    let Some(w) = register_winner(conn, device_id, Register::DeviceBinding)? else {
        conn.prepare_cached("DELETE FROM device_bindings WHERE device_id = ?1")?
            .execute([device_id])?;
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO device_bindings(device_id, unit_id, bound_at, bound_by)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(device_id) DO UPDATE SET unit_id = excluded.unit_id,
            bound_at = excluded.bound_at, bound_by = excluded.bound_by",
    )?
    .execute(params![
        device_id,
        w.value.as_str(),
        w.meta.hlc.wall_ms,
        w.user
    ])?;
    Ok(())
}

/// Shows a road closure: the register winner's whole `RoadClosure` value as JSON text, with
/// the winning op's user and HLC wall time (ms, UTC), except that lifting is final: when
/// ANY applied write of the closure has `lifted: true`, the row shows the winner's value
/// with `lifted = true`, and `set_by`/`set_at` are those of the earliest lift write in
/// merge order (the least [`OpMeta::order_key`]). So an edit made without seeing a
/// concurrent lift never reactivates the closure, and every replica shows the same row
/// whatever order the writes arrived in (the rule of `outpost_domain::road_closure`; the
/// reference model in `outpost-check` applies it independently). No row while the closure
/// has no applied write (its only write was parked).
pub(crate) fn project_road_closure(conn: &Connection, closure_id: &str) -> Result<(), StoreError> {
    let writes = register_writes(conn, closure_id, Register::RoadClosure)?;
    let metas: Vec<OpMeta> = writes.iter().map(|w| w.meta).collect();
    let Some(w) = merge::winner(&metas).and_then(|best| writes.iter().find(|w| w.meta == best))
    else {
        conn.prepare_cached("DELETE FROM road_closures WHERE closure_id = ?1")?
            .execute([closure_id])?;
        return Ok(());
    };
    let first_lift = writes
        .iter()
        .filter(|x| x.value.get("lifted") == Some(&Value::Bool(true)))
        .min_by_key(|x| x.meta.order_key());
    let mut value = w.value.clone();
    let (set_by, set_at) = match first_lift {
        Some(lift) => {
            if let Some(obj) = value.as_object_mut() {
                obj.insert("lifted".into(), Value::Bool(true));
            }
            (lift.user.as_str(), lift.meta.hlc.wall_ms)
        }
        None => (w.user.as_str(), w.meta.hlc.wall_ms),
    };
    conn.prepare_cached(
        "INSERT INTO road_closures(closure_id, value, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(closure_id) DO UPDATE SET value = excluded.value,
            set_by = excluded.set_by, set_at = excluded.set_at",
    )?
    .execute(params![
        closure_id,
        serde_json::to_string(&value)?,
        set_by,
        set_at
    ])?;
    Ok(())
}

/// Shows every road closure that has register writes (after upgrading a database from
/// before `road_closures` existed, whose ledger may already hold `road_closure.set` ops).
pub(crate) fn project_all_road_closures(conn: &Connection) -> Result<(), StoreError> {
    let ids: Vec<String> = {
        let mut st = conn.prepare(
            "SELECT DISTINCT entity FROM reg_writes WHERE register = ?1 ORDER BY entity",
        )?;
        st.query_map([Register::RoadClosure.name()], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in ids {
        project_road_closure(conn, &id)?;
    }
    Ok(())
}

/// Shows whether an assignment is released: by its first releasing op in register order.
fn project_assignment(conn: &Connection, assignment_id: &str) -> Result<(), StoreError> {
    let first = release_ops(conn, assignment_id)?.into_iter().next();
    conn.prepare_cached("UPDATE assignments SET released_at = ?2, released_by = ?3 WHERE id = ?1")?
        .execute(params![
            assignment_id,
            first.as_ref().map(|(m, _)| m.hlc.wall_ms),
            first.map(|(_, u)| u)
        ])?;
    Ok(())
}

/// `{op_id}` for an op's first timeline entry, `{op_id}+{n}` for the others.
fn extra_id(op_id: &str, n: usize) -> String {
    if n == 0 {
        op_id.to_string()
    } else {
        format!("{op_id}+{n}")
    }
}

fn incident_exists(conn: &Connection, id: &Uuid) -> Result<bool, StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM incidents WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(exists.is_some())
}

fn require_incident(conn: &Connection, id: &Uuid) -> Result<(), StoreError> {
    if incident_exists(conn, id)? {
        Ok(())
    } else {
        Err(StoreError::Missing {
            what: "incident",
            id: id.to_string(),
        })
    }
}

fn callsign(conn: &Connection, unit_id: &str) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT callsign FROM units WHERE id = ?1")?
        .query_row([unit_id], |r| r.get(0))
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
    conn.prepare_cached(
        "INSERT INTO timeline(id, incident_id, at, user, event) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO NOTHING",
    )?
    .execute(params![
        id,
        incident_id.to_string(),
        at,
        user,
        serde_json::to_string(event)?
    ])?;
    Ok(())
}
