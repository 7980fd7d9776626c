//! The log against a simple in-memory model: random appends, flushes,
//! clean restarts, crashes (unwritten batches lost), reads from random
//! positions and retention by age and size. Every read, index query and
//! retention report must agree with the model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice_log::{open, LogConfig, LogReader, LogWriter, NewRecord, ReadLimit, RetentionPolicy};

#[derive(Clone, Debug)]
enum Op {
    /// (source, timestamp jitter, envelope length) per record.
    Append(Vec<(u8, i8, u8)>),
    Flush,
    Sync,
    Reopen,
    Crash,
    Read {
        from: u16,
        limit: u8,
    },
    Retention {
        budget: Option<u16>,
        age: Option<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0u8..4, any::<i8>(), 0u8..120), 1..12).prop_map(Op::Append),
        2 => Just(Op::Flush),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        4 => (any::<u16>(), 1u8..40).prop_map(|(from, limit)| Op::Read { from, limit }),
        1 => (prop::option::of(0u16..4000), prop::option::of(0u8..100))
            .prop_map(|(budget, age)| Op::Retention { budget, age }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct Rec {
    timestamp: i64,
    source: String,
    envelope: Vec<u8>,
}

struct Harness {
    _dir: tempfile::TempDir,
    config: LogConfig,
    writer: Option<LogWriter>,
    reader: LogReader,
    stored: BTreeMap<u64, Rec>,
    pending: Vec<(u64, Rec)>,
    clock: i64,
    /// Every later append must start at or after this.
    min_next: u64,
    /// One past the highest position ever written.
    written_end: u64,
}

impl Harness {
    fn new(segment_bytes: u64, flush_threshold: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LogConfig::new(dir.path());
        config.segment_bytes = segment_bytes;
        config.flush_threshold = flush_threshold;
        let (writer, _) = open(config.clone()).unwrap();
        let reader = writer.reader();
        Harness {
            _dir: dir,
            config,
            writer: Some(writer),
            reader,
            stored: BTreeMap::new(),
            pending: Vec::new(),
            clock: 1_000,
            min_next: 0,
            written_end: 0,
        }
    }

    fn w(&mut self) -> &mut LogWriter {
        self.writer.as_mut().unwrap()
    }

    /// Moves what the log has written (readers see it) into `stored`.
    fn settle(&mut self) {
        let head = self.reader.next_position();
        let (written, still): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|(p, _)| *p < head);
        if let Some((p, _)) = written.last() {
            self.written_end = self.written_end.max(p + 1);
        }
        self.stored.extend(written);
        self.pending = still;
    }

    fn reopen(&mut self, crash: bool) {
        let w = self.writer.take().unwrap();
        if crash {
            w.abandon();
            self.settle();
            self.pending.clear();
            // Only written positions are promised across a crash.
            self.min_next = self.written_end;
        } else {
            w.close().unwrap();
            self.settle();
            assert!(self.pending.is_empty());
        }
        let (w, report) = open(self.config.clone()).unwrap();
        assert!(report.tail.is_none(), "{report:?}");
        assert!(report.damaged.is_empty(), "{report:?}");
        assert_eq!(report.records, self.stored.len() as u64);
        assert!(report.next_position >= self.min_next);
        self.reader = w.reader();
        self.writer = Some(w);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append(items) => {
                let recs: Vec<Rec> = items
                    .iter()
                    .map(|&(src, jitter, len)| {
                        self.clock += 100;
                        Rec {
                            timestamp: self.clock + i64::from(jitter),
                            source: format!("s{src}"),
                            envelope: vec![src; len as usize],
                        }
                    })
                    .collect();
                let batch: Vec<NewRecord<'_>> = recs
                    .iter()
                    .map(|r| NewRecord {
                        timestamp: r.timestamp,
                        key: "apptail.k",
                        source_id: &r.source,
                        envelope: &r.envelope,
                    })
                    .collect();
                let range = self.w().append(&batch).unwrap();
                assert!(
                    range.start >= self.min_next,
                    "{range:?} < {}",
                    self.min_next
                );
                assert_eq!(range.end - range.start, recs.len() as u64);
                self.min_next = range.end;
                self.pending.extend(range.zip(recs));
            }
            Op::Flush => self.w().flush().unwrap(),
            Op::Sync => {
                self.w().sync().unwrap();
                assert_eq!(self.w().synced_position(), self.w().next_position());
            }
            Op::Reopen => self.reopen(false),
            Op::Crash => self.reopen(true),
            Op::Read { from, limit } => {
                self.settle();
                let head = self.reader.next_position();
                let from = u64::from(from) % (head + 3);
                self.check_read(from, limit as usize);
            }
            Op::Retention { budget, age } => {
                let policy = RetentionPolicy {
                    max_bytes: budget.map(u64::from),
                    max_age_ns: age.map(|a| i64::from(a) * 100),
                };
                let now = self.clock;
                let report = self.w().apply_retention(&policy, now).unwrap();
                self.settle();
                let mut removed = 0;
                for d in &report.deleted {
                    let gone: Vec<u64> = self.stored.range(d.from..d.to).map(|(p, _)| *p).collect();
                    assert_eq!(gone.len() as u64, d.to - d.from, "{d:?}");
                    for p in gone {
                        let rec = self.stored.remove(&p).unwrap();
                        if d.reason == sluice_log::DeleteReason::Age {
                            assert!(rec.timestamp < now - policy.max_age_ns.unwrap());
                        }
                        removed += 1;
                    }
                }
                assert_eq!(report.records(), removed);
                // Deletion takes the oldest: nothing older than what is kept
                // remains.
                assert_eq!(report.oldest_position, self.stored.keys().next().copied());
                if let Some(b) = policy.max_bytes {
                    let segs = self.w().segments();
                    let bytes: u64 = segs.iter().map(|s| s.bytes).sum();
                    assert!(
                        bytes <= b || segs.len() == 1,
                        "{bytes} > {b} in {} segments",
                        segs.len()
                    );
                }
            }
        }
        self.settle();
        self.check_index();
    }

    fn check_read(&self, from: u64, limit: usize) {
        let got = self
            .reader
            .read_from(from, ReadLimit::records(limit))
            .unwrap();
        let want: Vec<(&u64, &Rec)> = self.stored.range(from..).take(limit).collect();
        assert_eq!(got.records.len(), want.len(), "read from {from}");
        let mut expect_next = from;
        let mut skipped = 0;
        for (rec, (p, m)) in got.records.iter().zip(&want) {
            assert_eq!(rec.position, **p);
            assert_eq!(rec.timestamp, m.timestamp);
            assert_eq!(rec.source_id, m.source);
            assert_eq!(rec.key, "apptail.k");
            assert_eq!(&rec.envelope[..], &m.envelope[..]);
            skipped += **p - expect_next;
            expect_next = **p + 1;
        }
        assert_eq!(got.skipped, skipped, "skipped, read from {from}");
        assert_eq!(got.next, expect_next);
        assert!(got.damage.is_none());
    }

    fn check_index(&self) {
        for s in 0..4 {
            let source = format!("s{s}");
            let positions: Vec<u64> = self
                .stored
                .iter()
                .filter(|(_, r)| r.source == source)
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(
                self.reader.count(&source),
                positions.len() as u64,
                "{source}"
            );
            let newest: Vec<u64> = self
                .reader
                .newest(&source, 3)
                .unwrap()
                .iter()
                .map(|r| r.position)
                .collect();
            assert_eq!(
                newest,
                positions[positions.len().saturating_sub(3)..].to_vec()
            );
            // A time range: the middle of the clock.
            let (start, end) = (self.clock / 3, self.clock / 3 * 2);
            let in_range: Vec<u64> = self
                .stored
                .iter()
                .filter(|(_, r)| r.source == source && r.timestamp >= start && r.timestamp < end)
                .map(|(p, _)| *p)
                .take(5)
                .collect();
            let got: Vec<u64> = self
                .reader
                .range(&source, start, end, 5, false)
                .unwrap()
                .iter()
                .map(|r| r.position)
                .collect();
            assert_eq!(got, in_range, "{source} in {start}..{end}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        segment_bytes in 200u64..3000,
        flush_threshold in 64usize..4096,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut h = Harness::new(segment_bytes, flush_threshold);
        for op in ops {
            h.apply(op);
        }
        // Whatever happened, a final clean restart reads back the model.
        h.reopen(false);
        h.check_read(0, usize::MAX);
    }
}
