//! [`DrainManager`]: the drains that exist, each run by its own task.
//!
//! A drain's task owns a bus subscription (its own bounded, drop-oldest
//! queue), a writer and a retry schedule. It gathers a batch as the
//! writer's [`BatchPolicy`] asks, sends it, and on a connection failure
//! holds that batch, reconnects on Logyard's schedule and sends it again,
//! while the queue keeps only the newest entries. Every loss is counted for
//! the drain (status, `/metrics`) and told in the app's own stream:
//! `sluice: N messages lost for app X to drain NAME since T`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use envelope::{tags, Entry, Envelope, LogType};
use parking_lot::{Mutex, RwLock};
use router::metrics::DrainCounters;
use router::{Bus, Loss, Subscription};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::format::{Format, FormatError};
use crate::netpolicy::{NetPolicy, PolicyError};
use crate::persist::Persist;
use crate::retry::{retry_limit, Next, RetryState};
use crate::spec::{DrainSpec, DrainUrl, SpecError};
use crate::status::{State, Status, StatusView};
use crate::writers::{self, batch_policy, BatchPolicy, DrainWriter, WriteError, WriterContext};

/// How long a stopping drain may spend on its last batch.
pub const STOP_FLUSH: Duration = Duration::from_millis(1500);

/// Settings of the drain subsystem, from `sluice.toml` `[drains]`.
#[derive(Clone, Debug)]
pub struct DrainsConfig {
    pub data_dir: PathBuf,
    /// Queue depth per drain (drop oldest beyond).
    pub queue_capacity: usize,
    /// Drains per app at most.
    pub per_app_limit: usize,
    /// Drains in all at most.
    pub max_drains: usize,
    pub policy: Arc<NetPolicy>,
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("drain {0:?} already exists")]
    Exists(String),
    #[error("no drain named {0:?}")]
    NotFound(String),
    #[error("per-app drain limit ({limit}) reached for app {app:?}")]
    PerAppLimit { limit: usize, app: String },
    #[error("drain limit ({0}) reached")]
    TooMany(usize),
    #[error("cannot save: {0}")]
    Persist(#[from] std::io::Error),
}

/// A drain as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DrainInfo {
    #[serde(flatten)]
    pub spec: DrainSpec,
    pub status: StatusView,
}

struct Running {
    spec: DrainSpec,
    status: Arc<Status>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct DrainManager {
    inner: Arc<Inner>,
}

struct Inner {
    bus: Bus,
    config: DrainsConfig,
    persist: Persist,
    drains: Mutex<BTreeMap<String, Running>>,
    formats: RwLock<HashMap<String, String>>,
    /// Serialises add and delete, so a name's check, file and task change
    /// together (adds run in parallel on blocking threads).
    changes: Mutex<()>,
    shutdown: CancellationToken,
}

impl DrainManager {
    /// Loads the persisted drains and formats and starts every drain.
    /// Returns the manager and one message per file that was skipped.
    pub fn start(
        bus: Bus,
        config: DrainsConfig,
        shutdown: CancellationToken,
    ) -> (Self, Vec<String>) {
        let persist = Persist::new(&config.data_dir);
        let (formats, mut problems) = persist.load_formats();
        let (specs, drain_problems) = persist.load_drains();
        problems.extend(drain_problems);
        let manager = DrainManager {
            inner: Arc::new(Inner {
                bus,
                config,
                persist,
                drains: Mutex::new(BTreeMap::new()),
                formats: RwLock::new(formats.into_iter().collect()),
                changes: Mutex::new(()),
                shutdown,
            }),
        };
        for spec in specs {
            let name = spec.name.clone();
            if let Err(e) = manager.launch(spec) {
                problems.push(format!("drain {name:?}: {e}; not started"));
            }
        }
        (manager, problems)
    }

    /// Validates, persists and starts a new drain.
    pub fn add(&self, mut spec: DrainSpec) -> Result<DrainInfo, DrainError> {
        let _change = self.inner.changes.lock();
        let url = spec.validate()?;
        self.check_literal_address(&url)?;
        self.resolve_format(&spec, &url)?;
        spec_extras(&spec)?;
        {
            let drains = self.inner.drains.lock();
            if drains.contains_key(&spec.name) {
                return Err(DrainError::Exists(spec.name));
            }
            if drains.len() >= self.inner.config.max_drains {
                return Err(DrainError::TooMany(self.inner.config.max_drains));
            }
            let limit = self.inner.config.per_app_limit;
            for app in &spec.apps {
                let n = drains
                    .values()
                    .filter(|d| d.spec.apps.contains(app))
                    .count();
                if n >= limit {
                    return Err(DrainError::PerAppLimit {
                        limit,
                        app: app.clone(),
                    });
                }
            }
        }
        if spec.created == 0 {
            spec.created = now_ns();
        }
        self.inner.persist.save_drain(&spec)?;
        let name = spec.name.clone();
        self.launch(spec)?;
        info!(drain = %name, "drain added");
        self.get(&name).ok_or(DrainError::NotFound(name))
    }

    /// Stops and forgets a drain.
    pub fn delete(&self, name: &str) -> Result<(), DrainError> {
        let _change = self.inner.changes.lock();
        let running = self
            .inner
            .drains
            .lock()
            .remove(name)
            .ok_or_else(|| DrainError::NotFound(name.to_owned()))?;
        running.cancel.cancel();
        running.task.abort();
        crate::writers::file::forget_overwrite(name);
        self.inner.persist.delete_drain(name)?;
        self.inner.bus.metrics().forget_drain(name);
        info!(drain = %name, "drain deleted");
        Ok(())
    }

    pub fn list(&self) -> Vec<DrainInfo> {
        self.inner
            .drains
            .lock()
            .values()
            .map(|r| DrainInfo {
                spec: r.spec.clone(),
                status: r.status.view(),
            })
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<DrainInfo> {
        self.inner.drains.lock().get(name).map(|r| DrainInfo {
            spec: r.spec.clone(),
            status: r.status.view(),
        })
    }

    /// Saves a named format (a template), after checking it compiles.
    pub fn set_format(&self, name: &str, template: &str) -> Result<(), DrainError> {
        let valid_name = !name.is_empty()
            && name.len() <= crate::spec::MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_name
            || codec::logyard::builtin_format(name).is_some()
            || matches!(name, "verbatim" | "raw" | "json")
        {
            return Err(FormatError::Invalid {
                name: name.to_owned(),
                reason: "format names are 1-64 letters, digits, '.', '_' or '-', and not a built-in name".into(),
            }
            .into());
        }
        if !template.contains("{{") {
            return Err(FormatError::Invalid {
                name: name.to_owned(),
                reason: "a saved format is a template with {{.field}}".into(),
            }
            .into());
        }
        codec::template::Template::parse(template).map_err(|e| FormatError::Invalid {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        self.inner.persist.save_format(name, template)?;
        self.inner
            .formats
            .write()
            .insert(name.to_owned(), template.to_owned());
        Ok(())
    }

    pub fn formats(&self) -> BTreeMap<String, String> {
        self.inner
            .formats
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Stops every drain (state STOPPED); used at shutdown.
    pub async fn stop_all(&self, deadline: Duration) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut drains = self.inner.drains.lock();
            drains
                .values_mut()
                .map(|r| {
                    r.cancel.cancel();
                    std::mem::replace(&mut r.task, tokio::spawn(async {}))
                })
                .collect()
        };
        let _ = tokio::time::timeout(deadline, futures_util::future::join_all(tasks)).await;
        // Tasks past the deadline are aborted when the runtime shuts down.
    }

    fn check_literal_address(&self, url: &DrainUrl) -> Result<(), DrainError> {
        if url.scheme.is_network() {
            if let Ok(ip) = url.host.parse::<std::net::IpAddr>() {
                self.inner.config.policy.check(&url.host, ip)?;
            }
        }
        Ok(())
    }

    fn resolve_format(
        &self,
        spec: &DrainSpec,
        url: &DrainUrl,
    ) -> Result<Option<Format>, DrainError> {
        match spec.format_name(url) {
            None => Ok(None),
            Some(name) => Ok(Some(Format::resolve(name, &self.inner.formats.read())?)),
        }
    }

    fn launch(&self, spec: DrainSpec) -> Result<(), DrainError> {
        let url = spec.validate()?;
        let format = self.resolve_format(&spec, &url)?;
        let extras = spec_extras(&spec)?;
        let metrics = Arc::clone(self.inner.bus.metrics());
        let status = Arc::new(Status::new(now_ns()));
        let cancel = self.inner.shutdown.child_token();
        let subscription = self.inner.bus.subscribe_with_capacity(
            spec.selector(&url),
            "drain",
            self.inner.config.queue_capacity.max(1),
        );
        let task = DrainTask {
            carry: std::collections::VecDeque::new(),
            ctx: WriterContext {
                name: spec.name.clone(),
                url: url.clone(),
                format,
                policy: Arc::clone(&self.inner.config.policy),
                metrics: Arc::clone(&metrics),
                syslog_extras: Arc::new(extras),
            },
            policy: batch_policy(url.scheme),
            app: spec.apps.first().cloned(),
            retry: RetryState::new(retry_limit(&spec.name, !spec.apps.is_empty())),
            counters: metrics.drain_counters(&spec.name),
            status: Arc::clone(&status),
            subscription,
            bus: self.inner.bus.clone(),
            cancel: cancel.clone(),
        };
        let span = info_span!("drain", name = %spec.name);
        let handle = tokio::spawn(task.run().instrument(span));
        match self.inner.drains.lock().entry(spec.name.clone()) {
            std::collections::btree_map::Entry::Occupied(_) => {
                // Cannot happen under `changes`; never leak a running task.
                cancel.cancel();
                handle.abort();
                Err(DrainError::Exists(spec.name))
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(Running {
                    spec,
                    status,
                    cancel,
                    task: handle,
                });
                Ok(())
            }
        }
    }
}

struct DrainTask {
    ctx: WriterContext,
    /// Entries received beyond a batch's limits, sent first next time.
    carry: std::collections::VecDeque<Arc<Entry>>,
    policy: BatchPolicy,
    app: Option<String>,
    retry: RetryState,
    counters: DrainCounters,
    status: Arc<Status>,
    subscription: Subscription,
    bus: Bus,
    cancel: CancellationToken,
}

impl DrainTask {
    async fn run(mut self) {
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
                Ok(()) => {
                    let n = pending.len() as u64;
                    self.status
                        .sent
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    self.counters.sent.inc_by(n);
                    pending.clear();
                }
                Err(WriteError::Reject(e)) => {
                    warn!(error = %e, "receiver refused a batch; dropped");
                    let n = pending.len() as u64;
                    self.lost(n);
                    self.status.set(State::Running, Some(e), now_ns());
                    pending.clear();
                }
                Err(WriteError::Retry(e)) => {
                    warn!(error = %e, "send failed; reconnecting");
                    writer = None;
                    if !self.wait_to_retry(e).await {
                        break;
                    }
                }
                Err(WriteError::Fatal(e)) => {
                    let n = pending.len() as u64;
                    self.lost(n);
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
            let n = batch.len() as u64;
            let delivered = match writer.as_mut() {
                Some(w) => matches!(
                    tokio::time::timeout_at(deadline, w.send(&batch)).await,
                    Ok(Ok(()))
                ),
                None => false,
            };
            batch.clear();
            if delivered {
                self.status
                    .sent
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                self.counters.sent.inc_by(n);
            } else {
                self.lost(n);
                writer = None;
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
                    self.fatal(e).await;
                    return None;
                }
                Err(WriteError::Retry(e) | WriteError::Reject(e)) => {
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

    fn lost(&self, n: u64) {
        self.status
            .dropped
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.counters.dropped.inc_by(n);
    }

    /// Publishes the loss notice into the app's own stream.
    fn tell_app(&self, loss: &Loss, sample: Option<&Envelope>) {
        let app = self
            .app
            .clone()
            .or_else(|| sample.and_then(|e| e.tag(tags::APP_NAME).map(str::to_owned)))
            .unwrap_or_else(|| "*".to_owned());
        let text = format!(
            "sluice: {} messages lost for app {app} to drain {} since {}",
            loss.count,
            self.ctx.name,
            loss.since_text()
        );
        let source_id = sample.map_or_else(|| app.clone(), |e| e.source_id.clone());
        let mut notice = Envelope::log(now_ns(), source_id, "", Bytes::from(text), LogType::Err);
        notice
            .tags
            .insert(tags::SOURCE_TYPE.to_owned(), "SLUICE".to_owned());
        if let Some(e) = sample {
            for t in [tags::APP_NAME, tags::SPACE_NAME, tags::ORGANIZATION_NAME] {
                if let Some(v) = e.tag(t) {
                    notice.tags.insert(t.to_owned(), v.to_owned());
                }
            }
        }
        self.bus.publish(vec![notice]);
    }
}

/// The route options of a spec, checked.
fn spec_extras(spec: &DrainSpec) -> Result<codec::loggregator::SyslogExtras, DrainError> {
    codec::loggregator::SyslogExtras::parse(
        spec.append_tag.as_deref(),
        spec.structured_data.as_deref(),
    )
    .map_err(|reason| {
        DrainError::Spec(SpecError::Url {
            url: spec.url.clone(),
            reason,
        })
    })
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
