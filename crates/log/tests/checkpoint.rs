//! The index checkpoint (`index.ckpt`): an open that uses it must give
//! exactly what a full scan gives — same report, same index answers — and
//! anything stale or damaged about it must make it ignored, never fatal.
//! Each case copies the directory and opens one copy with the checkpoint
//! and the other by a full scan.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use common::segment_files;
use sluice_log::{open, LogConfig, LogWriter, NewRecord, OpenReport, RetentionPolicy};

const CKPT: &str = "index.ckpt";

fn cfg(dir: &Path, checkpoint: bool) -> LogConfig {
    let mut c = LogConfig::new(dir);
    c.segment_bytes = 2048;
    c.max_per_source = 7;
    c.index_checkpoint = checkpoint;
    c
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Appends `n` records over 5 sources with timestamps that mostly rise but
/// not always (so some sources are out of order), in small batches.
fn append_random(w: &mut LogWriter, rng: &mut Rng, n: usize) {
    let mut left = n;
    while left > 0 {
        let k = (1 + rng.below(6) as usize).min(left);
        let items: Vec<(String, i64)> = (0..k)
            .map(|_| {
                let p = w.next_position() as i64;
                let jitter = if rng.below(10) == 0 { -5000 } else { 0 };
                (format!("s{}", rng.below(5)), p * 100 + jitter)
            })
            .collect();
        let batch: Vec<NewRecord<'_>> = items
            .iter()
            .map(|(s, t)| NewRecord {
                timestamp: *t,
                key: "k",
                source_id: s,
                envelope: b"0123456789abcdef",
            })
            .collect();
        w.append(&batch).unwrap();
        w.flush().unwrap();
        left -= k;
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Everything the index and the segments answer, as text.
fn answers(w: &LogWriter) -> String {
    let r = w.reader();
    let mut sources = r.sources();
    sources.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    let stats = r.index_stats();
    let mut out = format!(
        "next {} oldest {:?} sources {} entries {}\n{sources:?}\n",
        r.next_position(),
        r.oldest_position(),
        stats.sources,
        stats.entries
    );
    for s in r.segments() {
        let name = s.path.file_name().unwrap().to_string_lossy().into_owned();
        out += &format!("{name} {} {} {:?}\n", s.records, s.bytes, s.timestamps);
    }
    // Every record, read from the start (through each segment's sparse
    // offsets).
    let all = r
        .read_from(0, sluice_log::ReadLimit::records(usize::MAX))
        .unwrap();
    let all: Vec<(u64, i64, String)> = all
        .records
        .iter()
        .map(|x| (x.position, x.timestamp, x.source_id.clone()))
        .collect();
    out += &format!("{all:?}\n");
    for p in [0, 31, 32, 33, 64, 100, 1000] {
        let at = r.read_from(p, sluice_log::ReadLimit::records(2)).unwrap();
        let at: Vec<u64> = at.records.iter().map(|x| x.position).collect();
        out += &format!("from {p}: {at:?}\n");
    }
    let ids: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    for id in &ids {
        let newest: Vec<u64> = r
            .newest(id, 4)
            .unwrap()
            .iter()
            .map(|x| x.position)
            .collect();
        out += &format!(
            "{id}: count {} newest {newest:?} range {:?} {:?}\n",
            r.count(id),
            r.range_positions(id, 0, 5_000, 3, false),
            r.range_positions(id, 2_000, 40_000, 3, true),
        );
    }
    out += &format!(
        "after {:?} {:?}\n",
        r.newest_positions(&ids, 0, 10),
        r.newest_positions(&ids[..2], 3_000, 5)
    );
    out
}

fn normalized(report: &OpenReport, dir: &Path) -> String {
    let mut r = report.clone();
    r.elapsed = Duration::ZERO;
    r.checkpoint_segments = 0;
    format!("{r:?}").replace(&dir.display().to_string(), "DIR")
}

/// Opens a copy of `dir` by a full scan and `dir` itself with the
/// checkpoint, asserts both agree, and returns the writer on `dir` and how
/// many segments came from the checkpoint.
fn open_and_compare(dir: &Path) -> (LogWriter, usize) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir, copy.path());
    let (full, full_report) = open(cfg(copy.path(), false)).unwrap();
    assert_eq!(full_report.checkpoint_segments, 0);
    let (w, report) = open(cfg(dir, true)).unwrap();
    assert_eq!(
        normalized(&report, dir),
        normalized(&full_report, copy.path())
    );
    assert_eq!(answers(&w), answers(&full));
    full.abandon();
    (w, report.checkpoint_segments)
}

#[test]
fn random_logs_across_restarts_match_a_full_scan() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let dir = tempfile::tempdir().unwrap();
        let mut last_clean = false;
        for round in 0..8 {
            let (mut w, used) = open_and_compare(dir.path());
            if last_clean && round > 0 {
                assert!(used > 0, "seed {seed} round {round}: checkpoint not used");
            }
            if rng.below(3) > 0 {
                let n = 1 + rng.below(150) as usize;
                append_random(&mut w, &mut rng, n);
            }
            if rng.below(4) == 0 {
                let policy = RetentionPolicy {
                    max_age_ns: None,
                    max_bytes: Some(4096 + rng.below(4096)),
                };
                w.apply_retention(&policy, 0).unwrap();
            }
            last_clean = rng.below(3) > 0;
            if last_clean {
                w.close().unwrap();
                assert!(dir.path().join(CKPT).exists());
            } else {
                w.abandon();
            }
        }
    }
}

/// A closed log of several segments with a checkpoint.
fn closed_log(dir: &Path, seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let (mut w, _) = open(cfg(dir, true)).unwrap();
    append_random(&mut w, &mut rng, n);
    w.close().unwrap();
    assert!(segment_files(dir).len() > 2);
}

#[test]
fn a_clean_close_then_open_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 7, 300);
    let (w, used) = open_and_compare(dir.path());
    assert_eq!(used, segment_files(dir.path()).len());
    w.close().unwrap();
    // Opened and closed again without writes: still usable.
    let (_w, used) = open_and_compare(dir.path());
    assert!(used > 0);
}

#[test]
fn segments_added_after_it_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 8, 300);
    let covered = segment_files(dir.path()).len();
    // Reopened without the checkpoint; a batch too big for the active
    // segment rolls first, leaving every covered file as it was.
    let (mut w, _) = open(cfg(dir.path(), false)).unwrap();
    let big: Vec<NewRecord<'_>> = (0..40)
        .map(|i| NewRecord {
            timestamp: 1,
            key: "k",
            source_id: if i % 2 == 0 { "s1" } else { "s5" },
            envelope: b"0123456789abcdef",
        })
        .collect();
    w.append(&big).unwrap();
    w.flush().unwrap();
    w.abandon();
    assert!(segment_files(dir.path()).len() > covered);
    let (_w, used) = open_and_compare(dir.path());
    assert_eq!(used, covered);
}

#[test]
fn a_stale_one_after_appends_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 9, 300);
    let (mut w, _) = open(cfg(dir.path(), false)).unwrap();
    append_random(&mut w, &mut Rng(5), 200);
    w.close().unwrap(); // without the checkpoint option: the old one stays
    let (_w, used) = open_and_compare(dir.path());
    assert_eq!(used, 0);
}

#[test]
fn a_corrupt_one_is_ignored() {
    for case in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        closed_log(dir.path(), 10 + case, 300);
        let path = dir.path().join(CKPT);
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        match case {
            0 | 1 => {
                let at = if case == 0 { 3 } else { len - 9 };
                let mut b = [0u8; 1];
                f.read_exact_at(&mut b, at).unwrap();
                f.write_all_at(&[b[0] ^ 0x04], at).unwrap();
            }
            2 => f.set_len(len / 2).unwrap(),
            _ => f.set_len(0).unwrap(),
        }
        let (_w, used) = open_and_compare(dir.path());
        assert_eq!(used, 0, "case {case}");
    }
}

#[test]
fn deleted_segments_make_it_ignored() {
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 20, 300);
    // As retention does: the oldest segment goes.
    fs::remove_file(&segment_files(dir.path())[0]).unwrap();
    let (_w, used) = open_and_compare(dir.path());
    assert_eq!(used, 0);
    // A segment from the middle (a gap): ignored too.
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 21, 300);
    fs::remove_file(&segment_files(dir.path())[1]).unwrap();
    let (_w, used) = open_and_compare(dir.path());
    assert_eq!(used, 0);
}

#[test]
fn a_torn_tail_after_it_is_cut_as_without_it() {
    // Torn in the covered active segment: its length changed, ignored.
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 30, 300);
    let last = segment_files(dir.path()).pop().unwrap();
    let mut f = OpenOptions::new().append(true).open(&last).unwrap();
    f.write_all(&[0x55; 37]).unwrap();
    let (_w, used) = open_and_compare(dir.path());
    assert_eq!(used, 0);

    // Torn in a segment newer than it: the covered ones are still used.
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 31, 300);
    let covered = segment_files(dir.path()).len();
    let (mut w, _) = open(cfg(dir.path(), false)).unwrap();
    let big: Vec<NewRecord<'_>> = (0..40)
        .map(|_| NewRecord {
            timestamp: 9,
            key: "k",
            source_id: "s2",
            envelope: b"0123456789abcdef",
        })
        .collect();
    w.append(&big).unwrap();
    w.flush().unwrap();
    w.abandon();
    let last = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 30)
        .unwrap();
    let (_w, used) = open_and_compare(dir.path());
    assert_eq!(used, covered);
}

#[test]
fn a_covered_segment_of_another_length_makes_it_ignored() {
    for grow in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        closed_log(dir.path(), 40, 300);
        let seg = &segment_files(dir.path())[1];
        let len = fs::metadata(seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(seg).unwrap();
        f.set_len(if grow { len + 100 } else { len - 10 }).unwrap();
        let (_w, used) = open_and_compare(dir.path());
        assert_eq!(used, 0);
    }
}

#[test]
fn other_settings_make_it_ignored() {
    let dir = tempfile::tempdir().unwrap();
    closed_log(dir.path(), 50, 300);
    let mut c = cfg(dir.path(), true);
    c.max_per_source = 50;
    let (w, report) = open(c).unwrap();
    assert_eq!(report.checkpoint_segments, 0);
    assert!(w.reader().count("s1") > 7);
}
