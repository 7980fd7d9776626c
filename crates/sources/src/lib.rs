//! Ingest: turn bytes from the outside world into envelopes on the bus.
//!
//! - [`syslog_tcp`] and [`syslog_udp`]: syslog listeners (RFC 5424 / 3164,
//!   octet-counted or LF framing detected per frame);
//! - [`http_body`]: decoding of `POST /logs` bodies (logplex-1, NDJSON,
//!   text), used by the server's HTTP handler;
//! - [`statsd`]: statsd lines over UDP, as statsd-injector takes them;
//! - [`mapping`]: how a syslog message becomes a Loggregator envelope;
//! - [`limits`]: every ingest limit with its default;
//! - [`rate`]: noisy-neighbour limits (a leaky bucket of lines per
//!   second per app, drops told in the app's stream);
//! - [`activity`]: lines and errors per source over the last hour;
//! - [`runs`]: a batch's runs of one source's lines;
//! - [`connections`]: the open connections of a listener, and which one to
//!   close at the limit (syslog TCP here, HTTP in the server).
//!
//! Every source publishes through [`IngestContext::publish`], the one place
//! that bounds what comes in (field limits, body bounds) and appends it to
//! the log, which gives each entry its key and position and makes its
//! timestamp strictly increasing per source ([`sluice_log::Log::append`]:
//! the log already keeps per-source state, so it does it in the same
//! lookup). Consumers read the log, so a sender waits only for the log's
//! write (never for a consumer), and a batch the log refuses (a full disk,
//! an I/O error) is dropped, counted and reported to the caller.
//! Bad input is counted in the shared [`metrics::Metrics`] and never panics.
//! This crate must never depend on the drains or server code.

pub mod activity;
pub mod connections;
pub mod http_body;
pub mod limits;
pub mod mapping;
pub mod rate;
pub mod runs;
pub mod statsd;
pub mod syslog_tcp;
pub mod syslog_udp;

pub use limits::IngestLimits;

use std::sync::Arc;

use metrics::Metrics;
use sluice_log::{ApiError, Log};

/// What every source needs: the log to append to, its limits, metrics.
#[derive(Clone)]
pub struct IngestContext {
    pub log: Arc<dyn Log>,
    pub metrics: Arc<Metrics>,
    pub limits: IngestLimits,
    refusals: Arc<Refusals>,
    rate: Arc<rate::Limiter>,
    /// Lines and errors per source over the last hour (`/v1/apps`).
    pub activity: Arc<activity::Activity>,
}

impl IngestContext {
    pub fn new(log: Arc<dyn Log>, metrics: Arc<Metrics>, limits: IngestLimits) -> Self {
        let rate = Arc::new(rate::Limiter::new(limits.rate));
        IngestContext {
            log,
            metrics,
            limits,
            refusals: Arc::default(),
            rate,
            activity: Arc::default(),
        }
    }

    /// Bounds and appends a decoded batch: the one door every source goes
    /// through. Log lines over their source's rate limit are dropped here
    /// ([`rate`], `sluice_drops_total{reason="rate_limited"}`, told in the
    /// app's stream by [`tell_rate_drops`](Self::tell_rate_drops)).
    /// Identity fields are bounded ([`limits::FieldLimits`]),
    /// each cut counted (`sluice_drops_total{reason="truncated"}`,
    /// `{reason="too_many_tags"}`), so per-source state stays small whatever
    /// a sender puts in them; the log makes timestamps usable for paging.
    /// Returns once the log has the batch (readable by every
    /// consumer, and on disk unless the machine itself dies before the next
    /// fsync). A batch the log refuses is dropped and counted
    /// (`{reason="log_full"}` when the disk is at its floor, `{reason="log_error"}`
    /// otherwise) and the error returned, so HTTP can answer 503.
    pub async fn publish(&self, batch: Vec<envelope::Envelope>) -> Result<(), ApiError> {
        self.submit(batch).await
    }

    /// [`publish`](Self::publish) in two steps: the batch is bounded and
    /// takes its place in the log at this call ([`Log::append`]'s order);
    /// the future tells how it went. A source that keeps several batches in
    /// flight (`syslog_tcp`) still gets them stored in the order it
    /// submitted them.
    pub fn submit(
        &self,
        batch: Vec<envelope::Envelope>,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send + '_ {
        let (_, appended) = self.append(batch);
        async move { appended.await.map(drop) }
    }

    /// [`submit`](Self::submit) that tells where the batch landed: per
    /// entry of `batch`, its log position, or `None` when the entry was
    /// dropped over its source's rate limit (a collector that records how
    /// far it got, as the agent's Docker followers do, keeps the newest).
    pub fn store(
        &self,
        batch: Vec<envelope::Envelope>,
    ) -> impl std::future::Future<Output = Result<Vec<Option<sluice_log::Position>>, ApiError>> + Send + '_
    {
        let (keep, appended) = self.append(batch);
        async move { appended.await.map(|positions| aligned(positions, &keep)) }
    }

    /// Tells each app whose lines were dropped over the rate limit, in its
    /// own stream, at most once a second ([`rate::Limiter::notices`]); the
    /// server calls it every second.
    pub async fn tell_rate_drops(&self) {
        let notices = self.rate.notices(std::time::Instant::now());
        if !notices.is_empty() {
            // A refusal is counted.
            let _ = self.append_notices(notices).await;
        }
    }

    /// Appends sluice's own notices about a source (drops told, a file
    /// skipped): bounded like any batch, but not subject to the source's
    /// rate limit, and never taking its tokens.
    pub fn append_notices(
        &self,
        mut notices: Vec<envelope::Envelope>,
    ) -> impl std::future::Future<Output = Result<Vec<sluice_log::Position>, ApiError>> + Send + '_
    {
        self.bound(&mut notices);
        self.log_append(notices)
    }

    /// [`tell_rate_drops`](Self::tell_rate_drops) every
    /// [`rate::NOTICE_EVERY`] until `shutdown`.
    pub async fn tell_rate_drops_until(self, shutdown: tokio_util::sync::CancellationToken) {
        if self.rate.limit().is_off() {
            return;
        }
        let mut tick = tokio::time::interval(rate::NOTICE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.tell_rate_drops().await,
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Bounds the batch (first, so the rate limit keys its buckets by the
    /// bounded source ids), applies the rate limit, then
    /// [`log_append`](Self::log_append). Also returns which entries were
    /// kept (empty: all).
    fn append(
        &self,
        mut batch: Vec<envelope::Envelope>,
    ) -> (
        Vec<bool>,
        impl std::future::Future<Output = Result<Vec<sluice_log::Position>, ApiError>> + Send + '_,
    ) {
        self.bound(&mut batch);
        let admitted = self.rate.admit(&batch, std::time::Instant::now());
        if admitted.dropped > 0 {
            self.metrics.count_drop("rate_limited", admitted.dropped);
            let mut keep = admitted.keep.iter();
            batch.retain(|_| keep.next().copied().unwrap_or(true));
        }
        (admitted.keep, self.log_append(batch))
    }

    /// Gives a bounded batch its place in the log now; the future counts
    /// how it went.
    fn log_append(
        &self,
        batch: Vec<envelope::Envelope>,
    ) -> impl std::future::Future<Output = Result<Vec<sluice_log::Position>, ApiError>> + Send + '_
    {
        let appended = (!batch.is_empty()).then(|| {
            self.activity.record(&batch, envelope::time::now_ns());
            (batch.len() as u64, self.log.append(batch))
        });
        async move {
            let Some((n, appended)) = appended else {
                return Ok(Vec::new());
            };
            match appended.await {
                Ok(positions) => {
                    self.metrics.log_appended.inc_by(n);
                    Ok(positions)
                }
                Err(err) => {
                    self.metrics.count_drop(drop_reason(&err), n);
                    if self.refusals.should_tell(envelope::time::now_ns()) {
                        tracing::warn!(
                            error = %err,
                            "the log refuses batches; they are dropped and counted in sluice_drops_total"
                        );
                    }
                    Err(err)
                }
            }
        }
    }

    /// Field limits and body bounds, counted.
    fn bound(&self, batch: &mut [envelope::Envelope]) {
        let (mut truncated, mut tags_dropped) = (0, 0);
        for env in batch {
            let cuts = self.limits.fields.apply(env);
            truncated += cuts.truncated;
            tags_dropped += cuts.tags_dropped;
            truncated += u64::from(self.bound_body(env));
        }
        if truncated > 0 {
            self.metrics.count_drop("truncated", truncated);
        }
        if tags_dropped > 0 {
            self.metrics.count_drop("too_many_tags", tags_dropped);
        }
    }

    /// Bounds a log payload or an event body by `max_message`. A cut
    /// payload is copied, so it never keeps a larger buffer alive.
    fn bound_body(&self, env: &mut envelope::Envelope) -> bool {
        let max = self.limits.max_message;
        match env.message.as_mut() {
            Some(envelope::v2::Message::Log(log)) if log.payload.len() > max => {
                log.payload = bytes::Bytes::copy_from_slice(&log.payload[..max]);
                true
            }
            Some(envelope::v2::Message::Event(e)) => limits::truncate_utf8(&mut e.body, max),
            _ => false,
        }
    }

    /// Turns one syslog frame into an envelope, counting truncation and
    /// parse errors. The payload is copied out of the read buffer so that a
    /// stored message holds only its own bytes (the store's memory budget
    /// then counts what is really kept); after this, fan-out shares it.
    pub fn syslog_frame(&self, frame: &[u8], truncated: bool, now: i64) -> envelope::Envelope {
        let metrics = &self.metrics;
        let parsed = codec::syslog::parse(frame, now);
        if parsed.format == codec::syslog::SyslogFormat::Raw && frame.first() == Some(&b'<') {
            metrics.count_drop("parse_error", 1);
        }
        let mut message = parsed.message;
        if message.len() > self.limits.max_message {
            message = &message[..self.limits.max_message];
            metrics.count_drop("truncated", 1);
        } else if truncated {
            metrics.count_drop("truncated", 1);
        }
        let payload = bytes::Bytes::copy_from_slice(message);
        mapping::syslog_to_envelope(&parsed, payload, &self.limits, now)
    }
}

/// The newest log position in an answer of [`IngestContext::store`] (the
/// last entry that was not dropped), where a collector records how far it
/// got.
pub fn newest_stored(positions: &[Option<sluice_log::Position>]) -> Option<sluice_log::Position> {
    positions.iter().rev().find_map(|p| *p)
}

/// Positions of the kept entries spread over the whole batch: `None` where
/// `keep` (empty: all kept) says an entry was dropped.
fn aligned(
    positions: Vec<sluice_log::Position>,
    keep: &[bool],
) -> Vec<Option<sluice_log::Position>> {
    if keep.is_empty() {
        return positions.into_iter().map(Some).collect();
    }
    let mut stored = positions.into_iter();
    // A batch dropped whole was never appended: every entry is `None`.
    keep.iter()
        .map(|&kept| if kept { stored.next() } else { None })
        .collect()
}

/// The drop reason counted for a batch the log refused.
fn drop_reason(err: &ApiError) -> &'static str {
    match err {
        ApiError::DiskFull { .. } => "log_full",
        ApiError::Storage(sluice_log::LogError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::StorageFull =>
        {
            "log_full"
        }
        _ => "log_error",
    }
}

/// Tells the operator that the log refuses batches (a full disk) once per
/// [`Refusals::EVERY_NS`], not once per batch: under load a refusing log
/// would otherwise flood the server's own output.
#[derive(Default)]
struct Refusals {
    last_told_ns: std::sync::atomic::AtomicI64,
}

impl Refusals {
    const EVERY_NS: i64 = 10_000_000_000;

    fn should_tell(&self, now_ns: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.last_told_ns.load(Relaxed);
        (last == 0 || now_ns.saturating_sub(last) >= Self::EVERY_NS)
            && self
                .last_told_ns
                .compare_exchange(last, now_ns, Relaxed, Relaxed)
                .is_ok()
    }
}
