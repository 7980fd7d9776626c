//! Stopping before the disk is full (DESIGN.md §3): [`DiskLog`]'s `append`
//! asks [`FreeSpace::check`] first and fails with [`ApiError::DiskFull`],
//! writing nothing, when the free space of the log's file system (less the
//! batch) would drop below the configured minimum.
//!
//! `statvfs` is called at most every [`RECHECK`] or when the writer has
//! rolled to a new segment; in between, the bytes written since are taken
//! off the last figure. The figure lives in atomics so status can read it
//! without the writer's lock.
//!
//! [`DiskLog`]: super::DiskLog

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::LogError;

/// How long a measured free-space figure is trusted.
pub(crate) const RECHECK: Duration = Duration::from_millis(250);

/// Free bytes for unprivileged writers on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a writable
    // struct of the type statvfs fills.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion)] // the field types differ by target
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    Ok(free)
}

#[derive(Debug)]
pub(crate) struct FreeSpace {
    dir: PathBuf,
    /// 0: no check.
    min_free: u64,
    started: Instant,
    /// Free bytes at the last check, less what was written since.
    free: AtomicU64,
    /// When it was measured (ns since `started`); `u64::MAX`: never.
    checked_at: AtomicU64,
    /// The active segment's base when it was measured.
    segment: AtomicU64,
}

impl FreeSpace {
    pub(crate) fn new(dir: PathBuf, min_free: u64) -> Self {
        FreeSpace {
            dir,
            min_free,
            started: Instant::now(),
            free: AtomicU64::new(u64::MAX),
            checked_at: AtomicU64::new(u64::MAX),
            segment: AtomicU64::new(u64::MAX),
        }
    }

    /// Fails when writing `incoming` bytes would leave less than the
    /// minimum free; `segment` is the active segment's base (a new one
    /// forces a fresh measurement). Called under the writer's lock.
    pub(crate) fn check(&self, segment: u64, incoming: u64) -> Result<(), ApiError> {
        if self.min_free == 0 {
            return Ok(());
        }
        let now = self.started.elapsed().as_nanos() as u64;
        let checked = self.checked_at.load(Ordering::Relaxed);
        let stale = checked == u64::MAX || now.saturating_sub(checked) >= RECHECK.as_nanos() as u64;
        if stale || self.segment.load(Ordering::Relaxed) != segment {
            let free = free_bytes(&self.dir).map_err(LogError::io("statvfs", &self.dir))?;
            self.free.store(free, Ordering::Relaxed);
            self.checked_at.store(now, Ordering::Relaxed);
            self.segment.store(segment, Ordering::Relaxed);
        }
        let free = self.free.load(Ordering::Relaxed);
        if free.saturating_sub(incoming) < self.min_free {
            return Err(ApiError::DiskFull {
                free_bytes: free,
                min_free_bytes: self.min_free,
            });
        }
        Ok(())
    }

    /// Takes bytes just written off the free-space figure.
    pub(crate) fn wrote(&self, bytes: u64) {
        let _ = self
            .free
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some(f.saturating_sub(bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_refuses_below_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let off = FreeSpace::new(dir.path().into(), 0);
        assert!(off.check(0, u64::MAX).is_ok());
        let space = FreeSpace::new(dir.path().into(), 1);
        space.check(0, 0).unwrap();
        // What was written since the last measurement counts.
        space.wrote(u64::MAX);
        assert!(matches!(
            space.check(0, 0),
            Err(ApiError::DiskFull { free_bytes: 0, .. })
        ));
        // A new segment measures again.
        space.check(1, 0).unwrap();
        let huge = FreeSpace::new(dir.path().into(), u64::MAX);
        assert!(matches!(
            huge.check(0, 0),
            Err(ApiError::DiskFull {
                min_free_bytes: u64::MAX,
                ..
            })
        ));
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
