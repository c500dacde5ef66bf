//! The HTTP side of the protocol of [`outpost_domain::wire`]: one method per endpoint, errors
//! mapped to [`SyncError`] (409 `epoch_changed`, 410 `snapshot_required`, 413, 401
//! `unauthenticated`, 403 `device_revoked`, …).
//!
//! Over `https://` the client trusts only the agency CA given in [`TlsSettings`] (pinned:
//! the system's roots are never consulted) and presents the device certificate when one is
//! given; `http://` is for in-process plain test servers only. Every request over TLS
//! carries the person's token from the [`TokenSource`], read at the time of the request (a
//! token is never sent in clear text).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use outpost_domain::wire::{
    Capabilities, EnrollRequest, EnrollResponse, ErrorBody, Health, LoginRequest, LoginResponse,
    PullResponse, PushRequest, PushResponse, Revocations, Snapshot,
};

use crate::error::SyncError;
use crate::token::TokenSource;

/// Timeouts of the HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, seconds-scale.
    pub connect: Duration,
    /// A whole push or pull request.
    pub request: Duration,
    /// A snapshot download (can be large).
    pub snapshot: Duration,
}

impl Default for Timeouts {
    /// Connect 5 s, request 30 s, snapshot 300 s.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
            snapshot: Duration::from_secs(300),
        }
    }
}

/// The TLS side of a console's connection: the agency CA it trusts (the only trust anchor)
/// and, once enrolled, its device certificate and key.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The agency CA certificate(s), PEM (`EnrollResponse::ca_pem`, or the server's
    /// `tls/ca.pem` handed to the console out of band before enrollment).
    pub ca_pem: String,
    /// The device's client certificate and key; `None` before enrollment (only
    /// `POST /v1/enroll`, `GET /v1/health` and `GET /v1/capabilities` answer then).
    pub identity: Option<ClientIdentity>,
}

/// A device's client certificate (chain) and private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The device certificate, PEM (`EnrollResponse::certificate_pem`), optionally followed
    /// by intermediates.
    pub cert_pem: String,
    /// The device's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("identity", &self.identity)
            .finish()
    }
}

impl std::fmt::Debug for ClientIdentity {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_pem_bytes", &self.cert_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl TlsSettings {
    /// Trust only `ca_pem`, no client certificate (enrollment).
    pub fn new(ca_pem: impl Into<String>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            identity: None,
        }
    }

    /// The same trust with the device's certificate and key.
    pub fn with_identity(self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        Self {
            identity: Some(ClientIdentity {
                cert_pem: cert_pem.into(),
                key_pem: key_pem.into(),
            }),
            ..self
        }
    }

    /// The rustls configuration (ring provider, only the agency CA trusted).
    ///
    /// # Errors
    /// [`SyncError::Tls`] naming what is wrong with the CA, the certificate or the key.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, SyncError> {
        let identity = self
            .identity
            .as_ref()
            .map(|i| (i.cert_pem.as_str(), i.key_pem.as_str()));
        crate::tls::client_config(&self.ca_pem, identity).map_err(|e| SyncError::Tls(e.to_string()))
    }
}

/// A client of one `outpost-server`.
#[derive(Debug, Clone)]
pub struct ServerClient {
    base: Url,
    http: reqwest::Client,
    timeouts: Timeouts,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: TokenSource,
}

/// Parses and normalises a server base URL (`https://host:port`, optionally with a path
/// prefix); the result ends with `/` so that endpoint paths join under it.
///
/// # Errors
/// [`SyncError::BadUrl`] when it does not parse or is not `http`/`https`.
pub fn parse_base_url(url: &str) -> Result<Url, SyncError> {
    let bad = |reason: String| SyncError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let mut parsed =
        Url::parse(url.trim()).map_err(|e| bad(format!("{e}; write it as https://host:port")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not https (or http for a test server)",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host; write it as https://host:port".into()));
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    Ok(parsed)
}

impl ServerClient {
    /// A client for the plain-HTTP server at `base_url` (see [`parse_base_url`]), without a
    /// token: in-process test servers.
    ///
    /// # Errors
    /// [`SyncError::BadUrl`] (also for `https://`, which needs [`ServerClient::connect`] with
    /// the agency CA); [`SyncError::Worker`] when the HTTP client cannot start.
    pub fn new(base_url: &str, timeouts: Timeouts) -> Result<Self, SyncError> {
        Self::connect(base_url, timeouts, None, TokenSource::new())
    }

    /// A client for the server at `base_url`: with `tls`, over `https://` trusting only its
    /// CA and presenting its device identity; every request carries `token`'s current token
    /// (over TLS only: without `tls` the token is not sent).
    ///
    /// # Errors
    /// [`SyncError::BadUrl`] for an unusable URL, `http://` with TLS settings or `https://`
    /// without them; [`SyncError::Tls`] for an unreadable CA, certificate or key;
    /// [`SyncError::Worker`] when the HTTP client cannot start.
    pub fn connect(
        base_url: &str,
        timeouts: Timeouts,
        tls: Option<&TlsSettings>,
        token: TokenSource,
    ) -> Result<Self, SyncError> {
        let base = parse_base_url(base_url)?;
        let bad = |reason: &str| SyncError::BadUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .user_agent(concat!("outpost-sync/", env!("CARGO_PKG_VERSION")));
        let tls = match (base.scheme(), tls) {
            ("https", Some(settings)) => {
                let config = Arc::new(settings.client_config()?);
                builder = builder.use_preconfigured_tls((*config).clone());
                Some(config)
            }
            ("https", None) => {
                return Err(bad(
                    "https:// needs the agency CA certificate (this console trusts no other); \
                     enroll the console or give the CA",
                ));
            }
            (_, Some(_)) => {
                return Err(bad(
                    "the sync server is reached over TLS only: use https://host:port",
                ));
            }
            (_, None) => None,
        };
        let http = builder
            .build()
            .map_err(|e| SyncError::Worker(format!("cannot start the HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            timeouts,
            tls,
            token,
        })
    }

    /// The token source every request reads.
    pub fn token(&self) -> &TokenSource {
        &self.token
    }

    /// The rustls configuration of `https://` connections (the poke WebSocket uses it too);
    /// `None` for plain HTTP.
    pub fn tls_config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }

    /// The normalised base URL (ends with `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The WebSocket URL of `GET /v1/poke` (`ws://` or `wss://`).
    pub fn poke_url(&self) -> String {
        let mut url = self.endpoint("v1/poke");
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // Both schemes are "special" with the same default-port rules, so this cannot fail.
        let _ = url.set_scheme(scheme);
        url.to_string()
    }

    fn endpoint(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// `GET /v1/health`.
    ///
    /// # Errors
    /// As every request: [`SyncError::Unreachable`], [`SyncError::Server`],
    /// [`SyncError::BadAnswer`].
    pub async fn health(&self) -> Result<Health, SyncError> {
        let resp = self.send(self.http.get(self.endpoint("v1/health"))).await?;
        decode(resp).await
    }

    /// `GET /v1/capabilities`.
    ///
    /// # Errors
    /// As [`ServerClient::health`].
    pub async fn capabilities(&self) -> Result<Capabilities, SyncError> {
        let resp = self
            .send(self.http.get(self.endpoint("v1/capabilities")))
            .await?;
        decode(resp).await
    }

    /// `POST /v1/push`.
    ///
    /// # Errors
    /// [`SyncError::EpochChanged`] (409), [`SyncError::TooLarge`] (413), and as
    /// [`ServerClient::health`].
    pub async fn push(&self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        let resp = self
            .send(self.http.post(self.endpoint("v1/push")).json(req))
            .await?;
        decode(resp).await
    }

    /// `GET /v1/pull?after=G&limit=N[&epoch=E]`; `epoch` is the epoch this console synced
    /// with (`None` before its first sync).
    ///
    /// # Errors
    /// [`SyncError::SnapshotRequired`] (410), [`SyncError::EpochChanged`] (409) when `epoch`
    /// is not the server's, and as [`ServerClient::health`].
    pub async fn pull(
        &self,
        after: u64,
        limit: usize,
        epoch: Option<uuid::Uuid>,
    ) -> Result<PullResponse, SyncError> {
        let mut url = self.endpoint("v1/pull");
        url.query_pairs_mut()
            .append_pair("after", &after.to_string())
            .append_pair("limit", &limit.to_string());
        if let Some(e) = epoch {
            url.query_pairs_mut().append_pair("epoch", &e.to_string());
        }
        let resp = self.send(self.http.get(url)).await?;
        decode(resp).await
    }

    /// `GET /v1/snapshot`.
    ///
    /// # Errors
    /// As [`ServerClient::health`].
    pub async fn snapshot(&self) -> Result<Snapshot, SyncError> {
        let resp = self
            .send(
                self.http
                    .get(self.endpoint("v1/snapshot"))
                    .timeout(self.timeouts.snapshot),
            )
            .await?;
        decode(resp).await
    }

    /// `POST /v1/enroll`: asks for a device certificate with a person's credentials (TLS
    /// without a client certificate is enough).
    ///
    /// # Errors
    /// [`SyncError::Unauthenticated`] (wrong password or code), [`SyncError::Forbidden`]
    /// (`locked_out`), [`SyncError::Tls`], and as [`ServerClient::health`].
    pub async fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, SyncError> {
        let resp = self
            .send(self.http.post(self.endpoint("v1/enroll")).json(req))
            .await?;
        decode(resp).await
    }

    /// `POST /v1/login` (needs the device certificate): a session token for the person.
    ///
    /// # Errors
    /// [`SyncError::Unauthenticated`] (wrong password or code, `certificate_required`),
    /// [`SyncError::Forbidden`] (`locked_out`, `device_revoked`), and as
    /// [`ServerClient::health`].
    pub async fn login(&self, req: &LoginRequest) -> Result<LoginResponse, SyncError> {
        let resp = self
            .send(self.http.post(self.endpoint("v1/login")).json(req))
            .await?;
        decode(resp).await
    }

    /// `POST /v1/logout`: ends the session of the current token.
    ///
    /// # Errors
    /// [`SyncError::Unauthenticated`] when the session was already gone, and as
    /// [`ServerClient::health`].
    pub async fn logout(&self) -> Result<(), SyncError> {
        self.send(self.http.post(self.endpoint("v1/logout")))
            .await
            .map(drop)
    }

    /// `POST /v1/password`: the signed-in person changes their own password (204; their
    /// other sessions end on the server).
    ///
    /// # Errors
    /// [`SyncError::Unauthenticated`] (wrong old password or code, session gone),
    /// [`SyncError::Forbidden`] (`locked_out`), [`SyncError::Server`] (400 naming the bad
    /// field: the new password's rules), and as [`ServerClient::health`].
    pub async fn change_password(
        &self,
        req: &outpost_domain::wire::PasswordChangeRequest,
    ) -> Result<(), SyncError> {
        self.send(self.http.post(self.endpoint("v1/password")).json(req))
            .await
            .map(drop)
    }

    /// `GET /v1/security/revocations`: revoked devices and disabled accounts.
    ///
    /// # Errors
    /// [`SyncError::Unauthenticated`], [`SyncError::Forbidden`], and as
    /// [`ServerClient::health`].
    pub async fn revocations(&self) -> Result<Revocations, SyncError> {
        let resp = self
            .send(self.http.get(self.endpoint("v1/security/revocations")))
            .await?;
        decode(resp).await
    }

    /// `POST /v1/audit/events`: a batch of the console's audit outbox (any role, for this
    /// device; the server records each event id once).
    ///
    /// # Errors
    /// [`SyncError::Unauthenticated`], [`SyncError::Server`] (400 naming the bad field), and
    /// as [`ServerClient::health`].
    pub async fn audit_events(
        &self,
        req: &outpost_domain::wire::AuditEventsRequest,
    ) -> Result<outpost_domain::wire::AuditEventsResponse, SyncError> {
        let resp = self
            .send(self.http.post(self.endpoint("v1/audit/events")).json(req))
            .await?;
        decode(resp).await
    }

    /// The poke WebSocket's handshake request (URL and `Authorization` header) and its TLS
    /// connector (`None` for plain `ws://`).
    pub(crate) fn poke_request(
        &self,
    ) -> Result<
        (
            tokio_tungstenite::tungstenite::handshake::client::Request,
            Option<tokio_tungstenite::Connector>,
        ),
        SyncError,
    > {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = self.poke_url();
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| SyncError::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if let Some(token) = self.bearer() {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| SyncError::Unauthenticated {
                    code: "unauthenticated".into(),
                    message: "the session token is not a valid header value; sign in again".into(),
                })?;
            req.headers_mut()
                .insert(reqwest::header::AUTHORIZATION, value);
        }
        let connector = self
            .tls
            .as_ref()
            .map(|c| tokio_tungstenite::Connector::Rustls(Arc::clone(c)));
        Ok((req, connector))
    }

    /// The token to send: only over TLS (a plain test server needs none, and a session
    /// token never travels in clear text).
    fn bearer(&self) -> Option<String> {
        self.tls.as_ref().and_then(|_| self.token.get())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Response, SyncError> {
        let req = match self.bearer() {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(error_answer(resp).await)
    }
}

/// The start of [`SyncError::Unreachable`]'s text when the connection could not be made.
pub(crate) const CONNECT_FAILED: &str = "connection failed";

/// A transport failure in one line ("connection refused", "timed out"), or
/// [`SyncError::Tls`] when the TLS handshake failed.
fn transport(e: reqwest::Error) -> SyncError {
    if let Some(tls) = tls_failure(&e) {
        return SyncError::Tls(tls);
    }
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        // The root cause is the useful part ("Connection refused (os error 111)").
        let mut source: &dyn std::error::Error = &e;
        while let Some(next) = source.source() {
            source = next;
        }
        format!("{CONNECT_FAILED}: {source}")
    } else {
        e.to_string()
    };
    SyncError::Unreachable(what)
}

/// The rustls error somewhere in `e`'s chain, explained; `None` when it is not a TLS failure.
/// (`io::Error` hides its inner error from `source()`, so each one is opened by hand.)
pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(explain_tls(r));
        }
        // io::Errors nest (hyper-util wraps the TLS stream's one in another).
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// A person-readable line for a TLS handshake failure.
pub(crate) fn explain_tls(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the server's certificate is not signed by the agency CA this console trusts \
             (wrong CA file, or not the agency's server) ({e})"
        ),
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "the server's certificate is not valid for this address; use the host name or IP \
             the certificate was made for (`outpost-server cert init --name`) ({e})"
        ),
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("the server's certificate has expired ({e})")
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            format!("the server's certificate is not valid yet (check this computer's clock) ({e})")
        }
        E::InvalidCertificate(_) => format!("the server's certificate is not acceptable ({e})"),
        E::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateRequired,
        ) => format!("the server refused this device's certificate ({e})"),
        other => format!("TLS handshake failed ({other})"),
    }
}

async fn error_answer(resp: Response) -> SyncError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
    match (status, body) {
        (StatusCode::CONFLICT, Some(b)) if b.code == "epoch_changed" => match b.epoch {
            Some(epoch) => SyncError::EpochChanged { epoch },
            None => SyncError::BadAnswer("409 epoch_changed without the new epoch".into()),
        },
        (StatusCode::GONE, _) => SyncError::SnapshotRequired,
        (StatusCode::PAYLOAD_TOO_LARGE, b) => {
            SyncError::TooLarge(b.map(|b| b.message).unwrap_or_default())
        }
        (StatusCode::UNAUTHORIZED, b) => {
            let (code, message) = b.map_or_else(
                || ("unauthenticated".to_string(), short(&text)),
                |b| (b.code, b.message),
            );
            SyncError::Unauthenticated { code, message }
        }
        (StatusCode::FORBIDDEN, b) => {
            let (code, message) = b.map_or_else(
                || ("forbidden".to_string(), short(&text)),
                |b| (b.code, b.message),
            );
            SyncError::Forbidden { code, message }
        }
        (_, Some(b)) => SyncError::Server {
            status: status.as_u16(),
            code: b.code,
            message: b.message,
        },
        (_, None) => SyncError::Server {
            status: status.as_u16(),
            code: "http".into(),
            message: short(&text),
        },
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, SyncError> {
    let bytes = resp.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes).map_err(|e| SyncError::BadAnswer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        let c = ServerClient::new("http://127.0.0.1:8080", Timeouts::default()).expect("url");
        assert_eq!(c.base().as_str(), "http://127.0.0.1:8080/");
        assert_eq!(
            c.endpoint("v1/push").as_str(),
            "http://127.0.0.1:8080/v1/push"
        );
        assert_eq!(c.poke_url(), "ws://127.0.0.1:8080/v1/poke");
        let tls = TlsSettings::new(test_ca_pem());
        let c = ServerClient::connect(
            "https://sync.example/outpost",
            Timeouts::default(),
            Some(&tls),
            TokenSource::new(),
        )
        .expect("url");
        assert!(c.tls_config().is_some());
        assert_eq!(
            c.endpoint("v1/pull").as_str(),
            "https://sync.example/outpost/v1/pull"
        );
        assert_eq!(c.poke_url(), "wss://sync.example/outpost/v1/poke");
    }

    fn test_ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("ca").pem()
    }

    /// TLS settings go with https:// only, and https:// only with TLS settings (the console
    /// trusts no system root).
    #[test]
    fn schemes_must_match_the_tls_setting() {
        let tls = TlsSettings::new(test_ca_pem());
        let plain_with_tls = ServerClient::connect(
            "http://127.0.0.1:8080",
            Timeouts::default(),
            Some(&tls),
            TokenSource::new(),
        );
        match plain_with_tls {
            Err(SyncError::BadUrl { reason, .. }) => {
                assert!(reason.contains("https://"), "{reason}")
            }
            other => panic!("expected BadUrl, got {other:?}"),
        }
        match ServerClient::new("https://127.0.0.1:8080", Timeouts::default()) {
            Err(SyncError::BadUrl { reason, .. }) => {
                assert!(reason.contains("agency CA"), "{reason}");
            }
            other => panic!("expected BadUrl, got {other:?}"),
        }
        let garbage = TlsSettings::new("not a certificate");
        assert!(matches!(
            ServerClient::connect(
                "https://127.0.0.1:8080",
                Timeouts::default(),
                Some(&garbage),
                TokenSource::new(),
            ),
            Err(SyncError::Tls(_))
        ));
    }

    /// Over plain HTTP (test servers) the token stays home.
    #[test]
    fn a_token_is_never_sent_in_clear_text() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let body =
                r#"{"status":"ok","epoch":"00000000-0000-0000-0000-000000000000","server_gseq":0}"#;
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            head
        });
        let client = ServerClient::connect(
            &format!("http://{addr}"),
            Timeouts::default(),
            None,
            TokenSource::with_token("secret-token"),
        )
        .expect("client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(client.health()).expect("health");
        let head = server.join().expect("server thread");
        assert!(head.starts_with("GET /v1/health "), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "{head}"
        );
        assert!(!head.contains("secret-token"), "{head}");
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["", "127.0.0.1:80", "ftp://host", "http://"] {
            assert!(
                matches!(parse_base_url(url), Err(SyncError::BadUrl { .. })),
                "{url:?}"
            );
        }
    }
}
