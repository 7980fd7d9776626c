//! A crash (the runtime dropped under the drains, no stop, no last commit,
//! the disk log never closed) loses no message: the next manager resumes
//! from the last committed cursor and sends again at most the batch that
//! was in flight (see `feed.rs`: every accepted batch is committed before
//! the next is sent).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use sluice_log::{ApiError, DiskLog, DiskLogConfig, Log};
use tokio_util::sync::CancellationToken;

use super::log_tests::{append, loopback};
use super::tests::{add, spec, wait_state};
use super::{DrainManager, DrainsConfig};
use crate::status::State;
use crate::writers::testutil::TempDir as Dir;

/// Every complete line of every connection, in arrival order, each
/// connection's after the one before it.
fn receiver(listener: TcpListener) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            for line in BufReader::new(conn).split(b'\n') {
                let Ok(line) = line else { break };
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    rx
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the disk log, waiting while a crashed run's blocking threads
/// still hold its lock.
fn open(dir: &std::path::Path) -> Arc<DiskLog> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match DiskLog::open(DiskLogConfig::new(dir.join("log"))) {
            Ok((log, _)) => return Arc::new(log),
            Err(e @ ApiError::Storage(_)) if std::time::Instant::now() >= deadline => {
                panic!("{e}")
            }
            Err(ApiError::Storage(_)) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    }
}

fn start(data: &std::path::Path, log: &Arc<DiskLog>) -> DrainManager {
    let mut config = DrainsConfig::new(data.to_owned());
    loopback(&mut config);
    let shared: Arc<dyn Log> = log.clone();
    let (m, problems) = DrainManager::start(
        shared,
        Arc::new(metrics::Metrics::default()),
        config,
        CancellationToken::new(),
    );
    assert!(problems.is_empty(), "{problems:?}");
    m
}

fn line(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a line in time")
}

#[test]
fn a_crash_loses_nothing() {
    let data = Dir::new("crash");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rx = receiver(listener);
    let mut got = Vec::new();

    let rt = runtime();
    let committed = rt.block_on(async {
        let log = open(&data.0);
        let m = start(&data.0, &log);
        add(&m, spec("c", &format!("tcp://127.0.0.1:{port}")))
            .await
            .unwrap();
        wait_state(&m, "c", State::Running).await;
        append(log.as_ref(), 0, 50_000).await;
        // Mid-stream, once a commit moved the cursor.
        for _ in 0..20_000 {
            got.push(line(&rx));
        }
        let consumer = super::consumer_name("c");
        let committed = loop {
            match log.committed(&consumer).await.unwrap() {
                Some(c) if c.next() > 0 => break c.next() as usize,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        // Dropping the manager leaves its tasks running.
        drop(m);
        committed
    });
    // The crash: every task dropped where it stood.
    rt.shutdown_background();
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        got.push(l);
    }
    let first_run = got.len();

    let rt = runtime();
    rt.block_on(async {
        let log = open(&data.0);
        let m = start(&data.0, &log);
        append(log.as_ref(), 50_000, 60_000).await;
        loop {
            let l = line(&rx);
            let last = l == "m59999";
            got.push(l);
            if last {
                break;
            }
        }
        m.stop_all(Duration::from_secs(5)).await;
    });

    let resumed_at: usize = got[first_run][1..].parse().unwrap();
    assert!(resumed_at <= first_run, "a gap: {resumed_at} > {first_run}");
    assert!(
        resumed_at >= committed,
        "resumed at {resumed_at}, before the cursor committed at {committed}"
    );
    let mut expected: Vec<String> = (0..first_run).map(|i| format!("m{i}")).collect();
    expected.extend((resumed_at..60_000).map(|i| format!("m{i}")));
    assert!(got == expected, "out of order or lost");
    let twice = first_run - resumed_at;
    eprintln!(
        "crashed after {first_run} messages (committed at least {committed}); {twice} sent twice"
    );
    let batch = crate::writers::batch_policy(crate::spec::Scheme::Tcp).max_entries;
    assert!(
        twice <= batch,
        "{twice} sent twice: more than one batch ({batch})"
    );
}
