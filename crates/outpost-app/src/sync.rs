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
            c.notify_changed();
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
        if let Some(l) = link.upgrade() {
            l.poke_local();
        }
    }));
    console.attach_sync(Arc::clone(&attachment) as Arc<dyn SyncLink>);
    Ok(attachment)
}
