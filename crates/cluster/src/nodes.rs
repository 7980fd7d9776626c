//! Who is in the cluster and how it is doing: each node writes a
//! heartbeat ([`NodeInfo`]) to the `sluice_nodes` bucket every
//! [`HEARTBEAT`]; a node whose heartbeat is older than three of them is
//! gone (the bucket's `max_age` removes it). [`status`] gathers the nodes,
//! the stream and this node's own view for `sluice cluster status` and
//! `GET /v1/cluster`.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::connect::{Cluster, HEARTBEAT, STREAM};
use crate::publish::PublisherStats;

/// One node's heartbeat.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub node_id: String,
    /// When the node started and when it wrote this (Unix ns).
    pub started_ns: i64,
    pub updated_ns: i64,
    /// Drains this node delivers now.
    pub drains_owned: u64,
    /// Envelopes this node took in per second (over the last heartbeat).
    pub ingest_per_second: f64,
    /// Its buffer in front of the stream.
    pub buffer: PublisherStats,
    /// Where its HTTP API listens, as it was configured.
    #[serde(default)]
    pub http: String,
    /// Firehose shard ids with streams on this node (shard groups span
    /// the nodes that have members).
    #[serde(default)]
    pub shard_groups: Vec<String>,
}

impl NodeInfo {
    /// Whether the heartbeat is recent (three heartbeats at most).
    pub fn alive(&self, now_ns: i64) -> bool {
        now_ns.saturating_sub(self.updated_ns) <= (HEARTBEAT * 3).as_nanos() as i64
    }
}

/// `(index, of)` of `node_id` among the alive nodes with members of
/// `shard_id`, by node id; `(0, 1)` when it is alone or not listed yet.
pub fn shard_share(nodes: &[NodeInfo], node_id: &str, shard_id: &str, now_ns: i64) -> (u64, u64) {
    let mut with: Vec<&str> = nodes
        .iter()
        .filter(|n| n.alive(now_ns) && n.shard_groups.iter().any(|s| s == shard_id))
        .map(|n| n.node_id.as_str())
        .collect();
    if !with.contains(&node_id) {
        with.push(node_id);
    }
    with.sort_unstable();
    with.dedup();
    let index = with.iter().position(|n| *n == node_id).unwrap_or(0);
    (index as u64, with.len().max(1) as u64)
}

/// The stream as JetStream reports it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamStatus {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub replicas: usize,
    pub leader: Option<String>,
    /// Replica servers and whether each is current.
    pub peers: Vec<PeerStatus>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PeerStatus {
    pub name: String,
    pub current: bool,
    pub offline: bool,
}

/// `sluice cluster status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node_id: String,
    /// Whether that node is connected to NATS and its buffer is not
    /// holding messages back.
    pub connected: bool,
    pub degraded: bool,
    pub nodes: Vec<NodeInfo>,
    pub stream: Option<StreamStatus>,
    /// Why the stream could not be asked, when it could not.
    pub stream_error: Option<String>,
}

/// Writes `info()` to the bucket every [`HEARTBEAT`] until `shutdown`,
/// then removes it.
pub async fn heartbeat<F>(kv: kv::Store, node_id: String, info: F, shutdown: CancellationToken)
where
    F: Fn() -> NodeInfo + Send,
{
    let key = format!("n.{node_id}");
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), kv.delete(&key)).await;
                return;
            }
        }
        let Ok(body) = serde_json::to_vec(&info()) else {
            continue;
        };
        let put = tokio::time::timeout(HEARTBEAT, kv.put(&key, Bytes::from(body))).await;
        match put {
            Ok(Ok(_)) => warned = false,
            Ok(Err(e)) if !warned => {
                warn!(error = %e, "cannot write this node's heartbeat");
                warned = true;
            }
            Err(_) if !warned => {
                warn!("writing this node's heartbeat timed out");
                warned = true;
            }
            _ => {}
        }
    }
}

/// The nodes with a current heartbeat, by id.
pub async fn nodes(kv: &kv::Store) -> Result<Vec<NodeInfo>, String> {
    let mut keys = kv.keys().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        let Ok(key) = key else { continue };
        if let Ok(Some(value)) = kv.get(&key).await {
            if let Ok(info) = serde_json::from_slice::<NodeInfo>(&value) {
                out.push(info);
            }
        }
    }
    out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(out)
}

/// The stream's state, leader and replicas.
pub async fn stream_status(cluster: &Cluster) -> Result<StreamStatus, String> {
    let mut stream = cluster
        .js
        .get_stream(STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let info = stream.info().await.map_err(|e| e.to_string())?;
    let (leader, peers) = match &info.cluster {
        Some(c) => (
            c.leader.clone(),
            c.replicas
                .iter()
                .map(|r| PeerStatus {
                    name: r.name.clone(),
                    current: r.current,
                    offline: r.offline,
                })
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    Ok(StreamStatus {
        name: info.config.name.clone(),
        messages: info.state.messages,
        bytes: info.state.bytes,
        first_sequence: info.state.first_sequence,
        last_sequence: info.state.last_sequence,
        replicas: info.config.num_replicas,
        leader,
        peers,
    })
}

/// Everything `sluice cluster status` shows, as `node_id` sees it.
pub async fn status(cluster: &Cluster, node_id: &str, buffer: PublisherStats) -> ClusterStatus {
    let timeout = Duration::from_secs(3);
    let nodes = tokio::time::timeout(timeout, nodes(&cluster.nodes))
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
        .unwrap_or_default();
    let (stream, stream_error) = match tokio::time::timeout(timeout, stream_status(cluster)).await {
        Ok(Ok(s)) => (Some(s), None),
        Ok(Err(e)) => (None, Some(e)),
        Err(_) => (None, Some("JetStream did not answer within 3 s".into())),
    };
    let connected = cluster.connected();
    ClusterStatus {
        node_id: node_id.to_owned(),
        connected,
        degraded: !connected || buffer.degraded || stream.is_none(),
        nodes,
        stream,
        stream_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, groups: &[&str], updated_ns: i64) -> NodeInfo {
        NodeInfo {
            node_id: id.into(),
            updated_ns,
            shard_groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn shares_split_among_alive_nodes_with_members() {
        let now = 100_000_000_000;
        let nodes = [
            node("c", &["g"], now),
            node("a", &["g", "h"], now),
            node("b", &["h"], now),
            node("d", &["g"], 0),
        ];
        assert_eq!(shard_share(&nodes, "a", "g", now), (0, 2));
        assert_eq!(shard_share(&nodes, "c", "g", now), (1, 2));
        assert_eq!(shard_share(&nodes, "b", "h", now), (1, 2));
        // Not listed yet: counted in, so it takes a share at once.
        assert_eq!(shard_share(&nodes, "b", "g", now), (1, 3));
        assert_eq!(shard_share(&nodes, "a", "x", now), (0, 1));
    }
}
