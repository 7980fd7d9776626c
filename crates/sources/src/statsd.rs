//! statsd over UDP, as Cloud Foundry's statsd-injector takes it: lines
//! `origin.name:value|type[|@rate][|#tag:value,…]`, several per datagram
//! (newline-separated), `type` one of `c` (counter), `g` (gauge; `+n` /
//! `-n` adjust the last value), `ms` (timer).
//!
//! Every stat becomes a Gauge envelope, as statsd-injector emits them: the
//! first dot-separated segment of the name is the `source_id` (the origin),
//! the rest the metric's name, its unit `counter`, `gauge` or `ms`.
//! Counters are kept as running totals (each sample divided by its rate),
//! so a consumer sees the total, not the increments. The totals and last
//! gauge values are per (source, name, tags), bounded by [`MAX_SERIES`]
//! (beyond it the table starts afresh, counted as
//! `sluice_ingress_errors_total{reason="statsd_series_reset"}`). A bad line
//! is counted (`{reason="statsd_parse"}`) and skipped; the rest of its
//! datagram still counts. Written by hand: the statsd crates on crates.io
//! are clients, and the line grammar is a few lines of code.

use std::collections::HashMap;
use std::sync::Arc;

use envelope::time::now_ns;
use envelope::v2::{Envelope, Gauge, GaugeValue, Message};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::IngestContext;

/// The longest line taken (longer ones are bad lines).
pub const MAX_LINE: usize = 8192;
/// Series (source, name, tags) whose state is kept.
pub const MAX_SERIES: usize = 100_000;
/// Tags taken from one line.
pub const MAX_TAGS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Counter,
    Gauge { relative: bool },
    Timer,
}

/// One parsed stat line.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat<'a> {
    pub source_id: &'a str,
    pub name: &'a str,
    pub value: f64,
    pub kind: Kind,
    pub rate: f64,
    pub tags: Vec<(&'a str, &'a str)>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum StatsdError {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("not UTF-8")]
    NotUtf8,
    #[error("no ':' between name and value")]
    NoValue,
    #[error("name must be origin.name")]
    BadName,
    #[error("bad value {0:?}")]
    BadValue(String),
    #[error("unknown type {0:?} (c, g, ms)")]
    BadType(String),
    #[error("bad sample rate {0:?}")]
    BadRate(String),
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Stat<'_>, StatsdError> {
    if line.len() > MAX_LINE {
        return Err(StatsdError::TooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| StatsdError::NotUtf8)?;
    let (name, rest) = line.split_once(':').ok_or(StatsdError::NoValue)?;
    let (source_id, metric) = name.split_once('.').ok_or(StatsdError::BadName)?;
    if source_id.is_empty() || metric.is_empty() {
        return Err(StatsdError::BadName);
    }
    let mut fields = rest.split('|');
    let value_text = fields.next().unwrap_or_default();
    let kind_text = fields.next().ok_or(StatsdError::BadType(String::new()))?;
    let value: f64 = value_text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| StatsdError::BadValue(value_text.to_owned()))?;
    let kind = match kind_text {
        "c" => Kind::Counter,
        "g" => Kind::Gauge {
            relative: value_text.starts_with(['+', '-']),
        },
        "ms" => Kind::Timer,
        other => return Err(StatsdError::BadType(other.to_owned())),
    };
    let mut rate = 1.0;
    let mut tags = Vec::new();
    for field in fields {
        if let Some(r) = field.strip_prefix('@') {
            rate = r
                .parse()
                .ok()
                .filter(|r: &f64| *r > 0.0 && *r <= 1.0)
                .ok_or_else(|| StatsdError::BadRate(r.to_owned()))?;
        } else if let Some(list) = field.strip_prefix('#') {
            for tag in list.split(',').filter(|t| !t.is_empty()).take(MAX_TAGS) {
                let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
                tags.push((k, v));
            }
        }
    }
    Ok(Stat {
        source_id,
        name: metric,
        value,
        kind,
        rate,
        tags,
    })
}

/// Running totals of counters and last values of gauges, per series.
#[derive(Default)]
pub struct Aggregator {
    series: HashMap<String, f64>,
    /// Times the table was cleared at [`MAX_SERIES`].
    pub resets: u64,
}

impl Aggregator {
    /// The envelope for a stat, its state updated.
    pub fn envelope(&mut self, stat: &Stat<'_>, now: i64) -> Envelope {
        let (unit, value) = match stat.kind {
            Kind::Timer => ("ms", stat.value),
            Kind::Counter => ("counter", self.add(stat, stat.value / stat.rate, true)),
            Kind::Gauge { relative } => ("gauge", self.add(stat, stat.value, relative)),
        };
        let mut env = Envelope::log(
            now,
            stat.source_id,
            "",
            bytes::Bytes::new(),
            envelope::LogType::Out,
        );
        let metric = GaugeValue {
            unit: unit.to_owned(),
            value,
        };
        env.message = Some(Message::Gauge(Gauge {
            metrics: [(stat.name.to_owned(), metric)].into(),
        }));
        for (k, v) in &stat.tags {
            env.tags.insert((*k).to_owned(), (*v).to_owned());
        }
        env
    }

    /// Adds to (or, unless `relative`, sets) a series; its new value.
    fn add(&mut self, stat: &Stat<'_>, value: f64, relative: bool) -> f64 {
        let mut key = format!(
            "{}\0{}\0{:?}",
            stat.source_id,
            stat.name,
            stat.kind == Kind::Counter
        );
        for (k, v) in &stat.tags {
            key.push('\0');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        if !self.series.contains_key(&key) && self.series.len() >= MAX_SERIES {
            self.series.clear();
            self.resets += 1;
        }
        let slot = self.series.entry(key).or_insert(0.0);
        let sum = if relative { *slot + value } else { value };
        // A total that overflows starts again from this sample.
        *slot = if sum.is_finite() { sum } else { value };
        *slot
    }
}

/// Reads statsd datagrams until shutdown; each datagram's stats are one
/// batch. Counted as `sluice_ingress_envelopes_total{protocol="statsd"}`.
pub async fn run(socket: UdpSocket, ctx: IngestContext, shutdown: CancellationToken) {
    let metrics = Arc::clone(&ctx.metrics);
    let counters = metrics.ingress_counters("statsd");
    let mut agg = Aggregator::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.cancelled() => return,
        };
        let n = match received {
            Ok((n, _)) => n,
            Err(err) => {
                warn!(%err, "statsd receive failed");
                metrics.error("read_error");
                continue;
            }
        };
        let now = now_ns();
        let mut batch = Vec::new();
        for line in buf[..n].split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok(stat) => {
                    let resets = agg.resets;
                    batch.push(agg.envelope(&stat, now));
                    if agg.resets > resets {
                        metrics.error("statsd_series_reset");
                    }
                }
                Err(_) => metrics.error("statsd_parse"),
            }
        }
        counters.record(batch.len() as u64, n as u64);
        // Refused batches are counted by `publish`.
        let _ = ctx.publish(batch).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_statsd_injector_reads_them() {
        let s = parse_line(b"router.requests:3|c|@0.5|#zone:a,tier:web").unwrap();
        assert_eq!(
            (s.source_id, s.name, s.value, s.rate),
            ("router", "requests", 3.0, 0.5)
        );
        assert_eq!(s.kind, Kind::Counter);
        assert_eq!(s.tags, [("zone", "a"), ("tier", "web")]);
        let s = parse_line(b"cell.mem.used:-12.5|g").unwrap();
        assert_eq!((s.name, s.value), ("mem.used", -12.5));
        assert_eq!(s.kind, Kind::Gauge { relative: true });
        assert_eq!(parse_line(b"api.latency:42|ms").unwrap().kind, Kind::Timer);
        for (bad, err) in [
            (&b"nodot:1|c"[..], StatsdError::BadName),
            (b"a.b|c", StatsdError::NoValue),
            (b"a.b:x|c", StatsdError::BadValue("x".into())),
            (b"a.b:1|h", StatsdError::BadType("h".into())),
            (b"a.b:1|c|@2", StatsdError::BadRate("2".into())),
            (b"a.b:NaN|g", StatsdError::BadValue("NaN".into())),
            (b"a.b:1", StatsdError::BadType(String::new())),
        ] {
            assert_eq!(
                parse_line(bad).unwrap_err(),
                err,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_line(&vec![b'a'; MAX_LINE + 1]).unwrap_err(),
            StatsdError::TooLong
        );
    }

    fn value(env: &Envelope) -> (String, String, f64) {
        let Some(Message::Gauge(g)) = &env.message else {
            panic!("a gauge")
        };
        let (name, v) = g.metrics.iter().next().expect("one metric");
        (name.clone(), v.unit.clone(), v.value)
    }

    #[test]
    fn counters_are_running_totals_and_gauges_adjust() {
        let mut agg = Aggregator::default();
        let mut feed = |line: &[u8]| value(&agg.envelope(&parse_line(line).unwrap(), 1));
        assert_eq!(
            feed(b"app.hits:1|c"),
            ("hits".into(), "counter".into(), 1.0)
        );
        assert_eq!(
            feed(b"app.hits:2|c|@0.5"),
            ("hits".into(), "counter".into(), 5.0)
        );
        assert_eq!(
            feed(b"app.hits:1|c|#k:v").2,
            1.0,
            "tags make another series"
        );
        assert_eq!(
            feed(b"app.temp:20|g"),
            ("temp".into(), "gauge".into(), 20.0)
        );
        assert_eq!(feed(b"app.temp:+5|g").2, 25.0);
        assert_eq!(feed(b"app.temp:-30|g").2, -5.0);
        assert_eq!(feed(b"app.temp:7|g").2, 7.0);
        assert_eq!(feed(b"app.lat:12|ms"), ("lat".into(), "ms".into(), 12.0));
    }

    #[test]
    fn totals_never_overflow() {
        let mut agg = Aggregator::default();
        let line = b"app.big:1e308|c";
        for _ in 0..3 {
            let v = value(&agg.envelope(&parse_line(line).unwrap(), 1)).2;
            assert!(v.is_finite());
        }
    }

    #[test]
    fn series_are_bounded() {
        let mut agg = Aggregator::default();
        for i in 0..(MAX_SERIES + 10) {
            let line = format!("app.c{i}:1|c");
            agg.envelope(&parse_line(line.as_bytes()).unwrap(), 1);
        }
        assert_eq!(agg.resets, 1);
        assert!(agg.series.len() <= MAX_SERIES);
    }
}
