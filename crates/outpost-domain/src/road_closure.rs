//! Road closures: a road or an area a commander closed (a flood, a collapse, an
//! operation), with a reason and an expected end. Routing, ETAs and coverage avoid an
//! active closure on every console (the closure travels as a `road_closure.set` op).
//!
//! A closure is one register per closure id ([`crate::merge::Register::RoadClosure`]): a
//! `road_closure.set` op writes the whole [`RoadClosure`]; the newest write (by HLC) is
//! shown, like a facility or a device binding. Lifting is a write with `lifted: true`, and
//! lifting is final, like an incident close (SYNC.md: never silently overwrite a
//! colleague's decision): once ANY applied write of a closure has `lifted: true`, the
//! closure is shown lifted — the register winner's value with `lifted = true`, and
//! `set_by`/`set_at` of the earliest lift write in merge order (least
//! [`crate::merge::OpMeta::order_key`]). A later or concurrent edit by a console that had
//! not seen the lift changes the shown value but never reactivates it; every replica shows
//! the same result whatever the arrival order. A lifted closure's id is not set again: to
//! close the road again, draw a new closure.
//! The geometry is stored in WGS-84 degrees, never as edge ids of one pack: each console
//! maps it onto its own pack's road graph (`outpost_geo::routing`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::geo::LatLon;

/// Most points in a closure's line or ring.
pub const MAX_CLOSURE_POINTS: usize = 500;
/// Most characters in a closure's reason.
pub const MAX_REASON_CHARS: usize = 500;

/// What is closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClosureShape {
    /// A closed stretch of road: the road's line, 2..=[`MAX_CLOSURE_POINTS`] points in
    /// WGS-84 degrees (as snapped to the road by the console that drew it). Road segments
    /// that run along it (within about 12 m, direction within 35°) are closed both ways.
    Line {
        /// The line, in order.
        points: Vec<LatLon>,
    },
    /// A closed area: a ring of 3..=[`MAX_CLOSURE_POINTS`] points (not repeated at the
    /// end). Every road segment with a point inside it or crossing its edge is closed.
    Area {
        /// The ring's corners, in order.
        ring: Vec<LatLon>,
    },
}

impl ClosureShape {
    /// The points of the line or the ring.
    pub fn points(&self) -> &[LatLon] {
        match self {
            ClosureShape::Line { points } => points,
            ClosureShape::Area { ring } => ring,
        }
    }
}

/// A road closure as written by `road_closure.set` (the register's value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RoadClosure {
    /// Stable id (UUIDv7), chosen when the closure is drawn.
    pub closure_id: Uuid,
    /// What is closed.
    pub shape: ClosureShape,
    /// Why, e.g. "积水 0.8 m" (1..=[`MAX_REASON_CHARS`] characters).
    pub reason: String,
    /// Expected end (UTC); after it the closure no longer applies. `None`: until lifted.
    #[ts(type = "string | null")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Lifted explicitly by a commander. Final: once any write of the closure id has it,
    /// the closure is shown lifted on every console, whatever later writes say (see the
    /// module doc).
    pub lifted: bool,
}

impl RoadClosure {
    /// True when routing must avoid it at `now`: not lifted and its expected end (if any)
    /// is still ahead.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.lifted && self.ends_at.is_none_or(|end| end > now)
    }

    /// Checks the value: shape sizes, every point a valid WGS-84 position, the reason's
    /// length. The message names the field, e.g. `"shape.points[3]: latitude 91 is out of
    /// range"`.
    ///
    /// # Errors
    /// A message saying what is wrong and where.
    pub fn check(&self) -> Result<(), String> {
        let (name, min) = match &self.shape {
            ClosureShape::Line { .. } => ("shape.points", 2),
            ClosureShape::Area { .. } => ("shape.ring", 3),
        };
        let pts = self.shape.points();
        if pts.len() < min || pts.len() > MAX_CLOSURE_POINTS {
            return Err(format!(
                "{name} has {} points; a closure needs {min}..={MAX_CLOSURE_POINTS}",
                pts.len()
            ));
        }
        for (i, p) in pts.iter().enumerate() {
            LatLon::new(p.lat, p.lon).map_err(|e| format!("{name}[{i}]: {e}"))?;
        }
        if let Some((i, c)) = self
            .reason
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control())
        {
            return Err(format!(
                "reason has a control character (U+{:04X}) at character {i}",
                u32::from(c)
            ));
        }
        // Zero-width characters (U+200B..U+200F, U+2060..U+2064, U+FEFF) are not whitespace
        // to `trim`, but say nothing either.
        let invisible = |c: char| {
            c.is_whitespace()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
        };
        if self.reason.chars().all(invisible) {
            return Err("reason is empty; say why the road is closed".into());
        }
        if self.reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "reason has {} characters, at most {MAX_REASON_CHARS}",
                self.reason.chars().count()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: Vec<LatLon>) -> RoadClosure {
        RoadClosure {
            closure_id: Uuid::nil(),
            shape: ClosureShape::Line { points },
            reason: "积水".into(),
            ends_at: None,
            lifted: false,
        }
    }

    #[test]
    fn active_until_lifted_or_ended() {
        let now = DateTime::parse_from_rfc3339("2026-08-01T03:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let p = LatLon {
            lat: 42.5,
            lon: 1.5,
        };
        let mut c = line(vec![p, p]);
        assert!(c.is_active(now));
        c.ends_at = Some(now);
        assert!(!c.is_active(now), "a closure ends at its expected end");
        c.ends_at = Some(now + chrono::Duration::hours(1));
        assert!(c.is_active(now));
        c.lifted = true;
        assert!(!c.is_active(now));
    }

    #[test]
    fn check_names_the_bad_point() {
        let p = LatLon {
            lat: 42.5,
            lon: 1.5,
        };
        assert_eq!(line(vec![p, p]).check(), Ok(()));
        let err = line(vec![p]).check().err().unwrap_or_default();
        assert!(err.contains("shape.points has 1 points"), "{err}");
        let bad = LatLon {
            lat: 91.0,
            lon: 1.5,
        };
        let err = line(vec![p, bad]).check().err().unwrap_or_default();
        assert!(err.starts_with("shape.points[1]"), "{err}");
        let mut c = line(vec![p, p]);
        c.reason = "  ".into();
        assert!(c.check().is_err());
        c.reason = "\u{200B}\u{FEFF} ".into();
        assert_eq!(
            c.check(),
            Err("reason is empty; say why the road is closed".into())
        );
        c.reason = "积水\u{7}".into();
        assert_eq!(
            c.check(),
            Err("reason has a control character (U+0007) at character 2".into())
        );
        c.reason = "积水 0.8 m".into();
        assert_eq!(c.check(), Ok(()));
    }
}
