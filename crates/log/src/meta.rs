//! The `meta` file: a persisted floor under the next position, so positions
//! never go back — not even when every segment has been deleted.
//!
//! Twenty bytes: magic `SLMETA01` (8) | floor u64 LE (8) | CRC-32C of the
//! first 16 (4). Written atomically: `meta.tmp`, fsync, rename over `meta`,
//! fsync the directory. A missing or damaged file is reported, never fatal:
//! the segments' own positions still bound the next one.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::LogError;
use crate::fsio::sync_dir;

pub(crate) const META_FILE: &str = "meta";
pub(crate) const META_TMP: &str = "meta.tmp";
const MAGIC: [u8; 8] = *b"SLMETA01";
const LEN: usize = 20;

/// What `open` found in the `meta` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaStatus {
    /// A valid file with this floor.
    Ok { floor: u64 },
    /// No file (a new directory, or it was removed).
    Missing,
    /// The file could not be read or failed its checks; ignored and rewritten.
    Corrupt { reason: String },
}

impl MetaStatus {
    pub fn floor(&self) -> u64 {
        match self {
            MetaStatus::Ok { floor } => *floor,
            _ => 0,
        }
    }
}

pub(crate) fn read(dir: &Path) -> MetaStatus {
    let bytes = match fs::read(dir.join(META_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return MetaStatus::Missing,
        Err(e) => {
            return MetaStatus::Corrupt {
                reason: e.to_string(),
            }
        }
    };
    match decode(&bytes) {
        Some(floor) => MetaStatus::Ok { floor },
        None => MetaStatus::Corrupt {
            reason: format!("{} bytes that fail the format checks", bytes.len()),
        },
    }
}

fn decode(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != LEN || bytes[..8] != MAGIC {
        return None;
    }
    let stored = u32::from_le_bytes(bytes[16..20].try_into().ok()?);
    if crc32c::crc32c(&bytes[..16]) != stored {
        return None;
    }
    Some(u64::from_le_bytes(bytes[8..16].try_into().ok()?))
}

fn encode(floor: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(&MAGIC);
    b[8..16].copy_from_slice(&floor.to_le_bytes());
    let crc = crc32c::crc32c(&b[..16]);
    b[16..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Durably replaces the floor.
pub(crate) fn write(dir: &Path, floor: u64) -> Result<(), LogError> {
    let tmp = dir.join(META_TMP);
    let mut f = File::create(&tmp).map_err(LogError::io("create", &tmp))?;
    f.write_all(&encode(floor))
        .map_err(LogError::io("write", &tmp))?;
    f.sync_all().map_err(LogError::io("fsync", &tmp))?;
    drop(f);
    let path = dir.join(META_FILE);
    fs::rename(&tmp, &path).map_err(LogError::io("rename meta.tmp to", &path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), MetaStatus::Missing);
        write(dir.path(), 12345).unwrap();
        assert_eq!(read(dir.path()), MetaStatus::Ok { floor: 12345 });
        assert!(!dir.path().join(META_TMP).exists());
        let mut b = fs::read(dir.path().join(META_FILE)).unwrap();
        b[9] ^= 4;
        fs::write(dir.path().join(META_FILE), &b).unwrap();
        assert!(matches!(read(dir.path()), MetaStatus::Corrupt { .. }));
        fs::write(dir.path().join(META_FILE), b"").unwrap();
        assert!(matches!(read(dir.path()), MetaStatus::Corrupt { .. }));
    }
}
