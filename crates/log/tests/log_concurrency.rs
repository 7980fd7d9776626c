//! Concurrent appenders and a tailing reader: the reader, paging with
//! `read_from` and waiting with `wait_beyond`, sees every position exactly
//! once, in order, and each appender's entries in its own order.

use std::sync::Arc;

use bytes::Bytes;
use envelope::{Envelope, LogType, Selector};
use sluice_log::{Cursor, DiskLog, DiskLogConfig, Log, MemoryLog, MemoryLogConfig};

const TASKS: usize = 4;
const BATCHES: usize = 50;
const BATCH: usize = 20;

async fn tail_sees_every_append<L: Log + 'static>(log: Arc<L>) {
    let total = (TASKS * BATCHES * BATCH) as u64;
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (Cursor::START, Vec::new());
            while (seen.len() as u64) < total {
                let page = log.read_from(cursor, &Selector::all(), 97).await.unwrap();
                assert_eq!(page.skipped, 0);
                seen.extend(page.entries);
                cursor = page.next_cursor;
                if page.caught_up && (seen.len() as u64) < total {
                    log.wait_beyond(cursor).await.unwrap();
                }
            }
            seen
        })
    };
    let writers: Vec<_> = (0..TASKS)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let batch = (0..BATCH)
                        .map(|i| {
                            let n = b * BATCH + i;
                            let payload = Bytes::from(n.to_string());
                            Envelope::log(n as i64, format!("task-{t}"), "0", payload, LogType::Out)
                        })
                        .collect();
                    let positions = log.append(batch).await.unwrap();
                    assert!(positions.windows(2).all(|w| w[1] == w[0] + 1));
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let seen = reader.await.unwrap();
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    assert_eq!(positions, (0..total).collect::<Vec<u64>>());
    for t in 0..TASKS {
        let source = format!("task-{t}");
        let order: Vec<i64> = seen
            .iter()
            .filter(|e| e.entry.envelope.source_id == source)
            .map(|e| e.entry.envelope.timestamp)
            .collect();
        assert_eq!(order, (0..(BATCHES * BATCH) as i64).collect::<Vec<i64>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_tail_sees_every_append() {
    tail_sees_every_append(Arc::new(MemoryLog::new(MemoryLogConfig::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_tail_sees_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DiskLogConfig::new(dir.path());
    config.storage.segment_bytes = 16 * 1024;
    let log = DiskLog::open(config).unwrap().0;
    tail_sees_every_append(Arc::new(log)).await;
}
