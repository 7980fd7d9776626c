//! [`LogConfig`]: where the log lives and the limits it keeps.

use std::path::PathBuf;

use crate::error::LogError;
use crate::format::{DEFAULT_MAX_RECORD_BYTES, MIN_FRAME_LEN, SEGMENT_HEADER_LEN};

/// Default size past which the writer starts a new segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default size of buffered, unwritten batches that forces a write.
pub const DEFAULT_FLUSH_THRESHOLD: usize = 1024 * 1024;
/// Default per-source cap of the in-memory index (DESIGN.md §6).
pub const DEFAULT_MAX_PER_SOURCE: usize = 100_000;

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// The directory holding the segments, `meta` and `lock`.
    pub dir: PathBuf,
    /// A segment is rolled once the next batch would take it past this
    /// size (a batch larger than this gets a segment of its own).
    pub segment_bytes: u64,
    /// Largest frame written or read; bigger lengths read as corruption.
    pub max_record_bytes: usize,
    /// `append` writes out buffered batches before they grow past this.
    pub flush_threshold: usize,
    /// Index entries kept per source (the oldest are dropped from the
    /// index, not from disk).
    pub max_per_source: usize,
    /// Write `index.ckpt` at a clean close and use it to skip scanning the
    /// segments it covers at the next open (`checkpoint.rs` says when it is
    /// trusted). Off by default.
    pub index_checkpoint: bool,
    /// Write the active segment with `O_DIRECT`, past the page cache
    /// (`direct.rs` says why); buffered writes when off or where the file
    /// system refuses it. On by default.
    pub direct_io: bool,
}

impl LogConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            flush_threshold: DEFAULT_FLUSH_THRESHOLD,
            max_per_source: DEFAULT_MAX_PER_SOURCE,
            index_checkpoint: false,
            direct_io: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), LogError> {
        if self.max_record_bytes < MIN_FRAME_LEN || self.max_record_bytes > u32::MAX as usize {
            return Err(LogError::Config(
                "max_record_bytes must be between 28 bytes and 4 GiB",
            ));
        }
        if self.segment_bytes <= SEGMENT_HEADER_LEN as u64 {
            return Err(LogError::Config(
                "segment_bytes must exceed the 16-byte header",
            ));
        }
        if self.max_per_source == 0 {
            return Err(LogError::Config("max_per_source must be at least 1"));
        }
        Ok(())
    }
}
