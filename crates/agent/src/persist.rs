//! The agent's small state files (positions), replaced atomically: a temp
//! file beside the target, fsynced, renamed over it. A crash leaves the old
//! file or the new one, never a torn one.

use std::io::Write as _;
use std::path::Path;

/// Replaces `path` with `bytes`, creating its directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}
