//! The seam the rest of sluice uses: the async, fallible [`Log`] trait, and
//! its implementations [`MemoryLog`] (bounded, in memory: tests and diskless
//! hosts) and [`DiskLog`] (over this crate's segment files). The cluster's
//! NATS JetStream implementation lives in the `sluice-cluster` crate (this
//! one does no network I/O): there a position is the stream sequence, so
//! [`Cursor`]s keep their `v1.<position>` form and a cursor taken on one
//! node resumes on any other. Its `append` returns once the node buffered
//! the batch, with no positions (they are known only when the stream
//! acknowledges).
//!
//! Every method returns a boxed `Send` future so the trait stays usable as
//! `Arc<dyn Log>`; implementations never block the async workers (the disk
//! one runs its I/O on `spawn_blocking`).

mod cache;
mod check;
mod consumers;
mod cursor;
mod disk;
mod disk_read;
mod error;
mod memory;
mod space;
mod types;

use std::future::Future;
use std::pin::Pin;

use envelope::{Envelope, Selector};

pub use cache::{LogBounds, RecentCache, DEFAULT_CACHE_BYTES};
pub use check::{check_data_dir, check_disk_log, CursorCheck, CursorState, DataDirReport};
pub use cursor::{Cursor, CursorParseError};
pub use disk::{DiskLog, DiskLogConfig, DEFAULT_MAX_DISK_BYTES, DEFAULT_MIN_FREE_DISK_BYTES};
pub use error::ApiError;
pub use memory::{MemoryLog, MemoryLogConfig};
pub use types::{
    LogStats, Position, ReadPage, Retained, SourceMeta, StoredEntry, DEFAULT_MAX_AGE_NS,
};

/// The future every [`Log`] method returns.
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// An append-only, ordered log of envelopes with growing positions.
pub trait Log: Send + Sync {
    /// Appends a batch in order; returns each entry's position (consecutive,
    /// growing), or none from a log that buffers before it stores (the
    /// cluster's: positions are known only once the stream acknowledged). Keys are computed with [`envelope::key::key_for`], and
    /// timestamps made strictly increasing per source where they tie or
    /// step back by less than [`NUDGE_WINDOW_NS`](crate::NUDGE_WINDOW_NS)
    /// (`stamp.rs`; every implementation stamps against its own per-source
    /// state). All or nothing: on error no entry of the batch is stored,
    /// now or later.
    ///
    /// The batch takes its place when `append` is called, not when the
    /// future is first polled: batches appended one after the other by one
    /// caller land in that order even when the caller awaits them later,
    /// which lets a source keep several batches in flight (`syslog_tcp`).
    fn append(&self, batch: Vec<Envelope>) -> LogFuture<'_, Vec<Position>>;

    /// Log Cache's read of one source: `start_ns <= timestamp < end_ns`, at
    /// most `limit`; oldest first, or the newest first with `descending`.
    fn read_source<'a>(
        &'a self,
        source_id: &'a str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        descending: bool,
    ) -> LogFuture<'a, Vec<StoredEntry>>;

    /// Entries from `cursor` on that match `selector`, in position order, at
    /// most `limit` and about [`PAGE_BYTES`]. A page may hold fewer (even
    /// none) when many entries did not match: continue from `next_cursor`
    /// until `caught_up`. A cursor past the end resumes at the end.
    fn read_from<'a>(
        &'a self,
        cursor: Cursor,
        selector: &'a Selector,
        limit: usize,
    ) -> LogFuture<'a, ReadPage>;

    /// The cursor after the newest entry (where a live tail starts).
    fn end_cursor(&self) -> LogFuture<'_, Cursor>;

    /// Resolves once the log has entries at or after `cursor` (its end has
    /// moved past it), with the new end: how a reader that caught up waits
    /// for more without polling. Cancel it by dropping the future.
    fn wait_beyond(&self, cursor: Cursor) -> LogFuture<'_, Cursor>;

    /// Applies the log's own retention limits (age; disk budget on disk)
    /// as of `now_ns`. The owner calls it on a timer; a cluster backend
    /// may leave it to the server and report nothing.
    fn retain(&self, now_ns: i64) -> LogFuture<'_, Retained>;

    /// Durably records a named consumer's cursor (a drain's acknowledged
    /// position).
    fn commit<'a>(&'a self, consumer: &'a str, cursor: Cursor) -> LogFuture<'a, ()>;

    /// Removes a consumer's cursor (a deleted drain); true when it had one.
    fn forget<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, bool>;

    /// The consumer's last committed cursor, if any.
    fn committed<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, Option<Cursor>>;

    /// Per-source counts and time ranges sorted by source id: the first
    /// `limit` sources whose id sorts after `after` (all when `None`).
    fn meta<'a>(&'a self, after: Option<&'a str>, limit: usize) -> LogFuture<'a, Vec<SourceMeta>>;

    /// Totals for metrics and status.
    fn stats(&self) -> LogFuture<'_, LogStats>;

    /// The newest `limit` entries that match `selector` and are newer than
    /// `after_ns` (exclusive), oldest first: `--recent` dumps and stream
    /// replays. The default scans backwards from the end in growing windows
    /// through [`Log::read_from`]; a backend may answer from an index.
    fn recent<'a>(
        &'a self,
        selector: &'a Selector,
        after_ns: i64,
        limit: usize,
    ) -> LogFuture<'a, Vec<StoredEntry>> {
        Box::pin(recent_by_windows(self, selector, after_ns, limit))
    }

    /// How many entries lie from position `from` up to `to` (a drain's
    /// `behind`): exact where positions are consecutive (the default), an
    /// estimate where a log leaves some unused (the cluster's).
    fn distance(&self, from: Position, to: Position) -> u64 {
        to.saturating_sub(from)
    }
}

/// [`Log::recent`] for any backend: reads `[start, upto)` windows from the
/// end backwards, doubling the window, until `limit` entries matched or the
/// oldest entry was read.
pub async fn recent_by_windows<L: Log + ?Sized>(
    log: &L,
    selector: &Selector,
    after_ns: i64,
    limit: usize,
) -> Result<Vec<StoredEntry>, ApiError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let stats = log.stats().await?;
    let end = stats.next_position;
    let oldest = stats.oldest_position.unwrap_or(end);
    let mut found: Vec<StoredEntry> = Vec::new();
    let mut upto = end;
    let mut window = (limit as u64).saturating_mul(2).max(1024);
    while upto > oldest && found.len() < limit {
        let start = upto.saturating_sub(window).max(oldest);
        let mut chunk = Vec::new();
        let mut cursor = Cursor::at(start);
        while cursor.next() < upto {
            let page = log.read_from(cursor, selector, 4096).await?;
            chunk.extend(
                page.entries
                    .into_iter()
                    .filter(|e| e.position < upto && e.entry.envelope.timestamp > after_ns),
            );
            if page.caught_up || page.next_cursor <= cursor {
                break;
            }
            cursor = page.next_cursor;
        }
        chunk.append(&mut found);
        found = chunk;
        upto = start;
        window = window.saturating_mul(2);
    }
    let skip = found.len().saturating_sub(limit);
    found.drain(..skip);
    Ok(found)
}

/// A `read_from` page stops growing once its entries' approximate size
/// reaches this (it always holds at least one entry when one matches).
pub const PAGE_BYTES: usize = 16 << 20;

/// How many entries `read_from` examines per call at most, for a `limit`:
/// bounds the work of a page whose selector matches little.
pub(crate) fn scan_budget(limit: usize) -> usize {
    limit.saturating_mul(16).clamp(1024, 65_536)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn usable_as_a_shared_trait_object() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MemoryLog>();
        send_sync::<DiskLog>();
        let log: Arc<dyn Log> = Arc::new(MemoryLog::new(MemoryLogConfig::default()));
        assert_eq!(log.end_cursor().await.unwrap(), Cursor::START);
    }

    #[tokio::test]
    async fn recent_takes_the_newest_matching_entries() {
        let log = MemoryLog::new(MemoryLogConfig::default());
        let batch: Vec<Envelope> = (0..5000)
            .map(|i| {
                let source = if i % 10 == 0 { "rare" } else { "busy" };
                Envelope::log(
                    i + 1,
                    source,
                    "0",
                    bytes::Bytes::from_static(b"x"),
                    envelope::LogType::Out,
                )
            })
            .collect();
        log.append(batch).await.unwrap();
        let rare = Selector {
            source_ids: vec!["rare".into()],
            ..Default::default()
        };
        let got = log.recent(&rare, 0, 300).await.unwrap();
        let ts: Vec<i64> = got.iter().map(|e| e.entry.envelope.timestamp).collect();
        let want: Vec<i64> = (2000..5000).step_by(10).map(|i| i + 1).collect();
        assert_eq!(ts, want);
        let after = log.recent(&rare, 4950, 300).await.unwrap();
        assert_eq!(after.len(), 5, "only entries newer than after_ns");
        let all = log.recent(&Selector::all(), 0, 10_000).await.unwrap();
        assert_eq!(all.len(), 5000);
    }
}
