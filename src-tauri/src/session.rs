//! The shell's side of sign-in (issue 6): the managed [`Shell`] holds the
//! [`outpost_app::auth::Gate`] and starts what needs a [`Console`] — the routing preparation,
//! the `state-changed` events, field laptop mode (unit + GPS receiver) and the demo replay —
//! once a sign-in makes a console available, and stops it again on sign-out.
//!
//! Locking keeps everything running (the Gate only refuses the UI's commands while locked):
//! sync and the field GPS must not stop because a commander stepped away.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use outpost_app::auth::Gate;
use outpost_app::gps::{GpsOptions, GpsReader, GpsSource};
use outpost_app::ipc::{AuthState, AuthStatus, ErrorCode};
use outpost_app::{AppError, Console};

use crate::demo;

/// How long a field laptop waits for its first sync to bring the roster when `--unit` names
/// a callsign not yet known here, seconds.
pub const ROSTER_WAIT_S: u64 = 20;

/// What the shell starts once someone is signed in (from the command line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartPlan {
    /// `--demo`: replay simulated units and incidents (when the pack opened).
    pub demo: bool,
    /// `--unit CALLSIGN`: field laptop mode.
    pub field_unit: Option<String>,
    /// `--gps SOURCE` (with `--unit`).
    pub gps: Option<String>,
    /// `--gps-speed N`.
    pub gps_speed: f64,
    /// A sync server is configured: a field laptop waits up to [`ROSTER_WAIT_S`] for the
    /// roster to arrive before refusing an unknown callsign.
    pub syncing: bool,
    /// The base URL of the tile protocol, handed to the console (`startup` returns it).
    pub map_base_url: String,
}

/// Emits the `state-changed` event with a revision (set once the app is built).
pub type Emitter = Arc<dyn Fn(u64) + Send + Sync>;

/// What runs on behalf of the signed-in console.
#[derive(Default)]
struct Running {
    /// The console the things below run on (identity only: the Gate owns it).
    console: Option<Weak<Console>>,
    replay: demo::Replay,
    gps: Option<GpsReader>,
}

/// The managed state every command receives: the Gate, and what runs for its console.
pub struct Shell {
    gate: Arc<Gate>,
    plan: StartPlan,
    running: Mutex<Running>,
    /// Consoles whose changes are already forwarded as `state-changed` (an `on_change`
    /// listener cannot be removed, so it is registered once per console).
    hooked: Mutex<Vec<Weak<Console>>>,
    emitter: OnceLock<Emitter>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("gate", &self.gate)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shell {
    /// A shell in front of `gate` that will start `plan` after the first sign-in.
    pub fn new(gate: Arc<Gate>, plan: StartPlan) -> Shell {
        Shell {
            gate,
            plan,
            running: Mutex::new(Running::default()),
            hooked: Mutex::new(Vec::new()),
            emitter: OnceLock::new(),
        }
    }

    /// The Gate.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Sets how `state-changed` reaches the webview (once, after the app is built). Consoles
    /// opened before this get it at their next sign-in.
    pub fn set_emitter(&self, emitter: Emitter) {
        let _ = self.emitter.set(emitter);
        if let Ok(console) = self.gate.console() {
            self.hook_changes(&console);
        }
    }

    /// The signed-in console, or `SignedOut` (nobody signed in, or locked).
    ///
    /// # Errors
    /// [`ErrorCode::SignedOut`] from the Gate.
    pub fn console(&self) -> Result<Arc<Console>, AppError> {
        self.gate.console()
    }

    /// After a sign-in command: when the Gate now has a console other than the one things
    /// run on, stops those and starts the plan on it. A field laptop whose callsign is unknown
    /// is signed out again and the error returned (the sign-in screen shows it).
    ///
    /// # Errors
    /// `NotFound` (unknown callsign), `InvalidInput` (bad `--gps`), `Storage`.
    pub fn after_sign_in(&self, status: AuthStatus) -> Result<AuthStatus, AppError> {
        if status.state != AuthState::SignedIn {
            return Ok(status);
        }
        let console = self.gate.console()?;
        let mut running = lock(&self.running);
        if running
            .console
            .as_ref()
            .and_then(Weak::upgrade)
            .is_some_and(|c| Arc::ptr_eq(&c, &console))
        {
            return Ok(status);
        }
        stop(&mut running);
        match self.start(&console, &mut running) {
            Ok(()) => Ok(status),
            Err(e) => {
                stop(&mut running);
                drop(running);
                self.gate.sign_out();
                Err(e)
            }
        }
    }

    /// After `sign_out` (or any status with nobody signed in or locked: a revoked device, a
    /// sign-out the Gate did itself): stops what ran for the console, so its cache can close.
    pub fn after_sign_out(&self, status: AuthStatus) -> AuthStatus {
        if !matches!(status.state, AuthState::SignedIn | AuthState::Locked) {
            stop(&mut lock(&self.running));
        }
        status
    }

    /// Stops everything (the app exits): what ran for the console, then the Gate's own.
    pub fn shutdown(&self) {
        stop(&mut lock(&self.running));
        self.gate.shutdown();
    }

    fn hook_changes(&self, console: &Arc<Console>) {
        let Some(emit) = self.emitter.get() else {
            return;
        };
        let mut hooked = lock(&self.hooked);
        hooked.retain(|w| w.strong_count() > 0);
        if hooked
            .iter()
            .any(|w| w.upgrade().is_some_and(|c| Arc::ptr_eq(&c, console)))
        {
            return;
        }
        let emit = Arc::clone(emit);
        console.on_change(Box::new(move |revision| emit(revision)));
        hooked.push(Arc::downgrade(console));
    }

    fn start(&self, console: &Arc<Console>, running: &mut Running) -> Result<(), AppError> {
        running.console = Some(Arc::downgrade(console));
        console.set_map_base_url(self.plan.map_base_url.clone());
        self.hook_changes(console);
        {
            // The router (the pack's roads and their hierarchy) is ready before the first
            // closest-units ranking is asked for.
            let console = Arc::clone(console);
            std::thread::spawn(move || console.prepare_routing());
        }
        if let Some(callsign) = &self.plan.field_unit {
            set_field_unit(console, callsign, self.plan.syncing)?;
            if let Some(source) = &self.plan.gps {
                let opts = GpsOptions {
                    source: GpsSource::parse(source)?,
                    label: source.clone(),
                    speed: self.plan.gps_speed,
                };
                running.gps = Some(GpsReader::start(Arc::clone(console), opts)?);
                tracing::info!(%source, "reading the GPS receiver");
            }
        }
        // The replay needs the pack's roads; without a pack the error screen shows instead.
        if self.plan.demo && console.pack().is_some() {
            running.replay = demo::start_replay(console)
                .map_err(|e| AppError::new(ErrorCode::Storage, format!("{e:#}")))?;
        }
        Ok(())
    }
}

/// Stops the replay and the GPS reader, forgets the console.
fn stop(running: &mut Running) {
    running.replay.stop();
    if let Some(mut reader) = running.gps.take() {
        reader.stop();
    }
    running.console = None;
}

/// Makes the console the unit `callsign`, waiting up to [`ROSTER_WAIT_S`] for a syncing
/// console's roster.
fn set_field_unit(console: &Console, callsign: &str, syncing: bool) -> Result<(), AppError> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(ROSTER_WAIT_S);
    loop {
        match console.set_field_unit(callsign) {
            Ok(_) => return Ok(()),
            Err(e)
                if syncing
                    && e.code == ErrorCode::NotFound
                    && std::time::Instant::now() < until =>
            {
                tracing::info!(%callsign, "waiting for the roster from the server");
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}
