//! One segment file and the state about it that the writer and readers share.
//!
//! A segment is named by its first position, `NNNNNNNNNNNNNNNNNNNN.seg`
//! (20 decimal digits, so names sort as positions do), and holds the
//! consecutive positions `base..base + count`. The writer publishes a
//! segment's growth after each write — sparse offsets first, then `len`,
//! then `count`, with release ordering — so a reader that loads `count` and
//! then `len` never looks past what was written. Readers keep an `Arc` of
//! the segment and read through its open file with `pread`, so a segment
//! deleted by retention mid-read stays readable to them until they let go.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::LogError;
use crate::format::{segment_header, SEGMENT_HEADER_LEN};
use crate::fsio::sync_dir;

/// Every this-many records a segment remembers the byte offset, so a read
/// from a position decodes at most this many records before it.
pub(crate) const SPARSE_EVERY: u64 = 32;
const SUFFIX: &str = ".seg";

pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}{SUFFIX}")
}

/// The base position named by a segment file name, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A public description of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    /// First position.
    pub base: u64,
    /// Readable records (`base..base + records`).
    pub records: u64,
    /// Readable bytes, header included.
    pub bytes: u64,
    /// Oldest and newest record timestamps; `None` when empty.
    pub timestamps: Option<(i64, i64)>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    len: AtomicU64,
    count: AtomicU64,
    min_ts: AtomicI64,
    max_ts: AtomicI64,
    sparse: RwLock<Vec<u64>>,
}

/// What recovery learned about an existing segment.
pub(crate) struct Scanned {
    pub(crate) len: u64,
    pub(crate) count: u64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) sparse: Vec<u64>,
}

impl Segment {
    /// Creates a new, empty segment durably: header written and fsynced,
    /// directory entry fsynced.
    pub(crate) fn create(dir: &Path, base: u64) -> Result<Arc<Segment>, LogError> {
        let path = dir.join(file_name(base));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(LogError::io("create", &path))?;
        let written = file
            .write_all(&segment_header())
            .map_err(LogError::io("write", &path))
            .and_then(|_| file.sync_all().map_err(LogError::io("fsync", &path)))
            .and_then(|_| sync_dir(dir));
        if let Err(e) = written {
            // Leave nothing behind for the next try (create_new) to trip over.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(Arc::new(Segment::new(
            base,
            path,
            file,
            Scanned {
                len: SEGMENT_HEADER_LEN as u64,
                count: 0,
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                sparse: Vec::new(),
            },
        )))
    }

    pub(crate) fn new(base: u64, path: PathBuf, file: File, s: Scanned) -> Segment {
        Segment {
            base,
            path,
            file,
            len: AtomicU64::new(s.len),
            count: AtomicU64::new(s.count),
            min_ts: AtomicI64::new(s.min_ts),
            max_ts: AtomicI64::new(s.max_ts),
            sparse: RwLock::new(s.sparse),
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// One past the last readable position.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.count()
    }

    pub(crate) fn max_ts(&self) -> i64 {
        self.max_ts.load(Ordering::Acquire)
    }

    /// A byte offset to start decoding from to reach `position`, and the
    /// position of the record found there.
    pub(crate) fn locate(&self, position: u64) -> (u64, u64) {
        let sparse = self.sparse.read();
        let k = (position.saturating_sub(self.base) / SPARSE_EVERY)
            .min(sparse.len().saturating_sub(1) as u64);
        match sparse.get(k as usize) {
            Some(&offset) => (offset, self.base + k * SPARSE_EVERY),
            None => (SEGMENT_HEADER_LEN as u64, self.base),
        }
    }

    /// The sparse offsets (for the checkpoint).
    pub(crate) fn sparse_offsets(&self) -> Vec<u64> {
        self.sparse.read().clone()
    }

    /// Makes written records visible to readers (writer only).
    pub(crate) fn publish(&self, sparse: &[u64], min_ts: i64, max_ts: i64, len: u64, count: u64) {
        if !sparse.is_empty() {
            self.sparse.write().extend_from_slice(sparse);
        }
        self.min_ts.fetch_min(min_ts, Ordering::AcqRel);
        self.max_ts.fetch_max(max_ts, Ordering::AcqRel);
        self.len.store(len, Ordering::Release);
        self.count.store(count, Ordering::Release);
    }

    pub(crate) fn info(&self) -> SegmentInfo {
        let records = self.count();
        SegmentInfo {
            path: self.path.clone(),
            base: self.base,
            records,
            bytes: self.len(),
            timestamps: (records > 0).then(|| {
                (
                    self.min_ts.load(Ordering::Acquire),
                    self.max_ts.load(Ordering::Acquire),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_name("99999999999999999999.seg"), None);
        assert_eq!(parse_name("0000000000000000042.seg"), None);
        assert_eq!(parse_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_name("00000000000000000042.seg.tmp"), None);
        assert!(file_name(9) < file_name(10));
    }
}
