//! One container's log, followed from where it was left until the
//! container stops (or is removed, or the agent stops).
//!
//! The loop: ask the daemon for the logs from the saved position
//! ([`Resume::since`]), pass over the entries seen before ([`Replay`]),
//! join pieces into lines, store each read's lines as one batch, record
//! the new position with the log position of the batch's last line. When
//! the stream ends, inspect the container: stopped means done (the last
//! unfinished line is stored); running means the daemon's follow ended
//! early (it is known to stop after a json-file rotation), so reconnect
//! from the position. A stream silent for the silence period while the
//! container's log file changed is reconnected the same way.
//!
//! After a `kill -9` the saved position may be up to a second behind the
//! log: at start the follower reads the log after the saved log position
//! for this container's entries, and passes over the lines read again
//! until each of those is matched by payload (lines dropped over the rate
//! limit in between are passed over too: they were counted then). The
//! daemon re-sending entries after a rotation is handled by [`Recent`].
//!
//! The daemon sends each entry as its own chunk; a read gathers what
//! arrives within 2 ms into one append (one append per line cost 2.8x the
//! CPU in `bench/docker.sh`).
//!
//! One case is Docker's own: the daemon stamps stdout and stderr in two
//! copiers, so entries of the two streams can be stored microseconds out
//! of timestamp order, and `since` cannot ask for an entry older than the
//! newest one seen. A piece of a long line still waiting for its end when
//! the agent is killed is read again only if it is at or after the
//! position.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envelope::v2::Envelope;
use http_body_util::BodyExt;
use sluice_log::Position;
use sources::IngestContext;
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, EngineError};
use super::frames::FrameDecoder;
use super::identity::Identity;
use super::lines::{Line, LineJoiner};
use super::positions::{Positions, Recent, Replay, Resume, Saved};
use super::status::ContainerStatus;
use crate::stored::{self, AlreadyStored, StoredLine, Verdict};

/// Most lines stored as one batch.
const BATCH_LINES: usize = 1000;
/// Most bytes gathered from the stream before they are stored.
const GATHER_BYTES: usize = 256 * 1024;
/// How long a read gathers more of the stream before storing it.
const GATHER_TIME: Duration = Duration::from_millis(2);
/// Waits between reconnects after an error (growing up to the last).
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

/// How a follow ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The container stopped and everything it wrote is stored.
    Stopped,
    /// The container no longer exists.
    Removed,
    /// The agent is stopping.
    Shutdown,
}

/// Everything one follower needs.
pub struct Follower {
    pub engine: Engine,
    pub ingest: IngestContext,
    pub positions: Arc<Positions>,
    pub status: Arc<ContainerStatus>,
    /// `sluice_ingress_{envelopes,bytes}_total{protocol="docker"}`.
    pub counters: metrics::IngressCounters,
    pub container_id: String,
    pub tty: bool,
    pub log_path: String,
    /// When the container was created (ns; 0 if unknown).
    pub created_ns: i64,
    pub identity: Identity,
    /// Where to start when no position is saved.
    pub start: Resume,
    /// How long a stream may be silent while the log file changes.
    pub silence: Duration,
    /// Told when the daemon reports the container died: a follow the
    /// daemon registered while the container was stopping is never closed,
    /// so the follower stops waiting for more a moment after this.
    pub died: Arc<tokio::sync::Notify>,
    pub shutdown: CancellationToken,
}

/// How long a stream may be quiet after the container died before the
/// follower stops waiting for its end.
const AFTER_DEATH: Duration = Duration::from_secs(1);

/// Where the follower stands: the live position and the lines of an
/// earlier run that the log already has.
struct Progress {
    resume: Resume,
    /// Lines a run killed before its next save stored, passed over when
    /// read again.
    already_stored: AlreadyStored,
    log_position: Option<Position>,
    joiner: LineJoiner,
    recent: Recent,
}

impl Follower {
    pub async fn run(self) -> Ended {
        let mut progress = match self.positions.get(&self.container_id) {
            Some(saved) => {
                let already_stored = self.stored_since(&saved).await;
                Progress {
                    resume: saved.resume,
                    already_stored: AlreadyStored::new(already_stored),
                    log_position: saved.log_position,
                    joiner: LineJoiner::new(self.ingest.limits.max_message),
                    recent: Recent::default(),
                }
            }
            None => {
                // Read from its first line: a run killed before it saved
                // this container's position may have stored some already.
                let already_stored = if self.start == Resume::default() {
                    self.stored_from(self.created_ns).await
                } else {
                    Vec::new()
                };
                Progress {
                    resume: self.start,
                    already_stored: AlreadyStored::new(already_stored),
                    log_position: None,
                    joiner: LineJoiner::new(self.ingest.limits.max_message),
                    recent: Recent::default(),
                }
            }
        };
        if !progress.already_stored.is_empty() {
            tracing::info!(
                container = %self.identity.instance_id,
                lines = progress.already_stored.len(),
                "lines stored before the agent stopped are not read again"
            );
        }
        let mut failures = 0usize;
        let mut last_read = false;
        loop {
            if self.shutdown.is_cancelled() {
                return Ended::Shutdown;
            }
            let streamed = self.stream_once(&mut progress).await;
            match streamed {
                Ok(StreamEnd::Shutdown) => return Ended::Shutdown,
                Ok(StreamEnd::Silent) => continue,
                Ok(StreamEnd::Eof) => failures = 0,
                Err(err) => {
                    if matches!(err, FollowError::Engine(EngineError::NotFound { .. })) {
                        self.finish(&mut progress).await;
                        return Ended::Removed;
                    }
                    self.status.set_error(err.to_string());
                    tracing::debug!(container = %self.identity.instance_id, error = %err, "log stream failed");
                    let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
                    failures += 1;
                    if self.sleep(wait).await {
                        return Ended::Shutdown;
                    }
                    continue;
                }
            }
            match self.engine.inspect(&self.container_id).await {
                Ok(c) if c.state.running => {
                    // The daemon ended the follow early (or the container
                    // started again): reconnect.
                    last_read = false;
                    if self.sleep(BACKOFF[0]).await {
                        return Ended::Shutdown;
                    }
                }
                Ok(_) if !last_read => {
                    // The daemon closes a follow when the container stops,
                    // sometimes before its last output reached the log
                    // file: one more read (of a stopped container, which
                    // the daemon ends by itself) takes what came after.
                    last_read = true;
                }
                Ok(_) => {
                    self.finish(&mut progress).await;
                    return Ended::Stopped;
                }
                Err(EngineError::NotFound { .. }) => {
                    self.finish(&mut progress).await;
                    return Ended::Removed;
                }
                Err(err) => {
                    self.status.set_error(err.to_string());
                    if self.sleep(BACKOFF[BACKOFF.len() - 1]).await {
                        return Ended::Shutdown;
                    }
                }
            }
        }
    }

    /// True when shutdown came first.
    async fn sleep(&self, wait: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => true,
            _ = tokio::time::sleep(wait) => false,
        }
    }

    /// One connection to the logs endpoint, read until it ends.
    async fn stream_once(&self, progress: &mut Progress) -> Result<StreamEnd, FollowError> {
        let mut body = self
            .engine
            .logs(&self.container_id, &progress.resume.since())
            .await?;
        let mut decoder = FrameDecoder::new(self.tty);
        let mut replay = Replay::new(progress.resume);
        let mut file_seen = file_state(&self.log_path);
        let mut died = false;
        loop {
            let wait = if died { AFTER_DEATH } else { self.silence };
            let frame = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(StreamEnd::Shutdown),
                _ = self.died.notified(), if !died => {
                    died = true;
                    continue;
                }
                frame = tokio::time::timeout(wait, body.frame()) => frame,
            };
            match frame {
                Err(_) if died => return self.ended(&mut decoder, &mut replay, progress).await,
                Err(_silent) => {
                    let now = file_state(&self.log_path);
                    if now.is_none() || now != file_seen {
                        return Ok(StreamEnd::Silent);
                    }
                    file_seen = now;
                    // An unchanged file: the follow may have missed the
                    // container's end.
                    if matches!(self.engine.inspect(&self.container_id).await, Ok(c) if !c.state.running)
                    {
                        return self.ended(&mut decoder, &mut replay, progress).await;
                    }
                }
                Ok(None) => return self.ended(&mut decoder, &mut replay, progress).await,
                Ok(Some(Err(err))) => return Err(FollowError::Stream(err.to_string())),
                Ok(Some(Ok(frame))) => {
                    self.take(frame, &mut decoder);
                    // The daemon sends each entry as its own chunk: gather
                    // what arrives within GATHER_TIME, so one append stores
                    // many lines instead of one.
                    let mut after = None;
                    let until = tokio::time::Instant::now() + GATHER_TIME;
                    while decoder.buffered() < GATHER_BYTES {
                        match tokio::time::timeout_at(until, body.frame()).await {
                            Ok(Some(Ok(frame))) => self.take(frame, &mut decoder),
                            Ok(other) => {
                                after = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.read_entries(&mut decoder, &mut replay, progress)
                        .await?;
                    match after {
                        Some(None) => return self.ended(&mut decoder, &mut replay, progress).await,
                        Some(Some(Err(err))) => return Err(FollowError::Stream(err.to_string())),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Counts a frame's bytes and hands them to the decoder.
    fn take(&self, frame: hyper::body::Frame<bytes::Bytes>, decoder: &mut FrameDecoder) {
        if let Ok(data) = frame.into_data() {
            self.status.add_bytes(data.len());
            self.counters.bytes.inc_by(data.len() as u64);
            decoder.push(&data);
        }
    }

    /// The end of a stream: a raw stream's last entry is stored.
    async fn ended(
        &self,
        decoder: &mut FrameDecoder,
        replay: &mut Replay,
        progress: &mut Progress,
    ) -> Result<StreamEnd, FollowError> {
        let mut lines = Vec::new();
        if let Some(chunk) = decoder.finish().map_err(FollowError::Frame)? {
            if !replay.seen(chunk.timestamp_ns) {
                progress.resume.advance(chunk.timestamp_ns);
                lines.extend(progress.joiner.push(chunk));
            }
        }
        self.store(progress, lines).await;
        Ok(StreamEnd::Eof)
    }

    /// Turns every whole entry in the decoder into lines and stores them.
    async fn read_entries(
        &self,
        decoder: &mut FrameDecoder,
        replay: &mut Replay,
        progress: &mut Progress,
    ) -> Result<(), FollowError> {
        let mut lines = Vec::new();
        while let Some(chunk) = decoder.next_chunk().map_err(FollowError::Frame)? {
            if replay.seen(chunk.timestamp_ns) {
                continue;
            }
            let again = progress.recent.seen_again(
                chunk.timestamp_ns,
                chunk.stream == envelope::v2::LogType::Err,
                chunk.text.len(),
            );
            // At the newest timestamp only a whole line counts: equal
            // pieces of one long line share timestamp, stream and length.
            let resent = again
                && (chunk.timestamp_ns < progress.resume.timestamp_ns
                    || (chunk.timestamp_ns == progress.resume.timestamp_ns
                        && chunk.complete
                        && !progress.joiner.has_pending()));
            if resent {
                // The daemon sends old entries again (a rotation): pass
                // over everything up to the position, as after a reconnect.
                self.ingest.metrics.error("docker_resent");
                *replay = Replay::new(progress.resume);
                replay.seen(chunk.timestamp_ns);
                continue;
            }
            progress.resume.advance(chunk.timestamp_ns);
            if let Some(line) = progress.joiner.push(chunk) {
                lines.push(line);
                if lines.len() >= BATCH_LINES {
                    self.store(progress, std::mem::take(&mut lines)).await;
                }
            }
        }
        self.store(progress, lines).await;
        Ok(())
    }

    /// Stores the last unfinished lines of a stopped container.
    async fn finish(&self, progress: &mut Progress) {
        let lines = progress.joiner.flush();
        self.store(progress, lines).await;
    }

    /// Stores lines (passing over those a crashed run already stored; the
    /// ingest context drops those over the app's rate limit) and records
    /// the position they reach.
    async fn store(&self, progress: &mut Progress, lines: Vec<Line>) {
        if lines.is_empty() {
            return;
        }
        let mut batch = Vec::with_capacity(lines.len());
        let mut cut = 0u64;
        for line in lines {
            if self.already_stored(progress, &line) {
                continue;
            }
            cut += u64::from(line.cut);
            batch.push(self.envelope(line));
        }
        if cut > 0 {
            self.ingest.metrics.count_drop("truncated", cut);
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            self.counters.envelopes.inc_by(n);
            match self.ingest.store(batch).await {
                Ok(positions) => {
                    let stored = positions.iter().flatten().count() as u64;
                    self.status.add_lines(stored);
                    self.status.add_dropped(n - stored);
                    progress.log_position =
                        sources::newest_stored(&positions).or(progress.log_position);
                }
                // Counted by the ingest context as every source's refusals
                // are; the position moves on (the agent never blocks on
                // a full disk).
                Err(err) => self.status.set_error(err.to_string()),
            }
        }
        self.positions.set(
            &self.container_id,
            Saved {
                source_id: self.identity.source_id.clone(),
                instance_id: self.identity.instance_id.clone(),
                resume: progress.resume,
                log_position: progress.log_position,
            },
        );
        self.status.set_resume(progress.resume);
    }

    /// Whether a line read again was stored (or dropped) by a run killed
    /// before its next save.
    fn already_stored(&self, progress: &mut Progress, line: &Line) -> bool {
        match progress
            .already_stored
            .check(&line.text, !self.ingest.limits.rate.is_off())
        {
            Verdict::New => false,
            Verdict::Stored(position) => {
                progress.log_position = position.or(progress.log_position);
                true
            }
        }
    }

    fn envelope(&self, line: Line) -> Envelope {
        let mut env = Envelope::log(
            line.timestamp_ns,
            self.identity.source_id.clone(),
            self.identity.instance_id.clone(),
            line.text,
            line.stream,
        );
        env.tags = self.identity.tags.clone();
        env
    }

    /// What a run killed before saving this container's log position
    /// stored: its lines stamped `from_ns` or later.
    async fn stored_from(&self, from_ns: i64) -> Vec<StoredLine> {
        let id = &self.identity;
        let ours = |e: &Envelope| e.instance_id == id.instance_id;
        stored::stored_from(&self.ingest, &id.source_id, ours, from_ns).await
    }

    /// What a run killed before its next save stored: this container's
    /// lines after the saved log position.
    async fn stored_since(&self, saved: &Saved) -> Vec<StoredLine> {
        let Some(after) = saved.log_position else {
            return self.stored_from(saved.resume.timestamp_ns).await;
        };
        let ours = |e: &Envelope| e.instance_id == saved.instance_id;
        stored::stored_after(&self.ingest, &saved.source_id, ours, after).await
    }
}

enum StreamEnd {
    Eof,
    Silent,
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the log stream broke: {0}")]
    Stream(String),
    #[error("bad log stream: {0}")]
    Frame(super::frames::FrameError),
}

/// The log file's length and modification time, if it can be read.
fn file_state(path: &str) -> Option<(u64, SystemTime)> {
    if path.is_empty() {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}
