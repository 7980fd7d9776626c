//! Reading the stream: ordered consumers (ephemeral, in memory, one
//! replica, recreated by the client across server restarts: no durable
//! state on the servers per reader), and the node's follower, which reads
//! every new message once into the node's cache.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::Stream as JsStream;
use bytes::Bytes;
use futures_util::StreamExt;
use sluice_log::ApiError;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::connect::SUBJECT_PREFIX;
use crate::log::JetStreamLog;
use crate::message::{position, unpack};

/// How long a page read waits for the next message before it takes the
/// stream to be at its end.
const READ_WAIT: Duration = Duration::from_secs(5);
/// Messages the follower adds to the cache at once at most.
const FOLLOW_BATCH: usize = 64;

/// An ordered consumer's messages from `start_sequence` on.
pub(crate) async fn ordered(
    stream: &JsStream,
    filter_subject: String,
    start_sequence: u64,
) -> Result<pull::Ordered, ApiError> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start_sequence.max(1),
            },
            ..Default::default()
        })
        .await
        .map_err(remote("creating a reader"))?;
    consumer
        .messages()
        .await
        .map_err(remote("reading the stream"))
}

/// One message read: its sequence, how many more were pending after it,
/// and its payload.
pub(crate) struct Read {
    pub seq: u64,
    pub pending: u64,
    pub payload: Bytes,
}

/// The next message of an ordered consumer; `None` when none came within
/// [`READ_WAIT`] (the stream is at its end) or the consumer ended.
pub(crate) async fn next_message(messages: &mut pull::Ordered) -> Result<Option<Read>, ApiError> {
    loop {
        let got = tokio::time::timeout(READ_WAIT, messages.next()).await;
        let msg = match got {
            Err(_) | Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(remote("reading the stream")(e)),
            Ok(Some(Ok(m))) => m,
        };
        let Ok(info) = msg.info() else { continue };
        return Ok(Some(Read {
            seq: info.stream_sequence,
            pending: info.pending,
            payload: msg.payload.clone(),
        }));
    }
}

pub(crate) fn remote<E: std::fmt::Display>(op: &'static str) -> impl Fn(E) -> ApiError {
    move |e| ApiError::Remote {
        op,
        detail: e.to_string(),
    }
}

/// The node's follower: reads every message from `next_seq` on into the
/// cache and moves the log's end, until shutdown; a consumer that failed
/// is opened again where it stopped.
pub(crate) async fn follow(log: JetStreamLog, mut next_seq: u64, shutdown: CancellationToken) {
    let mut refresh = tokio::time::interval(Duration::from_secs(5));
    loop {
        let opened = tokio::select! {
            o = ordered(log.stream(), format!("{SUBJECT_PREFIX}.>"), next_seq) => o,
            _ = shutdown.cancelled() => return,
        };
        let mut messages = match opened {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "cannot follow the cluster's stream; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let mut batch = Vec::new();
        let mut messages_in_batch = 0u64;
        // A consumer whose server died may go quiet before the client
        // notices: when the stream has messages past ours and none came
        // since the last look, open it again.
        let mut seen_at_last_look = next_seq;
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(msg)) => {
                        let Ok(info) = msg.info() else { continue };
                        let (seq, pending) = (info.stream_sequence, info.pending);
                        if seq < next_seq {
                            continue;
                        }
                        batch.extend(unpack(seq, msg.payload.clone()));
                        messages_in_batch += 1;
                        next_seq = seq + 1;
                        if pending == 0 || messages_in_batch as usize >= FOLLOW_BATCH {
                            log.followed(std::mem::take(&mut batch), messages_in_batch, position(next_seq, 0));
                            messages_in_batch = 0;
                        }
                    }
                    Some(Err(e)) => {
                        log.followed(std::mem::take(&mut batch), messages_in_batch, position(next_seq, 0));
                        warn!(error = %e, "following the cluster's stream failed; reopening");
                        break;
                    }
                    None => {
                        log.followed(std::mem::take(&mut batch), messages_in_batch, position(next_seq, 0));
                        break;
                    }
                },
                _ = refresh.tick() => {
                    let last = log.refresh_oldest().await;
                    if last.is_some_and(|last| last >= next_seq) && next_seq == seen_at_last_look {
                        log.followed(std::mem::take(&mut batch), messages_in_batch, position(next_seq, 0));
                        warn!(next_seq, "following the cluster's stream stalled; reopening");
                        break;
                    }
                    seen_at_last_look = next_seq;
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
