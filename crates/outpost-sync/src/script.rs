//! Scripted console actions for the headless `outpost-sync-client` (tests, benchmarks): one
//! JSON object per line, e.g.
//!
//! ```json
//! {"action":"register_unit","unit_id":"u-01","callsign":"A1","unit_kind":"patrol_car"}
//! {"action":"create_incident","name":"i1","incident_type":"fire","priority":"P1","location":{"lat":42.5,"lon":1.5}}
//! {"action":"assign","incident":"i1","unit_id":"u-01"}
//! {"action":"status","unit_id":"u-01","to":"en_route"}
//! {"action":"note","incident":"i1","text":"smoke seen"}
//! {"action":"position","unit_id":"u-01","position":{"lat":42.51,"lon":1.52}}
//! {"action":"close","incident":"i1","disposition":"resolved"}
//! ```
//!
//! An `incident` is a UUID or a `name` given to an earlier `create_incident` (names are kept
//! in the store's settings, so a later run of the client can use them). Each action is one
//! [`Store::write`] with the op the console would write; the releases of a close or a status
//! change are decided as the console decides them (every active assignment the author sees).
//! Domain checks (legal transitions) are not repeated here: scripts may write what two
//! disconnected consoles could write, such as a double assignment.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Deserialize;
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::incident::{Disposition, IncidentType, Priority};
use outpost_domain::op::{Fix, IncidentFields, OpBody, OpEnvelope, Release};
use outpost_domain::unit::{UnitKind, UnitStatus};
use outpost_store::{Store, StoreError, query};

/// One scripted action.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// `unit.register`.
    RegisterUnit {
        /// Stable id.
        unit_id: String,
        /// Callsign.
        callsign: String,
        /// Kind.
        unit_kind: UnitKind,
        /// Home station id.
        #[serde(default)]
        home_station: Option<String>,
    },
    /// `incident.create`.
    CreateIncident {
        /// A name later actions use for it.
        #[serde(default)]
        name: Option<String>,
        /// Its id (a new UUIDv7 when absent).
        #[serde(default)]
        incident_id: Option<Uuid>,
        /// Type.
        incident_type: IncidentType,
        /// Priority.
        priority: Priority,
        /// Location (WGS-84).
        location: LatLon,
        /// Address text.
        #[serde(default)]
        address: String,
        /// Description.
        #[serde(default)]
        description: String,
    },
    /// `incident.set_fields`.
    SetFields {
        /// Incident (UUID or name).
        incident: String,
        /// The fields.
        fields: IncidentFields,
    },
    /// `incident.acknowledge`.
    Acknowledge {
        /// Incident (UUID or name).
        incident: String,
    },
    /// `assignment.add`.
    Assign {
        /// Incident (UUID or name).
        incident: String,
        /// Unit.
        unit_id: String,
    },
    /// `assignment.release` of the unit's active assignment on the incident.
    Release {
        /// Incident (UUID or name).
        incident: String,
        /// Unit.
        unit_id: String,
    },
    /// `unit.set_status`.
    Status {
        /// Unit.
        unit_id: String,
        /// New status.
        to: UnitStatus,
    },
    /// `timeline.append`.
    Note {
        /// Incident (UUID or name).
        incident: String,
        /// Text.
        text: String,
    },
    /// `position.report`.
    Position {
        /// Unit.
        unit_id: String,
        /// Where (WGS-84).
        position: LatLon,
        /// Fix time (UTC); now when absent.
        #[serde(default)]
        fix_time: Option<DateTime<Utc>>,
    },
    /// `incident.close`.
    Close {
        /// Incident (UUID or name).
        incident: String,
        /// Disposition.
        disposition: Disposition,
        /// Summary.
        #[serde(default)]
        summary: String,
    },
}

/// Why a scripted action could not be performed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// A line is not an action.
    #[error("line {line}: not an action: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The action refers to something unknown.
    #[error("{0}")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a JSON-lines script (blank lines and lines starting with `#` are skipped).
///
/// # Errors
/// [`ScriptError::Parse`] naming the line.
pub fn parse(text: &str) -> Result<Vec<Action>, ScriptError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| ScriptError::Parse {
                line: i + 1,
                source,
            })
        })
        .collect()
}

const NAME_KEY_PREFIX: &str = "script.incident.";

fn incident_id(c: &Connection, name: &str) -> Result<Uuid, ScriptError> {
    if let Ok(id) = Uuid::parse_str(name) {
        return Ok(id);
    }
    query::setting(c, &format!("{NAME_KEY_PREFIX}{name}"))?
        .and_then(|v| Uuid::parse_str(&v).ok())
        .ok_or_else(|| ScriptError::Unknown(format!("no incident named {name:?}")))
}

fn releases_of(
    c: &Connection,
    assignments: Vec<query::AssignmentRow>,
    free: bool,
) -> Result<Vec<Release>, ScriptError> {
    let mut out = Vec::new();
    for a in assignments {
        let others = query::active_assignments_of_unit(c, &a.unit_id)?
            .iter()
            .any(|o| o.id != a.id);
        out.push(Release {
            assignment_id: a.id,
            incident_id: a.incident_id,
            unit_to: (free && !others).then_some(UnitStatus::Available),
            unit_id: a.unit_id,
        });
    }
    Ok(out)
}

/// Performs one action as `user` at `now`: one [`Store::write`], committed on return.
///
/// # Errors
/// [`ScriptError::Unknown`] for an unknown incident, unit or assignment; store errors.
pub fn perform(
    store: &mut Store,
    now: DateTime<Utc>,
    user: &str,
    action: &Action,
) -> Result<OpEnvelope, ScriptError> {
    let env = store.write(now, user, |c| -> Result<OpBody, ScriptError> {
        Ok(match action.clone() {
            Action::RegisterUnit {
                unit_id,
                callsign,
                unit_kind,
                home_station,
            } => OpBody::UnitRegister {
                unit_id,
                callsign,
                unit_kind,
                home_station,
            },
            Action::CreateIncident {
                incident_id,
                incident_type,
                priority,
                location,
                address,
                description,
                ..
            } => OpBody::IncidentCreate {
                incident_id: incident_id.unwrap_or_else(Uuid::now_v7),
                number: query::next_incident_number(c, &now.format("%Y%m%d").to_string())?,
                incident_type,
                priority,
                location,
                address,
                description,
            },
            Action::SetFields { incident, fields } => OpBody::IncidentSetFields {
                incident_id: incident_id(c, &incident)?,
                fields,
            },
            Action::Acknowledge { incident } => OpBody::IncidentAcknowledge {
                incident_id: incident_id(c, &incident)?,
            },
            Action::Assign { incident, unit_id } => OpBody::AssignmentAdd {
                assignment_id: Uuid::now_v7(),
                incident_id: incident_id(c, &incident)?,
                unit_id,
            },
            Action::Release { incident, unit_id } => {
                let id = incident_id(c, &incident)?;
                let a = query::active_assignments_of_unit(c, &unit_id)?
                    .into_iter()
                    .find(|a| a.incident_id == id)
                    .ok_or_else(|| {
                        ScriptError::Unknown(format!("{unit_id} is not assigned to {incident}"))
                    })?;
                let others = query::active_assignments_of_unit(c, &unit_id)?
                    .iter()
                    .any(|o| o.id != a.id);
                OpBody::AssignmentRelease {
                    assignment_id: a.id,
                    incident_id: id,
                    unit_id,
                    unit_to: (!others).then_some(UnitStatus::Available),
                }
            }
            Action::Status { unit_id, to } => {
                let unit = query::unit(c, &unit_id)?
                    .ok_or_else(|| ScriptError::Unknown(format!("no unit {unit_id}")))?;
                let releases = if to.is_committed() {
                    Vec::new()
                } else {
                    releases_of(c, query::active_assignments_of_unit(c, &unit_id)?, false)?
                };
                OpBody::UnitSetStatus {
                    unit_id,
                    from: unit.status,
                    to,
                    releases,
                }
            }
            Action::Note { incident, text } => OpBody::TimelineAppend {
                entry_id: Uuid::now_v7(),
                incident_id: incident_id(c, &incident)?,
                text,
            },
            Action::Position {
                unit_id,
                position,
                fix_time,
            } => OpBody::PositionReport {
                unit_id,
                fix: Fix {
                    position,
                    fix_time: fix_time.unwrap_or(now),
                    heading_deg: None,
                    speed_mps: None,
                    accuracy_m: None,
                },
            },
            Action::Close {
                incident,
                disposition,
                summary,
            } => {
                let id = incident_id(c, &incident)?;
                let active = query::assignments(c, id)?
                    .into_iter()
                    .filter(|a| a.released_at.is_none())
                    .collect();
                OpBody::IncidentClose {
                    incident_id: id,
                    disposition,
                    summary,
                    releases: releases_of(c, active, true)?,
                }
            }
        })
    })?;
    if let (
        Action::CreateIncident {
            name: Some(name), ..
        },
        OpBody::IncidentCreate { incident_id, .. },
    ) = (action, &env.body)
    {
        store.set_setting(
            &format!("{NAME_KEY_PREFIX}{name}"),
            &incident_id.to_string(),
        )?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_writes_the_ops_it_says() {
        let script = r#"
# a comment
{"action":"register_unit","unit_id":"u-01","callsign":"A1","unit_kind":"patrol_car"}
{"action":"create_incident","name":"i1","incident_type":"fire","priority":"P1","location":{"lat":42.5,"lon":1.5}}
{"action":"assign","incident":"i1","unit_id":"u-01"}
{"action":"note","incident":"i1","text":"smoke seen"}
{"action":"position","unit_id":"u-01","position":{"lat":42.51,"lon":1.52}}
{"action":"close","incident":"i1","disposition":"resolved"}
"#;
        let actions = parse(script).expect("parses");
        assert_eq!(actions.len(), 6);
        let now = Utc::now();
        let mut store = Store::open_in_memory(now).expect("store");
        let kinds: Vec<&str> = actions
            .iter()
            .map(|a| {
                perform(&mut store, now, "test", a)
                    .expect("performs")
                    .body
                    .kind()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "unit.register",
                "incident.create",
                "assignment.add",
                "timeline.append",
                "position.report",
                "incident.close"
            ]
        );
        let outbox = query::outbox_all(store.conn()).expect("outbox");
        let OpBody::IncidentClose { releases, .. } = &outbox[5].envelope.body else {
            panic!("close expected: {:?}", outbox[5].envelope.body);
        };
        assert_eq!(releases.len(), 1);
        assert_eq!(releases[0].unit_id, "u-01");
        assert_eq!(releases[0].unit_to, Some(UnitStatus::Available));
    }

    #[test]
    fn bad_lines_are_named() {
        let err = parse("{\"action\":\"note\"}\n").expect_err("missing fields");
        assert!(err.to_string().starts_with("line 1:"), "{err}");
        let now = Utc::now();
        let mut store = Store::open_in_memory(now).expect("store");
        let a = Action::Note {
            incident: "nope".into(),
            text: "x".into(),
        };
        assert!(matches!(
            perform(&mut store, now, "t", &a),
            Err(ScriptError::Unknown(_))
        ));
    }
}
