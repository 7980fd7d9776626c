//! What the log already holds from an earlier run of a collector: after a
//! `kill -9` its saved position can be up to a second behind the log, and
//! the lines read again are matched against these (by payload) and passed
//! over, so nothing is stored twice.

use envelope::v2::Envelope;
use envelope::Selector;
use sluice_log::{Cursor, Position, StoredEntry};
use sources::IngestContext;

/// A line the log holds from an earlier run.
#[derive(Debug)]
pub struct StoredLine {
    pub position: Position,
    pub payload: bytes::Bytes,
}

impl StoredLine {
    fn of(entry: &StoredEntry) -> Option<Self> {
        Some(StoredLine {
            position: entry.position,
            payload: entry.entry.envelope.as_log()?.payload.clone(),
        })
    }
}

/// The lines of `source_id` that are `ours` after log position `after`.
pub async fn stored_after(
    ingest: &IngestContext,
    source_id: &str,
    ours: impl Fn(&Envelope) -> bool,
    after: Position,
) -> Vec<StoredLine> {
    let selector = Selector {
        source_ids: vec![source_id.to_owned()],
        ..Selector::all()
    };
    let mut cursor = Cursor::after(after);
    let mut found = Vec::new();
    loop {
        let page = match ingest.log.read_from(cursor, &selector, 10_000).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the log to resume exactly; lines may repeat");
                return found;
            }
        };
        found.extend(
            page.entries
                .iter()
                .filter(|e| ours(&e.entry.envelope))
                .filter_map(StoredLine::of),
        );
        if page.caught_up || page.next_cursor == cursor {
            return found;
        }
        cursor = page.next_cursor;
    }
}

/// The lines of `source_id` that are `ours` stamped `from_ns` or later
/// (the log only moves timestamps forward, so what a run read at or after
/// `from_ns` is stamped at or after it).
pub async fn stored_from(
    ingest: &IngestContext,
    source_id: &str,
    ours: impl Fn(&Envelope) -> bool,
    from_ns: i64,
) -> Vec<StoredLine> {
    let mut start = from_ns;
    let mut found = Vec::new();
    loop {
        let page = match ingest
            .log
            .read_source(source_id, start, i64::MAX, 1000, false)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the log to resume exactly; lines may repeat");
                return found;
            }
        };
        let Some(last) = page.last() else {
            return found;
        };
        start = last.entry.envelope.timestamp.saturating_add(1);
        found.extend(
            page.iter()
                .filter(|e| ours(&e.entry.envelope))
                .filter_map(StoredLine::of),
        );
        if page.len() < 1000 {
            return found;
        }
    }
}

/// Most lines passed over while matching what an earlier run stored (its
/// stored lines and the ones it dropped in the second before it died).
const MAX_PASSED: u64 = 1_000_000;

/// The lines an earlier run stored that the collector reads again, oldest
/// first, and how many lines were passed over so far.
#[derive(Debug, Default)]
pub struct AlreadyStored {
    lines: std::collections::VecDeque<StoredLine>,
    passed: u64,
}

/// What to do with a line read again.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new line: store it.
    New,
    /// Stored before (at this log position, if it was stored rather than
    /// dropped): pass it over.
    Stored(Option<Position>),
}

impl AlreadyStored {
    pub fn new(lines: Vec<StoredLine>) -> Self {
        AlreadyStored {
            lines: lines.into(),
            passed: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Matches a line read again with the next stored one. When the earlier
    /// run may have dropped lines (`may_have_dropped`: a rate limit), a
    /// line that does not match was one of those and is passed over too;
    /// otherwise a mismatch ends the matching (the log lost what the saved
    /// position covered: the machine crashed, not the collector).
    pub fn check(&mut self, payload: &[u8], may_have_dropped: bool) -> Verdict {
        let Some(next) = self.lines.front() else {
            return Verdict::New;
        };
        if next.payload == payload {
            let position = next.position;
            self.lines.pop_front();
            self.passed += 1;
            return Verdict::Stored(Some(position));
        }
        if !may_have_dropped || self.passed > MAX_PASSED {
            tracing::warn!(
                unmatched = self.lines.len(),
                "lines read again do not match what the log holds; storing from here"
            );
            self.lines.clear();
            return Verdict::New;
        }
        self.passed += 1;
        Verdict::Stored(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(payloads: &[&str]) -> AlreadyStored {
        AlreadyStored::new(
            payloads
                .iter()
                .enumerate()
                .map(|(i, p)| StoredLine {
                    position: i as u64 + 10,
                    payload: bytes::Bytes::copy_from_slice(p.as_bytes()),
                })
                .collect(),
        )
    }

    #[test]
    fn matched_lines_are_passed_over_then_new_ones_stored() {
        let mut s = stored(&["a", "b"]);
        assert_eq!(s.check(b"a", false), Verdict::Stored(Some(10)));
        assert_eq!(s.check(b"b", false), Verdict::Stored(Some(11)));
        assert_eq!(s.check(b"c", false), Verdict::New);
    }

    #[test]
    fn dropped_lines_are_passed_over_only_under_a_limit() {
        let mut limited = stored(&["a", "c"]);
        assert_eq!(limited.check(b"a", true), Verdict::Stored(Some(10)));
        assert_eq!(
            limited.check(b"b", true),
            Verdict::Stored(None),
            "dropped then"
        );
        assert_eq!(limited.check(b"c", true), Verdict::Stored(Some(11)));
        let mut unlimited = stored(&["a", "c"]);
        assert_eq!(unlimited.check(b"x", false), Verdict::New);
        assert!(unlimited.is_empty());
    }
}
