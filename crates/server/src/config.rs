//! `sluice.toml`: every setting with its default.
//!
//! The file is optional; every field has a default, and an unknown key is an
//! error that names the key (serde's `deny_unknown_fields`). Flags of
//! `sluice server` override the most used fields after the file is read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where config, drains and durable state live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub syslog: SyslogConfig,
    pub ingest: IngestConfig,
    pub log: LogSection,
    pub router: RouterConfig,
    pub drains: DrainsSection,
    pub auth: AuthConfig,
    pub grpc: GrpcConfig,
    pub statsd: StatsdConfig,
    pub metrics: MetricsConfig,
    pub cluster: ClusterSection,
    /// `[agent]`: read by `sluice agent` (files, sieve rules), which checks
    /// it; `sluice server` ignores it, so one file serves both.
    pub agent: toml::Table,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./sluice-data"),
            http: HttpConfig::default(),
            syslog: SyslogConfig::default(),
            ingest: IngestConfig::default(),
            log: LogSection::default(),
            router: RouterConfig::default(),
            drains: DrainsSection::default(),
            auth: AuthConfig::default(),
            grpc: GrpcConfig::default(),
            statsd: StatsdConfig::default(),
            metrics: MetricsConfig::default(),
            cluster: ClusterSection::default(),
            agent: toml::Table::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// HTTP API, streams and ingest.
    pub listen: SocketAddr,
    /// Seconds between heartbeats on an idle stream (NDJSON, SSE, WebSocket).
    pub heartbeat_secs: u64,
    /// Concurrent live streams; more are refused with 503.
    pub max_streams: usize,
    /// Concurrent HTTP connections. At the limit the oldest connection that
    /// has not yet sent a complete request is closed to make room (counted
    /// as `sluice_ingress_errors_total{reason="evicted"}`); when every
    /// connection is busy, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a whole request body.
    pub body_timeout_secs: u64,
    /// Seconds a `/v2/read` stream lives before `event: closing` (the RLP
    /// gateway's 14 minutes; clients reconnect).
    pub stream_timeout_secs: u64,
    /// Host names (with or without `:port`) served besides the loopback
    /// names. On a loopback listener only `localhost`, `127.0.0.0/8` and
    /// `[::1]` with the listener's port are served by default, which stops
    /// DNS rebinding; list the names a reverse proxy or remote clients use.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            heartbeat_secs: 15,
            max_streams: 1024,
            max_connections: 2048,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            stream_timeout_secs: 14 * 60,
            allowed_hosts: Vec::new(),
        }
    }
}

/// sluice's own metrics as envelopes in its stream (source `sluice`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Seconds between emissions; 0 turns them off (`/v1/health` then
    /// reports since the start).
    pub emit_interval_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            emit_interval_secs: 15,
        }
    }
}

/// statsd over UDP (statsd-injector's lines); off unless `listen` is set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsdConfig {
    pub listen: Option<SocketAddr>,
}

/// `loggregator.v2.Ingress` over gRPC (the Metron/agent port).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Serve gRPC at all.
    pub enabled: bool,
    pub listen: SocketAddr,
    /// PEM certificate (chain) and key of the server: TLS. Without them
    /// gRPC is plaintext, which is allowed on loopback only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM CA that client certificates must chain to: mutual TLS, every
    /// client must present one.
    pub tls_client_ca: Option<PathBuf>,
    /// Concurrent `Egress` streams; more get `ResourceExhausted`.
    pub max_egress_streams: usize,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_egress_streams: 500,
        }
    }
}

impl GrpcConfig {
    /// Checks the TLS settings go together and that plaintext is on
    /// loopback only.
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => Err(ConfigError::Invalid(
                "[grpc] tls_cert and tls_key go together".into(),
            )),
            (None, None) if self.tls_client_ca.is_some() => Err(ConfigError::Invalid(
                "[grpc] tls_client_ca needs tls_cert and tls_key".into(),
            )),
            (None, None) if !self.listen.ip().is_loopback() => Err(ConfigError::Invalid(format!(
                "gRPC on {} is not on loopback, so it needs TLS: set [grpc] tls_cert and tls_key (and tls_client_ca for mutual TLS; `sluice certs` writes them)",
                self.listen
            ))),
            _ => Ok(()),
        }
    }

    /// Reads the PEM files named; `None` for plaintext.
    pub fn load_tls(&self) -> Result<Option<grpc::GrpcTls>, ConfigError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })
        };
        Ok(Some(grpc::GrpcTls {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: self.tls_client_ca.as_ref().map(read).transpose()?,
        }))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// Syslog ingest address, for both TCP and UDP.
    pub listen: SocketAddr,
    /// Accept syslog over TCP.
    pub tcp: bool,
    /// Accept syslog over UDP.
    pub udp: bool,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5514)),
            tcp: true,
            udp: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Longest payload kept, in bytes; longer ones are truncated and counted.
    pub max_message: usize,
    /// Largest HTTP ingest body, in bytes (413 beyond).
    pub max_body: usize,
    /// Concurrent syslog TCP connections.
    pub max_connections: usize,
    /// Seconds a syslog TCP connection may stay silent before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a syslog TCP connection may spend on one frame (counted from
    /// its first byte); slower ones are closed and counted.
    pub frame_timeout_secs: u64,
    /// Bytes of HTTP request bodies buffered at once across all requests;
    /// beyond it requests get 503 with `Retry-After`.
    pub max_inflight_bytes: usize,
    /// Longest source id in bytes; longer ones are truncated and counted.
    pub max_source_id: usize,
    /// Longest instance id in bytes; longer ones are truncated and counted.
    pub max_instance_id: usize,
    /// Most tags per envelope; further tags are dropped and counted.
    pub max_tags: usize,
    /// Longest tag name in bytes; such tags are dropped and counted.
    pub max_tag_key: usize,
    /// Longest tag value in bytes; longer ones are truncated and counted.
    pub max_tag_value: usize,
    /// Largest UDP datagram read, in bytes.
    pub max_datagram: usize,
    /// Seconds a sender's timestamp may lie in the future before the
    /// receive time replaces it.
    pub max_future_skew_secs: u64,
    /// Seconds a sender's timestamp may lie in the past before the receive
    /// time replaces it.
    pub max_past_skew_secs: u64,
    /// Log lines per second one source (app) may send before lines are
    /// dropped (counted, and told in its stream once a second), on every
    /// ingest path; 0 turns the limit off.
    pub max_lines_per_second: u32,
    /// Lines a source may send at once above the rate.
    pub max_lines_burst: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        let d = sources::IngestLimits::default();
        IngestConfig {
            max_message: d.max_message,
            max_body: d.max_body,
            max_connections: d.max_connections,
            idle_timeout_secs: d.idle_timeout.as_secs(),
            frame_timeout_secs: d.frame_timeout.as_secs(),
            max_inflight_bytes: d.max_inflight_bytes,
            max_source_id: d.fields.max_source_id,
            max_instance_id: d.fields.max_instance_id,
            max_tags: d.fields.max_tags,
            max_tag_key: d.fields.max_tag_key,
            max_tag_value: d.fields.max_tag_value,
            max_datagram: d.max_datagram,
            max_future_skew_secs: d.max_future_skew.as_secs(),
            max_past_skew_secs: d.max_past_skew.as_secs(),
            max_lines_per_second: d.rate.lines_per_second,
            max_lines_burst: d.rate.burst,
        }
    }
}

/// Where the log keeps its entries.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogBackend {
    /// Segment files in `<data_dir>/log`, consumer cursors in
    /// `<data_dir>/cursors`: history and drains survive restarts.
    #[default]
    Disk,
    /// In memory: lost at exit (tests, diskless hosts).
    Memory,
}

/// `[log]`: the durable log every consumer reads (DESIGN.md §3).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub backend: LogBackend,
    /// Newest envelopes kept per source for reads and `--recent`.
    pub max_per_source: usize,
    /// Seconds of history kept (whole segments are deleted once all of
    /// their entries are older).
    pub max_age_secs: u64,
    /// Milliseconds between fsyncs: a machine crash loses at most this
    /// much of what was acknowledged (a crash of sluice alone loses none).
    pub fsync_ms: u64,
    /// Disk budget of the segments, in MiB; the oldest go first.
    pub max_disk_mb: u64,
    /// Ingest stops (drop, count, tell) while the file system has less
    /// free space than this, in MiB (0: never).
    pub min_free_disk_mb: u64,
    /// Memory for the index and the cache of recent entries (disk), or
    /// for everything (memory), in MiB.
    pub memory_mb: u64,
    /// Write segments with `O_DIRECT`, past the page cache (disk backend;
    /// buffered where the file system refuses it). See
    /// `crates/log/src/direct.rs`.
    pub direct_io: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            backend: LogBackend::Disk,
            max_per_source: sluice_log::DEFAULT_MAX_PER_SOURCE,
            max_age_secs: 3600,
            fsync_ms: 500,
            max_disk_mb: 4096,
            min_free_disk_mb: 256,
            memory_mb: 256,
            direct_io: true,
        }
    }
}

/// `[cluster]`: several nodes over NATS JetStream (DESIGN.md §3). Empty
/// `nats` (the default) keeps the embedded log.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// NATS server URLs (`nats://n1:4222`); any one is enough to join.
    pub nats: Vec<String>,
    /// This node's name, unique in the cluster and kept across restarts
    /// (required with `nats`).
    pub node_id: String,
    /// Replicas of the stream and buckets [default: 3, or the number of
    /// NATS servers when fewer].
    pub replicas: Option<usize>,
    /// Seconds a drain's lease lasts without renewal: a dead node's
    /// drains move to another within about this.
    pub lease_secs: f64,
    /// MiB a node buffers while NATS does not acknowledge; the oldest are
    /// dropped (counted, told) beyond it.
    pub buffer_mb: u64,
    /// NATS credentials: user and password, or a token.
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// TLS to NATS: a CA bundle, and a client certificate and key for
    /// mutual TLS.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            nats: Vec::new(),
            node_id: String::new(),
            replicas: None,
            lease_secs: cluster::connect::DEFAULT_LEASE.as_secs_f64(),
            buffer_mb: 64,
            user: None,
            password: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Queue depth per consumer (streams, drains); the oldest are dropped
    /// beyond it and the loss is told in-band.
    pub queue_capacity: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            queue_capacity: router::BusConfig::default().queue_capacity,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrainsSection {
    /// Address ranges drains may reach besides public addresses (CIDR).
    /// Loopback, link-local, private and metadata addresses are refused
    /// unless listed; 169.254.169.254 only when named exactly.
    pub allow_ranges: Vec<String>,
    /// Drains per app at most.
    pub per_app_limit: usize,
    /// Drains in all at most.
    pub max_drains: usize,
    /// Queue depth per drain; the oldest are dropped beyond it, counted and
    /// told in the app's stream.
    pub queue_capacity: usize,
    /// Directories `file://` drains may write into (and below). Empty (the
    /// default) refuses every file drain, so an API caller can never name an
    /// arbitrary file. Flag: `--allow-file-dirs DIR,…`.
    pub file_dirs: Vec<PathBuf>,
    /// Directories `?ca=`, `?cert=` and `?key=` of drain URLs may read
    /// from. Empty (the default) means `<data_dir>/tls`.
    pub tls_dirs: Vec<PathBuf>,
    /// Standing routes, as logspout takes them on its command line
    /// (`sluice server syslog://host:514 …`, or `ROUTE_URIS`): drain URLs
    /// (any drain scheme, logspout's adapter schemes included) that deliver
    /// every app's logs (`drain-type=logs` unless the URL says otherwise)
    /// for as long as the server runs, as drains `route.1`, `route.2`…
    /// They are not persisted, cannot be deleted over the API, and, being
    /// the operator's own, may reach any address (not the metadata
    /// address unless `allow_ranges` names it).
    pub routes: Vec<String>,
    /// Longest rendered record in bytes (a formatted line, syslog message
    /// or JSON object); longer ones are truncated and counted.
    pub max_record: usize,
}

impl Default for DrainsSection {
    fn default() -> Self {
        DrainsSection {
            allow_ranges: Vec::new(),
            per_app_limit: 5,
            max_drains: 10_000,
            queue_capacity: 10_000,
            file_dirs: Vec::new(),
            tls_dirs: Vec::new(),
            routes: Vec::new(),
            max_record: 64 * 1024,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "AuthFile")]
pub struct AuthConfig {
    /// Admin bearer tokens of the HTTP API: the plain `tokens = [...]`
    /// list, `--token`, and `[[auth.tokens]]` with `scopes = ["logs.admin"]`
    /// (or `doppler.firehose`). Required as soon as any listener is off
    /// loopback (or app tokens); optional (and then enforced) on loopback.
    pub tokens: Vec<String>,
    /// App tokens: `[[auth.tokens]]` with `source_ids` and/or `apps`; they
    /// read and manage only those sources.
    pub app_tokens: Vec<AppToken>,
}

/// A token that sees only some sources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppToken {
    pub token: String,
    /// Source ids and app names (an app name matches the `app_name` tag).
    pub sources: Vec<String>,
}

/// Scopes that make a token an admin (Loggregator's and UAA's names).
pub const ADMIN_SCOPES: [&str; 2] = ["logs.admin", "doppler.firehose"];

/// `[auth]` as written: `tokens` holds strings (admin) and/or tables.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AuthFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenEntry {
    Plain(String),
    Scoped(ScopedToken),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopedToken {
    token: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    source_ids: Vec<String>,
    #[serde(default)]
    apps: Vec<String>,
}

impl From<AuthFile> for AuthConfig {
    fn from(file: AuthFile) -> Self {
        let mut auth = AuthConfig::default();
        for entry in file.tokens {
            match entry {
                TokenEntry::Plain(t) => auth.tokens.push(t),
                TokenEntry::Scoped(s)
                    if s.scopes.iter().any(|x| ADMIN_SCOPES.contains(&x.as_str())) =>
                {
                    auth.tokens.push(s.token)
                }
                TokenEntry::Scoped(s) => auth.app_tokens.push(AppToken {
                    token: s.token,
                    sources: s.source_ids.into_iter().chain(s.apps).collect(),
                }),
            }
        }
        auth
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text; the error names the offending key.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Checks cross-field rules: tokens are required off loopback.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let statsd = self.statsd.listen.map(|a| ("statsd", a));
        let exposed: Vec<String> = [("http", self.http.listen), ("syslog", self.syslog.listen)]
            .into_iter()
            .chain(statsd)
            .filter(|(_, addr)| !addr.ip().is_loopback())
            .map(|(name, addr)| format!("{name} on {addr}"))
            .collect();
        if !exposed.is_empty() && self.auth.tokens.is_empty() && self.auth.app_tokens.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{} is not on loopback, so auth tokens are required: set [auth] tokens in sluice.toml or pass --token",
                exposed.join(" and ")
            )));
        }
        drains::netpolicy::NetPolicy::new(&self.drains.allow_ranges)
            .map_err(|e| ConfigError::Invalid(format!("[drains] allow_ranges: {e}")))?;
        self.grpc.validate()?;
        let all_tokens = self
            .auth
            .tokens
            .iter()
            .chain(self.auth.app_tokens.iter().map(|a| &a.token));
        if all_tokens.into_iter().any(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "auth tokens must be at least 16 characters".into(),
            ));
        }
        if let Some(a) = self.auth.app_tokens.iter().find(|a| a.sources.is_empty()) {
            return Err(ConfigError::Invalid(format!(
                "[[auth.tokens]] {}…: give scopes = [\"logs.admin\"] or the source_ids/apps it may read",
                a.token.chars().take(4).collect::<String>()
            )));
        }
        Ok(())
    }

    pub fn ingest_limits(&self) -> sources::IngestLimits {
        let i = &self.ingest;
        sources::IngestLimits {
            max_message: i.max_message.max(1),
            max_body: i.max_body.max(1),
            max_connections: i.max_connections.max(1),
            idle_timeout: Duration::from_secs(i.idle_timeout_secs.max(1)),
            frame_timeout: Duration::from_secs(i.frame_timeout_secs.max(1)),
            max_inflight_bytes: i.max_inflight_bytes.max(i.max_body.max(1)),
            fields: sources::limits::FieldLimits {
                max_source_id: i.max_source_id.max(1),
                max_instance_id: i.max_instance_id.max(1),
                max_tags: i.max_tags,
                max_tag_key: i.max_tag_key.max(1),
                max_tag_value: i.max_tag_value.max(1),
            },
            max_datagram: i.max_datagram.max(512),
            max_future_skew: Duration::from_secs(i.max_future_skew_secs),
            max_past_skew: Duration::from_secs(i.max_past_skew_secs),
            rate: sources::rate::RateLimit {
                lines_per_second: i.max_lines_per_second,
                burst: i.max_lines_burst,
            },
        }
    }

    /// The drain settings; a standing route (`[drains] routes`) whose URL
    /// does not parse stops the start, naming it (secrets masked).
    pub fn drains_config(&self) -> Result<drains::manager::DrainsConfig, ConfigError> {
        let policy = drains::netpolicy::NetPolicy::new(&self.drains.allow_ranges)
            .map_err(|e| ConfigError::Invalid(format!("[drains] allow_ranges: {e}")))?;
        for (i, route) in self.drains.routes.iter().enumerate() {
            drains::DrainUrl::parse(route).map_err(|e| {
                ConfigError::Invalid(format!("route {} ([drains] routes): {e}", i + 1))
            })?;
        }
        Ok(drains::manager::DrainsConfig {
            data_dir: self.data_dir.clone(),
            queue_capacity: self.drains.queue_capacity.max(1),
            per_app_limit: self.drains.per_app_limit,
            max_drains: self.drains.max_drains,
            policy: std::sync::Arc::new(policy),
            file_dirs: self.drains.file_dirs.clone(),
            tls_dirs: self.drains.tls_dirs.clone(),
            max_record: self.drains.max_record.max(drains::manager::MIN_MAX_RECORD),
            routes: self.drains.routes.clone(),
        })
    }

    /// The in-memory log's limits (`backend = "memory"`).
    /// The cluster to join, when `[cluster] nats` names servers.
    pub fn cluster_config(&self) -> Result<Option<cluster::ClusterConfig>, ConfigError> {
        let c = &self.cluster;
        if c.nats.is_empty() {
            return Ok(None);
        }
        if c.node_id.is_empty() {
            return Err(ConfigError::Invalid(
                "[cluster] node_id (--node-id) is needed with nats: a name for this node, unique in the cluster".into(),
            ));
        }
        let node_id = c.node_id.clone();
        if !cluster::connect::valid_node_id(&node_id) {
            return Err(ConfigError::Invalid(format!(
                "[cluster] node_id {node_id:?}: use letters, digits, '-' and '_' (at most 64)"
            )));
        }
        if !(c.lease_secs.is_finite() && (0.5..=300.0).contains(&c.lease_secs)) {
            return Err(ConfigError::Invalid(
                "[cluster] lease_secs: between 0.5 and 300".into(),
            ));
        }
        let mut out = cluster::ClusterConfig::new(c.nats.clone(), node_id);
        out.replicas = c.replicas;
        out.lease = std::time::Duration::from_secs_f64(c.lease_secs);
        out.buffer_bytes = (c.buffer_mb.max(1) as usize).saturating_mul(1 << 20);
        out.max_age = std::time::Duration::from_secs(self.log.max_age_secs.max(1));
        out.max_bytes = (self.log.max_disk_mb.max(1) as i64).saturating_mul(1 << 20);
        out.max_per_subject = self.log.max_per_source.max(1) as i64;
        out.cache_bytes = (self.log.memory_mb as usize).saturating_mul(1 << 20) / 2;
        out.user = c.user.clone();
        out.password = c.password.clone();
        out.token = c.token.clone();
        out.tls_ca = c.tls_ca.clone();
        out.tls_cert = c.tls_cert.clone();
        out.tls_key = c.tls_key.clone();
        Ok(Some(out))
    }

    pub fn memory_log_config(&self) -> sluice_log::MemoryLogConfig {
        sluice_log::MemoryLogConfig {
            max_per_source: self.log.max_per_source.max(1),
            max_age_ns: Some(self.log_max_age_ns()),
            max_bytes: Some(self.log.memory_mb.max(1) << 20),
            ..Default::default()
        }
    }

    /// The disk log's layout and limits (`backend = "disk"`).
    pub fn disk_log_config(&self) -> sluice_log::DiskLogConfig {
        let mut c = sluice_log::DiskLogConfig::new(&self.data_dir);
        c.storage.max_per_source = self.log.max_per_source.max(1);
        // A clean shutdown leaves the index for the next start (4M
        // records: 0.14 s instead of 1.1 s); anything stale or damaged is
        // ignored and the segments are scanned as after a crash.
        c.storage.index_checkpoint = true;
        c.storage.direct_io = self.log.direct_io;
        c.retention.max_age_ns = Some(self.log_max_age_ns());
        c.retention.max_bytes = Some(self.log.max_disk_mb.max(1).saturating_mul(1 << 20));
        c.min_free_disk_bytes = self.log.min_free_disk_mb.saturating_mul(1 << 20);
        // A quarter of the memory budget caches the newest entries (what
        // live tails and caught-up drains read); the rest is the index's.
        c.cache_bytes =
            usize::try_from((self.log.memory_mb.max(4) << 20) / 4).unwrap_or(usize::MAX);
        c
    }

    fn log_max_age_ns(&self) -> i64 {
        i64::try_from(self.log.max_age_secs.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.http.listen.port(), 8000);
        assert_eq!(c.syslog.listen.port(), 5514);
        assert_eq!(c.log.max_per_source, 100_000);
        assert_eq!(c.log.backend, LogBackend::Disk);
        assert_eq!((c.log.fsync_ms, c.log.max_disk_mb), (500, 4096));
        assert_eq!(c.router.queue_capacity, 10_000);
        assert_eq!(c.ingest.max_message, 65_536);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[log]\nmax_per_sorce = 5\n").unwrap_err();
        assert!(err.contains("max_per_sorce"), "{err}");
        let err = Config::parse("colour = 1\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn exposed_listener_needs_tokens() {
        let mut c = Config::parse("[http]\nlisten = \"0.0.0.0:8000\"\n").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("http on 0.0.0.0:8000"), "{err}");
        c.auth.tokens = vec!["0123456789abcdef".into()];
        c.validate().unwrap();
    }
}
