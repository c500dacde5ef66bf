//! The HTTP side of the protocol of [`outpost_domain::wire`]: one method per endpoint, errors
//! mapped to [`SyncError`] (409 `epoch_changed`, 410 `snapshot_required`, 413, …).

use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use outpost_domain::wire::{
    Capabilities, ErrorBody, Health, PullResponse, PushRequest, PushResponse, Snapshot,
};

use crate::error::SyncError;

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

/// A client of one `outpost-server`.
#[derive(Debug, Clone)]
pub struct ServerClient {
    base: Url,
    http: reqwest::Client,
    timeouts: Timeouts,
}

/// Parses and normalises a server base URL (`http://host:port`, optionally with a path
/// prefix); the result ends with `/` so that endpoint paths join under it.
///
/// # Errors
/// [`SyncError::BadUrl`] when it does not parse or is not `http`/`https`.
pub fn parse_base_url(url: &str) -> Result<Url, SyncError> {
    let bad = |reason: String| SyncError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let mut parsed = Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
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
    /// A client for the server at `base_url` (see [`parse_base_url`]).
    ///
    /// # Errors
    /// [`SyncError::BadUrl`]; [`SyncError::Worker`] when the TLS stack cannot start.
    pub fn new(base_url: &str, timeouts: Timeouts) -> Result<Self, SyncError> {
        let base = parse_base_url(base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .user_agent(concat!("outpost-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Worker(format!("cannot start the HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            timeouts,
        })
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

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Response, SyncError> {
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(error_answer(resp).await)
    }
}

/// A transport failure in one line ("connection refused", "timed out").
fn transport(e: reqwest::Error) -> SyncError {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        // The root cause is the useful part ("Connection refused (os error 111)").
        let mut source: &dyn std::error::Error = &e;
        while let Some(next) = source.source() {
            source = next;
        }
        format!("connection failed: {source}")
    } else {
        e.to_string()
    };
    SyncError::Unreachable(what)
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
        (_, Some(b)) => SyncError::Server {
            status: status.as_u16(),
            code: b.code,
            message: b.message,
        },
        (_, None) => SyncError::Server {
            status: status.as_u16(),
            code: "http".into(),
            message: text.chars().take(200).collect(),
        },
    }
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
        let c =
            ServerClient::new("https://sync.example/outpost", Timeouts::default()).expect("url");
        assert_eq!(
            c.endpoint("v1/pull").as_str(),
            "https://sync.example/outpost/v1/pull"
        );
        assert_eq!(c.poke_url(), "wss://sync.example/outpost/v1/poke");
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
