//! `split_octet_counted` on any HTTP body: no panics, frames within
//! `max_frame`, and nothing after the first error.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codec::framing::split_octet_counted;

fuzz_target!(|data: &[u8]| {
    let Some((max_frame, body)) = data.split_first() else {
        return;
    };
    let max_frame = usize::from(*max_frame) + 1;
    let mut seen_error = false;
    let mut total = 0;
    for item in split_octet_counted(Bytes::copy_from_slice(body), max_frame) {
        assert!(!seen_error, "item after an error");
        match item {
            Ok(frame) => {
                assert!(frame.data.len() <= max_frame);
                total += frame.data.len();
            }
            Err(_) => seen_error = true,
        }
    }
    assert!(total <= body.len());
});
