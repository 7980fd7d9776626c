//! One behavioural suite for every [`Log`] implementation: each test is a
//! generic function run for [`MemoryLog`] and [`DiskLog`] (whose "restart"
//! closes the log and reopens the same directory; the memory log's restart
//! keeps the same instance, so the same assertions hold for both).

use bytes::Bytes;
use envelope::{Envelope, LogType, Selector};
use sluice_log::{
    ApiError, Cursor, DiskLog, DiskLogConfig, Log, MemoryLog, MemoryLogConfig, StoredEntry,
};

trait Harness {
    type L: Log + 'static;
    fn open(&mut self) -> Self::L;
    async fn restart(&mut self, log: Self::L) -> Self::L;
}

struct Memory;

impl Harness for Memory {
    type L = MemoryLog;
    fn open(&mut self) -> MemoryLog {
        MemoryLog::new(MemoryLogConfig::default())
    }
    async fn restart(&mut self, log: MemoryLog) -> MemoryLog {
        log
    }
}

struct Disk(tempfile::TempDir);

impl Disk {
    fn new() -> Self {
        Disk(tempfile::tempdir().expect("tempdir"))
    }
    fn config(&self) -> DiskLogConfig {
        let mut c = DiskLogConfig::new(self.0.path());
        c.storage.segment_bytes = 4096;
        c
    }
}

impl Harness for Disk {
    type L = DiskLog;
    fn open(&mut self) -> DiskLog {
        let (log, report) = DiskLog::open(self.config()).expect("open");
        assert!(report.is_clean(), "{report:?}");
        log
    }
    async fn restart(&mut self, log: DiskLog) -> DiskLog {
        log.close().await.expect("close");
        drop(log);
        self.open()
    }
}

/// Source `src-<i % 3>`, timestamp `1000 * i`, payload `line <i>`.
fn envelopes(range: std::ops::Range<usize>) -> Vec<Envelope> {
    range
        .map(|i| {
            Envelope::log(
                i as i64 * 1000,
                format!("src-{}", i % 3),
                "0",
                Bytes::from(format!("line {i}")),
                LogType::Out,
            )
        })
        .collect()
}

fn payload(e: &StoredEntry) -> String {
    let log = e.entry.envelope.as_log().expect("a log envelope");
    String::from_utf8_lossy(&log.payload).into_owned()
}

fn payloads(entries: &[StoredEntry]) -> Vec<String> {
    entries.iter().map(payload).collect()
}

fn lines(ids: impl IntoIterator<Item = usize>) -> Vec<String> {
    ids.into_iter().map(|i| format!("line {i}")).collect()
}

fn source(id: &str) -> Selector {
    Selector {
        source_ids: vec![id.to_owned()],
        ..Selector::default()
    }
}

/// Reads everything matching `selector` from `cursor` in pages of `limit`.
async fn drain_all<L: Log>(
    log: &L,
    mut cursor: Cursor,
    selector: &Selector,
    limit: usize,
) -> (Vec<StoredEntry>, Cursor, u64) {
    let (mut out, mut skipped) = (Vec::new(), 0);
    for _ in 0..10_000 {
        let page = log
            .read_from(cursor, selector, limit)
            .await
            .expect("read_from");
        assert!(page.entries.len() <= limit);
        assert!(page.next_cursor >= cursor);
        skipped += page.skipped;
        out.extend(page.entries);
        cursor = page.next_cursor;
        if page.caught_up {
            return (out, cursor, skipped);
        }
    }
    panic!("read_from never caught up");
}

/// A batch takes its place at the `append` call: several in flight,
/// awaited in any order, land in the order they were appended.
async fn appends_land_in_call_order<H: Harness>(mut h: H) {
    let log = h.open();
    let futures: Vec<_> = (0..20)
        .map(|i| log.append(envelopes(i * 5..i * 5 + 5)))
        .collect();
    let mut positions = Vec::new();
    for f in futures.into_iter().rev() {
        positions.push(f.await.expect("append"));
    }
    positions.reverse();
    assert_eq!(positions.concat(), (0..100).collect::<Vec<u64>>());
    let (all, _, _) = drain_all(&log, Cursor::START, &Selector::all(), 1000).await;
    assert_eq!(payloads(&all), lines(0..100));
}

async fn append_and_read_source<H: Harness>(mut h: H) {
    let log = h.open();
    let first = log.append(envelopes(0..30)).await.expect("append");
    assert_eq!(first, (0..30).collect::<Vec<u64>>());
    let second = log.append(envelopes(30..33)).await.expect("append");
    assert_eq!(second, vec![30, 31, 32]);
    assert!(log.append(Vec::new()).await.expect("empty").is_empty());

    let all = log
        .read_source("src-0", 0, i64::MAX, 100, false)
        .await
        .unwrap();
    assert_eq!(payloads(&all), lines((0..33).step_by(3)));
    assert!(all.iter().all(|e| &*e.entry.key == "apptail.src-0"));
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));

    let range = log
        .read_source("src-0", 3000, 9000, 100, false)
        .await
        .unwrap();
    assert_eq!(payloads(&range), lines([3, 6]));
    let oldest = log
        .read_source("src-1", 0, i64::MAX, 2, false)
        .await
        .unwrap();
    assert_eq!(payloads(&oldest), lines([1, 4]));
    let newest = log
        .read_source("src-1", 0, i64::MAX, 2, true)
        .await
        .unwrap();
    assert_eq!(payloads(&newest), lines([31, 28]));
    assert!(log
        .read_source("nope", 0, i64::MAX, 9, false)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .read_source("src-2", 0, i64::MAX, 0, false)
        .await
        .unwrap()
        .is_empty());
}

async fn read_from_pages_with_selectors<H: Harness>(mut h: H) {
    let log = h.open();
    log.append(envelopes(0..50)).await.unwrap();
    let end = log.end_cursor().await.unwrap();
    assert_eq!(end, Cursor::at(50));

    let (all, at, skipped) = drain_all(&log, Cursor::START, &Selector::all(), 7).await;
    assert_eq!(payloads(&all), lines(0..50));
    assert_eq!((at, skipped), (end, 0));
    for e in &all {
        assert_eq!(e.cursor(), Cursor::after(e.position));
    }

    let (b, _, _) = drain_all(&log, Cursor::START, &source("src-1"), 4).await;
    assert_eq!(payloads(&b), lines((1..50).step_by(3)));

    // Resume right after an entry, through the cursor's printed form.
    let mid: Cursor = all[19].cursor().to_string().parse().unwrap();
    let (rest, _, _) = drain_all(&log, mid, &Selector::all(), 100).await;
    assert_eq!(payloads(&rest), lines(20..50));

    let past = log
        .read_from(Cursor::at(500), &Selector::all(), 10)
        .await
        .unwrap();
    assert!(past.entries.is_empty() && past.caught_up && past.skipped == 0);
    assert_eq!(past.next_cursor, end);
    let none = log
        .read_from(Cursor::START, &source("x"), 10)
        .await
        .unwrap();
    assert!(none.entries.is_empty());
    let zero = log
        .read_from(Cursor::START, &Selector::all(), 0)
        .await
        .unwrap();
    assert!(zero.entries.is_empty() && zero.next_cursor == Cursor::START);
}

async fn survives_restart_with_cursors<H: Harness>(mut h: H) {
    let log = h.open();
    log.append(envelopes(0..40)).await.unwrap();
    let page = log
        .read_from(Cursor::START, &source("src-2"), 5)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 5);
    log.commit("drain-1", page.next_cursor).await.unwrap();
    log.commit("tail with spaces/é", Cursor::at(3))
        .await
        .unwrap();
    assert_eq!(log.committed("nobody").await.unwrap(), None);

    let log = h.restart(log).await;
    let cursor = log.committed("drain-1").await.unwrap().expect("committed");
    assert_eq!(cursor, page.next_cursor);
    assert_eq!(
        log.committed("tail with spaces/é").await.unwrap(),
        Some(Cursor::at(3))
    );
    let (rest, _, _) = drain_all(&log, cursor, &source("src-2"), 3).await;
    assert_eq!(payloads(&rest), lines((17..40).step_by(3)));
    let all = log
        .read_source("src-0", 0, i64::MAX, 100, false)
        .await
        .unwrap();
    assert_eq!(payloads(&all), lines((0..40).step_by(3)));

    let more = log.append(envelopes(40..42)).await.unwrap();
    assert_eq!(more, vec![40, 41]);
    let (tail, _, _) = drain_all(&log, Cursor::at(39), &Selector::all(), 10).await;
    assert_eq!(payloads(&tail), lines(39..42));
    assert_eq!(log.stats().await.unwrap().next_position, 42);

    assert!(log.forget("drain-1").await.unwrap());
    assert!(!log.forget("drain-1").await.unwrap());
    let log = h.restart(log).await;
    assert_eq!(log.committed("drain-1").await.unwrap(), None);
    assert!(log.committed("tail with spaces/é").await.unwrap().is_some());
}

async fn meta_stats_and_names<H: Harness>(mut h: H) {
    let log = h.open();
    log.append(envelopes(0..9)).await.unwrap();
    let meta = log.meta(None, 2).await.unwrap();
    let ids: Vec<&str> = meta.iter().map(|m| m.source_id.as_str()).collect();
    assert_eq!(ids, ["src-0", "src-1"]);
    assert_eq!(meta[0].count, 3);
    assert_eq!(
        (meta[0].oldest_timestamp, meta[0].newest_timestamp),
        (0, 6000)
    );
    let after = log.meta(Some("src-0"), 10).await.unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].source_id, "src-1");
    let stats = log.stats().await.unwrap();
    assert_eq!(
        (stats.next_position, stats.entries, stats.sources),
        (9, 9, 3)
    );
    assert_eq!(stats.oldest_position, Some(0));
    assert!(stats.bytes > 0);
    assert!(matches!(
        log.commit("", Cursor::START).await,
        Err(ApiError::ConsumerName(_))
    ));
    assert!(log.committed(&"x".repeat(500)).await.is_err());
}

async fn wait_beyond_wakes_on_append<H: Harness>(mut h: H) {
    let log = h.open();
    log.append(envelopes(0..3)).await.unwrap();
    let end = log.end_cursor().await.unwrap();
    assert_eq!(log.wait_beyond(Cursor::at(1)).await.unwrap(), end);
    let waiter = log.wait_beyond(end);
    tokio::pin!(waiter);
    tokio::select! {
        biased;
        _ = &mut waiter => panic!("woke before an append"),
        _ = std::future::ready(()) => {}
    }
    let (woke, appended) = tokio::join!(waiter, log.append(envelopes(3..5)));
    assert_eq!(appended.unwrap(), [3, 4]);
    assert_eq!(woke.unwrap(), Cursor::at(5));
}

async fn retain_by_age_is_told_as_skipped<H: Harness>(mut h: H) {
    let log = h.open();
    for i in 0..5 {
        log.append(envelopes(i * 20..i * 20 + 20)).await.unwrap();
    }
    let hour = sluice_log::DEFAULT_MAX_AGE_NS;
    let kept = log.retain(hour).await.unwrap();
    assert_eq!((kept.removed, kept.oldest_position), (0, Some(0)));
    let gone = log.retain(hour + 1_000_000).await.unwrap();
    assert_eq!((gone.removed, gone.oldest_position), (100, None));
    let page = log
        .read_from(Cursor::at(10), &Selector::all(), 10)
        .await
        .unwrap();
    assert!(page.entries.is_empty() && page.caught_up);
    assert_eq!((page.skipped, page.next_cursor), (90, Cursor::at(100)));
    assert!(log
        .read_source("src-0", 0, i64::MAX, 9, false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(log.append(envelopes(0..1)).await.unwrap(), [100]);
    let log = h.restart(log).await;
    let (rest, _, skipped) = drain_all(&log, Cursor::START, &Selector::all(), 10).await;
    assert_eq!((payloads(&rest), skipped), (lines([0]), 100));
}

/// Timestamps come out strictly increasing per source where they tied or
/// stepped back a little (Log Cache paging by `last + 1` must not skip),
/// on the stored entries themselves, across a restart too; sources do
/// not nudge each other and far older entries keep their time.
async fn timestamps_are_stamped_per_source<H: Harness>(mut h: H) {
    let at = |ts: i64, src: &str| Envelope::log(ts, src, "0", Bytes::from("x"), LogType::Out);
    let log = h.open();
    let old = 5_000 - 2 * sluice_log::NUDGE_WINDOW_NS;
    log.append(vec![
        at(5_000, "a"),
        at(5_000, "b"),
        at(5_000, "a"),
        at(4_999, "a"),
    ])
    .await
    .unwrap();
    log.append(vec![at(old, "a"), at(5_000, "a")])
        .await
        .unwrap();
    let log = h.restart(log).await;
    log.append(vec![at(5_000, "a"), at(5_000, "b")])
        .await
        .unwrap();
    let stamps = |entries: Vec<StoredEntry>| -> Vec<i64> {
        entries.iter().map(|e| e.entry.envelope.timestamp).collect()
    };
    let a = log
        .read_source("a", i64::MIN, i64::MAX, 100, false)
        .await
        .unwrap();
    assert_eq!(stamps(a), [5_000, 5_001, 5_002, old, 5_003, 5_004]);
    let b = log
        .read_source("b", i64::MIN, i64::MAX, 100, false)
        .await
        .unwrap();
    assert_eq!(stamps(b), [5_000, 5_001]);
    // Paging by time sees each entry once.
    let page = log
        .read_source("a", 5_001, 5_003, 100, false)
        .await
        .unwrap();
    assert_eq!(stamps(page), [5_001, 5_002]);
}

macro_rules! suite {
    ($($name:ident),*) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Memory).await
            })*
        }
        mod disk {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Disk::new()).await
            })*
        }
    };
}

suite!(
    append_and_read_source,
    appends_land_in_call_order,
    read_from_pages_with_selectors,
    survives_restart_with_cursors,
    meta_stats_and_names,
    wait_beyond_wakes_on_append,
    retain_by_age_is_told_as_skipped,
    timestamps_are_stamped_per_source
);
