//! Parsing one syslog message: RFC 5424, RFC 3164 (BSD), or neither.
//!
//! [`parse`] never fails. It reads a frame as RFC 5424 when it starts with
//! `<PRI>1 `, as RFC 3164 when it starts with any other `<PRI>`, and keeps
//! anything else whole as [`SyslogFormat::Raw`]. Fields borrow from the
//! frame; only structured-data values that contain escapes are copied.
//!
//! It is as lenient as rsyslog where that is harmless: a missing MSG, a
//! missing STRUCTURED-DATA (Heroku's logplex leaves it out: when what
//! follows MSGID is not valid SD, it is all MSG), `]` unescaped in an SD
//! value, an unparsable timestamp (kept as `None`), trailing CR/LF
//! (trimmed, like rsyslog's `DropTrailingLFOnReception`), and the BSD
//! variants senders actually emit (with or without HOSTNAME, RFC 3339
//! timestamps, a bare `<PRI>` before free text).

use std::borrow::Cow;

use crate::timestamp::{parse_bsd, parse_rfc3339, BSD_TIMESTAMP_LEN};

/// Which grammar a message was parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyslogFormat {
    Rfc5424,
    Rfc3164,
    /// Not syslog: the whole frame is the message.
    Raw,
}

/// An RFC 5424 SD-ELEMENT: `[id name="value" ...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement<'a> {
    pub id: &'a str,
    /// PARAM-NAME and PARAM-VALUE, with `\"`, `\\` and `\]` unescaped.
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

/// A parsed syslog message, borrowing from the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogMessage<'a> {
    pub format: SyslogFormat,
    /// The PRI value, 0..=191.
    pub priority: Option<u8>,
    /// Unix nanoseconds; `None` for NILVALUE, absent or unparsable.
    pub timestamp: Option<i64>,
    /// `None` for NILVALUE (`-`) or absent, as are the three below.
    pub hostname: Option<&'a str>,
    /// APP-NAME, or the TAG of an RFC 3164 message.
    pub app_name: Option<&'a str>,
    /// PROCID, or the `[pid]` after an RFC 3164 TAG.
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    pub structured_data: Vec<SdElement<'a>>,
    /// MSG, without a leading UTF-8 BOM or trailing CR/LF; for RFC 3164 the
    /// text after `TAG[pid]: `.
    pub message: &'a [u8],
}

impl SyslogMessage<'_> {
    /// The severity (0 emergency ..= 7 debug), from the PRI.
    pub fn severity(&self) -> Option<u8> {
        self.priority.map(|pri| pri % 8)
    }

    /// The facility (0 kern ..= 23 local7), from the PRI.
    pub fn facility(&self) -> Option<u8> {
        self.priority.map(|pri| pri / 8)
    }
}

const NILVALUE: &[u8] = b"-";
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const MAX_PRI: u8 = 191;
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;
const MAX_SD_NAME: usize = 32;

/// Parses one syslog frame; see the module docs. `now_unix_ns` supplies
/// the year that BSD timestamps leave out.
pub fn parse(frame: &[u8], now_unix_ns: i64) -> SyslogMessage<'_> {
    let frame = trim_trailing_newlines(frame);
    let parsed = parse_pri(frame).and_then(|(priority, rest)| match rest {
        [b'1', b' ', header @ ..] => parse_rfc5424(priority, header),
        _ => Some(parse_rfc3164(priority, rest, now_unix_ns)),
    });
    parsed.unwrap_or_else(|| raw(frame))
}

fn raw(frame: &[u8]) -> SyslogMessage<'_> {
    SyslogMessage {
        format: SyslogFormat::Raw,
        priority: None,
        timestamp: None,
        hostname: None,
        app_name: None,
        proc_id: None,
        msg_id: None,
        structured_data: Vec::new(),
        message: frame,
    }
}

fn trim_trailing_newlines(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    bytes
}

/// `<PRI>` at the start: the value (1 to 3 digits, at most 191) and the rest.
fn parse_pri(frame: &[u8]) -> Option<(u8, &[u8])> {
    let rest = frame.strip_prefix(b"<")?;
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) {
        return None;
    }
    let (number, rest) = rest.split_at(digits);
    let rest = rest.strip_prefix(b">")?;
    let value = number
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let value = u8::try_from(value).ok().filter(|v| *v <= MAX_PRI)?;
    Some((value, rest))
}

/// Splits off the next space-delimited field; the rest starts after the SP
/// (or is empty at the end of input).
fn next_field(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|b| *b == b' ') {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &[]),
    }
}

fn is_print_us_ascii(byte: u8) -> bool {
    (33..=126).contains(&byte)
}

/// A header field of 1..=`max_len` PRINTUSASCII bytes; `Ok(None)` for `-`.
fn header_field(field: &[u8], max_len: usize) -> Result<Option<&str>, ()> {
    if field == NILVALUE {
        return Ok(None);
    }
    if field.is_empty() || field.len() > max_len || !field.iter().all(|b| is_print_us_ascii(*b)) {
        return Err(());
    }
    std::str::from_utf8(field).map(Some).map_err(|_| ())
}

/// `VERSION SP` has been consumed; parses the rest of an RFC 5424 message.
fn parse_rfc5424(priority: u8, header: &[u8]) -> Option<SyslogMessage<'_>> {
    let (timestamp, rest) = next_field(header);
    if timestamp.is_empty() || !timestamp.iter().all(|b| is_print_us_ascii(*b)) {
        return None;
    }
    let (hostname, rest) = next_field(rest);
    let (app_name, rest) = next_field(rest);
    let (proc_id, rest) = next_field(rest);
    let (msg_id, rest) = next_field(rest);
    let (structured_data, message) = parse_structured_data(rest).unwrap_or((Vec::new(), rest));
    Some(SyslogMessage {
        format: SyslogFormat::Rfc5424,
        priority: Some(priority),
        timestamp: parse_rfc3339(timestamp),
        hostname: header_field(hostname, MAX_HOSTNAME).ok()?,
        app_name: header_field(app_name, MAX_APP_NAME).ok()?,
        proc_id: header_field(proc_id, MAX_PROCID).ok()?,
        msg_id: header_field(msg_id, MAX_MSGID).ok()?,
        structured_data,
        message: message.strip_prefix(UTF8_BOM).unwrap_or(message),
    })
}

type SdAndMessage<'a> = (Vec<SdElement<'a>>, &'a [u8]);

/// STRUCTURED-DATA (`-` or one or more SD-ELEMENTs), then `SP MSG` or the
/// end of input.
fn parse_structured_data(bytes: &[u8]) -> Option<SdAndMessage<'_>> {
    let mut elements = Vec::new();
    let mut rest = match bytes.strip_prefix(NILVALUE) {
        Some(rest) => rest,
        None => {
            let mut rest = bytes;
            while let Some(after_bracket) = rest.strip_prefix(b"[") {
                let (element, after) = parse_sd_element(after_bracket)?;
                elements.push(element);
                rest = after;
            }
            if elements.is_empty() {
                return None;
            }
            rest
        }
    };
    if !rest.is_empty() {
        rest = rest.strip_prefix(b" ")?;
    }
    Some((elements, rest))
}

/// An SD-NAME (SD-ID or PARAM-NAME) at the start of `bytes`, and the rest.
fn sd_name(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = bytes
        .iter()
        .take_while(|b| is_print_us_ascii(**b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    if len == 0 || len > MAX_SD_NAME {
        return None;
    }
    let (name, rest) = bytes.split_at(len);
    Some((std::str::from_utf8(name).ok()?, rest))
}

/// The inside of `[...]` after the `[`, and the rest after the `]`.
fn parse_sd_element(bytes: &[u8]) -> Option<(SdElement<'_>, &[u8])> {
    let (id, mut rest) = sd_name(bytes)?;
    let mut params = Vec::new();
    loop {
        match rest {
            [b']', after @ ..] => return Some((SdElement { id, params }, after)),
            [b' ', after @ ..] => {
                let (name, after) = sd_name(after)?;
                let after = after.strip_prefix(b"=\"")?;
                let (value, after) = parse_param_value(after)?;
                params.push((name, value));
                rest = after;
            }
            _ => return None,
        }
    }
}

/// A PARAM-VALUE after its opening quote, unescaped, and the rest after
/// the closing quote. Per RFC 5424 §6.3.3 only `\"`, `\\` and `\]` are
/// escapes; a backslash before anything else is kept.
fn parse_param_value(bytes: &[u8]) -> Option<(Cow<'_, str>, &[u8])> {
    let mut escaped = false;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'"' => break,
            b'\\' if matches!(bytes.get(index + 1), Some(b'"' | b'\\' | b']')) => {
                escaped = true;
                index += 2;
            }
            _ => index += 1,
        }
    }
    let raw = bytes.get(..index)?;
    let rest = bytes.get(index..)?.strip_prefix(b"\"")?;
    let text = std::str::from_utf8(raw).ok()?;
    let value = if escaped {
        Cow::Owned(unescape_param_value(text))
    } else {
        Cow::Borrowed(text)
    };
    Some((value, rest))
}

fn unescape_param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next @ ('"' | '\\' | ']')) = chars.peek() {
                out.push(next);
                chars.next();
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Everything after `<PRI>` of a message that is not RFC 5424.
///
/// Without a BSD or RFC 3339 timestamp the rest is all message. After one,
/// the heuristic is rsyslog's: a first word shaped like a TAG (`name:` or
/// `name[pid]:`) means there is no HOSTNAME (`logger` writing to a local
/// socket); otherwise a first word of hostname characters followed by more
/// text is the HOSTNAME, and a TAG may follow it. Text that does not match
/// stays in the message.
fn parse_rfc3164(priority: u8, rest: &[u8], now_unix_ns: i64) -> SyslogMessage<'_> {
    let mut message = SyslogMessage {
        format: SyslogFormat::Rfc3164,
        priority: Some(priority),
        ..raw(rest)
    };
    let Some((timestamp, after_timestamp)) = bsd_or_rfc3339_timestamp(rest, now_unix_ns) else {
        return message;
    };
    message.timestamp = Some(timestamp);
    message.message = after_timestamp;
    let (first, after_first) = next_field(after_timestamp);
    if let Some((app_name, proc_id, text)) = parse_tag(first, after_first) {
        (message.app_name, message.proc_id, message.message) = (app_name, proc_id, text);
        return message;
    }
    if after_first.is_empty() || !is_hostname(first) {
        return message;
    }
    message.hostname = std::str::from_utf8(first).ok();
    message.message = after_first;
    let (second, after_second) = next_field(after_first);
    if let Some((app_name, proc_id, text)) = parse_tag(second, after_second) {
        (message.app_name, message.proc_id, message.message) = (app_name, proc_id, text);
    }
    message
}

/// A BSD or RFC 3339 timestamp followed by SP, and what follows the SP.
fn bsd_or_rfc3339_timestamp(bytes: &[u8], now_unix_ns: i64) -> Option<(i64, &[u8])> {
    if let Some(timestamp) = parse_bsd(bytes, now_unix_ns) {
        let rest = bytes.get(BSD_TIMESTAMP_LEN..)?;
        return Some((timestamp, rest.strip_prefix(b" ").unwrap_or(rest)));
    }
    let (field, rest) = next_field(bytes);
    Some((parse_rfc3339(field)?, rest))
}

fn is_hostname(field: &[u8]) -> bool {
    field.len() <= MAX_HOSTNAME
        && field
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

type Tag<'a> = (Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A BSD TAG: `name:` or `name[pid]:` as a whole field, returning the
/// name, the pid and the message after it (`rest`).
fn parse_tag<'a>(field: &'a [u8], rest: &'a [u8]) -> Option<Tag<'a>> {
    let tag = field.strip_suffix(b":")?;
    let (name, pid) = match tag.strip_suffix(b"]") {
        Some(with_pid) => {
            let open = with_pid.iter().position(|b| *b == b'[')?;
            (&with_pid[..open], Some(&with_pid[open + 1..]))
        }
        None => (tag, None),
    };
    let valid = |part: &[u8], max: usize| {
        !part.is_empty()
            && part.len() <= max
            && part
                .iter()
                .all(|b| is_print_us_ascii(*b) && !matches!(b, b'[' | b']' | b':'))
    };
    if !valid(name, MAX_APP_NAME) || !pid.is_none_or(|pid| valid(pid, MAX_PROCID)) {
        return None;
    }
    let name = std::str::from_utf8(name).ok()?;
    let pid = pid.map(std::str::from_utf8).transpose().ok()?;
    Some((Some(name), pid, rest))
}

#[cfg(test)]
#[path = "syslog_tests.rs"]
mod tests;
