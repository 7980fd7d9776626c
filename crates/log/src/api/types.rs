//! Values the [`Log`](super::Log) trait passes around.

use std::sync::Arc;

use envelope::Entry;

use super::cursor::Cursor;

/// Default age limit of both logs: one hour (DESIGN.md §6).
pub const DEFAULT_MAX_AGE_NS: i64 = 3_600 * 1_000_000_000;

/// What one [`Log::retain`](super::Log::retain) pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Entries removed (readers that had not read them see them as
    /// `skipped`).
    pub removed: u64,
    /// The oldest position still kept.
    pub oldest_position: Option<Position>,
}

/// A stored entry's place in the log: only grows, across restarts.
pub type Position = u64;

/// An entry as read back, with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEntry {
    pub position: Position,
    /// The envelope and its key. `seq` is set to the position (it grows
    /// per source; it is not consecutive).
    pub entry: Arc<Entry>,
}

impl StoredEntry {
    /// The cursor that resumes right after this entry.
    pub fn cursor(&self) -> Cursor {
        Cursor::after(self.position)
    }
}

/// One page of [`Log::read_from`](super::Log::read_from).
#[derive(Clone, Debug, PartialEq)]
pub struct ReadPage {
    pub entries: Vec<StoredEntry>,
    /// Where the next read continues (past entries that did not match).
    pub next_cursor: Cursor,
    /// Entries between the cursor and `next_cursor` that are gone (removed
    /// by retention or caps, damaged, undecodable): a drain counts them as
    /// lost.
    pub skipped: u64,
    /// Whether `next_cursor` is at the end of the log (for now).
    pub caught_up: bool,
}

/// Log Cache's `/api/v1/meta` entry for one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMeta {
    pub source_id: String,
    pub count: u64,
    pub oldest_timestamp: i64,
    pub newest_timestamp: i64,
}

/// Totals of a log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// The position the next appended entry gets.
    pub next_position: Position,
    /// The oldest position still readable, if any.
    pub oldest_position: Option<Position>,
    /// Entries in the per-source index.
    pub entries: u64,
    pub sources: u64,
    /// Bytes held (disk: segment files; memory: approximate).
    pub bytes: u64,
    /// Failed periodic syncs (disk only).
    pub sync_errors: u64,
    /// Approximate heap bytes held: the per-source index's estimate plus
    /// the recent-records cache (disk), or the entries kept (memory).
    pub memory_bytes: u64,
    /// Entries in the recent-records cache (disk only).
    pub cached_entries: u64,
}
