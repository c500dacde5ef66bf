//! Running the server: [`ServerConfig`], [`Server::start`] and the [`RunningServer`] handle
//! (address, graceful shutdown).
//!
//! [`Server::start`] with [`ServerConfig::new`] (what the binary does) serves the sync port
//! over TLS only, with the agency PKI of `DIR/tls/` (made by `outpost-server cert init`), and
//! refuses to start without it. [`ServerConfig::plain_for_tests`], [`Server::start_with`] and
//! [`Server::start_full`] serve plain HTTP: in-process tests of the sync logic only.
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
use crate::ingest::cot::CotTls;
use crate::ingest::gateway::GatewayHandle;
use crate::ingest::osmand::OsmandSecurity;
use crate::ingest::{DeviceTokenCheck, IngestConfig, IngestStats};
use crate::security::pki::{Pki, PkiError};
use crate::security::tls::{ClientAuth, DeviceCertCheck};
use crate::service::SyncService;
use crate::storage::{SqliteStorage, StorageError, SyncStorage};

/// Read connections for pulls, snapshots and health (beside the one writer).
const READERS: usize = 3;

/// How the sync port is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS with the server certificate of `DIR/tls/`, client certificates optional at the
    /// TLS layer (a verified one becomes a [`crate::security::tls::PeerDevice`]).
    Tls,
    /// Plain HTTP, for in-process tests of the sync logic only; the binary never uses it.
    PlainForTests,
}

/// Where the server keeps its data and where it listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The data directory (created if missing); the database is `server.db` inside.
    pub data_dir: PathBuf,
    /// The address to listen on, e.g. `127.0.0.1:0` (port 0: any free port, see
    /// [`RunningServer::local_addr`]).
    pub listen: SocketAddr,
    /// The device listeners (OsmAnd HTTP, CoT TCP+UDP); none by default.
    pub ingest: IngestConfig,
    /// TLS ([`ServerConfig::new`]) or plain HTTP ([`ServerConfig::plain_for_tests`]).
    pub transport: Transport,
    /// The OsmAnd device tokens, needed when `ingest.osmand_require_token`.
    pub device_tokens: Option<Arc<dyn DeviceTokenCheck>>,
    /// Refuses revoked device certificates on the CoT TLS listener (`ingest.cot_tls`);
    /// `None`: any certificate of the agency CA that verifies is let in.
    pub device_certs: Option<Arc<dyn DeviceCertCheck>>,
    /// Accounts, sessions, audit (`security.db`, `audit.db`); used with [`Transport::Tls`].
    pub security: crate::security::SecurityConfig,
    /// Limits on unauthenticated work: sign-in rate and password verifications, body
    /// limits, the sync port's connection caps, refusal audit rate
    /// ([`crate::security::guards`]).
    pub guards: crate::security::guards::GuardConfig,
}

impl ServerConfig {
    /// A configuration for `data_dir`, listening on `listen` over TLS (needs `DIR/tls/`), no
    /// device listeners.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
            ingest: IngestConfig::default(),
            transport: Transport::Tls,
            device_tokens: None,
            device_certs: None,
            security: crate::security::SecurityConfig::default(),
            guards: crate::security::guards::GuardConfig::default(),
        }
    }

    /// The same with the limits `guards` ([`crate::security::guards::GuardConfig`]).
    pub fn with_guards(mut self, guards: crate::security::guards::GuardConfig) -> ServerConfig {
        self.guards = guards;
        self
    }

    /// The same with the security settings `security` (password hashing, offline grace,
    /// clock).
    pub fn with_security(mut self, security: crate::security::SecurityConfig) -> ServerConfig {
        self.security = security;
        self
    }

    /// As [`ServerConfig::new`] but serving plain HTTP without TLS: for in-process tests of
    /// the sync logic only (no certificates, no [`crate::security::tls::PeerDevice`]). The
    /// binary never uses it.
    pub fn plain_for_tests(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            transport: Transport::PlainForTests,
            ..ServerConfig::new(data_dir, listen)
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
    /// The TLS certificates are missing or unusable (the message names the file and, when
    /// they are missing, says to run `outpost-server cert init`).
    #[error("TLS: {0}")]
    Tls(String),
    /// The security state (`security.db`, `audit.db`) could not be opened.
    #[error("security: {0}")]
    Security(String),
}

impl From<PkiError> for ServerError {
    fn from(e: PkiError) -> Self {
        ServerError::Tls(e.to_string())
    }
}

impl From<crate::security::tls::TlsError> for ServerError {
    fn from(e: crate::security::tls::TlsError) -> Self {
        ServerError::Tls(e.to_string())
    }
}

/// The TLS and token settings of every listener.
#[derive(Debug, Default)]
struct ListenerTls {
    sync: Option<Arc<rustls::ServerConfig>>,
    osmand: OsmandSecurity,
    cot: Option<CotTls>,
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
    /// of its own until [`RunningServer::shutdown`] (or drop); over TLS with the PKI of
    /// `DIR/tls/` unless the configuration is [`ServerConfig::plain_for_tests`].
    ///
    /// # Errors
    /// [`ServerError::Tls`] when TLS is asked for (the sync port, `osmand_tls`, `cot_tls`)
    /// and `DIR/tls/` is missing ("run `outpost-server cert init --data DIR --name HOST`
    /// first") or unusable; [`ServerError::Ingest`] when `osmand_require_token` is set
    /// without `device_tokens`; [`ServerError::Storage`] (data directory or database
    /// unusable), [`ServerError::Bind`], [`ServerError::Io`] (runtime).
    pub fn start(mut config: ServerConfig) -> Result<RunningServer, ServerError> {
        if config.data_dir.exists() && !config.data_dir.is_dir() {
            // A file given as the data directory: the storage's own message, first.
            SqliteStorage::open(&config.data_dir)?;
        }
        let auth = if config.transport == Transport::Tls {
            if !crate::security::pki::exists(&config.data_dir) {
                // Before security.db is created: a clear message, nothing written.
                return Err(
                    PkiError::Missing(crate::security::pki::tls_dir(&config.data_dir)).into(),
                );
            }
            let sec = Arc::new(
                crate::security::Security::open(&config.data_dir, config.security.clone())
                    .map_err(|e| ServerError::Security(e.to_string()))?,
            );
            if config.device_tokens.is_none() {
                config.device_tokens = Some(sec.clone());
            }
            if config.device_certs.is_none() {
                config.device_certs = Some(sec.clone());
            }
            Some(sec)
        } else {
            None
        };
        let security = Self::security(&config, auth.as_ref())?;
        let mut security = security;
        let mut guards = crate::security::guards::Guards::new(config.guards);
        if let Some(sec) = &auth {
            // Refusals of unauthenticated clients in the audit trail, rate-limited (review
            // S8, S11): the device listeners' and the sync port's without a certificate.
            let refusals = Arc::new(crate::security::guards::RefusalAudit::new(
                Arc::new(crate::security::guards::SecurityAudit(sec.clone())),
                config.guards.refusal_window,
            ));
            security.osmand.audit = Some(refusals.clone());
            if let Some(cot) = &mut security.cot {
                cot.audit = Some(refusals.clone());
            }
            guards = guards.with_refusals(refusals);
        }
        let guards = Arc::new(guards);
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
        Self::start_inner(
            service,
            config.listen,
            config.ingest,
            origin,
            security,
            auth,
            guards,
        )
    }

    /// The TLS configurations and token check `config` asks for; with `auth`, the sync and
    /// CoT TLS ports audit the client certificates they refuse (`tls.handshake`).
    fn security(
        config: &ServerConfig,
        auth: Option<&Arc<crate::security::Security>>,
    ) -> Result<ListenerTls, ServerError> {
        use crate::security::tls::{HandshakeAudit, TlsListener, server_config_audited};
        let audit = |listener| auth.map(|a| Arc::new(HandshakeAudit::for_security(a, listener)));
        let ingest = &config.ingest;
        let tls_sync = config.transport == Transport::Tls;
        let tls_osmand = ingest.osmand_tls && ingest.osmand_listen.is_some();
        let tls_cot = ingest.cot_tls && ingest.cot_listen.is_some();
        let mut security = ListenerTls::default();
        if ingest.osmand_require_token && ingest.osmand_listen.is_some() {
            let Some(tokens) = &config.device_tokens else {
                return Err(ServerError::Ingest(
                    "--osmand-require-token: no device token store configured".into(),
                ));
            };
            security.osmand.tokens = Some(tokens.clone());
        }
        if !(tls_sync || tls_osmand || tls_cot) {
            return Ok(security);
        }
        let pki = Pki::load(&config.data_dir)?;
        if tls_sync {
            security.sync = Some(server_config_audited(
                &pki,
                ClientAuth::Optional,
                audit(TlsListener::Sync),
            )?);
        }
        if tls_osmand {
            security.osmand.tls =
                Some(crate::security::tls::server_config(&pki, ClientAuth::None)?);
        }
        if tls_cot {
            security.cot = Some(CotTls {
                config: server_config_audited(&pki, ClientAuth::Required, audit(TlsListener::Cot))?,
                check: config.device_certs.clone(),
                audit: None,
            });
        }
        Ok(security)
    }

    /// Serves an existing service (e.g. over an in-memory storage) on `listen`, plain HTTP:
    /// in-process tests of the sync logic only.
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
    /// gateway writing as `gateway_origin`, all plain (in-process tests; [`Server::start`]
    /// keeps the origin in the data directory and serves TLS).
    ///
    /// # Errors
    /// [`ServerError::Bind`] (any of the addresses), [`ServerError::Io`],
    /// [`ServerError::Ingest`]; [`ServerError::Tls`] when `ingest` asks for TLS or tokens
    /// (only [`Server::start`] has the PKI and the token store).
    pub fn start_full(
        service: Arc<SyncService>,
        listen: SocketAddr,
        ingest: IngestConfig,
        gateway_origin: uuid::Uuid,
    ) -> Result<RunningServer, ServerError> {
        if ingest.osmand_tls || ingest.cot_tls || ingest.osmand_require_token {
            return Err(ServerError::Tls(
                "device listener TLS and tokens need Server::start (the data directory's PKI)"
                    .into(),
            ));
        }
        Self::start_inner(
            service,
            listen,
            ingest,
            gateway_origin,
            ListenerTls::default(),
            None,
            Arc::default(),
        )
    }

    fn start_inner(
        service: Arc<SyncService>,
        listen: SocketAddr,
        ingest: IngestConfig,
        gateway_origin: uuid::Uuid,
        security: ListenerTls,
        auth: Option<Arc<crate::security::Security>>,
        guards: Arc<crate::security::guards::Guards>,
    ) -> Result<RunningServer, ServerError> {
        let bind = |addr: SocketAddr| {
            std::net::TcpListener::bind(addr).map_err(|cause| ServerError::Bind { addr, cause })
        };
        let osmand_std = ingest.osmand_listen.map(bind).transpose()?;
        let cot_std = match ingest.cot_listen {
            Some(addr) => {
                let tcp = bind(addr)?;
                // UDP on the same port as TCP (the port 0 case: the one TCP got); none with
                // TLS (a datagram cannot be authenticated).
                let tcp_addr = tcp.local_addr()?;
                let udp = if security.cot.is_some() {
                    None
                } else {
                    Some(std::net::UdpSocket::bind(tcp_addr).map_err(|cause| {
                        ServerError::Bind {
                            addr: tcp_addr,
                            cause,
                        }
                    })?)
                };
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
                    security.osmand.clone(),
                    ingest_stop_rx.clone(),
                ));
            }
            if let Some((tcp, udp)) = cot_std {
                tcp.set_nonblocking(true)?;
                cot_addr = Some(tcp.local_addr()?);
                let tcp = tokio::net::TcpListener::from_std(tcp)?;
                let udp = match udp {
                    Some(u) => {
                        u.set_nonblocking(true)?;
                        Some(tokio::net::UdpSocket::from_std(u)?)
                    }
                    None => None,
                };
                runtime.spawn(crate::ingest::cot::serve(
                    tcp,
                    udp,
                    parts.ingest.clone(),
                    service.clone(),
                    limits(crate::ingest::cot::IDLE_TIMEOUT),
                    security.cot.clone(),
                    ingest_stop_rx.clone(),
                ));
            }
        }
        let state = AppState {
            service: service.clone(),
            shutdown: stop_rx.clone(),
            ingest: stats.clone(),
            security: auth.clone(),
            guards: guards.clone(),
        };
        // Audit retention (H1): prune expired records at start and daily, keeping the
        // chain verifiable.
        if let Some(log) = auth.as_ref().and_then(|a| a.audit_log()) {
            let retention = auth
                .as_ref()
                .map_or_else(Default::default, |a| a.config().audit_retention);
            runtime.spawn(crate::security::audit::retention_task(
                log.clone(),
                retention,
                stop_rx.clone(),
            ));
        }
        let sync_tls = security.sync.clone();
        let connections = guards.connections.clone();
        let tls = sync_tls.is_some();
        let thread = std::thread::Builder::new()
            .name("outpost-server".into())
            .spawn(move || -> Result<(), std::io::Error> {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)?;
                    let mut stop = stop_rx;
                    match sync_tls {
                        Some(config) => {
                            crate::security::tls::serve_https_capped(
                                listener,
                                config,
                                router(state),
                                Some(connections),
                                stop,
                            )
                            .await
                        }
                        None => {
                            axum::serve(listener, router(state))
                                .with_graceful_shutdown(async move {
                                    let _ = stop.wait_for(|s| *s).await;
                                })
                                .await
                        }
                    }
                })?;
                // In-flight blocking work (a push being committed) finishes before the
                // runtime is gone.
                runtime.shutdown_timeout(std::time::Duration::from_secs(30));
                Ok(())
            })?;
        if tls {
            tracing::info!(%addr, "outpost-server listening (TLS)");
        } else {
            tracing::warn!(
                %addr,
                "outpost-server listening on PLAIN HTTP (in-process test server): no TLS, no authentication"
            );
        }
        if let Some(a) = osmand_addr {
            if security.osmand.tls.is_some() {
                tracing::info!(addr = %a, "OsmAnd device listener (HTTPS)");
            } else {
                tracing::warn!(
                    addr = %a,
                    "OsmAnd device listener on plain HTTP: positions (and device tokens) cross \
                     the network unencrypted; use --osmand-tls"
                );
            }
            if security.osmand.tokens.is_none() {
                tracing::warn!(
                    addr = %a,
                    "OsmAnd device listener takes reports without a device token; use \
                     --osmand-require-token"
                );
            }
        }
        if let Some(a) = cot_addr {
            if security.cot.is_some() {
                tracing::info!(addr = %a, "Cursor-on-Target listener (TLS, device certificate required)");
            } else {
                tracing::warn!(
                    addr = %a,
                    "Cursor-on-Target listener on plain TCP and UDP: any host can report \
                     positions and read the picture; use --cot-tls"
                );
            }
        }
        Ok(RunningServer {
            addr,
            tls,
            security: auth,
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
    tls: bool,
    security: Option<Arc<crate::security::Security>>,
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

    /// The base URL, e.g. `https://127.0.0.1:40123` (`http://` for a plain test server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The security state (accounts, sessions, devices, audit) of a TLS server; `None` for
    /// a plain test server.
    pub fn security(&self) -> Option<&Arc<crate::security::Security>> {
        self.security.as_ref()
    }

    /// True when the sync port serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
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
