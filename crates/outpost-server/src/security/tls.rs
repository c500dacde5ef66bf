//! TLS serving (rustls 0.23 with the ring provider): the server configurations built from the
//! agency PKI ([`super::pki::Pki`]), the serving loop of the sync port ([`serve_https`]) and
//! the identity of a client's device certificate ([`PeerDevice`]).
//!
//! - The sync port ([`ClientAuth::Optional`]): a client certificate is optional at the TLS
//!   layer (a new console must reach `POST /v1/enroll` before it has one), but one that is
//!   presented must chain to the agency CA, carry the client-auth EKU and be within its
//!   validity (rustls' `WebPkiClientVerifier`; an expired or foreign certificate fails the
//!   handshake). Its common name and serial become a [`PeerDevice`] in every request's
//!   extensions; a revoked certificate is refused above TLS by the auth layer (it checks the
//!   devices table), since the TLS layer keeps no revocation list.
//! - The CoT TLS port ([`ClientAuth::Required`], TAK's 8089 style): no certificate, no
//!   connection; a [`DeviceCertCheck`] may refuse a revoked one after the handshake.
//! - The OsmAnd HTTPS port ([`ClientAuth::None`]): phones carry no certificates; a device
//!   token may be required instead (see `crate::ingest::DeviceTokenCheck`).
//!
//! A TLS handshake must complete within [`HANDSHAKE_TIMEOUT`]; a plain-HTTP request to a TLS
//! port fails the handshake and the connection is closed.
//!
//! ## Refused handshakes in the audit trail
//!
//! A client certificate refused during the handshake (expired or not yet valid, not issued by
//! the agency CA, a bad signature, not for client authentication, malformed, or a client that
//! cannot prove it holds the certificate's key) never reaches the HTTP auth layer, so the
//! verifier records it itself: [`AuditingVerifier`] wraps rustls' `WebPkiClientVerifier` on
//! the sync port and the CoT TLS port, and [`HandshakeAudit`] writes one record — action
//! `tls.handshake`, outcome `refused`, user `-`, device = the certificate's common name (or
//! `-` when it does not parse), target = the listener and the client's address, detail = the
//! reason in words and the serial (e.g. "client certificate refused: certificate expired at
//! 2026-11-29T05:47:45Z (now 2026-11-30T05:48:00Z); serial 4a…"). The client learns nothing
//! more than the TLS alert rustls sends anyway (the verifier returns rustls' own error).
//!
//! Rate limit ([`HandshakeAudit`]): the same certificate (common name + serial) refused for
//! the same reason is recorded at most once per [`REFUSAL_WINDOW`]; the refusals suppressed
//! meanwhile are counted in its next record ("N more identical refusals since …"). At most
//! [`MAX_REFUSALS_PER_WINDOW`] records per window are written for all certificates together;
//! the rest are counted and reported in the next record written. A reconnect loop, or a
//! client minting a new certificate per attempt, cannot flood the trail. A count still held
//! when the refusals stop is not written (there is no next record); the log has it.
//!
//! Handshakes that fail BEFORE any certificate (plain HTTP or other non-TLS bytes on a TLS
//! port, a client that leaves or stalls, no common protocol) are not audited — port scanners
//! and health checks would flood the trail and there is no identity to record: they are
//! counted per listener and the count is logged (`info`, the first ten and then at each power
//! of two). A missing certificate where one is required (CoT TLS) is counted the same way.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use outpost_domain::clock::Clock;

use super::pki::{Pki, device_of_cert};
use super::{AuditEvent, AuditOutcome, AuditSink, Security};

/// How long a client may take to complete the TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's headers may take to arrive whole on the sync port, from the end of
/// the handshake or of the previous answer (hyper's `header_read_timeout`); it also closes
/// keep-alive connections left idle that long, so idle TLS connections do not pile up.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The device a client proved to be by its certificate, put by the TLS layer into the
/// extensions of every request of that connection (`req.extensions().get::<PeerDevice>()`).
///
/// Present only when the client presented a certificate that the verifier accepted: signed
/// by the agency CA, client-auth EKU, not expired. Absent on a connection without a client
/// certificate and on the plain-HTTP server of in-process tests. Not checked for revocation
/// here: the auth layer looks `device_id`/`serial_hex` up in the devices table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerDevice {
    /// The device id: the certificate subject's common name (set by
    /// [`Pki::sign_device_csr`] at enrollment).
    pub device_id: String,
    /// The certificate's serial number, lowercase hex without separators (as
    /// [`super::pki::SignedDevice::serial_hex`]).
    pub serial_hex: String,
}

/// Whether and how a listener asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificates (OsmAnd HTTPS).
    None,
    /// A client certificate is optional; one presented must verify (the sync port).
    Optional,
    /// A verified client certificate is required (CoT TLS).
    Required,
}

/// Refuses a device certificate that verified but must not be used any more (revoked), on
/// listeners without an HTTP auth layer (CoT TLS). Implemented by the security store.
pub trait DeviceCertCheck: Send + Sync + fmt::Debug {
    /// `Ok(())` when `peer` may connect; `Err(reason)` (one line, logged) otherwise.
    ///
    /// # Errors
    /// The reason the device is refused (e.g. "device revoked").
    fn check(&self, peer: &PeerDevice) -> Result<(), String>;

    /// `Ok(())` when `peer` may use the CoT TLS port: as [`DeviceCertCheck::check`], and
    /// (the server's own check) a device issued for TAK by `outpost-server cert device`, not
    /// a console (review S7). The default is `check`.
    ///
    /// # Errors
    /// The reason the device is refused.
    fn check_tak(&self, peer: &PeerDevice) -> Result<(), String> {
        self.check(peer)
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The server certificate or key is unusable.
    #[error("{file}: {what}")]
    BadIdentity {
        /// The file (`server.pem`, `server.key`, a CA or client identity).
        file: String,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The ring crypto provider (the one provider of this crate; not aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM text (`file` names it in errors).
///
/// # Errors
/// [`TlsError::BadIdentity`] when a block does not parse or there is none.
pub fn certs_from_pem(pem: &str, file: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadIdentity {
            file: file.into(),
            what: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::BadIdentity {
            file: file.into(),
            what: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, SEC1 or PKCS#1; `file` names it in errors).
///
/// # Errors
/// [`TlsError::BadIdentity`] when there is no private key.
pub fn key_from_pem(pem: &str, file: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::BadIdentity {
        file: file.into(),
        what: format!("no usable private key: {e}"),
    })
}

/// A rustls server configuration presenting the server certificate of `pki`, with client
/// certificates per `client_auth` verified against the agency CA, ALPN `http/1.1`; refused
/// client certificates are not audited ([`server_config_audited`] does that).
///
/// # Errors
/// [`TlsError`] when the server certificate, its key or the CA is unusable.
pub fn server_config(
    pki: &Pki,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_audited(pki, client_auth, None)
}

/// [`server_config`] whose client-certificate verifier, with `audit`, records every
/// certificate it refuses ([`AuditingVerifier`], rate-limited by [`HandshakeAudit`]). `audit`
/// is ignored with [`ClientAuth::None`] (no certificates are asked for).
///
/// # Errors
/// [`TlsError`] when the server certificate, its key or the CA is unusable.
pub fn server_config_audited(
    pki: &Pki,
    client_auth: ClientAuth,
    audit: Option<Arc<HandshakeAudit>>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let chain = certs_from_pem(pki.server_cert_pem(), "tls/server.pem")?;
    let key = key_from_pem(pki.server_key_pem(), "tls/server.key")?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let mut roots = RootCertStore::empty();
            for c in certs_from_pem(pki.ca_pem(), "tls/ca.pem")? {
                roots.add(c).map_err(|e| TlsError::BadIdentity {
                    file: "tls/ca.pem".into(),
                    what: e.to_string(),
                })?;
            }
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if client_auth == ClientAuth::Optional {
                v = v.allow_unauthenticated();
            }
            let verifier = v.build().map_err(|e| TlsError::Config(e.to_string()))?;
            match audit {
                Some(audit) => builder.with_client_cert_verifier(Arc::new(AuditingVerifier {
                    inner: verifier,
                    audit,
                })),
                None => builder.with_client_cert_verifier(verifier),
            }
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::BadIdentity {
            file: "tls/server.pem + tls/server.key".into(),
            what: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How long the same refused certificate (common name + serial + reason) is recorded only
/// once; also the span of [`MAX_REFUSALS_PER_WINDOW`].
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// At most this many `tls.handshake` records per [`REFUSAL_WINDOW`] and listener, for all
/// certificates together (a client minting a fresh certificate per attempt); the rest are
/// counted and the count goes into the next record written.
pub const MAX_REFUSALS_PER_WINDOW: u32 = 60;

/// The most distinct refused certificates remembered for the rate limit; beyond it the
/// oldest are forgotten and their suppressed counts move into the global count.
const MAX_TRACKED: usize = 4096;

/// The longest common name kept in a record or a rate-limit key, characters.
const MAX_NAME_CHARS: usize = 64;

tokio::task_local! {
    /// The client address of the handshake being driven (set by [`accept_from`]), so the
    /// verifier, which rustls gives no connection, can name it.
    static HANDSHAKE_PEER: SocketAddr;
}

/// The TLS listener whose handshake refused a certificate (the record's target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsListener {
    /// The sync port (`serve --listen`).
    Sync,
    /// The CoT TLS port (`--cot-tls`).
    Cot,
}

impl TlsListener {
    /// `sync port` or `CoT TLS port`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsListener::Sync => "sync port",
            TlsListener::Cot => "CoT TLS port",
        }
    }
}

/// Why a client certificate was refused: a stable `kind` (part of the rate limit's key) and
/// the reason in words (the record's detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `expired`, `not_yet_valid`, `unknown_issuer`, `bad_signature`, `wrong_purpose`,
    /// `revoked`, `bad_encoding`, `critical_extension`, `unsupported_algorithm`, `key_proof`
    /// or `other`.
    pub kind: &'static str,
    /// One line, e.g. "certificate expired at 2026-11-29T05:47:45Z (now 2026-11-30T05:48:00Z)".
    pub words: String,
}

impl Refusal {
    /// The refusal of `verify_client_cert` failing with `e`.
    pub fn of_certificate(e: &rustls::Error) -> Refusal {
        let rustls::Error::InvalidCertificate(ce) = e else {
            return Refusal::new("other", e.to_string());
        };
        #[allow(deprecated)] // UnsupportedSignatureAlgorithm: still produced by older paths.
        match ce {
            CertificateError::Expired => Refusal::new("expired", "certificate expired".into()),
            CertificateError::ExpiredContext { time, not_after } => Refusal::new(
                "expired",
                format!(
                    "certificate expired at {} (now {})",
                    unix_words(*not_after),
                    unix_words(*time)
                ),
            ),
            CertificateError::NotValidYet => {
                Refusal::new("not_yet_valid", "certificate not valid yet".into())
            }
            CertificateError::NotValidYetContext { time, not_before } => Refusal::new(
                "not_yet_valid",
                format!(
                    "certificate not valid before {} (now {})",
                    unix_words(*not_before),
                    unix_words(*time)
                ),
            ),
            CertificateError::UnknownIssuer => Refusal::new(
                "unknown_issuer",
                "certificate not issued by the agency CA (unknown issuer)".into(),
            ),
            CertificateError::BadSignature => Refusal::new(
                "bad_signature",
                "certificate not signed by the agency CA (bad signature)".into(),
            ),
            CertificateError::InvalidPurpose => Refusal::new(
                "wrong_purpose",
                "certificate not for client authentication (extended key usage)".into(),
            ),
            CertificateError::InvalidPurposeContext { presented, .. } => Refusal::new(
                "wrong_purpose",
                format!(
                    "certificate not for client authentication (extended key usage: {})",
                    if presented.is_empty() {
                        "none".to_string()
                    } else {
                        presented
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ),
            CertificateError::Revoked => Refusal::new("revoked", "certificate revoked".into()),
            CertificateError::BadEncoding => {
                Refusal::new("bad_encoding", "malformed certificate".into())
            }
            CertificateError::UnhandledCriticalExtension => Refusal::new(
                "critical_extension",
                "certificate has a critical extension the server does not process".into(),
            ),
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                Refusal::new(
                    "unsupported_algorithm",
                    "certificate signed with an unsupported algorithm".into(),
                )
            }
            other => Refusal::new("other", format!("certificate refused: {other}")),
        }
    }

    /// The refusal of a handshake signature (TLS 1.2/1.3 `CertificateVerify`) failing with
    /// `e`: the client presented a certificate without proving it holds its private key.
    pub fn of_key_proof(e: &rustls::Error) -> Refusal {
        Refusal::new(
            "key_proof",
            format!("the client did not prove it holds the certificate's private key ({e})"),
        )
    }

    fn new(kind: &'static str, words: String) -> Refusal {
        Refusal { kind, words }
    }

    /// True when the certificate did not verify against the agency CA, so its names are only
    /// what the client claims.
    fn unverified_names(&self) -> bool {
        matches!(
            self.kind,
            "unknown_issuer" | "bad_signature" | "bad_encoding" | "unsupported_algorithm" | "other"
        )
    }
}

/// `2026-11-30T05:48:00Z`.
fn unix_words(t: UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or_else(
            || format!("{} s after 1970", t.as_secs()),
            |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// The common name (at most [`MAX_NAME_CHARS`] characters, control characters as `?`) and
/// the serial (lowercase hex) of a DER certificate, each `"-"` when it cannot be read.
pub fn names_of_cert(der: &[u8]) -> (String, String) {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return ("-".into(), "-".into());
    };
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(|cn| {
            cn.chars()
                .take(MAX_NAME_CHARS)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect::<String>()
        })
        .filter(|cn| !cn.trim().is_empty())
        .unwrap_or_else(|| "-".into());
    let serial = hex::encode(cert.raw_serial());
    (
        cn,
        if serial.is_empty() {
            "-".into()
        } else {
            serial
        },
    )
}

/// The rate limit's key: the same certificate refused for the same reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RefusalKey {
    device: String,
    serial: String,
    kind: &'static str,
}

/// A certificate recorded within the current window.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    /// When its last record was written.
    at: DateTime<Utc>,
    /// Identical refusals since then, not recorded.
    suppressed: u64,
}

#[derive(Debug, Default)]
struct RateState {
    keys: HashMap<RefusalKey, Recorded>,
    /// Start of the window of the global cap, and the records written in it.
    window_start: Option<DateTime<Utc>>,
    written: u32,
    /// Refusals not recorded because of the global cap (or forgotten keys' counts).
    overflow: u64,
}

/// Records the client certificates a TLS listener refuses in the audit trail (action
/// `tls.handshake`, outcome `refused`), rate-limited: see the module documentation. Shared by
/// every connection of the listener through its [`AuditingVerifier`].
pub struct HandshakeAudit {
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    listener: TlsListener,
    state: Mutex<RateState>,
}

impl fmt::Debug for HandshakeAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeAudit")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// The security state as an audit sink (its own sink: the audit log, or a test's).
struct SecuritySink(Arc<Security>);

impl AuditSink for SecuritySink {
    fn record(&self, event: AuditEvent) {
        self.0.audit(event);
    }
}

impl HandshakeAudit {
    /// Writes to `sink`, with "now" (for the rate limit) from `clock`.
    pub fn new(
        sink: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
        listener: TlsListener,
    ) -> HandshakeAudit {
        HandshakeAudit {
            sink,
            clock,
            listener,
            state: Mutex::new(RateState::default()),
        }
    }

    /// Writes through `security` (its audit trail), on its clock.
    pub fn for_security(security: &Arc<Security>, listener: TlsListener) -> HandshakeAudit {
        HandshakeAudit::new(
            Arc::new(SecuritySink(security.clone())),
            security.config().clock.clone(),
            listener,
        )
    }

    /// Records that the certificate `der` (the end entity) was refused for `refusal`, from
    /// `peer` when known, unless the rate limit suppresses it (then it is counted). Never
    /// fails: the sink logs its own errors. The write runs on tokio's blocking pool when
    /// called inside a runtime (the handshake's task is not held up by the disk).
    pub fn refused(&self, der: &[u8], refusal: &Refusal, peer: Option<SocketAddr>) {
        let (device, serial) = names_of_cert(der);
        let Some(event) = self.decide(device, serial, refusal, peer) else {
            return;
        };
        tracing::info!(
            listener = self.listener.as_str(),
            peer = ?peer,
            device = %event.device,
            "client certificate refused: {}",
            refusal.words
        );
        let sink = self.sink.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || sink.record(event));
            }
            Err(_) => sink.record(event),
        }
    }

    /// The rate limit: the event to record now, or `None` (counted as suppressed).
    fn decide(
        &self,
        device: String,
        serial: String,
        refusal: &Refusal,
        peer: Option<SocketAddr>,
    ) -> Option<AuditEvent> {
        let now = self.clock.now();
        let window = chrono::Duration::from_std(REFUSAL_WINDOW).unwrap_or(chrono::Duration::MAX);
        let within = |at: DateTime<Utc>| {
            let age = now.signed_duration_since(at);
            age >= chrono::Duration::zero() && age < window
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.window_start.is_some_and(within) {
            st.window_start = Some(now);
            st.written = 0;
        }
        let key = RefusalKey {
            device,
            serial,
            kind: refusal.kind,
        };
        if let Some(r) = st.keys.get_mut(&key)
            && within(r.at)
        {
            r.suppressed += 1;
            tracing::debug!(
                listener = self.listener.as_str(),
                device = %key.device,
                suppressed = r.suppressed,
                "client certificate refused again (not audited again within the window): {}",
                refusal.words
            );
            return None;
        }
        if st.written >= MAX_REFUSALS_PER_WINDOW {
            st.overflow += 1;
            if st.overflow.is_power_of_two() {
                tracing::warn!(
                    listener = self.listener.as_str(),
                    not_recorded = st.overflow,
                    "more than {MAX_REFUSALS_PER_WINDOW} client certificates refused within \
                     {} s: the rest are counted in the next audit record",
                    REFUSAL_WINDOW.as_secs()
                );
            }
            return None;
        }
        let previous = st.keys.remove(&key);
        if st.keys.len() >= MAX_TRACKED {
            // Forget the certificates whose window is over; if that is not enough, all of
            // them, keeping their counts in the global one.
            let mut forgotten = 0;
            st.keys.retain(|_, r| {
                let keep = within(r.at);
                if !keep {
                    forgotten += r.suppressed;
                }
                keep
            });
            if st.keys.len() >= MAX_TRACKED {
                forgotten += st.keys.values().map(|r| r.suppressed).sum::<u64>();
                st.keys.clear();
            }
            st.overflow += forgotten;
        }
        st.keys.insert(
            key.clone(),
            Recorded {
                at: now,
                suppressed: 0,
            },
        );
        st.written += 1;
        let overflow = std::mem::take(&mut st.overflow);
        drop(st);

        let mut detail = format!(
            "client certificate refused: {}; serial {}",
            refusal.words, key.serial
        );
        if refusal.unverified_names() {
            detail.push_str("; name and serial as the client claims them (not verified)");
        }
        if let Some(p) = previous.filter(|p| p.suppressed > 0) {
            detail.push_str(&format!(
                "; {} more identical refusal{} since {}",
                p.suppressed,
                if p.suppressed == 1 { "" } else { "s" },
                p.at.format("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
        if overflow > 0 {
            detail.push_str(&format!(
                "; {overflow} other refusal{} not recorded one by one (more than \
                 {MAX_REFUSALS_PER_WINDOW} within {} s)",
                if overflow == 1 { "" } else { "s" },
                REFUSAL_WINDOW.as_secs()
            ));
        }
        let target = match peer {
            Some(p) => format!("{} from {p}", self.listener.as_str()),
            None => self.listener.as_str().to_string(),
        };
        Some(
            AuditEvent::new("tls.handshake", AuditOutcome::Refused)
                .device(key.device)
                .target(target)
                .detail(detail),
        )
    }
}

/// rustls' `WebPkiClientVerifier` with an audit record of every certificate it refuses
/// ([`HandshakeAudit`]); every decision is the inner verifier's, and the error returned (so
/// the TLS alert the client gets) is the inner verifier's own.
#[derive(Debug)]
pub struct AuditingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    audit: Arc<HandshakeAudit>,
}

impl AuditingVerifier {
    /// Wraps `inner`, recording its refusals through `audit`.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, audit: Arc<HandshakeAudit>) -> Self {
        AuditingVerifier { inner, audit }
    }

    fn peer() -> Option<SocketAddr> {
        HANDSHAKE_PEER.try_with(|p| *p).ok()
    }
}

impl ClientCertVerifier for AuditingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| {
                self.audit
                    .refused(end_entity, &Refusal::of_certificate(e), Self::peer());
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, cert, dss)
            .inspect_err(|e| {
                self.audit
                    .refused(cert, &Refusal::of_key_proof(e), Self::peer());
            })
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, cert, dss)
            .inspect_err(|e| {
                self.audit
                    .refused(cert, &Refusal::of_key_proof(e), Self::peer());
            })
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

/// True when a failed handshake (`accept`'s error) got as far as a client certificate: one
/// refused by the verifier (audited there) or none where one is required. False for
/// failures before any certificate (not TLS, a client that left or stalled, no common
/// protocol), which are only counted.
pub fn is_certificate_refusal(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Counts a listener's handshakes that failed before any client certificate; logged (the
/// first ten, then at each power of two), never audited.
#[derive(Debug, Default)]
pub struct PreCertificateFailures(AtomicU64);

impl PreCertificateFailures {
    /// Counts one failure of `listener` from `peer`; returns the count so far.
    pub fn count(&self, listener: TlsListener, peer: SocketAddr, error: &std::io::Error) -> u64 {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 10 || n.is_power_of_two() {
            tracing::info!(
                listener = listener.as_str(),
                %peer,
                error = %error,
                failed_before_certificate = n,
                "TLS handshake failed before any client certificate (not TLS, left or too \
                 slow); counted, not audited"
            );
        } else {
            tracing::debug!(listener = listener.as_str(), %peer, error = %error, "TLS handshake failed");
        }
        n
    }

    /// The failures counted so far.
    pub fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The [`PeerDevice`] of an established server connection: its verified client
/// certificate's common name and serial; `None` without a certificate (or one without a
/// common name, which the agency CA never signs).
pub fn peer_device(conn: &rustls::ServerConnection) -> Option<PeerDevice> {
    let cert = conn.peer_certificates()?.first()?;
    match device_of_cert(cert) {
        Ok((device_id, serial_hex)) => Some(PeerDevice {
            device_id,
            serial_hex,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "verified client certificate without a usable name");
            None
        }
    }
}

/// Completes the TLS handshake on `stream` within [`HANDSHAKE_TIMEOUT`].
///
/// # Errors
/// The handshake failed (a plain-text client, an untrusted or expired certificate, a missing
/// one where required) or timed out.
pub async fn accept<S>(
    acceptor: &TlsAcceptor,
    stream: S,
) -> std::io::Result<tokio_rustls::server::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "TLS handshake not complete within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// [`accept`] for a client at `peer`: the [`AuditingVerifier`] of the configuration names it
/// in the records of refused certificates.
///
/// # Errors
/// As [`accept`].
pub async fn accept_from<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    peer: SocketAddr,
) -> std::io::Result<tokio_rustls::server::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    HANDSHAKE_PEER.scope(peer, accept(acceptor, stream)).await
}

/// Serves `app` over TLS on `listener` (HTTP/1.1 with upgrades, for the poke WebSocket;
/// [`HANDSHAKE_TIMEOUT`], [`HEADER_TIMEOUT`]) until `stop` becomes true; then stops accepting, lets every connection finish its
/// request (idle ones close) and returns when all are gone. Each request carries the
/// connection's [`PeerDevice`] when the client presented a verified certificate. A refused
/// certificate is audited by the configuration's verifier ([`server_config_audited`]);
/// handshakes that fail before any certificate are counted in the log
/// ([`PreCertificateFailures`]).
///
/// # Errors
/// None today (accept errors are logged and retried); the `Result` matches `axum::serve`.
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: Router,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_https_capped(listener, config, app, None, stop).await
}

/// [`serve_https`] with at most the connections `cap` allows (in total and per client
/// address, review S8): a connection over a cap is closed at once, before the TLS
/// handshake, and counted by the cap.
///
/// # Errors
/// As [`serve_https`].
pub async fn serve_https_capped(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: Router,
    cap: Option<Arc<super::guards::ConnectionCap>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let failures = Arc::new(PreCertificateFailures::default());
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, addr) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, never spin.
                        tracing::warn!(error = %e, "sync listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match &cap {
                    Some(c) => match c.take(addr.ip()) {
                        Some(slot) => Some(slot),
                        // Over a cap: closed now (counted and logged by the cap).
                        None => continue,
                    },
                    None => None,
                };
                let _ = tcp.set_nodelay(true);
                let conn = connection(
                    acceptor.clone(),
                    tcp,
                    addr,
                    app.clone(),
                    failures.clone(),
                    stop.clone(),
                );
                conns.spawn(async move {
                    conn.await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Resolves when `stop` becomes true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One TLS connection: handshake, then HTTP/1.1 until the client leaves or the server stops.
async fn connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    addr: SocketAddr,
    app: Router,
    failures: Arc<PreCertificateFailures>,
    mut stop: watch::Receiver<bool>,
) {
    let tls = tokio::select! {
        r = accept_from(&acceptor, tcp, addr) => match r {
            Ok(t) => t,
            Err(e) => {
                if is_certificate_refusal(&e) {
                    // Audited by the verifier (rate-limited).
                    tracing::debug!(%addr, error = %e, "TLS handshake refused the client certificate");
                } else {
                    failures.count(TlsListener::Sync, addr, &e);
                }
                return;
            }
        },
        _ = stopped(&mut stop) => return,
    };
    let peer = peer_device(tls.get_ref().1);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(p) = &peer {
                req.extensions_mut().insert(p.clone());
            }
            // The client's address (per-address sign-in limits, review S3).
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(addr));
            let mut app = app.clone();
            async move { tower::Service::call(&mut app, req).await }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%addr, error = %e, "sync connection ended");
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::security::MemoryAudit;
    use outpost_domain::clock::FixedClock;

    /// A self-signed certificate named `cn` (DER); rcgen picks a random serial.
    fn cert(cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    fn unix(s: &str) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(at(s).timestamp()).expect("after 1970"),
        ))
    }

    fn expired() -> Refusal {
        Refusal::of_certificate(&rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: unix("2026-11-30T05:48:00Z"),
                not_after: unix("2026-11-29T05:47:45Z"),
            },
        ))
    }

    fn audit(clock: &Arc<FixedClock>) -> (Arc<MemoryAudit>, HandshakeAudit) {
        let sink = Arc::new(MemoryAudit::default());
        let audit = HandshakeAudit::new(sink.clone(), clock.clone(), TlsListener::Sync);
        (sink, audit)
    }

    #[test]
    fn refusals_are_put_in_words_with_a_stable_kind() {
        let r = expired();
        assert_eq!(r.kind, "expired");
        assert_eq!(
            r.words,
            "certificate expired at 2026-11-29T05:47:45Z (now 2026-11-30T05:48:00Z)"
        );
        let r = Refusal::of_certificate(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: unix("2026-11-30T05:48:00Z"),
                not_before: unix("2026-12-01T00:00:00Z"),
            },
        ));
        assert_eq!(
            (r.kind, r.words.as_str()),
            (
                "not_yet_valid",
                "certificate not valid before 2026-12-01T00:00:00Z (now 2026-11-30T05:48:00Z)"
            )
        );
        let r = Refusal::of_certificate(&CertificateError::UnknownIssuer.into());
        assert_eq!(
            (r.kind, r.words.as_str()),
            (
                "unknown_issuer",
                "certificate not issued by the agency CA (unknown issuer)"
            )
        );
        assert!(r.unverified_names());
        // Another CA of the same name: the issuer is found by name, its signature fails.
        let r = Refusal::of_certificate(&CertificateError::BadSignature.into());
        assert_eq!(
            (r.kind, r.words.as_str()),
            (
                "bad_signature",
                "certificate not signed by the agency CA (bad signature)"
            )
        );
        assert!(r.unverified_names());
        let r = Refusal::of_certificate(&CertificateError::InvalidPurpose.into());
        assert_eq!(r.kind, "wrong_purpose");
        assert!(!r.unverified_names());
        let r = Refusal::of_key_proof(&CertificateError::BadSignature.into());
        assert_eq!(r.kind, "key_proof");
        assert!(
            r.words.starts_with("the client did not prove it holds"),
            "{}",
            r.words
        );
    }

    #[test]
    fn certificate_refusals_are_told_from_failures_before_any_certificate() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert!(is_certificate_refusal(&io(
            CertificateError::UnknownIssuer.into()
        )));
        assert!(is_certificate_refusal(&io(
            rustls::Error::NoCertificatesPresented
        )));
        // Plain HTTP on the TLS port.
        assert!(!is_certificate_refusal(&io(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))));
        assert!(!is_certificate_refusal(&std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake not complete within 10 s"
        )));
        assert!(!is_certificate_refusal(&std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof
        )));
        let counter = PreCertificateFailures::default();
        let peer: SocketAddr = ([127, 0, 0, 1], 4000).into();
        let e = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(counter.count(TlsListener::Sync, peer, &e), 1);
        assert_eq!(counter.count(TlsListener::Sync, peer, &e), 2);
        assert_eq!(counter.total(), 2);
    }

    #[test]
    fn a_refused_certificate_is_named_by_its_common_name_and_serial() {
        let clock = Arc::new(FixedClock::new(at("2026-11-30T05:48:00Z")));
        let (sink, audit) = audit(&clock);
        let der = cert("dev-7f3a");
        let (cn, serial) = names_of_cert(&der);
        assert_eq!(cn, "dev-7f3a");
        assert!(!serial.is_empty() && serial != "-", "{serial}");
        let peer: SocketAddr = ([127, 0, 0, 1], 40123).into();
        audit.refused(&der, &expired(), Some(peer));
        audit.refused(b"not a certificate", &expired(), None);
        let events = sink.events();
        assert_eq!(events.len(), 2, "{events:?}");
        let e = &events[0];
        assert_eq!(e.action, "tls.handshake");
        assert_eq!(e.outcome, AuditOutcome::Refused);
        assert_eq!(e.user, "-");
        assert_eq!(e.device, "dev-7f3a");
        assert_eq!(e.target, "sync port from 127.0.0.1:40123");
        assert_eq!(
            e.detail,
            format!(
                "client certificate refused: certificate expired at 2026-11-29T05:47:45Z \
                 (now 2026-11-30T05:48:00Z); serial {serial}"
            )
        );
        // Unparsable: "-" for the name and the serial.
        assert_eq!(events[1].device, "-");
        assert_eq!(events[1].target, "sync port");
        assert!(
            events[1].detail.ends_with("; serial -"),
            "{}",
            events[1].detail
        );
        // A foreign certificate's names are flagged as claimed.
        let foreign = Refusal::of_certificate(&CertificateError::UnknownIssuer.into());
        audit.refused(&cert("dev-claimed"), &foreign, Some(peer));
        let last = sink.events().pop().expect("record");
        assert_eq!(last.device, "dev-claimed");
        assert!(
            last.detail
                .ends_with("; name and serial as the client claims them (not verified)"),
            "{}",
            last.detail
        );
    }

    #[test]
    fn the_same_refusal_is_recorded_once_a_minute_and_the_next_record_counts_the_rest() {
        let clock = Arc::new(FixedClock::new(at("2026-11-30T05:48:00Z")));
        let (sink, audit) = audit(&clock);
        let der = cert("dev-loop");
        let (_, serial) = names_of_cert(&der);
        // A reconnect loop: 50 attempts within the minute → one record.
        for _ in 0..50 {
            audit.refused(&der, &expired(), None);
        }
        clock.advance_secs(59);
        audit.refused(&der, &expired(), None);
        assert_eq!(sink.events().len(), 1);
        // The same certificate for another reason, and another certificate: their own records.
        let purpose = Refusal::of_certificate(&CertificateError::InvalidPurpose.into());
        audit.refused(&der, &purpose, None);
        audit.refused(&cert("dev-other"), &expired(), None);
        assert_eq!(sink.events().len(), 3);
        // A minute after the first record: recorded again, with the 50 suppressed since.
        clock.advance_secs(1);
        audit.refused(&der, &expired(), None);
        let events = sink.events();
        assert_eq!(events.len(), 4);
        assert_eq!(events[3].device, "dev-loop");
        assert_eq!(
            events[3].detail,
            format!(
                "client certificate refused: certificate expired at 2026-11-29T05:47:45Z \
                 (now 2026-11-30T05:48:00Z); serial {serial}; 50 more identical refusals \
                 since 2026-11-30T05:48:00Z"
            )
        );
        // Nothing suppressed since that record: the next one a minute later has no count.
        clock.advance_secs(60);
        audit.refused(&der, &expired(), None);
        let events = sink.events();
        assert_eq!(events.len(), 5);
        assert!(
            !events[4].detail.contains("more identical"),
            "{}",
            events[4].detail
        );
    }

    #[test]
    fn at_most_sixty_records_a_minute_for_all_certificates_the_rest_counted_in_the_next() {
        let clock = Arc::new(FixedClock::new(at("2026-11-30T05:48:00Z")));
        let (sink, audit) = audit(&clock);
        let refusal = Refusal::of_certificate(&CertificateError::UnknownIssuer.into());
        // A client minting a new certificate per attempt (distinct serials).
        let decide = |i: u32| audit.decide(format!("dev-{i}"), format!("{i:04x}"), &refusal, None);
        let written = (0..MAX_REFUSALS_PER_WINDOW + 7)
            .filter_map(decide)
            .collect::<Vec<_>>();
        assert_eq!(written.len(), 60);
        assert_eq!(written[59].device, "dev-59");
        clock.advance_secs(60);
        let next = decide(1000).expect("a new window");
        assert!(
            next.detail
                .ends_with("; 7 other refusals not recorded one by one (more than 60 within 60 s)"),
            "{}",
            next.detail
        );
        let after = decide(1001).expect("recorded");
        assert!(!after.detail.contains("other refusals"), "{}", after.detail);
        assert!(sink.events().is_empty(), "decide() itself writes nothing");
    }
}
