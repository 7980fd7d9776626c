//! Rendering entries as lines: `cf logs`' format (the default), Heroku's
//! (`--output heroku`), or the raw NDJSON (`--json`).
//!
//! - cf: `   2026-11-21T14:14:58.00+0100 [APP/PROC/WEB/0] OUT Started`;
//! - heroku: `2026-11-21T14:14:58.009900+01:00 app[web.0]: Started`;
//! - times in the local zone unless `--utc` ([`crate::zone`]);
//! - when the view can hold more than one app, each line names its app
//!   (the `app_name` tag, else the source id) before the source:
//!   `   2026-… alpha [APP/PROC/WEB/0] OUT …`, names padded to a common
//!   width as they come; on a terminal each name has a colour of its own,
//!   the same for the same name in every run;
//! - on a terminal `ERR` lines are red and control characters from the
//!   entries are shown escaped ([`crate::term`]) unless `--raw`;
//! - a multi-line payload is one line per payload line, each with the full
//!   header, as `cf logs` shows it.
//!
//! Like `cf logs`, the text formats show log envelopes only (see
//! [`super::view`]); `--json` prints every envelope the view lets through.

use std::borrow::Cow;
use std::io::{self, BufWriter, Stdout, Write as _};

use envelope::tags::{APP_NAME, SOURCE_TYPE};
use envelope::{Envelope, LogType};

use super::view::{heroku_dyno, heroku_source};
use crate::term::{escape_controls, escape_controls_json};
use crate::zone::Zone;

const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";
/// Colours for app names: every ANSI colour but red (ERR) and the greys.
const APP_COLORS: [&str; 10] = [
    "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[92m", "\x1b[93m", "\x1b[94m",
    "\x1b[95m", "\x1b[96m",
];
/// App names are padded to the widest seen, up to this many characters.
const MAX_NAME_WIDTH: usize = 24;

/// How lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `cf logs`
    Cf,
    /// `heroku logs`
    Heroku,
    /// The server's NDJSON envelopes (Log Cache's JSON)
    Json,
}

/// Turns entries into lines.
pub struct Renderer {
    format: Format,
    /// Colour (ERR red, app names).
    color: bool,
    /// Control characters shown escaped.
    escape: bool,
    /// Name the app on each line.
    app_names: bool,
    zone: Zone,
    name_width: usize,
}

impl Renderer {
    pub fn new(format: Format, color: bool, escape: bool, app_names: bool, zone: Zone) -> Self {
        Renderer {
            format,
            color,
            escape,
            app_names,
            zone,
            name_width: 0,
        }
    }

    /// Appends `env`'s lines (without newlines) to `out`; `raw` is its JSON
    /// as received. Nothing for envelopes the text formats do not show.
    pub fn render(&mut self, raw: &[u8], env: &Envelope, out: &mut Vec<String>) {
        if self.format == Format::Json {
            let text = String::from_utf8_lossy(raw);
            out.push(if self.escape {
                escape_controls_json(&text).into_owned()
            } else {
                text.into_owned()
            });
            return;
        }
        let Some(log) = env.as_log() else {
            return;
        };
        let red = self.color && env.log_type() == Some(LogType::Err);
        let name = self.app_names.then(|| self.app_name(env, red));
        let head = match self.format {
            Format::Heroku => format!(
                "{} {}{}[{}]: ",
                self.zone.heroku(env.timestamp),
                name.as_deref().unwrap_or(""),
                heroku_source(env),
                self.clean(&heroku_dyno(env)),
            ),
            _ => {
                let mut bracket = self
                    .clean(env.tag(SOURCE_TYPE).unwrap_or(&env.source_id))
                    .into_owned();
                if !env.instance_id.is_empty() {
                    bracket.push('/');
                    bracket.push_str(&self.clean(&env.instance_id));
                }
                let kind = env.log_type().map_or("OUT", LogType::as_str);
                format!(
                    "   {} {}[{bracket}] {kind} ",
                    self.zone.cf(env.timestamp),
                    name.as_deref().unwrap_or(""),
                )
            }
        };
        let text = String::from_utf8_lossy(&log.payload);
        let text = text.trim_end_matches(['\n', '\r']);
        for piece in text.split('\n') {
            let piece = piece.trim_end_matches('\r');
            let mut line = String::with_capacity(head.len() + piece.len() + 12);
            if red {
                line.push_str(RED);
            }
            line.push_str(&head);
            line.push_str(&self.clean(piece));
            if red {
                line.push_str(RESET);
            }
            out.push(line);
        }
    }

    /// The app's name, padded, coloured on a terminal, and a space.
    fn app_name(&mut self, env: &Envelope, red: bool) -> String {
        let raw = env.tag(APP_NAME).unwrap_or(&env.source_id);
        let name = self.clean(raw).into_owned();
        let width = name.chars().count();
        self.name_width = self.name_width.max(width.min(MAX_NAME_WIDTH));
        let pad = " ".repeat(self.name_width.saturating_sub(width) + 1);
        if self.color {
            let after = if red { RED } else { "" };
            format!("{}{name}{RESET}{after}{pad}", app_color(raw))
        } else {
            format!("{name}{pad}")
        }
    }

    /// Remote text as shown: escaped on a terminal.
    fn clean<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.escape {
            escape_controls(text)
        } else {
            Cow::Borrowed(text)
        }
    }
}

/// The colour of an app's name: from a hash of the name (FNV-1a), so it is
/// the same in every run and on every machine.
pub fn app_color(name: &str) -> &'static str {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    APP_COLORS[hash as usize % APP_COLORS.len()]
}

/// Lines to stdout, buffered.
pub struct Printer {
    out: BufWriter<Stdout>,
}

impl Printer {
    pub fn new() -> Self {
        Printer {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
        }
    }

    pub fn lines<'a>(&mut self, lines: impl IntoIterator<Item = &'a String>) -> io::Result<()> {
        for line in lines {
            self.out.write_all(line.as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// 2026-11-21T13:14:58.0099Z
    const TS: i64 = 1_795_266_898_009_900_000;

    fn payload(text: &str, kind: LogType) -> Envelope {
        let payload = Bytes::copy_from_slice(text.as_bytes());
        let mut e = Envelope::log(TS, "web", "0", payload, kind);
        e.tags.insert("source_type".into(), "APP/PROC/WEB".into());
        e
    }

    fn env(kind: LogType) -> Envelope {
        payload("hi", kind)
    }

    /// (format, color, escape, app names) in UTC.
    fn renderer(format: Format, color: bool, escape: bool, names: bool) -> Renderer {
        Renderer::new(format, color, escape, names, Zone::utc())
    }

    fn lines(r: &mut Renderer, env: &Envelope) -> Vec<String> {
        let mut out = Vec::new();
        r.render(b"{}", env, &mut out);
        out
    }

    #[test]
    fn cf_format() {
        let mut r = renderer(Format::Cf, true, true, false);
        assert_eq!(
            lines(&mut r, &env(LogType::Out)),
            ["   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT hi"]
        );
    }

    #[test]
    fn local_time() {
        let mut r = Renderer::new(Format::Cf, false, false, false, Zone::posix("IST-5:30"));
        assert_eq!(
            lines(&mut r, &env(LogType::Out)),
            ["   2026-11-21T18:44:58.00+0530 [APP/PROC/WEB/0] OUT hi"]
        );
    }

    #[test]
    fn heroku_format() {
        let mut r = renderer(Format::Heroku, false, false, false);
        assert_eq!(
            lines(&mut r, &env(LogType::Out)),
            ["2026-11-21T13:14:58.009900+00:00 app[web.0]: hi"]
        );
        let mut router = Envelope::log(
            TS,
            "heroku",
            "",
            Bytes::from_static(b"at=info"),
            LogType::Out,
        );
        router.tags.insert("source_type".into(), "router".into());
        assert_eq!(
            lines(&mut r, &router),
            ["2026-11-21T13:14:58.009900+00:00 heroku[router]: at=info"]
        );
    }

    #[test]
    fn app_names_in_multi_app_views() {
        let mut r = renderer(Format::Cf, false, false, true);
        let mut alpha = env(LogType::Out);
        alpha.source_id = "guid-1".into();
        alpha.tags.insert("app_name".into(), "alpha".into());
        let mut long = env(LogType::Out);
        long.source_id = "longer-id".into();
        assert_eq!(
            lines(&mut r, &alpha),
            ["   2026-11-21T13:14:58.00+0000 alpha [APP/PROC/WEB/0] OUT hi"]
        );
        assert_eq!(
            lines(&mut r, &long),
            ["   2026-11-21T13:14:58.00+0000 longer-id [APP/PROC/WEB/0] OUT hi"]
        );
        // Padded to the widest seen so far.
        assert_eq!(
            lines(&mut r, &alpha),
            ["   2026-11-21T13:14:58.00+0000 alpha     [APP/PROC/WEB/0] OUT hi"]
        );
        let mut h = renderer(Format::Heroku, false, false, true);
        assert_eq!(
            lines(&mut h, &alpha),
            ["2026-11-21T13:14:58.009900+00:00 alpha app[web.0]: hi"]
        );
    }

    #[test]
    fn app_colours_are_stable_and_kept_apart_from_err() {
        assert_eq!(app_color("alpha"), app_color("alpha"));
        assert!(APP_COLORS.iter().all(|c| *c != RED));
        let spread: std::collections::HashSet<_> =
            ["alpha", "beta", "gamma", "delta", "web", "worker"]
                .iter()
                .map(|n| app_color(n))
                .collect();
        assert!(spread.len() > 2, "{spread:?}");
        let mut r = renderer(Format::Cf, true, true, true);
        let mut e = env(LogType::Out);
        e.tags.insert("app_name".into(), "alpha".into());
        assert_eq!(
            lines(&mut r, &e),
            [format!(
                "   2026-11-21T13:14:58.00+0000 {}alpha{RESET} [APP/PROC/WEB/0] OUT hi",
                app_color("alpha")
            )]
        );
        // On an ERR line the rest stays red.
        let mut e = env(LogType::Err);
        e.tags.insert("app_name".into(), "alpha".into());
        assert_eq!(
            lines(&mut r, &e),
            [format!(
                "{RED}   2026-11-21T13:14:58.00+0000 {}alpha{RESET}{RED} [APP/PROC/WEB/0] ERR hi{RESET}",
                app_color("alpha")
            )]
        );
    }

    #[test]
    fn err_is_red_only_with_color() {
        let mut r = renderer(Format::Cf, true, true, false);
        assert_eq!(
            lines(&mut r, &env(LogType::Err)),
            ["\x1b[31m   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR hi\x1b[0m"]
        );
        let mut r = renderer(Format::Cf, false, false, false);
        assert!(!lines(&mut r, &env(LogType::Err))[0].contains('\x1b'));
    }

    #[test]
    fn controls_are_escaped_unless_raw() {
        let hostile = payload("a\x1b]0;pwned\x07b\u{9b}2Jc\rd\te", LogType::Out);
        let mut r = renderer(Format::Cf, true, true, true);
        let mut evil_name = hostile.clone();
        evil_name.tags.insert("app_name".into(), "x\x1b[2Jy".into());
        assert_eq!(
            lines(&mut r, &hostile),
            [format!("   2026-11-21T13:14:58.00+0000 {}web{RESET} [APP/PROC/WEB/0] OUT a\\x1b]0;pwned\\x07b\\x9b2Jc\\x0dd\te", app_color("web"))]
        );
        assert!(lines(&mut r, &evil_name)[0].contains("x\\x1b[2Jy"));
        let mut r = renderer(Format::Cf, true, false, false);
        assert!(lines(&mut r, &hostile)[0].contains("a\x1b]0;pwned\x07b\u{9b}2Jc\rd\te"));
        // Multi-line payloads are separate lines, each coloured.
        let mut r = renderer(Format::Cf, true, true, false);
        assert_eq!(
            lines(&mut r, &payload("one\ntwo\x1b\n", LogType::Err)),
            [
                "\x1b[31m   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR one\x1b[0m",
                "\x1b[31m   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR two\\x1b\x1b[0m"
            ]
        );
    }

    #[test]
    fn json_is_the_envelope_and_events_show_only_there() {
        let event = Envelope::event(TS, "web", "audit.app.start", "");
        let mut text = renderer(Format::Cf, false, false, false);
        assert!(lines(&mut text, &event).is_empty());
        let mut json = renderer(Format::Json, false, true, false);
        let mut out = Vec::new();
        json.render(b"{\"a\":\"\x1b\"}", &event, &mut out);
        assert_eq!(out, ["{\"a\":\"\\u001b\"}"]);
    }
}
