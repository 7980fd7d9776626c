//! A server as a cluster node (DESIGN.md §3, `[cluster]`): the drain
//! manager's seams ([`drains::shared`]) over the cluster's KV buckets, and
//! the tasks a node runs beside its log.
//!
//! - [`KvDefinitions`]: drain definitions (`d.<name>`, JSON) and saved
//!   formats (`f.<name>`) in `sluice_drains`. Writes go to the bucket;
//!   every node (the writer too) applies what the bucket says through
//!   [`watch_definitions`], so all nodes hold the same drains.
//! - [`LeaseOwnership`]: a drain is delivered by the node holding its
//!   lease ([`cluster::lease`]).
//! - [`Node::spawn_tasks`]: the lease watch (owners for status), the
//!   definitions watch and the heartbeat.
//!
//! Standing routes (`[drains] routes`) are leased by name like any drain:
//! in a cluster give every node the same routes, and each is delivered
//! once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::kv;
use bytes::Bytes;
use cluster::lease::Leases;
use cluster::nodes::{ClusterStatus, NodeInfo};
use cluster::{subject, Cluster, JetStreamLog};
use drains::shared::{Definitions, Lease, Ownership};
use drains::spec::DrainSpec;
use drains::DrainManager;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use metrics::Metrics;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// This node's part of the cluster.
#[derive(Clone)]
pub struct Node {
    pub log: JetStreamLog,
    pub leases: Leases,
    started_ns: i64,
    /// The nodes as last read from their heartbeats.
    peers: Arc<parking_lot::RwLock<Vec<NodeInfo>>>,
}

/// This node's share of the firehose's shard groups, from the nodes'
/// heartbeats ([`cluster::nodes::shard_share`]).
struct ShardShare {
    node_id: String,
    peers: Arc<parking_lot::RwLock<Vec<NodeInfo>>>,
}

impl grpc::egress::groups::NodeShare for ShardShare {
    fn share(&self, shard_id: &str) -> (u64, u64) {
        let peers = self.peers.read();
        cluster::nodes::shard_share(&peers, &self.node_id, shard_id, envelope::time::now_ns())
    }
}

impl Node {
    pub fn new(log: JetStreamLog) -> Self {
        let cluster = log.cluster();
        let leases = Leases::new(
            cluster.leases.clone(),
            &cluster.config.node_id,
            cluster.config.lease,
        );
        Node {
            log,
            leases,
            started_ns: envelope::time::now_ns(),
            peers: Arc::default(),
        }
    }

    /// The firehose's cross-node shard split for `EgressService::shared`.
    pub fn shard_share(&self) -> Arc<dyn grpc::egress::groups::NodeShare> {
        Arc::new(ShardShare {
            node_id: self.node_id().to_owned(),
            peers: Arc::clone(&self.peers),
        })
    }

    pub fn cluster(&self) -> &Cluster {
        self.log.cluster()
    }

    pub fn node_id(&self) -> &str {
        &self.cluster().config.node_id
    }

    pub fn definitions(&self) -> Arc<dyn Definitions> {
        Arc::new(KvDefinitions {
            kv: self.cluster().drains.clone(),
        })
    }

    pub fn ownership(&self) -> Arc<dyn Ownership> {
        Arc::new(LeaseOwnership {
            leases: self.leases.clone(),
        })
    }

    /// `GET /v1/cluster`, `sluice cluster status`.
    pub async fn status(&self) -> ClusterStatus {
        cluster::nodes::status(self.cluster(), self.node_id(), self.log.publisher().stats()).await
    }

    /// Whether the cluster is degraded as this node sees it right now
    /// (not connected, or holding messages back).
    pub fn degraded(&self) -> bool {
        !self.cluster().connected() || self.log.publisher().degraded()
    }

    /// The lease watch, the definitions watch, the heartbeat and the
    /// reading of the other nodes' heartbeats, until `shutdown`.
    pub fn spawn_tasks(
        &self,
        tasks: &mut JoinSet<()>,
        drains: DrainManager,
        egress: grpc::EgressService,
        metrics: Arc<Metrics>,
        http: String,
        shutdown: CancellationToken,
    ) {
        tasks.spawn(read_peers(
            self.cluster().nodes.clone(),
            Arc::clone(&self.peers),
            shutdown.clone(),
        ));
        tasks.spawn(self.leases.clone().watch(shutdown.clone()));
        tasks.spawn(watch_definitions(
            self.cluster().drains.clone(),
            drains,
            shutdown.clone(),
        ));
        let node = self.clone();
        let last = Arc::new((AtomicU64::new(0), parking_lot::Mutex::new(Instant::now())));
        let info = move || {
            let appended = metrics.log_appended.get();
            let (count, at) = &*last;
            let mut at = at.lock();
            let secs = at.elapsed().as_secs_f64().max(0.001);
            let before = count.swap(appended, Ordering::Relaxed);
            *at = Instant::now();
            NodeInfo {
                node_id: node.node_id().to_owned(),
                started_ns: node.started_ns,
                updated_ns: envelope::time::now_ns(),
                drains_owned: node.leases.held() as u64,
                ingest_per_second: appended.saturating_sub(before) as f64 / secs,
                buffer: node.log.publisher().stats(),
                http: http.clone(),
                shard_groups: egress.shard_ids(),
            }
        };
        tasks.spawn(cluster::nodes::heartbeat(
            self.cluster().nodes.clone(),
            self.node_id().to_owned(),
            info,
            shutdown,
        ));
    }
}

/// Reads every node's heartbeat each [`cluster::connect::HEARTBEAT`] into
/// `peers`, until `shutdown`.
async fn read_peers(
    kv: kv::Store,
    peers: Arc<parking_lot::RwLock<Vec<NodeInfo>>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(cluster::connect::HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let read = tokio::time::timeout(cluster::connect::HEARTBEAT, cluster::nodes::nodes(&kv));
        if let Ok(Ok(nodes)) = read.await {
            *peers.write() = nodes;
        }
    }
}

/// Drain definitions and saved formats in the `sluice_drains` bucket.
struct KvDefinitions {
    kv: kv::Store,
}

const DRAIN_KEY: &str = "d.";
const FORMAT_KEY: &str = "f.";

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("cluster drains bucket: {e}"))
}

impl KvDefinitions {
    /// Runs a bucket call from the manager's blocking paths.
    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| handle.block_on(f))
    }

    /// Every value whose key starts with `prefix`, by its name.
    fn load(&self, prefix: &str) -> (Vec<(String, Bytes)>, Vec<String>) {
        self.block(async {
            let mut out = Vec::new();
            let mut problems = Vec::new();
            let mut keys = match self.kv.keys().await {
                Ok(k) => k,
                Err(e) => {
                    problems.push(format!("cannot list the cluster's drains: {e}"));
                    return (out, problems);
                }
            };
            while let Some(key) = keys.next().await {
                let Ok(key) = key else { continue };
                let Some(name) = key.strip_prefix(prefix).and_then(subject::untoken) else {
                    continue;
                };
                match self.kv.get(&key).await {
                    Ok(Some(v)) => out.push((name, v)),
                    Ok(None) => {}
                    Err(e) => problems.push(format!("cannot read {key}: {e}")),
                }
            }
            (out, problems)
        })
    }
}

impl Definitions for KvDefinitions {
    fn load_drains(&self) -> (Vec<DrainSpec>, Vec<String>) {
        let (items, mut problems) = self.load(DRAIN_KEY);
        let mut specs = Vec::new();
        for (name, value) in items {
            match serde_json::from_slice::<DrainSpec>(&value) {
                Ok(spec) if spec.name == name => specs.push(spec),
                Ok(_) | Err(_) => problems.push(format!(
                    "cluster drain {name:?}: not a drain definition; skipped"
                )),
            }
        }
        (specs, problems)
    }

    fn save_drain(&self, spec: &DrainSpec) -> std::io::Result<()> {
        let body = serde_json::to_vec(spec).map_err(io_error)?;
        let key = format!("{DRAIN_KEY}{}", subject::token(&spec.name));
        self.block(self.kv.put(key, Bytes::from(body)))
            .map(drop)
            .map_err(io_error)
    }

    fn delete_drain(&self, name: &str) -> std::io::Result<()> {
        let key = format!("{DRAIN_KEY}{}", subject::token(name));
        self.block(self.kv.purge(key)).map_err(io_error)
    }

    fn load_formats(&self) -> (BTreeMap<String, String>, Vec<String>) {
        let (items, problems) = self.load(FORMAT_KEY);
        let formats = items
            .into_iter()
            .filter_map(|(name, v)| Some((name, String::from_utf8(v.to_vec()).ok()?)))
            .collect();
        (formats, problems)
    }

    fn save_format(&self, name: &str, template: &str) -> std::io::Result<()> {
        let key = format!("{FORMAT_KEY}{}", subject::token(name));
        self.block(self.kv.put(key, Bytes::from(template.to_owned())))
            .map(drop)
            .map_err(io_error)
    }

    fn delete_format(&self, name: &str) -> std::io::Result<()> {
        let key = format!("{FORMAT_KEY}{}", subject::token(name));
        self.block(self.kv.purge(key)).map_err(io_error)
    }
}

/// Follows `sluice_drains` from its current values on and applies every
/// change to this node's drains, until `shutdown`.
async fn watch_definitions(kv: kv::Store, drains: DrainManager, shutdown: CancellationToken) {
    loop {
        let watch = tokio::select! {
            w = kv.watch_with_history(">") => w,
            _ = shutdown.cancelled() => return,
        };
        match watch {
            Ok(mut watch) => loop {
                let entry = tokio::select! {
                    e = watch.next() => e,
                    _ = shutdown.cancelled() => return,
                };
                match entry {
                    Some(Ok(entry)) => apply(&drains, entry),
                    Some(Err(e)) => {
                        warn!(error = %e, "watching the cluster's drains failed; watching again");
                        break;
                    }
                    None => break,
                }
            },
            Err(e) => warn!(error = %e, "cannot watch the cluster's drains; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn apply(drains: &DrainManager, entry: kv::Entry) {
    let put = entry.operation == kv::Operation::Put;
    if let Some(name) = entry.key.strip_prefix(DRAIN_KEY).and_then(subject::untoken) {
        if !put {
            drains.apply_shared_delete(&name);
            return;
        }
        match serde_json::from_slice::<DrainSpec>(&entry.value) {
            Ok(spec) if spec.name == name => {
                let drains = drains.clone();
                // Starting a drain may touch files: off the async worker.
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = drains.apply_shared(spec) {
                        warn!(drain = %name, error = %e, "cannot start a drain another node defined");
                    }
                });
            }
            _ => warn!(drain = %name, "the cluster's definition is not a drain; ignored"),
        }
    } else if let Some(name) = entry
        .key
        .strip_prefix(FORMAT_KEY)
        .and_then(subject::untoken)
    {
        let template = put
            .then(|| String::from_utf8(entry.value.to_vec()).ok())
            .flatten();
        drains.apply_shared_format(&name, template);
    }
}

/// Drains delivered by the node holding their lease.
struct LeaseOwnership {
    leases: Leases,
}

impl Ownership for LeaseOwnership {
    fn acquire<'a>(
        &'a self,
        drain: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Option<Lease>> {
        Box::pin(async move {
            let held = self.leases.acquire(drain, cancel).await?;
            Some(Lease {
                lost: held.lost.clone(),
                guard: Box::new(held),
            })
        })
    }

    fn owner(&self, drain: &str) -> Option<String> {
        self.leases.owner(drain)
    }

    fn shared(&self) -> bool {
        true
    }
}
