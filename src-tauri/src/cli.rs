//! Command-line flags of the `outpost` binary.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

/// `outpost [--pack FILE] [--data-dir DIR] [--demo] [--user NAME] [--server URL] [--ca FILE]
/// [--idle-lock-min N] [--unit CALLSIGN [--gps SOURCE [--gps-speed N]]]`
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "outpost",
    version,
    about = "Outpost: offline police command console",
    long_about = "Outpost: offline police command console.\n\n\
        Opens an area pack (--pack, else the last one used) and the local database in the data \
        directory. --demo builds the Andorra demo pack on first run and replays simulated units \
        and incidents. --unit CALLSIGN opens a field laptop: the console is that unit, and with \
        --gps its receiver's fixes are the unit's positions (kept on disk while offline)."
)]
pub struct Cli {
    /// Area pack to open (`*.outpost`, built with `outpost-server pack build`).
    #[arg(long, value_name = "FILE")]
    pub pack: Option<PathBuf>,

    /// Directory of the local database [default: the per-user data directory, with a
    /// separate `demo` subdirectory under --demo].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Open the Andorra demo area and replay simulated units and incidents.
    #[arg(long)]
    pub demo: bool,

    /// The login name pre-filled on the sign-in screen (who writes is whoever signs in).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Sync server base URL (`https://host:port`) [default: the one this console enrolled
    /// with; none: work alone].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// The agency CA certificate (PEM) that signed the server's certificate; needed to enroll
    /// this device with --server (made by `outpost-server cert init`, `tls/ca.pem`).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Lock the console after N minutes without keyboard, mouse or touch input; 0: never.
    /// Ignored in field laptop mode (--unit), which never locks when idle.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub idle_lock_min: u32,

    /// Field laptop mode: open the console as the unit with this callsign (its assignment,
    /// status buttons, its own position).
    #[arg(long, value_name = "CALLSIGN")]
    pub unit: Option<String>,

    /// With --unit: the GNSS receiver whose fixes become the unit's positions: a serial
    /// device (`/dev/ttyUSB0`, 9600 baud unless `@BAUD` follows), gpsd (`gpsd://HOST:PORT`
    /// or `HOST:PORT`), or an NMEA log file to replay (fix times shifted to now).
    #[arg(long, value_name = "SOURCE", requires = "unit")]
    pub gps: Option<String>,

    /// With --gps and a log file: replay N times faster than recorded.
    #[arg(long, value_name = "N", default_value_t = 1.0, requires = "gps")]
    pub gps_speed: f64,

    /// With --demo: build the demo pack if missing, then exit without opening a window.
    #[arg(long, hide = true)]
    pub prepare_demo: bool,
}

/// Flags we know, with whether they take a value. Anything else on the command line is
/// dropped: WebKitWebDriver (through tauri-driver) and desktop launchers may add arguments of
/// their own (e.g. `--automation`), and the console must still start.
const KNOWN: &[(&str, bool)] = &[
    ("--pack", true),
    ("--data-dir", true),
    ("--user", true),
    ("--server", true),
    ("--ca", true),
    ("--idle-lock-min", true),
    ("--unit", true),
    ("--gps", true),
    ("--gps-speed", true),
    ("--demo", false),
    ("--prepare-demo", false),
    ("--help", false),
    ("-h", false),
    ("--version", false),
    ("-V", false),
];

/// Keeps the program name and the known flags (with their values, in `--flag value` or
/// `--flag=value` form); drops the rest.
pub fn known_args<I: IntoIterator<Item = OsString>>(raw: I) -> Vec<OsString> {
    let mut it = raw.into_iter();
    let mut out: Vec<OsString> = it.next().into_iter().collect();
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        let name = text.split_once('=').map_or(text.as_str(), |(n, _)| n);
        match KNOWN.iter().find(|(k, _)| *k == name) {
            Some((_, true)) if !text.contains('=') => {
                out.push(arg);
                if let Some(value) = it.next() {
                    out.push(value);
                }
            }
            Some(_) => out.push(arg),
            None => tracing::debug!(argument = %text, "ignoring unknown command-line argument"),
        }
    }
    out
}

impl Cli {
    /// Parses the process's arguments, ignoring ones we do not know (see [`known_args`]).
    /// `--help`/`--version` and a flag missing its value exit as clap does.
    pub fn from_env() -> Self {
        Self::parse_from(known_args(std::env::args_os()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let raw = std::iter::once("outpost")
            .chain(args.iter().copied())
            .map(OsString::from);
        Cli::try_parse_from(known_args(raw)).expect("parses")
    }

    #[test]
    fn all_flags() {
        let cli = parse(&[
            "--pack",
            "a.outpost",
            "--data-dir=/tmp/d",
            "--demo",
            "--user",
            "li.wei",
            "--server=http://127.0.0.1:7400",
        ]);
        assert_eq!(cli.pack, Some(PathBuf::from("a.outpost")));
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/d")));
        assert!(cli.demo);
        assert_eq!(cli.user.as_deref(), Some("li.wei"));
        assert_eq!(cli.server.as_deref(), Some("http://127.0.0.1:7400"));
        assert!(!cli.prepare_demo);
        assert_eq!(cli.idle_lock_min, 15, "the default idle lock is 15 minutes");
        assert_eq!(cli.ca, None);
    }

    #[test]
    fn sign_in_flags() {
        let cli = parse(&[
            "--server",
            "https://10.0.0.5:7400",
            "--ca=agency-ca.pem",
            "--idle-lock-min",
            "0",
            "--user",
            "li.wei",
        ]);
        assert_eq!(cli.ca, Some(PathBuf::from("agency-ca.pem")));
        assert_eq!(cli.idle_lock_min, 0);
        assert_eq!(parse(&["--idle-lock-min=5"]).idle_lock_min, 5);
        let raw = ["outpost", "--idle-lock-min", "soon"].map(OsString::from);
        let e = Cli::try_parse_from(known_args(raw)).expect_err("not a number");
        assert!(e.to_string().contains("--idle-lock-min"), "{e}");
    }

    #[test]
    fn field_laptop_flags() {
        let cli = parse(&[
            "--unit",
            "P-12",
            "--gps=/dev/ttyUSB0@4800",
            "--gps-speed",
            "10",
        ]);
        assert_eq!(cli.unit.as_deref(), Some("P-12"));
        assert_eq!(cli.gps.as_deref(), Some("/dev/ttyUSB0@4800"));
        assert_eq!(cli.gps_speed, 10.0);
        assert_eq!(parse(&["--unit", "P-12"]).gps_speed, 1.0);
        // A receiver belongs to a unit.
        let raw = ["outpost", "--gps", "x.log"].map(OsString::from);
        let e = Cli::try_parse_from(known_args(raw)).expect_err("--gps without --unit");
        assert!(e.to_string().contains("--unit"), "{e}");
    }

    #[test]
    fn no_flags() {
        let cli = parse(&[]);
        assert_eq!(cli.pack, None);
        assert_eq!(cli.data_dir, None);
        assert_eq!(cli.server, None);
        assert!(!cli.demo);
    }

    #[test]
    fn driver_arguments_are_ignored() {
        let cli = parse(&[
            "--automation",
            "--demo",
            "-psn_0_12345",
            "stray",
            "--data-dir",
            "x",
        ]);
        assert!(cli.demo);
        assert_eq!(cli.data_dir, Some(PathBuf::from("x")));
    }
}
