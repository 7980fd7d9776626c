//! The recent store: about an hour of history per source, for `--recent`
//! dumps, Log Cache's `/api/v1/read` and resuming tails.
//!
//! [`RecentStore`] is the trait every backend implements; [`MemoryStore`] is
//! the default backend (a durable one comes later behind the same trait).
//! The store is fed synchronously by the router (it implements the router's
//! tap through the server's wiring), so it must stay cheap on append: it is
//! sharded by source and never does I/O on the ingest path.
//!
//! This crate must never depend on the network, sources or server code.

pub mod memory;
pub mod query;

use std::sync::Arc;

use envelope::{Entry, Selector};

pub use memory::{MemoryStore, StoreConfig};
pub use query::{ReadQuery, SourceMeta, StoreStats};

/// A backend for recent history.
pub trait RecentStore: Send + Sync {
    /// Adds a batch (in arrival order; timestamps may be out of order).
    fn append(&self, batch: &[Arc<Entry>]);

    /// Log Cache's read of one source: `[start_time, end_time)`, by type,
    /// oldest first (or newest first with `descending`), at most `limit`.
    fn read(&self, source_id: &str, query: &ReadQuery) -> Vec<Arc<Entry>>;

    /// The newest `limit` entries across all sources that match `selector`
    /// and are newer than `after` (Unix ns, exclusive), oldest first.
    fn recent(&self, selector: &Selector, after: i64, limit: usize) -> Vec<Arc<Entry>>;

    /// Per-source counts and time range, sorted by source id: the first
    /// `limit` sources whose id sorts after `after` (all when `None`). Memory
    /// is bounded by `limit`, not by the number of sources.
    fn meta(&self, after: Option<&str>, limit: usize) -> Vec<SourceMeta>;

    /// Totals for metrics.
    fn stats(&self) -> StoreStats;

    /// Drops entries older than the configured age, as of `now` (Unix ns).
    fn expire(&self, now: i64);
}
