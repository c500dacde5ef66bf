//! Connection limits shared by the device listeners: at most [`super::MAX_CONNECTIONS`]
//! concurrent connections per listener (more are closed at once and counted), and an idle
//! timeout (a connection that neither sends nor accepts a byte for that long is closed and
//! counted), so a flood or a stalled client cannot starve the others.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::ListenerStats;

/// A TCP listener that hands out at most `limit` connections at a time.
pub(crate) struct CappedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    stats: Arc<StatsRef>,
    idle: Duration,
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

impl CappedListener {
    pub(crate) fn new(
        inner: TcpListener,
        limit: usize,
        idle: Duration,
        stats: Arc<super::IngestStats>,
        listener: super::Listener,
    ) -> CappedListener {
        CappedListener {
            inner,
            permits: Arc::new(Semaphore::new(limit)),
            stats: Arc::new(StatsRef { stats, listener }),
            idle,
        }
    }

    /// The next connection under the limit; connections beyond it are closed and counted.
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
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    self.stats.get().connection_opened();
                    return (
                        Guarded {
                            inner: stream,
                            _permit: permit,
                            idle: self.idle,
                            deadline: Box::pin(tokio::time::sleep(self.idle)),
                            stats: self.stats.clone(),
                        },
                        addr,
                    );
                }
                Err(_) => {
                    self.stats.get().refuse("connection_limit");
                    drop(stream);
                }
            }
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.accept_capped().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its slot under the limit, closed after `idle` without progress.
pub(crate) struct Guarded {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    stats: Arc<StatsRef>,
}

impl Guarded {
    fn touch(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stats.get().refuse("idle_timeout");
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
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.touch();
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
