//! Docker collection: every running container's stdout and stderr, and
//! every container that starts later, into the log, exactly once across
//! restarts of the agent, of the daemon and of the containers.
//!
//! [`run`] lists the running containers and follows the daemon's start
//! events from just before the list (so none starts unseen in between);
//! after losing the daemon it lists again and asks for events from then.
//! Each container gets a [`follow::Follower`] task, at most
//! `max_containers` at once. Positions ([`positions`]) are saved about
//! once a second and at shutdown under `<data-dir>/agent/`.
//!
//! Where reading starts: a container with a saved position resumes there;
//! one that started while the agent was away (not in the file) is read
//! from its first line; at the agent's very first start (no file yet) the
//! containers already running are read from that moment, unless `backlog`
//! is set (then from their first line too).

pub mod engine;
pub mod follow;
pub mod frames;
pub mod identity;
pub mod lines;
pub mod positions;
pub mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sources::IngestContext;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use engine::{Engine, EngineError};
use follow::{Ended, Follower};
use identity::Rules;
use positions::{Positions, Resume};
use status::DockerStatus;

/// The default daemon socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// How often positions are saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Waits between attempts to reach the daemon.
const RETRY: Duration = Duration::from_secs(1);

/// How Docker collection runs.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    pub rules: Rules,
    /// At the agent's very first start, read what running containers wrote
    /// before it too.
    pub backlog: bool,
    /// A log stream silent this long while the container's log file
    /// changed is reconnected (the daemon's follow stops after a rotation).
    pub silence: Duration,
    /// Most containers followed at once (more are skipped and reported).
    pub max_containers: usize,
    /// Where positions are kept (`<data-dir>/agent/docker.positions`).
    pub positions_file: PathBuf,
}

impl DockerConfig {
    pub fn new(socket: PathBuf, data_dir: &std::path::Path) -> Self {
        DockerConfig {
            socket,
            rules: Rules {
                host: identity::host_name(),
                ..Rules::default()
            },
            backlog: false,
            silence: Duration::from_secs(30),
            max_containers: 1000,
            positions_file: data_dir.join("agent").join("docker.positions"),
        }
    }
}

/// Follows containers until `shutdown`; then waits for every follower and
/// saves the positions.
pub async fn run(
    config: DockerConfig,
    ingest: IngestContext,
    status: Arc<DockerStatus>,
    shutdown: CancellationToken,
) {
    let (positions, first_start) = open_positions(&config);
    let positions = Arc::new(positions);
    let saver = tokio::spawn(save_every(Arc::clone(&positions), shutdown.clone()));
    let mut collector = Collector {
        engine: Engine::new(&config.socket),
        config,
        ingest,
        status,
        positions: Arc::clone(&positions),
        shutdown: shutdown.clone(),
        followers: JoinSet::new(),
        active: HashMap::new(),
    };
    collector.watch(first_start).await;
    while let Some(joined) = collector.followers.join_next().await {
        if let Ok((id, ended)) = joined {
            collector.ended(&id, ended);
        }
    }
    let _ = saver.await;
    if let Err(err) = positions.save() {
        tracing::warn!(error = %err, "cannot save the Docker positions; the next start may read lines again");
    }
}

/// The saved positions; a damaged file is set aside (and the agent reads
/// every container from its saved start: lines may repeat, none is lost).
fn open_positions(config: &DockerConfig) -> (Positions, bool) {
    let path = &config.positions_file;
    match Positions::load(path) {
        Ok(Some(p)) => (p, false),
        Ok(None) => (Positions::empty(path), true),
        Err(err) => {
            let aside = path.with_extension("damaged");
            let _ = std::fs::rename(path, &aside);
            tracing::warn!(error = %err, moved_to = %aside.display(), "the Docker positions file is damaged; containers are read from their first line");
            (Positions::empty(path), false)
        }
    }
}

async fn save_every(positions: Arc<Positions>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SAVE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(err) = positions.save() {
            tracing::warn!(error = %err, "cannot save the Docker positions");
        }
    }
}

struct Collector {
    engine: Engine,
    config: DockerConfig,
    ingest: IngestContext,
    status: Arc<DockerStatus>,
    positions: Arc<Positions>,
    shutdown: CancellationToken,
    followers: JoinSet<(String, Ended)>,
    /// Followed containers, each with the bell its follower hears when the
    /// daemon reports the container died.
    active: HashMap<String, Arc<Notify>>,
}

impl Collector {
    /// Lists and follows events until shutdown, listing again after every
    /// lost connection to the daemon.
    async fn watch(&mut self, first_start: bool) {
        let mut first_round = true;
        let mut unreachable_told = false;
        while !self.shutdown.is_cancelled() {
            let since = envelope::time::now_ns();
            let running = match self.engine.running().await {
                Ok(list) => list,
                Err(err) => {
                    if !unreachable_told {
                        tracing::warn!(error = %err, "Docker is unreachable; retrying every second");
                        unreachable_told = true;
                    }
                    self.wait(RETRY).await;
                    continue;
                }
            };
            if unreachable_told {
                tracing::info!(socket = %self.engine.socket().display(), "Docker is reachable again");
                unreachable_told = false;
            }
            let start = if first_start && first_round && !self.config.backlog {
                Resume {
                    timestamp_ns: since,
                    seen_at_timestamp: 0,
                }
            } else {
                Resume::default()
            };
            let mut ids: Vec<String> = running.into_iter().map(|c| c.id).collect();
            if first_round {
                // Containers followed before that may have stopped since:
                // their last lines are read, or their position forgotten.
                ids.extend(self.positions.ids());
            }
            for id in ids {
                self.ensure(&id, start).await;
            }
            if first_round {
                // Written now, not at the first tick: a run killed within
                // its first second must leave the next one a file (or it
                // would start from "now" again, leaving a gap).
                if let Err(err) = self.positions.save() {
                    tracing::warn!(error = %err, "cannot save the Docker positions");
                }
            }
            first_round = false;
            self.follow_events(since).await;
        }
    }

    /// Follows start events until the stream ends or shutdown.
    async fn follow_events(&mut self, since: i64) {
        let mut events = match self.engine.starts(since).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(error = %err, "cannot follow Docker events");
                self.wait(RETRY).await;
                return;
            }
        };
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                Some(joined) = self.followers.join_next(), if !self.followers.is_empty() => {
                    if let Ok((id, ended)) = joined {
                        self.ended(&id, ended);
                    }
                }
                event = events.next() => match event {
                    Ok(Some(event)) => {
                        match (event.kind.as_str(), event.action.as_str()) {
                            ("container", "start") => {
                                self.ensure(&event.actor.id, Resume::default()).await;
                            }
                            ("container", "die") => {
                                if let Some(died) = self.active.get(&event.actor.id) {
                                    died.notify_one();
                                }
                            }
                            _ => {}
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "Docker events stream failed");
                        return;
                    }
                },
            }
        }
    }

    async fn wait(&self, d: Duration) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    fn ended(&mut self, id: &str, ended: Ended) {
        self.active.remove(id);
        match ended {
            Ended::Removed => {
                self.positions.remove(id);
                self.status.remove(id);
            }
            Ended::Stopped | Ended::Shutdown => {
                if let Some(s) = self.status.get(id) {
                    s.set_following(false);
                }
            }
        }
    }

    /// Starts following a container unless it is followed already or
    /// skipped by the rules.
    async fn ensure(&mut self, id: &str, start: Resume) {
        if id.is_empty() || self.active.contains_key(id) {
            return;
        }
        if self.active.len() >= self.config.max_containers {
            self.ingest.metrics.error("too_many_containers");
            tracing::warn!(
                container = id,
                max = self.config.max_containers,
                "not following a container: at the limit of followed containers"
            );
            return;
        }
        let container = match self.engine.inspect(id).await {
            Ok(c) => c,
            Err(EngineError::NotFound { .. }) => {
                self.positions.remove(id);
                return;
            }
            Err(err) => {
                tracing::warn!(container = id, error = %err, "cannot inspect a container");
                return;
            }
        };
        let mut identity = match self.config.rules.identify(&container) {
            Ok(identity) => identity,
            Err(skip) => {
                tracing::debug!(container = id, ?skip, "container skipped");
                return;
            }
        };
        // Bounded as ingest bounds every envelope, so the saved source id
        // is the one the log holds.
        let mut template = envelope::v2::Envelope::log(
            0,
            std::mem::take(&mut identity.source_id),
            std::mem::take(&mut identity.instance_id),
            bytes::Bytes::new(),
            envelope::v2::LogType::Out,
        );
        template.tags = std::mem::take(&mut identity.tags);
        self.ingest.limits.fields.apply(&mut template);
        identity.source_id = template.source_id;
        identity.instance_id = template.instance_id;
        identity.tags = template.tags;

        let status = self
            .status
            .entry(&container.id, &identity.source_id, &identity.instance_id);
        status.set_following(true);
        tracing::info!(container = %identity.instance_id, source_id = %identity.source_id, tty = container.config.tty, "following a container");
        if start != Resume::default() && self.positions.get(&container.id).is_none() {
            // Read from now on (a first start): that is its position until
            // it has one of its own.
            self.positions.set(
                &container.id,
                positions::Saved {
                    source_id: identity.source_id.clone(),
                    instance_id: identity.instance_id.clone(),
                    resume: start,
                    log_position: None,
                },
            );
        }
        let died = Arc::new(Notify::new());
        let follower = Follower {
            engine: self.engine.clone(),
            ingest: self.ingest.clone(),
            positions: Arc::clone(&self.positions),
            status,
            counters: self.ingest.metrics.ingress_counters("docker"),
            container_id: container.id.clone(),
            tty: container.config.tty,
            log_path: container.log_path,
            created_ns: codec::timestamp::parse_rfc3339(container.created.as_bytes()).unwrap_or(0),
            identity,
            start,
            silence: self.config.silence,
            died: Arc::clone(&died),
            shutdown: self.shutdown.clone(),
        };
        self.active.insert(container.id.clone(), died);
        let id = container.id;
        self.followers
            .spawn(async move { (id, follower.run().await) });
    }
}
