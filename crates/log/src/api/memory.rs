//! [`MemoryLog`]: the log in memory, bounded, for tests and diskless hosts.
//!
//! One position-ordered deque is the log (capped at `max_entries`, oldest
//! dropped first, like retention); a deque per source is its index (capped
//! at `max_per_source`: the oldest leave the index, as on disk). Both hold
//! the same `Arc`s. An approximate byte budget drops the oldest on append;
//! [`Log::retain`] drops the oldest while they are older than `max_age_ns`
//! (stopping at the first younger one, as whole-segment deletion does on
//! disk). Timestamps are stamped on append against the per-source deques
//! (`stamp.rs`). Committed cursors live in a map and die with the
//! process. Every call is a short critical section, so it runs inline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use envelope::{key, Entry, Envelope, Selector};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::consumers::check_name;
use super::cursor::Cursor;
use super::types::{
    LogStats, Position, ReadPage, Retained, SourceMeta, StoredEntry, DEFAULT_MAX_AGE_NS,
};
use super::{scan_budget, ApiError, Log, LogFuture, PAGE_BYTES};
use crate::stamp;

#[derive(Clone, Debug)]
pub struct MemoryLogConfig {
    /// Entries kept in all (the oldest go first).
    pub max_entries: usize,
    /// Entries kept per source for [`Log::read_source`] and meta.
    pub max_per_source: usize,
    /// [`Log::retain`] drops the oldest entries while they are older than
    /// this (nanoseconds).
    pub max_age_ns: Option<i64>,
    /// Approximate bytes kept in all (the oldest go first, on append).
    pub max_bytes: Option<u64>,
}

impl Default for MemoryLogConfig {
    fn default() -> Self {
        MemoryLogConfig {
            max_entries: 1_000_000,
            max_per_source: crate::DEFAULT_MAX_PER_SOURCE,
            max_age_ns: Some(DEFAULT_MAX_AGE_NS),
            max_bytes: Some(512 << 20),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Entries at positions `first..next`, in order.
    log: VecDeque<StoredEntry>,
    first: Position,
    next: Position,
    sources: HashMap<String, SourceEntries>,
    indexed: u64,
    bytes: u64,
    consumers: HashMap<String, Cursor>,
}

/// One source's index: its entries in position order.
#[derive(Debug)]
struct SourceEntries {
    items: VecDeque<StoredEntry>,
    /// Whether timestamps are non-decreasing too (then meta reads the ends).
    ts_sorted: bool,
    /// The newest timestamp appended, for stamping (`stamp.rs`).
    newest_ts: i64,
}

impl Default for SourceEntries {
    fn default() -> Self {
        SourceEntries {
            items: VecDeque::new(),
            ts_sorted: true,
            newest_ts: i64::MIN,
        }
    }
}

impl Inner {
    /// Drops the oldest entry from the log and its source's index.
    fn pop_oldest(&mut self) -> bool {
        let Some(old) = self.log.pop_front() else {
            return false;
        };
        self.first = old.position + 1;
        self.bytes -= old.entry.envelope.approx_size() as u64;
        let source = &old.entry.envelope.source_id;
        if let Some(q) = self.sources.get_mut(source) {
            if q.items.front().map(|e| e.position) == Some(old.position) {
                q.items.pop_front();
                self.indexed -= 1;
            }
            if q.items.is_empty() {
                self.sources.remove(source);
            }
        }
        true
    }
}

impl SourceEntries {
    /// Oldest and newest timestamps (a scan only when out of order).
    fn time_range(&self) -> (i64, i64) {
        let ts = |e: &StoredEntry| e.entry.envelope.timestamp;
        match (self.items.front(), self.items.back()) {
            (Some(f), Some(b)) if self.ts_sorted => (ts(f), ts(b)),
            _ => self.items.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
                (lo.min(ts(e)), hi.max(ts(e)))
            }),
        }
    }
}

#[derive(Debug)]
pub struct MemoryLog {
    config: MemoryLogConfig,
    inner: Mutex<Inner>,
    /// The next position, for [`Log::wait_beyond`].
    end: watch::Sender<Position>,
}

impl MemoryLog {
    pub fn new(config: MemoryLogConfig) -> Self {
        MemoryLog {
            config: MemoryLogConfig {
                max_entries: config.max_entries.max(1),
                max_per_source: config.max_per_source.max(1),
                ..config
            },
            inner: Mutex::new(Inner::default()),
            end: watch::Sender::new(0),
        }
    }

    fn append_now(&self, batch: Vec<Envelope>) -> Vec<Position> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let mut positions = Vec::with_capacity(batch.len());
        for mut envelope in batch {
            let position = inner.next;
            inner.next += 1;
            // The source's entries first: the timestamp is stamped against
            // them (`stamp.rs`) before the entry is built. `get_mut` first:
            // `entry` would copy the id every time.
            let per_source = match inner.sources.get_mut(&envelope.source_id) {
                Some(q) => q,
                None => inner.sources.entry(envelope.source_id.clone()).or_default(),
            };
            let ts = stamp::nudge(&mut per_source.newest_ts, envelope.timestamp);
            envelope.timestamp = ts;
            let key: Arc<str> = key::key_for(&envelope).into();
            let mut entry = Entry::with_key(envelope, key);
            entry.seq = position;
            let stored = StoredEntry {
                position,
                entry: Arc::new(entry),
            };
            if per_source
                .items
                .back()
                .is_some_and(|last| last.entry.envelope.timestamp > ts)
            {
                per_source.ts_sorted = false;
            }
            per_source.items.push_back(stored.clone());
            inner.indexed += 1;
            if per_source.items.len() > self.config.max_per_source {
                per_source.items.pop_front();
                inner.indexed -= 1;
            }
            inner.bytes += stored.entry.envelope.approx_size() as u64;
            inner.log.push_back(stored);
            positions.push(position);
        }
        let max_bytes = self.config.max_bytes.unwrap_or(u64::MAX);
        while inner.log.len() > self.config.max_entries || inner.bytes > max_bytes {
            if !inner.pop_oldest() {
                break;
            }
        }
        let next = inner.next;
        drop(g);
        self.end.send_if_modified(|end| {
            let newer = next > *end;
            *end = (*end).max(next);
            newer
        });
        positions
    }

    fn read_source_now(
        &self,
        source_id: &str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        descending: bool,
    ) -> Vec<StoredEntry> {
        let g = self.inner.lock();
        let Some(q) = g.sources.get(source_id) else {
            return Vec::new();
        };
        let hit = |e: &&StoredEntry| {
            let t = e.entry.envelope.timestamp;
            t >= start_ns && t < end_ns
        };
        if descending {
            q.items
                .iter()
                .rev()
                .filter(hit)
                .take(limit)
                .cloned()
                .collect()
        } else {
            q.items.iter().filter(hit).take(limit).cloned().collect()
        }
    }

    fn read_from_now(&self, cursor: Cursor, selector: &Selector, limit: usize) -> ReadPage {
        let g = self.inner.lock();
        let from = cursor.next();
        let start = from.max(g.first);
        let mut page = ReadPage {
            entries: Vec::new(),
            next_cursor: cursor,
            skipped: 0,
            caught_up: true,
        };
        if from >= g.next {
            // A cursor past the end (another log's, or a wiped one's)
            // resumes at the end rather than waiting for positions to grow.
            page.next_cursor = Cursor::at(g.next);
            return page;
        }
        page.skipped = start - from;
        if start >= g.next {
            page.next_cursor = Cursor::at(start);
            return page;
        }
        let mut at = start;
        let budget = scan_budget(limit);
        let offset = (start - g.first) as usize;
        let mut bytes = 0usize;
        for e in g.log.iter().skip(offset).take(budget) {
            if page.entries.len() >= limit || bytes >= PAGE_BYTES {
                break;
            }
            at = e.position + 1;
            if selector.matches(&e.entry) {
                bytes += e.entry.envelope.approx_size();
                page.entries.push(e.clone());
            }
        }
        page.next_cursor = Cursor::at(at);
        page.caught_up = at >= g.next;
        page
    }

    fn meta_now(&self, after: Option<&str>, limit: usize) -> Vec<SourceMeta> {
        let g = self.inner.lock();
        let mut ids: Vec<&String> = g
            .sources
            .keys()
            .filter(|id| after.is_none_or(|a| id.as_str() > a))
            .collect();
        ids.sort();
        ids.truncate(limit);
        ids.into_iter()
            .filter_map(|id| {
                let q = g.sources.get(id)?;
                let (oldest_timestamp, newest_timestamp) = q.time_range();
                Some(SourceMeta {
                    source_id: id.clone(),
                    count: q.items.len() as u64,
                    oldest_timestamp,
                    newest_timestamp,
                })
            })
            .collect()
    }

    fn stats_now(&self) -> LogStats {
        let g = self.inner.lock();
        LogStats {
            next_position: g.next,
            oldest_position: g.log.front().map(|e| e.position),
            entries: g.indexed,
            sources: g.sources.len() as u64,
            bytes: g.bytes,
            sync_errors: 0,
            memory_bytes: g.bytes,
            cached_entries: 0,
        }
    }
}

impl Log for MemoryLog {
    fn append(&self, batch: Vec<Envelope>) -> LogFuture<'_, Vec<Position>> {
        let positions = self.append_now(batch);
        Box::pin(async move { Ok(positions) })
    }

    fn read_source<'a>(
        &'a self,
        source_id: &'a str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        descending: bool,
    ) -> LogFuture<'a, Vec<StoredEntry>> {
        let out = self.read_source_now(source_id, start_ns, end_ns, limit, descending);
        Box::pin(async move { Ok(out) })
    }

    fn read_from<'a>(
        &'a self,
        cursor: Cursor,
        selector: &'a Selector,
        limit: usize,
    ) -> LogFuture<'a, ReadPage> {
        let page = self.read_from_now(cursor, selector, limit);
        Box::pin(async move { Ok(page) })
    }

    fn end_cursor(&self) -> LogFuture<'_, Cursor> {
        let end = Cursor::at(self.inner.lock().next);
        Box::pin(async move { Ok(end) })
    }

    fn wait_beyond(&self, cursor: Cursor) -> LogFuture<'_, Cursor> {
        let mut rx = self.end.subscribe();
        Box::pin(async move {
            let end = rx
                .wait_for(|&end| end > cursor.next())
                .await
                .map_err(|_| ApiError::Closed)?;
            Ok(Cursor::at(*end))
        })
    }

    fn retain(&self, now_ns: i64) -> LogFuture<'_, Retained> {
        let mut g = self.inner.lock();
        let mut removed = 0;
        if let Some(age) = self.config.max_age_ns {
            let cutoff = now_ns.saturating_sub(age);
            while g
                .log
                .front()
                .is_some_and(|e| e.entry.envelope.timestamp < cutoff)
            {
                g.pop_oldest();
                removed += 1;
            }
        }
        let out = Retained {
            removed,
            oldest_position: g.log.front().map(|e| e.position),
        };
        Box::pin(async move { Ok(out) })
    }

    fn commit<'a>(&'a self, consumer: &'a str, cursor: Cursor) -> LogFuture<'a, ()> {
        Box::pin(async move {
            check_name(consumer)?;
            self.inner
                .lock()
                .consumers
                .insert(consumer.to_owned(), cursor);
            Ok(())
        })
    }

    fn forget<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, bool> {
        Box::pin(async move {
            check_name(consumer)?;
            Ok(self.inner.lock().consumers.remove(consumer).is_some())
        })
    }

    fn committed<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, Option<Cursor>> {
        Box::pin(async move {
            check_name(consumer)?;
            Ok(self.inner.lock().consumers.get(consumer).copied())
        })
    }

    fn meta<'a>(&'a self, after: Option<&'a str>, limit: usize) -> LogFuture<'a, Vec<SourceMeta>> {
        let out = self.meta_now(after, limit);
        Box::pin(async move { Ok(out) })
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        let s = self.stats_now();
        Box::pin(async move { Ok::<_, ApiError>(s) })
    }
}
