//! The recent-records cache of [`DiskLog`] must not change any answer: two
//! disk logs get the same random appends and retention, one with a small
//! cache (so cursors fall inside it, across its oldest edge and before it)
//! and one with none (every read from disk), and every `read_from` page
//! must be equal, as must per-source reads (`read_source`, `recent`). Plus: the cache is bounded by bytes and shows in stats.

use bytes::Bytes;
use envelope::{Envelope, LogType, Selector};
use proptest::prelude::*;
use sluice_log::{Cursor, DiskLog, DiskLogConfig, Log, RetentionPolicy};

#[derive(Clone, Debug)]
enum Op {
    /// (source, payload length) per envelope.
    Append(Vec<(u8, u8)>),
    ReadFrom {
        back: u8,
        source: Option<u8>,
        limit: u8,
    },
    /// Keep at most this many KiB of segments.
    Retain(u8),
    /// `read_source` and `recent` of one source.
    BySource {
        source: u8,
        after: u16,
        limit: u8,
        descending: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u8..4, any::<u8>()), 0..40).prop_map(Op::Append),
        6 => (any::<u8>(), prop::option::of(0u8..5), 0u8..40)
            .prop_map(|(back, source, limit)| Op::ReadFrom { back, source, limit }),
        1 => (1u8..8).prop_map(Op::Retain),
        2 => (0u8..5, any::<u16>(), 0u8..40, any::<bool>()).prop_map(
            |(source, after, limit, descending)| Op::BySource { source, after, limit, descending }
        ),
    ]
}

fn open(dir: &std::path::Path, cache_bytes: usize) -> DiskLog {
    let mut c = DiskLogConfig::new(dir);
    c.storage.segment_bytes = 2048;
    c.cache_bytes = cache_bytes;
    DiskLog::open(c).unwrap().0
}

async fn run(ops: Vec<Op>, cache_bytes: usize) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cached = open(a.path(), cache_bytes);
    let uncached = open(b.path(), 0);
    let mut line = 0u64;
    for op in ops {
        match op {
            Op::Append(items) => {
                let batch: Vec<Envelope> = items
                    .iter()
                    .map(|&(s, len)| {
                        line += 1;
                        let mut payload = format!("line {line} ").into_bytes();
                        payload.resize(payload.len() + usize::from(len), b'.');
                        Envelope::log(
                            line as i64,
                            format!("src-{s}"),
                            "0",
                            Bytes::from(payload),
                            LogType::Out,
                        )
                    })
                    .collect();
                let p = cached.append(batch.clone()).await.unwrap();
                assert_eq!(uncached.append(batch).await.unwrap(), p);
            }
            Op::ReadFrom {
                back,
                source,
                limit,
            } => {
                let selector = Selector {
                    source_ids: source.map(|s| format!("src-{s}")).into_iter().collect(),
                    ..Selector::default()
                };
                let end = cached.end_cursor().await.unwrap().next();
                // Around the end, with some cursors past it.
                let cursor = Cursor::at((end + 3).saturating_sub(back.into()));
                let mut c = cursor;
                // Follow the pages to the end, as a consumer does.
                for _ in 0..20 {
                    let x = cached.read_from(c, &selector, limit.into()).await.unwrap();
                    let y = uncached
                        .read_from(c, &selector, limit.into())
                        .await
                        .unwrap();
                    assert_eq!(x, y, "from {c}");
                    if x.caught_up {
                        break;
                    }
                    c = x.next_cursor;
                }
            }
            Op::BySource {
                source,
                after,
                limit,
                descending,
            } => {
                let id = format!("src-{source}");
                let (after, limit) = (i64::from(after % 400), usize::from(limit));
                let x = cached
                    .read_source(&id, after, i64::MAX, limit, descending)
                    .await
                    .unwrap();
                let y = uncached
                    .read_source(&id, after, i64::MAX, limit, descending)
                    .await
                    .unwrap();
                assert_eq!(x, y);
                let selector = Selector {
                    source_ids: vec![id],
                    ..Selector::default()
                };
                let x = cached.recent(&selector, after, limit).await.unwrap();
                let y = uncached.recent(&selector, after, limit).await.unwrap();
                assert_eq!(x, y);
            }
            Op::Retain(kib) => {
                let policy = RetentionPolicy {
                    max_age_ns: None,
                    max_bytes: Some(u64::from(kib) * 1024),
                };
                let x = cached.apply_retention(policy, 0).await.unwrap();
                let y = uncached.apply_retention(policy, 0).await.unwrap();
                assert_eq!(x.oldest_position, y.oldest_position);
            }
        }
    }
    let stats = cached.stats().await.unwrap();
    assert!(stats.memory_bytes >= stats.cached_entries);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn cached_and_disk_pages_agree(
        ops in prop::collection::vec(op(), 1..40),
        cache_bytes in prop_oneof![Just(0usize), 1usize..20_000, Just(usize::MAX)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops, cache_bytes));
    }
}

#[tokio::test]
async fn cache_is_bounded_by_bytes_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 64 << 10);
    for round in 0..100 {
        let batch: Vec<Envelope> = (0..10)
            .map(|i| {
                let payload = Bytes::from(vec![b'x'; 1000]);
                Envelope::log(round * 10 + i, "app", "0", payload, LogType::Out)
            })
            .collect();
        log.append(batch).await.unwrap();
    }
    let stats = log.stats().await.unwrap();
    assert!(stats.cached_entries > 10, "{stats:?}");
    assert!(stats.cached_entries < 64, "{stats:?}");
    assert!(stats.memory_bytes >= stats.cached_entries * 1000);
    // The newest entries come from the cache, the oldest from disk: alike.
    let all = Selector::all();
    let page = log.read_from(Cursor::at(990), &all, 100).await.unwrap();
    assert_eq!(page.entries.len(), 10);
    assert!(page.caught_up);
    let old = log.read_from(Cursor::START, &all, 5).await.unwrap();
    assert_eq!(old.entries[0].entry.envelope.timestamp, 0);
}

/// The live fan-out's loop (`wait_beyond`, then `read_from` until caught
/// up) beside concurrent appenders sees every entry once, in order, with a
/// cache small enough that it sometimes falls back to disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_beside_appenders_sees_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(open(dir.path(), 16 << 10));
    let (writers, batches, per_batch) = (4u64, 50u64, 10u64);
    let total = writers * batches * per_batch;
    let follower = {
        let log = log.clone();
        tokio::spawn(async move {
            let all = Selector::all();
            let mut cursor = Cursor::START;
            let mut seen = Vec::new();
            while cursor.next() < total {
                let page = log.read_from(cursor, &all, 64).await.unwrap();
                assert_eq!(page.skipped, 0);
                seen.extend(page.entries.iter().map(|e| e.position));
                cursor = page.next_cursor;
                if page.caught_up && cursor.next() < total {
                    log.wait_beyond(cursor).await.unwrap();
                }
            }
            seen
        })
    };
    let appenders: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for b in 0..batches {
                    let batch: Vec<Envelope> = (0..per_batch)
                        .map(|i| {
                            let payload = Bytes::from(vec![b'x'; 100]);
                            let ts = (b * per_batch + i) as i64;
                            Envelope::log(ts, format!("w{w}"), "0", payload, LogType::Out)
                        })
                        .collect();
                    log.append(batch).await.unwrap();
                }
            })
        })
        .collect();
    for a in appenders {
        a.await.unwrap();
    }
    let seen = follower.await.unwrap();
    assert_eq!(seen, (0..total).collect::<Vec<_>>());
}
