//! The person's session token as the engine sees it: read on every request, replaceable at
//! any time (a person signs in online after working offline, signs out, signs in again).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A shared, replaceable bearer token (`Authorization: Bearer TOKEN`, from
/// `POST /v1/login`). Clones share the same slot: the app keeps one clone and sets or
/// clears it; the engine reads it for every request and the poke channel for every
/// connect.
///
/// Setting a token (even the same one again) wakes an engine that stopped on "sign-in
/// required" or "device revoked"; clearing it does not (the next request is refused and the
/// engine stops until a token is set).
#[derive(Clone, Default)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    slot: Mutex<Slot>,
    changed: Notify,
}

#[derive(Default)]
struct Slot {
    token: Option<String>,
    generation: u64,
}

impl std::fmt::Debug for TokenSource {
    /// Never prints the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.lock();
        f.debug_struct("TokenSource")
            .field("token", &slot.token.as_ref().map(|_| "<set>"))
            .field("generation", &slot.generation)
            .finish()
    }
}

impl TokenSource {
    /// An empty source: requests carry no `Authorization` header (a plain in-process test
    /// server needs none; a real server answers 401 and the engine waits for a token).
    pub fn new() -> Self {
        Self::default()
    }

    /// A source holding `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        let source = Self::new();
        source.set(token);
        source
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.inner
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the token (after an online sign-in) and wakes an engine waiting for one.
    pub fn set(&self, token: impl Into<String>) {
        {
            let mut slot = self.lock();
            slot.token = Some(token.into());
            slot.generation += 1;
        }
        self.inner.changed.notify_waiters();
    }

    /// Forgets the token (sign-out, lock past the session). Requests go out without one.
    pub fn clear(&self) {
        let mut slot = self.lock();
        slot.token = None;
        slot.generation += 1;
    }

    /// The current token, if any.
    pub fn get(&self) -> Option<String> {
        self.lock().token.clone()
    }

    /// Counts changes (each [`TokenSource::set`] and [`TokenSource::clear`]).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Waits until a token is set after generation `seen` (returns at once if one already
    /// was).
    pub(crate) async fn token_set_after(&self, seen: u64) {
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so a set() between the check and the await is seen.
            notified.as_mut().enable();
            {
                let slot = self.lock();
                if slot.generation != seen && slot.token.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_token() {
        let a = TokenSource::new();
        let b = a.clone();
        assert_eq!(b.get(), None);
        a.set("t1");
        assert_eq!(b.get().as_deref(), Some("t1"));
        assert_eq!(b.generation(), 1);
        b.clear();
        assert_eq!(a.get(), None);
        assert_eq!(a.generation(), 2);
        assert!(!format!("{a:?}").contains("t1"));
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_set_not_on_clear() {
        let source = TokenSource::with_token("old");
        let seen = source.generation();
        let waiter = {
            let s = source.clone();
            tokio::spawn(async move { s.token_set_after(seen).await })
        };
        source.clear();
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        source.set("new");
        waiter.await.expect("waiter");
        // Already set since `seen`: returns at once.
        source.token_set_after(seen).await;
    }
}
