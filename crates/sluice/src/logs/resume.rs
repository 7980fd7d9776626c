//! Resuming a tail exactly where it stopped.
//!
//! Every stored entry the server streams carries a cursor (`"cursor":
//! "v1.<N>"`, opaque here) that resumes right after it. A tail keeps the
//! cursor of the last entry it received and reconnects with
//! `after=<cursor>`: the server replays what was stored since, in order,
//! then goes live, so nothing is missed or shown twice, across a restart
//! of the server too: its log on disk keeps its positions growing. (A
//! server with `[log] backend = "memory"` starts again at position 0, so
//! a cursor from before its restart can skip what it took since.)
//!
//! Before any entry came there is no cursor, and nothing can be shown
//! twice: a reconnect replays from the first request's `--since`, or from
//! a little before the tail began, so what was logged while the server was
//! away still shows. A server that sends no cursors (older than this
//! client) is resumed after the newest timestamp received, which misses
//! what it stored later with a timestamp not newer than that.

use super::query::Replay;

/// How far before the tail began a reconnect without a cursor replays
/// (clock differences between this host and the server's).
pub const START_SLACK_NS: i64 = 2_000_000_000;

/// Where the next connection of a tail starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The last cursor received.
    cursor: Option<String>,
    /// Without one: replay from this time (Unix ns, inclusive).
    since: i64,
}

impl Resume {
    /// Nothing received yet; without a cursor, replay from `since`.
    pub fn new(since: i64) -> Self {
        Resume {
            cursor: None,
            since,
        }
    }

    /// Notes an entry received: its stream line and timestamp.
    pub fn received(&mut self, line: &[u8], timestamp: i64) {
        match cursor_of(line) {
            Some(cursor) => {
                let held = self.cursor.get_or_insert_with(String::new);
                held.clear();
                held.push_str(cursor);
            }
            None => self.since = self.since.max(timestamp.saturating_add(1)),
        }
    }

    /// What a reconnect asks for.
    pub fn replay(&self) -> Replay {
        match &self.cursor {
            Some(cursor) => Replay::after(cursor.clone()),
            None => Replay::since(self.since),
        }
    }
}

/// The string member `cursor` of the JSON object on `line` (top level
/// only: a tag of that name is not it); `None` when there is none.
pub fn cursor_of(line: &[u8]) -> Option<&str> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let end = string_end(line, i + 1)?;
                if depth == 1 && &line[i + 1..end] == b"cursor" {
                    let rest = skip_space(line, end + 1);
                    if line.get(rest) == Some(&b':') {
                        let value = skip_space(line, rest + 1);
                        if line.get(value) != Some(&b'"') {
                            return None;
                        }
                        let value_end = string_end(line, value + 1)?;
                        return std::str::from_utf8(&line[value + 1..value_end]).ok();
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string starting at `i`.
fn string_end(line: &[u8], mut i: usize) -> Option<usize> {
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_space(line: &[u8], mut i: usize) -> usize {
    while line.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_cursor_is_found() {
        let line = br#"{"timestamp":"5","source_id":"cursor","tags":{"cursor":"no"},"log":{"payload":"ImN1cnNvciI6IngifQ=="},"cursor" : "v1.42"}"#;
        assert_eq!(cursor_of(line), Some("v1.42"));
        assert_eq!(cursor_of(br#"{"cursor":"v1.0","log":{}}"#), Some("v1.0"));
        // Escaped quotes inside strings do not end them.
        assert_eq!(
            cursor_of(br#"{"tags":{"a\"":"\"cursor\":\"x"},"cursor":"v1.7"}"#),
            Some("v1.7")
        );
    }

    #[test]
    fn no_cursor_no_answer() {
        assert_eq!(cursor_of(br#"{"tags":{"cursor":"v1.1"}}"#), None);
        assert_eq!(cursor_of(br#"{"source_id":"cursor"}"#), None);
        assert_eq!(cursor_of(br#"{"cursor":7}"#), None);
        assert_eq!(cursor_of(br#"{"cursor":"v1.3"#), None);
        assert_eq!(cursor_of(b""), None);
        assert_eq!(cursor_of(b"not json \"cursor\""), None);
    }

    #[test]
    fn a_reconnect_resumes_after_the_last_cursor() {
        let mut resume = Resume::new(1_000);
        assert_eq!(resume.replay(), Replay::since(1_000));
        // An entry without a cursor (an older server): its time.
        resume.received(br#"{"timestamp":"2000"}"#, 2_000);
        resume.received(br#"{"timestamp":"1500"}"#, 1_500);
        assert_eq!(resume.replay(), Replay::since(2_001));
        resume.received(br#"{"cursor":"v1.8"}"#, 3_000);
        resume.received(br#"{"cursor":"v1.9"}"#, 2_500);
        assert_eq!(resume.replay(), Replay::after("v1.9".into()));
        // A note without a cursor does not move it.
        resume.received(br#"{"log":{}}"#, 9_000);
        assert_eq!(resume.replay(), Replay::after("v1.9".into()));
    }
}
