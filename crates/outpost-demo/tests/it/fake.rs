//! A fake console that keeps the domain's unit rules, for driving the replay without SQLite.

use std::collections::HashMap;
use std::sync::Mutex;

use outpost_app::ipc::NewIncident;
use outpost_demo::roster::RosterUnit;
use outpost_demo::{DemoConsole, IncidentSnapshot, UnitSnapshot};
use outpost_domain::op::Fix;
use outpost_domain::{Disposition, Facility, IncidentType, LatLon, UnitStatus};
use outpost_geo::{RoadEdge, RoadNetwork, RoadNode};

#[derive(Debug, Clone)]
pub struct FakeIncident {
    pub incident_type: IncidentType,
    pub location: LatLon,
    pub address: String,
    pub description: String,
    pub created_by: String,
    pub closed: Option<Disposition>,
}

#[derive(Debug, Default)]
pub struct State {
    pub facilities: HashMap<String, Facility>,
    pub units: HashMap<String, (UnitStatus, Option<String>)>,
    pub fixes: Vec<(String, Fix)>,
    pub incidents: Vec<FakeIncident>,
    /// (unit, status) in the order set.
    pub statuses: Vec<(String, UnitStatus)>,
}

#[derive(Debug, Default)]
pub struct FakeConsole {
    pub state: Mutex<State>,
    pub network: Option<RoadNetwork>,
}

#[derive(Debug)]
pub struct FakeError(pub String);

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FakeConsole {
    pub fn with_network(network: RoadNetwork) -> Self {
        Self {
            state: Mutex::default(),
            network: Some(network),
        }
    }

    pub fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }
}

impl DemoConsole for FakeConsole {
    type Error = FakeError;

    fn register_facility(&self, facility: Facility) -> Result<(), FakeError> {
        self.st().facilities.insert(facility.id.clone(), facility);
        Ok(())
    }

    fn register_unit(&self, unit: &RosterUnit) -> Result<(), FakeError> {
        self.st()
            .units
            .entry(unit.id.clone())
            .or_insert((UnitStatus::Available, None));
        Ok(())
    }

    fn report_position(&self, unit_id: &str, fix: Fix) -> Result<(), FakeError> {
        let mut st = self.st();
        if !st.units.contains_key(unit_id) {
            return Err(FakeError(format!("no unit {unit_id}")));
        }
        st.fixes.push((unit_id.to_string(), fix));
        Ok(())
    }

    fn create_incident(&self, args: NewIncident) -> Result<String, FakeError> {
        let mut st = self.st();
        st.incidents.push(FakeIncident {
            incident_type: args.incident_type,
            location: args.location,
            address: args.address,
            description: args.description,
            created_by: outpost_demo::DEMO_USER.into(),
            closed: None,
        });
        Ok(format!("inc-{}", st.incidents.len() - 1))
    }

    fn assign_unit(&self, incident_id: &str, unit_id: &str) -> Result<(), FakeError> {
        let mut st = self.st();
        let (status, inc) = st
            .units
            .get(unit_id)
            .cloned()
            .ok_or_else(|| FakeError("no unit".into()))?;
        status
            .check_dispatch(inc.is_some())
            .map_err(|e| FakeError(e.to_string()))?;
        st.units.insert(
            unit_id.into(),
            (UnitStatus::Dispatched, Some(incident_id.into())),
        );
        st.statuses.push((unit_id.into(), UnitStatus::Dispatched));
        Ok(())
    }

    fn set_unit_status(&self, unit_id: &str, to: UnitStatus) -> Result<(), FakeError> {
        let mut st = self.st();
        let (status, inc) = st
            .units
            .get(unit_id)
            .cloned()
            .ok_or_else(|| FakeError("no unit".into()))?;
        status
            .check_transition(to, inc.is_some())
            .map_err(|e| FakeError(e.to_string()))?;
        let inc = if to == UnitStatus::Available {
            None
        } else {
            inc
        };
        st.units.insert(unit_id.into(), (to, inc));
        st.statuses.push((unit_id.into(), to));
        Ok(())
    }

    fn close_incident(
        &self,
        incident_id: &str,
        disposition: Disposition,
        _summary: &str,
    ) -> Result<(), FakeError> {
        let mut st = self.st();
        let idx: usize = incident_id
            .trim_start_matches("inc-")
            .parse()
            .map_err(|_| FakeError("bad id".into()))?;
        let inc = st
            .incidents
            .get_mut(idx)
            .ok_or_else(|| FakeError("no incident".into()))?;
        if inc.closed.is_some() {
            return Err(FakeError("closed".into()));
        }
        inc.closed = Some(disposition);
        for (u, (s, i)) in st.units.clone() {
            if i.as_deref() == Some(incident_id) {
                st.units.insert(u.clone(), (UnitStatus::Available, None));
                st.statuses.push((u, UnitStatus::Available));
                let _ = s;
            }
        }
        Ok(())
    }

    fn units(&self) -> Result<Vec<UnitSnapshot>, FakeError> {
        Ok(self
            .st()
            .units
            .iter()
            .map(|(id, (s, i))| UnitSnapshot {
                unit_id: id.clone(),
                status: *s,
                incident_id: i.clone(),
            })
            .collect())
    }

    fn open_incidents(&self) -> Result<Vec<String>, FakeError> {
        Ok(self
            .st()
            .incidents
            .iter()
            .enumerate()
            .filter(|(_, i)| i.closed.is_none())
            .map(|(n, _)| format!("inc-{n}"))
            .collect())
    }

    fn incident(&self, incident_id: &str) -> Result<Option<IncidentSnapshot>, FakeError> {
        let idx: usize = match incident_id.trim_start_matches("inc-").parse() {
            Ok(i) => i,
            Err(_) => return Ok(None),
        };
        let st = self.st();
        let assigned = st
            .units
            .values()
            .filter(|(_, i)| i.as_deref() == Some(incident_id))
            .count();
        Ok(st.incidents.get(idx).map(|i| IncidentSnapshot {
            location: i.location,
            created_by: i.created_by.clone(),
            closed: i.closed.is_some(),
            incident_type: i.incident_type,
            assigned,
        }))
    }

    fn road_network(&self) -> Option<RoadNetwork> {
        self.network.clone()
    }

    fn describe(&self, at: LatLon) -> Option<String> {
        self.network
            .as_ref()
            .map(|_| format!("near {:.4},{:.4}", at.lat, at.lon))
    }
}

/// A 12 × 12 grid of two-way residential streets, 0.001° apart (≈ 111 m × 82 m), south-west
/// corner at 42.500 N 1.520 E; rows are named "Carrer R{i}", columns unnamed.
pub fn grid() -> RoadNetwork {
    let n = 12;
    let mut net = RoadNetwork::default();
    for i in 0..n {
        for j in 0..n {
            net.nodes.push(RoadNode {
                id: (i * n + j) as i64,
                at: LatLon {
                    lat: 42.5 + i as f64 * 0.001,
                    lon: 1.52 + j as f64 * 0.001,
                },
            });
        }
    }
    let idx = |i: usize, j: usize| i * n + j;
    let mut edges = Vec::new();
    for i in 0..n {
        for j in 0..n {
            for (a, b, name) in [
                (
                    idx(i, j),
                    (j + 1 < n).then(|| idx(i, j + 1)),
                    Some(format!("Carrer R{i}")),
                ),
                (idx(i, j), (i + 1 < n).then(|| idx(i + 1, j)), None),
            ] {
                if let Some(b) = b {
                    edges.push(RoadEdge {
                        from: a,
                        to: b,
                        length_m: net.nodes[a].at.distance_m(&net.nodes[b].at),
                        class: "residential".into(),
                        name,
                        oneway: false,
                        maxspeed_kmh: None,
                        car_access: true,
                    });
                }
            }
        }
    }
    net.edges = edges;
    net
}
