//! The clock, as envelopes count time: Unix nanoseconds in an `i64`.
//!
//! Every crate that stamps or ages an envelope reads the time here, so
//! there is one notion of "now" (formatting times as text is the codec's
//! job: `codec::timestamp`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix nanoseconds (0 if the clock is before 1970; `i64::MAX`
/// past the year 2262).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2020_and_moves_forward() {
        let a = now_ns();
        assert!(a > 1_577_836_800_000_000_000, "{a}");
        assert!(now_ns() >= a);
    }
}
