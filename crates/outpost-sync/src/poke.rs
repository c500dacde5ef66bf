//! The WebSocket poke channel (`GET /v1/poke`): the server announces its newest `gseq`; a
//! poke beyond what this console has applied wakes the engine to pull. Data never flows here
//! (SYNC.md principle 11: pull is the only way in), so a lost poke only delays a pull until
//! the engine's poll timer.
//!
//! Over `https://` the socket is `wss://` with the client's own rustls configuration (only
//! the agency CA trusted, the device certificate presented); the handshake carries the
//! session token. Refused for the credentials (401/403), the channel waits until a new
//! token is set instead of knocking again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::{self, Message};

use outpost_domain::wire::Poke;

use crate::backoff::{Backoff, BackoffPolicy};
use crate::client::ServerClient;
use crate::engine::Shared;

/// The poke channel's reconnect schedule: the engine's, capped at 0.5 s → 10 s. A refused
/// connect costs the server nothing, and the first successful one ends the engine's (longer)
/// backoff, so a console is back within seconds of the server.
pub(crate) fn policy(engine: BackoffPolicy) -> BackoffPolicy {
    BackoffPolicy {
        initial: engine.initial.min(std::time::Duration::from_millis(500)),
        max: engine.max.min(std::time::Duration::from_secs(10)),
    }
}

/// Makes ring the process's rustls provider for `wss://` pokes, unless another one was
/// installed first (then that one is used). Idempotent.
pub(crate) fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Keeps a poke socket open until shutdown, reconnecting with backoff.
pub(crate) async fn run(
    client: ServerClient,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    server_up: Arc<Notify>,
    applied_gseq: Arc<AtomicU64>,
    policy: BackoffPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    install_tls_provider();
    let url = client.poke_url();
    let mut backoff = Backoff::new(policy);
    loop {
        let generation = client.token().generation();
        if client.tls_config().is_some() && client.token().get().is_none() {
            // Nobody signed in online: a knock would only be refused (and audited).
            tokio::select! {
                _ = client.token().token_set_after(generation) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let (request, connector) = match client.poke_request() {
            Ok(r) => r,
            Err(e) => {
                // Only an unusable token gets here: wait for another one.
                tracing::debug!(%url, error = %e, "poke channel not started");
                tokio::select! {
                    _ = client.token().token_set_after(generation) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
        };
        let connected = tokio::select! {
            r = tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector) => r,
            _ = shutdown.changed() => return,
        };
        match connected {
            Ok((mut ws, _)) => {
                backoff.reset();
                shared.set_poke_connected(true);
                tracing::debug!(%url, "poke channel connected");
                // The link is back: catch up now rather than at the next poll or retry.
                wake.notify_one();
                server_up.notify_one();
                loop {
                    let msg = tokio::select! {
                        m = ws.next() => m,
                        _ = shutdown.changed() => {
                            let _ = ws.close(None).await;
                            shared.set_poke_connected(false);
                            return;
                        }
                    };
                    match msg {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<Poke>(text.as_str()) {
                                Ok(poke) => {
                                    shared.saw_server_gseq(poke.gseq);
                                    if poke.gseq > applied_gseq.load(Ordering::SeqCst) {
                                        wake.notify_one();
                                    }
                                }
                                Err(e) => tracing::debug!(error = %e, "unreadable poke ignored"),
                            }
                        }
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "poke channel failed");
                            break;
                        }
                    }
                }
                shared.set_poke_connected(false);
                shared.link_lost();
            }
            Err(tungstenite::Error::Http(resp)) if matches!(resp.status().as_u16(), 401 | 403) => {
                // Not signed in (or this device refused): knocking again changes nothing and
                // each refusal is audited. Wait for a new token.
                tracing::debug!(%url, status = %resp.status(), "poke channel refused; waiting for a new token");
                tokio::select! {
                    _ = client.token().token_set_after(generation) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            Err(e) => tracing::debug!(%url, error = %e, "poke channel not connected"),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `wss://` poke to something that is not a TLS server fails cleanly (no panic for a
    /// missing crypto provider).
    #[tokio::test]
    async fn wss_to_a_plain_socket_is_an_error() {
        install_tls_provider();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                use std::io::Write;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let r = tokio_tungstenite::connect_async(format!("wss://{addr}/v1/poke")).await;
        assert!(r.is_err());
    }
}
