//! The protobuf bytes of an [`Envelope`], written into a `Vec<u8>` without
//! the one cost prost adds on this path: prost puts a `bytes::Bytes` field
//! by cloning it (`BytesAdapter::append_to` is `buf.put(self.clone())`),
//! and the first clone of a `Bytes` made from a `Vec` (every log payload
//! ingest copies out of its read buffer) allocates a shared header and
//! turns every later drop into an atomic one. In the disk log's append
//! path that clone and its drop cost about 3% of the server's CPU
//! (profiled under `bench/ingest.sh`). Everything else is prost's own
//! field encoders, in the order prost's derive writes fields (ascending
//! tag, a oneof at its lowest tag); `tests` pin the bytes against
//! `prost::Message::encode` for every kind of envelope.

use bytes::Bytes;
use prost::encoding::{self, encode_key, encode_varint, WireType};
use prost::Message as _;

use crate::v2::{Envelope, Log, Message};

impl Envelope {
    /// Appends exactly the bytes `prost::Message::encode_raw` would.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if self.timestamp != 0 {
            encoding::int64::encode(1, &self.timestamp, out);
        }
        if !self.source_id.is_empty() {
            encoding::string::encode(2, &self.source_id, out);
        }
        encoding::btree_map::encode(
            encoding::string::encode,
            encoding::string::encoded_len,
            encoding::message::encode,
            encoding::message::encoded_len,
            3,
            &self.deprecated_tags,
            out,
        );
        match &self.message {
            Some(Message::Log(log)) => encode_log(log, out),
            Some(Message::Counter(m)) => encoding::message::encode(5, m, out),
            Some(Message::Gauge(m)) => encoding::message::encode(6, m, out),
            Some(Message::Timer(m)) => encoding::message::encode(7, m, out),
            Some(Message::Event(m)) => encoding::message::encode(10, m, out),
            None => {}
        }
        if !self.instance_id.is_empty() {
            encoding::string::encode(8, &self.instance_id, out);
        }
        encoding::btree_map::encode(
            encoding::string::encode,
            encoding::string::encoded_len,
            encoding::string::encode,
            encoding::string::encoded_len,
            9,
            &self.tags,
            out,
        );
    }
}

/// Field 4, a `Log`: its payload copied from the slice, not cloned.
fn encode_log(log: &Log, out: &mut Vec<u8>) {
    encode_key(4, WireType::LengthDelimited, out);
    encode_varint(log.encoded_len() as u64, out);
    if !log.payload.is_empty() {
        encode_bytes(1, &log.payload, out);
    }
    if log.r#type != 0 {
        encoding::int32::encode(2, &log.r#type, out);
    }
}

fn encode_bytes(tag: u32, value: &Bytes, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::v2::{Counter, Event, Gauge, GaugeValue, LogType, Timer, Value, ValueData};

    fn prost_bytes(e: &Envelope) -> Vec<u8> {
        let mut out = Vec::new();
        e.encode_raw(&mut out);
        out
    }

    fn message() -> impl Strategy<Value = Option<Message>> {
        prop_oneof![
            Just(None),
            (proptest::collection::vec(any::<u8>(), 0..300), 0..3i32).prop_map(|(p, t)| {
                Some(Message::Log(Log {
                    payload: Bytes::from(p),
                    r#type: t,
                }))
            }),
            (".{0,8}", any::<u64>(), any::<u64>()).prop_map(|(name, delta, total)| {
                Some(Message::Counter(Counter { name, delta, total }))
            }),
            proptest::collection::btree_map(".{0,6}", (any::<f64>(), ".{0,4}"), 0..4).prop_map(
                |m| {
                    Some(Message::Gauge(Gauge {
                        metrics: m
                            .into_iter()
                            .map(|(k, (value, unit))| (k, GaugeValue { unit, value }))
                            .collect(),
                    }))
                }
            ),
            (".{0,8}", any::<i64>(), any::<i64>()).prop_map(|(name, start, stop)| {
                Some(Message::Timer(Timer { name, start, stop }))
            }),
            (".{0,8}", ".{0,20}")
                .prop_map(|(title, body)| Some(Message::Event(Event { title, body }))),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value { data: None }),
            ".{0,6}".prop_map(|s| Value {
                data: Some(ValueData::Text(s))
            }),
            any::<i64>().prop_map(|i| Value {
                data: Some(ValueData::Integer(i))
            }),
            any::<f64>().prop_map(|d| Value {
                data: Some(ValueData::Decimal(d))
            }),
        ]
    }

    prop_compose! {
        fn envelope()(
            timestamp in any::<i64>(),
            source_id in ".{0,12}",
            instance_id in ".{0,4}",
            tags in proptest::collection::btree_map(".{0,10}", ".{0,10}", 0..6),
            deprecated_tags in proptest::collection::btree_map(".{0,6}", value(), 0..3),
            message in message(),
        ) -> Envelope {
            Envelope { timestamp, source_id, instance_id, deprecated_tags, tags, message }
        }
    }

    proptest! {
        #[test]
        fn the_same_bytes_as_prost(e in envelope()) {
            let mut out = Vec::new();
            e.encode_into(&mut out);
            prop_assert_eq!(out, prost_bytes(&e));
        }
    }

    #[test]
    fn the_same_bytes_as_prost_for_a_syslog_line_and_an_empty_envelope() {
        let mut e = Envelope::log(7, "app", "0", Bytes::from_static(b"hello"), LogType::Err);
        e.tags = BTreeMap::from([("host".into(), "h".into()), ("proc_id".into(), "1".into())]);
        for e in [e, Envelope::default()] {
            let mut out = Vec::new();
            e.encode_into(&mut out);
            assert_eq!(out, prost_bytes(&e));
        }
    }
}
