//! Limits and lifecycle of the [`Log`] implementations: caps, retention
//! told as `skipped`, sparse selectors paged by the scan budget, record
//! limits, the fsync timer, closing and the directory lock.

use bytes::Bytes;
use envelope::{Envelope, LogType, Selector};
use sluice_log::{
    ApiError, Cursor, DiskLog, DiskLogConfig, Log, LogError, MemoryLog, MemoryLogConfig,
    RetentionPolicy,
};

fn envelopes(range: std::ops::Range<usize>, sources: usize) -> Vec<Envelope> {
    range
        .map(|i| {
            Envelope::log(
                i as i64 * 1000,
                format!("src-{}", i % sources),
                "0",
                Bytes::from(format!("line {i}")),
                LogType::Out,
            )
        })
        .collect()
}

fn disk_config(dir: &std::path::Path) -> DiskLogConfig {
    let mut c = DiskLogConfig::new(dir);
    c.storage.segment_bytes = 2048;
    c
}

fn disk(dir: &std::path::Path) -> DiskLog {
    DiskLog::open(disk_config(dir)).expect("open").0
}

/// [`disk`], retrying while another holder of the directory lock (a
/// blocking thread of a dropped log) finishes.
fn reopen_when_unlocked(dir: &std::path::Path) -> DiskLog {
    let c = disk_config(dir);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match DiskLog::open(c.clone()) {
            Ok((log, _)) => return log,
            Err(sluice_log::ApiError::Storage(sluice_log::LogError::Locked { .. }))
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("open: {e}"),
        }
    }
}

#[tokio::test]
async fn memory_byte_budget_drops_oldest() {
    let log = MemoryLog::new(MemoryLogConfig {
        max_bytes: Some(2000),
        ..MemoryLogConfig::default()
    });
    log.append(envelopes(0..100, 2)).await.unwrap();
    let stats = log.stats().await.unwrap();
    assert!(stats.bytes <= 2000, "{stats:?}");
    assert!(stats.oldest_position > Some(0));
    assert_eq!(stats.next_position, 100);
}

#[tokio::test]
async fn memory_caps_drop_oldest_and_tell() {
    let log = MemoryLog::new(MemoryLogConfig {
        max_entries: 10,
        max_per_source: 2,
        ..MemoryLogConfig::default()
    });
    assert_eq!(log.append(envelopes(0..30, 3)).await.unwrap().len(), 30);
    let page = log
        .read_from(Cursor::START, &Selector::all(), 100)
        .await
        .unwrap();
    assert_eq!(page.skipped, 20);
    let positions: Vec<u64> = page.entries.iter().map(|e| e.position).collect();
    assert_eq!(positions, (20..30).collect::<Vec<u64>>());
    let src0 = log
        .read_source("src-0", 0, i64::MAX, 10, false)
        .await
        .unwrap();
    assert_eq!(
        src0.iter().map(|e| e.position).collect::<Vec<_>>(),
        [24, 27]
    );
    let stats = log.stats().await.unwrap();
    assert_eq!((stats.entries, stats.sources), (6, 3));
    assert_eq!(stats.oldest_position, Some(20));
}

async fn sparse_selector_pages<L: Log>(log: L) {
    let mut batch = envelopes(0..5000, 1);
    batch[4321].source_id = "rare".into();
    log.append(batch).await.unwrap();
    let selector = Selector {
        source_ids: vec!["rare".into()],
        ..Selector::default()
    };
    let (mut cursor, mut found, mut pages) = (Cursor::START, Vec::new(), 0);
    loop {
        let page = log.read_from(cursor, &selector, 10).await.unwrap();
        pages += 1;
        found.extend(page.entries.iter().map(|e| e.position));
        cursor = page.next_cursor;
        if page.caught_up {
            break;
        }
    }
    assert_eq!(found, [4321]);
    assert_eq!(cursor, Cursor::at(5000));
    assert!(pages > 1, "the scan budget bounds a page's work");
}

#[tokio::test]
async fn memory_sparse_selector_pages() {
    sparse_selector_pages(MemoryLog::new(MemoryLogConfig::default())).await;
}

#[tokio::test]
async fn disk_sparse_selector_pages() {
    let dir = tempfile::tempdir().unwrap();
    sparse_selector_pages(disk(dir.path())).await;
}

async fn pages_stop_at_page_bytes<L: Log>(log: L) {
    let big = Bytes::from(vec![b'x'; 64 * 1024]);
    for i in 0..6 {
        let batch = (0..50)
            .map(|j| Envelope::log(i * 50 + j, "big", "0", big.clone(), LogType::Out))
            .collect();
        log.append(batch).await.unwrap();
    }
    let first = log
        .read_from(Cursor::START, &Selector::all(), 1000)
        .await
        .unwrap();
    let n = first.entries.len();
    assert!(n > 1 && n < 300 && !first.caught_up, "{n}");
    let bytes: usize = first
        .entries
        .iter()
        .map(|e| e.entry.envelope.approx_size())
        .sum();
    let page = sluice_log::PAGE_BYTES;
    assert!((page..page + 70_000).contains(&bytes), "{bytes}");
    let second = log
        .read_from(first.next_cursor, &Selector::all(), 1000)
        .await
        .unwrap();
    assert_eq!(second.entries[0].position, n as u64);
    assert_eq!(n + second.entries.len(), 300);
}

#[tokio::test]
async fn memory_pages_stop_at_page_bytes() {
    pages_stop_at_page_bytes(MemoryLog::new(MemoryLogConfig::default())).await;
}

#[tokio::test]
async fn disk_pages_stop_at_page_bytes() {
    let dir = tempfile::tempdir().unwrap();
    pages_stop_at_page_bytes(DiskLog::open(DiskLogConfig::new(dir.path())).unwrap().0).await;
}

#[tokio::test]
async fn disk_retention_is_counted_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = disk(dir.path());
    for i in 0..40 {
        log.append(envelopes(i * 10..i * 10 + 10, 4)).await.unwrap();
    }
    log.commit("slow", Cursor::at(5)).await.unwrap();
    let policy = RetentionPolicy {
        max_age_ns: None,
        max_bytes: Some(6000),
    };
    let report = log.apply_retention(policy, 0).await.unwrap();
    let removed = report.records();
    assert!(removed > 5, "{report:?}");
    let cursor = log.committed("slow").await.unwrap().unwrap();
    let page = log.read_from(cursor, &Selector::all(), 1).await.unwrap();
    assert_eq!(page.skipped, removed - 5);
    assert_eq!(page.entries[0].position, removed);
    let stats = log.stats().await.unwrap();
    assert_eq!(stats.oldest_position, Some(removed));
    assert_eq!(stats.next_position, 400);
}

#[tokio::test]
async fn disk_rejects_a_batch_with_an_oversized_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = DiskLogConfig::new(dir.path());
    c.storage.max_record_bytes = 512;
    let (log, _) = DiskLog::open(c).unwrap();
    let mut batch = envelopes(0..3, 1);
    batch[1] = Envelope::log(1, "s", "0", Bytes::from(vec![b'x'; 600]), LogType::Err);
    let err = log.append(batch).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Storage(LogError::Encode { index: 1, .. })),
        "{err}"
    );
    assert_eq!(log.stats().await.unwrap().next_position, 0);
    assert_eq!(log.append(envelopes(0..1, 1)).await.unwrap(), [0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_sync_timer_close_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let log = disk(dir.path());
    assert!(matches!(
        DiskLog::open(DiskLogConfig::new(dir.path())),
        Err(ApiError::Storage(LogError::Locked { .. }))
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timer = tokio::spawn(log.sync_every(std::time::Duration::from_millis(5), async {
        let _ = stopped.await;
    }));
    log.append(envelopes(0..10, 2)).await.unwrap();
    stop.send(()).unwrap();
    timer.await.unwrap();
    assert_eq!(
        log.reader()
            .segments()
            .iter()
            .map(|s| s.records)
            .sum::<u64>(),
        10
    );
    assert_eq!(log.stats().await.unwrap().sync_errors, 0);

    log.close().await.unwrap();
    assert!(matches!(
        log.append(envelopes(0..1, 1)).await,
        Err(ApiError::Closed)
    ));
    let after = log
        .read_from(Cursor::START, &Selector::all(), 100)
        .await
        .unwrap();
    assert_eq!(after.entries.len(), 10, "reads work after close");
    let reopened = disk(dir.path());
    assert_eq!(reopened.end_cursor().await.unwrap(), Cursor::at(10));
}

#[tokio::test]
async fn disk_dropped_without_close_keeps_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = disk(dir.path());
    for i in 0..10 {
        log.append(envelopes(i * 7..i * 7 + 7, 3)).await.unwrap();
    }
    log.commit("drain", Cursor::at(33)).await.unwrap();
    drop(log);
    // The group committer's blocking thread may still hold the log (and
    // its directory lock) for a moment after the last append returned.
    let log = reopen_when_unlocked(dir.path());
    assert_eq!(log.committed("drain").await.unwrap(), Some(Cursor::at(33)));
    let page = log
        .read_from(Cursor::at(33), &Selector::all(), 100)
        .await
        .unwrap();
    let positions: Vec<u64> = page.entries.iter().map(|e| e.position).collect();
    assert_eq!(positions, (33..70).collect::<Vec<u64>>());
    assert_eq!(log.append(envelopes(0..1, 1)).await.unwrap(), [70]);
}
