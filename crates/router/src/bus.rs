//! The [`Bus`]: publish batches, subscribe with selectors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use envelope::{Entry, Selector};

use crate::queue::{close_all, Queue, Subscription};
use crate::routes::Routes;
use metrics::Metrics;

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

    /// Fans out entries read from the log (stamped, with their positions
    /// as `seq`). Never waits on a consumer.
    pub fn publish_entries(&self, entries: &[Arc<Entry>]) {
        if entries.is_empty() {
            return;
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
    use envelope::{Envelope, LogType};

    fn log(source: &str, text: &'static str) -> Envelope {
        Envelope::log(
            1,
            source,
            "0",
            Bytes::from_static(text.as_bytes()),
            LogType::Out,
        )
    }

    /// What the server's fan-out does with entries read from the log:
    /// `seq` is the position.
    trait PublishForTest {
        fn publish(&self, batch: Vec<Envelope>);
    }

    impl PublishForTest for Bus {
        fn publish(&self, batch: Vec<Envelope>) {
            // Per test thread: tests run in parallel, and one shared
            // counter made another test's publishes gaps in this one's
            // positions.
            thread_local! {
                static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
            }
            let entries: Vec<Arc<Entry>> = batch
                .into_iter()
                .map(|e| {
                    let mut entry = Entry::new(e);
                    entry.seq = NEXT.replace(NEXT.get() + 1);
                    Arc::new(entry)
                })
                .collect();
            self.publish_entries(&entries);
        }
    }

    fn bus() -> Bus {
        Bus::new(BusConfig::default(), Arc::new(Metrics::default()))
    }

    #[tokio::test]
    async fn fans_out_by_selector() {
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
        let first = d.entries[0].seq;
        assert_eq!(d.entries[9].seq, first + 9, "the newest ten are kept");
        assert_eq!(
            &d.entries[0].envelope.as_log().unwrap().payload[..],
            b"odd",
            "the 16th"
        );
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
}
