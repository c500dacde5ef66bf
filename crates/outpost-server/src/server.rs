//! Running the server: [`ServerConfig`], [`Server::start`] and the [`RunningServer`] handle
//! (address, graceful shutdown).
//!
//! The server runs on its own thread with its own tokio runtime, so callers need no async
//! runtime (the binary, tests, the console's sync tests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::http::{AppState, router};
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
}

impl ServerConfig {
    /// A configuration for `data_dir`, listening on `listen`.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
        }
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
        Self::start_with(service, config.listen)
    }

    /// Serves an existing service (e.g. over an in-memory storage) on `listen`.
    ///
    /// # Errors
    /// [`ServerError::Bind`], [`ServerError::Io`].
    pub fn start_with(
        service: Arc<SyncService>,
        listen: SocketAddr,
    ) -> Result<RunningServer, ServerError> {
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
        let state = AppState {
            service: service.clone(),
            shutdown: stop_rx.clone(),
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
        Ok(RunningServer {
            addr,
            service,
            stop: stop_tx,
            thread: Some(thread),
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
