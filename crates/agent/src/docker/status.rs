//! What the agent reports about each followed container
//! (`sluice agent status`, `GET /v1/agent`): lines and bytes read, the
//! position, the last error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use super::positions::Resume;

/// One container's counters, updated by its follower.
#[derive(Debug, Default)]
pub struct ContainerStatus {
    pub source_id: String,
    pub instance_id: String,
    lines: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    state: Mutex<Mutable>,
}

#[derive(Debug, Default, Clone)]
struct Mutable {
    resume: Resume,
    last_error: Option<String>,
    following: bool,
}

impl ContainerStatus {
    pub fn new(source_id: &str, instance_id: &str) -> Self {
        ContainerStatus {
            source_id: source_id.to_owned(),
            instance_id: instance_id.to_owned(),
            ..ContainerStatus::default()
        }
    }

    pub fn add_lines(&self, n: u64) {
        self.lines.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn set_error(&self, error: String) {
        self.state.lock().last_error = Some(error);
    }

    pub fn set_resume(&self, resume: Resume) {
        self.state.lock().resume = resume;
    }

    pub fn set_following(&self, following: bool) {
        self.state.lock().following = following;
    }
}

/// Every container the agent has followed since it started.
#[derive(Debug, Default)]
pub struct DockerStatus {
    containers: Mutex<BTreeMap<String, Arc<ContainerStatus>>>,
}

/// A container's status as reported.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ContainerReport {
    pub container_id: String,
    pub source_id: String,
    pub instance_id: String,
    pub following: bool,
    pub lines: u64,
    pub bytes: u64,
    /// Lines dropped over the rate limit.
    pub dropped: u64,
    /// The newest entry timestamp read (ns) and the entries read at it.
    pub position_ns: i64,
    pub position_count: u64,
    pub last_error: Option<String>,
}

impl DockerStatus {
    /// The entry for a container, made on first use (kept across restarts
    /// of the container, so counts add up).
    pub fn entry(
        &self,
        container_id: &str,
        source_id: &str,
        instance_id: &str,
    ) -> Arc<ContainerStatus> {
        let mut containers = self.containers.lock();
        Arc::clone(
            containers
                .entry(container_id.to_owned())
                .or_insert_with(|| Arc::new(ContainerStatus::new(source_id, instance_id))),
        )
    }

    pub fn get(&self, container_id: &str) -> Option<Arc<ContainerStatus>> {
        self.containers.lock().get(container_id).cloned()
    }

    pub fn remove(&self, container_id: &str) {
        self.containers.lock().remove(container_id);
    }

    pub fn report(&self) -> Vec<ContainerReport> {
        self.containers
            .lock()
            .iter()
            .map(|(id, s)| {
                let state = s.state.lock().clone();
                ContainerReport {
                    container_id: id.clone(),
                    source_id: s.source_id.clone(),
                    instance_id: s.instance_id.clone(),
                    following: state.following,
                    lines: s.lines.load(Ordering::Relaxed),
                    bytes: s.bytes.load(Ordering::Relaxed),
                    dropped: s.dropped.load(Ordering::Relaxed),
                    position_ns: state.resume.timestamp_ns,
                    position_count: state.resume.seen_at_timestamp,
                    last_error: state.last_error,
                }
            })
            .collect()
    }
}
