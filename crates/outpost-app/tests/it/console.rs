//! Domain rules through `Console` on a temporary data directory.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Local, TimeZone, Utc};

use outpost_app::ipc::{
    AddNote, CloseIncident, ErrorCode, IncidentDetail, IncidentRef, Language, NewIncident,
    SetUnitStatus, Settings, Startup, Theme, TimelineEvent, UnitOnIncident, UpdateIncident,
};
use outpost_app::{AppError, Console, ConsoleOptions};
use outpost_domain::clock::FixedClock;
use outpost_domain::facility::{Facility, FacilityKind};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentStatus, IncidentType, Priority};
use outpost_domain::op::{Fix, IncidentFields, Lane, OpEnvelope};
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_store::query::{self, OutboxRow};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<FixedClock>,
    console: Console,
}

fn open_at(dir: &Path, clock: &Arc<FixedClock>) -> Result<Console, AppError> {
    Console::open(
        ConsoleOptions {
            pack: None,
            data_dir: dir.to_path_buf(),
            demo: false,
            user: "cmdr.li".into(),
        },
        clock.clone(),
    )
}

/// A console with two patrol cars and a post team.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    let console = open_at(dir.path(), &clock).expect("open console");
    for (id, cs, kind) in [
        ("u-02", "东胜02", UnitKind::PatrolCar),
        ("u-01", "东胜01", UnitKind::PatrolCar),
        ("u-03", "东胜03", UnitKind::PostTeam),
    ] {
        console
            .register_unit(id, cs, kind, Some("stn-centre".into()))
            .expect("register unit");
    }
    Fixture {
        dir,
        clock,
        console,
    }
}

/// Reads the outbox through a second connection (what is on disk, committed).
fn outbox(dir: &Path) -> Vec<OutboxRow> {
    let store = outpost_store::Store::open(&dir.join("outpost.db"), t0()).expect("open store");
    query::outbox_all(store.conn()).expect("outbox")
}

fn new_incident(c: &Console, ty: IncidentType, priority: Option<Priority>) -> IncidentDetail {
    c.create_incident(NewIncident {
        incident_type: ty,
        priority,
        location: LatLon {
            lat: 42.5078,
            lon: 1.5211,
        },
        address: "Avinguda Meritxell, Andorra la Vella".into(),
        description: "two cars, one injured".into(),
    })
    .expect("create incident")
}

fn on(incident: &IncidentDetail, unit: &str) -> UnitOnIncident {
    UnitOnIncident {
        incident_id: incident.summary.id.clone(),
        unit_id: unit.into(),
    }
}

fn status(c: &Console, unit: &str, to: UnitStatus) -> Result<outpost_app::ipc::UnitView, AppError> {
    c.set_unit_status(SetUnitStatus {
        unit_id: unit.into(),
        to,
    })
}

fn unit_status(c: &Console, unit: &str) -> UnitStatus {
    c.console_state()
        .expect("state")
        .units
        .into_iter()
        .find(|u| u.id == unit)
        .map(|u| u.status)
        .expect("unit on board")
}

#[test]
fn console_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Console>();
}

#[test]
fn create_assign_en_route_on_scene_clear() {
    let f = fixture();
    let c = &f.console;
    f.clock.advance_secs(60);
    let inc = new_incident(c, IncidentType::TrafficAccident, None);
    let day = t0().with_timezone(&Local).format("%Y%m%d").to_string();
    assert_eq!(inc.summary.number, format!("{day}-0001"));
    assert_eq!(inc.summary.priority, Priority::P2, "type default");
    assert_eq!(inc.summary.status, IncidentStatus::Pending);
    assert_eq!(inc.created_by, "cmdr.li");
    assert_eq!(inc.summary.created_at, t0() + chrono::Duration::seconds(60));

    f.clock.advance_secs(30);
    let d = c.assign_unit(on(&inc, "u-01")).expect("assign");
    assert_eq!(d.summary.status, IncidentStatus::Dispatched);
    assert_eq!(d.summary.assigned, vec!["东胜01"]);
    assert_eq!(d.assignments.len(), 1);
    assert_eq!(d.assignments[0].unit_status, UnitStatus::Dispatched);
    assert_eq!(unit_status(c, "u-01"), UnitStatus::Dispatched);

    f.clock.advance_secs(30);
    let u = status(c, "u-01", UnitStatus::EnRoute).expect("en route");
    assert_eq!(u.status, UnitStatus::EnRoute);
    assert_eq!(u.status_since, t0() + chrono::Duration::seconds(120));
    assert_eq!(u.incident_id.as_deref(), Some(inc.summary.id.as_str()));
    assert_eq!(
        u.incident_number.as_deref(),
        Some(inc.summary.number.as_str())
    );

    f.clock.advance_secs(240);
    status(c, "u-01", UnitStatus::OnScene).expect("on scene");
    let d = c
        .incident_detail(IncidentRef {
            incident_id: inc.summary.id.clone(),
        })
        .expect("detail");
    assert_eq!(d.summary.status, IncidentStatus::OnScene);

    f.clock.advance_secs(600);
    let u = status(c, "u-01", UnitStatus::Available).expect("clear");
    assert_eq!(u.status, UnitStatus::Available);
    assert_eq!(u.incident_id, None);
    let d = c
        .incident_detail(IncidentRef {
            incident_id: inc.summary.id.clone(),
        })
        .expect("detail");
    assert_eq!(d.summary.status, IncidentStatus::Pending);
    assert!(d.summary.assigned.is_empty());
    assert_eq!(
        d.assignments[0].released_at,
        Some(t0() + chrono::Duration::seconds(960))
    );

    let events: Vec<TimelineEvent> = d.timeline.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        events,
        vec![
            TimelineEvent::Created {
                incident_type: IncidentType::TrafficAccident,
                priority: Priority::P2,
                address: "Avinguda Meritxell, Andorra la Vella".into(),
            },
            TimelineEvent::UnitAssigned {
                unit_id: "u-01".into(),
                callsign: "东胜01".into()
            },
            TimelineEvent::UnitStatus {
                unit_id: "u-01".into(),
                callsign: "东胜01".into(),
                to: UnitStatus::EnRoute
            },
            TimelineEvent::UnitStatus {
                unit_id: "u-01".into(),
                callsign: "东胜01".into(),
                to: UnitStatus::OnScene
            },
            TimelineEvent::UnitStatus {
                unit_id: "u-01".into(),
                callsign: "东胜01".into(),
                to: UnitStatus::Available
            },
        ]
    );
    assert!(d.timeline.iter().all(|e| e.user == "cmdr.li"));
    assert_eq!(
        d.timeline
            .iter()
            .map(|e| e.at.timestamp() - t0().timestamp())
            .collect::<Vec<_>>(),
        vec![60, 90, 120, 360, 960]
    );

    // One op per action, gap-free seq from 1 (3 registrations first), right kinds and lanes.
    let ops = outbox(f.dir.path());
    assert_eq!(
        ops.iter().map(|o| o.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        ops.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(),
        vec![
            "unit.register",
            "unit.register",
            "unit.register",
            "incident.create",
            "assignment.add",
            "unit.set_status",
            "unit.set_status",
            "unit.set_status"
        ]
    );
    assert!(ops.iter().all(|o| o.lane == Lane::Critical));
    let last: &OpEnvelope = &ops[7].envelope;
    let assignment = match &ops[4].envelope.body {
        outpost_domain::op::OpBody::AssignmentAdd { assignment_id, .. } => *assignment_id,
        other => panic!("expected assignment.add, got {other:?}"),
    };
    // Clearing names the assignment it ends; the unit's status is the one chosen.
    assert_eq!(
        serde_json::to_value(&last.body).expect("json"),
        serde_json::json!({"kind":"unit.set_status","unit_id":"u-01","from":"on_scene",
            "to":"available","releases":[{"assignment_id": assignment.to_string(),
            "incident_id": inc.summary.id, "unit_id":"u-01","unit_to":null}]})
    );
    assert_eq!(last.lane_seq, 8);
    assert_eq!(last.user, "cmdr.li");
}

#[test]
fn closing_releases_units_and_refuses_further_changes() {
    let f = fixture();
    let c = &f.console;
    let inc = new_incident(c, IncidentType::Assault, None);
    assert_eq!(inc.summary.priority, Priority::P1);
    c.assign_unit(on(&inc, "u-01")).expect("assign 1");
    c.assign_unit(on(&inc, "u-02")).expect("assign 2");
    status(c, "u-02", UnitStatus::OnScene).expect("on scene");
    f.clock.advance_secs(900);
    let d = c
        .close_incident(CloseIncident {
            incident_id: inc.summary.id.clone(),
            disposition: Disposition::Arrest,
            summary: " one arrested ".into(),
        })
        .expect("close");
    assert_eq!(d.summary.status, IncidentStatus::Closed);
    assert_eq!(d.disposition, Some(Disposition::Arrest));
    assert_eq!(d.closed_at, Some(t0() + chrono::Duration::seconds(900)));
    assert!(d.summary.assigned.is_empty());
    assert!(d.assignments.iter().all(|a| a.released_at == d.closed_at));
    assert_eq!(
        d.timeline.last().map(|e| e.event.clone()),
        Some(TimelineEvent::Closed {
            disposition: Disposition::Arrest,
            summary: "one arrested".into()
        })
    );
    for u in ["u-01", "u-02"] {
        assert_eq!(unit_status(c, u), UnitStatus::Available, "{u}");
    }
    let before = outbox(f.dir.path()).len();

    let code = |r: Result<IncidentDetail, AppError>| r.map(|_| ()).map_err(|e| e.code);
    let id = inc.summary.id.clone();
    assert_eq!(
        code(c.add_note(AddNote {
            incident_id: id.clone(),
            text: "late note".into()
        })),
        Err(ErrorCode::IncidentClosed)
    );
    assert_eq!(
        code(c.assign_unit(on(&inc, "u-03"))),
        Err(ErrorCode::IncidentClosed)
    );
    assert_eq!(
        code(c.update_incident(UpdateIncident {
            incident_id: id.clone(),
            fields: IncidentFields {
                priority: Some(Priority::P4),
                ..Default::default()
            }
        })),
        Err(ErrorCode::IncidentClosed)
    );
    assert_eq!(
        code(c.acknowledge_incident(IncidentRef {
            incident_id: id.clone()
        })),
        Err(ErrorCode::IncidentClosed)
    );
    let err = c
        .close_incident(CloseIncident {
            incident_id: id,
            disposition: Disposition::Resolved,
            summary: String::new(),
        })
        .expect_err("closed twice");
    assert_eq!(err.code, ErrorCode::IncidentClosed);
    assert!(err.message.contains(&inc.summary.number), "{}", err.message);
    assert_eq!(outbox(f.dir.path()).len(), before, "refusals write nothing");
}

#[test]
fn illegal_transitions_are_refused_and_nothing_is_written() {
    let f = fixture();
    let c = &f.console;
    let inc = new_incident(c, IncidentType::Theft, Some(Priority::P3));
    let rev = c.revision();
    let ops = outbox(f.dir.path()).len();

    let err = status(c, "u-01", UnitStatus::EnRoute).expect_err("en route without incident");
    assert_eq!(err.code, ErrorCode::IllegalTransition);
    assert!(err.message.contains("东胜01"), "{}", err.message);
    assert!(err.message.contains("available"), "{}", err.message);
    assert!(err.message.contains("en route"), "{}", err.message);

    let err = status(c, "u-01", UnitStatus::Dispatched).expect_err("dispatched by button");
    assert_eq!(err.code, ErrorCode::IllegalTransition);

    status(c, "u-02", UnitStatus::Busy).expect("busy");
    let err = c
        .assign_unit(on(&inc, "u-02"))
        .expect_err("busy unit dispatched");
    assert_eq!(err.code, ErrorCode::IllegalTransition);
    assert!(
        err.message.contains("东胜02") && err.message.contains("busy"),
        "{}",
        err.message
    );

    c.assign_unit(on(&inc, "u-01")).expect("assign");
    let other = new_incident(c, IncidentType::Fire, None);
    let err = c
        .assign_unit(on(&other, "u-01"))
        .expect_err("double assignment");
    assert_eq!(err.code, ErrorCode::IllegalTransition);
    assert!(err.message.contains(&inc.summary.number), "{}", err.message);

    status(c, "u-01", UnitStatus::OnScene).expect("on scene");
    let err = status(c, "u-01", UnitStatus::Busy).expect_err("on scene -> busy");
    assert_eq!(err.code, ErrorCode::IllegalTransition);
    assert!(
        err.message.contains("on scene") && err.message.contains("busy"),
        "{}",
        err.message
    );
    assert_eq!(unit_status(c, "u-01"), UnitStatus::OnScene);

    // Only the 4 legal actions (busy, assign, create, on scene) wrote ops.
    assert_eq!(outbox(f.dir.path()).len(), ops + 4);
    assert_eq!(c.revision(), rev + 4);
}

#[test]
fn bad_input_is_refused() {
    let f = fixture();
    let c = &f.console;
    let inc = new_incident(c, IncidentType::Other, None);
    let err = c
        .add_note(AddNote {
            incident_id: inc.summary.id.clone(),
            text: "   ".into(),
        })
        .expect_err("empty note");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let err = c
        .create_incident(NewIncident {
            incident_type: IncidentType::Fire,
            priority: None,
            location: LatLon {
                lat: 95.0,
                lon: 1.5,
            },
            address: "x".into(),
            description: String::new(),
        })
        .expect_err("bad latitude");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("95"), "{}", err.message);
    let err = c
        .update_incident(UpdateIncident {
            incident_id: inc.summary.id.clone(),
            fields: IncidentFields::default(),
        })
        .expect_err("nothing to change");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let err = c
        .incident_detail(IncidentRef {
            incident_id: "not-an-id".into(),
        })
        .expect_err("bad id");
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = status(c, "u-99", UnitStatus::Busy).expect_err("unknown unit");
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = c.release_unit(on(&inc, "u-01")).expect_err("not assigned");
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = c
        .search_places(outpost_app::ipc::PlaceQuery {
            text: "Meritxell".into(),
            near: None,
            limit: 5,
        })
        .expect_err("no pack");
    assert_eq!(err.code, ErrorCode::Pack);
    // 3 registrations + 1 incident only.
    assert_eq!(outbox(f.dir.path()).len(), 4);
}

#[test]
fn over_long_text_is_refused_and_nothing_is_written() {
    use outpost_domain::incident::{MAX_ADDRESS_CHARS, MAX_TEXT_CHARS};
    let f = fixture();
    let c = &f.console;
    let inc = new_incident(c, IncidentType::Other, None);
    let before = outbox(f.dir.path()).len();

    // Exactly at the limit is kept (counted in characters, not bytes: 警 is 3 bytes).
    let at_limit = "警".repeat(MAX_TEXT_CHARS);
    let d = c
        .add_note(AddNote {
            incident_id: inc.summary.id.clone(),
            text: at_limit.clone(),
        })
        .expect("a note at the limit");
    assert!(d.timeline.iter().any(|t| t.event
        == TimelineEvent::Note {
            text: at_limit.clone()
        }));

    let err = c
        .add_note(AddNote {
            incident_id: inc.summary.id.clone(),
            text: "x".repeat(MAX_TEXT_CHARS + 1),
        })
        .expect_err("note over the limit");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert_eq!(
        err.message,
        format!(
            "the note is {} characters long; at most {MAX_TEXT_CHARS} are kept",
            MAX_TEXT_CHARS + 1
        )
    );
    let err = c
        .create_incident(NewIncident {
            incident_type: IncidentType::Fire,
            priority: None,
            location: LatLon {
                lat: 42.5,
                lon: 1.5,
            },
            address: "a".repeat(MAX_ADDRESS_CHARS + 1),
            description: String::new(),
        })
        .expect_err("address over the limit");
    assert!(
        err.message.starts_with("the address is 301 characters"),
        "{}",
        err.message
    );
    let err = c
        .update_incident(UpdateIncident {
            incident_id: inc.summary.id.clone(),
            fields: IncidentFields {
                description: Some("d".repeat(MAX_TEXT_CHARS + 1)),
                ..IncidentFields::default()
            },
        })
        .expect_err("description over the limit");
    assert!(
        err.message.starts_with("the description is"),
        "{}",
        err.message
    );
    let err = c
        .close_incident(CloseIncident {
            incident_id: inc.summary.id.clone(),
            disposition: Disposition::Resolved,
            summary: "s".repeat(MAX_TEXT_CHARS + 1),
        })
        .expect_err("summary over the limit");
    assert!(
        err.message.starts_with("the closing summary is"),
        "{}",
        err.message
    );

    // Only the note at the limit was written.
    assert_eq!(outbox(f.dir.path()).len(), before + 1);
    assert_eq!(
        c.incident_detail(IncidentRef {
            incident_id: inc.summary.id.clone()
        })
        .expect("detail")
        .summary
        .status,
        IncidentStatus::Pending
    );
}

#[test]
fn notes_updates_acknowledge_release_and_outbox_lanes() {
    let f = fixture();
    let c = &f.console;
    let inc = new_incident(c, IncidentType::Disturbance, None);
    let id = inc.summary.id.clone();
    let d = c
        .update_incident(UpdateIncident {
            incident_id: id.clone(),
            fields: IncidentFields {
                priority: Some(Priority::P1),
                description: Some("fight outside the bar".into()),
                ..Default::default()
            },
        })
        .expect("update");
    assert_eq!(d.summary.priority, Priority::P1);
    assert_eq!(d.description, "fight outside the bar");
    assert_eq!(d.summary.incident_type, IncidentType::Disturbance);
    let d = c
        .acknowledge_incident(IncidentRef {
            incident_id: id.clone(),
        })
        .expect("ack");
    assert!(d.summary.acknowledged);
    let d = c
        .add_note(AddNote {
            incident_id: id.clone(),
            text: " caller says three people ".into(),
        })
        .expect("note");
    assert_eq!(
        d.timeline.last().map(|e| e.event.clone()),
        Some(TimelineEvent::Note {
            text: "caller says three people".into()
        })
    );
    c.assign_unit(on(&inc, "u-03")).expect("assign");
    let d = c.release_unit(on(&inc, "u-03")).expect("release");
    assert_eq!(
        d.timeline.last().map(|e| e.event.clone()),
        Some(TimelineEvent::UnitReleased {
            unit_id: "u-03".into(),
            callsign: "东胜03".into()
        })
    );
    assert_eq!(unit_status(c, "u-03"), UnitStatus::Available);
    c.report_position(
        "u-03",
        Fix {
            position: LatLon {
                lat: 42.51,
                lon: 1.53,
            },
            fix_time: t0(),
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        },
    )
    .expect("position");

    let ops = outbox(f.dir.path());
    let tail: Vec<(&str, Lane)> = ops[3..].iter().map(|o| (o.kind.as_str(), o.lane)).collect();
    assert_eq!(
        tail,
        vec![
            ("incident.create", Lane::Critical),
            ("incident.set_fields", Lane::Critical),
            ("incident.acknowledge", Lane::Critical),
            ("timeline.append", Lane::Notes),
            ("assignment.add", Lane::Critical),
            ("assignment.release", Lane::Critical),
            ("position.report", Lane::Positions),
        ]
    );
    assert_eq!(
        ops.iter().map(|o| o.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
}

#[test]
fn reopening_the_data_dir_keeps_incidents_timeline_and_seq() {
    let f = fixture();
    let inc = new_incident(&f.console, IncidentType::Medical, None);
    f.console
        .add_note(AddNote {
            incident_id: inc.summary.id.clone(),
            text: "ambulance called".into(),
        })
        .expect("note");
    let origin_before = outbox(f.dir.path())[0].envelope.origin;
    let Fixture {
        dir,
        clock,
        console,
    } = f;
    drop(console);

    clock.advance_secs(3600);
    let again = open_at(dir.path(), &clock).expect("reopen");
    let state = again.console_state().expect("state");
    assert_eq!(state.units.len(), 3);
    assert_eq!(state.incidents.len(), 1);
    assert_eq!(state.incidents[0].number, inc.summary.number);
    let d = again
        .incident_detail(IncidentRef {
            incident_id: inc.summary.id.clone(),
        })
        .expect("detail");
    assert_eq!(d.timeline.len(), 2);
    assert_eq!(
        d.timeline[1].event,
        TimelineEvent::Note {
            text: "ambulance called".into()
        }
    );
    let second = new_incident(&again, IncidentType::Fire, None);
    assert!(
        second.summary.number.ends_with("-0002"),
        "{}",
        second.summary.number
    );
    let ops = outbox(dir.path());
    assert_eq!(
        ops.iter().map(|o| o.seq).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert!(ops.iter().all(|o| o.envelope.origin == origin_before));
}

#[test]
fn a_data_dir_that_is_a_file_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"keep me").expect("write file");
    let clock = Arc::new(FixedClock::new(t0()));
    let err = open_at(&file, &clock).expect_err("a file is not a data directory");
    assert_eq!(err.code, ErrorCode::Storage);
    assert_eq!(
        err.message,
        format!(
            "the data directory {} is a file, not a directory; give --data-dir a folder",
            file.display()
        )
    );
    assert_eq!(std::fs::read(&file).expect("read back"), b"keep me");
}

#[test]
fn re_registering_an_unchanged_roster_writes_no_op() {
    let f = fixture();
    let c = &f.console;
    let post = Facility {
        id: "post-1".into(),
        kind: FacilityKind::Post,
        name_zh: "梅里切尔大街警务站".into(),
        name_en: "Avinguda Meritxell Post".into(),
        position: LatLon {
            lat: 42.5075,
            lon: 1.5310,
        },
    };
    c.register_facility(post.clone()).expect("register post");
    let after_first = outbox(f.dir.path()).len();
    // The same roster again (as at every demo start): nothing new in the outbox.
    c.register_facility(post.clone()).expect("again");
    c.register_unit(
        "u-01",
        "东胜01",
        UnitKind::PatrolCar,
        Some("stn-centre".into()),
    )
    .expect("same unit");
    assert_eq!(outbox(f.dir.path()).len(), after_first);
    // A real change is written once.
    c.register_unit("u-01", "东胜01", UnitKind::PatrolCar, Some("post-1".into()))
        .expect("new home");
    c.register_facility(Facility {
        name_en: "Meritxell Post".into(),
        ..post
    })
    .expect("renamed post");
    let ops = outbox(f.dir.path());
    assert_eq!(ops.len(), after_first + 2);
    let unit = c
        .console_state()
        .expect("state")
        .units
        .into_iter()
        .find(|u| u.id == "u-01")
        .expect("u-01");
    assert_eq!(unit.home_station.as_deref(), Some("post-1"));
}

#[test]
fn acknowledging_twice_records_it_once() {
    let f = fixture();
    let c = &f.console;
    let inc = new_incident(c, IncidentType::Fire, None);
    let r = IncidentRef {
        incident_id: inc.summary.id.clone(),
    };
    let before = outbox(f.dir.path()).len();
    assert!(
        c.acknowledge_incident(r.clone())
            .expect("ack")
            .summary
            .acknowledged
    );
    let again = c.acknowledge_incident(r).expect("ack again");
    assert!(again.summary.acknowledged);
    let acks = again
        .timeline
        .iter()
        .filter(|t| t.event == TimelineEvent::Acknowledged)
        .count();
    assert_eq!(acks, 1);
    assert_eq!(outbox(f.dir.path()).len(), before + 1);
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    drop(open_at(dir.path(), &clock).expect("create"));
    {
        let conn = rusqlite::Connection::open(dir.path().join("outpost.db")).expect("raw");
        conn.pragma_update(None, "user_version", 42).expect("bump");
    }
    let err = open_at(dir.path(), &clock).expect_err("refused");
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(err.message.contains("outpost.db"), "{}", err.message);
    assert!(err.message.contains("42"), "{}", err.message);
    assert!(
        err.message.contains(&format!(
            "version {}",
            outpost_store::schema::latest_version()
        )),
        "{}",
        err.message
    );
}

#[test]
fn startup_reports_pack_problems_without_failing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(t0()));
    // No pack ever opened.
    let c = open_at(dir.path(), &clock).expect("open");
    match c.startup() {
        Startup::PackError { problem } => {
            assert_eq!(problem.path, "");
            assert!(problem.hint.contains("--demo"), "{}", problem.hint);
        }
        other => panic!("expected PackError, got {other:?}"),
    }
    drop(c);
    // A missing file.
    let missing = dir.path().join("nowhere.outpost");
    let c = Console::open(
        ConsoleOptions {
            pack: Some(missing.clone()),
            data_dir: dir.path().join("data"),
            demo: true,
            user: "cmdr.li".into(),
        },
        clock.clone(),
    )
    .expect("open with missing pack");
    match c.startup() {
        Startup::PackError { problem } => {
            assert_eq!(problem.path, missing.display().to_string());
            assert!(
                problem.problem.contains("nowhere.outpost"),
                "{}",
                problem.problem
            );
            assert!(!problem.hint.is_empty());
        }
        other => panic!("expected PackError, got {other:?}"),
    }
    assert!(c.pack().is_none());
    drop(c);
    // A file that is not a pack.
    let junk = dir.path().join("junk.outpost");
    std::fs::write(&junk, b"not a pack at all").expect("write");
    let c = Console::open(
        ConsoleOptions {
            pack: Some(junk.clone()),
            data_dir: dir.path().join("data"),
            demo: false,
            user: "cmdr.li".into(),
        },
        clock,
    )
    .expect("open with corrupt pack");
    match c.startup() {
        Startup::PackError { problem } => {
            assert_eq!(problem.path, junk.display().to_string());
            assert!(problem.hint.contains("pack build"), "{}", problem.hint);
        }
        other => panic!("expected PackError, got {other:?}"),
    }
    // The broken pack was not remembered as the last one used.
    let store = outpost_store::Store::open(&dir.path().join("data/outpost.db"), t0()).expect("db");
    assert_eq!(
        store.setting(outpost_app::LAST_PACK_KEY).expect("read"),
        None
    );
    drop(store);
    // A folder given where a pack file belongs.
    let folder = dir.path().join("packs");
    std::fs::create_dir(&folder).expect("mkdir");
    let c = Console::open(
        ConsoleOptions {
            pack: Some(folder.clone()),
            data_dir: dir.path().join("data"),
            demo: false,
            user: "cmdr.li".into(),
        },
        Arc::new(FixedClock::new(t0())),
    )
    .expect("open with a folder as pack");
    match c.startup() {
        Startup::PackError { problem } => {
            assert_eq!(
                problem.problem,
                format!(
                    "area pack {}: is a directory, not an area pack file",
                    folder.display()
                )
            );
            assert_eq!(
                problem.hint,
                "pick the .outpost file inside that folder with --pack"
            );
        }
        other => panic!("expected PackError, got {other:?}"),
    }
}

#[test]
fn settings_default_save_and_persist() {
    let f = fixture();
    let s = f.console.get_settings().expect("get");
    assert_eq!(s, Settings::default());
    assert_eq!(s.stale_after_s, 120);
    assert_eq!(s.language, Language::Auto);
    let want = Settings {
        language: Language::ZhCn,
        theme: Theme::Night,
        stale_after_s: 300,
        server_url: Some("http://127.0.0.1:8080".into()),
    };
    assert_eq!(f.console.save_settings(want.clone()).expect("save"), want);
    let err = f
        .console
        .save_settings(Settings {
            stale_after_s: 0,
            ..want.clone()
        })
        .expect_err("stale 0");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let Fixture {
        dir,
        clock,
        console,
    } = f;
    drop(console);
    let again = open_at(dir.path(), &clock).expect("reopen");
    assert_eq!(again.get_settings().expect("get"), want);
}

#[test]
fn console_state_orders_units_and_incidents_and_hides_old_closed() {
    let f = fixture();
    let c = &f.console;
    c.register_facility(Facility {
        id: "stn-centre".into(),
        kind: FacilityKind::Station,
        name_zh: "中心派出所".into(),
        name_en: "Centre Station".into(),
        position: LatLon {
            lat: 42.507,
            lon: 1.522,
        },
    })
    .expect("facility");
    let p4 = new_incident(c, IncidentType::PublicService, None);
    f.clock.advance_secs(10);
    let p1_old = new_incident(c, IncidentType::Fire, None);
    f.clock.advance_secs(10);
    let p1_new = new_incident(c, IncidentType::Medical, None);
    f.clock.advance_secs(10);
    let gone = new_incident(c, IncidentType::Alarm, None);
    c.close_incident(CloseIncident {
        incident_id: gone.summary.id.clone(),
        disposition: Disposition::FalseAlarm,
        summary: String::new(),
    })
    .expect("close");
    f.clock.advance_secs(10);
    let recent = new_incident(c, IncidentType::Theft, None);
    f.clock.advance_secs(20 * 3600);
    c.close_incident(CloseIncident {
        incident_id: recent.summary.id.clone(),
        disposition: Disposition::ReportTaken,
        summary: String::new(),
    })
    .expect("close");
    f.clock.advance_secs(5 * 3600); // `gone` closed > 24 h ago now, `recent` 5 h ago

    let s = c.console_state().expect("state");
    assert_eq!(
        s.units
            .iter()
            .map(|u| u.callsign.as_str())
            .collect::<Vec<_>>(),
        vec!["东胜01", "东胜02", "东胜03"]
    );
    assert_eq!(
        s.incidents
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>(),
        vec![
            p1_old.summary.id.as_str(),
            p1_new.summary.id.as_str(),
            p4.summary.id.as_str(),
            recent.summary.id.as_str()
        ]
    );
    assert_eq!(s.incidents[3].status, IncidentStatus::Closed);
    assert_eq!(s.facilities.len(), 1);
    assert_eq!(s.facilities[0].name_en, "Centre Station");
    assert_eq!(s.revision, c.revision());
    assert_eq!(s.revision, 3 + 1 + 5 + 2);
}

#[test]
fn on_change_fires_after_commit_with_the_new_revision() {
    let f = fixture();
    let c = Arc::new(f.console);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let incidents_seen = Arc::new(AtomicU64::new(0));
    {
        let seen = seen.clone();
        let incidents_seen = incidents_seen.clone();
        let weak = Arc::downgrade(&c);
        c.on_change(Box::new(move |rev| {
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(rev);
            // A listener may read the console (the database lock is released).
            if let Some(c) = weak.upgrade() {
                let n = c.console_state().map(|s| s.incidents.len()).unwrap_or(99);
                incidents_seen.store(n as u64, Ordering::SeqCst);
            }
        }));
    }
    let start = c.revision();
    let inc = new_incident(&c, IncidentType::Fire, None);
    assert_eq!(incidents_seen.load(Ordering::SeqCst), 1);
    let _ = c.add_note(AddNote {
        incident_id: inc.summary.id.clone(),
        text: String::new(),
    }); // refused: no event
    c.assign_unit(on(&inc, "u-01")).expect("assign");
    assert_eq!(
        *seen.lock().unwrap_or_else(|e| e.into_inner()),
        vec![start + 1, start + 2]
    );
}

#[test]
fn latest_position_only_moves_forward() {
    let f = fixture();
    let c = &f.console;
    let fix = |secs: i64, lat: f64| Fix {
        position: LatLon { lat, lon: 1.52 },
        fix_time: t0() + chrono::Duration::seconds(secs),
        heading_deg: Some(45.0),
        speed_mps: Some(8.0),
        accuracy_m: Some(4.0),
    };
    c.report_position("u-01", fix(30, 42.53)).expect("fix 1");
    c.report_position("u-01", fix(10, 42.51))
        .expect("late older fix");
    let u = c
        .console_state()
        .expect("state")
        .units
        .into_iter()
        .find(|u| u.id == "u-01")
        .expect("u-01");
    let latest = u.fix.expect("fix");
    assert_eq!(latest.position.lat, 42.53);
    assert_eq!(latest.fix_time, t0() + chrono::Duration::seconds(30));
    let err = c
        .report_position("u-99", fix(40, 42.5))
        .expect_err("unknown unit");
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = c
        .report_position("u-01", fix(40, 142.5))
        .expect_err("bad lat");
    assert_eq!(err.code, ErrorCode::InvalidInput);
}

#[test]
fn empty_address_without_pack_falls_back_to_coordinates() {
    let f = fixture();
    let d = f
        .console
        .create_incident(NewIncident {
            incident_type: IncidentType::Fire,
            priority: Some(Priority::P2),
            location: LatLon {
                lat: 42.5,
                lon: 1.5,
            },
            address: "  ".into(),
            description: "smoke".into(),
        })
        .expect("create");
    assert_eq!(d.summary.address, "42.50000, 1.50000");
    assert_eq!(d.summary.priority, Priority::P2);
}

#[test]
fn app_error_serializes_as_error_payload() {
    let e = AppError::new(ErrorCode::IllegalTransition, "no");
    assert_eq!(
        serde_json::to_value(&e).expect("json"),
        serde_json::json!({"code": "illegal_transition", "message": "no"})
    );
    let p: outpost_app::ipc::ErrorPayload = e.into();
    assert_eq!(p.code, ErrorCode::IllegalTransition);
}

#[test]
fn acting_as_attributes_ops_to_another_user_on_this_thread_only() {
    let f = fixture();
    let c = &f.console;
    let inc = c.acting_as("demo", |c| new_incident(c, IncidentType::Fire, None));
    assert_eq!(inc.created_by, "demo");
    assert_eq!(inc.timeline[0].user, "demo");
    let d = c
        .add_note(AddNote {
            incident_id: inc.summary.id.clone(),
            text: "commander here".into(),
        })
        .expect("note");
    assert_eq!(d.timeline[1].user, "cmdr.li");
    let ops = outbox(f.dir.path());
    assert_eq!(ops[3].envelope.user, "demo");
    assert_eq!(ops[4].envelope.user, "cmdr.li");
}

#[test]
fn default_data_dir_follows_the_os_convention() {
    let dir = outpost_app::default_data_dir().expect("a home directory");
    let last = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_lowercase);
    // Linux: ~/.local/share/outpost; Windows: …\Outpost\data; macOS: …/Outpost.
    assert!(
        matches!(last.as_deref(), Some("outpost") | Some("data")),
        "{}",
        dir.display()
    );
    assert!(dir.is_absolute());
}
