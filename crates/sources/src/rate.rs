//! Noisy-neighbour limits, as Logyard's apptail set them: a leaky bucket
//! of lines per second with a burst, per source id, so one app that floods
//! cannot starve the others of the pipeline. Over the limit, lines are
//! dropped (counted in `sluice_drops_total{reason="rate_limited"}`) and the
//! app is told in its own stream about once a second
//! ([`codec::notice::rate_limited`]).
//!
//! [`Limiter`] is applied by [`crate::IngestContext`] to every batch, so
//! the limit holds on every ingest path (syslog, HTTP, gRPC, the agent's
//! Docker and file collectors) and has one home. Only log lines count:
//! metrics and events pass (a flood of those is bounded by the log's
//! per-source limits instead).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use envelope::Envelope;
use parking_lot::Mutex;

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
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            refilled: now,
        }
    }

    /// Whether the bucket would be full at `now` (it has been idle for
    /// the burst's worth of time).
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens + elapsed * f64::from(self.limit.lines_per_second)
            >= f64::from(self.limit.burst.max(1))
    }

    /// How many of `n` more lines fit now (taken from the bucket).
    fn take(&mut self, now: Instant, n: usize) -> usize {
        if self.limit.is_off() {
            return n;
        }
        let elapsed = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        self.tokens = (self.tokens
            + elapsed.as_secs_f64() * f64::from(self.limit.lines_per_second))
        .min(f64::from(self.limit.burst.max(1)));
        let fits = (self.tokens.floor() as usize).min(n);
        self.tokens -= fits as f64;
        fits
    }
}

/// Drops not told yet, and when the app was last told.
#[derive(Debug, Default)]
struct DropNotice {
    pending: u64,
    told: Option<Instant>,
}

/// Sources with a bucket at once, at most.
pub const MAX_SOURCES: usize = 100_000;

/// How often an app is told about its drops.
pub const NOTICE_EVERY: Duration = Duration::from_secs(1);

impl DropNotice {
    fn dropped(&mut self, n: u64) {
        self.pending += n;
    }

    /// The count to tell now: when some are pending and the last notice
    /// is [`NOTICE_EVERY`] old.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        // A little slack: a ticker of NOTICE_EVERY fires a hair early or
        // late, and a notice should not slip to the tick after.
        let ready = self
            .told
            .is_none_or(|t| now.duration_since(t) >= NOTICE_EVERY.mul_f32(0.9));
        if !ready {
            return None;
        }
        self.told = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// The per-source buckets of one ingest context.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    sources: Mutex<HashMap<String, SourceState>>,
}

#[derive(Debug)]
struct SourceState {
    bucket: Bucket,
    drops: DropNotice,
}

/// What [`Limiter::admit`] decided for a batch.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Per entry, whether it may go on; empty when all may.
    pub keep: Vec<bool>,
    /// How many were dropped.
    pub dropped: u64,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Limiter {
            limit,
            sources: Mutex::default(),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Decides which log lines of `batch` fit their source's bucket: of a
    /// run of one source's lines, the first ones that fit go on (as if
    /// admitted one by one at the same instant).
    pub fn admit(&self, batch: &[Envelope], now: Instant) -> Admitted {
        let mut admitted = Admitted::default();
        if self.limit.is_off() {
            return admitted;
        }
        let mut sources = self.sources.lock();
        for run in crate::runs::log_runs(batch) {
            // Looked up before inserting so a known source costs no key
            // allocation.
            if !sources.contains_key(run.source_id) {
                if sources.len() >= MAX_SOURCES {
                    // Past the bound the lines go unlimited rather than
                    // the table growing; idle buckets leave at the next
                    // notices() sweep.
                    continue;
                }
                sources.insert(run.source_id.to_owned(), SourceState::new(self.limit, now));
            }
            let Some(state) = sources.get_mut(run.source_id) else {
                continue;
            };
            let fits = state.bucket.take(now, run.lines);
            let over = run.lines - fits;
            if over == 0 {
                continue;
            }
            state.drops.dropped(over as u64);
            admitted.dropped += over as u64;
            if admitted.keep.is_empty() {
                admitted.keep = vec![true; batch.len()];
            }
            let mut seen = 0;
            for i in run.span {
                if crate::runs::is_line(&batch[i]) {
                    admitted.keep[i] = seen < fits;
                    seen += 1;
                }
            }
        }
        admitted
    }

    /// The drops to tell now, per source (at most once per
    /// [`NOTICE_EVERY`] each), as notices for the apps' streams. Sources
    /// whose bucket is full again and who have nothing to tell are
    /// forgotten (a full bucket is what a new one would be), so the map
    /// holds only the sources of the last burst's worth of seconds.
    pub fn notices(&self, now: Instant) -> Vec<Envelope> {
        let mut sources = self.sources.lock();
        let mut notices = Vec::new();
        let per_second = self.limit.lines_per_second;
        sources.retain(|source, state| {
            if let Some(count) = state.drops.due(now) {
                notices.push(notice(source, count, per_second));
            }
            state.drops.pending > 0 || !state.bucket.is_full(now)
        });
        notices
    }
}

impl SourceState {
    fn new(limit: RateLimit, now: Instant) -> Self {
        SourceState {
            bucket: Bucket::new(limit, now),
            drops: DropNotice::default(),
        }
    }
}

/// The in-band notice of drops over the rate limit, in the app's own
/// stream (no instance id: it is sluice's line, not the app's).
pub fn notice(source_id: &str, count: u64, per_second: u32) -> Envelope {
    let text = codec::notice::rate_limited(count, source_id, per_second);
    let mut env = Envelope::log(
        envelope::time::now_ns(),
        source_id.to_owned(),
        String::new(),
        bytes::Bytes::from(text),
        envelope::v2::LogType::Err,
    );
    env.tags.insert(
        "source_type".to_owned(),
        codec::notice::SOURCE_TYPE.to_owned(),
    );
    env
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
        assert_eq!(b.take(t0, 999), 999);
        assert_eq!(
            b.take(t0, 20_000),
            1,
            "the burst, then nothing at the same instant"
        );
        let later = t0 + Duration::from_millis(500);
        assert_eq!(b.take(later, 20_000), 50, "half a second at 100/s");
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
        assert_eq!(b.take(t0, 100_000), 100_000);
    }

    fn line(source: &str) -> Envelope {
        Envelope::log(
            1,
            source.to_owned(),
            "0".to_owned(),
            bytes::Bytes::from_static(b"x"),
            envelope::v2::LogType::Out,
        )
    }

    #[test]
    fn each_source_has_its_own_bucket_and_is_told() {
        let t0 = Instant::now();
        let limiter = Limiter::new(RateLimit {
            lines_per_second: 10,
            burst: 3,
        });
        let mut batch: Vec<Envelope> = (0..5).map(|_| line("noisy")).collect();
        batch.push(line("quiet"));
        batch.push(Envelope::event(1, "noisy", "oom", "an event is not a line"));
        let admitted = limiter.admit(&batch, t0);
        assert_eq!(admitted.dropped, 2);
        assert_eq!(
            admitted.keep,
            vec![true, true, true, false, false, true, true],
            "the burst of noisy, all of quiet, events are not lines"
        );
        let notices = limiter.notices(t0);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].source_id, "noisy");
        let text = notices[0].as_log().map(|l| l.payload.clone());
        assert_eq!(
            text.as_deref(),
            Some(&b"sluice: 2 lines dropped for app noisy: over 10 lines/s"[..])
        );
        assert_eq!(
            notices[0].tags.get("source_type").map(String::as_str),
            Some("SLUICE")
        );
        // Told once; quiet's bucket refills and both are forgotten.
        assert!(limiter.notices(t0 + Duration::from_secs(2)).is_empty());
        assert!(limiter.sources.lock().is_empty());
        // Nothing in the way when all fit.
        assert!(limiter.admit(&batch[..3], t0).keep.is_empty());
    }

    #[test]
    fn notices_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut n = DropNotice::default();
        assert_eq!(n.due(t0), None);
        n.dropped(5);
        assert_eq!(n.due(t0), Some(5));
        n.dropped(3);
        assert_eq!(n.due(t0 + Duration::from_millis(200)), None);
        assert_eq!(n.due(t0 + Duration::from_millis(1000)), Some(3));
        n.dropped(1);
        assert_eq!(n.due(t0 + Duration::from_millis(1100)), None);
        assert_eq!(
            n.due(t0 + Duration::from_millis(1950)),
            Some(1),
            "with slack"
        );
    }
}
