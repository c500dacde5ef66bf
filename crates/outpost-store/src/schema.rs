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
    ]
}

/// The schema version this build migrates to (the number of migrations).
pub fn latest_version() -> i64 {
    all().len() as i64
}
