//! The [`Bus`]: publish batches, subscribe with selectors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use envelope::{key, Entry, Envelope, Selector};

use crate::queue::{close_all, Queue, Subscription};
use crate::routes::Routes;
use crate::sequence::Sequencer;
use metrics::Metrics;

/// A synchronous consumer that sees every published batch before the
/// subscribers do (the recent store). It must not block for long: it runs on
/// the ingest path.
pub trait Tap: Send + Sync {
    fn append(&self, batch: &[Arc<Entry>]);
}

#[derive(Clone, Debug)]
pub struct BusConfig {
    /// Default queue depth per subscriber.
    pub queue_capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            queue_capacity: 10_000,
        }
    }
}

/// Cheap to clone; all clones publish into the same fan-out.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

pub(crate) struct BusInner {
    routes: ArcSwap<Routes>,
    taps: ArcSwap<Vec<Arc<dyn Tap>>>,
    sequencer: Sequencer,
    next_id: AtomicU64,
    /// Set by [`Bus::close`]: later subscriptions start closed.
    closed: std::sync::atomic::AtomicBool,
    config: BusConfig,
    metrics: Arc<Metrics>,
}

impl Bus {
    pub fn new(config: BusConfig, metrics: Arc<Metrics>) -> Self {
        Bus {
            inner: Arc::new(BusInner {
                routes: ArcSwap::from_pointee(Routes::default()),
                taps: ArcSwap::from_pointee(Vec::new()),
                sequencer: Sequencer::default(),
                next_id: AtomicU64::new(1),
                closed: std::sync::atomic::AtomicBool::new(false),
                config,
                metrics,
            }),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Adds a synchronous tap (see [`Tap`]).
    pub fn add_tap(&self, tap: Arc<dyn Tap>) {
        self.inner.taps.rcu(|taps| {
            let mut t = Vec::clone(taps);
            t.push(Arc::clone(&tap));
            t
        });
    }

    /// Stamps and fans out a batch. Never waits on a consumer.
    pub fn publish(&self, batch: Vec<Envelope>) {
        if batch.is_empty() {
            return;
        }
        // Batches mostly hold runs of one source: reuse its apptail key.
        let mut apptail: Option<Arc<str>> = None;
        let entries: Vec<Arc<Entry>> = batch
            .into_iter()
            .map(|envelope| {
                let mut entry = if key::is_apptail(&envelope) {
                    let key = match &apptail {
                        Some(k)
                            if k.get(key::APPTAIL.len() + 1..) == Some(&*envelope.source_id) =>
                        {
                            Arc::clone(k)
                        }
                        _ => {
                            let k: Arc<str> = key::key_for(&envelope).into();
                            apptail = Some(Arc::clone(&k));
                            k
                        }
                    };
                    Entry::with_key(envelope, key)
                } else {
                    Entry::new(envelope)
                };
                let (seq, ts) = self
                    .inner
                    .sequencer
                    .next(&entry.envelope.source_id, entry.envelope.timestamp);
                entry.seq = seq;
                entry.envelope.timestamp = ts;
                Arc::new(entry)
            })
            .collect();
        self.publish_entries(&entries);
    }

    /// Fans out entries that are already stamped (used when replaying).
    pub fn publish_entries(&self, entries: &[Arc<Entry>]) {
        for tap in self.inner.taps.load().iter() {
            tap.append(entries);
        }
        let dropped = self.inner.routes.load().offer(entries);
        if dropped > 0 {
            self.inner.metrics.count_drop("queue_full", dropped);
        }
    }

    /// Subscribes with the default queue depth. `kind` labels egress metrics
    /// (`stream`, `drain`, `firehose`, …).
    pub fn subscribe(&self, selector: Selector, kind: &'static str) -> Subscription {
        self.subscribe_with_capacity(selector, kind, self.inner.config.queue_capacity)
    }

    pub fn subscribe_with_capacity(
        &self,
        selector: Selector,
        kind: &'static str,
        capacity: usize,
    ) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(Queue::new(id, selector, capacity, kind));
        if self.inner.closed.load(Ordering::Acquire) {
            // After shutdown began: a subscription that ends at once.
            close_all(std::slice::from_ref(&queue));
            return Subscription {
                queue,
                bus: std::sync::Weak::new(),
                metrics: Arc::clone(&self.inner.metrics),
            };
        }
        self.inner.routes.rcu(|routes| {
            let mut all = routes.all.clone();
            all.push(Arc::clone(&queue));
            Routes::build(all)
        });
        self.inner.metrics.subscribers.inc();
        Subscription {
            queue,
            bus: Arc::downgrade(&self.inner),
            metrics: Arc::clone(&self.inner.metrics),
        }
    }

    /// Current number of subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner.routes.load().all.len()
    }

    /// Ends every subscription: each `recv` returns what is left, then `None`.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let routes = self.inner.routes.swap(Arc::new(Routes::default()));
        close_all(&routes.all);
    }
}

impl BusInner {
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut removed = false;
        self.routes.rcu(|routes| {
            let all: Vec<_> = routes.all.iter().filter(|q| q.id != id).cloned().collect();
            removed = all.len() != routes.all.len();
            Routes::build(all)
        });
        if removed {
            self.metrics.subscribers.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::LogType;

    fn log(source: &str, text: &'static str) -> Envelope {
        Envelope::log(
            1,
            source,
            "0",
            Bytes::from_static(text.as_bytes()),
            LogType::Out,
        )
    }

    fn bus() -> Bus {
        Bus::new(BusConfig::default(), Arc::new(Metrics::default()))
    }

    #[tokio::test]
    async fn fans_out_by_selector_with_sequences() {
        let bus = bus();
        let mut all = bus.subscribe(Selector::all(), "stream");
        let mut only_b = bus.subscribe(
            Selector {
                source_ids: vec!["b".into()],
                ..Default::default()
            },
            "stream",
        );
        bus.publish(vec![log("a", "1"), log("b", "2"), log("a", "3")]);
        let d = all.recv(100).await.unwrap();
        assert_eq!(d.entries.len(), 3);
        let seqs: Vec<_> = d.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 1, 2]);
        let d = only_b.recv(100).await.unwrap();
        assert_eq!(d.entries.len(), 1);
        assert_eq!(d.entries[0].envelope.source_id, "b");
    }

    #[tokio::test]
    async fn full_queue_drops_oldest_and_reports_exact_loss() {
        let bus = bus();
        let mut slow = bus.subscribe_with_capacity(Selector::all(), "stream", 10);
        let mut fast = bus.subscribe(Selector::all(), "stream");
        for i in 0..25 {
            bus.publish(vec![log("a", if i % 2 == 0 { "even" } else { "odd" })]);
        }
        let d = slow.recv(100).await.unwrap();
        assert_eq!(d.loss.map(|l| l.count), Some(15));
        assert_eq!(d.entries.len(), 10);
        assert_eq!(d.entries[0].seq, 16, "the newest ten are kept");
        assert!(slow.try_recv(100).is_none());
        // The other subscriber lost nothing.
        let d = fast.recv(100).await.unwrap();
        assert!(d.loss.is_none());
        assert_eq!(d.entries.len(), 25);
        assert_eq!(bus.metrics().dropped("queue_full"), 15);
    }

    #[tokio::test]
    async fn indexed_subscriptions_get_their_app_only() {
        let bus = bus();
        let app_sel = |a: &str| Selector {
            apps: vec![a.into()],
            ..Default::default()
        };
        let mut web = bus.subscribe(app_sel("web"), "drain");
        let mut by_guid = bus.subscribe(app_sel("a"), "drain");
        let mut others: Vec<_> = (0..100)
            .map(|i| bus.subscribe(app_sel(&format!("app{i}")), "drain"))
            .collect();
        let mut tagged = log("a", "x");
        tagged.tags.insert("app_name".into(), "web".into());
        bus.publish(vec![tagged, log("b", "y"), log("web", "z")]);
        // "web" matches the app_name tag of a's entry and the source id "web".
        assert_eq!(web.recv(10).await.unwrap().entries.len(), 2);
        assert_eq!(by_guid.recv(10).await.unwrap().entries.len(), 1);
        assert!(others.iter_mut().all(|s| s.try_recv(10).is_none()));
        drop(others);
        assert_eq!(bus.subscriber_count(), 2);
    }

    #[tokio::test]
    async fn dropping_a_subscription_unsubscribes() {
        let bus = bus();
        let sub = bus.subscribe(Selector::all(), "stream");
        assert_eq!(bus.subscriber_count(), 1);
        drop(sub);
        assert_eq!(bus.subscriber_count(), 0);
        bus.publish(vec![log("a", "x")]);
    }

    #[tokio::test]
    async fn subscribing_after_close_ends_at_once() {
        let bus = bus();
        bus.close();
        let mut sub = bus.subscribe(Selector::all(), "stream");
        assert!(sub.recv(10).await.is_none());
    }

    #[tokio::test]
    async fn close_ends_receivers() {
        let bus = bus();
        let mut sub = bus.subscribe(Selector::all(), "stream");
        bus.publish(vec![log("a", "x")]);
        bus.close();
        assert_eq!(sub.recv(10).await.unwrap().entries.len(), 1);
        assert!(sub.recv(10).await.is_none());
    }

    #[test]
    fn taps_see_every_entry() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl Tap for Count {
            fn append(&self, batch: &[Arc<Entry>]) {
                self.0.fetch_add(batch.len(), Ordering::Relaxed);
            }
        }
        let bus = bus();
        let tap = Arc::new(Count(Default::default()));
        bus.add_tap(tap.clone());
        bus.publish(vec![log("a", "x"), log("b", "y")]);
        assert_eq!(tap.0.load(Ordering::Relaxed), 2);
    }
}
