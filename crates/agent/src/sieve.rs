//! The sieve (Logyard's logyard_sieve): rules that turn matching host log
//! lines into Event envelopes.
//!
//! A rule names the `process` it listens to (a glob over the syslog tag's
//! program name, `*` for any line), a cheap `substring` prefilter, a
//! `regex`, the event `type`, a `severity` (INFO, WARN, ERROR) and a
//! `format` for the event's text with `$1`…`$9` for the regex's groups
//! (default: the whole line). A match becomes an event keyed
//! `event.<type>` (source id: the host; tags `event_type`, `node_id`,
//! `process`, `severity`); with `app_group = N` the event is about the app
//! group N names, and a copy lands in that app's own stream
//! (`apptail.<app>`), as Logyard injected timeline events.
//!
//! [`default_rules`] are on unless `sieve_defaults = false`: the kernel's
//! OOM kills, systemd units that exited with a failure, dockerd errors and
//! nginx errors.

use envelope::v2::Envelope;
use serde::Deserialize;

/// One `[[agent.sieve]]` rule.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SieveRule {
    /// Glob over the program name in the line's syslog tag (`kernel`,
    /// `systemd`, `dockerd`); `*` also matches lines without one.
    #[serde(default = "any")]
    pub process: String,
    /// The event type: `event.<type>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Only lines that contain this are tried against the regex.
    #[serde(default)]
    pub substring: Option<String>,
    pub regex: String,
    #[serde(default)]
    pub severity: Severity,
    /// The event's text, `$1`… for the groups (default: the message).
    #[serde(default)]
    pub format: Option<String>,
    /// The group that names the app the event is about.
    #[serde(default)]
    pub app_group: Option<usize>,
}

fn any() -> String {
    "*".to_owned()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    #[default]
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// Logyard-style rules for common cases, on by default.
pub fn default_rules() -> Vec<SieveRule> {
    let rule =
        |process: &str, event_type: &str, substring: &str, regex: &str, severity, format: &str| {
            SieveRule {
                process: process.to_owned(),
                event_type: event_type.to_owned(),
                substring: Some(substring.to_owned()),
                regex: regex.to_owned(),
                severity,
                format: Some(format.to_owned()),
                app_group: None,
            }
        };
    vec![
        rule(
            "kernel",
            "oom_kill",
            "Out of memory",
            r"Out of memory: Killed process (\d+) \(([^)]*)\)",
            Severity::Error,
            "out of memory: the kernel killed process $1 ($2)",
        ),
        rule(
            "systemd",
            "process_exit",
            "Main process exited",
            r"^(\S+): Main process exited, code=(\w+), status=(\S+)",
            Severity::Warn,
            "$1 exited ($2, status $3)",
        ),
        rule(
            "dockerd",
            "docker_error",
            "level=error",
            r#"level=error msg="((?:[^"\\]|\\.)*)""#,
            Severity::Error,
            "dockerd: $1",
        ),
        rule(
            "*",
            "nginx_error",
            "[error]",
            r"\[error\] \d+#\d+: (.*)",
            Severity::Error,
            "nginx: $1",
        ),
    ]
}

#[derive(Debug)]
struct Compiled {
    rule: SieveRule,
    regex: regex::Regex,
}

/// Compiled rules.
#[derive(Debug)]
pub struct Sieve {
    rules: Vec<Compiled>,
}

/// Longest regex a rule may have (the regex crate bounds the rest).
const MAX_REGEX: usize = 4096;
/// Longest event text.
const MAX_TEXT: usize = 4096;

impl Sieve {
    pub fn new(rules: Vec<SieveRule>) -> Result<Self, String> {
        let rules = rules
            .into_iter()
            .map(|rule| {
                if rule.regex.len() > MAX_REGEX {
                    return Err(format!("sieve rule {:?}: regex over {MAX_REGEX} bytes", rule.event_type));
                }
                let valid_type = !rule.event_type.is_empty()
                    && rule
                        .event_type
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid_type {
                    return Err(format!(
                        "sieve rule type {:?}: 1 or more of A-Z a-z 0-9 _ - (it becomes a key segment)",
                        rule.event_type
                    ));
                }
                let regex = regex::RegexBuilder::new(&rule.regex)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("sieve rule {:?}: {e}", rule.event_type))?;
                Ok(Compiled { rule, regex })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Sieve { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The events a host log line raises.
    pub fn events(&self, line: &[u8], node: &str, timestamp_ns: i64) -> Vec<Envelope> {
        let Ok(line) = std::str::from_utf8(line) else {
            return Vec::new();
        };
        let (process, message) = split_tag(line);
        let mut out = Vec::new();
        for c in &self.rules {
            let rule = &c.rule;
            if !envelope::selector::glob_match(rule.process.as_bytes(), process.as_bytes()) {
                continue;
            }
            if rule
                .substring
                .as_deref()
                .is_some_and(|s| !message.contains(s))
            {
                continue;
            }
            let Some(caps) = c.regex.captures(message) else {
                continue;
            };
            let mut text = match &rule.format {
                Some(format) => expand(format, &caps),
                None => message.to_owned(),
            };
            sources::limits::truncate_utf8(&mut text, MAX_TEXT);
            let mut event =
                Envelope::event(timestamp_ns, node, rule.event_type.clone(), text.clone());
            for (k, v) in [
                ("event_type", rule.event_type.as_str()),
                ("node_id", node),
                ("process", process),
                ("severity", rule.severity.as_str()),
            ] {
                event.tags.insert(k.to_owned(), v.to_owned());
            }
            let app = rule
                .app_group
                .and_then(|g| caps.get(g))
                .map(|m| m.as_str())
                .filter(|a| !a.is_empty());
            if let Some(app) = app {
                event.tags.insert("app".to_owned(), app.to_owned());
                // The same event in the app's own stream (no event_type tag:
                // its key is apptail.<app>).
                let mut about = Envelope::event(timestamp_ns, app, rule.event_type.clone(), text);
                for (k, v) in [
                    ("node_id", node),
                    ("process", process),
                    ("severity", rule.severity.as_str()),
                ] {
                    about.tags.insert(k.to_owned(), v.to_owned());
                }
                out.push(about);
            }
            out.push(event);
        }
        out
    }
}

/// The program name of a syslog line's tag and the message after it:
/// `Dec  2 10:00:00 host kernel: [1.2] Out of memory…` gives `kernel` and
/// `[1.2] Out of memory…`; `… systemd[1]: x.service: …` gives `systemd`.
/// A line without a tag gives `""` and the whole line.
pub fn split_tag(line: &str) -> (&str, &str) {
    let Some(colon) = line.find(": ") else {
        return ("", line);
    };
    let head = &line[..colon];
    let Some(tag) = head.rsplit(' ').next() else {
        return ("", line);
    };
    let program = tag.split('[').next().unwrap_or(tag);
    let plausible = !program.is_empty()
        && head.contains(' ')
        && program
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./@".contains(&b));
    if !plausible {
        return ("", line);
    }
    (program, &line[colon + 2..])
}

/// `$1`…`$9` replaced by the groups (`$$` is a `$`).
fn expand(format: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(format.len() + 32);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some(d @ '0'..='9') => {
                chars.next();
                let group = d as usize - '0' as usize;
                out.push_str(caps.get(group).map_or("", |m| m.as_str()));
            }
            _ => out.push('$'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sieve() -> Sieve {
        Sieve::new(default_rules()).unwrap()
    }

    #[test]
    fn tags_are_split_off() {
        assert_eq!(
            split_tag("Dec  2 10:00:00 vm kernel: [12.5] Out of memory: x"),
            ("kernel", "[12.5] Out of memory: x")
        );
        assert_eq!(
            split_tag("2026-12-02T10:00:00+00:00 vm systemd[1]: a.service: Main process exited"),
            ("systemd", "a.service: Main process exited")
        );
        assert_eq!(split_tag("no tag here"), ("", "no tag here"));
    }

    #[test]
    fn defaults_raise_events() {
        let events = sieve().events(
            b"Dec  2 10:00:00 vm kernel: [99.1] Out of memory: Killed process 4242 (java) total-vm:1kB",
            "vm",
            7,
        );
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.tag("event_type"), Some("oom_kill"));
        assert_eq!(e.tag("severity"), Some("ERROR"));
        assert_eq!(e.tag("process"), Some("kernel"));
        assert_eq!(e.source_id, "vm");
        match &e.message {
            Some(envelope::v2::Message::Event(ev)) => {
                assert_eq!(
                    ev.body,
                    "out of memory: the kernel killed process 4242 (java)"
                )
            }
            other => panic!("{other:?}"),
        }
        let exit = sieve().events(
            b"Dec  2 10:00:01 vm systemd[1]: web.service: Main process exited, code=exited, status=1/FAILURE",
            "vm",
            8,
        );
        assert_eq!(exit[0].tag("event_type"), Some("process_exit"));
        assert!(sieve()
            .events(b"Dec  2 10:00:01 vm cron[5]: nothing", "vm", 9)
            .is_empty());
    }

    #[test]
    fn a_rule_can_name_the_app() {
        let rule: SieveRule = toml::from_str(
            r#"
            process = "deployer"
            type = "deploy"
            regex = 'deployed (\S+) version (\S+)'
            severity = "INFO"
            format = "$1 is at $2"
            app_group = 1
            "#,
        )
        .unwrap();
        let s = Sieve::new(vec![rule]).unwrap();
        let events = s.events(
            b"Dec  2 10:00:00 vm deployer[7]: deployed shop version 42",
            "vm",
            1,
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].source_id, "shop");
        assert_eq!(events[0].tag("event_type"), None, "in the app's stream");
        assert_eq!(events[1].tag("event_type"), Some("deploy"));
        assert_eq!(events[1].tag("app"), Some("shop"));
    }

    #[test]
    fn bad_rules_are_errors() {
        let mut r = default_rules().remove(0);
        r.regex = "(".into();
        assert!(Sieve::new(vec![r.clone()]).is_err());
        r.regex = "x".into();
        r.event_type = "a.b".into();
        assert!(Sieve::new(vec![r]).is_err());
    }
}
