//! The WebSocket poke channel (`GET /v1/poke?feed=1`): the server announces its newest
//! `gseq`; a poke beyond what this console has applied wakes the engine to pull.
//!
//! The live feed: the server also sends each committed push as a binary frame, a poke plus
//! the push's ops exactly as a pull returns them (`{"gseq":G,"epoch":E,"after":A,"ops":[..]}`,
//! the ops `A+1..=G`). A frame that continues this console's pull cursor in its epoch is
//! applied like a pulled page ([`SyncStore::apply_pull`]: one transaction, ops and cursor
//! together, idempotent), checked and applied under the store lock so that no pull can slip
//! in between; frames waiting on the socket are merged into one transaction. Anything else —
//! a gap (frames missed or dropped by the server for a slow console), another epoch, a frame
//! without ops, an unverified history after a reconnect — only wakes the engine, which pulls
//! as before (SYNC.md principle 11: pulls stay the authority; the feed only saves a round
//! trip). A lost frame therefore only delays ops until the next pull. A server without the
//! feed ignores `feed=1` and sends plain pokes.
//!
//! Over `https://` the socket is `wss://` with the client's own rustls configuration (only
//! the agency CA trusted, the device certificate presented); the handshake carries the
//! session token. Refused for the credentials (401/403), the channel waits until a new
//! token is set instead of knocking again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::{self, Message};

use outpost_domain::clock::Clock;
use outpost_domain::wire::{Poke, PullResponse, PulledOp};

use crate::backoff::{Backoff, BackoffPolicy};
use crate::client::ServerClient;
use crate::engine::{OnApplied, Shared};
use crate::failpoint::Failpoint;
use crate::store_api::SyncStore;

/// Most feed frames merged into one transaction.
const MAX_MERGED_FRAMES: usize = 256;

/// What the poke channel needs to apply live-feed frames itself.
pub(crate) struct Feed<S> {
    /// The console's store (locked for one merged frame at a time).
    pub store: Arc<Mutex<S>>,
    /// Called after a frame changed the state tables.
    pub on_applied: OnApplied,
    /// Armed crash point (a frame is applied like a pulled page).
    pub failpoint: Option<Failpoint>,
    /// "Now" for the applied ops' bookkeeping.
    pub clock: Arc<dyn Clock>,
}

/// A live-feed frame: a poke, with the ops `after+1..=gseq` when the server could send them.
#[derive(Debug, Deserialize)]
pub(crate) struct Frame {
    gseq: u64,
    epoch: uuid::Uuid,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    ops: Vec<PulledOp>,
}

/// What became of frames handed to [`apply_frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Applied (or already applied): the cursor is now `cursor`; `ops` remote ops applied.
    Yes { cursor: u64, ops: usize },
    /// Not contiguous with the cursor, another epoch, or no ops: the engine must pull.
    Pull,
}

/// The longest run of `frames` that continues itself (each frame's `after` is the previous
/// frame's `gseq`, same epoch, with ops), merged into one page; `None` when the first frame
/// has no ops. The frames after the run are left in `frames`.
pub(crate) fn merge_run(frames: &mut Vec<Frame>) -> Option<(u64, PullResponse)> {
    let first = frames.first()?;
    let after = first.after.filter(|_| !first.ops.is_empty())?;
    let epoch = first.epoch;
    let mut end = after;
    let mut n = 0;
    for f in frames.iter() {
        if f.epoch != epoch || f.ops.is_empty() || f.after != Some(end) {
            break;
        }
        end = f.gseq;
        n += 1;
    }
    let run: Vec<Frame> = frames.drain(..n).collect();
    let ops = run.into_iter().flat_map(|f| f.ops).collect();
    Some((
        after,
        PullResponse {
            epoch,
            ops,
            server_gseq: end,
            more: false,
        },
    ))
}

/// Applies `page` (the ops `after+1..=page.server_gseq`) when it continues the store's
/// cursor in the store's epoch: the ops the store already has are skipped, the rest applied
/// with the cursor in one transaction. Checked under the store lock.
///
/// # Errors
/// Store errors (nothing stored).
pub(crate) fn apply_frames<S: SyncStore>(
    store: &Mutex<S>,
    after: u64,
    mut page: PullResponse,
    now: chrono::DateTime<chrono::Utc>,
    failpoint: Option<Failpoint>,
) -> Result<Applied, outpost_store::StoreError> {
    let mut s = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pos = s.position()?;
    if pos.epoch != Some(page.epoch) || pos.cursor < after {
        return Ok(Applied::Pull);
    }
    if pos.cursor >= page.server_gseq {
        return Ok(Applied::Yes {
            cursor: pos.cursor,
            ops: 0,
        });
    }
    page.ops.retain(|o| o.gseq > pos.cursor);
    let rec = s.apply_pull(&page, now, failpoint)?;
    Ok(Applied::Yes {
        cursor: rec.cursor,
        ops: rec.applied,
    })
}

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

/// Keeps a poke socket open until shutdown, reconnecting with backoff; with `feed`, asks
/// for the live feed and applies its frames.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<S: SyncStore>(
    client: ServerClient,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    server_up: Arc<Notify>,
    applied_gseq: Arc<AtomicU64>,
    policy: BackoffPolicy,
    feed: Option<Feed<S>>,
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
            Ok((mut request, connector)) => {
                if feed.is_some() {
                    let uri = format!("{}?feed=1", request.uri());
                    if let Ok(uri) = uri.parse() {
                        *request.uri_mut() = uri;
                    }
                }
                (request, connector)
            }
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
                let mut next: Option<Option<Result<Message, tungstenite::Error>>> = None;
                loop {
                    let msg = match next.take() {
                        Some(m) => m,
                        None => tokio::select! {
                            m = ws.next() => m,
                            _ = shutdown.changed() => {
                                let _ = ws.close(None).await;
                                shared.set_poke_connected(false);
                                return;
                            }
                        },
                    };
                    match msg {
                        Some(Ok(Message::Binary(bytes))) => {
                            // A feed frame, and whatever frames are already waiting.
                            let mut frames = Vec::new();
                            let mut bytes = Some(bytes);
                            while let Some(b) = bytes.take() {
                                match serde_json::from_slice::<Frame>(&b) {
                                    Ok(f) => frames.push(f),
                                    Err(e) => {
                                        // Its ops are missing now: the engine pulls them.
                                        tracing::debug!(error = %e, "unreadable feed frame; pulling");
                                        wake.notify_one();
                                    }
                                }
                                if frames.len() >= MAX_MERGED_FRAMES {
                                    break;
                                }
                                match ws.next().now_or_never() {
                                    Some(Some(Ok(Message::Binary(b)))) => bytes = Some(b),
                                    Some(other) => next = Some(other),
                                    None => {}
                                }
                            }
                            if let Some(feed) = &feed {
                                take_frames(feed, frames, &shared, &wake, &applied_gseq).await;
                            } else if let Some(f) = frames.last() {
                                shared.saw_server_gseq(f.gseq);
                                if f.gseq > applied_gseq.load(Ordering::SeqCst) {
                                    wake.notify_one();
                                }
                            }
                        }
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

/// Applies what of `frames` continues the cursor; wakes the engine to pull the rest.
async fn take_frames<S: SyncStore>(
    feed: &Feed<S>,
    mut frames: Vec<Frame>,
    shared: &Shared,
    wake: &Notify,
    applied_gseq: &AtomicU64,
) {
    let Some(newest) = frames.iter().map(|f| f.gseq).max() else {
        return;
    };
    shared.saw_server_gseq(newest);
    // After a reconnect the engine first checks that the server still has the history this
    // console pulled (a restore from a backup); until then frames are not applied.
    let mut must_pull = !shared.history_verified();
    while !must_pull && !frames.is_empty() {
        let before = frames.len();
        let Some((after, page)) = merge_run(&mut frames) else {
            must_pull = true;
            break;
        };
        let merged = (before - frames.len()) as u64;
        let store = Arc::clone(&feed.store);
        let (now, failpoint) = (feed.clock.now(), feed.failpoint);
        let done =
            tokio::task::spawn_blocking(move || apply_frames(&store, after, page, now, failpoint))
                .await;
        match done {
            Ok(Ok(Applied::Yes { cursor, ops })) => {
                shared.feed_counted(merged, false);
                applied_gseq.fetch_max(cursor, Ordering::SeqCst);
                if ops > 0 {
                    (feed.on_applied)();
                }
            }
            Ok(Ok(Applied::Pull)) => must_pull = true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "applying a feed frame failed; pulling instead");
                must_pull = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "applying a feed frame failed; pulling instead");
                must_pull = true;
            }
        }
    }
    if must_pull && newest > applied_gseq.load(Ordering::SeqCst) {
        shared.feed_counted(0, true);
        wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use outpost_store::Store;

    /// `n` ops written on an author's console (a unit, then positions), as the server would
    /// log them with gseq 1..=n.
    fn logged(n: usize) -> Vec<PulledOp> {
        let now = chrono::Utc::now();
        let mut author = Store::open_in_memory(now).expect("author");
        let mut lines = String::from(
            r#"{"action":"register_unit","unit_id":"u-1","callsign":"A1","unit_kind":"patrol_car"}"#,
        );
        for i in 1..n {
            lines.push_str(&format!(
                "\n{{\"action\":\"position\",\"unit_id\":\"u-1\",\"position\":{{\"lat\":42.{i:03},\"lon\":1.5}}}}"
            ));
        }
        for a in crate::script::parse(&lines).expect("script") {
            crate::script::perform(&mut author, now, "tester", &a).expect("perform");
        }
        let mut ops = SyncStore::pending_batch(&author, outpost_domain::op::Lane::Critical, 100)
            .expect("critical");
        ops.extend(
            SyncStore::pending_batch(&author, outpost_domain::op::Lane::Positions, 100)
                .expect("positions"),
        );
        assert_eq!(ops.len(), n);
        ops.iter()
            .enumerate()
            .map(|(i, o)| PulledOp {
                gseq: i as u64 + 1,
                op: serde_json::to_value(o).expect("json"),
            })
            .collect()
    }

    fn frame(epoch: uuid::Uuid, ops: &[PulledOp]) -> Frame {
        Frame {
            gseq: ops.last().map_or(0, |o| o.gseq),
            epoch,
            after: ops.first().map(|o| o.gseq - 1),
            ops: ops.to_vec(),
        }
    }

    /// A reader that pulled ops 1..=2 of `epoch`.
    fn reader(epoch: uuid::Uuid, log: &[PulledOp]) -> Mutex<Store> {
        let mut s = Store::open_in_memory(chrono::Utc::now()).expect("reader");
        let page = PullResponse {
            epoch,
            ops: log[..2].to_vec(),
            server_gseq: 2,
            more: false,
        };
        SyncStore::apply_pull(&mut s, &page, chrono::Utc::now(), None).expect("first page");
        Mutex::new(s)
    }

    fn cursor(s: &Mutex<Store>) -> u64 {
        SyncStore::position(&*s.lock().expect("lock"))
            .expect("position")
            .cursor
    }

    #[test]
    fn contiguous_frames_merge_and_a_gap_ends_the_run() {
        let log = logged(8);
        let e = uuid::Uuid::now_v7();
        let mut frames = vec![
            frame(e, &log[2..4]),
            frame(e, &log[4..5]),
            // ops 6 missing: a gap.
            frame(e, &log[6..8]),
        ];
        let (after, page) = merge_run(&mut frames).expect("a run");
        assert_eq!(after, 2);
        assert_eq!(page.server_gseq, 5);
        assert_eq!(
            page.ops.iter().map(|o| o.gseq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].after, Some(6));
        // Another epoch, or a frame without ops, also ends a run.
        let mut frames = vec![
            frame(e, &log[2..3]),
            frame(uuid::Uuid::now_v7(), &log[3..4]),
        ];
        assert_eq!(merge_run(&mut frames).expect("run").1.ops.len(), 1);
        assert_eq!(frames.len(), 1);
        let mut bare = vec![Frame {
            gseq: 9,
            epoch: e,
            after: None,
            ops: Vec::new(),
        }];
        assert!(merge_run(&mut bare).is_none());
    }

    #[test]
    fn a_frame_applies_only_when_it_continues_the_cursor() {
        let log = logged(8);
        let e = uuid::Uuid::now_v7();
        let s = reader(e, &log);
        let now = chrono::Utc::now();
        let page = |from: usize, to: usize| {
            let mut f = vec![frame(e, &log[from..to])];
            merge_run(&mut f).expect("run")
        };
        // A gap (ops 3..4 missed): nothing applied, the engine must pull.
        let (after, p) = page(4, 6);
        assert_eq!(
            apply_frames(&s, after, p, now, None).expect("gap"),
            Applied::Pull
        );
        assert_eq!(cursor(&s), 2);
        // Another epoch: pull.
        let mut other = vec![frame(uuid::Uuid::now_v7(), &log[2..4])];
        let (after, p) = merge_run(&mut other).expect("run");
        assert_eq!(
            apply_frames(&s, after, p, now, None).expect("epoch"),
            Applied::Pull
        );
        assert_eq!(cursor(&s), 2);
        // Contiguous: applied with the cursor.
        let (after, p) = page(2, 4);
        assert_eq!(
            apply_frames(&s, after, p, now, None).expect("apply"),
            Applied::Yes { cursor: 4, ops: 2 }
        );
        assert_eq!(cursor(&s), 4);
        // Overlapping what a pull already brought: only the new ops apply.
        let (after, p) = page(2, 6);
        assert_eq!(
            apply_frames(&s, after, p, now, None).expect("overlap"),
            Applied::Yes { cursor: 6, ops: 2 }
        );
        // Old news (a frame the pull overtook): nothing to do, the cursor stays.
        let (after, p) = page(3, 5);
        assert_eq!(
            apply_frames(&s, after, p, now, None).expect("stale"),
            Applied::Yes { cursor: 6, ops: 0 }
        );
        assert_eq!(cursor(&s), 6);
        // The console's state equals one that pulled the same ops as one page.
        let whole = reader(e, &log);
        let rest = PullResponse {
            epoch: e,
            ops: log[2..6].to_vec(),
            server_gseq: 6,
            more: false,
        };
        SyncStore::apply_pull(&mut *whole.lock().expect("lock"), &rest, now, None).expect("pull");
        assert_eq!(
            crate::store_api::digest(&s.lock().expect("lock")).expect("digest"),
            crate::store_api::digest(&whole.lock().expect("lock")).expect("digest")
        );
    }

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
