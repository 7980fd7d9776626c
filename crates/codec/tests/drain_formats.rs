//! Property tests for the drain formats: templates parse and render any
//! input without panicking, and Loggregator-style syslog messages parse
//! back to what went in.

use std::collections::BTreeMap;

use bytes::Bytes;
use envelope::tags::{APP_NAME, ORGANIZATION_NAME, SOURCE_TYPE, SPACE_NAME};
use envelope::v2::Envelope;
use envelope::LogType;
use proptest::prelude::*;
use sluice_codec::loggregator::{format_syslog, TAGS_SD_ID};
use sluice_codec::logyard::{write_json, write_text};
use sluice_codec::syslog::{parse, SyslogFormat};
use sluice_codec::template::{Template, MAX_TEMPLATE_ACTIONS, MAX_TEMPLATE_LEN};

fn fixed_envelope() -> Envelope {
    let mut env = Envelope::log(
        1_795_266_898_123_456_789,
        "guid",
        "0",
        Bytes::from_static(b"hello\n"),
        LogType::Out,
    );
    env.tags.insert(SOURCE_TYPE.into(), "APP/PROC/WEB".into());
    env.tags.insert("zone".into(), "z1".into());
    env
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<i64>(),
        prop_oneof!["[ -~]{0,60}", any::<String>()],
        "\\PC{0,8}",
        proptest::collection::btree_map("[a-zA-Z0-9_.=\" \\]-]{0,40}", any::<String>(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
    )
        .prop_map(|(ts, source_id, instance, tags, payload, err)| {
            let log_type = if err { LogType::Err } else { LogType::Out };
            let mut env = Envelope::log(ts, source_id, instance, Bytes::from(payload), log_type);
            env.tags = tags;
            env
        })
}

/// The message text `format_syslog` writes: NULs removed, trailing CR/LF
/// trimmed (and what the parser drops: a leading BOM).
fn expected_message(payload: &[u8]) -> Vec<u8> {
    let mut msg: Vec<u8> = payload.iter().copied().filter(|b| *b != 0).collect();
    while matches!(msg.last(), Some(b'\r' | b'\n')) {
        msg.pop();
    }
    match msg.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => msg,
    }
}

/// RFC 5424 header sanitising: printable US-ASCII kept, others `_`, cut.
fn header(text: &str, max: usize, allowed: fn(char) -> bool) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            if ('!'..='~').contains(&c) && allowed(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn template_parse_never_panics(src in any::<String>()) {
        if let Ok(template) = Template::parse(&src) {
            let mut out = Vec::new();
            template.render(&fixed_envelope(), &mut out);
        }
    }

    #[test]
    fn template_parse_never_panics_on_template_like_input(
        src in "([{}. |a-z_-]|\\{\\{|\\}\\}|\\{\\{ ?\\.[a-z_.-]{0,12} ?\\}\\}){0,80}",
        env in envelope(),
    ) {
        match Template::parse(&src) {
            Ok(template) => {
                let mut out = Vec::new();
                template.render(&env, &mut out);
                if !src.contains("{{") {
                    prop_assert_eq!(out, src.as_bytes());
                }
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn templates_within_limits_compile(names in proptest::collection::vec("[a-z_.-]{1,12}", 0..MAX_TEMPLATE_ACTIONS)) {
        let src: String = names.iter().map(|n| format!("{{{{.{n}}}}} ")).collect();
        prop_assume!(src.len() <= MAX_TEMPLATE_LEN);
        let template = Template::parse(&src);
        prop_assert!(template.is_ok(), "{:?}", template);
    }

    #[test]
    fn text_and_json_never_panic(env in envelope()) {
        let mut text = Vec::new();
        write_text(&env, &mut text);
        prop_assert!(!matches!(text.last(), Some(b'\r' | b'\n')));
        let mut json = Vec::new();
        write_json(&env, &mut json);
        let value: serde_json::Value = serde_json::from_slice(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(value["app_guid"].as_str(), Some(env.source_id.as_str()));
        for (name, tag) in &env.tags {
            prop_assert!(value.get(name).is_some(), "tag {} missing", name);
            let _ = tag;
        }
    }

    #[test]
    fn syslog_format_then_parse_round_trips(
        mut env in envelope(),
        names in proptest::option::of(("\\PC{0,20}", "\\PC{0,20}", "\\PC{0,20}")),
        omit in any::<bool>(),
        custom in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
    ) {
        if let Some((org, space, app)) = names {
            env.tags.insert(ORGANIZATION_NAME.into(), org);
            env.tags.insert(SPACE_NAME.into(), space);
            env.tags.insert(APP_NAME.into(), app);
        }
        let mut out = Vec::new();
        format_syslog(&env, custom.as_deref(), omit, &mut out);
        prop_assert_eq!(out.last(), Some(&b'\n'));
        prop_assert_eq!(out.iter().filter(|b| **b == 0).count(), 0);

        let parsed = parse(&out, 0);
        prop_assert_eq!(parsed.format, SyslogFormat::Rfc5424);
        prop_assert_eq!(parsed.priority, Some(if env.log_type() == Some(LogType::Err) { 11 } else { 14 }));
        prop_assert_eq!(parsed.timestamp, Some(env.timestamp - env.timestamp.rem_euclid(1000)));

        if let Some(hostname) = parsed.hostname {
            prop_assert!(hostname.len() <= 255);
            prop_assert!(hostname.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'), "{}", hostname);
            // Never an empty label (Loggregator would write `..app`).
            prop_assert!(!hostname.starts_with('.') && !hostname.ends_with('.') && !hostname.contains(".."), "{}", hostname);
        }
        let app_name = header(&env.source_id, 48, |_| true);
        // An empty APP-NAME is written as NILVALUE, and a source id that is
        // literally "-" cannot be told from it.
        let expected = (!app_name.is_empty() && app_name != "-").then_some(app_name.as_str());
        prop_assert_eq!(parsed.app_name, expected);
        let proc_id = parsed.proc_id.unwrap_or_default();
        prop_assert!(proc_id.starts_with('[') && proc_id.ends_with(']') && proc_id.len() <= 128, "{}", proc_id);
        prop_assert_eq!(parsed.msg_id, None);

        let tags: &BTreeMap<String, String> = &env.tags;
        if omit || tags.is_empty() {
            prop_assert!(parsed.structured_data.is_empty());
        } else {
            prop_assert_eq!(parsed.structured_data.len(), 1);
            let element = &parsed.structured_data[0];
            prop_assert_eq!(element.id, TAGS_SD_ID);
            let got: Vec<(String, String)> = element.params.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            let want: Vec<(String, String)> = tags
                .iter()
                .map(|(k, v)| {
                    let name = header(k, 32, |c| !matches!(c, '=' | ']' | '"'));
                    (if name.is_empty() { "-".to_string() } else { name }, v.clone())
                })
                .collect();
            prop_assert_eq!(got, want);
        }

        let source = match &custom {
            Some(custom) => custom.clone(),
            None => env.as_log().map(|l| l.payload.to_vec()).unwrap_or_default(),
        };
        prop_assert_eq!(parsed.message, &expected_message(&source)[..]);
    }
}
