//! The requests a console makes for a person, outside the sync engine: enroll this device,
//! sign in, sign out, read the revocation list (the console's sign-in gate calls them).
//!
//! Each is a blocking call with its own short-lived runtime on a helper thread, so it can be
//! called from any thread — a plain one or one inside an async runtime (a Tauri command).
//!
//! Errors tell the caller what to do:
//! - [`SyncError::is_offline`] ([`SyncError::Unreachable`]): no answer (connection refused,
//!   name not resolved, timed out): work offline;
//! - [`SyncError::is_refused`]: the server answered 401 ([`SyncError::Unauthenticated`]:
//!   wrong password or code, session gone, `certificate_required`) or 403
//!   ([`SyncError::Forbidden`]: `locked_out`, `device_revoked`, `forbidden`), with its
//!   message;
//! - [`SyncError::BadUrl`]: the address is unusable (not `https://`, no host);
//! - [`SyncError::Tls`]: the CA, certificate or key is unreadable, or the server is not the
//!   one the agency CA vouches for;
//! - otherwise [`SyncError::Server`] / [`SyncError::BadAnswer`].

use std::future::Future;

use outpost_domain::wire::{
    EnrollRequest, EnrollResponse, LoginRequest, LoginResponse, Revocations,
};

use crate::client::{ServerClient, Timeouts, TlsSettings};
use crate::error::SyncError;
use crate::token::TokenSource;

/// Timeouts of these calls: connect 5 s, whole request 20 s (a person is waiting).
pub fn timeouts() -> Timeouts {
    Timeouts {
        connect: std::time::Duration::from_secs(5),
        request: std::time::Duration::from_secs(20),
        snapshot: std::time::Duration::from_secs(20),
    }
}

/// A new device key pair (ECDSA P-256) and a PKCS#10 request for it naming `common_name`:
/// (key PKCS#8 PEM, CSR PEM), what [`enroll`] sends in `EnrollRequest::csr_pem`. The key never
/// leaves the console; the server names the certificate after the device id it assigns.
///
/// # Errors
/// A message when rcgen fails (it does not for a P-256 key).
pub fn new_key_and_csr(common_name: &str) -> Result<(String, String), String> {
    let key =
        rcgen::KeyPair::generate().map_err(|e| format!("cannot generate the device key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("cannot build the certificate request: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|e| format!("cannot build the certificate request: {e}"))?;
    Ok((key.serialize_pem(), csr))
}

/// `POST /v1/enroll` at `url` (`https://host:port`), trusting only `ca_pem`, without a
/// client certificate: returns the device certificate (and the CA again) to store.
///
/// # Errors
/// See the module: offline, refused (wrong credentials, locked out), bad URL, TLS.
pub fn enroll(url: &str, ca_pem: &str, req: &EnrollRequest) -> Result<EnrollResponse, SyncError> {
    let tls = TlsSettings::new(ca_pem);
    let client = ServerClient::connect(url, timeouts(), Some(&tls), TokenSource::new())?;
    block(async move { client.enroll(req).await })
}

/// `POST /v1/login` at `url` with the device's TLS identity: the session (token, expiry,
/// role, TOTP secret, offline grace, cache key).
///
/// # Errors
/// See the module. [`SyncError::Unauthenticated`] with code `unauthenticated` for a wrong
/// password or code, `certificate_required` when `tls` has no (valid) device certificate;
/// [`SyncError::Forbidden`] `locked_out` / `device_revoked`.
pub fn login(url: &str, tls: &TlsSettings, req: &LoginRequest) -> Result<LoginResponse, SyncError> {
    let client = ServerClient::connect(url, timeouts(), Some(tls), TokenSource::new())?;
    block(async move { client.login(req).await })
}

/// `POST /v1/logout` at `url`: ends the session of `token` on the server.
///
/// # Errors
/// See the module; [`SyncError::Unauthenticated`] when the session had already ended.
pub fn logout(url: &str, tls: &TlsSettings, token: &str) -> Result<(), SyncError> {
    let client = ServerClient::connect(url, timeouts(), Some(tls), TokenSource::with_token(token))?;
    block(async move { client.logout().await })
}

/// `POST /v1/password` at `url` with the session `token`: the signed-in person changes
/// their own password (old password and a fresh code; the server ends their other
/// sessions, this one stays).
///
/// # Errors
/// See the module. [`SyncError::Unauthenticated`] for a wrong old password or code,
/// [`SyncError::Forbidden`] `locked_out`, [`SyncError::Server`] (400) for a new password the
/// server refuses (too short, blank, the old one).
pub fn change_password(
    url: &str,
    tls: &TlsSettings,
    token: &str,
    req: &outpost_domain::wire::PasswordChangeRequest,
) -> Result<(), SyncError> {
    let client = ServerClient::connect(url, timeouts(), Some(tls), TokenSource::with_token(token))?;
    block(async move { client.change_password(req).await })
}

/// `GET /v1/security/revocations` at `url` with the session `token`.
///
/// # Errors
/// See the module.
pub fn revocations(url: &str, tls: &TlsSettings, token: &str) -> Result<Revocations, SyncError> {
    let client = ServerClient::connect(url, timeouts(), Some(tls), TokenSource::with_token(token))?;
    block(async move { client.revocations().await })
}

/// `POST /v1/audit/events` at `url` with the session `token`: uploads a batch of the
/// console's audit outbox.
///
/// # Errors
/// See the module.
pub fn audit_events(
    url: &str,
    tls: &TlsSettings,
    token: &str,
    req: &outpost_domain::wire::AuditEventsRequest,
) -> Result<outpost_domain::wire::AuditEventsResponse, SyncError> {
    let client = ServerClient::connect(url, timeouts(), Some(tls), TokenSource::with_token(token))?;
    block(async move { client.audit_events(req).await })
}

/// Runs `fut` to completion on a fresh current-thread runtime on a scoped helper thread.
fn block<T, F>(fut: F) -> Result<T, SyncError>
where
    T: Send,
    F: Future<Output = Result<T, SyncError>> + Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SyncError::Worker(format!("cannot start a runtime: {e}")))?;
            runtime.block_on(fut)
        });
        handle
            .join()
            .unwrap_or_else(|_| Err(SyncError::Worker("the request thread panicked".into())))
    })
}
