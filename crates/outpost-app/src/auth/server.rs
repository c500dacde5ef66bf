//! What the [`Gate`](super::Gate) asks of the sync server: enrollment, login, logout and the
//! revocation list (`POST /v1/enroll`, `POST /v1/login`, `POST /v1/logout`, `GET
//! /v1/security/revocations`; wire types in `outpost_domain::wire`). Behind a trait so the
//! sign-in logic is tested against a fake server; the real one is outpost-sync's client.

use outpost_domain::wire::{
    AuditEventsRequest, AuditEventsResponse, EnrollRequest, EnrollResponse, LoginRequest,
    LoginResponse, PasswordChangeRequest, Revocations,
};

/// This device's TLS identity once enrolled (PEM texts; the key never leaves the data
/// directory, where it is readable only by its owner).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The device id the server gave (the certificate's common name).
    pub device_id: String,
    /// The device certificate, PEM.
    pub cert_pem: String,
    /// The device's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The agency CA certificate, PEM (the only trust anchor for the server).
    pub ca_pem: String,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// Why a server call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// No answer (network down, TLS failure, timeout): an offline sign-in may follow.
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    /// The server answered with a refusal: its error code (`unauthenticated`,
    /// `locked_out`, `device_revoked`, `forbidden`, `certificate_required`, …) and message.
    #[error("the server refused: {message}")]
    Refused {
        /// The wire error code.
        code: String,
        /// The server's message.
        message: String,
    },
}

/// The server calls sign-in needs. `url` is the configured `https://HOST:PORT`.
pub trait AuthServer: Send + Sync {
    /// `POST /v1/enroll`, trusting only `ca_pem` for the server's certificate (no client
    /// certificate yet).
    ///
    /// # Errors
    /// [`ServerError`].
    fn enroll(
        &self,
        url: &str,
        ca_pem: &str,
        req: &EnrollRequest,
    ) -> Result<EnrollResponse, ServerError>;

    /// `POST /v1/login` with the device certificate.
    ///
    /// # Errors
    /// [`ServerError`].
    fn login(
        &self,
        url: &str,
        device: &DeviceIdentity,
        req: &LoginRequest,
    ) -> Result<LoginResponse, ServerError>;

    /// `POST /v1/logout` of the session `token`.
    ///
    /// # Errors
    /// [`ServerError`].
    fn logout(&self, url: &str, device: &DeviceIdentity, token: &str) -> Result<(), ServerError>;

    /// `GET /v1/security/revocations` under the session `token`.
    ///
    /// # Errors
    /// [`ServerError`].
    fn revocations(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
    ) -> Result<Revocations, ServerError>;

    /// `POST /v1/password` under the session `token`: the signed-in person changes their
    /// own password. The default answers [`ServerError::Unreachable`] (a client that cannot
    /// change passwords: the console says to try again online).
    ///
    /// # Errors
    /// [`ServerError`].
    fn change_password(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
        req: &PasswordChangeRequest,
    ) -> Result<(), ServerError> {
        let _ = (url, device, token, req);
        Err(ServerError::Unreachable(
            "this server client does not change passwords".into(),
        ))
    }

    /// `POST /v1/audit/events` under the session `token`: a batch of the console's audit
    /// outbox ([`super::audit_outbox`]). The default answers [`ServerError::Unreachable`]
    /// (a client that cannot upload keeps the events waiting).
    ///
    /// # Errors
    /// [`ServerError`].
    fn audit_events(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
        req: &AuditEventsRequest,
    ) -> Result<AuditEventsResponse, ServerError> {
        let _ = (url, device, token, req);
        Err(ServerError::Unreachable(
            "this server client does not upload audit events".into(),
        ))
    }
}

/// The real server: `outpost_sync::account`'s blocking calls over TLS (the agency CA pinned,
/// the device certificate presented once enrolled).
///
/// Errors map as: no answer, a TLS failure (e.g. a captive portal or an interception the
/// agency CA does not vouch for), a 5xx or an unreadable answer → [`ServerError::Unreachable`]
/// (an offline sign-in may follow; it needs the password and code all the same); 401 / 403
/// and other 4xx → [`ServerError::Refused`] with the server's code and message.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncServer;

fn map_sync_error(e: outpost_sync::SyncError) -> ServerError {
    use outpost_sync::SyncError as E;
    match e {
        E::Unauthenticated { code, message } | E::Forbidden { code, message } => {
            ServerError::Refused { code, message }
        }
        E::Server {
            status,
            code,
            message,
        } if (400..500).contains(&status) => ServerError::Refused { code, message },
        E::BadUrl { url, reason } => ServerError::Refused {
            code: "bad_url".into(),
            message: format!("the server address {url:?} is not usable: {reason}"),
        },
        other => ServerError::Unreachable(other.to_string()),
    }
}

fn tls_of(device: &DeviceIdentity) -> outpost_sync::TlsSettings {
    outpost_sync::TlsSettings::new(device.ca_pem.clone())
        .with_identity(device.cert_pem.clone(), device.key_pem.clone())
}

impl AuthServer for SyncServer {
    fn enroll(
        &self,
        url: &str,
        ca_pem: &str,
        req: &EnrollRequest,
    ) -> Result<EnrollResponse, ServerError> {
        outpost_sync::account::enroll(url, ca_pem, req).map_err(map_sync_error)
    }

    fn login(
        &self,
        url: &str,
        device: &DeviceIdentity,
        req: &LoginRequest,
    ) -> Result<LoginResponse, ServerError> {
        outpost_sync::account::login(url, &tls_of(device), req).map_err(map_sync_error)
    }

    fn logout(&self, url: &str, device: &DeviceIdentity, token: &str) -> Result<(), ServerError> {
        outpost_sync::account::logout(url, &tls_of(device), token).map_err(map_sync_error)
    }

    fn revocations(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
    ) -> Result<Revocations, ServerError> {
        outpost_sync::account::revocations(url, &tls_of(device), token).map_err(map_sync_error)
    }

    fn change_password(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
        req: &PasswordChangeRequest,
    ) -> Result<(), ServerError> {
        outpost_sync::account::change_password(url, &tls_of(device), token, req)
            .map_err(map_sync_error)
    }

    fn audit_events(
        &self,
        url: &str,
        device: &DeviceIdentity,
        token: &str,
        req: &AuditEventsRequest,
    ) -> Result<AuditEventsResponse, ServerError> {
        outpost_sync::account::audit_events(url, &tls_of(device), token, req)
            .map_err(map_sync_error)
    }
}
