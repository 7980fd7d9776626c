//! A drain's state and counters, as `sluice drain status` and
//! `GET /v1/drains/NAME` show them (Logyard's view:
//! `NAME  RUNNING[53]`, `RETRYING[75] <last error>`, `FATAL <why>`).
//!
//! Besides the state and counters, where the drain stands in the log:
//! `behind` (the log's end position minus the drain's cursor: entries not
//! yet examined, of every source, so an upper bound for a drain that
//! selects part of the log) and `oldest_undelivered_ns` (the timestamp of
//! the first entry read but not yet delivered; none when caught up).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Starting,
    Running,
    Retrying,
    Fatal,
    Stopped,
    /// In a cluster: another node delivers the drain (it holds the
    /// lease); this node takes over when that lease lapses.
    Standby,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Retrying => "RETRYING",
            State::Fatal => "FATAL",
            State::Stopped => "STOPPED",
            State::Standby => "STANDBY",
        }
    }
}

/// A snapshot for APIs.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    pub state: State,
    /// Unix ns when the drain entered this state.
    pub since: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub sent: u64,
    /// Entries lost: removed by retention before the drain sent them, or
    /// refused by the receiver.
    pub dropped: u64,
    pub retries: u64,
    /// Log entries past the drain's cursor (all sources: an upper bound
    /// for a selective drain); absent until the drain has found its place
    /// in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<u64>,
    /// Unix ns of the oldest entry read but not yet delivered; absent when
    /// nothing is waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_undelivered_ns: Option<i64>,
    /// In a cluster: the node that delivers the drain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `position` before the drain knows its place in the log.
const UNKNOWN_POSITION: u64 = u64::MAX;
/// `oldest_undelivered` when nothing waits.
const NOTHING_WAITING: i64 = i64::MIN;

/// Shared between a drain's task and the API.
pub struct Status {
    inner: Mutex<(State, i64, Option<String>)>,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
    /// The drain's cursor: the position of the first entry neither
    /// delivered nor passed over.
    position: AtomicU64,
    oldest_undelivered: AtomicI64,
}

impl Status {
    pub fn new(now: i64) -> Self {
        Status {
            inner: Mutex::new((State::Starting, now, None)),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            position: AtomicU64::new(UNKNOWN_POSITION),
            oldest_undelivered: AtomicI64::new(NOTHING_WAITING),
        }
    }

    /// Records the drain's cursor (the next position to deliver).
    pub fn set_position(&self, next: u64) {
        self.position.store(next, Ordering::Relaxed);
    }

    /// The oldest undelivered entry's timestamp, when one is known.
    pub fn oldest_undelivered(&self) -> Option<i64> {
        let ns = self.oldest_undelivered.load(Ordering::Relaxed);
        (ns != NOTHING_WAITING).then_some(ns)
    }

    /// Records the oldest undelivered entry's timestamp (`None`: nothing
    /// waits).
    pub fn set_oldest_undelivered(&self, ns: Option<i64>) {
        self.oldest_undelivered
            .store(ns.unwrap_or(NOTHING_WAITING), Ordering::Relaxed);
    }

    /// The drain's cursor (the next position to deliver), once known.
    pub fn position(&self) -> Option<u64> {
        let position = self.position.load(Ordering::Relaxed);
        (position != UNKNOWN_POSITION).then_some(position)
    }

    /// How many positions lie between the drain's cursor and `end` (the
    /// log's next position), when both are known.
    pub fn behind(&self, end: Option<u64>) -> Option<u64> {
        let position = self.position.load(Ordering::Relaxed);
        match end {
            Some(end) if position != UNKNOWN_POSITION => Some(end.saturating_sub(position)),
            _ => None,
        }
    }

    /// Moves to `state`; `error` replaces the last error when given.
    pub fn set(&self, state: State, error: Option<String>, now: i64) {
        let mut g = self.inner.lock();
        if g.0 != state {
            g.0 = state;
            g.1 = now;
        }
        if error.is_some() {
            g.2 = error;
        }
    }

    /// STARTING again, without the last error (a restart); the counters
    /// carry on.
    pub fn restart(&self, now: i64) {
        *self.inner.lock() = (State::Starting, now, None);
    }

    /// A snapshot; `end` is the log's next position, for `behind`.
    pub fn view(&self, end: Option<u64>) -> StatusView {
        let g = self.inner.lock();
        StatusView {
            behind: self.behind(end),
            oldest_undelivered_ns: self.oldest_undelivered(),
            state: g.0,
            since: g.1,
            last_error: g.2.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            owner: None,
        }
    }
}

impl StatusView {
    /// `RUNNING[53]`: the state and seconds in it; with the last error
    /// after it when not running.
    pub fn summary(&self, now: i64) -> String {
        let secs = (now.saturating_sub(self.since)).max(0) / 1_000_000_000;
        let mut s = format!("{}[{secs}]", self.state.as_str());
        if self.state != State::Running {
            if let Some(e) = &self.last_error {
                s.push(' ');
                s.push_str(e);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        let s = Status::new(0);
        s.set(State::Running, None, 1_000_000_000);
        assert_eq!(s.view(None).summary(54_000_000_000), "RUNNING[53]");
        s.set(
            State::Retrying,
            Some("connect: refused".into()),
            60_000_000_000,
        );
        assert_eq!(
            s.view(None).summary(135_000_000_000),
            "RETRYING[75] connect: refused"
        );
    }

    #[test]
    fn place_in_the_log() {
        let s = Status::new(0);
        let v = s.view(Some(10));
        assert_eq!((v.behind, v.oldest_undelivered_ns), (None, None));
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            !json.contains("behind") && !json.contains("oldest"),
            "{json}"
        );
        s.set_position(4);
        s.set_oldest_undelivered(Some(77));
        let v = s.view(Some(10));
        assert_eq!((v.behind, v.oldest_undelivered_ns), (Some(6), Some(77)));
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            json.contains("\"behind\":6,\"oldest_undelivered_ns\":77"),
            "{json}"
        );
        s.set_oldest_undelivered(None);
        assert_eq!(s.view(Some(3)).behind, Some(0));
        assert_eq!(s.view(Some(3)).oldest_undelivered_ns, None);
    }
}
