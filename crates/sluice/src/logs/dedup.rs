//! Resuming a stream without gaps or repeats.
//!
//! After a reconnect, `sluice logs` asks the server to replay from a little
//! before the newest entry it has printed (`since`), so nothing logged while
//! it was disconnected is missed even if entries arrived slightly out of
//! order. What it had already printed comes again in that replay and is
//! skipped here: the keys of the most recently printed entries are kept in
//! a bounded set (timestamp, plus a hash of source, instance, tags and
//! message).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash as _, Hasher as _};

use envelope::v2::Message;
use envelope::Envelope;

/// How far before the newest printed entry a resume starts.
pub const RESUME_SLACK_NS: i64 = 2_000_000_000;

/// Remembers recently printed entries, and where to resume.
#[derive(Debug)]
pub struct Seen {
    keys: HashSet<(i64, u64)>,
    order: VecDeque<(i64, u64)>,
    capacity: usize,
    newest: Option<i64>,
    start: i64,
}

impl Seen {
    /// `start` (Unix ns) is where a resume begins if nothing was printed yet.
    pub fn new(capacity: usize, start: i64) -> Self {
        Seen {
            keys: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            newest: None,
            start,
        }
    }

    /// Records `env`; false if it was printed already.
    pub fn first_time(&mut self, env: &Envelope) -> bool {
        let key = (env.timestamp, fingerprint(env));
        if !self.keys.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        self.newest = Some(self.newest.map_or(env.timestamp, |n| n.max(env.timestamp)));
        true
    }

    /// The `since` to resume with.
    pub fn resume_since(&self) -> i64 {
        self.newest
            .unwrap_or(self.start)
            .saturating_sub(RESUME_SLACK_NS)
    }
}

fn fingerprint(env: &Envelope) -> u64 {
    let mut h = DefaultHasher::new();
    env.source_id.hash(&mut h);
    env.instance_id.hash(&mut h);
    env.tags.hash(&mut h);
    match &env.message {
        Some(Message::Log(log)) => {
            log.r#type.hash(&mut h);
            log.payload.hash(&mut h);
        }
        Some(Message::Event(event)) => {
            event.title.hash(&mut h);
            event.body.hash(&mut h);
        }
        Some(other) => format!("{other:?}").hash(&mut h),
        None => {}
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::LogType;

    fn log(ts: i64, text: &'static str) -> Envelope {
        Envelope::log(
            ts,
            "web",
            "0",
            Bytes::from_static(text.as_bytes()),
            LogType::Out,
        )
    }

    #[test]
    fn repeats_are_skipped() {
        let mut seen = Seen::new(10, 0);
        assert!(seen.first_time(&log(5, "a")));
        assert!(!seen.first_time(&log(5, "a")));
        // Same time, different text or source: a different entry.
        assert!(seen.first_time(&log(5, "b")));
        let mut other = log(5, "a");
        other.instance_id = "1".into();
        assert!(seen.first_time(&other));
    }

    #[test]
    fn the_set_is_bounded() {
        let mut seen = Seen::new(2, 0);
        assert!(seen.first_time(&log(1, "a")));
        assert!(seen.first_time(&log(2, "b")));
        assert!(seen.first_time(&log(3, "c")));
        assert_eq!(seen.keys.len(), 2);
        // The oldest was forgotten.
        assert!(seen.first_time(&log(1, "a")));
        assert!(!seen.first_time(&log(3, "c")));
    }

    #[test]
    fn resume_point() {
        let mut seen = Seen::new(10, 10_000_000_000);
        assert_eq!(seen.resume_since(), 8_000_000_000);
        seen.first_time(&log(50_000_000_000, "a"));
        seen.first_time(&log(40_000_000_000, "late"));
        assert_eq!(seen.resume_since(), 48_000_000_000);
    }
}
