//! `sluice server`: read the config, apply flags, run until SIGTERM/SIGINT.
//!
//! Standing routes come as logspout takes them: drain URLs as positional
//! arguments (`sluice server syslog://logs.example.com:514 tcp://…`) and in
//! `ROUTE_URIS` (comma-separated); both go to `[drains] routes`.
//! `--http` and `--syslog` take `HOST:PORT` with a host name as well as an
//! address; the name is resolved once, at start.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use server::{Config, Server};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// sluice.toml to read (every field optional; unknown keys are errors).
    #[arg(long, short = 'c', env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP API, streams and ingest address, HOST:PORT (a host name is
    /// resolved at start, IPv4 preferred) [default: 127.0.0.1:8000].
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Syslog TCP and UDP ingest address, HOST:PORT [default: 127.0.0.1:5514].
    #[arg(long, value_name = "ADDR")]
    syslog: Option<String>,
    /// gRPC (`loggregator.v2.Ingress`) address, HOST:PORT, or `off`
    /// [default: 127.0.0.1:8082]; TLS and mutual TLS are set in `[grpc]`.
    #[arg(long, value_name = "ADDR")]
    grpc: Option<String>,
    /// statsd UDP address, HOST:PORT (statsd-injector's lines) [default: off].
    #[arg(long, value_name = "ADDR")]
    statsd: Option<String>,
    /// Data directory [default: ./sluice-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log lines per second one app (source id) may send before lines are
    /// dropped (counted, and told in its stream once a second); 0 turns
    /// the limit off [default: `[ingest] max_lines_per_second`, 1000].
    #[arg(long, value_name = "N")]
    max_lines_per_second: Option<u32>,
    /// Lines an app may send at once above the rate [default: `[ingest]
    /// max_lines_burst`, 10000].
    #[arg(long, value_name = "N")]
    max_lines_burst: Option<u32>,
    /// Newest envelopes kept per source [default: 100000].
    #[arg(long, value_name = "N")]
    recent_max_per_source: Option<usize>,
    /// Memory for the log's index and recent-entry cache (disk), or for
    /// all history (memory), in MiB [default: 256].
    #[arg(long, value_name = "MIB", alias = "memory-budget-mb")]
    memory_mb: Option<u64>,
    /// Where history and drain positions live: `disk` (in --data-dir,
    /// survives restarts) or `memory` [default: disk].
    #[arg(long, value_name = "BACKEND")]
    log_backend: Option<LogBackendArg>,
    /// Join a cluster: NATS server URLs with JetStream, comma-separated
    /// (nats://n1:4222,nats://n2:4222); the log, drains and their owners
    /// then live in JetStream [default: `[cluster] nats`; none: one node].
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    nats: Vec<String>,
    /// This node's name in the cluster, unique and kept across restarts
    /// [default: `[cluster] node_id`].
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,
    /// Address ranges drains may reach besides public ones, comma-separated
    /// CIDR (e.g. 127.0.0.0/8,10.0.0.0/8); added to [drains] allow_ranges.
    #[arg(long, value_name = "CIDRS", value_delimiter = ',')]
    allow_drain_ranges: Vec<String>,
    /// Directories file:// drains may write into, comma-separated; added to
    /// [drains] file_dirs (default: none, so file drains are refused).
    #[arg(long, value_name = "DIRS", value_delimiter = ',')]
    allow_file_dirs: Vec<PathBuf>,
    /// Directories ?ca=, ?cert= and ?key= of drain URLs may read from,
    /// comma-separated; added to [drains] tls_dirs (default: <data-dir>/tls).
    #[arg(long, value_name = "DIRS", value_delimiter = ',')]
    allow_tls_dirs: Vec<PathBuf>,
    /// Bearer token the HTTP API accepts (repeatable; required off
    /// loopback). Added to [auth] tokens and to $SLUICE_SERVER_TOKENS
    /// (comma-separated); $SLUICE_TOKEN is the client commands' and is not
    /// read here.
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// Standing routes, as logspout takes them: drain URLs that get every
    /// app's logs while the server runs (syslog://host:514,
    /// syslog+tls://…, tcp://…, https://…); added to [drains] routes and to
    /// $ROUTE_URIS (comma-separated).
    #[arg(value_name = "ROUTE")]
    routes: Vec<String>,
}

/// The environment variable logspout reads its routes from.
pub const ROUTES_ENV: &str = "ROUTE_URIS";

/// The environment variable the server reads tokens from. Not
/// `SLUICE_TOKEN`: that one is exported for the client commands, and a
/// client's token must not turn on (or break) auth on a local server.
pub const SERVER_TOKENS_ENV: &str = "SLUICE_SERVER_TOKENS";

/// Tokens from the value of [`SERVER_TOKENS_ENV`]: comma-separated, blanks
/// around them ignored, empty entries skipped.
fn tokens_from_env(value: Option<std::ffi::OsString>) -> Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(value) = value.to_str() else {
        anyhow::bail!("{SERVER_TOKENS_ENV} is not valid UTF-8");
    };
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Routes from the value of [`ROUTES_ENV`]: comma-separated, as logspout
/// reads them; blanks around them ignored, empty entries skipped.
fn routes_from_env(value: Option<std::ffi::OsString>) -> Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(value) = value.to_str() else {
        anyhow::bail!("{ROUTES_ENV} is not valid UTF-8");
    };
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A listen address from `--FLAG HOST:PORT`: an address as is, else the
/// host name resolved (its first IPv4 address, else its first one), so
/// `--http localhost:8000` listens where `curl localhost:8000` looks first
/// on most systems and where the default 127.0.0.1 was.
fn listen_addr(flag: &str, value: &str) -> Result<SocketAddr> {
    let value = value.trim();
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        anyhow::bail!("--{flag} {value:?}: expected HOST:PORT, e.g. localhost:8000");
    };
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("--{flag} {value:?}: invalid port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        anyhow::bail!("--{flag} {value:?}: no host; use e.g. 0.0.0.0:{port} or localhost:{port}");
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("--{flag} {value:?}: cannot resolve {host:?}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("--{flag} {value:?}: {host:?} has no address"))
}

impl ServerArgs {
    fn config(self, env_tokens: Vec<String>, env_routes: Vec<String>) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(http) = &self.http {
            config.http.listen = listen_addr("http", http)?;
        }
        if let Some(syslog) = &self.syslog {
            config.syslog.listen = listen_addr("syslog", syslog)?;
        }
        match self.grpc.as_deref() {
            Some("off") => config.grpc.enabled = false,
            Some(grpc) => {
                config.grpc.enabled = true;
                config.grpc.listen = listen_addr("grpc", grpc)?;
            }
            None => {}
        }
        if let Some(statsd) = &self.statsd {
            config.statsd.listen = Some(listen_addr("statsd", statsd)?);
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(n) = self.max_lines_per_second {
            config.ingest.max_lines_per_second = n;
        }
        if let Some(n) = self.max_lines_burst {
            config.ingest.max_lines_burst = n;
        }
        if let Some(n) = self.recent_max_per_source {
            config.log.max_per_source = n;
        }
        if let Some(mb) = self.memory_mb {
            config.log.memory_mb = mb;
        }
        if let Some(backend) = self.log_backend {
            config.log.backend = match backend {
                LogBackendArg::Disk => server::config::LogBackend::Disk,
                LogBackendArg::Memory => server::config::LogBackend::Memory,
            };
        }
        if !self.nats.is_empty() {
            config.cluster.nats = self.nats;
        }
        if let Some(node_id) = self.node_id {
            config.cluster.node_id = node_id;
        }
        config.auth.tokens.extend(self.tokens);
        config.auth.tokens.extend(env_tokens);
        config.drains.allow_ranges.extend(self.allow_drain_ranges);
        config.drains.file_dirs.extend(self.allow_file_dirs);
        config.drains.tls_dirs.extend(self.allow_tls_dirs);
        config.drains.routes.extend(self.routes);
        config.drains.routes.extend(env_routes);
        Ok(config)
    }
}

/// `--log-backend`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogBackendArg {
    Disk,
    Memory,
}

pub fn main(args: ServerArgs) -> Result<u8> {
    init_tracing();
    let config = args.resolve()?;
    run_with("server", config, |_, _| Ok(Vec::new()))
}

/// Logs to stderr, filtered by `$SLUICE_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

impl ServerArgs {
    /// The config: the file, then flags, then the environment's tokens and
    /// routes.
    pub fn resolve(self) -> Result<Config> {
        let config = self.config(
            tokens_from_env(std::env::var_os(SERVER_TOKENS_ENV))?,
            routes_from_env(std::env::var_os(ROUTES_ENV))?,
        )?;
        if config.auth.tokens.is_empty() && std::env::var_os("SLUICE_TOKEN").is_some() {
            tracing::warn!(
                "SLUICE_TOKEN is the client commands' token and is not read by the server; \
                 use --token or {SERVER_TOKENS_ENV} to require one"
            );
        }
        Ok(config)
    }
}

/// Runs the server until SIGTERM/SIGINT. `beside` starts what runs with
/// it (`sluice agent`'s collectors): tasks that end once shutdown fires,
/// awaited before the server closes its log, each with a banner line.
pub fn run_with(
    command: &str,
    config: Config,
    beside: impl FnOnce(
        &Server,
        CancellationToken,
    ) -> Result<Vec<(tokio::task::JoinHandle<()>, String)>>,
) -> Result<u8> {
    let data_dir = config.data_dir.clone();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let server = Server::start(config, shutdown.clone()).await?;
        let started = match beside(&server, shutdown.clone()) {
            Ok(started) => started,
            Err(err) => {
                server.shutdown();
                server.wait(Duration::from_secs(5)).await;
                return Err(err);
            }
        };
        // Written, not println!: a closed stdout must not stop the server.
        let mut banner = format!(
            "sluice {} listening\n  http    http://{}  (try: curl -N http://{}/logs)\n",
            command, server.http_addr, server.http_addr
        );
        if let Some(addr) = server.syslog_tcp_addr {
            banner.push_str(&format!("  syslog  tcp {addr}\n"));
        }
        if let Some(addr) = server.syslog_udp_addr {
            banner.push_str(&format!("  syslog  udp {addr}\n"));
        }
        if let Some(addr) = server.grpc_addr {
            banner.push_str(&format!("  grpc    {addr}\n"));
        }
        if let Some(addr) = server.statsd_addr {
            banner.push_str(&format!("  statsd  udp {addr}\n"));
        }
        for (_, line) in &started {
            banner.push_str(&format!("  {line}\n"));
        }
        banner.push_str(&format!("  data    {}\n", data_dir.display()));
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|()| stdout.flush());
        drop(stdout);
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown();
        for (task, _) in started {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        server.wait(Duration::from_secs(5)).await;
        Ok::<_, anyhow::Error>(())
    })?;
    // Don't wait on tasks that ignored the deadline.
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(0)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn server_tokens_env_is_comma_separated() {
        assert!(tokens_from_env(None).unwrap().is_empty());
        assert!(tokens_from_env(Some("".into())).unwrap().is_empty());
        assert_eq!(
            tokens_from_env(Some(" aaaaaaaaaaaaaaaa, ,bbbbbbbbbbbbbbbb,".into())).unwrap(),
            ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]
        );
        use std::os::unix::ffi::OsStringExt as _;
        let bad = std::ffi::OsString::from_vec(vec![0xff, b'a']);
        assert!(tokens_from_env(Some(bad)).is_err());
    }

    #[test]
    fn tokens_come_from_flags_config_and_server_env() {
        let args = Cli::try_parse_from(["server", "--token", "from-the-flag-0001"])
            .unwrap()
            .server;
        let config = args
            .config(vec!["from-the-env-00001".into()], Vec::new())
            .unwrap();
        assert_eq!(
            config.auth.tokens,
            ["from-the-flag-0001", "from-the-env-00001"]
        );
        let args = Cli::try_parse_from(["server"]).unwrap().server;
        assert!(args
            .config(Vec::new(), Vec::new())
            .unwrap()
            .auth
            .tokens
            .is_empty());
    }

    #[test]
    fn routes_come_from_arguments_and_route_uris() {
        assert!(routes_from_env(None).unwrap().is_empty());
        assert_eq!(
            routes_from_env(Some(" syslog://a:514, ,tcp://b:1,".into())).unwrap(),
            ["syslog://a:514", "tcp://b:1"]
        );
        let args = Cli::try_parse_from([
            "server",
            "--http",
            "127.0.0.1:0",
            "syslog+tls://logs.example.com:6514",
            "raw://10.0.0.1:9000",
        ])
        .unwrap()
        .server;
        let config = args.config(Vec::new(), vec!["udp://c:2".into()]).unwrap();
        assert_eq!(
            config.drains.routes,
            [
                "syslog+tls://logs.example.com:6514",
                "raw://10.0.0.1:9000",
                "udp://c:2"
            ]
        );
    }

    #[test]
    fn listen_addresses_take_host_names() {
        assert_eq!(
            listen_addr("http", "127.0.0.1:8000").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 8000))
        );
        assert_eq!(
            listen_addr("http", "[::1]:80").unwrap(),
            "[::1]:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            listen_addr("http", "localhost:8000").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 8000))
        );
        let err = listen_addr("syslog", "no-such-host.invalid:5514").unwrap_err();
        assert!(format!("{err:#}").starts_with("--syslog"), "{err:#}");
        for bad in ["localhost", "localhost:http", ":8000", "localhost:99999"] {
            let err = listen_addr("http", bad).unwrap_err();
            assert!(format!("{err:#}").contains("--http"), "{bad}: {err:#}");
        }
    }
}
