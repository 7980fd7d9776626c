//! [`JetStreamLog`]: the [`Log`] of a cluster node, kept in the shared
//! JetStream stream (DESIGN.md §3).
//!
//! - A position is the stream sequence of the message and the envelope's
//!   place in it ([`crate::message`]): it grows for the whole cluster,
//!   whichever node appended, so a cursor taken on one node resumes on any
//!   other. Runs of envelopes with one subject share a message (up to
//!   1,024), which is what makes the cluster fast; the per-subject cap
//!   therefore counts messages.
//! - `append` stamps timestamps per source ([`sluice_log::nudge`]), packs
//!   the batch into messages and hands them to the node's [`Publisher`]
//!   buffer; it returns once they are buffered, with no positions (they
//!   are known only when the stream acknowledges), so a NATS outage never
//!   holds ingest up.
//! - One follower per node ([`follow`]) reads the whole stream from where
//!   it was when the node started, through an ordered consumer (no durable
//!   state on the servers), into a byte-bounded [`RecentCache`]; live
//!   tails, the firehose and drains that keep up read from there, and
//!   `wait_beyond` wakes on it. Older reads (a drain catching up, a
//!   cursor from before the node started) open an ordered consumer at the
//!   cursor for the page.
//! - Log Cache reads of one source use the subject filter `*.<source>`
//!   (its app logs, events and metrics); `meta` asks the stream for its
//!   subjects' counts and their first and last messages.
//! - Committed cursors live in the `sluice_cursors` bucket, so a drain
//!   taken over by another node resumes where the last owner committed.
//!
//! Drains are not JetStream durable consumers, as the issue first
//! sketched. A drain already is a durable cursor into [`Log`]
//! (`commit`/`committed`), so the drain manager runs unchanged on either
//! log; and a durable consumer is a replicated state machine of its own on
//! the servers (with replicas 3, one more Raft group per drain: a thousand
//! drains would be a thousand groups), while the cursors of every drain
//! share one bucket. A drain that keeps up reads the node's cache like a
//! live tail, so the stream is read once per node however many drains it
//! has; only a drain that fell behind reads the stream itself, through an
//! ordered consumer at its cursor. What a per-drain filter subject would
//! have saved (reading other apps' messages) a drain still saves by its
//! selector, in memory. The one loss is server-side acknowledgement
//! tracking, which the lease and the committed cursor replace.
//!
//! Retention is the stream's own (`max_age`, `max_bytes`, per-subject
//! cap): `retain` only reports the oldest position. A reader whose cursor
//! the stream's retention passed is told how many entries it lost
//! (`skipped`: the messages removed times the envelopes per message this
//! node has seen on average, an estimate, since the removed messages
//! cannot be counted any more); holes the per-subject cap leaves inside
//! the stream belong to other sources and are not counted against a
//! reader. A drain's `behind` is estimated the same way ([`Log::distance`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream as JsStream;
use bytes::Bytes;
use envelope::{Envelope, Selector};
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use sluice_log::{
    nudge, recent_by_windows, ApiError, Cursor, Log, LogBounds, LogFuture, LogStats, Position,
    ReadPage, RecentCache, Retained, SourceMeta, StoredEntry,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connect::{Cluster, SUBJECT_PREFIX};
use crate::follow::{follow, next_message, ordered, remote};
use crate::message::{index_of, pack, position, seq_of, unpack};
use crate::publish::Publisher;
use crate::subject;

/// Per-source newest timestamps kept for stamping at most; beyond, the
/// table starts afresh (a source then may keep a tie once).
const MAX_STAMPED_SOURCES: usize = 100_000;
/// Sources whose first and last messages `meta` looks up at once.
const META_LOOKUPS: usize = 32;

/// The cluster's log. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamLog {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Cluster,
    publisher: Publisher,
    cache: RwLock<RecentCache>,
    /// The position after the newest entry the follower has seen.
    end: watch::Sender<Position>,
    /// The stream's oldest position, as last seen.
    oldest: Mutex<Position>,
    newest_ts: Mutex<HashMap<String, i64>>,
    /// Messages and envelopes the follower read (the envelopes per message
    /// for estimates).
    messages_seen: AtomicU64,
    envelopes_seen: AtomicU64,
    metrics: Arc<metrics::Metrics>,
}

impl JetStreamLog {
    /// Starts the node's publisher and follower (both stop with
    /// `shutdown`; the publisher flushes for up to `flush` first).
    pub async fn start(
        cluster: Cluster,
        metrics: Arc<metrics::Metrics>,
        shutdown: CancellationToken,
        flush: Duration,
    ) -> Result<Self, ApiError> {
        let mut stream = cluster.stream.clone();
        let info = stream.info().await.map_err(remote("stream info"))?;
        let next_seq = info.state.last_sequence + 1;
        let end = position(next_seq, 0);
        let oldest = position(info.state.first_sequence.max(1), 0);
        let publisher = Publisher::new(
            &cluster.config.node_id,
            cluster.config.buffer_bytes,
            Arc::clone(&metrics),
        );
        let (end_tx, _) = watch::channel(end);
        let log = JetStreamLog {
            inner: Arc::new(Inner {
                cache: RwLock::new(RecentCache::sparse(end, cluster.config.cache_bytes)),
                end: end_tx,
                oldest: Mutex::new(oldest),
                newest_ts: Mutex::new(HashMap::new()),
                messages_seen: AtomicU64::new(0),
                envelopes_seen: AtomicU64::new(0),
                publisher: publisher.clone(),
                cluster: cluster.clone(),
                metrics,
            }),
        };
        tokio::spawn(publisher.run(cluster.js.clone(), shutdown.clone(), flush));
        tokio::spawn(follow(log.clone(), next_seq, shutdown.clone()));
        tokio::spawn(log.clone().tell_drops(shutdown));
        Ok(log)
    }

    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    pub(crate) fn stream(&self) -> &JsStream {
        &self.inner.cluster.stream
    }

    fn bounds(&self) -> LogBounds {
        LogBounds {
            oldest: Some(*self.inner.oldest.lock()),
            next: *self.inner.end.borrow(),
        }
    }

    /// Envelopes per message, as this node has seen them (at least 1).
    fn per_message(&self) -> u64 {
        let messages = self.inner.messages_seen.load(Ordering::Relaxed).max(1);
        (self.inner.envelopes_seen.load(Ordering::Relaxed) / messages).max(1)
    }

    /// Stamps a batch's timestamps per source.
    fn stamp(&self, batch: &mut [Envelope]) {
        let mut newest = self.inner.newest_ts.lock();
        if newest.len() > MAX_STAMPED_SOURCES {
            newest.clear();
        }
        for env in batch {
            let slot = match newest.get_mut(&env.source_id) {
                Some(slot) => slot,
                None => newest.entry(env.source_id.clone()).or_insert(i64::MIN),
            };
            env.timestamp = nudge(slot, env.timestamp);
        }
    }

    /// What the follower read: into the cache, and the end moves.
    pub(crate) fn followed(&self, batch: Vec<StoredEntry>, messages: u64, next: Position) {
        self.inner
            .messages_seen
            .fetch_add(messages, Ordering::Relaxed);
        self.inner
            .envelopes_seen
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let evicted = self.inner.cache.write().extend(batch);
        drop(evicted);
        self.inner.end.send_if_modified(|end| {
            let moved = next > *end;
            *end = (*end).max(next);
            moved
        });
    }

    /// Reads the stream's oldest sequence (retention moves it); returns
    /// its last sequence, when the stream answered.
    pub(crate) async fn refresh_oldest(&self) -> Option<u64> {
        let mut stream = self.stream().clone();
        let info = tokio::time::timeout(Duration::from_secs(5), stream.info())
            .await
            .ok()?
            .ok()?;
        let first = position(info.state.first_sequence.max(1), 0);
        *self.inner.oldest.lock() = first;
        self.inner.cache.write().remove_below(first);
        Some(info.state.last_sequence)
    }

    /// A page read from the stream itself, from `next` on.
    async fn read_remote(
        &self,
        next: Position,
        skipped: u64,
        selector: &Selector,
        limit: usize,
    ) -> Result<ReadPage, ApiError> {
        let end = *self.inner.end.borrow();
        let mut page = ReadPage {
            entries: Vec::new(),
            next_cursor: Cursor::at(next),
            skipped,
            caught_up: false,
        };
        let mut messages =
            ordered(self.stream(), format!("{SUBJECT_PREFIX}.>"), seq_of(next)).await?;
        let budget = limit.saturating_mul(16).clamp(1024, 65_536);
        let (mut bytes, mut examined) = (0usize, 0usize);
        'messages: while let Some(read) = next_message(&mut messages).await? {
            let entries = unpack(read.seq, read.payload);
            if entries.is_empty() {
                // Not an envelope batch: passed over like a damaged record.
                page.skipped += 1;
            }
            for stored in entries {
                if stored.position < next {
                    continue;
                }
                if page.entries.len() >= limit
                    || bytes >= sluice_log::PAGE_BYTES
                    || examined >= budget
                {
                    break 'messages;
                }
                examined += 1;
                page.next_cursor = Cursor::after(stored.position);
                if selector.matches(&stored.entry) {
                    bytes += stored.entry.envelope.approx_size();
                    page.entries.push(stored);
                }
            }
            page.next_cursor = page.next_cursor.max(Cursor::at(position(read.seq + 1, 0)));
            if read.pending == 0 {
                break;
            }
        }
        page.caught_up = page.next_cursor.next() >= end.max(*self.inner.end.borrow());
        Ok(page)
    }

    /// Tells what the buffer dropped, in sluice's own stream, once the
    /// cluster takes messages again: `sluice: N messages dropped since T
    /// (…)`, from source `sluice`.
    async fn tell_drops(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if self.inner.publisher.degraded() {
                continue;
            }
            if let Some((n, since)) = self.inner.publisher.take_untold_drops() {
                let text = format!(
                    "{} (the cluster's stream did not acknowledge them in time: the node's buffer was full)",
                    codec::notice::dropped(n, since)
                );
                let mut env = Envelope::log(
                    envelope::time::now_ns(),
                    "sluice",
                    "",
                    Bytes::from(text),
                    envelope::LogType::Err,
                );
                env.tags.insert(
                    envelope::tags::SOURCE_TYPE.to_owned(),
                    codec::notice::SOURCE_TYPE.to_owned(),
                );
                let _ = self.append(vec![env]).await;
            }
        }
    }

    /// The newest entries in the cache that `keep`, newest first, up to
    /// `limit`; and whether the cache holds the whole stream (then what it
    /// lacks does not exist).
    fn scan_cache(
        &self,
        limit: usize,
        keep: impl Fn(&StoredEntry) -> bool,
    ) -> (Vec<StoredEntry>, bool) {
        let cache = self.inner.cache.read();
        let whole = cache.first() <= *self.inner.oldest.lock();
        let found: Vec<StoredEntry> = cache
            .newest_first()
            .filter(|e| keep(e))
            .take(limit)
            .cloned()
            .collect();
        (found, whole)
    }

    /// The timestamps of a subject's first and last messages.
    async fn subject_ends(&self, subj: &str) -> [Option<i64>; 2] {
        let first_ts = |payload: Bytes| {
            unpack(0, payload)
                .first()
                .map(|e| e.entry.envelope.timestamp)
        };
        let last_ts = |payload: Bytes| {
            unpack(0, payload)
                .last()
                .map(|e| e.entry.envelope.timestamp)
        };
        let first = self
            .stream()
            .get_first_raw_message_by_subject(subj, 1)
            .await
            .ok()
            .and_then(|m| first_ts(m.payload));
        let last = self
            .stream()
            .get_last_raw_message_by_subject(subj)
            .await
            .ok()
            .and_then(|m| last_ts(m.payload));
        [first, last]
    }
}

impl Log for JetStreamLog {
    fn append(&self, mut batch: Vec<Envelope>) -> LogFuture<'_, Vec<Position>> {
        self.stamp(&mut batch);
        let (messages, too_large) = pack(SUBJECT_PREFIX, batch);
        if too_large > 0 {
            self.inner.metrics.count_drop("too_large", too_large);
        }
        self.inner.publisher.push(messages);
        Box::pin(async { Ok(Vec::new()) })
    }

    fn read_source<'a>(
        &'a self,
        source_id: &'a str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        descending: bool,
    ) -> LogFuture<'a, Vec<StoredEntry>> {
        Box::pin(async move {
            if limit == 0 || start_ns >= end_ns {
                return Ok(Vec::new());
            }
            let of_source = |e: &StoredEntry| {
                e.entry.envelope.source_id == source_id
                    && (start_ns..end_ns).contains(&e.entry.envelope.timestamp)
            };
            // From the cache when it can answer: the newest `limit` are
            // there, or the cache holds the whole stream.
            let (mut found, whole) =
                self.scan_cache(if descending { limit } else { usize::MAX }, of_source);
            if !(whole || (descending && found.len() >= limit)) {
                // The stream itself: the source's subjects from their start.
                found.clear();
                let mut kept: VecDeque<StoredEntry> = VecDeque::new();
                let filter = subject::source_filter(SUBJECT_PREFIX, source_id);
                let mut messages = ordered(self.stream(), filter, 1).await?;
                let cap = self.inner.cluster.config.max_per_subject.max(1) as usize * 2;
                'read: for _ in 0..cap {
                    let Some(read) = next_message(&mut messages).await? else {
                        break;
                    };
                    for stored in unpack(read.seq, read.payload) {
                        if of_source(&stored) {
                            kept.push_back(stored);
                            if descending && kept.len() > limit {
                                kept.pop_front();
                            }
                            if !descending && kept.len() >= limit {
                                break 'read;
                            }
                        }
                    }
                    if read.pending == 0 {
                        break;
                    }
                }
                found = kept.into();
            }
            found.sort_by_key(|e| (e.entry.envelope.timestamp, e.position));
            if descending {
                found.reverse();
            }
            found.truncate(limit);
            Ok(found)
        })
    }

    fn read_from<'a>(
        &'a self,
        cursor: Cursor,
        selector: &'a Selector,
        limit: usize,
    ) -> LogFuture<'a, ReadPage> {
        Box::pin(async move {
            let bounds = self.bounds();
            let floor = bounds.oldest.unwrap_or(position(1, 0));
            // Below the oldest message: what retention removed (an
            // estimate in envelopes, see the module docs).
            let mut next = cursor.next().max(position(1, 0)).min(bounds.next);
            let mut skipped = 0;
            if next < floor {
                skipped = (seq_of(floor) - seq_of(next)) * self.per_message();
                skipped = skipped.saturating_sub(index_of(next));
                next = floor;
            }
            let cached =
                self.inner
                    .cache
                    .read()
                    .read_from(bounds, Cursor::at(next), selector, limit);
            match cached {
                Some(mut page) => {
                    page.skipped += skipped;
                    Ok(page)
                }
                None => self.read_remote(next, skipped, selector, limit).await,
            }
        })
    }

    fn end_cursor(&self) -> LogFuture<'_, Cursor> {
        let end = *self.inner.end.borrow();
        Box::pin(async move { Ok(Cursor::at(end)) })
    }

    fn wait_beyond(&self, cursor: Cursor) -> LogFuture<'_, Cursor> {
        let mut rx = self.inner.end.subscribe();
        Box::pin(async move {
            let end = rx
                .wait_for(|end| *end > cursor.next())
                .await
                .map_err(|_| ApiError::Closed)?;
            Ok(Cursor::at(*end))
        })
    }

    fn retain(&self, _now_ns: i64) -> LogFuture<'_, Retained> {
        Box::pin(async move {
            self.refresh_oldest().await;
            Ok(Retained {
                removed: 0,
                oldest_position: Some(*self.inner.oldest.lock()),
            })
        })
    }

    fn commit<'a>(&'a self, consumer: &'a str, cursor: Cursor) -> LogFuture<'a, ()> {
        Box::pin(async move {
            self.inner
                .cluster
                .cursors
                .put(cursor_key(consumer), Bytes::from(cursor.to_string()))
                .await
                .map_err(remote("committing a cursor"))?;
            Ok(())
        })
    }

    fn forget<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, bool> {
        Box::pin(async move {
            let had = self.committed(consumer).await?.is_some();
            self.inner
                .cluster
                .cursors
                .purge(cursor_key(consumer))
                .await
                .map_err(remote("forgetting a cursor"))?;
            Ok(had)
        })
    }

    fn committed<'a>(&'a self, consumer: &'a str) -> LogFuture<'a, Option<Cursor>> {
        Box::pin(async move {
            let value = self
                .inner
                .cluster
                .cursors
                .get(cursor_key(consumer))
                .await
                .map_err(remote("reading a cursor"))?;
            Ok(value.and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
        })
    }

    fn meta<'a>(&'a self, after: Option<&'a str>, limit: usize) -> LogFuture<'a, Vec<SourceMeta>> {
        Box::pin(async move {
            let mut counts: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
            let subjects = self
                .stream()
                .info_with_subjects(format!("{SUBJECT_PREFIX}.*.*"))
                .await
                .map_err(remote("stream subjects"))?;
            tokio::pin!(subjects);
            while let Some(s) = subjects.next().await {
                let (subj, n) = s.map_err(remote("stream subjects"))?;
                if let Some(source) = subject::source_of(SUBJECT_PREFIX, &subj) {
                    if after.is_none_or(|a| source.as_str() > a) {
                        counts.entry(source).or_default().push((subj, n as u64));
                    }
                }
            }
            let per_message = self.per_message();
            // Two lookups per subject (its first and last message), up to
            // META_LOOKUPS at once. Counts are messages times the
            // envelopes per message seen (an estimate).
            let out = futures_util::stream::iter(counts.into_iter().take(limit))
                .map(|(source, subjects)| async move {
                    let mut meta = SourceMeta {
                        source_id: source,
                        count: 0,
                        oldest_timestamp: i64::MAX,
                        newest_timestamp: i64::MIN,
                    };
                    for (subj, n) in subjects {
                        meta.count += n * per_message;
                        for ts in self.subject_ends(&subj).await.into_iter().flatten() {
                            meta.oldest_timestamp = meta.oldest_timestamp.min(ts);
                            meta.newest_timestamp = meta.newest_timestamp.max(ts);
                        }
                    }
                    if meta.oldest_timestamp > meta.newest_timestamp {
                        meta.oldest_timestamp = 0;
                        meta.newest_timestamp = 0;
                    }
                    meta
                })
                .buffered(META_LOOKUPS)
                .collect::<Vec<_>>()
                .await;
            Ok(out)
        })
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        Box::pin(async move {
            let mut stream = self.stream().clone();
            let info = stream.info().await.map_err(remote("stream info"))?;
            let per_message = self.per_message();
            let cache = self.inner.cache.read();
            Ok(LogStats {
                next_position: position(info.state.last_sequence + 1, 0),
                oldest_position: (info.state.messages > 0)
                    .then(|| position(info.state.first_sequence, 0)),
                entries: info.state.messages * per_message,
                sources: info.state.subjects_count,
                bytes: info.state.bytes,
                sync_errors: 0,
                memory_bytes: cache.bytes() as u64,
                cached_entries: cache.len() as u64,
            })
        })
    }

    fn recent<'a>(
        &'a self,
        selector: &'a Selector,
        after_ns: i64,
        limit: usize,
    ) -> LogFuture<'a, Vec<StoredEntry>> {
        Box::pin(async move {
            let (mut found, whole) = self.scan_cache(limit, |e| {
                e.entry.envelope.timestamp > after_ns && selector.matches(&e.entry)
            });
            if found.len() >= limit || whole {
                found.reverse();
                return Ok(found);
            }
            recent_by_windows(self, selector, after_ns, limit).await
        })
    }

    fn distance(&self, from: Position, to: Position) -> u64 {
        match seq_of(to).saturating_sub(seq_of(from)) {
            0 => index_of(to).saturating_sub(index_of(from)),
            messages => messages * self.per_message(),
        }
    }
}

/// A consumer's key in the cursors bucket.
fn cursor_key(consumer: &str) -> String {
    format!("c.{}", subject::token(consumer))
}
