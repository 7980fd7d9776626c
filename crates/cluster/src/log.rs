//! [`JetStreamLog`]: the [`Log`] of a cluster node, kept in the shared
//! JetStream stream (DESIGN.md §3).
//!
//! - A position is the stream sequence: it grows for the whole cluster,
//!   whichever node appended, so a cursor taken on one node resumes on any
//!   other. One envelope per message: positions stay consecutive, the
//!   per-subject cap counts envelopes, and a reader needs no second index.
//! - `append` stamps timestamps per source ([`sluice_log::nudge`]),
//!   encodes each envelope, and hands the messages to the node's
//!   [`Publisher`] buffer; it returns once they are buffered, with no
//!   positions (they are known only when the stream acknowledges), so a
//!   NATS outage never holds ingest up.
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
//! the stream's retention passed is told how many positions it lost
//! (`skipped`); holes the per-subject cap leaves inside the stream belong
//! to other sources and are not counted against a reader.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::Stream as JsStream;
use bytes::Bytes;
use envelope::{Entry, Envelope, Selector};
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use sluice_log::{
    nudge, ApiError, Cursor, Log, LogBounds, LogFuture, LogStats, Position, ReadPage, RecentCache,
    Retained, SourceMeta, StoredEntry,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::connect::{Cluster, SUBJECT_PREFIX};
use crate::publish::{Outgoing, Publisher};
use crate::subject;

/// How long a page read waits for the next message before it gives up.
const READ_WAIT: Duration = Duration::from_secs(5);
/// Per-source newest timestamps kept for stamping at most; beyond, the
/// table starts afresh (a source then may keep a tie once).
const MAX_STAMPED_SOURCES: usize = 100_000;
/// Sources whose first and last messages `meta` looks up at once.
const META_LOOKUPS: usize = 32;
/// Bytes of an envelope at most (the stream refuses larger messages).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

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
    /// The stream's oldest sequence, as last seen.
    oldest: Mutex<Position>,
    newest_ts: Mutex<HashMap<String, i64>>,
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
        let end = info.state.last_sequence + 1;
        let oldest = info.state.first_sequence.max(1);
        let publisher = Publisher::new(
            &cluster.config.node_id,
            cluster.config.buffer_bytes,
            Arc::clone(&metrics),
        );
        let (end_tx, _) = watch::channel(end);
        let log = JetStreamLog {
            inner: Arc::new(Inner {
                cache: RwLock::new(RecentCache::new(end, cluster.config.cache_bytes)),
                end: end_tx,
                oldest: Mutex::new(oldest),
                newest_ts: Mutex::new(HashMap::new()),
                publisher: publisher.clone(),
                cluster: cluster.clone(),
                metrics,
            }),
        };
        tokio::spawn(publisher.run(cluster.js.clone(), shutdown.clone(), flush));
        tokio::spawn(follow(log.clone(), end, shutdown.clone()));
        tokio::spawn(log.clone().tell_drops(shutdown));
        Ok(log)
    }

    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    fn stream(&self) -> &JsStream {
        &self.inner.cluster.stream
    }

    fn bounds(&self) -> LogBounds {
        LogBounds {
            oldest: Some(*self.inner.oldest.lock()),
            next: *self.inner.end.borrow(),
        }
    }

    /// Stamps and encodes a batch into messages.
    fn encode(&self, batch: Vec<Envelope>) -> Vec<Outgoing> {
        let mut newest = self.inner.newest_ts.lock();
        if newest.len() > MAX_STAMPED_SOURCES {
            newest.clear();
        }
        let mut out = Vec::with_capacity(batch.len());
        let mut too_large = 0u64;
        for mut env in batch {
            let slot = match newest.get_mut(&env.source_id) {
                Some(slot) => slot,
                None => newest.entry(env.source_id.clone()).or_insert(i64::MIN),
            };
            env.timestamp = nudge(slot, env.timestamp);
            let mut buf = Vec::with_capacity(env.approx_size() + 16);
            env.encode_into(&mut buf);
            if buf.len() > MAX_MESSAGE_BYTES {
                too_large += 1;
                continue;
            }
            out.push(Outgoing {
                subject: subject::subject_for(SUBJECT_PREFIX, &env),
                payload: Bytes::from(buf),
            });
        }
        if too_large > 0 {
            self.inner.metrics.count_drop("too_large", too_large);
        }
        out
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
        let messages = ordered(
            self.stream(),
            format!("{SUBJECT_PREFIX}.>"),
            DeliverPolicy::ByStartSequence {
                start_sequence: next.max(1),
            },
        )
        .await?;
        tokio::pin!(messages);
        let budget = limit.saturating_mul(16).clamp(1024, 65_536);
        let mut bytes = 0usize;
        for _ in 0..budget {
            if page.entries.len() >= limit || bytes >= sluice_log::PAGE_BYTES {
                break;
            }
            let Some((stored, pending)) = next_stored(&mut messages).await? else {
                break;
            };
            page.next_cursor = Cursor::after(stored.position);
            if selector.matches(&stored.entry) {
                bytes += stored.entry.envelope.approx_size();
                page.entries.push(stored);
            }
            if pending == 0 {
                break;
            }
        }
        page.caught_up = page.next_cursor.next() >= end.max(*self.inner.end.borrow());
        Ok(page)
    }
}

/// The next message of an ordered consumer as a stored entry, and how many
/// are pending after it; `None` when none came within [`READ_WAIT`] (the
/// stream is at its end).
async fn next_stored<S>(messages: &mut S) -> Result<Option<(StoredEntry, u64)>, ApiError>
where
    S: futures_util::Stream<Item = Result<async_nats::jetstream::Message, pull::OrderedError>>
        + Unpin,
{
    loop {
        let got = tokio::time::timeout(READ_WAIT, messages.next()).await;
        let msg = match got {
            Err(_) | Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(remote("reading the stream")(e)),
            Ok(Some(Ok(m))) => m,
        };
        let (position, pending) = match msg.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(_) => continue,
        };
        let Some(entry) = decode(position, msg.payload.clone()) else {
            // Not an envelope: skipped like a damaged record.
            continue;
        };
        return Ok(Some((entry, pending)));
    }
}

/// A stored entry from a message's payload.
pub fn decode(position: Position, payload: Bytes) -> Option<StoredEntry> {
    let envelope = Envelope::decode(payload).ok()?;
    let mut entry = Entry::new(envelope);
    entry.seq = position;
    Some(StoredEntry {
        position,
        entry: Arc::new(entry),
    })
}

/// An ordered (ephemeral, in-memory, single-replica) consumer's messages.
async fn ordered(
    stream: &JsStream,
    filter_subject: String,
    deliver_policy: DeliverPolicy,
) -> Result<pull::Ordered, ApiError> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject,
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(remote("creating a reader"))?;
    consumer
        .messages()
        .await
        .map_err(remote("reading the stream"))
}

fn remote<E: std::fmt::Display>(op: &'static str) -> impl Fn(E) -> ApiError {
    move |e| ApiError::Remote {
        op,
        detail: e.to_string(),
    }
}

/// The node's follower: reads every new message into the cache and moves
/// the end, until shutdown; an ordered consumer recreates itself across
/// server restarts, and a failed one is opened again where it stopped.
async fn follow(log: JetStreamLog, mut next: Position, shutdown: CancellationToken) {
    let mut refresh = tokio::time::interval(Duration::from_secs(5));
    loop {
        let opened = tokio::select! {
            o = ordered(
                log.stream(),
                format!("{SUBJECT_PREFIX}.>"),
                DeliverPolicy::ByStartSequence { start_sequence: next.max(1) },
            ) => o,
            _ = shutdown.cancelled() => return,
        };
        let mut messages = match opened {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "cannot follow the cluster's stream; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(msg)) => {
                        let Ok(info) = msg.info() else { continue };
                        let position = info.stream_sequence;
                        let pending = info.pending;
                        if position < next {
                            continue;
                        }
                        if let Some(stored) = decode(position, msg.payload.clone()) {
                            batch.push(stored);
                        }
                        next = position + 1;
                        if pending == 0 || batch.len() >= 512 {
                            log.publish_followed(std::mem::take(&mut batch), next);
                        }
                    }
                    Some(Err(e)) => {
                        log.publish_followed(std::mem::take(&mut batch), next);
                        warn!(error = %e, "following the cluster's stream failed; reopening");
                        break;
                    }
                    None => {
                        log.publish_followed(std::mem::take(&mut batch), next);
                        break;
                    }
                },
                _ = refresh.tick() => log.refresh_oldest().await,
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

impl JetStreamLog {
    /// Tells what the buffer dropped, in sluice's own stream, once the
    /// cluster takes messages again: `sluice: N messages dropped since T
    /// (the cluster did not acknowledge them)`, from source `sluice`.
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

    /// Adds what the follower read to the cache and moves the end.
    fn publish_followed(&self, batch: Vec<StoredEntry>, next: Position) {
        let evicted = self.inner.cache.write().extend(batch);
        drop(evicted);
        self.inner.end.send_if_modified(|end| {
            let moved = next > *end;
            *end = (*end).max(next);
            moved
        });
    }

    async fn refresh_oldest(&self) {
        let mut stream = self.stream().clone();
        if let Ok(info) = stream.info().await {
            let first = info.state.first_sequence.max(1);
            *self.inner.oldest.lock() = first;
            self.inner.cache.write().remove_below(first);
        }
    }
}

impl Log for JetStreamLog {
    fn append(&self, batch: Vec<Envelope>) -> LogFuture<'_, Vec<Position>> {
        let messages = self.encode(batch);
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
            if let Some(found) =
                self.read_source_cached(source_id, start_ns, end_ns, limit, descending)
            {
                return Ok(found);
            }
            let filter = subject::source_filter(SUBJECT_PREFIX, source_id);
            let mut stream = self.stream().clone();
            let info = stream.info().await.map_err(remote("stream info"))?.clone();
            if info.state.messages == 0 {
                return Ok(Vec::new());
            }
            let messages = ordered(self.stream(), filter, DeliverPolicy::All).await?;
            tokio::pin!(messages);
            let mut found: std::collections::VecDeque<StoredEntry> = Default::default();
            let cap = self.inner.cluster.config.max_per_subject.max(1) as usize * 2;
            for _ in 0..cap {
                let Some((stored, pending)) = next_stored(&mut messages).await? else {
                    break;
                };
                let ts = stored.entry.envelope.timestamp;
                if stored.entry.envelope.source_id == source_id && ts >= start_ns && ts < end_ns {
                    found.push_back(stored);
                    if descending && found.len() > limit {
                        found.pop_front();
                    }
                    if !descending && found.len() >= limit {
                        break;
                    }
                }
                if pending == 0 {
                    break;
                }
            }
            let mut found: Vec<StoredEntry> = found.into();
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
            // Stream sequences start at 1: the start of the log is 1.
            let cursor = Cursor::at(cursor.next().max(1));
            if let Some(page) = self
                .inner
                .cache
                .read()
                .read_from(bounds, cursor, selector, limit)
            {
                return Ok(page);
            }
            let floor = bounds.oldest.unwrap_or(1);
            let next = cursor.next().max(1);
            let (next, skipped) = if next < floor {
                (floor, floor - next)
            } else {
                (next, 0)
            };
            self.read_remote(next, skipped, selector, limit).await
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
            // Two lookups per subject (its first and last message), up to
            // META_LOOKUPS at once.
            let out = futures_util::stream::iter(counts.into_iter().take(limit))
                .map(|(source, subjects)| async move {
                    let mut meta = SourceMeta {
                        source_id: source,
                        count: 0,
                        oldest_timestamp: i64::MAX,
                        newest_timestamp: i64::MIN,
                    };
                    for (subj, n) in subjects {
                        meta.count += n;
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
            let cache = self.inner.cache.read();
            Ok(LogStats {
                next_position: info.state.last_sequence + 1,
                oldest_position: (info.state.messages > 0).then_some(info.state.first_sequence),
                entries: info.state.messages,
                sources: info.state.subjects_count,
                bytes: info.state.bytes,
                sync_errors: 0,
                memory_bytes: cache.bytes() as u64,
                cached_entries: cache.len() as u64,
            })
        })
    }
}

impl JetStreamLog {
    /// [`Log::read_source`] from the cache, when it can answer: it holds
    /// the whole stream, or (newest first) `limit` matches already — the
    /// newest of a source are in the cache while it keeps up.
    fn read_source_cached(
        &self,
        source_id: &str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        descending: bool,
    ) -> Option<Vec<StoredEntry>> {
        let cache = self.inner.cache.read();
        let whole = cache.first() <= *self.inner.oldest.lock()
            && cache.len() as u64 >= self.bounds().next.saturating_sub(cache.first());
        if !whole && !descending {
            return None;
        }
        let mut found: Vec<StoredEntry> = Vec::new();
        for e in cache.newest_first() {
            let env = &e.entry.envelope;
            if env.source_id == source_id && (start_ns..end_ns).contains(&env.timestamp) {
                found.push(e.clone());
                if descending && found.len() >= limit {
                    break;
                }
            }
        }
        if found.len() < limit && !whole {
            return None;
        }
        found.sort_by_key(|e| (e.entry.envelope.timestamp, e.position));
        if descending {
            found.reverse();
        }
        found.truncate(limit);
        Some(found)
    }

    /// The timestamps of a subject's first and last messages.
    async fn subject_ends(&self, subj: &str) -> [Option<i64>; 2] {
        let ts = |payload: Bytes| Envelope::decode(payload).ok().map(|e| e.timestamp);
        let first = self
            .stream()
            .get_first_raw_message_by_subject(subj, 1)
            .await
            .ok()
            .and_then(|m| ts(m.payload));
        let last = self
            .stream()
            .get_last_raw_message_by_subject(subj)
            .await
            .ok()
            .and_then(|m| ts(m.payload));
        [first, last]
    }
}

/// A consumer's key in the cursors bucket.
fn cursor_key(consumer: &str) -> String {
    format!("c.{}", subject::token(consumer))
}
