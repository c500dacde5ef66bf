//! The dispatch domain of Outpost: the words commanders use, as types.
//!
//! Owns: ids, WGS-84 positions, incidents (type, priority P1–P4, disposition),
//! units and their status with the legal transitions, facilities (stations, street
//! police posts, checkpoints), the sync operations of `design/SYNC.md` and the
//! hybrid logical clock that orders them.
//!
//! Architecture invariant: no IO, no async runtime, no SQLite, no Tauri. Time and ids are
//! injected through [`clock::Clock`]; nothing here calls `now()` on its own.

pub mod access;
pub mod canonical;
pub mod clock;
pub mod device;
pub mod facility;
pub mod geo;
pub mod incident;
pub mod merge;
pub mod names;
pub mod op;
pub mod op_auth;
pub mod road_closure;
pub mod timeline;
pub mod unit;
pub mod wire;

pub use clock::{Clock, FixedClock, SystemClock};
pub use device::{DeviceReport, DeviceSource};
pub use facility::{Facility, FacilityKind};
pub use geo::LatLon;
pub use incident::{Disposition, IncidentStatus, IncidentType, Priority};
pub use op::{Hlc, Lane, OpBody, OpEnvelope, Release, SCHEMA_VERSION};
pub use road_closure::{ClosureShape, RoadClosure};
pub use timeline::TimelineEvent;
pub use unit::{StatusError, UnitKind, UnitStatus};
