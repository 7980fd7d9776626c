//! Splitting a child's output stream into log lines.
//!
//! Lines end at `\n`; a `\r` before it is stripped (CRLF output). A line
//! longer than the maximum is **split**, not truncated: it is shipped as
//! several pieces of at most `max` bytes each, so no output is lost, and each
//! split is counted. A cut never falls inside a UTF-8 sequence when the line
//! is valid UTF-8 around the cut. Output that ends without a newline is
//! shipped as a last line at end of stream.

/// Incremental line splitter over arbitrary chunks of bytes.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    pending: Vec<u8>,
    splits: u64,
}

impl LineSplitter {
    /// `max` is the longest line shipped whole, in bytes (at least 1).
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max: max.max(1),
            pending: Vec::new(),
            splits: 0,
        }
    }

    /// Feeds a chunk; calls `emit` for each complete line (or piece of one).
    pub fn push(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let (line, rest) = (&chunk[..end], &chunk[end + 1..]);
                    if self.pending.is_empty() {
                        self.emit_long(line, &mut emit, true);
                    } else {
                        self.pending.extend_from_slice(line);
                        let whole = std::mem::take(&mut self.pending);
                        self.emit_long(&whole, &mut emit, true);
                        self.pending = whole;
                        self.pending.clear();
                    }
                    chunk = rest;
                }
                None => {
                    self.pending.extend_from_slice(chunk);
                    // Ship full pieces now, so a never-ending line cannot grow
                    // without bound; keep the remainder for the next chunk.
                    if self.pending.len() > self.max {
                        let whole = std::mem::take(&mut self.pending);
                        let kept = self.emit_long(&whole, &mut emit, false);
                        self.pending = whole[kept..].to_vec();
                    }
                    return;
                }
            }
        }
    }

    /// End of stream: ships what is left of an unterminated last line.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            let whole = std::mem::take(&mut self.pending);
            self.emit_long(&whole, &mut emit, true);
        }
    }

    /// How many times a long line was cut.
    pub fn splits(&self) -> u64 {
        self.splits
    }

    /// Emits `line` in pieces of at most `max` bytes. With `complete`, the
    /// whole line goes out (and a trailing `\r` is stripped); without, the
    /// last piece is kept back unless it is full: returns the offset where
    /// the kept-back part starts.
    fn emit_long(&mut self, line: &[u8], emit: &mut impl FnMut(&[u8]), complete: bool) -> usize {
        let line = if complete {
            line.strip_suffix(b"\r").unwrap_or(line)
        } else {
            line
        };
        let mut start = 0;
        while line.len() - start > self.max {
            let cut = start + utf8_cut(&line[start..], self.max);
            emit(&line[start..cut]);
            self.splits += 1;
            start = cut;
        }
        if complete {
            emit(&line[start..]);
            line.len()
        } else {
            start
        }
    }
}

/// Where to cut `bytes` (longer than `max`) so the piece is at most `max`
/// bytes and, where possible, does not end inside a UTF-8 sequence.
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    let mut cut = max;
    // A UTF-8 sequence is at most 4 bytes: back off at most 3.
    while cut > 0 && max - cut < 3 && bytes.get(cut).copied().is_some_and(is_continuation) {
        cut -= 1;
    }
    if cut == 0 || bytes.get(cut).copied().is_some_and(is_continuation) {
        max // not UTF-8 here: cut at the byte limit
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<String>, u64) {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(String::from_utf8_lossy(l).into_owned()));
        }
        s.finish(|l| out.push(String::from_utf8_lossy(l).into_owned()));
        (out, s.splits())
    }

    #[test]
    fn splits_on_newlines_and_strips_cr() {
        let (lines, splits) = split(100, &[b"a\nb\r\n\nc"]);
        assert_eq!(lines, ["a", "b", "", "c"]);
        assert_eq!(splits, 0);
    }

    #[test]
    fn joins_lines_across_chunks() {
        let (lines, _) = split(100, &[b"hel", b"lo\r", b"\nwor", b"ld\n"]);
        assert_eq!(lines, ["hello", "world"]);
    }

    #[test]
    fn no_trailing_empty_line_after_final_newline() {
        let (lines, _) = split(100, &[b"x\n"]);
        assert_eq!(lines, ["x"]);
        let (lines, _) = split(100, &[]);
        assert!(lines.is_empty());
    }

    #[test]
    fn long_lines_are_split_into_max_sized_pieces() {
        let (lines, splits) = split(4, &[b"abcdefghij\nxy\n"]);
        assert_eq!(lines, ["abcd", "efgh", "ij", "xy"]);
        assert_eq!(splits, 2);
    }

    #[test]
    fn exact_max_is_not_split() {
        let (lines, splits) = split(4, &[b"abcd\n"]);
        assert_eq!(lines, ["abcd"]);
        assert_eq!(splits, 0);
    }

    #[test]
    fn an_endless_line_is_shipped_as_it_grows() {
        let mut s = LineSplitter::new(4);
        let mut out: Vec<Vec<u8>> = Vec::new();
        for _ in 0..5 {
            s.push(b"abc", |l| out.push(l.to_vec()));
        }
        // 15 bytes seen: three full pieces out, 3 bytes held back.
        assert_eq!(out, [b"abca".to_vec(), b"bcab".to_vec(), b"cabc".to_vec()]);
        s.push(b"\n", |l| out.push(l.to_vec()));
        assert_eq!(out.last().map(Vec::as_slice), Some(&b"abc"[..]));
        assert_eq!(s.splits(), 3);
    }

    #[test]
    fn cuts_do_not_break_utf8() {
        // "ééé" is 6 bytes; max 3 would cut inside the second é.
        let (lines, _) = split(3, &["ééé\n".as_bytes()]);
        assert_eq!(lines, ["é", "é", "é"]);
        for l in &lines {
            assert!(!l.contains('\u{fffd}'));
        }
    }

    #[test]
    fn binary_garbage_is_cut_at_the_limit() {
        let mut s = LineSplitter::new(2);
        let mut out: Vec<Vec<u8>> = Vec::new();
        s.push(&[0x80, 0x80, 0x80, 0x80, b'\n'], |l| out.push(l.to_vec()));
        assert_eq!(out, [vec![0x80, 0x80], vec![0x80, 0x80]]);
    }
}
