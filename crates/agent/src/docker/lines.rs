//! Pieces of a line back into the line: the daemon stores a line longer
//! than 16 KiB as several entries ([`Chunk`]s) with the first piece's
//! timestamp; this joins them, per stream (stdout and stderr pieces may
//! interleave), up to the max message. What goes past it is cut and the
//! line marked, so the caller counts it.

use bytes::{Bytes, BytesMut};
use envelope::v2::LogType;

use super::frames::Chunk;

/// A whole line as the container wrote it (without its newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub stream: LogType,
    pub timestamp_ns: i64,
    pub text: Bytes,
    /// Whether text past the max message was cut off.
    pub cut: bool,
}

#[derive(Debug, Default)]
struct Pending {
    timestamp_ns: i64,
    text: BytesMut,
    cut: bool,
}

/// Joins pieces per stream.
#[derive(Debug)]
pub struct LineJoiner {
    max_message: usize,
    out: Option<Pending>,
    err: Option<Pending>,
}

impl LineJoiner {
    pub fn new(max_message: usize) -> Self {
        LineJoiner {
            max_message: max_message.max(1),
            out: None,
            err: None,
        }
    }

    /// Adds an entry; a line when it completes one.
    pub fn push(&mut self, chunk: Chunk) -> Option<Line> {
        let max = self.max_message;
        let slot = match chunk.stream {
            LogType::Err => &mut self.err,
            LogType::Out => &mut self.out,
        };
        if slot.is_none() && chunk.complete {
            // The common case: a line in one entry, kept without a copy.
            let cut = chunk.text.len() > max;
            let text = if cut {
                chunk.text.slice(..max)
            } else {
                chunk.text
            };
            return Some(Line {
                stream: chunk.stream,
                timestamp_ns: chunk.timestamp_ns,
                text,
                cut,
            });
        }
        let pending = slot.get_or_insert_with(|| Pending {
            timestamp_ns: chunk.timestamp_ns,
            ..Pending::default()
        });
        let room = max.saturating_sub(pending.text.len());
        if chunk.text.len() > room {
            pending.cut = true;
        }
        pending
            .text
            .extend_from_slice(&chunk.text[..chunk.text.len().min(room)]);
        if !chunk.complete {
            return None;
        }
        slot.take().map(|p| finish(chunk.stream, p))
    }

    /// The lines still open (the stream ended inside them), stdout first.
    pub fn flush(&mut self) -> Vec<Line> {
        [
            (LogType::Out, self.out.take()),
            (LogType::Err, self.err.take()),
        ]
        .into_iter()
        .filter_map(|(stream, p)| p.map(|p| finish(stream, p)))
        .collect()
    }

    /// Whether a piece of a line waits for its end.
    pub fn has_pending(&self) -> bool {
        self.out.is_some() || self.err.is_some()
    }
}

fn finish(stream: LogType, p: Pending) -> Line {
    Line {
        stream,
        timestamp_ns: p.timestamp_ns,
        text: p.text.freeze(),
        cut: p.cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(stream: LogType, ts: i64, text: &str, complete: bool) -> Chunk {
        Chunk {
            stream,
            timestamp_ns: ts,
            text: Bytes::copy_from_slice(text.as_bytes()),
            complete,
        }
    }

    #[test]
    fn pieces_join_per_stream() {
        let mut j = LineJoiner::new(100);
        assert_eq!(j.push(chunk(LogType::Out, 5, "ab", false)), None);
        let err = j.push(chunk(LogType::Err, 6, "e", true)).unwrap();
        assert_eq!((&err.text[..], err.stream), (&b"e"[..], LogType::Err));
        let out = j.push(chunk(LogType::Out, 5, "cd", true)).unwrap();
        assert_eq!(
            (&out.text[..], out.timestamp_ns, out.cut),
            (&b"abcd"[..], 5, false)
        );
        assert!(!j.has_pending());
    }

    #[test]
    fn a_line_past_the_max_is_cut_and_marked() {
        let mut j = LineJoiner::new(3);
        assert_eq!(j.push(chunk(LogType::Out, 1, "ab", false)), None);
        let line = j.push(chunk(LogType::Out, 1, "cd", true)).unwrap();
        assert_eq!((&line.text[..], line.cut), (&b"abc"[..], true));
        let whole = j.push(chunk(LogType::Out, 2, "wxyz", true)).unwrap();
        assert_eq!((&whole.text[..], whole.cut), (&b"wxy"[..], true));
    }

    #[test]
    fn flush_ends_open_lines() {
        let mut j = LineJoiner::new(10);
        j.push(chunk(LogType::Err, 1, "half", false));
        let lines = j.flush();
        assert_eq!(lines.len(), 1);
        assert_eq!(&lines[0].text[..], b"half");
        assert!(j.flush().is_empty());
    }
}
