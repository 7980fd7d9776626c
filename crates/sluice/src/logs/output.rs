//! Printing entries: the `cf logs` line format, or the raw NDJSON with
//! `--json`. `ERR` lines are red when stdout is a terminal.
//!
//! Like `cf logs`, the line format shows log envelopes only: lifecycle
//! events are also sent as `[API/…]` log lines, so printing the Event
//! envelopes too would show each twice. `--json` prints every envelope.

use std::io::{self, BufWriter, Stdout, Write as _};

use envelope::{Envelope, LogType};

const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

pub struct Printer {
    out: BufWriter<Stdout>,
    json: bool,
    color: bool,
    line: String,
}

impl Printer {
    pub fn new(json: bool, color: bool) -> Self {
        Printer {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            json,
            color,
            line: String::new(),
        }
    }

    /// Prints one entry; `raw` is its JSON line as received.
    pub fn entry(&mut self, raw: &[u8], env: &Envelope) -> io::Result<()> {
        if self.json {
            self.out.write_all(raw)?;
            return self.out.write_all(b"\n");
        }
        if env.as_log().is_none() {
            return Ok(());
        }
        render(&mut self.line, env, self.color);
        self.out.write_all(self.line.as_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The `cf logs` rendering of `env` into `line`, newline-terminated.
fn render(line: &mut String, env: &Envelope, color: bool) {
    line.clear();
    let red = color && env.log_type() == Some(LogType::Err);
    if red {
        line.push_str(RED);
    }
    codec::cf::cf_log_line(line, env);
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
        render(&mut line, &env(LogType::Out), true);
        assert_eq!(
            line,
            "   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT hi\n"
        );
    }

    #[test]
    fn err_is_red_only_with_color() {
        let mut line = String::new();
        render(&mut line, &env(LogType::Err), true);
        assert_eq!(
            line,
            "\x1b[31m   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR hi\x1b[0m\n"
        );
        render(&mut line, &env(LogType::Err), false);
        assert!(!line.contains('\x1b'));
    }
}
