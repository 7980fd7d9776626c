//! How envelopes sit in the stream: several to a message, and where each
//! one is (its position).
//!
//! One envelope per message cost the three nats-servers about 68 µs of CPU
//! per envelope with replicas 3 (`bench/cluster.sh`: 20,000 msg/s into
//! the cluster against 560,000 into the embedded log), so consecutive
//! envelopes of one subject in an appended batch share a message: up to
//! [`MAX_PER_MESSAGE`] envelopes or [`MAX_MESSAGE_BYTES`], encoded as a
//! `loggregator.v2.EnvelopeBatch` (the wire form nozzles already know).
//!
//! A position is the message's stream sequence shifted left by
//! [`INDEX_BITS`], plus the envelope's index in the message: positions
//! grow with the stream, are the same on every node, and leave the
//! indexes a message does not use void (the node's cache is
//! [sparse](sluice_log::RecentCache::sparse)).

use bytes::Bytes;
use envelope::{Entry, Envelope, EnvelopeBatch};
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message as _;
use sluice_log::{Position, StoredEntry};
use std::sync::Arc;

use crate::publish::Outgoing;
use crate::subject;

/// Bits of a position that number an envelope within its message.
pub const INDEX_BITS: u32 = 16;
/// Envelopes in one message at most.
pub const MAX_PER_MESSAGE: usize = 1024;
/// A message stops growing at about this many bytes (NATS refuses more
/// than its `max_payload`, 1 MiB by default).
pub const MAX_MESSAGE_BYTES: usize = 256 << 10;
/// One envelope's encoded bytes at most; larger ones are dropped as
/// `too_large` (they would not fit under `max_payload`).
pub const MAX_ENVELOPE_BYTES: usize = (1 << 20) - 4096;

/// The position of the `index`th envelope of message `seq`.
pub fn position(seq: u64, index: u64) -> Position {
    seq << INDEX_BITS | (index & ((1 << INDEX_BITS) - 1))
}

/// The stream sequence of the message holding `position`.
pub fn seq_of(position: Position) -> u64 {
    position >> INDEX_BITS
}

/// The envelope's index within its message.
pub fn index_of(position: Position) -> u64 {
    position & ((1 << INDEX_BITS) - 1)
}

/// Messages for a batch (stamped already), in the batch's order: each run
/// of envelopes with one subject shares messages. Also returns how many
/// envelopes were too large to send.
pub fn pack(prefix: &str, batch: Vec<Envelope>) -> (Vec<Outgoing>, u64) {
    let mut out: Vec<Outgoing> = Vec::new();
    let mut too_large = 0u64;
    let mut current: Option<(String, Vec<u8>, usize)> = None;
    for env in batch {
        let len = env.encoded_len();
        if len > MAX_ENVELOPE_BYTES {
            too_large += 1;
            continue;
        }
        let subject = subject::subject_for(prefix, &env);
        let fits = current.as_ref().is_some_and(|(s, buf, n)| {
            *s == subject && *n < MAX_PER_MESSAGE && buf.len() + len + 8 <= MAX_MESSAGE_BYTES
        });
        if !fits {
            if let Some((subject, buf, n)) = current.take() {
                out.push(Outgoing {
                    subject,
                    payload: Bytes::from(buf),
                    envelopes: n as u32,
                });
            }
            current = Some((subject, Vec::with_capacity(len.max(256) * 4), 0));
        }
        if let Some((_, buf, n)) = current.as_mut() {
            // `EnvelopeBatch` field 1, length-delimited: what prost writes.
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint(len as u64, buf);
            env.encode_into(buf);
            *n += 1;
        }
    }
    if let Some((subject, buf, n)) = current {
        out.push(Outgoing {
            subject,
            payload: Bytes::from(buf),
            envelopes: n as u32,
        });
    }
    (out, too_large)
}

/// The entries of message `seq`; none when it is not an envelope batch
/// (a damaged or foreign message is skipped, never trusted).
pub fn unpack(seq: u64, payload: Bytes) -> Vec<StoredEntry> {
    let Ok(batch) = EnvelopeBatch::decode(payload) else {
        return Vec::new();
    };
    batch
        .batch
        .into_iter()
        .take(1 << INDEX_BITS)
        .enumerate()
        .map(|(i, envelope)| {
            let position = position(seq, i as u64);
            let mut entry = Entry::new(envelope);
            entry.seq = position;
            StoredEntry {
                position,
                entry: Arc::new(entry),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use envelope::LogType;

    use super::*;

    fn log(source: &str, i: i64) -> Envelope {
        Envelope::log(
            i,
            source,
            "0",
            Bytes::from(format!("line {i}")),
            LogType::Out,
        )
    }

    #[test]
    fn runs_of_one_subject_share_a_message_and_unpack_in_order() {
        let batch = vec![log("a", 1), log("a", 2), log("b", 3), log("a", 4)];
        let (messages, too_large) = pack("L", batch.clone());
        assert_eq!(too_large, 0);
        let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(subjects, ["L.apptail.a", "L.apptail.b", "L.apptail.a"]);
        let first = unpack(7, messages[0].payload.clone());
        assert_eq!(first.len(), 2);
        assert_eq!(first[1].position, position(7, 1));
        assert_eq!(first[1].entry.envelope, batch[1]);
        assert_eq!(first[1].entry.seq, first[1].position);
        // The payload is a loggregator.v2.EnvelopeBatch.
        let decoded = EnvelopeBatch::decode(messages[0].payload.clone()).expect("a batch");
        assert_eq!(decoded.batch, batch[..2]);
    }

    #[test]
    fn messages_are_bounded() {
        let batch: Vec<Envelope> = (0..3000).map(|i| log("a", i)).collect();
        let (messages, _) = pack("L", batch);
        let counts: Vec<usize> = messages
            .iter()
            .map(|m| unpack(1, m.payload.clone()).len())
            .collect();
        assert_eq!(counts, [1024, 1024, 952]);
        let big = Envelope::log(0, "a", "0", Bytes::from(vec![b'x'; 200_000]), LogType::Out);
        let (messages, _) = pack("L", vec![big.clone(), big.clone(), big]);
        assert_eq!(messages.len(), 3, "each near the byte bound on its own");
        let huge = Envelope::log(0, "a", "0", Bytes::from(vec![b'x'; 2 << 20]), LogType::Out);
        assert_eq!(pack("L", vec![huge]).1, 1);
    }

    #[test]
    fn positions_split_into_sequence_and_index() {
        let p = position(123_456, 77);
        assert_eq!((seq_of(p), index_of(p)), (123_456, 77));
        assert!(position(2, 0) > position(1, 1023));
        assert!(unpack(1, Bytes::from_static(b"\xff\xff")).is_empty());
    }
}
