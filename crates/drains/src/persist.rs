//! Drains and saved formats in the data dir, one JSON file each
//! (`drains/NAME.json`, `formats/NAME.json`), written atomically (temp file,
//! fsync, rename, fsync of the directory) so a crash leaves the old or the
//! new file, never half of one. One file per item means a corrupt file
//! costs only that item: it is reported by name and skipped, and the file
//! is left in place for the operator, never silently lost or overwritten.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

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
        let (items, problems) = load_dir::<SavedFormat>(&self.formats);
        let formats = items
            .into_iter()
            .map(|(_, f)| (f.name, f.template))
            .collect();
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

fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let target = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!(".{name}.json.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &target)?;
    // Make the rename itself durable.
    std::fs::File::open(dir)?.sync_all()
}

fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(format!("{name}.json"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .or(Ok(())),
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
}
