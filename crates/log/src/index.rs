//! The per-source index: for each source id, the positions and timestamps of
//! its records, in position order. It answers Log Cache style reads (newest
//! N, a time range, a count) without touching disk; the records themselves
//! are then read by position.
//!
//! Compact by construction: each source id is stored once (the map key) and
//! each record costs one `(u64, i64)` pair — 16 bytes, plus the slack of a
//! growing `VecDeque` (grown by half, not doubled: most sources are small).
//! [`IndexStats::heap_bytes`] estimates the total and the `index_memory`
//! test prints it per entry: 16.1 bytes with one source of 1,000,000
//! entries, 16.5 with 1,000 sources of 1,000, and 27.2 with 100,000 sources
//! of 10 (each source also pays its map slot, its id and a deque with room
//! for 12); allocator overhead comes on top.
//!
//! Measured as a whole process (`examples/log_memory.rs`, release, glibc
//! malloc, December 2026): after `DiskLog::open` of 1,000,000 records of
//! 256-byte payloads the process's `RssAnon` grew by 3.4 MB with one
//! source (the index keeps its newest 100,000; the rest is segment state
//! and the runtime) and by 40.4 MB with 100,000 sources of 10: 41 bytes
//! per entry for everything (it was 47 when deques doubled). The rest of
//! the gap to the estimate is one allocation header per source id and per
//! deque. A denser layout (one arena instead of a deque per source) would
//! save about 10 more bytes per entry for small sources; not worth its
//! complexity yet.
//! It is rebuilt from the segments on open; entries older than the oldest
//! kept segment are dropped by retention, and a source keeps at most
//! `max_per_source` entries (the oldest leave the index, not the disk).

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;

#[derive(Debug, Default)]
struct Entries {
    /// `(position, timestamp)`, positions strictly increasing.
    items: VecDeque<(u64, i64)>,
    /// Whether timestamps are also non-decreasing (then time ranges use a
    /// binary search; otherwise a scan). Only ever goes from true to false.
    ts_sorted: bool,
}

/// A summary of one source, for `/api/v1/meta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSummary {
    pub source_id: String,
    pub count: u64,
    pub oldest_position: u64,
    pub newest_position: u64,
    pub oldest_timestamp: i64,
    pub newest_timestamp: i64,
}

/// Size of the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub sources: usize,
    pub entries: usize,
    /// Estimated heap bytes (entry buffers, source id strings, map slots).
    pub heap_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct SourceIndex {
    sources: HashMap<Box<str>, Entries>,
    max_per_source: usize,
    entries: usize,
}

impl SourceIndex {
    pub(crate) fn new(max_per_source: usize) -> Self {
        SourceIndex {
            sources: HashMap::new(),
            max_per_source: max_per_source.max(1),
            entries: 0,
        }
    }

    /// Files a record; positions must arrive in increasing order.
    pub(crate) fn push(&mut self, source: &str, position: u64, timestamp: i64) {
        let e = match self.sources.get_mut(source) {
            Some(e) => e,
            None => self.sources.entry(source.into()).or_insert(Entries {
                items: VecDeque::new(),
                ts_sorted: true,
            }),
        };
        if let Some(&(last_pos, last_ts)) = e.items.back() {
            debug_assert!(position > last_pos);
            if timestamp < last_ts {
                e.ts_sorted = false;
            }
        }
        if e.items.len() == e.items.capacity() {
            // Grow by half, not double: most sources are small, and the
            // slack of doubling is most of what a small one costs.
            e.items.reserve_exact((e.items.len() / 2).max(4));
        }
        e.items.push_back((position, timestamp));
        self.entries += 1;
        if e.items.len() > self.max_per_source {
            e.items.pop_front();
            self.entries -= 1;
        }
    }

    /// Drops every entry below `position` (after retention); returns how many.
    pub(crate) fn remove_below(&mut self, position: u64) -> usize {
        let mut removed = 0;
        self.sources.retain(|_, e| {
            let n = e.items.partition_point(|&(p, _)| p < position);
            e.items.drain(..n);
            removed += n;
            if e.items.len() < e.items.capacity() / 4 {
                e.items.shrink_to_fit();
            }
            !e.items.is_empty()
        });
        self.entries -= removed;
        removed
    }

    pub(crate) fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Calls `f` with each source's id, timestamp order flag and entries
    /// (for the checkpoint).
    pub(crate) fn for_each_source(&self, mut f: impl FnMut(&str, bool, &VecDeque<(u64, i64)>)) {
        for (id, e) in &self.sources {
            f(id, e.ts_sorted, &e.items);
        }
    }

    /// Adds a whole source loaded from a checkpoint: `items` in strictly
    /// increasing positions, at most `max_per_source`. Returns false (and
    /// adds nothing) for a duplicate id, too many or empty entries, or a
    /// `ts_sorted` flag the timestamps contradict.
    pub(crate) fn insert_source(
        &mut self,
        id: String,
        ts_sorted: bool,
        items: VecDeque<(u64, i64)>,
    ) -> bool {
        if items.is_empty()
            || items.len() > self.max_per_source
            || self.sources.contains_key(id.as_str())
            || (ts_sorted
                && items
                    .iter()
                    .zip(items.iter().skip(1))
                    .any(|(a, b)| b.1 < a.1))
        {
            return false;
        }
        self.entries += items.len();
        self.sources
            .insert(id.into_boxed_str(), Entries { items, ts_sorted });
        true
    }

    pub(crate) fn count(&self, source: &str) -> u64 {
        self.sources.get(source).map_or(0, |e| e.items.len() as u64)
    }

    /// Positions of the newest `n` records of `source`, oldest first.
    pub(crate) fn newest(&self, source: &str, n: usize) -> Vec<u64> {
        let Some(e) = self.sources.get(source) else {
            return Vec::new();
        };
        let skip = e.items.len().saturating_sub(n);
        e.items.iter().skip(skip).map(|&(p, _)| p).collect()
    }

    /// Positions of the newest `limit` records of any of `sources` with a
    /// timestamp after `after` (exclusive), ascending.
    pub(crate) fn newest_after(&self, sources: &[String], after: i64, limit: usize) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            if sources[..i].contains(source) {
                continue;
            }
            let Some(e) = self.sources.get(source.as_str()) else {
                continue;
            };
            let newer = e
                .items
                .iter()
                .rev()
                .take_while(|&&(_, t)| !e.ts_sorted || t > after);
            out.extend(
                newer
                    .filter(|&&(_, t)| t > after)
                    .take(limit)
                    .map(|&(p, _)| p),
            );
        }
        out.sort_unstable();
        let skip = out.len().saturating_sub(limit);
        out.drain(..skip);
        out
    }

    /// Positions of `source`'s records with `start <= timestamp < end`, in
    /// position order, at most `limit`: the oldest ones, or the newest ones
    /// when `newest_first` (then still returned in position order).
    pub(crate) fn range(
        &self,
        source: &str,
        start: i64,
        end: i64,
        limit: usize,
        newest_first: bool,
    ) -> Vec<u64> {
        let Some(e) = self.sources.get(source) else {
            return Vec::new();
        };
        let (lo, hi) = if e.ts_sorted {
            (
                e.items.partition_point(|&(_, t)| t < start),
                e.items.partition_point(|&(_, t)| t < end),
            )
        } else {
            (0, e.items.len())
        };
        let hits = e
            .items
            .range(lo..hi.max(lo))
            .filter(|&&(_, t)| t >= start && t < end);
        if newest_first {
            let mut v: Vec<u64> = hits.rev().take(limit).map(|&(p, _)| p).collect();
            v.reverse();
            v
        } else {
            hits.take(limit).map(|&(p, _)| p).collect()
        }
    }

    pub(crate) fn summaries(&self) -> Vec<SourceSummary> {
        self.sources
            .iter()
            .filter_map(|(id, e)| {
                let (&(op, _), &(np, _)) = (e.items.front()?, e.items.back()?);
                let (mut ot, mut nt) = (i64::MAX, i64::MIN);
                if e.ts_sorted {
                    ot = e.items.front()?.1;
                    nt = e.items.back()?.1;
                } else {
                    for &(_, t) in &e.items {
                        ot = ot.min(t);
                        nt = nt.max(t);
                    }
                }
                Some(SourceSummary {
                    source_id: id.to_string(),
                    count: e.items.len() as u64,
                    oldest_position: op,
                    newest_position: np,
                    oldest_timestamp: ot,
                    newest_timestamp: nt,
                })
            })
            .collect()
    }

    pub(crate) fn stats(&self) -> IndexStats {
        let slot = size_of::<(Box<str>, Entries)>() + 1;
        let heap = self.sources.capacity() * slot
            + self
                .sources
                .iter()
                .map(|(id, e)| id.len() + e.items.capacity() * size_of::<(u64, i64)>())
                .sum::<usize>();
        IndexStats {
            sources: self.sources.len(),
            entries: self.entries,
            heap_bytes: heap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_range_count_and_retention() {
        let mut ix = SourceIndex::new(usize::MAX);
        for p in 0..100u64 {
            let src = if p % 2 == 0 { "even" } else { "odd" };
            ix.push(src, p, p as i64 * 10);
        }
        assert_eq!(ix.count("even"), 50);
        assert_eq!(ix.newest("odd", 3), vec![95, 97, 99]);
        assert_eq!(ix.range("even", 100, 160, 10, false), vec![10, 12, 14]);
        assert_eq!(ix.range("even", 0, 1000, 2, true), vec![96, 98]);
        assert_eq!(ix.remove_below(90), 90);
        assert_eq!(ix.count("odd"), 5);
        assert_eq!(ix.stats().entries, 10);
        assert_eq!(ix.remove_below(1000), 10);
        assert_eq!(ix.stats().sources, 0);
    }

    #[test]
    fn newest_after_merges_sources() {
        let mut ix = SourceIndex::new(usize::MAX);
        for (p, s, t) in [
            (0, "a", 5),
            (1, "b", 1),
            (2, "a", 3),
            (3, "c", 9),
            (4, "b", 7),
        ] {
            ix.push(s, p, t);
        }
        let ab = ["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(ix.newest_after(&ab, 0, 10), vec![0, 1, 2, 4]);
        assert_eq!(ix.newest_after(&ab, 0, 2), vec![2, 4]);
        // "a" is out of order: its older entry at 5 still counts.
        assert_eq!(ix.newest_after(&ab, 4, 10), vec![0, 4]);
        assert!(ix.newest_after(&["z".to_owned()], 0, 10).is_empty());
    }

    #[test]
    fn unsorted_timestamps_scan() {
        let mut ix = SourceIndex::new(usize::MAX);
        for (p, t) in [(1, 50), (2, 10), (3, 30), (4, 20)] {
            ix.push("a", p, t);
        }
        assert_eq!(ix.range("a", 15, 35, 10, false), vec![3, 4]);
        let s = &ix.summaries()[0];
        assert_eq!((s.oldest_timestamp, s.newest_timestamp), (10, 50));
    }

    #[test]
    fn per_source_cap_drops_oldest() {
        let mut ix = SourceIndex::new(3);
        for p in 0..10 {
            ix.push("a", p, 0);
        }
        assert_eq!(ix.newest("a", 10), vec![7, 8, 9]);
        assert_eq!(ix.stats().entries, 3);
    }

    /// Reports the index's memory per entry (run with `--nocapture`).
    #[test]
    fn index_memory() {
        for (sources, per_source) in [(1usize, 1_000_000u64), (1_000, 1_000), (100_000, 10)] {
            let mut ix = SourceIndex::new(usize::MAX);
            let ids: Vec<String> = (0..sources).map(|i| format!("source-{i:08}")).collect();
            let mut p = 0;
            for _ in 0..per_source {
                for id in &ids {
                    ix.push(id, p, p as i64);
                    p += 1;
                }
            }
            let s = ix.stats();
            let per = s.heap_bytes as f64 / s.entries as f64;
            println!(
                "index: {sources} sources x {per_source} entries: {} bytes, {per:.1} bytes/entry",
                s.heap_bytes
            );
            assert!(per < 48.0 + 150.0 / per_source as f64, "{per} bytes/entry");
        }
    }
}
