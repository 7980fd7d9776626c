use super::*;
use crate::timestamp::parse_rfc3339;

/// 2026-11-21T11:20:00Z, shortly after the captured messages were sent.
const NOW: i64 = 1_795_260_000_000_000_000;

fn ts(text: &str) -> Option<i64> {
    let parsed = parse_rfc3339(text.as_bytes());
    assert!(parsed.is_some(), "bad test timestamp {text}");
    parsed
}

#[test]
fn now_constant_is_what_it_says() {
    assert_eq!(Some(NOW), ts("2026-11-21T11:20:00Z"));
}

// Byte strings captured from util-linux 2.38.1 `logger` (see the test
// names for the command line), sent to a socket and recorded verbatim.

#[test]
fn logger_rfc5424_octet_count_tcp() {
    // logger --rfc5424 --octet-count -n 127.0.0.1 -P 9999 --tcp -t web hi
    let wire = &b"91 <13>1 2026-11-21T11:17:00.791474+00:00 vm web - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hi"[..];
    let mut frames: Vec<_> = crate::framing::split_octet_counted(wire.to_vec().into(), 1024)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames.len(), 1);
    let frame = frames.remove(0);
    let msg = parse(&frame.data, NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.priority, Some(13));
    assert_eq!(msg.facility(), Some(1));
    assert_eq!(msg.severity(), Some(5));
    assert_eq!(msg.timestamp, ts("2026-11-21T11:17:00.791474Z"));
    assert_eq!(msg.hostname, Some("vm"));
    assert_eq!(msg.app_name, Some("web"));
    assert_eq!(msg.proc_id, None);
    assert_eq!(msg.msg_id, None);
    assert_eq!(
        msg.structured_data,
        vec![SdElement {
            id: "timeQuality",
            params: vec![
                ("tzKnown", Cow::Borrowed("1")),
                ("isSynced", Cow::Borrowed("0"))
            ],
        }]
    );
    assert_eq!(msg.message, b"hi");
}

#[test]
fn logger_rfc5424_lf_tcp() {
    // logger --rfc5424 -n 127.0.0.1 -P 9999 --tcp -t web hi
    let wire = b"<13>1 2026-11-21T11:17:01.312649+00:00 vm web - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hi\n";
    let msg = parse(wire, NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.app_name, Some("web"));
    assert_eq!(msg.message, b"hi");
}

#[test]
fn logger_default_udp() {
    // logger -n 127.0.0.1 -P 9999 --udp hi there
    let wire = b"<13>1 2026-11-21T11:17:02.347314+00:00 vm root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hi there";
    let msg = parse(wire, NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.hostname, Some("vm"));
    assert_eq!(msg.app_name, Some("root"));
    assert_eq!(msg.message, b"hi there");
}

#[test]
fn logger_rfc5424_without_time_and_quality() {
    // logger --rfc5424=notq,notime -n 127.0.0.1 -P 9999 --udp -t web --id=42 hi
    let msg = parse(b"<13>1 - vm web 42 - - hi", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.timestamp, None);
    assert_eq!(msg.proc_id, Some("42"));
    assert!(msg.structured_data.is_empty());
    assert_eq!(msg.message, b"hi");
}

#[test]
fn logger_rfc5424_with_two_sd_elements() {
    // logger --rfc5424 ... --sd-id zoo@123 --sd-param tiger=\"hungry\" hi
    let wire = b"<13>1 2026-11-21T11:17:03.383279+00:00 vm web - - [timeQuality tzKnown=\"1\" isSynced=\"0\"][zoo@123 tiger=\"hungry\"] hi";
    let msg = parse(wire, NOW);
    assert_eq!(msg.structured_data.len(), 2);
    assert_eq!(msg.structured_data[1].id, "zoo@123");
    assert_eq!(
        msg.structured_data[1].params,
        vec![("tiger", Cow::Borrowed("hungry"))]
    );
}

#[test]
fn logger_rfc3164_tcp() {
    // logger --rfc3164 -n 127.0.0.1 -P 9999 --tcp -t web hi
    let msg = parse(b"<13>Nov 21 11:17:00 vm web: hi\n", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc3164);
    assert_eq!(msg.priority, Some(13));
    assert_eq!(msg.timestamp, ts("2026-11-21T11:17:00Z"));
    assert_eq!(msg.hostname, Some("vm"));
    assert_eq!(msg.app_name, Some("web"));
    assert_eq!(msg.proc_id, None);
    assert_eq!(msg.message, b"hi");
}

#[test]
fn logger_rfc3164_udp_with_pid() {
    // logger --rfc3164 -n 127.0.0.1 -P 9999 --udp -t web -p local0.err --id=42 hi
    let msg = parse(b"<131>Nov 21 11:17:03 vm web[42]: hi", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc3164);
    assert_eq!(msg.facility(), Some(16));
    assert_eq!(msg.severity(), Some(3));
    assert_eq!(msg.hostname, Some("vm"));
    assert_eq!(msg.app_name, Some("web"));
    assert_eq!(msg.proc_id, Some("42"));
    assert_eq!(msg.message, b"hi");
}

#[test]
fn logger_local_socket_has_no_hostname() {
    // logger -u /tmp/logsock -t web hi
    let msg = parse(b"<13>Nov 21 11:17:06 web: hi", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc3164);
    assert_eq!(msg.timestamp, ts("2026-11-21T11:17:06Z"));
    assert_eq!(msg.hostname, None);
    assert_eq!(msg.app_name, Some("web"));
    assert_eq!(msg.message, b"hi");
    // logger -u /tmp/logsock --rfc3164 -t web -i hi
    let msg = parse(b"<13>Nov 21 11:17:06 vm web[6862]: hi", NOW);
    assert_eq!(msg.hostname, Some("vm"));
    assert_eq!(msg.proc_id, Some("6862"));
}

#[test]
fn rfc3164_with_rfc3339_timestamp() {
    let msg = parse(
        b"<30>2026-11-21T11:17:00.5+01:00 host sshd[7]: Accepted",
        NOW,
    );
    assert_eq!(msg.format, SyslogFormat::Rfc3164);
    assert_eq!(msg.timestamp, ts("2026-11-21T10:17:00.5Z"));
    assert_eq!(msg.hostname, Some("host"));
    assert_eq!(msg.app_name, Some("sshd"));
    assert_eq!(msg.proc_id, Some("7"));
    assert_eq!(msg.message, b"Accepted");
}

#[test]
fn rfc3164_without_tag() {
    let msg = parse(b"<13>Nov  1 01:02:03 host some free text", NOW);
    assert_eq!(msg.timestamp, ts("2026-11-01T01:02:03Z"));
    assert_eq!(msg.hostname, Some("host"));
    assert_eq!(msg.app_name, None);
    assert_eq!(msg.message, b"some free text");
}

#[test]
fn rfc3164_december_message_received_in_january() {
    let now = ts("2027-01-01T00:00:02Z").unwrap();
    let msg = parse(b"<13>Dec 31 23:59:59 host app: x", now);
    assert_eq!(msg.timestamp, ts("2026-12-31T23:59:59Z"));
}

#[test]
fn bare_pri_then_text_is_rfc3164_message() {
    let msg = parse(b"<14>just some text: here", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc3164);
    assert_eq!(msg.priority, Some(14));
    assert_eq!(msg.timestamp, None);
    assert_eq!(msg.app_name, None);
    assert_eq!(msg.message, b"just some text: here");
}

#[test]
fn loggregator_style_message() {
    let wire = b"<14>1 2026-11-21T13:14:58.123456+00:00 org.space.app 4b8a9c1e-guid [APP/PROC/WEB/0] - [tags@47450 source_type=\"APP/PROC/WEB\"] Started GET \"/\"";
    let msg = parse(wire, NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.hostname, Some("org.space.app"));
    assert_eq!(msg.app_name, Some("4b8a9c1e-guid"));
    assert_eq!(msg.proc_id, Some("[APP/PROC/WEB/0]"));
    assert_eq!(msg.structured_data[0].id, "tags@47450");
    assert_eq!(msg.message, b"Started GET \"/\"");
}

#[test]
fn logplex_message_keeps_content_and_drops_newline() {
    let wire =
        b"<40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n";
    let msg = parse(wire, NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.proc_id, Some("web.3"));
    assert!(msg.structured_data.is_empty());
    assert_eq!(msg.message, b"State changed from starting to up");
}

#[test]
fn rfc5424_examples_from_the_rfc() {
    let msg = parse(
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
        NOW,
    );
    assert_eq!(msg.msg_id, Some("ID47"));
    assert_eq!(msg.timestamp, ts("2003-10-11T22:14:15.003Z"));
    assert_eq!(msg.message, b"'su root' failed for lonvick on /dev/pts/8");

    let msg = parse(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        NOW,
    );
    assert_eq!(msg.structured_data.len(), 2);
    assert_eq!(msg.structured_data[0].params.len(), 3);
    assert_eq!(msg.message, b"");
}

#[test]
fn sd_values_are_unescaped() {
    let msg = parse(br#"<13>1 - - - - - [a b="q\"s\\e\]t\x" c="\\"] m"#, NOW);
    let params = &msg.structured_data[0].params;
    assert_eq!(params[0].1, r#"q"s\e]t\x"#);
    assert!(matches!(params[0].1, Cow::Owned(_)));
    assert_eq!(params[1].1, r"\");
    assert_eq!(msg.message, b"m");
}

#[test]
fn sd_value_may_hold_utf8_and_spaces() {
    let msg = parse("<13>1 - - - - - [a b=\"héllo wörld\"]".as_bytes(), NOW);
    assert_eq!(msg.structured_data[0].params[0].1, "héllo wörld");
    // RFC 5424 says `]` must be escaped; accept it bare, as rsyslog does.
    let msg = parse("<13>1 - - - - - [a b=\"x]\"]".as_bytes(), NOW);
    assert_eq!(msg.structured_data[0].params[0].1, "x]");
}

#[test]
fn missing_msg_and_missing_sd_are_tolerated() {
    let msg = parse(b"<13>1 - host app - -", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.hostname, Some("host"));
    assert_eq!(msg.message, b"");
    let msg = parse(b"<13>1 - host app - - -", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
}

#[test]
fn invalid_structured_data_is_part_of_the_message() {
    for (wire, message) in [
        (
            &b"<13>1 - host app - - garbage-sd msg"[..],
            &b"garbage-sd msg"[..],
        ),
        (b"<13>1 - host app - - [unterminated", b"[unterminated"),
        (
            b"<13>1 - host app - - [a b=\"\xff\"] m",
            b"[a b=\"\xff\"] m",
        ),
        (b"<13>1 - host app - - [a]no-space", b"[a]no-space"),
        (b"<13>1 - host app - - -no-space", b"-no-space"),
    ] {
        let msg = parse(wire, NOW);
        assert_eq!(msg.format, SyslogFormat::Rfc5424);
        assert!(msg.structured_data.is_empty());
        assert_eq!(msg.message, message);
    }
}

#[test]
fn unparsable_timestamp_is_none_but_still_rfc5424() {
    let msg = parse(b"<13>1 yesterday host app - - - hi", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.timestamp, None);
    assert_eq!(msg.message, b"hi");
}

#[test]
fn invalid_utf8_in_message_is_kept() {
    let msg = parse(b"<13>1 - h a - - - \xff\xfe", NOW);
    assert_eq!(msg.format, SyslogFormat::Rfc5424);
    assert_eq!(msg.message, b"\xff\xfe");
    let msg = parse(b"<13>Nov 21 11:17:06 web: \xc3\x28", NOW);
    assert_eq!(msg.message, b"\xc3\x28");
}

#[test]
fn falls_back_to_raw() {
    for wire in [
        &b"plain text line\r\n"[..],
        b"<192>1 - - - - - -",
        b"<1234>x",
        b"<>x",
        b"<13",
        b"<13>1 - h\xc3\xa9 a - - - non-ascii hostname",
        b"<13>1 - host app",
        b"",
    ] {
        let msg = parse(wire, NOW);
        assert_eq!(
            msg.format,
            SyslogFormat::Raw,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
        assert_eq!(msg.priority, None);
        assert_eq!(msg.message, trim_trailing_newlines(wire));
    }
}

#[test]
fn header_field_length_limits() {
    let long_app = format!("<13>1 - h {} - - -", "a".repeat(49));
    assert_eq!(parse(long_app.as_bytes(), NOW).format, SyslogFormat::Raw);
    let ok_app = format!("<13>1 - h {} - - -", "a".repeat(48));
    assert_eq!(parse(ok_app.as_bytes(), NOW).format, SyslogFormat::Rfc5424);
}

#[test]
fn pri_bounds() {
    assert_eq!(parse(b"<0>x", NOW).priority, Some(0));
    assert_eq!(parse(b"<191>x", NOW).priority, Some(191));
    assert_eq!(parse(b"<007>x", NOW).priority, Some(7));
    assert_eq!(parse(b"<192>x", NOW).format, SyslogFormat::Raw);
}
