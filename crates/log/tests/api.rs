//! The writer, readers, index and retention through the public API.

mod common;

use bytes::Bytes;
use common::{all_positions, append_n, config, env_at, segment_files};
use envelope::{Envelope, LogType};
use sluice_log::{
    check, open, DeleteReason, EnvelopeRecord, LogConfig, LogError, NewRecord, ReadLimit,
    RetentionPolicy,
};

#[test]
fn writer_and_reader_cross_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<sluice_log::LogWriter>();
    send_sync::<sluice_log::LogReader>();
}

#[test]
fn append_flush_read() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, report) = open(LogConfig::new(dir.path())).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.next_position, 0);
    let r = w.reader();

    let batch = [NewRecord {
        timestamp: 5,
        key: "apptail.a",
        source_id: "a",
        envelope: b"one",
    }; 3];
    assert_eq!(w.append(&batch).unwrap(), 0..3);
    assert_eq!(w.next_position(), 3);
    // Not visible before it is written.
    assert_eq!(r.next_position(), 0);
    assert!(r
        .read_from(0, ReadLimit::records(10))
        .unwrap()
        .records
        .is_empty());
    assert_eq!(r.count("a"), 0);
    w.flush().unwrap();
    assert_eq!(r.next_position(), 3);
    assert_eq!(r.count("a"), 3);

    let b = r.read_from(1, ReadLimit::records(10)).unwrap();
    assert_eq!(b.skipped, 0);
    assert_eq!(b.next, 3);
    assert_eq!(
        b.records.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(b.records[0].envelope, Bytes::from_static(b"one"));
    assert_eq!(b.records[0].key, "apptail.a");

    // Limits.
    assert_eq!(r.read_from(0, ReadLimit::records(2)).unwrap().next, 2);
    let by_bytes = ReadLimit {
        max_records: 10,
        max_bytes: 1,
    };
    assert_eq!(r.read_from(0, by_bytes).unwrap().records.len(), 1);
    // At and past the end.
    let end = r.read_from(3, ReadLimit::records(10)).unwrap();
    assert!(end.records.is_empty() && end.next == 3 && end.skipped == 0);
    let past = r.read_from(99, ReadLimit::records(10)).unwrap();
    assert!(past.records.is_empty() && past.next == 99);
}

#[test]
fn envelopes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(LogConfig::new(dir.path())).unwrap();
    let mut e = Envelope::log(
        1_700_000_000_000_000_000,
        "app-guid",
        "3",
        Bytes::from_static(b"hello world"),
        LogType::Err,
    );
    e.tags.insert("app_name".into(), "web".into());
    let p = w
        .append(&[EnvelopeRecord {
            key: "apptail.app-guid",
            envelope: &e,
        }])
        .unwrap();
    w.flush().unwrap();
    let got = w.reader().newest("app-guid", 1).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].position, p.start);
    assert_eq!(got[0].timestamp, e.timestamp);
    assert_eq!(got[0].source_id, "app-guid");
    assert_eq!(got[0].decode_envelope().unwrap(), e);
}

#[test]
fn segments_roll_by_size_and_positions_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), 1024)).unwrap();
    for _ in 0..20 {
        append_n(&mut w, 7);
    }
    let segs = w.segments();
    assert!(segs.len() > 5, "{} segments", segs.len());
    for pair in segs.windows(2) {
        assert_eq!(pair[0].base + pair[0].records, pair[1].base);
        assert!(pair[0].bytes <= 1024 || pair[0].records == 7);
    }
    for (info, file) in segs.iter().zip(segment_files(dir.path())) {
        assert_eq!(info.path, file);
        assert_eq!(
            file.file_name().unwrap().to_str().unwrap(),
            format!("{:020}.seg", info.base)
        );
    }
    let r = w.reader();
    assert_eq!(all_positions(&r), (0..140).collect::<Vec<_>>());
    let before = (r.count("src-1"), r.newest("src-1", 5).unwrap());
    w.close().unwrap();

    let (mut w, report) = open(config(dir.path(), 1024)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.records, 140);
    assert_eq!(report.next_position, 140);
    let r = w.reader();
    assert_eq!((r.count("src-1"), r.newest("src-1", 5).unwrap()), before);
    assert_eq!(append_n(&mut w, 1), 140..141);
    for (i, rec) in r
        .read_from(0, ReadLimit::records(1000))
        .unwrap()
        .records
        .iter()
        .enumerate()
    {
        assert_eq!(rec.position, i as u64);
        assert_eq!(rec.envelope, env_at(i as u64));
    }
}

#[test]
fn index_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), 2048)).unwrap();
    append_n(&mut w, 60);
    let r = w.reader();
    // src-0 holds positions 0, 3, 6, …; timestamps are 1000 × position.
    assert_eq!(r.count("src-0"), 20);
    assert_eq!(r.count("nobody"), 0);
    let newest: Vec<u64> = r
        .newest("src-0", 3)
        .unwrap()
        .iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(newest, vec![51, 54, 57]);
    let range: Vec<u64> = r
        .range("src-0", 3_000, 12_001, 100, false)
        .unwrap()
        .iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(range, vec![3, 6, 9, 12]);
    let newest_in_range: Vec<u64> = r
        .range("src-0", 3_000, 12_001, 2, true)
        .unwrap()
        .iter()
        .map(|r| r.position)
        .collect();
    assert_eq!(newest_in_range, vec![9, 12]);
    let got = r.read_positions(&[5, 0, 59, 60, 1000]).unwrap();
    assert_eq!(
        got.iter().map(|r| r.position).collect::<Vec<_>>(),
        vec![5, 0, 59]
    );
    let mut sources = r.sources();
    sources.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    assert_eq!(sources.len(), 3);
    assert_eq!(sources[2].source_id, "src-2");
    assert_eq!(
        (sources[2].oldest_position, sources[2].newest_position),
        (2, 59)
    );
    assert_eq!(r.index_stats().entries, 60);
}

#[test]
fn per_source_cap_limits_the_index_not_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LogConfig::new(dir.path());
    c.max_per_source = 4;
    let (mut w, _) = open(c).unwrap();
    append_n(&mut w, 30);
    let r = w.reader();
    assert_eq!(r.count("src-0"), 4);
    assert_eq!(all_positions(&r).len(), 30);
}

#[test]
fn second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = open(LogConfig::new(dir.path())).unwrap();
    assert!(matches!(
        open(LogConfig::new(dir.path())),
        Err(LogError::Locked { .. })
    ));
    drop(w);
    open(LogConfig::new(dir.path())).unwrap();
}

#[test]
fn oversized_record_rejects_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LogConfig::new(dir.path());
    c.max_record_bytes = 100;
    let (mut w, _) = open(c).unwrap();
    let big = vec![0u8; 200];
    let batch = [
        NewRecord {
            timestamp: 0,
            key: "k",
            source_id: "s",
            envelope: b"ok",
        },
        NewRecord {
            timestamp: 0,
            key: "k",
            source_id: "s",
            envelope: &big,
        },
    ];
    assert!(matches!(
        w.append(&batch),
        Err(LogError::Encode { index: 1, .. })
    ));
    assert_eq!(w.next_position(), 0);
    assert_eq!(w.pending_bytes(), 0);
    assert_eq!(w.append(&batch[..1]).unwrap(), 0..1);
}

#[test]
fn sync_moves_the_durable_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(LogConfig::new(dir.path())).unwrap();
    append_n(&mut w, 5);
    assert_eq!(w.synced_position(), 0);
    w.sync().unwrap();
    assert_eq!(w.synced_position(), 5);
}

#[test]
fn retention_by_disk_budget_deletes_oldest_and_readers_count_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), 1024)).unwrap();
    for _ in 0..30 {
        append_n(&mut w, 5);
    }
    let r = w.reader();
    let total = w.disk_bytes();
    let budget = total / 2;
    let report = w
        .apply_retention(
            &RetentionPolicy {
                max_age_ns: None,
                max_bytes: Some(budget),
            },
            0,
        )
        .unwrap();
    assert!(!report.deleted.is_empty());
    assert!(w.disk_bytes() <= budget);
    assert!(report
        .deleted
        .iter()
        .all(|d| d.reason == DeleteReason::DiskBudget));
    let oldest = report.oldest_position.unwrap();
    assert_eq!(report.deleted[0].from, 0);
    assert_eq!(report.deleted.last().unwrap().to, oldest);
    assert_eq!(report.records(), oldest);
    assert_eq!(segment_files(dir.path()).len(), w.segments().len());

    let b = r.read_from(0, ReadLimit::records(3)).unwrap();
    assert_eq!(b.skipped, oldest);
    assert_eq!(b.records[0].position, oldest);
    // The index forgot them too.
    let indexed: u64 = (0..3).map(|i| r.count(&format!("src-{i}"))).sum();
    assert_eq!(indexed, 150 - oldest);
}

#[test]
fn retention_by_age_empties_an_idle_log_but_keeps_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), 512)).unwrap();
    for _ in 0..10 {
        append_n(&mut w, 5);
    }
    // Timestamps are 1000 × position: all of them are older than 1 ms at
    // t = 10 s.
    let policy = RetentionPolicy {
        max_age_ns: Some(1_000_000),
        max_bytes: None,
    };
    let report = w.apply_retention(&policy, 10_000_000_000).unwrap();
    assert_eq!(report.records(), 50);
    assert!(report.deleted.iter().all(|d| d.reason == DeleteReason::Age));
    assert_eq!(report.oldest_position, None);
    let r = w.reader();
    assert!(all_positions(&r).is_empty());
    assert_eq!(r.index_stats().entries, 0);
    assert_eq!(w.segments().len(), 1);
    assert_eq!(append_n(&mut w, 1), 50..51);
    // Records younger than the cutoff stay.
    let none = w.apply_retention(&policy, 50_000).unwrap();
    assert!(none.deleted.is_empty());
}

#[test]
fn check_reports_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(LogConfig::new(dir.path())).unwrap();
    append_n(&mut w, 10);
    w.close().unwrap();
    let seg = segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let report = check(&LogConfig::new(dir.path())).unwrap();
    let tail = report.tail.expect("a tail to cut");
    assert_eq!(tail.records_kept, 9);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len - 3);
}

#[test]
fn readers_run_beside_the_writer_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = open(config(dir.path(), 4096)).unwrap();
    let r = w.reader();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut from, mut seen) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let b = r.read_from(from, ReadLimit::records(50)).unwrap();
                assert!(b.damage.is_none());
                for rec in &b.records {
                    assert!(rec.position >= from);
                    assert_eq!(rec.envelope, env_at(rec.position));
                    from = rec.position + 1;
                    seen += 1;
                }
                let _ = r.newest("src-1", 10).unwrap();
            }
            seen
        })
    };
    let policy = RetentionPolicy {
        max_age_ns: None,
        max_bytes: Some(16 * 1024),
    };
    for _ in 0..400 {
        append_n(&mut w, 10);
        w.apply_retention(&policy, 0).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(seen > 0);
}
