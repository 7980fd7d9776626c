//! Where each container's log was read up to, kept across restarts.
//!
//! A position is the newest entry timestamp seen (ns) and how many entries
//! at exactly that timestamp were seen: Docker's `since` is inclusive, so
//! a reconnect asks from that timestamp and passes over that many entries
//! again ([`Replay`]). Whole seconds (Promtail) or `since=now` (logspout)
//! give duplicates or gaps; this gives neither.
//!
//! With each position goes the log position of the container's newest
//! line stored. Positions are saved about once a second, so after a
//! `kill -9` the log may hold lines the file does not cover yet; at start
//! the follower counts the container's entries after that log position
//! and passes over as many lines ([`super::follow`]). The file is replaced
//! atomically (temp file, fsync, rename): a crash leaves the old one or the
//! new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How far a container's log was read: the newest timestamp and the
/// entries seen at exactly it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub timestamp_ns: i64,
    pub seen_at_timestamp: u64,
}

impl Resume {
    /// Records one more entry read. An entry older than the newest seen
    /// (stdout and stderr are stamped by two copiers, so they can be out of
    /// order by microseconds) leaves the position as it is.
    pub fn advance(&mut self, timestamp_ns: i64) {
        if timestamp_ns > self.timestamp_ns {
            self.timestamp_ns = timestamp_ns;
            self.seen_at_timestamp = 1;
        } else if timestamp_ns == self.timestamp_ns {
            self.seen_at_timestamp += 1;
        }
    }

    /// The `since` query value: `<seconds>.<nanoseconds>`, which the daemon
    /// reads to the nanosecond. Zero (nothing read yet) asks for all.
    pub fn since(&self) -> String {
        let secs = self.timestamp_ns.div_euclid(1_000_000_000);
        let nanos = self.timestamp_ns.rem_euclid(1_000_000_000);
        format!("{secs}.{nanos:09}")
    }
}

/// On a new connection: which entries were seen before.
#[derive(Debug)]
pub struct Replay {
    timestamp_ns: i64,
    to_skip: u64,
}

impl Replay {
    pub fn new(from: Resume) -> Self {
        Replay {
            timestamp_ns: from.timestamp_ns,
            to_skip: from.seen_at_timestamp,
        }
    }

    /// Whether an entry the daemon sent was already read.
    pub fn seen(&mut self, timestamp_ns: i64) -> bool {
        if timestamp_ns < self.timestamp_ns {
            return true;
        }
        if timestamp_ns == self.timestamp_ns && self.to_skip > 0 {
            self.to_skip -= 1;
            return true;
        }
        false
    }
}

/// The last entries read from one container, to spot the daemon sending
/// them again: after a json-file rotation its follow re-sends the last
/// entries of the old file (seen here with Docker 20.10: seven lines again
/// at every rotation). An entry older than the position that is among
/// these is such a re-send, and the follower passes over everything up to
/// the position as after a reconnect. An older entry that is not among
/// them is new (stdout and stderr out of order) and kept.
///
/// An entry is known by its timestamp, stream and length: two different
/// entries share all three only as equal pieces of one long line, and
/// those are never out of order.
#[derive(Debug, Default)]
pub struct Recent {
    order: std::collections::VecDeque<EntryKey>,
    keys: std::collections::HashSet<EntryKey>,
}

type EntryKey = (i64, bool, usize);

/// Entries remembered per container (about 12 KiB).
const RECENT_ENTRIES: usize = 512;

impl Recent {
    /// Whether an entry was read lately; remembers it if not.
    pub fn seen_again(&mut self, timestamp_ns: i64, stderr: bool, len: usize) -> bool {
        let key = (timestamp_ns, stderr, len);
        if self.keys.contains(&key) {
            return true;
        }
        if self.order.len() == RECENT_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        self.order.push_back(key);
        self.keys.insert(key);
        false
    }
}

/// One container's saved state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub source_id: String,
    pub instance_id: String,
    #[serde(flatten)]
    pub resume: Resume,
    /// The log position of the newest line stored from it.
    pub log_position: Option<u64>,
}

#[derive(Default, Serialize, Deserialize)]
struct FileForm {
    version: u32,
    containers: BTreeMap<String, Saved>,
}

const VERSION: u32 = 1;

/// Every container's position, in memory and in one file.
#[derive(Debug)]
pub struct Positions {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    containers: BTreeMap<String, Saved>,
    dirty: bool,
}

impl Positions {
    /// Reads the file. `Ok(None)` when there is none (the agent's first
    /// start); a damaged file is an error naming it (the caller decides).
    pub fn load(path: &Path) -> Result<Option<Self>, std::io::Error> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let form: FileForm = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        if form.version != VERSION {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: version {} (this sluice reads {VERSION})",
                    path.display(),
                    form.version
                ),
            ));
        }
        Ok(Some(Positions {
            path: path.to_owned(),
            state: Mutex::new(State {
                containers: form.containers,
                dirty: false,
            }),
        }))
    }

    /// An empty set that saves to `path`.
    pub fn empty(path: &Path) -> Self {
        Positions {
            path: path.to_owned(),
            state: Mutex::new(State {
                containers: BTreeMap::new(),
                // Written at the first save, so the next start is not a
                // first start.
                dirty: true,
            }),
        }
    }

    pub fn get(&self, container_id: &str) -> Option<Saved> {
        self.state.lock().containers.get(container_id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.state.lock().containers.keys().cloned().collect()
    }

    pub fn set(&self, container_id: &str, saved: Saved) {
        let mut state = self.state.lock();
        state.containers.insert(container_id.to_owned(), saved);
        state.dirty = true;
    }

    pub fn remove(&self, container_id: &str) {
        let mut state = self.state.lock();
        if state.containers.remove(container_id).is_some() {
            state.dirty = true;
        }
    }

    /// Writes the file if anything changed since the last save.
    pub fn save(&self) -> Result<(), std::io::Error> {
        let bytes = {
            let mut state = self.state.lock();
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            let form = FileForm {
                version: VERSION,
                containers: state.containers.clone(),
            };
            serde_json::to_vec(&form).map_err(std::io::Error::other)?
        };
        let written = crate::persist::write_atomically(&self.path, &bytes);
        if written.is_err() {
            self.state.lock().dirty = true;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_counts_entries_at_the_newest_timestamp() {
        let mut r = Resume::default();
        for ts in [5, 5, 7, 7, 7, 6] {
            r.advance(ts);
        }
        assert_eq!(
            r,
            Resume {
                timestamp_ns: 7,
                seen_at_timestamp: 3
            }
        );
        let mut replay = Replay::new(r);
        let seen: Vec<bool> = [7, 7, 7, 7, 8].iter().map(|&t| replay.seen(t)).collect();
        assert_eq!(seen, [true, true, true, false, false]);
    }

    #[test]
    fn recent_spots_an_entry_read_again_and_forgets_old_ones() {
        let mut recent = Recent::default();
        assert!(!recent.seen_again(5, false, 10));
        assert!(!recent.seen_again(5, true, 10), "the other stream");
        assert!(!recent.seen_again(5, false, 11), "another length");
        assert!(recent.seen_again(5, false, 10));
        for ts in 0..RECENT_ENTRIES as i64 {
            recent.seen_again(100 + ts, false, 1);
        }
        assert!(!recent.seen_again(5, false, 10), "forgotten");
    }

    #[test]
    fn since_has_nanoseconds() {
        let r = Resume {
            timestamp_ns: 1_700_000_000_000_000_007,
            seen_at_timestamp: 1,
        };
        assert_eq!(r.since(), "1700000000.000000007");
        assert_eq!(Resume::default().since(), "0.000000000");
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent/docker.positions");
        assert!(Positions::load(&path).unwrap().is_none());
        let p = Positions::empty(&path);
        let saved = Saved {
            source_id: "web".into(),
            instance_id: "abc".into(),
            resume: Resume {
                timestamp_ns: 9,
                seen_at_timestamp: 2,
            },
            log_position: Some(41),
        };
        p.set("abcdef", saved.clone());
        p.save().unwrap();
        let back = Positions::load(&path).unwrap().unwrap();
        assert_eq!(back.get("abcdef"), Some(saved));
        std::fs::write(&path, b"{garbage").unwrap();
        assert!(Positions::load(&path).is_err());
    }
}
