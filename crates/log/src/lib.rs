//! The storage layer of sluice's durable log (DESIGN.md §3): append-only,
//! CRC-checked segment files in one directory, with positions that only
//! grow, recovery that derives all state from the files, whole-segment
//! retention, readers by position and a per-source index in memory.
//!
//! - [`open`] recovers a directory and returns the [`LogWriter`] (one per
//!   directory, holding its lock) and an [`OpenReport`] of what was found,
//!   cut or skipped; [`check`] reports the same without changing anything
//!   ([`check_data_dir`] does it for a whole data directory, cursors too).
//! - [`LogWriter::append`] takes a batch of [`Appendable`] items (raw
//!   [`NewRecord`]s or [`EnvelopeRecord`]s) and returns their positions;
//!   `flush` writes them (one write per batch), `sync` fsyncs, and
//!   `apply_retention` deletes old segments. With `index_checkpoint` on, a
//!   clean `close` also writes `index.ckpt`, which lets the next `open`
//!   skip scanning the segments it covers (an accelerator only: anything
//!   stale or damaged about it and it is ignored).
//! - [`LogReader`] (clone it freely, use it from any thread) reads from a
//!   position, by positions, and per source (newest N, a time range, a
//!   count) through the index.
//!
//! The format is hand-written because no maintained crate has these
//! semantics. Embedded stores (sled, redb, fjall) are key-value trees with
//! their own compaction and no way to drop history a whole file at a time.
//! The write-ahead-log crates are built to be replayed and checkpointed, not
//! to be the history: okaywal calls its format unstable and not for
//! production; walogs fsyncs every append and returns an error from `open`
//! for damage in a completed segment (a crash loop waiting to happen);
//! wal-db's positions are byte offsets, not record numbers. None keeps a
//! record position floor across the deletion of every file. Here the frame
//! format is a page ([`format`](mod@format)), and each failure the field has taught
//! (Vector's disk buffer and Loki's WAL: refusing to start on a bad record,
//! deleting before fsync, state held outside the files) has a test in
//! `tests/crash.rs`.
//!
//! On top sits the seam the rest of sluice uses ([`api`]): the async,
//! fallible [`Log`] trait with [`DiskLog`] (over the segments, I/O on
//! blocking threads, the newest entries in a byte-bounded cache that
//! answers reads near the end inline, all-or-nothing appends that stop
//! before the disk is full) and [`MemoryLog`], typed [`Cursor`]s, durable
//! consumer cursors, and [`check_data_dir`] for `sluice check`.
//!
//! This crate does no network I/O, keeps its storage layer synchronous (the
//! [`DiskLog`] wraps it for async callers), and must never depend on the router, sources,
//! drains or server. Unix only: it uses positioned I/O and `flock`.

pub mod api;
mod checkpoint;
mod config;
mod cursor;
mod direct;
mod error;
pub mod format;
mod fsio;
mod index;
mod lock;
mod meta;
mod reader;
mod record;
mod recover;
mod report;
mod retention;
mod segment;
mod shared;
mod stamp;
mod sync;
mod writer;

pub use api::{
    check_data_dir, check_disk_log, recent_by_windows, ApiError, Cursor, CursorCheck,
    CursorParseError, CursorState, DataDirReport, DiskLog, DiskLogConfig, Log, LogBounds,
    LogFuture, LogStats, MemoryLog, MemoryLogConfig, Position, ReadPage, RecentCache, Retained,
    SourceMeta, StoredEntry, DEFAULT_CACHE_BYTES, DEFAULT_MAX_AGE_NS, DEFAULT_MAX_DISK_BYTES,
    DEFAULT_MIN_FREE_DISK_BYTES, PAGE_BYTES,
};
pub use config::{
    LogConfig, DEFAULT_FLUSH_THRESHOLD, DEFAULT_MAX_PER_SOURCE, DEFAULT_SEGMENT_BYTES,
};
pub use error::LogError;
pub use format::{DecodeError, EncodeError, HeaderError};
pub use index::{IndexStats, SourceSummary};
pub use meta::MetaStatus;
pub use reader::{LogReader, ReadBatch, ReadDamage, ReadLimit};
pub use record::{encode_envelope, Appendable, EnvelopeRecord, NewRecord, Record};
pub use report::{Damage, DamagedSegment, Gap, GapCause, OpenReport, TailCut};
pub use retention::{DeleteReason, DeletedSegment, RetentionPolicy, RetentionReport};
pub use segment::SegmentInfo;
pub use stamp::{nudge, NUDGE_WINDOW_NS};
pub use sync::SyncPlan;
pub use writer::{check, open, LogWriter};
