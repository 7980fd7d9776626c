//! Writing RFC 5424 messages and RFC 6587 octet-counted frames, for syslog
//! drains and tests.
//!
//! The output is always valid RFC 5424, whatever the inputs: header fields
//! are cut to their maximum lengths and any character outside printable
//! US-ASCII is replaced by `_`; empty fields become the NILVALUE `-`.
//! Timestamps are written in UTC with microseconds (`...58.123456Z`),
//! because TIME-SECFRAC allows at most 6 digits.

use crate::civil::{push_digits, CivilTime};

/// Structured data to write: `(SD-ID, [(PARAM-NAME, PARAM-VALUE)])`.
pub type SdParams<'a> = (&'a str, &'a [(&'a str, &'a str)]);

const MAX_PRI: u8 = 191;

/// Appends one RFC 5424 message (no framing, no trailing newline) to `out`:
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]`.
///
/// `pri` above 191 is written as 191. SD elements with an empty id are left out; names are
/// sanitised like header fields, and values escape `"`, `\` and `]`. The
/// SP before MSG is left out when `msg` is empty.
#[allow(clippy::too_many_arguments)]
pub fn format_rfc5424(
    out: &mut Vec<u8>,
    pri: u8,
    timestamp_ns: i64,
    hostname: &str,
    app_name: &str,
    proc_id: &str,
    msg_id: &str,
    sd: &[SdParams<'_>],
    msg: &[u8],
) {
    push_prefix(out, pri, timestamp_ns);
    push_rest_of_header(out, hostname, app_name, proc_id, msg_id, sd);
    if !msg.is_empty() {
        out.push(b' ');
        out.extend_from_slice(msg);
    }
}

/// Appends `msg` as an RFC 6587 octet-counted frame: `MSG-LEN SP MSG`.
/// MSG-LEN can't be 0, so an empty `msg` appends nothing.
pub fn octet_count_frame(out: &mut Vec<u8>, msg: &[u8]) {
    if msg.is_empty() {
        return;
    }
    push_decimal(out, msg.len() as u64);
    out.push(b' ');
    out.extend_from_slice(msg);
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Writes `<PRI>1 TIMESTAMP`, the part of a header that changes with
/// every message.
pub fn push_prefix(out: &mut Vec<u8>, pri: u8, timestamp_ns: i64) {
    out.push(b'<');
    push_decimal(out, u64::from(pri.min(MAX_PRI)));
    out.extend_from_slice(b">1 ");
    push_timestamp(out, timestamp_ns);
}

/// Writes ` HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA`, the part of a
/// header that follows [`push_prefix`] (callers may cache it per source).
pub fn push_rest_of_header(
    out: &mut Vec<u8>,
    hostname: &str,
    app_name: &str,
    proc_id: &str,
    msg_id: &str,
    sd: &[SdParams<'_>],
) {
    for (field, max_len) in [
        (hostname, 255),
        (app_name, 48),
        (proc_id, 128),
        (msg_id, 32),
    ] {
        out.push(b' ');
        push_header_field(out, field, max_len, |_| true);
    }
    out.push(b' ');
    push_structured_data(out, sd);
}

/// `YYYY-MM-DDThh:mm:ss.uuuuuuZ` (an `i64` of nanoseconds spans years
/// 1677 to 2262, so the year always has 4 digits).
fn push_timestamp(out: &mut Vec<u8>, ns: i64) {
    let t = CivilTime::from_unix_nanos(ns);
    t.push_rfc3339_seconds(out);
    out.push(b'.');
    push_digits(out, u64::from(t.nanosecond / 1000), 6);
    out.push(b'Z');
}

/// Writes `field` cut to `max_len` characters, each one outside printable
/// US-ASCII (or rejected by `allowed`) replaced by `_`; `-` if empty.
fn push_header_field(out: &mut Vec<u8>, field: &str, max_len: usize, allowed: fn(u8) -> bool) {
    if field.is_empty() {
        out.push(b'-');
        return;
    }
    for c in field.chars().take(max_len) {
        let byte = u8::try_from(c).unwrap_or(0);
        let printable = (33..=126).contains(&byte) && allowed(byte);
        out.push(if printable { byte } else { b'_' });
    }
}

fn is_sd_name_byte(byte: u8) -> bool {
    !matches!(byte, b'=' | b']' | b'"')
}

fn push_structured_data(out: &mut Vec<u8>, sd: &[SdParams<'_>]) {
    let mut wrote_any = false;
    for (id, params) in sd.iter().filter(|(id, _)| !id.is_empty()) {
        wrote_any = true;
        out.push(b'[');
        push_header_field(out, id, 32, is_sd_name_byte);
        for (name, value) in params.iter() {
            out.push(b' ');
            push_header_field(out, name, 32, is_sd_name_byte);
            out.extend_from_slice(b"=\"");
            for &byte in value.as_bytes() {
                if matches!(byte, b'"' | b'\\' | b']') {
                    out.push(b'\\');
                }
                out.push(byte);
            }
            out.push(b'"');
        }
        out.push(b']');
    }
    if !wrote_any {
        out.push(b'-');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::parse;

    fn format(pri: u8, ts: i64, fields: [&str; 4], sd: &[SdParams<'_>], msg: &[u8]) -> String {
        let mut out = Vec::new();
        let [host, app, proc_id, msg_id] = fields;
        format_rfc5424(&mut out, pri, ts, host, app, proc_id, msg_id, sd, msg);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_a_typical_message() {
        let sd: &[SdParams<'_>] = &[("tags@47450", &[("source_type", "APP/PROC/WEB")])];
        let text = format(
            14,
            1_795_260_000_123_456_789,
            ["org.space.app", "guid", "[APP/PROC/WEB/0]", ""],
            sd,
            b"Started GET \"/\"",
        );
        assert_eq!(
            text,
            "<14>1 2026-11-21T11:20:00.123456Z org.space.app guid [APP/PROC/WEB/0] - [tags@47450 source_type=\"APP/PROC/WEB\"] Started GET \"/\""
        );
    }

    #[test]
    fn empty_fields_become_nilvalue() {
        assert_eq!(
            format(0, 0, ["", "", "", ""], &[], b""),
            "<0>1 1970-01-01T00:00:00.000000Z - - - - -"
        );
    }

    #[test]
    fn sanitises_and_truncates_header_fields() {
        let long = "x".repeat(60);
        let text = format(250, -1, ["my host", &long, "pé", "id"], &[], b"m");
        assert_eq!(
            text,
            format!(
                "<191>1 1969-12-31T23:59:59.999999Z my_host {} p_ id - m",
                "x".repeat(48)
            )
        );
    }

    #[test]
    fn escapes_sd_values_and_names() {
        let sd: &[SdParams<'_>] = &[("", &[("a", "b")]), ("i d", &[("n=", r#"q"b\s]"#)])];
        let text = format(13, 0, ["h", "a", "p", "m"], sd, b"");
        assert!(text.ends_with(r#" [i_d n_="q\"b\\s\]"]"#), "{text}");
        let parsed = parse(text.as_bytes(), 0);
        assert_eq!(parsed.structured_data[0].params[0].1, r#"q"b\s]"#);
    }

    #[test]
    fn extreme_timestamps() {
        let text = format(13, i64::MIN, ["h", "a", "p", "m"], &[], b"x");
        assert_eq!(text, "<13>1 1677-09-21T00:12:43.145224Z h a p m - x");
        let text = format(13, i64::MAX, ["h", "a", "p", "m"], &[], b"x");
        assert_eq!(text, "<13>1 2262-04-11T23:47:16.854775Z h a p m - x");
    }

    #[test]
    fn octet_counting() {
        let mut out = Vec::new();
        octet_count_frame(&mut out, b"hello");
        octet_count_frame(&mut out, b"");
        octet_count_frame(&mut out, b"x");
        assert_eq!(out, b"5 hello1 x");
    }
}
