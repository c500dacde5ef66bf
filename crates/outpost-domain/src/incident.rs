//! Incidents: type, priority, status, disposition.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Longest address text an incident keeps, in characters (Unicode scalar values). A street,
/// a place and a landmark fit many times over; more is a paste accident.
pub const MAX_ADDRESS_CHARS: usize = 300;

/// Longest description, note or closing summary, in characters. About four screen pages:
/// enough for a caller's account, small enough that every console can show and sync it.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// Incident priority. P1 is the most urgent (life at risk, crime in progress); P4 is a
/// report that can wait. Sorted P1 < P2 < P3 < P4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
pub enum Priority {
    /// Immediate threat to life; the 1-minute response of the 1-3-5 rule.
    P1,
    /// Urgent.
    P2,
    /// Prompt.
    P3,
    /// Routine.
    P4,
}

/// The kind of incident. The catalogue is small on purpose; the first word of a Montgomery
/// County call title ("EMS", "Fire", "Traffic") maps onto it for the demo replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IncidentType {
    /// Road traffic collision (交通事故).
    TrafficAccident,
    /// Obstruction, disabled vehicle, hazard on the road.
    TrafficHazard,
    /// Fire (火警).
    Fire,
    /// Medical emergency (医疗急救).
    Medical,
    /// Theft or burglary (盗窃).
    Theft,
    /// Assault or fight (打架斗殴).
    Assault,
    /// Public disturbance, dispute (纠纷).
    Disturbance,
    /// Missing or trapped person (走失/被困).
    MissingPerson,
    /// Flood, water rescue (洪水救援).
    FloodRescue,
    /// Alarm activation.
    Alarm,
    /// Public service request at a post (便民服务).
    PublicService,
    /// Anything else.
    Other,
}

impl IncidentType {
    /// Every type, in menu order.
    pub const ALL: [IncidentType; 12] = [
        IncidentType::TrafficAccident,
        IncidentType::TrafficHazard,
        IncidentType::Fire,
        IncidentType::Medical,
        IncidentType::Theft,
        IncidentType::Assault,
        IncidentType::Disturbance,
        IncidentType::MissingPerson,
        IncidentType::FloodRescue,
        IncidentType::Alarm,
        IncidentType::PublicService,
        IncidentType::Other,
    ];

    /// The priority a new incident of this type gets unless the call-taker says otherwise.
    pub fn default_priority(self) -> Priority {
        use IncidentType::*;
        match self {
            Fire | Medical | Assault | FloodRescue | MissingPerson => Priority::P1,
            TrafficAccident | Theft | Alarm => Priority::P2,
            TrafficHazard | Disturbance => Priority::P3,
            PublicService | Other => Priority::P4,
        }
    }
}

/// Where an incident is in its life. Derived from assignments and closure, never set by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Open with no unit assigned.
    Pending,
    /// At least one unit assigned, none on scene yet.
    Dispatched,
    /// At least one assigned unit is on scene.
    OnScene,
    /// Closed with a disposition.
    Closed,
}

/// How an incident ended (the disposition code recorded at close).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Handled on scene; nothing further.
    Resolved,
    /// A report was written.
    ReportTaken,
    /// One or more arrests.
    Arrest,
    /// Handed to another agency (fire, medical, city services).
    Referred,
    /// A person was transported (hospital, shelter).
    Transported,
    /// Checked; no police action needed.
    NoActionRequired,
    /// Nothing found at the location.
    Unfounded,
    /// An alarm or call that turned out false.
    FalseAlarm,
    /// A repeat of another incident.
    Duplicate,
    /// Cancelled by the caller or the commander.
    Cancelled,
}

impl Disposition {
    /// Every disposition, in menu order.
    pub const ALL: [Disposition; 10] = [
        Disposition::Resolved,
        Disposition::ReportTaken,
        Disposition::Arrest,
        Disposition::Referred,
        Disposition::Transported,
        Disposition::NoActionRequired,
        Disposition::Unfounded,
        Disposition::FalseAlarm,
        Disposition::Duplicate,
        Disposition::Cancelled,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_sort_most_urgent_first() {
        let mut v = vec![Priority::P3, Priority::P1, Priority::P4, Priority::P2];
        v.sort();
        assert_eq!(
            v,
            vec![Priority::P1, Priority::P2, Priority::P3, Priority::P4]
        );
    }

    #[test]
    fn wire_names() {
        assert_eq!(
            serde_json::to_string(&Priority::P1).ok().as_deref(),
            Some("\"P1\"")
        );
        assert_eq!(
            serde_json::to_string(&IncidentType::TrafficAccident)
                .ok()
                .as_deref(),
            Some("\"traffic_accident\"")
        );
        assert_eq!(IncidentType::Fire.default_priority(), Priority::P1);
        assert_eq!(IncidentType::Other.default_priority(), Priority::P4);
    }
}
