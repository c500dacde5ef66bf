//! `outpost-server`: the central server and admin tool.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use outpost_server::{PackBuildArgs, pack_build, report_lines};

#[derive(Parser)]
#[command(
    name = "outpost-server",
    version,
    about = "Outpost central server and admin tool"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Area packs.
    Pack {
        #[command(subcommand)]
        command: PackCmd,
    },
}

#[derive(Subcommand)]
enum PackCmd {
    /// Build an area pack (tiles, search index, road network) from an OSM extract.
    Build {
        /// OpenStreetMap extract (.osm.pbf) with complete ways.
        #[arg(long, value_name = "FILE.osm.pbf")]
        osm: PathBuf,
        /// The pack to write (.outpost); replaced atomically when the build succeeds.
        #[arg(long, value_name = "FILE.outpost")]
        out: PathBuf,
        /// Area name stored in the pack (default: the input file name); not blank.
        #[arg(long)]
        name: Option<String>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors carry their cause in their one-line message; `{:#}` adds any
            // context. Not `eprintln!`: after SIGHUP the terminal may be gone, and a failed
            // write must not turn into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Pack {
            command:
                PackCmd::Build {
                    osm,
                    out,
                    name,
                    quiet,
                },
        } => {
            let cancel = Arc::new(AtomicBool::new(false));
            let flag = cancel.clone();
            // Ctrl-C, SIGTERM and SIGHUP (ctrlc's `termination` feature) stop the build
            // cleanly: tilemaker is killed and waited for, the temporary files are removed.
            ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))?;
            let args = PackBuildArgs {
                osm,
                out,
                name,
                progress: !quiet,
            };
            let report = pack_build(&args, cancel)?;
            for line in report_lines(&report) {
                println!("{line}");
            }
            Ok(())
        }
    }
}
