//! The log's record decoder on any bytes: no panics, a typed error for
//! every bad frame, no frame longer than the limit, and every frame it
//! accepts encodes back to exactly the bytes it came from. When the first
//! byte says so, the bytes also become the records of a segment file, which
//! `open` must recover from (never an error for damaged content) and whose
//! readable records must all read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_log::format::{
    decode_frame, encode_frame, frame_extent, segment_header, DecodeError, FRAME_PREFIX_LEN,
    MIN_FRAME_LEN,
};
use sluice_log::{open, LogConfig, ReadLimit};

fn frames(max: usize, mut rest: &[u8]) {
    loop {
        match decode_frame(rest, max) {
            Ok((r, used)) => {
                assert!((MIN_FRAME_LEN..=max).contains(&used) && used <= rest.len());
                assert_eq!(frame_extent(rest, max), Ok(used));
                let mut again = Vec::new();
                let n = encode_frame(
                    &mut again,
                    r.position,
                    r.timestamp,
                    r.key,
                    r.source_id,
                    max,
                    |b| b.extend_from_slice(r.envelope),
                )
                .expect("an accepted record re-encodes");
                assert_eq!(n, used);
                assert_eq!(&again[..], &rest[..used]);
                rest = &rest[used..];
            }
            Err(DecodeError::Incomplete { needed, available }) => {
                assert_eq!(available, rest.len());
                assert!(needed > available && needed <= max.max(FRAME_PREFIX_LEN));
                return;
            }
            Err(DecodeError::TooLarge { len, .. }) => {
                assert!(len > max as u64);
                return;
            }
            Err(_) => return,
        }
    }
}

fn segment(max: usize, body: &[u8]) {
    // tmpfs where there is one: open's fsyncs are then nearly free.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let mut file = segment_header().to_vec();
    file.extend_from_slice(body);
    std::fs::write(dir.path().join("00000000000000000000.seg"), &file).expect("write");
    let mut config = LogConfig::new(dir.path());
    config.max_record_bytes = max;
    let (writer, report) = open(config).expect("open never fails on damaged content");
    let reader = writer.reader();
    let batch = reader
        .read_from(0, ReadLimit::records(usize::MAX))
        .expect("read");
    assert_eq!(batch.records.len() as u64, report.records);
    for (i, r) in batch.records.iter().enumerate() {
        assert_eq!(r.position, i as u64);
    }
    assert!(writer.next_position() >= report.records);
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    // Small limits reach the TooLarge path; 255 means the 16 MiB default.
    let max = match mode & 0x7f {
        0x7f => sluice_log::format::DEFAULT_MAX_RECORD_BYTES,
        m => MIN_FRAME_LEN + usize::from(m) * 8,
    };
    frames(max, rest);
    if mode & 0x80 != 0 {
        segment(max, rest);
    }
});
