//! [`MemoryStore`]: recent history in memory.
//!
//! Sources are spread over shards, each a mutex-guarded map from source id to
//! a time-ordered deque, so appends from different connections rarely meet on
//! a lock. Three limits apply: per source the newest `max_per_source`
//! entries, per source nothing older than `max_age`, and across all sources
//! a memory budget. When the budget is exceeded the globally oldest entries
//! go first: eviction moves a time cutoff forward in growing steps and trims
//! every source below it (see `enforce_budget`).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use envelope::{Entry, Selector};
use parking_lot::Mutex;

use crate::query::{ReadQuery, SourceMeta, StoreStats};
use crate::RecentStore;

const SHARDS: usize = 16;
/// Bookkeeping bytes per stored entry beyond the envelope itself.
const ENTRY_OVERHEAD: usize = 64;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Newest entries kept per source.
    pub max_per_source: usize,
    /// Oldest entry kept, by envelope timestamp.
    pub max_age: Duration,
    /// Total approximate bytes across sources.
    pub memory_budget: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_per_source: 100_000,
            max_age: Duration::from_secs(3600),
            memory_budget: 512 << 20,
        }
    }
}

#[derive(Default)]
struct SourceLog {
    entries: VecDeque<(Arc<Entry>, usize)>,
    bytes: usize,
    expired: u64,
}

impl SourceLog {
    fn oldest(&self) -> Option<i64> {
        self.entries.front().map(|(e, _)| e.timestamp())
    }

    fn push(&mut self, entry: &Arc<Entry>, size: usize) {
        let ts = entry.timestamp();
        let item = (Arc::clone(entry), size);
        match self.entries.back() {
            Some((last, _)) if last.timestamp() > ts => {
                // Out of order: keep the deque sorted by (timestamp, seq).
                let at = self.entries.partition_point(|(e, _)| e.timestamp() <= ts);
                self.entries.insert(at, item);
            }
            _ => self.entries.push_back(item),
        }
        self.bytes += size;
    }

    /// Removes the oldest entry; returns its size.
    fn pop_oldest(&mut self) -> Option<usize> {
        let (_, size) = self.entries.pop_front()?;
        self.bytes -= size;
        self.expired += 1;
        Some(size)
    }

    /// Index range of entries with `start <= ts < end`.
    fn range(&self, start: i64, end: i64) -> std::ops::Range<usize> {
        let lo = self.entries.partition_point(|(e, _)| e.timestamp() < start);
        let hi = self.entries.partition_point(|(e, _)| e.timestamp() < end);
        lo..hi.max(lo)
    }
}

type Shard = Mutex<HashMap<Arc<str>, SourceLog>>;

/// Orders metas by source id, for the bounded heap in `meta`.
struct MetaById(SourceMeta);

impl PartialEq for MetaById {
    fn eq(&self, other: &Self) -> bool {
        self.0.source_id == other.0.source_id
    }
}
impl Eq for MetaById {}
impl PartialOrd for MetaById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MetaById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.source_id.cmp(&other.0.source_id)
    }
}

pub struct MemoryStore {
    config: StoreConfig,
    shards: Vec<Shard>,
    hasher: std::collections::hash_map::RandomState,
    bytes: AtomicU64,
    entries: AtomicU64,
    expired: AtomicU64,
    evicted: AtomicU64,
    eviction: Mutex<()>,
}

impl MemoryStore {
    pub fn new(config: StoreConfig) -> Self {
        MemoryStore {
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            eviction: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn shard(&self, source_id: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(source_id) as usize) % SHARDS]
    }

    fn removed(&self, n: u64, bytes: usize, by_age: bool) {
        self.entries.fetch_sub(n, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
        if by_age {
            self.expired.fetch_add(n, Ordering::Relaxed);
        } else {
            self.evicted.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Trims the globally oldest entries until the total is under 95% of
    /// the budget. One evictor at a time; others skip (it works for them).
    ///
    /// Rounds move a time cutoff forward from the oldest entry, by a step
    /// that grows fourfold each round (1 ns, 4 ns, … hours in ~22 rounds),
    /// and trim every source below it in one pass: O(sources + trimmed) per
    /// round, however the sources' timestamps interleave.
    fn enforce_budget(&self) {
        let Some(_guard) = self.eviction.try_lock() else {
            return;
        };
        let target = (self.config.memory_budget as u64) / 100 * 95;
        let over = || self.bytes.load(Ordering::Relaxed) > target;
        if !over() {
            return;
        }
        let oldest = self
            .shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.lock();
                shard.values().filter_map(SourceLog::oldest).min()
            })
            .min();
        let Some(oldest) = oldest else { return };
        let mut step: i64 = 1;
        while over() {
            let cutoff = oldest.saturating_add(step);
            let mut any_left = false;
            for shard in &self.shards {
                let mut shard = shard.lock();
                let (mut n, mut freed) = (0u64, 0usize);
                shard.retain(|_, log| {
                    while log.oldest().is_some_and(|ts| ts < cutoff)
                        && self.bytes.load(Ordering::Relaxed) > target + freed as u64
                    {
                        freed += log.pop_oldest().unwrap_or(0);
                        n += 1;
                    }
                    !log.entries.is_empty()
                });
                any_left |= !shard.is_empty();
                drop(shard);
                if n > 0 {
                    self.removed(n, freed, false);
                }
            }
            if !any_left || step == i64::MAX {
                return;
            }
            step = step.saturating_mul(4);
        }
    }
}

impl RecentStore for MemoryStore {
    fn append(&self, batch: &[Arc<Entry>]) {
        let max_age = self.config.max_age.as_nanos() as i64;
        let (mut added, mut added_bytes) = (0u64, 0u64);
        let mut i = 0;
        while i < batch.len() {
            // Runs of the same source (the common case) take the lock once.
            let source = batch[i].source_id();
            let mut shard = self.shard(source).lock();
            let log = match shard.get_mut(source) {
                Some(log) => log,
                None => shard.entry(Arc::from(source)).or_default(),
            };
            let (mut count_evicted, mut count_bytes) = (0u64, 0usize);
            while i < batch.len() && batch[i].source_id() == source {
                let entry = &batch[i];
                let size = entry.envelope.approx_size() + ENTRY_OVERHEAD;
                log.push(entry, size);
                added += 1;
                added_bytes += size as u64;
                if log.entries.len() > self.config.max_per_source {
                    count_bytes += log.pop_oldest().unwrap_or(0);
                    count_evicted += 1;
                }
                i += 1;
            }
            // Age limit relative to the newest entry, so a stalled clock
            // doesn't keep stale history.
            let mut aged = (0u64, 0usize);
            if let Some((newest, _)) = log.entries.back() {
                let horizon = newest.timestamp().saturating_sub(max_age);
                while log.oldest().is_some_and(|ts| ts < horizon) {
                    aged.1 += log.pop_oldest().unwrap_or(0);
                    aged.0 += 1;
                }
            }
            drop(shard);
            self.entries.fetch_add(added, Ordering::Relaxed);
            self.bytes.fetch_add(added_bytes, Ordering::Relaxed);
            (added, added_bytes) = (0, 0);
            if count_evicted > 0 {
                self.removed(count_evicted, count_bytes, false);
            }
            if aged.0 > 0 {
                self.removed(aged.0, aged.1, true);
            }
        }
        if self.bytes.load(Ordering::Relaxed) > self.config.memory_budget as u64 {
            self.enforce_budget();
        }
    }

    fn read(&self, source_id: &str, query: &ReadQuery) -> Vec<Arc<Entry>> {
        let shard = self.shard(source_id).lock();
        let Some(log) = shard.get(source_id) else {
            return Vec::new();
        };
        let range = log.range(query.start_time, query.end_time);
        let wanted = |e: &Arc<Entry>| {
            query.envelope_types.is_empty()
                || e.envelope
                    .envelope_type()
                    .is_some_and(|t| query.envelope_types.contains(&t))
        };
        let limit = query.limit;
        if query.descending {
            log.entries
                .range(range)
                .rev()
                .map(|(e, _)| e)
                .filter(|e| wanted(e))
                .take(limit)
                .cloned()
                .collect()
        } else {
            log.entries
                .range(range)
                .map(|(e, _)| e)
                .filter(|e| wanted(e))
                .take(limit)
                .cloned()
                .collect()
        }
    }

    fn recent(&self, selector: &Selector, after: i64, limit: usize) -> Vec<Arc<Entry>> {
        let mut found: Vec<Arc<Entry>> = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock();
            for log in shard.values() {
                let start = log.entries.partition_point(|(e, _)| e.timestamp() <= after);
                let matching = log
                    .entries
                    .range(start..)
                    .rev()
                    .map(|(e, _)| e)
                    .filter(|e| selector.matches(e))
                    .take(limit)
                    .cloned();
                found.extend(matching);
            }
        }
        found.sort_by_key(|e| (e.timestamp(), e.seq));
        let skip = found.len().saturating_sub(limit);
        found.drain(..skip);
        found
    }

    fn meta(&self, after: Option<&str>, limit: usize) -> Vec<SourceMeta> {
        // The `limit` smallest ids after `after`, kept in a max-heap so a
        // million sources never become a million-entry answer in memory.
        let mut best: std::collections::BinaryHeap<MetaById> = Default::default();
        if limit == 0 {
            return Vec::new();
        }
        for shard in &self.shards {
            let shard = shard.lock();
            for (id, log) in shard.iter() {
                if after.is_some_and(|a| id.as_ref() <= a) {
                    continue;
                }
                if best.len() >= limit {
                    match best.peek() {
                        Some(worst) if id.as_ref() < worst.0.source_id.as_str() => {
                            best.pop();
                        }
                        _ => continue,
                    }
                }
                best.push(MetaById(SourceMeta {
                    source_id: id.to_string(),
                    count: log.entries.len() as u64,
                    expired: log.expired,
                    oldest_timestamp: log.oldest().unwrap_or(0),
                    newest_timestamp: log.entries.back().map(|(e, _)| e.timestamp()).unwrap_or(0),
                }));
            }
        }
        let mut out: Vec<SourceMeta> = best.into_iter().map(|m| m.0).collect();
        out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        out
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            entries: self.entries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            sources: self.shards.iter().map(|s| s.lock().len() as u64).sum(),
            expired: self.expired.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn expire(&self, now: i64) {
        let horizon = now.saturating_sub(self.config.max_age.as_nanos() as i64);
        for shard in &self.shards {
            let mut shard = shard.lock();
            let (mut n, mut bytes) = (0u64, 0usize);
            shard.retain(|_, log| {
                while log.oldest().is_some_and(|ts| ts < horizon) {
                    bytes += log.pop_oldest().unwrap_or(0);
                    n += 1;
                }
                !log.entries.is_empty()
            });
            drop(shard);
            if n > 0 {
                self.removed(n, bytes, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::{Envelope, LogType};

    fn entry(source: &str, ts: i64, seq: u64) -> Arc<Entry> {
        let mut e = Entry::new(Envelope::log(
            ts,
            source,
            "0",
            Bytes::from(format!("line {ts}")),
            LogType::Out,
        ));
        e.seq = seq;
        Arc::new(e)
    }

    fn store(max_per_source: usize, budget: usize) -> MemoryStore {
        MemoryStore::new(StoreConfig {
            max_per_source,
            max_age: Duration::from_secs(3600),
            memory_budget: budget,
        })
    }

    #[test]
    fn read_is_time_ordered_even_when_appends_are_not() {
        let s = store(100, 1 << 30);
        s.append(&[entry("a", 30, 1), entry("a", 10, 2), entry("a", 20, 3)]);
        let got: Vec<i64> = s
            .read("a", &ReadQuery::default())
            .iter()
            .map(|e| e.timestamp())
            .collect();
        assert_eq!(got, vec![10, 20, 30]);
        let q = ReadQuery {
            start_time: 15,
            end_time: 30,
            ..Default::default()
        };
        assert_eq!(s.read("a", &q).len(), 1);
        let q = ReadQuery {
            descending: true,
            limit: 2,
            ..Default::default()
        };
        let got: Vec<i64> = s.read("a", &q).iter().map(|e| e.timestamp()).collect();
        assert_eq!(got, vec![30, 20]);
    }

    #[test]
    fn per_source_count_limit_keeps_newest() {
        let s = store(3, 1 << 30);
        let batch: Vec<_> = (1..=10).map(|i| entry("a", i, i as u64)).collect();
        s.append(&batch);
        let got: Vec<i64> = s
            .read("a", &ReadQuery::default())
            .iter()
            .map(|e| e.timestamp())
            .collect();
        assert_eq!(got, vec![8, 9, 10]);
        let meta = s.meta(None, usize::MAX);
        assert_eq!(meta[0].count, 3);
        assert_eq!(meta[0].expired, 7);
        assert_eq!(s.stats().entries, 3);
    }

    #[test]
    fn meta_pages_by_source_id() {
        let s = store(10, 1 << 30);
        let batch: Vec<_> = (0..50).map(|i| entry(&format!("s{i:02}"), i, 1)).collect();
        s.append(&batch);
        let ids = |m: Vec<SourceMeta>| m.into_iter().map(|m| m.source_id).collect::<Vec<_>>();
        assert_eq!(ids(s.meta(None, 3)), vec!["s00", "s01", "s02"]);
        assert_eq!(ids(s.meta(Some("s02"), 2)), vec!["s03", "s04"]);
        assert_eq!(ids(s.meta(Some("s48"), 5)), vec!["s49"]);
        assert_eq!(s.meta(None, usize::MAX).len(), 50);
        assert!(s.meta(None, 0).is_empty());
    }

    #[test]
    fn age_limit_applies_on_expire() {
        let s = store(100, 1 << 30);
        let hour = 3_600_000_000_000i64;
        s.append(&[entry("a", 1, 1), entry("a", hour / 2, 2)]);
        s.expire(hour + 10);
        assert_eq!(s.read("a", &ReadQuery::default()).len(), 1);
        s.expire(3 * hour);
        assert!(s.meta(None, 10).is_empty());
        assert_eq!(s.stats().entries, 0);
        assert_eq!(s.stats().bytes, 0);
    }

    #[test]
    fn memory_budget_evicts_oldest_across_sources() {
        let one = entry("a", 0, 0).envelope.approx_size() + ENTRY_OVERHEAD;
        let s = store(1000, one * 20);
        // "old" gets early timestamps, "new" late ones.
        let old: Vec<_> = (0..15).map(|i| entry("old", i, i as u64)).collect();
        let new: Vec<_> = (100..115).map(|i| entry("new", i, i as u64)).collect();
        s.append(&old);
        s.append(&new);
        let stats = s.stats();
        assert!(stats.bytes <= (one * 20) as u64, "{stats:?}");
        assert_eq!(s.read("new", &ReadQuery::default()).len(), 15);
        assert!(s.read("old", &ReadQuery::default()).len() < 15);
        assert!(stats.evicted > 0);
    }

    #[test]
    fn eviction_with_many_interleaved_sources_is_quick_and_fair() {
        let one = entry("s0000", 0, 0).envelope.approx_size() + ENTRY_OVERHEAD;
        let s = store(1_000_000, one * 20_000);
        // 2,000 sources whose timestamps interleave, 20 entries each: twice
        // the budget.
        for round in 0..20i64 {
            let batch: Vec<_> = (0..2_000)
                .map(|i| entry(&format!("s{i:04}"), round * 2_000 + i, round as u64))
                .collect();
            s.append(&batch);
        }
        let stats = s.stats();
        assert!(stats.bytes <= (one * 20_000) as u64, "{stats:?}");
        // The oldest went first: what is left is the newest half or so.
        let kept: Vec<i64> = s
            .recent(&Selector::all(), i64::MIN, usize::MAX)
            .iter()
            .map(|e| e.timestamp())
            .collect();
        let newest = 20 * 2_000 - 1;
        assert_eq!(kept.last(), Some(&newest));
        assert!(
            kept.first().is_some_and(|t| *t >= 20_000 - 2_000),
            "{:?}",
            kept.first()
        );
    }

    #[test]
    fn recent_merges_sources_and_respects_after() {
        let s = store(100, 1 << 30);
        s.append(&[
            entry("a", 1, 1),
            entry("b", 2, 1),
            entry("a", 3, 2),
            entry("b", 4, 2),
        ]);
        let got: Vec<i64> = s
            .recent(&Selector::all(), 0, 3)
            .iter()
            .map(|e| e.timestamp())
            .collect();
        assert_eq!(got, vec![2, 3, 4]);
        let got = s.recent(&Selector::all(), 3, 10);
        assert_eq!(got.len(), 1);
        let only_a = Selector {
            source_ids: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(s.recent(&only_a, 0, 10).len(), 2);
    }
}
