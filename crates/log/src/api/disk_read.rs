//! How [`DiskLog`](super::DiskLog) reads a page from a cursor: the storage
//! layer's records, in bounded steps, decoded and filtered by the selector,
//! with every position that is gone counted as skipped. Blocking: callers
//! run it on `spawn_blocking`.

use std::sync::Arc;

use envelope::{Entry, Selector};

use super::cursor::Cursor;
use super::error::ApiError;
use super::types::{ReadPage, StoredEntry};
use super::{scan_budget, PAGE_BYTES};
use crate::{LogReader, ReadLimit, Record};

/// Records read from the storage layer per step of a `read_from` scan.
const READ_STEP: usize = 4096;
/// Bytes read from the storage layer per step (at least one record).
const READ_STEP_BYTES: usize = 4 << 20;

/// Turns a stored record back into an entry; `None` when its envelope does
/// not decode (counted as skipped by callers).
pub(super) fn to_stored(record: Record) -> Option<StoredEntry> {
    let envelope = record.decode_envelope().ok()?;
    Some(StoredEntry {
        position: record.position,
        entry: Arc::new(Entry {
            envelope,
            key: record.key.into(),
            seq: record.position,
        }),
    })
}

pub(super) fn read_from(
    reader: &LogReader,
    cursor: Cursor,
    selector: &Selector,
    limit: usize,
) -> Result<ReadPage, ApiError> {
    // A cursor past the end (another log's, or a wiped one's) resumes
    // at the end rather than waiting for positions to grow.
    let mut next = cursor.next().min(reader.next_position());
    let mut page = ReadPage {
        entries: Vec::new(),
        next_cursor: cursor,
        skipped: 0,
        caught_up: false,
    };
    // Positions below the oldest kept one are gone (also when retention
    // left no record at all, which the segment reader cannot see).
    let floor = reader
        .oldest_position()
        .unwrap_or_else(|| reader.next_position());
    if next < floor {
        page.skipped = floor - next;
        next = floor;
    }
    let budget = scan_budget(limit);
    let (mut scanned, mut bytes) = (0usize, 0usize);
    let full = |entries: usize, bytes: usize| entries >= limit || bytes >= PAGE_BYTES;
    'scan: while scanned < budget && !full(page.entries.len(), bytes) {
        let step = ReadLimit {
            max_records: READ_STEP.min(budget - scanned),
            max_bytes: READ_STEP_BYTES,
        };
        let batch = reader.read_from(next, step)?;
        if batch.records.is_empty() {
            page.skipped += batch.next.saturating_sub(next);
            if batch.next <= next {
                break;
            }
            next = batch.next;
            continue;
        }
        for record in batch.records {
            if full(page.entries.len(), bytes) {
                break 'scan;
            }
            page.skipped += record.position.saturating_sub(next);
            next = record.position + 1;
            scanned += 1;
            match to_stored(record) {
                Some(e) if selector.matches(&e.entry) => {
                    bytes += e.entry.envelope.approx_size();
                    page.entries.push(e);
                }
                Some(_) => {}
                None => page.skipped += 1,
            }
        }
        page.skipped += batch.next.saturating_sub(next);
        next = next.max(batch.next);
    }
    page.next_cursor = Cursor::at(next);
    page.caught_up = next >= reader.next_position();
    Ok(page)
}
