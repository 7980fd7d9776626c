use super::*;

/// Feeds `input` to a fresh decoder in chunks of `chunk` bytes, then EOF.
fn decode_all_chunked(max_frame: usize, input: &[u8], chunk: usize) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(frame) = decoder.decode(&mut buf).expect("decode") {
            frames.push(frame);
        }
        assert!(buf.len() <= max_frame + 10, "buffered {} bytes", buf.len());
    }
    while let Some(frame) = decoder.decode_eof(&mut buf).expect("decode_eof") {
        frames.push(frame);
    }
    assert!(buf.is_empty());
    frames
}

fn decode_all(max_frame: usize, input: &[u8]) -> Vec<Frame> {
    let whole = decode_all_chunked(max_frame, input, input.len());
    let bytewise = decode_all_chunked(max_frame, input, 1);
    assert_eq!(whole, bytewise, "chunking changed the result");
    whole
}

fn frame(data: &[u8]) -> Frame {
    Frame {
        data: Bytes::copy_from_slice(data),
        truncated: false,
    }
}

fn truncated(data: &[u8]) -> Frame {
    Frame {
        data: Bytes::copy_from_slice(data),
        truncated: true,
    }
}

#[test]
fn octet_counted_frames() {
    let input = b"11 <13>1 - - x5 hello";
    assert_eq!(
        decode_all(1024, input),
        vec![frame(b"<13>1 - - x"), frame(b"hello")]
    );
}

#[test]
fn octet_counted_frame_may_contain_newlines() {
    assert_eq!(decode_all(1024, b"6 a\nb\r\nc"), vec![frame(b"a\nb\r\nc")]);
}

#[test]
fn lf_crlf_and_nul_terminated_lines() {
    let input = b"one\ntwo\r\nthree\0four\n";
    assert_eq!(
        decode_all(1024, input),
        vec![
            frame(b"one"),
            frame(b"two"),
            frame(b"three"),
            frame(b"four")
        ]
    );
}

#[test]
fn empty_lines_are_skipped() {
    assert_eq!(
        decode_all(1024, b"\n\r\n\0a\n\n\nb\n\r\n"),
        vec![frame(b"a"), frame(b"b")]
    );
}

#[test]
fn mixed_framings_in_one_stream() {
    let input = b"<13>plain line\n5 hello\n3 abc<14>another\r\n2 hi";
    assert_eq!(
        decode_all(1024, input),
        vec![
            frame(b"<13>plain line"),
            frame(b"hello"),
            frame(b"abc"),
            frame(b"<14>another"),
            frame(b"hi"),
        ]
    );
}

#[test]
fn digits_without_space_are_an_lf_line() {
    let input = b"2026-11-21 booted\n1234567890 ten digits\n12\n";
    assert_eq!(
        decode_all(1024, input),
        vec![
            frame(b"2026-11-21 booted"),
            frame(b"1234567890 ten digits"),
            frame(b"12"),
        ]
    );
}

#[test]
fn leading_zero_is_not_an_octet_count() {
    assert_eq!(decode_all(1024, b"05 hello\n"), vec![frame(b"05 hello")]);
}

#[test]
fn unterminated_last_line_is_a_frame_at_eof() {
    assert_eq!(
        decode_all(1024, b"a\nlast\r"),
        vec![frame(b"a"), frame(b"last")]
    );
    assert_eq!(decode_all(1024, b"123"), vec![frame(b"123")]);
}

#[test]
fn short_octet_counted_frame_at_eof_is_truncated() {
    assert_eq!(decode_all(1024, b"10 abc"), vec![truncated(b"abc")]);
    assert_eq!(decode_all(1024, b"10 "), vec![]);
}

#[test]
fn oversized_lf_line_is_truncated_and_rest_discarded() {
    let mut input = vec![b'x'; 100];
    input.extend_from_slice(b"\nnext\n");
    assert_eq!(
        decode_all(10, &input),
        vec![truncated(&[b'x'; 10]), frame(b"next")]
    );
}

#[test]
fn oversized_lf_line_discarded_until_eof() {
    let input = vec![b'y'; 50];
    assert_eq!(decode_all(8, &input), vec![truncated(&[b'y'; 8])]);
}

#[test]
fn line_of_exactly_max_frame_is_not_truncated() {
    assert_eq!(
        decode_all(4, b"abcd\r\nefgh\nijklm\n"),
        vec![frame(b"abcd"), frame(b"efgh"), truncated(b"ijkl")]
    );
    assert_eq!(decode_all(4, b"abcd"), vec![frame(b"abcd")]);
}

#[test]
fn oversized_octet_counted_frame_is_truncated_and_skipped() {
    let mut input = b"30 ".to_vec();
    input.extend_from_slice(&[b'z'; 30]);
    input.extend_from_slice(b"2 ok");
    assert_eq!(
        decode_all(10, &input),
        vec![truncated(&[b'z'; 10]), frame(b"ok")]
    );
}

#[test]
fn huge_octet_count_is_an_error() {
    let mut decoder = FrameDecoder::new(1024);
    let mut buf = BytesMut::from(&b"999999999 <13>"[..]);
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        FramingError::OctetCountTooLarge {
            count: 999_999_999,
            limit: 1 << 20
        }
    );
    assert_eq!(
        err.to_string(),
        "octet count 999999999 exceeds limit 1048576"
    );
}

#[test]
fn count_limit_scales_with_max_frame() {
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::from(&b"16777216 x"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    let mut buf = BytesMut::from(&b"16777217 x"[..]);
    assert!(FrameDecoder::new(1 << 20).decode(&mut buf).is_err());
}

#[test]
fn invalid_utf8_is_kept_as_bytes() {
    assert_eq!(
        decode_all(64, b"\xff\xfe bad\n3 \xc3\x28\x80"),
        vec![frame(b"\xff\xfe bad"), frame(b"\xc3\x28\x80")]
    );
}

#[test]
fn buffer_stays_bounded_for_an_endless_line() {
    let mut decoder = FrameDecoder::new(16);
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for _ in 0..1000 {
        buf.extend_from_slice(&[b'a'; 7]);
        while decoder.decode(&mut buf).unwrap().is_some() {
            frames += 1;
        }
        assert!(buf.len() <= 18);
    }
    assert_eq!(frames, 1);
}

#[test]
fn logplex_body_splits_zero_copy() {
    let body = Bytes::from_static(b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n5 hello\n");
    let frames: Vec<_> = split_octet_counted(body.clone(), 1024)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames.len(), 2);
    assert!(frames[0].data.ends_with(b"to up\n"));
    assert_eq!(frames[1], frame(b"hello"));
    // The frame shares the body's memory.
    assert_eq!(frames[1].data.as_ptr(), body[body.len() - 6..].as_ptr());
}

#[test]
fn logplex_body_with_oversized_frame() {
    let frames: Vec<_> = split_octet_counted(Bytes::from_static(b"6 abcdef1 g"), 4)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames, vec![truncated(b"abcd"), frame(b"g")]);
}

#[test]
fn logplex_body_wrong_count_is_an_error_for_the_rest() {
    let mut frames = split_octet_counted(Bytes::from_static(b"2 ok3 abcdX 1 z"), 1024);
    assert_eq!(frames.next(), Some(Ok(frame(b"ok"))));
    assert_eq!(frames.next(), Some(Ok(frame(b"abc"))));
    let err = frames.next().unwrap().unwrap_err();
    assert_eq!(err, FramingError::MissingOctetCount { offset: 9 });
    assert_eq!(frames.next(), None);

    let mut frames = split_octet_counted(Bytes::from_static(b"20 short"), 1024);
    assert_eq!(
        frames.next(),
        Some(Err(FramingError::OctetCountPastEnd {
            count: 20,
            offset: 0,
            remaining: 5
        }))
    );
    assert_eq!(frames.next(), None);
}

#[test]
fn logplex_empty_body_has_no_frames() {
    assert_eq!(split_octet_counted(Bytes::new(), 10).count(), 0);
    assert_eq!(
        split_octet_counted(Bytes::from_static(b"\r\n"), 10).count(),
        0
    );
}
