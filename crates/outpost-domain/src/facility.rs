//! Fixed facilities: police stations, street police posts, checkpoints.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::geo::LatLon;

/// The kind of a fixed facility. Each has its own map icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FacilityKind {
    /// A police station (派出所) or the command centre.
    Station,
    /// A round-the-clock street police post (警务站), often also serving the public.
    Post,
    /// A checkpoint (检查站) on an entry road.
    Checkpoint,
}

/// A station, post or checkpoint on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Facility {
    /// Stable id, e.g. `"stn-centre"`.
    pub id: String,
    /// What it is.
    pub kind: FacilityKind,
    /// Name in Chinese (shown first in zh-CN).
    pub name_zh: String,
    /// Name in Latin script.
    pub name_en: String,
    /// Where it is (WGS-84).
    pub position: LatLon,
}
