//! The console's TLS client configuration for the sync server: the agency CA pinned from
//! its PEM (no system roots: the server's certificate is issued by the agency CA made with
//! `outpost-server cert init`, never by a public CA) and, once the device is enrolled, its
//! client certificate. rustls 0.23 with the ring provider (not aws-lc-rs).
//!
//! Used for HTTP (reqwest's `use_preconfigured_tls`) and the poke WebSocket
//! (tokio-tungstenite's `Connector::Rustls`), and by the server's tests.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS client configuration could not be built (names the input that is wrong).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA PEM holds no usable certificate.
    #[error("agency CA certificate: {0}")]
    Ca(String),
    /// The client certificate PEM holds no usable certificate.
    #[error("device certificate: {0}")]
    Cert(String),
    /// The client key PEM holds no usable private key.
    #[error("device key: {0}")]
    Key(String),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS client configuration: {0}")]
    Config(String),
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block in the PEM text".into());
    }
    Ok(certs)
}

/// A rustls client configuration trusting only the agency CA of `ca_pem` (one or more PEM
/// certificates) and presenting `identity` = (device certificate chain PEM, private key PEM)
/// when given; ALPN `http/1.1`.
///
/// # Errors
/// [`TlsSetupError::Ca`], [`TlsSetupError::Cert`], [`TlsSetupError::Key`] for PEM text that
/// holds no certificate or key; [`TlsSetupError::Config`] when rustls refuses the pair (a key
/// that does not match the certificate).
pub fn client_config(
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem).map_err(TlsSetupError::Ca)? {
        roots
            .add(c)
            .map_err(|e| TlsSetupError::Ca(format!("not a usable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = certs(cert_pem).map_err(TlsSetupError::Cert)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| TlsSetupError::Key(format!("no usable private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsSetupError::Config(e.to_string()))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_a_certificate_is_refused_by_name() {
        let e = client_config("hello", None).expect_err("no cert");
        assert!(matches!(e, TlsSetupError::Ca(_)), "{e}");
        assert!(e.to_string().starts_with("agency CA certificate: "), "{e}");
    }
}
