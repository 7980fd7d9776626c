//! [`DiskLog`]: the [`Log`] over this crate's segment files.
//!
//! One [`LogWriter`] behind a mutex takes the appends on a blocking thread
//! with group commit: appends that arrive while a write is in progress wait
//! together and go out in the next write, each still all or nothing with
//! its own positions and result (one committer thread runs while appends
//! keep coming, instead of a `spawn_blocking` per batch). Every batch is
//! written before its append returns (readers see it at once; a crash may
//! lose only what the fsync timer had not synced yet). The owner spawns
//! [`DiskLog::sync_every`] as the fsync timer and calls [`Log::retain`]
//! (the configured policy) or [`DiskLog::apply_retention`] on its own
//! schedule. `append` is all or nothing: it first checks the free space of
//! the file system (`space.rs`: [`ApiError::DiskFull`] below
//! `min_free_disk_bytes`), and if the batch's write fails it is discarded
//! from the writer ([`LogWriter::discard_pending`]), never written later,
//! and its positions are given to the next batch (no reader ever saw
//! them), so a caller that retries stores it once.
//!
//! The entries of every written batch also go to the recent-records cache
//! (`cache.rs`): a `read_from` near the end is answered from it inline, and
//! per-source reads take what it holds; other reads run on
//! `spawn_blocking` through a [`LogReader`], so async workers never touch
//! disk. Consumer cursors are files in `cursor_dir` (see `consumers.rs`).
//!
//! Start-up rebuilds the per-source index by scanning every segment
//! (`recover.rs`, which also verifies every record); no index checkpoint
//! is written yet. `examples/log_memory.rs` (release, page cache warm, the
//! 2-core machine shared with other builds, load 8, December 2026) opens
//! 1,000,000 records of 256-byte payloads (328 MB) in 0.24–0.34 s from one
//! source and 0.54–1.0 s from 100,000 sources (round-robin: every record
//! a cache miss in the index, half the time): under the 2 s that would
//! call for one. It grows linearly — 4,000,000 records from 100,000 sources
//! took 2.5–4 s — so a log filling the default 4 GiB budget (about 13 M
//! such records) would take some 8 s or more: a checkpoint of the index
//! (and of each sealed segment's sparse offsets and counts, which the same
//! scan builds) is the next step before budgets that large are common.

use std::fmt;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use envelope::{key, Entry, Envelope, Selector};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, watch};

use super::cache::{Evicted, LogBounds, RecentCache, DEFAULT_CACHE_BYTES};
use super::consumers::CursorFiles;
use super::cursor::Cursor;
use super::space::FreeSpace;
use super::types::{
    LogStats, Position, ReadPage, Retained, SourceMeta, StoredEntry, DEFAULT_MAX_AGE_NS,
};
use super::{disk_read, ApiError, Log, LogFuture};
use crate::{
    open, EnvelopeRecord, LogConfig, LogError, LogReader, LogWriter, OpenReport, RetentionPolicy,
    RetentionReport,
};

/// Default disk budget of the segments (`[log] max_disk_mb` 4096).
pub const DEFAULT_MAX_DISK_BYTES: u64 = 4096 << 20;
/// Default free space `append` leaves on the log's file system.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug)]
pub struct DiskLogConfig {
    /// The segment store (its `dir` holds segments, `meta` and `lock`).
    pub storage: LogConfig,
    /// Where consumer cursor files live.
    pub cursor_dir: PathBuf,
    /// What [`Log::retain`] applies.
    pub retention: RetentionPolicy,
    /// Byte budget of the recent-records cache (`cache.rs`); 0 turns it
    /// off.
    pub cache_bytes: usize,
    /// `append` fails with [`ApiError::DiskFull`] rather than leave less
    /// free space than this on the log's file system; 0 turns it off.
    pub min_free_disk_bytes: u64,
}

impl DiskLogConfig {
    /// Segments in `<dir>/log`, consumer cursors in `<dir>/cursors`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        DiskLogConfig {
            storage: LogConfig::new(dir.join("log")),
            cursor_dir: dir.join("cursors"),
            retention: RetentionPolicy {
                max_age_ns: Some(DEFAULT_MAX_AGE_NS),
                max_bytes: Some(DEFAULT_MAX_DISK_BYTES),
            },
            cache_bytes: DEFAULT_CACHE_BYTES,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
        }
    }
}

/// Cheap to clone; every clone is the same log.
#[derive(Clone, Debug)]
pub struct DiskLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None` once closed.
    writer: Mutex<Option<LogWriter>>,
    reader: LogReader,
    /// The newest entries, for reads near the end (`cache.rs`).
    cache: RwLock<RecentCache>,
    cursors: CursorFiles,
    /// The free-space check of `append`.
    space: FreeSpace,
    retention: RetentionPolicy,
    sync_errors: AtomicU64,
    /// Appends waiting for the group commit.
    commits: Mutex<Commits>,
    /// The readable end and whether the log is closed, for
    /// [`Log::wait_beyond`].
    end: watch::Sender<(Position, bool)>,
}

impl Inner {
    /// Where the log stands for a read starting now.
    fn bounds(&self) -> LogBounds {
        LogBounds {
            next: self.reader.next_position(),
            oldest: self.reader.oldest_position(),
        }
    }

    /// Tells waiters the readable end (it only grows) and closing.
    fn publish_end(&self, closed: bool) {
        let next = self.reader.next_position();
        self.end.send_if_modified(|(end, was_closed)| {
            let changed = next > *end || (closed && !*was_closed);
            *end = (*end).max(next);
            *was_closed |= closed;
            changed
        });
    }
}

/// The entries at these positions (ascending), from the cache where it
/// holds them, the rest read from disk on a blocking thread; positions no
/// longer readable are left out.
fn entries_at(inner: Arc<Inner>, positions: Vec<Position>) -> LogFuture<'static, Vec<StoredEntry>> {
    let (mut found, mut missing) = (Vec::with_capacity(positions.len()), Vec::new());
    {
        let cache = inner.cache.read();
        for p in positions {
            match cache.get(p) {
                Some(e) => found.push(e.clone()),
                None => missing.push(p),
            }
        }
    }
    if missing.is_empty() {
        return Box::pin(async move { Ok(found) });
    }
    Box::pin(blocking(move || {
        let records = inner.reader.read_positions(&missing)?;
        found.extend(records.into_iter().filter_map(disk_read::to_stored));
        // The cache is a suffix, but one written batch may be in the index
        // a moment before it is in the cache.
        found.sort_by_key(|e| e.position);
        Ok(found)
    }))
}

/// An append waiting for the group commit, its keys computed.
struct Queued {
    batch: Vec<Envelope>,
    keys: Vec<Arc<str>>,
    done: oneshot::Sender<Result<(Range<Position>, Evicted), ApiError>>,
}

/// The appends waiting for the committer, and whether one is running.
#[derive(Default)]
struct Commits {
    waiting: Vec<Queued>,
    running: bool,
}

impl fmt::Debug for Commits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commits")
            .field("waiting", &self.waiting.len())
            .field("running", &self.running)
            .finish()
    }
}

/// The committer, run on a blocking thread: writes what is waiting,
/// group by group, until nothing is. An append that finds none running
/// starts one.
struct Committer {
    inner: Arc<Inner>,
    finished: bool,
}

impl Committer {
    fn run(mut self) {
        loop {
            let group = {
                let mut commits = self.inner.commits.lock();
                if commits.waiting.is_empty() {
                    commits.running = false;
                    self.finished = true;
                    return;
                }
                std::mem::take(&mut commits.waiting)
            };
            write_group(&self.inner, group);
        }
    }
}

impl Drop for Committer {
    /// After a panic (a bug), or when the runtime dropped it unrun (at
    /// shut-down), the waiting appends fail (their senders are dropped)
    /// and the next append starts a new committer.
    fn drop(&mut self) {
        if !self.finished {
            let mut commits = self.inner.commits.lock();
            commits.waiting.clear();
            commits.running = false;
        }
    }
}

/// Appended to the writer's buffer, not yet written.
type Open = Vec<(Queued, Range<Position>)>;

/// Writes a group of appends, in order, with as few writes as it can
/// (one, unless the group passes half the flush threshold or a segment
/// end). Each batch is still all or nothing and gets its own result: a
/// batch that cannot be encoded fails alone; a write that fails (or the
/// free-space check before it) fails every batch it held, discarded from
/// the writer as a single append's would be.
fn write_group(inner: &Inner, group: Vec<Queued>) {
    let mut guard = inner.writer.lock();
    let Some(w) = guard.as_mut() else {
        for q in group {
            let _ = q.done.send(Err(ApiError::Closed));
        }
        return;
    };
    let limit = w.config.flush_threshold / 2;
    let mut open: Open = Vec::new();
    for mut q in group {
        if w.pending_bytes() >= limit {
            commit_open(inner, w, &mut open);
        }
        // Timestamps are stamped as the batch is filed in the index, before
        // it is encoded (`stamp.rs`).
        w.stamp(q.batch.iter_mut().map(|e| {
            let Envelope {
                source_id,
                timestamp,
                ..
            } = e;
            (source_id.as_str(), timestamp)
        }));
        let records: Vec<EnvelopeRecord<'_>> = q
            .keys
            .iter()
            .zip(&q.batch)
            .map(|(key, envelope)| EnvelopeRecord { key, envelope })
            .collect();
        let appended = w.append(&records);
        drop(records);
        match appended {
            Ok(range) => open.push((q, range)),
            Err(e) => {
                // A flush or roll inside `append` may have written the
                // batches before this one.
                settle(inner, w, &mut open);
                let e = ApiError::from(e);
                if !matches!(e, ApiError::Storage(LogError::Encode { .. })) {
                    // A write failed: the rest is dropped, never written
                    // by a later flush. (A failure to cut a torn write is
                    // retried before the next write.)
                    let _ = w.discard_pending();
                    fail(&mut open, &e);
                }
                let _ = q.done.send(Err(e));
            }
        }
    }
    commit_open(inner, w, &mut open);
    inner.publish_end(false);
}

/// Writes the buffered batches: the free-space check first (buffered, not
/// written yet: the last moment to refuse), then one write.
fn commit_open(inner: &Inner, w: &mut LogWriter, open: &mut Open) {
    if open.is_empty() {
        return;
    }
    let incoming = w.pending_bytes() as u64;
    let written = inner
        .space
        .check(w.active_base(), incoming)
        .and_then(|()| Ok(w.flush()?));
    match written {
        Ok(()) => {
            inner.space.wrote(incoming);
            settle(inner, w, open);
        }
        Err(e) => {
            let _ = w.discard_pending();
            fail(open, &e);
        }
    }
}

/// Answers the open batches the writer has written: their entries go to
/// the cache (under the writer's lock, so it fills in position order),
/// waiters are told the new end, then each caller gets its positions.
fn settle(inner: &Inner, w: &LogWriter, open: &mut Open) {
    let written = w.written_position();
    let n = open.iter().take_while(|(_, r)| r.end <= written).count();
    if n == 0 {
        return;
    }
    let mut answers = Vec::with_capacity(n);
    {
        let mut cache = inner.cache.write();
        for (q, range) in open.drain(..n) {
            let entries = q.batch.into_iter().zip(q.keys).zip(range.clone()).map(
                |((envelope, key), position)| StoredEntry {
                    position,
                    entry: Arc::new(Entry {
                        envelope,
                        key,
                        seq: position,
                    }),
                },
            );
            answers.push((q.done, range, cache.extend(entries)));
        }
    }
    inner.publish_end(false);
    for (done, range, evicted) in answers {
        let _ = done.send(Ok((range, evicted)));
    }
}

/// Fails every open batch with (a copy of) `e`.
fn fail(open: &mut Open, e: &ApiError) {
    for (q, _) in open.drain(..) {
        let _ = q.done.send(Err(copy_error(e)));
    }
}

/// The same error for another batch of a failed write (`ApiError` holds
/// `io::Error`s, which do not clone): kind and message are kept.
fn copy_error(e: &ApiError) -> ApiError {
    match e {
        ApiError::Storage(LogError::Io { op, path, source }) => ApiError::Storage(LogError::Io {
            op,
            path: path.clone(),
            source: io::Error::new(source.kind(), source.to_string()),
        }),
        ApiError::Storage(LogError::Encode { index, source }) => {
            ApiError::Storage(LogError::Encode {
                index: *index,
                source: source.clone(),
            })
        }
        ApiError::Storage(LogError::PositionsExhausted) => {
            ApiError::Storage(LogError::PositionsExhausted)
        }
        ApiError::DiskFull {
            free_bytes,
            min_free_bytes,
        } => ApiError::DiskFull {
            free_bytes: *free_bytes,
            min_free_bytes: *min_free_bytes,
        },
        ApiError::Closed => ApiError::Closed,
        other => ApiError::Task(other.to_string()),
    }
}

/// Runs blocking work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Task(e.to_string()))?
}

impl DiskLog {
    /// Opens (creating if needed) and recovers the log. Blocking: call it at
    /// start-up, or inside `spawn_blocking`.
    pub fn open(config: DiskLogConfig) -> Result<(DiskLog, OpenReport), ApiError> {
        // The storage lock first: cursor files are cleaned up on open, which
        // only the directory's one owner may do.
        let space = FreeSpace::new(config.storage.dir.clone(), config.min_free_disk_bytes);
        let (writer, report) = open(config.storage)?;
        let cursors = CursorFiles::open(config.cursor_dir)?;
        let next = writer.reader().next_position();
        let end = watch::Sender::new((next, false));
        let log = DiskLog {
            inner: Arc::new(Inner {
                end,
                cache: RwLock::new(RecentCache::new(next, config.cache_bytes)),
                reader: writer.reader(),
                writer: Mutex::new(Some(writer)),
                cursors,
                space,
                retention: config.retention,
                sync_errors: AtomicU64::new(0),
                commits: Mutex::default(),
            }),
        };
        Ok((log, report))
    }

    /// A reader of the underlying segments (for checks and tools).
    pub fn reader(&self) -> &LogReader {
        &self.inner.reader
    }

    fn with_writer<T>(
        inner: &Inner,
        f: impl FnOnce(&mut LogWriter) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = inner.writer.lock();
        let writer = guard.as_mut().ok_or(ApiError::Closed)?;
        let result = f(writer);
        inner.publish_end(false);
        result
    }

    /// Flushes and fsyncs everything appended so far.
    pub async fn sync(&self) -> Result<(), ApiError> {
        let inner = self.inner.clone();
        blocking(move || {
            // The fsyncs run without the writer's lock: appends go on.
            let segments = Self::with_writer(&inner, |w| Ok(w.plan_sync()?)).and_then(|plan| {
                plan.run()?;
                Self::with_writer(&inner, |w| {
                    w.synced_by(&plan);
                    Ok(())
                })
            });
            // Consumer cursors committed since the last sync, even when the
            // segments failed (or the log is closed).
            let cursors = inner.cursors.sync();
            segments.and(cursors)
        })
        .await
    }

    /// The fsync timer: syncs every `period` until `shutdown` completes,
    /// then once more. Failures are counted in [`LogStats::sync_errors`]
    /// and retried next tick. The owner spawns it and awaits it at exit.
    pub fn sync_every(
        &self,
        period: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let log = self.clone();
        async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tick.tick() => log.sync_counted().await,
                }
            }
            log.sync_counted().await;
        }
    }

    async fn sync_counted(&self) {
        match self.sync().await {
            Ok(()) | Err(ApiError::Closed) => {}
            Err(_) => {
                self.inner.sync_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Deletes whole segments by age and disk budget (see
    /// [`RetentionPolicy`]); the report names the removed positions.
    pub async fn apply_retention(
        &self,
        policy: RetentionPolicy,
        now_ns: i64,
    ) -> Result<RetentionReport, ApiError> {
        let inner = self.inner.clone();
        blocking(move || {
            Self::with_writer(&inner, |w| {
                let report = w.apply_retention(&policy, now_ns)?;
                // Removed positions leave the cache too.
                let floor = report.oldest_position.unwrap_or_else(|| w.next_position());
                inner.cache.write().remove_below(floor);
                Ok(report)
            })
        })
        .await
    }

    /// Syncs, persists the position floor and releases the directory;
    /// later appends fail with [`ApiError::Closed`] (reads still work).
    pub async fn close(&self) -> Result<(), ApiError> {
        let inner = self.inner.clone();
        blocking(move || {
            let result = match inner.writer.lock().take() {
                Some(w) => w.close(),
                None => Ok(()),
            };
            inner.publish_end(true);
            let cursors = inner.cursors.sync();
            result?;
            cursors
        })
        .await
    }
}

impl Log for DiskLog {
    fn append(&self, batch: Vec<Envelope>) -> LogFuture<'_, Vec<Position>> {
        // Queued now, at the call (the order the trait promises).
        let keys = batch.iter().map(|e| key::key_for(e).into()).collect();
        let (done, result) = oneshot::channel();
        let lead = {
            let mut commits = self.inner.commits.lock();
            commits.waiting.push(Queued { batch, keys, done });
            !std::mem::replace(&mut commits.running, true)
        };
        if lead {
            let committer = Committer {
                inner: self.inner.clone(),
                finished: false,
            };
            tokio::task::spawn_blocking(move || committer.run());
        }
        Box::pin(async move {
            let (range, evicted) = result
                .await
                .map_err(|_| ApiError::Task("the group commit stopped".into()))??;
            // Freed here, outside the writer's and the cache's locks, on
            // the async worker: most envelopes were allocated on one (by a
            // source), and freeing on the allocating thread is cheaper.
            drop(evicted);
            Ok(range.collect())
        })
    }

    fn read_source<'a>(
        &'a self,
        source_id: &'a str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        descending: bool,
    ) -> LogFuture<'a, Vec<StoredEntry>> {
        let positions = self
            .inner
            .reader
            .range_positions(source_id, start_ns, end_ns, limit, descending);
        let entries = entries_at(self.inner.clone(), positions);
        Box::pin(async move {
            let mut out = entries.await?;
            if descending {
                out.reverse();
            }
            Ok(out)
        })
    }

    fn read_from<'a>(
        &'a self,
        cursor: Cursor,
        selector: &'a Selector,
        limit: usize,
    ) -> LogFuture<'a, ReadPage> {
        // Near the end (the live fan-out, drains that keep up): answered
        // from memory, inline.
        let cached =
            self.inner
                .cache
                .read()
                .read_from(self.inner.bounds(), cursor, selector, limit);
        if let Some(page) = cached {
            return Box::pin(async move { Ok(page) });
        }
        let inner = self.inner.clone();
        let selector = selector.clone();
        Box::pin(blocking(move || {
            disk_read::read_from(&inner.reader, cursor, &selector, limit)
        }))
    }

    fn end_cursor(&self) -> LogFuture<'_, Cursor> {
        let end = Cursor::at(self.inner.reader.next_position());
        Box::pin(async move { Ok(end) })
    }

    fn wait_beyond(&self, cursor: Cursor) -> LogFuture<'_, Cursor> {
        let mut rx = self.inner.end.subscribe();
        Box::pin(async move {
            let (end, _) = *rx
                .wait_for(|&(end, closed)| end > cursor.next() || closed)
                .await
                .map_err(|_| ApiError::Closed)?;
            if end > cursor.next() {
                Ok(Cursor::at(end))
            } else {
                Err(ApiError::Closed)
            }
        })
    }

    fn retain(&self, now_ns: i64) -> LogFuture<'_, Retained> {
        let policy = self.inner.retention;
        Box::pin(async move {
            let report = self.apply_retention(policy, now_ns).await?;
            Ok(Retained {
                removed: report.records(),
                oldest_position: report.oldest_position,
            })
        })
    }

    fn commit<'a>(&'a self, consumer: &'a str, cursor: Cursor) -> LogFuture<'a, ()> {
        let inner = self.inner.clone();
        let consumer = consumer.to_owned();
        Box::pin(blocking(move || inner.cursors.write(&consumer, cursor)))
    }

    fn forget<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, bool> {
        let inner = self.inner.clone();
        let consumer = consumer.to_owned();
        Box::pin(blocking(move || inner.cursors.remove(&consumer)))
    }

    fn committed<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, Option<Cursor>> {
        let inner = self.inner.clone();
        let consumer = consumer.to_owned();
        Box::pin(blocking(move || inner.cursors.read(&consumer)))
    }

    fn meta<'a>(&'a self, after: Option<&'a str>, limit: usize) -> LogFuture<'a, Vec<SourceMeta>> {
        let inner = self.inner.clone();
        let after = after.map(str::to_owned);
        Box::pin(blocking(move || {
            let mut out: Vec<SourceMeta> = inner
                .reader
                .sources()
                .into_iter()
                .filter(|s| after.as_deref().is_none_or(|a| s.source_id.as_str() > a))
                .map(|s| SourceMeta {
                    source_id: s.source_id,
                    count: s.count,
                    oldest_timestamp: s.oldest_timestamp,
                    newest_timestamp: s.newest_timestamp,
                })
                .collect();
            out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
            out.truncate(limit);
            Ok(out)
        }))
    }

    /// From the per-source index when the selector names only source ids
    /// (the `--recent` of `sluice logs APP` once resolved): the positions
    /// come from memory and the entries from the cache, or from disk by
    /// position (as for `read_source`). The index keeps `max_per_source` entries per source, so a
    /// `limit` above that gets at most that many per source. Any other
    /// selector scans back from the end (the trait's default).
    fn recent<'a>(
        &'a self,
        selector: &'a Selector,
        after_ns: i64,
        limit: usize,
    ) -> LogFuture<'a, Vec<StoredEntry>> {
        let only_sources = Selector {
            source_ids: selector.source_ids.clone(),
            ..Selector::default()
        };
        if selector.source_ids.is_empty() || *selector != only_sources {
            return Box::pin(super::recent_by_windows(self, selector, after_ns, limit));
        }
        let positions = self
            .inner
            .reader
            .newest_positions(&selector.source_ids, after_ns, limit);
        entries_at(self.inner.clone(), positions)
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        let inner = self.inner.clone();
        Box::pin(blocking(move || {
            let index = inner.reader.index_stats();
            let (cache_bytes, cached) = {
                let cache = inner.cache.read();
                (cache.bytes(), cache.len())
            };
            Ok(LogStats {
                next_position: inner.reader.next_position(),
                oldest_position: inner.reader.oldest_position(),
                entries: index.entries as u64,
                sources: index.sources as u64,
                bytes: inner.reader.segments().iter().map(|s| s.bytes).sum(),
                sync_errors: inner.sync_errors.load(Ordering::Relaxed),
                memory_bytes: (index.heap_bytes + cache_bytes) as u64,
                cached_entries: cached as u64,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use envelope::LogType;

    use super::*;
    use crate::segment::Segment;
    use crate::writer::tests::break_writes;

    fn batch(source: &str, n: i64) -> Vec<Envelope> {
        (0..n)
            .map(|i| Envelope::log(i, source, "0", Bytes::from_static(b"line"), LogType::Out))
            .collect()
    }

    /// A log holding `a` at 0 and 1 whose writes now fail; returns the
    /// working segment to put back (`active = good`).
    async fn log_that_cannot_write(config: &DiskLogConfig) -> (DiskLog, Arc<Segment>) {
        let (log, _) = DiskLog::open(config.clone()).unwrap();
        assert_eq!(log.append(batch("a", 2)).await.unwrap(), vec![0, 1]);
        let good = {
            let mut guard = log.inner.writer.lock();
            break_writes(guard.as_mut().unwrap())
        };
        (log, good)
    }

    async fn sources(log: &DiskLog) -> Vec<String> {
        let page = log
            .read_from(Cursor::START, &Selector::all(), 100)
            .await
            .unwrap();
        page.entries
            .iter()
            .map(|e| e.entry.envelope.source_id.clone())
            .collect()
    }

    /// Starts `appends` while the writer is busy (its lock held), so the
    /// committer finds most of them waiting together, then lets it go. (The
    /// committer may take the first ones before the rest arrive; the
    /// results must not depend on how they were grouped.)
    #[allow(clippy::await_holding_lock)] // the point: a writer busy meanwhile
    async fn grouped(
        log: &DiskLog,
        appends: Vec<Vec<Envelope>>,
    ) -> Vec<Result<Vec<Position>, ApiError>> {
        let busy = log.inner.writer.lock();
        let tasks: Vec<_> = appends
            .into_iter()
            .map(|b| {
                let log = log.clone();
                tokio::spawn(async move { log.append(b).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(busy);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_appends_each_get_their_own_positions() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = DiskLogConfig::new(dir.path());
        // Rolls and threshold flushes inside groups.
        config.storage.segment_bytes = 4 << 10;
        config.storage.flush_threshold = 2 << 10;
        let (log, _) = DiskLog::open(config.clone()).unwrap();
        let mut want = Vec::new();
        for round in 0..20 {
            let appends: Vec<_> = (0..6)
                .map(|t| batch(&format!("r{round}t{t}"), 1 + (round + t) % 7))
                .collect();
            let sizes: Vec<usize> = appends.iter().map(Vec::len).collect();
            for (positions, (t, n)) in grouped(&log, appends)
                .await
                .into_iter()
                .zip(sizes.into_iter().enumerate())
            {
                let positions = positions.unwrap();
                assert_eq!(positions.len(), n);
                for p in positions {
                    want.push((p, format!("r{round}t{t}")));
                }
            }
        }
        want.sort();
        let positions: Vec<Position> = want.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, (0..want.len() as Position).collect::<Vec<_>>());
        let stored = |log: DiskLog| async move {
            let page = log
                .read_from(Cursor::START, &Selector::all(), 10_000)
                .await
                .unwrap();
            page.entries
                .iter()
                .map(|e| (e.position, e.entry.envelope.source_id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(stored(log.clone()).await, want);
        log.close().await.unwrap();
        drop(log);
        let (log, report) = DiskLog::open(config).unwrap();
        assert!(report.is_clean(), "{report:?}");
        log.inner.cache.write().remove_below(Position::MAX);
        assert_eq!(stored(log).await, want, "from disk");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_group_write_stores_none_of_its_batches() {
        let dir = tempfile::tempdir().unwrap();
        let config = DiskLogConfig::new(dir.path());
        let (log, good) = log_that_cannot_write(&config).await;
        let results = grouped(&log, vec![batch("x", 3), batch("y", 1), batch("z", 2)]).await;
        for r in results {
            assert!(matches!(r, Err(ApiError::Storage(_))), "{r:?}");
        }
        log.inner.writer.lock().as_mut().unwrap().active = good;
        log.sync().await.unwrap();
        assert_eq!(log.end_cursor().await.unwrap(), Cursor::at(2));
        // A batch that cannot be encoded fails alone.
        let mut too_big = batch("big", 1);
        too_big[0].source_id = "s".repeat(70_000);
        let results = grouped(&log, vec![batch("b", 1), too_big, batch("c", 2)]).await;
        assert!(matches!(
            results[1],
            Err(ApiError::Storage(LogError::Encode { .. }))
        ));
        // The two good batches join the group in whichever order their
        // tasks ran: each gets its own consecutive positions after 0 and 1.
        let b = results[0].as_ref().unwrap().clone();
        let c = results[2].as_ref().unwrap().clone();
        let want: &[&str] = if b == [2] {
            assert_eq!(c, [3, 4]);
            &["a", "a", "b", "c", "c"]
        } else {
            assert_eq!((&b[..], &c[..]), (&[4][..], &[2, 3][..]));
            &["a", "a", "c", "c", "b"]
        };
        assert_eq!(sources(&log).await, want);
        log.close().await.unwrap();
        drop(log);
        let (log, report) = DiskLog::open(config).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(sources(&log).await, want);
    }

    #[tokio::test]
    async fn refuses_appends_below_the_free_space_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let free = super::super::space::free_bytes(dir.path()).unwrap();
        let mut config = DiskLogConfig::new(dir.path());
        config.min_free_disk_bytes = free.saturating_mul(2);
        let (log, _) = DiskLog::open(config.clone()).unwrap();
        let err = log.append(batch("a", 3)).await.unwrap_err();
        assert!(
            matches!(err, ApiError::DiskFull { min_free_bytes, .. } if min_free_bytes == free * 2),
            "{err}"
        );
        assert!(err.to_string().contains("disk nearly full"), "{err}");
        assert_eq!(log.end_cursor().await.unwrap(), Cursor::START);
        assert_eq!(log.stats().await.unwrap().cached_entries, 0);
        log.close().await.unwrap();
        // Nothing of it reached the segments either.
        config.min_free_disk_bytes = 0;
        let (log, report) = DiskLog::open(config.clone()).unwrap();
        assert_eq!(report.records, 0);
        assert_eq!(log.append(batch("b", 2)).await.unwrap(), vec![0, 1]);
        assert_eq!(sources(&log).await, ["b", "b"]);
        log.close().await.unwrap();
        // A minimum the disk has room for lets appends through.
        config.min_free_disk_bytes = 1;
        let (log, _) = DiskLog::open(config).unwrap();
        assert_eq!(log.append(batch("c", 1)).await.unwrap(), vec![2]);
    }

    #[tokio::test]
    async fn recent_by_source_matches_the_backwards_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = DiskLogConfig::new(dir.path());
        config.cache_bytes = 64 << 10;
        config.storage.segment_bytes = 16 << 10;
        let (log, _) = DiskLog::open(config).unwrap();
        for round in 0..30i64 {
            let batch: Vec<Envelope> = (0..100i64)
                .map(|i| {
                    let n = round * 100 + i;
                    // Timestamps a little out of order.
                    let ts = n + (n % 7) * 3;
                    let source = format!("s{}", (n * n) % 13);
                    Envelope::log(ts, source, "0", Bytes::from_static(b"line"), LogType::Out)
                })
                .collect();
            log.append(batch).await.unwrap();
        }
        assert!(log.stats().await.unwrap().cached_entries < 3000);
        for sources in [
            vec!["s1"],
            vec!["s0", "s4", "s0"],
            vec!["nope"],
            vec!["s9", "s3"],
        ] {
            let selector = Selector {
                source_ids: sources.iter().map(|s| s.to_string()).collect(),
                ..Selector::default()
            };
            for (after, limit) in [(0, 5), (-1, 10_000), (2900, 50), (1000, 300), (0, 0)] {
                let fast = log.recent(&selector, after, limit).await.unwrap();
                let scan = super::super::recent_by_windows(&log, &selector, after, limit)
                    .await
                    .unwrap();
                assert_eq!(fast, scan, "{sources:?} after {after} limit {limit}");
            }
        }
    }

    #[tokio::test]
    async fn a_failed_append_is_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let config = DiskLogConfig::new(dir.path());
        let (log, good) = log_that_cannot_write(&config).await;
        assert!(matches!(
            log.append(batch("failed", 3)).await,
            Err(ApiError::Storage(_))
        ));
        log.inner.writer.lock().as_mut().unwrap().active = good;
        // Syncs (the fsync timer) do not write it later; the next batch
        // gets its positions.
        log.sync().await.unwrap();
        assert_eq!(log.end_cursor().await.unwrap(), Cursor::at(2));
        assert_eq!(log.append(batch("b", 1)).await.unwrap(), vec![2]);
        assert_eq!(sources(&log).await, ["a", "a", "b"]);
        log.close().await.unwrap();
        drop(log);
        let (log, report) = DiskLog::open(config).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(sources(&log).await, ["a", "a", "b"]);
    }
}
