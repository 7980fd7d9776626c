//! Retention: whole segments are deleted, oldest first, when their newest
//! record is older than the maximum age or while the log exceeds its disk
//! budget. The segment being written is never deleted (when everything in it
//! has expired it is first sealed and a new one started, so an idle log
//! empties).
//!
//! Deletion stops at the first segment that may stay, so what is kept is one
//! range of positions. Before any file is unlinked, the position floor in
//! `meta` is made durable, so a crash right after cannot give positions out
//! again; what is newer than the last fsync is as durable as the fsync
//! timer makes it, deletion or not (no fsync here: it would hold the writer
//! for as long as the disk needs, see `sync.rs`). The
//! report names each deleted range so a caller can count, per consumer,
//! what it lost before it read it.

use crate::error::LogError;
use crate::fsio::sync_dir;
use crate::meta;
use crate::writer::LogWriter;

/// Limits retention enforces; `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Nanoseconds: a segment whose newest record is older than
    /// `now - max_age_ns` is deleted.
    pub max_age_ns: Option<i64>,
    /// Bytes on disk (segment files); oldest segments go first.
    pub max_bytes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    Age,
    DiskBudget,
}

/// One deleted segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedSegment {
    /// Positions `from..to` are gone (`to - from` of them were records).
    pub from: u64,
    pub to: u64,
    pub bytes: u64,
    pub reason: DeleteReason,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted: Vec<DeletedSegment>,
    /// The oldest position still kept, after deletion.
    pub oldest_position: Option<u64>,
    /// A segment that could not be unlinked (deletion stopped there; it
    /// stays readable and is tried again next time).
    pub failed: Option<String>,
}

impl RetentionReport {
    pub fn records(&self) -> u64 {
        self.deleted.iter().map(|d| d.to - d.from).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.deleted.iter().map(|d| d.bytes).sum()
    }
}

impl LogWriter {
    /// Applies `policy` at time `now_ns` (Unix ns).
    pub fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_ns: i64,
    ) -> Result<RetentionReport, LogError> {
        let cutoff = policy.max_age_ns.map(|age| now_ns.saturating_sub(age));
        let expired = |max_ts: i64| cutoff.is_some_and(|c| max_ts < c);
        // Sizes and ages below are of written data: write the rest first.
        self.flush()?;
        if self.active.count() > 0 && expired(self.active.max_ts()) {
            self.roll()?;
        }
        let segments = self.shared.snapshot();
        let mut total: u64 = segments.iter().map(|s| s.len()).sum();
        let mut victims = Vec::new();
        // Never the last (active) segment.
        for seg in segments.iter().take(segments.len().saturating_sub(1)) {
            let reason = if expired(seg.max_ts()) {
                DeleteReason::Age
            } else if policy.max_bytes.is_some_and(|b| total > b) {
                DeleteReason::DiskBudget
            } else {
                break;
            };
            total -= seg.len();
            victims.push((seg.clone(), reason));
        }
        let mut report = RetentionReport::default();
        if victims.is_empty() {
            report.oldest_position = self.reader().oldest_position();
            return Ok(report);
        }
        meta::write(&self.shared.dir, self.next_position())?;
        for (seg, reason) in &victims {
            if let Err(e) = std::fs::remove_file(&seg.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    report.failed = Some(format!("remove {}: {e}", seg.path.display()));
                    break;
                }
            }
            report.deleted.push(DeletedSegment {
                from: seg.base,
                to: seg.end(),
                bytes: seg.len(),
                reason: *reason,
            });
        }
        let gone = report.deleted.len();
        if gone > 0 {
            sync_dir(&self.shared.dir)?;
            let kept: Vec<_> = segments[gone..].to_vec();
            let floor = kept.first().map_or(self.next_position(), |s| s.base);
            self.shared.set_segments(kept);
            self.shared.index.write().remove_below(floor);
        }
        report.oldest_position = self.reader().oldest_position();
        Ok(report)
    }
}
