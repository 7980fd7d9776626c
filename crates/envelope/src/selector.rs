//! Selectors: what a subscription (tail, stream, drain, firehose) wants.
//!
//! Every non-empty criterion must match; within a list, any element may
//! match. An empty selector matches everything.

use crate::entry::Entry;
use crate::key;
use crate::tags;
use crate::v2::{EnvelopeType, LogType};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    /// Exact source ids (any of).
    pub source_ids: Vec<String>,
    /// App names or source ids (any of): matches the `app_name` tag or the
    /// source id, as `sluice logs APP` resolves an app.
    pub apps: Vec<String>,
    /// Substring of the app name (or source id when there is no app name),
    /// as logspout's `/logs/filter:<substr>`.
    pub app_substring: Option<String>,
    /// Glob (`*`, `?`) over the app name (or source id when there is no
    /// app name), as logspout's route `filter_name`.
    pub app_glob: Option<String>,
    /// Routing key prefixes (any of), matched by whole segments
    /// ([`key::has_prefix`]).
    pub key_prefixes: Vec<String>,
    /// Tag values that must all be equal (`space_name`, `organization_name`, …).
    pub tags: Vec<(String, String)>,
    /// Envelope kinds (any of).
    pub envelope_types: Vec<EnvelopeType>,
    /// Log streams (any of); envelopes that are not logs pass this criterion.
    pub log_types: Vec<LogType>,
}

impl Selector {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn matches(&self, entry: &Entry) -> bool {
        let env = &entry.envelope;
        if !self.source_ids.is_empty() && !self.source_ids.contains(&env.source_id) {
            return false;
        }
        if !self.apps.is_empty() {
            let app_name = env.tag(tags::APP_NAME);
            if !self
                .apps
                .iter()
                .any(|a| *a == env.source_id || Some(a.as_str()) == app_name)
            {
                return false;
            }
        }
        if let Some(sub) = &self.app_substring {
            let name = env.tag(tags::APP_NAME).unwrap_or(&env.source_id);
            if !name.contains(sub.as_str()) {
                return false;
            }
        }
        if let Some(pattern) = &self.app_glob {
            let name = env.tag(tags::APP_NAME).unwrap_or(&env.source_id);
            if !glob_match(pattern.as_bytes(), name.as_bytes()) {
                return false;
            }
        }
        if !self.key_prefixes.is_empty()
            && !self
                .key_prefixes
                .iter()
                .any(|p| key::has_prefix(&entry.key, p))
        {
            return false;
        }
        if !self
            .tags
            .iter()
            .all(|(k, v)| env.tag(k) == Some(v.as_str()))
        {
            return false;
        }
        if !self.envelope_types.is_empty() {
            match env.envelope_type() {
                Some(t) if self.envelope_types.contains(&t) => {}
                _ => return false,
            }
        }
        if !self.log_types.is_empty() {
            if let Some(t) = env.log_type() {
                if !self.log_types.contains(&t) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether only one source can match (the stream then omits per-line
    /// source prefixes, as logspout does for a single container).
    pub fn single_source(&self) -> bool {
        let by_name = self.tags.iter().any(|(k, _)| k == tags::APP_NAME);
        self.app_substring.is_none()
            && self.app_glob.is_none()
            && (self.source_ids.len() == 1 || self.apps.len() == 1 || by_name)
    }
}

/// `*` matches any run (also empty), `?` one byte; everything else itself.
/// Iterative with one backtrack point, so it is linear-ish and never
/// recurses on hostile patterns.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::Envelope;
    use bytes::Bytes;

    fn entry(source: &str, app: &str, space: &str, t: LogType) -> Entry {
        let mut e = Envelope::log(1, source, "0", Bytes::from_static(b"x"), t);
        e.tags.insert("app_name".into(), app.into());
        e.tags.insert("space_name".into(), space.into());
        Entry::new(e)
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"web*", b"web-1"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"w?b", b"web"));
        assert!(glob_match(b"*b*", b"web"));
        assert!(!glob_match(b"web", b"webs"));
        assert!(!glob_match(b"a*c", b"abd"));
        assert!(glob_match(b"a*c*e", b"abcde"));
    }

    #[test]
    fn empty_matches_all() {
        assert!(Selector::all().matches(&entry("a", "web", "dev", LogType::Out)));
    }

    #[test]
    fn criteria_combine() {
        let e = entry("guid-1", "web", "dev", LogType::Err);
        let by_app = Selector {
            apps: vec!["web".into()],
            ..Default::default()
        };
        assert!(by_app.matches(&e));
        let by_guid = Selector {
            apps: vec!["guid-1".into()],
            ..Default::default()
        };
        assert!(by_guid.matches(&e));
        let wrong_space = Selector {
            apps: vec!["web".into()],
            tags: vec![("space_name".into(), "prod".into())],
            ..Default::default()
        };
        assert!(!wrong_space.matches(&e));
        let out_only = Selector {
            log_types: vec![LogType::Out],
            ..Default::default()
        };
        assert!(!out_only.matches(&e));
        let filter = Selector {
            app_substring: Some("we".into()),
            key_prefixes: vec!["apptail".into()],
            ..Default::default()
        };
        assert!(filter.matches(&e));
        let by_key = |prefix: &str| Selector {
            key_prefixes: vec![prefix.into()],
            ..Default::default()
        };
        // Key prefixes match whole segments: `apptail.guid` is not a prefix
        // of `apptail.guid-1`'s subject.
        assert!(by_key("apptail.guid-1").matches(&e));
        assert!(!by_key("apptail.guid").matches(&e));
        assert!(by_key("").matches(&e));
        let metrics = Selector {
            envelope_types: vec![EnvelopeType::Counter],
            ..Default::default()
        };
        assert!(!metrics.matches(&e));
    }
}
