//! The crate's error type. Damaged data is not an error here: recovery and
//! readers skip it and report it (see [`OpenReport`](crate::OpenReport) and
//! [`ReadBatch`](crate::ReadBatch)); errors are what the caller must act on.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::format::EncodeError;

#[derive(Debug, Error)]
pub enum LogError {
    /// A file-system call failed (the disk, permissions, a full disk).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another process (or another writer in this one) has the directory.
    #[error("log directory {} is in use by another writer", path.display())]
    Locked { path: PathBuf },
    /// A record of the batch cannot be stored; nothing of the batch was.
    #[error("record {index} of the batch: {source}")]
    Encode {
        index: usize,
        #[source]
        source: EncodeError,
    },
    /// A configuration value is out of range.
    #[error("invalid log config: {0}")]
    Config(&'static str),
    /// The u64 position space is used up (not reachable in practice).
    #[error("log positions exhausted")]
    PositionsExhausted,
}

impl LogError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> LogError + 'a {
        move |source| LogError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}
