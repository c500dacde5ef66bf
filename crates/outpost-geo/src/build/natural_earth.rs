//! The low-zoom world layer: Natural Earth 1:50m land and countries, shipped as TopoJSON in
//! `data/naturalearth/` and embedded in the binary, converted to ESRI shapefiles because
//! tilemaker 2.2 reads only shapefiles for non-OSM layers.
//! TopoJSON: <https://github.com/topojson/topojson-specification>.

use std::path::{Path, PathBuf};

use geojson::Value;
use shapefile::dbase::{self, FieldValue, TableWriterBuilder};
use shapefile::{Point, Polygon, PolygonRing};

use crate::error::BuildError;

/// Natural Earth 1:50m land (public domain), TopoJSON object `land`.
pub const LAND_TOPOJSON: &str = include_str!("../../../../data/naturalearth/land-50m.json");
/// Natural Earth 1:50m countries (public domain), TopoJSON object `countries`, property `name`.
pub const COUNTRIES_TOPOJSON: &str =
    include_str!("../../../../data/naturalearth/countries-50m.json");

/// Paths of the two shapefiles written by [`write_shapefiles`].
pub struct NaturalEarthShapes {
    /// Land polygons, no attributes.
    pub land: PathBuf,
    /// Country polygons with a `name` attribute.
    pub countries: PathBuf,
}

/// Writes `ne_land.shp` and `ne_countries.shp` (with `.shx`, `.dbf`) into `dir`.
pub fn write_shapefiles(dir: &Path) -> Result<NaturalEarthShapes, BuildError> {
    let land = dir.join("ne_land.shp");
    let countries = dir.join("ne_countries.shp");
    convert(LAND_TOPOJSON, "land", "land-50m.json", &land, false)?;
    convert(
        COUNTRIES_TOPOJSON,
        "countries",
        "countries-50m.json",
        &countries,
        true,
    )?;
    Ok(NaturalEarthShapes { land, countries })
}

fn convert(
    json: &str,
    object: &str,
    source_name: &str,
    out: &Path,
    with_name: bool,
) -> Result<usize, BuildError> {
    let err = |detail: String| BuildError::NaturalEarth {
        path: PathBuf::from("data/naturalearth").join(source_name),
        detail,
    };
    let topo = match json.parse::<topojson::TopoJson>() {
        Ok(topojson::TopoJson::Topology(t)) => t,
        Ok(_) => return Err(err("not a TopoJSON Topology".into())),
        Err(e) => return Err(err(e.to_string())),
    };
    let features = topojson::to_geojson(&topo, object).map_err(|e| err(e.to_string()))?;
    let table = TableWriterBuilder::new().add_character_field(
        dbase::FieldName::try_from("name").map_err(|e| err(format!("{e:?}")))?,
        80,
    );
    let mut writer = shapefile::Writer::from_path(out, table).map_err(|e| err(e.to_string()))?;
    let mut count = 0;
    for f in features.features {
        let Some(geometry) = f.geometry else { continue };
        let mut polygons = Vec::new();
        collect_polygons(&geometry.value, &mut polygons);
        if polygons.is_empty() {
            continue;
        }
        let name = if with_name {
            f.properties
                .as_ref()
                .and_then(|p| p.get("name"))
                .and_then(|v| v.as_str())
                .map(|s| s.chars().take(80).collect::<String>())
        } else {
            None
        };
        // One record per polygon (outer ring + holes): tilemaker clips each record to every
        // tile its bounding box touches, so one world-wide multipolygon would be clipped
        // thousands of times.
        for polygon in polygons {
            let mut rings = Vec::new();
            for (i, ring) in polygon.into_iter().enumerate() {
                if ring.len() < 4 {
                    continue;
                }
                let points: Vec<Point> = ring.iter().map(|p| Point::new(p[0], p[1])).collect();
                rings.push(if i == 0 {
                    PolygonRing::Outer(points)
                } else {
                    PolygonRing::Inner(points)
                });
            }
            if !matches!(rings.first(), Some(PolygonRing::Outer(_))) {
                continue;
            }
            let mut record = dbase::Record::default();
            record.insert("name".to_string(), FieldValue::Character(name.clone()));
            writer
                .write_shape_and_record(&Polygon::with_rings(rings), &record)
                .map_err(|e| err(e.to_string()))?;
            count += 1;
        }
    }
    if count == 0 {
        return Err(err(format!("object `{object}` has no polygons")));
    }
    Ok(count)
}

type Ring = Vec<Vec<f64>>;

fn collect_polygons(value: &Value, out: &mut Vec<Vec<Ring>>) {
    match value {
        Value::Polygon(rings) => out.push(rings.clone()),
        Value::MultiPolygon(polys) => out.extend(polys.iter().cloned()),
        Value::GeometryCollection(geoms) => {
            for g in geoms {
                collect_polygons(&g.value, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_layers_with_country_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shapes = write_shapefiles(dir.path()).expect("convert");
        let mut reader = shapefile::Reader::from_path(&shapes.countries).expect("read back");
        let names: Vec<String> = reader
            .iter_shapes_and_records()
            .filter_map(|r| r.ok())
            .filter_map(|(_, rec)| match rec.get("name") {
                Some(FieldValue::Character(Some(n))) => Some(n.clone()),
                _ => None,
            })
            .collect();
        assert!(names.len() > 200, "{} countries", names.len());
        assert!(names.iter().any(|n| n == "Andorra"));
        assert!(names.iter().any(|n| n == "China"));
        let land = shapefile::read_shapes(&shapes.land).expect("land");
        assert!(!land.is_empty());
    }
}
