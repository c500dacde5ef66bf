//! Track exports: a unit's fixes as GPX 1.1 (written with the georust `gpx` crate) or
//! KML 2.2 (the georust `kml` crate), for other GIS tools and for the record.
//!
//! GPX: one `trk` named after the callsign with one `trkseg`, a `trkpt` per fix with `lat`,
//! `lon` (WGS-84 degrees) and `time` (UTC, ISO 8601). GPX 1.1 has no speed or course
//! element, so those are not written. KML: a `Document` named after the callsign holding a
//! `LineString` placemark of the whole track when it has two fixes or more (OGC KML 2.2
//! requires two or more coordinates in a `LineString`; a lone fix is its `Point`
//! placemark alone), then one `Point` placemark per fix with a
//! `TimeStamp`/`when` (UTC, RFC 3339) — plain KML 2.2, no `gx:` extensions, so any reader
//! (Google Earth, QGIS, ATAK) opens it. Coordinates are written in full precision.

use time::OffsetDateTime;

use crate::error::AppError;
use crate::ipc::{ErrorCode, Track};

/// The KML 2.2 namespace (OGC 07-147r2).
pub const KML_NAMESPACE: &str = "http://www.opengis.net/kml/2.2";

fn export_error(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::new(
        ErrorCode::Storage,
        format!("cannot write the track as {what}: {e}"),
    )
}

/// Refuses a track without a fix: there is nothing to export.
fn not_empty(t: &Track) -> Result<(), AppError> {
    if t.points.is_empty() {
        return Err(AppError::invalid(format!(
            "{} has no position in that time window; nothing to export",
            t.callsign
        )));
    }
    Ok(())
}

/// Writes the track as a GPX 1.1 document to `out` (streamed: no copy of the whole text is
/// built).
///
/// # Errors
/// [`ErrorCode::InvalidInput`] for a track without a fix; [`ErrorCode::Storage`] when the
/// writer fails (a fix time outside what GPX can carry, or `out` fails).
pub fn write_gpx<W: std::io::Write>(t: &Track, out: W) -> Result<(), AppError> {
    not_empty(t)?;
    let mut points = Vec::with_capacity(t.points.len());
    for f in &t.points {
        let mut w = gpx::Waypoint::new(geo_types::Point::new(f.position.lon, f.position.lat));
        let nanos = i128::from(f.fix_time.timestamp_millis()) * 1_000_000;
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|e| export_error("GPX", e))?;
        w.time = Some(gpx::Time::from(at));
        points.push(w);
    }
    let doc = gpx::Gpx {
        version: gpx::GpxVersion::Gpx11,
        creator: Some("Outpost".into()),
        tracks: vec![gpx::Track {
            name: Some(t.callsign.clone()),
            segments: vec![gpx::TrackSegment { points }],
            ..gpx::Track::default()
        }],
        ..gpx::Gpx::default()
    };
    gpx::write(&doc, out).map_err(|e| export_error("GPX", e))
}

/// Writes the track as a KML 2.2 document to `out` (see the module docs: the line only for
/// two fixes or more; streamed: no copy of the whole text is built).
///
/// # Errors
/// [`ErrorCode::InvalidInput`] for a track without a fix; [`ErrorCode::Storage`] when the
/// writer or `out` fails.
pub fn write_kml<W: std::io::Write>(t: &Track, mut out: W) -> Result<(), AppError> {
    use kml::types::{Coord, Element, Geometry, LineString, Placemark, Point};
    not_empty(t)?;
    let text = |name: &str, content: String| Element {
        name: name.into(),
        content: Some(content),
        ..Element::default()
    };
    let mut elements = vec![kml::Kml::Element(text(
        "name",
        format!("{} track", t.callsign),
    ))];
    if t.points.len() >= 2 {
        elements.push(kml::Kml::Placemark(Placemark {
            name: Some(t.callsign.clone()),
            geometry: Some(Geometry::LineString(LineString::from(
                t.points
                    .iter()
                    .map(|f| Coord::new(f.position.lon, f.position.lat, None))
                    .collect::<Vec<_>>(),
            ))),
            ..Placemark::default()
        }));
    }
    for f in &t.points {
        let when = f
            .fix_time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        elements.push(kml::Kml::Placemark(Placemark {
            name: Some(when.clone()),
            geometry: Some(Geometry::Point(Point::new(
                f.position.lon,
                f.position.lat,
                None,
            ))),
            children: vec![Element {
                name: "TimeStamp".into(),
                children: vec![text("when", when)],
                ..Element::default()
            }],
            ..Placemark::default()
        }));
    }
    let doc = kml::Kml::KmlDocument(kml::KmlDocument {
        attrs: [("xmlns".to_string(), KML_NAMESPACE.to_string())].into(),
        elements: vec![kml::Kml::Document {
            attrs: Default::default(),
            elements,
        }],
        ..kml::KmlDocument::default()
    });
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .map_err(|e| export_error("KML", e))?;
    kml::KmlWriter::<_, f64>::from_writer(&mut out)
        .write(&doc)
        .map_err(|e| export_error("KML", e))?;
    out.flush().map_err(|e| export_error("KML", e))
}

/// A callsign as a file-name part: letters and digits (any script) kept, anything else
/// (path separators, spaces, dots) becomes `_`.
pub fn file_safe(callsign: &str) -> String {
    let s: String = callsign
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "unit".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_letters_of_any_script() {
        assert_eq!(file_safe("巡逻 1"), "巡逻_1");
        assert_eq!(file_safe("../P-12"), "___P-12");
        assert_eq!(file_safe("  "), "unit");
    }
}
