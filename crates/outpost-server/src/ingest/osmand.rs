//! The OsmAnd listener (`--osmand-listen`, Traccar's port 5055 by convention): HTTP GET or
//! POST on any path, as OsmAnd and Traccar Client send it.
//!
//! - a query string (`/?id=…&lat=…&lon=…&timestamp=…`) → `outpost_devices::osmand::decode_query`;
//! - a POST with `Content-Type: application/json` → `decode_json`;
//! - a POST with a form body and no query → `decode_query` of the body.
//!
//! Answers (every refusal is counted by reason and logged):
//! - 200 with an empty body when the report is received: decoded, checked against the server
//!   clock and queued (counted `received`). Whether it is written is decided after the answer
//!   by the gateway (the unbound-device cap, the per-device rate, repeats of a fix already
//!   written), which counts its drops (`unbound_limit`, `throttled`, `duplicate`) and what it
//!   writes (`accepted`); the phone could do nothing useful with a refusal of those but
//!   resend;
//! - **200** with a one-line text `refused: …` when the request is an OsmAnd report (a device
//!   id and a position) refused for its *values*: a fix check (latitude/longitude out of
//!   range, NaN, a negative speed, a fix time before 2000 or more than
//!   `outpost_domain::device::MAX_FIX_AHEAD_S` ahead of the server clock, …) or a parameter
//!   that does not parse (`timestamp=garbage`, `valid=false`). Rule source: Traccar Client
//!   (Android `TrackingController`/`RequestManager`, and the transistorsoft plugin of the
//!   newer client) keeps each position in its local buffer and re-sends the *oldest* one
//!   every 30 s until the server answers 2xx; OsmAnd's live tracking also retries until a
//!   2xx. A non-2xx answer to a report that will never be accepted would block every newer
//!   position of that phone behind it forever. Resending cannot help such a report, so it
//!   is answered 200 and dropped;
//! - 400 for a request that is not an OsmAnd report at all (no device id, no position, a
//!   bad device id, unreadable JSON or form body), 405 for another method; retrying those
//!   unchanged is the client's bug, not a buffered position;
//! - 413 for a body over [`MAX_BODY_BYTES`], 408 when the body does not arrive within
//!   [`BODY_TIMEOUT`] (the connection is closed after both);
//! - 401 when the listener requires device tokens (`serve --osmand-require-token`) and the
//!   report carries none or a wrong one (counted `token`, audited as `osmand.token` at most
//!   once per 10 s for the same address and reason). The token is checked for the device id
//!   the report is filed under, read by the same parse as the report (`token` beside the
//!   id; for a JSON body the `token` member, else the URL's `token`): a configuration error the phone's
//!   owner must fix, so the phone is told plainly rather than answered 200;
//! - 503 when the gateway is overloaded or the server is shutting down: the phone keeps the
//!   position and sends it again later, which is what is wanted.
//!
//! With `serve --osmand-tls` the listener speaks HTTPS with the server certificate (a failed
//! handshake is counted `tls_handshake`); without it, plain HTTP, and the server logs a
//! warning at start.
//!
//! Connections: at most the listener's caps (total and per address), a request's headers
//! must arrive whole within [`HEADER_TIMEOUT`] of the connection's first byte or of the
//! previous answer (slowloris), and a connection without a byte from the client for
//! [`IDLE_TIMEOUT`] is closed. A keep-alive connection that the client leaves idle after its
//! answer is closed by the header deadline and counted `idle_closed`, not as a refusal.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

use outpost_devices::osmand::{self, MAX_BODY_BYTES, OsmandError};

use super::limits::{CappedListener, IdleRule, Limits};
use super::{DeviceTokenCheck, Ingest, Listener, SUBMIT_WAIT, SubmitError, fix_reason};
use crate::security::guards::RefusalAudit;
use crate::security::{AuditEvent, AuditOutcome};

/// A connection with no byte from the client for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's headers may take to arrive whole, from the connection's first byte
/// or the end of the previous answer (hyper's `header_read_timeout`; a phone sends its few
/// hundred bytes of headers at once). It also ends idle keep-alive connections.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The refusal key of a decoder error.
pub fn reason(e: &OsmandError) -> &'static str {
    match e {
        OsmandError::MissingDeviceId => "missing_device_id",
        OsmandError::MissingPosition => "missing_position",
        OsmandError::BadParameter { .. } => "bad_parameter",
        OsmandError::BadJson(_) => "bad_json",
        OsmandError::Fix(f) => fix_reason(f),
    }
}

/// What the report handler shares.
#[derive(Debug)]
struct OsmandState {
    ingest: Ingest,
    /// `Some`: every report must carry its device's token.
    tokens: Option<Arc<dyn DeviceTokenCheck>>,
    /// Where token refusals are audited (rate-limited).
    audit: Option<Arc<RefusalAudit>>,
}

/// The router: every path and method goes to the report handler; no device token needed.
pub fn router(ingest: Ingest) -> Router {
    router_with_tokens(ingest, None, None)
}

/// The router, requiring each report's device token when `tokens` is given (see
/// [`crate::ingest::IngestConfig::osmand_require_token`]); token refusals are audited into
/// `audit` (at most once per window for the same address and reason).
pub fn router_with_tokens(
    ingest: Ingest,
    tokens: Option<Arc<dyn DeviceTokenCheck>>,
    audit: Option<Arc<RefusalAudit>>,
) -> Router {
    Router::new()
        .fallback(report)
        .with_state(Arc::new(OsmandState {
            ingest,
            tokens,
            audit,
        }))
}

/// The client address of a request, put in its extensions by [`serve`].
#[derive(Debug, Clone, Copy)]
struct ClientAddr(std::net::IpAddr);

/// Serves the OsmAnd listener on `listener` (HTTP/1.1 by hyper with a timer, so the header
/// deadline `header_timeout` holds; the caps and idle time of `limits`) until `stop` becomes
/// true. A connection in the middle of a request finishes it; idle ones close.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Ingest,
    limits: Limits,
    header_timeout: Duration,
    security: OsmandSecurity,
    mut stop: watch::Receiver<bool>,
) {
    let stats = ingest.stats().clone();
    let mut capped = CappedListener::new(
        listener,
        limits,
        IdleRule::KeepAlive,
        stats.clone(),
        Listener::Osmand,
    );
    if let Ok(a) = capped.local_addr() {
        tracing::debug!(addr = %a, "OsmAnd listener accepting");
    }
    let app = router_with_tokens(ingest, security.tokens, security.audit);
    let tls = security.tls.map(tokio_rustls::TlsAcceptor::from);
    let conn_stop = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            (conn, addr) = capped.accept_capped() => {
                let flags = conn.flags();
                let service = TowerToHyperService::new(
                    app.clone().layer(axum::Extension(ClientAddr(addr.ip()))),
                );
                let stats = stats.clone();
                let mut stop = conn_stop.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .keep_alive(true);
                    let result = match tls {
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(conn), service);
                            tokio::pin!(conn);
                            tokio::select! {
                                r = conn.as_mut() => r,
                                _ = stopped(&mut stop) => {
                                    conn.as_mut().graceful_shutdown();
                                    conn.await
                                }
                            }
                        }
                        Some(acceptor) => {
                            let conn = match crate::security::tls::accept(&acceptor, conn).await {
                                Ok(c) => c,
                                Err(e) => {
                                    stats.osmand.refuse("tls_handshake");
                                    tracing::debug!(%addr, error = %e, "OsmAnd TLS handshake failed");
                                    return;
                                }
                            };
                            let conn = builder.serve_connection(TokioIo::new(conn), service);
                            tokio::pin!(conn);
                            tokio::select! {
                                r = conn.as_mut() => r,
                                _ = stopped(&mut stop) => {
                                    conn.as_mut().graceful_shutdown();
                                    conn.await
                                }
                            }
                        }
                    };
                    let Err(e) = result else { return };
                    if !e.is_timeout() {
                        // A reset, or the idle timeout of the connection (counted there).
                        tracing::debug!(%addr, error = %e, "OsmAnd connection ended");
                        return;
                    }
                    let osmand = &stats.osmand;
                    if flags.between_requests() {
                        // Keep-alive expiry after a complete answer: normal.
                        osmand.idle_closed();
                    } else if flags.had_input() {
                        let n = osmand.refuse("header_timeout");
                        if n.is_power_of_two() {
                            tracing::info!(
                                %addr,
                                refused = n,
                                "OsmAnd request headers not complete within {} s; closed",
                                header_timeout.as_secs_f64()
                            );
                        }
                    } else {
                        osmand.refuse("idle_timeout");
                    }
                });
            }
        }
    }
}

/// The OsmAnd listener's TLS and token settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct OsmandSecurity {
    /// HTTPS with this configuration (`--osmand-tls`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Device tokens required (`--osmand-require-token`).
    pub tokens: Option<Arc<dyn DeviceTokenCheck>>,
    /// Token refusals audited here (the server's audit trail, rate-limited).
    pub audit: Option<Arc<RefusalAudit>>,
}

/// Resolves when `stop` becomes true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn refuse(ingest: &Ingest, status: StatusCode, key: &'static str, msg: String) -> Response {
    ingest.stats().osmand.refuse(key);
    tracing::debug!(reason = key, %msg, "OsmAnd request refused");
    let mut res = text(status, msg);
    if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body is not read: the connection cannot be reused.
        res.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    res
}

async fn report(
    State(state): State<Arc<OsmandState>>,
    client: Option<axum::Extension<ClientAddr>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = client.map(|axum::Extension(ClientAddr(ip))| ip);
    let ingest = &state.ingest;
    if method != Method::GET && method != Method::POST {
        return refuse(
            ingest,
            StatusCode::METHOD_NOT_ALLOWED,
            "bad_request",
            format!("method {method}: OsmAnd reports are GET or POST"),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return refuse(
            ingest,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "body: {} bytes; at most {MAX_BODY_BYTES} are accepted",
                declared.unwrap_or(0)
            ),
        );
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES))
        .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            // Over the limit while streaming (chunked), or the client went away.
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            return if too_large {
                refuse(
                    ingest,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("body: more than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                refuse(
                    ingest,
                    StatusCode::BAD_REQUEST,
                    "truncated",
                    format!("body: truncated or unreadable: {e}"),
                )
            };
        }
        Err(_) => {
            return refuse(
                ingest,
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("body: did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            );
        }
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let now = Utc::now();
    let has_query = uri.query().is_some_and(|q| !q.is_empty());
    // One parse gives the report, the device id it is filed under and the token: the token
    // is checked for exactly that device (a second parser could disagree, review S6).
    let decoded = if json && !bytes.is_empty() {
        osmand::decode_json_with_token(&bytes, now)
    } else if has_query {
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        osmand::decode_query_with_token(target, now)
    } else if !bytes.is_empty() {
        match std::str::from_utf8(&bytes) {
            Ok(form) => osmand::decode_query_with_token(form, now),
            Err(_) => {
                return refuse(
                    ingest,
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "body: a form body must be UTF-8 text".into(),
                );
            }
        }
    } else {
        return refuse(
            ingest,
            StatusCode::BAD_REQUEST,
            "missing_device_id",
            "no report: give a query string (id=…&lat=…&lon=…) or a JSON body".into(),
        );
    };
    if let Err(e) = &decoded.report
        && is_oversized_target(e)
    {
        // A query string over the size limit: as a body over it (nothing was read from it).
        return refuse(ingest, StatusCode::URI_TOO_LONG, "too_large", e.to_string());
    }
    let mut decoded = decoded;
    if json && decoded.token.is_none() && has_query {
        // Traccar Client posts JSON to the server URL it was given, which may carry the
        // token (`https://host:5055/?token=…`): the token from the URL, the device id (the
        // one the report is filed under) from the body.
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        decoded.token = osmand::decode_query_with_token(target, now).token;
    }
    if let Some(tokens) = &state.tokens {
        let ok = match (&decoded.device_id, &decoded.token) {
            (Some(id), Some(token)) => tokens.check(id, token),
            _ => false,
        };
        if !ok {
            let what = if decoded.token.is_none() {
                "no device token: add &token=… from `outpost-server device token ID` to the \
                 phone's server URL"
            } else {
                "wrong device token for this device id: issue one with `outpost-server device \
                 token ID`"
            };
            let n = ingest.stats().osmand.refuse("token");
            let device = decoded.device_id.as_deref().unwrap_or("?");
            if worth_logging(n) {
                tracing::info!(device, refused = n, "OsmAnd report refused: {what}");
            }
            if let Some(audit) = &state.audit {
                let reason = if decoded.token.is_none() {
                    "no device token"
                } else {
                    "wrong device token"
                };
                let target = peer.map_or_else(|| "-".to_string(), |ip| ip.to_string());
                audit.refused(
                    peer,
                    AuditEvent::new("osmand.token", AuditOutcome::Refused)
                        .device(device)
                        .target(target)
                        .detail(reason),
                );
            }
            return text(StatusCode::UNAUTHORIZED, what.to_string());
        }
    }
    let report = match decoded.report {
        Ok(r) => r,
        // A report refused for its values: 200 (see the module docs: the phone must not
        // resend it forever).
        Err(e @ (OsmandError::Fix(_) | OsmandError::BadParameter { .. })) => {
            let key = reason(&e);
            let n = ingest.stats().osmand.refuse(key);
            return refused_value(key, n, None, &e.to_string());
        }
        Err(e) => {
            return refuse(ingest, StatusCode::BAD_REQUEST, reason(&e), e.to_string());
        }
    };
    let device = report.device_id.clone();
    match ingest.submit_wait(report, SUBMIT_WAIT).await {
        Ok(()) => StatusCode::OK.into_response(),
        // Counted by `submit_wait`. The phone keeps the position and retries later.
        Err(e @ (SubmitError::Overloaded | SubmitError::Closed)) => {
            text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        // Counted by `submit_wait`; not a usable device id: not an OsmAnd report.
        Err(e @ SubmitError::DeviceId(_)) => text(StatusCode::BAD_REQUEST, e.to_string()),
        // Counted by `submit_wait`; refused for its values: 200, as above.
        Err(SubmitError::Fix(f)) => {
            let key = fix_reason(&f);
            let n = ingest.stats().osmand.refused_count(key);
            refused_value(key, n, Some(&device), &f.to_string())
        }
    }
}

/// True when the decoder refused the whole query string for its size.
fn is_oversized_target(e: &OsmandError) -> bool {
    matches!(e, OsmandError::BadParameter { name, .. } if name == "request")
}

/// Refusals of one reason logged at `info` (the first 10, then every 1,000th), so a phone
/// with a bad clock is visible in the log without a flood of lines.
fn worth_logging(n: u64) -> bool {
    n <= 10 || n.is_multiple_of(1_000)
}

/// The 200 answer to a report refused for its values, logged (already counted: `n` refusals
/// of `key` so far).
fn refused_value(key: &'static str, n: u64, device: Option<&str>, msg: &str) -> Response {
    if worth_logging(n) {
        tracing::info!(
            reason = key,
            device = device.unwrap_or("?"),
            refused = n,
            "OsmAnd report refused for its values (answered 200 so the phone moves on): {msg}"
        );
    } else {
        tracing::debug!(reason = key, %msg, "OsmAnd report refused for its values");
    }
    text(StatusCode::OK, format!("refused: {msg}"))
}
