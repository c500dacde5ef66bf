//! What the connection indicator shows about the engine (the store adds the counts).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The link as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Started, no round finished yet.
    Connecting,
    /// The last round succeeded and nothing was left to move.
    Online,
    /// A round is moving ops (pushing a backlog or pulling pages).
    Syncing,
    /// The last round failed; retrying on a timer.
    Offline,
    /// The server refused the person's session (401 `unauthenticated`: no token, expired,
    /// signed out). Nothing moves — every op stays in the outbox — until a new token is set
    /// ([`crate::TokenSource::set`], after an online sign-in); then syncing resumes.
    SignInRequired,
    /// The server refused this device (403 `device_revoked`: an administrator revoked its
    /// certificate). Nothing moves; the console should lock and forget its keys.
    DeviceRevoked,
}

impl LinkState {
    /// True when the engine waits for a person (sign-in) or an administrator (revoked
    /// device) rather than for the network.
    pub fn needs_attention(self) -> bool {
        matches!(self, LinkState::SignInRequired | LinkState::DeviceRevoked)
    }
}

/// A snapshot of the engine's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStatus {
    /// The link.
    pub state: LinkState,
    /// The server's base URL.
    pub server_url: String,
    /// When the link was lost (UTC) — set on the first failed round after a success (or
    /// after start), cleared by the next success.
    pub offline_since: Option<DateTime<Utc>>,
    /// When the last round completed successfully (UTC).
    pub last_sync: Option<DateTime<Utc>>,
    /// The last error, one line, while not online.
    pub last_error: Option<String>,
    /// True when the last error is permanent (needs a person: wrong URL, refused request).
    pub error_is_permanent: bool,
    /// Rounds completed successfully since start.
    pub rounds: u64,
    /// Consecutive failed rounds.
    pub failures: u32,
    /// The server epoch last seen.
    pub epoch: Option<Uuid>,
    /// The newest `gseq` the server announced (pull pages, pushes, pokes).
    pub server_gseq: u64,
    /// True while the WebSocket poke channel is connected.
    pub poke_connected: bool,
    /// The version of the revocation list last delivered to
    /// [`crate::SyncOptions::on_revocations`] (`None`: none fetched yet, or no receiver).
    pub revocations_version: Option<u64>,
    /// Live-feed frames applied straight from the poke socket (no pull needed).
    pub feed_frames_applied: u64,
    /// Times the live feed could not be applied (a gap, another epoch, a frame without ops,
    /// a history not yet verified) and the engine was woken to pull instead.
    pub feed_fallbacks: u64,
}

impl EngineStatus {
    pub(crate) fn new(server_url: String) -> Self {
        Self {
            state: LinkState::Connecting,
            server_url,
            offline_since: None,
            last_sync: None,
            last_error: None,
            error_is_permanent: false,
            rounds: 0,
            failures: 0,
            epoch: None,
            server_gseq: 0,
            poke_connected: false,
            revocations_version: None,
            feed_frames_applied: 0,
            feed_fallbacks: 0,
        }
    }
}
