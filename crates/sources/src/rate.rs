//! Noisy-neighbour limits, as Logyard's apptail set them: a leaky bucket
//! of lines per second with a burst, so one app that floods cannot starve
//! the others of the pipeline. Over the limit, lines are dropped (counted
//! in `sluice_drops_total{reason="rate_limited"}`) and the app is told in
//! its own stream about once a second ([`codec::notice::rate_limited`]).
//!
//! The `sluice agent` Docker followers keep one bucket per container.

use std::time::{Duration, Instant};

/// Lines per second and burst; a rate of 0 turns the limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub lines_per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            lines_per_second: 1000,
            burst: 10_000,
        }
    }
}

impl RateLimit {
    pub fn is_off(&self) -> bool {
        self.lines_per_second == 0
    }
}

/// One bucket: full at `burst`, refilled at `lines_per_second`.
#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            refilled: now,
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whether one more line fits now.
    pub fn admit(&mut self, now: Instant) -> bool {
        if self.limit.is_off() {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        self.tokens = (self.tokens
            + elapsed.as_secs_f64() * f64::from(self.limit.lines_per_second))
        .min(f64::from(self.limit.burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Drops not told yet, and when the app was last told.
#[derive(Debug, Default)]
pub struct DropNotice {
    pending: u64,
    told: Option<Instant>,
}

/// How often an app is told about its drops.
pub const NOTICE_EVERY: Duration = Duration::from_secs(1);

impl DropNotice {
    pub fn dropped(&mut self, n: u64) {
        self.pending += n;
    }

    /// The count to tell now: when some are pending and the last notice
    /// is [`NOTICE_EVERY`] old (or `force`, at the end of a stream).
    pub fn due(&mut self, now: Instant, force: bool) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        let ready = force
            || self
                .told
                .is_none_or(|t| now.duration_since(t) >= NOTICE_EVERY);
        if !ready {
            return None;
        }
        self.told = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateLimit {
                lines_per_second: 100,
                burst: 1000,
            },
            t0,
        );
        let first = (0..20_000).filter(|_| b.admit(t0)).count();
        assert_eq!(first, 1000, "the burst, then nothing at the same instant");
        let later = t0 + Duration::from_millis(500);
        let more = (0..20_000).filter(|_| b.admit(later)).count();
        assert_eq!(more, 50, "half a second at 100/s");
    }

    #[test]
    fn off_admits_everything() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateLimit {
                lines_per_second: 0,
                burst: 0,
            },
            t0,
        );
        assert!((0..100_000).all(|_| b.admit(t0)));
    }

    #[test]
    fn notices_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut n = DropNotice::default();
        assert_eq!(n.due(t0, false), None);
        n.dropped(5);
        assert_eq!(n.due(t0, false), Some(5));
        n.dropped(3);
        assert_eq!(n.due(t0 + Duration::from_millis(200), false), None);
        assert_eq!(n.due(t0 + Duration::from_millis(1000), false), Some(3));
        n.dropped(1);
        assert_eq!(n.due(t0 + Duration::from_millis(1100), true), Some(1));
    }
}
