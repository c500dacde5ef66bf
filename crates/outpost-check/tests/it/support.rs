//! Shared test fixtures.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::road_closure::{ClosureShape, RoadClosure};

/// 2026-11-29T10:00:00Z, the scenarios' start.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
}

/// How many closure ids the generators use: few, so that several consoles or authors set
/// one closure concurrently.
pub const CLOSURES: usize = 3;

/// A generated road closure (always valid: `RoadClosure::check` passes).
#[derive(Debug, Clone)]
pub struct ClosureSpec {
    /// Which of the [`CLOSURES`] ids.
    pub which: usize,
    /// An area (ring) rather than a line.
    pub area: bool,
    /// Points on a 0.001° grid from (42.500, 1.510) in Andorra la Vella (WGS-84 degrees):
    /// 2..=6 for a line, 3..=6 for an area.
    pub points: Vec<(u8, u8)>,
    /// One of three reasons.
    pub reason: u8,
    /// Expected end, seconds after [`t0`] (`None`: until lifted).
    pub ends: Option<i64>,
    /// Lifted.
    pub lifted: bool,
}

impl ClosureSpec {
    /// The id of closure `which`.
    pub fn id(which: usize) -> Uuid {
        Uuid::from_u128(0xD000_0000 + (which % CLOSURES) as u128)
    }

    /// The closure it describes.
    pub fn closure(&self) -> RoadClosure {
        let pts: Vec<LatLon> = self
            .points
            .iter()
            .map(|(a, b)| LatLon {
                lat: 42.50 + f64::from(*a) * 0.001,
                lon: 1.51 + f64::from(*b) * 0.001,
            })
            .collect();
        RoadClosure {
            closure_id: ClosureSpec::id(self.which),
            shape: if self.area {
                ClosureShape::Area { ring: pts }
            } else {
                ClosureShape::Line { points: pts }
            },
            reason: ["积水 0.8 m", "塌方", "Operació policial"][usize::from(self.reason) % 3]
                .into(),
            ends_at: self.ends.map(|e| t0() + chrono::Duration::seconds(e)),
            lifted: self.lifted,
        }
    }
}

/// Random valid closures: lines of 2..=6 points, areas of 3..=6, ends before or after t0.
pub fn closure_spec() -> impl Strategy<Value = ClosureSpec> {
    (
        0..CLOSURES,
        any::<bool>(),
        proptest::collection::vec((0u8..20, 0u8..20), 3..7),
        0u8..3,
        proptest::option::of(-600i64..7_200),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(which, area, mut points, reason, ends, lifted, short)| {
            if !area && short {
                points.truncate(2);
            }
            ClosureSpec {
                which,
                area,
                points,
                reason,
                ends,
                lifted,
            }
        })
}
