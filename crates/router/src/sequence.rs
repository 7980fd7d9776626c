//! Per-source sequence numbers.
//!
//! Each source gets consecutive numbers starting at 1 within one server run.
//! The map is sharded by source so concurrent ingest connections rarely meet
//! on a lock. It is bounded: when a shard holds more than its share of
//! [`Sequencer::MAX_SOURCES`] it is cleared, and those sources restart at 1
//! (consumers that order by `(timestamp, seq)` are unaffected; gap detection
//! sees a reset, which is what happened).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use parking_lot::Mutex;

const SHARDS: usize = 32;

pub struct Sequencer {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Sequencer {
    fn default() -> Self {
        Sequencer {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }
}

impl Sequencer {
    /// How many sources are tracked before shards start resetting.
    pub const MAX_SOURCES: usize = 1 << 20;

    fn shard(&self, source_id: &str) -> &Mutex<HashMap<String, u64>> {
        let mut h = self.hasher.build_hasher();
        source_id.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// The next sequence number of `source_id`.
    pub fn next(&self, source_id: &str) -> u64 {
        let mut shard = self.shard(source_id).lock();
        if let Some(seq) = shard.get_mut(source_id) {
            *seq += 1;
            return *seq;
        }
        if shard.len() >= Self::MAX_SOURCES / SHARDS {
            shard.clear();
        }
        shard.insert(source_id.to_owned(), 1);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_per_source() {
        let s = Sequencer::default();
        assert_eq!(s.next("a"), 1);
        assert_eq!(s.next("a"), 2);
        assert_eq!(s.next("b"), 1);
        assert_eq!(s.next("a"), 3);
    }
}
