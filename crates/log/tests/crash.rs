//! Crash-model tests: the directory is damaged the ways disks and crashes
//! damage it, and opening it must succeed, keep every valid record, report
//! what it cut, and never give a position out twice.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{all_positions, append_n, config, env_at, segment_files};
use sluice_log::{open, Damage, DecodeError, GapCause, MetaStatus, ReadLimit};

const SEG: u64 = 1024;

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip_bit(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, offset).unwrap();
}

/// Byte offset of the `n`th record in a segment: the header is 16 bytes and
/// every record `append_n` writes is 28 + 9 (key) + 5 (source) + 10
/// (envelope) = 52 bytes.
fn record_offset(n: u64) -> u64 {
    16 + 52 * n
}

/// A log of `n` records in one segment, closed.
fn one_segment(dir: &Path, n: usize) -> std::path::PathBuf {
    let (mut w, _) = open(config(dir, 1 << 20)).unwrap();
    append_n(&mut w, n);
    w.close().unwrap();
    let mut segs = segment_files(dir);
    assert_eq!(segs.len(), 1);
    segs.pop().unwrap()
}

#[test]
fn record_size_assumption_holds() {
    let dir = tempfile::tempdir().unwrap();
    let seg = one_segment(dir.path(), 10);
    assert_eq!(fs::metadata(seg).unwrap().len(), record_offset(10));
}

#[test]
fn truncated_last_record_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let seg = one_segment(dir.path(), 10);
    set_len(&seg, record_offset(10) - 5);

    let (mut w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    let tail = report.tail.clone().expect("tail cut");
    assert_eq!(tail.records_kept, 9);
    assert_eq!(tail.offset, record_offset(9));
    assert_eq!(tail.bytes_cut, 52 - 5);
    assert_eq!(tail.intact_records_cut, 0);
    assert!(matches!(
        tail.damage,
        Damage::Frame(DecodeError::Incomplete { .. })
    ));
    assert_eq!(fs::metadata(&seg).unwrap().len(), record_offset(9));
    assert_eq!(all_positions(&w.reader()), (0..9).collect::<Vec<_>>());
    // The floor written at close (10) keeps position 9 from being given
    // out again, though its record was torn: appends go to a new segment.
    assert_eq!(report.next_position, 10);
    assert_eq!(append_n(&mut w, 2), 10..12);
    w.close().unwrap();
    let (w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(report.records, 11);
    assert_eq!(report.tail, None);
    assert_eq!(
        report.gaps,
        vec![sluice_log::Gap {
            from: 9,
            to: 10,
            cause: GapCause::Missing
        }]
    );
    let b = w.reader().read_from(8, ReadLimit::records(2)).unwrap();
    assert_eq!(b.skipped, 1);
    assert_eq!(
        b.records.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![8, 10]
    );
}

#[test]
fn zero_filled_tail_after_power_loss() {
    let dir = tempfile::tempdir().unwrap();
    let seg = one_segment(dir.path(), 10);
    // The file grew but the data never landed.
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);

    let (w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    let tail = report.tail.expect("tail cut");
    assert_eq!(tail.records_kept, 10);
    assert_eq!(tail.bytes_cut, 4096);
    assert_eq!(tail.intact_records_cut, 0);
    assert_eq!(tail.damage, Damage::Frame(DecodeError::TooShort { len: 0 }));
    assert_eq!(all_positions(&w.reader()), (0..10).collect::<Vec<_>>());
    assert_eq!(w.next_position(), 10);
}

/// A kill (no close) after direct writes leaves zeros up to the block
/// boundary past the last record: the clean end, not a torn tail, and
/// trimmed on open. Sealed segments never keep padding.
#[test]
fn direct_write_padding_is_the_clean_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), 4096)).unwrap();
    for _ in 0..30 {
        append_n(&mut w, 7);
        w.flush().unwrap();
    }
    w.abandon();
    let segs = segment_files(dir.path());
    assert!(segs.len() > 2, "small segments rolled");
    let (last, sealed) = segs.split_last().unwrap();
    let last_len = fs::metadata(last).unwrap().len();
    if std::env::var_os("CI").is_some() {
        assert_eq!(
            last_len % 4096,
            0,
            "the active segment was written directly"
        );
    }
    for s in sealed {
        assert_ne!(fs::metadata(s).unwrap().len() % 4096, 0, "{s:?} trimmed");
    }

    let (w, report) = open(config(dir.path(), 4096)).unwrap();
    assert_eq!(report.tail, None);
    assert!(report.damaged.is_empty() && report.gaps.is_empty());
    assert_eq!(all_positions(&w.reader()), (0..210).collect::<Vec<_>>());
    let trimmed = fs::metadata(last).unwrap().len();
    assert!(
        trimmed <= last_len && trimmed % 52 == 16,
        "cut to the valid end"
    );
}

#[test]
fn bit_flip_in_a_middle_record_of_the_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    let seg = one_segment(dir.path(), 10);
    flip_bit(&seg, record_offset(4) + 30);

    let (mut w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    let tail = report.tail.clone().expect("tail cut");
    assert_eq!(tail.records_kept, 4);
    assert!(matches!(
        tail.damage,
        Damage::Frame(DecodeError::Checksum { .. })
    ));
    // Records 5..9 were intact behind it: counted, and their positions are
    // not given out again.
    assert_eq!(tail.intact_records_cut, 5);
    assert_eq!(tail.max_position_cut, Some(9));
    assert_eq!(report.records_lost(), 5);
    assert_eq!(report.next_position, 10);
    assert_eq!(all_positions(&w.reader()), (0..4).collect::<Vec<_>>());
    assert_eq!(append_n(&mut w, 1), 10..11);
    let b = w.reader().read_from(4, ReadLimit::records(10)).unwrap();
    assert_eq!(b.skipped, 6);
    assert_eq!(b.records[0].position, 10);
}

#[test]
fn bit_flip_in_a_middle_record_of_an_older_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), SEG)).unwrap();
    for _ in 0..6 {
        append_n(&mut w, 10);
    }
    w.close().unwrap();
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 3);
    // Second segment: 10 records per batch, one or more batches each.
    let second_base: u64 = segs[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let third_base: u64 = segs[2]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    flip_bit(&segs[1], record_offset(3) + 20);

    let (w, report) = open(config(dir.path(), SEG)).unwrap();
    assert!(report.tail.is_none());
    assert_eq!(report.damaged.len(), 1);
    let d = &report.damaged[0];
    assert_eq!(d.base, second_base);
    assert_eq!(d.records_kept, 3);
    assert_eq!(d.offset, record_offset(3));
    assert_eq!(report.gaps.len(), 1);
    assert_eq!(report.gaps[0].from, second_base + 3);
    assert_eq!(report.gaps[0].to, third_base);
    assert_eq!(report.gaps[0].cause, GapCause::Damaged);

    // Readers step over the damage, counting it.
    let r = w.reader();
    let b = r.read_from(second_base + 2, ReadLimit::records(2)).unwrap();
    assert_eq!(
        b.records.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![second_base + 2, third_base]
    );
    assert_eq!(b.skipped, third_base - second_base - 3);
    let all = all_positions(&r);
    assert_eq!(all.len() as u64, 60 - (third_base - second_base - 3));
    // The damaged file is left as it was.
    assert!(segs[1].exists());
}

#[test]
fn missing_middle_segment_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), SEG)).unwrap();
    for _ in 0..6 {
        append_n(&mut w, 10);
    }
    w.close().unwrap();
    let segs = segment_files(dir.path());
    let before = segs.len();
    fs::remove_file(&segs[1]).unwrap();

    let (mut w, report) = open(config(dir.path(), SEG)).unwrap();
    assert_eq!(report.segments, before - 1);
    assert_eq!(report.gaps.len(), 1);
    let gap = report.gaps[0];
    assert_eq!(gap.cause, GapCause::Missing);
    assert_eq!(report.next_position, 60);
    let r = w.reader();
    let b = r.read_from(gap.from, ReadLimit::records(1)).unwrap();
    assert_eq!(b.skipped, gap.records());
    assert_eq!(b.records[0].position, gap.to);
    assert_eq!(b.records[0].envelope, env_at(gap.to));
    assert_eq!(append_n(&mut w, 1), 60..61);
}

#[test]
fn meta_missing_or_corrupt_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    one_segment(dir.path(), 10);
    let meta = dir.path().join("meta");

    fs::remove_file(&meta).unwrap();
    let (w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(report.meta, MetaStatus::Missing);
    assert_eq!(report.next_position, 10);
    drop(w);
    // Rewritten on open.
    assert!(meta.exists());

    fs::write(&meta, b"garbage that is not a meta file").unwrap();
    let (w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert!(matches!(report.meta, MetaStatus::Corrupt { .. }));
    assert!(!report.is_clean());
    assert_eq!(w.next_position(), 10);
    drop(w);
    let (_, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(report.meta, MetaStatus::Ok { floor: 10 });

    // A leftover temp file from a crash mid-write is removed.
    fs::write(dir.path().join("meta.tmp"), b"half").unwrap();
    drop(open(config(dir.path(), 1 << 20)).unwrap());
    assert!(!dir.path().join("meta.tmp").exists());
}

#[test]
fn positions_keep_growing_after_every_segment_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), SEG)).unwrap();
    for _ in 0..5 {
        append_n(&mut w, 10);
    }
    w.close().unwrap();
    for seg in segment_files(dir.path()) {
        fs::remove_file(seg).unwrap();
    }
    let (mut w, report) = open(config(dir.path(), SEG)).unwrap();
    assert_eq!(report.meta, MetaStatus::Ok { floor: 50 });
    assert_eq!(report.records, 0);
    assert_eq!(append_n(&mut w, 1), 50..51);
    let b = w.reader().read_from(0, ReadLimit::records(5)).unwrap();
    assert_eq!(b.skipped, 50);
    assert_eq!(b.records[0].position, 50);
}

#[test]
fn positions_keep_growing_after_retention_deleted_everything_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), SEG)).unwrap();
    for _ in 0..5 {
        append_n(&mut w, 10);
    }
    let policy = sluice_log::RetentionPolicy {
        max_age_ns: Some(1),
        max_bytes: None,
    };
    let report = w.apply_retention(&policy, i64::MAX).unwrap();
    assert_eq!(report.records(), 50);
    // Crash: no close.
    w.abandon();
    // Even the (empty) active segment is lost.
    for seg in segment_files(dir.path()) {
        fs::remove_file(seg).unwrap();
    }
    let (w, _) = open(config(dir.path(), SEG)).unwrap();
    assert_eq!(w.next_position(), 50);
}

#[test]
fn unflushed_batches_are_lost_in_a_crash_but_written_ones_survive() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), SEG)).unwrap();
    append_n(&mut w, 10);
    let pending = w
        .append(&[sluice_log::NewRecord {
            timestamp: 0,
            key: "k",
            source_id: "s",
            envelope: b"never written",
        }])
        .unwrap();
    assert_eq!(pending, 10..11);
    w.abandon();
    let (w, report) = open(config(dir.path(), SEG)).unwrap();
    assert!(report.is_clean());
    assert_eq!(all_positions(&w.reader()), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_torn_segment_header_of_the_last_segment_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), SEG)).unwrap();
    for _ in 0..4 {
        append_n(&mut w, 10);
    }
    w.close().unwrap();
    // A crash right after creating the next segment, before its header
    // reached the disk.
    let base = 40u64;
    fs::write(dir.path().join(format!("{base:020}.seg")), [0u8; 7]).unwrap();
    let (mut w, report) = open(config(dir.path(), SEG)).unwrap();
    let tail = report.tail.expect("tail cut");
    assert!(matches!(tail.damage, Damage::Header(_)));
    assert_eq!(tail.bytes_cut, 7);
    assert_eq!(report.next_position, 40);
    assert_eq!(append_n(&mut w, 1), 40..41);
    assert_eq!(all_positions(&w.reader()).len(), 41);
}

#[test]
fn a_garbage_file_and_foreign_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    one_segment(dir.path(), 5);
    fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
    fs::write(dir.path().join("12.seg"), b"short name").unwrap();
    let (w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(report.ignored.len(), 2);
    assert_eq!(all_positions(&w.reader()).len(), 5);
}

#[test]
fn huge_length_prefix_in_the_tail_does_not_allocate_or_fail() {
    let dir = tempfile::tempdir().unwrap();
    let seg = one_segment(dir.path(), 3);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5])
        .unwrap();
    drop(f);
    let (w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert!(matches!(
        report.tail.unwrap().damage,
        Damage::Frame(DecodeError::TooLarge { .. })
    ));
    assert_eq!(w.next_position(), 3);
}

#[test]
fn repeated_crashes_during_appends_never_reuse_a_readable_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut max_seen = None::<u64>;
    for round in 0..20u64 {
        let (mut w, _) = open(config(dir.path(), 700)).unwrap();
        let r = w.reader();
        let first = w.next_position();
        if let Some(m) = max_seen {
            assert!(first > m, "round {round}: next {first} after {m}");
        }
        append_n(&mut w, (round % 7 + 1) as usize);
        max_seen = r
            .read_from(0, ReadLimit::records(usize::MAX))
            .unwrap()
            .records
            .last()
            .map(|r| r.position);
        // Tear the last write in every other round.
        w.abandon();
        if round % 2 == 1 {
            let seg = segment_files(dir.path()).pop().unwrap();
            let len = fs::metadata(&seg).unwrap().len();
            set_len(&seg, len.saturating_sub(round % 30 + 1).max(16));
            max_seen = None;
        }
    }
}

#[test]
fn a_stray_copy_of_a_segment_under_another_name_does_not_stop_open() {
    let dir = tempfile::tempdir().unwrap();
    let seg = one_segment(dir.path(), 10);
    // Named as if it started at 5: its records (0..10) overlap the first
    // segment's and carry the wrong positions for its name.
    fs::copy(&seg, dir.path().join(format!("{:020}.seg", 5))).unwrap();
    let (mut w, report) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.damaged[0].damage, Damage::Overlap { next_base: 5 });
    assert!(matches!(
        report.tail.as_ref().unwrap().damage,
        Damage::Position {
            expected: 5,
            found: 0
        }
    ));
    assert_eq!(all_positions(&w.reader()), (0..5).collect::<Vec<_>>());
    // Positions never go back.
    assert!(append_n(&mut w, 1).start >= 10);
}
