//! What opening (or checking) a log directory found and did, as data: the
//! caller logs it and counts it; nothing here is fatal.

use std::path::PathBuf;
use std::time::Duration;

use crate::format::{DecodeError, HeaderError};
use crate::meta::MetaStatus;

/// Why reading a segment stopped before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The segment header is not valid; nothing in the file was read.
    Header(HeaderError),
    /// A frame failed to decode (torn, bad length, bad checksum, …).
    Frame(DecodeError),
    /// A frame decoded but carried the wrong position.
    Position { expected: u64, found: u64 },
    /// Records reached into the next segment's positions.
    Overlap { next_base: u64 },
    /// The file could not be read there (an I/O error such as EIO).
    Read { error: String },
}

/// An older segment whose reading stopped at damage; the rest of it is
/// skipped by readers (the file is left as it is for inspection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedSegment {
    pub path: PathBuf,
    pub base: u64,
    /// Valid records kept (`base..base + records_kept`).
    pub records_kept: u64,
    /// Byte offset where reading stopped.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file, not read.
    pub bytes_skipped: u64,
    pub damage: Damage,
}

/// The last segment's damaged tail, truncated (or, for `check`, that would be).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    pub path: PathBuf,
    pub base: u64,
    /// Valid records kept.
    pub records_kept: u64,
    /// The file length it was cut to.
    pub offset: u64,
    pub bytes_cut: u64,
    /// Intact records found after the damage (stepping over damaged frames
    /// by their length prefix) and cut with it. A torn frame, a run of
    /// zeros or garbage is not counted: its records cannot be known.
    pub intact_records_cut: u64,
    /// The highest position among those intact records: the next position
    /// is kept above it, so no position read before the crash is reused.
    pub max_position_cut: Option<u64>,
    pub damage: Damage,
}

/// Why a range of positions is not in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapCause {
    /// The earlier segment is complete and the next one starts later: a
    /// segment file is missing (or positions were skipped on purpose).
    Missing,
    /// The earlier segment stopped at damage.
    Damaged,
}

/// Positions `from..to` that no segment holds, between two that do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub from: u64,
    pub to: u64,
    pub cause: GapCause,
}

impl Gap {
    pub fn records(&self) -> u64 {
        self.to - self.from
    }
}

/// Everything `open` or `check` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    /// Valid records readable.
    pub records: u64,
    /// Valid bytes on disk (headers included).
    pub bytes: u64,
    /// Oldest readable position (`None` when empty).
    pub oldest_position: Option<u64>,
    /// Where the next append goes.
    pub next_position: u64,
    pub meta: MetaStatus,
    pub tail: Option<TailCut>,
    pub damaged: Vec<DamagedSegment>,
    pub gaps: Vec<Gap>,
    /// Files in the directory that are not the log's (left alone), and
    /// segment files that could not be opened.
    pub ignored: Vec<PathBuf>,
    /// Segments taken from the index checkpoint instead of scanned (0
    /// when there was none, or it was ignored).
    pub checkpoint_segments: usize,
    /// Time taken to scan.
    pub elapsed: Duration,
}

impl OpenReport {
    /// Nothing damaged, cut or missing (a missing `meta` on a new directory
    /// is clean).
    pub fn is_clean(&self) -> bool {
        self.tail.is_none()
            && self.damaged.is_empty()
            && self.gaps.is_empty()
            && !matches!(self.meta, MetaStatus::Corrupt { .. })
    }

    /// Positions lost to damage or missing files, as far as they can be
    /// counted (gaps between segments; a cut tail counts its intact
    /// records).
    pub fn records_lost(&self) -> u64 {
        self.gaps.iter().map(Gap::records).sum::<u64>()
            + self.tail.as_ref().map_or(0, |t| t.intact_records_cut)
    }
}
