//! Reading the log: from a position onward (a cursor's next batch), by
//! position list, and per source through the index.
//!
//! A [`LogReader`] is cheap to clone and `Send + Sync`; reads take a
//! snapshot of the segment list and then touch no lock, so they run beside
//! the writer (on a blocking thread: they do disk I/O). Records are verified
//! again as they are read; a record that fails (damage after open) ends the
//! read of that segment, and what it skips is counted like a gap.

use std::sync::Arc;

use crate::cursor::{FrameCursor, Step};
use crate::error::LogError;
use crate::format::{DecodeError, MIN_FRAME_LEN};
use crate::index::{IndexStats, SourceSummary};
use crate::record::Record;
use crate::report::Damage;
use crate::segment::{Segment, SegmentInfo, SPARSE_EVERY};
use crate::shared::Shared;

const READ_CHUNK: usize = 64 * 1024;

/// How much one read may return; it stops at whichever comes first (and
/// always returns at least one record when one is there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimit {
    pub max_records: usize,
    pub max_bytes: usize,
}

impl ReadLimit {
    pub fn records(max_records: usize) -> Self {
        ReadLimit {
            max_records,
            max_bytes: usize::MAX,
        }
    }
}

/// Damage met while reading (after open had verified the data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadDamage {
    pub segment_base: u64,
    /// The position whose record could not be read.
    pub position: u64,
    pub damage: Damage,
}

/// The result of [`LogReader::read_from`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadBatch {
    /// Consecutive available records from the requested position on.
    pub records: Vec<Record>,
    /// Positions at or after the requested one that are gone — removed by
    /// retention, missing, or damaged — and that this read stepped over.
    /// A drain counts them as lost.
    pub skipped: u64,
    /// Where the next read continues.
    pub next: u64,
    pub damage: Option<ReadDamage>,
}

#[derive(Clone, Debug)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LogReader { shared }
    }

    /// One past the newest readable (written) record.
    pub fn next_position(&self) -> u64 {
        self.shared.snapshot().last().map_or(0, |s| s.end())
    }

    /// The oldest readable position, if any record is readable.
    pub fn oldest_position(&self) -> Option<u64> {
        self.shared
            .snapshot()
            .iter()
            .find(|s| s.count() > 0)
            .map(|s| s.base)
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.shared.snapshot().iter().map(|s| s.info()).collect()
    }

    /// Records from `from` on, in position order. A position older than the
    /// oldest kept one starts at the oldest (the difference is `skipped`); a
    /// position at or past the end returns nothing with `next == from`.
    pub fn read_from(&self, from: u64, limit: ReadLimit) -> Result<ReadBatch, LogError> {
        let segments = self.shared.snapshot();
        let mut out = ReadBatch {
            next: from,
            ..ReadBatch::default()
        };
        let mut bytes = 0usize;
        let full = |out: &ReadBatch, bytes: usize| {
            out.records.len() >= limit.max_records || bytes >= limit.max_bytes
        };
        let first = segments.partition_point(|s| s.end() <= from);
        for seg in &segments[first..] {
            if limit.max_records == 0 || full(&out, bytes) {
                break;
            }
            let end = seg.end();
            if end <= out.next {
                continue;
            }
            let target = seg.base.max(out.next);
            let mut reader = SegmentReader::new(seg, target, self.shared.max_record);
            while reader.position < end && !full(&out, bytes) {
                match reader.next_record(target) {
                    Ok(record) => {
                        out.skipped += record.position - out.next;
                        out.next = record.position + 1;
                        bytes += record.frame_len();
                        out.records.push(record);
                    }
                    Err(damage) => {
                        // The rest of this segment is unreadable: step over it.
                        out.skipped += end - out.next;
                        out.next = end;
                        out.damage.get_or_insert(damage);
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The records at these positions, in the order given; positions no
    /// longer (or not yet) readable are left out.
    pub fn read_positions(&self, positions: &[u64]) -> Result<Vec<Record>, LogError> {
        let segments = self.shared.snapshot();
        let mut out = Vec::with_capacity(positions.len());
        let mut current: Option<(usize, SegmentReader<'_>)> = None;
        for &p in positions {
            let Some(i) = segments.partition_point(|s| s.base <= p).checked_sub(1) else {
                continue;
            };
            let seg = &segments[i];
            if p >= seg.end() {
                continue;
            }
            let reuse = matches!(&current, Some((ci, r))
                if *ci == i && !r.damaged && r.position <= p && p - r.position < 2 * SPARSE_EVERY);
            if !reuse {
                current = Some((i, SegmentReader::new(seg, p, self.shared.max_record)));
            }
            if let Some((_, reader)) = current.as_mut() {
                if let Ok(record) = reader.next_record(p) {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// The newest `n` records of a source, oldest first.
    pub fn newest(&self, source_id: &str, n: usize) -> Result<Vec<Record>, LogError> {
        let positions = self.shared.index.read().newest(source_id, n);
        self.read_positions(&positions)
    }

    /// A source's records with `start <= timestamp < end`, in position
    /// order, at most `limit`: the oldest such, or the newest when
    /// `newest_first`.
    pub fn range(
        &self,
        source_id: &str,
        start: i64,
        end: i64,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<Record>, LogError> {
        let positions = self
            .shared
            .index
            .read()
            .range(source_id, start, end, limit, newest_first);
        self.read_positions(&positions)
    }

    /// Positions of the newest `limit` records of any of `sources` with a
    /// timestamp after `after_ns` (exclusive), ascending: from the index,
    /// so at most `max_per_source` per source.
    pub fn newest_positions(&self, sources: &[String], after_ns: i64, limit: usize) -> Vec<u64> {
        self.shared
            .index
            .read()
            .newest_after(sources, after_ns, limit)
    }

    /// The positions [`range`](Self::range) reads, from the index alone.
    pub fn range_positions(
        &self,
        source_id: &str,
        start: i64,
        end: i64,
        limit: usize,
        newest_first: bool,
    ) -> Vec<u64> {
        self.shared
            .index
            .read()
            .range(source_id, start, end, limit, newest_first)
    }

    /// Records of a source in the index.
    pub fn count(&self, source_id: &str) -> u64 {
        self.shared.index.read().count(source_id)
    }

    /// Every source in the index with its count and extent.
    pub fn sources(&self) -> Vec<SourceSummary> {
        self.shared.index.read().summaries()
    }

    pub fn index_stats(&self) -> IndexStats {
        self.shared.index.read().stats()
    }
}

/// Decodes a segment's records in order from a located start.
struct SegmentReader<'s> {
    seg: &'s Segment,
    cursor: FrameCursor<'s>,
    /// Position of the record the cursor is at.
    position: u64,
    damaged: bool,
}

impl<'s> SegmentReader<'s> {
    /// Callers load the segment's `count` (its `end()`) before this loads
    /// `len`: see segment.rs on publication order.
    fn new(seg: &'s Segment, target: u64, max_record: usize) -> Self {
        let (offset, position) = seg.locate(target);
        SegmentReader {
            seg,
            cursor: FrameCursor::new(&seg.file, offset, seg.len(), READ_CHUNK, max_record),
            position,
            damaged: false,
        }
    }

    /// The record at `target` (decoding past the ones before it), or the
    /// damage that stopped the way there.
    fn next_record(&mut self, target: u64) -> Result<Record, ReadDamage> {
        loop {
            let damage = match self.cursor.next() {
                Ok(Step::Record { record, .. }) if record.position == self.position => {
                    self.position += 1;
                    if record.position >= target {
                        return Ok(Record::from_ref(&record));
                    }
                    continue;
                }
                Ok(Step::Record { record, .. }) => Damage::Position {
                    expected: self.position,
                    found: record.position,
                },
                Ok(Step::End) => Damage::Frame(DecodeError::Incomplete {
                    needed: MIN_FRAME_LEN,
                    available: 0,
                }),
                Ok(Step::Bad { error, .. }) => Damage::Frame(error),
                Err(e) => Damage::Read {
                    error: e.to_string(),
                },
            };
            self.damaged = true;
            return Err(ReadDamage {
                segment_base: self.seg.base,
                position: self.position,
                damage,
            });
        }
    }
}
