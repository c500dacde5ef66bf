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
        }
    }
}
