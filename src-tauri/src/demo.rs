//! `--demo`: the Andorra demo area. Builds the demo pack into the data directory on first
//! run (from the OpenStreetMap extract the project ships in `data/osm/`), then the replay of
//! simulated units and incidents runs through the console.

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use outpost_app::Console;
use outpost_demo::{DemoHandle, DemoOptions, Roster};

/// File name of the demo pack inside the data directory.
pub const DEMO_PACK: &str = "andorra-demo.outpost";

/// Path of the shipped extract, relative to the repository or install root.
const DEMO_OSM: &str = "data/osm/andorra.osm.pbf";

/// Where the shipped extract may be, first match wins: `$OUTPOST_DEMO_OSM`; the app's
/// resource directory (`bundle.resources` in tauri.conf.json: `/usr/lib/Outpost/` from a
/// .deb, `Contents/Resources/` on macOS, beside the .exe on Windows, beside the binary in
/// `target/<profile>/` as tauri-build copies it); the current directory; the repository root of
/// a `target/<profile>/outpost` binary.
pub fn demo_osm_candidates(
    cwd: &Path,
    exe: Option<&Path>,
    resource_dir: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("OUTPOST_DEMO_OSM") {
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = resource_dir {
        out.push(dir.join(DEMO_OSM));
    }
    out.push(cwd.join(DEMO_OSM));
    if let Some(dir) = exe.and_then(Path::parent) {
        // target/<profile>/outpost and target/<triple>/<profile>/outpost
        for up in [2usize, 3] {
            if let Some(root) = dir.ancestors().nth(up) {
                out.push(root.join(DEMO_OSM));
            }
        }
    }
    out
}

/// The demo pack in `data_dir`, built first if it is not there yet or does not open.
///
/// # Errors
/// When the extract cannot be found or the build fails (the message says which file and why).
pub fn ensure_demo_pack(data_dir: &Path, resource_dir: Option<&Path>) -> Result<PathBuf> {
    let pack = data_dir.join(DEMO_PACK);
    if pack.is_file() {
        // A demo pack from an older build (or a damaged one) is simply rebuilt.
        match outpost_geo::Pack::open(&pack) {
            Ok(_) => return Ok(pack),
            Err(e) => eprintln!("outpost: {e}; rebuilding the demo pack"),
        }
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe().ok();
    let candidates = demo_osm_candidates(&cwd, exe.as_deref(), resource_dir);
    let Some(osm) = candidates.iter().find(|p| p.is_file()) else {
        bail!(
            "the demo area needs {DEMO_OSM}; looked in: {}. Run from the repository root or set OUTPOST_DEMO_OSM",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    eprintln!(
        "outpost: building the demo area pack {} from {}…",
        pack.display(),
        osm.display()
    );
    build_pack(osm, &pack)
        .with_context(|| format!("building the demo pack from {}", osm.display()))?;
    Ok(pack)
}

/// Builds the pack with progress bars on stderr (the builder writes a temp file and renames
/// it at the end, so an interrupted first run leaves no half-written pack).
fn build_pack(osm: &Path, out: &Path) -> Result<()> {
    let mut opts = outpost_geo::BuildOptions::new(osm, out);
    opts.name = Some("Andorra".to_owned());
    let report = outpost_geo::build_pack(&opts)?;
    eprintln!(
        "outpost: demo pack ready: {} ({:.1} MB in {:.0} s)",
        report.out.display(),
        report.size_bytes as f64 / 1e6,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// The running replay, managed by the app so it stops (and its thread is joined) on exit.
#[derive(Default)]
pub struct Replay(pub Mutex<Option<DemoHandle>>);

impl Replay {
    /// Stops the replay if it runs.
    pub fn stop(&self) {
        let handle = self
            .0
            .lock()
            .map(|mut g| g.take())
            .unwrap_or_else(|e| e.into_inner().take());
        if let Some(mut handle) = handle {
            handle.stop();
            tracing::info!(stats = ?handle.stats(), "demo replay stopped");
        }
    }
}

/// Registers the built-in Andorra roster (facilities, units at home) and starts the replay
/// thread: units drive on the pack's roads, incidents arrive on the 911 sample's rhythm.
///
/// # Errors
/// When the built-in roster does not parse (a test in outpost-demo guards against it).
pub fn start_replay(console: &Arc<Console>) -> Result<Replay> {
    let roster = Roster::andorra().context("the built-in demo roster")?;
    let handle = outpost_demo::start(Arc::clone(console), roster, DemoOptions::default());
    tracing::info!(stats = ?handle.stats(), "demo replay started");
    Ok(Replay(Mutex::new(Some(handle))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_resources_cwd_and_repo() {
        let c = demo_osm_candidates(
            Path::new("/w"),
            Some(Path::new("/repo/target/release/outpost")),
            Some(Path::new("/usr/lib/Outpost")),
        );
        let at = |p: &str| c.iter().position(|x| x == Path::new(p));
        let res = at("/usr/lib/Outpost/data/osm/andorra.osm.pbf").expect("resource dir");
        let cwd = at("/w/data/osm/andorra.osm.pbf").expect("cwd");
        let repo = at("/repo/data/osm/andorra.osm.pbf").expect("repo root");
        assert!(res < cwd && cwd < repo, "{c:?}");
    }
}
