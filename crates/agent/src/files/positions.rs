//! Where each host file was read up to: its device and inode, the byte
//! offset just past the last whole line stored, and the log position of
//! that line (so lines stored after the last save are recognised after a
//! `kill -9`, as for containers). One JSON file, replaced atomically about
//! once a second and at shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSaved {
    pub dev: u64,
    pub inode: u64,
    pub offset: u64,
    pub log_position: Option<u64>,
}

/// A file's position as `GET /v1/agent` reports it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    pub inode: u64,
    /// Bytes read into whole lines.
    pub offset: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct FileForm {
    version: u32,
    files: BTreeMap<PathBuf, FileSaved>,
}

const VERSION: u32 = 1;

#[derive(Debug)]
pub struct FilePositions {
    path: PathBuf,
    state: Mutex<(BTreeMap<PathBuf, FileSaved>, bool)>,
}

impl FilePositions {
    /// Reads the file; a missing one is empty, a damaged one is set aside
    /// (the files are then read from their end, as new ones are).
    pub fn open(path: &Path) -> Self {
        let files = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<FileForm>(&bytes) {
                Ok(form) if form.version == VERSION => form.files,
                _ => {
                    let aside = path.with_extension("damaged");
                    let _ = std::fs::rename(path, &aside);
                    tracing::warn!(moved_to = %aside.display(), "the file positions are damaged; set aside");
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        FilePositions {
            path: path.to_owned(),
            state: Mutex::new((files, false)),
        }
    }

    pub fn get(&self, file: &Path) -> Option<FileSaved> {
        self.state.lock().0.get(file).cloned()
    }

    pub fn set(&self, file: &Path, saved: FileSaved) {
        let mut state = self.state.lock();
        if state.0.get(file) != Some(&saved) {
            state.0.insert(file.to_owned(), saved);
            state.1 = true;
        }
    }

    /// Every file read so far with its position, for status reports.
    pub fn report(&self) -> Vec<FileReport> {
        self.state
            .lock()
            .0
            .iter()
            .map(|(path, saved)| FileReport {
                path: path.display().to_string(),
                inode: saved.inode,
                offset: saved.offset,
            })
            .collect()
    }

    /// Writes the file if anything changed since the last save.
    pub fn save(&self) -> Result<(), std::io::Error> {
        let bytes = {
            let mut state = self.state.lock();
            if !state.1 {
                return Ok(());
            }
            state.1 = false;
            serde_json::to_vec(&FileForm {
                version: VERSION,
                files: state.0.clone(),
            })
            .map_err(std::io::Error::other)?
        };
        let written = crate::persist::write_atomically(&self.path, &bytes);
        if written.is_err() {
            self.state.lock().1 = true;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_sets_aside_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent/files.positions");
        let p = FilePositions::open(&path);
        let saved = FileSaved {
            dev: 1,
            inode: 2,
            offset: 3,
            log_position: Some(4),
        };
        p.set(Path::new("/var/log/x"), saved.clone());
        p.save().unwrap();
        assert_eq!(
            FilePositions::open(&path).get(Path::new("/var/log/x")),
            Some(saved)
        );
        std::fs::write(&path, b"{").unwrap();
        assert_eq!(
            FilePositions::open(&path).get(Path::new("/var/log/x")),
            None
        );
        assert!(path.with_extension("damaged").exists());
    }
}
