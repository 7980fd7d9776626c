//! `FrameDecoder` on any byte stream, split into reads at arbitrary points:
//! no panics, no frame longer than `max_frame`, bounded buffering, and the
//! same frames whatever the chunking.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codec::framing::{Frame, FrameDecoder};

/// Decodes `stream` read in chunks of the given sizes; stops at an error.
fn decode(max_frame: usize, stream: &[u8], sizes: &[u8]) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = usize::from(*sizes.next().unwrap_or(&255)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return frames,
            }
        }
        assert!(buf.len() <= max_frame + 10);
    }
    while let Ok(Some(frame)) = decoder.decode_eof(&mut buf) {
        frames.push(frame);
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: max_frame; byte 1: how many chunk-size bytes follow; those
    // bytes: the read sizes; the rest: the stream (octet-counted and LF
    // frames mixed however the fuzzer likes).
    let [max_frame, size_count, rest @ ..] = data else {
        return;
    };
    let max_frame = usize::from(*max_frame) + 1;
    let (sizes, stream) = rest.split_at(usize::from(*size_count % 16).min(rest.len()));
    let chunked = decode(max_frame, stream, sizes);
    for frame in &chunked {
        assert!(frame.data.len() <= max_frame);
    }
    assert_eq!(chunked, decode(max_frame, stream, &[255]));
});
