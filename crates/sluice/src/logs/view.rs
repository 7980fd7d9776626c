//! Which entries a `sluice logs` view shows, decided on the client:
//! `--types`, Heroku's `-s/--source` and `-d/--dyno`, and (in the text
//! formats) log envelopes only. `-n N` counts what passes here.
//!
//! Heroku's names for an entry ([`heroku_source`], [`heroku_dyno`]):
//! `app[web.1]`, `heroku[router]`. An entry from a Heroku drain keeps its
//! own (`app`/`heroku` as source id, `web` + `1`); a Cloud Foundry-style one
//! is named from its source type: `APP/PROC/WEB` + instance `0` →
//! `app[web.0]`, `API/0` → `app[api.0]`, `RTR/1` → `heroku[router.1]`,
//! `CELL/0` → `heroku[cell.0]`.

use envelope::tags::SOURCE_TYPE;
use envelope::{Envelope, LogType};

use super::query::LogKind;

/// Source types of the platform rather than of the app.
const PLATFORM_TYPES: [&str; 8] = [
    "RTR", "ROUTER", "CELL", "STG", "LGR", "SSH", "SLUICE", "HEALTH",
];

#[derive(Debug, Clone, Default)]
pub struct View {
    pub types: Vec<LogKind>,
    pub source: Option<String>,
    pub dyno: Option<String>,
    /// Log envelopes only (the text formats, like `cf logs`).
    pub logs_only: bool,
}

impl View {
    pub fn shows(&self, env: &Envelope) -> bool {
        if (self.logs_only || !self.types.is_empty()) && env.as_log().is_none() {
            return false;
        }
        if !self.types.is_empty() {
            let kind = match env.log_type() {
                Some(LogType::Err) => LogKind::Err,
                _ => LogKind::Out,
            };
            if !self.types.contains(&kind) {
                return false;
            }
        }
        if let Some(source) = &self.source {
            if !source_matches(source, env) {
                return false;
            }
        }
        if let Some(dyno) = &self.dyno {
            if !dyno_matches(dyno, env) {
                return false;
            }
        }
        true
    }
}

/// `-s SOURCE`: Heroku's `app`/`heroku`, a source type (`APP/PROC/WEB`,
/// `router`), or its first parts (`app` matches `APP/PROC/WEB`, `APP/PROC`
/// too); `router` and `RTR` name the same thing. Case does not matter.
fn source_matches(source: &str, env: &Envelope) -> bool {
    let source = source.trim();
    if source.eq_ignore_ascii_case(heroku_source(env)) {
        return true;
    }
    let Some(kind) = env.tag(SOURCE_TYPE) else {
        return false;
    };
    let same = |a: &str, b: &str| {
        a.eq_ignore_ascii_case(b)
            || (a.eq_ignore_ascii_case("router") && b.eq_ignore_ascii_case("RTR"))
            || (a.eq_ignore_ascii_case("RTR") && b.eq_ignore_ascii_case("router"))
    };
    if same(source, kind) {
        return true;
    }
    // A prefix of whole parts: `app` or `APP/PROC` for `APP/PROC/WEB`.
    kind.len() > source.len()
        && kind.as_bytes()[source.len()] == b'/'
        && kind
            .get(..source.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(source))
}

/// `-d NAME`: a dyno as Heroku names it (`web.1`, `router`), a process type
/// for all its instances (`web`), or an instance id (`0`, a guid).
fn dyno_matches(dyno: &str, env: &Envelope) -> bool {
    let dyno = dyno.trim();
    if !env.instance_id.is_empty() && dyno == env.instance_id {
        return true;
    }
    let process = heroku_process(env);
    if dyno.eq_ignore_ascii_case(&process) {
        return true;
    }
    match dyno.rsplit_once('.') {
        Some((kind, n)) => kind.eq_ignore_ascii_case(&process) && n == env.instance_id,
        None => false,
    }
}

/// `app` or `heroku`, as Heroku shows where a line comes from.
pub fn heroku_source(env: &Envelope) -> &'static str {
    if env.source_id.eq_ignore_ascii_case("heroku") {
        return "heroku";
    }
    if env.source_id.eq_ignore_ascii_case("app") {
        return "app";
    }
    let first = env
        .tag(SOURCE_TYPE)
        .and_then(|t| t.split('/').next())
        .unwrap_or("");
    if PLATFORM_TYPES.iter().any(|p| p.eq_ignore_ascii_case(first)) {
        "heroku"
    } else {
        "app"
    }
}

/// The process type: the last part of the source type, lower case
/// (`APP/PROC/WEB` → `web`, `RTR` → `router`), or the source id when there
/// is no source type.
fn heroku_process(env: &Envelope) -> String {
    match env.tag(SOURCE_TYPE) {
        Some(kind) if kind.eq_ignore_ascii_case("RTR") => "router".to_owned(),
        Some(kind) => kind.rsplit('/').next().unwrap_or(kind).to_ascii_lowercase(),
        None => env.source_id.clone(),
    }
}

/// The dyno, as Heroku shows it in brackets: `web.1`, `router`.
pub fn heroku_dyno(env: &Envelope) -> String {
    let process = heroku_process(env);
    if env.instance_id.is_empty() {
        process
    } else {
        format!("{process}.{}", env.instance_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn env(source_id: &str, kind: Option<&str>, instance: &str, log: LogType) -> Envelope {
        let mut e = Envelope::log(1, source_id, instance, Bytes::from_static(b"x"), log);
        if let Some(kind) = kind {
            e.tags.insert(SOURCE_TYPE.into(), kind.into());
        }
        e
    }

    fn out(source_id: &str, kind: Option<&str>, instance: &str) -> Envelope {
        env(source_id, kind, instance, LogType::Out)
    }

    #[test]
    fn heroku_names() {
        let cases = [
            (out("web", Some("APP/PROC/WEB"), "0"), "app", "web.0"),
            (out("web", Some("API"), "0"), "app", "api.0"),
            (out("web", Some("RTR"), "1"), "heroku", "router.1"),
            (out("web", Some("CELL"), "0"), "heroku", "cell.0"),
            (out("app", Some("web"), "1"), "app", "web.1"),
            (out("heroku", Some("router"), ""), "heroku", "router"),
            (out("heroku", Some("web"), "2"), "heroku", "web.2"),
            (out("cron", None, ""), "app", "cron"),
        ];
        for (e, source, dyno) in cases {
            assert_eq!(
                (heroku_source(&e), heroku_dyno(&e).as_str()),
                (source, dyno)
            );
        }
    }

    #[test]
    fn sources() {
        let view = |s: &str| View {
            source: Some(s.into()),
            ..View::default()
        };
        let web = out("web", Some("APP/PROC/WEB"), "0");
        let rtr = out("web", Some("RTR"), "0");
        let router = out("heroku", Some("router"), "");
        let dyno = out("app", Some("web"), "1");
        for s in ["app", "APP", "APP/PROC", "app/proc/web", "APP/PROC/WEB"] {
            assert!(view(s).shows(&web), "{s}");
            assert!(!view(s).shows(&rtr), "{s}");
        }
        assert!(view("app").shows(&dyno));
        assert!(!view("APP/PR").shows(&web));
        for s in ["router", "RTR", "heroku"] {
            assert!(view(s).shows(&rtr), "{s}");
            assert!(view(s).shows(&router), "{s}");
            assert!(!view(s).shows(&web), "{s}");
        }
    }

    #[test]
    fn dynos() {
        let view = |d: &str| View {
            dyno: Some(d.into()),
            ..View::default()
        };
        let web0 = out("web", Some("APP/PROC/WEB"), "0");
        let web1 = out("app", Some("web"), "1");
        let worker = out("app", Some("worker"), "1");
        let router = out("heroku", Some("router"), "");
        assert!(view("web.1").shows(&web1));
        assert!(!view("web.1").shows(&web0));
        assert!(!view("web.1").shows(&worker));
        assert!(view("web").shows(&web0) && view("web").shows(&web1));
        assert!(view("WEB.0").shows(&web0));
        assert!(view("0").shows(&web0) && !view("0").shows(&web1));
        assert!(view("router").shows(&router));
        assert!(!view("router").shows(&web0));
    }

    #[test]
    fn types_and_events() {
        let err = env("web", None, "0", LogType::Err);
        let out = out("web", None, "0");
        let event = Envelope::event(1, "web", "audit.app.start", "");
        let all = View::default();
        assert!(all.shows(&err) && all.shows(&out) && all.shows(&event));
        let text = View {
            logs_only: true,
            ..View::default()
        };
        assert!(text.shows(&out) && !text.shows(&event));
        let errors = View {
            types: vec![LogKind::Err],
            ..View::default()
        };
        assert!(errors.shows(&err) && !errors.shows(&out) && !errors.shows(&event));
    }
}
