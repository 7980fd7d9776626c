//! [`Feed`]: a drain's place in the log — what it reads next, what it has
//! delivered, and when that is committed.
//!
//! A drain is the log consumer `drain.<name>` ([`consumer_name`]). A new
//! drain starts at the log's end as of its creation and commits it at once
//! (like a Heroku drain, it gets messages from then on); an existing one
//! (a restart of the server or of the drain, a PUT that keeps the name)
//! resumes from its committed cursor, or from the end when it has none.
//!
//! [`Feed::gather`] reads `read_from` pages into a batch within the
//! writer's [`BatchPolicy`] (entries beyond its limits wait in `carry`)
//! and, once caught up, waits on `wait_beyond` for more. Positions a page
//! reports as `skipped` (removed by retention, damaged) are added to
//! [`Feed::take_skipped`] for the task to count and tell.
//!
//! The cursor it commits is that of the first entry neither delivered nor
//! passed over: after the receiver accepted a batch, right after its last
//! entry (or the read cursor, when nothing else is waiting). Every accepted
//! batch is committed before the next is sent ([`COMMIT_EVERY`] is zero):
//! a [`DiskLog`](sluice_log::DiskLog) commit replaces a small file without
//! an fsync (the log's fsync timer makes it durable against a machine
//! crash), so it is cheap enough to pay per batch even during a catch-up.
//! (With an fsync per commit, a `syslog://` drain working off a 1,000,000-
//! message backlog ran at about 83,000 msg/s; throttled to one commit per
//! 150 ms, at 440,000–480,000 msg/s: `log_tests::catch_up_rate`.) So after
//! a kill -9 a drain sends again only the batch that was in flight
//! (at-least-once); after a clean stop, nothing; after a crash of the
//! machine, at most the commits of the last fsync interval.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use envelope::{Entry, Selector};
use metrics::DrainCounters;
use sluice_log::{ApiError, Cursor, Log, Position, StoredEntry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::status::Status;
use crate::writers::BatchPolicy;

/// The longest a delivered batch waits to be committed while the drain
/// keeps delivering: not at all (see the module docs).
pub const COMMIT_EVERY: Duration = Duration::ZERO;

/// How long a failed commit waits before it is tried again.
const COMMIT_RETRY: Duration = Duration::from_secs(1);

/// How long a feed waits before reading again when a page made no
/// progress.
const NO_PROGRESS_WAIT: Duration = Duration::from_millis(100);

/// The log consumer a drain is: `drain.<name>`.
pub fn consumer_name(drain: &str) -> String {
    format!("drain.{drain}")
}

/// Where a drain's feed begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    /// A new drain: from this cursor (the end when it was added), or from
    /// the end when the task starts when the log could not say at once.
    New(Option<Cursor>),
    /// An existing drain: from its committed cursor (the end if none).
    Resume,
}

/// A batch being sent: the entries for the writer and their positions.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) entries: Vec<Arc<Entry>>,
    positions: Vec<Position>,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    fn push(&mut self, stored: StoredEntry) {
        self.positions.push(stored.position);
        self.entries.push(stored.entry);
    }

    /// Removes the first `n` entries (at least one, at most all); returns
    /// the position of the last one removed.
    pub(super) fn take_front(&mut self, n: usize) -> Option<Position> {
        let n = n.clamp(1, self.len().max(1)).min(self.len());
        let last = n
            .checked_sub(1)
            .and_then(|i| self.positions.get(i).copied());
        self.entries.drain(..n);
        self.positions.drain(..n);
        last
    }

    /// The timestamp of the first entry.
    pub(super) fn first_timestamp(&self) -> Option<i64> {
        self.entries.first().map(|e| e.envelope.timestamp)
    }
}

pub(super) struct Feed {
    log: Arc<dyn Log>,
    consumer: String,
    selector: Selector,
    status: Arc<Status>,
    counters: DrainCounters,
    /// The next position to read.
    read: Cursor,
    /// The first position neither delivered nor passed over.
    acked: Cursor,
    /// What the log holds for the consumer, as far as this feed knows.
    committed: Option<Cursor>,
    last_commit: Instant,
    /// Entries read beyond a batch's limits, first in the next one.
    carry: VecDeque<StoredEntry>,
    /// Positions found gone since [`Feed::take_skipped`].
    skipped: u64,
    /// When they went missing: the timestamp of the last entry read before
    /// the first gap (or, when none was, of the first one after it).
    skipped_since: Option<i64>,
    /// The timestamp of the last entry read.
    last_read_ns: Option<i64>,
    /// The log's end as last seen, for the `behind` gauge.
    seen_end: Cursor,
    /// Whether the last commit failed (its warning was given).
    commit_failing: bool,
}

impl Feed {
    pub(super) fn new(
        log: Arc<dyn Log>,
        drain: &str,
        selector: Selector,
        status: Arc<Status>,
        counters: DrainCounters,
    ) -> Self {
        Feed {
            log,
            consumer: consumer_name(drain),
            selector,
            status,
            counters,
            read: Cursor::START,
            acked: Cursor::START,
            committed: None,
            last_commit: Instant::now(),
            carry: VecDeque::new(),
            skipped: 0,
            skipped_since: None,
            last_read_ns: None,
            seen_end: Cursor::START,
            commit_failing: false,
        }
    }

    /// Finds the drain's place in the log (see [`Start`]); a new drain's
    /// cursor is committed at once.
    pub(super) async fn begin(&mut self, start: Start) -> Result<(), ApiError> {
        let (cursor, commit) = match start {
            Start::New(Some(at)) => (at, true),
            Start::New(None) => (self.log.end_cursor().await?, true),
            Start::Resume => match self.log.committed(&self.consumer).await {
                Ok(Some(at)) => (at, false),
                Ok(None) => (self.log.end_cursor().await?, true),
                // A cursor file a machine crash left torn: replay what the
                // log holds rather than skip anything (at-least-once).
                Err(err @ ApiError::CorruptCursor { .. }) => {
                    warn!(error = %err, "drain cursor damaged; resending from the oldest entry kept");
                    (Cursor::START, true)
                }
                Err(err) => return Err(err),
            },
        };
        self.read = cursor;
        self.carry.clear();
        self.set_acked(cursor).await;
        if commit {
            self.log.commit(&self.consumer, cursor).await?;
        }
        self.committed = Some(cursor);
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Positions found gone (removed by retention before they were sent,
    /// damaged) since the last call, and since when (see `skipped_since`).
    pub(super) fn take_skipped(&mut self) -> Option<(u64, Option<i64>)> {
        let n = std::mem::take(&mut self.skipped);
        let since = self.skipped_since.take();
        (n > 0).then_some((n, since))
    }

    /// Fills an empty `batch` as `policy` asks: entries and bytes, and up
    /// to `max_wait` for more once one is there. Waits (committing what is
    /// due meanwhile) while the log has nothing new. Ok(false) when
    /// cancelled or the log was closed (the batch is then not sent).
    pub(super) async fn gather(
        &mut self,
        batch: &mut Batch,
        policy: &BatchPolicy,
        cancel: &CancellationToken,
    ) -> Result<bool, ApiError> {
        let mut bytes = 0usize;
        let mut deadline: Option<Instant> = None;
        loop {
            if self.fill(batch, &mut bytes, policy) {
                return Ok(true);
            }
            if cancel.is_cancelled() {
                return Ok(false);
            }
            let before = self.read;
            let page = self
                .log
                .read_from(self.read, &self.selector, policy.max_entries)
                .await?;
            if page.entries.is_empty() && !page.caught_up && page.next_cursor <= before {
                // A page that made no progress (never expected): do not
                // spin on it.
                warn!(cursor = %before, "the log returned no progress; waiting");
                tokio::select! {
                    _ = tokio::time::sleep(NO_PROGRESS_WAIT) => {}
                    _ = cancel.cancelled() => return Ok(false),
                }
                continue;
            }
            if page.skipped > 0 {
                self.skipped += page.skipped;
                let after_gap = page.entries.first().map(|e| e.entry.envelope.timestamp);
                self.skipped_since = self.skipped_since.or(self.last_read_ns).or(after_gap);
            }
            if let Some(last) = page.entries.last() {
                self.last_read_ns = Some(last.entry.envelope.timestamp);
            }
            self.read = page.next_cursor;
            self.carry.extend(page.entries);
            if batch.is_empty() && self.carry.is_empty() {
                // Passed over entries the drain does not select.
                self.set_acked(self.read).await;
            }
            if self.fill(batch, &mut bytes, policy) {
                return Ok(true);
            }
            if !page.caught_up {
                continue;
            }
            if batch.is_empty() {
                if !self.idle(cancel).await? {
                    return Ok(false);
                }
                continue;
            }
            if policy.max_wait.is_zero() {
                return Ok(true);
            }
            let until = *deadline.get_or_insert_with(|| Instant::now() + policy.max_wait);
            tokio::select! {
                more = self.log.wait_beyond(self.read) => match more {
                    Ok(_) => {}
                    Err(ApiError::Closed) => return Ok(true),
                    Err(e) => return Err(e),
                },
                _ = tokio::time::sleep_until(until) => return Ok(true),
                _ = cancel.cancelled() => return Ok(false),
            }
        }
    }

    /// Moves carried entries into `batch` within the policy's limits; true
    /// when a limit was reached.
    fn fill(&mut self, batch: &mut Batch, bytes: &mut usize, policy: &BatchPolicy) -> bool {
        let full = |batch: &Batch, bytes: usize| {
            batch.len() >= policy.max_entries || bytes >= policy.max_bytes
        };
        while !full(batch, *bytes) {
            let Some(next) = self.carry.pop_front() else {
                return false;
            };
            *bytes += next.entry.envelope.approx_size();
            batch.push(next);
        }
        true
    }

    /// Caught up with nothing to send: waits for the log to grow,
    /// committing what is due meanwhile. False when cancelled or closed.
    async fn idle(&mut self, cancel: &CancellationToken) -> Result<bool, ApiError> {
        self.status.set_oldest_undelivered(None);
        loop {
            let due = self.commit_due();
            tokio::select! {
                more = self.log.wait_beyond(self.read) => return match more {
                    Ok(end) => {
                        self.show_behind(end);
                        Ok(true)
                    }
                    Err(ApiError::Closed) => Ok(false),
                    Err(e) => Err(e),
                },
                _ = sleep_until_some(due) => self.commit().await,
                _ = cancel.cancelled() => return Ok(false),
            }
        }
    }

    /// The receiver accepted entries through `through`; `more_waiting`
    /// when the batch still holds some.
    pub(super) async fn delivered(&mut self, through: Option<Position>, more_waiting: bool) {
        let acked = match through {
            Some(p) if more_waiting || !self.carry.is_empty() => Cursor::after(p),
            _ => self.read,
        };
        self.set_acked(acked).await;
        if self.commit_due().is_some_and(|at| at <= Instant::now()) {
            self.commit().await;
        }
    }

    /// The timestamp of the oldest entry read but not delivered, besides
    /// the batch's.
    pub(super) fn oldest_carried(&self) -> Option<i64> {
        self.carry.front().map(|e| e.entry.envelope.timestamp)
    }

    /// Commits what was delivered, if anything new (when the drain stops).
    /// A feed that never found its place commits nothing.
    pub(super) async fn finish(&mut self) {
        if self.commit_due().is_some() {
            self.commit().await;
        }
    }

    /// When the next commit is due, if there is something to commit (never
    /// before [`Feed::begin`] succeeded).
    fn commit_due(&self) -> Option<Instant> {
        match self.committed {
            Some(c) if c != self.acked => Some(self.last_commit + COMMIT_EVERY),
            _ => None,
        }
    }

    async fn commit(&mut self) {
        self.last_commit = Instant::now();
        match self.log.commit(&self.consumer, self.acked).await {
            Ok(()) => {
                self.committed = Some(self.acked);
                self.commit_failing = false;
            }
            Err(e) => {
                // Again after COMMIT_RETRY, not at once (a cluster's KV
                // may be away for a while); told once per failing streak.
                self.last_commit = Instant::now() + COMMIT_RETRY;
                if !std::mem::replace(&mut self.commit_failing, true) {
                    warn!(error = %e, "cannot commit the drain's cursor; will retry");
                }
            }
        }
    }

    async fn set_acked(&mut self, acked: Cursor) {
        self.acked = acked;
        self.status.set_position(acked.next());
        if let Ok(end) = self.log.end_cursor().await {
            self.show_behind(end);
        }
    }

    /// While another node delivers the drain: shows its committed cursor
    /// as this drain's place (for `behind`), without reading.
    pub(super) async fn follow_committed(&mut self) {
        if let Ok(Some(at)) = self.log.committed(&self.consumer).await {
            self.set_acked(at).await;
        }
    }

    fn show_behind(&mut self, end: Cursor) {
        self.seen_end = self.seen_end.max(end);
        let behind = self.log.distance(self.acked.next(), end.next());
        self.counters
            .behind
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
    }

    /// Keeps the `behind` gauge current while the drain waits to retry
    /// (the log grows without the feed reading it): resolves each time the
    /// log grew past what was seen; never when the log cannot say.
    pub(super) async fn follow_end(&mut self) {
        match self.log.wait_beyond(self.seen_end).await {
            Ok(end) => {
                self.show_behind(end);
                self.show_oldest_waiting().await;
            }
            Err(_) => std::future::pending().await,
        }
    }

    /// While nothing is read (the receiver is down), the oldest undelivered
    /// message is the first one after the acknowledged cursor: its time is
    /// what status shows as the age of the backlog.
    async fn show_oldest_waiting(&mut self) {
        // Nothing is delivered while the drain waits, so the oldest waiting
        // message stays the same: look it up once, not on every append
        // (for a drain far behind, that read goes to disk).
        if self.status.oldest_undelivered().is_some() {
            return;
        }
        let oldest = match self.carry.front() {
            Some(e) => Some(e.entry.envelope.timestamp),
            None => match self.log.read_from(self.acked, &self.selector, 1).await {
                Ok(page) => page.entries.first().map(|e| e.entry.envelope.timestamp),
                Err(_) => return,
            },
        };
        if oldest.is_some() {
            self.status.set_oldest_undelivered(oldest);
        }
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use sluice_log::{MemoryLog, MemoryLogConfig};

    use super::*;

    /// A feed stopped before it found its place (its task cancelled while
    /// the log failed) must not overwrite the committed cursor with the
    /// start of the log.
    #[tokio::test]
    async fn a_feed_that_never_began_commits_nothing() {
        let log = Arc::new(MemoryLog::new(MemoryLogConfig::default()));
        log.commit("drain.x", Cursor::at(42)).await.unwrap();
        let status = Arc::new(Status::new(0));
        let mut feed = Feed::new(
            log.clone(),
            "x",
            Selector::default(),
            status,
            DrainCounters::default(),
        );
        feed.finish().await;
        assert_eq!(
            log.committed("drain.x").await.unwrap(),
            Some(Cursor::at(42))
        );
        feed.begin(Start::Resume).await.unwrap();
        assert_eq!(feed.acked, Cursor::at(42));
        feed.finish().await;
        assert_eq!(
            log.committed("drain.x").await.unwrap(),
            Some(Cursor::at(42))
        );
    }
}
