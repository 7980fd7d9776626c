//! Small file-system steps that durability depends on.

use std::fs::File;
use std::path::Path;

use crate::error::LogError;

/// Makes the directory's entries (creations, renames, unlinks) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("fsync directory", dir))
}
