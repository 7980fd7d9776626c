//! Which files a drain may touch: an API caller must never name an
//! arbitrary file.
//!
//! - `file://` drains write only inside `[drains] file_dirs`
//!   (`--allow-file-dirs`); none by default, so a file drain is refused
//!   until the operator allows a directory. The path is percent-decoded
//!   and normalised (`.` and `..` resolved lexically) before the check, so
//!   what is checked is what is opened. Missing directories between the
//!   allowed directory and the file are created (mode 0750); every
//!   existing one is resolved (symlinks followed) and must still lie inside
//!   the allowed directory, resolved the same way, so a symlinked directory
//!   cannot lead outside. The file itself is opened with `O_NOFOLLOW`: a
//!   symlink there is refused. Nothing is written inside sluice's data dir
//!   or a TLS directory even when an allowed directory holds them (log
//!   lines there could plant a drain definition or a CA). The check runs
//!   on add and again whenever the writer opens or reopens the file.
//! - `ca=`, `cert=` and `key=` files are read only from `[drains]
//!   tls_dirs` (by default the data dir's `tls/`); a relative path is taken
//!   inside the first of them. A path outside is refused with an error
//!   naming the setting, before anything touches the file system, so the
//!   error never tells whether such a file exists.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// Where drains may write files and read TLS files.
#[derive(Clone, Debug, Default)]
pub struct PathPolicy {
    file_dirs: Vec<PathBuf>,
    tls_dirs: Vec<PathBuf>,
    /// Where file drains never write, even inside `file_dirs`.
    reserved: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("file drains may write only inside the directories the operator allows ([drains] file_dirs in sluice.toml or `sluice server --allow-file-dirs DIR`), which are {dirs}; {path} is not inside them")]
    FileNotAllowed { path: String, dirs: String },
    #[error("{path} leads outside [drains] file_dirs through a symbolic link")]
    Escapes { path: String },
    #[error(
        "{path} is inside sluice's data dir or a TLS directory, where file drains may not write"
    )]
    Reserved { path: String },
    #[error("{path} is {what}; a file drain writes a regular file")]
    NotAFile { path: String, what: &'static str },
    #[error("{path} exists already: ?overwrite=1 truncates only a file the drain creates; remove the file or drop overwrite=1 (the drain then appends)")]
    OverwriteExisting { path: String },
    #[error("{op} {path}: {reason}")]
    Io {
        op: &'static str,
        path: String,
        reason: String,
    },
    #[error("{option}={path}: TLS files are read only from the directories in [drains] tls_dirs, which are {dirs}")]
    TlsNotAllowed {
        option: &'static str,
        path: String,
        dirs: String,
    },
    #[error("{option} file {path} is not readable: {reason}")]
    TlsUnreadable {
        option: &'static str,
        path: String,
        reason: String,
    },
}

impl PathError {
    /// Whether an operator must change something (as opposed to a
    /// passing I/O problem).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, PathError::Io { .. })
    }
}

/// `path` made absolute-only and lexically normal: `.` dropped, `..`
/// removing the previous component (never above `/`). `None` when it is
/// not absolute.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return None;
    }
    for c in components {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        "none".to_owned()
    } else {
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn io(op: &'static str, path: &Path, e: std::io::Error) -> PathError {
    PathError::Io {
        op,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl PathPolicy {
    /// Relative directories are ignored (they would depend on the working
    /// directory); others are normalised.
    pub fn new(file_dirs: &[PathBuf], tls_dirs: &[PathBuf]) -> Self {
        let norm = |dirs: &[PathBuf]| dirs.iter().filter_map(|d| normalize(d)).collect();
        PathPolicy {
            file_dirs: norm(file_dirs),
            tls_dirs: norm(tls_dirs),
            reserved: Vec::new(),
        }
    }

    /// Refuses file drains inside `dirs` (the data dir, the TLS dirs).
    pub fn reserve(mut self, dirs: &[PathBuf]) -> Self {
        self.reserved
            .extend(dirs.iter().filter_map(|d| normalize(d)));
        self
    }

    pub fn file_dirs(&self) -> &[PathBuf] {
        &self.file_dirs
    }

    pub fn tls_dirs(&self) -> &[PathBuf] {
        &self.tls_dirs
    }

    /// Checks a `file://` drain's path (as [`crate::spec::DrainUrl`] holds
    /// it), creates the missing directories inside the allowed directory,
    /// and returns the path to open: the resolved parent directory and the
    /// file name. Open it with `O_NOFOLLOW`.
    pub fn prepare_file(&self, path: &str) -> Result<PathBuf, PathError> {
        let not_allowed = || PathError::FileNotAllowed {
            path: path.to_owned(),
            dirs: list(&self.file_dirs),
        };
        let norm = normalize(Path::new(path)).ok_or_else(not_allowed)?;
        let (Some(parent), Some(name)) = (norm.parent(), norm.file_name()) else {
            return Err(not_allowed());
        };
        // The longest allowed directory holding the file.
        let dir = self
            .file_dirs
            .iter()
            .filter(|d| parent.starts_with(d))
            .max_by_key(|d| d.as_os_str().len())
            .ok_or_else(not_allowed)?;
        let reserved = || PathError::Reserved {
            path: path.to_owned(),
        };
        if self.reserved.iter().any(|r| norm.starts_with(r)) {
            return Err(reserved());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|e| io("create directory", dir, e))?;
        let root = dir.canonicalize().map_err(|e| io("resolve", dir, e))?;
        let escapes = || PathError::Escapes {
            path: path.to_owned(),
        };
        // Walk down from the allowed directory, creating what is missing;
        // every step resolved must stay inside it.
        let mut current = root.clone();
        let below = parent.strip_prefix(dir).map_err(|_| not_allowed())?;
        for part in below.components() {
            let Component::Normal(part) = part else {
                return Err(not_allowed());
            };
            let next = current.join(part);
            match std::fs::symlink_metadata(&next) {
                Ok(_) => {
                    let resolved = next.canonicalize().map_err(|e| io("resolve", &next, e))?;
                    if !resolved.starts_with(&root) {
                        return Err(escapes());
                    }
                    if !resolved.is_dir() {
                        return Err(PathError::NotAFile {
                            path: next.display().to_string(),
                            what: "not a directory",
                        });
                    }
                    current = resolved;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match std::fs::DirBuilder::new().mode(0o750).create(&next) {
                        Ok(()) => {}
                        // Made by someone else meanwhile: resolved next time round.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io("create directory", &next, e)),
                    }
                    let resolved = next.canonicalize().map_err(|e| io("resolve", &next, e))?;
                    if !resolved.starts_with(&root) {
                        return Err(escapes());
                    }
                    current = resolved;
                }
                Err(e) => return Err(io("stat", &next, e)),
            }
        }
        let target = current.join(name);
        // Again as resolved, in case a symlink leads there.
        for r in &self.reserved {
            if r.canonicalize().is_ok_and(|r| target.starts_with(r)) {
                return Err(reserved());
            }
        }
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => Err(PathError::NotAFile {
                path: path.to_owned(),
                what: "a symbolic link",
            }),
            Ok(m) if m.is_dir() => Err(PathError::NotAFile {
                path: path.to_owned(),
                what: "a directory",
            }),
            _ => Ok(target),
        }
    }

    /// Checks a `ca=`/`cert=`/`key=` file and returns its resolved path;
    /// `check_readable` opens it too (on add).
    pub fn tls_file(
        &self,
        option: &'static str,
        path: &Path,
        check_readable: bool,
    ) -> Result<PathBuf, PathError> {
        let not_allowed = || PathError::TlsNotAllowed {
            option,
            path: path.display().to_string(),
            dirs: list(&self.tls_dirs),
        };
        let absolute = if path.is_absolute() {
            path.to_owned()
        } else {
            self.tls_dirs.first().ok_or_else(not_allowed)?.join(path)
        };
        let norm = normalize(&absolute).ok_or_else(not_allowed)?;
        let dir = self
            .tls_dirs
            .iter()
            .find(|d| norm.starts_with(d) && norm != **d)
            .ok_or_else(not_allowed)?;
        // Inside an allowed directory, what exists may be told.
        let unreadable = |e: std::io::Error| PathError::TlsUnreadable {
            option,
            path: norm.display().to_string(),
            reason: e.to_string(),
        };
        let root = dir.canonicalize().map_err(unreadable)?;
        let resolved = norm.canonicalize().map_err(unreadable)?;
        if !resolved.starts_with(&root) {
            return Err(not_allowed());
        }
        if check_readable {
            std::fs::File::open(&resolved).map_err(unreadable)?;
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::writers::testutil::TempDir as Dir;

    #[test]
    fn normalisation() {
        let n = |p: &str| normalize(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(n("/a/./b/../c"), Some("/a/c".into()));
        assert_eq!(n("/a/../../../etc/passwd"), Some("/etc/passwd".into()));
        assert_eq!(n("a/b"), None);
    }

    #[test]
    fn file_drains_need_an_allowed_directory() {
        let root = Dir::new("allowed");
        let none = PathPolicy::default();
        let err = none.prepare_file("/tmp/x.log").unwrap_err().to_string();
        assert!(
            err.contains("[drains] file_dirs") && err.contains("--allow-file-dirs"),
            "{err}"
        );
        let allowed = root.0.join("logs");
        let p = PathPolicy::new(std::slice::from_ref(&allowed), &[]);
        // Missing directories inside are created, the allowed one too.
        let target = p
            .prepare_file(&format!("{}/sluice/deep/all.log", allowed.display()))
            .unwrap();
        assert_eq!(target, allowed.join("sluice/deep/all.log"));
        assert!(allowed.join("sluice/deep").is_dir());
        // `..` cannot climb out, and a sibling with the same prefix is not inside.
        for bad in [
            format!("{}/../escape.log", allowed.display()),
            format!("{}-other/x.log", allowed.display()),
            "/etc/passwd".to_owned(),
            allowed.display().to_string(),
        ] {
            assert!(
                matches!(p.prepare_file(&bad), Err(PathError::FileNotAllowed { .. })),
                "{bad}"
            );
        }
        assert!(!root.0.join("escape.log").exists());
    }

    #[test]
    fn symlinks_cannot_lead_outside() {
        let root = Dir::new("links");
        let allowed = root.0.join("allowed");
        let outside = root.0.join("outside");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("f.log"), allowed.join("f.log")).unwrap();
        std::fs::create_dir_all(allowed.join("real")).unwrap();
        std::os::unix::fs::symlink(allowed.join("real"), allowed.join("inside")).unwrap();
        let p = PathPolicy::new(std::slice::from_ref(&allowed), &[]);
        let at = |rel: &str| format!("{}/{rel}", allowed.display());
        assert!(matches!(
            p.prepare_file(&at("out/x.log")),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(
            p.prepare_file(&at("out/new/x.log")),
            Err(PathError::Escapes { .. })
        ));
        assert!(!outside.join("new").exists());
        assert!(matches!(
            p.prepare_file(&at("f.log")),
            Err(PathError::NotAFile { .. })
        ));
        // A symlink that stays inside is fine.
        assert_eq!(
            p.prepare_file(&at("inside/x.log")).unwrap(),
            allowed.join("real/x.log")
        );
    }

    #[test]
    fn never_into_the_data_dir_or_tls_dirs() {
        let root = Dir::new("reserved");
        let data = root.0.join("data");
        let tls = data.join("tls");
        let p = PathPolicy::new(std::slice::from_ref(&root.0), std::slice::from_ref(&tls))
            .reserve(&[data.clone(), tls.clone()]);
        for bad in ["data/drains/evil.json", "data/tls/ca.pem", "data/x.log"] {
            let err = p
                .prepare_file(&format!("{}/{bad}", root.0.display()))
                .unwrap_err();
            assert!(matches!(err, PathError::Reserved { .. }), "{bad}: {err}");
        }
        assert!(!data.join("drains").exists());
        assert!(p
            .prepare_file(&format!("{}/logs/x.log", root.0.display()))
            .is_ok());
    }

    #[test]
    fn tls_files_only_from_tls_dirs_without_telling_what_exists() {
        let root = Dir::new("tls");
        let tls = root.0.join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "x").unwrap();
        std::fs::write(root.0.join("outside.pem"), "x").unwrap();
        std::os::unix::fs::symlink(root.0.join("outside.pem"), tls.join("link.pem")).unwrap();
        let p = PathPolicy::new(&[], std::slice::from_ref(&tls));
        assert_eq!(
            p.tls_file("ca", &tls.join("ca.pem"), true).unwrap(),
            tls.join("ca.pem")
        );
        assert_eq!(
            p.tls_file("ca", Path::new("ca.pem"), true).unwrap(),
            tls.join("ca.pem")
        );
        let existing = p
            .tls_file("ca", &root.0.join("outside.pem"), true)
            .unwrap_err();
        let missing = p
            .tls_file("ca", &root.0.join("missing.pem"), true)
            .unwrap_err();
        // Same kind of answer whether or not the file exists.
        assert!(matches!(existing, PathError::TlsNotAllowed { .. }));
        assert!(matches!(missing, PathError::TlsNotAllowed { .. }));
        assert!(existing.to_string().contains("[drains] tls_dirs"));
        for bad in ["../outside.pem", "/etc/shadow", "link.pem"] {
            assert!(
                matches!(
                    p.tls_file("key", Path::new(bad), true),
                    Err(PathError::TlsNotAllowed { .. })
                ),
                "{bad}"
            );
        }
        let err = p.tls_file("cert", Path::new("nope.pem"), true).unwrap_err();
        assert!(matches!(err, PathError::TlsUnreadable { .. }), "{err}");
    }
}
