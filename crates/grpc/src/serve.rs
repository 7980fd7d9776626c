//! The gRPC listener: the Ingress and Egress services over plaintext HTTP/2 or TLS,
//! with client certificates required when a client CA is given (mutual
//! TLS, as every Loggregator link is). TLS 1.2 and 1.3, rustls with ring.
//! Where plaintext is allowed (loopback only) is the server config's rule.
//!
//! Bounds on what a client can make the server hold: messages up to
//! [`MAX_MESSAGE`] (Loggregator's 10 MiB), [`MAX_STREAMS`] concurrent
//! streams per connection, HTTP/2 receive windows of [`STREAM_WINDOW`] and
//! [`CONNECTION_WINDOW`], keepalive pings so dead peers are
//! noticed, and the ingest context's own limits on every field.

use std::future::Future;
use std::time::Duration;

use sources::IngestContext;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::egress::EgressService;
use crate::ingress::IngressService;
use crate::ingress_server_glue::egress_server::EgressServer;
use crate::ingress_server_glue::ingress_server::IngressServer;

/// The largest gRPC message taken (Loggregator's limit).
pub const MAX_MESSAGE: usize = 10 << 20;
/// Concurrent streams per connection.
pub const MAX_STREAMS: u32 = 100;
/// HTTP/2 receive windows: what one stream, and one connection in all,
/// may send before the server reads on. h2's default (64 KiB) lets a
/// `BatchSender` client have about two batches of 100 in flight, so client
/// and server take turns instead of working at once; these let a client
/// keep a few dozen batches in flight while bounding what a connection can
/// make the server buffer.
pub const STREAM_WINDOW: u32 = 2 << 20;
pub const CONNECTION_WINDOW: u32 = 4 << 20;
/// The largest HTTP/2 frame a client may send: a batch of a hundred
/// envelopes (~30 KB) goes in one DATA frame rather than two of h2's
/// default 16 KiB, and is read in fewer, larger reads.
pub const MAX_FRAME: u32 = 256 << 10;

/// The server's certificate and key, and the CA client certificates must
/// chain to (mutual TLS); all PEM.
#[derive(Clone, Debug)]
pub struct GrpcTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC TLS: {0}")]
    Tls(tonic::transport::Error),
    #[error("gRPC server: {0}")]
    Serve(tonic::transport::Error),
}

/// What the services serve from: ingest appends to the log, egress reads
/// the live bus.
pub struct Services {
    pub ingest: IngestContext,
    /// Shared with the HTTP API's `/v2/read`: shard groups span both.
    pub egress: EgressService,
}

/// Serves `loggregator.v2.Ingress` and `Egress` on `listener` until
/// `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<GrpcTls>,
    services: Services,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut builder = Server::builder()
        .max_concurrent_streams(MAX_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(config).map_err(ServeError::Tls)?;
    }
    let ingress = IngressServer::new(IngressService::new(services.ingest))
        .max_decoding_message_size(MAX_MESSAGE);
    let egress = EgressServer::new(services.egress)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    builder
        .add_service(ingress)
        .add_service(egress)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(ServeError::Serve)
}
