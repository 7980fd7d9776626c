//! Splitting a byte stream into syslog frames.
//!
//! [`FrameDecoder`] handles syslog over TCP (RFC 6587): octet-counted frames
//! (`MSG-LEN SP SYSLOG-MSG`, §3.4.1) and non-transparent framing (LF or NUL
//! terminated, §3.4.2), detected per frame so that a sender may mix them, as
//! rsyslog allows. [`split_octet_counted`] splits a complete logplex-1 HTTP
//! body, where octet counting is mandatory.
//!
//! Memory is bounded: frames longer than `max_frame` are cut to `max_frame`
//! bytes and flagged [`Frame::truncated`], and the rest of such a frame is
//! discarded as it arrives instead of being buffered.

use bytes::{Buf, Bytes, BytesMut};

/// One syslog message as framed on the wire, without its framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub data: Bytes,
    /// The frame was longer than the decoder's `max_frame` (or, at EOF,
    /// shorter than its octet count) and `data` holds only its start.
    pub truncated: bool,
}

/// A framing error. Framing is lost after one: the caller should count it
/// and close the connection (or reject the HTTP body).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("octet count {count} exceeds limit {limit}")]
    OctetCountTooLarge { count: u64, limit: usize },
    #[error("expected an octet count (MSG-LEN SP) at byte {offset}")]
    MissingOctetCount { offset: usize },
    #[error("octet count {count} at byte {offset} exceeds the {remaining} bytes left in the body")]
    OctetCountPastEnd {
        count: usize,
        offset: usize,
        remaining: usize,
    },
}

/// At most this many digits in an octet count (999 999 999 bytes), as in
/// rsyslog; a longer run of digits is not taken as a count.
const MAX_COUNT_DIGITS: usize = 9;

/// The smallest hard limit on octet counts, whatever `max_frame` is.
const MIN_COUNT_LIMIT: usize = 1 << 20;

/// How an octet count at the start of the buffer reads.
enum CountHeader {
    /// `count` bytes of message follow a header `header_len` bytes long.
    Counted { count: usize, header_len: usize },
    /// Not an octet count: the frame is LF-terminated.
    NotCounted,
    /// Only digits so far: need more bytes to tell.
    Incomplete,
}

/// Reads an RFC 6587 octet count at the start of `buf`.
///
/// The heuristic is rsyslog's: a frame is octet-counted when it starts with
/// a nonzero ASCII digit, has at most 9 digits, and the digits are followed
/// by a space. Anything else (a line such as `2026-11-21 boot`, or
/// `<13>...`) is an LF-terminated frame, so a sender may mix both framings.
fn read_count_header(buf: &[u8]) -> CountHeader {
    match buf.first() {
        Some(b'1'..=b'9') => {}
        Some(_) => return CountHeader::NotCounted,
        None => return CountHeader::Incomplete,
    }
    let mut count = 0usize;
    for (index, &byte) in buf.iter().enumerate().take(MAX_COUNT_DIGITS + 1) {
        match byte {
            b'0'..=b'9' if index < MAX_COUNT_DIGITS => {
                count = count * 10 + usize::from(byte - b'0');
            }
            b' ' => {
                return CountHeader::Counted {
                    count,
                    header_len: index + 1,
                }
            }
            _ => return CountHeader::NotCounted,
        }
    }
    if buf.len() > MAX_COUNT_DIGITS {
        CountHeader::NotCounted
    } else {
        CountHeader::Incomplete
    }
}

fn is_line_terminator(byte: &u8) -> bool {
    *byte == b'\n' || *byte == b'\0'
}

fn strip_trailing_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Where the decoder is within the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a frame boundary.
    Start,
    /// Inside an octet-counted frame whose body has not fully arrived.
    Counted { count: usize },
    /// Discarding the rest of an octet-counted frame that was truncated.
    SkipCounted { remaining: usize },
    /// Discarding the rest of an LF-terminated line that was truncated.
    SkipLine,
}

/// An incremental RFC 6587 frame decoder (octet counting and LF/NUL
/// terminated lines, detected per frame).
///
/// Feed it the connection's read buffer: [`decode`](Self::decode) removes
/// complete frames from the front and returns `Ok(None)` when it needs more
/// bytes. It leaves at most `max_frame + 10` bytes in the buffer, so a
/// sender can't make it hold more than that.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    count_limit: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder that cuts frames to `max_frame` bytes (at least 1) and
    /// rejects octet counts above `max(16 × max_frame, 1 MiB)`.
    pub fn new(max_frame: usize) -> Self {
        let max_frame = max_frame.max(1);
        FrameDecoder {
            max_frame,
            count_limit: max_frame.saturating_mul(16).max(MIN_COUNT_LIMIT),
            state: State::Start,
        }
    }

    /// The longest frame this decoder emits.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Whether a frame has begun and not ended: the decoder is inside one,
    /// or `buf` (the same buffer passed to [`decode`](Self::decode)) holds
    /// the start of one.
    pub fn in_frame(&self, buf: &BytesMut) -> bool {
        self.state != State::Start || !buf.is_empty()
    }

    /// Takes the next complete frame off the front of `buf`; `Ok(None)`
    /// means more bytes are needed. After an error the stream's framing is
    /// lost and the decoder should not be used again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        loop {
            match self.state {
                State::Start => match read_count_header(buf) {
                    CountHeader::Counted { count, header_len } => {
                        if count > self.count_limit {
                            return Err(FramingError::OctetCountTooLarge {
                                count: count as u64,
                                limit: self.count_limit,
                            });
                        }
                        buf.advance(header_len);
                        self.state = State::Counted { count };
                    }
                    CountHeader::NotCounted => match self.decode_line(buf) {
                        LineStep::Frame(frame) => return Ok(Some(frame)),
                        LineStep::Skipped => {}
                        LineStep::NeedMore => return Ok(None),
                    },
                    CountHeader::Incomplete => return Ok(None),
                },
                State::Counted { count } => {
                    if count <= self.max_frame {
                        if buf.len() < count {
                            return Ok(None);
                        }
                        self.state = State::Start;
                        return Ok(Some(Frame {
                            data: buf.split_to(count).freeze(),
                            truncated: false,
                        }));
                    }
                    if buf.len() < self.max_frame {
                        return Ok(None);
                    }
                    self.state = State::SkipCounted {
                        remaining: count - self.max_frame,
                    };
                    return Ok(Some(Frame {
                        data: buf.split_to(self.max_frame).freeze(),
                        truncated: true,
                    }));
                }
                State::SkipCounted { remaining } => {
                    let skipped = remaining.min(buf.len());
                    buf.advance(skipped);
                    if skipped < remaining {
                        self.state = State::SkipCounted {
                            remaining: remaining - skipped,
                        };
                        return Ok(None);
                    }
                    self.state = State::Start;
                }
                State::SkipLine => match buf.iter().position(is_line_terminator) {
                    Some(end) => {
                        buf.advance(end + 1);
                        self.state = State::Start;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                },
            }
        }
    }

    /// Like [`decode`](Self::decode), for when the stream has ended: a
    /// trailing unterminated line is a frame, and so is the start of an
    /// octet-counted frame cut short (flagged truncated). Call it until it
    /// returns `Ok(None)`; the buffer is then empty and the decoder reset.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        let state = std::mem::replace(&mut self.state, State::Start);
        let rest = buf.split().freeze();
        let frame = match state {
            State::Start => {
                let line = strip_trailing_cr(&rest);
                (!line.is_empty()).then(|| Frame {
                    truncated: line.len() > self.max_frame,
                    data: rest.slice(..line.len().min(self.max_frame)),
                })
            }
            State::Counted { .. } => (!rest.is_empty()).then_some(Frame {
                data: rest,
                truncated: true,
            }),
            State::SkipCounted { .. } | State::SkipLine => None,
        };
        Ok(frame)
    }

    /// One step of LF framing at a frame boundary.
    fn decode_line(&mut self, buf: &mut BytesMut) -> LineStep {
        // A line of exactly max_frame bytes may still be followed by CR LF.
        let window = buf.len().min(self.max_frame + 2);
        let Some(end) = buf
            .get(..window)
            .and_then(|w| w.iter().position(is_line_terminator))
        else {
            if buf.len() < self.max_frame + 2 {
                return LineStep::NeedMore;
            }
            self.state = State::SkipLine;
            return LineStep::Frame(Frame {
                data: buf.split_to(self.max_frame).freeze(),
                truncated: true,
            });
        };
        let mut line = buf.split_to(end + 1);
        line.truncate(strip_trailing_cr(&line[..end]).len());
        if line.is_empty() {
            return LineStep::Skipped;
        }
        let truncated = line.len() > self.max_frame;
        line.truncate(self.max_frame);
        LineStep::Frame(Frame {
            data: line.freeze(),
            truncated,
        })
    }
}

enum LineStep {
    Frame(Frame),
    /// An empty line was consumed.
    Skipped,
    NeedMore,
}

/// Splits a complete logplex-1 HTTP body (`MSG-LEN SP MSG` repeated) into
/// frames, zero-copy.
///
/// Octet counting is strict: once a count is missing or runs past the end
/// of the body, the iterator yields that error and then ends. CR and LF
/// between frames are skipped, as some senders add a newline after each
/// frame. Frames longer than `max_frame` are cut and flagged truncated.
pub fn split_octet_counted(body: Bytes, max_frame: usize) -> OctetCountedFrames {
    OctetCountedFrames {
        body,
        offset: 0,
        max_frame: max_frame.max(1),
        failed: false,
    }
}

/// The iterator returned by [`split_octet_counted`].
#[derive(Debug)]
pub struct OctetCountedFrames {
    body: Bytes,
    offset: usize,
    max_frame: usize,
    failed: bool,
}

impl OctetCountedFrames {
    fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        let rest = self.body.get(self.offset..).unwrap_or_default();
        let gap = rest
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.offset += gap;
        let rest = rest.get(gap..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        let CountHeader::Counted { count, header_len } = read_count_header(rest) else {
            return Err(FramingError::MissingOctetCount {
                offset: self.offset,
            });
        };
        let remaining = rest.len() - header_len;
        if count > remaining {
            return Err(FramingError::OctetCountPastEnd {
                count,
                offset: self.offset,
                remaining,
            });
        }
        let start = self.offset + header_len;
        self.offset = start + count;
        Ok(Some(Frame {
            data: self.body.slice(start..start + count.min(self.max_frame)),
            truncated: count > self.max_frame,
        }))
    }
}

impl Iterator for OctetCountedFrames {
    type Item = Result<Frame, FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self.next_frame().transpose();
        self.failed = matches!(result, Some(Err(_)));
        result
    }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
