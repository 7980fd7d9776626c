//! `sluice check --data-dir DIR`: what a [`DiskLog`](super::DiskLog) would
//! find in a data directory, without changing anything (no lock, no
//! truncation, no cleanup): the segments under `DIR/log` (through
//! [`crate::check`]) and the consumer cursor files under `DIR/cursors`, the
//! layout [`DiskLogConfig::new`] uses. The report's `Display` says what is
//! fine and what the next open would truncate, skip or remove.
//!
//! Run against a directory a server is using, a torn tail may just be a
//! write in flight.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::consumers::{consumer_of, is_temp, parse_file};
use super::cursor::Cursor;
use super::disk::DiskLogConfig;
use super::error::ApiError;
use crate::report::{Damage, GapCause, OpenReport};
use crate::{LogError, MetaStatus};

/// What [`check_data_dir`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDirReport {
    /// The segment directory checked.
    pub log_dir: PathBuf,
    /// `None` when there is no segment directory yet (a new data dir).
    pub log: Option<OpenReport>,
    /// The consumer cursor directory checked.
    pub cursor_dir: PathBuf,
    /// Every cursor file, by file name.
    pub cursors: Vec<CursorCheck>,
    /// Temp files of interrupted commits: the next open removes them.
    pub cursor_temp_files: Vec<PathBuf>,
    /// Files in the cursor directory that are not cursor files (left alone).
    pub ignored: Vec<PathBuf>,
}

/// One consumer's cursor file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorCheck {
    pub consumer: String,
    pub path: PathBuf,
    pub state: CursorState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CursorState {
    /// A valid cursor.
    Ok(Cursor),
    /// Not a cursor (holds `found`): `committed` fails for this consumer
    /// until it commits again.
    Damaged { found: String },
    /// The file could not be read.
    Unreadable { error: String },
}

impl DataDirReport {
    /// Nothing damaged, cut or missing in the log, and every cursor file
    /// readable. (Temp files and a new, empty directory are clean.)
    pub fn is_clean(&self) -> bool {
        self.log.as_ref().is_none_or(OpenReport::is_clean)
            && self
                .cursors
                .iter()
                .all(|c| matches!(c.state, CursorState::Ok(_)))
    }
}

/// Checks the data directory `dir` laid out as [`DiskLogConfig::new`] does
/// (default storage limits). Fails only when `dir` itself cannot be read.
pub fn check_data_dir(dir: &Path) -> Result<DataDirReport, ApiError> {
    check_disk_log(&DiskLogConfig::new(dir), dir)
}

/// [`check_data_dir`] for any [`DiskLogConfig`]; `dir` is the data
/// directory the config's paths are under (it must exist).
pub fn check_disk_log(config: &DiskLogConfig, dir: &Path) -> Result<DataDirReport, ApiError> {
    fs::metadata(dir).map_err(LogError::io("open data directory", dir))?;
    let log_dir = config.storage.dir.clone();
    let log = if log_dir.exists() {
        Some(crate::check(&config.storage)?)
    } else {
        None
    };
    let cursor_dir = config.cursor_dir.clone();
    let mut report = DataDirReport {
        log_dir,
        log,
        cursor_dir: cursor_dir.clone(),
        cursors: Vec::new(),
        cursor_temp_files: Vec::new(),
        ignored: Vec::new(),
    };
    let entries = match fs::read_dir(&cursor_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(LogError::io("read directory", &cursor_dir)(e).into()),
    };
    for entry in entries {
        let path = entry
            .map_err(LogError::io("read directory", &cursor_dir))?
            .path();
        let consumer = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(consumer_of);
        match consumer {
            Some(consumer) if path.is_file() => {
                let state = match fs::read(&path) {
                    Ok(bytes) => match parse_file(&bytes) {
                        Ok(c) => CursorState::Ok(c),
                        Err(found) => CursorState::Damaged { found },
                    },
                    Err(e) => CursorState::Unreadable {
                        error: e.to_string(),
                    },
                };
                report.cursors.push(CursorCheck {
                    consumer,
                    path,
                    state,
                });
            }
            _ if is_temp(&path) => report.cursor_temp_files.push(path),
            _ => report.ignored.push(path),
        }
    }
    report.cursors.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    report.cursor_temp_files.sort();
    report.ignored.sort();
    Ok(report)
}

fn damage(d: &Damage) -> String {
    match d {
        Damage::Header(e) => format!("bad segment header ({e})"),
        Damage::Frame(e) => format!("bad record ({e})"),
        Damage::Position { expected, found } => {
            format!("record out of place (position {found} where {expected} belongs)")
        }
        Damage::Overlap { next_base } => {
            format!("records reach into the next segment's positions ({next_base} on)")
        }
        Damage::Read { error } => format!("read error ({error})"),
    }
}

fn write_log(f: &mut fmt::Formatter<'_>, r: &OpenReport) -> fmt::Result {
    let oldest = r
        .oldest_position
        .map_or("none".to_owned(), |p| p.to_string());
    writeln!(
        f,
        "  {} segment(s), {} records, {} bytes; oldest position {oldest}, next {}",
        r.segments, r.records, r.bytes, r.next_position
    )?;
    match &r.meta {
        MetaStatus::Ok { floor } => writeln!(f, "  meta: ok (position floor {floor})")?,
        MetaStatus::Missing => writeln!(f, "  meta: missing (written on the next open)")?,
        MetaStatus::Corrupt { reason } => writeln!(
            f,
            "  meta: DAMAGED ({reason}): ignored and rewritten on the next open"
        )?,
    }
    if let Some(t) = &r.tail {
        writeln!(
            f,
            "  TORN TAIL in {}: {}; the next open truncates it to {} bytes after {} records \
             (cutting {} bytes, {} intact records)",
            t.path.display(),
            damage(&t.damage),
            t.offset,
            t.records_kept,
            t.bytes_cut,
            t.intact_records_cut
        )?;
    }
    for d in &r.damaged {
        writeln!(
            f,
            "  DAMAGED {} at byte {}: {}; readers skip the last {} bytes (after {} records)",
            d.path.display(),
            d.offset,
            damage(&d.damage),
            d.bytes_skipped,
            d.records_kept
        )?;
    }
    for g in &r.gaps {
        let cause = match g.cause {
            GapCause::Missing => "a segment file is missing",
            GapCause::Damaged => "after damage",
        };
        writeln!(
            f,
            "  GAP: positions {}..{} ({} records) are skipped: {cause}",
            g.from,
            g.to,
            g.records()
        )?;
    }
    for p in &r.ignored {
        writeln!(f, "  ignored (not a readable segment): {}", p.display())?;
    }
    Ok(())
}

impl fmt::Display for DataDirReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_clean() {
            "clean: nothing to repair"
        } else {
            "NOT CLEAN: see the lines in capitals"
        };
        writeln!(f, "{verdict}")?;
        writeln!(f, "log {}:", self.log_dir.display())?;
        match &self.log {
            Some(r) => write_log(f, r)?,
            None => writeln!(f, "  none yet (created on the first start)")?,
        }
        writeln!(
            f,
            "consumer cursors {}: {}",
            self.cursor_dir.display(),
            self.cursors.len()
        )?;
        let (oldest, next) = self
            .log
            .as_ref()
            .map_or((None, 0), |r| (r.oldest_position, r.next_position));
        for c in &self.cursors {
            write!(f, "  {:?}: ", c.consumer)?;
            match &c.state {
                CursorState::Ok(cursor) => {
                    let at = cursor.next();
                    let floor = oldest.unwrap_or(next);
                    if at > next {
                        writeln!(f, "{cursor}, past the end ({next}): resumes at the end")?;
                    } else if at < floor {
                        writeln!(
                            f,
                            "{cursor}, behind the oldest kept position {floor}: \
                             {} entries removed before it read them are skipped",
                            floor - at
                        )?;
                    } else {
                        writeln!(f, "{cursor}, ok ({} entries behind the end)", next - at)?;
                    }
                }
                CursorState::Damaged { found } => writeln!(
                    f,
                    "DAMAGED file {} holds {found:?}: reading its cursor fails until it commits again",
                    c.path.display()
                )?,
                CursorState::Unreadable { error } => {
                    writeln!(f, "UNREADABLE file {}: {error}", c.path.display())?
                }
            }
        }
        for p in &self.cursor_temp_files {
            writeln!(
                f,
                "  leftover of an interrupted commit, removed on the next open: {}",
                p.display()
            )?;
        }
        for p in &self.ignored {
            writeln!(f, "  ignored (not a cursor file): {}", p.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use envelope::{Envelope, LogType};

    use super::*;
    use crate::{DiskLog, Log};

    async fn populated(dir: &Path) {
        let (log, _) = DiskLog::open(DiskLogConfig::new(dir)).unwrap();
        let batch: Vec<Envelope> = (0..10)
            .map(|i| Envelope::log(i, "app", "0", Bytes::from_static(b"x"), LogType::Out))
            .collect();
        log.append(batch).await.unwrap();
        log.commit("drain-a", Cursor::at(4)).await.unwrap();
        log.close().await.unwrap();
    }

    fn segment(dir: &Path) -> PathBuf {
        let log = dir.join("log");
        let mut segs: Vec<PathBuf> = fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        segs.pop().unwrap()
    }

    #[tokio::test]
    async fn a_clean_dir_and_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let new = check_data_dir(dir.path()).unwrap();
        assert!(new.is_clean());
        assert!(new.log.is_none());
        assert!(new.to_string().contains("none yet"), "{new}");
        populated(dir.path()).await;
        let r = check_data_dir(dir.path()).unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.log.as_ref().unwrap().records, 10);
        // `sluice check`'s tests look for these words.
        assert!(r.to_string().contains(" 10 records, "), "{r}");
        assert_eq!(r.cursors.len(), 1);
        assert_eq!(r.cursors[0].consumer, "drain-a");
        assert_eq!(r.cursors[0].state, CursorState::Ok(Cursor::at(4)));
        let text = r.to_string();
        assert!(text.starts_with("clean: "), "{text}");
        assert!(
            text.contains("\"drain-a\": v1.4, ok (6 entries behind the end)"),
            "{text}"
        );
        assert!(check_data_dir(&dir.path().join("nope")).is_err());
    }

    #[tokio::test]
    async fn a_torn_tail_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path()).await;
        let seg = segment(dir.path());
        let len = fs::metadata(&seg).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 5).unwrap();
        let r = check_data_dir(dir.path()).unwrap();
        assert!(!r.is_clean());
        let tail = r.log.as_ref().unwrap().tail.as_ref().unwrap();
        assert_eq!(tail.records_kept, 9);
        let text = r.to_string();
        assert!(text.starts_with("NOT CLEAN: "), "{text}");
        assert!(text.contains("TORN TAIL"), "{text}");
        assert!(text.contains("after 9 records"), "{text}");
        // Nothing was changed.
        assert_eq!(fs::metadata(&seg).unwrap().len(), len - 5);
    }

    #[tokio::test]
    async fn a_damaged_cursor_file_and_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path()).await;
        let cursors = dir.path().join("cursors");
        let file = fs::read_dir(&cursors)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs::write(&file, b"v1.4x").unwrap();
        fs::write(cursors.join("61.7.tmp"), b"v1.").unwrap();
        fs::write(cursors.join("README"), b"hi").unwrap();
        let r = check_data_dir(dir.path()).unwrap();
        assert!(!r.is_clean());
        assert_eq!(
            r.cursors[0].state,
            CursorState::Damaged {
                found: "v1.4x".into()
            }
        );
        assert_eq!(r.cursor_temp_files, vec![cursors.join("61.7.tmp")]);
        assert_eq!(r.ignored, vec![cursors.join("README")]);
        let text = r.to_string();
        assert!(text.contains("DAMAGED file"), "{text}");
        assert!(text.contains("removed on the next open"), "{text}");
        assert!(cursors.join("61.7.tmp").exists());
    }
}
