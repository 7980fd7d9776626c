//! [`DrainManager`]: the drains that exist, each run by its own task.
//!
//! A drain's task owns a bus subscription (its own bounded, drop-oldest
//! queue), a writer and a retry schedule. It gathers a batch as the
//! writer's [`BatchPolicy`] asks, sends it, and on a connection failure
//! holds that batch, reconnects on Logyard's schedule and sends it again,
//! while the queue keeps only the newest entries. Every loss is counted for
//! the drain (status, `/metrics`) and told in the app's own stream:
//! `sluice: N messages lost for app X to drain NAME since T`.
//!
//! On add, besides the URL itself: the host is resolved (within
//! [`ADD_RESOLVE_TIMEOUT`]) and refused when the address policy leaves no
//! address (a name that does not resolve now is accepted, with a warning:
//! connects retry and check again); a file drain's path must be inside
//! `[drains] file_dirs` and TLS files inside `[drains] tls_dirs`
//! ([`crate::paths`]). What the API shows of a drain ([`DrainInfo`]) and
//! what its status and log lines say have the URL's secrets redacted
//! ([`crate::redact`]).

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
use crate::netpolicy::{NetPolicy, PolicyError, ADD_RESOLVE_TIMEOUT};
use crate::paths::{PathError, PathPolicy};
use crate::persist::Persist;
use crate::retry::{retry_limit, Next, RetryState};
use crate::spec::{DrainSpec, DrainUrl, SpecError};
use crate::status::{State, Status, StatusView};
use crate::writers::{self, batch_policy, BatchPolicy, DrainWriter, WriteError, WriterContext};

/// How long a stopping drain may spend on its last batch.
pub const STOP_FLUSH: Duration = Duration::from_millis(1500);
/// Default longest rendered record (`[drains] max_record`).
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024;
/// The smallest `max_record` honoured (a syslog header must fit).
pub const MIN_MAX_RECORD: usize = 1024;

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
    /// Directories `file://` drains may write into (and below); empty
    /// refuses every file drain.
    pub file_dirs: Vec<PathBuf>,
    /// Directories `ca=`, `cert=`, `key=` files may be read from; empty
    /// means `<data_dir>/tls`.
    pub tls_dirs: Vec<PathBuf>,
    /// Longest rendered record in bytes (at least [`MIN_MAX_RECORD`]);
    /// longer ones are cut and counted as `truncated`.
    pub max_record: usize,
}

impl DrainsConfig {
    /// Defaults for `data_dir`: no file dirs, TLS files from
    /// `<data_dir>/tls`, public addresses only.
    pub fn new(data_dir: PathBuf) -> Self {
        DrainsConfig {
            data_dir,
            queue_capacity: 10_000,
            per_app_limit: 5,
            max_drains: 10_000,
            policy: Arc::new(NetPolicy::default()),
            file_dirs: Vec::new(),
            tls_dirs: Vec::new(),
            max_record: DEFAULT_MAX_RECORD,
        }
    }

    /// The TLS directories in effect.
    pub fn effective_tls_dirs(&self) -> Vec<PathBuf> {
        if self.tls_dirs.is_empty() {
            vec![self.data_dir.join("tls")]
        } else {
            self.tls_dirs.clone()
        }
    }

    fn path_policy(&self) -> PathPolicy {
        // Relative directories are taken from the working directory.
        let absolute = |dirs: &[PathBuf]| -> Vec<PathBuf> {
            dirs.iter()
                .map(|d| {
                    if d.is_absolute() {
                        d.clone()
                    } else {
                        std::env::current_dir().unwrap_or_default().join(d)
                    }
                })
                .collect()
        };
        let tls_dirs = absolute(&self.effective_tls_dirs());
        let mut reserved = absolute(std::slice::from_ref(&self.data_dir));
        reserved.extend(tls_dirs.iter().cloned());
        PathPolicy::new(&absolute(&self.file_dirs), &tls_dirs).reserve(&reserved)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Path(#[from] PathError),
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

/// A drain as the API shows it: the spec with its URL's secrets redacted
/// (only [`DrainInfo::new`] makes one).
#[derive(Clone, Debug, Serialize)]
pub struct DrainInfo {
    #[serde(flatten)]
    pub spec: DrainSpec,
    pub status: StatusView,
}

impl DrainInfo {
    /// Redacts the URL ([`crate::redact::url`]) and the last error.
    pub fn new(mut spec: DrainSpec, mut status: StatusView) -> Self {
        let secrets = crate::redact::secrets(&spec.url);
        spec.url = crate::redact::url(&spec.url);
        if let Some(e) = status.last_error.as_mut() {
            *e = crate::redact::scrub(e, &secrets);
        }
        DrainInfo { spec, status }
    }
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
    paths: Arc<PathPolicy>,
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
        let leftovers = persist.remove_leftovers();
        if leftovers > 0 {
            info!(
                files = leftovers,
                "removed temporary files an interrupted save left"
            );
        }
        let (formats, mut problems) = persist.load_formats();
        let (specs, drain_problems) = persist.load_drains();
        problems.extend(drain_problems);
        let paths = Arc::new(config.path_policy());
        let manager = DrainManager {
            inner: Arc::new(Inner {
                bus,
                config,
                paths,
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

    /// Validates, persists and starts a new drain. Blocking: it may
    /// resolve the host (up to [`ADD_RESOLVE_TIMEOUT`]) and touches files.
    pub fn add(&self, mut spec: DrainSpec) -> Result<DrainInfo, DrainError> {
        let url = spec.validate()?;
        self.check_literal_address(&url)?;
        self.resolve_format(&spec, &url)?;
        spec_extras(&spec)?;
        self.check_resolved_address(&spec.name, &url)?;
        let _change = self.inner.changes.lock();
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
        self.check_files(&url)?;
        // Never taken from the caller: `?overwrite=1` truncates only files
        // born after this.
        spec.created = now_ns();
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

    /// Every drain, URLs redacted.
    pub fn list(&self) -> Vec<DrainInfo> {
        self.inner
            .drains
            .lock()
            .values()
            .map(|r| DrainInfo::new(r.spec.clone(), r.status.view()))
            .collect()
    }

    /// One drain, URL redacted.
    pub fn get(&self, name: &str) -> Option<DrainInfo> {
        self.inner
            .drains
            .lock()
            .get(name)
            .map(|r| DrainInfo::new(r.spec.clone(), r.status.view()))
    }

    /// Saves a named format (a template), after checking it compiles.
    pub fn set_format(&self, name: &str, template: &str) -> Result<(), DrainError> {
        if !crate::spec::valid_name(name)
            || codec::logyard::builtin_format(name).is_some()
            || matches!(name, "verbatim" | "raw" | "json")
        {
            return Err(FormatError::Invalid {
                name: name.to_owned(),
                reason: format!(
                    "format names are {}, and not a built-in name",
                    crate::spec::NAME_RULE
                ),
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

    /// A host name is resolved now, and refused when the policy leaves
    /// none of its addresses. One that does not resolve (or not within
    /// [`ADD_RESOLVE_TIMEOUT`]) is accepted, as Loggregator does: every
    /// connect resolves and checks again.
    fn check_resolved_address(&self, name: &str, url: &DrainUrl) -> Result<(), DrainError> {
        if !url.scheme.is_network() || url.host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        match self
            .inner
            .config
            .policy
            .resolve_blocking(&url.host, url.port, ADD_RESOLVE_TIMEOUT)
        {
            Ok(_) => Ok(()),
            Err(e @ PolicyError::Resolve { .. }) => {
                warn!(drain = %name, error = %e, "the drain's host does not resolve now; added anyway, connects will retry");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A file drain's path inside `[drains] file_dirs` (its missing
    /// directories created), an overwrite drain's file not there yet; TLS
    /// files inside `[drains] tls_dirs` and readable.
    fn check_files(&self, url: &DrainUrl) -> Result<(), DrainError> {
        let paths = &self.inner.paths;
        if url.scheme == crate::spec::Scheme::File {
            let target = paths.prepare_file(&url.path)?;
            if url.overwrite && std::fs::symlink_metadata(&target).is_ok() {
                return Err(PathError::OverwriteExisting {
                    path: url.path.clone(),
                }
                .into());
            }
        }
        for (option, path) in [("ca", &url.ca), ("cert", &url.cert), ("key", &url.key)] {
            if let Some(path) = path {
                paths.tls_file(option, path, true)?;
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
            secrets: crate::redact::secrets(&spec.url),
            ctx: WriterContext {
                name: spec.name.clone(),
                url: url.clone(),
                format,
                policy: Arc::clone(&self.inner.config.policy),
                paths: Arc::clone(&self.inner.paths),
                created: spec.created,
                max_record: self.inner.config.max_record.max(MIN_MAX_RECORD),
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
    /// The URL's secrets, scrubbed from errors before they are shown.
    secrets: Vec<String>,
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
                Err(WriteError::Reject(e)) => {
                    let e = self.scrub(e);
                    warn!(error = %e, "receiver refused a batch; dropped");
                    let n = pending.len() as u64;
                    self.lost(n);
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
                Err(WriteError::Retry(e) | WriteError::Reject(e)) => {
                    let e = self.scrub(e);
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
    .map_err(|reason| DrainError::Spec(SpecError::url(&spec.url, reason)))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use envelope::{Envelope, LogType};
    use router::{Bus, BusConfig, Metrics};
    use tokio_util::sync::CancellationToken;

    use super::{DrainError, DrainManager, DrainsConfig};
    use crate::netpolicy::NetPolicy;
    use crate::spec::DrainSpec;

    use crate::writers::testutil::TempDir as Dir;

    fn manager(data: &Path, tweak: impl FnOnce(&mut DrainsConfig)) -> (DrainManager, Bus) {
        let bus = Bus::new(BusConfig::default(), Arc::new(Metrics::default()));
        let mut config = DrainsConfig::new(data.to_owned());
        tweak(&mut config);
        let (m, problems) = DrainManager::start(bus.clone(), config, CancellationToken::new());
        assert!(problems.is_empty(), "{problems:?}");
        (m, bus)
    }

    fn spec(name: &str, url: &str) -> DrainSpec {
        DrainSpec {
            name: name.into(),
            url: url.into(),
            ..Default::default()
        }
    }

    /// Runs `add` on a blocking thread, as the server does.
    async fn add(m: &DrainManager, s: DrainSpec) -> Result<super::DrainInfo, DrainError> {
        let m = m.clone();
        tokio::task::spawn_blocking(move || m.add(s)).await.unwrap()
    }

    #[tokio::test]
    async fn file_drains_need_file_dirs() {
        let data = Dir::new("filedirs");
        let (m, _) = manager(&data.0, |_| {});
        let target = data.0.join("out.log");
        let err = add(&m, spec("f", &format!("file://{}", target.display())))
            .await
            .unwrap_err();
        assert!(matches!(err, DrainError::Path(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("[drains] file_dirs") && text.contains("--allow-file-dirs"),
            "{text}"
        );
        assert!(!target.exists());

        let logs_dir = Dir::new("filedirs-logs");
        let logs = logs_dir.0.join("logs");
        let (m, _) = manager(&data.0, |c| c.file_dirs = vec![logs.clone()]);
        // Missing directories inside an allowed one are made on add.
        let url = format!("file://{}/sluice/all.log", logs.display());
        add(&m, spec("archive", &url)).await.unwrap();
        assert!(logs.join("sluice").is_dir());
        // `..` does not escape.
        let url = format!("file://{}/../escape.log", logs.display());
        assert!(matches!(
            add(&m, spec("esc", &url)).await,
            Err(DrainError::Path(_))
        ));
        // Never into the data dir, even when an allowed dir holds it.
        let (m2, _) = manager(&data.0, |c| c.file_dirs = vec![data.0.clone()]);
        let url = format!("file://{}/drains/evil.json", data.0.display());
        let err = add(&m2, spec("evil", &url)).await.unwrap_err().to_string();
        assert!(err.contains("data dir"), "{err}");
        // Overwrite never truncates a file that was there before the drain.
        std::fs::write(logs.join("precious.log"), "keep\n").unwrap();
        let url = format!("file://{}/precious.log?overwrite=1", logs.display());
        let err = add(&m, spec("ow", &url)).await.unwrap_err().to_string();
        assert!(err.contains("exists already"), "{err}");
        assert_eq!(
            std::fs::read_to_string(logs.join("precious.log")).unwrap(),
            "keep\n"
        );
    }

    #[tokio::test]
    async fn tls_files_only_from_tls_dirs() {
        let data = Dir::new("tlsdirs");
        let (m, _) = manager(&data.0, |_| {});
        std::fs::write(data.0.join("outside.pem"), "x").unwrap();
        for path in [
            data.0.join("outside.pem"),
            data.0.join("missing.pem"),
            PathBuf::from("/etc/shadow"),
        ] {
            let url = format!("syslog-tls://203.0.113.1:6514?ca={}", path.display());
            let err = add(&m, spec("t", &url)).await.unwrap_err().to_string();
            assert!(err.contains("[drains] tls_dirs"), "{err}");
            assert!(
                !err.contains("No such file") && !err.contains("readable"),
                "{err}"
            );
        }
        // Inside the data dir's tls/, found and read.
        std::fs::create_dir_all(data.0.join("tls")).unwrap();
        let url = "syslog-tls://203.0.113.1:6514?ca=nope.pem";
        let err = add(&m, spec("t", url)).await.unwrap_err().to_string();
        assert!(err.contains("not readable"), "{err}");
    }

    #[tokio::test]
    async fn names_that_are_paths_are_refused() {
        let data = Dir::new("names");
        let (m, _) = manager(&data.0, |_| {});
        for name in [".", "..", ".x", "a/b"] {
            let err = add(&m, spec(name, "udp://203.0.113.1:9"))
                .await
                .unwrap_err();
            assert!(matches!(err, DrainError::Spec(_)), "{name}: {err:?}");
            let err = m.set_format(name, "{{.text}}").unwrap_err();
            assert!(matches!(err, DrainError::Format(_)), "{name}: {err:?}");
        }
        assert!(!data.0.join("drains/..json").exists());
    }

    #[tokio::test]
    async fn names_resolving_to_refused_ranges_are_refused_on_add() {
        let data = Dir::new("ssrf");
        let (m, _) = manager(&data.0, |_| {});
        let err = add(&m, spec("sneaky", "syslog://localhost:9"))
            .await
            .unwrap_err();
        assert!(matches!(err, DrainError::Policy(_)), "{err:?}");
        assert!(err.to_string().contains("--allow-drain-ranges"), "{err}");
        let err = add(&m, spec("v6", "syslog://[64:ff9b::7f00:1]:9"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        // Not resolvable now: accepted; connects retry.
        add(&m, spec("later", "syslog://no-such-host.invalid:514"))
            .await
            .unwrap();
        let (m, _) = manager(&data.0, |c| {
            c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
        });
        add(&m, spec("allowed", "syslog://localhost:9"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn secrets_are_not_shown() {
        let data = Dir::new("redact");
        let (m, _) = manager(&data.0, |c| {
            c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://user:hunter2@127.0.0.1:{port}/in?token=s3cr3t&app=web");
        let info = add(&m, spec("h", &url)).await.unwrap();
        let shown = format!("http://user:***@127.0.0.1:{port}/in?token=***&app=web");
        assert_eq!(info.spec.url, shown);
        assert_eq!(m.get("h").unwrap().spec.url, shown);
        let json = serde_json::to_string(&m.list()).unwrap();
        assert!(
            !json.contains("hunter2") && !json.contains("s3cr3t"),
            "{json}"
        );
        // The persisted definition keeps them, privately.
        let file = data.0.join("drains/h.json");
        assert!(std::fs::read_to_string(&file).unwrap().contains("hunter2"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // An error quoting the URL (a URL error on add) has them masked too.
        let err = add(&m, spec("bad", "https://u:hunter2@h:0/x"))
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// The report: a template of 256 `{{.text}}` actions turned 2.6 MB
    /// of input into 671 MB of output. Through the manager, every line is
    /// cut at `max_record` and the file stays within records × max_record.
    #[tokio::test]
    async fn template_amplification_is_bounded_end_to_end() {
        let data = Dir::new("amplify");
        let logs_dir = Dir::new("amplify-logs");
        let logs = logs_dir.0.join("logs");
        let (m, bus) = manager(&data.0, |c| {
            c.file_dirs = vec![logs.clone()];
            c.max_record = 16 * 1024;
        });
        let mut s = spec("amp", &format!("file://{}/amp.log", logs.display()));
        s.format = Some("{{.text}}".repeat(256));
        add(&m, s).await.unwrap();
        // Wait for the writer to open the file.
        let path = logs.join("amp.log");
        for _ in 0..200 {
            if path.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let payload = Bytes::from("z".repeat(10_000));
        let n = 260; // 2.6 MB in
        bus.publish(
            (0..n)
                .map(|i| Envelope::log(i, "app", "0", payload.clone(), LogType::Out))
                .collect(),
        );
        let mut sent = 0;
        for _ in 0..500 {
            sent = m.get("amp").unwrap().status.sent;
            if sent >= n as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sent, n as u64);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, n as u64 * (16 * 1024 + 1), "bounded output");
        assert_eq!(bus.metrics().dropped("truncated"), n as u64);
    }
}
