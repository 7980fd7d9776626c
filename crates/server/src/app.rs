//! [`Server`]: binds the listeners and wires ingest → bus → store and
//! subscribers. Everything runs until the shutdown token fires; then ingest
//! stops accepting, the bus closes (so live streams end) and the HTTP server
//! finishes in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drains::DrainManager;
use envelope::Entry;
use metrics::Metrics;
use router::{Bus, BusConfig, Tap};
use sources::IngestContext;
use store::{MemoryStore, RecentStore};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::http::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The recent store fed as a bus tap.
struct StoreTap {
    store: Arc<dyn RecentStore>,
    metrics: Arc<Metrics>,
}

impl Tap for StoreTap {
    fn append(&self, batch: &[Arc<Entry>]) {
        self.store.append(batch);
        self.metrics.store_appended.inc_by(batch.len() as u64);
    }
}

/// A running server.
pub struct Server {
    /// Where the HTTP API listens (the real port when 0 was asked).
    pub http_addr: SocketAddr,
    /// Where syslog over TCP listens, if enabled.
    pub syslog_tcp_addr: Option<SocketAddr>,
    /// Where syslog over UDP listens, if enabled.
    pub syslog_udp_addr: Option<SocketAddr>,
    pub bus: Bus,
    pub store: Arc<dyn RecentStore>,
    pub drains: DrainManager,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Server {
    /// Binds every listener and starts serving.
    pub async fn start(
        mut config: Config,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        config.validate()?;
        raise_open_files_limit();
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let metrics = Arc::new(Metrics::default());
        let bus = Bus::new(
            BusConfig {
                queue_capacity: config.router.queue_capacity.max(1),
            },
            Arc::clone(&metrics),
        );
        let store: Arc<dyn RecentStore> = Arc::new(MemoryStore::new(config.store_config()));
        bus.add_tap(Arc::new(StoreTap {
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
        }));
        let ingest = IngestContext {
            bus: bus.clone(),
            limits: config.ingest_limits(),
        };
        let mut tasks = JoinSet::new();

        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let http_listener = bind("http", config.http.listen).await?;
        let http_addr = local_addr(&http_listener, config.http.listen);
        // The real port (when 0 was asked), for the Host check.
        config.http.listen = http_addr;

        let mut syslog_tcp_addr = None;
        if config.syslog.tcp {
            let listener = bind("syslog tcp", config.syslog.listen).await?;
            syslog_tcp_addr = Some(local_addr(&listener, config.syslog.listen));
            tasks.spawn(sources::syslog_tcp::run(
                listener,
                ingest.clone(),
                shutdown.clone(),
            ));
        }
        let mut syslog_udp_addr = None;
        if config.syslog.udp {
            // Same port as TCP when the configured port was 0.
            let addr = syslog_tcp_addr.unwrap_or(config.syslog.listen);
            let socket = match UdpSocket::bind(addr).await {
                Ok(s) => s,
                Err(_) if config.syslog.listen.port() == 0 => UdpSocket::bind(config.syslog.listen)
                    .await
                    .map_err(|source| StartError::Bind {
                        what: "syslog udp",
                        addr,
                        source,
                    })?,
                Err(source) => {
                    return Err(StartError::Bind {
                        what: "syslog udp",
                        addr,
                        source,
                    })
                }
            };
            syslog_udp_addr = Some(socket.local_addr().unwrap_or(addr));
            tasks.spawn(sources::syslog_udp::run(
                socket,
                ingest.clone(),
                shutdown.clone(),
            ));
        }

        let (drains, problems) =
            DrainManager::start(bus.clone(), config.drains_config()?, shutdown.clone());
        for problem in problems {
            warn!("{problem}");
        }
        tasks.spawn(reopen_files_on_sighup(shutdown.clone()));

        let state = AppState::new(
            &config,
            bus.clone(),
            Arc::clone(&store),
            ingest,
            drains.clone(),
        );
        let app = http::router(state);
        let limits = http::listener::ListenerLimits {
            max_connections: config.http.max_connections.max(1),
            header_timeout: Duration::from_secs(config.http.header_timeout_secs.max(1)),
        };
        tasks.spawn(http::listener::serve(
            http_listener,
            app,
            limits,
            Arc::clone(&metrics),
            shutdown.clone(),
        ));

        // Age out history even for sources that went quiet.
        let expiry_store = Arc::clone(&store);
        let expiry_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => expiry_store.expire(envelope::time::now_ns()),
                    _ = expiry_shutdown.cancelled() => return,
                }
            }
        });

        // Drains stop (flushing what they can), then live streams end when
        // the bus closes.
        let closing_bus = bus.clone();
        let closing = shutdown.clone();
        let closing_drains = drains.clone();
        tasks.spawn(async move {
            closing.cancelled().await;
            closing_drains
                .stop_all(2 * drains::manager::STOP_FLUSH + Duration::from_millis(500))
                .await;
            closing_bus.close();
        });

        info!(%http_addr, ?syslog_tcp_addr, ?syslog_udp_addr, "sluice server started");
        Ok(Server {
            http_addr,
            syslog_tcp_addr,
            syslog_udp_addr,
            bus,
            store,
            drains,
            shutdown,
            tasks,
        })
    }

    /// Fires the shutdown token.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits for every task to finish after shutdown, at most `deadline`.
    pub async fn wait(mut self, deadline: Duration) {
        self.shutdown.cancelled().await;
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, all).await.is_err() {
            warn!("tasks still running at the shutdown deadline; exiting anyway");
            self.tasks.abort_all();
        }
    }
}

/// Raises the soft limit on open files to the hard limit: every connection
/// and drain is a descriptor, and Debian's default soft limit (1024) is
/// below the connection limits. Reported in the log either way.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            warn!("cannot read the open files limit");
            return;
        }
        let before = limit.rlim_cur;
        if before < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                warn!(
                    soft = before,
                    hard = limit.rlim_max,
                    "cannot raise the open files limit"
                );
                return;
            }
        }
        info!(from = before, to = limit.rlim_cur, "open files limit");
    }
}

/// logrotate's convention: SIGHUP makes file drains reopen their files.
async fn reopen_files_on_sighup(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reopening file drains");
                drains::writers::file::REOPEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(asked)
}
