//! The OsmAnd listener (`--osmand-listen`, Traccar's port 5055 by convention): HTTP GET or
//! POST on any path, as OsmAnd and Traccar Client send it.
//!
//! - a query string (`/?id=…&lat=…&lon=…&timestamp=…`) → `outpost_devices::osmand::decode_query`;
//! - a POST with `Content-Type: application/json` → `decode_json`;
//! - a POST with a form body and no query → `decode_query` of the body.
//!
//! Answers: 200 with an empty body when the report is queued; 400 with a one-line text naming
//! what is wrong (the decoder's or the fix check's message); 413 for a body over
//! [`MAX_BODY_BYTES`]; 408 when the body does not arrive within [`BODY_TIMEOUT`]; 503 when
//! the gateway is overloaded. Every refusal is counted.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio::sync::watch;

use outpost_devices::osmand::{self, MAX_BODY_BYTES, OsmandError};

use super::limits::CappedListener;
use super::{Ingest, Listener, SUBMIT_WAIT, SubmitError, fix_reason};

/// A connection with no byte in either direction for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The router: every path and method goes to the report handler.
pub fn router(ingest: Ingest) -> Router {
    Router::new().fallback(report).with_state(Arc::new(ingest))
}

/// Serves the OsmAnd listener on `listener` (at most `max_connections` at a time, closed
/// after `idle` or [`IDLE_TIMEOUT`] without traffic) until `stop` becomes true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Ingest,
    max_connections: usize,
    idle: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    let stats = ingest.stats().clone();
    let capped = CappedListener::new(
        listener,
        max_connections,
        idle.unwrap_or(IDLE_TIMEOUT),
        stats,
        Listener::Osmand,
    );
    let r = axum::serve(capped, router(ingest))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "OsmAnd listener stopped");
    }
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
    tracing::debug!(reason = key, %msg, "OsmAnd report refused");
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
    State(ingest): State<Arc<Ingest>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::GET && method != Method::POST {
        return refuse(
            &ingest,
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
            &ingest,
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
                    &ingest,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("body: more than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                refuse(
                    &ingest,
                    StatusCode::BAD_REQUEST,
                    "truncated",
                    format!("body: truncated or unreadable: {e}"),
                )
            };
        }
        Err(_) => {
            return refuse(
                &ingest,
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
    let decoded = if json && !bytes.is_empty() {
        osmand::decode_json(&bytes, now)
    } else if has_query {
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        osmand::decode_query(target, now)
    } else if !bytes.is_empty() {
        match std::str::from_utf8(&bytes) {
            Ok(form) => osmand::decode_query(form, now),
            Err(_) => {
                return refuse(
                    &ingest,
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "body: a form body must be UTF-8 text".into(),
                );
            }
        }
    } else {
        return refuse(
            &ingest,
            StatusCode::BAD_REQUEST,
            "missing_device_id",
            "no report: give a query string (id=…&lat=…&lon=…) or a JSON body".into(),
        );
    };
    let report = match decoded {
        Ok(r) => r,
        Err(e) => {
            return refuse(&ingest, StatusCode::BAD_REQUEST, reason(&e), e.to_string());
        }
    };
    match ingest.submit_wait(report, SUBMIT_WAIT).await {
        Ok(()) => StatusCode::OK.into_response(),
        // Already counted by `submit`.
        Err(e @ (SubmitError::Overloaded | SubmitError::Closed)) => {
            text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
