//! Two nodes racing for one drain's lease never both hold it (issue 11):
//! the leases of `cluster::lease` with one-second lease times, against a
//! real nats-server of each version, while one node's connection is cut
//! again and again by a proxy (so it cannot renew) and both keep taking
//! and giving the lease up at random. Every interval in which a node
//! counted itself the owner — from `acquire` returning until `lost` fired
//! or it let go — is recorded; no two intervals of different nodes may
//! overlap.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster::lease::Leases;
use cluster::{Cluster, ClusterConfig};
use parking_lot::Mutex;
use support::nats::{nats_servers, NatsCluster};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A TCP proxy to `upstream` that, while `cut` is set, closes every
/// connection it carries and refuses new ones (a network partition).
async fn proxy(upstream: u16, cut: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if cut.load(Ordering::SeqCst) {
                let _ = inbound.shutdown().await;
                continue;
            }
            let cut = Arc::clone(&cut);
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                let watch = async {
                    while !cut.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                tokio::select! {
                    _ = copy => {}
                    _ = watch => {}
                }
            });
        }
    });
    port
}

/// A small deterministic generator for hold times.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

type Intervals = Arc<Mutex<Vec<(&'static str, Instant, Instant, bool)>>>;

async fn contend(
    node: &'static str,
    leases: Leases,
    intervals: Intervals,
    seed: u64,
    until: Instant,
) {
    let mut rng = Lcg(seed);
    let stop = CancellationToken::new();
    while Instant::now() < until {
        let acquire = leases.acquire("drain.race", &stop);
        let Ok(Some(lease)) = tokio::time::timeout_at(until, acquire).await else {
            return;
        };
        let start = Instant::now();
        let hold = Duration::from_millis(200 + rng.below(2500));
        let lost = tokio::select! {
            _ = lease.lost.cancelled() => true,
            _ = tokio::time::sleep(hold) => false,
        };
        intervals.lock().push((node, start, Instant::now(), lost));
        drop(lease);
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
    }
}

#[test]
fn two_nodes_never_hold_one_lease_at_once() {
    for (label, bin) in nats_servers() {
        let nats = NatsCluster::start(&bin, 1);
        let port: u16 = nats
            .urls()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let intervals: Intervals = Arc::default();
        runtime.block_on(async {
            let cut = Arc::new(AtomicBool::new(false));
            let via_proxy = proxy(port, Arc::clone(&cut)).await;
            let lease = Duration::from_secs(1);
            let connect = |url: String, id: &str| {
                let mut config = ClusterConfig::new(vec![url], id.to_owned());
                config.lease = lease;
                Cluster::connect(config)
            };
            let x = connect(format!("nats://127.0.0.1:{via_proxy}"), "x")
                .await
                .expect("x connects");
            let y = connect(format!("nats://127.0.0.1:{port}"), "y")
                .await
                .expect("y connects");
            let until = Instant::now() + Duration::from_secs(20);
            let partitions = tokio::spawn({
                let cut = Arc::clone(&cut);
                async move {
                    while Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(1700)).await;
                        cut.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        cut.store(false, Ordering::SeqCst);
                    }
                }
            });
            let a = tokio::spawn(contend(
                "x",
                Leases::new(x.leases.clone(), "x", lease),
                Arc::clone(&intervals),
                7,
                until,
            ));
            let b = tokio::spawn(contend(
                "y",
                Leases::new(y.leases.clone(), "y", lease),
                Arc::clone(&intervals),
                11,
                until,
            ));
            let _ = tokio::join!(a, b, partitions);
        });
        let intervals = intervals.lock().clone();
        for (i, (n1, s1, e1, _)) in intervals.iter().enumerate() {
            for (n2, s2, e2, _) in &intervals[i + 1..] {
                if n1 != n2 {
                    assert!(
                        e1 <= s2 || e2 <= s1,
                        "{label}: {n1} held {:?}..{:?} and {n2} held {:?}..{:?}",
                        s1.elapsed(),
                        e1.elapsed(),
                        s2.elapsed(),
                        e2.elapsed()
                    );
                }
            }
        }
        let count = |node: &str| intervals.iter().filter(|i| i.0 == node).count();
        let lost = intervals.iter().filter(|i| i.0 == "x" && i.3).count();
        assert!(
            count("x") >= 2 && count("y") >= 2,
            "{label}: both held it: {intervals:?}"
        );
        assert!(
            lost >= 1,
            "{label}: x lost the lease to a partition at least once"
        );
        eprintln!(
            "{label}: {} intervals (x {}, y {}), x lost {lost} to partitions, none overlapped",
            intervals.len(),
            count("x"),
            count("y")
        );
    }
}
