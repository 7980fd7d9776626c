//! The RFC 5424 message Loggregator's syslog drains write for an
//! envelope (Cloud Foundry's "syslog drain" format).
//!
//! Mirrors `Converter.ToRFC5424` and `generateProcessID` in
//! cloudfoundry/loggregator-agent-release (`src/pkg/egress/syslog/rfc5424.go`
//! and `tcp.go`):
//!
//! - PRI 14 (user.info) for OUT logs, 11 (user.err) for ERR logs, 14 for
//!   every other envelope; VERSION 1.
//! - TIMESTAMP in UTC with microseconds (`2026-11-21T13:14:58.123456Z`;
//!   Loggregator's Go layout trims trailing zeros, sluice always writes 6
//!   digits, see [`crate::rfc5424`]).
//! - HOSTNAME `org.space.app` from the `organization_name`, `space_name`
//!   and `app_name` tags. Each part is sanitised as Loggregator does: runs
//!   of white space become `-`, every other character outside
//!   `[-a-zA-Z0-9]` is removed, trailing `-` are trimmed, and the part is
//!   cut to 63 characters (so `My App` → `My-App`, `café` → `caf`).
//!   Loggregator joins all three even when one is missing (`BuildHostname`
//!   writes `..app`; Cloud Foundry always sets all three); sluice joins
//!   the parts that are not empty (`dev.app`, `app`), so a HOSTNAME never
//!   has an empty label. When none is left, Loggregator writes its
//!   default host name (the drain binding's host name); sluice writes the
//!   source's host name (the `host` tag), else its source id, each
//!   sanitised the same way except that `.` is kept between non-empty
//!   labels, cut to 255 characters; else `-` (NILVALUE).
//! - APP-NAME the source id (cut to 48 characters, anything outside
//!   printable US-ASCII becomes `_`, `-` when empty).
//! - PROCID `[SOURCE_TYPE/INSTANCE]` with the `source_type` tag upper-cased
//!   (`[APP/PROC/WEB/0]`), or `[SOURCE_TYPE]` when the instance id is
//!   empty (`[RTR]`). White space becomes `-`, other characters outside
//!   printable US-ASCII `_`. Without a `source_type` tag the type is `-`
//!   (`[-/0]`, `[-]`), where Loggregator would write `[/0]` or `[]`.
//!   Longer than 128 characters, the instance is cut to 36 and then the
//!   type, as Loggregator does. Loggregator writes `[INSTANCE]` for
//!   metrics; sluice uses the same PROCID for every envelope.
//! - MSGID `-`.
//! - STRUCTURED-DATA `[tags@47450 key="value" …]` with every tag in key
//!   order (names cut to 32 printable characters with `=`, `]`, `"` and
//!   SP replaced by `_`; values escaping `"`, `\` and `]`), or `-` when
//!   there are no tags or metadata is omitted (Loggregator's
//!   `WithoutSyslogMetadata`, the `disable-metadata` drain option).
//!   Loggregator adds `counter@47450`, `gauge@47450`, `timer@47450` or
//!   `event@47450` elements for metrics and events and leaves their MSG
//!   empty; sluice writes their text as the MSG instead.
//! - MSG the drain's formatted message when given, else the envelope's
//!   text ([`logyard::write_text`]: a log's payload, an event's
//!   `title: body`, a metric's short form), with NUL bytes removed and
//!   trailing CR/LF trimmed, then exactly one LF, as Loggregator appends
//!   `\n` to the MSG.
//!
//! The message has no octet-count framing; add it with
//! [`crate::rfc5424::octet_count_frame`] for TCP/TLS drains.

use envelope::tags::{APP_NAME, HOST, ORGANIZATION_NAME, SOURCE_TYPE, SPACE_NAME};
use envelope::v2::Envelope;
use envelope::LogType;

use crate::logyard;
use std::collections::BTreeMap;

use crate::rfc5424::{push_prefix, push_rest_of_header, SdParams};

/// The SD-ID of the tags element (Cloud Foundry's IANA enterprise number),
/// written by drains and read back by ingest.
pub const TAGS_SD_ID: &str = "tags@47450";

/// The syslog PRI of an envelope: 11 (user.err) for ERR logs, 14
/// (user.info) for OUT logs and every other envelope, as Loggregator's and
/// Logyard's drains write it.
pub fn priority(env: &Envelope) -> u8 {
    match env.log_type() {
        Some(LogType::Err) => 11,
        _ => 14,
    }
}

const MAX_HOSTNAME_PART: usize = 63;
const MAX_HOSTNAME: usize = 255;
const MAX_PROCID: usize = 128;
const MAX_PROCID_INSTANCE: usize = 36;

/// Appends one RFC 5424 message for `env`, ending in LF, without framing.
/// `message` replaces the envelope's text as MSG (a drain's custom
/// format); `omit_metadata` writes `-` instead of the tags. See the module
/// docs for every field.
pub fn format_syslog(
    env: &Envelope,
    message: Option<&[u8]>,
    omit_metadata: bool,
    out: &mut Vec<u8>,
) {
    format_syslog_with(env, message, omit_metadata, &SyslogExtras::default(), out);
}

/// What logspout routes add to each syslog message: a suffix to APP-NAME
/// (`options.append_tag`) and structured data elements written before the
/// tags element (`options.structured_data`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyslogExtras {
    pub append_tag: Option<String>,
    pub structured_data: Vec<(String, Vec<(String, String)>)>,
}

impl SyslogExtras {
    /// Checks and splits the route options; the structured data must be
    /// RFC 5424 SD-ELEMENTs (parsed with this crate's own parser).
    pub fn parse(append_tag: Option<&str>, structured_data: Option<&str>) -> Result<Self, String> {
        let mut extras = SyslogExtras {
            append_tag: append_tag.filter(|t| !t.is_empty()).map(str::to_owned),
            structured_data: Vec::new(),
        };
        if let Some(sd) = structured_data.filter(|s| !s.is_empty()) {
            let probe = format!("<14>1 - - - - - {sd} x");
            let parsed = crate::syslog::parse(probe.as_bytes(), 0);
            if parsed.format != crate::syslog::SyslogFormat::Rfc5424
                || parsed.structured_data.is_empty()
                || parsed.message != b"x"
            {
                return Err(format!(
                    "structured data {sd:?} is not RFC 5424 SD-ELEMENTs like [id@1 k=\"v\"]"
                ));
            }
            extras.structured_data = parsed
                .structured_data
                .iter()
                .map(|e| {
                    let params = e
                        .params
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.to_string()))
                        .collect();
                    (e.id.to_owned(), params)
                })
                .collect();
        }
        Ok(extras)
    }
}

/// [`format_syslog`] with a route's [`SyslogExtras`].
pub fn format_syslog_with(
    env: &Envelope,
    message: Option<&[u8]>,
    omit_metadata: bool,
    extras: &SyslogExtras,
    out: &mut Vec<u8>,
) {
    LoggregatorEncoder::new(omit_metadata, extras.clone()).encode(env, message, out);
}

/// Formats a stream of envelopes as [`format_syslog_with`] does, caching
/// the part of the header that depends only on the source (HOSTNAME,
/// APP-NAME, PROCID, MSGID, structured data): consecutive envelopes of one
/// source with the same tags, the common case in a drain's batch, reuse
/// it, and only PRI, TIMESTAMP and MSG are written per message.
#[derive(Clone, Debug, Default)]
pub struct LoggregatorEncoder {
    omit_metadata: bool,
    extras: SyslogExtras,
    /// `(source_id, instance_id, tags)` the cached header was made for.
    cached_for: Option<(String, String, BTreeMap<String, String>)>,
    cached_header: Vec<u8>,
    scratch: Vec<u8>,
}

impl LoggregatorEncoder {
    pub fn new(omit_metadata: bool, extras: SyslogExtras) -> Self {
        LoggregatorEncoder {
            omit_metadata,
            extras,
            ..Default::default()
        }
    }

    /// Appends one RFC 5424 message with its trailing LF, no framing.
    pub fn encode(&mut self, env: &Envelope, message: Option<&[u8]>, out: &mut Vec<u8>) {
        push_prefix(out, priority(env), env.timestamp);
        let hit = self.cached_for.as_ref().is_some_and(|(s, i, t)| {
            *s == env.source_id && *i == env.instance_id && *t == env.tags
        });
        if !hit {
            self.cached_header.clear();
            rest_of_header(
                env,
                self.omit_metadata,
                &self.extras,
                &mut self.cached_header,
            );
            self.cached_for = Some((
                env.source_id.clone(),
                env.instance_id.clone(),
                env.tags.clone(),
            ));
        }
        out.extend_from_slice(&self.cached_header);
        out.push(b' ');
        let msg = match message {
            Some(msg) => msg,
            None => match env.as_log() {
                Some(log) => &log.payload[..],
                None => {
                    self.scratch.clear();
                    logyard::write_text(env, &mut self.scratch);
                    &self.scratch
                }
            },
        };
        let mut end = msg.len();
        while end > 0 && matches!(msg[end - 1], b'\r' | b'\n' | 0) {
            end -= 1;
        }
        let msg = &msg[..end];
        if msg.contains(&0) {
            out.extend(msg.iter().copied().filter(|b| *b != 0));
        } else {
            out.extend_from_slice(msg);
        }
        out.push(b'\n');
    }
}

/// ` HOSTNAME APP-NAME PROCID - SD` of an envelope.
fn rest_of_header(env: &Envelope, omit_metadata: bool, extras: &SyslogExtras, out: &mut Vec<u8>) {
    let hostname = hostname(env);
    let proc_id = proc_id(env.tag(SOURCE_TYPE).unwrap_or_default(), &env.instance_id);
    let params: Vec<(&str, &str)> = if omit_metadata {
        Vec::new()
    } else {
        env.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    let extra: Vec<Vec<(&str, &str)>> = extras
        .structured_data
        .iter()
        .map(|(_, p)| p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .collect();
    let mut sd: Vec<SdParams<'_>> = extras
        .structured_data
        .iter()
        .zip(&extra)
        .map(|((id, _), p)| (id.as_str(), p.as_slice()))
        .collect();
    if !params.is_empty() {
        sd.push((TAGS_SD_ID, &params));
    }
    let app_name = match &extras.append_tag {
        Some(tag) => std::borrow::Cow::Owned(format!("{}{tag}", env.source_id)),
        None => std::borrow::Cow::Borrowed(env.source_id.as_str()),
    };
    push_rest_of_header(out, &hostname, &app_name, &proc_id, "", &sd);
}

/// `org.space.app` (the parts that are set), else the `host` tag, else
/// the source id; empty when none gives a label (see the module docs).
fn hostname(env: &Envelope) -> String {
    let mut hostname = String::with_capacity(64);
    for part in [ORGANIZATION_NAME, SPACE_NAME, APP_NAME] {
        let mut part = sanitize(env.tag(part).unwrap_or_default(), false);
        part.truncate(MAX_HOSTNAME_PART);
        if !part.is_empty() {
            if !hostname.is_empty() {
                hostname.push('.');
            }
            hostname.push_str(&part);
        }
    }
    if !hostname.is_empty() {
        return hostname;
    }
    for name in [env.tag(HOST).unwrap_or_default(), env.source_id.as_str()] {
        let host = dotted(&sanitize(name, true));
        if !host.is_empty() {
            return host;
        }
    }
    String::new()
}

/// Non-empty labels of `name` joined by single dots, at most
/// [`MAX_HOSTNAME`] characters (cut between labels when it can be).
fn dotted(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_HOSTNAME));
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let dot = usize::from(!out.is_empty());
        if out.len() + dot + label.len() > MAX_HOSTNAME {
            if out.is_empty() {
                out.push_str(&label[..MAX_HOSTNAME]);
            }
            break;
        }
        if dot == 1 {
            out.push('.');
        }
        out.push_str(label);
    }
    out
}

/// Loggregator's `sanitize`: runs of white space become `-`, other
/// characters outside `[-a-zA-Z0-9]` (and `.` when `keep_dots`) are
/// dropped, and trailing `-` are trimmed. The result is ASCII.
fn sanitize(name: &str, keep_dots: bool) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_space = false;
    for c in name.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push('-');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if c.is_ascii_alphanumeric() || c == '-' || (keep_dots && c == '.') {
            out.push(c);
        }
    }
    let trimmed = out.trim_end_matches('-').len();
    out.truncate(trimmed);
    out
}

/// White space becomes `-`, anything else outside printable US-ASCII `_`,
/// so the result is ASCII.
fn clean_proc_id_part(text: &str, upper: bool) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_whitespace() => '-',
            '!'..='~' if upper => c.to_ascii_uppercase(),
            '!'..='~' => c,
            _ => '_',
        })
        .collect()
}

/// `[SOURCE_TYPE/INSTANCE]` or `[SOURCE_TYPE]`, at most 128 characters.
fn proc_id(source_type: &str, instance: &str) -> String {
    let mut source_type = clean_proc_id_part(source_type, true);
    if source_type.is_empty() {
        source_type.push('-');
    }
    let mut instance = clean_proc_id_part(instance, false);

    let max = MAX_PROCID - 2;
    if instance.is_empty() {
        source_type.truncate(max);
        return format!("[{source_type}]");
    }
    let max = max - 1;
    if source_type.len() + instance.len() > max {
        instance.truncate(MAX_PROCID_INSTANCE);
    }
    if source_type.len() + instance.len() > max {
        source_type.truncate(max - instance.len());
    }
    format!("[{source_type}/{instance}]")
}

#[cfg(test)]
mod extras_tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn route_extras_go_into_the_message() {
        let extras = SyslogExtras::parse(Some(".db"), Some("[x@1 k=\"v\"]")).unwrap();
        let mut env = Envelope::log(0, "app", "0", Bytes::from_static(b"hi"), LogType::Out);
        env.tags.insert("a".into(), "b".into());
        let mut out = Vec::new();
        format_syslog_with(&env, None, false, &extras, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" app.db "), "{text}");
        assert!(
            text.contains("[x@1 k=\"v\"][tags@47450 a=\"b\"] hi\n"),
            "{text}"
        );
        assert!(SyslogExtras::parse(None, Some("not sd")).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::parse;
    use bytes::Bytes;
    use envelope::v2::{Counter, Message};

    /// 2026-11-21T13:14:58.123456789Z
    const TS: i64 = 1_795_266_898_123_456_789;

    fn app_log(payload: &'static [u8], log_type: LogType) -> Envelope {
        let mut env = Envelope::log(TS, "app-guid", "0", Bytes::from_static(payload), log_type);
        for (k, v) in [
            (SOURCE_TYPE, "APP/PROC/WEB"),
            (APP_NAME, "My App"),
            (SPACE_NAME, "dev"),
            (ORGANIZATION_NAME, "acme"),
        ] {
            env.tags.insert(k.into(), v.into());
        }
        env
    }

    fn format(env: &Envelope, message: Option<&[u8]>, omit: bool) -> String {
        let mut out = Vec::new();
        format_syslog(env, message, omit, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn app_log_as_loggregator_writes_it() {
        let env = app_log(b"Started GET \"/\"\n", LogType::Out);
        assert_eq!(
            format(&env, None, false),
            concat!(
                "<14>1 2026-11-21T13:14:58.123456Z acme.dev.My-App app-guid [APP/PROC/WEB/0] - ",
                r#"[tags@47450 app_name="My App" organization_name="acme" source_type="APP/PROC/WEB" space_name="dev"] "#,
                "Started GET \"/\"\n"
            )
        );
        let env = app_log(b"boom\r\n", LogType::Err);
        assert_eq!(
            format(&env, None, true),
            "<11>1 2026-11-21T13:14:58.123456Z acme.dev.My-App app-guid [APP/PROC/WEB/0] - - boom\n"
        );
    }

    #[test]
    fn custom_message_and_nul_bytes() {
        let env = app_log(b"ignored", LogType::Out);
        let text = format(&env, Some(b"a\0b\0\n\r\n"), true);
        assert!(text.ends_with(" - - ab\n"), "{text:?}");
        let text = format(&env, Some(b""), true);
        assert!(text.ends_with(" - - \n"), "{text:?}");
        let text = format(&env, Some(b"multi\nline\n"), true);
        assert!(text.ends_with(" - - multi\nline\n"), "{text:?}");
    }

    #[test]
    fn hostname_rules() {
        let mut env = app_log(b"x", LogType::Out);
        env.tags
            .insert(ORGANIZATION_NAME.into(), "  café  org--".into());
        env.tags.insert(SPACE_NAME.into(), "a_b.c".into());
        env.tags.insert(APP_NAME.into(), "x".repeat(70));
        assert_eq!(hostname(&env), format!("-caf-org.abc.{}", "x".repeat(63)));

        // Only some parts set: no empty labels (Loggregator would write
        // `..app`).
        env.tags.remove(ORGANIZATION_NAME);
        env.tags.remove(SPACE_NAME);
        env.tags.insert(APP_NAME.into(), "app".into());
        assert_eq!(hostname(&env), "app");
        env.tags.insert(SPACE_NAME.into(), "dev".into());
        assert_eq!(hostname(&env), "dev.app");
        env.tags.insert(ORGANIZATION_NAME.into(), "".into());
        assert_eq!(hostname(&env), "dev.app");
        env.tags.insert(SPACE_NAME.into(), "!!".into());
        env.tags.insert(APP_NAME.into(), "   ".into());
        // Nothing left of them: the host tag, else the source id.
        assert_eq!(hostname(&env), "app-guid");
        for t in [ORGANIZATION_NAME, SPACE_NAME, APP_NAME] {
            env.tags.remove(t);
        }
        assert_eq!(hostname(&env), "app-guid");
        env.tags.insert(HOST.into(), "node 1..example.com.".into());
        assert_eq!(hostname(&env), "node-1.example.com");
        env.tags.insert(
            HOST.into(),
            format!("{}.{}", "a".repeat(200), "b".repeat(100)),
        );
        assert_eq!(hostname(&env), "a".repeat(200));
        env.tags.insert(HOST.into(), "x".repeat(300));
        assert_eq!(hostname(&env).len(), MAX_HOSTNAME);
        env.tags.insert(HOST.into(), "...".into());
        env.source_id = "my.app_1".into();
        assert_eq!(hostname(&env), "my.app1");
        let text = format(&Envelope::event(0, "", "t", ""), None, false);
        assert_eq!(text, "<14>1 1970-01-01T00:00:00.000000Z - - [-] - - t\n");
        let text = format(&Envelope::event(0, "cc", "t", ""), None, false);
        assert_eq!(text, "<14>1 1970-01-01T00:00:00.000000Z cc cc [-] - - t\n");
    }

    #[test]
    fn proc_id_rules() {
        assert_eq!(proc_id("APP/PROC/WEB", "0"), "[APP/PROC/WEB/0]");
        assert_eq!(proc_id("app/task/x y", "ab C"), "[APP/TASK/X-Y/ab-C]");
        assert_eq!(proc_id("rtr", ""), "[RTR]");
        assert_eq!(proc_id("", "1"), "[-/1]");
        assert_eq!(proc_id("", ""), "[-]");
        assert_eq!(proc_id("é", "é"), "[_/_]");
        let long = proc_id(&"t".repeat(200), &"i".repeat(200));
        assert_eq!(long.len(), MAX_PROCID);
        assert!(long.ends_with(&format!("/{}]", "i".repeat(36))));
        assert_eq!(proc_id(&"t".repeat(200), "").len(), MAX_PROCID);
        assert_eq!(
            proc_id("t", &"i".repeat(200)),
            format!("[T/{}]", "i".repeat(36))
        );
    }

    #[test]
    fn non_log_envelopes() {
        let mut env = Envelope::event(TS, "cc", "app.crash", "exit 1");
        env.tags.insert("k".into(), "v]\"\\".into());
        assert_eq!(
            format(&env, None, false),
            "<14>1 2026-11-21T13:14:58.123456Z cc cc [-] - [tags@47450 k=\"v\\]\\\"\\\\\"] app.crash: exit 1\n"
        );
        env.message = Some(Message::Counter(Counter {
            name: "requests".into(),
            delta: 1,
            total: 2,
        }));
        assert!(format(&env, None, true).ends_with(" - - counter requests: delta 1, total 2\n"));
        env.message = None;
        assert!(format(&env, None, true).ends_with(" - - \n"));
    }

    #[test]
    fn round_trips_through_the_parser() {
        let mut env = app_log(b"hello world\n", LogType::Err);
        env.tags.insert("odd key=x".into(), "va\"l]".into());
        let text = format(&env, None, false);
        let parsed = parse(text.as_bytes(), 0);
        assert_eq!(parsed.priority, Some(11));
        assert_eq!(parsed.timestamp, Some(TS / 1000 * 1000));
        assert_eq!(parsed.hostname, Some("acme.dev.My-App"));
        assert_eq!(parsed.app_name, Some("app-guid"));
        assert_eq!(parsed.proc_id, Some("[APP/PROC/WEB/0]"));
        assert_eq!(parsed.msg_id, None);
        assert_eq!(parsed.message, b"hello world");
        let sd = &parsed.structured_data[0];
        assert_eq!(sd.id, TAGS_SD_ID);
        assert_eq!(sd.params[1].0, "odd_key_x");
        assert_eq!(sd.params[1].1, "va\"l]");
    }
}
