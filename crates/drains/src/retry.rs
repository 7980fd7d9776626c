//! Logyard's reconnect schedule and retry limits.
//!
//! After a failure the first retry is at once; then every 5 s for the first
//! minute of failing, every 30 s until 6 minutes, every minute until 16
//! minutes, then every 5 minutes. A drain that stayed up for 20 minutes
//! starts the schedule afresh on its next failure. Retry limits depend on
//! the drain: names starting `tmp.` give up after 25 minutes of failing,
//! app drains after 24 hours, others never; past the limit the drain is
//! FATAL.

use std::time::Duration;

use tokio::time::Instant;

/// Health that resets the schedule.
pub const RESET_AFTER: Duration = Duration::from_secs(20 * 60);

/// How long a drain may keep failing before it is FATAL.
pub fn retry_limit(name: &str, is_app_drain: bool) -> Option<Duration> {
    if name.starts_with("tmp.") {
        Some(Duration::from_secs(25 * 60))
    } else if is_app_drain {
        Some(Duration::from_secs(24 * 3600))
    } else {
        None
    }
}

/// The wait before the next attempt, given how long the drain has been
/// failing and how many attempts were made.
pub fn delay(failing_for: Duration, attempts: u32) -> Duration {
    if attempts == 0 {
        Duration::ZERO
    } else if failing_for < Duration::from_secs(60) {
        Duration::from_secs(5)
    } else if failing_for < Duration::from_secs(6 * 60) {
        Duration::from_secs(30)
    } else if failing_for < Duration::from_secs(16 * 60) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(300)
    }
}

/// What to do after a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    RetryIn(Duration),
    /// The retry limit was exceeded after failing for this long.
    GiveUp(Duration),
}

#[derive(Debug)]
pub struct RetryState {
    limit: Option<Duration>,
    first_failure: Option<Instant>,
    attempts: u32,
    up_since: Option<Instant>,
}

impl RetryState {
    pub fn new(limit: Option<Duration>) -> Self {
        RetryState {
            limit,
            first_failure: None,
            attempts: 0,
            up_since: None,
        }
    }

    /// Total attempts since the schedule last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn on_connected(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    pub fn on_failure(&mut self, now: Instant) -> Next {
        if let Some(up) = self.up_since.take() {
            if now.duration_since(up) >= RESET_AFTER {
                self.first_failure = None;
                self.attempts = 0;
            }
        }
        let first = *self.first_failure.get_or_insert(now);
        let failing_for = now.duration_since(first);
        if let Some(limit) = self.limit {
            if failing_for >= limit {
                return Next::GiveUp(failing_for);
            }
        }
        let wait = delay(failing_for, self.attempts);
        self.attempts += 1;
        Next::RetryIn(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logyard_schedule() {
        let s = |secs| Duration::from_secs(secs);
        assert_eq!(delay(s(0), 0), s(0));
        assert_eq!(delay(s(1), 1), s(5));
        assert_eq!(delay(s(59), 9), s(5));
        assert_eq!(delay(s(61), 12), s(30));
        assert_eq!(delay(s(6 * 60 + 1), 20), s(60));
        assert_eq!(delay(s(16 * 60 + 1), 30), s(300));
    }

    #[test]
    fn limits_by_name() {
        assert_eq!(retry_limit("tmp.x", true), Some(Duration::from_secs(1500)));
        assert_eq!(
            retry_limit("papertrail", true),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(retry_limit("archive", false), None);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_past_the_limit_and_resets_after_health() {
        let mut r = RetryState::new(Some(Duration::from_secs(25 * 60)));
        let t0 = Instant::now();
        assert_eq!(r.on_failure(t0), Next::RetryIn(Duration::ZERO));
        assert_eq!(
            r.on_failure(t0 + Duration::from_secs(1)),
            Next::RetryIn(Duration::from_secs(5))
        );
        assert!(matches!(
            r.on_failure(t0 + Duration::from_secs(26 * 60)),
            Next::GiveUp(_)
        ));
        // Healthy for 20 minutes: the schedule starts over.
        let mut r = RetryState::new(Some(Duration::from_secs(25 * 60)));
        r.on_failure(t0);
        r.on_failure(t0 + Duration::from_secs(10));
        r.on_connected(t0 + Duration::from_secs(20));
        let later = t0 + Duration::from_secs(20) + RESET_AFTER;
        assert_eq!(r.on_failure(later), Next::RetryIn(Duration::ZERO));
        // A short blip continues the old schedule.
        r.on_connected(later + Duration::from_secs(1));
        assert_eq!(
            r.on_failure(later + Duration::from_secs(2)),
            Next::RetryIn(Duration::from_secs(5))
        );
    }
}
