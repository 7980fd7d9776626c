//! Measures what a [`DiskLog`] costs in memory and in start-up time:
//!
//! ```text
//! cargo run --release -p sluice-log --example log_memory -- write DIR RECORDS SOURCES [ckpt]
//! cargo run --release -p sluice-log --example log_memory -- open DIR [ckpt]
//! ```
//!
//! With `ckpt` the log runs with `index_checkpoint` on: `write` leaves an
//! `index.ckpt` at its close, `open` uses it (and closes the log after
//! timing, writing a fresh one). Without, `open` scans every segment and
//! drops the log without closing it, so an existing checkpoint stays as it
//! was. Measured (release, 4,000,000 records of 256 bytes from 1,000
//! sources, 1.2 GB in 19 segments, warm page cache, 2 shared cores,
//! December 2026): see `src/checkpoint.rs`.
//!
//! `write` appends RECORDS envelopes with 256-byte payloads, round-robin
//! over SOURCES source ids, in batches of 1,000, closes the log, and prints
//! the process's `RssAnon` (from `/proc/self/status`) with the log's own
//! `memory_bytes` estimate. `open` times `DiskLog::open` of that directory
//! in a fresh process (the index rebuilt from the segments, the cache
//! empty) and prints `RssAnon` after it. Numbers are in `src/index.rs` and
//! `src/api/disk.rs`.

use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use envelope::{Envelope, LogType};
use sluice_log::{DiskLog, DiskLogConfig, Log, RetentionPolicy};

fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn config(dir: PathBuf, ckpt: bool) -> DiskLogConfig {
    let mut c = DiskLogConfig::new(dir);
    c.retention = RetentionPolicy::default();
    c.storage.index_checkpoint = ckpt;
    c
}

fn usage() -> ! {
    eprintln!("usage: log_memory write DIR RECORDS SOURCES [ckpt] | log_memory open DIR [ckpt]");
    std::process::exit(2)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let ckpt = args.last().is_some_and(|a| a == "ckpt");
    if ckpt {
        args.pop();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", dir, records, sources] => {
            let records: u64 = records.parse().unwrap_or_else(|_| usage());
            let sources: u64 = sources.parse().unwrap_or_else(|_| usage());
            let ids: Vec<String> = (0..sources).map(|i| format!("app-{i:08}")).collect();
            let before = rss_anon_kib();
            let (log, _) = DiskLog::open(config(dir.into(), ckpt)).expect("open");
            let started = Instant::now();
            rt.block_on(async {
                let mut n = 0u64;
                while n < records {
                    let batch: Vec<Envelope> = (n..(n + 1000).min(records))
                        .map(|i| {
                            let source = &ids[(i % sources) as usize];
                            let payload = Bytes::from(vec![b'x'; 256]);
                            Envelope::log(i as i64, source, "0", payload, LogType::Out)
                        })
                        .collect();
                    n += batch.len() as u64;
                    log.append(batch).await.expect("append");
                }
            });
            let elapsed = started.elapsed();
            let stats = rt.block_on(log.stats()).expect("stats");
            let index = log.reader().index_stats();
            let after = rss_anon_kib();
            println!(
                "write {records} records from {sources} sources in {:.2} s; \
                 RssAnon {before} kB -> {after} kB (+{} kB); memory_bytes {} \
                 (index {} for {} entries = {:.1} B/entry, cache {} entries)",
                elapsed.as_secs_f64(),
                after.saturating_sub(before),
                stats.memory_bytes,
                index.heap_bytes,
                index.entries,
                index.heap_bytes as f64 / index.entries.max(1) as f64,
                stats.cached_entries,
            );
            rt.block_on(log.close()).expect("close");
        }
        ["open", dir] => {
            let before = rss_anon_kib();
            let started = Instant::now();
            let (log, report) = DiskLog::open(config(dir.into(), ckpt)).expect("open");
            let elapsed = started.elapsed();
            let after = rss_anon_kib();
            let stats = rt.block_on(log.stats()).expect("stats");
            let index = log.reader().index_stats();
            println!(
                "open {} records in {} segments ({} from the checkpoint): {:.3} s; RssAnon {before} kB -> {after} kB \
                 (+{} kB, {:.1} B per indexed entry); memory_bytes {} (index {} entries, {} sources)",
                report.records,
                report.segments,
                report.checkpoint_segments,
                elapsed.as_secs_f64(),
                after.saturating_sub(before),
                (after.saturating_sub(before) * 1024) as f64 / index.entries.max(1) as f64,
                stats.memory_bytes,
                index.entries,
                index.sources,
            );
            if ckpt {
                let started = Instant::now();
                rt.block_on(log.close()).expect("close");
                println!(
                    "close (writing the checkpoint): {:.3} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        _ => usage(),
    }
}
