//! `file:///path` drains (Logyard's): append one line per entry, the
//! drain's format rendering (verbatim by default) and LF, with one
//! `write_all` per batch on a file opened for appending. CR, LF and NUL
//! inside a record are escaped (`\r`, `\n`, `\0`), so one message is one
//! line (see [`super::encode`]).
//!
//! - Only inside `[drains] file_dirs` (`--allow-file-dirs`), checked on
//!   every open and reopen by [`PathPolicy::prepare_file`]: no `..` escape, no
//!   symlinked directory leading outside; missing directories inside are
//!   created. The file is opened with `O_NOFOLLOW`, so a symlink put in its
//!   place is refused rather than followed. A path outside is
//!   [`WriteError::Fatal`].
//! - `?overwrite=1` truncates the file when the drain's writer opens it the
//!   first time in this process (not again on reconnects after errors; see
//!   [`forget_overwrite`]), and only a file the drain made: adding an
//!   overwrite drain whose file exists is refused, and a file whose birth
//!   time is before the drain was created (or whose birth time the file
//!   system does not keep) is appended to, never truncated.
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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use envelope::Entry;
use parking_lot::Mutex;

use super::encode::LineEncoder;
use super::{DrainWriter, SendFuture, WriteError, WriterContext};
use crate::format::Format;
use crate::paths::{PathError, PathPolicy};
use crate::spec::FileTarget;

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
    /// The path as the drain's URL names it.
    path: String,
    /// What it resolved to when last opened (checked by the path policy).
    target: PathBuf,
    paths: Arc<PathPolicy>,
    /// When the drain was created (unix ns).
    created: i64,
    file: Option<File>,
    /// `(dev, ino)` of the open file.
    id: (u64, u64),
    generation: u64,
}

struct FileWriter {
    open: Option<Open>,
    lines: LineEncoder,
    buf: Vec<u8>,
    max_bytes: usize,
}

pub(super) async fn connect(
    ctx: &WriterContext,
    target: &FileTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let path = target.path.clone();
    let truncate = target.overwrite && first_overwrite(&ctx.name, Path::new(&path));
    let mut open = Open {
        path,
        target: PathBuf::new(),
        paths: Arc::clone(&ctx.paths),
        created: ctx.created,
        file: None,
        id: (0, 0),
        generation: REOPEN.load(Ordering::Relaxed),
    };
    let opened = blocking(move || {
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
        lines: LineEncoder::new(ctx, Format::Verbatim, true),
        buf: Vec::new(),
        max_bytes: ctx.max_bytes(),
    }))
}

fn path_error(e: PathError) -> WriteError {
    if e.is_permanent() {
        WriteError::Fatal(e.to_string())
    } else {
        WriteError::Retry(e.to_string())
    }
}

/// Opening never follows a symlink in the last component.
fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.append(true).custom_flags(libc::O_NOFOLLOW);
    o
}

/// File timestamps come from a coarse clock (a jiffy), and some file
/// systems keep whole seconds: a file born this much before the drain was
/// created still counts as born after it. (A file that existed when the
/// drain was added made the add fail, so this only covers the clock.)
const BIRTH_SLACK_NS: i64 = 1_000_000_000;

/// Unix ns of a file's birth, when the file system keeps it.
fn born_ns(meta: &std::fs::Metadata) -> Option<i64> {
    let born = meta.created().ok()?;
    let since = born.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_nanos()).ok()
}

impl Open {
    /// Checks the path, opens (creating) the file for appending; with
    /// `truncate`, empties a file this drain made.
    fn reopen(&mut self, truncate: bool) -> Result<(), WriteError> {
        self.file = None;
        self.target = self.paths.prepare_file(&self.path).map_err(path_error)?;
        let target = &self.target;
        let (file, created_now) = match options().create_new(true).open(target) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => (
                options().open(target).map_err(|e| open_error(target, e))?,
                false,
            ),
            Err(e) => return Err(open_error(target, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| WriteError::Retry(format!("stat {}: {e}", target.display())))?;
        if !meta.is_file() {
            return Err(WriteError::Fatal(format!(
                "{} is not a regular file",
                target.display()
            )));
        }
        if truncate && !created_now {
            if born_ns(&meta).is_some_and(|born| born >= self.created - BIRTH_SLACK_NS) {
                file.set_len(0).map_err(|e| {
                    WriteError::Fatal(format!("truncate {}: {e}", target.display()))
                })?;
            } else {
                tracing::warn!(
                    path = %target.display(),
                    "overwrite=1: the file existed before the drain was created; appending instead of truncating"
                );
            }
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
            && std::fs::symlink_metadata(&self.target).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        if !self.current() {
            self.generation = REOPEN.load(Ordering::Relaxed);
            self.reopen(false)?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(WriteError::Retry(format!("{} is not open", self.path)));
        };
        file.write_all(buf).map_err(|e| {
            // Reopen before the next try: the file may be in a bad state.
            self.file = None;
            WriteError::Retry(format!("write {}: {e}", self.path))
        })
    }
}

fn open_error(path: &Path, e: std::io::Error) -> WriteError {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if e.raw_os_error() == Some(libc::ELOOP) {
        return WriteError::Fatal(format!(
            "open {}: it is a symbolic link, which a file drain does not follow",
            path.display()
        ));
    }
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
    async fn send_batch(&mut self, batch: &[Arc<Entry>]) -> Result<usize, WriteError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut n = 0;
        for entry in batch {
            self.lines.line(entry, &mut buf);
            n += 1;
            if buf.len() >= self.max_bytes {
                break;
            }
        }
        let Some(mut open) = self.open.take() else {
            return Err(WriteError::Retry(
                "the file writer failed earlier; reconnect".into(),
            ));
        };
        let (open, mut buf, result) = blocking(move || {
            let result = if buf.is_empty() {
                Ok(())
            } else {
                open.write(&buf)
            };
            (open, buf, result)
        })
        .await?;
        self.open = Some(open);
        if buf.capacity() > 2 * self.max_bytes {
            buf = Vec::new();
        }
        self.buf = buf;
        result.map(|()| n)
    }
}

impl DrainWriter for FileWriter {
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(self.send_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::testutil::{batch, ctx, entry, err_text, TempDir};
    use super::super::{connect, WriteError, WriterContext};
    use super::reopen_all;
    use crate::format::Format;
    use crate::paths::PathPolicy;
    use envelope::time::now_ns;

    fn read(path: &std::path::Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// A context whose file drains may write only inside `dir`.
    fn ctx_in(dir: &std::path::Path, url: &str) -> WriterContext {
        let mut c = ctx(url);
        c.paths = Arc::new(PathPolicy::new(&[dir.to_owned()], &[]));
        c
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
    async fn one_message_is_one_line() {
        let dir = TempDir::new("file-escape");
        let path = dir.0.join("app.log");
        let mut writer = connect(&ctx(&format!("file://{}", path.display())))
            .await
            .unwrap();
        writer
            .send(&batch(&[
                "ok\n2024-01-01 root login accepted\r\0x",
                "back\\slash",
            ]))
            .await
            .unwrap();
        assert_eq!(
            read(&path),
            "ok\\n2024-01-01 root login accepted\\r\\0x\nback\\slash\n"
        );
    }

    #[tokio::test]
    async fn overwrite_truncates_only_what_the_drain_made() {
        let dir = TempDir::new("file-overwrite");
        let path = dir.0.join("app.log");
        let mut ctx = ctx(&format!("file://{}?overwrite=1", path.display()));
        ctx.name = "overwrite-test".into();
        ctx.created = now_ns();
        // The drain creates the file.
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["fresh"])).await.unwrap();
        assert_eq!(read(&path), "fresh\n");
        // A reconnect (after an error) keeps what was written.
        drop(writer);
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["again"])).await.unwrap();
        assert_eq!(read(&path), "fresh\nagain\n");
        // The drain started anew (a restart) truncates the file it made.
        super::forget_overwrite(&ctx.name);
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["restarted"])).await.unwrap();
        assert_eq!(read(&path), "restarted\n");

        // A file that existed before the drain was created is never
        // truncated: appended to.
        let old = dir.file("old.log", "precious\n");
        let mut ctx = super::super::testutil::ctx(&format!("file://{}?overwrite=1", old.display()));
        ctx.name = "overwrite-old".into();
        ctx.created = now_ns() + 5_000_000_000;
        let mut writer = connect(&ctx).await.unwrap();
        writer.send(&batch(&["new"])).await.unwrap();
        assert_eq!(read(&old), "precious\nnew\n");
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
    async fn missing_directories_inside_are_created() {
        let dir = TempDir::new("file-missing");
        let path = dir.0.join("sluice").join("deep").join("app.log");
        let mut writer = connect(&ctx_in(&dir.0, &format!("file://{}", path.display())))
            .await
            .unwrap();
        writer.send(&batch(&["made"])).await.unwrap();
        assert_eq!(read(&path), "made\n");
    }

    #[tokio::test]
    async fn outside_the_allowed_dirs_and_symlinks_are_fatal() {
        let dir = TempDir::new("file-policy");
        let allowed = dir.0.join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        let outside = dir.file("outside.log", "keep\n");
        // Outside, also through `..` after percent-decoding.
        for url in [
            format!("file://{}", outside.display()),
            format!("file://{}/a%2F..%2F..%2Foutside.log", allowed.display()),
        ] {
            let err = err_text(connect(&ctx_in(&allowed, &url)).await);
            assert!(matches!(err, WriteError::Fatal(_)), "{url}: {err:?}");
            assert!(err.to_string().contains("[drains] file_dirs"), "{err}");
        }
        // A symlink in the allowed dir pointing outside is not followed,
        // even when it appears after the drain opened the file.
        let link = allowed.join("app.log");
        let c = ctx_in(&allowed, &format!("file://{}", link.display()));
        let mut writer = connect(&c).await.unwrap();
        writer.send(&batch(&["inside"])).await.unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = err_text(writer.send(&batch(&["sneaky"])).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = err_text(connect(&c).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        assert_eq!(read(&outside), "keep\n");
    }

    /// A template of 256 `{{.text}}` actions over big payloads: each line
    /// is cut at `max_record` (and counted), and one send writes about
    /// `max_bytes` of output, however much the template amplifies.
    #[tokio::test]
    async fn amplifying_templates_are_bounded() {
        let dir = TempDir::new("file-amplify");
        let path = dir.0.join("amp.log");
        let template = "{{.text}}".repeat(256);
        let format = Format::resolve(&template, &Default::default()).unwrap();
        let mut c = ctx(&format!("file://{}", path.display()));
        c.format = Some(format);
        c.max_record = 64 * 1024;
        let max_bytes = c.max_bytes();
        let mut writer = connect(&c).await.unwrap();
        // 2.6 MB of input, as in the report: 260 entries of 10 KB.
        let payload = "y".repeat(10_000);
        let entries: Vec<_> = (0..260).map(|i| entry(i, &payload)).collect();
        let mut sent = 0;
        let mut sends = 0;
        while sent < entries.len() {
            let before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let n = writer.send(&entries[sent..]).await.unwrap();
            let written = std::fs::metadata(&path).unwrap().len() - before;
            assert!(n >= 1);
            assert!(
                written as usize <= max_bytes + c.max_record + 1,
                "one send wrote {written} bytes"
            );
            sent += n;
            sends += 1;
        }
        assert!(sends > 1, "the batch was split by rendered size");
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 260);
        assert!(lines.iter().all(|l| l.len() == 64 * 1024));
        assert_eq!(text.len(), 260 * (64 * 1024 + 1), "bounded at 260 records");
        assert_eq!(c.metrics.dropped("truncated"), 260);
    }
}
