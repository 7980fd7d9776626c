//! A cluster end to end (issue 11, DESIGN.md §3): three real nats-servers
//! with JetStream in one cluster on loopback ports and three `sluice
//! server --nats … --node-id …` nodes, on Debian's nats-server 2.9 and on
//! the newer one from PyPI ([`support::nats`]).
//!
//! - what one node takes in, every node reads, tails and firehoses, each
//!   numbered line exactly once;
//! - a drain's owner killed with `kill -9` mid-delivery: another node
//!   takes the drain over within 10 s and every number arrives,
//!   duplicates at most one batch;
//! - a nats-server killed: everything goes on; all of them gone for 10 s:
//!   the nodes say so (degraded), buffer, and deliver once they return.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use support::nats::{nats_servers, start_node, NatsCluster};
use support::reads::{assert_exactly_once, numbers, settled_entries};
use support::*;

/// One cluster test at a time: each starts three nats-servers and up to
/// three nodes, and a 2-core machine running three of them at once spent
/// its time electing JetStream leaders.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lines(app_prefix: &str, from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|i| format!("{app_prefix} {i}")).collect()
}

/// The numbers of `line N` texts, in the order given.
fn numbered(texts: impl IntoIterator<Item = String>) -> Vec<u64> {
    texts
        .into_iter()
        .filter_map(|t| t.trim().strip_prefix("line ")?.trim().parse().ok())
        .collect()
}

#[test]
fn every_node_reads_tails_and_firehoses_what_any_node_took_in() {
    let _serial = one_at_a_time();
    const N: u64 = 2000;
    for (label, bin) in nats_servers() {
        let nats = NatsCluster::start(&bin, 3);
        let a = start_node(&nats, "a", &[]);
        let b = start_node(&nats, "b", &[]);
        let c = start_node(&nats, "c", &[]);

        // A live tail on B and the firehose on C, before anything is sent.
        let mut tail = sluice_clean(&["logs", "numbered", "--server", &b.http]);
        let mut tail = tail.spawn().expect("sluice logs");
        let tail_lines = lines_of(tail.stdout.take().expect("stdout"));
        let target = c.grpc.expect("grpc").to_string();
        let nozzle = Command::new(sluice_bin())
            .args(["nozzle", "--target", &target, "--source-id", "numbered"])
            .args([
                "--type",
                "log",
                "--count",
                &N.to_string(),
                "--duration",
                "60",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sluice nozzle");
        std::thread::sleep(Duration::from_secs(1));

        for chunk in lines("line", 1, N).chunks(250) {
            a.post_lines("numbered", chunk);
        }

        // Read on B (Log Cache reads, paged by time).
        let entries = settled_entries(&b, "numbered", N as usize, 60);
        assert_exactly_once(
            &numbers(&entries, "line "),
            N,
            &format!("{label}: read on B"),
        );

        // Tailed on B.
        let mut tailed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while (tailed.len() as u64) < N {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match tail_lines.recv_timeout(left) {
                Ok(line) => tailed.extend(numbered(
                    line.split_once(" OUT ").map(|(_, t)| t.to_owned()),
                )),
                Err(_) => break,
            }
        }
        let _ = tail.kill();
        let _ = tail.wait();
        assert_exactly_once(&tailed, N, &format!("{label}: tailed on B"));

        // Firehosed on C.
        let out = nozzle.wait_with_output().expect("nozzle ends");
        let fired = firehosed(&out.stdout);
        assert_exactly_once(&fired, N, &format!("{label}: firehose on C"));

        // Log Cache's meta on C, and the stream as `sluice cluster status` shows it.
        // In a cluster the count is an estimate (a subject's messages times
        // the envelopes its first and last messages hold; README, Cluster).
        let meta: serde_json::Value = serde_json::from_str(&c.get("/api/v1/meta")).expect("meta");
        let count: u64 = meta["meta"]["numbered"]["count"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .expect("a count for the source");
        assert!(
            (N * 8 / 10..=N * 12 / 10).contains(&count),
            "{label}: about {N}: {meta}"
        );
        let (code, out, err) = c.cli(&["cluster", "status"]);
        assert_eq!(code, 0, "{label}: {out}{err}");
        for node in ["a", "b", "c"] {
            assert!(
                out.contains(&format!("\n  {node} ")),
                "{label}: node {node} listed: {out}"
            );
        }
        assert!(out.contains("replicas 3, leader n"), "{label}: {out}");

        // One shard group with a member on A and one on B: they split the
        // stream, each line to one of them.
        let nozzles: Vec<_> = [&a, &b]
            .iter()
            .map(|node| {
                let target = node.grpc.expect("grpc").to_string();
                Command::new(sluice_bin())
                    .args(["nozzle", "--target", &target, "--source-id", "sharded"])
                    .args(["--type", "log", "--shard-id", "split", "--idle", "3"])
                    .args(["--duration", "60"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("sluice nozzle")
            })
            .collect();
        // Both nodes learn of the other's member from its heartbeat.
        std::thread::sleep(Duration::from_secs(6));
        for chunk in lines("line", 1, N).chunks(250) {
            c.post_lines("sharded", chunk);
        }
        let halves: Vec<Vec<u64>> = nozzles
            .into_iter()
            .map(|n| firehosed(&n.wait_with_output().expect("nozzle ends").stdout))
            .collect();
        let mut both: Vec<u64> = halves.concat();
        both.sort_unstable();
        assert_exactly_once(&both, N, &format!("{label}: a shard group across A and B"));
        for half in &halves {
            assert!(
                half.len() as u64 > N / 4,
                "{label}: each member gets a fair part: {} and {}",
                halves[0].len(),
                halves[1].len()
            );
        }
    }
}

/// The numbers of the `line N` log envelopes `sluice nozzle` printed.
fn firehosed(stdout: &[u8]) -> Vec<u64> {
    numbered(String::from_utf8_lossy(stdout).lines().filter_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v["log"]["payload"].as_str()?)
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }))
}

/// The node that owns `drain`, as the given nodes say.
fn owner(nodes: &[&ServerProcess], drain: &str) -> Option<String> {
    nodes.iter().find_map(|n| {
        let s = n.drain_status(drain);
        (s["status"]["state"] == "RUNNING")
            .then(|| s["status"]["owner"].as_str().map(str::to_owned))
            .flatten()
    })
}

#[test]
fn a_drain_moves_to_another_node_when_its_owner_is_killed() {
    let _serial = one_at_a_time();
    const N: u64 = 6000;
    for (label, bin) in nats_servers() {
        let nats = NatsCluster::start(&bin, 3);
        let extra = ["--allow-drain-ranges", "127.0.0.0/8"];
        let mut nodes: HashMap<&str, ServerProcess> = ["a", "b", "c"]
            .into_iter()
            .map(|id| (id, start_node(&nats, id, &extra)))
            .collect();
        let receiver = TcpReceiver::start();
        let url = format!("tcp://127.0.0.1:{}", receiver.port);
        let (code, out, err) = nodes["a"].cli(&["drain", "add", "moving", &url, "--app", "moving"]);
        assert_eq!(code, 0, "{label}: {out}{err}");
        let all: Vec<&ServerProcess> = nodes.values().collect();
        let first = eventually(20, || owner(&all, "moving")).expect("one node delivers the drain");
        let (code, out, _) = nodes["b"].cli(&["drain", "status", "moving"]);
        assert!(
            code == 0 && out.contains(&format!("owner {first}")),
            "{label}: {out}"
        );

        // Lines go in through a node that stays, while the owner delivers.
        let sender_id = ["a", "b", "c"]
            .into_iter()
            .find(|id| *id != first)
            .expect("another node");
        let http = nodes[sender_id].http.clone();
        let sender = std::thread::spawn(move || {
            for chunk in lines("line", 1, N).chunks(100) {
                post_text_to(&http, &app_query("moving"), &chunk.join("\n"));
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        let mut got: Vec<u64> = Vec::new();
        while (got.len() as u64) < N / 3 {
            let line = receiver
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("delivery starts");
            got.extend(numbered([line]));
        }
        let killed_at = Instant::now();
        nodes.get_mut(first.as_str()).expect("owner").kill9();
        let rest: Vec<&ServerProcess> = nodes
            .iter()
            .filter(|(id, _)| **id != first)
            .map(|(_, n)| n)
            .collect();
        let second = eventually(20, || owner(&rest, "moving").filter(|o| *o != first))
            .expect("another node takes the drain over");
        let takeover = killed_at.elapsed();
        assert!(
            takeover <= Duration::from_secs(10),
            "{label}: took over after {takeover:?}"
        );
        sender.join().expect("sender");

        let deadline = Instant::now() + Duration::from_secs(60);
        let mut distinct: std::collections::HashSet<u64> = got.iter().copied().collect();
        while (distinct.len() as u64) < N && Instant::now() < deadline {
            if let Ok(line) = receiver.lines.recv_timeout(Duration::from_millis(500)) {
                for n in numbered([line]) {
                    got.push(n);
                    distinct.insert(n);
                }
            }
        }
        let missing: Vec<u64> = (1..=N).filter(|n| !distinct.contains(n)).take(10).collect();
        assert!(
            missing.is_empty(),
            "{label}: every number arrives; first missing {missing:?}"
        );
        let duplicates = got.len() - distinct.len();
        // The tcp:// writer sends batches of at most 1,000 lines.
        assert!(
            duplicates <= 1000,
            "{label}: {duplicates} duplicates (one batch at most)"
        );
        eprintln!("{label}: drain moved from {first} to {second} in {takeover:?}, {duplicates} duplicates");
    }
}

#[test]
fn ingest_and_drains_go_on_without_a_nats_server_and_catch_up_after_all_return() {
    let _serial = one_at_a_time();
    for (label, bin) in nats_servers() {
        let mut nats = NatsCluster::start(&bin, 3);
        let extra = ["--allow-drain-ranges", "127.0.0.0/8"];
        let a = start_node(&nats, "a", &extra);
        let b = start_node(&nats, "b", &extra);
        let receiver = TcpReceiver::start();
        let url = format!("tcp://127.0.0.1:{}", receiver.port);
        let (code, out, err) = a.cli(&["drain", "add", "outage", &url, "--app", "outage"]);
        assert_eq!(code, 0, "{label}: {out}{err}");
        eventually(20, || owner(&[&a, &b], "outage")).expect("one node delivers the drain");

        // One of three servers gone: ingest, reads and the drain go on.
        nats.kill(0);
        a.post_lines("outage", &lines("line", 1, 500));
        let entries = settled_entries(&b, "outage", 500, 60);
        assert_exactly_once(
            &numbers(&entries, "line "),
            500,
            &format!("{label}: one server down"),
        );

        // All of them gone for 10 s: the nodes buffer and say so.
        nats.kill(1);
        nats.kill(2);
        std::thread::sleep(Duration::from_secs(1));
        b.post_lines("outage", &lines("line", 501, 1000));
        let degraded = eventually(20, || {
            let v: serde_json::Value = serde_json::from_str(&b.get("/v1/cluster")).ok()?;
            (v["degraded"] == true).then_some(v)
        });
        assert!(
            degraded.is_some(),
            "{label}: node b reports the cluster degraded"
        );
        let (code, out, _) = b.cli(&["cluster", "status"]);
        assert!(
            code == 1 && out.starts_with("cluster: DEGRADED"),
            "{label}: {out}"
        );
        let health: serde_json::Value = serde_json::from_str(&b.get("/v1/health")).expect("health");
        assert!(
            health["cluster_degraded"] == true && health["level"] != "ok",
            "{label}: /v1/health says so too: {}",
            health["level"]
        );
        std::thread::sleep(Duration::from_secs(9));
        for i in 0..3 {
            nats.restart(i);
        }

        let entries = settled_entries(&a, "outage", 1000, 90);
        assert_exactly_once(
            &numbers(&entries, "line "),
            1000,
            &format!("{label}: after the outage"),
        );
        let mut delivered = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while delivered.len() < 1000 && Instant::now() < deadline {
            if let Ok(line) = receiver.lines.recv_timeout(Duration::from_millis(500)) {
                delivered.extend(numbered([line]));
            }
        }
        assert_eq!(
            delivered.len(),
            1000,
            "{label}: the drain delivered every line"
        );
        // Nothing was lost, and the count of what was says so.
        let metrics = b.get("/metrics");
        assert!(
            !metrics.contains("sluice_drops_total{reason=\"cluster_buffer_full\"}"),
            "{label}: nothing dropped from the buffer"
        );
        let healthy = eventually(30, || {
            let v: serde_json::Value = serde_json::from_str(&b.get("/v1/cluster")).ok()?;
            (v["degraded"] == false).then_some(())
        });
        assert!(healthy.is_some(), "{label}: node b healthy again");
    }
}
