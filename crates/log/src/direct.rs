//! Writes to the active segment that bypass the page cache (`O_DIRECT`).
//!
//! Why: the log writes every message once and reads the recent ones from
//! its own cache (`api/cache.rs`), so copying each write into the page
//! cache buys little and costs much. The copy itself, a page allocation per
//! 4 KiB, and the writeback that the fsync timer then forces were most of
//! what the disk log cost over the memory log (`perf` under loggen, 2
//! vCPUs: `copy_folio_from_iter_atomic` alone was 9–12 % of the server's
//! CPU). On a VM whose freed memory goes back to the host (virtio-balloon
//! free page reporting, as on the machine the benchmarks run on), every
//! fresh page-cache page also costs a host page fault: buffered writes of
//! 2 GB took 2.6–2.9 CPU-seconds of system time there, direct writes 0.1.
//! And a log router should not push an application host's own files out of
//! its page cache with gigabytes of logs nobody reads twice. Readers still
//! use ordinary buffered reads (`pread` on the segment's other handle):
//! Linux drops cached pages a direct write overlaps, so they never see
//! stale bytes.
//!
//! How: direct I/O needs the buffer, the file offset and the length aligned
//! to the device's logical block (512 B or 4 KiB; [`BLOCK`] covers both).
//! Records are not aligned, so each write starts at the block holding the
//! segment's valid end, carries that block's valid bytes again (kept here
//! as `tail`, identical to what is on disk, so a torn rewrite can only
//! leave them as they were), then the new bytes, then zeros up to the next
//! block boundary. The file therefore ends in up to `BLOCK - 1` bytes of
//! zero padding past its valid length: recovery reads that as the clean
//! end (`recover.rs`), and the writer trims it when it seals a segment or
//! closes, so sealed segments hold exactly their records.
//!
//! Falls back to buffered writes when the file system refuses `O_DIRECT`
//! (tmpfs before Linux 6.6, some FUSE and network file systems) at open or
//! at the first write (`EINVAL`), or when `[log] direct_io` is off.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct writes: offsets, lengths and the buffer's address.
pub(crate) const BLOCK: usize = 4096;

/// The active segment's direct-write handle.
#[derive(Debug)]
pub(crate) struct DirectFile {
    file: File,
    /// The valid bytes of the block holding the segment's valid end (from
    /// that block's start): rewritten in front of the next write.
    tail: Vec<u8>,
    /// Staging for one write: `BLOCK - 1` bytes of slack so an aligned
    /// slice always fits (safe code: `align_offset`, no custom allocator).
    staging: Vec<u8>,
}

/// The start of the block holding byte `offset`.
pub(crate) fn block_start(offset: u64) -> u64 {
    offset & !(BLOCK as u64 - 1)
}

impl DirectFile {
    /// Opens `path` for direct writes after its first `valid_len` bytes,
    /// reading the partial last block through `buffered`. `Ok(None)` when
    /// the file system does not do direct I/O.
    pub(crate) fn open(path: &Path, buffered: &File, valid_len: u64) -> io::Result<Option<Self>> {
        let file = match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut direct = DirectFile {
            file,
            tail: Vec::new(),
            staging: Vec::new(),
        };
        direct.reset_tail(buffered, valid_len)?;
        Ok(Some(direct))
    }

    /// Writes `data` at `offset`, which must be the segment's valid end
    /// (where `tail` ends). On success the file holds `data` there, then
    /// zeros to the next block boundary. On error nothing here changes
    /// and the bytes before `offset` are as they were; `EINVAL` means the
    /// device wants a stricter alignment (the caller writes buffered).
    pub(crate) fn write_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        let start = block_start(offset);
        if start + self.tail.len() as u64 != offset {
            return Err(io::Error::other(format!(
                "direct write at {offset} does not follow the {} tail bytes kept from {start}",
                self.tail.len()
            )));
        }
        let valid = self.tail.len() + data.len();
        let padded = valid.div_ceil(BLOCK) * BLOCK;
        let needed = padded + BLOCK - 1;
        if self.staging.len() < needed {
            self.staging.resize(needed, 0);
        }
        let skew = self.staging.as_ptr().align_offset(BLOCK);
        if skew >= BLOCK {
            return Err(io::Error::other("cannot align the direct-write buffer"));
        }
        let buf = &mut self.staging[skew..skew + padded];
        buf[..self.tail.len()].copy_from_slice(&self.tail);
        buf[self.tail.len()..valid].copy_from_slice(data);
        buf[valid..].fill(0);
        self.file.write_all_at(buf, start)?;
        let new_tail = &buf[valid / BLOCK * BLOCK..valid];
        self.tail.clear();
        self.tail.extend_from_slice(new_tail);
        // A one-off large batch should not pin its staging for good.
        if self.staging.len() > 8 << 20 {
            self.staging = Vec::new();
        }
        Ok(())
    }

    /// Reads the kept tail from the file (at open, and after the file was
    /// cut back to `valid_len` following a failed write).
    pub(crate) fn reset_tail(&mut self, buffered: &File, valid_len: u64) -> io::Result<()> {
        let start = block_start(valid_len);
        self.tail.resize((valid_len - start) as usize, 0);
        buffered.read_exact_at(&mut self.tail, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file holding `header`, and a direct handle after it. `None` (the
    /// test passes without running) only outside CI, on a file system
    /// without O_DIRECT (a tmpfs `TMPDIR`); in CI it fails.
    fn file_with_direct(dir: &Path, header: &[u8]) -> (File, Option<DirectFile>) {
        let path = dir.join("seg");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all_at(header, 0).unwrap();
        let d = DirectFile::open(&path, &f, header.len() as u64).expect("open");
        assert!(
            d.is_some() || std::env::var_os("CI").is_none(),
            "the test directory's file system refuses O_DIRECT"
        );
        (f, d)
    }

    #[test]
    fn writes_follow_each_other_with_padding_and_keep_earlier_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (f, Some(mut d)) = file_with_direct(dir.path(), b"HEADER") else {
            return;
        };
        let mut expect = b"HEADER".to_vec();
        let mut at = 6u64;
        for (i, n) in [10usize, 5000, 4090, 1, 12288, 7].into_iter().enumerate() {
            let data: Vec<u8> = (0..n).map(|k| (k * 7 + i) as u8).collect();
            d.write_at(&data, at).unwrap();
            expect.extend_from_slice(&data);
            at += n as u64;
            let file_len = f.metadata().unwrap().len();
            assert_eq!(file_len % BLOCK as u64, 0);
            assert!(file_len >= at && file_len - at < BLOCK as u64);
            let mut back = vec![0u8; file_len as usize];
            f.read_exact_at(&mut back, 0).unwrap();
            assert_eq!(&back[..expect.len()], &expect[..]);
            assert!(back[expect.len()..].iter().all(|&b| b == 0));
        }
        assert!(d.write_at(b"x", at + 1).is_err(), "must follow the tail");
    }

    #[test]
    fn reset_tail_after_a_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (f, Some(mut d)) = file_with_direct(dir.path(), b"") else {
            return;
        };
        d.write_at(&[1u8; 5000], 0).unwrap();
        f.set_len(4500).unwrap();
        d.reset_tail(&f, 4500).unwrap();
        d.write_at(&[2u8; 10], 4500).unwrap();
        let mut back = vec![0u8; 4510];
        f.read_exact_at(&mut back, 0).unwrap();
        assert!(back[..4500].iter().all(|&b| b == 1));
        assert!(back[4500..].iter().all(|&b| b == 2));
    }
}
