//! [`DrainTask`]: one drain's loop — gather a batch from its place in the
//! log ([`Feed`]), send it through the writer, hold it across reconnects on
//! Logyard's schedule, and move the drain's cursor past it once the
//! receiver accepted it.
//!
//! Nothing is dropped while the receiver is down: the drain falls behind
//! (RETRYING) and catches up in order when it returns. Messages are lost
//! only when the log's retention removed them before the drain sent them
//! (counted exactly, from the read pages' `skipped`) or when the receiver
//! refused a batch for good (an HTTP 4xx: counted, told, passed over);
//! both are told in the app's stream by a notice appended to the log. On
//! shutdown a send under way may finish within [`STOP_FLUSH`] and is
//! committed; what was not sent stays in the log for next time.

use super::feed::{Batch, Feed, Start};
use super::notices as notice;
use super::*;
use crate::shared::Lease;

/// How long a drain waits before reading again after the log failed.
const LOG_RETRY: Duration = Duration::from_secs(1);
/// How often a drain on standby reads the owner's committed cursor.
const STANDBY_REFRESH: Duration = Duration::from_secs(2);

pub(super) struct DrainTask {
    pub(super) ctx: WriterContext,
    /// The URL's secrets, scrubbed from errors before they are shown.
    pub(super) secrets: Vec<String>,
    pub(super) policy: BatchPolicy,
    pub(super) app: Option<String>,
    pub(super) retry: RetryState,
    pub(super) counters: DrainCounters,
    pub(super) status: Arc<Status>,
    pub(super) log: Arc<dyn Log>,
    /// Whether this node may deliver the drain now (a cluster's lease).
    pub(super) ownership: Arc<dyn Ownership>,
    pub(super) feed: Feed,
    pub(super) start: Start,
    /// The task that ran this drain name before (a replaced or deleted
    /// drain): awaited first, so its last commit (or forget) comes before
    /// this one reads the cursor.
    pub(super) predecessor: Option<JoinHandle<()>>,
    pub(super) cancel: CancellationToken,
    /// Cancelled when this node lost the lease it delivers under.
    pub(super) lease_lost: CancellationToken,
}

impl DrainTask {
    pub(super) async fn run(mut self) {
        if let Some(before) = self.predecessor.take() {
            let _ = before.await;
        }
        let stop = self.cancel.clone();
        loop {
            let Some(lease) = self.wait_for_lease(&stop).await else {
                break;
            };
            // Delivering ends when the drain stops or the lease is lost,
            // whichever comes first; a lost lease stops sends at once.
            let session = stop.child_token();
            let lost = lease.lost.clone();
            let ends = session.clone();
            let watch = tokio::spawn(async move {
                tokio::select! {
                    _ = lost.cancelled() => ends.cancel(),
                    _ = ends.cancelled() => {}
                }
            });
            self.cancel = session.clone();
            self.lease_lost = lease.lost.clone();
            if self.begin().await {
                self.deliver().await;
            }
            let lost = lease.lost.is_cancelled();
            if !lost {
                self.feed.finish().await;
            }
            session.cancel();
            let _ = watch.await;
            drop(lease);
            if stop.is_cancelled() || !lost {
                break;
            }
            warn!("lost the drain's lease; another node takes it over");
            self.start = Start::Resume;
        }
        self.status.set(State::Stopped, None, now_ns());
    }

    /// Waits until this node may deliver the drain; in a cluster, shows
    /// STANDBY and follows the owner's committed cursor meanwhile (so
    /// `behind` is right on every node). `None` when the drain stops.
    async fn wait_for_lease(&mut self, stop: &CancellationToken) -> Option<Lease> {
        let ownership = Arc::clone(&self.ownership);
        let name = self.ctx.name.clone();
        let acquire = ownership.acquire(&name, stop);
        tokio::pin!(acquire);
        if !ownership.shared() {
            return acquire.await;
        }
        self.status.set(State::Standby, None, now_ns());
        let mut tick = tokio::time::interval(STANDBY_REFRESH);
        loop {
            tokio::select! {
                lease = &mut acquire => {
                    if lease.is_some() {
                        self.status.set(State::Starting, None, now_ns());
                    }
                    return lease;
                }
                _ = tick.tick() => self.feed.follow_committed().await,
            }
        }
    }

    /// Finds the drain's place in the log, retrying while the log fails;
    /// false when cancelled.
    async fn begin(&mut self) -> bool {
        loop {
            match self.feed.begin(self.start).await {
                Ok(()) => return true,
                Err(e) => {
                    if !self.log_failed(e).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn deliver(&mut self) {
        let mut writer: Option<Box<dyn DrainWriter>> = None;
        let mut batch = Batch::default();
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            if writer.is_none() {
                match self.connect().await {
                    Some(w) => writer = Some(w),
                    None => break,
                }
            }
            if batch.is_empty() {
                let gathered = self
                    .feed
                    .gather(&mut batch, &self.policy, &self.cancel)
                    .await;
                self.count_skipped().await;
                match gathered {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        if !self.log_failed(e).await {
                            break;
                        }
                        continue;
                    }
                }
                self.show_undelivered(&batch);
            }
            let Some(w) = writer.as_mut() else { continue };
            // On shutdown a send under way may finish (within STOP_FLUSH);
            // one cut short may have left half a frame on the wire, so its
            // writer is not used again.
            let outcome = {
                let send = w.send(&batch.entries);
                tokio::pin!(send);
                tokio::select! {
                    r = &mut send => Some(r),
                    _ = self.cancel.cancelled(), if !self.lease_lost.is_cancelled() => {
                        tokio::time::timeout(STOP_FLUSH, &mut send).await.ok()
                    }
                    // Another node may hold the lease now: not one more
                    // byte from this one.
                    _ = self.lease_lost.cancelled() => None,
                }
            };
            let Some(sent) = outcome else {
                break;
            };
            match sent {
                Ok(n) => {
                    // A writer sends the front of the batch (what fits in
                    // its rendered-size limit); the rest goes next.
                    let before = batch.len();
                    let through = batch.take_front(n);
                    let n = (before - batch.len()) as u64;
                    self.status
                        .sent
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    self.counters.sent.inc_by(n);
                    self.feed.delivered(through, !batch.is_empty()).await;
                    self.show_undelivered(&batch);
                }
                Err(WriteError::Reject { reason, detail }) => {
                    let reason = self.scrub(reason);
                    let e = self.scrub(format!("{reason}{detail}"));
                    warn!(error = %e, "receiver refused a batch; dropped");
                    let n = batch.len() as u64;
                    self.lost(n);
                    let told = notice::rejected(
                        &self.ctx.name,
                        self.app.as_deref(),
                        &batch.entries,
                        &reason,
                    );
                    self.tell(told).await;
                    let e = format!("{e} ({n} messages dropped)");
                    self.status.set(State::Running, Some(e), now_ns());
                    let through = batch.take_front(batch.len());
                    self.feed.delivered(through, false).await;
                    self.show_undelivered(&batch);
                }
                Err(WriteError::Retry(e)) => {
                    let e = self.scrub(e);
                    warn!(error = %e, "send failed; reconnecting");
                    writer = None;
                    if !self.wait_to_retry(e).await {
                        break;
                    }
                }
                Err(WriteError::Fatal(e)) => {
                    // What was not sent stays in the log: a restart
                    // resumes from the committed cursor.
                    let e = self.scrub(e);
                    self.fatal(e).await;
                    break;
                }
            }
        }
    }

    /// Counts and tells positions the log no longer had when the drain
    /// came to read them (retention passed the drain).
    async fn count_skipped(&mut self) {
        let Some((n, since)) = self.feed.take_skipped() else {
            return;
        };
        warn!(
            lost = n,
            "the log's retention removed messages before the drain sent them"
        );
        self.lost(n);
        let since = since.unwrap_or_else(now_ns);
        let told = notice::lost(&self.ctx.name, self.app.as_deref(), n, since, None, None);
        self.tell(vec![told]).await;
    }

    /// Shows the oldest undelivered entry's time in the status.
    fn show_undelivered(&self, batch: &Batch) {
        let oldest = batch
            .first_timestamp()
            .or_else(|| self.feed.oldest_carried());
        self.status.set_oldest_undelivered(oldest);
    }

    /// The log failed (an I/O error): shown as the drain's last error,
    /// retried after [`LOG_RETRY`]; false when cancelled or the log was
    /// closed.
    async fn log_failed(&mut self, e: ApiError) -> bool {
        if matches!(e, ApiError::Closed) {
            return false;
        }
        let e = format!("reading the log: {e}");
        warn!(error = %e, "drain cannot read the log; retrying");
        self.status.set(State::Retrying, Some(e), now_ns());
        tokio::select! {
            _ = tokio::time::sleep(LOG_RETRY) => true,
            _ = self.cancel.cancelled() => false,
        }
    }

    /// Appends notices to the log (the app's stream).
    async fn tell(&self, notices: Vec<Envelope>) {
        if notices.is_empty() {
            return;
        }
        if let Err(e) = self.log.append(notices).await {
            warn!(error = %e, "cannot append the drain's loss notice to the log");
        }
    }

    /// Connects, retrying on the schedule; `None` when cancelled or FATAL.
    async fn connect(&mut self) -> Option<Box<dyn DrainWriter>> {
        loop {
            let connecting = tokio::select! {
                r = writers::connect(&self.ctx) => r,
                _ = self.cancel.cancelled() => return None,
            };
            match connecting {
                Ok(w) => {
                    self.retry.on_connected(Instant::now());
                    self.status.set(State::Running, None, now_ns());
                    info!("connected");
                    return Some(w);
                }
                Err(WriteError::Fatal(e)) => {
                    let e = self.scrub(e);
                    self.fatal(e).await;
                    return None;
                }
                Err(e @ (WriteError::Retry(_) | WriteError::Reject { .. })) => {
                    let e = self.scrub(e.to_string());
                    warn!(error = %e, "connect failed");
                    if !self.wait_to_retry(e).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Records a failure and sleeps until the next attempt; false when the
    /// drain was cancelled or gave up.
    async fn wait_to_retry(&mut self, error: String) -> bool {
        match self.retry.on_failure(Instant::now()) {
            Next::RetryIn(wait) => {
                self.status
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.status.set(State::Retrying, Some(error), now_ns());
                let until = Instant::now() + wait;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => return true,
                        _ = self.cancel.cancelled() => return false,
                        _ = self.feed.follow_end() => {}
                    }
                }
            }
            Next::GiveUp(after) => {
                let why = format!(
                    "gave up after retrying for {} min (retry limit); last error: {error}",
                    after.as_secs() / 60
                );
                self.fatal(why).await;
                false
            }
        }
    }

    /// FATAL until deleted or restarted; what was delivered is committed
    /// first.
    async fn fatal(&mut self, why: String) {
        warn!(error = %why, "drain is FATAL");
        self.status.set(State::Fatal, Some(why), now_ns());
        self.feed.finish().await;
        self.cancel.cancelled().await;
    }

    /// `text` without the drain URL's secrets ([`crate::redact::scrub`]).
    fn scrub(&self, text: String) -> String {
        crate::redact::scrub(&text, &self.secrets)
    }

    fn lost(&self, n: u64) {
        self.status
            .dropped
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.counters.dropped.inc_by(n);
    }
}
