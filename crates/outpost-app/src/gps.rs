//! The field laptop's GNSS receiver (`outpost --unit CALLSIGN --gps SOURCE`): a reader
//! thread that takes NMEA 0183 lines from a serial port, a gpsd daemon or a recorded log,
//! assembles fixes with [`outpost_devices::nmea::NmeaTracker`] and writes each one through
//! [`Console::report_field_fix`] as a `position.report` of the console's own unit (outbox,
//! positions lane: on disk while offline, pushed in order when the link returns).
//!
//! Sources ([`GpsSource::parse`]):
//! - a serial device (`/dev/ttyUSB0`, `/dev/ttyACM0`, `COM3`), 9600 baud unless a `@BAUD`
//!   suffix says otherwise (`/dev/ttyUSB0@4800`), 8N1, read with the `serialport` crate;
//! - gpsd (`gpsd://HOST:PORT`, or plain `HOST:PORT`; port 2947 when omitted after
//!   `gpsd://`): the reader sends `?WATCH={"enable":true,"nmea":true}` and reads the NMEA
//!   lines gpsd relays (its JSON reports are ignored), as gpsd's client protocol documents;
//! - a log file of NMEA lines (any existing regular file; `@` in its name is not a baud
//!   rate), replayed paced by its fix times (`--gps-speed N` plays it N
//!   times faster). A log's fixes are **re-stamped**: the first fix gets the time the replay
//!   starts and each later one the instant it is written (its offset from the first, divided
//!   by the speed). Without this a log recorded in 2015 would be older than the unit's
//!   current position (the newest fix time wins) and would never move the marker, and would
//!   be refused as more than [`outpost_domain::device::MAX_FIX_AHEAD_S`] ahead when played
//!   faster. Positions, speeds and headings are kept as logged.
//!
//! A serial port or gpsd that fails or closes is reopened every [`RECONNECT_S`] seconds
//! until the reader stops; the status ([`GpsStatus`]) says so meanwhile.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use outpost_devices::nmea::NmeaTracker;
use outpost_domain::op::Fix;

use crate::Console;
use crate::error::AppError;
use crate::ipc::GpsStatus;

/// Default baud rate of a serial receiver (NMEA 0183's 4800 is rare today; most USB and HAT
/// receivers, the MT3339 of the sample log included, talk 9600).
pub const DEFAULT_BAUD: u32 = 9600;

/// gpsd's registered TCP port.
pub const GPSD_PORT: u16 = 2947;

/// Seconds between attempts to reopen a serial port or gpsd connection that failed.
pub const RECONNECT_S: u64 = 2;

/// Longest line kept, in bytes (an NMEA sentence is at most 82 characters; gpsd's JSON
/// reports are longer and skipped). Longer runs without a line end are dropped as garbage.
pub const MAX_LINE_BYTES: usize = 4096;

/// How long one read may block before the reader checks whether it should stop.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the receiver's NMEA comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpsSource {
    /// A serial device path (`/dev/ttyUSB0`, `COM3`) and its baud rate.
    Serial {
        /// Device path.
        path: String,
        /// Baud rate (8 data bits, no parity, 1 stop bit).
        baud: u32,
    },
    /// A gpsd daemon.
    Gpsd {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A recorded log file to replay.
    Log {
        /// The file.
        path: PathBuf,
    },
}

impl GpsSource {
    /// Parses `--gps SOURCE`: `gpsd://HOST[:PORT]`; an existing regular file is a log to
    /// replay (its name may hold `@`); a path under `/dev/` or `COMn` (optionally `@BAUD`) is
    /// a serial port; otherwise `HOST:PORT` is gpsd.
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::InvalidInput`] naming the text: an empty source, a bad baud
    /// rate or port, or a path that is neither a file nor a device nor `HOST:PORT`.
    pub fn parse(text: &str) -> Result<GpsSource, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AppError::invalid(
                "--gps needs a source: a serial device (/dev/ttyUSB0[@BAUD]), gpsd://HOST:PORT, \
                 or an NMEA log file",
            ));
        }
        if let Some(rest) = text.strip_prefix("gpsd://") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            return match rest.rsplit_once(':') {
                Some((host, port)) => gpsd(text, host, port),
                None if !rest.is_empty() => Ok(GpsSource::Gpsd {
                    host: rest.to_string(),
                    port: GPSD_PORT,
                }),
                None => Err(AppError::invalid(format!(
                    "--gps {text:?}: gpsd://HOST:PORT needs a host"
                ))),
            };
        }
        // An existing file is a log, whatever its name holds (`drive@2015.nmea`): the
        // `@BAUD` suffix belongs to serial device paths only.
        if std::path::Path::new(text).is_file() {
            return Ok(GpsSource::Log {
                path: PathBuf::from(text),
            });
        }
        let (path, baud) = match text.rsplit_once('@') {
            Some((p, b)) if is_serial_path(p) => {
                let baud = b.parse::<u32>().ok().filter(|b| *b > 0).ok_or_else(|| {
                    AppError::invalid(format!(
                        "--gps {text:?}: the baud rate after @ must be a positive number, like \
                         /dev/ttyUSB0@4800"
                    ))
                })?;
                (p, Some(baud))
            }
            _ => (text, None),
        };
        if is_serial_path(path) {
            return Ok(GpsSource::Serial {
                path: path.to_string(),
                baud: baud.unwrap_or(DEFAULT_BAUD),
            });
        }
        if baud.is_none()
            && let Some((host, port)) = text.rsplit_once(':')
            && !host.is_empty()
            && !host.contains('/')
        {
            return gpsd(text, host, port);
        }
        Err(AppError::invalid(format!(
            "--gps {text:?} is neither an existing NMEA log file, a serial device (/dev/tty…, \
             COMn, optionally @BAUD) nor a gpsd address (gpsd://HOST:PORT or HOST:PORT)"
        )))
    }

    /// True for a recorded log (replayed paced, fix times re-stamped).
    pub fn is_log(&self) -> bool {
        matches!(self, GpsSource::Log { .. })
    }
}

fn gpsd(text: &str, host: &str, port: &str) -> Result<GpsSource, AppError> {
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        AppError::invalid(format!(
            "--gps {text:?}: {port:?} is not a TCP port (gpsd listens on {GPSD_PORT})"
        ))
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(AppError::invalid(format!(
            "--gps {text:?}: gpsd://HOST:PORT needs a host"
        )));
    }
    Ok(GpsSource::Gpsd {
        host: host.to_string(),
        port,
    })
}

fn is_serial_path(path: &str) -> bool {
    path.starts_with("/dev/")
        || path
            .strip_prefix("COM")
            .or_else(|| path.strip_prefix(r"\\.\COM"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// How the reader runs.
#[derive(Debug, Clone, PartialEq)]
pub struct GpsOptions {
    /// The source.
    pub source: GpsSource,
    /// The source as the user gave it, shown in [`GpsStatus::source`].
    pub label: String,
    /// Replay speed of a log (`--gps-speed`, > 0; 1 = as recorded). Ignored for live sources.
    pub speed: f64,
}

/// A running receiver reader. Dropping it stops the thread (and waits for it).
#[derive(Debug)]
pub struct GpsReader {
    status: Arc<Mutex<GpsStatus>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GpsReader {
    /// Starts the reader thread for `console`, which must be in field laptop mode
    /// ([`Console::set_field_unit`]), and attaches its status to the console (shown by
    /// `field_view`).
    ///
    /// # Errors
    /// [`crate::ipc::ErrorCode::InvalidInput`] when the console is not in field laptop mode or
    /// the speed is not a positive number; [`crate::ipc::ErrorCode::Storage`] when the
    /// thread cannot be started. A source that cannot be opened is not an error here: the
    /// status reports it and the reader retries (a log file that cannot be read ends it).
    pub fn start(console: Arc<Console>, opts: GpsOptions) -> Result<GpsReader, AppError> {
        if console.field_unit().is_none() {
            return Err(AppError::invalid(
                "--gps needs --unit CALLSIGN: the receiver's fixes are that unit's positions",
            ));
        }
        if !opts.speed.is_finite() || opts.speed <= 0.0 {
            return Err(AppError::invalid(format!(
                "--gps-speed must be a positive number, not {}",
                opts.speed
            )));
        }
        let status = Arc::new(Mutex::new(GpsStatus {
            source: opts.label.clone(),
            connected: false,
            sentences: 0,
            fixes: 0,
            skipped: 0,
            last_fix: None,
            error: None,
        }));
        console.attach_gps(Arc::clone(&status));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            console,
            status: Arc::clone(&status),
            stop: Arc::clone(&stop),
            tracker: NmeaTracker::new(),
            opts,
            replay: None,
        };
        let thread = std::thread::Builder::new()
            .name("outpost-gps".into())
            .spawn(move || worker.run())
            .map_err(|e| {
                AppError::new(
                    crate::ipc::ErrorCode::Storage,
                    format!("cannot start the GPS reader thread: {e}"),
                )
            })?;
        Ok(GpsReader {
            status,
            stop,
            thread: Some(thread),
        })
    }

    /// The receiver's status now.
    pub fn status(&self) -> GpsStatus {
        lock(&self.status).clone()
    }

    /// True once the reader thread has ended (a log replayed to its end, or stopped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the thread ends (a log replay at its end) or `timeout` passes; true when
    /// it ended.
    pub fn wait(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while !self.is_finished() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops the thread and waits for it (at most about one read timeout).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the GPS reader thread panicked");
        }
    }
}

impl Drop for GpsReader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pacing and re-stamping of a log replay: the first fix's logged time and when (wall clock
/// and console clock) it was written.
#[derive(Debug, Clone, Copy)]
struct Replay {
    first_logged: DateTime<Utc>,
    started: Instant,
    started_at: DateTime<Utc>,
}

struct Worker {
    console: Arc<Console>,
    status: Arc<Mutex<GpsStatus>>,
    stop: Arc<AtomicBool>,
    tracker: NmeaTracker,
    opts: GpsOptions,
    replay: Option<Replay>,
}

impl Worker {
    fn run(mut self) {
        loop {
            let outcome = match self.opts.source.clone() {
                GpsSource::Log { path } => match std::fs::File::open(&path) {
                    Ok(f) => {
                        self.set_connected(true, None);
                        let r = self.read_lines(BufReader::new(f));
                        let st = self.tracker.stats();
                        let error = r
                            .err()
                            .map(|e| format!("reading the NMEA log {}: {e}", path.display()))
                            .or_else(|| {
                                // A GPX file, a binary or an empty file reads "fine" but
                                // gives nothing: say so rather than sit silent.
                                (st.fixes == 0 && !self.stop.load(Ordering::SeqCst)).then(|| {
                                    format!(
                                        "no NMEA fix in {} ({} lines, {} skipped): is it an \
                                         NMEA 0183 log?",
                                        path.display(),
                                        st.sentences,
                                        st.skipped
                                    )
                                })
                            });
                        tracing::info!(
                            source = %self.opts.label,
                            sentences = st.sentences,
                            fixes = st.fixes,
                            skipped = st.skipped,
                            "NMEA log replay finished"
                        );
                        self.set_connected(false, error);
                        // A log is read once.
                        return;
                    }
                    Err(e) => {
                        self.set_connected(
                            false,
                            Some(format!("cannot open the NMEA log {}: {e}", path.display())),
                        );
                        return;
                    }
                },
                GpsSource::Serial { path, baud } => {
                    match serialport::new(&path, baud).timeout(READ_TIMEOUT).open() {
                        Ok(port) => {
                            self.set_connected(true, None);
                            self.read_lines(BufReader::new(port)).err().map(|e| {
                                format!("the serial port {path} stopped delivering data: {e}")
                            })
                        }
                        Err(e) => Some(format!(
                            "cannot open the serial port {path} at {baud} baud: {e}"
                        )),
                    }
                }
                GpsSource::Gpsd { host, port } => match open_gpsd(&host, port) {
                    Ok(stream) => {
                        self.set_connected(true, None);
                        self.read_lines(BufReader::new(stream))
                            .err()
                            .map(|e| format!("the gpsd connection {host}:{port} failed: {e}"))
                    }
                    Err(e) => Some(format!("cannot connect to gpsd at {host}:{port}: {e}")),
                },
            };
            if self.stop.load(Ordering::SeqCst) {
                self.set_connected(false, None);
                return;
            }
            let error = outcome.or_else(|| Some("the source closed".to_string()));
            if let Some(e) = &error {
                tracing::warn!(source = %self.opts.label, error = %e, "GPS receiver");
            }
            self.set_connected(false, error);
            if self.sleep(Duration::from_secs(RECONNECT_S)) {
                return;
            }
        }
    }

    /// Reads lines until the end of the stream (Ok) or an error (Err); stops early (Ok) when
    /// asked to stop.
    fn read_lines<R: Read>(&mut self, mut reader: BufReader<R>) -> std::io::Result<()> {
        let mut buf: Vec<u8> = Vec::with_capacity(128);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let room = (MAX_LINE_BYTES + 1).saturating_sub(buf.len()) as u64;
            match (&mut reader).take(room).read_until(b'\n', &mut buf) {
                Ok(0) if buf.is_empty() => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Without a line end and within the limit, read_until stopped at the end of the
            // stream: the last line is taken as is.
            if buf.len() > MAX_LINE_BYTES {
                // Garbage without line ends: counted as one skipped sentence, dropped.
                self.tracker.feed_line("");
                buf.clear();
                self.publish_counts();
                continue;
            }
            let line = String::from_utf8_lossy(&buf).into_owned();
            buf.clear();
            self.line(line.trim_end_matches(['\r', '\n']));
        }
    }

    fn line(&mut self, line: &str) {
        if line.starts_with('{') || line.starts_with('#') || line.trim().is_empty() {
            // gpsd's JSON reports (VERSION, DEVICES, WATCH…), a log's `#` comment header
            // (gpsd's test logs have one) and blank lines are not NMEA.
            return;
        }
        let fix = self.tracker.feed_line(line);
        // A replay stopped while waiting for the fix's time writes nothing more.
        if let Some(fix) = fix.and_then(|f| self.pace(f)) {
            match self.console.report_field_fix(fix.clone()) {
                Ok(warning) => {
                    let mut s = lock(&self.status);
                    // Clock skew is flagged in the log (SYNC.md principle 10), once per change.
                    if let Some(w) = &warning
                        && s.error.as_ref() != Some(w)
                    {
                        tracing::warn!(source = %self.opts.label, "{w}");
                    }
                    s.last_fix = Some(fix);
                    s.error = warning;
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, "GPS fix not recorded");
                    lock(&self.status).error = Some(format!("fix not recorded: {}", e.message));
                }
            }
        }
        self.publish_counts();
    }

    /// For a log replay: waits until the fix is due and re-stamps it (see the module doc);
    /// `None` when asked to stop meanwhile. Live fixes pass unchanged.
    fn pace(&mut self, mut fix: Fix) -> Option<Fix> {
        if !self.opts.source.is_log() {
            return Some(fix);
        }
        let replay = *self.replay.get_or_insert_with(|| Replay {
            first_logged: fix.fix_time,
            started: Instant::now(),
            started_at: self.console.now(),
        });
        let logged_ms = (fix.fix_time - replay.first_logged)
            .num_milliseconds()
            .max(0);
        let due_ms = (logged_ms as f64 / self.opts.speed).round() as i64;
        let due = replay.started + Duration::from_millis(u64::try_from(due_ms).unwrap_or(0));
        let now = Instant::now();
        if due > now && self.sleep(due - now) {
            return None;
        }
        fix.fix_time = replay.started_at + chrono::Duration::milliseconds(due_ms);
        Some(fix)
    }

    /// Sleeps `d` in short steps; true when asked to stop meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(100)));
        }
    }

    fn publish_counts(&self) {
        let st = self.tracker.stats();
        let mut s = lock(&self.status);
        s.sentences = st.sentences;
        s.fixes = st.fixes;
        s.skipped = st.skipped;
    }

    fn set_connected(&self, connected: bool, error: Option<String>) {
        let mut s = lock(&self.status);
        s.connected = connected;
        if error.is_some() || connected {
            s.error = error;
        }
    }
}

/// Connects to gpsd and asks it to relay NMEA (gpsd's `?WATCH` command).
fn open_gpsd(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let addrs: Vec<_> = (host, port).to_socket_addrs()?.collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{host} has no address"),
    );
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                s.write_all(b"?WATCH={\"enable\":true,\"nmea\":true}\n")?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            GpsSource::parse("/dev/ttyUSB0").expect("parses"),
            GpsSource::Serial {
                path: "/dev/ttyUSB0".into(),
                baud: 9600
            }
        );
        assert_eq!(
            GpsSource::parse("/dev/ttyACM0@4800").expect("parses"),
            GpsSource::Serial {
                path: "/dev/ttyACM0".into(),
                baud: 4800
            }
        );
        assert_eq!(
            GpsSource::parse("COM3@115200").expect("parses"),
            GpsSource::Serial {
                path: "COM3".into(),
                baud: 115_200
            }
        );
        assert_eq!(
            GpsSource::parse("gpsd://127.0.0.1:2948").expect("parses"),
            GpsSource::Gpsd {
                host: "127.0.0.1".into(),
                port: 2948
            }
        );
        assert_eq!(
            GpsSource::parse("gpsd://gps.local").expect("parses"),
            GpsSource::Gpsd {
                host: "gps.local".into(),
                port: GPSD_PORT
            }
        );
        assert_eq!(
            GpsSource::parse("localhost:2947").expect("parses"),
            GpsSource::Gpsd {
                host: "localhost".into(),
                port: 2947
            }
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("drive.nmea");
        std::fs::write(&log, "$GPRMC\n").expect("write");
        assert_eq!(
            GpsSource::parse(log.to_str().expect("utf-8")).expect("a log"),
            GpsSource::Log { path: log.clone() }
        );
        // `@` in a log's name is not a baud rate.
        for name in ["drive@2015.nmea", "drive@4800"] {
            let log = dir.path().join(name);
            std::fs::write(&log, "$GPRMC\n").expect("write");
            assert_eq!(
                GpsSource::parse(log.to_str().expect("utf-8")).expect("a log"),
                GpsSource::Log { path: log.clone() }
            );
        }
    }

    #[test]
    fn bad_sources_are_named() {
        for (text, says) in [
            ("", "needs a source"),
            ("/dev/ttyUSB0@fast", "baud rate"),
            ("/dev/ttyUSB0@0", "baud rate"),
            ("gpsd://host:99999", "not a TCP port"),
            ("gpsd://:2947", "needs a host"),
            ("/no/such/drive.nmea", "neither an existing NMEA log file"),
            (
                "/no/such/drive@2015.nmea",
                "neither an existing NMEA log file",
            ),
        ] {
            let e = GpsSource::parse(text).expect_err("refused");
            assert!(e.message.contains(says), "{text:?}: {}", e.message);
        }
    }
}
