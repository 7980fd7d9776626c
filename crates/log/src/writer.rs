//! The single writer: assigns positions, buffers batches, writes them,
//! fsyncs on request and rolls segments by size.
//!
//! [`LogWriter::append`] encodes a batch into the writer's buffer and
//! returns the positions it got; [`flush`](LogWriter::flush) writes whatever
//! is buffered with one positioned write (`pwrite` at the segment's end, so
//! a failed write is simply overwritten by the retry, never appended after)
//! and then publishes it to readers and the index;
//! [`sync`](LogWriter::sync) also fsyncs it. The caller drives both — per
//! batch and on a short timer — and is told the durable watermark by
//! [`synced_position`](LogWriter::synced_position).
//!
//! `append` files each record in the per-source index at once (hidden from
//! queries until it is written, taken out again if it never is);
//! [`stamp`](LogWriter::stamp) files a batch of envelopes before they are
//! encoded and makes their timestamps strictly increasing per source on
//! the way (`stamp.rs`), the [`DiskLog`](crate::DiskLog)'s path.
//!
//! Positions handed out by `append` are promised only once flushed: after
//! a crash, positions of records that never reached the file may be
//! given out again (those records were never readable by anyone).
//!
//! A failed write leaves the batches buffered for the next try; a caller
//! that wants all-or-nothing calls [`discard_pending`](LogWriter::discard_pending)
//! instead, which drops them and gives their positions out again. Either
//! way, bytes a failed write may have left past the segment's valid end are
//! cut off (truncated and synced) at once and, if that fails too, before
//! anything else is written, so no later write or recovery can bring a
//! discarded record back — except a crash while the truncation itself
//! keeps failing, after which recovery may read those bytes as records.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::checkpoint;
use crate::config::LogConfig;
use crate::direct::DirectFile;
use crate::error::LogError;
use crate::format::{encode_frame, BODY_FIXED_LEN, FRAME_PREFIX_LEN};
use crate::lock::DirLock;
use crate::meta;
use crate::reader::LogReader;
use crate::record::Appendable;
use crate::recover::recover;
use crate::report::OpenReport;
use crate::segment::{Segment, SegmentInfo, SPARSE_EVERY};
use crate::shared::Shared;

/// The one writer of a log directory (holds its lock).
#[derive(Debug)]
pub struct LogWriter {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: LogConfig,
    pub(crate) active: Arc<Segment>,
    /// Encoded frames not yet written, all for the active segment.
    pending: Vec<u8>,
    pending_count: u64,
    /// What `flush` publishes of each pending frame, noted when it was
    /// encoded (so the frames are not decoded and checksummed again).
    pending_frames: Vec<PendingFrame>,
    /// Next position to assign.
    pub(crate) next: u64,
    /// Positions below this are filed in the index (`stamp` runs ahead of
    /// `append`); at least the written position, at most `next` once the
    /// batch `stamp` filed is appended.
    filed: u64,
    /// Every position below this is fsynced.
    pub(crate) synced: u64,
    /// Sealed segments that may hold unsynced records, oldest first
    /// (`sync.rs`).
    pub(crate) unsynced_sealed: Vec<Arc<Segment>>,
    /// A write failed: the active segment may hold bytes past its valid
    /// length, to be truncated before the next write.
    torn: bool,
    /// The active segment's `O_DIRECT` handle (`direct.rs`); `None`: writes
    /// are buffered (`direct_io` off, refused by the file system, or after
    /// an error that left the kept tail in doubt).
    direct: Option<DirectFile>,
    _lock: DirLock,
}

/// Where a batch being appended begins in the buffers.
#[derive(Clone, Copy, Debug)]
struct Mark {
    bytes: usize,
    frames: usize,
}

/// One encoded, unwritten frame: where it starts in `pending`, where its
/// source id lies there, and its position and timestamp.
#[derive(Debug)]
struct PendingFrame {
    at: usize,
    source: Range<usize>,
    position: u64,
    timestamp: i64,
}

/// Opens (creating if needed) the log in `config.dir`, recovering its state
/// from the files (`recover.rs` says what is repaired).
pub fn open(config: LogConfig) -> Result<(LogWriter, OpenReport), LogError> {
    config.validate()?;
    std::fs::create_dir_all(&config.dir).map_err(LogError::io("create", &config.dir))?;
    let lock = DirLock::acquire(&config.dir)?;
    let r = recover(&config, true)?;
    let active = match r.segments.last() {
        Some(s) => s.clone(),
        // recover(repair) always leaves an active segment.
        None => Segment::create(&config.dir, r.next)?,
    };
    let shared = Arc::new(Shared::new(
        config.dir.clone(),
        config.max_record_bytes,
        r.segments,
        r.index,
    ));
    let mut writer = LogWriter {
        shared,
        config,
        active,
        pending: Vec::new(),
        pending_count: 0,
        pending_frames: Vec::new(),
        next: r.next,
        filed: r.next,
        synced: r.next,
        unsynced_sealed: Vec::new(),
        torn: false,
        direct: None,
        _lock: lock,
    };
    writer.direct = writer.open_direct();
    Ok((writer, r.report))
}

/// Scans a log directory without changing it (no lock, no truncation) and
/// reports what [`open`] would find and repair: for `sluice check`.
pub fn check(config: &LogConfig) -> Result<OpenReport, LogError> {
    config.validate()?;
    Ok(recover(config, false)?.report)
}

impl LogWriter {
    /// A reader sharing this log's segments and index.
    pub fn reader(&self) -> LogReader {
        LogReader::new(self.shared.clone())
    }

    /// The position the next appended record gets.
    pub fn next_position(&self) -> u64 {
        self.next
    }

    /// Every position below this is written and fsynced.
    pub fn synced_position(&self) -> u64 {
        self.synced
    }

    /// Every position below this is written (readable), if not fsynced:
    /// the positions of buffered batches start here.
    pub(crate) fn written_position(&self) -> u64 {
        self.next - self.pending_count
    }

    /// Bytes appended but not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Valid bytes in all segments, plus what is buffered.
    pub fn disk_bytes(&self) -> u64 {
        let written: u64 = self.shared.snapshot().iter().map(|s| s.len()).sum();
        written + self.pending.len() as u64
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.shared.snapshot().iter().map(|s| s.info()).collect()
    }

    /// Appends a batch, returning the consecutive positions it got. Either
    /// the whole batch is taken or, on error, none of it. Buffered batches
    /// are written out first when this one would take them past the flush
    /// threshold, and the segment is rolled when it would pass its size.
    ///
    /// The batch is encoded first, behind what is buffered, and placed once
    /// its size is known: sizing it beforehand meant computing every
    /// envelope's encoded length twice (a tenth of the encoding's cost).
    pub fn append<R: Appendable>(&mut self, batch: &[R]) -> Result<Range<u64>, LogError> {
        let start = self.next;
        if batch.is_empty() {
            return Ok(start..start);
        }
        let end = start
            .checked_add(batch.len() as u64)
            .ok_or(LogError::PositionsExhausted)?;
        // Filed by `stamp` already, or not at all.
        let prefiled = self.filed > start;
        let max = self.config.max_record_bytes;
        let mark = Mark {
            bytes: self.pending.len(),
            frames: self.pending_frames.len(),
        };
        for (index, (r, position)) in batch.iter().zip(start..end).enumerate() {
            let at = self.pending.len();
            let written = encode_frame(
                &mut self.pending,
                position,
                r.timestamp(),
                r.key(),
                r.source_id(),
                max,
                |out| r.write_envelope(out),
            );
            if let Err(source) = written {
                self.pending.truncate(mark.bytes);
                self.pending_frames.truncate(mark.frames);
                if prefiled {
                    self.unfile(batch, start);
                }
                return Err(LogError::Encode { index, source });
            }
            let source_at = at + FRAME_PREFIX_LEN + BODY_FIXED_LEN + r.key().len();
            self.pending_frames.push(PendingFrame {
                at,
                source: source_at..source_at + r.source_id().len(),
                position,
                timestamp: r.timestamp(),
            });
        }
        if !prefiled {
            let mut index = self.shared.index.write();
            index.set_visible_end(self.written_position());
            for (r, position) in batch.iter().zip(start..end) {
                index.push(r.source_id(), position, r.timestamp());
            }
        }
        self.filed = end;
        let size = (self.pending.len() - mark.bytes) as u64;
        let segment_used = self.active.len() + mark.bytes as u64;
        let segment_records = self.active.count() + self.pending_count;
        let written = if segment_records > 0
            && segment_used.saturating_add(size) > self.config.segment_bytes
        {
            self.set_aside(mark, Self::roll)
        } else if mark.bytes > 0 && self.pending.len() > self.config.flush_threshold {
            self.set_aside(mark, Self::flush)
        } else {
            Ok(())
        };
        if let Err(e) = written {
            self.unfile(batch, start);
            return Err(e);
        }
        self.pending_count += batch.len() as u64;
        self.next = end;
        Ok(start..end)
    }

    /// Files the batch the next [`append`](Self::append) takes (`(source
    /// id, timestamp)` of each envelope, in order) in the index at the
    /// positions it will get, making each timestamp strictly increasing
    /// per source first (`stamp.rs`): one index lookup per record does
    /// both. The caller then appends records carrying the stamped
    /// timestamps, and must (the next `append` takes the filing as its
    /// own).
    pub(crate) fn stamp<'a>(&mut self, batch: impl Iterator<Item = (&'a str, &'a mut i64)>) {
        debug_assert_eq!(self.filed, self.next, "a stamped batch was not appended");
        let mut index = self.shared.index.write();
        index.set_visible_end(self.written_position());
        let mut position = self.next;
        for (source, timestamp) in batch {
            *timestamp = index.stamp_push(source, position, *timestamp);
            position += 1;
        }
        self.filed = position;
    }

    /// Takes a batch filed from `start` on out of the index again (it is
    /// not appended).
    fn unfile<R: Appendable>(&mut self, batch: &[R], start: u64) {
        let mut index = self.shared.index.write();
        for r in batch {
            index.truncate_from(r.source_id(), start);
        }
        self.filed = start;
    }

    /// Runs `write` (a flush or a roll, for what was buffered before the
    /// batch just encoded at `mark`) with that batch set aside, then
    /// buffers it again, now at the start. If `write` fails the batch is
    /// dropped: the caller's append fails whole.
    fn set_aside(
        &mut self,
        mark: Mark,
        write: impl FnOnce(&mut Self) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let bytes = self.pending.split_off(mark.bytes);
        let frames = self.pending_frames.split_off(mark.frames);
        // A flush (a roll flushes first) leaves the buffers empty.
        write(self)?;
        // Copied back rather than swapped in: the buffer keeps its capacity.
        self.pending.extend_from_slice(&bytes);
        self.pending_frames
            .extend(frames.into_iter().map(|f| PendingFrame {
                at: f.at - mark.bytes,
                source: f.source.start - mark.bytes..f.source.end - mark.bytes,
                ..f
            }));
        Ok(())
    }

    /// Writes buffered batches to the active segment (one write) and makes
    /// them visible to readers and the index. On error nothing is published
    /// and the batches stay buffered for the next try.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.cut_torn_tail()?;
        let seg = &self.active;
        let offset = seg.len();
        let written = match self
            .direct
            .as_mut()
            .map(|d| d.write_at(&self.pending, offset))
        {
            Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                // The device wants a stricter alignment: buffered from now
                // on (nothing was written; the retry rewrites from `offset`).
                self.direct = None;
                self.config.direct_io = false;
                seg.file.write_all_at(&self.pending, offset)
            }
            Some(r) => r,
            None => seg.file.write_all_at(&self.pending, offset),
        };
        if let Err(e) = written {
            // Part of it may have landed: cut before the next write.
            self.torn = true;
            return Err(LogError::io("write", &seg.path)(e));
        }
        let first = seg.count();
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        let mut sparse = Vec::new();
        for f in &self.pending_frames {
            if (f.position - seg.base) % SPARSE_EVERY == 0 {
                sparse.push(offset + f.at as u64);
            }
            min_ts = min_ts.min(f.timestamp);
            max_ts = max_ts.max(f.timestamp);
        }
        seg.publish(
            &sparse,
            min_ts,
            max_ts,
            offset + self.pending.len() as u64,
            first + self.pending_frames.len() as u64,
        );
        // Filed in the index when appended: now queries see it.
        self.shared.index.write().set_visible_end(self.next);
        self.pending.clear();
        self.pending_count = 0;
        self.pending_frames.clear();
        Ok(())
    }

    /// Drops the buffered, unwritten batches (after a failed write, for an
    /// all-or-nothing append) and returns how many records they held;
    /// their positions are given out again by the next `append`. Bytes a
    /// failed write left behind are truncated; if that fails too it is
    /// retried before the next write, which cannot happen until it works.
    pub fn discard_pending(&mut self) -> Result<u64, LogError> {
        let dropped = self.pending_count;
        let first = self.written_position();
        {
            let mut index = self.shared.index.write();
            for f in &self.pending_frames {
                // Written from a `&str` by `append`.
                if let Ok(source) = std::str::from_utf8(&self.pending[f.source.clone()]) {
                    index.truncate_from(source, first);
                }
            }
        }
        self.filed = first;
        self.pending.clear();
        self.pending_count = 0;
        self.pending_frames.clear();
        self.next -= dropped;
        self.cut_torn_tail()?;
        Ok(dropped)
    }

    /// Truncates the active segment to its valid length after a failed
    /// write (and makes that durable).
    fn cut_torn_tail(&mut self) -> Result<(), LogError> {
        if self.torn {
            let seg = &self.active;
            seg.file
                .set_len(seg.len())
                .and_then(|_| seg.file.sync_data())
                .map_err(LogError::io("truncate", &seg.path))?;
            self.torn = false;
            if let Some(d) = self.direct.as_mut() {
                if d.reset_tail(&seg.file, seg.len()).is_err() {
                    self.direct = None;
                }
            }
        }
        Ok(())
    }

    /// A direct-write handle for the active segment, if configured and the
    /// file system takes it; any failure means buffered writes.
    fn open_direct(&self) -> Option<DirectFile> {
        if !self.config.direct_io {
            return None;
        }
        let seg = &self.active;
        DirectFile::open(&seg.path, &seg.file, seg.len())
            .ok()
            .flatten()
    }

    /// Cuts the zero padding direct writes leave past the active segment's
    /// valid end (before sealing it or closing), so its file holds exactly
    /// its records. Made durable by the next fsync of the segment; until
    /// then recovery reads the padding as the clean end anyway. Judged by
    /// the file's length, not by whether a direct handle is open now: one
    /// dropped mid-segment (an `EINVAL`, a failed tail reset) left padding
    /// too.
    fn trim_padding(&self) -> Result<(), LogError> {
        let seg = &self.active;
        let file_len = seg
            .file
            .metadata()
            .map_err(LogError::io("stat", &seg.path))?
            .len();
        if file_len > seg.len() {
            seg.file
                .set_len(seg.len())
                .map_err(LogError::io("truncate", &seg.path))?;
        }
        Ok(())
    }

    /// The base position of the segment being written.
    pub(crate) fn active_base(&self) -> u64 {
        self.active.base
    }

    /// Seals the active segment (flushed; fsynced by the next sync plan,
    /// `sync.rs`) and starts a new one at the next position; the new base
    /// is also persisted as the floor.
    pub(crate) fn roll(&mut self) -> Result<(), LogError> {
        self.flush()?;
        self.trim_padding()?;
        // The floor first: if it cannot be written (a full disk), no new
        // segment is left behind for the next try to trip over.
        meta::write(&self.shared.dir, self.next)?;
        let seg = Segment::create(&self.shared.dir, self.next)?;
        if self.synced < self.next {
            self.unsynced_sealed.push(self.active.clone());
        }
        let mut list = self.shared.snapshot().as_ref().clone();
        list.push(seg.clone());
        self.shared.set_segments(list);
        self.active = seg;
        self.direct = self.open_direct();
        Ok(())
    }

    /// Flushes, fsyncs and persists the position floor; the lock is released.
    /// With `index_checkpoint`, also writes `index.ckpt` (`checkpoint.rs`);
    /// failing to is not an error (the next open scans).
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush()?;
        self.trim_padding()?;
        self.sync()?;
        meta::write(&self.shared.dir, self.next)?;
        if self.config.index_checkpoint {
            self.write_checkpoint();
        }
        Ok(())
    }

    /// Writes the index checkpoint if every segment's file holds exactly its
    /// valid bytes (none damaged or cut short of its file); otherwise, or
    /// if writing fails, removes any old one.
    fn write_checkpoint(&self) {
        let dir = &self.shared.dir;
        let segments = self.shared.snapshot();
        let whole = segments
            .iter()
            .all(|s| s.file.metadata().is_ok_and(|m| m.len() == s.len()) && s.path.exists());
        let written = whole && {
            let list: Vec<&Segment> = segments.iter().map(|s| s.as_ref()).collect();
            let bytes = checkpoint::encode(&self.config, &list, &self.shared.index.read());
            checkpoint::write(dir, &bytes).is_ok()
        };
        if !written {
            checkpoint::remove(dir);
        }
    }

    /// Drops buffered batches without writing them and releases the lock, as
    /// a crash would: for tests of what survives one.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.pending.clear();
        self.pending_count = 0;
        self.pending_frames.clear();
    }
}

impl Drop for LogWriter {
    /// Best effort: writes what is buffered (no fsync). Call
    /// [`close`](LogWriter::close) to see errors and persist the floor.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs::File;

    use super::*;
    use crate::reader::ReadLimit;
    use crate::record::NewRecord;
    use crate::segment::Scanned;

    /// Makes every write fail as a failing disk would: the active segment
    /// is swapped for one whose file is open read-only. Returns the real
    /// one, to put back with `w.active = it`.
    pub(crate) fn break_writes(w: &mut LogWriter) -> Arc<Segment> {
        let seg = w.active.clone();
        let read_only = File::open(&seg.path).expect("open read-only");
        let scanned = Scanned {
            len: seg.len(),
            count: seg.count(),
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            sparse: Vec::new(),
        };
        let broken = Segment::new(seg.base, seg.path.clone(), read_only, scanned);
        // Writes go through the broken file (buffered) from now on.
        w.direct = None;
        std::mem::replace(&mut w.active, Arc::new(broken))
    }

    fn records(source: &str, n: usize) -> Vec<NewRecord<'_>> {
        vec![
            NewRecord {
                timestamp: 1,
                key: "apptail.x",
                source_id: source,
                envelope: b"payload",
            };
            n
        ]
    }

    #[test]
    fn a_batch_whose_flush_fails_is_not_taken_and_what_was_buffered_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LogConfig::new(dir.path());
        config.flush_threshold = 64;
        let (mut w, _) = open(config).unwrap();
        assert_eq!(w.append(&records("a", 1)).unwrap(), 0..1);
        let buffered = w.pending_bytes();
        let good = break_writes(&mut w);
        // Past the threshold: the buffered batch is written first, and fails.
        assert!(w.append(&records("b", 3)).is_err());
        assert_eq!(w.next_position(), 1);
        assert_eq!(
            w.pending_bytes(),
            buffered,
            "only the older batch is buffered"
        );
        assert_eq!(w.reader().count("b"), 0, "the refused batch left the index");
        w.active = good;
        assert_eq!(w.append(&records("c", 2)).unwrap(), 1..3);
        w.flush().unwrap();
        let read = w.reader().read_from(0, ReadLimit::records(10)).unwrap();
        let got: Vec<(u64, &str)> = read
            .records
            .iter()
            .map(|r| (r.position, r.source_id.as_str()))
            .collect();
        assert_eq!(got, [(0, "a"), (1, "c"), (2, "c")]);
    }

    #[test]
    fn a_discarded_batch_is_never_written_and_its_positions_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = open(LogConfig::new(dir.path())).unwrap();
        assert_eq!(w.append(&records("a", 3)).unwrap(), 0..3);
        w.flush().unwrap();
        let good = break_writes(&mut w);
        assert_eq!(w.append(&records("b", 2)).unwrap(), 3..5);
        assert!(w.flush().is_err());
        // As if the failed write had landed after all (a short write).
        let valid = good.len();
        good.file.write_all_at(&w.pending, valid).unwrap();
        w.active = good;
        assert_eq!(w.discard_pending().unwrap(), 2);
        assert_eq!(w.next_position(), 3);
        let sources: Vec<String> = w
            .reader()
            .sources()
            .into_iter()
            .map(|s| s.source_id)
            .collect();
        assert_eq!(sources, ["a"], "the discarded batch left the index");
        assert_eq!(w.pending_bytes(), 0);
        assert_eq!(w.active.file.metadata().unwrap().len(), valid, "cut");
        // A later flush or sync has nothing of it to write.
        w.sync().unwrap();
        assert_eq!(w.append(&records("c", 1)).unwrap(), 3..4);
        w.close().unwrap();
        let (w, report) = open(LogConfig::new(dir.path())).unwrap();
        assert!(report.is_clean(), "{report:?}");
        let read = w.reader().read_from(0, ReadLimit::records(10)).unwrap();
        let sources: Vec<&str> = read.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(sources, ["a", "a", "a", "c"]);
        assert_eq!(w.next_position(), 4);
    }

    #[test]
    fn a_roll_that_failed_can_be_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LogConfig::new(dir.path());
        config.segment_bytes = 200;
        let (mut w, _) = open(config.clone()).unwrap();
        w.append(&records("a", 2)).unwrap();
        w.flush().unwrap();
        // The floor cannot be written (as on a full disk): the roll fails.
        std::fs::create_dir(dir.path().join(meta::META_TMP)).unwrap();
        assert!(w.append(&records("b", 5)).is_err());
        std::fs::remove_dir(dir.path().join(meta::META_TMP)).unwrap();
        assert_eq!(w.append(&records("b", 5)).unwrap(), 2..7);
        w.close().unwrap();
        let (w, report) = open(config).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(w.next_position(), 7);
    }
}
