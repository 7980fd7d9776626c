//! Property tests for the decoders: no panics and bounded output on any
//! input, framing that survives any chunking, and format → parse round trips.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_codec::framing::{split_octet_counted, Frame, FrameDecoder};
use sluice_codec::rfc5424::{format_rfc5424, octet_count_frame};
use sluice_codec::syslog::{parse, SyslogFormat};

/// Splits `input` into chunks whose sizes cycle through `sizes`.
fn chunks<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*size).clamp(1, rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Feeds the chunks to a decoder, then EOF; stops at the first error.
fn decode_chunks(max_frame: usize, pieces: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
        assert!(buf.len() <= max_frame + 10, "buffered {}", buf.len());
    }
    loop {
        match decoder.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break,
            Err(_) => return (frames, true),
        }
    }
    (frames, false)
}

/// A message and whether to send it octet-counted (else LF-terminated).
fn framed_message() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(|m| (m, true)),
        // An LF line: no terminators inside, no trailing CR, and not
        // starting like an octet count.
        proptest::collection::vec(
            any::<u8>().prop_filter("terminator", |b| *b != b'\n' && *b != 0),
            1..40
        )
        .prop_filter("looks counted or ends in CR", |m| {
            !matches!(m.first(), Some(b'1'..=b'9')) && m.last() != Some(&b'\r')
        })
        .prop_map(|m| (m, false)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoder_survives_random_bytes(
        input in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), Just(b'1'), Just(b'9')], 0..600),
        sizes in proptest::collection::vec(1usize..50, 1..8),
        max_frame in 1usize..64,
    ) {
        let chunked = decode_chunks(max_frame, &chunks(&input, &sizes));
        for frame in &chunked.0 {
            prop_assert!(frame.data.len() <= max_frame);
        }
        prop_assert_eq!(chunked, decode_chunks(max_frame, &[&input]));
    }

    #[test]
    fn mixed_framings_decode_back_under_any_chunking(
        messages in proptest::collection::vec(framed_message(), 0..20),
        sizes in proptest::collection::vec(1usize..30, 1..8),
    ) {
        let mut stream = Vec::new();
        for (message, counted) in &messages {
            if *counted {
                octet_count_frame(&mut stream, message);
            } else {
                stream.extend_from_slice(message);
                stream.push(b'\n');
            }
        }
        let (frames, failed) = decode_chunks(64, &chunks(&stream, &sizes));
        prop_assert!(!failed);
        let decoded: Vec<Vec<u8>> = frames.iter().map(|f| f.data.to_vec()).collect();
        let expected: Vec<Vec<u8>> = messages.into_iter().map(|(m, _)| m).collect();
        prop_assert_eq!(decoded, expected);
        prop_assert!(frames.iter().all(|f| !f.truncated));
    }

    #[test]
    fn logplex_split_survives_random_bodies(
        body in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), Just(b'3')], 0..300),
        max_frame in 1usize..32,
    ) {
        for frame in split_octet_counted(Bytes::from(body), max_frame).flatten() {
            prop_assert!(frame.data.len() <= max_frame);
        }
    }

    #[test]
    fn parse_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..300), now in any::<i64>()) {
        let msg = parse(&frame, now);
        prop_assert!(msg.message.len() <= frame.len());
        prop_assert!(msg.priority.is_none_or(|p| p <= 191));
    }

    #[test]
    fn parse_never_panics_on_syslog_like_input(
        head in prop_oneof![Just("<13>1 "), Just("<191>"), Just("<0>Nov 21 13:14:58 "), Just("<7>2026-11-21T13:14:58Z ")],
        tail in "[ -~\\[\\]\"\\\\=é]{0,80}",
        now in any::<i64>(),
    ) {
        let frame = format!("{head}{tail}");
        let msg = parse(frame.as_bytes(), now);
        prop_assert!(msg.format != SyslogFormat::Raw || msg.message == frame.trim_end_matches(['\r', '\n']).as_bytes());
    }

    #[test]
    fn format_then_parse_round_trips(
        pri in 0u8..=191,
        timestamp in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000,
        hostname in "[!-~]{0,255}",
        app_name in "[!-~]{0,48}",
        proc_id in "[!-~]{0,128}",
        msg_id in "[!-~]{0,32}",
        sd in proptest::collection::vec(
            ("[a-zA-Z0-9@._-]{1,32}", proptest::collection::vec(("[a-zA-Z0-9._-]{1,32}", any::<String>()), 0..3)),
            0..3),
        msg in proptest::collection::vec(any::<u8>(), 0..100)
            .prop_filter("no BOM or trailing newline", |m| {
                !m.starts_with(b"\xEF\xBB\xBF") && !matches!(m.last(), Some(b'\r' | b'\n'))
            }),
    ) {
        let sd_params: Vec<Vec<(&str, &str)>> = sd
            .iter()
            .map(|(_, params)| params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect();
        let sd_refs: Vec<(&str, &[(&str, &str)])> = sd
            .iter()
            .zip(&sd_params)
            .map(|((id, _), params)| (id.as_str(), params.as_slice()))
            .collect();
        let mut out = Vec::new();
        format_rfc5424(&mut out, pri, timestamp, &hostname, &app_name, &proc_id, &msg_id, &sd_refs, &msg);

        let parsed = parse(&out, 0);
        let field = |s: &str| (!s.is_empty() && s != "-").then(|| s.to_string());
        prop_assert_eq!(parsed.format, SyslogFormat::Rfc5424);
        prop_assert_eq!(parsed.priority, Some(pri));
        prop_assert_eq!(parsed.timestamp, Some(timestamp - timestamp.rem_euclid(1000)));
        prop_assert_eq!(parsed.hostname.map(str::to_string), field(&hostname));
        prop_assert_eq!(parsed.app_name.map(str::to_string), field(&app_name));
        prop_assert_eq!(parsed.proc_id.map(str::to_string), field(&proc_id));
        prop_assert_eq!(parsed.msg_id.map(str::to_string), field(&msg_id));
        prop_assert_eq!(parsed.structured_data.len(), sd.len());
        for (element, (id, params)) in parsed.structured_data.iter().zip(&sd) {
            prop_assert_eq!(element.id, id.as_str());
            let got: Vec<(String, String)> = element.params.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(&got, params);
        }
        prop_assert_eq!(parsed.message, &msg[..]);
    }
}
