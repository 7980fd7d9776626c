//! Timestamps for shipped lines: wall-clock Unix ns, made strictly
//! increasing so lines read in one go keep their order at the server.

use std::sync::atomic::{AtomicI64, Ordering};

use envelope::time::now_ns;

#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Now, or one nanosecond after the previous stamp if that is later.
    pub fn stamp(&self) -> i64 {
        self.stamp_at(now_ns())
    }

    fn stamp_at(&self, now: i64) -> i64 {
        let prev = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or_else(|last| last);
        now.max(prev.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase() {
        let c = Clock::new();
        assert_eq!(c.stamp_at(100), 100);
        assert_eq!(c.stamp_at(100), 101);
        assert_eq!(c.stamp_at(50), 102);
        assert_eq!(c.stamp_at(500), 500);
        let a = c.stamp();
        assert!(c.stamp() > a);
    }
}
