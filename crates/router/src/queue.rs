//! A subscriber's bounded, drop-oldest queue and the [`Subscription`] handle
//! a consumer reads it through.
//!
//! The bus pushes whole matching batches under the queue's lock; when the
//! queue is over capacity the oldest entries go first, and the exact number
//! dropped (and since when) is remembered. The consumer's next
//! [`Subscription::recv`] returns that [`Loss`] alongside the entries that
//! follow it, so the loss can be told in-band.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use envelope::time::now_ns;
use envelope::{tags, Entry, Envelope, LogType, Selector};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::bus::BusInner;
use metrics::Metrics;

/// Entries a subscriber missed because its queue was full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    pub count: u64,
    /// Unix ns of the first drop in this run of drops.
    pub since: i64,
}

impl Loss {
    /// The in-band notice: `sluice: N messages dropped since <time>`.
    pub fn notice(&self) -> String {
        codec::notice::dropped(self.count, self.since)
    }

    /// When the loss began, as `2026-11-21T13:14:58Z`.
    pub fn since_text(&self) -> String {
        codec::timestamp::rfc3339_seconds(self.since)
    }

    /// The notice as a log envelope from source `sluice`, for consumers that
    /// speak envelopes (JSON streams, the firehose).
    pub fn notice_envelope(&self) -> Envelope {
        let mut e = Envelope::log(
            now_ns(),
            "sluice",
            "",
            Bytes::from(self.notice()),
            LogType::Err,
        );
        e.tags
            .insert(tags::SOURCE_TYPE.into(), codec::notice::SOURCE_TYPE.into());
        e
    }
}

/// What one `recv` hands the consumer.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Set when entries were dropped before these.
    pub loss: Option<Loss>,
    pub entries: Vec<Arc<Entry>>,
}

pub(crate) struct QueueState {
    buf: VecDeque<Arc<Entry>>,
    dropped: u64,
    dropped_since: i64,
    closed: bool,
}

/// The shared half of a subscription, held by the bus.
pub(crate) struct Queue {
    pub(crate) id: u64,
    pub(crate) selector: Selector,
    pub(crate) kind: &'static str,
    capacity: usize,
    state: Mutex<QueueState>,
    notify: Notify,
}

impl Queue {
    pub(crate) fn new(id: u64, selector: Selector, capacity: usize, kind: &'static str) -> Self {
        Queue {
            id,
            selector,
            kind,
            capacity: capacity.max(1),
            state: Mutex::new(QueueState {
                buf: VecDeque::new(),
                dropped: 0,
                dropped_since: 0,
                closed: false,
            }),
            notify: Notify::new(),
        }
    }

    /// Pushes the entries of `batch` this queue selects; returns how many
    /// were dropped to make room.
    pub(crate) fn offer(&self, batch: &[Arc<Entry>]) -> u64 {
        let mut matched = batch.iter().filter(|e| self.selector.matches(e)).peekable();
        if matched.peek().is_none() {
            return 0;
        }
        let mut dropped = 0;
        {
            let mut st = self.state.lock();
            for e in matched {
                if st.buf.len() >= self.capacity {
                    st.buf.pop_front();
                    dropped += 1;
                }
                st.buf.push_back(Arc::clone(e));
            }
            if dropped > 0 {
                if st.dropped == 0 {
                    st.dropped_since = now_ns();
                }
                st.dropped += dropped;
            }
        }
        self.notify.notify_one();
        dropped
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.notify.notify_one();
    }
}

/// A consumer's handle on its queue. Dropping it unsubscribes.
pub struct Subscription {
    pub(crate) queue: Arc<Queue>,
    pub(crate) bus: Weak<BusInner>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Subscription {
    /// Waits for entries and returns up to `max` of them (with any loss
    /// before them). Returns `None` once the bus has shut down and the queue
    /// is empty.
    pub async fn recv(&mut self, max: usize) -> Option<Delivery> {
        loop {
            if let Some(d) = self.try_recv(max) {
                return Some(d);
            }
            if self.queue.state.lock().closed {
                return None;
            }
            self.queue.notify.notified().await;
        }
    }

    /// Takes what is queued now, without waiting.
    pub fn try_recv(&mut self, max: usize) -> Option<Delivery> {
        let mut st = self.queue.state.lock();
        if st.buf.is_empty() && st.dropped == 0 {
            return None;
        }
        let loss = (st.dropped > 0).then(|| Loss {
            count: std::mem::take(&mut st.dropped),
            since: st.dropped_since,
        });
        let n = st.buf.len().min(max.max(1));
        let entries: Vec<_> = st.buf.drain(..n).collect();
        drop(st);
        self.metrics.egress(self.queue.kind, entries.len() as u64);
        Some(Delivery { loss, entries })
    }

    /// Entries waiting now.
    pub fn len(&self) -> usize {
        self.queue.state.lock().buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn selector(&self) -> &Selector {
        &self.queue.selector
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.unsubscribe(self.queue.id);
        }
    }
}

pub(crate) fn close_all(queues: &[Arc<Queue>]) {
    for q in queues {
        q.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_text() {
        let l = Loss {
            count: 1234,
            since: 1_795_785_298_000_000_000,
        };
        assert_eq!(
            l.notice(),
            "sluice: 1234 messages dropped since 2026-11-27T13:14:58Z"
        );
    }
}
