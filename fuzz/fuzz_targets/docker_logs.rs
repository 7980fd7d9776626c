//! A Docker logs body (multiplexed or TTY) from any bytes, fed in pieces
//! of any size: the decoder never panics, never holds more than a frame's
//! bound, and the lines joined from its entries stay within the max
//! message.
#![no_main]

use agent::docker::frames::{FrameDecoder, MAX_FRAME, TTY_PARTIAL_BYTES};
use agent::docker::lines::LineJoiner;
use libfuzzer_sys::fuzz_target;

const MAX_MESSAGE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let tty = first & 1 == 1;
    let piece = usize::from(first >> 1).max(1);
    let mut decoder = FrameDecoder::new(tty);
    let mut joiner = LineJoiner::new(MAX_MESSAGE);
    let mut check = |decoder: &mut FrameDecoder, at_end: bool| -> bool {
        loop {
            let next = if at_end {
                decoder.finish()
            } else {
                decoder.next_chunk()
            };
            match next {
                Ok(Some(chunk)) => {
                    assert!(chunk.text.len() <= MAX_FRAME.max(TTY_PARTIAL_BYTES));
                    if let Some(line) = joiner.push(chunk) {
                        assert!(line.text.len() <= MAX_MESSAGE);
                    }
                    if at_end {
                        return true;
                    }
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    };
    for part in rest.chunks(piece) {
        decoder.push(part);
        if !check(&mut decoder, false) {
            return;
        }
    }
    check(&mut decoder, true);
    for line in joiner.flush() {
        assert!(line.text.len() <= MAX_MESSAGE);
    }
});
