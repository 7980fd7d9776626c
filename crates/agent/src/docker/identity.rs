//! Which containers are followed, and what their lines are called.
//!
//! As logspout: a container with env `LOGSPOUT=ignore` (or `SLUICE=ignore`)
//! is skipped, as is one with a label `--exclude-label` names, and the
//! agent's own container. `--include-label` keeps only containers that
//! carry the label (logspout's `filter.labels`).
//!
//! Source id: the label `sluice.app`, else env `SLUICE_APP`, else the
//! container name. Instance id: the short container id. Tags:
//! `container_id`, `container_name`, `image`, `host`, `source_type` (the
//! label `sluice.source_type`, else `DOCKER`), and each label named by
//! `--label-tag` under its own name.

use std::collections::BTreeMap;

use super::engine::ContainerInspect;

/// Labels and env that name an app or ask to be skipped.
pub const APP_LABEL: &str = "sluice.app";
pub const APP_ENV: &str = "SLUICE_APP";
pub const SOURCE_TYPE_LABEL: &str = "sluice.source_type";
pub const DEFAULT_SOURCE_TYPE: &str = "DOCKER";
const IGNORE_ENVS: [&str; 2] = ["LOGSPOUT", "SLUICE"];

/// What the operator chose about containers.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// `key:value` (or `key` for any value): follow only containers with one.
    pub include_labels: Vec<LabelMatch>,
    /// `key:value` (or `key`): never follow containers with one.
    pub exclude_labels: Vec<LabelMatch>,
    /// Labels copied into tags.
    pub label_tags: Vec<String>,
    /// The host name, for the `host` tag and to spot the agent's container.
    pub host: String,
}

/// A `--include-label`/`--exclude-label` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMatch {
    pub key: String,
    pub value: Option<String>,
}

impl std::str::FromStr for LabelMatch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, value) = match text.split_once(':') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (text, None),
        };
        if key.is_empty() {
            return Err(format!("{text:?}: a label match is KEY or KEY:VALUE"));
        }
        Ok(LabelMatch {
            key: key.to_owned(),
            value,
        })
    }
}

impl LabelMatch {
    fn matches(&self, labels: &std::collections::HashMap<String, String>) -> bool {
        match (labels.get(&self.key), &self.value) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What a followed container's lines carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub source_id: String,
    pub instance_id: String,
    pub tags: BTreeMap<String, String>,
}

/// Why a container is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    IgnoreEnv,
    ExcludedLabel,
    NotIncluded,
    Agent,
}

impl Rules {
    /// The container's identity, or why it is skipped.
    pub fn identify(&self, c: &ContainerInspect) -> Result<Identity, Skip> {
        let empty = std::collections::HashMap::new();
        let labels = c.config.labels.as_ref().unwrap_or(&empty);
        let env = |name: &str| {
            c.config.env.iter().flatten().find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name).then_some(v)
            })
        };
        if IGNORE_ENVS
            .iter()
            .any(|name| env(name).is_some_and(|v| v.eq_ignore_ascii_case("ignore")))
        {
            return Err(Skip::IgnoreEnv);
        }
        if self.exclude_labels.iter().any(|m| m.matches(labels)) {
            return Err(Skip::ExcludedLabel);
        }
        if !self.include_labels.is_empty() && !self.include_labels.iter().any(|m| m.matches(labels))
        {
            return Err(Skip::NotIncluded);
        }
        let short_id: String = c.id.chars().take(12).collect();
        if !self.host.is_empty() && self.host == short_id {
            return Err(Skip::Agent);
        }
        let name = c.name.trim_start_matches('/');
        let source_id = labels
            .get(APP_LABEL)
            .map(String::as_str)
            .or_else(|| env(APP_ENV))
            .filter(|s| !s.is_empty())
            .unwrap_or(name)
            .to_owned();
        let source_type = labels
            .get(SOURCE_TYPE_LABEL)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SOURCE_TYPE);
        let mut tags = BTreeMap::new();
        tags.insert("container_id".to_owned(), c.id.clone());
        tags.insert("container_name".to_owned(), name.to_owned());
        tags.insert("image".to_owned(), c.config.image.clone());
        tags.insert("source_type".to_owned(), source_type.to_owned());
        if !self.host.is_empty() {
            tags.insert("host".to_owned(), self.host.clone());
        }
        for key in &self.label_tags {
            if let Some(value) = labels.get(key) {
                tags.insert(key.clone(), value.clone());
            }
        }
        Ok(Identity {
            source_id,
            instance_id: short_id,
            tags,
        })
    }
}

/// This machine's name (`/proc/sys/kernel/hostname`), empty if unreadable.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::engine::{ContainerConfig, ContainerState};

    fn container(name: &str, env: &[&str], labels: &[(&str, &str)]) -> ContainerInspect {
        ContainerInspect {
            id: "0123456789abcdef0123".into(),
            name: format!("/{name}"),
            config: ContainerConfig {
                tty: false,
                env: Some(env.iter().map(|s| s.to_string()).collect()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                image: "busybox".into(),
            },
            state: ContainerState { running: true },
            log_path: String::new(),
            created: String::new(),
        }
    }

    fn rules() -> Rules {
        Rules {
            host: "node1".into(),
            label_tags: vec!["team".into()],
            ..Rules::default()
        }
    }

    #[test]
    fn names_tags_and_app_overrides() {
        let id = rules()
            .identify(&container("web", &[], &[("team", "a"), ("other", "x")]))
            .unwrap();
        assert_eq!(id.source_id, "web");
        assert_eq!(id.instance_id, "0123456789ab");
        assert_eq!(id.tags["source_type"], "DOCKER");
        assert_eq!(id.tags["team"], "a");
        assert_eq!(id.tags["host"], "node1");
        assert!(!id.tags.contains_key("other"));
        let by_env = rules()
            .identify(&container("web", &["SLUICE_APP=shop"], &[]))
            .unwrap();
        assert_eq!(by_env.source_id, "shop");
        let by_label = rules()
            .identify(&container(
                "web",
                &["SLUICE_APP=shop"],
                &[
                    ("sluice.app", "cart"),
                    ("sluice.source_type", "APP/PROC/WEB"),
                ],
            ))
            .unwrap();
        assert_eq!(by_label.source_id, "cart");
        assert_eq!(by_label.tags["source_type"], "APP/PROC/WEB");
    }

    #[test]
    fn skips_as_logspout_does() {
        let r = Rules {
            exclude_labels: vec!["quiet:yes".parse().unwrap()],
            ..rules()
        };
        assert_eq!(
            r.identify(&container("a", &["LOGSPOUT=ignore"], &[])),
            Err(Skip::IgnoreEnv)
        );
        assert_eq!(
            r.identify(&container("a", &[], &[("quiet", "yes")])),
            Err(Skip::ExcludedLabel)
        );
        assert!(r.identify(&container("a", &[], &[("quiet", "no")])).is_ok());
        let only = Rules {
            include_labels: vec!["logs".parse().unwrap()],
            ..rules()
        };
        assert_eq!(
            only.identify(&container("a", &[], &[])),
            Err(Skip::NotIncluded)
        );
        let me = Rules {
            host: "0123456789ab".into(),
            ..Rules::default()
        };
        assert_eq!(me.identify(&container("a", &[], &[])), Err(Skip::Agent));
        assert!(":v".parse::<LabelMatch>().is_err());
    }
}
