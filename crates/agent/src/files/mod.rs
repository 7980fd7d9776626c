//! Host files (Logyard's systail): each `--file NAME=PATH` is followed into
//! the stream `systail.NAME.<node>` (source id NAME, instance id the host,
//! tags `systail`, `host`, `path`, `source_type` `SYSTAIL`). PATH may end
//! in a glob (`/var/log/*.log`): files that match are picked up as they
//! appear (the directory is listed every few seconds), each followed on
//! its own ([`tail`]). Positions live in `<data-dir>/agent/files.positions`.

pub mod positions;
pub mod tail;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sources::IngestContext;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use positions::FilePositions;
use tail::Tailer;

/// Logyard's `read_limit`: at most this much of a file that grew while the
/// agent was away is read.
pub const DEFAULT_READ_LIMIT: u64 = 16 << 20;
/// How often each file is polled for new lines.
const POLL: Duration = Duration::from_millis(250);
/// How often globs are expanded again.
const RESCAN: Duration = Duration::from_secs(3);
/// How often positions are saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One `--file NAME=PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub path: PathBuf,
}

impl std::str::FromStr for FileSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, path) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: --file takes NAME=PATH"))?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "{name:?}: a file name is 1-64 of A-Z a-z 0-9 - _ (it becomes a key segment)"
            ));
        }
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!("{}: the path must be absolute", path.display()));
        }
        if path
            .parent()
            .is_some_and(|d| d.to_string_lossy().contains(['*', '?']))
        {
            return Err(format!(
                "{}: a glob may only be in the file name, not the directory",
                path.display()
            ));
        }
        Ok(FileSpec {
            name: name.to_owned(),
            path,
        })
    }
}

/// The `[agent]` section of sluice.toml (`sluice server` ignores it):
/// `[[agent.files]]` (`name`, `path`), `[[agent.sieve]]` rules and
/// `sieve_defaults` (Logyard's rules for common cases; on by default).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    pub files: Vec<FileEntry>,
    pub sieve: Vec<crate::sieve::SieveRule>,
    pub sieve_defaults: bool,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            files: Vec::new(),
            sieve: Vec::new(),
            sieve_defaults: true,
        }
    }
}

/// One `[[agent.files]]`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub path: String,
}

impl FileEntry {
    /// Checked as `--file NAME=PATH` is.
    pub fn spec(&self) -> Result<FileSpec, String> {
        format!("{}={}", self.name, self.path).parse()
    }
}

#[derive(Clone, Debug)]
pub struct FilesConfig {
    pub files: Vec<FileSpec>,
    /// Read new files from their start rather than their end.
    pub from_start: bool,
    pub read_limit: u64,
    pub node: String,
    pub positions_file: PathBuf,
    /// Rules that turn lines into events (none: no events).
    pub sieve: Option<Arc<crate::sieve::Sieve>>,
}

impl FilesConfig {
    pub fn new(files: Vec<FileSpec>, data_dir: &Path) -> Self {
        FilesConfig {
            files,
            from_start: false,
            read_limit: DEFAULT_READ_LIMIT,
            node: crate::docker::identity::host_name(),
            positions_file: data_dir.join("agent").join("files.positions"),
            sieve: None,
        }
    }
}

/// Follows every configured file until `shutdown`, then saves positions.
/// `positions`: [`FilePositions::open`] of `config.positions_file`, shared
/// with whoever reports them (`GET /v1/agent`).
pub async fn run(
    config: FilesConfig,
    positions: Arc<FilePositions>,
    ingest: IngestContext,
    shutdown: CancellationToken,
) {
    let mut tailers = JoinSet::new();
    let mut followed: HashSet<PathBuf> = HashSet::new();
    let mut save = tokio::time::interval(SAVE_EVERY);
    let mut rescan = tokio::time::interval(RESCAN);
    let counters = ingest.metrics.ingress_counters("file");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = tailers.join_next(), if !tailers.is_empty() => {
                // A globbed file that is gone: found again if it returns.
                if let Ok(path) = done {
                    followed.remove(&path);
                }
            }
            _ = save.tick() => {
                if let Err(err) = positions.save() {
                    tracing::warn!(error = %err, "cannot save the file positions");
                }
            }
            _ = rescan.tick() => {
                for spec in &config.files {
                    let globbed = is_glob(&spec.path);
                    for path in expand(&spec.path).await {
                        if followed.insert(path.clone()) {
                            tracing::info!(name = %spec.name, file = %path.display(), "following a file");
                            tailers.spawn(Tailer {
                                name: spec.name.clone(),
                                path,
                                node: config.node.clone(),
                                from_start: config.from_start,
                                read_limit: config.read_limit,
                                poll: POLL,
                                ingest: ingest.clone(),
                                positions: Arc::clone(&positions),
                                sieve: config.sieve.clone(),
                                counters: counters.clone(),
                                until_gone: globbed,
                                shutdown: shutdown.clone(),
                            }.run());
                        }
                    }
                }
            }
        }
    }
    while tailers.join_next().await.is_some() {}
    if let Err(err) = positions.save() {
        tracing::warn!(error = %err, "cannot save the file positions; the next start may read lines again");
    }
}

fn is_glob(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains(['*', '?']))
}

/// The paths a spec names: itself (followed even before it exists), or
/// the files in its directory whose names match its glob.
async fn expand(path: &Path) -> Vec<PathBuf> {
    let Some(pattern) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    if !is_glob(path) {
        return vec![path.to_owned()];
    }
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return Vec::new();
    };
    let mut found = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let is_file = entry.file_type().await.is_ok_and(|t| t.is_file());
        if is_file
            && envelope::selector::glob_match(pattern.as_bytes(), name.to_string_lossy().as_bytes())
        {
            found.push(entry.path());
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs() {
        let spec: FileSpec = "syslog=/var/log/syslog".parse().unwrap();
        assert_eq!(spec.name, "syslog");
        assert!("noequals".parse::<FileSpec>().is_err());
        assert!(
            "a.b=/x".parse::<FileSpec>().is_err(),
            "a dot would split the key"
        );
        assert!("x=relative/path".parse::<FileSpec>().is_err());
        assert!("x=/var/*/y.log".parse::<FileSpec>().is_err());
        assert!("x=/var/log/*.log".parse::<FileSpec>().is_ok());
    }
}
