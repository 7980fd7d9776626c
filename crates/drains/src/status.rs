//! A drain's state and counters, as `sluice drain status` and
//! `GET /v1/drains/NAME` show them (Logyard's view:
//! `NAME  RUNNING[53]`, `RETRYING[75] <last error>`, `FATAL <why>`).

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Retrying => "RETRYING",
            State::Fatal => "FATAL",
            State::Stopped => "STOPPED",
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
    pub dropped: u64,
    pub retries: u64,
}

/// Shared between a drain's task and the API.
pub struct Status {
    inner: Mutex<(State, i64, Option<String>)>,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

impl Status {
    pub fn new(now: i64) -> Self {
        Status {
            inner: Mutex::new((State::Starting, now, None)),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
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

    pub fn view(&self) -> StatusView {
        let g = self.inner.lock();
        StatusView {
            state: g.0,
            since: g.1,
            last_error: g.2.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
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
        assert_eq!(s.view().summary(54_000_000_000), "RUNNING[53]");
        s.set(
            State::Retrying,
            Some("connect: refused".into()),
            60_000_000_000,
        );
        assert_eq!(
            s.view().summary(135_000_000_000),
            "RETRYING[75] connect: refused"
        );
    }
}
