//! Sequential frame reading from a region of a segment file.
//!
//! Used by recovery (to scan and verify) and by readers. Reads with `pread`
//! in chunks into one reusable buffer; the buffer grows past the chunk size
//! only to hold one whole frame, and only after the frame's length passed
//! the record limit, so a damaged length never makes it allocate more than
//! `max_record` bytes. From its second read on (a scan, not a lookup) it
//! asks the kernel to read [`READ_AHEAD`] more in the background
//! (`fsio::read_ahead`), so a long scan of cold pages does not wait on the
//! disk at every chunk.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::format::{decode_frame, frame_extent, DecodeError, RecordRef};
use crate::fsio::read_ahead;

/// How far past a read the cursor asks the kernel to read ahead; renewed
/// when a read comes within half of it.
pub(crate) const READ_AHEAD: u64 = 4 << 20;

pub(crate) enum Step<'a> {
    /// A verified record and the file offset of its frame.
    Record {
        offset: u64,
        len: usize,
        record: RecordRef<'a>,
    },
    /// The region ended exactly at a frame boundary.
    End,
    /// The bytes at `offset` are not a valid frame; `len` is the length
    /// its prefix claims when that was plausible (so a caller may step
    /// over it), `None` when even the length is unusable.
    Bad {
        offset: u64,
        len: Option<usize>,
        error: DecodeError,
    },
}

pub(crate) struct FrameCursor<'f> {
    file: &'f File,
    /// File offset of `buf[start]`.
    offset: u64,
    /// Exclusive end of the region.
    end: u64,
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    chunk: usize,
    max_record: usize,
    /// Read ahead is requested up to here (`None` before the first read).
    advised: Option<u64>,
}

impl<'f> FrameCursor<'f> {
    pub(crate) fn new(
        file: &'f File,
        offset: u64,
        end: u64,
        chunk: usize,
        max_record: usize,
    ) -> Self {
        FrameCursor {
            file,
            offset,
            end,
            buf: Vec::new(),
            start: 0,
            filled: 0,
            chunk,
            max_record,
            advised: None,
        }
    }

    /// File offset of the next frame.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Steps over `len` bytes (a frame the caller judged skippable).
    /// Returns false when that would pass the end of the region.
    pub(crate) fn skip(&mut self, len: usize) -> bool {
        if self.offset.saturating_add(len as u64) > self.end {
            return false;
        }
        let buffered = self.filled - self.start;
        if len <= buffered {
            self.start += len;
        } else {
            self.start = 0;
            self.filled = 0;
        }
        self.offset += len as u64;
        true
    }

    pub(crate) fn next(&mut self) -> io::Result<Step<'_>> {
        let total = loop {
            let avail = &self.buf[self.start..self.filled];
            let unread = self.end - self.offset - avail.len() as u64;
            let needed = match frame_extent(avail, self.max_record) {
                Ok(total) if total <= avail.len() => break total,
                Ok(total) => total,
                Err(DecodeError::Incomplete { needed, .. }) => needed,
                Err(error) => {
                    return Ok(Step::Bad {
                        offset: self.offset,
                        len: None,
                        error,
                    })
                }
            };
            if unread == 0 {
                if avail.is_empty() {
                    return Ok(Step::End);
                }
                return Ok(Step::Bad {
                    offset: self.offset,
                    len: None,
                    error: DecodeError::Incomplete {
                        needed,
                        available: avail.len(),
                    },
                });
            }
            self.fill(needed, unread)?;
        };
        let offset = self.offset;
        let frame = &self.buf[self.start..self.start + total];
        match decode_frame(frame, self.max_record) {
            Ok((record, _)) => {
                self.start += total;
                self.offset += total as u64;
                Ok(Step::Record {
                    offset,
                    len: total,
                    record,
                })
            }
            Err(error) => Ok(Step::Bad {
                offset,
                len: Some(total),
                error,
            }),
        }
    }

    /// Reads more of the file so that at least `needed` bytes (or all that
    /// is left of the region) are buffered.
    fn fill(&mut self, needed: usize, unread: u64) -> io::Result<()> {
        let have = self.filled - self.start;
        self.buf.copy_within(self.start..self.filled, 0);
        self.start = 0;
        self.filled = have;
        let want = needed.max(self.chunk).saturating_sub(have);
        let n = (want as u64).min(unread) as usize;
        if self.buf.len() < have + n {
            self.buf.resize(have + n, 0);
        }
        let at = self.offset + have as u64;
        let read_end = at + n as u64;
        match self.advised {
            None => self.advised = Some(read_end),
            Some(advised) if self.end > read_end && read_end + READ_AHEAD / 2 > advised => {
                let from = advised.max(read_end);
                let to = (read_end + READ_AHEAD).min(self.end);
                read_ahead(self.file, from, to - from);
                self.advised = Some(to);
            }
            Some(_) => {}
        }
        self.file.read_exact_at(&mut self.buf[have..have + n], at)?;
        self.filled = have + n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_frame;
    use std::io::Write;

    fn file_with(frames: usize, tail: &[u8]) -> (tempfile::NamedTempFile, u64) {
        let mut buf = Vec::new();
        for i in 0..frames {
            encode_frame(&mut buf, i as u64, 0, "k", "s", 1 << 20, |b| {
                b.extend_from_slice(&vec![b'x'; i * 7])
            })
            .unwrap();
        }
        buf.extend_from_slice(tail);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&buf).unwrap();
        (f, buf.len() as u64)
    }

    #[test]
    fn reads_every_frame_across_small_chunks() {
        let (f, len) = file_with(50, &[]);
        for chunk in [1, 7, 64, 4096] {
            let mut c = FrameCursor::new(f.as_file(), 0, len, chunk, 1 << 20);
            let mut n = 0;
            loop {
                match c.next().unwrap() {
                    Step::Record { record, .. } => {
                        assert_eq!(record.position, n);
                        n += 1;
                    }
                    Step::End => break,
                    Step::Bad { error, .. } => panic!("{error}"),
                }
            }
            assert_eq!(n, 50);
        }
    }

    /// A lookup (one read) asks for no read-ahead; a scan asks for it from
    /// its second read on, ahead of what it read and within the region.
    #[test]
    fn read_ahead_is_asked_for_by_scans_only() {
        let (f, len) = file_with(50, &[]);
        let mut lookup = FrameCursor::new(f.as_file(), 0, len, 64, 1 << 20);
        assert!(matches!(lookup.next().unwrap(), Step::Record { .. }));
        assert_eq!(
            lookup.advised,
            Some(64),
            "one read, nothing advised past it"
        );

        let mut scan = FrameCursor::new(f.as_file(), 0, len, 64, 1 << 20);
        for _ in 0..3 {
            assert!(matches!(scan.next().unwrap(), Step::Record { .. }));
        }
        assert_eq!(
            scan.advised,
            Some(len),
            "asked ahead up to the region's end"
        );
    }

    #[test]
    fn torn_tail_is_bad_incomplete() {
        let (f, len) = file_with(3, &[40, 0, 0, 0, 1]);
        let mut c = FrameCursor::new(f.as_file(), 0, len, 16, 1 << 20);
        for _ in 0..3 {
            assert!(matches!(c.next().unwrap(), Step::Record { .. }));
        }
        assert!(matches!(
            c.next().unwrap(),
            Step::Bad {
                error: DecodeError::Incomplete { .. },
                ..
            }
        ));
    }

    #[test]
    fn huge_length_does_not_allocate() {
        let (f, len) = file_with(0, &[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        let mut c = FrameCursor::new(f.as_file(), 0, len, 16, 1024);
        assert!(matches!(
            c.next().unwrap(),
            Step::Bad {
                error: DecodeError::TooLarge { .. },
                len: None,
                ..
            }
        ));
        assert!(c.buf.len() <= 16);
    }
}
