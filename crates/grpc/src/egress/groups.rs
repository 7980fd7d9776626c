//! Shard groups: the streams that share a non-empty `shard_id` (and the same
//! selectors and `deterministic_name`) split what they select, each
//! envelope to exactly one of them; a stream with an empty `shard_id` is a
//! group of its own and gets everything.
//!
//! A group holds one bus subscription (drop-oldest, as every live consumer)
//! and a dispatcher task that filters its deliveries and hands each
//! envelope to one member: by a hash of the counter's name or the gauge's
//! metric names when the group has a `deterministic_name` (so one metric
//! always reaches one consumer), round-robin otherwise. Each member has its
//! own drop-oldest queue ([`MemberQueue`]), so a slow consumer loses its
//! own oldest envelopes and holds back no one; the loss is counted and
//! told on that stream. A loss at the group's bus queue (before the split)
//! is told to one member, in turn, so what a group is told adds up to what
//! it lost.
//!
//! The last member to leave ends the group: its subscription goes, and a
//! later stream with the same id starts a new one.
//!
//! In a cluster ([`NodeShare`]) a group spans nodes: each node's part of
//! a group keeps only its share of the stream — the entries whose key
//! (the stream sequence, the same on every node; or the deterministic
//! name's hash) falls to it among the nodes with members of that
//! `shard_id` — and splits that among its own members as above.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use envelope::v2::{Envelope, Message};
use envelope::Entry;
use parking_lot::Mutex;
use router::{Bus, Subscription};
use tokio::sync::Notify;

use super::filter::Filter;

/// Envelopes a member's queue holds before it drops its oldest.
pub const MEMBER_QUEUE: usize = 10_000;
/// Entries the dispatcher takes from the bus at a time.
const DISPATCH_BATCH: usize = 1_000;

/// A node's share of the shard groups that span a cluster.
pub trait NodeShare: Send + Sync {
    /// `(index, of)`: this node keeps the entries whose split key is
    /// `index` modulo `of` (`of` ≤ 1: all of them).
    fn share(&self, shard_id: &str) -> (u64, u64);
}

/// What identifies a shard group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    shard_id: String,
    deterministic_name: String,
    filter: Filter,
}

/// Every shard group with a non-empty id, by key.
#[derive(Clone)]
pub struct Groups {
    inner: Arc<Mutex<HashMap<GroupKey, Arc<Group>>>>,
    bus: Bus,
    share: Option<Arc<dyn NodeShare>>,
}

struct Group {
    key: Option<GroupKey>,
    members: Mutex<Vec<Arc<MemberQueue>>>,
    next: AtomicUsize,
    deterministic: bool,
    ended: Notify,
}

/// One stream's queue: drop-oldest, one consumer.
pub struct MemberQueue {
    state: Mutex<MemberState>,
    notify: Notify,
    capacity: usize,
}

#[derive(Default)]
struct MemberState {
    buf: VecDeque<Arc<Entry>>,
    /// Dropped since the consumer was last told.
    dropped: u64,
    closed: bool,
}

/// What a stream reads next.
pub enum Next {
    /// Envelopes were lost before these (told first).
    Dropped(u64),
    Entries(Vec<Arc<Entry>>),
}

impl MemberQueue {
    fn new(capacity: usize) -> Self {
        MemberQueue {
            state: Mutex::new(MemberState::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds entries, dropping the oldest past capacity; returns how many
    /// were dropped.
    fn push(&self, entries: impl IntoIterator<Item = Arc<Entry>>) -> u64 {
        let mut dropped = 0;
        {
            let mut st = self.state.lock();
            for e in entries {
                if st.buf.len() >= self.capacity {
                    st.buf.pop_front();
                    dropped += 1;
                }
                st.buf.push_back(e);
            }
            st.dropped += dropped;
        }
        self.notify.notify_one();
        dropped
    }

    fn note_loss(&self, n: u64) {
        self.state.lock().dropped += n;
        self.notify.notify_one();
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.notify.notify_one();
    }

    /// Waits for something to read: a loss to tell, or up to `max`
    /// entries; `None` once the queue is closed and empty.
    pub async fn next(&self, max: usize) -> Option<Next> {
        loop {
            {
                let mut st = self.state.lock();
                if st.dropped > 0 {
                    return Some(Next::Dropped(std::mem::take(&mut st.dropped)));
                }
                if !st.buf.is_empty() {
                    let n = st.buf.len().min(max.max(1));
                    return Some(Next::Entries(st.buf.drain(..n).collect()));
                }
                if st.closed {
                    return None;
                }
            }
            // One consumer: a notification that came before this wait left
            // a permit, so none is missed.
            self.notify.notified().await;
        }
    }
}

/// A stream's membership; leaving the group when dropped.
pub struct Member {
    pub queue: Arc<MemberQueue>,
    group: Arc<Group>,
    groups: Weak<Mutex<HashMap<GroupKey, Arc<Group>>>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let Some(map) = self.groups.upgrade() else {
            self.group.ended.notify_one();
            return;
        };
        // Under the map's lock, so no stream joins a group that is ending.
        let mut map = map.lock();
        let mut members = self.group.members.lock();
        members.retain(|m| !Arc::ptr_eq(m, &self.queue));
        if members.is_empty() {
            if let Some(key) = &self.group.key {
                map.remove(key);
            }
            self.group.ended.notify_one();
        }
    }
}

impl Groups {
    pub fn new(bus: Bus) -> Self {
        Groups {
            inner: Arc::default(),
            bus,
            share: None,
        }
    }

    /// Groups that span the nodes of a cluster.
    pub fn shared(bus: Bus, share: Arc<dyn NodeShare>) -> Self {
        Groups {
            share: Some(share),
            ..Groups::new(bus)
        }
    }

    /// The non-empty shard ids with members on this node.
    pub fn shard_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .inner
            .lock()
            .keys()
            .map(|k| k.shard_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Joins the group of `shard_id` (a new group of one when it is empty).
    pub fn join(&self, shard_id: &str, deterministic_name: &str, filter: Filter) -> Member {
        let queue = Arc::new(MemberQueue::new(MEMBER_QUEUE));
        let key = (!shard_id.is_empty()).then(|| GroupKey {
            shard_id: shard_id.to_owned(),
            deterministic_name: deterministic_name.to_owned(),
            filter: filter.clone(),
        });
        let mut map = self.inner.lock();
        let existing = key.as_ref().and_then(|k| map.get(k)).cloned();
        let group = match existing {
            Some(group) => group,
            None => {
                let group = Arc::new(Group {
                    key: key.clone(),
                    members: Mutex::new(Vec::new()),
                    next: AtomicUsize::new(0),
                    deterministic: !deterministic_name.is_empty(),
                    ended: Notify::new(),
                });
                if let Some(k) = key {
                    map.insert(k, Arc::clone(&group));
                }
                // Subscribed here, not on the task: what is published once
                // `join` returns reaches the group.
                let sub = self.bus.subscribe(filter.bus_selector(), "firehose");
                let metrics = Arc::clone(self.bus.metrics());
                let share = match (&self.share, shard_id.is_empty()) {
                    (Some(share), false) => Some((Arc::clone(share), shard_id.to_owned())),
                    _ => None,
                };
                tokio::spawn(dispatch(sub, metrics, Arc::clone(&group), filter, share));
                group
            }
        };
        group.members.lock().push(Arc::clone(&queue));
        Member {
            queue,
            group,
            groups: Arc::downgrade(&self.inner),
        }
    }

    /// Shard groups with a non-empty id (for tests and status).
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The group's one reader of the bus: filters and hands out until the
/// last member leaves or the bus closes.
async fn dispatch(
    mut sub: Subscription,
    metrics: Arc<metrics::Metrics>,
    group: Arc<Group>,
    filter: Filter,
    share: Option<(Arc<dyn NodeShare>, String)>,
) {
    loop {
        let delivery = tokio::select! {
            d = sub.recv(DISPATCH_BATCH) => d,
            () = group.ended.notified() => break,
        };
        let Some(delivery) = delivery else {
            // The bus closed (shutdown): the streams end.
            for m in group.members.lock().iter() {
                m.close();
            }
            return;
        };
        let members = group.members.lock().clone();
        if members.is_empty() {
            break;
        }
        if let Some(loss) = delivery.loss {
            // The group lost these before they were split: one member is
            // told, so what a group's members are told adds up to its loss.
            let i = group.next.fetch_add(1, Ordering::Relaxed) % members.len();
            members[i].note_loss(loss.count);
        }
        let mut per_member: Vec<Vec<Arc<Entry>>> = vec![Vec::new(); members.len()];
        let (index, of) = share.as_ref().map_or((0, 1), |(share, id)| share.share(id));
        for entry in delivery.entries {
            if of > 1 && group.split_key(&entry) % of != index {
                continue;
            }
            if filter.matches(&entry.envelope) {
                let i = group.pick(&entry.envelope, members.len());
                per_member[i].push(entry);
            }
        }
        for (m, entries) in members.iter().zip(per_member) {
            if entries.is_empty() {
                continue;
            }
            // Egress is counted by the subscription (`firehose`) as read.
            let dropped = m.push(entries);
            if dropped > 0 {
                metrics.count_drop("queue_full", dropped);
            }
        }
    }
}

impl Group {
    /// What splits a group's stream between nodes: the deterministic
    /// name's hash for metrics of a deterministic group, else the entry's
    /// position (the stream sequence, the same on every node).
    fn split_key(&self, entry: &Entry) -> u64 {
        if self.deterministic {
            if let Some(h) = metric_hash(&entry.envelope) {
                return h;
            }
        }
        entry.seq
    }

    /// The member an envelope goes to.
    fn pick(&self, env: &Envelope, members: usize) -> usize {
        if members <= 1 {
            return 0;
        }
        if self.deterministic {
            if let Some(h) = metric_hash(env) {
                return (h % members as u64) as usize;
            }
        }
        self.next.fetch_add(1, Ordering::Relaxed) % members
    }
}

/// A hash of a counter's name or a gauge's metric names (what a
/// deterministic group sends to one consumer).
fn metric_hash(env: &Envelope) -> Option<u64> {
    let mut h = DefaultHasher::new();
    match &env.message {
        Some(Message::Counter(c)) => c.name.hash(&mut h),
        Some(Message::Gauge(g)) => {
            for name in g.metrics.keys() {
                name.hash(&mut h);
            }
        }
        _ => return None,
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use bytes::Bytes;
    use envelope::v2::Counter;
    use envelope::LogType;
    use router::BusConfig;

    use super::*;
    use crate::messages::{EgressBatchRequest, Selector};

    fn bus() -> Bus {
        Bus::new(BusConfig::default(), Default::default())
    }

    fn all() -> Filter {
        Filter::from_request(&EgressBatchRequest {
            selectors: vec![Selector::default()],
            ..Default::default()
        })
        .expect("a selector")
    }

    fn entry(i: u64, counter: Option<&str>) -> Arc<Entry> {
        let mut env = Envelope::log(1, "app", "0", Bytes::from(i.to_string()), LogType::Out);
        if let Some(name) = counter {
            env.message = Some(Message::Counter(Counter {
                name: name.into(),
                delta: i,
                total: i,
            }));
        }
        let mut e = Entry::new(env);
        e.seq = i;
        Arc::new(e)
    }

    /// Everything a member has now, by `seq`.
    async fn drain(m: &Member) -> Vec<u64> {
        let mut got = Vec::new();
        while let Ok(Some(next)) =
            tokio::time::timeout(Duration::from_millis(200), m.queue.next(1000)).await
        {
            if let Next::Entries(entries) = next {
                got.extend(entries.iter().map(|e| e.seq));
            }
        }
        got
    }

    /// Waits until the bus has `n` subscribers (dispatchers subscribe on
    /// their task).
    async fn subscribed(bus: &Bus, n: usize) {
        for _ in 0..100 {
            if bus.subscriber_count() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} subscribers, not {n}", bus.subscriber_count());
    }

    #[tokio::test]
    async fn a_shard_group_splits_and_a_lone_stream_gets_everything() {
        let bus = bus();
        let groups = Groups::new(bus.clone());
        let a = groups.join("nozzle", "", all());
        let b = groups.join("nozzle", "", all());
        let lone = groups.join("", "", all());
        assert_eq!(groups.len(), 1);
        subscribed(&bus, 2).await;
        let entries: Vec<Arc<Entry>> = (0..100).map(|i| entry(i, None)).collect();
        bus.publish_entries(&entries);
        let (got_a, got_b) = (drain(&a).await, drain(&b).await);
        assert!(!got_a.is_empty() && !got_b.is_empty(), "both busy");
        let set_a: HashSet<u64> = got_a.iter().copied().collect();
        assert!(got_b.iter().all(|s| !set_a.contains(s)), "disjoint");
        let mut union: Vec<u64> = got_a.into_iter().chain(got_b).collect();
        union.sort_unstable();
        assert_eq!(union, (0..100).collect::<Vec<u64>>());
        assert_eq!(drain(&lone).await, (0..100).collect::<Vec<u64>>());

        drop((a, b));
        assert_eq!(groups.len(), 0, "the last member ends the group");
        subscribed(&bus, 1).await;
    }

    #[tokio::test]
    async fn deterministic_names_keep_a_counter_on_one_stream() {
        let bus = bus();
        let groups = Groups::new(bus.clone());
        let members: Vec<Member> = (0..3).map(|_| groups.join("g", "d", all())).collect();
        subscribed(&bus, 1).await;
        let names = ["hits", "misses", "errors", "bytes"];
        let entries: Vec<Arc<Entry>> = (0..200)
            .map(|i| entry(i, Some(names[i as usize % names.len()])))
            .collect();
        bus.publish_entries(&entries);
        let mut owner: HashMap<&str, usize> = HashMap::new();
        let mut total = 0;
        for (m, member) in members.iter().enumerate() {
            for seq in drain(member).await {
                total += 1;
                let name = names[seq as usize % names.len()];
                assert_eq!(*owner.entry(name).or_insert(m), m, "{name} on two streams");
            }
        }
        assert_eq!(total, 200);
    }

    #[tokio::test]
    async fn a_slow_member_drops_its_oldest_and_is_told() {
        let q = MemberQueue::new(3);
        assert_eq!(q.push((0..5).map(|i| entry(i, None))), 2);
        match q.next(10).await {
            Some(Next::Dropped(2)) => {}
            _ => panic!("the loss first"),
        }
        match q.next(10).await {
            Some(Next::Entries(e)) => {
                assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 4])
            }
            _ => panic!("then the newest"),
        }
        q.close();
        assert!(q.next(10).await.is_none());
    }
}
