//! The body of Docker's `GET /containers/{id}/logs?timestamps=1`, cut into
//! the entries the daemon stored.
//!
//! Two shapes, chosen by whether the container has a TTY:
//! - without one, the body is *multiplexed*: frames of an 8-byte header
//!   (stream 1 = stdout, 2 = stderr; three zero bytes; a big-endian u32
//!   length) and the payload `<RFC 3339 nanos> <text>`;
//! - with one, it is *raw*: `<timestamp> <text>` entries back to back.
//!
//! Either way the daemon cuts a line longer than its 16 KiB copy buffer
//! into several entries with the same timestamp; every entry but the last
//! lacks the final `\n`. In the raw shape that is the only way to find
//! where an entry ends: at its `\n`, or after [`TTY_PARTIAL_BYTES`] bytes
//! of text. (This is why sluice reads the stream itself: a decoder that
//! reads a raw stream up to the next `\n` merges those entries, timestamps
//! and all, and buffers a TTY that never writes `\n` without bound.)
//!
//! Every entry is bounded: a multiplexed frame by [`MAX_FRAME`], a raw one
//! by its timestamp and [`TTY_PARTIAL_BYTES`]; anything else is a
//! [`FrameError`] and the follower reconnects.

use bytes::{Buf, Bytes, BytesMut};
use envelope::v2::LogType;

/// The daemon's copy buffer: the text of a raw entry that ends without a
/// newline (moby's `daemon/logger/copier.go`, `bufSize`).
pub const TTY_PARTIAL_BYTES: usize = 16 * 1024;
/// Longest multiplexed frame accepted (the daemon sends at most
/// [`TTY_PARTIAL_BYTES`] of text and a timestamp).
pub const MAX_FRAME: usize = 1 << 20;
/// Longest timestamp plus its space (`2026-12-02T09:40:19.591563646Z ` is
/// 31 bytes; offsets other than `Z` add 5).
const MAX_STAMP: usize = 48;

/// One stored entry: a whole line, or a piece of one (`complete` false).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub stream: LogType,
    pub timestamp_ns: i64,
    /// The text without its line ending (`\n`, or a TTY's `\r\n`).
    pub text: Bytes,
    pub complete: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("a log frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("a log frame names stream {0} (1 and 2 are stdout and stderr)")]
    BadStream(u8),
    #[error("a log entry does not start with a timestamp")]
    BadTimestamp,
    #[error("the log stream ended inside a frame")]
    Torn,
}

/// Cuts a logs body into [`Chunk`]s as its bytes arrive.
#[derive(Debug)]
pub struct FrameDecoder {
    tty: bool,
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn new(tty: bool) -> Self {
        FrameDecoder {
            tty,
            buf: BytesMut::new(),
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not an entry yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole entry, if the bytes so far hold one.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, FrameError> {
        if self.tty {
            self.next_raw(false)
        } else {
            self.next_multiplexed()
        }
    }

    /// At the end of the body: the last entry of a raw stream (a TTY that
    /// exited without a final newline); an error if a frame was cut short.
    pub fn finish(&mut self) -> Result<Option<Chunk>, FrameError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.tty {
            return self.next_raw(true);
        }
        self.buf.clear();
        Err(FrameError::Torn)
    }

    fn next_multiplexed(&mut self) -> Result<Option<Chunk>, FrameError> {
        let Some(header) = self.buf.get(..8) else {
            return Ok(None);
        };
        let stream = match header[0] {
            1 => LogType::Out,
            2 => LogType::Err,
            other => return Err(FrameError::BadStream(other)),
        };
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 8 + len {
            self.buf.reserve(8 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(8);
        let payload = self.buf.split_to(len).freeze();
        let (timestamp_ns, text) = split_stamp(payload)?;
        let (text, complete) = strip_newline(text);
        Ok(Some(Chunk {
            stream,
            timestamp_ns,
            text,
            complete,
        }))
    }

    fn next_raw(&mut self, at_end: bool) -> Result<Option<Chunk>, FrameError> {
        let Some(space) = self.buf.iter().take(MAX_STAMP).position(|&b| b == b' ') else {
            if self.buf.len() >= MAX_STAMP || (at_end && !self.buf.is_empty()) {
                return Err(FrameError::BadTimestamp);
            }
            return Ok(None);
        };
        let text_start = space + 1;
        let window = self.buf.len().min(text_start + TTY_PARTIAL_BYTES);
        let entry_len = match self.buf[text_start..window]
            .iter()
            .position(|&b| b == b'\n')
        {
            Some(nl) => text_start + nl + 1,
            None if window == text_start + TTY_PARTIAL_BYTES || at_end => window,
            None => return Ok(None),
        };
        let entry = self.buf.split_to(entry_len).freeze();
        let (timestamp_ns, text) = split_stamp(entry)?;
        let (text, complete) = strip_newline(text);
        Ok(Some(Chunk {
            stream: LogType::Out,
            timestamp_ns,
            text,
            complete,
        }))
    }
}

/// `<timestamp> <text>` → the timestamp in ns and the text.
fn split_stamp(entry: Bytes) -> Result<(i64, Bytes), FrameError> {
    let space = entry
        .iter()
        .take(MAX_STAMP)
        .position(|&b| b == b' ')
        .ok_or(FrameError::BadTimestamp)?;
    let ns = codec::timestamp::parse_rfc3339(&entry[..space]).ok_or(FrameError::BadTimestamp)?;
    Ok((ns, entry.slice(space + 1..)))
}

/// The text without its line ending, and whether it had one.
fn strip_newline(text: Bytes) -> (Bytes, bool) {
    match text.strip_suffix(b"\n") {
        Some(line) => {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let len = line.len();
            (text.slice(..len), true)
        }
        None => (text, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-12-02T09:40:19.591563646Z";

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn ts_ns() -> i64 {
        codec::timestamp::parse_rfc3339(TS.as_bytes()).unwrap()
    }

    fn all(decoder: &mut FrameDecoder) -> Vec<Chunk> {
        let mut out = Vec::new();
        while let Some(chunk) = decoder.next_chunk().unwrap() {
            out.push(chunk);
        }
        out
    }

    #[test]
    fn multiplexed_frames_arrive_byte_by_byte() {
        let mut body = frame(1, format!("{TS} hello\n").as_bytes());
        body.extend(frame(2, format!("{TS} part").as_bytes()));
        let mut decoder = FrameDecoder::new(false);
        let mut chunks = Vec::new();
        for b in body {
            decoder.push(&[b]);
            chunks.extend(all(&mut decoder));
        }
        assert_eq!(
            chunks,
            vec![
                Chunk {
                    stream: LogType::Out,
                    timestamp_ns: ts_ns(),
                    text: Bytes::from_static(b"hello"),
                    complete: true
                },
                Chunk {
                    stream: LogType::Err,
                    timestamp_ns: ts_ns(),
                    text: Bytes::from_static(b"part"),
                    complete: false
                },
            ]
        );
        assert_eq!(decoder.finish(), Ok(None));
    }

    #[test]
    fn multiplexed_limits_are_errors() {
        let mut decoder = FrameDecoder::new(false);
        decoder.push(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(decoder.next_chunk(), Err(FrameError::TooLarge(_))));
        let mut decoder = FrameDecoder::new(false);
        decoder.push(&frame(7, b"x"));
        assert_eq!(decoder.next_chunk(), Err(FrameError::BadStream(7)));
        let mut decoder = FrameDecoder::new(false);
        decoder.push(&frame(1, b"no-timestamp-here"));
        assert_eq!(decoder.next_chunk(), Err(FrameError::BadTimestamp));
        let mut decoder = FrameDecoder::new(false);
        decoder.push(&frame(1, b"x")[..5]);
        assert_eq!(decoder.next_chunk(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Torn));
    }

    #[test]
    fn raw_entries_split_at_newline_or_the_copy_buffer() {
        let long = "x".repeat(TTY_PARTIAL_BYTES + 10);
        let body = format!(
            "{TS} a\r\n{TS} {}{TS} {}\r\n{TS} tail",
            &long[..TTY_PARTIAL_BYTES],
            &long[TTY_PARTIAL_BYTES..]
        );
        let mut decoder = FrameDecoder::new(true);
        decoder.push(body.as_bytes());
        let chunks = all(&mut decoder);
        let texts: Vec<(usize, bool)> = chunks.iter().map(|c| (c.text.len(), c.complete)).collect();
        assert_eq!(
            texts,
            vec![(1, true), (TTY_PARTIAL_BYTES, false), (10, true)]
        );
        assert_eq!(&chunks[0].text[..], b"a");
        let last = decoder.finish().unwrap().unwrap();
        assert_eq!((&last.text[..], last.complete), (&b"tail"[..], false));
    }

    #[test]
    fn raw_garbage_is_an_error_not_a_buffer() {
        let mut decoder = FrameDecoder::new(true);
        decoder.push(&[b'y'; 100]);
        assert_eq!(decoder.next_chunk(), Err(FrameError::BadTimestamp));
        let mut decoder = FrameDecoder::new(true);
        decoder.push(b"notatime text\n");
        assert_eq!(decoder.next_chunk(), Err(FrameError::BadTimestamp));
    }
}
