//! Printing entries: the `cf logs` line format, or the raw NDJSON with
//! `--json`. On a terminal, `ERR` lines are red and control characters from
//! the entries are shown escaped ([`crate::term`]) unless `--raw`.
//!
//! Like `cf logs`, the line format shows log envelopes only: lifecycle
//! events are also sent as `[API/…]` log lines, so printing the Event
//! envelopes too would show each twice. `--json` prints every envelope.

use std::io::{self, BufWriter, Stdout, Write as _};

use envelope::{Envelope, LogType};

use crate::term::{escape_controls, escape_controls_json};

const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

pub struct Printer {
    out: BufWriter<Stdout>,
    json: bool,
    color: bool,
    escape: bool,
    line: String,
}

impl Printer {
    /// `color`: `ERR` lines red; `escape`: control characters shown escaped.
    pub fn new(json: bool, color: bool, escape: bool) -> Self {
        Printer {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            json,
            color,
            escape,
            line: String::new(),
        }
    }

    /// Prints one entry; `raw` is its JSON line as received.
    pub fn entry(&mut self, raw: &[u8], env: &Envelope) -> io::Result<()> {
        if self.json {
            if self.escape {
                let text = String::from_utf8_lossy(raw);
                self.out.write_all(escape_controls_json(&text).as_bytes())?;
            } else {
                self.out.write_all(raw)?;
            }
            return self.out.write_all(b"\n");
        }
        if env.as_log().is_none() {
            return Ok(());
        }
        render(&mut self.line, env, self.color, self.escape);
        self.out.write_all(self.line.as_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The `cf logs` rendering of `env` into `line`, newline-terminated. With
/// `escape`, control characters in it are shown escaped (a payload's own
/// newlines are already separate lines, each with the header, as `cf logs`
/// shows them).
fn render(line: &mut String, env: &Envelope, color: bool, escape: bool) {
    line.clear();
    let red = color && env.log_type() == Some(LogType::Err);
    if red {
        line.push_str(RED);
    }
    if escape {
        let mut text = String::new();
        codec::cf::cf_log_line(&mut text, env);
        for (index, piece) in text.split('\n').enumerate() {
            if index > 0 {
                line.push('\n');
            }
            line.push_str(&escape_controls(piece));
        }
    } else {
        codec::cf::cf_log_line(line, env);
    }
    if red {
        line.push_str(RESET);
    }
    line.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const TS: i64 = 1_795_266_898_009_900_000;

    fn env(kind: LogType) -> Envelope {
        let mut e = Envelope::log(TS, "web", "0", Bytes::from_static(b"hi"), kind);
        e.tags.insert("source_type".into(), "APP/PROC/WEB".into());
        e
    }

    #[test]
    fn cf_format() {
        let mut line = String::new();
        render(&mut line, &env(LogType::Out), true, true);
        assert_eq!(
            line,
            "   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT hi\n"
        );
    }

    #[test]
    fn err_is_red_only_with_color() {
        let mut line = String::new();
        render(&mut line, &env(LogType::Err), true, true);
        assert_eq!(
            line,
            "\x1b[31m   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR hi\x1b[0m\n"
        );
        render(&mut line, &env(LogType::Err), false, false);
        assert!(!line.contains('\x1b'));
    }

    fn payload(text: &str, kind: LogType) -> Envelope {
        let payload = Bytes::copy_from_slice(text.as_bytes());
        let mut e = Envelope::log(TS, "web", "0", payload, kind);
        e.tags.insert("source_type".into(), "APP/PROC/WEB".into());
        e
    }

    #[test]
    fn controls_are_escaped_unless_raw() {
        let hostile = payload("a\x1b]0;pwned\x07b\u{9b}2Jc\rd\te", LogType::Out);
        let mut line = String::new();
        render(&mut line, &hostile, true, true);
        assert_eq!(
            line,
            "   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT a\\x1b]0;pwned\\x07b\\x9b2Jc\\x0dd\te\n"
        );
        render(&mut line, &hostile, true, false);
        assert!(
            line.contains("a\x1b]0;pwned\x07b\u{9b}2Jc\rd\te"),
            "{line:?}"
        );
        // Multi-line payloads stay separate lines; our own color stays.
        render(
            &mut line,
            &payload("one\ntwo\x1b", LogType::Err),
            true,
            true,
        );
        assert_eq!(
            line,
            "\x1b[31m   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR one\n   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR two\\x1b\x1b[0m\n"
        );
    }
}
