//! Running the server: [`ServerConfig`], [`Server::start`] and the [`RunningServer`] handle
//! (address, graceful shutdown).
//!
//! The server runs on its own thread with its own tokio runtime, so callers need no async
//! runtime (the binary, tests, the console's sync tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::{AppState, router};
use crate::ingest::gateway::GatewayHandle;
use crate::ingest::{IngestConfig, IngestStats};
use crate::service::SyncService;
use crate::storage::{SqliteStorage, StorageError, SyncStorage};

/// Read connections for pulls, snapshots and health (beside the one writer).
const READERS: usize = 3;

/// Where the server keeps its data and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The data directory (created if missing); the database is `server.db` inside.
    pub data_dir: PathBuf,
    /// The address to listen on, e.g. `127.0.0.1:0` (port 0: any free port, see
    /// [`RunningServer::local_addr`]).
    pub listen: SocketAddr,
    /// The device listeners (OsmAnd HTTP, CoT TCP+UDP); none by default.
    pub ingest: IngestConfig,
}

impl ServerConfig {
    /// A configuration for `data_dir`, listening on `listen`, no device listeners.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
            ingest: IngestConfig::default(),
        }
    }

    /// The same with the device listeners of `ingest`.
    pub fn with_ingest(mut self, ingest: IngestConfig) -> ServerConfig {
        self.ingest = ingest;
        self
    }
}

/// Why the server could not start or stop cleanly (one line with its cause).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The storage could not be opened.
    #[error("{0}")]
    Storage(StorageError),
    /// The address could not be bound (in use, not allowed).
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        cause: std::io::Error,
    },
    /// The runtime or the serving loop failed.
    #[error("server: {0}")]
    Io(std::io::Error),
    /// The server thread panicked.
    #[error("the server thread stopped unexpectedly")]
    Panicked,
    /// The device ingest could not start (its origin file, its gateway).
    #[error("device ingest: {0}")]
    Ingest(String),
}

impl From<StorageError> for ServerError {
    fn from(e: StorageError) -> Self {
        ServerError::Storage(e)
    }
}

impl From<std::io::Error> for ServerError {
    fn from(e: std::io::Error) -> Self {
        ServerError::Io(e)
    }
}

/// The sync server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the storage of `config.data_dir`, binds `config.listen` and serves on a thread
    /// of its own until [`RunningServer::shutdown`] (or drop).
    ///
    /// # Errors
    /// [`ServerError::Storage`] (data directory or database unusable), [`ServerError::Bind`],
    /// [`ServerError::Io`] (runtime).
    pub fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let storage = SqliteStorage::open(&config.data_dir)?;
        let mut readers: Vec<Box<dyn SyncStorage>> = Vec::new();
        for _ in 0..READERS {
            readers.push(Box::new(SqliteStorage::open(&config.data_dir)?));
        }
        let service = Arc::new(SyncService::with_readers(Box::new(storage), readers));
        let origin = if config.ingest.osmand_listen.is_some() || config.ingest.cot_listen.is_some()
        {
            crate::ingest::gateway_origin(&config.data_dir)
                .map_err(|e| ServerError::Ingest(e.to_string()))?
        } else {
            uuid::Uuid::nil()
        };
        Self::start_full(service, config.listen, config.ingest, origin)
    }

    /// Serves an existing service (e.g. over an in-memory storage) on `listen`.
    ///
    /// # Errors
    /// [`ServerError::Bind`], [`ServerError::Io`].
    pub fn start_with(
        service: Arc<SyncService>,
        listen: SocketAddr,
    ) -> Result<RunningServer, ServerError> {
        Self::start_full(service, listen, IngestConfig::default(), uuid::Uuid::nil())
    }

    /// Serves an existing service on `listen` with the device listeners of `ingest`, the
    /// gateway writing as `gateway_origin` (in-process tests; [`Server::start`] keeps the
    /// origin in the data directory).
    ///
    /// # Errors
    /// [`ServerError::Bind`] (any of the addresses), [`ServerError::Io`],
    /// [`ServerError::Ingest`].
    pub fn start_full(
        service: Arc<SyncService>,
        listen: SocketAddr,
        ingest: IngestConfig,
        gateway_origin: uuid::Uuid,
    ) -> Result<RunningServer, ServerError> {
        let bind = |addr: SocketAddr| {
            std::net::TcpListener::bind(addr).map_err(|cause| ServerError::Bind { addr, cause })
        };
        let osmand_std = ingest.osmand_listen.map(bind).transpose()?;
        let cot_std = match ingest.cot_listen {
            Some(addr) => {
                let tcp = bind(addr)?;
                // UDP on the same port as TCP (the port 0 case: the one TCP got).
                let tcp_addr = tcp.local_addr()?;
                let udp =
                    std::net::UdpSocket::bind(tcp_addr).map_err(|cause| ServerError::Bind {
                        addr: tcp_addr,
                        cause,
                    })?;
                Some((tcp, udp))
            }
            None => None,
        };
        let std_listener =
            std::net::TcpListener::bind(listen).map_err(|cause| ServerError::Bind {
                addr: listen,
                cause,
            })?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("outpost-server")
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stats = Arc::new(IngestStats::default());
        let (ingest_stop_tx, ingest_stop_rx) = watch::channel(false);
        let mut gateway = None;
        let mut osmand_addr = None;
        let mut cot_addr = None;
        if osmand_std.is_some() || cot_std.is_some() {
            let parts = crate::ingest::start_gateway(
                service.clone(),
                gateway_origin,
                stats.clone(),
                ingest
                    .max_device_rate
                    .unwrap_or(crate::ingest::MAX_DEVICE_RATE),
            )
            .map_err(|e| ServerError::Ingest(e.to_string()))?;
            gateway = Some(parts.gateway);
            let limits = |idle: Duration| crate::ingest::limits::Limits {
                total: ingest
                    .max_connections
                    .unwrap_or(crate::ingest::MAX_CONNECTIONS),
                per_address: ingest
                    .max_connections_per_address
                    .unwrap_or(crate::ingest::MAX_CONNECTIONS_PER_ADDRESS),
                idle: ingest.idle_timeout.unwrap_or(idle),
            };
            let _enter = runtime.enter();
            if let Some(l) = osmand_std {
                l.set_nonblocking(true)?;
                osmand_addr = Some(l.local_addr()?);
                let l = tokio::net::TcpListener::from_std(l)?;
                runtime.spawn(crate::ingest::osmand::serve(
                    l,
                    parts.ingest.clone(),
                    limits(crate::ingest::osmand::IDLE_TIMEOUT),
                    ingest
                        .header_timeout
                        .unwrap_or(crate::ingest::osmand::HEADER_TIMEOUT),
                    ingest_stop_rx.clone(),
                ));
            }
            if let Some((tcp, udp)) = cot_std {
                tcp.set_nonblocking(true)?;
                udp.set_nonblocking(true)?;
                cot_addr = Some(tcp.local_addr()?);
                let tcp = tokio::net::TcpListener::from_std(tcp)?;
                let udp = tokio::net::UdpSocket::from_std(udp)?;
                runtime.spawn(crate::ingest::cot::serve(
                    tcp,
                    udp,
                    parts.ingest.clone(),
                    service.clone(),
                    limits(crate::ingest::cot::IDLE_TIMEOUT),
                    ingest_stop_rx.clone(),
                ));
            }
        }
        let state = AppState {
            service: service.clone(),
            shutdown: stop_rx.clone(),
            ingest: stats.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("outpost-server".into())
            .spawn(move || -> Result<(), std::io::Error> {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)?;
                    let mut stop = stop_rx;
                    axum::serve(listener, router(state))
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
                })?;
                // In-flight blocking work (a push being committed) finishes before the
                // runtime is gone.
                runtime.shutdown_timeout(std::time::Duration::from_secs(30));
                Ok(())
            })?;
        tracing::info!(%addr, "outpost-server listening");
        if let Some(a) = osmand_addr {
            tracing::info!(addr = %a, "OsmAnd device listener (HTTP)");
        }
        if let Some(a) = cot_addr {
            tracing::info!(addr = %a, "Cursor-on-Target listener (TCP and UDP)");
        }
        Ok(RunningServer {
            addr,
            service,
            stop: stop_tx,
            thread: Some(thread),
            ingest_stop: ingest_stop_tx,
            gateway,
            stats,
            osmand_addr,
            cot_addr,
        })
    }
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    service: Arc<SyncService>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<(), std::io::Error>>>,
    ingest_stop: watch::Sender<bool>,
    gateway: Option<GatewayHandle>,
    stats: Arc<IngestStats>,
    osmand_addr: Option<SocketAddr>,
    cot_addr: Option<SocketAddr>,
}

impl RunningServer {
    /// The address it listens on (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OsmAnd listener's address, when there is one.
    pub fn osmand_addr(&self) -> Option<SocketAddr> {
        self.osmand_addr
    }

    /// The Cursor-on-Target listener's address (TCP and UDP), when there is one.
    pub fn cot_addr(&self) -> Option<SocketAddr> {
        self.cot_addr
    }

    /// The device ingest counters (all zero without device listeners).
    pub fn ingest_stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// The sync service (in-process access for tests and admin).
    pub fn service(&self) -> &Arc<SyncService> {
        &self.service
    }

    /// Graceful shutdown: new pushes, pulls and snapshots get 503, the listener closes, poke
    /// sockets close, in-flight requests finish; returns when the server has stopped.
    ///
    /// # Errors
    /// [`ServerError::Io`] when serving had failed; [`ServerError::Panicked`].
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServerError> {
        // Device listeners first, then the gateway writes what they queued, then the sync
        // service closes.
        let _ = self.ingest_stop.send(true);
        if let Some(g) = self.gateway.take() {
            g.shutdown();
        }
        self.service.close();
        let _ = self.stop.send(true);
        match self.thread.take() {
            Some(t) => match t.join() {
                Ok(r) => {
                    tracing::info!(addr = %self.addr, "outpost-server stopped");
                    Ok(r?)
                }
                Err(_) => Err(ServerError::Panicked),
            },
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
