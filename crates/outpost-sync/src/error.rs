//! What can go wrong while syncing, classified transient (retry with backoff) or permanent.

use outpost_store::StoreError;
use uuid::Uuid;

/// A sync failure. None of them loses data: the outbox keeps every op until the server
/// answers for it, and the pull cursor moves only with an applied page.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server URL is not usable (permanent until the settings change).
    #[error("the server address {url:?} is not usable: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer: connection refused, timed out, reset (transient).
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// TLS could not be set up or the handshake failed: an unreadable CA or device
    /// certificate/key, a server certificate not signed by the agency CA or not valid for the
    /// address, the server refusing this device's certificate (permanent until the settings
    /// change; never retried against another trust anchor).
    #[error("secure connection failed: {0}")]
    Tls(String),
    /// 401: the server does not accept the credentials — code `unauthenticated` (no, unknown,
    /// expired or signed-out token; wrong password or code) or `certificate_required` (no
    /// valid device certificate). The engine stops moving ops until a new token is set.
    #[error("{message} ({code})")]
    Unauthenticated {
        /// [`outpost_domain::wire::ErrorBody::code`].
        code: String,
        /// The server's one-line reason.
        message: String,
    },
    /// 403: the server refuses — code `device_revoked`, `locked_out` or `forbidden`.
    #[error("{message} ({code})")]
    Forbidden {
        /// [`outpost_domain::wire::ErrorBody::code`].
        code: String,
        /// The server's one-line reason.
        message: String,
    },
    /// The server answered with an error status (5xx transient, 4xx permanent).
    #[error("the server refused the request ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// [`outpost_domain::wire::ErrorBody::code`], or `"http"` when the body was not one.
        code: String,
        /// The server's one-line reason.
        message: String,
    },
    /// 413: the batch was too large (the engine halves the batch and retries).
    #[error("the server refused a batch as too large: {0}")]
    TooLarge(String),
    /// 409 `epoch_changed`: the server was restored from a backup; the console resyncs.
    #[error("the server was restored from a backup (new epoch {epoch}); resyncing")]
    EpochChanged {
        /// The server's current epoch.
        epoch: Uuid,
    },
    /// 410 `snapshot_required`: the history after the cursor was compacted.
    #[error("the server compacted the history this console needs; loading a snapshot")]
    SnapshotRequired,
    /// The answer did not decode (transient: a proxy page, a truncated body).
    #[error("the server's answer is not readable: {0}")]
    BadAnswer(String),
    /// The server's answers make no progress (e.g. the same `resend_from` again and again).
    #[error("sync makes no progress: {0}")]
    NoProgress(String),
    /// The local database failed (busy is transient; the rest is reported).
    #[error("local database: {0}")]
    Store(#[from] StoreError),
    /// The engine's worker failed (a panic in a store call).
    #[error("sync worker failed: {0}")]
    Worker(String),
}

impl SyncError {
    /// True when retrying later, unchanged, may succeed. Permanent errors are retried too
    /// (never by deleting data), but at the longest backoff, and shown to the user.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Unreachable(_)
            | SyncError::TooLarge(_)
            | SyncError::EpochChanged { .. }
            | SyncError::SnapshotRequired
            | SyncError::BadAnswer(_)
            | SyncError::NoProgress(_) => true,
            SyncError::Server { status, .. } => *status >= 500 || *status == 429,
            SyncError::Store(e) => e.is_transient(),
            SyncError::BadUrl { .. }
            | SyncError::Worker(_)
            | SyncError::Tls(_)
            | SyncError::Unauthenticated { .. }
            | SyncError::Forbidden { .. } => false,
        }
    }

    /// True when the server could not be reached at all (connection refused or reset, name
    /// not resolved, timed out): the caller may work offline. A TLS failure is not offline.
    pub fn is_offline(&self) -> bool {
        matches!(self, SyncError::Unreachable(_))
    }

    /// True when no connection could be made at all (refused: nothing listens at the
    /// address, or the network is unreachable), as opposed to a timeout or an answer: the
    /// engine then probes for the server coming back ([`crate::PROBE_INTERVAL`]).
    pub fn is_connect_failure(&self) -> bool {
        matches!(self, SyncError::Unreachable(m) if m.starts_with(crate::client::CONNECT_FAILED))
    }

    /// True when the server answered and refused the credentials or the device (401, 403);
    /// the server's message is in the error.
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            SyncError::Unauthenticated { .. } | SyncError::Forbidden { .. }
        )
    }

    /// True for 401 `unauthenticated`: the person's session is gone (expired, signed out,
    /// never given); a new sign-in fixes it.
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, SyncError::Unauthenticated { code, .. } if code == "unauthenticated")
    }

    /// True for 403 `device_revoked`: an administrator revoked this console's certificate.
    pub fn is_device_revoked(&self) -> bool {
        matches!(self, SyncError::Forbidden { code, .. } if code == "device_revoked")
    }

    /// One line for the status indicator (no chains, no URLs twice).
    pub fn one_line(&self) -> String {
        match self {
            SyncError::Unreachable(m) => m.clone(),
            other => other.to_string(),
        }
    }
}
