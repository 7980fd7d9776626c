//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sluice_log::{LogConfig, LogWriter, NewRecord};

/// A config with small segments so tests see several.
pub fn config(dir: &Path, segment_bytes: u64) -> LogConfig {
    let mut c = LogConfig::new(dir);
    c.segment_bytes = segment_bytes;
    c
}

/// Appends `n` records (source `src-<i % 3>`, timestamp = 1000 * position,
/// envelope = `env-<position>`) as one batch and flushes.
pub fn append_n(w: &mut LogWriter, n: usize) -> std::ops::Range<u64> {
    let first = w.next_position();
    let envs: Vec<(String, String)> = (0..n as u64)
        .map(|i| {
            let p = first + i;
            (format!("src-{}", p % 3), format!("env-{p:06}"))
        })
        .collect();
    let batch: Vec<NewRecord<'_>> = envs
        .iter()
        .enumerate()
        .map(|(i, (src, env))| NewRecord {
            timestamp: (first + i as u64) as i64 * 1000,
            key: "apptail.x",
            source_id: src,
            envelope: env.as_bytes(),
        })
        .collect();
    let r = w.append(&batch).expect("append");
    w.flush().expect("flush");
    r
}

/// The envelope `append_n` stored at `position`.
pub fn env_at(position: u64) -> Vec<u8> {
    format!("env-{position:06}").into_bytes()
}

/// Segment files in `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// All readable positions, read from the start.
pub fn all_positions(r: &sluice_log::LogReader) -> Vec<u64> {
    r.read_from(0, sluice_log::ReadLimit::records(usize::MAX))
        .expect("read")
        .records
        .iter()
        .map(|r| r.position)
        .collect()
}
