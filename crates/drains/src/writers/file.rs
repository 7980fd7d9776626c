//! `file:///path` drains (Logyard's): append one line per entry, the
//! drain's format rendering (verbatim by default) and LF, with one
//! `write_all` per batch on a file opened for appending.
//!
//! - The directory must exist: a missing one is [`WriteError::Fatal`].
//! - `?overwrite=1` truncates the file when the drain's writer opens it the
//!   first time in this process (not again on reconnects after errors; see
//!   [`forget_overwrite`]).
//! - Log rotation: before each batch the path is checked; if the file was
//!   moved away or deleted (its device/inode differ or it is gone) it is
//!   reopened, created if needed. The server bumps [`REOPEN`] on SIGHUP,
//!   and every file drain reopens before its next batch.
//!
//! File I/O runs on tokio's blocking pool, so a slow disk never stalls the
//! runtime.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use envelope::Entry;
use parking_lot::Mutex;

use super::encode::LineEncoder;
use super::{DrainWriter, SendFuture, WriteError, WriterContext};
use crate::format::Format;

/// Reopen generation: bump it (on SIGHUP) and every file drain reopens its
/// file before its next batch.
pub static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Asks every file drain to reopen its file before its next batch.
pub fn reopen_all() {
    REOPEN.fetch_add(1, Ordering::Relaxed);
}

/// `(drain name, path)` of overwrite drains whose file was truncated in
/// this process.
static TRUNCATED: Mutex<Option<HashSet<(String, PathBuf)>>> = Mutex::new(None);

/// Forgets that drain `name` truncated its file, so an `?overwrite=1`
/// drain truncates again when next started (call when a drain is removed
/// or replaced).
pub fn forget_overwrite(name: &str) {
    if let Some(set) = TRUNCATED.lock().as_mut() {
        set.retain(|(n, _)| n != name);
    }
}

/// Whether this is the first open of an overwrite drain's file (and notes it).
fn first_overwrite(name: &str, path: &Path) -> bool {
    TRUNCATED
        .lock()
        .get_or_insert_with(HashSet::new)
        .insert((name.to_owned(), path.to_owned()))
}

/// The open file and what it was when opened.
struct Open {
    path: PathBuf,
    file: Option<File>,
    /// `(dev, ino)` of the open file.
    id: (u64, u64),
    generation: u64,
}

struct FileWriter {
    open: Option<Open>,
    lines: LineEncoder,
    buf: Vec<u8>,
}

pub(super) async fn connect(ctx: &WriterContext) -> Result<Box<dyn DrainWriter>, WriteError> {
    let path = PathBuf::from(&ctx.url.path);
    let truncate = ctx.url.overwrite && first_overwrite(&ctx.name, &path);
    let opened = blocking(move || {
        let mut open = Open {
            path,
            file: None,
            id: (0, 0),
            generation: REOPEN.load(Ordering::Relaxed),
        };
        let result = open.reopen(truncate);
        (open, result)
    })
    .await;
    let open = match opened {
        Ok((open, Ok(()))) => open,
        Ok((_, Err(e))) | Err(e) => {
            if truncate {
                forget_overwrite(&ctx.name);
            }
            return Err(e);
        }
    };
    Ok(Box::new(FileWriter {
        open: Some(open),
        lines: LineEncoder::new(ctx.format.clone(), Format::Verbatim),
        buf: Vec::new(),
    }))
}

impl Open {
    /// Opens (creating) the file for appending; truncates it if asked.
    fn reopen(&mut self, truncate: bool) -> Result<(), WriteError> {
        self.file = None;
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| open_error(&self.path, e))?;
        if truncate {
            file.set_len(0)
                .map_err(|e| WriteError::Fatal(format!("truncate {}: {e}", self.path.display())))?;
        }
        let meta = file
            .metadata()
            .map_err(|e| WriteError::Retry(format!("stat {}: {e}", self.path.display())))?;
        if !meta.is_file() {
            return Err(WriteError::Fatal(format!(
                "{} is not a regular file",
                self.path.display()
            )));
        }
        self.id = (meta.dev(), meta.ino());
        self.file = Some(file);
        Ok(())
    }

    /// Whether the open file is still the one at the path, and no reopen
    /// was asked for.
    fn current(&self) -> bool {
        self.file.is_some()
            && self.generation == REOPEN.load(Ordering::Relaxed)
            && std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        if !self.current() {
            self.generation = REOPEN.load(Ordering::Relaxed);
            self.reopen(false)?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(WriteError::Retry(format!(
                "{} is not open",
                self.path.display()
            )));
        };
        file.write_all(buf).map_err(|e| {
            // Reopen before the next try: the file may be in a bad state.
            self.file = None;
            WriteError::Retry(format!("write {}: {e}", self.path.display()))
        })
    }
}

fn open_error(path: &Path, e: std::io::Error) -> WriteError {
    let dir = path.parent().unwrap_or(Path::new("/"));
    match e.kind() {
        ErrorKind::NotFound => WriteError::Fatal(format!(
            "open {}: directory {} does not exist",
            path.display(),
            dir.display()
        )),
        ErrorKind::PermissionDenied => WriteError::Fatal(format!("open {}: {e}", path.display())),
        _ if path.is_dir() => {
            WriteError::Fatal(format!("open {}: it is a directory", path.display()))
        }
        _ => WriteError::Retry(format!("open {}: {e}", path.display())),
    }
}

/// Runs file I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WriteError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WriteError::Retry(format!("file I/O task failed: {e}")))
}

impl FileWriter {
    async fn send_batch(&mut self, batch: &[Arc<Entry>]) -> Result<(), WriteError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for entry in batch {
            self.lines.line(entry, &mut buf);
        }
        let Some(mut open) = self.open.take() else {
            return Err(WriteError::Retry(
                "the file writer failed earlier; reconnect".into(),
            ));
        };
        let (open, buf, result) = blocking(move || {
            let result = if buf.is_empty() {
                Ok(())
            } else {
                open.write(&buf)
            };
            (open, buf, result)
        })
        .await?;
        self.open = Some(open);
        self.buf = buf;
        result
    }
}

impl DrainWriter for FileWriter {
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(self.send_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{batch, ctx, err_text, TempDir};
    use super::super::{connect, WriteError};
    use super::reopen_all;

    fn read(path: &std::path::Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[tokio::test]
    async fn appends_lines() {
        let dir = TempDir::new("file-append");
        let path = dir.file("app.log", "before\n");
        let mut writer = connect(&ctx(&format!("file://{}", path.display())))
            .await
            .unwrap();
        writer.send(&batch(&["one", "two"])).await.unwrap();
        writer.send(&batch(&["three"])).await.unwrap();
        assert_eq!(read(&path), "before\none\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn overwrite_truncates_on_first_open_only() {
        let dir = TempDir::new("file-overwrite");
        let path = dir.file("app.log", "old contents\n");
        let ctx = ctx(&format!("file://{}?overwrite=1", path.display()));
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["fresh"])).await.unwrap();
        assert_eq!(read(&path), "fresh\n");
        // A reconnect (after an error) keeps what was written.
        drop(writer);
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["again"])).await.unwrap();
        assert_eq!(read(&path), "fresh\nagain\n");
        // A drain started anew truncates again.
        super::forget_overwrite(&ctx.name);
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["restarted"])).await.unwrap();
        assert_eq!(read(&path), "restarted\n");
    }

    #[tokio::test]
    async fn reopens_after_rotation_and_on_request() {
        let dir = TempDir::new("file-rotate");
        let path = dir.0.join("app.log");
        let mut writer = connect(&ctx(&format!("file://{}", path.display())))
            .await
            .unwrap();
        writer.send(&batch(&["before rotation"])).await.unwrap();
        let rotated = dir.0.join("app.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        writer.send(&batch(&["after rotation"])).await.unwrap();
        assert_eq!(read(&rotated), "before rotation\n");
        assert_eq!(read(&path), "after rotation\n");

        std::fs::remove_file(&path).unwrap();
        writer.send(&batch(&["after delete"])).await.unwrap();
        assert_eq!(read(&path), "after delete\n");

        // SIGHUP: the writer reopens the same path and goes on appending.
        let generation = super::REOPEN.load(std::sync::atomic::Ordering::Relaxed);
        reopen_all();
        assert!(super::REOPEN.load(std::sync::atomic::Ordering::Relaxed) > generation);
        writer.send(&batch(&["after hup"])).await.unwrap();
        assert_eq!(read(&path), "after delete\nafter hup\n");
    }

    #[tokio::test]
    async fn a_missing_directory_is_fatal() {
        let dir = TempDir::new("file-missing");
        let path = dir.0.join("nope").join("app.log");
        let err = err_text(connect(&ctx(&format!("file://{}", path.display()))).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        assert!(
            err.to_string().contains("does not exist") && err.to_string().contains("nope"),
            "{err}"
        );
    }
}
