//! Connecting to NATS and making sure the stream and the buckets sluice
//! shares exist: [`ClusterConfig`] (from `sluice.toml` `[cluster]` and
//! `--nats`), [`Cluster::connect`].
//!
//! What the nodes share, all in JetStream (nothing else):
//! - the stream `SLUICE_LOG` (subjects `sluice.log.>`, [`crate::subject`]):
//!   the log, `max_age` 1 h, a per-subject cap (the per-source limit), a
//!   byte budget, a two-minute duplicate window for `Nats-Msg-Id`;
//! - KV `sluice_cursors`: each log consumer's committed cursor (drains);
//! - KV `sluice_drains`: drain definitions and saved formats;
//! - KV `sluice_leases`: which node delivers a drain (bucket `max_age` is
//!   the lease time, [`crate::lease`]);
//! - KV `sluice_nodes`: each node's heartbeat (alive, drains, ingest).
//!
//! A stream or bucket that exists already is used as it is (an operator
//! may have tuned it), so nodes of different configurations agree on one.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{Client, ConnectOptions};
use thiserror::Error;
use tracing::info;

/// Everything about the cluster a node is configured with.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// NATS URLs (`nats://host:4222`, `tls://…`); user and password or a
    /// token may be given in a URL.
    pub servers: Vec<String>,
    /// This node's name: unique in the cluster, stable across restarts.
    pub node_id: String,
    /// Stream and bucket replicas; `None`: 3, or the number of servers in
    /// the NATS cluster when fewer.
    pub replicas: Option<usize>,
    /// The stream's age limit.
    pub max_age: Duration,
    /// The stream's byte budget.
    pub max_bytes: i64,
    /// Messages kept per subject (per source) at most.
    pub max_per_subject: i64,
    /// How long a drain's lease lasts without renewal.
    pub lease: Duration,
    /// Bytes the node buffers while the stream does not acknowledge.
    pub buffer_bytes: usize,
    /// Recent entries kept in memory for readers that keep up.
    pub cache_bytes: usize,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A CA bundle for the servers' certificates (TLS to NATS).
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and key (mutual TLS to NATS).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Default lease time: a dead node's drains move within this (plus a
/// poll) — the 10 s takeover with room to spare.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

impl ClusterConfig {
    pub fn new(servers: Vec<String>, node_id: String) -> Self {
        ClusterConfig {
            servers,
            node_id,
            replicas: None,
            max_age: Duration::from_secs(3600),
            max_bytes: 8 << 30,
            max_per_subject: sluice_log::DEFAULT_MAX_PER_SOURCE as i64,
            lease: DEFAULT_LEASE,
            buffer_bytes: 64 << 20,
            cache_bytes: sluice_log::DEFAULT_CACHE_BYTES,
            user: None,
            password: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

pub const STREAM: &str = "SLUICE_LOG";
pub const SUBJECT_PREFIX: &str = "sluice.log";
pub const CURSORS: &str = "sluice_cursors";
pub const DRAINS: &str = "sluice_drains";
pub const LEASES: &str = "sluice_leases";
pub const NODES: &str = "sluice_nodes";
/// How long a starting node keeps trying to create or find the stream
/// and each bucket while JetStream settles.
const SETUP_PATIENCE: Duration = Duration::from_secs(60);
/// How often a node writes its heartbeat; it counts as gone after three
/// missed ones (the bucket's `max_age`).
pub const HEARTBEAT: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("no NATS server given (--nats nats://host:4222)")]
    NoServers,
    #[error("invalid node id {0:?}: use letters, digits, '-' and '_' (at most 64)")]
    NodeId(String),
    #[error("cannot connect to NATS at {servers}: {detail}")]
    Connect { servers: String, detail: String },
    #[error("NATS JetStream: {0}")]
    JetStream(String),
}

/// A connected node: the client, the JetStream context, the stream and the
/// buckets.
#[derive(Clone)]
pub struct Cluster {
    pub config: ClusterConfig,
    pub client: Client,
    pub js: jetstream::Context,
    pub stream: stream::Stream,
    pub cursors: kv::Store,
    pub drains: kv::Store,
    pub leases: kv::Store,
    pub nodes: kv::Store,
    pub replicas: usize,
}

impl Cluster {
    /// Connects (retrying in the background when the servers are not up
    /// yet: the first connect waits for them) and creates what is missing.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster, ConnectError> {
        if config.servers.is_empty() {
            return Err(ConnectError::NoServers);
        }
        if !valid_node_id(&config.node_id) {
            return Err(ConnectError::NodeId(config.node_id.clone()));
        }
        let servers = config.servers.join(",");
        let mut options = ConnectOptions::new()
            .name(format!("sluice-{}", config.node_id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(5)));
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &config.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let connect_err = |detail: String| ConnectError::Connect {
            servers: servers.clone(),
            detail,
        };
        let client = options
            .connect(config.servers.as_slice())
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        wait_connected(&client)
            .await
            .map_err(|_| connect_err("no server answered within 30 s".into()))?;
        let js = jetstream::new(client.clone());
        let peers = 1 + client.server_info().connect_urls.len();
        let replicas = config.replicas.unwrap_or(3).clamp(1, 5).min(peers.max(1));
        let stream = ensure_stream(&js, &config, replicas).await?;
        // Cursors are read from the stream leader: a direct get may be
        // answered by a replica that is behind, and a drain taken over
        // would resume from an older cursor (more duplicates).
        let cursors = ensure_bucket(&js, CURSORS, Duration::ZERO, replicas, false).await?;
        let drains = ensure_bucket(&js, DRAINS, Duration::ZERO, replicas, true).await?;
        let leases = ensure_bucket(&js, LEASES, config.lease, replicas, true).await?;
        let nodes = ensure_bucket(&js, NODES, HEARTBEAT * 3, replicas, true).await?;
        info!(
            servers = %servers,
            node = %config.node_id,
            replicas,
            "joined the cluster (NATS JetStream)"
        );
        Ok(Cluster {
            config,
            client,
            js,
            stream,
            cursors,
            drains,
            leases,
            nodes,
            replicas,
        })
    }

    /// Whether the client is connected to a server right now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// Node ids become KV keys and message ids.
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn wait_connected(client: &Client) -> Result<(), ()> {
    for _ in 0..300 {
        if client.connection_state() == async_nats::connection::State::Connected {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(())
}

async fn ensure_stream(
    js: &jetstream::Context,
    config: &ClusterConfig,
    replicas: usize,
) -> Result<stream::Stream, ConnectError> {
    let wanted = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        max_age: config.max_age,
        max_bytes: config.max_bytes,
        max_messages_per_subject: config.max_per_subject,
        duplicate_window: Duration::from_secs(120),
        num_replicas: replicas,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    };
    // Retried: right after a cluster forms, JetStream may have no meta
    // leader, or not know every peer yet ("no suitable peers for
    // placement"), for a while.
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + SETUP_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        match js.get_or_create_stream(wanted.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ConnectError::JetStream(format!(
        "cannot create or find stream {STREAM}: {last}"
    )))
}

/// A KV bucket's stream, made here rather than by the client's
/// `create_key_value`: that asks for the account's info first, and
/// async-nats 0.51 cannot parse nats-server 2.9's answer. The stream is the
/// one ADR-8 describes (what the client would have made): one subject
/// space `$KV.<bucket>.>`, history 1, rollups allowed, deletes only by
/// marker, and direct gets unless the bucket must be read consistently.
async fn ensure_bucket(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    replicas: usize,
    allow_direct: bool,
) -> Result<kv::Store, ConnectError> {
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_bytes: -1,
        max_message_size: -1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + SETUP_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(kv) = js.get_key_value(bucket).await {
            return Ok(kv);
        }
        if let Err(e) = js.create_stream(config.clone()).await {
            last = e.to_string();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(ConnectError::JetStream(format!(
        "cannot create or find bucket {bucket}: {last}"
    )))
}
