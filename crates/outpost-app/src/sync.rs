//! Attaching the sync engine (`outpost-sync`) to a [`Console`].
//!
//! [`start`] starts the engine on the console's store and wires it both ways: the engine's
//! "state changed" goes to [`Console::notify_changed`] (the UI refetches), the console's
//! committed changes go to [`SyncHandle::poke_local`] (push soon), and the console reads
//! the link's state for `sync_status` through [`SyncLink`]. The console works exactly the
//! same without it (state `disabled`).

use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};

use outpost_sync::{LinkState, SyncEngine, SyncHandle};

pub use outpost_sync::SyncOptions;

use crate::console::Console;
use crate::error::AppError;
use crate::ipc::{ErrorCode, SyncState};

/// The link as `sync_status` shows it (the console adds the counts from its store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// Online, syncing or offline (never `disabled`: that is the absence of a link).
    pub state: SyncState,
    /// The server's base URL.
    pub server_url: String,
    /// When the link was lost (UTC), while offline.
    pub offline_since: Option<DateTime<Utc>>,
    /// When the last round completed successfully (UTC).
    pub last_sync: Option<DateTime<Utc>>,
    /// The last error, one line, while not online.
    pub last_error: Option<String>,
}

/// What the console needs from an attached sync engine.
pub trait SyncLink: Send + Sync {
    /// The link's state now (cheap: no IO, no store access).
    fn link_status(&self) -> LinkStatus;
    /// A local change was committed: push soon.
    fn poke_local(&self);
}

/// A running engine attached to a console. Dropping the last reference stops the engine.
#[derive(Debug)]
pub struct SyncAttachment {
    handle: SyncHandle,
}

impl SyncAttachment {
    /// The engine handle (status details, shutdown).
    pub fn handle(&self) -> &SyncHandle {
        &self.handle
    }

    /// Stops the engine and waits for its thread.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}

/// The indicator's state for the engine's link state. "Connecting" (no round finished yet)
/// shows as syncing.
pub fn sync_state(state: LinkState) -> SyncState {
    match state {
        LinkState::Online => SyncState::Online,
        LinkState::Connecting | LinkState::Syncing => SyncState::Syncing,
        LinkState::Offline => SyncState::Offline,
        LinkState::SignInRequired => SyncState::SignInRequired,
        LinkState::DeviceRevoked => SyncState::DeviceRevoked,
    }
}

impl SyncLink for SyncAttachment {
    fn link_status(&self) -> LinkStatus {
        let s = self.handle.status();
        LinkStatus {
            state: sync_state(s.state),
            server_url: s.server_url,
            offline_since: s.offline_since,
            last_sync: s.last_sync,
            last_error: s.last_error,
        }
    }

    fn poke_local(&self) {
        self.handle.poke_local();
    }
}

thread_local! {
    /// True while the engine's "remote ops applied" notification runs on this thread.
    static FROM_ENGINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts the sync engine for `console` against `server_url` and attaches it: the console's
/// `sync_status` reports the link, local changes wake the engine, remote changes notify the
/// console's listeners (the UI's `state-changed`).
///
/// # Errors
/// [`ErrorCode::InvalidInput`] for an unusable URL; [`ErrorCode::Storage`] when the engine's
/// thread cannot start.
pub fn start(
    console: &Arc<Console>,
    server_url: &str,
    options: SyncOptions,
) -> Result<Arc<SyncAttachment>, AppError> {
    let weak: Weak<Console> = Arc::downgrade(console);
    let on_applied = Arc::new(move || {
        if let Some(c) = weak.upgrade() {
            // Listeners run on this thread: the flag keeps the engine's own change from
            // waking the engine for one more round.
            FROM_ENGINE.with(|f| f.set(true));
            c.notify_changed();
            FROM_ENGINE.with(|f| f.set(false));
        }
    });
    let handle = SyncEngine::start(console.store_handle(), server_url, on_applied, options)
        .map_err(|e| {
            let code = match e {
                outpost_sync::SyncError::BadUrl { .. } => ErrorCode::InvalidInput,
                _ => ErrorCode::Storage,
            };
            AppError::new(code, e.to_string())
        })?;
    let attachment = Arc::new(SyncAttachment { handle });
    let link: Weak<SyncAttachment> = Arc::downgrade(&attachment);
    console.on_change(Box::new(move |_| {
        if FROM_ENGINE.with(std::cell::Cell::get) {
            return;
        }
        if let Some(l) = link.upgrade() {
            l.poke_local();
        }
    }));
    console.attach_sync(Arc::clone(&attachment) as Arc<dyn SyncLink>);
    Ok(attachment)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use outpost_domain::SystemClock;
    use outpost_domain::geo::LatLon;
    use outpost_domain::incident::IncidentType;
    use outpost_server::{Server, ServerConfig};

    use super::*;
    use crate::ConsoleOptions;
    use crate::ipc::{IncidentRef, NewIncident};

    fn open(dir: &std::path::Path, user: &str) -> Arc<Console> {
        Arc::new(
            Console::open(
                ConsoleOptions {
                    pack: None,
                    data_dir: dir.to_path_buf(),
                    demo: false,
                    user: user.into(),
                },
                Arc::new(SystemClock),
            )
            .expect("console"),
        )
    }

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f()
    }

    /// Two consoles attached to a real server (127.0.0.1, port 0): an incident created on
    /// one shows on the other without any call but the use-case itself.
    #[test]
    fn two_attached_consoles_converge() {
        let tmp = tempfile::tempdir().expect("tmp");
        let srv = Server::start(ServerConfig::plain_for_tests(
            tmp.path().join("server"),
            "127.0.0.1:0".parse().expect("addr"),
        ))
        .expect("server");
        let a = open(&tmp.path().join("a"), "li.wei");
        let b = open(&tmp.path().join("b"), "zhang.min");
        let options = SyncOptions {
            poll_interval: Duration::from_secs(3_600),
            failpoint: None,
            ..SyncOptions::default()
        };
        let sa = start(&a, &srv.url(), options.clone()).expect("attach a");
        let _sb = start(&b, &srv.url(), options).expect("attach b");
        assert!(wait_until(
            || b.sync_status().expect("status").state == SyncState::Online
        ));
        let revision_before = b.revision();

        let created = a
            .create_incident(NewIncident {
                incident_type: IncidentType::Fire,
                priority: None,
                location: LatLon {
                    lat: 42.507,
                    lon: 1.521,
                },
                address: "Avinguda Meritxell 20".into(),
                description: "smoke from a shop".into(),
            })
            .expect("create");
        let id = created.summary.id.clone();
        assert!(wait_until(|| b
            .incident_detail(IncidentRef {
                incident_id: id.clone()
            })
            .is_ok()));
        // The page commits first, then the engine tells the console.
        assert!(
            wait_until(|| b.revision() > revision_before),
            "b's listeners were told"
        );
        assert!(wait_until(|| {
            let s = a.sync_status().expect("status");
            s.pending.critical == 0 && s.state == SyncState::Online
        }));
        let s = a.sync_status().expect("status");
        assert_eq!(s.server_url.as_deref(), Some(srv.url().as_str()));
        assert!(s.last_sync.is_some());
        assert_eq!(s.offline_since, None);
        let detail = b
            .incident_detail(IncidentRef { incident_id: id })
            .expect("detail");
        assert_eq!(detail.description, "smoke from a shop");
        assert_eq!(detail.created_by, "li.wei");
        sa.shutdown();
    }

    #[test]
    fn a_bad_url_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let a = open(&tmp.path().join("a"), "li.wei");
        let err = start(&a, "not a url", SyncOptions::default()).expect_err("refused");
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert_eq!(a.sync_status().expect("status").state, SyncState::Disabled);
    }

    #[test]
    fn link_states_map_to_the_indicator() {
        assert_eq!(sync_state(LinkState::Connecting), SyncState::Syncing);
        assert_eq!(sync_state(LinkState::Syncing), SyncState::Syncing);
        assert_eq!(sync_state(LinkState::Online), SyncState::Online);
        assert_eq!(sync_state(LinkState::Offline), SyncState::Offline);
        assert_eq!(
            sync_state(LinkState::SignInRequired),
            SyncState::SignInRequired
        );
        assert_eq!(
            sync_state(LinkState::DeviceRevoked),
            SyncState::DeviceRevoked
        );
    }
}
