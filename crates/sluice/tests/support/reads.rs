//! Reads of what a server stored, for tests that count lines: every
//! entry of a source (paged by time past Log Cache's 1,000), waits, and an
//! exactly-once check that says briefly what is wrong.

use std::time::Duration;

use super::*;

/// Every entry stored for `source`, oldest first, read in pages by time.
pub fn all_entries(server: &ServerProcess, source: &str) -> Vec<envelope::v2::Envelope> {
    let mut out: Vec<envelope::v2::Envelope> = Vec::new();
    let mut start = 0i64;
    loop {
        let body = server.get(&format!(
            "/api/v1/read/{source}?start_time={start}&limit=1000"
        ));
        let batch = envelope::json::batch_from_json(body.as_bytes()).expect("a read answer");
        let n = batch.batch.len();
        if let Some(last) = batch.batch.last() {
            start = last.timestamp + 1;
        }
        out.extend(batch.batch);
        if n < 1000 {
            return out;
        }
    }
}

pub fn payload(e: &envelope::v2::Envelope) -> String {
    String::from_utf8_lossy(&e.as_log().expect("a log envelope").payload).into_owned()
}

/// Polls until `source` holds `n` entries (or `secs` pass); returns them.
pub fn wait_entries(
    server: &ServerProcess,
    source: &str,
    n: usize,
    secs: u64,
) -> Vec<envelope::v2::Envelope> {
    let mut last = Vec::new();
    eventually(secs, || {
        last = all_entries(server, source);
        (last.len() >= n).then_some(())
    });
    last
}

/// The numbers in lines `<prefix> <n>`, in the order stored.
pub fn numbers(entries: &[envelope::v2::Envelope], prefix: &str) -> Vec<u64> {
    entries
        .iter()
        .filter_map(|e| {
            payload(e)
                .strip_prefix(prefix)
                .and_then(|n| n.trim().parse().ok())
        })
        .collect()
}

/// Asserts `got` is 1..=n in order, saying briefly what is wrong if not
/// (how many, the first repeats, the first missing), never the whole list.
pub fn assert_exactly_once(got: &[u64], n: u64, when: &str) {
    if got.iter().copied().eq(1..=n) {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let repeats: Vec<u64> = got
        .iter()
        .copied()
        .filter(|x| !seen.insert(*x))
        .take(10)
        .collect();
    let missing: Vec<u64> = (1..=n).filter(|x| !seen.contains(x)).take(10).collect();
    let out_of_order = got.windows(2).filter(|w| w[1] < w[0]).count();
    panic!(
        "{when}: {} lines for {n} numbers; first repeats {repeats:?}; first missing {missing:?}; {out_of_order} steps back",
        got.len()
    );
}

/// Waits until `source` holds `n` entries, then a moment more, and reads
/// again: what arrives beyond `n` (a line stored twice) is in the answer.
pub fn settled_entries(
    server: &ServerProcess,
    source: &str,
    n: usize,
    secs: u64,
) -> Vec<envelope::v2::Envelope> {
    let first = wait_entries(server, source, n, secs);
    if first.len() < n {
        return first;
    }
    std::thread::sleep(Duration::from_millis(600));
    all_entries(server, source)
}
