//! [`Publisher`]: the node's bounded buffer in front of JetStream.
//!
//! A source never waits on the cluster (DESIGN.md §1): `append` puts the
//! batch's messages at the back of this buffer and returns; one task
//! publishes them in order with up to [`MAX_IN_FLIGHT`] acknowledgements
//! ([`MAX_IN_FLIGHT_BYTES`]) outstanding, so a round trip to the stream leader is paid per window,
//! not per message. Each message carries a `Nats-Msg-Id` made of the node
//! id, the process's start time and a counter, and keeps it across
//! retries: when an acknowledgement is lost or times out, everything not
//! acknowledged is published again and the stream's duplicate window drops
//! what it already stored.
//!
//! While NATS cannot be reached the buffer grows up to its byte bound;
//! beyond it the oldest messages not yet sent are dropped, counted in
//! `sluice_drops_total{reason="cluster_buffer_full"}` and told once the
//! cluster answers again, in a notice appended to the log. The buffer is
//! *degraded* (shown in `sluice cluster status` and `/v1/health`) from the
//! first failed publish until the buffer has drained.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use metrics::Metrics;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::message::{MAX_MESSAGE_BYTES, MAX_PER_MESSAGE};

/// Acknowledgements outstanding at most.
pub const MAX_IN_FLIGHT: usize = 4096;
/// Payload bytes outstanding at most: with messages of up to 256 KiB, a
/// window of thousands would queue gigabytes at the stream leader and
/// time every acknowledgement out (then all of it goes again: a spiral
/// `bench/cluster.sh` showed with three nodes on two cores).
pub const MAX_IN_FLIGHT_BYTES: usize = 8 << 20;
/// The first wait after a failed publish; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One message for the stream.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub subject: String,
    pub payload: Bytes,
    /// Envelopes in the payload.
    pub envelopes: u32,
}

struct Queued {
    out: Outgoing,
    id: u64,
    /// Published at least once: it goes again exactly as it was (its
    /// message id must keep meaning the same content).
    sent: bool,
}

#[derive(Default)]
struct Queue {
    /// Published, waiting for their acknowledgement, oldest first.
    in_flight: VecDeque<Queued>,
    /// Not published yet, oldest first.
    waiting: VecDeque<Queued>,
    /// Bytes of `waiting` and `in_flight` payloads.
    bytes: usize,
    /// Bytes of `in_flight` payloads.
    in_flight_bytes: usize,
    /// Dropped since the last notice.
    dropped_untold: u64,
    dropped_since_ns: Option<i64>,
}

/// The buffer and its publishing task's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<Queue>,
    more: Notify,
    max_bytes: usize,
    id_prefix: String,
    next_id: AtomicU64,
    degraded: AtomicBool,
    published: AtomicU64,
    dropped: AtomicU64,
    metrics: Arc<Metrics>,
}

/// What the buffer holds and has done, for status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublisherStats {
    pub buffered: u64,
    pub buffered_bytes: u64,
    pub published: u64,
    pub dropped: u64,
    pub degraded: bool,
}

impl Publisher {
    /// A buffer of at most `max_bytes` of payload; message ids start with
    /// `node_id` and the current time, so a restarted node never reuses
    /// one within the duplicate window.
    pub fn new(node_id: &str, max_bytes: usize, metrics: Arc<Metrics>) -> Self {
        Publisher {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                more: Notify::new(),
                max_bytes: max_bytes.max(1),
                id_prefix: format!("{node_id}.{:x}.", envelope::time::now_ns()),
                next_id: AtomicU64::new(1),
                degraded: AtomicBool::new(false),
                published: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                metrics,
            }),
        }
    }

    /// Buffers messages in order (dropping the oldest unsent ones beyond
    /// the bound).
    pub fn push(&self, messages: Vec<Outgoing>) {
        if messages.is_empty() {
            return;
        }
        let mut q = self.inner.queue.lock();
        for out in messages {
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            q.bytes += out.payload.len();
            q.waiting.push_back(Queued {
                out,
                id,
                sent: false,
            });
        }
        let mut dropped = 0u64;
        while q.bytes > self.inner.max_bytes {
            let Some(old) = q.waiting.pop_front() else {
                break;
            };
            q.bytes -= old.out.payload.len();
            dropped += 1;
        }
        if dropped > 0 {
            q.dropped_untold += dropped;
            q.dropped_since_ns
                .get_or_insert_with(envelope::time::now_ns);
            self.inner.dropped.fetch_add(dropped, Ordering::Relaxed);
            self.inner
                .metrics
                .count_drop("cluster_buffer_full", dropped);
        }
        drop(q);
        self.inner.more.notify_one();
    }

    pub fn stats(&self) -> PublisherStats {
        let q = self.inner.queue.lock();
        PublisherStats {
            buffered: (q.waiting.len() + q.in_flight.len()) as u64,
            buffered_bytes: q.bytes as u64,
            published: self.inner.published.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            degraded: self.inner.degraded.load(Ordering::Relaxed),
        }
    }

    /// Whether publishing failed and the buffer has not drained since.
    pub fn degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }

    /// Takes the count of drops not told yet, and since when.
    pub fn take_untold_drops(&self) -> Option<(u64, i64)> {
        let mut q = self.inner.queue.lock();
        let n = std::mem::take(&mut q.dropped_untold);
        let since = q.dropped_since_ns.take();
        (n > 0).then(|| (n, since.unwrap_or_else(envelope::time::now_ns)))
    }

    /// Publishes until `shutdown`, then for at most `flush` more.
    pub async fn run(self, js: Context, shutdown: CancellationToken, flush: Duration) {
        let mut acks: FuturesOrdered<BoxFuture<'static, (u64, Result<(), String>)>> =
            FuturesOrdered::new();
        let mut backoff = FIRST_BACKOFF;
        let mut flush_deadline: Option<tokio::time::Instant> = None;
        loop {
            if flush_deadline.is_none() && shutdown.is_cancelled() {
                flush_deadline = Some(tokio::time::Instant::now() + flush);
            }
            if flush_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return;
            }
            let next = self.next_to_send(acks.len());
            if let Some((id, out)) = next {
                let message = PublishMessage::build()
                    .payload(out.payload)
                    .message_id(format!("{}{id}", self.inner.id_prefix));
                match js.send_publish(out.subject, message).await {
                    Ok(ack) => acks.push_back(Box::pin(AckWait { id, ack }.wait())),
                    Err(e) => {
                        self.failed(&mut acks, &e.to_string());
                        backoff = self.sleep(backoff, &shutdown, flush_deadline).await;
                    }
                }
                continue;
            }
            if acks.is_empty() {
                if flush_deadline.is_some() && self.is_empty() {
                    return;
                }
                tokio::select! {
                    _ = self.inner.more.notified() => {}
                    _ = shutdown.cancelled(), if flush_deadline.is_none() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)), if flush_deadline.is_some() => {}
                }
                continue;
            }
            // Sends wait while the window is full; acknowledgements are
            // taken as they come, and new messages are sent meanwhile.
            let window_full = self.window_full(acks.len());
            tokio::select! {
                done = acks.next() => {
                    match done {
                        Some((id, Ok(()))) => {
                            self.acknowledged(id);
                            backoff = FIRST_BACKOFF;
                        }
                        Some((_, Err(e))) => {
                            self.failed(&mut acks, &e);
                            backoff = self.sleep(backoff, &shutdown, flush_deadline).await;
                        }
                        None => {}
                    }
                }
                _ = self.inner.more.notified(), if !window_full => {}
            }
        }
    }

    fn is_empty(&self) -> bool {
        let q = self.inner.queue.lock();
        q.waiting.is_empty() && q.in_flight.is_empty()
    }

    /// Moves the oldest waiting message to in flight, if the window has
    /// room.
    fn next_to_send(&self, in_flight: usize) -> Option<(u64, Outgoing)> {
        if self.window_full(in_flight) {
            return None;
        }
        let mut q = self.inner.queue.lock();
        let mut queued = q.waiting.pop_front()?;
        if !queued.sent {
            merge_followers(&mut queued, &mut q.waiting);
            queued.sent = true;
        }
        let next = (queued.id, queued.out.clone());
        q.in_flight_bytes += queued.out.payload.len();
        q.in_flight.push_back(queued);
        Some(next)
    }

    /// Whether no more may be sent before acknowledgements come back.
    fn window_full(&self, in_flight: usize) -> bool {
        in_flight >= MAX_IN_FLIGHT || self.inner.queue.lock().in_flight_bytes >= MAX_IN_FLIGHT_BYTES
    }

    /// The stream stored message `id` (acknowledgements come in order).
    fn acknowledged(&self, id: u64) {
        let mut q = self.inner.queue.lock();
        let (mut n, mut envelopes) = (0, 0);
        while q.in_flight.front().is_some_and(|f| f.id <= id) {
            if let Some(done) = q.in_flight.pop_front() {
                q.bytes -= done.out.payload.len();
                q.in_flight_bytes -= done.out.payload.len();
                n += 1;
                envelopes += u64::from(done.out.envelopes);
            }
        }
        let drained = q.in_flight.is_empty() && q.waiting.is_empty();
        drop(q);
        self.inner.published.fetch_add(n, Ordering::Relaxed);
        self.inner.metrics.cluster_published.inc_by(envelopes);
        if drained && self.inner.degraded.swap(false, Ordering::Relaxed) {
            info!("the cluster's stream takes messages again; the node's buffer has drained");
        }
    }

    /// A publish failed: everything in flight goes back to the front of
    /// the buffer, to be sent again with the same message ids.
    fn failed(
        &self,
        acks: &mut FuturesOrdered<BoxFuture<'static, (u64, Result<(), String>)>>,
        error: &str,
    ) {
        *acks = FuturesOrdered::new();
        let mut q = self.inner.queue.lock();
        let in_flight = std::mem::take(&mut q.in_flight);
        q.in_flight_bytes = 0;
        for queued in in_flight.into_iter().rev() {
            q.waiting.push_front(queued);
        }
        let buffered = q.waiting.len();
        drop(q);
        if !self.inner.degraded.swap(true, Ordering::Relaxed) {
            warn!(error = %error, buffered, "cannot publish to the cluster's stream; buffering (degraded)");
        }
    }

    async fn sleep(
        &self,
        backoff: Duration,
        shutdown: &CancellationToken,
        flush_deadline: Option<tokio::time::Instant>,
    ) -> Duration {
        if flush_deadline.is_some() {
            tokio::time::sleep(backoff.min(Duration::from_millis(100))).await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        (backoff * 2).min(MAX_BACKOFF)
    }
}

/// Folds the unsent messages right behind `head` with its subject into it,
/// within [`MAX_PER_MESSAGE`] envelopes and [`MAX_MESSAGE_BYTES`]: while
/// the stream keeps up, messages go as appends made them; when the buffer
/// fills (a burst, a slow leader) they grow, which is what lets the
/// cluster catch up. Two `EnvelopeBatch` encodings back to back are one.
fn merge_followers(head: &mut Queued, waiting: &mut VecDeque<Queued>) {
    let mut merged: Option<Vec<u8>> = None;
    while let Some(next) = waiting.front() {
        let fits = !next.sent
            && next.out.subject == head.out.subject
            && (head.out.envelopes + next.out.envelopes) as usize <= MAX_PER_MESSAGE
            && head.out.payload.len() + next.out.payload.len() <= MAX_MESSAGE_BYTES;
        if !fits {
            break;
        }
        let Some(next) = waiting.pop_front() else {
            break;
        };
        merged
            .get_or_insert_with(|| head.out.payload.to_vec())
            .extend_from_slice(&next.out.payload);
        head.out.envelopes += next.out.envelopes;
    }
    if let Some(buf) = merged {
        head.out.payload = Bytes::from(buf);
    }
}

/// An acknowledgement being waited for, with its message's id.
struct AckWait {
    id: u64,
    ack: PublishAckFuture,
}

impl AckWait {
    async fn wait(self) -> (u64, Result<(), String>) {
        let r = self.ack.await.map(drop).map_err(|e| e.to_string());
        (self.id, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: u8) -> Outgoing {
        Outgoing {
            // A subject each, so none merge.
            subject: format!("sluice.log.apptail.a{i}"),
            payload: Bytes::from(vec![i; 300]),
            envelopes: 1,
        }
    }

    #[test]
    fn the_buffer_drops_its_oldest_beyond_the_bound_and_counts_them_exactly() {
        let metrics = Arc::new(Metrics::default());
        let publisher = Publisher::new("n", 1000, Arc::clone(&metrics));
        publisher.push((0..10).map(message).collect());
        let stats = publisher.stats();
        assert_eq!(
            (stats.buffered, stats.buffered_bytes, stats.dropped),
            (3, 900, 7)
        );
        // The newest three are kept, in order.
        let kept: Vec<u8> = (0..3)
            .filter_map(|_| publisher.next_to_send(0).map(|(_, m)| m.payload[0]))
            .collect();
        assert_eq!(kept, vec![7, 8, 9]);
        let (told, _) = publisher.take_untold_drops().expect("drops to tell");
        assert_eq!(told, 7);
        assert!(publisher.take_untold_drops().is_none(), "told once");
        let text = metrics.encode();
        assert!(
            text.contains("sluice_drops_total{reason=\"cluster_buffer_full\"} 7"),
            "{text}"
        );
        // What is in flight is never dropped (here the three taken above,
        // which fill the bound: the new ones go); a failure puts it back
        // at the front, to be sent again.
        publisher.push((10..13).map(message).collect());
        assert_eq!(publisher.stats().dropped, 10);
        let mut acks = FuturesOrdered::new();
        publisher.failed(&mut acks, "test");
        assert!(publisher.degraded());
        let order: Vec<u8> = (0..6)
            .filter_map(|_| publisher.next_to_send(0).map(|(_, m)| m.payload[0]))
            .collect();
        assert_eq!(order, vec![7, 8, 9]);
    }

    #[test]
    fn unsent_messages_of_one_subject_merge_and_a_sent_one_never_changes() {
        let publisher = Publisher::new("n", 1 << 20, Arc::new(Metrics::default()));
        let same = |i: u8| Outgoing {
            subject: "sluice.log.apptail.a".into(),
            payload: Bytes::from(vec![i; 10]),
            envelopes: 2,
        };
        publisher.push(vec![same(1), same(2), message(3), same(4)]);
        let (_, first) = publisher.next_to_send(0).expect("a message");
        assert_eq!((first.envelopes, first.payload.len()), (4, 20));
        assert_eq!(first.payload[10], 2, "in order");
        // It fails; more of its subject arrive; it goes again as it was.
        publisher.push(vec![same(5)]);
        publisher.failed(&mut FuturesOrdered::new(), "test");
        let (_, again) = publisher.next_to_send(0).expect("a message");
        assert_eq!(again.payload, first.payload);
        let rest: Vec<(u32, usize)> = (0..2)
            .filter_map(|_| {
                publisher
                    .next_to_send(0)
                    .map(|(_, m)| (m.envelopes, m.payload.len()))
            })
            .collect();
        assert_eq!(
            rest,
            vec![(1, 300), (4, 20)],
            "4 and 5 merge; 3 is another subject"
        );
    }
}
