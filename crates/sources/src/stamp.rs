//! Timestamp sanity at ingest: strictly increasing timestamps per source.
//!
//! (An entry's order is its log position, given by the log on append; this
//! only keeps timestamps usable for paging.) Timestamps are made strictly
//! increasing per source where they tie
//! or step back by less than [`NUDGE_WINDOW_NS`] (senders with second or
//! microsecond resolution, batches stamped with one receive time): such an
//! entry gets the previous timestamp + 1 ns. Log Cache clients page by
//! `start_time = last + 1`, and without this they would skip entries that
//! share a timestamp. Entries further out of order keep their timestamp.
//! The map is sharded by source so concurrent ingest connections rarely meet
//! on a lock. It is bounded in entries and in bytes: when a shard holds more
//! than its share of [`Stamper::MAX_SOURCES`] or of
//! [`Stamper::MAX_BYTES`] (source ids are bounded at ingest, but a
//! million 256-byte ids would still be a lot) it is cleared, and those
//! sources' next entries keep the timestamps they came with.

use std::collections::HashMap;
use std::hash::BuildHasher;

use parking_lot::Mutex;

const SHARDS: usize = 32;
/// Ties and small steps back within this window are nudged forward.
pub const NUDGE_WINDOW_NS: i64 = 1_000_000_000;

/// Bookkeeping bytes per tracked source beyond its id.
const ENTRY_OVERHEAD: usize = 48;

#[derive(Default)]
struct Shard {
    map: HashMap<String, i64>,
    bytes: usize,
}

pub struct Stamper {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Stamper {
    fn default() -> Self {
        Stamper {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Default::default(),
        }
    }
}

impl Stamper {
    /// How many sources are tracked before shards start resetting.
    pub const MAX_SOURCES: usize = 1 << 20;
    /// Approximate bytes of tracked sources before shards start resetting.
    pub const MAX_BYTES: usize = 64 << 20;

    fn shard(&self, source_id: &str) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(source_id) as usize) % SHARDS]
    }

    /// The timestamp to use for an entry of `source_id` stamped
    /// `timestamp` (see the module docs).
    pub fn timestamp(&self, source_id: &str, timestamp: i64) -> i64 {
        let mut guard = self.shard(source_id).lock();
        let shard = &mut *guard;
        if let Some(last) = shard.map.get_mut(source_id) {
            let ts = if timestamp <= *last && *last - timestamp < NUDGE_WINDOW_NS {
                last.saturating_add(1)
            } else {
                timestamp
            };
            *last = (*last).max(ts);
            return ts;
        }
        let size = source_id.len() + ENTRY_OVERHEAD;
        if shard.map.len() >= Self::MAX_SOURCES / SHARDS
            || shard.bytes + size > Self::MAX_BYTES / SHARDS
        {
            shard.map = HashMap::new();
            shard.bytes = 0;
        }
        shard.map.insert(source_id.to_owned(), timestamp);
        shard.bytes += size;
        timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes() {
        let s = Stamper::default();
        let long = "x".repeat(64 * 1024);
        for i in 0..4096 {
            s.timestamp(&format!("{i}{long}"), 1);
        }
        let bytes: usize = s.shards.iter().map(|sh| sh.lock().bytes).sum();
        let counted: usize = s
            .shards
            .iter()
            .map(|sh| {
                sh.lock()
                    .map
                    .keys()
                    .map(|k| k.len() + ENTRY_OVERHEAD)
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(bytes, counted);
        assert!(bytes <= Stamper::MAX_BYTES, "{bytes}");
    }

    #[test]
    fn ties_are_nudged_but_old_entries_keep_their_time() {
        let s = Stamper::default();
        assert_eq!(s.timestamp("a", 1_000), 1_000);
        assert_eq!(s.timestamp("a", 1_000), 1_001);
        assert_eq!(s.timestamp("a", 1_000), 1_002);
        assert_eq!(s.timestamp("a", 999), 1_003);
        assert_eq!(s.timestamp("a", 5_000), 5_000);
        let old = 5_000 - 2 * NUDGE_WINDOW_NS;
        assert_eq!(s.timestamp("a", old), old);
        assert_eq!(s.timestamp("a", 5_000), 5_001);
    }
}
