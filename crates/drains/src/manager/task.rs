//! [`DrainTask`]: one drain's loop — gather a batch from its subscription,
//! send it through the writer, hold it across reconnects on Logyard's
//! schedule, and count and tell every loss.

use super::*;

pub(super) struct DrainTask {
    pub(super) ctx: WriterContext,
    /// The URL's secrets, scrubbed from errors before they are shown.
    pub(super) secrets: Vec<String>,
    /// Entries received beyond a batch's limits, sent first next time.
    pub(super) carry: std::collections::VecDeque<Arc<Entry>>,
    pub(super) policy: BatchPolicy,
    pub(super) app: Option<String>,
    pub(super) retry: RetryState,
    pub(super) counters: DrainCounters,
    pub(super) status: Arc<Status>,
    pub(super) subscription: Subscription,
    pub(super) bus: Bus,
    pub(super) cancel: CancellationToken,
}

impl DrainTask {
    pub(super) async fn run(mut self) {
        let mut writer: Option<Box<dyn DrainWriter>> = None;
        let mut pending: Vec<Arc<Entry>> = Vec::new();
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
            if pending.is_empty() && !self.gather(&mut pending).await {
                break;
            }
            let Some(w) = writer.as_mut() else { continue };
            // On shutdown a send under way may finish (within STOP_FLUSH);
            // one cut short may have left half a frame on the wire, so its
            // writer is not used again.
            let outcome = {
                let send = w.send(&pending);
                tokio::pin!(send);
                tokio::select! {
                    r = &mut send => Some(r),
                    _ = self.cancel.cancelled() => {
                        tokio::time::timeout(STOP_FLUSH, &mut send).await.ok()
                    }
                }
            };
            let Some(sent) = outcome else {
                writer = None;
                break;
            };
            match sent {
                Ok(n) => {
                    // A writer sends the front of the batch (what fits in
                    // its rendered-size limit); the rest goes next.
                    let n = n.clamp(1, pending.len().max(1)).min(pending.len());
                    self.status
                        .sent
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    self.counters.sent.inc_by(n as u64);
                    pending.drain(..n);
                }
                Err(WriteError::Reject { reason, detail }) => {
                    let reason = self.scrub(reason);
                    let e = self.scrub(format!("{reason}{detail}"));
                    warn!(error = %e, "receiver refused a batch; dropped");
                    let n = pending.len() as u64;
                    self.lost(n);
                    self.tell_rejected(&pending, &reason);
                    let e = format!("{e} ({n} messages dropped)");
                    self.status.set(State::Running, Some(e), now_ns());
                    pending.clear();
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
                    let n = pending.len() as u64;
                    self.lost(n);
                    let e = self.scrub(e);
                    self.fatal(e).await;
                    return;
                }
            }
        }
        self.flush_on_stop(writer.as_mut(), pending).await;
        self.status.set(State::Stopped, None, now_ns());
    }

    /// At shutdown: what is held and queued is sent, batch by batch, within
    /// [`STOP_FLUSH`] when connected; whatever is not delivered is counted
    /// as lost, so the drain's numbers stay exact.
    async fn flush_on_stop(
        &mut self,
        mut writer: Option<&mut Box<dyn DrainWriter>>,
        mut batch: Vec<Arc<Entry>>,
    ) {
        let deadline = Instant::now() + STOP_FLUSH;
        loop {
            batch.extend(self.carry.drain(..));
            if batch.len() < self.policy.max_entries {
                if let Some(d) = self
                    .subscription
                    .try_recv(self.policy.max_entries - batch.len())
                {
                    if let Some(loss) = d.loss {
                        self.lost(loss.count);
                    }
                    batch.extend(d.entries);
                }
            }
            if batch.is_empty() {
                return;
            }
            let delivered = match writer.as_mut() {
                Some(w) => match tokio::time::timeout_at(deadline, w.send(&batch)).await {
                    Ok(Ok(n)) => Some(n.clamp(1, batch.len())),
                    _ => None,
                },
                None => None,
            };
            match delivered {
                Some(n) => {
                    self.status
                        .sent
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    self.counters.sent.inc_by(n as u64);
                    batch.drain(..n);
                }
                None => {
                    self.lost(batch.len() as u64);
                    batch.clear();
                    writer = None;
                }
            }
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
                tokio::select! {
                    _ = tokio::time::sleep(wait) => true,
                    _ = self.cancel.cancelled() => false,
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

    async fn fatal(&mut self, why: String) {
        warn!(error = %why, "drain is FATAL");
        self.status.set(State::Fatal, Some(why), now_ns());
        // Keep the subscription (and its loss count) until deleted.
        self.cancel.cancelled().await;
    }

    /// Fills `pending` as the batch policy asks (entries and bytes); false
    /// when cancelled. What a delivery brings beyond the limits waits in
    /// `carry` for the next batch.
    async fn gather(&mut self, pending: &mut Vec<Arc<Entry>>) -> bool {
        if !self.carry.is_empty() {
            pending.extend(self.carry.drain(..));
            if self.cap(pending) || self.policy.max_wait.is_zero() {
                return true;
            }
            return self.fill(pending).await;
        }
        let first = tokio::select! {
            d = self.subscription.recv(self.policy.max_entries) => d,
            _ = self.cancel.cancelled() => return false,
        };
        let Some(delivery) = first else { return false };
        self.take(delivery.loss, delivery.entries, pending);
        if self.cap(pending) || self.policy.max_wait.is_zero() {
            return true;
        }
        self.fill(pending).await
    }

    /// Waits up to `max_wait` for more entries, within the limits.
    async fn fill(&mut self, pending: &mut Vec<Arc<Entry>>) -> bool {
        let max = self.policy.max_entries;
        let deadline = Instant::now() + self.policy.max_wait;
        while pending.len() < max {
            let next = tokio::select! {
                d = self.subscription.recv(max - pending.len()) => d,
                _ = tokio::time::sleep_until(deadline) => break,
                _ = self.cancel.cancelled() => return false,
            };
            let Some(d) = next else { break };
            self.take(d.loss, d.entries, pending);
            if self.cap(pending) {
                break;
            }
        }
        true
    }

    /// Moves what exceeds the entry and byte limits (keeping at least one
    /// entry) into `carry`; true when a limit was reached.
    fn cap(&mut self, pending: &mut Vec<Arc<Entry>>) -> bool {
        let mut bytes = 0usize;
        let mut keep = pending.len().min(self.policy.max_entries);
        for (i, e) in pending.iter().enumerate().take(keep) {
            bytes += e.envelope.approx_size();
            if bytes >= self.policy.max_bytes {
                keep = i + 1;
                break;
            }
        }
        let keep = keep.max(1);
        let reached = keep < pending.len()
            || bytes >= self.policy.max_bytes
            || keep >= self.policy.max_entries;
        for e in pending.drain(keep..).rev() {
            self.carry.push_front(e);
        }
        reached
    }

    fn take(
        &mut self,
        loss: Option<Loss>,
        entries: Vec<Arc<Entry>>,
        pending: &mut Vec<Arc<Entry>>,
    ) {
        if let Some(loss) = loss {
            self.lost(loss.count);
            self.tell_app(&loss, entries.first().map(|e| &e.envelope));
        }
        pending.extend(entries);
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

    /// Publishes the loss notice into the app's own stream.
    fn tell_app(&self, loss: &Loss, sample: Option<&Envelope>) {
        self.notice(loss.count, loss.since, sample, None);
    }

    /// A batch the receiver refused (an HTTP 4xx) is told in the stream of
    /// each app it held, as queue loss is, with what the receiver
    /// answered: `sluice: N messages lost for app X to drain NAME since T:
    /// receiver answered 400 Bad Request`. sluice's own notices are
    /// counted but not told again, so a receiver that refuses everything
    /// cannot start a loop of notices about notices.
    fn tell_rejected(&self, batch: &[Arc<Entry>], reason: &str) {
        // source id → (count, earliest time, a sample), in batch order.
        let mut groups: Vec<(&str, u64, i64, &Envelope)> = Vec::new();
        for entry in batch {
            let env = &entry.envelope;
            if env.tag(tags::SOURCE_TYPE) == Some(notice::SOURCE_TYPE) {
                continue;
            }
            match groups.iter_mut().find(|g| g.0 == env.source_id) {
                Some(g) => {
                    g.1 += 1;
                    g.2 = g.2.min(env.timestamp);
                }
                None => groups.push((&env.source_id, 1, env.timestamp, env)),
            }
        }
        for (_, count, since, sample) in groups {
            self.notice(count, since, Some(sample), Some(reason));
        }
    }

    /// `sluice: N messages lost for app X to drain NAME since T[: why]`,
    /// published into the stream of `sample`'s source.
    fn notice(&self, count: u64, since: i64, sample: Option<&Envelope>, why: Option<&str>) {
        let app = sample
            .and_then(|e| e.tag(tags::APP_NAME).map(str::to_owned))
            .or_else(|| self.app.clone())
            .or_else(|| sample.map(|e| e.source_id.clone()))
            .unwrap_or_else(|| "*".to_owned());
        let text = notice::lost_for_drain(count, &app, &self.ctx.name, since, why);
        let source_id = sample.map_or_else(|| app.clone(), |e| e.source_id.clone());
        let mut told = Envelope::log(now_ns(), source_id, "", Bytes::from(text), LogType::Err);
        told.tags
            .insert(tags::SOURCE_TYPE.to_owned(), notice::SOURCE_TYPE.to_owned());
        if let Some(e) = sample {
            for t in [tags::APP_NAME, tags::SPACE_NAME, tags::ORGANIZATION_NAME] {
                if let Some(v) = e.tag(t) {
                    told.tags.insert(t.to_owned(), v.to_owned());
                }
            }
        }
        self.bus.publish_entries(&[Arc::new(Entry::new(told))]);
    }
}
