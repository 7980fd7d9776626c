//! [`Leases`]: which node does a job (delivers a drain), by lease in the
//! `sluice_leases` KV bucket.
//!
//! - Acquire: `create` the key with this node's id; it succeeds only when
//!   no node holds it. A node that does not get it tries again every
//!   [`Leases::poll`].
//! - Renew: `update` by the revision this node last wrote, every quarter
//!   of the lease time. An update that finds another revision means the
//!   lease was lost (it expired and another node took it).
//! - Expire: the bucket's `max_age` is the lease time, so the key of a
//!   node that died (`kill -9`) vanishes on the servers by itself.
//! - Safety: a node counts its lease as held only until three quarters of
//!   the lease time after it *sent* its last successful renewal, and when
//!   that passes without a newer one it cancels [`Lease::lost`] at once:
//!   the servers expire the key no earlier than a full lease time after
//!   they stored that renewal, so by the time another node can create the
//!   key, the old owner has stopped sending for at least a quarter of the
//!   lease (`tests` race two nodes for one key with one-second leases).
//! - Release: dropping a [`Lease`] deletes the key when this node still
//!   holds it (a clean stop hands drains over at once).
//!
//! Nodes holding more leases wait a little longer before they try a free
//! key (up to a lease time), so drains spread over the nodes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::subject;

/// The leases of one node. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    kv: kv::Store,
    node_id: String,
    lease: Duration,
    held: AtomicUsize,
    /// Owners as last seen on the bucket, with when (for status).
    seen: Mutex<HashMap<String, (String, Instant)>>,
}

/// A lease this node holds. `lost` is cancelled the moment the node can
/// no longer be sure it holds it; dropping it releases the lease.
pub struct Lease {
    pub lost: CancellationToken,
    stop: CancellationToken,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Leases {
    pub fn new(kv: kv::Store, node_id: &str, lease: Duration) -> Self {
        Leases {
            inner: Arc::new(Inner {
                kv,
                node_id: node_id.to_owned(),
                lease,
                held: AtomicUsize::new(0),
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How often a node that does not hold a key tries it.
    pub fn poll(&self) -> Duration {
        (self.inner.lease / 5).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// Leases this node holds.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    /// The node holding `job`'s lease as last seen (within a lease time).
    pub fn owner(&self, job: &str) -> Option<String> {
        let seen = self.inner.seen.lock();
        let (owner, at) = seen.get(&key(job))?;
        (at.elapsed() <= self.inner.lease).then(|| owner.clone())
    }

    /// Waits until this node holds `job`'s lease; `None` when `cancel`
    /// fires first.
    pub async fn acquire(&self, job: &str, cancel: &CancellationToken) -> Option<Lease> {
        let key = key(job);
        let value = Bytes::from(self.inner.node_id.clone());
        loop {
            // Spread: a node with more leases lets the others try first.
            let held = self.held() as u32;
            let wait = (self.poll() / 4 * held).min(self.inner.lease);
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return None,
                }
            }
            let sent = Instant::now();
            match self.inner.kv.create(&key, value.clone()).await {
                Ok(revision) => {
                    self.inner.held.fetch_add(1, Ordering::Relaxed);
                    self.saw(&key, &self.inner.node_id);
                    info!(job, "lease acquired");
                    return Some(self.hold(key, revision, sent));
                }
                Err(_) => {
                    if let Ok(Some(owner)) = self.inner.kv.get(&key).await {
                        self.saw(&key, &String::from_utf8_lossy(&owner));
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll()) => {}
                _ = cancel.cancelled() => return None,
            }
        }
    }

    fn saw(&self, key: &str, owner: &str) {
        self.inner
            .seen
            .lock()
            .insert(key.to_owned(), (owner.to_owned(), Instant::now()));
    }

    /// Starts renewing a lease just acquired (its create sent at `sent`).
    fn hold(&self, key: String, revision: u64, sent: Instant) -> Lease {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let this = self.clone();
        let (lost_, stop_) = (lost.clone(), stop.clone());
        tokio::spawn(async move {
            this.renew(key, revision, sent, lost_, stop_).await;
            this.inner.held.fetch_sub(1, Ordering::Relaxed);
        });
        Lease { lost, stop }
    }

    async fn renew(
        &self,
        key: String,
        mut revision: u64,
        mut sent: Instant,
        lost: CancellationToken,
        stop: CancellationToken,
    ) {
        let safe = self.inner.lease * 3 / 4;
        let every = self.inner.lease / 4;
        let value = Bytes::from(self.inner.node_id.clone());
        loop {
            let valid_until = sent + safe;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = tokio::time::sleep_until(valid_until) => {
                    warn!(key = %key, "lease not renewed in time; stopping");
                    lost.cancel();
                    return;
                }
                _ = stop.cancelled() => {
                    // Released: delete the key if it is still ours.
                    let _ = self.inner.kv.delete_expect_revision(&key, Some(revision)).await;
                    return;
                }
            }
            let attempt = Instant::now();
            let update = self.inner.kv.update(&key, value.clone(), revision);
            match tokio::time::timeout_at(valid_until, update).await {
                Ok(Ok(r)) => {
                    revision = r;
                    sent = attempt;
                    self.saw(&key, &self.inner.node_id);
                }
                Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    warn!(key = %key, "lease taken by another node; stopping");
                    lost.cancel();
                    return;
                }
                // A timeout or an unreachable server: try again until the
                // lease is no longer safe.
                Ok(Err(_)) | Err(_) => {}
            }
        }
    }

    /// Follows the bucket to keep [`Leases::owner`] current, until
    /// `shutdown`.
    pub async fn watch(self, shutdown: CancellationToken) {
        loop {
            let watch = tokio::select! {
                w = self.inner.kv.watch_all() => w,
                _ = shutdown.cancelled() => return,
            };
            if let Ok(mut watch) = watch {
                loop {
                    tokio::select! {
                        e = watch.next() => match e {
                            Some(Ok(entry)) => {
                                if entry.operation == kv::Operation::Put {
                                    self.saw(&entry.key, &String::from_utf8_lossy(&entry.value));
                                } else {
                                    self.inner.seen.lock().remove(&entry.key);
                                }
                            }
                            _ => break,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// A job's key in the leases bucket.
fn key(job: &str) -> String {
    format!("l.{}", subject::token(job))
}
