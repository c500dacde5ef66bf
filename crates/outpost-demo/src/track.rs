//! Walking along a polyline at a speed, and the real GPX track.
//!
//! Distances in metres (haversine, [`LatLon::distance_m`]); headings in degrees clockwise
//! from true north, 0..360 (initial great-circle bearing of the segment, as a receiver's
//! course over ground); positions interpolated linearly in degrees within a segment, which
//! is exact to well under a metre for street-length segments.

use std::path::{Path, PathBuf};

use outpost_domain::LatLon;

/// The real GPS track recorded in Andorra (`data/gps/andorra_for_map_matching.gpx`,
/// graphhopper test file, Apache-2.0), compiled in.
pub const ANDORRA_GPX: &str = include_str!("../../../data/gps/andorra_for_map_matching.gpx");

/// Initial bearing from `a` to `b`, degrees clockwise from true north in 0..360.
pub fn bearing_deg(a: LatLon, b: LatLon) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dl = (b.lon - a.lon).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    let deg = y.atan2(x).to_degrees();
    (deg + 360.0) % 360.0
}

/// A point on a polyline: where, and which way the line runs there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointOnLine {
    /// Interpolated position (WGS-84).
    pub position: LatLon,
    /// Heading of the segment, degrees clockwise from north (0..360); `None` on a
    /// polyline of a single point.
    pub heading_deg: Option<f64>,
    /// True once the distance reaches or passes the end.
    pub at_end: bool,
}

/// A polyline with cumulative distances, for walking along it.
#[derive(Debug, Clone, PartialEq)]
pub struct Polyline {
    points: Vec<LatLon>,
    /// `cum[i]` = metres from the start to `points[i]`.
    cum: Vec<f64>,
}

impl Polyline {
    /// A polyline through `points`; consecutive duplicates are dropped. `None` when empty.
    pub fn new(points: Vec<LatLon>) -> Option<Polyline> {
        let mut pts: Vec<LatLon> = Vec::with_capacity(points.len());
        for p in points {
            if pts.last().is_none_or(|q| q.distance_m(&p) > 0.01) {
                pts.push(p);
            }
        }
        if pts.is_empty() {
            return None;
        }
        let mut cum = Vec::with_capacity(pts.len());
        let mut total = 0.0;
        cum.push(0.0);
        for w in pts.windows(2) {
            total += w[0].distance_m(&w[1]);
            cum.push(total);
        }
        Some(Polyline { points: pts, cum })
    }

    /// Total length in metres.
    pub fn length_m(&self) -> f64 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    /// The vertices.
    pub fn points(&self) -> &[LatLon] {
        &self.points
    }

    /// First vertex.
    pub fn start(&self) -> LatLon {
        self.points[0]
    }

    /// Last vertex.
    pub fn end(&self) -> LatLon {
        self.points[self.points.len() - 1]
    }

    /// The point `distance_m` metres from the start, clamped to the line.
    pub fn at_distance(&self, distance_m: f64) -> PointOnLine {
        let n = self.points.len();
        if n == 1 {
            return PointOnLine {
                position: self.points[0],
                heading_deg: None,
                at_end: true,
            };
        }
        let d = if distance_m.is_finite() {
            distance_m.clamp(0.0, self.length_m())
        } else {
            0.0
        };
        // The segment i..i+1 with cum[i] <= d < cum[i+1] (the last one at the end).
        let i = match self.cum.partition_point(|&c| c <= d) {
            0 => 0,
            k => (k - 1).min(n - 2),
        };
        let (a, b) = (self.points[i], self.points[i + 1]);
        let seg = self.cum[i + 1] - self.cum[i];
        let t = if seg > 0.0 {
            ((d - self.cum[i]) / seg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        PointOnLine {
            position: LatLon {
                lat: a.lat + (b.lat - a.lat) * t,
                lon: a.lon + (b.lon - a.lon) * t,
            },
            heading_deg: Some(bearing_deg(a, b)),
            at_end: distance_m >= self.length_m(),
        }
    }

    /// The point reached after `elapsed_s` seconds at `speed_mps` metres per second.
    pub fn at_time(&self, speed_mps: f64, elapsed_s: f64) -> PointOnLine {
        self.at_distance(speed_mps.max(0.0) * elapsed_s.max(0.0))
    }

    /// This polyline followed by `other` (joined end to start).
    pub fn join(&self, other: &Polyline) -> Polyline {
        let mut pts = self.points.clone();
        pts.extend_from_slice(&other.points);
        // Both are non-empty, so the result is too.
        Polyline::new(pts).unwrap_or_else(|| self.clone())
    }

    /// The same line run backwards.
    pub fn reversed(&self) -> Polyline {
        let mut pts = self.points.clone();
        pts.reverse();
        Polyline::new(pts).unwrap_or_else(|| self.clone())
    }
}

/// A GPX file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("GPX {file}: {problem}")]
pub struct TrackError {
    /// The file (or `<built-in>`).
    pub file: PathBuf,
    /// What is wrong.
    pub problem: String,
}

/// The points of every track segment of a GPX document (GPX 1.0/1.1, via the `gpx`
/// crate), in file order, as one polyline. The Andorra track carries no timestamps, so the
/// demo drives it at a constant plausible speed rather than replaying recorded times.
///
/// # Errors
/// [`TrackError`] when the text is not GPX or holds no track point.
pub fn parse_gpx(text: &str, file: &Path) -> Result<Polyline, TrackError> {
    let gpx = gpx::read(text.as_bytes()).map_err(|e| TrackError {
        file: file.to_path_buf(),
        problem: format!("not GPX: {e}"),
    })?;
    let mut pts = Vec::new();
    for trk in &gpx.tracks {
        for seg in &trk.segments {
            for wp in &seg.points {
                let p = wp.point();
                if let Ok(ll) = LatLon::new(p.y(), p.x()) {
                    pts.push(ll);
                }
            }
        }
    }
    Polyline::new(pts).ok_or_else(|| TrackError {
        file: file.to_path_buf(),
        problem: "no track points".into(),
    })
}

/// The built-in Andorra track.
///
/// # Errors
/// Only if the compiled-in file is broken (a test guards against it).
pub fn andorra_track() -> Result<Polyline, TrackError> {
    parse_gpx(
        ANDORRA_GPX,
        Path::new("<built-in andorra_for_map_matching.gpx>"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon { lat, lon }
    }

    #[test]
    fn bearings_point_the_right_way() {
        let o = ll(42.5, 1.5);
        assert!((bearing_deg(o, ll(42.6, 1.5)) - 0.0).abs() < 1e-9);
        assert!((bearing_deg(o, ll(42.4, 1.5)) - 180.0).abs() < 1e-9);
        let east = bearing_deg(o, ll(42.5, 1.6));
        assert!((east - 90.0).abs() < 0.1, "{east}");
        let west = bearing_deg(o, ll(42.5, 1.4));
        assert!((west - 270.0).abs() < 0.1, "{west}");
    }

    #[test]
    fn walking_interpolates_position_and_heading() {
        // North 1 km (≈0.008993° of latitude), then east.
        let north = ll(42.5 + 1000.0 / 111_195.0, 1.5);
        let line = Polyline::new(vec![ll(42.5, 1.5), north, ll(north.lat, 1.51)]).expect("line");
        let first = line.points()[0].distance_m(&line.points()[1]);
        assert!((first - 1000.0).abs() < 1.0, "{first}");

        // 10 m/s for 50 s = 500 m: halfway up the first leg, heading north.
        let p = line.at_time(10.0, 50.0);
        assert!((p.position.lat - (42.5 + 500.0 / 111_195.0)).abs() < 1e-6);
        assert_eq!(p.position.lon, 1.5);
        assert_eq!(p.heading_deg, Some(0.0));
        assert!(!p.at_end);

        // 1,200 m: 200 m along the eastward leg.
        let p = line.at_distance(1200.0);
        assert!((p.position.lat - north.lat).abs() < 1e-9);
        let along = north.distance_m(&p.position);
        assert!((along - 200.0).abs() < 0.5, "{along}");
        let h = p.heading_deg.expect("heading");
        assert!((h - 90.0).abs() < 0.1, "{h}");

        // Past the end: clamped, flagged.
        let p = line.at_distance(1e9);
        assert_eq!(p.position, line.end());
        assert!(p.at_end);
        // Before the start: the start.
        assert_eq!(line.at_distance(-5.0).position, line.start());
    }

    #[test]
    fn degenerate_lines() {
        assert!(Polyline::new(vec![]).is_none());
        let one = Polyline::new(vec![ll(42.5, 1.5), ll(42.5, 1.5)]).expect("one point");
        assert_eq!(one.points().len(), 1);
        assert_eq!(one.length_m(), 0.0);
        let p = one.at_time(10.0, 3.0);
        assert_eq!(p.heading_deg, None);
        assert!(p.at_end);
    }

    #[test]
    fn the_andorra_track_is_in_el_serrat() {
        let t = andorra_track().expect("built-in track");
        assert_eq!(t.points().len(), 21);
        assert_eq!(t.start(), ll(42.623636, 1.532909));
        let len = t.length_m();
        assert!((500.0..5000.0).contains(&len), "{len}");
        let back = t.reversed();
        assert_eq!(back.start(), t.end());
        assert!((back.length_m() - len).abs() < 1e-6);
    }

    #[test]
    fn not_gpx_is_named() {
        let e = parse_gpx("<html/>", Path::new("x.gpx")).expect_err("not gpx");
        assert!(e.to_string().starts_with("GPX x.gpx: "), "{e}");
    }
}
