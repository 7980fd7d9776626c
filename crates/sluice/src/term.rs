//! What the client commands print, and how.
//!
//! - Text that came from the network (log payloads, tags, drain errors) may
//!   hold terminal escape sequences. When it goes to a terminal, control
//!   characters other than tab (C0, DEL, and the C1 range U+0080–U+009F) are
//!   shown escaped, `\x1b`, so a log line cannot move the cursor, retitle the
//!   window or worse ([`escape_controls`]; JSON gets `\u001b` instead, which
//!   keeps it valid JSON: [`escape_controls_json`]).
//! - A closed stdout (`sluice drain list | head -1`) ends a client command
//!   quietly with exit 0: writes go through [`Stdout`], which turns
//!   `BrokenPipe` into [`StdoutClosed`], and `main` exits quietly on that.
//!   SIGPIPE stays ignored (Rust's default) in every command, so `sluice
//!   server` and `sluice run` keep running when a pipe they write to closes.
//! - Notes to stderr go through [`say!`](crate::say), which never panics
//!   (`eprintln!` does when stderr is closed).

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal as _, Write as _};

/// Writes a line to stderr, ignoring errors (a closed stderr must not
/// panic a client, nor kill `sluice run`'s shipper).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::term::say(format_args!($($arg)*))
    };
}

/// See [`say!`](crate::say).
pub fn say(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args);
    let _ = err.write_all(b"\n");
}

/// Whether `c` is shown escaped on a terminal: C0 controls but tab, DEL and
/// the C1 controls.
pub fn is_control(c: char) -> bool {
    c != '\t' && (c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c))
}

/// `text` with every [control](is_control) shown as `\xNN` (ESC → `\x1b`,
/// U+009B → `\x9b`). Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_with(text, |out, c| {
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    })
}

/// Like [`escape_controls`], but as JSON escapes (`\u001b`), so a JSON line
/// stays valid JSON with the same meaning (controls are only valid inside
/// strings, where `\u00NN` means the same character).
pub fn escape_controls_json(text: &str) -> Cow<'_, str> {
    escape_with(text, |out, c| {
        let _ = write!(out, "\\u{:04x}", u32::from(c));
    })
}

fn escape_with(text: &str, escape: impl Fn(&mut String, char)) -> Cow<'_, str> {
    let Some(first) = text.find(is_control) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if is_control(c) {
            escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Stdout was closed by its reader: the command ends quietly with 0.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// A write error on stdout as the command's error: `StdoutClosed` for a
/// closed pipe, else the error with context.
pub fn stdout_error(err: io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(err).context("cannot write to stdout")
    }
}

/// Whether `err` (or any cause) is [`StdoutClosed`].
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<StdoutClosed>())
}

/// Stdout for lines of text that may hold remote content: escaped on a
/// terminal, and a closed pipe reported as [`StdoutClosed`].
pub struct Stdout {
    escape: bool,
}

impl Stdout {
    /// Escapes when stdout is a terminal.
    pub fn new() -> Self {
        Stdout {
            escape: io::stdout().is_terminal(),
        }
    }

    /// Prints `text` and a newline.
    pub fn line(&mut self, text: &str) -> anyhow::Result<()> {
        let text = if self.escape {
            escape_controls(text)
        } else {
            Cow::Borrowed(text)
        };
        self.write(&text)
    }

    /// Prints JSON `text` and a newline.
    pub fn json_line(&mut self, text: &str) -> anyhow::Result<()> {
        let text = if self.escape {
            escape_controls_json(text)
        } else {
            Cow::Borrowed(text)
        };
        self.write(&text)
    }

    fn write(&mut self, text: &str) -> anyhow::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(stdout_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_but_tab() {
        assert_eq!(escape_controls("plain text é ✓"), "plain text é ✓");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\tb"), "a\tb");
        assert_eq!(
            escape_controls("\x1b[2J\x1b]0;pwned\x07x"),
            "\\x1b[2J\\x1b]0;pwned\\x07x"
        );
        assert_eq!(escape_controls("\0\r\n\x7f"), "\\x00\\x0d\\x0a\\x7f");
        // C1: U+0080..=U+009F (U+009B is a one-character CSI); U+00A0 is not.
        assert_eq!(
            escape_controls("\u{80}\u{9b}31m\u{9f}\u{a0}"),
            "\\x80\\x9b31m\\x9f\u{a0}"
        );
    }

    #[test]
    fn json_escapes_keep_json_valid() {
        let line = "{\"payload\":\"a\u{7f}b\u{9b}c\x1bd\"}";
        let escaped = escape_controls_json(line);
        assert_eq!(escaped, "{\"payload\":\"a\\u007fb\\u009bc\\u001bd\"}");
        let v: serde_json::Value = serde_json::from_str(&escaped).expect("valid JSON");
        assert_eq!(v["payload"], "a\u{7f}b\u{9b}c\x1bd");
        assert_eq!(escape_controls_json("{\"a\":\"\t\"}"), "{\"a\":\"\t\"}");
    }

    #[test]
    fn broken_pipes_are_told_apart() {
        let closed = stdout_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_stdout_closed(&closed));
        assert!(is_stdout_closed(&closed.context("listing drains")));
        let other = stdout_error(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_stdout_closed(&other));
        // A broken pipe elsewhere (a socket) is not a closed stdout.
        let socket = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_stdout_closed(&socket));
    }
}
