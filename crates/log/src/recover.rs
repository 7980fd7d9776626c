//! Opening a log directory: the state is derived from the files alone.
//!
//! Every segment is scanned in position order and every record verified
//! (checksum, and that positions run `base, base + 1, …`), which also
//! rebuilds the per-source index. What is found damaged is cut or skipped,
//! counted and reported in an [`OpenReport`] — never a reason to refuse to
//! start, since refusing would turn one bad sector into a crash loop:
//!
//! - the **last** segment is truncated just before its first bad frame (a
//!   torn write, a zero-filled tail after a power loss, a flipped bit), so
//!   the writer can append after valid data; intact records behind the
//!   damage are counted, and the next position is kept above theirs;
//! - an **older** segment is read up to its first bad frame and skipped from
//!   there (the file is left for inspection);
//! - a missing segment shows as a gap in positions.
//!
//! The next position is the largest of: the end of every segment, one past
//! any intact record that was cut, and the floor in `meta`. When that is not
//! where the last segment ends, a new segment is started there, so within a
//! segment positions stay consecutive.
//!
//! Zeros from a segment's valid end up to a block-aligned end of file, less
//! than one block ([`BLOCK`]), are the padding of a direct write
//! (`direct.rs`), not damage: the scan ends there cleanly, and the last
//! segment is trimmed to its valid end (reported nowhere: nothing was lost).
//!
//! With `index_checkpoint` on, segments covered by a valid `index.ckpt`
//! (written at the last clean close, and matching the files exactly; see
//! `checkpoint.rs`) are not scanned: their state and the index come from
//! it, and only newer segments are scanned. `check` never uses it.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::checkpoint::{self, Checkpoint, CKPT_FILE, CKPT_TMP};
use crate::config::LogConfig;
use crate::cursor::{FrameCursor, Step};
use crate::direct::BLOCK;
use crate::error::LogError;
use crate::format::{check_segment_header, MIN_FRAME_LEN, SEGMENT_HEADER_LEN};
use crate::index::SourceIndex;
use crate::lock::LOCK_FILE;
use crate::meta::{self, META_FILE, META_TMP};
use crate::report::{Damage, DamagedSegment, Gap, GapCause, OpenReport, TailCut};
use crate::segment::{self, Scanned, Segment, SPARSE_EVERY};

const SCAN_CHUNK: usize = 1024 * 1024;

pub(crate) struct Recovered {
    /// In position order; with `repair`, the last one is where appends go.
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) index: SourceIndex,
    pub(crate) next: u64,
    pub(crate) report: OpenReport,
}

/// Where and why a scan stopped early.
struct Stop {
    offset: u64,
    /// The damaged frame's length when its prefix was plausible.
    bad_len: Option<usize>,
    damage: Damage,
}

/// Scans the directory. With `repair` (the caller holds the lock) it also
/// truncates a damaged tail, starts a new segment where needed and writes
/// `meta`; without, it only reports (what `sluice check` shows).
pub(crate) fn recover(config: &LogConfig, repair: bool) -> Result<Recovered, LogError> {
    recover_with(
        config,
        repair,
        repair && config.index_checkpoint,
        Instant::now(),
    )
}

/// Whether the checkpoint's segments are exactly the first of `files`, each
/// file still of the recorded length, none running into the next.
fn covers(ckpt: &Checkpoint, files: &[(u64, PathBuf)]) -> bool {
    ckpt.segments.len() <= files.len()
        && ckpt.segments.iter().enumerate().all(|(i, c)| {
            let (base, path) = &files[i];
            *base == c.base
                && c.scanned.len >= SEGMENT_HEADER_LEN as u64
                && fs::metadata(path).is_ok_and(|m| m.len() == c.scanned.len)
                && files.get(i + 1).is_none_or(|next| {
                    c.base
                        .checked_add(c.scanned.count)
                        .is_some_and(|e| e <= next.0)
                })
        })
}

fn recover_with(
    config: &LogConfig,
    repair: bool,
    use_checkpoint: bool,
    started: Instant,
) -> Result<Recovered, LogError> {
    let dir = &config.dir;
    if repair {
        match fs::remove_file(dir.join(META_TMP)) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(LogError::io("remove", &dir.join(META_TMP))(e))
            }
            _ => {}
        }
    }
    let meta = meta::read(dir);
    let (files, mut ignored) = list(dir)?;
    let ckpt = if use_checkpoint {
        checkpoint::read(config).filter(|c| covers(c, &files))
    } else {
        None
    };
    let (mut index, covered) = match ckpt {
        Some(c) => (c.index, c.segments),
        None => (SourceIndex::new(config.max_per_source), Vec::new()),
    };
    let checkpoint_segments = covered.len();
    let mut covered = covered.into_iter();
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let mut damaged = Vec::new();
    let mut gaps = Vec::new();
    let mut tail = None;
    let mut next = meta.floor();
    // End of the previous segment's valid positions, and whether it was damaged.
    let mut prev: Option<(u64, bool)> = None;

    for (i, (base, path)) in files.iter().enumerate() {
        let (base, last) = (*base, i + 1 == files.len());
        let from_ckpt = covered.next();
        let file = match open_segment(path, repair && last) {
            Ok(f) => f,
            // Nothing has been changed yet: start over without the checkpoint.
            Err(_) if from_ckpt.is_some() => return recover_with(config, repair, false, started),
            Err(e) if repair && last => return Err(LogError::io("open", path)(e)),
            Err(_) => {
                ignored.push(path.clone());
                continue;
            }
        };
        let file_len = file.metadata().map_err(LogError::io("stat", path))?.len();
        let next_base = files.get(i + 1).map(|f| f.0);
        let (scanned, stop) = match from_ckpt {
            Some(c) if c.scanned.len == file_len => (c.scanned, None),
            // Changed since `covers` looked (nothing is changed before the
            // last segment): start over without the checkpoint.
            Some(_) => return recover_with(config, repair, false, started),
            None => scan(&file, base, file_len, next_base, config, &mut index),
        };
        if let Some((end, was_damaged)) = prev {
            if base > end {
                let cause = if was_damaged {
                    GapCause::Damaged
                } else {
                    GapCause::Missing
                };
                gaps.push(Gap {
                    from: end,
                    to: base,
                    cause,
                });
            }
        }
        if repair && last && stop.is_none() && file_len > scanned.len {
            // A direct write's padding (`scan` checked it is only zeros).
            file.set_len(scanned.len)
                .and_then(|_| file.sync_all())
                .map_err(LogError::io("truncate", path))?;
        }
        let end = base + scanned.count;
        prev = Some((end, stop.is_some()));
        next = next.max(end);
        if let Some(stop) = stop {
            if last {
                let cut = cut_tail(&file, path, base, &scanned, stop, file_len, config);
                if let Some(p) = cut.max_position_cut {
                    next = next.max(p.saturating_add(1));
                }
                if repair {
                    file.set_len(cut.offset)
                        .and_then(|_| file.sync_all())
                        .map_err(LogError::io("truncate", path))?;
                }
                tail = Some(cut);
            } else {
                damaged.push(DamagedSegment {
                    path: path.clone(),
                    base,
                    records_kept: scanned.count,
                    offset: stop.offset,
                    bytes_skipped: file_len - stop.offset,
                    damage: stop.damage,
                });
            }
        }
        segments.push(Arc::new(Segment::new(base, path.clone(), file, scanned)));
    }

    if repair {
        choose_active(dir, &mut segments, next)?;
        meta::write(dir, next)?;
    }
    let report = OpenReport {
        segments: segments.len(),
        records: segments.iter().map(|s| s.count()).sum(),
        bytes: segments.iter().map(|s| s.len()).sum(),
        oldest_position: segments.iter().find(|s| s.count() > 0).map(|s| s.base),
        next_position: next,
        meta,
        tail,
        damaged,
        gaps,
        ignored,
        checkpoint_segments,
        elapsed: started.elapsed(),
    };
    Ok(Recovered {
        segments,
        index,
        next,
        report,
    })
}

/// Segment files (base position, path) sorted by base, and the files that
/// are not ours.
type Listing = (Vec<(u64, PathBuf)>, Vec<PathBuf>);

/// Lists the directory.
fn list(dir: &Path) -> Result<Listing, LogError> {
    let mut segs = Vec::new();
    let mut ignored = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io("read directory", dir))? {
        let entry = entry.map_err(LogError::io("read directory", dir))?;
        let name = entry.file_name();
        let path = entry.path();
        match name.to_str() {
            Some(META_FILE | META_TMP | LOCK_FILE | CKPT_FILE | CKPT_TMP) => {}
            Some(n) => match segment::parse_name(n) {
                Some(base) if path.is_file() => segs.push((base, path)),
                _ => ignored.push(path),
            },
            None => ignored.push(path),
        }
    }
    segs.sort_by_key(|s| s.0);
    ignored.sort();
    Ok((segs, ignored))
}

fn open_segment(path: &Path, writable: bool) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(writable).open(path)
}

/// Reads a segment up to its end or its first damage, filing every valid
/// record in the index.
fn scan(
    file: &File,
    base: u64,
    file_len: u64,
    next_base: Option<u64>,
    config: &LogConfig,
    index: &mut SourceIndex,
) -> (Scanned, Option<Stop>) {
    let mut s = Scanned {
        len: 0,
        count: 0,
        min_ts: i64::MAX,
        max_ts: i64::MIN,
        sparse: Vec::new(),
    };
    let header_len = SEGMENT_HEADER_LEN.min(file_len as usize);
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let header_ok = file
        .read_exact_at(&mut header[..header_len], 0)
        .map_err(|e| Damage::Read {
            error: e.to_string(),
        })
        .and_then(|_| check_segment_header(&header[..header_len]).map_err(Damage::Header));
    if let Err(damage) = header_ok {
        let bad_len = (file_len >= SEGMENT_HEADER_LEN as u64).then_some(SEGMENT_HEADER_LEN);
        return (
            s,
            Some(Stop {
                offset: 0,
                bad_len,
                damage,
            }),
        );
    }
    s.len = SEGMENT_HEADER_LEN as u64;
    let mut cursor = FrameCursor::new(
        file,
        SEGMENT_HEADER_LEN as u64,
        file_len,
        SCAN_CHUNK,
        config.max_record_bytes,
    );
    let stop = loop {
        let step = match cursor.next() {
            Ok(step) => step,
            Err(e) => {
                break Some(Stop {
                    offset: cursor.offset(),
                    bad_len: None,
                    damage: Damage::Read {
                        error: e.to_string(),
                    },
                })
            }
        };
        match step {
            Step::End => break None,
            Step::Bad { offset, .. } if is_padding(file, offset, file_len) => break None,
            Step::Bad { offset, len, error } => {
                break Some(Stop {
                    offset,
                    bad_len: len,
                    damage: Damage::Frame(error),
                })
            }
            Step::Record {
                offset,
                len,
                record,
            } => {
                let expected = base + s.count;
                let damage = if record.position != expected {
                    Some(Damage::Position {
                        expected,
                        found: record.position,
                    })
                } else {
                    next_base
                        .filter(|&nb| record.position >= nb)
                        .map(|next_base| Damage::Overlap { next_base })
                };
                if let Some(damage) = damage {
                    break Some(Stop {
                        offset,
                        bad_len: Some(len),
                        damage,
                    });
                }
                if s.count % SPARSE_EVERY == 0 {
                    s.sparse.push(offset);
                }
                index.push(record.source_id, record.position, record.timestamp);
                s.count += 1;
                s.len = offset + len as u64;
                s.min_ts = s.min_ts.min(record.timestamp);
                s.max_ts = s.max_ts.max(record.timestamp);
            }
        }
    };
    (s, stop)
}

/// Whether the bytes from `offset` to the end of the file are a direct
/// write's padding: all zeros, less than a block, ending on a block
/// boundary.
fn is_padding(file: &File, offset: u64, file_len: u64) -> bool {
    let block = BLOCK as u64;
    if file_len % block != 0 || offset >= file_len || file_len - offset >= block {
        return false;
    }
    let mut rest = vec![0u8; (file_len - offset) as usize];
    file.read_exact_at(&mut rest, offset).is_ok() && rest.iter().all(|&b| b == 0)
}

/// Describes cutting the last segment at its damage, counting the intact
/// records behind it.
fn cut_tail(
    file: &File,
    path: &Path,
    base: u64,
    scanned: &Scanned,
    stop: Stop,
    file_len: u64,
    config: &LogConfig,
) -> TailCut {
    let bytes_cut = file_len - stop.offset;
    let expected = base + scanned.count;
    // A position can be believed only if that many frames fit in the bytes
    // cut; a larger one (a bug, a hand-edited file) must not push the log's
    // positions towards the end of the u64 range.
    let plausible = expected.saturating_add(bytes_cut / MIN_FRAME_LEN as u64 + 1);
    let (mut intact, mut max_pos) = (0u64, None::<u64>);
    let mut cursor = FrameCursor::new(
        file,
        stop.offset,
        file_len,
        SCAN_CHUNK,
        config.max_record_bytes,
    );
    if stop.bad_len.is_some_and(|len| cursor.skip(len)) {
        loop {
            match cursor.next() {
                Ok(Step::Record { record, .. }) => {
                    intact += 1;
                    if record.position >= expected && record.position < plausible {
                        max_pos = max_pos.max(Some(record.position));
                    }
                }
                Ok(Step::Bad { len: Some(len), .. }) => {
                    if !cursor.skip(len) {
                        break;
                    }
                }
                _ => break,
            }
        }
    }
    TailCut {
        path: path.to_owned(),
        base,
        records_kept: scanned.count,
        offset: stop.offset,
        bytes_cut,
        intact_records_cut: intact,
        max_position_cut: max_pos,
        damage: stop.damage,
    }
}

/// Makes the last segment the one appends go to, starting a new one at
/// `next` unless the last ends exactly there with a valid header.
fn choose_active(dir: &Path, segments: &mut Vec<Arc<Segment>>, next: u64) -> Result<(), LogError> {
    if let Some(last) = segments.last() {
        let header_lost = last.len() < SEGMENT_HEADER_LEN as u64;
        if last.end() == next && !header_lost {
            return Ok(());
        }
        if last.count() == 0 {
            // Empty (or with a header too damaged to hold anything): nothing
            // is lost by replacing it.
            fs::remove_file(&last.path).map_err(LogError::io("remove", &last.path))?;
            segments.pop();
        } else {
            // Sealed as it is: make what it holds durable before moving on.
            last.file
                .sync_all()
                .map_err(LogError::io("fsync", &last.path))?;
        }
    }
    segments.push(Segment::create(dir, next)?);
    Ok(())
}
