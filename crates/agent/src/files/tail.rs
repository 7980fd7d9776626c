//! One host file followed as `tail -F` does, with exact byte offsets.
//!
//! Every poll reads what was appended since the last one and stores its
//! whole lines. Between polls the path is checked: another inode at the
//! path is a rotation by rename (logrotate's `create`): the old file is
//! read to its end (the open handle still reaches it), then the new one
//! from its start; a file shorter than the offset was truncated in place
//! (`copytruncate`): reading starts over at 0. The offset saved is just
//! past the last whole line stored, with the device and inode, so a
//! restart resumes there (or, when the file was rotated meanwhile, in the
//! rotated file found by its inode next to it). A file that grew by more
//! than `read_limit` while the agent was away is read from `read_limit`
//! before its end, and the skip is told in-band (Logyard's "Skipping much
//! of a large log file"). With a [sieve](crate::sieve), a line's events
//! are stored in the same append as the line.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use envelope::v2::{Envelope, LogType};
use sources::IngestContext;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::sync::CancellationToken;

use super::positions::{FilePositions, FileSaved};
use crate::stored::{self, AlreadyStored, Verdict};

/// Most bytes read per poll (the next poll follows at once).
const READ_CHUNK: usize = 256 * 1024;

/// One file's tailer.
pub struct Tailer {
    /// The name in `systail.<name>.<node>` (the source id).
    pub name: String,
    pub path: PathBuf,
    /// This host (the instance id and the `host` tag).
    pub node: String,
    pub from_start: bool,
    pub read_limit: u64,
    pub poll: Duration,
    pub ingest: IngestContext,
    pub positions: Arc<FilePositions>,
    /// Rules that turn lines into events.
    pub sieve: Option<Arc<crate::sieve::Sieve>>,
    /// `sluice_ingress_{envelopes,bytes}_total{protocol="file"}`.
    pub counters: metrics::IngressCounters,
    /// A file a glob found: the tailer ends once it is gone (read to its
    /// end), so rotated-away names do not pile up. A named file is
    /// waited for instead.
    pub until_gone: bool,
    pub shutdown: CancellationToken,
}

/// The open file and how far it was read.
struct Open {
    file: tokio::fs::File,
    dev: u64,
    inode: u64,
    /// Just past the last whole line taken.
    offset: u64,
    /// Bytes after `offset` read but not yet a whole line.
    partial: Vec<u8>,
    /// Bytes to pass over up to the next newline (after a cut or a skip).
    discard_line: bool,
    /// The read buffer, [`READ_CHUNK`] bytes, kept for the file's life.
    buf: Vec<u8>,
}

impl Tailer {
    /// Follows until shutdown (or, with `until_gone`, until the file is
    /// gone); returns the path.
    pub async fn run(self) -> PathBuf {
        let saved = self.positions.get(&self.path);
        let mut already = match saved.as_ref().and_then(|s| s.log_position) {
            Some(after) => {
                let path = self.path.display().to_string();
                let ours = |e: &Envelope| {
                    e.instance_id == self.node && e.tag("path") == Some(path.as_str())
                };
                AlreadyStored::new(
                    stored::stored_after(&self.ingest, &self.name, ours, after).await,
                )
            }
            None => AlreadyStored::default(),
        };
        let mut log_position = saved.as_ref().and_then(|s| s.log_position);
        let mut current = self.resume(saved.as_ref()).await;
        loop {
            if let Some(open) = current.as_mut() {
                let more = match self.read(open).await {
                    Ok((lines, more)) => {
                        self.store(lines, &mut already, &mut log_position).await;
                        self.save(open, log_position);
                        more
                    }
                    Err(err) => {
                        tracing::warn!(file = %self.path.display(), error = %err, "cannot read a followed file");
                        false
                    }
                };
                if more {
                    continue;
                }
                match self.check_rotation(open).await {
                    Rotation::None => {}
                    Rotation::Truncated => {
                        let last = finish_partial(open, self.max());
                        self.store(last, &mut already, &mut log_position).await;
                        open.offset = 0;
                        open.partial.clear();
                        if let Err(err) = open.file.seek(SeekFrom::Start(0)).await {
                            tracing::warn!(file = %self.path.display(), error = %err, "cannot read a truncated file from its start");
                        }
                        self.save(open, log_position);
                    }
                    Rotation::Gone if self.until_gone => {
                        // Its position stays saved: should the name come
                        // back (a rename rotation), the next tailer finds
                        // this file by its inode and goes on from there.
                        self.drain(open, &mut already, &mut log_position).await;
                        self.save(open, log_position);
                        return self.path;
                    }
                    Rotation::Gone => {}
                    Rotation::Renamed => {
                        self.drain(open, &mut already, &mut log_position).await;
                        current = self.open_path(0).await;
                        if let Some(open) = current.as_ref() {
                            self.save(open, log_position);
                        }
                        continue;
                    }
                }
            } else {
                current = self
                    .open_path(if self.from_start { 0 } else { u64::MAX })
                    .await;
                match current.as_ref() {
                    Some(open) => self.save(open, log_position),
                    None if self.until_gone => return self.path,
                    None => {}
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return self.path,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Reads a file that is no longer at the path to its end, its last
    /// line without a newline too.
    async fn drain(
        &self,
        open: &mut Open,
        already: &mut AlreadyStored,
        log_position: &mut Option<u64>,
    ) {
        while let Ok((lines, more)) = self.read(open).await {
            self.store(lines, already, log_position).await;
            if !more {
                break;
            }
        }
        let last = finish_partial(open, self.max());
        self.store(last, already, log_position).await;
    }

    fn max(&self) -> usize {
        self.ingest.limits.max_message
    }

    /// Where a (re)started tailer begins: the saved offset in the same
    /// file, or in the rotated file that has its inode now, or the start
    /// or end of the file at the path.
    async fn resume(&self, saved: Option<&FileSaved>) -> Option<Open> {
        let Some(saved) = saved else {
            return self
                .open_path(if self.from_start { 0 } else { u64::MAX })
                .await;
        };
        let at_path = tokio::fs::metadata(&self.path).await.ok();
        let same = at_path
            .as_ref()
            .is_some_and(|m| m.dev() == saved.dev && m.ino() == saved.inode);
        if same {
            return self.open_at(&self.path.clone(), saved.offset).await;
        }
        if let Some(rotated) = find_by_inode(&self.path, saved.dev, saved.inode).await {
            tracing::info!(file = %self.path.display(), rotated = %rotated.display(), "the file was rotated while the agent was away; reading the rest of the old one first");
            return self.open_at(&rotated, saved.offset).await;
        }
        // Rotated away and gone: the file at the path is new since.
        self.open_path(0).await
    }

    async fn open_path(&self, offset: u64) -> Option<Open> {
        self.open_at(&self.path.clone(), offset).await
    }

    /// Opens `path` at `offset` (`u64::MAX`: its end), within `read_limit`
    /// of its end (telling what is skipped).
    async fn open_at(&self, path: &Path, offset: u64) -> Option<Open> {
        let mut file = tokio::fs::File::open(path).await.ok()?;
        let meta = file.metadata().await.ok()?;
        let size = meta.len();
        let mut offset = offset.min(size);
        let mut discard_line = false;
        if size - offset > self.read_limit {
            let skipped = size - self.read_limit - offset;
            offset = size - self.read_limit;
            discard_line = offset > 0;
            let text = codec::notice::skipped_file(skipped, &self.path.display().to_string());
            tracing::warn!(file = %self.path.display(), skipped, "skipping much of a large log file");
            let mut env = self.envelope(Bytes::from(text));
            env.instance_id = String::new();
            env.tags.insert(
                "source_type".to_owned(),
                codec::notice::SOURCE_TYPE.to_owned(),
            );
            // sluice's own words: not subject to the app's rate limit.
            let _ = self.ingest.append_notices(vec![env]).await;
        }
        file.seek(SeekFrom::Start(offset)).await.ok()?;
        Some(Open {
            file,
            dev: meta.dev(),
            inode: meta.ino(),
            offset,
            partial: Vec::new(),
            discard_line,
            buf: vec![0; READ_CHUNK],
        })
    }

    /// Reads up to [`READ_CHUNK`] and cuts whole lines; `true` when there
    /// may be more right away.
    async fn read(&self, open: &mut Open) -> std::io::Result<(Vec<Bytes>, bool)> {
        let mut buf = std::mem::take(&mut open.buf);
        let read = open.file.read(&mut buf).await;
        let n = match read {
            Ok(n) => n,
            Err(err) => {
                open.buf = buf;
                return Err(err);
            }
        };
        let lines = self.cut_lines(open, &buf[..n]);
        open.buf = buf;
        Ok((lines, n == READ_CHUNK))
    }

    /// Whole lines out of what was read; the rest waits in `partial`.
    fn cut_lines(&self, open: &mut Open, read: &[u8]) -> Vec<Bytes> {
        let max = self.max();
        let mut lines = Vec::new();
        let mut rest = read;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (piece, after) = rest.split_at(nl);
            rest = &after[1..];
            let consumed = open.partial.len() + piece.len() + 1;
            if std::mem::take(&mut open.discard_line) {
                open.partial.clear();
            } else {
                open.partial.extend_from_slice(piece);
                let mut line = std::mem::take(&mut open.partial);
                if line.len() > max {
                    line.truncate(max);
                    self.ingest.metrics.count_drop("truncated", 1);
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(Bytes::from(line));
            }
            open.offset += consumed as u64;
        }
        if !open.discard_line {
            open.partial.extend_from_slice(rest);
            if open.partial.len() > max {
                // A line longer than the max message: its start is kept
                // (cut, counted), the rest passed over.
                let mut line = std::mem::take(&mut open.partial);
                open.offset += line.len() as u64;
                line.truncate(max);
                self.ingest.metrics.count_drop("truncated", 1);
                lines.push(Bytes::from(line));
                open.discard_line = true;
            }
        } else {
            open.offset += rest.len() as u64;
        }
        lines
    }

    async fn check_rotation(&self, open: &Open) -> Rotation {
        match tokio::fs::metadata(&self.path).await {
            Ok(m) if m.dev() != open.dev || m.ino() != open.inode => Rotation::Renamed,
            Ok(m) if m.len() < open.offset + open.partial.len() as u64 => Rotation::Truncated,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rotation::Gone,
            _ => Rotation::None,
        }
    }

    /// Stores lines, passing over those an earlier run stored.
    async fn store(
        &self,
        lines: Vec<Bytes>,
        already: &mut AlreadyStored,
        log_position: &mut Option<u64>,
    ) {
        let mut batch = Vec::with_capacity(lines.len());
        for line in lines {
            // Strict: the first line read again that the earlier run did
            // not store ends the matching. (Lenient matching would pass
            // over every new line of a file rotated or truncated while
            // the agent was down; a line the rate limit dropped in the
            // crash window is stored twice instead, the rarer harm.)
            match already.check(&line, false) {
                Verdict::New => {
                    // Events go with their line, in the same append.
                    let events = self
                        .sieve
                        .as_ref()
                        .map(|s| s.events(&line, &self.node, envelope::time::now_ns()));
                    batch.push(self.envelope(line));
                    batch.extend(events.into_iter().flatten());
                }
                Verdict::Stored(position) => *log_position = position.or(*log_position),
            }
        }
        if batch.is_empty() {
            return;
        }
        self.counters
            .envelopes
            .inc_by(batch.iter().filter(|e| e.as_log().is_some()).count() as u64);
        self.counters.bytes.inc_by(
            batch
                .iter()
                .map(|e| e.as_log().map_or(0, |l| l.payload.len() as u64 + 1))
                .sum(),
        );
        if let Ok(positions) = self.ingest.store(batch).await {
            *log_position = sources::newest_stored(&positions).or(*log_position);
        }
    }

    fn save(&self, open: &Open, log_position: Option<u64>) {
        self.positions.set(
            &self.path,
            FileSaved {
                dev: open.dev,
                inode: open.inode,
                offset: open.offset,
                log_position,
            },
        );
    }

    fn envelope(&self, line: Bytes) -> Envelope {
        let mut env = Envelope::log(
            envelope::time::now_ns(),
            self.name.clone(),
            self.node.clone(),
            line,
            LogType::Out,
        );
        env.tags
            .insert(envelope::key::SYSTAIL_TAG.to_owned(), self.name.clone());
        env.tags.insert("host".to_owned(), self.node.clone());
        env.tags
            .insert("source_type".to_owned(), "SYSTAIL".to_owned());
        env.tags
            .insert("path".to_owned(), self.path.display().to_string());
        env
    }
}

enum Rotation {
    None,
    Truncated,
    Renamed,
    /// Nothing at the path (moved away, not yet replaced, or deleted).
    Gone,
}

/// The last line of a file that ended without a newline.
fn finish_partial(open: &mut Open, max: usize) -> Vec<Bytes> {
    if open.discard_line || open.partial.is_empty() {
        open.discard_line = false;
        open.partial.clear();
        return Vec::new();
    }
    let mut line = std::mem::take(&mut open.partial);
    open.offset += line.len() as u64;
    line.truncate(max);
    vec![Bytes::from(line)]
}

/// A file next to `path` with this device and inode: where a rotation put
/// the file the agent was reading.
async fn find_by_inode(path: &Path, dev: u64, inode: u64) -> Option<PathBuf> {
    let dir = path.parent()?;
    let mut entries = tokio::fs::read_dir(dir).await.ok()?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if let Ok(meta) = entry.metadata().await {
            if meta.is_file() && meta.dev() == dev && meta.ino() == inode {
                return Some(entry.path());
            }
        }
    }
    None
}
