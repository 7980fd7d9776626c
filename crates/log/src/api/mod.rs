//! The seam the rest of sluice uses: the async, fallible [`Log`] trait, and
//! its implementations [`MemoryLog`] (bounded, in memory: tests and diskless
//! hosts) and [`DiskLog`] (over this crate's segment files). A NATS
//! JetStream implementation can come later behind the same trait: positions
//! become stream sequences and [`Cursor`]s carry them in a new version.
//!
//! Every method returns a boxed `Send` future so the trait stays usable as
//! `Arc<dyn Log>`; implementations never block the async workers (the disk
//! one runs its I/O on `spawn_blocking`).

mod consumers;
mod cursor;
mod disk;
mod disk_read;
mod error;
mod memory;
mod types;

use std::future::Future;
use std::pin::Pin;

use envelope::{Envelope, Selector};

pub use cursor::{Cursor, CursorParseError};
pub use disk::{DiskLog, DiskLogConfig, DEFAULT_MAX_DISK_BYTES};
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
    /// growing). Keys are computed with [`envelope::key::key_for`]. All or
    /// nothing: on error no entry of the batch is readable (a disk log whose
    /// write failed may still write it later: see [`DiskLog`]).
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
}
