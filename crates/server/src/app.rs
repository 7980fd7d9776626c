//! [`Server`]: opens the log, binds the listeners and wires ingest → log →
//! consumers (the live fan-out to the bus, drains, reads). Everything runs
//! until the shutdown token fires; then ingest stops accepting, drains
//! deliver what they hold, the bus closes (so live streams end), the HTTP
//! server finishes in-flight requests and the log is synced and closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drains::DrainManager;
use metrics::Metrics;
use router::{Bus, BusConfig};
use sluice_log::{DiskLog, Log};
use sources::IngestContext;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::http::{self, AppState};
use crate::log_tasks;

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
    #[error("cannot open the log in {path}: {source}")]
    Log {
        path: std::path::PathBuf,
        source: sluice_log::ApiError,
    },
}

/// How often retention runs (whole segments go once all they hold is old).
const RETENTION_PERIOD: Duration = Duration::from_secs(5);

/// A running server.
pub struct Server {
    /// Where the HTTP API listens (the real port when 0 was asked).
    pub http_addr: SocketAddr,
    /// Where syslog over TCP listens, if enabled.
    pub syslog_tcp_addr: Option<SocketAddr>,
    /// Where syslog over UDP listens, if enabled.
    pub syslog_udp_addr: Option<SocketAddr>,
    /// Where gRPC (`loggregator.v2.Ingress`) listens, if enabled.
    pub grpc_addr: Option<SocketAddr>,
    /// Where statsd (UDP) listens, if enabled.
    pub statsd_addr: Option<SocketAddr>,
    pub bus: Bus,
    pub log: Arc<dyn Log>,
    pub drains: DrainManager,
    ingest: IngestContext,
    agent_status: Arc<std::sync::OnceLock<http::AgentStatus>>,
    /// The disk log, closed (synced, unlocked) after every task ended.
    disk: Option<DiskLog>,
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
        // The log's own shutdown comes after the drains and streams stopped.
        let log_shutdown = CancellationToken::new();
        let opened = log_tasks::open_log(&config, &metrics, &log_shutdown)
            .await
            .map_err(|source| StartError::Log {
                path: config.data_dir.clone(),
                source,
            })?;
        let log = opened.log;
        let ingest = IngestContext::new(
            Arc::clone(&log),
            Arc::clone(&metrics),
            config.ingest_limits(),
        );
        let mut tasks = JoinSet::new();
        tasks.spawn(log_tasks::fan_out(
            Arc::clone(&log),
            bus.clone(),
            log_shutdown.clone(),
        ));
        tasks.spawn(ingest.clone().tell_rate_drops_until(shutdown.clone()));
        tasks.spawn(log_tasks::retain_every(
            Arc::clone(&log),
            RETENTION_PERIOD,
            shutdown.clone(),
        ));
        if let Some(disk) = &opened.disk {
            let stop = log_shutdown.clone();
            tasks.spawn(disk.sync_every(
                Duration::from_millis(config.log.fsync_ms.max(1)),
                async move { stop.cancelled().await },
            ));
        }

        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let http_listener = bind("http", config.http.listen).await?;
        let http_addr = local_addr(&http_listener, config.http.listen);
        // The real port (when 0 was asked), for the Host check.
        config.http.listen = http_addr;

        let (drains, problems) = match &opened.node {
            None => DrainManager::start(
                Arc::clone(&log),
                Arc::clone(&metrics),
                config.drains_config()?,
                shutdown.clone(),
            ),
            Some(node) => DrainManager::start_shared(
                Arc::clone(&log),
                Arc::clone(&metrics),
                config.drains_config()?,
                shutdown.clone(),
                node.definitions(),
                node.ownership(),
            ),
        };

        for problem in problems {
            warn!("{problem}");
        }
        // Drains find their place in the log before anything comes in.
        drains.placed(Duration::from_secs(5)).await;

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

        // One firehose for gRPC egress and `/v2/read`: shard groups span both.
        let egress_limits = grpc::EgressLimits {
            max_streams: config.grpc.max_egress_streams.max(1),
        };
        let egress = match &opened.node {
            None => grpc::EgressService::new(bus.clone(), egress_limits),
            Some(node) => {
                grpc::EgressService::shared(bus.clone(), egress_limits, node.shard_share())
            }
        };
        if let Some(node) = &opened.node {
            node.spawn_tasks(
                &mut tasks,
                drains.clone(),
                egress.clone(),
                Arc::clone(&metrics),
                http_addr.to_string(),
                shutdown.clone(),
            );
        }
        let mut grpc_addr = None;
        if config.grpc.enabled {
            let tls = config.grpc.load_tls()?;
            let listener = bind("grpc", config.grpc.listen).await?;
            grpc_addr = Some(local_addr(&listener, config.grpc.listen));
            let stop = shutdown.clone();
            let services = grpc::Services {
                ingest: ingest.clone(),
                egress: egress.clone(),
            };
            tasks.spawn(async move {
                let stopped = async move { stop.cancelled().await };
                let served = grpc::serve(listener, tls, services, stopped).await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the gRPC server stopped");
                }
            });
        }

        let health = Arc::new(crate::self_metrics::HealthHistory::default());
        if config.metrics.emit_interval_secs > 0 {
            tasks.spawn(crate::self_metrics::emit_every(
                ingest.clone(),
                Arc::clone(&log),
                Arc::clone(&health),
                Duration::from_secs(config.metrics.emit_interval_secs),
                shutdown.clone(),
            ));
        }

        let mut statsd_addr = None;
        if let Some(addr) = config.statsd.listen {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|source| StartError::Bind {
                    what: "statsd udp",
                    addr,
                    source,
                })?;
            statsd_addr = Some(socket.local_addr().unwrap_or(addr));
            tasks.spawn(sources::statsd::run(
                socket,
                ingest.clone(),
                shutdown.clone(),
            ));
        }

        tasks.spawn(reopen_files_on_sighup(shutdown.clone()));

        let state_ingest = ingest.clone();
        let mut state = AppState::new(
            &config,
            bus.clone(),
            Arc::clone(&log),
            ingest,
            drains.clone(),
            egress,
            Arc::clone(&health),
        );
        state.node = opened.node.clone();
        let agent_status = Arc::clone(&state.agent_status);
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
            log_shutdown.cancel();
            closing_bus.close();
        });

        info!(%http_addr, ?syslog_tcp_addr, ?syslog_udp_addr, ?grpc_addr, ?statsd_addr, "sluice server started");
        Ok(Server {
            http_addr,
            syslog_tcp_addr,
            syslog_udp_addr,
            grpc_addr,
            statsd_addr,
            bus,
            log,
            drains,
            ingest: state_ingest,
            agent_status,
            disk: opened.disk,
            shutdown,
            tasks,
        })
    }

    /// Stamps and appends a batch as every source does (tests, tools).
    pub async fn publish(
        &self,
        batch: Vec<envelope::Envelope>,
    ) -> Result<(), sluice_log::ApiError> {
        self.ingest.publish(batch).await
    }

    /// The door every source publishes through, for collectors that run
    /// beside the server (`sluice agent`).
    pub fn ingest(&self) -> IngestContext {
        self.ingest.clone()
    }

    /// Serves `report` at `GET /v1/agent` (once; later calls are ignored).
    pub fn set_agent_status(&self, report: http::AgentStatus) {
        let _ = self.agent_status.set(report);
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
        if let Some(disk) = self.disk.take() {
            if let Err(err) = disk.close().await {
                warn!(error = %err, "closing the log failed; the next start recovers it");
            }
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
