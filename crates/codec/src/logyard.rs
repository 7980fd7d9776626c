//! Logyard's drain message fields: the `verbatim` text, the `json` object
//! and the named fields that `{{.field}}` templates ([`crate::template`])
//! read.
//!
//! Stackato's Logyard published every message as JSON and ran drain
//! formats as Go templates over that JSON's keys. Its messages shared
//! `text`, `node_id`, `unix_time`, `human_time` and
//! `syslog: {priority, time}` (`MessageCommon` in hpcloud/logyard-apps
//! `common`); app log messages added `source`, `instance_index`,
//! `app_guid`, `app_name` and `app_space`; systail messages `name` (the
//! component); events `type`, `desc`, `severity`, `info` and `process`.
//! Sluice fills them from an envelope:
//!
//! | field | value |
//! | --- | --- |
//! | `text` | the message text, as [`write_text`] writes it |
//! | `unix_time` | seconds since the epoch (floored) |
//! | `human_time` | `2026-11-21T13:14:58+00:00` (Logyard's "heroku time", Go layout `2006-01-02T15:04:05-07:00`, in UTC) |
//! | `node_id` | the `host` tag |
//! | `syslog.priority` | 11 for ERR logs, 14 otherwise (user.err / user.info) |
//! | `syslog.time` | `Nov 21 13:14:58` (Go's `time.Stamp`: `Jan _2 15:04:05`, day padded with a space) |
//! | `source` | the `source_type` tag (`APP/PROC/WEB`, `RTR`, …), or the source id without one |
//! | `instance_index` | the instance id |
//! | `app_guid` | the source id |
//! | `app_name` | the `app_name` tag |
//! | `app_space` | the `space_name` tag |
//! | `name` | systail logs: the `systail` tag (the log file's name) |
//! | `type` | events: the `event_type` tag, or the title without one |
//! | `desc` | events: the body |
//! | `process` | events: the `process` tag, or the source id without one |
//!
//! `name`, `type`, `desc` and `process` only exist for the streams they
//! belong to; elsewhere the name reads the tag of that name. Any other name
//! reads the tag of that name ([`Field::Tag`]), and a missing value is
//! empty.
//!
//! The JSON form ([`write_json`]) holds these fields under those keys (the
//! first ten always, the last four for their streams), `syslog` nested as
//! Logyard nested it (`"syslog":{"priority":14,"time":"…"}`; the priority
//! is a number, where Logyard wrote a string), `unix_time` a number,
//! `instance_index` a number when the instance id is a plain decimal
//! integer (Logyard's was an int) and a string otherwise, then every tag
//! as a string field in key order, except the tags mapped above (`host`,
//! `source_type`, `app_name`, `space_name`, and `systail` / `event_type`
//! where they became `name` / `type`) and any tag whose name is already a
//! key: a tag never overrides a field.
//!
//! The built-in formats ([`builtin_format`]) are Logyard's default
//! `drainformats` (hpcloud/logyard `etc/logyard.yml`), written with the
//! JSON keys (Logyard's old templates used Go struct names such as
//! `{{.HumanTime}}`; its later JSON used these snake_case keys):
//! `apptail` `{{.human_time}} {{.source}}.{{.instance_index}}: {{.text}}`,
//! `systail` `{{.name}}@{{.node_id}}: {{.text}}`, and
//! `event` `{{.type}}@{{.node_id}}: {{.desc}} -- via {{.process}}`.

use std::io::Write as _;

use envelope::key::{EVENT_TYPE_TAG, SYSTAIL_TAG};
use envelope::tags::{APP_NAME, HOST, SOURCE_TYPE, SPACE_NAME};
use envelope::v2::{Envelope, Message};

use crate::civil::{push_digits, CivilTime, NANOS_PER_SEC};
use crate::loggregator::priority;

/// The built-in format `apptail`: Logyard's app log line.
pub const APPTAIL_FORMAT: &str = "{{.human_time}} {{.source}}.{{.instance_index}}: {{.text}}";
/// The built-in format `systail`: Logyard's system log line.
pub const SYSTAIL_FORMAT: &str = "{{.name}}@{{.node_id}}: {{.text}}";
/// The built-in format `event`: Logyard's cloud event line.
pub const EVENT_FORMAT: &str = "{{.type}}@{{.node_id}}: {{.desc}} -- via {{.process}}";

/// Tag read by [`Field::Process`] for events.
const PROCESS_TAG: &str = "process";

/// The template text of a built-in named format (`apptail`, `systail`,
/// `event`); `None` for any other name.
pub fn builtin_format(name: &str) -> Option<&'static str> {
    match name {
        "apptail" => Some(APPTAIL_FORMAT),
        "systail" => Some(SYSTAIL_FORMAT),
        "event" => Some(EVENT_FORMAT),
        _ => None,
    }
}

/// One of Logyard's message fields, or a tag (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Text,
    UnixTime,
    HumanTime,
    NodeId,
    SyslogPriority,
    SyslogTime,
    Source,
    InstanceIndex,
    AppGuid,
    AppName,
    AppSpace,
    /// systail: the log file's name.
    Name,
    /// events: the event type.
    Type,
    /// events: the body.
    Desc,
    /// events: what emitted it.
    Process,
    /// Any other name: the tag of that name.
    Tag(String),
}

impl Field {
    /// The field a name stands for; unknown names become [`Field::Tag`].
    pub fn parse(name: &str) -> Field {
        match name {
            "text" => Field::Text,
            "unix_time" => Field::UnixTime,
            "human_time" => Field::HumanTime,
            "node_id" => Field::NodeId,
            "syslog.priority" => Field::SyslogPriority,
            "syslog.time" => Field::SyslogTime,
            "source" => Field::Source,
            "instance_index" => Field::InstanceIndex,
            "app_guid" => Field::AppGuid,
            "app_name" => Field::AppName,
            "app_space" => Field::AppSpace,
            "name" => Field::Name,
            "type" => Field::Type,
            "desc" => Field::Desc,
            "process" => Field::Process,
            tag => Field::Tag(tag.to_owned()),
        }
    }

    /// The name [`Field::parse`] reads as this field.
    pub fn name(&self) -> &str {
        match self {
            Field::Text => "text",
            Field::UnixTime => "unix_time",
            Field::HumanTime => "human_time",
            Field::NodeId => "node_id",
            Field::SyslogPriority => "syslog.priority",
            Field::SyslogTime => "syslog.time",
            Field::Source => "source",
            Field::InstanceIndex => "instance_index",
            Field::AppGuid => "app_guid",
            Field::AppName => "app_name",
            Field::AppSpace => "app_space",
            Field::Name => "name",
            Field::Type => "type",
            Field::Desc => "desc",
            Field::Process => "process",
            Field::Tag(name) => name,
        }
    }
}

/// Appends the `verbatim` form of `env`: its message text, without
/// trailing CR/LF. A log is its payload bytes as they are; an event is
/// `title: body` (just `title` when the body is empty); metrics read
/// `counter requests: delta 2, total 40`, `gauge cpu: 12.5 percentage,
/// memory: 1024 bytes` (names sorted) and `timer http: 12.345ms`. An
/// envelope without a message writes nothing.
pub fn write_text(env: &Envelope, out: &mut Vec<u8>) {
    let start = out.len();
    match &env.message {
        None => {}
        Some(Message::Log(log)) => out.extend_from_slice(&log.payload),
        Some(Message::Event(event)) => {
            out.extend_from_slice(event.title.as_bytes());
            if !event.body.is_empty() {
                out.extend_from_slice(b": ");
                out.extend_from_slice(event.body.as_bytes());
            }
        }
        Some(Message::Counter(counter)) => {
            let _ = write!(
                out,
                "counter {}: delta {}, total {}",
                counter.name, counter.delta, counter.total
            );
        }
        Some(Message::Gauge(gauge)) => {
            out.extend_from_slice(b"gauge ");
            for (index, (name, value)) in gauge.metrics.iter().enumerate() {
                let separator = if index > 0 { ", " } else { "" };
                let _ = write!(out, "{separator}{name}: {} {}", value.value, value.unit);
            }
        }
        Some(Message::Timer(timer)) => {
            let millis = timer.stop.saturating_sub(timer.start) as f64 / 1e6;
            let _ = write!(out, "timer {}: {millis:.3}ms", timer.name);
        }
    }
    while out.len() > start && matches!(out.last(), Some(b'\r' | b'\n')) {
        out.pop();
    }
}

/// Appends the value of one field of `env` as text (unquoted; the text of
/// a log is its raw payload bytes). Missing values write nothing.
pub fn write_field(env: &Envelope, field: &Field, out: &mut Vec<u8>) {
    match field {
        Field::Text => write_text(env, out),
        Field::UnixTime => {
            let _ = write!(out, "{}", unix_time(env));
        }
        Field::HumanTime => push_human_time(out, env.timestamp),
        Field::NodeId => push_tag(env, HOST, out),
        Field::SyslogPriority => {
            let _ = write!(out, "{}", priority(env));
        }
        Field::SyslogTime => push_stamp(out, env.timestamp),
        Field::Source => out.extend_from_slice(source(env).as_bytes()),
        Field::InstanceIndex => out.extend_from_slice(env.instance_id.as_bytes()),
        Field::AppGuid => out.extend_from_slice(env.source_id.as_bytes()),
        Field::AppName => push_tag(env, APP_NAME, out),
        Field::AppSpace => push_tag(env, SPACE_NAME, out),
        Field::Name | Field::Type | Field::Desc | Field::Process => {
            if let Some(value) = stream_field(env, field) {
                out.extend_from_slice(value.as_bytes());
            } else {
                push_tag(env, field.name(), out);
            }
        }
        Field::Tag(name) => push_tag(env, name, out),
    }
}

/// Appends `env` as one JSON object with Logyard's keys (see the module
/// docs), without a trailing newline.
pub fn write_json(env: &Envelope, out: &mut Vec<u8>) {
    let mut text = Vec::new();
    write_text(env, &mut text);

    out.extend_from_slice(b"{\"text\":");
    push_json_string(out, &String::from_utf8_lossy(&text));
    let _ = write!(out, ",\"unix_time\":{}", unix_time(env));
    out.extend_from_slice(b",\"human_time\":\"");
    push_human_time(out, env.timestamp);
    out.extend_from_slice(b"\",\"node_id\":");
    push_json_string(out, env.tag(HOST).unwrap_or_default());
    let _ = write!(
        out,
        ",\"syslog\":{{\"priority\":{},\"time\":\"",
        priority(env)
    );
    push_stamp(out, env.timestamp);
    out.extend_from_slice(b"\"},\"source\":");
    push_json_string(out, source(env));
    out.extend_from_slice(b",\"instance_index\":");
    if is_plain_integer(&env.instance_id) {
        out.extend_from_slice(env.instance_id.as_bytes());
    } else {
        push_json_string(out, &env.instance_id);
    }
    out.extend_from_slice(b",\"app_guid\":");
    push_json_string(out, &env.source_id);
    out.extend_from_slice(b",\"app_name\":");
    push_json_string(out, env.tag(APP_NAME).unwrap_or_default());
    out.extend_from_slice(b",\"app_space\":");
    push_json_string(out, env.tag(SPACE_NAME).unwrap_or_default());

    let mut stream_keys: [Option<&str>; 4] = [None; 4];
    for (slot, field) in
        stream_keys
            .iter_mut()
            .zip([Field::Name, Field::Type, Field::Desc, Field::Process])
    {
        if let Some(value) = stream_field(env, &field) {
            out.push(b',');
            push_json_string(out, field.name());
            out.push(b':');
            push_json_string(out, value);
            *slot = Some(match field {
                Field::Name => "name",
                Field::Type => "type",
                Field::Desc => "desc",
                _ => "process",
            });
        }
    }
    let has_name = stream_keys[0].is_some();
    let has_type = stream_keys[1].is_some();

    for (name, value) in &env.tags {
        let mapped = matches!(name.as_str(), HOST | SOURCE_TYPE | APP_NAME | SPACE_NAME)
            || (has_name && name == SYSTAIL_TAG)
            || (has_type && name == EVENT_TYPE_TAG);
        if mapped || is_core_key(name) || stream_keys.contains(&Some(name.as_str())) {
            continue;
        }
        out.push(b',');
        push_json_string(out, name);
        out.push(b':');
        push_json_string(out, value);
    }
    out.push(b'}');
}

/// Keys [`write_json`] always writes.
fn is_core_key(name: &str) -> bool {
    matches!(
        name,
        "text"
            | "unix_time"
            | "human_time"
            | "node_id"
            | "syslog"
            | "source"
            | "instance_index"
            | "app_guid"
            | "app_name"
            | "app_space"
    )
}

/// The value of `name`, `type`, `desc` or `process` when `env` belongs to
/// the stream that has it.
fn stream_field<'a>(env: &'a Envelope, field: &Field) -> Option<&'a str> {
    let event = match &env.message {
        Some(Message::Event(event)) => Some(event),
        _ => None,
    };
    match field {
        Field::Name => env.as_log().and(env.tag(SYSTAIL_TAG)),
        Field::Type => event.map(|e| env.tag(EVENT_TYPE_TAG).unwrap_or(&e.title)),
        Field::Desc => event.map(|e| e.body.as_str()),
        Field::Process => event.map(|_| env.tag(PROCESS_TAG).unwrap_or(&env.source_id)),
        _ => None,
    }
}

fn push_tag(env: &Envelope, name: &str, out: &mut Vec<u8>) {
    if let Some(value) = env.tag(name) {
        out.extend_from_slice(value.as_bytes());
    }
}

fn push_json_string(out: &mut Vec<u8>, value: &str) {
    // Writing to a Vec cannot fail, and a str always serialises.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// `0`, or digits without a leading zero that fit a u64.
fn is_plain_integer(text: &str) -> bool {
    text == "0"
        || (!text.starts_with('0')
            && !text.is_empty()
            && text.len() <= 19
            && text.bytes().all(|b| b.is_ascii_digit()))
}

fn unix_time(env: &Envelope) -> i64 {
    env.timestamp.div_euclid(NANOS_PER_SEC)
}

fn source(env: &Envelope) -> &str {
    env.tag(SOURCE_TYPE).unwrap_or(&env.source_id)
}

/// `2026-11-21T13:14:58+00:00`.
fn push_human_time(out: &mut Vec<u8>, ns: i64) {
    CivilTime::from_unix_nanos(ns).push_rfc3339_seconds(out);
    out.extend_from_slice(b"+00:00");
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Nov  1 13:14:58`: Go's `time.Stamp`.
fn push_stamp(out: &mut Vec<u8>, ns: i64) {
    let t = CivilTime::from_unix_nanos(ns);
    let month = MONTHS
        .get(t.month.saturating_sub(1) as usize)
        .map_or(&b"???"[..], |m| &m[..]);
    out.extend_from_slice(month);
    out.push(b' ');
    if t.day < 10 {
        out.push(b' ');
        push_digits(out, u64::from(t.day), 1);
    } else {
        push_digits(out, u64::from(t.day), 2);
    }
    out.push(b' ');
    t.push_clock(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::tags::ORGANIZATION_NAME;
    use envelope::v2::{Counter, Gauge, GaugeValue, Timer};
    use envelope::LogType;

    /// 2026-11-21T13:14:58.0099Z
    const TS: i64 = 1_795_266_898_009_900_000;

    fn app_log(payload: &'static [u8], log_type: LogType) -> Envelope {
        let mut env = Envelope::log(TS, "app-guid", "0", Bytes::from_static(payload), log_type);
        for (k, v) in [
            (SOURCE_TYPE, "APP/PROC/WEB"),
            (APP_NAME, "my app"),
            (SPACE_NAME, "dev"),
            (ORGANIZATION_NAME, "acme"),
            (HOST, "10.0.0.5"),
        ] {
            env.tags.insert(k.into(), v.into());
        }
        env
    }

    fn text(env: &Envelope) -> Vec<u8> {
        let mut out = Vec::new();
        write_text(env, &mut out);
        out
    }

    fn json(env: &Envelope) -> String {
        let mut out = Vec::new();
        write_json(env, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn field(env: &Envelope, name: &str) -> String {
        let mut out = Vec::new();
        write_field(env, &Field::parse(name), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_of_logs_is_raw_and_trimmed() {
        let env = app_log(b"bad \xff byte\r\n\n", LogType::Out);
        assert_eq!(text(&env), b"bad \xff byte");
        let env = app_log(b"\n", LogType::Out);
        assert_eq!(text(&env), b"");
    }

    #[test]
    fn text_appends_and_only_trims_its_own_output() {
        let env = app_log(b"x\n", LogType::Out);
        let mut out = b"keep\n".to_vec();
        write_text(&env, &mut out);
        assert_eq!(out, b"keep\nx");
        let mut out = b"keep\n".to_vec();
        write_text(&app_log(b"\r\n", LogType::Out), &mut out);
        assert_eq!(out, b"keep\n");
    }

    #[test]
    fn text_of_other_kinds() {
        let mut env = Envelope::event(TS, "guid", "app.crash", "exit status 1");
        assert_eq!(text(&env), b"app.crash: exit status 1");
        env.message = Some(Message::Event(envelope::v2::Event {
            title: "started".into(),
            body: String::new(),
        }));
        assert_eq!(text(&env), b"started");
        env.message = Some(Message::Counter(Counter {
            name: "requests".into(),
            delta: 2,
            total: 40,
        }));
        assert_eq!(text(&env), b"counter requests: delta 2, total 40");
        env.message = Some(Message::Gauge(Gauge {
            metrics: [
                (
                    "memory".to_string(),
                    GaugeValue {
                        unit: "bytes".into(),
                        value: 1024.0,
                    },
                ),
                (
                    "cpu".to_string(),
                    GaugeValue {
                        unit: "percentage".into(),
                        value: 12.5,
                    },
                ),
            ]
            .into(),
        }));
        assert_eq!(
            text(&env),
            b"gauge cpu: 12.5 percentage, memory: 1024 bytes"
        );
        env.message = Some(Message::Timer(Timer {
            name: "http".into(),
            start: 1_000,
            stop: 12_346_000,
        }));
        assert_eq!(text(&env), b"timer http: 12.345ms");
        env.message = None;
        assert_eq!(text(&env), b"");
    }

    #[test]
    fn json_of_an_app_log() {
        let mut env = app_log(b"Started GET \"/\"\n", LogType::Err);
        env.tags.insert("zone".into(), "z1".into());
        assert_eq!(
            json(&env),
            concat!(
                r#"{"text":"Started GET \"/\"","unix_time":1795266898,"#,
                r#""human_time":"2026-11-21T13:14:58+00:00","node_id":"10.0.0.5","#,
                r#""syslog":{"priority":11,"time":"Nov 21 13:14:58"},"#,
                r#""source":"APP/PROC/WEB","instance_index":0,"app_guid":"app-guid","#,
                r#""app_name":"my app","app_space":"dev","organization_name":"acme","zone":"z1"}"#
            )
        );
        let value: serde_json::Value = serde_json::from_str(&json(&env)).unwrap();
        assert_eq!(value["syslog"]["priority"], 11);
    }

    #[test]
    fn json_without_tags_and_odd_values() {
        let env = Envelope::log(
            -1,
            "g\"uid",
            "web-1",
            Bytes::from_static(b"\xff\x00\t"),
            LogType::Out,
        );
        assert_eq!(
            json(&env),
            concat!(
                "{\"text\":\"\u{FFFD}\\u0000\\t\",\"unix_time\":-1,",
                r#""human_time":"1969-12-31T23:59:59+00:00","node_id":"","#,
                r#""syslog":{"priority":14,"time":"Dec 31 23:59:59"},"#,
                r#""source":"g\"uid","instance_index":"web-1","app_guid":"g\"uid","#,
                r#""app_name":"","app_space":""}"#
            )
        );
    }

    #[test]
    fn json_tags_never_override_fields() {
        let mut env = app_log(b"hi", LogType::Out);
        for key in ["text", "syslog", "unix_time", "name", "a\"b"] {
            env.tags.insert(key.into(), "tag".into());
        }
        let out = json(&env);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["text"], "hi");
        assert_eq!(value["unix_time"], 1_795_266_898);
        assert_eq!(value["syslog"]["time"], "Nov 21 13:14:58");
        // `name` is not a field of app logs, so the tag shows.
        assert_eq!(value["name"], "tag");
        assert_eq!(value["a\"b"], "tag");
        assert_eq!(out.matches("\"text\"").count(), 1);
    }

    #[test]
    fn json_of_systail_and_events() {
        let mut env = Envelope::log(TS, "", "", Bytes::from_static(b"up"), LogType::Out);
        env.tags.insert(SYSTAIL_TAG.into(), "kato".into());
        env.tags.insert(HOST.into(), "node1".into());
        env.tags.insert("name".into(), "shadowed".into());
        let value: serde_json::Value = serde_json::from_str(&json(&env)).unwrap();
        assert_eq!(value["name"], "kato");
        assert!(value.get("systail").is_none());
        assert_eq!(value["instance_index"], "");

        let mut env = Envelope::event(TS, "cc", "Process crashed", "exit 1");
        env.tags.insert(EVENT_TYPE_TAG.into(), "app_crash".into());
        let out = json(&env);
        assert!(
            out.ends_with(r#""app_space":"","type":"app_crash","desc":"exit 1","process":"cc"}"#),
            "{out}"
        );
    }

    #[test]
    fn fields_match_json_values() {
        let env = app_log(b"hello\n", LogType::Err);
        assert_eq!(field(&env, "text"), "hello");
        assert_eq!(field(&env, "unix_time"), "1795266898");
        assert_eq!(field(&env, "human_time"), "2026-11-21T13:14:58+00:00");
        assert_eq!(field(&env, "node_id"), "10.0.0.5");
        assert_eq!(field(&env, "syslog.priority"), "11");
        assert_eq!(field(&env, "syslog.time"), "Nov 21 13:14:58");
        assert_eq!(field(&env, "source"), "APP/PROC/WEB");
        assert_eq!(field(&env, "instance_index"), "0");
        assert_eq!(field(&env, "app_guid"), "app-guid");
        assert_eq!(field(&env, "app_name"), "my app");
        assert_eq!(field(&env, "app_space"), "dev");
        assert_eq!(field(&env, "organization_name"), "acme");
        assert_eq!(field(&env, "missing"), "");
        assert_eq!(field(&env, "name"), "");
        assert_eq!(field(&env, "type"), "");
    }

    #[test]
    fn event_fields() {
        let mut env = Envelope::event(TS, "cc", "Process crashed", "exit 1");
        env.tags.insert(HOST.into(), "node1".into());
        assert_eq!(field(&env, "type"), "Process crashed");
        assert_eq!(field(&env, "desc"), "exit 1");
        assert_eq!(field(&env, "process"), "cc");
        env.tags.insert(PROCESS_TAG.into(), "kato".into());
        assert_eq!(field(&env, "process"), "kato");
    }

    #[test]
    fn syslog_time_pads_the_day_with_a_space() {
        let mut out = Vec::new();
        push_stamp(&mut out, 1_771_935_000 * NANOS_PER_SEC); // 2026-02-24
        out.push(b'|');
        push_stamp(&mut out, 1_770_000_000 * NANOS_PER_SEC); // 2026-02-02T02:40:00Z
        assert_eq!(out, b"Feb 24 12:10:00|Feb  2 02:40:00");
    }

    #[test]
    fn field_names_round_trip() {
        for name in [
            "text",
            "unix_time",
            "human_time",
            "node_id",
            "syslog.priority",
            "syslog.time",
            "source",
            "instance_index",
            "app_guid",
            "app_name",
            "app_space",
            "name",
            "type",
            "desc",
            "process",
            "anything-else",
        ] {
            assert_eq!(Field::parse(name).name(), name);
        }
        assert_eq!(Field::parse("zone"), Field::Tag("zone".into()));
    }

    #[test]
    fn builtin_formats() {
        assert_eq!(builtin_format("apptail"), Some(APPTAIL_FORMAT));
        assert_eq!(builtin_format("systail"), Some(SYSTAIL_FORMAT));
        assert_eq!(builtin_format("event"), Some(EVENT_FORMAT));
        assert_eq!(builtin_format("json"), None);
    }

    #[test]
    fn plain_integers() {
        assert!(is_plain_integer("0"));
        assert!(is_plain_integer("12"));
        assert!(!is_plain_integer("012"));
        assert!(!is_plain_integer(""));
        assert!(!is_plain_integer("1a"));
        assert!(!is_plain_integer("99999999999999999999"));
    }
}
