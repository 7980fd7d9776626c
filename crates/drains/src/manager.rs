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
use codec::notice;
use codec::timestamp::rfc3339_seconds;
use envelope::time::now_ns;
use envelope::{tags, Entry, Envelope, LogType};
use metrics::DrainCounters;
use parking_lot::{Mutex, RwLock};
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
use crate::spec::{DrainSpec, DrainUrl, Scheme, SpecError, Target};
use crate::status::{State, Status, StatusView};
use crate::writers::{self, batch_policy, BatchPolicy, DrainWriter, WriteError, WriterContext};

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

    fn of(r: &Running) -> Self {
        let mut info = DrainInfo::new(r.spec.clone(), r.status.view());
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
    /// Starts the standing routes (`config.routes`), then loads the
    /// persisted drains and formats and starts every drain. Returns the
    /// manager and one message per route or file that was skipped.
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
        let routes = config.routes.clone();
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
            if let Err(e) = manager.launch(spec, false) {
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
        self.launch(spec, true)
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
        self.inner.persist.save_drain(&spec)?;
        let name = spec.name.clone();
        self.launch(spec, false)?;
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
        self.inner.persist.save_drain(&spec)?;
        let name = spec.name.clone();
        let running = self.spawn(spec, false, None)?;
        if let Some(old) = self.inner.drains.lock().insert(name.clone(), running) {
            // Finishes its batch and flushes to the old receiver.
            old.cancel.cancel();
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
        let abort = old_task.abort_handle();
        if tokio::time::timeout(STOP_FLUSH + Duration::from_secs(1), old_task)
            .await
            .is_err()
        {
            abort.abort();
        }
        let _change = self.inner.changes.lock();
        let mut drains = self.inner.drains.lock();
        let r = drains
            .get_mut(name)
            .ok_or_else(|| DrainError::NotFound(name.to_owned()))?;
        if r.generation == generation {
            r.status.restart(now_ns());
            let fresh = self.spawn(r.spec.clone(), r.standing, Some(Arc::clone(&r.status)))?;
            *r = Running {
                generation: generation + 1,
                ..fresh
            };
            info!(drain = %name, "drain restarted");
        }
        Ok(DrainInfo::of(r))
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
            .map(DrainInfo::of)
            .collect()
    }

    /// One drain, URL redacted.
    pub fn get(&self, name: &str) -> Option<DrainInfo> {
        self.inner.drains.lock().get(name).map(DrainInfo::of)
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
        self.inner.persist.save_format(name, template)?;
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
        self.inner.persist.delete_format(name)?;
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
    fn launch(&self, spec: DrainSpec, standing: bool) -> Result<(), DrainError> {
        let running = self.spawn(spec, standing, None)?;
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

    /// Starts a drain's task (with `status` when it carries on from a
    /// restart); the caller puts it in the map.
    fn spawn(
        &self,
        spec: DrainSpec,
        standing: bool,
        status: Option<Arc<Status>>,
    ) -> Result<Running, DrainError> {
        let url = spec.validate()?;
        let format = self.resolve_format(&spec, &url)?;
        let extras = spec_extras(&spec)?;
        let metrics = Arc::clone(self.inner.bus.metrics());
        let status = status.unwrap_or_else(|| Arc::new(Status::new(now_ns())));
        let cancel = self.inner.shutdown.child_token();
        let policy = if standing {
            Arc::new(self.inner.config.policy.widened())
        } else {
            Arc::clone(&self.inner.config.policy)
        };
        let subscription = self.inner.bus.subscribe_with_capacity(
            spec.selector(&url),
            "drain",
            self.inner.config.queue_capacity.max(1),
        );
        let ctx = WriterContext {
            name: spec.name.clone(),
            url: url.clone(),
            format,
            policy,
            paths: Arc::clone(&self.inner.paths),
            created: spec.created,
            max_record: self.inner.config.max_record.max(MIN_MAX_RECORD),
            metrics: Arc::clone(&metrics),
            syslog_extras: Arc::new(extras),
        };
        let task = DrainTask {
            carry: std::collections::VecDeque::new(),
            secrets: crate::redact::secrets(&spec.url),
            ctx: ctx.clone(),
            policy: batch_policy(url.scheme()),
            app: spec.apps.first().cloned(),
            retry: RetryState::new(retry_limit(&spec.name, !spec.apps.is_empty())),
            counters: metrics.drain_counters(&spec.name),
            status: Arc::clone(&status),
            subscription,
            bus: self.inner.bus.clone(),
            cancel: cancel.clone(),
        };
        let span = info_span!("drain", name = %spec.name);
        let task = tokio::spawn(task.run().instrument(span));
        Ok(Running {
            spec,
            ctx,
            standing,
            generation: 0,
            status,
            cancel,
            task,
        })
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
        self.bus.publish(vec![told]);
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

/// `route.N`: the names of standing routes.
fn is_standing_name(name: &str) -> bool {
    name.strip_prefix(STANDING_PREFIX)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use envelope::{Envelope, LogType};
    use metrics::Metrics;
    use router::{Bus, BusConfig};
    use tokio_util::sync::CancellationToken;

    use super::{DrainError, DrainManager, DrainsConfig, PutOutcome};
    use crate::netpolicy::NetPolicy;
    use crate::spec::DrainSpec;
    use crate::status::State;

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

    async fn wait_state(m: &DrainManager, name: &str, state: State) -> super::DrainInfo {
        for _ in 0..400 {
            let info = m.get(name).unwrap();
            if info.status.state == state {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name} never {state:?}: {:?}", m.get(name));
    }

    #[tokio::test]
    async fn empty_names_get_a_logplex_style_one() {
        let data = Dir::new("autoname");
        let (m, _) = manager(&data.0, |_| {});
        let a = add(&m, spec("", "udp://203.0.113.1:9")).await.unwrap();
        let b = add(&m, spec("", "udp://203.0.113.1:9")).await.unwrap();
        for name in [&a.spec.name, &b.spec.name] {
            let hex = name.strip_prefix("d.").unwrap_or_default();
            assert!(
                hex.len() == 8 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
                "{name}"
            );
            assert!(data.0.join(format!("drains/{name}.json")).exists());
        }
        assert_ne!(a.spec.name, b.spec.name);
    }

    /// A drain FATAL because its file's path is a directory: restart
    /// (and PUT of the same definition, through the server) retries once
    /// the cause is gone; counters carry on, the error is cleared.
    #[tokio::test]
    async fn restart_retries_a_fatal_drain() {
        let data = Dir::new("restart");
        let logs = Dir::new("restart-logs");
        let target = logs.0.join("all.log");
        std::fs::create_dir_all(&target).unwrap();
        let saved = spec("arch", &format!("file://{}", target.display()));
        crate::persist::Persist::new(&data.0)
            .save_drain(&saved)
            .unwrap();
        let (m, bus) = manager(&data.0, |c| c.file_dirs = vec![logs.0.clone()]);
        let fatal = wait_state(&m, "arch", State::Fatal).await;
        assert!(
            fatal.status.last_error.unwrap().contains("a directory"),
            "{:?}",
            m.get("arch")
        );
        // Nothing changes by itself.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(m.get("arch").unwrap().status.state, State::Fatal);
        std::fs::remove_dir(&target).unwrap();
        let info = m.restart("arch").await.unwrap();
        assert!(info.status.last_error.is_none(), "{info:?}");
        wait_state(&m, "arch", State::Running).await;
        bus.publish(vec![Envelope::log(
            1,
            "app",
            "0",
            Bytes::from("back"),
            LogType::Out,
        )]);
        for _ in 0..200 {
            if std::fs::read_to_string(&target).unwrap_or_default() == "back\n" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "back\n");
        // Concurrent restarts start one task; an unknown name is NotFound.
        let (a, b) = tokio::join!(m.restart("arch"), m.restart("arch"));
        assert!(a.is_ok() && b.is_ok());
        wait_state(&m, "arch", State::Running).await;
        assert_eq!(m.get("arch").unwrap().status.sent, 1);
        assert!(matches!(
            m.restart("nope").await,
            Err(DrainError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn put_creates_keeps_or_replaces() {
        let data = Dir::new("put");
        let (m, _) = manager(&data.0, |c| c.per_app_limit = 1);
        let put = |s: DrainSpec| {
            let m = m.clone();
            async move { tokio::task::spawn_blocking(move || m.put(s)).await.unwrap() }
        };
        let mut s = spec("p", "udp://203.0.113.1:9");
        s.apps = vec!["web".into()];
        assert!(matches!(
            put(s.clone()).await.unwrap(),
            PutOutcome::Created(_)
        ));
        let created = m.get("p").unwrap().spec.created;
        match put(s.clone()).await.unwrap() {
            PutOutcome::Unchanged(info) => assert_eq!(info.spec.created, created),
            other => panic!("{other:?}"),
        }
        // A different definition replaces it (the per-app limit does not
        // count the drain being replaced).
        s.url = "udp://203.0.113.1:10".into();
        match put(s.clone()).await.unwrap() {
            PutOutcome::Replaced(info) => assert_eq!(info.spec.url, s.url),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.list().len(), 1);
        let saved = std::fs::read_to_string(data.0.join("drains/p.json")).unwrap();
        assert!(saved.contains("203.0.113.1:10"), "{saved}");
        // Invalid replacements leave the drain as it was.
        s.url = "gopher://h:1".into();
        assert!(matches!(put(s).await, Err(DrainError::Spec(_))));
        assert_eq!(m.get("p").unwrap().spec.url, "udp://203.0.113.1:10");
    }

    #[tokio::test]
    async fn standing_routes_run_unpersisted_and_stay() {
        let data = Dir::new("standing");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The default policy refuses loopback: routes are the operator's.
        let (m, bus) = manager(&data.0, |c| {
            c.routes = vec![
                format!("raw+tcp://127.0.0.1:{port}"),
                "syslog+tls://203.0.113.1:6514".into(),
            ]
        });
        let names: Vec<String> = m.list().into_iter().map(|d| d.spec.name).collect();
        assert_eq!(names, ["route.1", "route.2"]);
        assert!(m.list().iter().all(|d| d.standing));
        assert!(!data.0.join("drains").join("route.1.json").exists());
        let (mut conn, _) = listener.accept().await.unwrap();
        wait_state(&m, "route.1", State::Running).await;
        bus.publish(vec![
            Envelope::event(1, "cc", "app.start", "x"),
            Envelope::log(2, "any-app", "0", Bytes::from("line"), LogType::Out),
        ]);
        let mut buf = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut conn, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf, b"line\n", "logs only, every app");
        let err = m.delete("route.1").unwrap_err();
        assert!(matches!(err, DrainError::Standing(_)), "{err:?}");
        assert!(err.to_string().contains("command line"), "{err}");
        let m2 = m.clone();
        let s = spec("route.1", "udp://203.0.113.1:9");
        let err = tokio::task::spawn_blocking(move || m2.put(s))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, DrainError::Standing(_)), "{err:?}");
        // Their names are kept for them.
        let err = add(&m, spec("route.9", "udp://203.0.113.1:9"))
            .await
            .unwrap_err();
        assert!(matches!(err, DrainError::ReservedName(_)), "{err:?}");
        add(&m, spec("route.x", "udp://203.0.113.1:9"))
            .await
            .unwrap();
        // A route that cannot start is reported, the others run.
        let data2 = Dir::new("standing-bad");
        let bus2 = Bus::new(BusConfig::default(), Arc::new(Metrics::default()));
        let mut config = DrainsConfig::new(data2.0.clone());
        config.routes = vec!["file:///nowhere/x.log".into(), "udp://203.0.113.1:9".into()];
        let (m3, problems) = DrainManager::start(bus2, config, CancellationToken::new());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("route 1 (file:///nowhere/x.log)"),
            "{problems:?}"
        );
        assert_eq!(m3.list().len(), 1);
    }

    #[tokio::test]
    async fn formats_in_use_are_not_deleted() {
        let data = Dir::new("fmtdel");
        let (m, _) = manager(&data.0, |_| {});
        m.set_format("short", "{{.text}}").unwrap();
        let mut s = spec("a", "udp://203.0.113.1:9");
        s.format = Some("short".into());
        add(&m, s).await.unwrap();
        add(&m, spec("b", "udp://203.0.113.1:9?format=short"))
            .await
            .unwrap();
        let err = m.delete_format("short").unwrap_err();
        assert!(matches!(err, DrainError::FormatInUse { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "format \"short\" is used by drains a, b; delete those drains or change their format first"
        );
        m.delete("a").unwrap();
        m.delete("b").unwrap();
        m.delete_format("short").unwrap();
        assert!(!data.0.join("formats/short.json").exists());
        assert!(m.formats().is_empty());
        assert!(matches!(
            m.delete_format("short"),
            Err(DrainError::FormatNotFound(_))
        ));
    }

    /// An HTTP receiver answering every request with 400; counts them.
    async fn refusing_receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        buf.drain(..end + 4 + len);
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let answer =
                            "HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\nbad token";
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, requests)
    }

    /// A batch the receiver refuses is counted and told in the app's own
    /// stream, with what the receiver answered; the notices themselves
    /// are not told again (no loop).
    #[tokio::test]
    async fn refused_batches_are_told_in_the_apps_stream() {
        let data = Dir::new("reject");
        let (m, bus) = manager(&data.0, |c| {
            c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
        });
        let (port, requests) = refusing_receiver().await;
        let mut watch = bus.subscribe(envelope::Selector::default(), "test");
        add(&m, spec("h", &format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap();
        wait_state(&m, "h", State::Running).await;
        let mut web = Envelope::log(
            1_795_266_898_000_000_000,
            "web-guid",
            "0",
            Bytes::from("x"),
            LogType::Out,
        );
        web.tags.insert("app_name".into(), "web".into());
        bus.publish(vec![web.clone(), web]);
        let mut notices = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while requests.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            assert!(tokio::time::Instant::now() < deadline, "{notices:?}");
            if let Ok(Some(d)) =
                tokio::time::timeout(Duration::from_millis(100), watch.recv(100)).await
            {
                for e in d.entries {
                    if e.envelope.source_id == "web-guid"
                        && e.envelope.tag("source_type") == Some("SLUICE")
                    {
                        let log = e.envelope.as_log().unwrap();
                        notices.push(String::from_utf8_lossy(&log.payload).into_owned());
                    }
                }
            }
        }
        // The notice went to the receiver too (refused again) and no
        // notice about it followed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Some(d) = watch.try_recv(100) {
            for e in d.entries {
                if e.envelope.tag("source_type") == Some("SLUICE") {
                    let log = e.envelope.as_log().unwrap();
                    notices.push(String::from_utf8_lossy(&log.payload).into_owned());
                }
            }
        }
        assert_eq!(
            notices,
            ["sluice: 2 messages lost for app web to drain h since 2026-11-21T13:14:58Z: receiver answered 400 Bad Request"]
        );
        let info = m.get("h").unwrap();
        assert_eq!(info.status.dropped, 3);
        assert_eq!(
            info.status.last_error.as_deref(),
            Some("receiver answered 400 Bad Request: bad token (1 messages dropped)")
        );
    }

    /// `drain test`: a message of its own over a connection of its own.
    #[tokio::test]
    async fn test_sends_one_message_on_its_own_connection() {
        use tokio::io::AsyncReadExt;
        let data = Dir::new("draintest");
        let (m, _) = manager(&data.0, |c| {
            c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        add(&m, spec("t", &format!("syslog://127.0.0.1:{port}")))
            .await
            .unwrap();
        let (running, _) = listener.accept().await.unwrap();
        wait_state(&m, "t", State::Running).await;
        let (detail, accepted) = tokio::join!(m.test("t"), listener.accept());
        assert_eq!(detail.unwrap(), format!("delivered to 127.0.0.1:{port}"));
        let (mut conn, _) = accepted.unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).await.unwrap();
        assert!(
            text.contains(" sluice sluice [SLUICE] - [tags@47450 source_type=\"SLUICE\"] sluice drain test for t at 20"),
            "{text}"
        );
        let info = m.get("t").unwrap();
        assert_eq!((info.status.state, info.status.sent), (State::Running, 0));
        drop(running);
        // Nobody listening: what the connection said.
        drop(listener);
        let err = m.test("t").await.unwrap_err();
        assert!(matches!(err, DrainError::TestFailed(_)), "{err:?}");
        assert!(err.to_string().contains("Connection refused"), "{err}");
        assert!(matches!(m.test("nope").await, Err(DrainError::NotFound(_))));
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
