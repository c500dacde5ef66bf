//! Store tests on in-memory SQLite: every apply path and every query.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use outpost_domain::facility::{Facility, FacilityKind};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentStatus, IncidentType, Priority};
use outpost_domain::merge::Register;
use outpost_domain::op::{Fix, IncidentFields, Lane, OpBody, Release};
use outpost_domain::unit::{UnitKind, UnitStatus};

use crate::query::{self, OutboxStatus};
use crate::timeline::TimelineEvent;
use crate::{Store, StoreError};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::seconds(secs)
}

fn store() -> Store {
    Store::open_in_memory(t(0)).expect("open in-memory store")
}

fn write(s: &mut Store, at: i64, body: OpBody) -> outpost_domain::op::OpEnvelope {
    s.write::<StoreError, _>(t(at), "cmdr.li", |_| Ok(body))
        .expect("write op")
}

fn register_unit(s: &mut Store, at: i64, id: &str, callsign: &str) {
    write(
        s,
        at,
        OpBody::UnitRegister {
            unit_id: id.into(),
            callsign: callsign.into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: Some("stn-centre".into()),
        },
    );
}

fn create_incident(s: &mut Store, at: i64, priority: Priority, number: &str) -> Uuid {
    let id = Uuid::now_v7();
    write(
        s,
        at,
        OpBody::IncidentCreate {
            incident_id: id,
            number: number.into(),
            incident_type: IncidentType::Theft,
            priority,
            location: LatLon {
                lat: 42.5063,
                lon: 1.5218,
            },
            address: "Avinguda Meritxell, Andorra la Vella".into(),
            description: "bag snatched".into(),
        },
    );
    id
}

fn assign(s: &mut Store, at: i64, incident: Uuid, unit: &str) -> Uuid {
    let id = Uuid::now_v7();
    write(
        s,
        at,
        OpBody::AssignmentAdd {
            assignment_id: id,
            incident_id: incident,
            unit_id: unit.into(),
        },
    );
    id
}

/// Releases of every active assignment of `unit`, each leaving the unit at `unit_to`.
fn active_releases(s: &Store, unit: &str, unit_to: Option<UnitStatus>) -> Vec<Release> {
    query::active_assignments_of_unit(s.conn(), unit)
        .expect("active")
        .into_iter()
        .map(|a| Release {
            assignment_id: a.id,
            incident_id: a.incident_id,
            unit_id: a.unit_id,
            unit_to,
        })
        .collect()
}

fn fix(at: i64, lat: f64) -> Fix {
    Fix {
        position: LatLon { lat, lon: 1.52 },
        fix_time: t(at),
        heading_deg: Some(90.0),
        speed_mps: Some(12.5),
        accuracy_m: Some(5.0),
    }
}

#[test]
fn open_creates_origin_and_schema() {
    let s = store();
    let o = query::origin(s.conn()).expect("query").expect("origin row");
    assert_eq!(o.id, s.origin_id());
    assert_eq!(o.id.get_version_num(), 7);
    assert_eq!(o.last_seq, 0);
    let v: i64 = s
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(v, crate::schema::latest_version());
    let fk: i64 = s
        .conn()
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .expect("fk");
    assert_eq!(fk, 1);
}

#[test]
fn file_store_is_wal_and_keeps_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    let first = Store::open(&path, t(0)).expect("open").origin_id();
    let s = Store::open(&path, t(10)).expect("reopen");
    assert_eq!(s.origin_id(), first);
    let mode: String = s
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

#[test]
fn newer_schema_is_refused_naming_file_and_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    drop(Store::open(&path, t(0)).expect("open"));
    {
        let c = rusqlite::Connection::open(&path).expect("raw open");
        c.pragma_update(None, "user_version", 99).expect("bump");
    }
    let err = Store::open(&path, t(0)).expect_err("must refuse");
    let known = crate::schema::latest_version();
    match &err {
        StoreError::TooNew {
            found, known: k, ..
        } => {
            assert_eq!(*found, 99);
            assert_eq!(*k, known);
        }
        other => panic!("wrong error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("outpost.db"), "{msg}");
    assert!(msg.contains("99"), "{msg}");
    assert!(msg.contains(&format!("version {known}")), "{msg}");
}

#[test]
fn older_schema_is_upgraded_keeping_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    {
        let mut c = rusqlite::Connection::open(&path).expect("raw open");
        let mut first = crate::schema::all();
        first.truncate(1);
        rusqlite_migration::Migrations::new(first)
            .to_latest(&mut c)
            .expect("migrate to v1");
        c.execute(
            "INSERT INTO settings(key, value) VALUES ('theme', 'night')",
            [],
        )
        .expect("insert");
    }
    let s = Store::open(&path, t(0)).expect("upgrade");
    assert_eq!(s.setting("theme").expect("read").as_deref(), Some("night"));
    assert!(query::origin(s.conn()).expect("origin").is_some());
}

#[test]
fn not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    std::fs::write(&path, b"this is not sqlite, just some text padding it out....................................................................")
        .expect("write");
    let err = Store::open(&path, t(0)).expect_err("must fail");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("outpost.db"));
}

#[test]
fn outbox_has_gap_free_seq_lanes_and_monotonic_hlc() {
    let mut s = store();
    register_unit(&mut s, 1, "u-01", "东胜01");
    let inc = create_incident(&mut s, 2, Priority::P2, "20261129-0001");
    write(
        &mut s,
        3,
        OpBody::TimelineAppend {
            entry_id: Uuid::now_v7(),
            incident_id: inc,
            text: "caller on scene".into(),
        },
    );
    write(
        &mut s,
        2, // wall clock went back: the HLC must not
        OpBody::PositionReport {
            unit_id: "u-01".into(),
            fix: fix(2, 42.5),
        },
    );
    let rows = query::outbox_all(s.conn()).expect("outbox");
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        vec![
            "unit.register",
            "incident.create",
            "timeline.append",
            "position.report"
        ]
    );
    assert_eq!(
        rows.iter().map(|r| r.lane).collect::<Vec<_>>(),
        vec![Lane::Critical, Lane::Critical, Lane::Notes, Lane::Positions]
    );
    for w in rows.windows(2) {
        assert!(w[0].hlc < w[1].hlc, "{:?} !< {:?}", w[0].hlc, w[1].hlc);
    }
    assert_eq!(rows[3].hlc.wall_ms, t(3).timestamp_millis());
    assert_eq!(rows[3].hlc.logical, 1);
    for r in &rows {
        assert_eq!(r.envelope.origin, s.origin_id());
        assert_eq!(r.envelope.seq, r.seq);
        assert_eq!(r.envelope.user, "cmdr.li");
        assert_eq!(r.envelope.schema, outpost_domain::op::SCHEMA_VERSION);
        assert_eq!(r.status, OutboxStatus::Pending);
    }
    let o = query::origin(s.conn()).expect("q").expect("origin");
    assert_eq!(o.last_seq, 4);
    // Pending order is by lane, then seq.
    let pending = query::outbox(s.conn(), OutboxStatus::Pending, 10).expect("pending");
    assert_eq!(
        pending.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(query::outbox_counts(s.conn()).expect("counts"), (4, 0, 0));
    assert!(query::set_outbox_status(s.conn(), 1, OutboxStatus::Acked, None).expect("ack"));
    assert!(
        query::set_outbox_status(s.conn(), 2, OutboxStatus::Parked, Some("bad")).expect("park")
    );
    assert_eq!(query::outbox_counts(s.conn()).expect("counts"), (2, 1, 1));
    assert_eq!(
        query::outbox(s.conn(), OutboxStatus::Parked, 10).expect("parked")[0].seq,
        2
    );
}

#[test]
fn a_refused_action_writes_nothing() {
    let mut s = store();
    let err = s
        .write::<StoreError, _>(t(1), "cmdr.li", |_| {
            Err(StoreError::Missing {
                what: "unit",
                id: "u-99".into(),
            })
        })
        .expect_err("refused");
    assert!(matches!(err, StoreError::Missing { .. }));
    assert!(query::outbox_all(s.conn()).expect("outbox").is_empty());
    assert_eq!(query::origin(s.conn()).expect("q").expect("o").last_seq, 0);
    // An op that fails to apply (unknown unit) rolls back its seq too.
    let err = s
        .write::<StoreError, _>(t(1), "cmdr.li", |_| {
            Ok(OpBody::UnitSetStatus {
                unit_id: "u-99".into(),
                from: UnitStatus::Available,
                to: UnitStatus::Busy,
                releases: vec![],
            })
        })
        .expect_err("unknown unit");
    assert!(
        matches!(err, StoreError::Missing { what: "unit", .. }),
        "{err:?}"
    );
    register_unit(&mut s, 2, "u-01", "东胜01");
    assert_eq!(query::outbox_all(s.conn()).expect("outbox")[0].seq, 1);
}

#[test]
fn write_many_is_all_or_nothing() {
    let mut s = store();
    let facility = |id: &str, lat: f64| OpBody::FacilityRegister {
        facility: Facility {
            id: id.into(),
            kind: FacilityKind::Post,
            name_zh: format!("{id} 警务站"),
            name_en: id.into(),
            position: LatLon { lat, lon: 109.98 },
        },
    };
    // The third op refers to a unit that does not exist: none of the three is written.
    let err = s
        .write_many::<StoreError, _>(t(1), "cmdr.li", |_| {
            Ok(vec![
                facility("post-1", 39.81),
                facility("post-2", 39.82),
                OpBody::UnitSetStatus {
                    unit_id: "u-99".into(),
                    from: UnitStatus::Available,
                    to: UnitStatus::Busy,
                    releases: vec![],
                },
            ])
        })
        .expect_err("refused");
    assert!(
        matches!(err, StoreError::Missing { what: "unit", .. }),
        "{err:?}"
    );
    assert!(query::facilities(s.conn()).expect("q").is_empty());
    assert!(query::outbox_all(s.conn()).expect("outbox").is_empty());
    assert_eq!(query::origin(s.conn()).expect("q").expect("o").last_seq, 0);
    // All good: both written with consecutive seqs.
    let envs = s
        .write_many::<StoreError, _>(t(2), "cmdr.li", |_| {
            Ok(vec![facility("post-1", 39.81), facility("post-2", 39.82)])
        })
        .expect("written");
    assert_eq!(envs.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(query::facilities(s.conn()).expect("q").len(), 2);
    assert_eq!(query::outbox_all(s.conn()).expect("outbox").len(), 2);
}

#[test]
fn roster_registration_and_update() {
    let mut s = store();
    register_unit(&mut s, 1, "u-02", "东胜02");
    register_unit(&mut s, 1, "u-01", "东胜01");
    write(
        &mut s,
        2,
        OpBody::UnitRegister {
            unit_id: "u-02".into(),
            callsign: "东胜02".into(),
            unit_kind: UnitKind::Motorcycle,
            home_station: None,
        },
    );
    let units = query::units(s.conn()).expect("units");
    assert_eq!(
        units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        vec!["u-01", "u-02"]
    );
    let u2 = query::unit(s.conn(), "u-02").expect("q").expect("u-02");
    assert_eq!(u2.kind, UnitKind::Motorcycle);
    assert_eq!(u2.home_station, None);
    assert_eq!(u2.status, UnitStatus::Available);
    assert_eq!(u2.status_since, t(1));
    assert_eq!(u2.incident, None);
    assert_eq!(u2.fix, None);
    assert!(query::unit(s.conn(), "u-99").expect("q").is_none());

    for (id, kind) in [
        ("chk-1", FacilityKind::Checkpoint),
        ("post-1", FacilityKind::Post),
        ("stn-centre", FacilityKind::Station),
    ] {
        write(
            &mut s,
            3,
            OpBody::FacilityRegister {
                facility: Facility {
                    id: id.into(),
                    kind,
                    name_zh: format!("{id} 中"),
                    name_en: id.into(),
                    position: LatLon {
                        lat: 42.5,
                        lon: 1.5,
                    },
                },
            },
        );
    }
    let f = query::facilities(s.conn()).expect("facilities");
    assert_eq!(
        f.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        vec!["stn-centre", "post-1", "chk-1"]
    );
    assert_eq!(f[0].kind, FacilityKind::Station);
    assert_eq!(f[0].name_zh, "stn-centre 中");
}

#[test]
fn incident_lifecycle_through_apply() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    register_unit(&mut s, 0, "u-02", "东胜02");
    let inc = create_incident(&mut s, 10, Priority::P2, "20261129-0001");

    let row = query::incident(s.conn(), inc)
        .expect("q")
        .expect("incident");
    assert_eq!(row.number, "20261129-0001");
    assert_eq!(row.status, IncidentStatus::Pending);
    assert_eq!(row.created_at, t(10));
    assert_eq!(row.created_by, "cmdr.li");
    assert!(!row.acknowledged);
    assert!(row.assigned.is_empty());

    write(
        &mut s,
        11,
        OpBody::IncidentSetFields {
            incident_id: inc,
            fields: IncidentFields {
                priority: Some(Priority::P1),
                address: Some("Carrer Major".into()),
                ..Default::default()
            },
        },
    );
    write(&mut s, 12, OpBody::IncidentAcknowledge { incident_id: inc });
    let row = query::incident(s.conn(), inc)
        .expect("q")
        .expect("incident");
    assert_eq!(row.priority, Priority::P1);
    assert_eq!(row.address, "Carrer Major");
    assert_eq!(row.incident_type, IncidentType::Theft);
    assert_eq!(row.description, "bag snatched");
    assert!(row.acknowledged);
    // Every write of a register is kept: the create's and the change's priority.
    let id = inc.to_string();
    let writes = |r| crate::apply::register_writes(s.conn(), &id, r).expect("writes");
    assert_eq!(writes(Register::Priority).len(), 2);
    assert_eq!(writes(Register::IncidentType).len(), 1);

    let a1 = assign(&mut s, 20, inc, "u-01");
    assign(&mut s, 21, inc, "u-02");
    let u1 = query::unit(s.conn(), "u-01").expect("q").expect("u");
    assert_eq!(u1.status, UnitStatus::Dispatched);
    assert_eq!(u1.status_since, t(20));
    assert_eq!(u1.incident, Some((inc, "20261129-0001".to_string())));
    let row = query::incident(s.conn(), inc)
        .expect("q")
        .expect("incident");
    assert_eq!(row.status, IncidentStatus::Dispatched);
    assert_eq!(row.assigned, vec!["东胜01", "东胜02"]);
    let active = query::active_assignment(s.conn(), "u-01")
        .expect("q")
        .expect("active");
    assert_eq!(active.id, a1);
    assert_eq!(active.incident_id, inc);

    write(
        &mut s,
        30,
        OpBody::UnitSetStatus {
            unit_id: "u-01".into(),
            from: UnitStatus::Dispatched,
            to: UnitStatus::OnScene,
            releases: vec![],
        },
    );
    let row = query::incident(s.conn(), inc)
        .expect("q")
        .expect("incident");
    assert_eq!(row.status, IncidentStatus::OnScene);

    // u-02 is released by hand; u-01 is cleared (on scene -> available).
    let a2 = query::active_assignment(s.conn(), "u-02")
        .expect("q")
        .expect("a")
        .id;
    write(
        &mut s,
        40,
        OpBody::AssignmentRelease {
            assignment_id: a2,
            incident_id: inc,
            unit_id: "u-02".into(),
            unit_to: Some(UnitStatus::Available),
        },
    );
    let u2 = query::unit(s.conn(), "u-02").expect("q").expect("u");
    assert_eq!(u2.status, UnitStatus::Available);
    assert_eq!(u2.status_since, t(40));
    assert_eq!(u2.incident, None);

    let releases = active_releases(&s, "u-01", None);
    write(
        &mut s,
        50,
        OpBody::UnitSetStatus {
            unit_id: "u-01".into(),
            from: UnitStatus::OnScene,
            to: UnitStatus::Available,
            releases,
        },
    );
    let u1 = query::unit(s.conn(), "u-01").expect("q").expect("u");
    assert_eq!(u1.status, UnitStatus::Available);
    assert_eq!(u1.incident, None);
    assert!(
        query::active_assignment(s.conn(), "u-01")
            .expect("q")
            .is_none()
    );
    let asg = query::assignments(s.conn(), inc).expect("assignments");
    assert_eq!(asg.len(), 2);
    assert_eq!(asg[0].unit_id, "u-01");
    assert_eq!(asg[0].callsign, "东胜01");
    assert_eq!(asg[0].assigned_at, t(20));
    assert_eq!(asg[0].released_at, Some(t(50)));
    assert_eq!(asg[1].released_at, Some(t(40)));
    let row = query::incident(s.conn(), inc)
        .expect("q")
        .expect("incident");
    assert_eq!(row.status, IncidentStatus::Pending);

    let note = Uuid::now_v7();
    write(
        &mut s,
        55,
        OpBody::TimelineAppend {
            entry_id: note,
            incident_id: inc,
            text: "owner found".into(),
        },
    );
    write(
        &mut s,
        60,
        OpBody::IncidentClose {
            incident_id: inc,
            disposition: Disposition::ReportTaken,
            summary: "report 12".into(),
            releases: vec![],
        },
    );
    let row = query::incident(s.conn(), inc)
        .expect("q")
        .expect("incident");
    assert_eq!(row.status, IncidentStatus::Closed);
    assert_eq!(row.closed_at, Some(t(60)));
    assert_eq!(row.disposition, Some(Disposition::ReportTaken));
    assert_eq!(row.summary.as_deref(), Some("report 12"));

    let tl = query::timeline(s.conn(), inc).expect("timeline");
    let kinds: Vec<_> = tl
        .iter()
        .map(|e| match &e.event {
            TimelineEvent::Created { .. } => "created",
            TimelineEvent::FieldsChanged { .. } => "fields",
            TimelineEvent::Acknowledged => "ack",
            TimelineEvent::UnitAssigned { .. } => "assigned",
            TimelineEvent::UnitReleased { .. } => "released",
            TimelineEvent::UnitStatus { .. } => "status",
            TimelineEvent::Note { .. } => "note",
            TimelineEvent::Closed { .. } => "closed",
            TimelineEvent::ConflictResolved { .. } => "resolved",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "created", "fields", "ack", "assigned", "assigned", "status", "released", "status",
            "note", "closed"
        ]
    );
    assert_eq!(tl[0].at, t(10));
    assert_eq!(tl[0].user, "cmdr.li");
    assert_eq!(
        tl[7].event,
        TimelineEvent::UnitStatus {
            unit_id: "u-01".into(),
            callsign: "东胜01".into(),
            to: UnitStatus::Available
        }
    );
    assert_eq!(tl[8].id, note.to_string());
    assert_eq!(
        tl[9].event,
        TimelineEvent::Closed {
            disposition: Disposition::ReportTaken,
            summary: "report 12".into()
        }
    );
}

#[test]
fn close_releases_active_assignments_and_frees_units() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    register_unit(&mut s, 0, "u-02", "东胜02");
    let inc = create_incident(&mut s, 1, Priority::P1, "20261129-0001");
    assign(&mut s, 2, inc, "u-01");
    assign(&mut s, 3, inc, "u-02");
    write(
        &mut s,
        4,
        OpBody::UnitSetStatus {
            unit_id: "u-02".into(),
            from: UnitStatus::Dispatched,
            to: UnitStatus::EnRoute,
            releases: vec![],
        },
    );
    let releases = [
        active_releases(&s, "u-01", Some(UnitStatus::Available)),
        active_releases(&s, "u-02", Some(UnitStatus::Available)),
    ]
    .concat();
    write(
        &mut s,
        9,
        OpBody::IncidentClose {
            incident_id: inc,
            disposition: Disposition::Resolved,
            summary: String::new(),
            releases,
        },
    );
    for id in ["u-01", "u-02"] {
        let u = query::unit(s.conn(), id).expect("q").expect("u");
        assert_eq!(u.status, UnitStatus::Available, "{id}");
        assert_eq!(u.status_since, t(9));
        assert_eq!(u.incident, None);
    }
    assert!(
        query::assignments(s.conn(), inc)
            .expect("a")
            .iter()
            .all(|a| a.released_at == Some(t(9)))
    );
}

#[test]
fn ops_on_missing_things_are_refused() {
    let mut s = store();
    let ghost = Uuid::now_v7();
    for body in [
        OpBody::IncidentAcknowledge { incident_id: ghost },
        OpBody::IncidentSetFields {
            incident_id: ghost,
            fields: IncidentFields::default(),
        },
        OpBody::IncidentClose {
            incident_id: ghost,
            disposition: Disposition::Cancelled,
            summary: String::new(),
            releases: vec![],
        },
        OpBody::TimelineAppend {
            entry_id: Uuid::now_v7(),
            incident_id: ghost,
            text: "x".into(),
        },
        OpBody::PositionReport {
            unit_id: "u-99".into(),
            fix: fix(1, 42.0),
        },
    ] {
        let kind = body.kind();
        let r = s.write::<StoreError, _>(t(1), "cmdr.li", |_| Ok(body));
        assert!(
            matches!(r, Err(StoreError::Missing { .. })),
            "{kind}: {r:?}"
        );
    }
    register_unit(&mut s, 1, "u-01", "东胜01");
    let r = s.write::<StoreError, _>(t(2), "cmdr.li", |_| {
        Ok(OpBody::AssignmentAdd {
            assignment_id: Uuid::now_v7(),
            incident_id: ghost,
            unit_id: "u-01".into(),
        })
    });
    assert!(
        matches!(
            r,
            Err(StoreError::Missing {
                what: "incident",
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(query::outbox_all(s.conn()).expect("outbox").len(), 1);
}

#[test]
fn apply_is_idempotent() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    let inc = create_incident(&mut s, 1, Priority::P3, "20261129-0001");
    let env = write(
        &mut s,
        2,
        OpBody::TimelineAppend {
            entry_id: Uuid::now_v7(),
            incident_id: inc,
            text: "once".into(),
        },
    );
    let add = write(
        &mut s,
        3,
        OpBody::AssignmentAdd {
            assignment_id: Uuid::now_v7(),
            incident_id: inc,
            unit_id: "u-01".into(),
        },
    );
    let created = query::outbox_all(s.conn()).expect("o")[1].envelope.clone();
    for op in [&created, &env, &add] {
        crate::apply::apply(s.conn(), op).expect("re-apply");
    }
    assert_eq!(query::timeline(s.conn(), inc).expect("tl").len(), 3);
    assert_eq!(query::assignments(s.conn(), inc).expect("a").len(), 1);

    // A status change without an assignment leaves no timeline entry; re-applying it, even
    // after a later change, must neither bump the version nor bring the old status back.
    register_unit(&mut s, 4, "u-02", "东胜02");
    let busy = write(
        &mut s,
        5,
        OpBody::UnitSetStatus {
            unit_id: "u-02".into(),
            from: UnitStatus::Available,
            to: UnitStatus::Busy,
            releases: vec![],
        },
    );
    write(
        &mut s,
        6,
        OpBody::UnitSetStatus {
            unit_id: "u-02".into(),
            from: UnitStatus::Busy,
            to: UnitStatus::OutOfService,
            releases: vec![],
        },
    );
    let before = query::unit(s.conn(), "u-02").expect("q").expect("u-02");
    crate::apply::apply(s.conn(), &busy).expect("re-apply busy");
    let after = query::unit(s.conn(), "u-02").expect("q").expect("u-02");
    assert_eq!(after.status, UnitStatus::OutOfService);
    assert_eq!(after.status_version, before.status_version);
    assert_eq!(after.status_since, before.status_since);
}

#[test]
fn upgrading_to_the_applied_ops_ledger_counts_outbox_ops_as_applied() {
    // An op written by a version-2 store: in its outbox, and (then) applied to its state.
    let mut other = store();
    register_unit(&mut other, 0, "u-01", "东胜01");
    let row = query::outbox_all(other.conn()).expect("o").remove(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    {
        let mut c = rusqlite::Connection::open(&path).expect("raw open");
        let mut first = crate::schema::all();
        first.truncate(2);
        rusqlite_migration::Migrations::new(first)
            .to_latest(&mut c)
            .expect("migrate to v2");
        c.execute(
            "INSERT INTO outbox(seq, op_id, origin, lane, kind, hlc_wall_ms, hlc_logical, envelope, created_at)
             VALUES (1, ?1, ?2, 'critical', 'unit.register', 0, 0, ?3, 0)",
            rusqlite::params![
                row.envelope.op_id.to_string(),
                row.envelope.origin.to_string(),
                serde_json::to_string(&row.envelope).expect("json"),
            ],
        )
        .expect("insert outbox row");
    }
    let s = Store::open(&path, t(1)).expect("upgrade to the ledger");
    let n: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM ops", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 1);
    // The ledger says the op was applied, so applying it again does nothing.
    crate::apply::apply(s.conn(), &row.envelope).expect("re-apply");
    assert_eq!(query::units(s.conn()).expect("units").len(), 0);
}

#[test]
fn latest_position_never_moves_back_but_history_keeps_all() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    for (at, fix_at, lat) in [(10, 10, 42.50), (20, 30, 42.53), (25, 20, 42.52)] {
        write(
            &mut s,
            at,
            OpBody::PositionReport {
                unit_id: "u-01".into(),
                fix: fix(fix_at, lat),
            },
        );
    }
    let u = query::unit(s.conn(), "u-01").expect("q").expect("u");
    let latest = u.fix.expect("fix");
    assert_eq!(latest.fix_time, t(30));
    assert_eq!(latest.position.lat, 42.53);
    assert_eq!(latest.heading_deg, Some(90.0));
    assert_eq!(latest.speed_mps, Some(12.5));
    assert_eq!(latest.accuracy_m, Some(5.0));
    let track = query::track(s.conn(), "u-01", t(0)).expect("track");
    assert_eq!(
        track.iter().map(|f| f.position.lat).collect::<Vec<_>>(),
        vec![42.50, 42.52, 42.53]
    );
    assert_eq!(
        query::track(s.conn(), "u-01", t(15)).expect("track").len(),
        2
    );
}

#[test]
fn queue_orders_open_by_priority_then_age_and_keeps_recent_closed() {
    let mut s = store();
    // Op times are HLC wall times, which never go back: write in time order.
    let p3_old = create_incident(&mut s, 0, Priority::P3, "20261129-0001");
    let closed_old = create_incident(&mut s, 1, Priority::P1, "20261129-0002");
    let closed_new = create_incident(&mut s, 2, Priority::P2, "20261129-0003");
    let p1_old = create_incident(&mut s, 50, Priority::P1, "20261129-0004");
    let p1_new = create_incident(&mut s, 100, Priority::P1, "20261129-0005");
    for (inc, at) in [(closed_old, 200), (closed_new, 3_000)] {
        write(
            &mut s,
            at,
            OpBody::IncidentClose {
                incident_id: inc,
                disposition: Disposition::Unfounded,
                summary: String::new(),
                releases: vec![],
            },
        );
    }
    let q = query::queue(s.conn(), t(1_000)).expect("queue");
    assert_eq!(
        q.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![p1_old, p1_new, p3_old, closed_new]
    );
    assert_eq!(
        query::next_incident_number(s.conn(), "20261129").expect("n"),
        "20261129-0006"
    );
    assert_eq!(
        query::next_incident_number(s.conn(), "20261130").expect("n"),
        "20261130-0001"
    );
}

#[test]
fn settings_round_trip() {
    let mut s = store();
    assert_eq!(s.setting("language").expect("read"), None);
    s.set_setting("language", "zh_cn").expect("write");
    s.set_setting("language", "en").expect("overwrite");
    assert_eq!(s.setting("language").expect("read").as_deref(), Some("en"));
}

#[test]
fn busy_and_locked_are_transient_the_rest_permanent() {
    let busy = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        None,
    ));
    assert!(busy.is_transient());
    let full = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
        None,
    ));
    assert!(!full.is_transient());
    assert!(
        !StoreError::TooNew {
            path: "x".into(),
            found: 3,
            known: 2
        }
        .is_transient()
    );
}

#[test]
fn synchronous_is_full_for_durable_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(&dir.path().join("outpost.db"), t(0)).expect("open");
    let sync: i64 = s
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(sync, 2, "FULL");
    let timeout: i64 = s
        .conn()
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(timeout, crate::BUSY_TIMEOUT_MS as i64);
}

#[test]
fn a_signer_signs_its_persons_ops_when_stamped_and_the_outbox_keeps_the_signature() {
    use outpost_domain::op_auth::{self, OpSigner};
    let key = "3a".repeat(32);
    let mut s = store();
    let unsigned = write(
        &mut s,
        1,
        OpBody::UnitRegister {
            unit_id: "u-1".into(),
            callsign: "C1".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
    assert_eq!(unsigned.auth, None);
    s.set_signer(Some(OpSigner::new("cmdr.li", "k7", &key).expect("signer")));
    let env = write(
        &mut s,
        2,
        OpBody::UnitRegister {
            unit_id: "u-2".into(),
            callsign: "C2".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
    let k = op_auth::decode_key(&key).expect("key");
    assert_eq!(op_auth::verify(&env, &k), Ok(()));
    assert!(env.auth.as_deref().is_some_and(|a| a.starts_with("k7.")));
    // Another person's op (the demo acting on its own) stays unsigned; write_many signs each
    // of the person's ops.
    let other = s
        .write::<StoreError, _>(t(3), "demo", |_| {
            Ok(OpBody::UnitRegister {
                unit_id: "u-3".into(),
                callsign: "C3".into(),
                unit_kind: UnitKind::PatrolCar,
                home_station: None,
            })
        })
        .expect("write");
    assert_eq!(other.auth, None);
    let many = s
        .write_many::<StoreError, _>(t(4), "cmdr.li", |_| {
            Ok(vec![
                OpBody::UnitRegister {
                    unit_id: "u-4".into(),
                    callsign: "C4".into(),
                    unit_kind: UnitKind::PatrolCar,
                    home_station: None,
                },
                OpBody::UnitRegister {
                    unit_id: "u-5".into(),
                    callsign: "C5".into(),
                    unit_kind: UnitKind::PatrolCar,
                    home_station: None,
                },
            ])
        })
        .expect("write many");
    assert!(many.iter().all(|e| op_auth::verify(e, &k).is_ok()));
    // The outbox holds the envelopes as signed (what the engine pushes).
    let outbox = query::outbox_all(s.conn()).expect("outbox");
    assert_eq!(outbox.len(), 5);
    assert_eq!(outbox[1].envelope, env);
    assert_eq!(op_auth::verify(&outbox[1].envelope, &k), Ok(()));
    assert_eq!(outbox[0].envelope.auth, None);
    s.set_signer(None);
    let after = write(
        &mut s,
        5,
        OpBody::UnitRegister {
            unit_id: "u-6".into(),
            callsign: "C6".into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    );
    assert_eq!(after.auth, None);
}

#[test]
fn a_refused_position_in_a_transaction_leaves_nothing_of_it() {
    // Positions apply without a savepoint: the unit is checked before the first write.
    let mut src = store();
    register_unit(&mut src, 1, "u-01", "东胜01");
    register_unit(&mut src, 1, "u-02", "东胜02");
    let good = write(
        &mut src,
        2,
        OpBody::PositionReport {
            unit_id: "u-01".into(),
            fix: fix(2, 40.5),
        },
    );
    let orphan = write(
        &mut src,
        2,
        OpBody::PositionReport {
            unit_id: "u-02".into(),
            fix: fix(2, 41.5),
        },
    );
    let mut s = store();
    register_unit(&mut s, 1, "u-01", "东胜01");
    let ledger_before = s.ledger().expect("ledger").len();
    let tx = s.transaction().expect("tx");
    let r = crate::apply::apply_with_gseq(&tx, &orphan, Some(7));
    assert!(
        matches!(r, Err(StoreError::Missing { what: "unit", .. })),
        "{r:?}"
    );
    assert!(crate::apply::apply_with_gseq(&tx, &good, Some(8)).expect("apply the good fix"));
    tx.commit().expect("commit");
    assert_eq!(s.ledger().expect("ledger").len(), ledger_before + 1);
    let count = |sql: &str| -> i64 { s.conn().query_row(sql, [], |r| r.get(0)).expect("count") };
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM ops WHERE op_id = '{}'",
            orphan.op_id
        )),
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM positions"), 1);
    assert_eq!(count("SELECT COUNT(*) FROM unit_positions"), 1);
    let lat: f64 = s
        .conn()
        .query_row(
            "SELECT lat FROM unit_positions WHERE unit_id = 'u-01'",
            [],
            |r| r.get(0),
        )
        .expect("u-01's position");
    assert!((lat - 40.5).abs() < 1e-9, "{lat}");
}
