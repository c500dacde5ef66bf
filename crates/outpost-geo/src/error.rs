//! Errors of reading and building area packs. Every message names the file and the problem
//! on one line, so the console and the CLI can show it as is.

use std::path::PathBuf;

/// Why an area pack could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The file does not exist (permanent until the user picks another file).
    #[error("area pack {path}: file not found")]
    Missing {
        /// The pack path as given.
        path: PathBuf,
    },
    /// The file exists but is not an Outpost area pack (not SQLite, or not our tables).
    #[error(
        "area pack {path}: not an Outpost area pack ({reason}); rebuild it with `outpost-server pack build`"
    )]
    NotAPack {
        /// The pack path.
        path: PathBuf,
        /// What is wrong, e.g. "file is not a database" or "no metadata table".
        reason: String,
    },
    /// The pack's data could not be read (I/O error or corruption inside SQLite).
    #[error("area pack {path}: {what}: {source}")]
    Read {
        /// The pack path.
        path: PathBuf,
        /// What was being read, e.g. "tile 14/8290/6064".
        what: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored tile is not valid gzip.
    #[error("area pack {path}: tile {z}/{x}/{y} is corrupt: {source}")]
    CorruptTile {
        /// The pack path.
        path: PathBuf,
        /// Zoom level.
        z: u8,
        /// Column (XYZ).
        x: u32,
        /// Row (XYZ).
        y: u32,
        /// The decompression error.
        #[source]
        source: std::io::Error,
    },
}

/// Why building an area pack failed. No output file is left behind in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The OSM input file does not exist.
    #[error("{path}: file not found")]
    InputMissing {
        /// The input path as given.
        path: PathBuf,
    },
    /// The input is not an OpenStreetMap PBF file.
    #[error("{path}: not an OpenStreetMap PBF file ({detail})")]
    NotPbf {
        /// The input path.
        path: PathBuf,
        /// The decoder's complaint.
        detail: String,
    },
    /// Ways reference nodes that are not in the file (a clipped extract, e.g. cut with a
    /// simple bounding box instead of `osmium extract --strategy complete_ways`).
    #[error(
        "{path}: clipped extract: {missing} node(s) referenced by {ways} way(s) are missing (e.g. node {example_node} of way {example_way}); extract with complete ways"
    )]
    Clipped {
        /// The input path.
        path: PathBuf,
        /// Number of distinct missing node ids.
        missing: usize,
        /// Number of ways with missing nodes.
        ways: usize,
        /// One missing node id.
        example_node: i64,
        /// A way referencing it.
        example_way: i64,
    },
    /// The extract has no ways or no nodes: nothing to draw.
    #[error("{path}: empty area: the extract has {nodes} node(s) and {ways} way(s)")]
    EmptyArea {
        /// The input path.
        path: PathBuf,
        /// Number of nodes in the file.
        nodes: u64,
        /// Number of ways in the file.
        ways: u64,
    },
    /// `tilemaker` is not installed or failed.
    #[error("tilemaker failed for {path}: {detail}")]
    Tilemaker {
        /// The input path.
        path: PathBuf,
        /// Exit status and the last lines of its output, or why it could not start.
        detail: String,
    },
    /// The Natural Earth world layer could not be prepared.
    #[error("Natural Earth data {path}: {detail}")]
    NaturalEarth {
        /// The TopoJSON file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the pack's SQLite tables failed.
    #[error("{path}: writing {what}: {source}")]
    Sqlite {
        /// The pack file being written.
        path: PathBuf,
        /// Which stage, e.g. "search index".
        what: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The finished pack did not pass `Pack::open`'s completeness check (a bug, not bad input).
    #[error("{path}: the built pack is incomplete: {detail}")]
    Incomplete {
        /// The output path.
        path: PathBuf,
        /// What `Pack::open` said.
        detail: String,
    },
    /// The build was interrupted (Ctrl-C).
    #[error("{path}: build interrupted")]
    Interrupted {
        /// The output path.
        path: PathBuf,
    },
}
