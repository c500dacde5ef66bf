//! Errors of reading and building area packs. Every message names the file and the problem
//! on one line, so the console and the CLI can show it as is.
//!
//! The underlying I/O or SQLite error is part of the message and deliberately *not* exposed
//! as [`std::error::Error::source`]: reporters that print the whole chain (`anyhow`'s `{:#}`)
//! would otherwise print the cause twice.

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
    /// The path is a directory (or another non-file), not a pack file.
    #[error("area pack {path}: is a directory, not an area pack file")]
    NotAFile {
        /// The path as given.
        path: PathBuf,
    },
    /// The file exists but is not an Outpost area pack (not SQLite, truncated, or not our
    /// tables). What to do about it is the caller's hint (the console's error screen).
    #[error("area pack {path}: not an Outpost area pack ({reason})")]
    NotAPack {
        /// The pack path.
        path: PathBuf,
        /// What is wrong, e.g. "not an SQLite database", "truncated: 102400 of 9830400
        /// bytes" or "no `places` table".
        reason: String,
    },
    /// The file is an Outpost area pack of another format version: built by an older
    /// Outpost (rebuild it from its OpenStreetMap extract) or a newer one (update Outpost).
    /// The message says which and what to do.
    #[error("area pack {path}: {}", format_advice(found, *older))]
    OtherFormat {
        /// The pack path.
        path: PathBuf,
        /// The format version stored in the pack's `metadata` (`outpost_pack_format`).
        found: String,
        /// True when the pack is older than this build reads (a numeric format below this
        /// build's, which is 2).
        older: bool,
    },
    /// The pack's data could not be read (I/O error or corruption inside SQLite).
    #[error("area pack {path}: {what}: {cause}")]
    Read {
        /// The pack path.
        path: PathBuf,
        /// What was being read, e.g. "tile 14/8290/6064".
        what: String,
        /// The SQLite error (in the message, not a `source()`).
        cause: rusqlite::Error,
    },
    /// A stored tile is not valid gzip.
    #[error("area pack {path}: tile {z}/{x}/{y} is corrupt: {cause}")]
    CorruptTile {
        /// The pack path.
        path: PathBuf,
        /// Zoom level.
        z: u8,
        /// Column (XYZ).
        x: u32,
        /// Row (XYZ).
        y: u32,
        /// The decompression error (in the message, not a `source()`).
        cause: std::io::Error,
    },
}

/// The problem and the remedy for a pack of another format version.
fn format_advice(found: &str, older: bool) -> String {
    let reads = crate::schema::FORMAT_VERSION;
    if older {
        format!(
            "built by an older Outpost (pack format {found}, this build reads format {reads}); \
             rebuild it from its OpenStreetMap extract with \
             `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`"
        )
    } else {
        format!(
            "built by a newer Outpost or another program (pack format {found:?}, this build \
             reads format {reads}); update Outpost, or rebuild the pack with this version's \
             `outpost-server pack build --osm FILE.osm.pbf --out FILE.outpost`"
        )
    }
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
    /// The output path is a directory.
    #[error("{path}: is a directory; give a file name such as {example}")]
    OutputIsDirectory {
        /// The output path as given.
        path: PathBuf,
        /// A file name inside it to suggest, `<path>/area.outpost`.
        example: PathBuf,
    },
    /// The output path names no file (empty, or ending in `..`).
    #[error("{path:?}: not a file name; give one such as area.outpost")]
    OutputNotAFileName {
        /// The output path as given.
        path: PathBuf,
    },
    /// The directory the output would be written to does not exist.
    #[error("{path}: directory {dir} does not exist")]
    OutputDirMissing {
        /// The output path as given.
        path: PathBuf,
        /// Its parent directory.
        dir: PathBuf,
    },
    /// The output is the input extract itself (same path, a symlink or a hard link to it);
    /// building would replace the extract with the pack.
    #[error("{path}: the output file is the input extract; choose another output file")]
    OutputIsInput {
        /// The output path as given.
        path: PathBuf,
    },
    /// The area name given is empty or only whitespace.
    #[error(
        "{path}: the area name is empty; give a name, or none to use the input file's name \"{default}\""
    )]
    EmptyName {
        /// The output path.
        path: PathBuf,
        /// The name used when none is given (the input file name without `.osm.pbf`).
        default: String,
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
    #[error("{path}: {cause}")]
    Io {
        /// The file, as the user named it (never the builder's temporary file).
        path: PathBuf,
        /// The I/O error (in the message, not a `source()`).
        cause: std::io::Error,
    },
    /// Writing the pack's SQLite tables failed.
    #[error("{path}: writing {what}: {cause}")]
    Sqlite {
        /// The pack file being written.
        path: PathBuf,
        /// Which stage, e.g. "search index".
        what: &'static str,
        /// The SQLite error (in the message, not a `source()`).
        cause: rusqlite::Error,
    },
    /// The finished pack did not pass `Pack::open`'s completeness check (a bug, not bad input).
    #[error("{path}: the built pack is incomplete: {detail}")]
    Incomplete {
        /// The output path.
        path: PathBuf,
        /// What `Pack::open` said.
        detail: String,
    },
    /// The build was interrupted (Ctrl-C, SIGTERM, SIGHUP: the caller sets
    /// [`crate::BuildOptions::cancel`]).
    #[error("{path}: build interrupted")]
    Interrupted {
        /// The output path.
        path: PathBuf,
    },
}
