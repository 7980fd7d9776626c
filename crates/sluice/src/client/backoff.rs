//! Exponential backoff with jitter for reconnects and retries.
//!
//! The ceiling doubles from 100 ms up to a 5 s cap; each delay is drawn
//! uniformly from the upper half of the ceiling ("equal jitter"), so many
//! clients that lost the same server do not come back in lockstep, and a
//! delay is never less than half the schedule's value.

use std::time::Duration;

/// A retry schedule: `next_delay` after each failure, `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// 100 ms → 5 s, jittered.
    pub fn new() -> Self {
        Self::with_limits(Duration::from_millis(100), Duration::from_secs(5))
    }

    pub fn with_limits(base: Duration, cap: Duration) -> Self {
        let seed = (envelope::time::now_ns() as u64) ^ (u64::from(std::process::id()) << 32);
        Backoff {
            base,
            cap,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// The un-jittered delay for the `attempt`-th consecutive failure (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// How long to wait before the next try; advances the schedule.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if span == 0 {
            0
        } else {
            self.random() % (span + 1)
        };
        half + Duration::from_micros(jitter)
    }

    /// Back to the start after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// xorshift64*: plenty for jitter, no dependency.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = Backoff::new();
        let ms: Vec<u128> = (0..9).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.ceiling(200), Duration::from_secs(5));
    }

    #[test]
    fn delays_are_jittered_within_the_upper_half() {
        let mut b = Backoff::new();
        for attempt in 0..40 {
            let ceiling = b.ceiling(attempt);
            let d = b.next_delay();
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
        }
        assert_eq!(b.attempt, 40);
    }

    #[test]
    fn jitter_varies() {
        let mut b = Backoff::new();
        let delays: std::collections::HashSet<Duration> = (0..20)
            .map(|_| {
                b.reset();
                b.next_delay()
            })
            .collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new();
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
