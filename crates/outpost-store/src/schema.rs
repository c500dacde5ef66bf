//! The schema as append-only migrations (rusqlite_migration; `PRAGMA user_version` holds the
//! number applied). Never edit a migration that has shipped: append a new one.
//!
//! Times are INTEGER milliseconds since 1970-01-01T00:00:00Z (UTC). Positions are WGS-84
//! degrees. Enums are stored as their serde wire names (`"en_route"`, `"P1"`).

use rusqlite_migration::{M, Migrations};

/// Migration 1: roster, incidents, assignments, timeline, positions, settings.
const M1_STATE: &str = r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE facilities (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name_zh    TEXT NOT NULL,
    name_en    TEXT NOT NULL,
    lat        REAL NOT NULL,
    lon        REAL NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE units (
    id             TEXT PRIMARY KEY,
    callsign       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    home_station   TEXT,
    status         TEXT NOT NULL,
    status_since   INTEGER NOT NULL,
    -- local per-field version of status (bumped on every change; sync uses it later)
    status_version INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    number        TEXT NOT NULL,
    incident_type TEXT NOT NULL,
    priority      TEXT NOT NULL,
    lat           REAL NOT NULL,
    lon           REAL NOT NULL,
    address       TEXT NOT NULL,
    description   TEXT NOT NULL,
    acknowledged  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    closed_at     INTEGER,
    closed_by     TEXT,
    disposition   TEXT,
    summary       TEXT,
    -- per-field register versions (SYNC.md principle 5), bumped on every write
    v_type        INTEGER NOT NULL DEFAULT 1,
    v_priority    INTEGER NOT NULL DEFAULT 1,
    v_location    INTEGER NOT NULL DEFAULT 1,
    v_address     INTEGER NOT NULL DEFAULT 1,
    v_description INTEGER NOT NULL DEFAULT 1,
    v_status      INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX incidents_number ON incidents(number);
CREATE INDEX incidents_open ON incidents(closed_at, priority, created_at);

CREATE TABLE assignments (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    unit_id     TEXT NOT NULL REFERENCES units(id),
    assigned_at INTEGER NOT NULL,
    assigned_by TEXT NOT NULL,
    released_at INTEGER,
    released_by TEXT
) STRICT;
CREATE INDEX assignments_incident ON assignments(incident_id);
CREATE INDEX assignments_unit_active ON assignments(unit_id) WHERE released_at IS NULL;

-- Immutable: one row per op that touched an incident, never updated.
CREATE TABLE timeline (
    n           INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    at          INTEGER NOT NULL,
    user        TEXT NOT NULL,
    event       TEXT NOT NULL
) STRICT;
CREATE INDEX timeline_incident ON timeline(incident_id, at, n);

-- Track history: every fix ever reported, keyed by the device's fix time.
CREATE TABLE positions (
    unit_id     TEXT NOT NULL REFERENCES units(id),
    fix_time    INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    heading_deg REAL,
    speed_mps   REAL,
    accuracy_m  REAL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (unit_id, fix_time)
) STRICT;

-- Latest fix per unit: the newest fix_time wins; an older fix never replaces it.
CREATE TABLE unit_positions (
    unit_id     TEXT PRIMARY KEY REFERENCES units(id),
    fix_time    INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    heading_deg REAL,
    speed_mps   REAL,
    accuracy_m  REAL
) STRICT;
"#;

/// Migration 2: this installation's identity, its clocks and the outbox of sync ops.
const M2_OUTBOX: &str = r#"
CREATE TABLE origin (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    origin_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    hlc_wall_ms INTEGER NOT NULL DEFAULT 0,
    hlc_logical INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    op_id       TEXT NOT NULL UNIQUE,
    origin      TEXT NOT NULL,
    lane        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    hlc_wall_ms INTEGER NOT NULL,
    hlc_logical INTEGER NOT NULL,
    envelope    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'acked', 'parked')),
    reason      TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox(status, lane, seq);
"#;

/// Migration 3: the ledger of applied op ids, so applying any op twice changes nothing.
/// Ops already in the outbox were applied when they were written.
const M3_APPLIED_OPS: &str = r#"
CREATE TABLE applied_ops (
    op_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
INSERT INTO applied_ops(op_id) SELECT op_id FROM outbox;
"#;

/// Migration 4: gap-free per-lane sequence numbers (`OpEnvelope::lane_seq`): one counter per
/// lane, and the number of each outbox entry. Existing entries are numbered in seq order.
const M4_LANE_SEQ: &str = r#"
CREATE TABLE lane_seqs (
    lane     TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) STRICT;
ALTER TABLE outbox ADD COLUMN lane_seq INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET lane_seq = (SELECT COUNT(*) FROM outbox o
                              WHERE o.lane = outbox.lane AND o.seq <= outbox.seq);
INSERT INTO lane_seqs(lane, last_seq) SELECT lane, MAX(lane_seq) FROM outbox GROUP BY lane;
CREATE UNIQUE INDEX outbox_lane_seq ON outbox(lane, lane_seq);
"#;

/// Migration 5: the merge rules (`outpost_domain::merge`) and the client side of sync.
///
/// - `ops` replaces `applied_ops`: the ledger of every op this replica has seen, with its
///   envelope, the server's `gseq` once known, and whether it is applied or parked (refused
///   by the server: not part of the state; the state is rebuilt without it).
/// - `reg_writes`: every register write of every op (entity, register, op, JSON value); the
///   value shown is the merge winner, recomputed from these rows.
/// - `releases`: every (assignment, releasing op); an assignment is active while it has none.
/// - `assignments.op_id`: the `assignment.add` that made it (causality of timeline entries).
/// - `sync_state`: server epoch, pull cursor, the newest `base_version` written.
/// - `deferred_ops`: pulled ops this build cannot read (newer schema); kept, not applied.
/// - `snapshot_fixes`: fixes of compacted position reports loaded from a server snapshot.
/// - `outbox.gseq` / `outbox.acked_at` (ms since the Unix epoch, UTC).
const M5_MERGE: &str = r#"
UPDATE outbox SET envelope = json_set(envelope, '$.lane_seq', lane_seq)
 WHERE json_type(envelope, '$.lane_seq') IS NULL;
ALTER TABLE outbox ADD COLUMN gseq INTEGER;
ALTER TABLE outbox ADD COLUMN acked_at INTEGER;

CREATE TABLE ops (
    op_id       TEXT PRIMARY KEY,
    origin      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    gseq        INTEGER,
    base        INTEGER NOT NULL,
    hlc_wall_ms INTEGER NOT NULL,
    hlc_logical INTEGER NOT NULL,
    user        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    incident_id TEXT,
    envelope    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'parked')),
    reason      TEXT
) STRICT;
CREATE INDEX ops_gseq ON ops(gseq);
CREATE INDEX ops_incident ON ops(incident_id, kind) WHERE incident_id IS NOT NULL;
INSERT INTO ops(op_id, origin, seq, gseq, base, hlc_wall_ms, hlc_logical, user, kind,
                incident_id, envelope, state, reason)
SELECT op_id, origin, seq, NULL, COALESCE(json_extract(envelope, '$.base_version'), 0),
       hlc_wall_ms, hlc_logical, COALESCE(json_extract(envelope, '$.user'), ''), kind,
       json_extract(envelope, '$.body.incident_id'), envelope,
       CASE status WHEN 'parked' THEN 'parked' ELSE 'applied' END, reason
  FROM outbox;
DROP TABLE applied_ops;

ALTER TABLE assignments ADD COLUMN op_id TEXT;
UPDATE assignments SET op_id = (
    SELECT op_id FROM ops WHERE kind = 'assignment.add'
       AND json_extract(envelope, '$.body.assignment_id') = assignments.id);

CREATE TABLE reg_writes (
    entity   TEXT NOT NULL,
    register TEXT NOT NULL,
    op_id    TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (entity, register, op_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX reg_writes_critical ON reg_writes(register, entity);

CREATE TABLE releases (
    assignment_id TEXT NOT NULL,
    op_id         TEXT NOT NULL,
    PRIMARY KEY (assignment_id, op_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE sync_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    epoch     TEXT,
    cursor    INTEGER NOT NULL DEFAULT 0,
    last_base INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO sync_state(singleton) VALUES (1);

CREATE TABLE deferred_ops (
    op_key TEXT PRIMARY KEY,
    gseq   INTEGER,
    raw    TEXT NOT NULL,
    reason TEXT NOT NULL
) STRICT;

CREATE TABLE snapshot_fixes (
    unit_id     TEXT NOT NULL,
    fix_time    INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    heading_deg REAL,
    speed_mps   REAL,
    accuracy_m  REAL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (unit_id, fix_time)
) STRICT;
"#;

/// Migration 6: conflict detection reads ops by kind (closes, resolutions) on every status
/// poll; without this index that is a scan of every op, positions included.
const M6_OPS_KIND: &str = r#"
CREATE INDEX ops_kind ON ops(kind, state);
"#;

/// Migration 7: position-reporting devices (issue 4).
///
/// - `device_bindings`: the shown binding of each device, derived from its
///   `Register::DeviceBinding` writes (the merge winner): the unit (NULL when the winning
///   write unbinds it), and the winner's HLC wall time (ms, UTC) and user.
/// - `device_fixes`: each `device.report`'s fix once, keyed (device, fix time ms); the
///   report's source, name and battery (percent) with it; `received_at` = the op's HLC wall
///   time (ms, UTC). Two reports with one fix time: the tie rule of `apply` keeps one.
/// - `devices`: the unbound-device registry, derived from `device_fixes`: the newest fix (by
///   fix time) with its source and battery, the newest name given, first seen (the earliest
///   `received_at`), and the number of fixes kept.
const M7_DEVICES: &str = r#"
CREATE TABLE device_bindings (
    device_id TEXT PRIMARY KEY,
    unit_id   TEXT,
    bound_at  INTEGER NOT NULL,
    bound_by  TEXT NOT NULL
) STRICT;
CREATE INDEX device_bindings_unit ON device_bindings(unit_id) WHERE unit_id IS NOT NULL;

CREATE TABLE device_fixes (
    device_id   TEXT NOT NULL,
    fix_time    INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    heading_deg REAL,
    speed_mps   REAL,
    accuracy_m  REAL,
    battery_pct REAL,
    source      TEXT NOT NULL,
    name        TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, fix_time)
) STRICT;
-- The registry row is kept from these without scanning a device's fixes: its first
-- arrival, its newest named fix.
CREATE INDEX device_fixes_arrival ON device_fixes(device_id, received_at);
CREATE INDEX device_fixes_named ON device_fixes(device_id, fix_time) WHERE name IS NOT NULL;

CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    name        TEXT,
    first_seen  INTEGER NOT NULL,
    fix_time    INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    heading_deg REAL,
    speed_mps   REAL,
    accuracy_m  REAL,
    battery_pct REAL,
    reports     INTEGER NOT NULL
) STRICT;
CREATE INDEX devices_newest ON devices(fix_time);
"#;

/// Migration 8: road closures (issue 5).
///
/// - `road_closures`: the shown value of each closure, derived from its
///   `Register::RoadClosure` writes: `value` is the winning
///   `outpost_domain::road_closure::RoadClosure` as JSON text (a lifted or ended closure
///   stays, with `lifted` / `ends_at` saying so), `set_by` the winning op's user and `set_at`
///   its HLC wall time (ms since the Unix epoch, UTC). Lifting is final: once any applied
///   write lifted the closure it is shown lifted, `set_by`/`set_at` from the earliest lift in
///   merge order (see `apply::project_road_closure`).
const M8_ROAD_CLOSURES: &str = r#"
CREATE TABLE road_closures (
    closure_id TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    set_by     TEXT NOT NULL,
    set_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX road_closures_set_at ON road_closures(set_at);
"#;

/// Migration 9: a unit's assignments, released ones too (the merge rules read a unit's whole
/// assignment history when applying a status change; the partial index of migration 1 only
/// covers active assignments).
const M9_ASSIGNMENTS_UNIT: &str = r#"
CREATE INDEX IF NOT EXISTS assignments_unit ON assignments(unit_id);
"#;

/// Every migration this build knows, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(all())
}

/// The migration list itself (tests build older databases from a prefix of it).
pub(crate) fn all() -> Vec<M<'static>> {
    vec![
        M::up(M1_STATE).comment("state tables"),
        M::up(M2_OUTBOX).comment("origin and outbox"),
        M::up(M3_APPLIED_OPS).comment("applied-ops ledger"),
        M::up(M4_LANE_SEQ).comment("lane sequence numbers"),
        M::up(M5_MERGE).comment("merge rules and sync state"),
        M::up(M6_OPS_KIND).comment("ops by kind"),
        M::up(M7_DEVICES).comment("devices, bindings and device fixes"),
        M::up(M8_ROAD_CLOSURES).comment("road closures"),
        M::up(M9_ASSIGNMENTS_UNIT).comment("assignments by unit"),
    ]
}

/// The schema version this build migrates to (the number of migrations).
pub fn latest_version() -> i64 {
    all().len() as i64
}
