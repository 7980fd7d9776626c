//! Small file-system steps that durability (and reading speed) depend on.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::LogError;

/// Makes the directory's entries (creations, renames, unlinks) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("fsync directory", dir))
}

/// Asks the kernel to start reading `len` bytes at `offset` into the page
/// cache in the background (`POSIX_FADV_WILLNEED`); best effort. Segments
/// are written past the page cache (`direct.rs`), so a reader that scans
/// a backlog meets cold pages, and the kernel's own readahead (128 KiB on
/// a virtio disk) left a catching-up drain waiting on the disk.
pub(crate) fn read_ahead(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: an advisory call on a descriptor `file` keeps open; no
    // memory is shared with the kernel.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
}
