//! [`DiskLog`] and [`MemoryLog`] must answer every [`Log`] call alike:
//! random appends (timestamps out of order too), pages of `read_from` with
//! and without a selector, per-source reads, meta, commits and (for the
//! disk log) clean restarts in between. Caps are set so neither drops
//! anything, so any difference is a bug in one of them.

use bytes::Bytes;
use envelope::{Envelope, LogType, Selector};
use proptest::prelude::*;
use sluice_log::{Cursor, DiskLog, DiskLogConfig, Log, MemoryLog, MemoryLogConfig};

#[derive(Clone, Debug)]
enum Op {
    /// (source, timestamp) per envelope.
    Append(Vec<(u8, i16)>),
    ReadFrom {
        from: u8,
        source: Option<u8>,
        limit: u8,
    },
    ReadSource {
        source: u8,
        start: i16,
        end: i16,
        limit: u8,
        descending: bool,
    },
    Meta {
        after: Option<u8>,
        limit: u8,
    },
    Commit {
        consumer: u8,
        at: u8,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec((0u8..4, any::<i16>()), 0..10).prop_map(Op::Append),
        4 => (any::<u8>(), prop::option::of(0u8..5), 0u8..12)
            .prop_map(|(from, source, limit)| Op::ReadFrom { from, source, limit }),
        3 => (0u8..5, any::<i16>(), any::<i16>(), 0u8..12, any::<bool>()).prop_map(
            |(source, start, end, limit, descending)| Op::ReadSource {
                source, start, end, limit, descending,
            }
        ),
        1 => (prop::option::of(0u8..5), 0u8..5).prop_map(|(after, limit)| Op::Meta { after, limit }),
        1 => (0u8..3, any::<u8>()).prop_map(|(consumer, at)| Op::Commit { consumer, at }),
        1 => Just(Op::Restart),
    ]
}

fn source(i: u8) -> String {
    format!("src-{i}")
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = DiskLogConfig::new(dir.path());
        c.storage.segment_bytes = 1024;
        c
    };
    let memory = MemoryLog::new(MemoryLogConfig::default());
    let mut disk = DiskLog::open(config()).unwrap().0;
    let mut line = 0u64;
    for op in ops {
        match op {
            Op::Append(items) => {
                let batch: Vec<Envelope> = items
                    .iter()
                    .map(|&(s, ts)| {
                        line += 1;
                        let payload = Bytes::from(format!("line {line}"));
                        Envelope::log(ts.into(), source(s), "0", payload, LogType::Out)
                    })
                    .collect();
                let m = memory.append(batch.clone()).await.unwrap();
                assert_eq!(disk.append(batch).await.unwrap(), m);
            }
            Op::ReadFrom {
                from,
                source: s,
                limit,
            } => {
                let selector = Selector {
                    source_ids: s.map(source).into_iter().collect(),
                    ..Selector::default()
                };
                let cursor = Cursor::at(from.into());
                let m = memory
                    .read_from(cursor, &selector, limit.into())
                    .await
                    .unwrap();
                let d = disk
                    .read_from(cursor, &selector, limit.into())
                    .await
                    .unwrap();
                assert_eq!(d, m);
            }
            Op::ReadSource {
                source: s,
                start,
                end,
                limit,
                descending,
            } => {
                let (id, lim) = (source(s), limit.into());
                let (start, end) = (start.into(), end.into());
                let m = memory
                    .read_source(&id, start, end, lim, descending)
                    .await
                    .unwrap();
                let d = disk
                    .read_source(&id, start, end, lim, descending)
                    .await
                    .unwrap();
                assert_eq!(d, m);
            }
            Op::Meta { after, limit } => {
                let after = after.map(source);
                let m = memory.meta(after.as_deref(), limit.into()).await.unwrap();
                assert_eq!(disk.meta(after.as_deref(), limit.into()).await.unwrap(), m);
            }
            Op::Commit { consumer, at } => {
                let name = format!("consumer-{consumer}");
                memory.commit(&name, Cursor::at(at.into())).await.unwrap();
                disk.commit(&name, Cursor::at(at.into())).await.unwrap();
            }
            Op::Restart => {
                disk.close().await.unwrap();
                drop(disk);
                disk = DiskLog::open(config()).unwrap().0;
            }
        }
        for c in 0..3 {
            let name = format!("consumer-{c}");
            let m = memory.committed(&name).await.unwrap();
            assert_eq!(disk.committed(&name).await.unwrap(), m);
        }
        assert_eq!(
            disk.end_cursor().await.unwrap(),
            memory.end_cursor().await.unwrap()
        );
        let (d, m) = (disk.stats().await.unwrap(), memory.stats().await.unwrap());
        assert_eq!(
            (d.next_position, d.oldest_position, d.entries, d.sources),
            (m.next_position, m.oldest_position, m.entries, m.sources)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn disk_and_memory_agree(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
