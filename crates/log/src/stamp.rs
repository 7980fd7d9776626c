//! Timestamp sanity on append: strictly increasing timestamps per source.
//!
//! (An entry's order is its log position; this only keeps timestamps
//! usable for paging.) Timestamps are made strictly increasing per source
//! where they tie or step back by less than [`NUDGE_WINDOW_NS`] (senders
//! with second or microsecond resolution, batches stamped with one receive
//! time): such an entry gets the source's newest timestamp + 1 ns. Log
//! Cache clients page by `start_time = last + 1`, and without this they
//! would skip entries that share a timestamp. Entries further out of order
//! keep their timestamp.
//!
//! Every [`Log`](crate::Log) stamps on append, against the per-source
//! state it keeps anyway (the disk log's index, the memory log's
//! per-source deques), so an entry costs one per-source lookup, not two.
//! It used to be a separate table at ingest (in the sources crate): with
//! 100,000 sources its cache-missing lookup was 8.5% of the server's CPU,
//! on top of the index's own. Kept in the index, the newest timestamp also
//! survives a restart (it is rebuilt with the index), and the state is
//! bounded by what the log holds: a source the log no longer holds starts
//! afresh.

/// Ties and small steps back within this window are nudged forward.
pub const NUDGE_WINDOW_NS: i64 = 1_000_000_000;

/// The timestamp to store for an entry stamped `timestamp` of a source
/// whose newest stored timestamp is `newest` (`i64::MIN` for a new
/// source); `newest` becomes the newer of the two.
pub fn nudge(newest: &mut i64, timestamp: i64) -> i64 {
    let behind = (*newest != i64::MIN)
        .then(|| newest.checked_sub(timestamp))
        .flatten();
    let ts = match behind {
        Some(d) if (0..NUDGE_WINDOW_NS).contains(&d) => newest.saturating_add(1),
        _ => timestamp,
    };
    *newest = (*newest).max(ts);
    ts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_nudged_but_old_entries_keep_their_time() {
        let mut newest = i64::MIN;
        let mut s = |ts| nudge(&mut newest, ts);
        assert_eq!(s(1_000), 1_000);
        assert_eq!(s(1_000), 1_001);
        assert_eq!(s(1_000), 1_002);
        assert_eq!(s(999), 1_003);
        assert_eq!(s(5_000), 5_000);
        let old = 5_000 - 2 * NUDGE_WINDOW_NS;
        assert_eq!(s(old), old);
        assert_eq!(s(5_000), 5_001);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut newest = i64::MIN;
        assert_eq!(nudge(&mut newest, i64::MIN), i64::MIN);
        assert_eq!(nudge(&mut newest, i64::MIN + 1), i64::MIN + 1);
        assert_eq!(nudge(&mut newest, i64::MIN + 1), i64::MIN + 2);
        let mut newest = i64::MAX;
        assert_eq!(nudge(&mut newest, i64::MAX), i64::MAX);
        assert_eq!(nudge(&mut newest, i64::MIN), i64::MIN);
        assert_eq!(newest, i64::MAX);
    }
}
