//! `sluice server`: read the config, apply flags, run until SIGTERM/SIGINT.

use std::net::SocketAddr;
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
    /// HTTP API, streams and ingest address [default: 127.0.0.1:8000].
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Syslog TCP and UDP ingest address [default: 127.0.0.1:5514].
    #[arg(long, value_name = "ADDR")]
    syslog: Option<SocketAddr>,
    /// Data directory [default: ./sluice-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Newest envelopes kept per source [default: 100000].
    #[arg(long, value_name = "N")]
    recent_max_per_source: Option<usize>,
    /// Memory budget of the recent store, in MiB [default: 512].
    #[arg(long, value_name = "MIB")]
    memory_budget_mb: Option<usize>,
    /// Address ranges drains may reach besides public ones, comma-separated
    /// CIDR (e.g. 127.0.0.0/8,10.0.0.0/8); added to [drains] allow_ranges.
    #[arg(long, value_name = "CIDRS", value_delimiter = ',')]
    allow_drain_ranges: Vec<String>,
    /// Directories file:// drains may write into, comma-separated; added to
    /// [drains] file_dirs (default: none, so file drains are refused).
    #[arg(long, value_name = "DIRS", value_delimiter = ',')]
    allow_file_dirs: Vec<PathBuf>,
    /// Bearer token for the HTTP API (repeatable; required off loopback).
    #[arg(long = "token", value_name = "TOKEN", env = "SLUICE_TOKEN")]
    tokens: Vec<String>,
}

impl ServerArgs {
    fn config(self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(http) = self.http {
            config.http.listen = http;
        }
        if let Some(syslog) = self.syslog {
            config.syslog.listen = syslog;
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(n) = self.recent_max_per_source {
            config.store.max_per_source = n;
        }
        if let Some(mb) = self.memory_budget_mb {
            config.store.memory_budget_mb = mb;
        }
        config.auth.tokens.extend(self.tokens);
        config.drains.allow_ranges.extend(self.allow_drain_ranges);
        config.drains.file_dirs.extend(self.allow_file_dirs);
        Ok(config)
    }
}

pub fn main(args: ServerArgs) -> Result<u8> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = args.config()?;
    let data_dir = config.data_dir.clone();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let server = Server::start(config, shutdown.clone()).await?;
        println!("sluice server listening");
        println!(
            "  http    http://{}  (try: curl -N http://{}/logs)",
            server.http_addr, server.http_addr
        );
        if let Some(addr) = server.syslog_tcp_addr {
            println!("  syslog  tcp {addr}");
        }
        if let Some(addr) = server.syslog_udp_addr {
            println!("  syslog  udp {addr}");
        }
        println!("  data    {}", data_dir.display());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown();
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
