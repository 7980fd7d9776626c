//! From a parsed syslog message to a Loggregator envelope.
//!
//! The mapping, as Loggregator's syslog drains write messages (so a message
//! that left one sluice or Loggregator comes back with the same fields):
//!
//! - APP-NAME → `source_id` (`unknown` when absent);
//! - PROCID in Loggregator's `[APP/PROC/WEB/0]` form → `source_type` tag
//!   `APP/PROC/WEB` and `instance_id` `0`; in Heroku's `web.1` form →
//!   `source_type` `web`, `instance_id` `1`; a bare name such as Heroku's
//!   `router` (`heroku router - at=info …`) → `source_type` `router`, so
//!   the line reads `heroku[router]` as Heroku shows it; any other PROCID
//!   (a pid) → tag `proc_id`;
//! - HOSTNAME → `host` tag; when it has Loggregator's `org.space.app` shape
//!   (three dot-separated parts *and* a bracketed PROCID, so that ordinary
//!   FQDNs are not split) also `organization_name`, `space_name`, `app_name`;
//! - severity ≤ 3 (error and worse) → `ERR`, else `OUT`;
//! - structured data: the params of `tags@47450` (Loggregator's SD-ID)
//!   become tags as they are; params of any other element become
//!   `<sd-id>.<name>` tags, except RFC 5424's `timeQuality` which describes
//!   the clock, not the message; explicit tags win over the hostname split;
//! - the timestamp is the sender's when present and sane (see
//!   [`IngestLimits::timestamp`]), else the receive time;
//! - the payload is the MSG bytes.
//!
//! An unparsable frame (neither RFC 5424 nor 3164) is kept whole as the
//! payload of an `OUT` log from source `unknown`.

use bytes::Bytes;
use codec::loggregator::TAGS_SD_ID;
use codec::syslog::{SyslogFormat, SyslogMessage};
use envelope::{tags, Envelope, LogType};

use crate::limits::IngestLimits;

/// Source id for messages that name none.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// Builds the envelope of one parsed message; `payload` holds the bytes of
/// `msg.message` (shared with the frame or copied, as the caller chooses).
pub fn syslog_to_envelope(
    msg: &SyslogMessage<'_>,
    payload: Bytes,
    limits: &IngestLimits,
    now: i64,
) -> Envelope {
    let log_type = match msg.severity() {
        Some(sev) if sev <= 3 => LogType::Err,
        _ => LogType::Out,
    };
    let mut env = Envelope::log(
        limits.timestamp(msg.timestamp, now),
        msg.app_name.unwrap_or(UNKNOWN_SOURCE),
        "",
        payload,
        log_type,
    );
    if msg.format == SyslogFormat::Raw {
        return env;
    }

    let mut loggregator_procid = false;
    if let Some(proc_id) = msg.proc_id {
        if let Some((source_type, instance)) = loggregator_proc_id(proc_id) {
            env.tags
                .insert(tags::SOURCE_TYPE.to_owned(), source_type.to_owned());
            env.instance_id = instance.to_owned();
            loggregator_procid = true;
        } else if let Some((kind, n)) = heroku_proc_id(proc_id) {
            env.tags
                .insert(tags::SOURCE_TYPE.to_owned(), kind.to_owned());
            env.instance_id = n.to_owned();
        } else if is_process_name(proc_id) {
            env.tags
                .insert(tags::SOURCE_TYPE.to_owned(), proc_id.to_owned());
        } else {
            env.tags.insert("proc_id".to_owned(), proc_id.to_owned());
        }
    }

    if let Some(host) = msg.hostname {
        env.tags.insert(tags::HOST.to_owned(), host.to_owned());
        if loggregator_procid {
            let mut parts = host.split('.');
            if let (Some(org), Some(space), Some(app), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            {
                env.tags
                    .insert(tags::ORGANIZATION_NAME.to_owned(), org.to_owned());
                env.tags
                    .insert(tags::SPACE_NAME.to_owned(), space.to_owned());
                env.tags.insert(tags::APP_NAME.to_owned(), app.to_owned());
            }
        }
    }

    for element in &msg.structured_data {
        if element.id == "timeQuality" {
            continue;
        }
        let plain = element.id == TAGS_SD_ID;
        for (name, value) in &element.params {
            let key = if plain {
                (*name).to_owned()
            } else {
                format!("{}.{}", element.id, name)
            };
            env.tags.insert(key, value.clone().into_owned());
        }
    }
    env
}

/// `[APP/PROC/WEB/0]` → (`APP/PROC/WEB`, `0`); `[RTR]` → (`RTR`, ``).
fn loggregator_proc_id(proc_id: &str) -> Option<(&str, &str)> {
    let inner = proc_id.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return None;
    }
    match inner.rsplit_once('/') {
        Some((kind, n)) if !kind.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Some((kind, n))
        }
        _ => Some((inner, "")),
    }
}

/// A process name rather than a pid: a letter, then letters, digits, `_`
/// or `-` (Heroku's `router`, `api`, `scheduler`).
fn is_process_name(proc_id: &str) -> bool {
    proc_id
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && proc_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Heroku's dyno names: `web.1` → (`web`, `1`).
fn heroku_proc_id(proc_id: &str) -> Option<(&str, &str)> {
    let (kind, n) = proc_id.rsplit_once('.')?;
    let valid = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((kind, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::syslog::parse;

    const NOW: i64 = 1_795_785_298_000_000_000; // 2026-11-27T13:14:58Z

    fn map(frame: &'static [u8]) -> Envelope {
        let frame = Bytes::from_static(frame);
        let msg = parse(&frame, NOW);
        syslog_to_envelope(
            &msg,
            frame.slice_ref(msg.message),
            &IngestLimits::default(),
            NOW,
        )
    }

    #[test]
    fn loggregator_drain_message() {
        let e = map(b"<14>1 2026-11-27T13:14:57.5Z myorg.dev.web app-guid [APP/PROC/WEB/3] - [tags@47450 app_name=\"web\" space_name=\"dev\" deployment=\"cf\"] Started GET /");
        assert_eq!(e.source_id, "app-guid");
        assert_eq!(e.instance_id, "3");
        assert_eq!(e.timestamp, NOW - 500_000_000);
        assert_eq!(e.tag("source_type"), Some("APP/PROC/WEB"));
        assert_eq!(e.tag("organization_name"), Some("myorg"));
        assert_eq!(e.tag("space_name"), Some("dev"));
        assert_eq!(e.tag("app_name"), Some("web"));
        assert_eq!(e.tag("deployment"), Some("cf"));
        assert_eq!(e.tag("host"), Some("myorg.dev.web"));
        assert_eq!(e.log_type(), Some(LogType::Out));
        assert_eq!(&e.as_log().unwrap().payload[..], b"Started GET /");
    }

    #[test]
    fn logger_message_and_severity() {
        let e = map(b"<11>1 2026-11-27T13:14:58.000000+00:00 box.example.com web 4242 - [timeQuality tzKnown=\"1\" isSynced=\"0\"] boom");
        assert_eq!(e.source_id, "web");
        assert_eq!(e.log_type(), Some(LogType::Err));
        assert_eq!(e.tag("proc_id"), Some("4242"));
        assert_eq!(e.tag("host"), Some("box.example.com"));
        assert_eq!(e.tag("app_name"), None, "an FQDN is not split");
        assert!(!e.tags.keys().any(|k| k.starts_with("timeQuality")));
    }

    #[test]
    fn heroku_dyno_and_rfc3164() {
        let e = map(b"<190>1 2026-11-27T13:14:58Z host app web.2 - - hi");
        assert_eq!(
            (e.tag("source_type"), e.instance_id.as_str()),
            (Some("web"), "2")
        );
        let e =
            map(b"<158>1 2026-11-27T13:14:58Z host heroku router - at=info method=GET path=\"/\"");
        assert_eq!(e.source_id, "heroku");
        assert_eq!(
            (
                e.tag("source_type"),
                e.instance_id.as_str(),
                e.tag("proc_id")
            ),
            (Some("router"), "", None)
        );
        let e = map(b"<13>Nov 27 13:14:58 box web[12]: hello");
        assert_eq!(e.source_id, "web");
        assert_eq!(&e.as_log().unwrap().payload[..], b"hello");
    }

    #[test]
    fn raw_lines_are_kept() {
        let e = map(b"just some text");
        assert_eq!(e.source_id, UNKNOWN_SOURCE);
        assert_eq!(e.timestamp, NOW);
        assert_eq!(&e.as_log().unwrap().payload[..], b"just some text");
    }
}
