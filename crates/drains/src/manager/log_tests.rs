//! Tests of drains as durable cursors into the log: a receiver that is
//! down loses nothing; retention passing a drain is counted exactly and
//! told; a restarted manager resumes from the committed cursor; a deleted
//! drain's cursor is forgotten; a selective drain passes over what it does
//! not select. Plus the catch-up rate, measured
//! (`#[ignore]`d: run it in release mode, see [`catch_up_rate`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use envelope::{Envelope, LogType, Selector};
use sluice_log::{Cursor, DiskLog, DiskLogConfig, Log, MemoryLogConfig};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::tests::{add, manager, spec, wait_state, Env};
use super::{consumer_name, DrainManager, DrainsConfig};
use crate::netpolicy::NetPolicy;
use crate::status::State;
use crate::writers::testutil::TempDir as Dir;

const T0: i64 = 1_795_266_898_000_000_000;

pub(super) fn loopback(c: &mut DrainsConfig) {
    c.policy = Arc::new(NetPolicy::from_list("127.0.0.0/8").unwrap());
}

/// Messages `m<from>` … `m<to - 1>` from app `app`.
fn messages(from: usize, to: usize) -> Vec<Envelope> {
    (from..to)
        .map(|i| {
            Envelope::log(
                T0 + i as i64,
                "app",
                "0",
                Bytes::from(format!("m{i}")),
                LogType::Out,
            )
        })
        .collect()
}

/// Appends `m<from>` … `m<to - 1>` in batches of 1,000.
pub(super) async fn append(log: &dyn Log, from: usize, to: usize) {
    let mut at = from;
    while at < to {
        let end = (at + 1000).min(to);
        log.append(messages(at, end)).await.unwrap();
        at = end;
    }
}

/// The complete lines a `tcp://` drain sends over one connection, as they
/// arrive; ends when the connection does.
fn lines(mut conn: TcpStream) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = conn.read(&mut chunk).await {
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            for line in buf[..end].split(|b| *b == b'\n') {
                if tx.send(String::from_utf8_lossy(line).into_owned()).is_err() {
                    return;
                }
            }
            buf.drain(..=end);
        }
    });
    rx
}

async fn next_line(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a line in time")
        .expect("the connection still open")
}

/// A port nobody listens on (now).
async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn wait_for(
    m: &DrainManager,
    name: &str,
    what: &str,
    ok: impl Fn(&super::DrainInfo) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = m.get(name).unwrap();
        if ok(&info) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never {what}: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// (a) While the receiver is down 50,000 messages are appended; when it
/// comes up every one is delivered once, in order, and the drain goes
/// from RETRYING to RUNNING with nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_loses_nothing() {
    let data = Dir::new("down");
    let (m, env) = manager(&data.0, loopback);
    let port = free_port().await;
    add(&m, spec("d", &format!("tcp://127.0.0.1:{port}")))
        .await
        .unwrap();
    wait_state(&m, "d", State::Retrying).await;
    append(env.log.as_ref(), 0, 50_000).await;
    let info = m.get("d").unwrap();
    assert_eq!(info.status.behind, Some(50_000), "{info:?}");
    // The gauge follows the log while the drain waits to retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !env
        .metrics
        .encode()
        .contains("sluice_drain_behind{drain=\"d\"} 50000")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            env.metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (conn, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the drain reconnects")
        .unwrap();
    let mut rx = lines(conn);
    for i in 0..50_000 {
        assert_eq!(next_line(&mut rx).await, format!("m{i}"));
    }
    wait_for(&m, "d", "caught up", |i| i.status.behind == Some(0)).await;
    let info = m.get("d").unwrap();
    assert_eq!(info.status.state, State::Running);
    assert!(info.status.retries >= 1, "{info:?}");
    assert_eq!((info.status.sent, info.status.dropped), (50_000, 0));
    assert_eq!(info.status.oldest_undelivered_ns, None);
    // Nothing more arrives (every message once).
    env.publish(messages(50_000, 50_001)).await;
    assert_eq!(next_line(&mut rx).await, "m50000");
}

/// (b) Retention passes a stalled drain: what was removed before the
/// drain sent it is its `dropped`, exactly, and a notice in the log says
/// so (and is delivered after what was left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_passing_a_drain_is_counted_and_told() {
    let data = Dir::new("passed");
    let env = Env::new(MemoryLogConfig {
        max_entries: 1000,
        ..Default::default()
    });
    let mut config = DrainsConfig::new(data.0.clone());
    loopback(&mut config);
    let (m, problems) = env.start(config);
    assert!(problems.is_empty(), "{problems:?}");
    let port = free_port().await;
    add(&m, spec("r", &format!("tcp://127.0.0.1:{port}")))
        .await
        .unwrap();
    wait_state(&m, "r", State::Retrying).await;
    append(env.log.as_ref(), 0, 5000).await;

    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (conn, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the drain reconnects")
        .unwrap();
    let mut rx = lines(conn);
    for i in 4000..5000 {
        assert_eq!(next_line(&mut rx).await, format!("m{i}"));
    }
    let told = next_line(&mut rx).await;
    assert_eq!(
        told,
        "sluice: 4000 messages lost for app * to drain r since 2026-11-21T13:14:58Z"
    );
    // The status counts a batch once its send returned, just after the
    // receiver read it.
    wait_for(&m, "r", "the notice counted as sent", |i| {
        i.status.sent == 1001
    })
    .await;
    let info = m.get("r").unwrap();
    assert_eq!((info.status.sent, info.status.dropped), (1001, 4000));
    assert!(env
        .metrics
        .encode()
        .contains("sluice_drain_dropped_total{drain=\"r\"} 4000"));
    let page = env
        .log
        .read_from(Cursor::START, &Selector::default(), 2000)
        .await
        .unwrap();
    let notices: Vec<_> = page
        .entries
        .iter()
        .filter(|e| e.entry.envelope.tag("source_type") == Some("SLUICE"))
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].entry.envelope.source_id, "*");
}

/// (c) A manager stopped and started again on the same disk log resumes
/// from the committed cursor: nothing lost, at most one batch twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_manager_resumes_from_the_committed_cursor() {
    let data = Dir::new("resume");
    let open = || {
        let (log, _) = DiskLog::open(DiskLogConfig::new(data.0.join("log"))).unwrap();
        Arc::new(log)
    };
    let start = |log: &Arc<DiskLog>| {
        let mut config = DrainsConfig::new(data.0.clone());
        loopback(&mut config);
        let shared: Arc<dyn Log> = log.clone();
        let (m, problems) = DrainManager::start(
            shared,
            Arc::new(metrics::Metrics::default()),
            config,
            tokio_util::sync::CancellationToken::new(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        m
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    let log = open();
    let m = start(&log);
    add(&m, spec("keep", &format!("tcp://127.0.0.1:{port}")))
        .await
        .unwrap();
    let (conn, _) = listener.accept().await.unwrap();
    let mut rx = lines(conn);
    wait_state(&m, "keep", State::Running).await;
    append(log.as_ref(), 0, 20_000).await;
    // Stop mid-stream, once some of it arrived.
    let mut got = Vec::new();
    for _ in 0..5000 {
        got.push(next_line(&mut rx).await);
    }
    m.stop_all(Duration::from_secs(5)).await;
    // What was not sent stays in the log: nothing is counted as lost.
    let info = m.get("keep").unwrap();
    assert_eq!(
        (info.status.state, info.status.dropped),
        (State::Stopped, 0)
    );
    drop(m);
    while let Some(line) = rx.recv().await {
        got.push(line);
    }
    let first_run = got.len();
    let committed = log.committed(&consumer_name("keep")).await.unwrap();
    log.close().await.unwrap();
    drop(log);

    let log = open();
    assert_eq!(
        log.committed(&consumer_name("keep")).await.unwrap(),
        committed
    );
    let m = start(&log);
    let (conn, _) = listener.accept().await.unwrap();
    let mut rx = lines(conn);
    append(log.as_ref(), 20_000, 30_000).await;
    loop {
        let line = next_line(&mut rx).await;
        let last = line == "m29999";
        got.push(line);
        if last {
            break;
        }
    }
    // Every message, in order; what the second run sent again is at most
    // one batch (1,000 for a stream writer).
    let resumed_at: usize = got[first_run][1..].parse().unwrap();
    assert!(resumed_at <= first_run, "a gap: {resumed_at} > {first_run}");
    let again = first_run - resumed_at;
    assert!(again <= 1000, "{again} sent twice");
    let mut expected: Vec<String> = (0..first_run).map(|i| format!("m{i}")).collect();
    expected.extend((resumed_at..30_000).map(|i| format!("m{i}")));
    assert!(got == expected, "out of order or lost");
    eprintln!("stopped after {first_run} messages; {again} sent twice");
    m.stop_all(Duration::from_secs(5)).await;
}

/// A new drain's cursor is the log's end, committed at once; a deleted
/// drain's is forgotten; one added again under that name starts anew.
#[tokio::test]
async fn cursors_follow_the_drain() {
    let data = Dir::new("cursors");
    let (m, env) = manager(&data.0, |_| {});
    env.publish(messages(0, 10)).await;
    add(&m, spec("c", "udp://203.0.113.1:9")).await.unwrap();
    let consumer = consumer_name("c");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while env.log.committed(&consumer).await.unwrap() != Some(Cursor::at(10)) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m.get("c").unwrap().status.behind, Some(0));
    let m2 = m.clone();
    tokio::task::spawn_blocking(move || m2.delete("c"))
        .await
        .unwrap()
        .unwrap();
    while env.log.committed(&consumer).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.publish(messages(10, 15)).await;
    add(&m, spec("c", "udp://203.0.113.1:9")).await.unwrap();
    while env.log.committed(&consumer).await.unwrap() != Some(Cursor::at(15)) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads octet-counted syslog frames from `conn` until `n` arrived.
async fn count_frames(mut conn: TcpStream, n: usize) -> usize {
    let mut chunk = vec![0u8; 256 * 1024];
    let (mut frames, mut len, mut skip) = (0usize, 0usize, 0usize);
    while frames < n {
        let read = conn.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the drain hung up after {frames} frames");
        let mut i = 0;
        while i < read {
            if skip > 0 {
                let take = skip.min(read - i);
                skip -= take;
                i += take;
                if skip == 0 {
                    frames += 1;
                }
                continue;
            }
            match chunk[i] {
                b' ' => {
                    skip = len;
                    len = 0;
                }
                d => len = len * 10 + usize::from(d - b'0'),
            }
            i += 1;
        }
    }
    frames
}

/// The catch-up rate: a `syslog://` drain to a local TCP receiver works
/// off a 1,000,000-message backlog in a disk log. Run it with
/// `cargo test --release -p sluice-drains catch_up_rate -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release mode with --ignored --nocapture"]
async fn catch_up_rate() {
    const N: usize = 1_000_000;
    let data = Dir::new("catchup");
    let (log, _) = DiskLog::open(DiskLogConfig::new(data.0.join("log"))).unwrap();
    let log = Arc::new(log);
    let appending = std::time::Instant::now();
    let mut at = 0;
    while at < N {
        let end = (at + 10_000).min(N);
        let batch = (at..end)
            .map(|i| {
                let mut e = Envelope::log(
                    envelope::time::now_ns(),
                    "7f3c2a9e-5b1d-4c8e-9f0a-1b2c3d4e5f60",
                    "0",
                    Bytes::from(format!(
                        "GET /api/v1/items/{i} 200 12ms user_agent=\"curl/8.5\" request_id={i:016x}"
                    )),
                    LogType::Out,
                );
                e.tags.insert("app_name".into(), "web".into());
                e.tags.insert("source_type".into(), "APP/PROC/WEB".into());
                e
            })
            .collect();
        log.append(batch).await.unwrap();
        at = end;
    }
    log.sync().await.unwrap();
    let append_secs = appending.elapsed().as_secs_f64();
    // What one cursor commit costs here (why commits are throttled).
    let committing = std::time::Instant::now();
    for i in 0..100 {
        log.commit("probe", Cursor::at(i)).await.unwrap();
    }
    let commit_ms = committing.elapsed().as_secs_f64() * 10.0;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let saved = spec("bench", &format!("syslog://127.0.0.1:{port}"));
    crate::persist::Persist::new(&data.0)
        .save_drain(&saved)
        .unwrap();
    log.commit(&consumer_name("bench"), Cursor::START)
        .await
        .unwrap();
    let mut config = DrainsConfig::new(data.0.clone());
    loopback(&mut config);
    let shared: Arc<dyn Log> = log.clone();
    let metrics = Arc::new(metrics::Metrics::default());
    let started = std::time::Instant::now();
    let (m, problems) = DrainManager::start(
        shared,
        metrics,
        config,
        tokio_util::sync::CancellationToken::new(),
    );
    assert!(problems.is_empty(), "{problems:?}");
    let (conn, _) = listener.accept().await.unwrap();
    let frames = count_frames(conn, N).await;
    let secs = started.elapsed().as_secs_f64();
    wait_for(&m, "bench", "caught up", |i| i.status.behind == Some(0)).await;
    m.stop_all(Duration::from_secs(5)).await;
    assert_eq!(frames, N);
    println!(
        "catch-up: {N} messages from a DiskLog to a local syslog receiver in {secs:.2} s = {:.0} msg/s (appending them took {append_secs:.2} s = {:.0} msg/s; one cursor commit {commit_ms:.2} ms)",
        N as f64 / secs,
        N as f64 / append_secs
    );
}

/// A drain that selects one app passes over the others' entries: it
/// delivers its app's only, and is not behind once it has examined them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_drain_passes_over_other_apps() {
    let data = Dir::new("selective");
    let (m, env) = manager(&data.0, loopback);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = spec("w", &format!("tcp://127.0.0.1:{port}"));
    s.apps = vec!["web".into()];
    add(&m, s).await.unwrap();
    let (conn, _) = listener.accept().await.unwrap();
    let mut rx = lines(conn);
    append(env.log.as_ref(), 0, 30_000).await;
    let mut web = messages(30_000, 30_001);
    web[0].source_id = "web".into();
    env.publish(web).await;
    append(env.log.as_ref(), 30_001, 40_000).await;
    assert_eq!(next_line(&mut rx).await, "m30000");
    wait_for(&m, "w", "caught up", |i| i.status.behind == Some(0)).await;
    let info = m.get("w").unwrap();
    assert_eq!((info.status.sent, info.status.dropped), (1, 0));
    assert_eq!(info.status.oldest_undelivered_ns, None);
}
