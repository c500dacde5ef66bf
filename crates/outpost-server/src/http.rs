//! The HTTP face of [`SyncService`] (axum): the routes of [`outpost_domain::wire`], error
//! bodies, the push body limit, and the poke WebSocket.
//!
//! Security (issue 6): with a [`Security`] state (the binary, always) every endpoint but
//! `GET /v1/health`, `GET /v1/capabilities`, `POST /v1/enroll` and `POST /v1/login` passes
//! the auth layer ([`auth_layer`]): a device certificate of an enrolled, unrevoked device
//! (the TLS layer's [`PeerDevice`]), a bearer token of a live session issued to that device,
//! and the role's permission (`access::check_endpoint`); each op of a push is then checked by
//! [`crate::security::PushAuth`]. Every refusal is audited. Without a security state (the
//! plain-HTTP server of in-process sync tests, [`crate::Server::start_with`]) nothing is
//! checked and the security endpoints answer 404 — test-only; the binary never serves so.
//!
//! Architecture invariant: no sync decisions here; every handler decodes HTTP, runs the
//! service in `spawn_blocking` (its storage blocks) and encodes the answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use outpost_domain::access::Endpoint;
use outpost_domain::wire::{EnrollRequest, ErrorBody, LoginRequest, MAX_PUSH_BYTES, Poke};

use crate::security::guards::Guards;
use crate::security::tls::PeerDevice;
use crate::security::{AuthError, Authenticated, NewAccount, Security};
use crate::service::{SyncError, SyncService};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The sync logic.
    pub service: Arc<SyncService>,
    /// Becomes true when the server shuts down: WebSockets close.
    pub shutdown: watch::Receiver<bool>,
    /// The device ingest counters (`GET /v1/ingest/stats`).
    pub ingest: Arc<crate::ingest::IngestStats>,
    /// Accounts, sessions, devices and the audit trail: `Some` in the binary (always), `None`
    /// only on the plain-HTTP server of in-process sync tests (no authentication at all).
    pub security: Option<Arc<Security>>,
    /// Limits on unauthenticated work (sign-in rate, password verifications, bodies) and the
    /// rate-limited audit of anonymous refusals ([`crate::security::guards`]).
    pub guards: Arc<Guards>,
}

/// The router of every endpoint, under `/v1/`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/capabilities", get(capabilities))
        .route("/v1/push", post(push))
        .route("/v1/pull", get(pull))
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/poke", get(poke))
        .route("/v1/ingest/stats", get(ingest_stats))
        .route("/v1/enroll", post(enroll))
        .route("/v1/login", post(login))
        .route("/v1/logout", post(logout))
        .route("/v1/password", post(change_password))
        .route("/v1/security/revocations", get(revocations))
        .route("/v1/audit", get(audit_page))
        .route("/v1/audit/events", post(audit_events))
        .route("/v1/admin/users", get(admin_users).post(admin_add_user))
        .route("/v1/admin/users/{name}/unlock", post(admin_unlock))
        .route("/v1/admin/users/{name}/disable", post(admin_disable))
        .route("/v1/admin/devices", get(admin_devices))
        .route("/v1/admin/devices/{id}/revoke", post(admin_revoke))
        .route("/v1/admin/device-tokens/{id}", post(admin_device_token))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_layer,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// Paths served without a session (still over TLS in the binary).
fn is_public(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    matches!(
        (method, path),
        (&Method::GET, "/v1/health")
            | (&Method::GET, "/v1/capabilities")
            | (&Method::POST, "/v1/enroll")
            | (&Method::POST, "/v1/login")
    )
}

/// The endpoint of a path for `access::check_endpoint` and the audit action; `None` for
/// logout (any signed-in person) and unknown paths.
fn endpoint_of(path: &str) -> (Option<Endpoint>, &'static str) {
    match path {
        "/v1/push" => (Some(Endpoint::Push), "push"),
        "/v1/pull" => (Some(Endpoint::Pull), "pull"),
        "/v1/snapshot" => (Some(Endpoint::Snapshot), "snapshot"),
        "/v1/poke" => (Some(Endpoint::Poke), "poke"),
        "/v1/ingest/stats" => (Some(Endpoint::IngestStats), "ingest.stats"),
        "/v1/security/revocations" => (Some(Endpoint::Revocations), "revocations"),
        "/v1/audit" => (Some(Endpoint::Audit), "audit.read"),
        "/v1/logout" => (None, "logout"),
        // Any signed-in person changes their own password.
        "/v1/password" => (None, "password.change"),
        // Any signed-in role posts its own device's console events.
        "/v1/audit/events" => (None, "audit.events"),
        p if p.starts_with("/v1/admin/") || p == "/v1/admin" => (Some(Endpoint::Admin), "admin"),
        _ => (None, "request"),
    }
}

/// The route of a request for the refusal audit's key: the method and the path with every
/// segment that is not one of the API's own words replaced by `*` (a name or id); `""` for
/// an unknown path, so random paths cannot each earn a record.
fn route_of(method: &axum::http::Method, path: &str, action: &str) -> String {
    const WORDS: [&str; 19] = [
        "v1",
        "admin",
        "users",
        "unlock",
        "disable",
        "devices",
        "revoke",
        "device-tokens",
        "push",
        "pull",
        "snapshot",
        "poke",
        "ingest",
        "stats",
        "security",
        "revocations",
        "audit",
        "events",
        "logout",
    ];
    if action == "request" {
        return String::new();
    }
    let shape: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if seg.is_empty() || WORDS.contains(&seg) {
                seg
            } else {
                "*"
            }
        })
        .collect();
    format!("{method} {}", shape.join("/"))
}

/// The auth layer: see the module documentation. Puts [`Authenticated`] into the request's
/// extensions; answers 401/403 with an [`ErrorBody`] (audited) otherwise.
async fn auth_layer(
    State(s): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(security) = s.security.clone() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    if is_public(req.method(), &path) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<PeerDevice>().cloned();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    let (endpoint, action) = endpoint_of(&path);
    let target = format!("{} {path}", req.method());
    if peer.is_none()
        && let Some(refusals) = &s.guards.refusals
    {
        // No device certificate: refused without a look at the accounts, and audited at most
        // once per window for the same address, action and reason, so anonymous clients
        // cannot flood the trail (review S8).
        let ip = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let e = AuthError::CertificateRequired(
            "a device certificate is required (mutual TLS); enroll this console first".into(),
        );
        let token = if bearer.is_some() {
            "a session token without its device certificate"
        } else {
            "no credentials"
        };
        let route = route_of(req.method(), &path, action);
        refusals.refused_kind(
            ip,
            &route,
            crate::security::AuditEvent::new(action, crate::security::AuditOutcome::Refused)
                .target(target)
                .detail(format!("{}: {e} ({token})", e.code())),
        );
        return AuthApiError(e).into_response();
    }
    let r = tokio::task::spawn_blocking(move || {
        security.authorize(peer.as_ref(), bearer.as_deref(), endpoint, action, &target)
    })
    .await;
    match r {
        Ok(Ok(session)) => {
            req.extensions_mut().insert(Authenticated(session));
            next.run(req).await
        }
        Ok(Err(e)) => AuthApiError(e).into_response(),
        Err(e) => AuthApiError(AuthError::Storage(format!("request aborted: {e}"))).into_response(),
    }
}

/// An [`AuthError`] as an HTTP answer with an [`ErrorBody`].
struct AuthApiError(AuthError);

impl IntoResponse for AuthApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "security request failed");
        }
        let mut res = (status, Json(self.0.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"outpost\""),
            );
        }
        res
    }
}

/// The security state, or 404 on the plain test server.
fn security_of(s: &AppState) -> Result<Arc<Security>, AuthApiError> {
    s.security.clone().ok_or_else(|| {
        AuthApiError(AuthError::NotFound(
            "security is not enabled on this server (plain in-process test server)".into(),
        ))
    })
}

/// Runs blocking security work off the async workers.
async fn sec_blocking<T, F>(security: Arc<Security>, f: F) -> Result<T, AuthApiError>
where
    T: Send + 'static,
    F: FnOnce(&Security) -> Result<T, AuthError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&security))
        .await
        .map_err(|e| AuthApiError(AuthError::Storage(format!("request aborted: {e}"))))?
        .map_err(AuthApiError)
}

/// Runs security work that verifies a password on the guards' password threads
/// ([`crate::security::guards::PasswordPool`]).
async fn sec_password<T, F>(s: &AppState, security: Arc<Security>, f: F) -> Result<T, AuthApiError>
where
    T: Send + 'static,
    F: FnOnce(&Security) -> Result<T, AuthError> + Send + 'static,
{
    s.guards
        .password_pool
        .run(move || f(&security))
        .await
        .ok_or_else(|| AuthApiError(AuthError::Storage("request aborted".into())))?
        .map_err(AuthApiError)
}

/// Decodes a small JSON body; the error names the place.
async fn json_body<T: for<'de> Deserialize<'de>>(
    body: Body,
    what: &str,
) -> Result<T, AuthApiError> {
    let bytes = axum::body::to_bytes(body, SECURITY_BODY_LIMIT)
        .await
        .map_err(|e| {
            AuthApiError(AuthError::BadRequest(format!(
                "{what}: the body is unreadable or larger than {SECURITY_BODY_LIMIT} bytes: {e}"
            )))
        })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        AuthApiError(AuthError::BadRequest(format!(
            "{what}: {}: {}",
            e.path(),
            e.inner()
        )))
    })
}

/// The largest body of an enrollment, login or admin request, bytes.
const SECURITY_BODY_LIMIT: usize = 64 * 1024;

/// A refusal of the sign-in guards ([`crate::security::guards`]): status, code, message and
/// `Retry-After` seconds.
struct GuardRefusal(StatusCode, &'static str, String, Option<u64>);

impl IntoResponse for GuardRefusal {
    fn into_response(self) -> Response {
        let GuardRefusal(status, code, message, retry) = self;
        let mut res = (
            status,
            Json(ErrorBody {
                code: code.into(),
                message,
                epoch: None,
            }),
        )
            .into_response();
        if let Some(secs) = retry
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not read: the connection cannot be reused.
            res.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        res
    }
}

/// The guards of `POST /v1/enroll` and `POST /v1/login` (review S3), in order: the
/// client address's sign-in rate (429 `too_many_requests` + `Retry-After`), the body's size
/// and arrival time (413 `too_large`, 408 `timeout`), then a password-verification slot
/// (503 `busy` + `Retry-After` when none frees within the wait). Refusals are audited
/// (rate-limited per address). Returns the body and the slot, held while the password is
/// checked.
async fn sign_in_guard<'a>(
    s: &'a AppState,
    action: &'static str,
    req: axum::extract::Request,
) -> Result<(Bytes, tokio::sync::SemaphorePermit<'a>), Response> {
    let g = &s.guards;
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let refuse = |r: GuardRefusal| {
        if let Some(audit) = &g.refusals {
            audit.refused(
                ip,
                crate::security::AuditEvent::new(action, crate::security::AuditOutcome::Refused)
                    .target(ip.map_or_else(|| "-".into(), |i| i.to_string()))
                    .detail(format!("{}: {}", r.1, r.2)),
            );
        }
        r.into_response()
    };
    if let Some(ip) = ip
        && let Err(wait) = g.sign_in.check(ip)
    {
        return Err(refuse(GuardRefusal(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "{action}: more than {} sign-in requests a minute from this address; try again \
                 in {wait} s",
                g.config.sign_in_per_minute
            ),
            Some(wait),
        )));
    }
    let limit = g.config.body_limit;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        GuardRefusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{action}: the body is larger than {limit} bytes"),
            None,
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(refuse(too_large()));
    }
    let read = axum::body::to_bytes(req.into_body(), limit);
    let bytes = match tokio::time::timeout(g.config.body_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let over = e.to_string().contains("length limit")
                || std::error::Error::source(&e)
                    .is_some_and(|c| c.to_string().contains("length limit"));
            return Err(if over {
                refuse(too_large())
            } else {
                GuardRefusal(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("{action}: the body is unreadable: {e}"),
                    None,
                )
                .into_response()
            });
        }
        Err(_) => {
            return Err(refuse(GuardRefusal(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "{action}: the body did not arrive within {} s",
                    g.config.body_timeout.as_secs()
                ),
                None,
            )));
        }
    };
    match tokio::time::timeout(g.config.password_wait, g.passwords.acquire()).await {
        Ok(Ok(permit)) => Ok((bytes, permit)),
        _ => Err(refuse(GuardRefusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{action}: the server is busy checking other sign-ins; try again shortly"),
            Some(g.config.password_wait.as_secs().max(1)),
        ))),
    }
}

/// Decodes a JSON body already read; the error names the place.
fn decode_body<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, AuthApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        AuthApiError(AuthError::BadRequest(format!(
            "{what}: {}: {}",
            e.path(),
            e.inner()
        )))
    })
}

/// `POST /v1/enroll` (no session; TLS, no client certificate needed).
async fn enroll(
    State(s): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let client = client_addr(&req);
    let (bytes, _slot) = match sign_in_guard(&s, "enroll", req).await {
        Ok(g) => g,
        Err(refused) => return Ok(refused),
    };
    let req: EnrollRequest = decode_body(&bytes, "enroll")?;
    let service = s.service.clone();
    let resp = sec_password(&s, security, move |sec| {
        sec.enroll_from(&req, client, &|origin| {
            service.origin_has_ops(origin).map_err(|e| e.to_string())
        })
    })
    .await?;
    Ok(Json(resp).into_response())
}

/// `POST /v1/login` (the device certificate, no session yet).
async fn login(
    State(s): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let peer = req.extensions().get::<PeerDevice>().cloned();
    let client = client_addr(&req);
    let (bytes, _slot) = match sign_in_guard(&s, "login", req).await {
        Ok(g) => g,
        Err(refused) => return Ok(refused),
    };
    let body: LoginRequest = decode_body(&bytes, "login")?;
    let resp = sec_password(&s, security, move |sec| {
        sec.login_from(peer.as_ref(), client, &body)
    })
    .await?;
    Ok(Json(resp).into_response())
}

/// The client's address (IP:port) the TLS serving layer put in the request
/// (`ConnectInfo`); `None` on the plain test server.
fn client_addr(req: &axum::extract::Request) -> Option<std::net::SocketAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

/// The session the auth layer found (always there when security is on).
fn session_of(
    auth: Option<axum::Extension<Authenticated>>,
) -> Result<crate::security::SessionInfo, AuthApiError> {
    auth.map(|axum::Extension(Authenticated(s))| s)
        .ok_or_else(|| AuthApiError(AuthError::Unauthenticated("no session".into())))
}

/// `POST /v1/logout`.
async fn logout(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    sec_blocking(security, move |sec| sec.logout(&session)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/password`: the signed-in person changes their own password (204).
async fn change_password(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    req: axum::extract::Request,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|e| AuthApiError(AuthError::BadRequest(format!("password: body: {e}"))))?;
    let body: outpost_domain::wire::PasswordChangeRequest = decode_body(&bytes, "password")?;
    sec_password(&s, security, move |sec| {
        sec.change_password(&session, &body)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/security/revocations`.
async fn revocations(State(s): State<AppState>) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let r = sec_blocking(security, |sec| sec.revocations()).await?;
    Ok(Json(r).into_response())
}

/// `GET /v1/audit` (auditor; checked by the auth layer): H3's handler over the trail.
async fn audit_page(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    q: Result<Query<crate::security::audit::AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let Some(log) = security.audit_log().cloned() else {
        return Err(AuthApiError(AuthError::NotFound(
            "this server keeps no audit trail file".into(),
        )));
    };
    let target = match &q {
        Ok(Query(q)) => format!(
            "after={} limit={}",
            q.after.unwrap_or(0),
            q.limit.map_or_else(|| "-".to_string(), |l| l.to_string())
        ),
        Err(_) => String::new(),
    };
    let res = crate::security::audit::get_audit(State(log), q).await;
    // Reading the trail is itself recorded (who looked, which page, the answer) — except a
    // page holding nothing but this reader's own earlier `audit.read` records (or nothing):
    // recording that read would add a record to read next, and a reader paging to the end
    // would never get there.
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| AuthApiError(AuthError::Storage(format!("audit page: {e}"))))?;
    let res = Response::from_parts(parts, Body::from(bytes.clone()));
    if let Some(axum::Extension(Authenticated(session))) = auth {
        let ok = res.status().is_success();
        let news = !ok
            || serde_json::from_slice::<outpost_domain::wire::AuditPage>(&bytes).map_or(
                true,
                |p| {
                    p.records
                        .iter()
                        .any(|r| !(r.action == "audit.read" && r.user == session.user))
                },
            );
        if !news {
            return Ok(res);
        }
        let outcome = if ok {
            crate::security::AuditOutcome::Ok
        } else {
            crate::security::AuditOutcome::Failed
        };
        let event = crate::security::AuditEvent::new("audit.read", outcome)
            .user(session.user.as_str())
            .device(session.device_id.as_str())
            .target(target)
            .detail(format!("HTTP {}", res.status().as_u16()));
        let _ = tokio::task::spawn_blocking(move || security.audit(event)).await;
    }
    Ok(res)
}

/// `POST /v1/audit/events` (any signed-in role): the console's audit outbox
/// ([`crate::security::console_audit`]); at most `MAX_AUDIT_EVENTS_BYTES`, a decode error
/// names the field (`events[3].event_id: …`).
async fn audit_events(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    body: Body,
) -> Result<Response, AuthApiError> {
    use outpost_domain::wire::{AuditEventsRequest, MAX_AUDIT_EVENTS_BYTES};
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let bytes = axum::body::to_bytes(body, MAX_AUDIT_EVENTS_BYTES)
        .await
        .map_err(|e| {
            AuthApiError(AuthError::BadRequest(format!(
                "audit events: the body is unreadable or larger than {MAX_AUDIT_EVENTS_BYTES} \
                 bytes (send smaller batches): {e}"
            )))
        })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let req: AuditEventsRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        AuthApiError(AuthError::BadRequest(format!(
            "audit events: {}: {}",
            e.path(),
            e.inner()
        )))
    })?;
    // A daily budget per device (fresh review S14): the trail keeps every record a year.
    let now_s = chrono::Utc::now().timestamp();
    let n = req.events.len() as u64;
    if let Err(over) =
        s.guards
            .console_events
            .take(&session.device_id, n, bytes.len() as u64, now_s)
    {
        let message = format!(
            "audit events: device {} sent its {} events / {} bytes for today (UTC); send the \
             rest after {} s",
            session.device_id,
            s.guards.config.console_events_per_day,
            s.guards.config.console_event_bytes_per_day,
            over.retry_after_s
        );
        if over.first_today {
            // Once per device and day, not per refused batch.
            security.audit(
                crate::security::AuditEvent::new(
                    "audit.events",
                    crate::security::AuditOutcome::Refused,
                )
                .user(session.user.as_str())
                .device(session.device_id.as_str())
                .detail(format!("too_many_requests: {message}")),
            );
        }
        return Ok(GuardRefusal(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            message,
            Some(over.retry_after_s),
        )
        .into_response());
    }
    let resp = sec_blocking(security, move |sec| sec.console_events(&session, &req)).await?;
    Ok(Json(resp).into_response())
}

/// `GET /v1/admin/users`.
async fn admin_users(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let r = sec_blocking(security, move |sec| {
        sec.admin(&session, "user.list", "", |a| a.list_users())
    })
    .await?;
    Ok(Json(r).into_response())
}

/// `POST /v1/admin/users` with a [`NewAccount`]: answers a
/// [`crate::security::CreatedAccount`] (the TOTP secret, shown once). Commander,
/// dispatcher, field unit and viewer accounts only; administrator and auditor → 403
/// `forbidden` ([`Security::admin_add_user`]).
async fn admin_add_user(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    body: Body,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let new: NewAccount = json_body(body, "user").await?;
    let r = sec_blocking(security, move |sec| sec.admin_add_user(&session, &new)).await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

/// `POST /v1/admin/users/{name}/unlock`.
async fn admin_unlock(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    Path(name): Path<String>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    sec_blocking(security, move |sec| {
        sec.admin(&session, "user.unlock", &name, |a| a.unlock(&name))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/admin/users/{name}/disable`.
async fn admin_disable(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    Path(name): Path<String>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    sec_blocking(security, move |sec| {
        sec.admin(&session, "user.disable", &name, |a| a.disable(&name))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/admin/devices`.
async fn admin_devices(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let r = sec_blocking(security, move |sec| {
        sec.admin(&session, "device.list", "", |a| a.list_devices())
    })
    .await?;
    Ok(Json(r).into_response())
}

/// The body of `POST /v1/admin/devices/{id}/revoke`.
#[derive(Debug, Deserialize)]
struct RevokeBody {
    reason: String,
}

/// `POST /v1/admin/devices/{id}/revoke` with `{"reason": "..."}`.
async fn admin_revoke(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let b: RevokeBody = json_body(body, "revoke").await?;
    sec_blocking(security, move |sec| {
        sec.admin(&session, "device.revoke", &id, |a| {
            a.revoke_device(&id, &b.reason)
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/admin/device-tokens/{id}`: a new token for OsmAnd device `id` (`{"token": …}`,
/// shown once).
async fn admin_device_token(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    Path(id): Path<String>,
) -> Result<Response, AuthApiError> {
    let security = security_of(&s)?;
    let session = session_of(auth)?;
    let token = sec_blocking(security, move |sec| {
        sec.admin(&session, "device.token", &id, |a| a.issue_device_token(&id))
    })
    .await?;
    Ok(Json(serde_json::json!({ "token": token })).into_response())
}

/// One debug line per request (method, path, status, milliseconds); `RUST_LOG=debug`.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    tracing::debug!(
        %method,
        path,
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    res
}

/// A [`SyncError`] as an HTTP answer with an [`outpost_domain::wire::ErrorBody`].
struct ApiError(SyncError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self.0, "request failed");
        }
        (status, Json(self.0.body())).into_response()
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        ApiError(e)
    }
}

/// Runs blocking service work off the async workers.
async fn blocking<T, F>(service: &Arc<SyncService>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&SyncService) -> Result<T, SyncError> + Send + 'static,
{
    let service = service.clone();
    tokio::task::spawn_blocking(move || f(&service))
        .await
        .map_err(|e| ApiError(SyncError::Unavailable(format!("request aborted: {e}"))))?
        .map_err(ApiError)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(outpost_domain::wire::ErrorBody {
            code: "not_found".into(),
            message: "no such endpoint; see GET /v1/capabilities".into(),
            epoch: None,
        }),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(outpost_domain::wire::ErrorBody {
            code: "bad_request".into(),
            message: "wrong method: push, enroll, login, logout and admin changes are POST, \
                      reads GET"
                .into(),
            epoch: None,
        }),
    )
        .into_response()
}

async fn health(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mut h = blocking(&s.service, |svc| svc.health()).await?;
    h.audit_ok = s
        .security
        .as_ref()
        .and_then(|sec| sec.audit_log())
        .is_none_or(|log| log.is_ok());
    Ok(Json(h).into_response())
}

/// `GET /v1/ingest/stats`: the device ingest counters ([`crate::ingest::IngestStatsView`]).
async fn ingest_stats(State(s): State<AppState>) -> Response {
    Json(s.ingest.view()).into_response()
}

async fn capabilities(State(s): State<AppState>) -> Response {
    Json(s.service.capabilities()).into_response()
}

/// Reads the push body, refusing more than [`MAX_PUSH_BYTES`]. A refused body is still read
/// (and dropped, up to [`DRAIN_LIMIT`] bytes) so that the console, which is still writing it,
/// gets the 413 instead of a broken connection.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, SyncError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n.min(MAX_PUSH_BYTES as u64) as usize));
    let mut total: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            SyncError::BadRequest(format!("body: truncated or unreadable request: {e}"))
        })?;
        total += chunk.len() as u64;
        if total > DRAIN_LIMIT {
            break;
        }
        if total <= MAX_PUSH_BYTES as u64 {
            buf.extend_from_slice(&chunk);
        }
    }
    if total > MAX_PUSH_BYTES as u64 {
        return Err(SyncError::TooLarge(format!(
            "the push has {} bytes or more; at most {MAX_PUSH_BYTES} are accepted",
            declared.unwrap_or(total).max(total)
        )));
    }
    Ok(Bytes::from(buf))
}

/// How much of a too large push body is read and dropped before answering 413, bytes.
const DRAIN_LIMIT: u64 = 16 * MAX_PUSH_BYTES as u64;

async fn push(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if s.service.is_closing() {
        return ApiError(SyncError::Unavailable(
            "the server is shutting down; retry".into(),
        ))
        .into_response();
    }
    // Only JSON: a form or text/plain POST (which a browser sends cross-origin without
    // asking) is refused before anything is read.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(ErrorBody {
                code: "unsupported_media_type".into(),
                message: "push: the body must be sent as Content-Type: application/json".into(),
                epoch: None,
            }),
        )
            .into_response();
    }
    // A console that drops off the network mid-push must not hold the request (and a
    // graceful shutdown) open for ever.
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, read_body(&headers, body)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return ApiError(e).into_response(),
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                Json(ErrorBody {
                    code: "timeout".into(),
                    message: format!(
                        "push: the body did not arrive within {} s",
                        BODY_READ_TIMEOUT.as_secs()
                    ),
                    epoch: None,
                }),
            )
                .into_response();
        }
    };
    let (security, session) = match (s.security.clone(), auth) {
        (Some(security), Some(axum::Extension(Authenticated(session)))) => (security, session),
        (Some(_), None) => {
            return AuthApiError(AuthError::Unauthenticated("no session".into())).into_response();
        }
        (None, _) => {
            // The plain test server: no person, nothing to check.
            return match blocking(&s.service, move |svc| svc.push(&bytes)).await {
                Ok(r) => Json(r).into_response(),
                Err(e) => e.into_response(),
            };
        }
    };
    match blocking(&s.service, move |svc| {
        let req = SyncService::decode_push(&bytes)?;
        let guard = security.push_auth(&session);
        let resp = svc.push_request_guarded(&req, Some(&guard))?;
        guard.audit(&resp);
        Ok(resp)
    })
    .await
    {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The query of `GET /v1/pull`.
#[derive(Debug, Deserialize)]
struct PullQuery {
    after: Option<u64>,
    limit: Option<usize>,
    /// The epoch the console synced with. When it is not the current epoch the console is
    /// told so (409) before anything else, so a console of another server (or of an older
    /// epoch) never makes this server start a new epoch by pulling beyond its newest gseq.
    epoch: Option<uuid::Uuid>,
}

async fn pull(
    State(s): State<AppState>,
    auth: Option<axum::Extension<Authenticated>>,
    q: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError(SyncError::BadRequest(format!(
            "query: {} (expected after=GSEQ&limit=N[&epoch=UUID])",
            e.body_text()
        )))
    })?;
    let after = q.after.unwrap_or(0);
    if after > i64::MAX as u64 {
        return Err(ApiError(SyncError::BadRequest(format!(
            "query: after={after} is not a gseq (at most {})",
            i64::MAX
        ))));
    }
    let epoch = q.epoch;
    // Whose cursor it is: a signed-in person may start a new epoch only in a role that
    // writes, and each start is audited (security review S5).
    let who = s
        .security
        .clone()
        .zip(auth.map(|axum::Extension(Authenticated(a))| a));
    let page = blocking(&s.service, move |svc| {
        match epoch {
            Some(known) => {
                let guard = who.as_ref().map(|(sec, session)| sec.epoch_auth(session));
                let guard = guard.as_ref().map(|g| g as &dyn crate::service::EpochGuard);
                if let Some(current) = svc.check_console_epoch_guarded(known, after, guard)? {
                    return Err(SyncError::EpochChanged { epoch: current });
                }
            }
            // Only a console that names its epoch can prove a restore: without one, a pull
            // beyond the newest gseq is refused, never a reason to start a new epoch.
            None => {
                let head = svc.head()?;
                if after > head.gseq {
                    return Err(SyncError::BadRequest(format!(
                        "after={after} is beyond the newest gseq {}; give the console's epoch \
                         (&epoch=UUID) or pull from 0",
                        head.gseq
                    )));
                }
            }
        }
        svc.pull_json(after, q.limit)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], page).into_response())
}

async fn snapshot(State(s): State<AppState>) -> Result<Response, ApiError> {
    let snap = blocking(&s.service, |svc| svc.snapshot_json()).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], snap).into_response())
}

/// The query of `GET /v1/poke`.
#[derive(Debug, Deserialize)]
struct PokeQuery {
    /// `1`: the live feed (binary frames with the new ops, see [`crate::service::FeedFrame`]).
    feed: Option<u8>,
}

async fn poke(
    State(s): State<AppState>,
    peer: Option<axum::Extension<PeerDevice>>,
    auth: Option<axum::Extension<Authenticated>>,
    headers: HeaderMap,
    q: Result<Query<PokeQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Response {
    // Consoles send nothing on this socket: a few KiB is plenty, and no client can make
    // the server buffer megabytes per socket.
    let ws = ws
        .max_message_size(POKE_MAX_MESSAGE)
        .max_frame_size(POKE_MAX_MESSAGE);
    let rx = s.service.subscribe();
    // The feed carries the ops a pull would return, so it is given only to a session whose
    // role may pull (the auth layer already checked `Poke`, the same roles; checked again
    // here against `Pull` so the two can never drift apart). No security state: the plain
    // test server, which checks nobody.
    let wants_feed = q.is_ok_and(|Query(q)| q.feed == Some(1));
    let may_read = match (&s.security, &auth) {
        (None, _) => true,
        (Some(_), Some(axum::Extension(Authenticated(session)))) => {
            outpost_domain::access::check_endpoint(session.role, Endpoint::Pull).is_ok()
        }
        (Some(_), None) => false,
    };
    let feed = (wants_feed && may_read).then(|| s.service.subscribe_feed());
    let service = s.service.clone();
    let shutdown = s.shutdown.clone();
    // The socket lives as long as its session (review S10): checked again every
    // `session_recheck` (logout, expiry, a disabled account, a revoked device close it).
    let session = s.security.clone().map(|security| PokeSession {
        security,
        peer: peer.map(|axum::Extension(p)| p),
        bearer: bearer_of(&headers),
        every: s.guards.config.session_recheck,
    });
    ws.on_upgrade(move |socket| poke_socket(socket, service, rx, feed, shutdown, session))
}

/// The bearer token of a request's `Authorization` header.
fn bearer_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned)
}

/// What a poke socket checks again while open: its device and session.
struct PokeSession {
    security: Arc<Security>,
    peer: Option<PeerDevice>,
    bearer: Option<String>,
    every: Duration,
}

impl PokeSession {
    /// `Err(reason)` once the session ended, expired, its account was disabled or its device
    /// revoked.
    async fn still_valid(&self) -> Result<(), String> {
        let (sec, peer, bearer) = (
            self.security.clone(),
            self.peer.clone(),
            self.bearer.clone(),
        );
        match tokio::task::spawn_blocking(move || {
            sec.authenticate(peer.as_ref(), bearer.as_deref())
        })
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            // The check could not run (shutting down): keep the socket until the next one.
            Err(_) => Ok(()),
        }
    }
}

/// How long a push body may take to arrive.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest message or frame accepted on the poke socket, bytes.
const POKE_MAX_MESSAGE: usize = 4 * 1024;

/// The shortest time between two pokes on one socket: pokes arriving faster are merged into
/// the newest (a poke only says "pull"; 200 consoles must not pull once per commit each).
const POKE_INTERVAL: Duration = Duration::from_millis(250);

/// Most feed frames written to one socket before it is flushed.
const FEED_BURST: usize = 64;

/// Sends the current head at once, then the newest head at most every [`POKE_INTERVAL`]
/// while commits happen, until the console goes away or the server shuts down.
///
/// With `feed` (the live feed, `?feed=1`): every committed push is also sent at once as a
/// binary frame (the same bytes to every socket, [`crate::service::FeedFrame`]); a text
/// poke then goes out only when it says more than the frames did (an epoch change). A socket
/// that falls [`crate::service::FEED_CAPACITY`] frames behind (a slow console, a full TCP
/// buffer) gets a text poke of the newest head instead of the frames it missed: it pulls
/// them. Only this socket's task ever waits for the socket; the server and the other sockets
/// never do.
async fn poke_socket(
    mut socket: WebSocket,
    service: Arc<SyncService>,
    mut rx: broadcast::Receiver<Poke>,
    mut feed: Option<broadcast::Receiver<crate::service::FeedFrame>>,
    mut shutdown: watch::Receiver<bool>,
    session: Option<PokeSession>,
) {
    use futures_util::SinkExt;
    let every = session
        .as_ref()
        .map_or(Duration::from_secs(3600), |s| s.every);
    let mut recheck = tokio::time::interval_at(Instant::now() + every, every);
    let first = {
        let svc = service.clone();
        tokio::task::spawn_blocking(move || svc.head()).await
    };
    if let Ok(Ok(head)) = first
        && send_poke(
            &mut socket,
            Poke {
                gseq: head.gseq,
                epoch: head.epoch,
            },
        )
        .await
        .is_err()
    {
        return;
    }
    let mut last_sent = Instant::now();
    let mut pending: Option<Poke> = None;
    // What the feed frames already told this socket (epoch, newest gseq).
    let mut fed: Option<(uuid::Uuid, u64)> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let due = last_sent + POKE_INTERVAL;
        tokio::select! {
            // In this order: the session check and the console's messages are never
            // starved by a busy feed; frames go before pokes (a push's frame is sent before
            // its poke, so a poke is dropped when its frame already went out).
            biased;
            _ = shutdown.changed() => break,
            _ = recheck.tick(), if session.is_some() => {
                if let Some(s) = &session
                    && let Err(why) = s.still_valid().await
                {
                    tracing::debug!(%why, "poke socket closed: its session ended");
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                // Consoles send nothing but pings (answered by the library) and close.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            frame = async {
                match feed.as_mut() {
                    Some(f) => f.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match frame {
                    Ok(first) => {
                        // Write what is waiting (up to a burst), then flush once.
                        let mut frame = Some(first);
                        let mut n = 0;
                        while let Some(f) = frame.take() {
                            fed = Some((f.epoch, f.gseq));
                            if socket.feed(Message::Binary(f.bytes)).await.is_err() {
                                return;
                            }
                            n += 1;
                            if n < FEED_BURST
                                && let Some(rx) = feed.as_mut()
                                && let Ok(next) = rx.try_recv()
                            {
                                frame = Some(next);
                            }
                        }
                        if socket.flush().await.is_err() {
                            return;
                        }
                        if let (Some(p), Some((e, g))) = (pending, fed)
                            && e == p.epoch
                            && g >= p.gseq
                        {
                            pending = None;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // Too slow for the feed: a poke of the newest head; the console
                        // pulls what it missed.
                        tracing::debug!(missed, "feed socket lagged; poking instead");
                        let svc = service.clone();
                        if let Ok(Ok(head)) = tokio::task::spawn_blocking(move || svc.head()).await {
                            fed = None;
                            let poke = Poke { gseq: head.gseq, epoch: head.epoch };
                            if send_poke(&mut socket, poke).await.is_err() {
                                return;
                            }
                            last_sent = Instant::now();
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
            _ = tokio::time::sleep_until(due), if pending.is_some() => {
                if let Some(p) = pending.take() {
                    if send_poke(&mut socket, p).await.is_err() {
                        return;
                    }
                    last_sent = Instant::now();
                }
            }
            msg = rx.recv() => match msg {
                // A poke the feed already delivered says nothing new.
                Ok(p) if fed.is_some_and(|(e, g)| e == p.epoch && g >= p.gseq) => {}
                Ok(p) => pending = Some(p),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let svc = service.clone();
                    if let Ok(Ok(head)) = tokio::task::spawn_blocking(move || svc.head()).await {
                        pending = Some(Poke { gseq: head.gseq, epoch: head.epoch });
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn send_poke(socket: &mut WebSocket, poke: Poke) -> Result<(), axum::Error> {
    let text = serde_json::to_string(&poke).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}
