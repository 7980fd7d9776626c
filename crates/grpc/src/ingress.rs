//! The `loggregator.v2.Ingress` service: envelopes in over gRPC.
//!
//! Each RPC hands what arrives to [`IngestContext::submit`], the door every
//! source goes through (field limits, body bounds; the log stamps order and
//! time), after what Metron does to a gRPC envelope first ([`prepare`]): an
//! empty `source_id` takes the `origin` tag, a timestamp of 0 or beyond the
//! skew limits becomes the arrival time, and an envelope without a message
//! is counted (`sluice_ingress_errors_total{reason="empty_envelope"}`) and
//! dropped. Counted as `sluice_ingress_envelopes_total{protocol="grpc"}`.
//!
//! `BatchSender` (what go-loggregator sends: 100 envelopes or 100 ms, over
//! one long-lived stream) appends what has arrived and keeps up to
//! [`IN_FLIGHT`] appends in flight, so the stream is read on while the log
//! writes, in order. Both it and `Sender` (one envelope per message) gather
//! whatever has already arrived, up to [`GATHER`] envelopes, into one
//! append: a fast sender's batches of 100 become appends of a thousand, so
//! the per-append costs (a hand-off to the log's committer and back) are
//! paid once per thousand, as syslog's reads of 192 KiB pay them. A batch
//! the log refuses (a full disk) is dropped and counted by the ingest
//! context; the stream goes on, as Metron's does. `Send` answers
//! `Unavailable` for a refused batch, so a caller may retry.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use envelope::v2::{Envelope, EnvelopeBatch, Message, ValueData};
use futures_util::FutureExt as _;
use metrics::IngressCounters;
use prost::Message as _;
use sluice_log::ApiError;
use sources::IngestContext;
use tonic::{Request, Response, Status, Streaming};

use crate::ingress_server_glue::ingress_server::Ingress;
use crate::messages::{BatchSenderResponse, IngressResponse, SendResponse};

/// Appends a `BatchSender` stream keeps in flight before it reads on.
pub const IN_FLIGHT: usize = 3;
/// The most envelopes gathered into one append (a batch that arrives
/// whole is never split).
pub const GATHER: usize = 1000;

/// The Ingress service over an ingest context.
#[derive(Clone)]
pub struct IngressService {
    ctx: IngestContext,
    counters: IngressCounters,
}

impl IngressService {
    pub fn new(ctx: IngestContext) -> Self {
        let counters = ctx.metrics.ingress_counters("grpc");
        IngressService { ctx, counters }
    }

    /// Metron's treatment of a received envelope (see the module docs);
    /// `None` for one to drop. (Public for the `grpc_envelope` fuzz target.)
    pub fn prepare(&self, mut env: Envelope, now: i64) -> Option<Envelope> {
        if env.message.is_none() {
            self.ctx.metrics.error("empty_envelope");
            return None;
        }
        if env.source_id.is_empty() {
            env.source_id = origin(&env)
                .unwrap_or(sources::mapping::UNKNOWN_SOURCE)
                .to_owned();
        }
        let sent = (env.timestamp != 0).then_some(env.timestamp);
        env.timestamp = self.ctx.limits.timestamp(sent, now);
        // The decoded payload is a slice of the whole received message:
        // kept as it is, every stored envelope would pin its batch's buffer
        // (the cache holds the newest 64 MiB of envelopes), and the server
        // would allocate fresh buffers, fresh zeroed pages, for each batch.
        // A copy of a few hundred bytes is cheaper (as syslog ingest does).
        if let Some(Message::Log(log)) = env.message.as_mut() {
            log.payload = bytes::Bytes::copy_from_slice(&log.payload);
        }
        Some(env)
    }

    /// Prepares and counts received batches; the envelopes to append, in
    /// one vector (each envelope moved once).
    fn take(&self, batches: Vec<Vec<Envelope>>) -> Vec<Envelope> {
        let count: usize = batches.iter().map(Vec::len).sum();
        let bytes: usize = batches.iter().flatten().map(|e| e.encoded_len()).sum();
        self.counters.record(count as u64, bytes as u64);
        let now = envelope::time::now_ns();
        let mut out = Vec::with_capacity(count);
        for env in batches.into_iter().flatten() {
            out.extend(self.prepare(env, now));
        }
        out
    }

    /// Submits batches as one append: its place in the log is taken now,
    /// the future tells how it went.
    fn submit(
        &self,
        batches: Vec<Vec<Envelope>>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + '_>> {
        Box::pin(self.ctx.submit(self.take(batches)))
    }
}

/// The `origin` tag (or deprecated tag), which Metron uses for a missing
/// source id.
fn origin(env: &Envelope) -> Option<&str> {
    let tag = env.tags.get("origin").map(String::as_str);
    let deprecated = || match env.deprecated_tags.get("origin")?.data.as_ref()? {
        ValueData::Text(t) => Some(t.as_str()),
        _ => None,
    };
    tag.or_else(deprecated).filter(|o| !o.is_empty())
}

/// `first` and whatever has already arrived after it on `stream`, up to
/// [`GATHER`] envelopes (`envelopes` counts a message's), and the error
/// that ended the stream if one did.
fn gather<T>(
    stream: &mut Streaming<T>,
    first: T,
    envelopes: impl Fn(&T) -> usize,
) -> (Vec<T>, Option<Status>) {
    let mut gathered = envelopes(&first);
    let mut messages = vec![first];
    while gathered < GATHER {
        match stream.message().now_or_never() {
            Some(Ok(Some(more))) => {
                gathered += envelopes(&more);
                messages.push(more);
            }
            Some(Ok(None)) | None => break,
            Some(Err(status)) => return (messages, Some(status)),
        }
    }
    (messages, None)
}

/// Maps a stream's read error to what the RPC answers.
fn read_failed(status: Status) -> Status {
    tracing::debug!(%status, "gRPC ingress stream ended with an error");
    status
}

#[tonic::async_trait]
impl Ingress for IngressService {
    async fn sender(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<IngressResponse>, Status> {
        let mut stream = request.into_inner();
        while let Some(first) = stream.message().await.map_err(read_failed)? {
            let (batch, failed) = gather(&mut stream, first, |_| 1);
            // Refusals are counted by the ingest context; the stream goes on.
            let _ = self.submit(vec![batch]).await;
            if let Some(status) = failed {
                return Err(read_failed(status));
            }
        }
        Ok(Response::new(IngressResponse {}))
    }

    async fn batch_sender(
        &self,
        request: Request<Streaming<EnvelopeBatch>>,
    ) -> Result<Response<BatchSenderResponse>, Status> {
        let mut stream = request.into_inner();
        let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
        let result = loop {
            match stream.message().await {
                Ok(Some(first)) => {
                    let (batches, failed) = gather(&mut stream, first, |b| b.batch.len());
                    let batches = batches.into_iter().map(|b| b.batch).collect();
                    if in_flight.len() == IN_FLIGHT {
                        if let Some(oldest) = in_flight.pop_front() {
                            // Refusals are counted by the ingest context.
                            let _ = oldest.await;
                        }
                    }
                    in_flight.push_back(self.submit(batches));
                    if let Some(status) = failed {
                        break Err(read_failed(status));
                    }
                }
                Ok(None) => break Ok(Response::new(BatchSenderResponse {})),
                Err(status) => break Err(read_failed(status)),
            }
        };
        for appended in in_flight {
            let _ = appended.await;
        }
        result
    }

    async fn send(
        &self,
        request: Request<EnvelopeBatch>,
    ) -> Result<Response<SendResponse>, Status> {
        match self.submit(vec![request.into_inner().batch]).await {
            Ok(()) => Ok(Response::new(SendResponse {})),
            Err(e) => Err(Status::unavailable(format!(
                "the batch was not stored: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use envelope::v2::Value;
    use envelope::LogType;
    use sluice_log::{Log, MemoryLog, MemoryLogConfig};

    use super::*;

    fn service() -> (IngressService, Arc<MemoryLog>) {
        let log = Arc::new(MemoryLog::new(MemoryLogConfig::default()));
        let ctx = IngestContext::new(log.clone(), Default::default(), Default::default());
        (IngressService::new(ctx), log)
    }

    #[test]
    fn prepare_fills_source_and_time_and_drops_empty_envelopes() {
        let (svc, _) = service();
        let now = 1_800_000_000_000_000_000;
        let mut env = Envelope::log(0, "", "0", Bytes::from("x"), LogType::Out);
        env.tags.insert("origin".into(), "router".into());
        let env = svc.prepare(env, now).expect("kept");
        assert_eq!((env.source_id.as_str(), env.timestamp), ("router", now));

        let mut env = Envelope::log(now - 5, "", "0", Bytes::from("x"), LogType::Out);
        env.deprecated_tags.insert(
            "origin".into(),
            Value {
                data: Some(ValueData::Text("cell".into())),
            },
        );
        let env = svc.prepare(env, now).expect("kept");
        assert_eq!((env.source_id.as_str(), env.timestamp), ("cell", now - 5));

        let env = Envelope::log(now, "", "0", Bytes::new(), LogType::Out);
        assert_eq!(svc.prepare(env, now).expect("kept").source_id, "unknown");

        let mut empty = Envelope::log(now, "app", "0", Bytes::new(), LogType::Out);
        empty.message = None;
        assert!(svc.prepare(empty, now).is_none());
        assert_eq!(svc.ctx.metrics.errors("empty_envelope"), 1);
    }

    #[tokio::test]
    async fn send_appends_and_counts() {
        let (svc, log) = service();
        let batch = EnvelopeBatch {
            batch: (0..3)
                .map(|i| Envelope::log(0, "app", "0", Bytes::from(format!("{i}")), LogType::Out))
                .collect(),
        };
        svc.send(Request::new(batch)).await.expect("sent");
        let stored = log
            .read_source("app", 0, i64::MAX, 10, false)
            .await
            .unwrap();
        assert_eq!(stored.len(), 3);
        assert!(matches!(
            stored[0].entry.envelope.message,
            Some(Message::Log(_))
        ));
        let metrics = svc.ctx.metrics.encode();
        assert!(
            metrics.contains("sluice_ingress_envelopes_total{protocol=\"grpc\"} 3"),
            "{metrics}"
        );
    }
}
