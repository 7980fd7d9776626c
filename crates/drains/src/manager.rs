//! [`DrainManager`]: the drains that exist, each run by its own task.
//!
//! Each drain is a durable cursor into the log (DESIGN.md §1): the log
//! consumer `drain.<name>`. Its task reads the log from its cursor
//! ([`feed`](self::feed)), gathers a batch as the writer's [`BatchPolicy`]
//! asks, sends it, and on a connection failure holds that batch, reconnects
//! on Logyard's schedule and sends it again; only once the receiver accepted
//! a batch does the cursor move past it (committed at most every
//! [`COMMIT_EVERY`] and when the drain stops). A receiver that is down only
//! makes its drain fall behind; it catches up in order when it returns.
//! Messages are lost only when the log's retention removes them before the
//! drain sent them, or when the receiver refuses a batch for good; each loss
//! is counted for the drain (status, `/metrics`) and told in the app's own
//! stream by a notice appended to the log: `sluice: N messages lost for app
//! X to drain NAME since T`.
//!
//! A new drain starts at the log's end (messages from now on); a restarted
//! or replaced one resumes from its committed cursor; a deleted one's
//! cursor is forgotten. Tasks of one drain name never overlap: a new task
//! first waits for the one before it (its last commit, or the forget).
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
use codec::notice;
use codec::timestamp::rfc3339_seconds;
use envelope::time::now_ns;
use envelope::{tags, Entry, Envelope, LogType};
use futures_util::FutureExt;
use metrics::{DrainCounters, Metrics};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use sluice_log::{ApiError, Log, Position};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::format::{Format, FormatError};
use crate::netpolicy::{NetPolicy, PolicyError, ADD_RESOLVE_TIMEOUT};
use crate::paths::{PathError, PathPolicy};
use crate::persist::Persist;
use crate::retry::{retry_limit, Next, RetryState};
use crate::shared::{Definitions, Ownership, Solo};
use crate::spec::{DrainSpec, DrainUrl, Scheme, SpecError, Target};
use crate::status::{State, Status, StatusView};
use crate::writers::{self, batch_policy, BatchPolicy, DrainWriter, WriteError, WriterContext};

#[cfg(test)]
mod crash_tests;
mod feed;
#[cfg(test)]
mod log_tests;
mod notices;
mod task;
#[cfg(test)]
mod tests;

pub use feed::{consumer_name, COMMIT_EVERY};
use feed::{Feed, Start};
use task::DrainTask;

/// How long a stopping drain may spend on its last batch.
pub const STOP_FLUSH: Duration = Duration::from_millis(1500);
/// How long `drain test` may take to connect and deliver.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Standing routes are named `route.1`, `route.2`…
pub const STANDING_PREFIX: &str = "route.";
/// Default longest rendered record (`[drains] max_record`).
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024;
/// The smallest `max_record` honoured (a syslog header must fit).
pub const MIN_MAX_RECORD: usize = 1024;

/// Settings of the drain subsystem, from `sluice.toml` `[drains]`.
#[derive(Clone, Debug)]
pub struct DrainsConfig {
    pub data_dir: PathBuf,
    /// Unused: drains read the durable log and have no queue of their own
    /// any more. Kept so `[drains] queue_capacity` in existing
    /// configurations still loads.
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
    /// Standing routes (logspout's route URIs, `[drains] routes`): drain
    /// URLs from the operator, run as `route.1`, `route.2`… for as long as
    /// the server runs; never persisted, never deleted over the API.
    pub routes: Vec<String>,
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
            routes: Vec::new(),
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
    #[error("drain {0:?} is a standing route from the server's command line ([drains] routes or ROUTE_URIS): it cannot be deleted or replaced over the API; remove it there and restart the server")]
    Standing(String),
    #[error("drain names route.1, route.2… are kept for the server's standing routes; choose another name than {0:?}")]
    ReservedName(String),
    #[error("no saved format named {0:?}")]
    FormatNotFound(String),
    #[error("format {name:?} is used by drain{} {}; delete those drains or change their format first", if drains.len() == 1 { "" } else { "s" }, drains.join(", "))]
    FormatInUse { name: String, drains: Vec<String> },
    /// `drain test`: what the receiver or the connection said.
    #[error("{0}")]
    TestFailed(String),
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
    /// A standing route from the server's command line (`[drains]
    /// routes`): not persisted, not deletable over the API.
    pub standing: bool,
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
        DrainInfo {
            spec,
            standing: false,
            status,
        }
    }

    /// `end`: the log's next position, for the status's `behind` (as the
    /// log counts the distance); `owner`: the node delivering it, in a
    /// cluster.
    fn of(r: &Running, end: Option<Position>, owner: Option<String>, log: &dyn Log) -> Self {
        let mut view = r.status.view(end);
        view.behind = r
            .status
            .position()
            .zip(end)
            .map(|(p, e)| log.distance(p, e));
        view.owner = owner;
        let mut info = DrainInfo::new(r.spec.clone(), view);
        info.standing = r.standing;
        info
    }
}

/// What `PUT /v1/drains/NAME` did.
#[derive(Debug)]
pub enum PutOutcome {
    /// A new drain.
    Created(DrainInfo),
    /// The definition replaced a different one of that name.
    Replaced(DrainInfo),
    /// The same definition was there already (nothing changed; the caller
    /// restarts it when it is not running, see [`DrainManager::restart`]).
    Unchanged(DrainInfo),
}

struct Running {
    spec: DrainSpec,
    /// What the drain's writers are made from (also used by `drain test`).
    ctx: WriterContext,
    standing: bool,
    /// Bumped on every restart, so concurrent restarts start one task.
    generation: u64,
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
    log: Arc<dyn Log>,
    metrics: Arc<Metrics>,
    config: DrainsConfig,
    paths: Arc<PathPolicy>,
    definitions: Arc<dyn Definitions>,
    ownership: Arc<dyn Ownership>,
    drains: Mutex<BTreeMap<String, Running>>,
    /// Tasks of replaced or deleted drains still finishing (their last
    /// batch and commit, or the forget of a deleted drain's cursor), by
    /// name: the next task of that name waits for it.
    retiring: Mutex<HashMap<String, JoinHandle<()>>>,
    formats: RwLock<HashMap<String, String>>,
    /// Serialises add and delete, so a name's check, file and task change
    /// together (adds run in parallel on blocking threads).
    changes: Mutex<()>,
    shutdown: CancellationToken,
}

impl DrainManager {
    /// Starts the standing routes (`config.routes`), then loads the
    /// persisted drains and formats and starts every drain, each reading
    /// `log` (the log ingest appends to) from its committed cursor.
    /// Returns the manager and one message per route or file that was
    /// skipped.
    pub fn start(
        log: Arc<dyn Log>,
        metrics: Arc<Metrics>,
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
        Self::start_shared(
            log,
            metrics,
            config,
            shutdown,
            Arc::new(persist),
            Arc::new(Solo),
        )
    }

    /// [`start`](Self::start) with definitions kept in `definitions` and
    /// drains delivered when `ownership` says so (a cluster,
    /// [`crate::shared`]). Loads the definitions (blocking).
    pub fn start_shared(
        log: Arc<dyn Log>,
        metrics: Arc<Metrics>,
        config: DrainsConfig,
        shutdown: CancellationToken,
        definitions: Arc<dyn Definitions>,
        ownership: Arc<dyn Ownership>,
    ) -> (Self, Vec<String>) {
        let (formats, mut problems) = definitions.load_formats();
        let (specs, drain_problems) = definitions.load_drains();
        problems.extend(drain_problems);
        let paths = Arc::new(config.path_policy());
        let routes = config.routes.clone();
        let manager = DrainManager {
            inner: Arc::new(Inner {
                log,
                metrics,
                config,
                paths,
                definitions,
                ownership,
                drains: Mutex::new(BTreeMap::new()),
                retiring: Mutex::new(HashMap::new()),
                formats: RwLock::new(formats.into_iter().collect()),
                changes: Mutex::new(()),
                shutdown,
            }),
        };
        for (i, url) in routes.iter().enumerate() {
            let spec = DrainSpec {
                name: format!("{STANDING_PREFIX}{}", i + 1),
                url: url.clone(),
                ..Default::default()
            };
            if let Err(e) = manager.start_standing(spec) {
                problems.push(format!(
                    "route {} ({}): {e}; not started",
                    i + 1,
                    crate::redact::url(url)
                ));
            }
        }
        for spec in specs {
            let name = spec.name.clone();
            if let Err(e) = manager.launch(spec, false, Start::Resume) {
                problems.push(format!("drain {name:?}: {e}; not started"));
            }
        }
        (manager, problems)
    }

    /// A standing route: the operator's own, so the address policy does
    /// not apply (the metadata address still needs naming exactly in
    /// `[drains] allow_ranges`); file routes stay inside `file_dirs`.
    fn start_standing(&self, spec: DrainSpec) -> Result<(), DrainError> {
        let url = spec.validate()?;
        self.resolve_format(&spec, &url)?;
        spec_extras(&spec)?;
        self.check_files(&url, true)?;
        self.launch(spec, true, Start::Resume)
    }

    /// Validates, persists and starts a new drain; an empty name gets a
    /// fresh one (`d.` and 8 hex digits, as Logplex names drains).
    /// Blocking: it may resolve the host (up to [`ADD_RESOLVE_TIMEOUT`])
    /// and touches files.
    pub fn add(&self, mut spec: DrainSpec) -> Result<DrainInfo, DrainError> {
        if spec.name.is_empty() {
            spec.name = self.fresh_name();
        }
        let url = self.check_new(&spec)?;
        let _change = self.inner.changes.lock();
        {
            let drains = self.inner.drains.lock();
            if drains.contains_key(&spec.name) {
                return Err(DrainError::Exists(spec.name));
            }
            self.check_limits(&drains, &spec, None)?;
        }
        self.check_files(&url, true)?;
        // Again under the lock: a saved format may have been deleted since.
        self.resolve_format(&spec, &url)?;
        // Never taken from the caller: `?overwrite=1` truncates only files
        // born after this.
        spec.created = now_ns();
        let name = spec.name.clone();
        // From the log's end as of now (when the log can say at once; else
        // as of the task's start).
        let end = self
            .inner
            .log
            .end_cursor()
            .now_or_never()
            .and_then(Result::ok);
        // Shared drains start where the cursor committed here says:
        // whichever node takes the drain, whenever (a task that started as
        // New would commit this end again when it took the drain over
        // later, and send everything since a second time).
        let start = match (self.inner.ownership.shared(), end) {
            (true, Some(end)) => {
                self.commit_blocking(&name, end)?;
                Start::Resume
            }
            _ => Start::New(end),
        };
        self.inner.definitions.save_drain(&spec)?;
        self.launch(spec, false, start)?;
        info!(drain = %name, "drain added");
        self.get(&name).ok_or(DrainError::NotFound(name))
    }

    /// `PUT /v1/drains/NAME`: creates the drain, replaces a different
    /// definition of that name, or leaves the same one as it is (the
    /// caller restarts it when it is not running). `created` is not part
    /// of the definition. Blocking, as [`add`](Self::add).
    pub fn put(&self, mut spec: DrainSpec) -> Result<PutOutcome, DrainError> {
        let existing = self
            .inner
            .drains
            .lock()
            .get(&spec.name)
            .map(|r| (r.spec.clone(), r.standing));
        let Some((old, standing)) = existing else {
            return self.add(spec).map(PutOutcome::Created);
        };
        if standing {
            return Err(DrainError::Standing(spec.name));
        }
        spec.created = old.created;
        if spec == old {
            let name = spec.name.clone();
            return self
                .get(&name)
                .map(PutOutcome::Unchanged)
                .ok_or(DrainError::NotFound(name));
        }
        let url = self.check_new(&spec)?;
        let _change = self.inner.changes.lock();
        let old_url = {
            let drains = self.inner.drains.lock();
            let Some(current) = drains.get(&spec.name) else {
                return Err(DrainError::NotFound(spec.name));
            };
            if current.spec != old {
                // Changed meanwhile; the caller may try again.
                return Err(DrainError::Exists(spec.name));
            }
            self.check_limits(&drains, &spec, Some(&spec.name))?;
            current.spec.url.clone()
        };
        // The same file stays the drain's own (created, overwrite); a new
        // URL is a new drain as far as files go.
        let same_url = old_url == spec.url;
        self.check_files(&url, !same_url)?;
        self.resolve_format(&spec, &url)?;
        if !same_url {
            spec.created = now_ns();
            crate::writers::file::forget_overwrite(&spec.name);
        }
        self.inner.definitions.save_drain(&spec)?;
        let name = spec.name.clone();
        let prepared = self.prepare(spec, false)?;
        {
            let mut drains = self.inner.drains.lock();
            // The old task finishes its batch to the old receiver and
            // commits; the new one resumes from there.
            let old = drains.remove(&name);
            let predecessor = old.map(|old| {
                old.cancel.cancel();
                old.task
            });
            drains.insert(name.clone(), self.run(prepared, Start::Resume, predecessor));
        }
        info!(drain = %name, "drain replaced");
        self.get(&name)
            .map(PutOutcome::Replaced)
            .ok_or(DrainError::NotFound(name))
    }

    /// Stops the drain's task (letting it finish a send under way, within
    /// [`STOP_FLUSH`]) and starts it again from its definition, with a
    /// fresh retry schedule: what `sluice drain restart` does for a FATAL
    /// drain whose cause has gone. Its counters carry on; its last error
    /// is cleared.
    pub async fn restart(&self, name: &str) -> Result<DrainInfo, DrainError> {
        let (old_task, generation) = {
            let _change = self.inner.changes.lock();
            let mut drains = self.inner.drains.lock();
            let r = drains
                .get_mut(name)
                .ok_or_else(|| DrainError::NotFound(name.to_owned()))?;
            r.cancel.cancel();
            (
                std::mem::replace(&mut r.task, tokio::spawn(async {})),
                r.generation,
            )
        };
        let mut old_task = old_task;
        let ended = tokio::time::timeout(STOP_FLUSH + Duration::from_secs(1), &mut old_task)
            .await
            .is_ok();
        // An aborted task ends at once; the new task awaits it, so its end
        // comes before the new task reads the cursor.
        let predecessor = if ended {
            None
        } else {
            old_task.abort();
            Some(old_task)
        };
        let _change = self.inner.changes.lock();
        let mut drains = self.inner.drains.lock();
        let r = drains
            .get_mut(name)
            .ok_or_else(|| DrainError::NotFound(name.to_owned()))?;
        if r.generation == generation {
            r.status.restart(now_ns());
            let mut prepared = self.prepare(r.spec.clone(), r.standing)?;
            prepared.status = Arc::clone(&r.status);
            let fresh = self.run(prepared, Start::Resume, predecessor);
            *r = Running {
                generation: generation + 1,
                ..fresh
            };
            info!(drain = %name, "drain restarted");
        }
        Ok(DrainInfo::of(
            r,
            self.log_end(),
            self.inner.ownership.owner(name),
            self.inner.log.as_ref(),
        ))
    }

    /// The drain, once its task has left STARTING (or `within` passed).
    pub async fn settled(&self, name: &str, within: Duration) -> Option<DrainInfo> {
        let deadline = Instant::now() + within;
        loop {
            let info = self.get(name)?;
            if info.status.state != State::Starting || Instant::now() >= deadline {
                return Some(info);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every drain knows its place in the log (or is FATAL),
    /// at most `within`: the server calls it before it takes in anything,
    /// so a drain that starts at the log's end (a standing route on a new
    /// data dir) misses nothing sent after the server said it listens.
    pub async fn placed(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline
            && !self
                .list()
                .iter()
                .all(|d| d.status.behind.is_some() || d.status.state == State::Fatal)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops and forgets a drain; standing routes are refused.
    pub fn delete(&self, name: &str) -> Result<(), DrainError> {
        let _change = self.inner.changes.lock();
        let running = {
            let mut drains = self.inner.drains.lock();
            match drains.get(name) {
                None => return Err(DrainError::NotFound(name.to_owned())),
                Some(r) if r.standing => return Err(DrainError::Standing(name.to_owned())),
                Some(_) => {}
            }
            drains
                .remove(name)
                .ok_or_else(|| DrainError::NotFound(name.to_owned()))?
        };
        running.cancel.cancel();
        running.task.abort();
        // The cursor goes once the task has ended (an aborted task ends at
        // its next step); a drain added again under this name waits for it.
        let log = Arc::clone(&self.inner.log);
        let consumer = consumer_name(name);
        let earlier = self.inner.retiring.lock().remove(name);
        let task = running.task;
        let forget = tokio::spawn(async move {
            let _ = task.await;
            if let Some(earlier) = earlier {
                let _ = earlier.await;
            }
            if let Err(e) = log.forget(&consumer).await {
                warn!(consumer = %consumer, error = %e, "cannot forget a deleted drain's cursor");
            }
        });
        self.inner.retiring.lock().insert(name.to_owned(), forget);
        crate::writers::file::forget_overwrite(name);
        self.inner.definitions.delete_drain(name)?;
        self.inner.metrics.forget_drain(name);
        info!(drain = %name, "drain deleted");
        Ok(())
    }

    /// Every drain, URLs redacted.
    pub fn list(&self) -> Vec<DrainInfo> {
        let end = self.log_end();
        self.inner
            .drains
            .lock()
            .values()
            .map(|r| {
                let owner = self.inner.ownership.owner(&r.spec.name);
                DrainInfo::of(r, end, owner, self.inner.log.as_ref())
            })
            .collect()
    }

    /// One drain, URL redacted.
    pub fn get(&self, name: &str) -> Option<DrainInfo> {
        let end = self.log_end();
        self.inner.drains.lock().get(name).map(|r| {
            DrainInfo::of(
                r,
                end,
                self.inner.ownership.owner(name),
                self.inner.log.as_ref(),
            )
        })
    }

    /// The log's next position, when the log can say without waiting
    /// (both local logs can); `None` leaves `behind` out of the status.
    fn log_end(&self) -> Option<Position> {
        self.inner
            .log
            .end_cursor()
            .now_or_never()
            .and_then(Result::ok)
            .map(|c| c.next())
    }

    /// `sluice drain test NAME`: one Log envelope from source `sluice`
    /// (`sluice drain test for NAME at <time>`) through the drain's format,
    /// over a writer and connection of its own (the running drain is not
    /// touched), within [`TEST_TIMEOUT`]. `Ok` says where it went; the
    /// error is what the receiver or the connection said.
    pub async fn test(&self, name: &str) -> Result<String, DrainError> {
        let (mut ctx, secrets) = {
            let drains = self.inner.drains.lock();
            let r = drains
                .get(name)
                .ok_or_else(|| DrainError::NotFound(name.to_owned()))?;
            (r.ctx.clone(), crate::redact::secrets(&r.spec.url))
        };
        // Never truncate a file for a test.
        if let Target::File(file) = &mut ctx.url.target {
            file.overwrite = false;
        }
        let scrub = |text: String| crate::redact::scrub(&text, &secrets);
        let target = match &ctx.url.target {
            Target::File(file) => file.path.clone(),
            _ => ctx
                .url
                .endpoint()
                .map_or_else(String::new, |e| crate::writers::host_port(&e.host, e.port)),
        };
        let now = now_ns();
        let text = format!("sluice drain test for {name} at {}", rfc3339_seconds(now));
        let mut env = Envelope::log(now, "sluice", "", Bytes::from(text), LogType::Out);
        env.tags
            .insert(tags::SOURCE_TYPE.to_owned(), notice::SOURCE_TYPE.to_owned());
        let batch = [Arc::new(Entry::new(env))];
        let attempt = async {
            let mut writer = writers::connect(&ctx).await?;
            writer.send(&batch).await
        };
        match tokio::time::timeout(TEST_TIMEOUT, attempt).await {
            Ok(Ok(_)) if matches!(ctx.url.scheme(), Scheme::Udp | Scheme::SyslogUdp) => Ok(
                format!("sent to {target} (UDP: the receiver does not acknowledge)"),
            ),
            Ok(Ok(_)) => Ok(format!("delivered to {target}")),
            Ok(Err(e)) => Err(DrainError::TestFailed(scrub(e.to_string()))),
            Err(_) => Err(DrainError::TestFailed(format!(
                "no answer from {target} within {} s",
                TEST_TIMEOUT.as_secs()
            ))),
        }
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
        self.inner.definitions.save_format(name, template)?;
        self.inner
            .formats
            .write()
            .insert(name.to_owned(), template.to_owned());
        Ok(())
    }

    /// Deletes a saved format; refused while a drain uses it (naming the
    /// drains). Blocking: it removes a file.
    pub fn delete_format(&self, name: &str) -> Result<(), DrainError> {
        let _change = self.inner.changes.lock();
        if !self.inner.formats.read().contains_key(name) {
            return Err(DrainError::FormatNotFound(name.to_owned()));
        }
        let users: Vec<String> = self
            .inner
            .drains
            .lock()
            .values()
            .filter(|r| r.spec.format_name(&r.ctx.url) == Some(name))
            .map(|r| r.spec.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(DrainError::FormatInUse {
                name: name.to_owned(),
                drains: users,
            });
        }
        self.inner.definitions.delete_format(name)?;
        self.inner.formats.write().remove(name);
        info!(format = %name, "format deleted");
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

    /// Stops every drain (state STOPPED): a send under way may finish
    /// within [`STOP_FLUSH`], and each drain commits its cursor. Used at
    /// shutdown.
    pub async fn stop_all(&self, deadline: Duration) {
        let mut tasks: Vec<JoinHandle<()>> = {
            let mut drains = self.inner.drains.lock();
            drains
                .values_mut()
                .map(|r| {
                    r.cancel.cancel();
                    std::mem::replace(&mut r.task, tokio::spawn(async {}))
                })
                .collect()
        };
        tasks.extend(self.inner.retiring.lock().drain().map(|(_, t)| t));
        let _ = tokio::time::timeout(deadline, futures_util::future::join_all(tasks)).await;
        // Tasks past the deadline are aborted when the runtime shuts down.
    }

    /// Commits a drain's first cursor from a blocking path (a cluster's
    /// add: whichever node takes the drain starts there).
    fn commit_blocking(&self, name: &str, cursor: sluice_log::Cursor) -> Result<(), DrainError> {
        let log = Arc::clone(&self.inner.log);
        let consumer = consumer_name(name);
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| handle.block_on(log.commit(&consumer, cursor)))
            .map_err(|e| DrainError::Persist(std::io::Error::other(e.to_string())))
    }

    /// A definition another node shared (a cluster's watch): started,
    /// or replacing a different one of that name; the same one is left as
    /// it is. Nothing is saved (it was, by the node that made it).
    pub fn apply_shared(&self, spec: DrainSpec) -> Result<(), DrainError> {
        let _change = self.inner.changes.lock();
        let name = spec.name.clone();
        let mut drains = self.inner.drains.lock();
        match drains.get(&name) {
            Some(r) if r.standing => return Err(DrainError::Standing(name)),
            Some(r) if r.spec == spec => return Ok(()),
            _ => {}
        }
        let prepared = self.prepare(spec, false)?;
        let predecessor = match drains.remove(&name) {
            Some(old) => {
                old.cancel.cancel();
                Some(old.task)
            }
            None => self.inner.retiring.lock().remove(&name),
        };
        drains.insert(name.clone(), self.run(prepared, Start::Resume, predecessor));
        info!(drain = %name, "drain defined by another node");
        Ok(())
    }

    /// A drain another node deleted: stopped here (its cursor is that
    /// node's to forget).
    pub fn apply_shared_delete(&self, name: &str) {
        let _change = self.inner.changes.lock();
        let Some(running) = self.inner.drains.lock().remove(name) else {
            return;
        };
        if running.standing {
            self.inner.drains.lock().insert(name.to_owned(), running);
            return;
        }
        running.cancel.cancel();
        self.inner
            .retiring
            .lock()
            .insert(name.to_owned(), running.task);
        self.inner.metrics.forget_drain(name);
        info!(drain = %name, "drain deleted by another node");
    }

    /// A saved format another node set (`Some`) or deleted (`None`).
    pub fn apply_shared_format(&self, name: &str, template: Option<String>) {
        let mut formats = self.inner.formats.write();
        match template {
            Some(t) => formats.insert(name.to_owned(), t),
            None => formats.remove(name),
        };
    }

    /// A name no drain has: `d.` and 8 random hex digits.
    fn fresh_name(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            h.write_i64(now_ns());
            let name = format!("d.{:08x}", h.finish() as u32);
            if !self.inner.drains.lock().contains_key(&name) {
                return name;
            }
        }
    }

    /// Everything checked about a new definition before the lock is
    /// taken: name, URL, route options, format, addresses.
    fn check_new(&self, spec: &DrainSpec) -> Result<DrainUrl, DrainError> {
        let url = spec.validate()?;
        if is_standing_name(&spec.name) {
            return Err(DrainError::ReservedName(spec.name.clone()));
        }
        self.check_literal_address(&url)?;
        self.resolve_format(spec, &url)?;
        spec_extras(spec)?;
        self.check_resolved_address(&spec.name, &url)?;
        Ok(url)
    }

    /// Drain count and per-app limits, not counting `replacing`.
    fn check_limits(
        &self,
        drains: &BTreeMap<String, Running>,
        spec: &DrainSpec,
        replacing: Option<&str>,
    ) -> Result<(), DrainError> {
        let others = || {
            drains
                .values()
                .filter(move |d| Some(d.spec.name.as_str()) != replacing)
        };
        if replacing.is_none() && drains.len() >= self.inner.config.max_drains {
            return Err(DrainError::TooMany(self.inner.config.max_drains));
        }
        let limit = self.inner.config.per_app_limit;
        for app in &spec.apps {
            if others().filter(|d| d.spec.apps.contains(app)).count() >= limit {
                return Err(DrainError::PerAppLimit {
                    limit,
                    app: app.clone(),
                });
            }
        }
        Ok(())
    }
    fn check_literal_address(&self, url: &DrainUrl) -> Result<(), DrainError> {
        if let Some(endpoint) = url.endpoint() {
            if let Ok(ip) = endpoint.host.parse::<std::net::IpAddr>() {
                self.inner.config.policy.check(&endpoint.host, ip)?;
            }
        }
        Ok(())
    }

    /// A host name is resolved now, and refused when the policy leaves
    /// none of its addresses. One that does not resolve (or not within
    /// [`ADD_RESOLVE_TIMEOUT`]) is accepted, as Loggregator does: every
    /// connect resolves and checks again.
    fn check_resolved_address(&self, name: &str, url: &DrainUrl) -> Result<(), DrainError> {
        let Some(endpoint) = url.endpoint() else {
            return Ok(());
        };
        if endpoint.host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        match self.inner.config.policy.resolve_blocking(
            &endpoint.host,
            endpoint.port,
            ADD_RESOLVE_TIMEOUT,
        ) {
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
    ///
    /// `new_file`: an overwrite drain's file must not exist yet (on add,
    /// and when a replacement names another URL).
    fn check_files(&self, url: &DrainUrl, new_file: bool) -> Result<(), DrainError> {
        let paths = &self.inner.paths;
        if let Target::File(file) = &url.target {
            let target = paths.prepare_file(&file.path)?;
            if new_file && file.overwrite && std::fs::symlink_metadata(&target).is_ok() {
                return Err(PathError::OverwriteExisting {
                    path: file.path.clone(),
                }
                .into());
            }
        }
        for (option, path) in url.tls().into_iter().flat_map(|tls| tls.named()) {
            paths.tls_file(option, path, true)?;
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

    /// Starts a drain under a name no drain has.
    fn launch(&self, spec: DrainSpec, standing: bool, start: Start) -> Result<(), DrainError> {
        let prepared = self.prepare(spec, standing)?;
        let predecessor = self.inner.retiring.lock().remove(&prepared.spec.name);
        let running = self.run(prepared, start, predecessor);
        match self.inner.drains.lock().entry(running.spec.name.clone()) {
            std::collections::btree_map::Entry::Occupied(slot) => {
                // Never leak a running task.
                running.cancel.cancel();
                running.task.abort();
                Err(DrainError::Exists(slot.key().clone()))
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(running);
                Ok(())
            }
        }
    }

    /// Everything a drain's task is made from, checked (the fallible part
    /// of starting a drain). Its status is fresh; a restart puts the old
    /// one in.
    fn prepare(&self, spec: DrainSpec, standing: bool) -> Result<Prepared, DrainError> {
        let url = spec.validate()?;
        let format = self.resolve_format(&spec, &url)?;
        let extras = spec_extras(&spec)?;
        let policy = if standing {
            Arc::new(self.inner.config.policy.widened())
        } else {
            Arc::clone(&self.inner.config.policy)
        };
        let ctx = WriterContext {
            name: spec.name.clone(),
            url: url.clone(),
            format,
            policy,
            paths: Arc::clone(&self.inner.paths),
            created: spec.created,
            max_record: self.inner.config.max_record.max(MIN_MAX_RECORD),
            metrics: Arc::clone(&self.inner.metrics),
            syslog_extras: Arc::new(extras),
        };
        Ok(Prepared {
            selector: spec.selector(&url),
            spec,
            ctx,
            standing,
            status: Arc::new(Status::new(now_ns())),
        })
    }

    /// Starts a prepared drain's task from `start`, after `predecessor`
    /// (the task that ran this name before) has ended; the caller puts it
    /// in the map.
    fn run(
        &self,
        prepared: Prepared,
        start: Start,
        predecessor: Option<JoinHandle<()>>,
    ) -> Running {
        let Prepared {
            spec,
            ctx,
            selector,
            standing,
            status,
        } = prepared;
        let cancel = self.inner.shutdown.child_token();
        let counters = self.inner.metrics.drain_counters(&spec.name);
        let feed = Feed::new(
            Arc::clone(&self.inner.log),
            &spec.name,
            selector,
            Arc::clone(&status),
            counters.clone(),
        );
        let task = DrainTask {
            secrets: crate::redact::secrets(&spec.url),
            ctx: ctx.clone(),
            policy: batch_policy(ctx.url.scheme()),
            app: spec.apps.first().cloned(),
            retry: RetryState::new(retry_limit(&spec.name, !spec.apps.is_empty())),
            counters,
            status: Arc::clone(&status),
            log: Arc::clone(&self.inner.log),
            ownership: Arc::clone(&self.inner.ownership),
            feed,
            start,
            predecessor,
            cancel: cancel.clone(),
            lease_lost: CancellationToken::new(),
        };
        let span = info_span!("drain", name = %spec.name);
        let task = tokio::spawn(task.run().instrument(span));
        Running {
            spec,
            ctx,
            standing,
            generation: 0,
            status,
            cancel,
            task,
        }
    }
}

/// A drain checked and ready to run ([`DrainManager::prepare`]).
struct Prepared {
    spec: DrainSpec,
    ctx: WriterContext,
    selector: envelope::Selector,
    standing: bool,
    status: Arc<Status>,
}

/// The route options of a spec, checked.
fn spec_extras(spec: &DrainSpec) -> Result<codec::loggregator::SyslogExtras, DrainError> {
    codec::loggregator::SyslogExtras::parse(
        spec.append_tag.as_deref(),
        spec.structured_data.as_deref(),
    )
    .map_err(|reason| DrainError::Spec(SpecError::url(&spec.url, reason)))
}

/// `route.N`: the names of standing routes.
fn is_standing_name(name: &str) -> bool {
    name.strip_prefix(STANDING_PREFIX)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
