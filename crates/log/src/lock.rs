//! One writer per directory: an exclusive `flock` on `<dir>/lock`, held for
//! the writer's life and released by the kernel when the process dies (so a
//! kill -9 never leaves a stale lock behind).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::LogError;

pub(crate) const LOCK_FILE: &str = "lock";

#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, LogError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(LogError::io("open", &path))?;
        // SAFETY: flock on a descriptor this function owns; no memory is
        // shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Err(LogError::Locked {
                    path: dir.to_owned(),
                });
            }
            return Err(LogError::io("lock", &path)(err));
        }
        Ok(DirLock { _file: file })
    }
}
