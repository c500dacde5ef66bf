//! `outpost-server pack build`: area packs, built by `outpost-geo`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use outpost_geo::{BuildError, BuildOptions, BuildReport};

/// Arguments of `outpost-server pack build`.
#[derive(Debug, Clone)]
pub struct PackBuildArgs {
    /// The OSM extract, `.osm.pbf`.
    pub osm: PathBuf,
    /// The pack to write, `.outpost`.
    pub out: PathBuf,
    /// Area name stored in the pack.
    pub name: Option<String>,
    /// Show progress bars on stderr.
    pub progress: bool,
}

/// Builds an area pack; `cancel` becomes true on Ctrl-C.
///
/// # Errors
/// The [`BuildError`] of the build (one line, naming the file and the problem).
pub fn pack_build(
    args: &PackBuildArgs,
    cancel: Arc<AtomicBool>,
) -> Result<BuildReport, BuildError> {
    let mut opts = BuildOptions::new(&args.osm, &args.out);
    opts.name = args.name.clone();
    opts.progress = args.progress;
    opts.cancel = cancel;
    outpost_geo::build_pack(&opts)
}

/// The summary printed after a build: size, time, tiles per zoom, search and road counts.
pub fn report_lines(r: &BuildReport) -> Vec<String> {
    let tiles: u64 = r.tiles_per_zoom.iter().map(|(_, n)| n).sum();
    vec![
        format!(
            "wrote {} ({:.1} MB) in {:.1} s",
            r.out.display(),
            r.size_bytes as f64 / 1e6,
            r.elapsed.as_secs_f64()
        ),
        format!(
            "tiles: {tiles} (z{}..z{}: {})",
            r.tiles_per_zoom.first().map_or(0, |t| t.0),
            r.tiles_per_zoom.last().map_or(0, |t| t.0),
            r.tiles_per_zoom
                .iter()
                .map(|(_, n)| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        format!(
            "search: {} streets, {} places, {} POIs, {} addresses",
            r.search.streets, r.search.places, r.search.pois, r.search.addresses
        ),
        format!("roads: {} nodes, {} edges", r.road_nodes, r.road_edges),
        format!(
            "stages: {}",
            r.stage_times
                .iter()
                .map(|(s, d)| format!("{s} {:.1} s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ]
}
