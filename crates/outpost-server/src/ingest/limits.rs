//! Connection limits shared by the device listeners: at most `limit` concurrent connections
//! per listener ([`super::MAX_CONNECTIONS`]) and at most `per_address` from one IP address
//! ([`super::MAX_CONNECTIONS_PER_ADDRESS`]); more are closed at once and counted
//! (`connection_limit`, `address_limit`). A connection from which no byte has arrived for the
//! idle time is closed: only bytes *received from the client* count as progress, so a silent
//! TAK client is not kept open by the feed the server writes to it. How the close is counted
//! depends on the listener ([`IdleRule`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::ListenerStats;

/// How a connection closed for silence is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleRule {
    /// HTTP keep-alive: silence after the server's answer to the client's last bytes is the
    /// normal end of the connection (counted `idle_closed`, not a refusal); silence with an
    /// unanswered request, or from a connection that never sent a byte, is a refusal
    /// (`idle_timeout`).
    KeepAlive,
    /// A stream the client must keep talking on (TAK clients ping): silence is a refusal
    /// (`idle_timeout`), whatever the server wrote meanwhile.
    Talking,
}

/// Which listener's counters a connection updates.
pub(crate) struct StatsRef {
    pub stats: Arc<super::IngestStats>,
    pub listener: super::Listener,
}

impl StatsRef {
    fn get(&self) -> &ListenerStats {
        self.stats.listener(self.listener)
    }
}

/// Open connections per client address.
#[derive(Default)]
struct AddressSlots(Mutex<HashMap<IpAddr, usize>>);

/// The address a connection counts against: an IPv4 address (also when it arrives
/// IPv4-mapped on an IPv6 socket), or the /64 network of an IPv6 address (one host is
/// usually given a whole /64 and can pick any address in it, RFC 4291 / RFC 8981).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

impl AddressSlots {
    /// Takes a slot for `ip` when it holds fewer than `limit`.
    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<AddressSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            slots: self.clone(),
            ip,
        })
    }
}

/// One connection's place under its address's limit; given back when dropped.
struct AddressSlot {
    slots: Arc<AddressSlots>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.slots.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A TCP listener that hands out at most `limit` connections at a time, at most
/// `per_address` of them from one IP address.
pub(crate) struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    addresses: Arc<AddressSlots>,
    per_address: usize,
    stats: Arc<StatsRef>,
    idle: Duration,
    rule: IdleRule,
}

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Concurrent connections.
    pub total: usize,
    /// Concurrent connections from one IP address.
    pub per_address: usize,
    /// Silence (no byte from the client) after which a connection is closed.
    pub idle: Duration,
}

impl CappedListener {
    pub(crate) fn new(
        inner: TcpListener,
        limits: Limits,
        rule: IdleRule,
        stats: Arc<super::IngestStats>,
        listener: super::Listener,
    ) -> CappedListener {
        CappedListener {
            inner,
            permits: Arc::new(Semaphore::new(limits.total)),
            addresses: Arc::new(AddressSlots::default()),
            per_address: limits.per_address,
            stats: Arc::new(StatsRef { stats, listener }),
            idle: limits.idle,
            rule,
        }
    }

    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The next connection under the limits; connections beyond them are closed and counted.
    pub(crate) async fn accept_capped(&mut self) -> (Guarded, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, never spin.
                    tracing::warn!(error = %e, "device listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.addresses.take(client_key(addr.ip()), self.per_address) else {
                let n = self.stats.get().refuse("address_limit");
                if n.is_power_of_two() {
                    tracing::warn!(
                        %addr,
                        limit = self.per_address,
                        refused = n,
                        "device listener: too many connections from one address"
                    );
                }
                drop(stream);
                continue;
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    self.stats.get().connection_opened();
                    return (
                        Guarded {
                            inner: stream,
                            _permit: permit,
                            _slot: slot,
                            idle: self.idle,
                            deadline: Box::pin(tokio::time::sleep(self.idle)),
                            stats: self.stats.clone(),
                            rule: self.rule,
                            flags: Arc::new(ConnFlags::default()),
                        },
                        addr,
                    );
                }
                Err(_) => {
                    let n = self.stats.get().refuse("connection_limit");
                    if n.is_power_of_two() {
                        tracing::warn!(refused = n, "device listener: connection limit reached");
                    }
                    drop(stream);
                }
            }
        }
    }
}

/// What a connection has done, readable by its owner after it was handed to a protocol
/// implementation (hyper).
#[derive(Debug, Default)]
pub(crate) struct ConnFlags {
    /// A byte has arrived from the client.
    input: AtomicBool,
    /// The server wrote after the client's last bytes (the request was answered).
    answered: AtomicBool,
}

impl ConnFlags {
    /// True when the connection is between requests: the client sent something, and the
    /// server answered everything it sent.
    pub(crate) fn between_requests(&self) -> bool {
        self.input.load(Ordering::Relaxed) && self.answered.load(Ordering::Relaxed)
    }

    /// True when a byte has arrived from the client.
    pub(crate) fn had_input(&self) -> bool {
        self.input.load(Ordering::Relaxed)
    }
}

/// A connection holding its slots under the limits, closed after `idle` without a byte from
/// the client.
pub(crate) struct Guarded {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: AddressSlot,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    stats: Arc<StatsRef>,
    rule: IdleRule,
    flags: Arc<ConnFlags>,
}

impl Guarded {
    /// What the connection has done so far (shared, updated as it goes).
    pub(crate) fn flags(&self) -> Arc<ConnFlags> {
        self.flags.clone()
    }

    fn touch(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let stats = self.stats.get();
                if self.rule == IdleRule::KeepAlive && self.flags.between_requests() {
                    stats.idle_closed();
                } else {
                    stats.refuse("idle_timeout");
                }
                // Counted once: the next poll waits a whole period again.
                self.touch();
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "device connection idle for too long",
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stats.get().connection_closed();
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                    self.flags.input.store(true, Ordering::Relaxed);
                    self.flags.answered.store(false, Ordering::Relaxed);
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Writes are not progress of the client (the idle timer is not reset): a client that
        // never sends is closed after `idle` however much the server writes to it.
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.flags.answered.store(true, Ordering::Relaxed);
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_count_per_ipv4_address_and_per_ipv6_64() {
        let key = |s: &str| client_key(s.parse().expect("ip")).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }
}
