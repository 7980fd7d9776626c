//! What goes in and comes out: [`Appendable`] items for the writer, owned
//! [`Record`]s from readers, and the helpers that turn a `loggregator.v2`
//! [`Envelope`] into stored bytes and back.
//!
//! The log stores the envelope as opaque protobuf bytes: it never needs to
//! look inside, and readers that only forward (drains, the firehose) can send
//! the bytes as they are.

use bytes::Bytes;
use envelope::Envelope;
use prost::Message;

use crate::format::RecordRef;

/// One item of a batch handed to [`LogWriter::append`](crate::LogWriter::append).
///
/// The writer has the envelope written straight into its batch buffer and
/// checks limits and plans segment rolls from what was written, so an
/// envelope is encoded once, with no intermediate allocation.
pub trait Appendable {
    /// Unix nanoseconds; retention by age and time-range reads use it.
    fn timestamp(&self) -> i64;
    /// Routing key (`apptail.<source_id>`, …).
    fn key(&self) -> &str;
    /// The source id the per-source index files the record under.
    fn source_id(&self) -> &str;
    /// Appends the protobuf-encoded envelope.
    fn write_envelope(&self, out: &mut Vec<u8>);
}

/// A record given as already-encoded envelope bytes.
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    pub timestamp: i64,
    pub key: &'a str,
    pub source_id: &'a str,
    pub envelope: &'a [u8],
}

impl Appendable for NewRecord<'_> {
    fn timestamp(&self) -> i64 {
        self.timestamp
    }
    fn key(&self) -> &str {
        self.key
    }
    fn source_id(&self) -> &str {
        self.source_id
    }
    fn write_envelope(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.envelope);
    }
}

/// A record given as an envelope and its routing key; the timestamp and
/// source id are the envelope's own, and it is encoded with prost.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeRecord<'a> {
    pub key: &'a str,
    pub envelope: &'a Envelope,
}

impl Appendable for EnvelopeRecord<'_> {
    fn timestamp(&self) -> i64 {
        self.envelope.timestamp
    }
    fn key(&self) -> &str {
        self.key
    }
    fn source_id(&self) -> &str {
        &self.envelope.source_id
    }
    fn write_envelope(&self, out: &mut Vec<u8>) {
        self.envelope.encode_into(out);
    }
}

/// A stored record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub position: u64,
    pub timestamp: i64,
    pub key: String,
    pub source_id: String,
    /// The protobuf-encoded envelope, as stored.
    pub envelope: Bytes,
}

impl Record {
    /// Decodes the stored envelope.
    pub fn decode_envelope(&self) -> Result<Envelope, prost::DecodeError> {
        Envelope::decode(self.envelope.clone())
    }

    pub(crate) fn from_ref(r: &RecordRef<'_>) -> Self {
        Record {
            position: r.position,
            timestamp: r.timestamp,
            key: r.key.to_owned(),
            source_id: r.source_id.to_owned(),
            envelope: Bytes::copy_from_slice(r.envelope),
        }
    }

    /// Bytes this record took on disk.
    pub fn frame_len(&self) -> usize {
        crate::format::MIN_FRAME_LEN + self.key.len() + self.source_id.len() + self.envelope.len()
    }
}

/// Encodes an envelope the way [`EnvelopeRecord`] stores it.
pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    envelope.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use envelope::LogType;

    #[test]
    fn envelope_record_writes_what_it_announced() {
        let mut e = Envelope::log(42, "app", "0", Bytes::from_static(b"hello"), LogType::Out);
        e.tags.insert("app_name".into(), "web".into());
        let r = EnvelopeRecord {
            key: "apptail.app",
            envelope: &e,
        };
        let mut out = Vec::new();
        r.write_envelope(&mut out);
        assert_eq!(out, encode_envelope(&e));
        let stored = Record {
            position: 0,
            timestamp: r.timestamp(),
            key: r.key().into(),
            source_id: r.source_id().into(),
            envelope: out.into(),
        };
        assert_eq!(stored.decode_envelope().unwrap(), e);
    }
}
