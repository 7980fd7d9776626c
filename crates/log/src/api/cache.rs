//! The recent-records cache of [`DiskLog`](super::DiskLog) (and of the
//! cluster's JetStream log, which fills it from its follower): the entries
//! appended most recently, kept in memory as the `Arc<Entry>`s built at
//! append (keys computed once, envelopes never re-decoded), so consumers
//! that keep up — the live fan-out, drains near the end, `--recent` — are
//! answered without touching disk or protobuf.
//!
//! The cache is one position-ordered ring holding a contiguous suffix of
//! the log written in this run: `first..end`, where `end` is the position
//! after the newest written entry. It is filled under the writer's lock
//! right after each successful write, bounded by bytes (the oldest are
//! evicted first) and pruned by retention. A `read_from` whose cursor lies
//! in `first..end` is answered from here with the same page semantics as
//! the disk path (`limit`, [`PAGE_BYTES`], scan budget, `skipped`,
//! `caught_up`); anything older goes to disk.
//!
//! `benches/read_end.rs` on the 2-core development machine (December 2026,
//! other builds running, so ±20%): a page of 100 from 100 before the end
//! of 100,000 envelopes takes 1.6–2.7 µs from the cache against 66 µs from
//! disk (25–40×); one source of 100 (1,000 entries scanned for 10 hits)
//! 4.9–8.9 µs against 364–397 µs (45–75×). Filling the cache costs
//! `append` about 0.3 µs per entry (142 µs per batch of 100 against 110
//! µs without a cache, mostly the evicted entries' frees). Under `loggen`
//! (2 connections, 256-byte syslog) a profile of the server put 8% of its
//! CPU in `approx_size`, now computed once per entry at `extend` (1.4%),
//! and ~25% in freeing evicted entries under the writer's lock: `extend`
//! now hands them back and `DiskLog::append` frees them after the blocking
//! write, on the async worker (the writer's lock is held ~5× shorter).

use std::collections::VecDeque;
use std::mem::size_of;

use envelope::{Entry, Selector};

use super::cursor::Cursor;
use super::types::{Position, ReadPage, StoredEntry};
use super::{scan_budget, PAGE_BYTES};

/// Default byte budget of the cache (`DiskLogConfig::cache_bytes`).
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// What one cached entry is charged: the envelope's approximate size
/// (`envelope_bytes`, computed once when it is cached), its key, and the
/// `Entry`/`Arc`/ring slot around it.
fn entry_bytes(envelope_bytes: usize, entry: &Entry) -> usize {
    envelope_bytes
        + entry.key.len()
        + size_of::<Entry>()
        + size_of::<Cached>()
        + 2 * size_of::<usize>()
}

/// A cached entry with its envelope's
/// [`approx_size`](envelope::Envelope::approx_size), which walks the tags:
/// computed once at `extend`, reused by eviction and by every page's byte
/// count.
#[derive(Debug)]
struct Cached {
    stored: StoredEntry,
    envelope_bytes: usize,
}

impl Cached {
    fn new(stored: StoredEntry) -> Self {
        let envelope_bytes = stored.entry.envelope.approx_size();
        Cached {
            stored,
            envelope_bytes,
        }
    }

    /// What the cache's budget is charged for it.
    fn charge(&self) -> usize {
        entry_bytes(self.envelope_bytes, &self.stored.entry)
    }
}

/// Entries [`RecentCache::extend`] let go of; dropping it frees them.
#[derive(Debug)]
pub struct Evicted(Vec<Cached>);

#[derive(Debug)]
pub struct RecentCache {
    /// Consecutive positions `end - entries.len()..end` (sparse: growing
    /// positions up to `end`).
    entries: VecDeque<Cached>,
    /// One past the newest cached (or, when empty, written) position.
    end: Position,
    bytes: usize,
    max_bytes: usize,
    /// Positions may be void ([`RecentCache::sparse`]).
    sparse: bool,
}

/// Where the log stands, as the reader sees it when a read starts.
#[derive(Clone, Copy, Debug)]
pub struct LogBounds {
    /// The oldest readable position, if any.
    pub oldest: Option<Position>,
    /// One past the newest readable position.
    pub next: Position,
}

impl RecentCache {
    /// An empty cache for a log whose next position is `end`.
    pub fn new(end: Position, max_bytes: usize) -> Self {
        RecentCache {
            entries: VecDeque::new(),
            end,
            bytes: 0,
            max_bytes,
            sparse: false,
        }
    }

    /// A cache for a log whose positions grow but leave some unused (the
    /// cluster's: a stream message's sequence and the envelope's place in
    /// it). It holds every entry from its first on: a position it lacks
    /// between its first and the log's end is void, not lost, so a read
    /// there continues with the next entry it holds.
    pub fn sparse(end: Position, max_bytes: usize) -> Self {
        RecentCache {
            sparse: true,
            ..RecentCache::new(end, max_bytes)
        }
    }

    /// The oldest cached position (`end` when empty).
    pub fn first(&self) -> Position {
        match self.entries.front() {
            Some(c) if self.sparse => c.stored.position,
            _ => self.end - self.entries.len() as Position,
        }
    }

    /// The index of the first entry at or after `position`.
    fn index_of(&self, position: Position) -> usize {
        if self.sparse {
            self.entries
                .partition_point(|c| c.stored.position < position)
        } else {
            usize::try_from(position.saturating_sub(self.first())).unwrap_or(usize::MAX)
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached entries, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &StoredEntry> {
        self.entries.iter().rev().map(|c| &c.stored)
    }

    /// The cached entry at `position`, if any.
    pub fn get(&self, position: Position) -> Option<&StoredEntry> {
        if position < self.first() {
            return None;
        }
        self.entries
            .get(self.index_of(position))
            .map(|c| &c.stored)
            .filter(|s| s.position == position)
    }

    /// Adds entries just written, in position order, then evicts the oldest
    /// while over budget. An entry that does not follow `end` (positions
    /// skipped) restarts the cache at it, so it stays contiguous. The
    /// entries that left are returned for the caller to drop once it holds
    /// no lock: freeing an envelope (its tags, strings and payload) is most
    /// of the cost of filling the cache.
    pub fn extend(&mut self, written: impl IntoIterator<Item = StoredEntry>) -> Evicted {
        let mut evicted = Evicted(Vec::new());
        if self.max_bytes == 0 {
            // Off: the entries are not even built (the iterator is lazy).
            return evicted;
        }
        for e in written {
            let follows = if self.sparse {
                e.position >= self.end
            } else {
                e.position == self.end
            };
            if !follows {
                evicted.0.extend(self.entries.drain(..));
                self.bytes = 0;
            }
            self.end = e.position + 1;
            let cached = Cached::new(e);
            self.bytes += cached.charge();
            self.entries.push_back(cached);
        }
        while self.bytes > self.max_bytes {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.charge();
            evicted.0.push(old);
        }
        evicted
    }

    /// Drops every entry below `floor` (retention removed them).
    pub fn remove_below(&mut self, floor: Position) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.stored.position < floor)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.charge();
            }
        }
        self.end = self.end.max(floor);
    }

    /// The page `read_from(cursor, selector, limit)` returns, if this cache
    /// can answer it: the cursor (after stepping over removed positions)
    /// is cached, or at or past the end of the log. `None` sends the read
    /// to disk.
    pub fn read_from(
        &self,
        bounds: LogBounds,
        cursor: Cursor,
        selector: &Selector,
        limit: usize,
    ) -> Option<ReadPage> {
        // The same steps as the disk path: a cursor past the end resumes
        // at the end; positions below the oldest kept one are skipped.
        let mut next = cursor.next().min(bounds.next);
        let floor = bounds.oldest.unwrap_or(bounds.next);
        let mut skipped = 0;
        if next < floor {
            skipped = floor - next;
            next = floor;
        }
        let mut page = ReadPage {
            entries: Vec::new(),
            next_cursor: Cursor::at(next),
            skipped,
            caught_up: true,
        };
        if next >= bounds.next {
            return Some(page);
        }
        let holds = if self.sparse {
            // Every entry below the log's end is here from `first` on (so
            // a position past the newest one is void), unless it is off.
            self.max_bytes > 0 && next >= self.first()
        } else {
            next >= self.first() && next < self.end
        };
        if !holds {
            return None;
        }
        let offset = self.index_of(next);
        let mut bytes = 0usize;
        let mut scanned = 0;
        let budget = scan_budget(limit);
        for c in self
            .entries
            .range(offset.min(self.entries.len())..)
            .take(budget)
        {
            if page.entries.len() >= limit || bytes >= PAGE_BYTES {
                break;
            }
            scanned += 1;
            next = c.stored.position + 1;
            if selector.matches(&c.stored.entry) {
                bytes += c.envelope_bytes;
                page.entries.push(c.stored.clone());
            }
        }
        if self.sparse && offset + scanned >= self.entries.len() {
            // Past the newest entry: nothing lies before the log's end.
            next = next.max(bounds.next);
        }
        page.next_cursor = Cursor::at(next);
        page.caught_up = next >= bounds.next.max(self.end);
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use envelope::{Envelope, LogType};

    use super::*;

    fn stored(position: Position, payload: usize) -> StoredEntry {
        let envelope = Envelope::log(
            position as i64,
            "app",
            "0",
            Bytes::from(vec![b'x'; payload]),
            LogType::Out,
        );
        let mut entry = Entry::new(envelope);
        entry.seq = position;
        StoredEntry {
            position,
            entry: Arc::new(entry),
        }
    }

    #[test]
    fn evicts_oldest_by_bytes() {
        let one = Cached::new(stored(0, 1000)).charge();
        let mut cache = RecentCache::new(0, one * 10);
        cache.extend((0..25).map(|p| stored(p, 1000)));
        assert_eq!(cache.len(), 10);
        assert_eq!((cache.first(), cache.end), (15, 25));
        assert_eq!(cache.bytes(), one * 10);
        // One entry bigger than the budget leaves nothing cached.
        cache.extend([stored(25, 20 * one)]);
        assert_eq!((cache.len(), cache.first(), cache.bytes()), (0, 26, 0));
    }

    #[test]
    fn off_holds_nothing_and_answers_only_at_the_end() {
        let mut cache = RecentCache::new(0, 0);
        cache.extend((0..5).map(|p| stored(p, 10)));
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        let bounds = LogBounds {
            oldest: Some(0),
            next: 5,
        };
        let all = Selector::all();
        assert!(cache.read_from(bounds, Cursor::at(4), &all, 5).is_none());
        let end = cache.read_from(bounds, Cursor::at(5), &all, 5).unwrap();
        assert!(end.caught_up && end.entries.is_empty());
    }

    #[test]
    fn retention_and_gaps_keep_it_contiguous() {
        let mut cache = RecentCache::new(5, usize::MAX);
        cache.extend((5..15).map(|p| stored(p, 10)));
        cache.remove_below(8);
        assert_eq!((cache.first(), cache.len()), (8, 7));
        cache.extend([stored(20, 10)]);
        assert_eq!((cache.first(), cache.len()), (20, 1));
        cache.remove_below(30);
        assert_eq!((cache.first(), cache.len(), cache.bytes()), (30, 0, 0));
    }

    #[test]
    fn answers_only_what_it_holds() {
        let mut cache = RecentCache::new(0, usize::MAX);
        cache.extend((10..20).map(|p| stored(p, 10)));
        let all = Selector::all();
        let bounds = LogBounds {
            oldest: Some(0),
            next: 20,
        };
        assert!(cache.read_from(bounds, Cursor::at(9), &all, 5).is_none());
        let page = cache.read_from(bounds, Cursor::at(12), &all, 5).unwrap();
        assert_eq!(page.entries.len(), 5);
        assert_eq!(page.next_cursor, Cursor::at(17));
        assert!(!page.caught_up);
        assert_eq!(cache.get(10).map(|e| e.position), Some(10));
        assert!(cache.get(9).is_none() && cache.get(20).is_none());
        let end = cache.read_from(bounds, Cursor::at(99), &all, 5).unwrap();
        assert_eq!((end.next_cursor, end.caught_up), (Cursor::at(20), true));
    }

    #[test]
    fn a_sparse_cache_steps_over_void_positions() {
        // Messages 1 and 2 of a stream, with 3 and 2 envelopes: positions
        // seq << 16 | index.
        let at = |seq: u64, i: u64| seq << 16 | i;
        let mut cache = RecentCache::sparse(at(1, 0), usize::MAX);
        cache.extend([at(1, 0), at(1, 1), at(1, 2), at(2, 0), at(2, 1)].map(|p| stored(p, 10)));
        let all = Selector::all();
        let bounds = LogBounds {
            oldest: Some(at(1, 0)),
            next: at(3, 0),
        };
        assert_eq!(cache.first(), at(1, 0));
        assert_eq!(cache.get(at(1, 2)).map(|e| e.position), Some(at(1, 2)));
        assert!(cache.get(at(1, 3)).is_none());
        // From a void position: the next entry there is.
        let page = cache
            .read_from(bounds, Cursor::at(at(1, 3)), &all, 10)
            .unwrap();
        let got: Vec<u64> = page.entries.iter().map(|e| e.position).collect();
        assert_eq!(got, vec![at(2, 0), at(2, 1)]);
        assert_eq!(
            (page.next_cursor, page.caught_up, page.skipped),
            (Cursor::at(at(3, 0)), true, 0)
        );
        // A page that stops early resumes right after its last entry.
        let page = cache
            .read_from(bounds, Cursor::at(at(1, 0)), &all, 2)
            .unwrap();
        assert_eq!(page.next_cursor, Cursor::at(at(1, 2)));
        assert!(!page.caught_up);
        // Past the newest entry but before the log's end: nothing there.
        let page = cache
            .read_from(bounds, Cursor::at(at(2, 2)), &all, 10)
            .unwrap();
        assert!(page.entries.is_empty() && page.caught_up);
        // Below the first entry (the log holds older ones): not this
        // cache's to answer.
        let older = LogBounds {
            oldest: Some(at(0, 0)),
            ..bounds
        };
        assert!(cache
            .read_from(older, Cursor::at(at(0, 5)), &all, 10)
            .is_none());
        // Off: it answers nothing but the end.
        let off = RecentCache::sparse(at(1, 0), 0);
        assert!(off
            .read_from(bounds, Cursor::at(at(2, 0)), &all, 10)
            .is_none());
    }
}
