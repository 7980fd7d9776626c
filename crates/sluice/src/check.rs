//! `sluice check [--data-dir DIR]`: verifies a data directory offline — the
//! log's segments and checksums, and the consumer cursors of drains — and
//! says what the next start would cut or skip. It changes nothing.
//!
//! Exit status 0 when everything is intact, 1 when the next start would
//! repair something (as `fsck -n` reports without fixing), 2 when the
//! directory cannot be read. Run it while the server is stopped: a running
//! server's last batch may still be half written.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

#[derive(Args)]
#[command(after_help = "Examples:
  sluice check                         # ./sluice-data
  sluice check --data-dir /var/lib/sluice")]
pub struct CheckArgs {
    /// The data directory to check [default: ./sluice-data].
    #[arg(long, value_name = "DIR", default_value = "./sluice-data")]
    data_dir: PathBuf,
}

pub fn main(args: CheckArgs) -> Result<u8> {
    if !args.data_dir.is_dir() {
        crate::say!(
            "sluice check: {} is not a directory",
            args.data_dir.display()
        );
        return Ok(2);
    }
    let report = sluice_log::check_data_dir(&args.data_dir)
        .with_context(|| format!("checking {}", args.data_dir.display()))?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{report}")
        .and_then(|()| stdout.flush())
        .map_err(crate::term::stdout_error)?;
    Ok(if report.is_clean() { 0 } else { 1 })
}
