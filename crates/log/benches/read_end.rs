//! `DiskLog::read_from` near the end of the log — the hot path of the live
//! fan-out and of drains that keep up — answered from the recent-records
//! cache (inline, no decode) versus from disk (`spawn_blocking`, read and
//! protobuf decode), with 100,000 envelopes of 256-byte payloads written
//! and pages of 100 read from 100 before the end. Also what filling the
//! cache costs `append` (batches of 100, one write each, no fsync).
//!
//! Numbers are in the module doc of `src/api/cache.rs`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use envelope::{Envelope, LogType, Selector};
use sluice_log::{Cursor, DiskLog, DiskLogConfig, Log};

const PAGE: usize = 100;

fn read_end(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("disklog");
    group.throughput(Throughput::Elements(PAGE as u64));
    for (name, cache_bytes) in [("cache", 64 << 20), ("disk", 0)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = DiskLogConfig::new(dir.path());
        config.cache_bytes = cache_bytes;
        let (log, _) = DiskLog::open(config).expect("open");
        rt.block_on(async {
            for b in 0..100 {
                let batch: Vec<Envelope> = (0..1000)
                    .map(|i| {
                        let payload = Bytes::from(vec![b'x'; 256]);
                        let source = format!("app-{:03}", i % 100);
                        Envelope::log(b * 1000 + i, source, "0", payload, LogType::Out)
                    })
                    .collect();
                log.append(batch).await.expect("append");
            }
        });
        let end = rt.block_on(log.end_cursor()).expect("end").next();
        let all = Selector::all();
        let one = Selector {
            source_ids: vec!["app-007".into()],
            ..Selector::default()
        };
        group.bench_function(format!("read_from_end_100_{name}"), |b| {
            b.iter(|| {
                let page = rt
                    .block_on(log.read_from(Cursor::at(end - PAGE as u64), &all, PAGE))
                    .expect("read");
                assert_eq!(page.entries.len(), PAGE);
            })
        });
        group.bench_function(format!("read_from_end_1_source_of_100_{name}"), |b| {
            b.iter(|| {
                let page = rt
                    .block_on(log.read_from(Cursor::at(end - 10 * PAGE as u64), &one, PAGE))
                    .expect("read");
                assert_eq!(page.entries.len(), 10);
            })
        });
        // Last: it moves the end.
        group.bench_function(format!("append_100_{name}"), |b| {
            b.iter(|| {
                let batch: Vec<Envelope> = (0..PAGE as i64)
                    .map(|i| {
                        let payload = Bytes::from(vec![b'x'; 256]);
                        Envelope::log(i, "app-append", "0", payload, LogType::Out)
                    })
                    .collect();
                rt.block_on(log.append(batch)).expect("append");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, read_end);
criterion_main!(benches);
