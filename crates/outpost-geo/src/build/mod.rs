//! Building an area pack from an OSM PBF extract.
//!
//! Stages: hashing, scanning OSM (and checking the input), Natural Earth shapefiles,
//! tilemaker (vector tiles z0–14 into an MBTiles file), roads, search index, metadata.
//! Everything is written into a hidden temporary file next to the output, which is renamed
//! over the output only once the pack opens as complete; on any error or interruption the
//! temporary file is removed, so no half-written pack is ever left behind.

mod index;
mod natural_earth;
mod osm;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use outpost_domain::LatLon;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::error::BuildError;
use crate::pack::Pack;
use crate::routing::RoadGraph;
use crate::schema;

pub use index::{SearchCounts, parse_maxspeed};

/// The tilemaker config of the area pass (OSM layers z0–14).
pub const TILEMAKER_CONFIG: &str = include_str!("../../tilemaker/config.json");
/// The tilemaker Lua profile of the area pass (tilemaker 2.2 API).
pub const TILEMAKER_PROCESS: &str = include_str!("../../tilemaker/process.lua");
/// The tilemaker config of the world pass (Natural Earth z0–6, whole world, base zoom 6 so
/// tilemaker does not index world polygons at z14); `NE_*_SHP` are replaced by paths.
pub const TILEMAKER_WORLD_CONFIG: &str = include_str!("../../tilemaker/config-world.json");
/// The Lua profile of the world pass: ignores all OSM objects.
pub const TILEMAKER_WORLD_PROCESS: &str = include_str!("../../tilemaker/process-world.lua");
/// Attribution stored in the pack's metadata.
pub const ATTRIBUTION: &str = "© OpenStreetMap contributors";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The OSM extract (`.osm.pbf`); must hold complete ways (no missing nodes).
    pub osm: PathBuf,
    /// The pack to write (conventionally `*.outpost`); replaced atomically if it exists.
    pub out: PathBuf,
    /// Area name for the metadata; defaults to the input file name without `.osm.pbf`.
    pub name: Option<String>,
    /// The tilemaker binary; defaults to `tilemaker` on `PATH`.
    pub tilemaker: PathBuf,
    /// Draw progress bars on stderr (they hide themselves when stderr is not a terminal).
    pub progress: bool,
    /// Set to true (e.g. from a Ctrl-C handler) to stop the build; it then fails with
    /// [`BuildError::Interrupted`] and removes its temporary file.
    pub cancel: Arc<AtomicBool>,
}

impl BuildOptions {
    /// Options with defaults: name from the file, `tilemaker` from `PATH`, progress on.
    pub fn new(osm: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        BuildOptions {
            osm: osm.into(),
            out: out.into(),
            name: None,
            tilemaker: PathBuf::from("tilemaker"),
            progress: true,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The pack written.
    pub out: PathBuf,
    /// Its size, bytes.
    pub size_bytes: u64,
    /// Wall-clock build time.
    pub elapsed: Duration,
    /// Tiles per zoom level, `(zoom, count)`, for zooms that have tiles.
    pub tiles_per_zoom: Vec<(u8, u64)>,
    /// Search entries by kind.
    pub search: SearchCounts,
    /// Road graph nodes.
    pub road_nodes: usize,
    /// Road graph edges.
    pub road_edges: usize,
    /// Wall-clock time of each stage, in order.
    pub stage_times: Vec<(&'static str, Duration)>,
}

struct Stages {
    enabled: bool,
    multi: indicatif::MultiProgress,
    times: std::cell::RefCell<Vec<(&'static str, Duration)>>,
    last: std::cell::Cell<Instant>,
}

impl Stages {
    fn bar(&self, len: u64, msg: &'static str) -> ProgressBar {
        let pb = if self.enabled {
            self.multi.add(ProgressBar::new(len))
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner:.green} {msg:<16} [{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len}",
        ) {
            pb.set_style(style);
        }
        pb.set_message(msg);
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }

    fn bytes(&self, len: u64, msg: &'static str) -> ProgressBar {
        let pb = self.bar(len, msg);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner:.green} {msg:<16} [{elapsed_precise}] {wide_bar:.cyan/blue} {bytes}/{total_bytes}",
        ) {
            pb.set_style(style);
        }
        pb
    }

    fn spinner(&self, msg: &'static str) -> ProgressBar {
        let pb = if self.enabled {
            self.multi.add(ProgressBar::no_length())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) =
            ProgressStyle::with_template("{spinner:.green} {msg:<16} [{elapsed_precise}]")
        {
            pb.set_style(style);
        }
        pb.set_message(msg);
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }
}

impl Stages {
    fn done(&self, pb: &ProgressBar, msg: &'static str) {
        pb.finish_with_message(format!("{msg} ✓"));
        let now = Instant::now();
        self.times
            .borrow_mut()
            .push((msg, now.duration_since(self.last.get())));
        self.last.set(now);
    }
}

/// Builds an area pack. See the module doc for the stages and the no-partial-file rule.
///
/// # Errors
/// [`BuildError`] naming the input (missing, not a PBF, clipped, empty area) or the stage
/// that failed; in every case no file is left at `out` (an existing pack there is kept).
pub fn build_pack(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let started = Instant::now();
    let stages = Stages {
        enabled: opts.progress,
        multi: indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        times: Default::default(),
        last: std::cell::Cell::new(started),
    };
    let input = &opts.osm;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| BuildError::Io { path, cause }
    };
    let interrupted = || BuildError::Interrupted {
        path: opts.out.clone(),
    };
    let check_cancel = || {
        if opts.cancel.load(Ordering::Relaxed) {
            Err(interrupted())
        } else {
            Ok(())
        }
    };
    let meta = match std::fs::metadata(input) {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            return Err(BuildError::NotPbf {
                path: input.clone(),
                detail: "not a regular file".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BuildError::InputMissing {
                path: input.clone(),
            });
        }
        Err(e) => return Err(io_err(input)(e)),
    };
    let out_dir = check_output(&opts.out, input)?;
    let name = match &opts.name {
        None => default_name(input),
        Some(n) if n.trim().is_empty() => {
            return Err(BuildError::EmptyName {
                path: opts.out.clone(),
                default: default_name(input),
            });
        }
        Some(n) => n.trim().to_string(),
    };

    // The temporary pack lives next to the output so the final rename is atomic. It is
    // created before any work so an unwritable directory is reported at once.
    let out_name = opts
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pack.outpost".into());
    let partial = tempfile::Builder::new()
        .prefix(&format!(".{out_name}."))
        .suffix(".partial.mbtiles")
        .tempfile_in(&out_dir)
        .map_err(|e| BuildError::Io {
            path: opts.out.clone(),
            cause: cannot_create_in(&out_dir, &e),
        })?
        .into_temp_path();
    // tilemaker wants to create the file itself (it would otherwise stop to warn that it
    // overwrites); the TempPath still removes whatever is at the path if we fail.
    std::fs::remove_file(&partial).map_err(io_err(&opts.out))?;
    let _sidecars = Sidecars(partial.to_path_buf());
    let temp_dir = std::env::temp_dir();
    let work = tempfile::tempdir().map_err(|e| BuildError::Io {
        path: temp_dir.clone(),
        cause: cannot_create_in(&temp_dir, &e),
    })?;

    // 1. Hashing.
    let pb = stages.bytes(meta.len(), "hashing");
    let sha256 = hash_file(input, &pb, &opts.cancel).map_err(io_err(input))?;
    stages.done(&pb, "hashing");
    check_cancel()?;

    // 2. Scanning OSM (also validates the input).
    let pb = stages.bytes(meta.len(), "scanning OSM");
    let osm = osm::scan(input, &pb, &opts.cancel)?;
    stages.done(&pb, "scanning OSM");
    check_cancel()?;

    // 3. Natural Earth shapefiles.
    let pb = stages.spinner("natural earth");
    let ne = natural_earth::write_shapefiles(work.path())?;
    stages.done(&pb, "natural earth");
    check_cancel()?;

    // 4. tilemaker: the world pass writes the file, the area pass merges into it (tilemaker
    // `--merge` adds its layers to existing tiles).
    let pb = stages.spinner("tilemaker");
    let mut world: serde_json::Value =
        serde_json::from_str(TILEMAKER_WORLD_CONFIG).map_err(|e| BuildError::Tilemaker {
            path: opts.osm.clone(),
            detail: format!("bad world config: {e}"),
        })?;
    world["layers"]["ne_land"]["source"] = ne.land.to_string_lossy().into_owned().into();
    world["layers"]["ne_countries"]["source"] = ne.countries.to_string_lossy().into_owned().into();
    let area: serde_json::Value =
        serde_json::from_str(TILEMAKER_CONFIG).map_err(|e| BuildError::Tilemaker {
            path: opts.osm.clone(),
            detail: format!("bad config: {e}"),
        })?;
    run_tilemaker(
        opts,
        work.path(),
        "world",
        &world,
        TILEMAKER_WORLD_PROCESS,
        &partial,
        false,
    )?;
    check_cancel()?;
    run_tilemaker(
        opts,
        work.path(),
        "area",
        &area,
        TILEMAKER_PROCESS,
        &partial,
        true,
    )?;
    stages.done(&pb, "tilemaker");
    check_cancel()?;

    let sql_err = |what: &'static str| {
        let path = opts.out.clone();
        move |cause| BuildError::Sqlite { path, what, cause }
    };
    let mut conn = Connection::open(&partial).map_err(sql_err("open"))?;
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;")
        .map_err(sql_err("pragmas"))?;
    conn.execute_batch(schema::CREATE_OWN_TABLES)
        .map_err(sql_err("schema"))?;

    // 5. Roads.
    let pb = stages.bar(0, "roads");
    let tx = conn.transaction().map_err(sql_err("roads"))?;
    let roads = index::write_roads(&tx, &osm, &pb).map_err(sql_err("roads"))?;
    tx.commit().map_err(sql_err("roads"))?;
    stages.done(&pb, "roads");
    check_cancel()?;

    // 5b. Contraction order of the car graph, from the network exactly as the reader sees it.
    let pb = stages.spinner("road hierarchy");
    let net = crate::pack::read_road_network(&conn).map_err(sql_err("road hierarchy"))?;
    if let Ok(graph) = RoadGraph::from_network(&net) {
        let order = graph.contraction_order();
        let blob: Vec<u8> = order.order.iter().flat_map(|v| v.to_le_bytes()).collect();
        let tx = conn.transaction().map_err(sql_err("road hierarchy"))?;
        for (k, v) in [
            ("order", blob),
            (
                "node_count",
                (graph.node_count() as u64).to_le_bytes().to_vec(),
            ),
            (
                "segment_count",
                (graph.segment_count() as u64).to_le_bytes().to_vec(),
            ),
        ] {
            tx.execute(
                "INSERT INTO road_ch (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .map_err(sql_err("road hierarchy"))?;
        }
        tx.commit().map_err(sql_err("road hierarchy"))?;
    }
    stages.done(&pb, "road hierarchy");
    check_cancel()?;

    // 6. Search index.
    let pb = stages.bar(0, "search index");
    let tx = conn.transaction().map_err(sql_err("search index"))?;
    let (search, places) = index::write_search(&tx, &osm, &pb).map_err(sql_err("search index"))?;
    tx.commit().map_err(sql_err("search index"))?;
    stages.done(&pb, "search index");
    check_cancel()?;

    // 7. Metadata.
    let bounds = osm
        .header_bbox
        .or_else(|| osm.data_bbox())
        .unwrap_or([-180.0, -85.0, 180.0, 85.0]);
    let center = main_place(&osm, bounds).unwrap_or(LatLon {
        lat: (bounds[1] + bounds[3]) / 2.0,
        lon: (bounds[0] + bounds[2]) / 2.0,
    });
    let zoom = fit_zoom(bounds);
    let source_file = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let built_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let kv: Vec<(&str, String)> = vec![
        ("name", name),
        ("format", "pbf".into()),
        ("type", "baselayer".into()),
        ("version", "1".into()),
        (
            "description",
            format!("Outpost area pack built from {source_file}"),
        ),
        (
            "bounds",
            format!(
                "{:.6},{:.6},{:.6},{:.6}",
                bounds[0], bounds[1], bounds[2], bounds[3]
            ),
        ),
        (
            "center",
            format!("{:.6},{:.6},{zoom:.1}", center.lon, center.lat),
        ),
        ("minzoom", "0".into()),
        ("maxzoom", "14".into()),
        ("attribution", ATTRIBUTION.into()),
        (schema::FORMAT_KEY, schema::FORMAT_VERSION.into()),
        ("outpost_built_at", built_at),
        ("outpost_source_sha256", sha256),
        ("outpost_source_file", source_file),
        ("outpost_places", places.len().to_string()),
    ];
    let tx = conn.transaction().map_err(sql_err("metadata"))?;
    for (k, v) in &kv {
        tx.execute(
            "INSERT OR REPLACE INTO metadata (name, value) VALUES (?1, ?2)",
            params![k, v],
        )
        .map_err(sql_err("metadata"))?;
    }
    tx.commit().map_err(sql_err("metadata"))?;
    let tiles_per_zoom: Vec<(u8, u64)> = conn
        .prepare("SELECT zoom_level, count(*) FROM tiles GROUP BY zoom_level ORDER BY zoom_level")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, u8>(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_err("tile counts"))?;
    conn.execute_batch("PRAGMA synchronous = FULL; ANALYZE;")
        .map_err(sql_err("analyze"))?;
    conn.close().map_err(|(_, e)| sql_err("close")(e))?;
    check_cancel()?;

    // The pack must open as complete before it replaces anything.
    Pack::open(&partial).map_err(|e| BuildError::Incomplete {
        path: opts.out.clone(),
        detail: e.to_string(),
    })?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&opts.out))?;
    partial
        .persist(&opts.out)
        .map_err(|e| io_err(&opts.out)(e.error))?;
    let size_bytes = std::fs::metadata(&opts.out)
        .map_err(io_err(&opts.out))?
        .len();
    Ok(BuildReport {
        out: opts.out.clone(),
        size_bytes,
        elapsed: started.elapsed(),
        tiles_per_zoom,
        search,
        road_nodes: roads.nodes,
        road_edges: roads.edges,
        stage_times: stages.times.take(),
    })
}

/// Removes SQLite's `-journal`/`-wal`/`-shm` files of the temporary pack when the build
/// ends (an interrupted tilemaker leaves its rollback journal behind).
struct Sidecars(PathBuf);

impl Drop for Sidecars {
    fn drop(&mut self) {
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Checks the output path before any work: its directory exists, it is not a directory,
/// and it is not the input extract (same path, symlink or hard link), which the final rename
/// would replace. Returns the directory to write the temporary file in.
fn check_output(out: &Path, input: &Path) -> Result<PathBuf, BuildError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if out.file_name().is_none() && !out.is_dir() {
        return Err(BuildError::OutputNotAFileName {
            path: out.to_path_buf(),
        });
    }
    if !dir.is_dir() {
        return Err(BuildError::OutputDirMissing {
            path: out.to_path_buf(),
            dir,
        });
    }
    let Ok(meta) = std::fs::metadata(out) else {
        // Nothing there yet (or a dangling symlink, which the rename replaces).
        return Ok(dir);
    };
    if meta.is_dir() {
        return Err(BuildError::OutputIsDirectory {
            path: out.to_path_buf(),
            example: out.join("area.outpost"),
        });
    }
    if same_file(out, &meta, input) {
        return Err(BuildError::OutputIsInput {
            path: out.to_path_buf(),
        });
    }
    Ok(dir)
}

/// Whether `a` (whose metadata is `a_meta`) and `b` are the same file: the same canonical
/// path, or on Unix the same device and inode (hard links).
fn same_file(a: &Path, a_meta: &std::fs::Metadata, b: &Path) -> bool {
    if let (Ok(ca), Ok(cb)) = (std::fs::canonicalize(a), std::fs::canonicalize(b))
        && ca == cb
    {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(b_meta) = std::fs::metadata(b) {
            return a_meta.dev() == b_meta.dev() && a_meta.ino() == b_meta.ino();
        }
    }
    #[cfg(not(unix))]
    let _ = a_meta;
    false
}

/// The error of creating a temporary file or directory in `dir`, without the temporary
/// name `tempfile` appends to the OS message (`"... at path \"/x/.a.outpost.JqCxjj..."`).
fn cannot_create_in(dir: &Path, e: &std::io::Error) -> std::io::Error {
    let text = e.to_string();
    let os = text.split(" at path ").next().unwrap_or(&text);
    std::io::Error::new(
        e.kind(),
        format!("cannot create a file in {}: {os}", dir.display()),
    )
}

fn hash_file(path: &Path, pb: &ProgressBar, cancel: &AtomicBool) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    // On cancellation stop early; the caller checks the flag and reports the interruption.
    while !cancel.load(Ordering::Relaxed) {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        pb.inc(n as u64);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn default_name(input: &Path) -> String {
    let file = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "area".into());
    let stem = file
        .strip_suffix(".osm.pbf")
        .or_else(|| file.strip_suffix(".pbf"))
        .unwrap_or(&file);
    stem.to_string()
}

/// The most populous city or town inside `bounds` (where a commander looks first).
fn main_place(osm: &osm::OsmData, bounds: [f64; 4]) -> Option<LatLon> {
    osm.tagged_nodes
        .iter()
        .filter(|n| {
            n.lon >= bounds[0] && n.lat >= bounds[1] && n.lon <= bounds[2] && n.lat <= bounds[3]
        })
        .filter_map(|n| {
            let rank = match n.tags.get("place").map(String::as_str) {
                Some("city") => 2,
                Some("town") => 1,
                _ => return None,
            };
            let pop = n
                .tags
                .get("population")
                .and_then(|p| p.replace([',', ' '], "").parse::<u64>().ok())
                .unwrap_or(0);
            Some((
                (rank, pop),
                LatLon {
                    lat: n.lat,
                    lon: n.lon,
                },
            ))
        })
        .max_by_key(|(k, _)| *k)
        .map(|(_, at)| at)
}

/// Web-mercator zoom at which `bounds` fills about 800 px (256 px tiles), 0..=14.
fn fit_zoom(bounds: [f64; 4]) -> f64 {
    let mid_lat = ((bounds[1] + bounds[3]) / 2.0).to_radians();
    let w = (bounds[2] - bounds[0]).abs().max(1e-6);
    let h = ((bounds[3] - bounds[1]).abs() / mid_lat.cos().max(0.1)).max(1e-6);
    let z = (800.0 * 360.0 / (256.0 * w.max(h))).log2();
    (z * 10.0).floor().clamp(0.0, 140.0) / 10.0
}

fn run_tilemaker(
    opts: &BuildOptions,
    work: &Path,
    pass: &str,
    config: &serde_json::Value,
    process: &str,
    out: &Path,
    merge: bool,
) -> Result<(), BuildError> {
    let cancel = &opts.cancel;
    let fail = |detail: String| BuildError::Tilemaker {
        path: opts.osm.clone(),
        detail: format!("{pass} pass: {detail}"),
    };
    let config_path = work.join(format!("config-{pass}.json"));
    let process_path = work.join(format!("process-{pass}.lua"));
    let log_path = work.join(format!("tilemaker-{pass}.log"));
    std::fs::write(&config_path, config.to_string()).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&process_path, process).map_err(|e| fail(e.to_string()))?;
    let log = std::fs::File::create(&log_path).map_err(|e| fail(e.to_string()))?;
    let log_err = log.try_clone().map_err(|e| fail(e.to_string()))?;
    let input = std::path::absolute(&opts.osm).map_err(|e| fail(e.to_string()))?;
    let out = std::path::absolute(out).map_err(|e| fail(e.to_string()))?;
    let mut child = Command::new(&opts.tilemaker)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .arg("--config")
        .arg(&config_path)
        .arg("--process")
        .arg(&process_path)
        .args(merge.then_some("--merge"))
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!(
                    "`{}` not found; install the Debian package `tilemaker` (2.2)",
                    opts.tilemaker.display()
                ))
            } else {
                fail(format!("cannot start `{}`: {e}", opts.tilemaker.display()))
            }
        })?;
    let status = loop {
        if cancel.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BuildError::Interrupted {
                path: opts.out.clone(),
            });
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    if !status.success() {
        // Ctrl-C reaches tilemaker too; report the interruption, not its exit status.
        std::thread::sleep(Duration::from_millis(100));
        if cancel.load(Ordering::Relaxed) {
            return Err(BuildError::Interrupted {
                path: opts.out.clone(),
            });
        }
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text
            .lines()
            .flat_map(|l| l.split('\r'))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
        return Err(fail(format!("{status}: {tail}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_errors_do_not_show_the_temporary_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gone = dir.path().join("gone");
        let e = tempfile::Builder::new()
            .prefix(".a.outpost.")
            .suffix(".partial.mbtiles")
            .tempfile_in(&gone)
            .expect_err("no such directory");
        let e = cannot_create_in(&gone, &e);
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            format!(
                "cannot create a file in {}: No such file or directory (os error 2)",
                gone.display()
            )
        );
    }

    #[test]
    fn default_names() {
        assert_eq!(default_name(Path::new("x/andorra.osm.pbf")), "andorra");
        assert_eq!(default_name(Path::new("dongsheng.pbf")), "dongsheng");
    }

    #[test]
    fn fit_zoom_for_andorra_and_the_world() {
        let z = fit_zoom([1.422104, 42.43509, 1.780386, 42.65717]);
        assert!((11.0..12.5).contains(&z), "{z}");
        assert!(fit_zoom([-180.0, -85.0, 180.0, 85.0]) < 2.0);
    }

    #[test]
    fn embedded_config_lists_the_contract_layers() {
        let c: serde_json::Value = serde_json::from_str(TILEMAKER_CONFIG).expect("json");
        let w: serde_json::Value = serde_json::from_str(TILEMAKER_WORLD_CONFIG).expect("json");
        let mut layers = c["layers"].as_object().expect("layers").clone();
        layers.extend(w["layers"].as_object().expect("world layers").clone());
        let declared: Vec<&str> = c["settings"]["metadata"]["json"]["vector_layers"]
            .as_array()
            .expect("vector_layers")
            .iter()
            .filter_map(|l| l["id"].as_str())
            .collect();
        for l in [
            "ne_land",
            "ne_countries",
            "water",
            "waterway",
            "landuse",
            "building",
            "road",
            "place",
            "poi",
            "housenumber",
            "boundary",
        ] {
            assert!(layers.contains_key(l), "{l}");
            assert!(declared.contains(&l), "{l} missing from vector_layers");
        }
        assert_eq!(c["settings"]["maxzoom"], 14);
    }
}
