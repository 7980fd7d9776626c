//! sluice's health as envelopes in its own stream, and `/v1/health`.
//!
//! Every `[metrics] emit_interval_secs` (default 15) the registry's values
//! ([`metrics::samples`]) become envelopes from source `sluice`, appended
//! like any other input, so a nozzle on the firehose sees sluice's health
//! next to the platform's (as Loggregator reports its own): each counter as
//! a Counter envelope (`total`, and `delta` since the last emission), each
//! gauge as a Gauge envelope, the labels as tags, and the ingress, egress
//! and drop families tagged `direction` = `ingress`, `egress`, `dropped`.
//!
//! The same tick keeps an hour of totals for [`HealthHistory::report`]:
//! ingress, egress and loss over the last minute and hour, with
//! Loggregator's alert levels (loss ≥ 0.5 % warn, ≥ 1 % critical). Loss is
//! what was dropped (every drop reason but the alterations `truncated` and
//! `too_many_tags`) over what came in.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use envelope::v2::{Counter, Envelope, Gauge, GaugeValue, Message};
use metrics::samples::{self, Sample};
use parking_lot::Mutex;
use serde::Serialize;
use sluice_log::Log;
use sources::IngestContext;
use tokio_util::sync::CancellationToken;

/// The source id of sluice's own envelopes.
pub const SOURCE_ID: &str = "sluice";
/// Loss levels, in percent (Loggregator's alert levels).
pub const WARN_LOSS_PERCENT: f64 = 0.5;
pub const CRITICAL_LOSS_PERCENT: f64 = 1.0;
const HOUR_NS: i64 = 3_600 * 1_000_000_000;

/// Drop reasons that alter an envelope but lose nothing.
const ALTERATIONS: [&str; 2] = ["truncated", "too_many_tags"];

/// Totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Point {
    at_ns: i64,
    ingress: f64,
    egress: f64,
    dropped: f64,
    /// Gauges at that moment.
    subscribers: f64,
    log_bytes: f64,
}

impl Point {
    fn of(samples: &[Sample], at_ns: i64) -> Self {
        let sum = |pred: &dyn Fn(&Sample) -> bool| {
            samples.iter().filter(|s| pred(s)).map(|s| s.value).sum()
        };
        Point {
            at_ns,
            ingress: sum(&|s| s.name == "ingress_envelopes"),
            egress: sum(&|s| s.name == "egress_envelopes"),
            dropped: sum(&|s| {
                s.name == "drops" && !s.label("reason").is_some_and(|r| ALTERATIONS.contains(&r))
            }),
            subscribers: sum(&|s| s.name == "subscribers"),
            log_bytes: sum(&|s| s.name == "log_bytes"),
        }
    }
}

/// An hour of totals, one point per emission.
#[derive(Default)]
pub struct HealthHistory {
    points: Mutex<VecDeque<Point>>,
}

/// Ingress, egress and loss over one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Window {
    pub seconds: u64,
    pub ingress: u64,
    pub egress: u64,
    pub dropped: u64,
    pub loss_percent: f64,
    pub level: &'static str,
}

/// `/v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthReport {
    pub level: &'static str,
    pub last_minute: Window,
    pub last_hour: Window,
    pub subscribers: u64,
    /// The alert levels, for a plot of `series`.
    pub warn_loss_percent: f64,
    pub critical_loss_percent: f64,
    /// The last hour, one step per emission (`[metrics]
    /// emit_interval_secs`), oldest first: what came in, went out and was
    /// dropped in each step.
    pub series: Vec<Step>,
    /// On a cluster node: whether it sees the cluster degraded (not
    /// connected to NATS, or buffering what the stream does not take);
    /// a degraded cluster makes the level at least `warn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_degraded: Option<bool>,
}

/// One step of [`HealthReport::series`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Unix ns at the step's end (a string, as the API sends int64).
    pub at: String,
    pub seconds: f64,
    pub ingress: u64,
    pub egress: u64,
    pub dropped: u64,
    /// Live subscribers and the log's bytes at the step's end.
    pub subscribers: u64,
    pub log_bytes: u64,
}

fn level(loss_percent: f64) -> &'static str {
    if loss_percent >= CRITICAL_LOSS_PERCENT {
        "critical"
    } else if loss_percent >= WARN_LOSS_PERCENT {
        "warn"
    } else {
        "ok"
    }
}

impl HealthHistory {
    fn record(&self, point: Point) {
        let mut points = self.points.lock();
        points.push_back(point);
        while points
            .front()
            .is_some_and(|p| point.at_ns - p.at_ns > HOUR_NS + 60_000_000_000)
        {
            points.pop_front();
        }
    }

    /// The report as of `samples` taken at `now_ns`.
    fn report_at(&self, samples: &[Sample], now_ns: i64) -> HealthReport {
        let now = Point::of(samples, now_ns);
        let points = self.points.lock();
        let window = |secs: u64| {
            let since = now_ns - secs as i64 * 1_000_000_000;
            // The newest point at or before the window's start (so the
            // window is at least as long as asked), or the server's start
            // (zeros) when it has not run that long.
            let base = points
                .iter()
                .rev()
                .find(|p| p.at_ns <= since)
                .copied()
                .unwrap_or_default();
            let ingress = (now.ingress - base.ingress).max(0.0);
            let dropped = (now.dropped - base.dropped).max(0.0);
            let loss = if ingress > 0.0 {
                100.0 * dropped / ingress
            } else {
                0.0
            };
            Window {
                seconds: secs,
                ingress: ingress as u64,
                egress: (now.egress - base.egress).max(0.0) as u64,
                dropped: dropped as u64,
                loss_percent: (loss * 1000.0).round() / 1000.0,
                level: level(loss),
            }
        };
        let (last_minute, last_hour) = (window(60), window(3_600));
        let worst = if last_minute.level == "critical" || last_hour.level == "critical" {
            "critical"
        } else if last_minute.level == "warn" || last_hour.level == "warn" {
            "warn"
        } else {
            "ok"
        };
        let subscribers = samples
            .iter()
            .find(|s| s.name == "subscribers")
            .map_or(0, |s| s.value as u64);
        let hour_ago = now_ns - HOUR_NS;
        let series = points
            .iter()
            .chain(std::iter::once(&now))
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[1].at_ns > hour_ago && w[1].at_ns > w[0].at_ns)
            .map(|w| Step {
                at: w[1].at_ns.to_string(),
                seconds: (w[1].at_ns - w[0].at_ns) as f64 / 1e9,
                ingress: (w[1].ingress - w[0].ingress).max(0.0) as u64,
                egress: (w[1].egress - w[0].egress).max(0.0) as u64,
                dropped: (w[1].dropped - w[0].dropped).max(0.0) as u64,
                subscribers: w[1].subscribers.max(0.0) as u64,
                log_bytes: w[1].log_bytes.max(0.0) as u64,
            })
            .collect();
        HealthReport {
            level: worst,
            last_minute,
            last_hour,
            subscribers,
            warn_loss_percent: WARN_LOSS_PERCENT,
            critical_loss_percent: CRITICAL_LOSS_PERCENT,
            series,
            cluster_degraded: None,
        }
    }

    /// The report now.
    pub fn report(&self, metrics: &metrics::Metrics) -> HealthReport {
        self.report_at(&samples::parse(&metrics.encode()), envelope::time::now_ns())
    }
}

/// The envelopes of one emission; `last` holds each counter's previous
/// total (for `delta`).
fn envelopes(samples: &[Sample], last: &mut HashMap<String, f64>, now_ns: i64) -> Vec<Envelope> {
    samples
        .iter()
        .map(|s| {
            let mut env = Envelope::log(
                now_ns,
                SOURCE_ID,
                "",
                bytes::Bytes::new(),
                envelope::LogType::Out,
            );
            for (k, v) in &s.labels {
                env.tags.insert(k.clone(), v.clone());
            }
            let direction = match s.name.as_str() {
                "ingress_envelopes" | "ingress_bytes" | "ingress_errors" => Some("ingress"),
                "egress_envelopes" => Some("egress"),
                "drops" => Some("dropped"),
                _ => None,
            };
            if let Some(d) = direction {
                env.tags.insert("direction".into(), d.into());
            }
            env.message = Some(if s.counter {
                let key = format!("{}{:?}", s.name, s.labels);
                let before = last.insert(key, s.value).unwrap_or(0.0);
                Message::Counter(Counter {
                    name: s.name.clone(),
                    delta: (s.value - before).max(0.0) as u64,
                    total: s.value.max(0.0) as u64,
                })
            } else {
                let value = GaugeValue {
                    unit: String::new(),
                    value: s.value,
                };
                Message::Gauge(Gauge {
                    metrics: [(s.name.clone(), value)].into(),
                })
            });
            env
        })
        .collect()
}

/// Emits every `interval` until shutdown.
pub async fn emit_every(
    ingest: IngestContext,
    log: Arc<dyn Log>,
    history: Arc<HealthHistory>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut last = HashMap::new();
    // The first emission one interval after the start, not at once.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        crate::http::ops::refresh_log_gauges(&ingest.metrics, log.as_ref()).await;
        let now = envelope::time::now_ns();
        let samples = samples::parse(&ingest.metrics.encode());
        history.record(Point::of(&samples, now));
        // Refusals (a full disk) are counted by the ingest context.
        let _ = ingest.publish(envelopes(&samples, &mut last, now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ingress: f64, dropped: f64, truncated: f64) -> Vec<Sample> {
        let s = |name: &str, labels: Vec<(&str, &str)>, value| Sample {
            name: name.into(),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            value,
            counter: true,
        };
        vec![
            s("ingress_envelopes", vec![("protocol", "grpc")], ingress),
            s("drops", vec![("reason", "queue_full")], dropped),
            s("drops", vec![("reason", "truncated")], truncated),
            Sample {
                counter: false,
                ..s("subscribers", vec![], 3.0)
            },
        ]
    }

    #[test]
    fn loss_levels_over_windows() {
        let h = HealthHistory::default();
        let min = 60_000_000_000;
        h.record(Point::of(&samples(0.0, 0.0, 0.0), 0));
        h.record(Point::of(&samples(10_000.0, 0.0, 0.0), 30 * min));
        // In the last minute: 1,000 in, 8 dropped (0.8 %: warn); truncations
        // are not loss.
        h.record(Point::of(
            &samples(20_000.0, 0.0, 500.0),
            59 * min + min / 2,
        ));
        let r = h.report_at(&samples(21_000.0, 8.0, 900.0), 60 * min + min / 2);
        assert_eq!(r.last_minute.ingress, 1_000);
        assert_eq!(r.last_minute.dropped, 8);
        assert_eq!(r.last_minute.level, "warn");
        assert_eq!(
            r.last_hour.ingress, 21_000,
            "the hour reaches back to the start"
        );
        assert_eq!(r.last_hour.level, "ok");
        assert_eq!((r.level, r.subscribers), ("warn", 3));
        // The steps within the hour, the last one up to now.
        let steps: Vec<(u64, u64)> = r.series.iter().map(|s| (s.ingress, s.dropped)).collect();
        assert_eq!(steps, vec![(10_000, 0), (10_000, 0), (1_000, 8)]);
        assert_eq!(r.series[2].seconds, 60.0);
        assert_eq!(r.series[2].at, (60 * min + min / 2).to_string());
        assert_eq!(r.series[2].subscribers, 3, "the gauge at the step's end");
        let r = h.report_at(&samples(21_100.0, 300.0, 0.0), 61 * min);
        assert_eq!((r.last_hour.level, r.level), ("critical", "critical"));
    }

    #[test]
    fn counters_carry_totals_and_deltas_and_directions() {
        let mut last = HashMap::new();
        let first = envelopes(&samples(10.0, 1.0, 0.0), &mut last, 5);
        let second = envelopes(&samples(25.0, 1.0, 0.0), &mut last, 6);
        let ingress = &second[0];
        assert_eq!(ingress.source_id, SOURCE_ID);
        assert_eq!(ingress.tags["direction"], "ingress");
        assert_eq!(ingress.tags["protocol"], "grpc");
        match &ingress.message {
            Some(Message::Counter(c)) => assert_eq!((c.total, c.delta), (25, 15)),
            other => panic!("{other:?}"),
        }
        assert_eq!(first[1].tags["direction"], "dropped");
        assert!(matches!(first[3].message, Some(Message::Gauge(_))));
    }
}
