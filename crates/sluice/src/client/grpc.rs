//! The gRPC side of the client commands (`sluice emit`, `sluice nozzle`):
//! the `--target`/`--tls-dir`/`--server-name` flags and the channel they
//! describe, plaintext or mutual TLS with the files `sluice certs` writes.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Where a gRPC client connects, and how.
#[derive(clap::Args, Debug, Clone)]
pub struct GrpcTarget {
    /// Where: HOST:PORT of the listener
    #[arg(long, value_name = "HOST:PORT")]
    pub target: String,
    /// ca.crt, client.crt, client.key (from `sluice certs`) for mutual TLS
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Server name to check on the certificate
    #[arg(long, default_value = "metron")]
    pub server_name: String,
}

impl GrpcTarget {
    /// One connected channel (HTTP/2, `TCP_NODELAY`).
    pub async fn connect(&self) -> Result<Channel> {
        let scheme = if self.tls_dir.is_some() {
            "https"
        } else {
            "http"
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.target))
            .context("--target")?
            .tcp_nodelay(true)
            // The server's windows (see `grpc::serve`): a nozzle reads
            // batches without a window update between each two.
            .initial_stream_window_size(grpc::serve::STREAM_WINDOW)
            .initial_connection_window_size(grpc::serve::CONNECTION_WINDOW);
        if let Some(dir) = &self.tls_dir {
            let read = |f: &str| {
                std::fs::read(dir.join(f))
                    .with_context(|| format!("reading {}", dir.join(f).display()))
            };
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("ca.crt")?))
                .identity(Identity::from_pem(read("client.crt")?, read("client.key")?))
                .domain_name(self.server_name.clone());
            endpoint = endpoint.tls_config(tls).context("TLS")?;
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.target))
    }
}
