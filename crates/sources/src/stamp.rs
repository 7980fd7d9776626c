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
//! on a lock. It is bounded in entries: when a shard holds more than its
//! share of [`Stamper::MAX_SOURCES`] it is cleared, and those sources' next
//! entries keep the timestamps they came with.
//!
//! A source is known by a 64-bit keyed hash of its id (SipHash with a
//! per-process random key, std's `RandomState`), computed once per entry:
//! it picks the shard and is the map key, so a lookup touches no heap
//! string. With 100,000 sources, keying by the id itself (two hashes, and
//! a compare that chased each stored id's allocation) was 12% of the
//! server's CPU. Two ids sharing a hash (about one chance in 30 million for a
//! million sources, and not something a sender can aim for without the
//! key) would only nudge each other's timestamps, by less than
//! [`NUDGE_WINDOW_NS`].

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use parking_lot::Mutex;

const SHARDS: usize = 32;
/// Ties and small steps back within this window are nudged forward.
pub const NUDGE_WINDOW_NS: i64 = 1_000_000_000;

/// A map keyed by an already-keyed hash: hashes it no further.
type ByHash = HashMap<u64, i64, BuildHasherDefault<KeyIsHash>>;

/// The `Hasher` of [`ByHash`]: the `u64` key is already a keyed hash.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct Shard {
    map: ByHash,
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
    /// How many sources are tracked before shards start resetting (some
    /// 24 MiB of maps at most).
    pub const MAX_SOURCES: usize = 1 << 20;

    /// The timestamp to use for an entry of `source_id` stamped
    /// `timestamp` (see the module docs).
    pub fn timestamp(&self, source_id: &str, timestamp: i64) -> i64 {
        let hash = self.hasher.hash_one(source_id);
        // The map's buckets come from the low bits, its tags from the top
        // seven: the shard takes bits from neither.
        let mut guard = self.shards[((hash >> 32) as usize) % SHARDS].lock();
        let shard = &mut *guard;
        if let Some(last) = shard.map.get_mut(&hash) {
            let ts = if timestamp <= *last && *last - timestamp < NUDGE_WINDOW_NS {
                last.saturating_add(1)
            } else {
                timestamp
            };
            *last = (*last).max(ts);
            return ts;
        }
        if shard.map.len() >= Self::MAX_SOURCES / SHARDS {
            shard.map = ByHash::default();
        }
        shard.map.insert(hash, timestamp);
        timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_sources_and_holds_no_ids() {
        let s = Stamper::default();
        let long = "x".repeat(64 * 1024);
        for i in 0..(Stamper::MAX_SOURCES + 4096) {
            let id = if i % 1024 == 0 {
                format!("{i}{long}")
            } else {
                i.to_string()
            };
            s.timestamp(&id, 1);
        }
        let tracked: usize = s.shards.iter().map(|sh| sh.lock().map.len()).sum();
        assert!(tracked <= Stamper::MAX_SOURCES, "{tracked}");
        assert!(tracked > 0);
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
