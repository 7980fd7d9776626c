//! Durable consumer cursors for [`DiskLog`](super::DiskLog): one small file
//! per consumer in a `cursors` directory, replaced atomically (temp file,
//! rename), so a crash of the process leaves the old cursor or the new one,
//! never a torn one. A commit does not fsync: a drain commits after every
//! batch its receiver accepted, and an fsync per commit (6–13 ms here)
//! would cap a drain's catch-up at a fifth of its speed. Instead the files
//! committed since the last [`CursorFiles::sync`] are fsynced, with the
//! directory, by the log's fsync timer, so a crash of the machine loses at
//! most that interval of commits (the drain then sends that much again:
//! at-least-once). Should a machine crash still leave a cursor file empty
//! or torn (a file system without ext4's replace-on-rename flush), `read`
//! reports it as [`ApiError::CorruptCursor`] and the drain replays what
//! the log holds rather than skip anything.
//!
//! A file is named `<hex of the consumer name>.cursor` (any name is safe on
//! disk) and holds the cursor's printed form and a newline. Temp files get
//! a unique name per write (concurrent commits never share one) and are
//! removed on open.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::cursor::Cursor;
use super::error::ApiError;

/// Longest consumer name, in bytes (its hex form must fit a file name).
pub const MAX_CONSUMER_NAME: usize = 120;
const SUFFIX: &str = ".cursor";

/// The consumer a cursor file is named for, if the name is one this
/// module writes (`<hex>.cursor`, a valid UTF-8 name).
pub(crate) fn consumer_of(file_name: &str) -> Option<String> {
    let hex = file_name.strip_suffix(SUFFIX)?;
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let name = String::from_utf8(bytes?).ok()?;
    check_name(&name).ok()?;
    Some(name)
}

/// Whether a file in the cursor directory is a temp file a crash left
/// (removed on open).
pub(crate) fn is_temp(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tmp")
}

/// A cursor file's content: the cursor, or (for a damaged file) what it
/// holds, shortened.
pub(crate) fn parse_file(bytes: &[u8]) -> Result<Cursor, String> {
    let text = String::from_utf8_lossy(bytes);
    match text.strip_suffix('\n').map(str::parse::<Cursor>) {
        Some(Ok(c)) => Ok(c),
        _ => Err(text.chars().take(64).collect()),
    }
}

#[derive(Debug)]
pub(crate) struct CursorFiles {
    dir: PathBuf,
    /// Makes temp names unique, so concurrent commits never share one.
    tmp_seq: AtomicU64,
    /// Cursor files replaced since the last [`CursorFiles::sync`].
    unsynced: Mutex<HashSet<PathBuf>>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ApiError + 'a {
    move |source| ApiError::Cursor {
        op,
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::ConsumerName("empty"));
    }
    if name.len() > MAX_CONSUMER_NAME {
        return Err(ApiError::ConsumerName("longer than 120 bytes"));
    }
    Ok(())
}

impl CursorFiles {
    pub(crate) fn open(dir: PathBuf) -> Result<Self, ApiError> {
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        // Temp files are leftovers of writes a crash interrupted.
        for entry in fs::read_dir(&dir).map_err(io("read directory", &dir))? {
            let path = entry.map_err(io("read directory", &dir))?.path();
            if is_temp(&path) {
                fs::remove_file(&path).map_err(io("remove", &path))?;
            }
        }
        Ok(CursorFiles {
            dir,
            tmp_seq: AtomicU64::new(0),
            unsynced: Mutex::new(HashSet::new()),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        let mut file = String::with_capacity(name.len() * 2 + SUFFIX.len());
        for b in name.bytes() {
            file.push_str(&format!("{b:02x}"));
        }
        file.push_str(SUFFIX);
        self.dir.join(file)
    }

    pub(crate) fn write(&self, name: &str, cursor: Cursor) -> Result<(), ApiError> {
        check_name(name)?;
        let path = self.path(name);
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("{seq}.tmp"));
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(format!("{cursor}\n").as_bytes())
            .map_err(io("write", &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        self.unsynced.lock().insert(path);
        Ok(())
    }

    /// Makes every commit so far durable against a machine crash: fsyncs
    /// the cursor files replaced since the last call, then the directory.
    /// A file that failed stays due for the next call.
    pub(crate) fn sync(&self) -> Result<(), ApiError> {
        let due: Vec<PathBuf> = self.unsynced.lock().drain().collect();
        if due.is_empty() {
            return Ok(());
        }
        let mut failed = Vec::new();
        let mut first_error = None;
        for path in due {
            match File::open(&path).and_then(|f| f.sync_all()) {
                Ok(()) => {}
                // Forgotten (or replaced and synced) meanwhile.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert_with(|| io("fsync", &path)(e));
                    failed.push(path);
                }
            }
        }
        self.unsynced.lock().extend(failed);
        if let Some(e) = first_error {
            return Err(e);
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", &self.dir))
    }

    /// Removes a consumer's cursor; true when there was one.
    pub(crate) fn remove(&self, name: &str) -> Result<bool, ApiError> {
        check_name(name)?;
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("remove", &path)(e)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", &self.dir))?;
        Ok(true)
    }

    pub(crate) fn read(&self, name: &str) -> Result<Option<Cursor>, ApiError> {
        check_name(name)?;
        let path = self.path(name);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        match parse_file(&text) {
            Ok(c) => Ok(Some(c)),
            Err(found) => Err(ApiError::CorruptCursor { path, found }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let files = CursorFiles::open(dir.path().join("cursors")).unwrap();
        assert!(files.read("drain/a b").unwrap().is_none());
        files.write("drain/a b", Cursor::at(5)).unwrap();
        files.write("drain/a b", Cursor::at(9)).unwrap();
        assert_eq!(files.read("drain/a b").unwrap(), Some(Cursor::at(9)));
        fs::write(files.path("x"), b"v1.zz\n").unwrap();
        assert!(matches!(
            files.read("x"),
            Err(ApiError::CorruptCursor { .. })
        ));
        assert!(files.remove("drain/a b").unwrap());
        assert!(!files.remove("drain/a b").unwrap());
        assert!(files.read("drain/a b").unwrap().is_none());
        fs::write(files.dir.join("61.3.tmp"), b"torn").unwrap();
        let reopened = CursorFiles::open(files.dir.clone()).unwrap();
        assert!(!reopened.dir.join("61.3.tmp").exists());
        assert!(files.write("", Cursor::START).is_err());
        assert!(files.write(&"n".repeat(121), Cursor::START).is_err());
        let name = files
            .path("drain/é")
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(consumer_of(&name).as_deref(), Some("drain/é"));
        for bad in ["6.cursor", "zz.cursor", ".cursor", "61.tmp", "ff.cursor"] {
            assert_eq!(consumer_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn commits_are_synced_later_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = CursorFiles::open(dir.path().join("cursors")).unwrap();
        files.write("a", Cursor::at(1)).unwrap();
        files.write("a", Cursor::at(2)).unwrap();
        files.write("b", Cursor::at(3)).unwrap();
        assert_eq!(files.unsynced.lock().len(), 2, "one fsync per file due");
        files.sync().unwrap();
        assert!(files.unsynced.lock().is_empty());
        // A cursor forgotten before the sync is no error.
        files.write("c", Cursor::at(4)).unwrap();
        assert!(files.remove("c").unwrap());
        files.sync().unwrap();
        assert_eq!(files.read("a").unwrap(), Some(Cursor::at(2)));
    }
}
