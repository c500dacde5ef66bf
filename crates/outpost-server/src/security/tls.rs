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

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::pki::{Pki, device_of_cert};

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

    /// `Ok(())` when `peer` may use the CoT TLS port: as [`DeviceCertCheck::check`], and
    /// (the server's own check) a device issued for TAK by `outpost-server cert device`, not
    /// a console (review S7). The default is `check`.
    ///
    /// # Errors
    /// The reason the device is refused.
    fn check_tak(&self, peer: &PeerDevice) -> Result<(), String> {
        self.check(peer)
    }
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
/// certificates per `client_auth` verified against the agency CA, ALPN `http/1.1`.
///
/// # Errors
/// [`TlsError`] when the server certificate, its key or the CA is unusable.
pub fn server_config(
    pki: &Pki,
    client_auth: ClientAuth,
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
            builder.with_client_cert_verifier(verifier)
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

/// Serves `app` over TLS on `listener` (HTTP/1.1 with upgrades, for the poke WebSocket;
/// [`HANDSHAKE_TIMEOUT`], [`HEADER_TIMEOUT`]) until `stop` becomes true; then stops accepting, lets every connection finish its
/// request (idle ones close) and returns when all are gone. Each request carries the
/// connection's [`PeerDevice`] when the client presented a verified certificate.
///
/// # Errors
/// None today (accept errors are logged and retried); the `Result` matches `axum::serve`.
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
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
                let _ = tcp.set_nodelay(true);
                conns.spawn(connection(acceptor.clone(), tcp, addr, app.clone(), stop.clone()));
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
    mut stop: watch::Receiver<bool>,
) {
    let tls = tokio::select! {
        r = accept(&acceptor, tcp) => match r {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "TLS handshake failed");
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
