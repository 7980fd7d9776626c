//! [`ApiError`]: what a [`Log`](super::Log) call can fail with.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::error::LogError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// The storage layer failed (I/O, a full disk, a record too large).
    #[error(transparent)]
    Storage(#[from] LogError),
    /// The log's file system has less free space than the configured
    /// minimum (less the batch): nothing of the batch was written.
    #[error(
        "disk nearly full: {free_bytes} bytes free, the log keeps at least {min_free_bytes} free"
    )]
    DiskFull {
        free_bytes: u64,
        min_free_bytes: u64,
    },
    /// Reading or writing a consumer's cursor file failed.
    #[error("consumer cursor {op} {}: {source}", path.display())]
    Cursor {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A cursor file holds something that is not a cursor.
    #[error("consumer cursor file {} is damaged: {found:?}", path.display())]
    CorruptCursor { path: PathBuf, found: String },
    /// A consumer name that cannot be stored (empty or too long).
    #[error("invalid consumer name: {0}")]
    ConsumerName(&'static str),
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
    /// A log kept by another service (the cluster's NATS JetStream) did
    /// not answer or refused: `op` says what was asked.
    #[error("{op}: {detail}")]
    Remote { op: &'static str, detail: String },
    /// A blocking task died (a bug: it panicked).
    #[error("log task failed: {0}")]
    Task(String),
}
