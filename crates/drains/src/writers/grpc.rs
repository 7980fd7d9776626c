//! `grpc://` drains: batches of whole envelopes over Loggregator v2
//! `Ingress.Send` (unary: the answer means the receiver took the batch),
//! to another sluice (`sluice agent --forward`) or a Loggregator agent.
//! Nothing is rendered: source id, instance id, tags and timestamps reach
//! the receiver as they were. TLS when `ca=` names the CA, mutual with
//! `cert=`/`key=` (the files `sluice certs` writes), within the drain TLS
//! directories; the address is checked against the drain network policy
//! as every drain's is, and the channel connects to that address.

use std::sync::Arc;

use envelope::v2::EnvelopeBatch;
use envelope::Entry;
use grpc::ingress_server_glue::ingress_client::IngressClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::{
    host_port, DrainWriter, SendFuture, WriteError, WriterContext, CONNECT_TIMEOUT, WRITE_TIMEOUT,
};
use crate::spec::{GrpcTarget, TlsFiles};

struct GrpcWriter {
    client: IngressClient<Channel>,
    target: String,
    max_bytes: usize,
}

pub(super) async fn connect(
    ctx: &WriterContext,
    to: &GrpcTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let target = host_port(&to.endpoint.host, to.endpoint.port);
    let addrs = super::resolve(ctx, &to.endpoint).await?;
    let tls = to
        .tls
        .as_ref()
        .map(|files| {
            tls_config(
                ctx,
                files,
                to.server_name.as_deref().unwrap_or(&to.endpoint.host),
            )
        })
        .transpose()?;
    let mut errors = Vec::new();
    for addr in addrs {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| WriteError::Fatal(format!("grpc drain {target}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(WRITE_TIMEOUT)
            .tcp_nodelay(true);
        let endpoint = match &tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|e| WriteError::Fatal(format!("grpc drain {target}: TLS: {e}")))?,
            None => endpoint,
        };
        match endpoint.connect().await {
            Ok(channel) => {
                let client =
                    IngressClient::new(channel).max_encoding_message_size(grpc::serve::MAX_MESSAGE);
                return Ok(Box::new(GrpcWriter {
                    client,
                    target,
                    max_bytes: ctx.max_bytes(),
                }));
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(WriteError::Retry(format!(
        "cannot connect to {target}: {}",
        errors.join("; ")
    )))
}

/// The CA (and the client's certificate and key) from files the path
/// policy allows.
fn tls_config(
    ctx: &WriterContext,
    files: &TlsFiles,
    server_name: &str,
) -> Result<ClientTlsConfig, WriteError> {
    let read = |option: &'static str, path: &Option<std::path::PathBuf>| {
        path.as_deref()
            .map(|p| {
                let p = ctx
                    .paths
                    .tls_file(option, p, false)
                    .map_err(|e| WriteError::Fatal(e.to_string()))?;
                std::fs::read(&p)
                    .map_err(|e| WriteError::Fatal(format!("{option} file {}: {e}", p.display())))
            })
            .transpose()
    };
    let mut tls = ClientTlsConfig::new().domain_name(server_name.to_owned());
    if let Some(ca) = read("ca", &files.ca)? {
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    if let (Some(cert), Some(key)) = (read("cert", &files.cert)?, read("key", &files.key)?) {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(tls)
}

impl DrainWriter for GrpcWriter {
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(async move {
            // The front of the batch within max_bytes (at least one).
            let mut size = 0;
            let mut n = 0;
            for entry in batch {
                size += entry.envelope.approx_size();
                if n > 0 && size > self.max_bytes {
                    break;
                }
                n += 1;
            }
            let envelopes = EnvelopeBatch {
                batch: batch[..n].iter().map(|e| e.envelope.clone()).collect(),
            };
            match self.client.send(envelopes).await {
                Ok(_) => Ok(n),
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    Err(WriteError::Reject {
                        reason: format!("receiver refused the batch ({:?})", status.code()),
                        detail: format!(": {}", status.message()),
                    })
                }
                Err(status) => Err(WriteError::Retry(format!(
                    "{}: {:?}: {}",
                    self.target,
                    status.code(),
                    status.message()
                ))),
            }
        })
    }
}
