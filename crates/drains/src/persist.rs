//! Drains and saved formats in the data dir, one JSON file each
//! (`drains/NAME.json`, `formats/NAME.json`), written atomically (temp file,
//! fsync, rename, fsync of the directory) so a crash leaves the old or the
//! new file, never half of one. One file per item means a corrupt file
//! costs only that item: it is reported by name and skipped, and the file
//! is left in place for the operator, never silently lost or overwritten.
//!
//! A drain's file holds its URL with any password or token in it, so the
//! `drains/` and `formats/` directories are mode 0700 and their files 0600
//! (fixed on start for files written by older versions). Temporary files
//! are `.NAME.json.tmp-PID-N`; those a crash left behind are removed on
//! start ([`Persist::remove_leftovers`]). Files whose name is not a valid
//! drain or format name ([`crate::spec::valid_name`]) are reported and
//! skipped.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::spec::DrainSpec;

pub struct Persist {
    drains: PathBuf,
    formats: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFormat {
    name: String,
    template: String,
}

impl Persist {
    pub fn new(data_dir: &Path) -> Self {
        Persist {
            drains: data_dir.join("drains"),
            formats: data_dir.join("formats"),
        }
    }

    /// Removes temporary files a crash left in `drains/` and `formats/`;
    /// returns how many.
    pub fn remove_leftovers(&self) -> usize {
        let mut removed = 0;
        for dir in [&self.drains, &self.formats] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.')
                    && name.contains(".json.tmp-")
                    && entry.file_type().is_ok_and(|t| t.is_file())
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Every readable drain, and one message per file that was skipped.
    pub fn load_drains(&self) -> (Vec<DrainSpec>, Vec<String>) {
        let (items, mut problems) = load_dir::<DrainSpec>(&self.drains);
        let mut specs = Vec::new();
        for (file, spec) in items {
            if file == spec.name {
                specs.push(spec);
            } else {
                problems.push(format!(
                    "{}: holds drain {:?}, not {file:?}; skipped (the file is left as it is)",
                    self.drains.join(format!("{file}.json")).display(),
                    spec.name
                ));
            }
        }
        (specs, problems)
    }

    pub fn save_drain(&self, spec: &DrainSpec) -> std::io::Result<()> {
        write_json(&self.drains, &spec.name, spec)
    }

    pub fn delete_drain(&self, name: &str) -> std::io::Result<()> {
        remove(&self.drains, name)
    }

    pub fn load_formats(&self) -> (BTreeMap<String, String>, Vec<String>) {
        let (items, mut problems) = load_dir::<SavedFormat>(&self.formats);
        let mut formats = BTreeMap::new();
        for (file, f) in items {
            if file == f.name {
                formats.insert(f.name, f.template);
            } else {
                problems.push(format!(
                    "{}: holds format {:?}, not {file:?}; skipped (the file is left as it is)",
                    self.formats.join(format!("{file}.json")).display(),
                    f.name
                ));
            }
        }
        (formats, problems)
    }

    pub fn save_format(&self, name: &str, template: &str) -> std::io::Result<()> {
        let f = SavedFormat {
            name: name.to_owned(),
            template: template.to_owned(),
        };
        write_json(&self.formats, name, &f)
    }

    pub fn delete_format(&self, name: &str) -> std::io::Result<()> {
        remove(&self.formats, name)
    }
}

fn load_dir<T: for<'de> Deserialize<'de>>(dir: &Path) -> (Vec<(String, T)>, Vec<String>) {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    if let Err(e) = restrict(dir) {
        problems.push(format!("{}: cannot make it private: {e}", dir.display()));
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (items, problems),
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return (items, problems);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !crate::spec::valid_name(&stem) {
            problems.push(format!(
                "{}: {stem:?} is not a valid name ({}); skipped (the file is left as it is)",
                path.display(),
                crate::spec::NAME_RULE
            ));
            continue;
        }
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
        }
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<T>(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(item) => items.push((stem, item)),
            Err(e) => problems.push(format!(
                "{}: {e}; skipped (the file is left as it is)",
                path.display()
            )),
        }
    }
    (items, problems)
}

/// Makes `dir` (if it exists) mode 0700.
fn restrict(dir: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() && m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    if !crate::spec::valid_name(name) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid name {name:?}"),
        ));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    restrict(dir)?;
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let target = dir.join(format!("{name}.json"));
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.json.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable.
    std::fs::File::open(dir)?.sync_all()
}

fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    if !crate::spec::valid_name(name) {
        return Ok(());
    }
    match std::fs::remove_file(dir.join(format!("{name}.json"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .or(Ok(())),
    }
}

impl crate::shared::Definitions for Persist {
    fn load_drains(&self) -> (Vec<DrainSpec>, Vec<String>) {
        Persist::load_drains(self)
    }
    fn save_drain(&self, spec: &DrainSpec) -> std::io::Result<()> {
        Persist::save_drain(self, spec)
    }
    fn delete_drain(&self, name: &str) -> std::io::Result<()> {
        Persist::delete_drain(self, name)
    }
    fn load_formats(&self) -> (BTreeMap<String, String>, Vec<String>) {
        Persist::load_formats(self)
    }
    fn save_format(&self, name: &str, template: &str) -> std::io::Result<()> {
        Persist::save_format(self, name, template)
    }
    fn delete_format(&self, name: &str) -> std::io::Result<()> {
        Persist::delete_format(self, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let d = std::env::temp_dir().join(format!("sluice-persist-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_and_corrupt_files_are_reported_not_lost() {
        let dir = temp();
        let p = Persist::new(&dir);
        let spec = DrainSpec {
            name: "pt".into(),
            url: "syslog://h:1".into(),
            apps: vec!["web".into()],
            ..Default::default()
        };
        p.save_drain(&spec).unwrap();
        p.save_format("mine", "{{.text}}").unwrap();
        std::fs::write(dir.join("drains/broken.json"), b"{not json").unwrap();
        let (specs, problems) = p.load_drains();
        assert_eq!(specs, vec![spec]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("broken.json"), "{problems:?}");
        assert!(dir.join("drains/broken.json").exists());
        assert_eq!(
            p.load_formats().0.get("mine").map(String::as_str),
            Some("{{.text}}")
        );
        p.delete_drain("pt").unwrap();
        p.delete_drain("pt").unwrap();
        assert!(p.load_drains().0.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_private_and_leftovers_removed() {
        let dir = temp();
        let p = Persist::new(&dir);
        let spec = DrainSpec {
            name: "secret".into(),
            url: "https://u:pw@h/x?token=t".into(),
            ..Default::default()
        };
        p.save_drain(&spec).unwrap();
        p.save_format("f", "{{.text}}").unwrap();
        assert_eq!(mode(&dir.join("drains")), 0o700);
        assert_eq!(mode(&dir.join("drains/secret.json")), 0o600);
        assert_eq!(mode(&dir.join("formats/f.json")), 0o600);
        // Written by an older version: made private on load.
        std::fs::set_permissions(
            dir.join("drains/secret.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::set_permissions(dir.join("drains"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(p.load_drains().0.len(), 1);
        assert_eq!(mode(&dir.join("drains/secret.json")), 0o600);
        assert_eq!(mode(&dir.join("drains")), 0o700);
        // A crash between write and rename leaves a temp file.
        std::fs::write(dir.join("drains/.secret.json.tmp-123"), b"{").unwrap();
        std::fs::write(dir.join("formats/.f.json.tmp-9-1"), b"{").unwrap();
        assert_eq!(p.remove_leftovers(), 2);
        assert_eq!(std::fs::read_dir(dir.join("drains")).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn dot_names_are_never_files() {
        let dir = temp();
        let p = Persist::new(&dir);
        for name in [".", "..", ".hidden", "a/b"] {
            assert!(p.save_format(name, "{{.text}}").is_err(), "{name}");
        }
        std::fs::create_dir_all(dir.join("formats")).unwrap();
        std::fs::write(
            dir.join("formats/..json"),
            br#"{"name": ".", "template": "{{.text}}"}"#,
        )
        .unwrap();
        let (formats, problems) = p.load_formats();
        assert!(formats.is_empty());
        assert!(problems[0].contains("not a valid name"), "{problems:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
