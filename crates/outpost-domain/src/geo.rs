//! WGS-84 positions.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A point on the WGS-84 ellipsoid, in decimal degrees (latitude north, longitude east).
///
/// Everything Outpost stores is WGS-84 (the datum of GPS and OpenStreetMap); GCJ-02 and
/// BD-09 are converted at import time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
pub struct LatLon {
    /// Latitude in degrees, −90..=90.
    pub lat: f64,
    /// Longitude in degrees, −180..=180.
    pub lon: f64,
}

/// Why a coordinate pair is not a valid WGS-84 position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LatLonError {
    /// Latitude outside −90..=90 or not a number.
    #[error("latitude {0} is outside −90..90")]
    Latitude(f64),
    /// Longitude outside −180..=180 or not a number.
    #[error("longitude {0} is outside −180..180")]
    Longitude(f64),
}

impl LatLon {
    /// Checks the ranges; NaN and infinities are refused.
    ///
    /// # Errors
    /// [`LatLonError`] naming the coordinate that is out of range.
    pub fn new(lat: f64, lon: f64) -> Result<Self, LatLonError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(LatLonError::Latitude(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(LatLonError::Longitude(lon));
        }
        Ok(Self { lat, lon })
    }

    /// Great-circle distance in metres (haversine on a sphere of radius 6,371,008.8 m,
    /// the IUGG mean Earth radius); good to ~0.5 % which is plenty for ranking and labels.
    pub fn distance_m(&self, other: &LatLon) -> f64 {
        const R: f64 = 6_371_008.8;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * R * a.sqrt().asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert!(LatLon::new(42.5, 1.52).is_ok());
        assert_eq!(LatLon::new(91.0, 0.0), Err(LatLonError::Latitude(91.0)));
        assert_eq!(
            LatLon::new(0.0, -180.5),
            Err(LatLonError::Longitude(-180.5))
        );
        assert!(LatLon::new(f64::NAN, 0.0).is_err());
    }

    #[test]
    fn distance_one_degree_of_latitude() {
        let a = LatLon {
            lat: 42.0,
            lon: 1.5,
        };
        let b = LatLon {
            lat: 43.0,
            lon: 1.5,
        };
        let d = a.distance_m(&b);
        assert!((d - 111_195.0).abs() < 50.0, "{d}");
    }
}
