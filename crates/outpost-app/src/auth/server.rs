//! What the [`Gate`](super::Gate) asks of the sync server: enrollment, login, logout and the
//! revocation list (`POST /v1/enroll`, `POST /v1/login`, `POST /v1/logout`, `GET
//! /v1/security/revocations`; wire types in `outpost_domain::wire`). Behind a trait so the
//! sign-in logic is tested against a fake server; the real one is outpost-sync's client.

use outpost_domain::wire::{
    EnrollRequest, EnrollResponse, LoginRequest, LoginResponse, Revocations,
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
}
