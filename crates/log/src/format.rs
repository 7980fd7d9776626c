//! The bytes on disk: the segment header and the record frame.
//!
//! A segment file starts with a 16-byte header and then holds records back
//! to back, each one frame:
//!
//! ```text
//! segment header  magic "SLUICELG" (8) | version u32 LE (4) | reserved u32 (4)
//! frame           len u32 LE | crc u32 LE | body (len bytes)
//! body            position u64 LE | timestamp i64 LE (Unix ns)
//!                 | key_len u16 LE | source_len u16 LE
//!                 | key (UTF-8) | source id (UTF-8) | envelope (protobuf)
//! ```
//!
//! `crc` is CRC-32C (Castagnoli, as ext4, iSCSI and Kafka use it) over the
//! four `len` bytes followed by the body, so a damaged length is caught too,
//! and a zero-filled region (a power loss after the file grew but before the
//! data landed) never reads as a record: its length 0 is below the minimum.
//! The encoding is canonical — decoding a frame and encoding the record again
//! gives the same bytes — which the `log_record` fuzz target checks.
//!
//! The decoder borrows from its input, never allocates and never panics: a
//! bad frame is a typed [`DecodeError`], and a length over the caller's limit
//! is refused before anyone reads (or allocates for) the body.

use thiserror::Error;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SLUICELG";
/// Version of the segment format written here.
pub const SEGMENT_VERSION: u32 = 1;
/// Bytes before the first record of a segment.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// `len` and `crc` before each body.
pub const FRAME_PREFIX_LEN: usize = 8;
/// Fixed part of a body: position, timestamp and the two field lengths.
pub const BODY_FIXED_LEN: usize = 20;
/// The smallest frame: empty key, source id and envelope.
pub const MIN_FRAME_LEN: usize = FRAME_PREFIX_LEN + BODY_FIXED_LEN;
/// Default limit on one frame, prefix included.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
/// Longest key or source id a frame can hold.
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// A decoded record, borrowing the frame it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub position: u64,
    pub timestamp: i64,
    pub key: &'a str,
    pub source_id: &'a str,
    /// The protobuf-encoded `loggregator.v2.Envelope`, as stored.
    pub envelope: &'a [u8],
}

/// Why bytes are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ends inside the frame (a torn write at the end of a file).
    #[error("incomplete record: need {needed} bytes, have {available}")]
    Incomplete { needed: usize, available: usize },
    #[error("record body length {len} is below the minimum {BODY_FIXED_LEN}")]
    TooShort { len: u32 },
    #[error("record of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u64, max: usize },
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error(
        "key ({key_len} bytes) and source id ({source_len} bytes) overrun a body of {body_len}"
    )]
    FieldLengths {
        key_len: usize,
        source_len: usize,
        body_len: usize,
    },
    #[error("record {field} is not UTF-8")]
    NotUtf8 { field: &'static str },
}

/// Why a record cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{field} of {len} bytes is longer than {MAX_FIELD_LEN}")]
    FieldTooLong { field: &'static str, len: usize },
    #[error("record of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
}

/// Why a segment header is not valid.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("segment header is short ({len} of {SEGMENT_HEADER_LEN} bytes)")]
    Short { len: usize },
    #[error("segment header has the wrong magic")]
    BadMagic,
    #[error("segment format version {0} is not supported")]
    Version(u32),
}

/// The header every segment file starts with.
pub fn segment_header() -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h
}

/// Checks the first bytes of a segment file.
pub fn check_segment_header(buf: &[u8]) -> Result<(), HeaderError> {
    if buf.len() < SEGMENT_HEADER_LEN {
        return Err(HeaderError::Short { len: buf.len() });
    }
    if buf[..8] != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if version != SEGMENT_VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(())
}

/// The size of a frame holding these fields, or why it cannot be written.
pub fn frame_len(
    key_len: usize,
    source_len: usize,
    envelope_len: usize,
    max: usize,
) -> Result<usize, EncodeError> {
    if key_len > MAX_FIELD_LEN {
        return Err(EncodeError::FieldTooLong {
            field: "key",
            len: key_len,
        });
    }
    if source_len > MAX_FIELD_LEN {
        return Err(EncodeError::FieldTooLong {
            field: "source id",
            len: source_len,
        });
    }
    let len = MIN_FRAME_LEN
        .saturating_add(key_len)
        .saturating_add(source_len)
        .saturating_add(envelope_len);
    if len > max || len - FRAME_PREFIX_LEN > u32::MAX as usize {
        return Err(EncodeError::TooLarge { len, max });
    }
    Ok(len)
}

/// Appends one frame to `out`; `write_envelope` appends the envelope bytes.
///
/// On error `out` is left as it was.
pub fn encode_frame(
    out: &mut Vec<u8>,
    position: u64,
    timestamp: i64,
    key: &str,
    source_id: &str,
    max: usize,
    write_envelope: impl FnOnce(&mut Vec<u8>),
) -> Result<usize, EncodeError> {
    // Checks the field lengths; the envelope length is checked once written.
    frame_len(key.len(), source_id.len(), 0, usize::MAX)?;
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_PREFIX_LEN]);
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    // Both fit in u16: checked above.
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(source_id.len() as u16).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(source_id.as_bytes());
    write_envelope(out);
    let len = out.len() - start;
    if len > max || len - FRAME_PREFIX_LEN > u32::MAX as usize {
        out.truncate(start);
        return Err(EncodeError::TooLarge { len, max });
    }
    let body_len = ((len - FRAME_PREFIX_LEN) as u32).to_le_bytes();
    out[start..start + 4].copy_from_slice(&body_len);
    let crc = checksum(body_len, &out[start + FRAME_PREFIX_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(len)
}

/// The total length of the frame at the start of `buf`, read from its
/// length prefix and checked against the limits; nothing else is verified.
/// `Incomplete` when fewer than the 8 prefix bytes are there.
pub fn frame_extent(buf: &[u8], max: usize) -> Result<usize, DecodeError> {
    let Some(prefix) = buf.get(..4) else {
        return Err(DecodeError::Incomplete {
            needed: FRAME_PREFIX_LEN,
            available: buf.len(),
        });
    };
    let body_len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if (body_len as usize) < BODY_FIXED_LEN {
        return Err(DecodeError::TooShort { len: body_len });
    }
    let total = FRAME_PREFIX_LEN as u64 + u64::from(body_len);
    if total > max as u64 {
        return Err(DecodeError::TooLarge { len: total, max });
    }
    Ok(total as usize)
}

/// Decodes the frame at the start of `buf`, returning it and its length.
pub fn decode_frame(buf: &[u8], max: usize) -> Result<(RecordRef<'_>, usize), DecodeError> {
    let total = frame_extent(buf, max)?;
    let frame = buf.get(..total).ok_or(DecodeError::Incomplete {
        needed: total,
        available: buf.len(),
    })?;
    let prefix: [u8; 4] = [frame[0], frame[1], frame[2], frame[3]];
    let stored = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let body = &frame[FRAME_PREFIX_LEN..];
    let computed = checksum(prefix, body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok((parse_body(body)?, total))
}

fn parse_body(body: &[u8]) -> Result<RecordRef<'_>, DecodeError> {
    let (fixed, rest) = body.split_at(BODY_FIXED_LEN);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&fixed[i..i + 8]);
        b
    };
    let position = u64::from_le_bytes(u64_at(0));
    let timestamp = i64::from_le_bytes(u64_at(8));
    let key_len = u16::from_le_bytes([fixed[16], fixed[17]]) as usize;
    let source_len = u16::from_le_bytes([fixed[18], fixed[19]]) as usize;
    if key_len + source_len > rest.len() {
        return Err(DecodeError::FieldLengths {
            key_len,
            source_len,
            body_len: body.len(),
        });
    }
    let (key, rest) = rest.split_at(key_len);
    let (source_id, envelope) = rest.split_at(source_len);
    let key = std::str::from_utf8(key).map_err(|_| DecodeError::NotUtf8 { field: "key" })?;
    let source_id =
        std::str::from_utf8(source_id).map_err(|_| DecodeError::NotUtf8 { field: "source id" })?;
    Ok(RecordRef {
        position,
        timestamp,
        key,
        source_id,
        envelope,
    })
}

fn checksum(len_prefix: [u8; 4], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_prefix), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = DEFAULT_MAX_RECORD_BYTES;

    fn frame(position: u64, key: &str, source: &str, env: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, position, -5, key, source, MAX, |b| {
            b.extend_from_slice(env)
        })
        .unwrap();
        out
    }

    #[test]
    fn round_trip_and_length() {
        let f = frame(7, "apptail.a", "a", b"env");
        assert_eq!(f.len(), frame_len(9, 1, 3, MAX).unwrap());
        let (r, used) = decode_frame(&f, MAX).unwrap();
        assert_eq!(used, f.len());
        assert_eq!(
            r,
            RecordRef {
                position: 7,
                timestamp: -5,
                key: "apptail.a",
                source_id: "a",
                envelope: b"env"
            }
        );
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let f = frame(1, "k", "s", b"payload");
        for byte in 0..f.len() {
            for bit in 0..8 {
                let mut g = f.clone();
                g[byte] ^= 1 << bit;
                if let Ok((r, _)) = decode_frame(&g, MAX) {
                    panic!("flip at {byte}:{bit} decoded as {r:?}");
                }
            }
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(
            decode_frame(&[0u8; 64], MAX),
            Err(DecodeError::TooShort { len: 0 })
        );
    }

    #[test]
    fn truncation_is_incomplete() {
        let f = frame(1, "k", "s", b"payload");
        for cut in 0..f.len() {
            assert!(matches!(
                decode_frame(&f[..cut], MAX),
                Err(DecodeError::Incomplete { .. })
            ));
        }
    }

    #[test]
    fn length_over_limit_is_refused_before_reading_the_body() {
        let mut buf = vec![0u8; 8];
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&buf, 1024),
            Err(DecodeError::TooLarge { max: 1024, .. })
        ));
    }

    #[test]
    fn encode_refuses_oversized_and_leaves_buffer() {
        let mut out = vec![1, 2, 3];
        let err = encode_frame(&mut out, 0, 0, "k", "s", 64, |b| {
            b.extend_from_slice(&[0u8; 100])
        });
        assert!(matches!(err, Err(EncodeError::TooLarge { .. })));
        assert_eq!(out, vec![1, 2, 3]);
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        assert!(matches!(
            encode_frame(&mut out, 0, 0, &long, "s", MAX, |_| {}),
            Err(EncodeError::FieldTooLong { field: "key", .. })
        ));
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn header_checks() {
        assert_eq!(check_segment_header(&segment_header()), Ok(()));
        assert_eq!(check_segment_header(&[0u8; 16]), Err(HeaderError::BadMagic));
        assert_eq!(
            check_segment_header(&[0u8; 3]),
            Err(HeaderError::Short { len: 3 })
        );
        let mut h = segment_header();
        h[8] = 9;
        assert_eq!(check_segment_header(&h), Err(HeaderError::Version(9)));
    }
}
