//! Log Cache's JSON form of an envelope.
//!
//! This is the shape `cf curl /api/v1/read/...` and the RLP gateway show:
//! protobuf's canonical JSON mapping, so 64-bit integers are strings
//! (`"timestamp":"1700000000000000000"`), bytes are base64 and enums are
//! names (`"type":"OUT"`). Decoding is lenient where Log Cache's clients are:
//! integers may also be plain numbers and a missing field takes its default.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::v2::{
    Counter, Envelope, EnvelopeBatch, Event, Gauge, GaugeValue, Log, LogType, Message, Timer,
    Value, ValueData,
};

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("invalid envelope JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("invalid base64 in log payload: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// Serialises one envelope as a single line of JSON (no trailing newline).
pub fn to_json(envelope: &Envelope) -> String {
    let mut out = Vec::with_capacity(256);
    write_json(envelope, &mut out);
    // serde_json only writes valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends one envelope's JSON to `out`.
pub fn write_json(envelope: &Envelope, out: &mut Vec<u8>) {
    // Serialising these plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &JsonEnvelopeRef::from(envelope));
}

/// Log Cache's read response: `{"envelopes":{"batch":[…]}}`.
pub fn batch_to_json<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> String {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"envelopes\":{\"batch\":[");
    for (i, e) in envelopes.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(e, &mut out);
    }
    out.extend_from_slice(b"]}}");
    String::from_utf8(out).unwrap_or_default()
}

/// Parses one envelope from JSON.
pub fn from_json(input: &[u8]) -> Result<Envelope, JsonError> {
    let raw: JsonEnvelope = serde_json::from_slice(input)?;
    raw.try_into()
}

/// Parses Log Cache's read response (or a bare `{"batch":[…]}`).
pub fn batch_from_json(input: &[u8]) -> Result<EnvelopeBatch, JsonError> {
    #[derive(Deserialize)]
    struct Outer {
        envelopes: Option<Batch>,
        batch: Option<Vec<JsonEnvelope>>,
    }
    #[derive(Deserialize)]
    struct Batch {
        #[serde(default)]
        batch: Vec<JsonEnvelope>,
    }
    let outer: Outer = serde_json::from_slice(input)?;
    let raw = outer
        .envelopes
        .map(|b| b.batch)
        .or(outer.batch)
        .unwrap_or_default();
    Ok(EnvelopeBatch {
        batch: raw
            .into_iter()
            .map(Envelope::try_from)
            .collect::<Result<_, _>>()?,
    })
}

// ---- encoding: borrowed mirror structs ----

#[derive(Serialize)]
struct JsonEnvelopeRef<'a> {
    timestamp: String,
    source_id: &'a str,
    instance_id: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    deprecated_tags: BTreeMap<&'a str, JsonValue>,
    tags: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<JsonLogRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<JsonCounter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gauge: Option<&'a Gauge>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timer: Option<JsonTimer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a Event>,
}

#[derive(Serialize)]
struct JsonLogRef {
    payload: String,
    #[serde(rename = "type")]
    log_type: &'static str,
}

impl<'a> From<&'a Envelope> for JsonEnvelopeRef<'a> {
    fn from(e: &'a Envelope) -> Self {
        let mut out = JsonEnvelopeRef {
            timestamp: e.timestamp.to_string(),
            source_id: &e.source_id,
            instance_id: &e.instance_id,
            deprecated_tags: e
                .deprecated_tags
                .iter()
                .map(|(k, v)| (k.as_str(), JsonValue::from(v)))
                .collect(),
            tags: &e.tags,
            log: None,
            counter: None,
            gauge: None,
            timer: None,
            event: None,
        };
        match &e.message {
            Some(Message::Log(l)) => {
                out.log = Some(JsonLogRef {
                    payload: BASE64.encode(&l.payload),
                    log_type: LogType::try_from(l.r#type).unwrap_or(LogType::Out).as_str(),
                })
            }
            Some(Message::Counter(c)) => out.counter = Some(c.into()),
            Some(Message::Gauge(g)) => out.gauge = Some(g),
            Some(Message::Timer(t)) => out.timer = Some(t.into()),
            Some(Message::Event(ev)) => out.event = Some(ev),
            None => {}
        }
        out
    }
}

// ---- decoding: owned mirror structs ----

#[derive(Deserialize)]
struct JsonEnvelope {
    #[serde(default, deserialize_with = "int_or_string")]
    timestamp: i64,
    #[serde(default)]
    source_id: String,
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    deprecated_tags: BTreeMap<String, JsonValue>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    log: Option<JsonLog>,
    counter: Option<JsonCounter>,
    gauge: Option<Gauge>,
    timer: Option<JsonTimer>,
    event: Option<Event>,
}

#[derive(Deserialize)]
struct JsonLog {
    #[serde(default)]
    payload: String,
    #[serde(default, rename = "type")]
    log_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct JsonCounter {
    #[serde(default)]
    name: String,
    #[serde(
        default,
        serialize_with = "as_string",
        deserialize_with = "int_or_string"
    )]
    delta: u64,
    #[serde(
        default,
        serialize_with = "as_string",
        deserialize_with = "int_or_string"
    )]
    total: u64,
}

#[derive(Serialize, Deserialize)]
struct JsonTimer {
    #[serde(default)]
    name: String,
    #[serde(
        default,
        serialize_with = "as_string",
        deserialize_with = "int_or_string"
    )]
    start: i64,
    #[serde(
        default,
        serialize_with = "as_string",
        deserialize_with = "int_or_string"
    )]
    stop: i64,
}

#[derive(Serialize, Deserialize, Default)]
struct JsonValue {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_as_string",
        deserialize_with = "opt_int_or_string"
    )]
    integer: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decimal: Option<f64>,
}

impl From<&Counter> for JsonCounter {
    fn from(c: &Counter) -> Self {
        JsonCounter {
            name: c.name.clone(),
            delta: c.delta,
            total: c.total,
        }
    }
}

impl From<&Timer> for JsonTimer {
    fn from(t: &Timer) -> Self {
        JsonTimer {
            name: t.name.clone(),
            start: t.start,
            stop: t.stop,
        }
    }
}

impl From<&Value> for JsonValue {
    fn from(v: &Value) -> Self {
        let mut out = JsonValue::default();
        match &v.data {
            Some(ValueData::Text(t)) => out.text = Some(t.clone()),
            Some(ValueData::Integer(i)) => out.integer = Some(*i),
            Some(ValueData::Decimal(d)) => out.decimal = Some(*d),
            None => {}
        }
        out
    }
}

impl From<JsonValue> for Value {
    fn from(v: JsonValue) -> Self {
        let data = if let Some(t) = v.text {
            Some(ValueData::Text(t))
        } else if let Some(i) = v.integer {
            Some(ValueData::Integer(i))
        } else {
            v.decimal.map(ValueData::Decimal)
        };
        Value { data }
    }
}

impl TryFrom<JsonEnvelope> for Envelope {
    type Error = JsonError;

    fn try_from(raw: JsonEnvelope) -> Result<Self, JsonError> {
        let message = if let Some(log) = raw.log {
            let log_type = match log.log_type.as_deref() {
                Some("ERR") | Some("err") | Some("1") => LogType::Err,
                _ => LogType::Out,
            };
            Some(Message::Log(Log {
                payload: Bytes::from(BASE64.decode(log.payload.as_bytes())?),
                r#type: log_type as i32,
            }))
        } else if let Some(c) = raw.counter {
            Some(Message::Counter(Counter {
                name: c.name,
                delta: c.delta,
                total: c.total,
            }))
        } else if let Some(g) = raw.gauge {
            Some(Message::Gauge(g))
        } else if let Some(t) = raw.timer {
            Some(Message::Timer(Timer {
                name: t.name,
                start: t.start,
                stop: t.stop,
            }))
        } else {
            raw.event.map(Message::Event)
        };
        Ok(Envelope {
            timestamp: raw.timestamp,
            source_id: raw.source_id,
            instance_id: raw.instance_id,
            deprecated_tags: raw
                .deprecated_tags
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
            tags: raw.tags,
            message,
        })
    }
}

// Gauge and Event share their JSON field names with the protobuf structs.
impl Serialize for Gauge {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct G<'a> {
            metrics: &'a BTreeMap<String, GaugeValue>,
        }
        G {
            metrics: &self.metrics,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Gauge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct G {
            #[serde(default)]
            metrics: BTreeMap<String, GaugeValue>,
        }
        Ok(Gauge {
            metrics: G::deserialize(d)?.metrics,
        })
    }
}

impl Serialize for GaugeValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct V<'a> {
            unit: &'a str,
            value: f64,
        }
        V {
            unit: &self.unit,
            value: self.value,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for GaugeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct V {
            #[serde(default)]
            unit: String,
            #[serde(default)]
            value: f64,
        }
        let v = V::deserialize(d)?;
        Ok(GaugeValue {
            unit: v.unit,
            value: v.value,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct E<'a> {
            title: &'a str,
            body: &'a str,
        }
        E {
            title: &self.title,
            body: &self.body,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct E {
            #[serde(default)]
            title: String,
            #[serde(default)]
            body: String,
        }
        let e = E::deserialize(d)?;
        Ok(Event {
            title: e.title,
            body: e.body,
        })
    }
}

fn as_string<T: ToString, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn opt_as_string<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_none(),
    }
}

/// Accepts `"123"` or `123` for a 64-bit integer, as protobuf's JSON mapping does.
fn int_or_string<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: std::str::FromStr + TryFrom<i64> + TryFrom<u64>,
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Str(String),
        Signed(i64),
        Unsigned(u64),
    }
    match Raw::deserialize(d)? {
        Raw::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("not an integer: {s:?}"))),
        Raw::Signed(i) => T::try_from(i).map_err(|_| de::Error::custom("integer out of range")),
        Raw::Unsigned(u) => T::try_from(u).map_err(|_| de::Error::custom("integer out of range")),
    }
}

fn opt_int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int_or_string(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_matches_log_cache_shape() {
        let mut e = Envelope::log(
            1_700_000_000_000_000_001,
            "app",
            "0",
            Bytes::from_static(b"hello"),
            LogType::Err,
        );
        e.tags.insert("source_type".into(), "APP/PROC/WEB".into());
        let json = to_json(&e);
        assert_eq!(
            json,
            r#"{"timestamp":"1700000000000000001","source_id":"app","instance_id":"0","tags":{"source_type":"APP/PROC/WEB"},"log":{"payload":"aGVsbG8=","type":"ERR"}}"#
        );
        assert_eq!(from_json(json.as_bytes()).unwrap(), e);
    }

    #[test]
    fn every_kind_round_trips() {
        let mut e = Envelope::event(5, "s", "title", "body");
        e.deprecated_tags.insert(
            "n".into(),
            Value {
                data: Some(ValueData::Integer(-3)),
            },
        );
        e.deprecated_tags.insert(
            "t".into(),
            Value {
                data: Some(ValueData::Text("x".into())),
            },
        );
        for m in [
            Message::Counter(Counter {
                name: "c".into(),
                delta: 1,
                total: u64::MAX,
            }),
            Message::Gauge(Gauge {
                metrics: [(
                    "m".to_string(),
                    GaugeValue {
                        unit: "b".into(),
                        value: 0.5,
                    },
                )]
                .into(),
            }),
            Message::Timer(Timer {
                name: "t".into(),
                start: -1,
                stop: i64::MAX,
            }),
            Message::Event(Event {
                title: "a".into(),
                body: "b".into(),
            }),
        ] {
            e.message = Some(m);
            let json = to_json(&e);
            assert_eq!(from_json(json.as_bytes()).unwrap(), e, "{json}");
        }
        let batch = batch_to_json([&e, &e]);
        assert_eq!(batch_from_json(batch.as_bytes()).unwrap().batch.len(), 2);
    }

    #[test]
    fn numbers_accepted_where_strings_are_canonical() {
        let e = from_json(
            br#"{"timestamp":12,"source_id":"a","counter":{"name":"x","delta":3,"total":"4"}}"#,
        )
        .unwrap();
        assert_eq!(e.timestamp, 12);
        assert!(matches!(
            e.message,
            Some(Message::Counter(Counter {
                delta: 3,
                total: 4,
                ..
            }))
        ));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(from_json(b"{").is_err());
        assert!(from_json(br#"{"timestamp":"x"}"#).is_err());
        assert!(from_json(br#"{"log":{"payload":"!!"}}"#).is_err());
    }
}
