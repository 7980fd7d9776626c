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
//!
//! The writer files a batch here when it appends it, before it is written,
//! and stamps its timestamps on the way ([`SourceIndex::stamp_push`],
//! `stamp.rs`): one lookup per record for both. Queries see only what is
//! written (below [`SourceIndex::set_visible_end`]); a batch that is then
//! not written is taken out again ([`SourceIndex::truncate_from`]). Entries
//! the per-source cap pushed out for it stay out (the records are still on
//! disk; only the index forgets them early).

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;

#[derive(Debug)]
struct Entries {
    /// `(position, timestamp)`, positions strictly increasing.
    items: VecDeque<(u64, i64)>,
    /// Whether timestamps are also non-decreasing (then time ranges use a
    /// binary search; otherwise a scan). Only ever goes from true to false.
    ts_sorted: bool,
    /// The newest timestamp filed, for stamping (`stamp.rs`).
    newest_ts: i64,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            items: VecDeque::new(),
            ts_sorted: true,
            newest_ts: i64::MIN,
        }
    }
}

impl Entries {
    /// How many of the entries are below `end` (written): all but a few
    /// at the back while a batch is being written.
    fn visible(&self, end: u64) -> usize {
        let hidden = self.items.iter().rev().take_while(|&&(p, _)| p >= end);
        self.items.len() - hidden.count()
    }
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
    /// Queries see positions below this only (`u64::MAX` until a writer
    /// files what it has not written yet).
    visible_end: u64,
}

impl SourceIndex {
    pub(crate) fn new(max_per_source: usize) -> Self {
        SourceIndex {
            sources: HashMap::new(),
            max_per_source: max_per_source.max(1),
            entries: 0,
            visible_end: u64::MAX,
        }
    }

    /// Files a record; positions must arrive in increasing order.
    pub(crate) fn push(&mut self, source: &str, position: u64, timestamp: i64) {
        let max = self.max_per_source;
        self.entries += self.with_entries(source, |e| {
            let before = e.newest_ts;
            e.newest_ts = before.max(timestamp);
            Self::file(e, max, position, timestamp, before)
        });
    }

    /// Stamps a record's timestamp (`stamp.rs`) and files it with the
    /// stamped one, which it returns.
    pub(crate) fn stamp_push(&mut self, source: &str, position: u64, timestamp: i64) -> i64 {
        let max = self.max_per_source;
        let (ts, added) = self.with_entries(source, |e| {
            let before = e.newest_ts;
            let ts = crate::stamp::nudge(&mut e.newest_ts, timestamp);
            (ts, Self::file(e, max, position, ts, before))
        });
        self.entries += added;
        ts
    }

    /// Queries see only positions below `end` from now on.
    pub(crate) fn set_visible_end(&mut self, end: u64) {
        self.visible_end = end;
    }

    /// Takes `source`'s entries at `position` and above out (a batch filed
    /// but not written). A no-op when there are none, so it may be called
    /// once per record of the batch.
    pub(crate) fn truncate_from(&mut self, source: &str, position: u64) {
        let Some(e) = self.sources.get_mut(source) else {
            return;
        };
        while e.items.back().is_some_and(|&(p, _)| p >= position) {
            e.items.pop_back();
            self.entries -= 1;
        }
        if e.items.is_empty() {
            self.sources.remove(source);
        }
    }

    /// Runs `f` on `source`'s entries, created empty if new: one lookup
    /// when the source is known (the `entry` API would allocate its key
    /// every time).
    fn with_entries<R>(&mut self, source: &str, f: impl FnOnce(&mut Entries) -> R) -> R {
        let e = match self.sources.get_mut(source) {
            Some(e) => e,
            None => self.sources.entry(source.into()).or_default(),
        };
        f(e)
    }

    /// Adds `(position, timestamp)` at the back, dropping the front past
    /// `max`; returns how many entries were added in all (0 or 1).
    ///
    /// The order check compares with `newest_before` (the source's newest
    /// timestamp before this one), not with the deque's back: while the
    /// timestamps are in order the two are equal, and it spares a load
    /// from the deque's buffer, a cache miss per record with many sources.
    /// (After entries were taken out the newest may be stale, which can
    /// only turn the flag off early: a scan instead of a binary search.)
    fn file(
        e: &mut Entries,
        max: usize,
        position: u64,
        timestamp: i64,
        newest_before: i64,
    ) -> usize {
        debug_assert!(e.items.back().is_none_or(|&(p, _)| p < position));
        if timestamp < newest_before {
            e.ts_sorted = false;
        }
        if e.items.len() == e.items.capacity() {
            // Grow by half, not double: most sources are small, and the
            // slack of doubling is most of what a small one costs.
            e.items.reserve_exact((e.items.len() / 2).max(4));
        }
        e.items.push_back((position, timestamp));
        if e.items.len() > max {
            e.items.pop_front();
            return 0;
        }
        1
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
        let newest_ts = items.iter().map(|&(_, t)| t).max().unwrap_or(i64::MIN);
        let entries = Entries {
            items,
            ts_sorted,
            newest_ts,
        };
        self.sources.insert(id.into_boxed_str(), entries);
        true
    }

    pub(crate) fn count(&self, source: &str) -> u64 {
        self.sources
            .get(source)
            .map_or(0, |e| e.visible(self.visible_end) as u64)
    }

    /// Positions of the newest `n` records of `source`, oldest first.
    pub(crate) fn newest(&self, source: &str, n: usize) -> Vec<u64> {
        let Some(e) = self.sources.get(source) else {
            return Vec::new();
        };
        let visible = e.visible(self.visible_end);
        let skip = visible.saturating_sub(n);
        e.items.range(skip..visible).map(|&(p, _)| p).collect()
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
                .range(..e.visible(self.visible_end))
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
        let visible = e.visible(self.visible_end);
        let (lo, hi) = if e.ts_sorted {
            (
                e.items.partition_point(|&(_, t)| t < start),
                e.items.partition_point(|&(_, t)| t < end),
            )
        } else {
            (0, visible)
        };
        let hi = hi.min(visible);
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
                let visible = e.visible(self.visible_end);
                let (&(op, ot), &(np, nt)) =
                    (e.items.front()?, e.items.get(visible.checked_sub(1)?)?);
                let (ot, nt) = if e.ts_sorted {
                    (ot, nt)
                } else {
                    let ts = e.items.range(..visible).map(|&(_, t)| t);
                    ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)))
                };
                Some(SourceSummary {
                    source_id: id.to_string(),
                    count: visible as u64,
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

    #[test]
    fn stamping_files_and_unwritten_entries_stay_hidden() {
        let mut ix = SourceIndex::new(usize::MAX);
        ix.push("a", 0, 100);
        ix.set_visible_end(1);
        // A batch filed ahead of its write: stamped, hidden.
        assert_eq!(ix.stamp_push("a", 1, 100), 101);
        assert_eq!(ix.stamp_push("b", 2, 7), 7);
        let old = 100 - 2 * crate::stamp::NUDGE_WINDOW_NS;
        assert_eq!(ix.stamp_push("a", 3, old), old, "far older keeps its time");
        assert_eq!(ix.count("a"), 1);
        assert_eq!(ix.newest("a", 10), vec![0]);
        assert_eq!(ix.range("a", i64::MIN, 1000, 10, true), vec![0]);
        assert!(ix.newest_after(&["b".to_owned()], 0, 10).is_empty());
        let s = ix.summaries();
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].newest_position, s[0].newest_timestamp), (0, 100));
        // Written: visible.
        ix.set_visible_end(4);
        assert_eq!(ix.newest("a", 10), vec![0, 1, 3]);
        assert_eq!(ix.count("b"), 1);
        // Filed again but never written: taken out, the source too.
        assert_eq!(ix.stamp_push("a", 4, 200), 200);
        assert_eq!(ix.stamp_push("c", 5, 1), 1);
        for source in ["a", "c", "a"] {
            ix.truncate_from(source, 4);
        }
        assert_eq!(ix.stats().sources, 2);
        assert_eq!(ix.stats().entries, 4);
        assert_eq!(ix.newest("a", 10), vec![0, 1, 3]);
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
