//! Rendering envelopes as the cf CLI prints them in `cf logs`.
//!
//! A log line is
//! `   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT Started GET "/"`:
//! three spaces, the UTC time to hundredths (truncated, as Go's
//! `2006-01-02T15:04:05.00-0700` layout does), `[SOURCE/INSTANCE]`, `OUT` or
//! `ERR`, and the payload as lossy UTF-8. As in the cf CLI, a multi-line
//! payload gives one line per payload line, each with the full header.
//!
//! The bracket holds the `source_type` tag (or the source id when there is
//! none), then `/instance_id` unless that is empty: `[APP/PROC/WEB/0]`,
//! `[RTR/1]`, `[API]`.
//!
//! Other envelope kinds, which `cf logs` does not show, use the same header
//! with the kind in place of `OUT`/`ERR`:
//! `EVENT title: body`, `COUNTER name delta/total`,
//! `GAUGE name:value unit, name:value unit` (names sorted),
//! `TIMER name 12.345ms` (stop − start), and `EMPTY` for no message.

use std::fmt::Write as _;

use envelope::tags::SOURCE_TYPE;
use envelope::v2::{Envelope, Message};

use crate::civil::CivilTime;

/// Formats Unix nanoseconds as the cf CLI does, in UTC:
/// `2026-11-21T13:14:58.00+0000`.
pub fn format_cf_timestamp(ns: i64) -> String {
    let mut out = String::with_capacity(27);
    push_cf_timestamp(&mut out, ns);
    out
}

fn push_cf_timestamp(out: &mut String, ns: i64) {
    let t = CivilTime::from_unix_nanos(ns);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:02}+0000",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.nanosecond / 10_000_000
    );
}

/// Appends the `cf logs` rendering of `env` to `out`, without a trailing
/// newline (lines of a multi-line payload are joined by `\n`).
pub fn cf_log_line(out: &mut String, env: &Envelope) {
    let mut header = String::with_capacity(64);
    header.push_str("   ");
    push_cf_timestamp(&mut header, env.timestamp);
    header.push_str(" [");
    header.push_str(env.tag(SOURCE_TYPE).unwrap_or(&env.source_id));
    if !env.instance_id.is_empty() {
        header.push('/');
        header.push_str(&env.instance_id);
    }
    header.push_str("] ");

    let Some(message) = &env.message else {
        out.push_str(&header);
        out.push_str("EMPTY");
        return;
    };
    out.push_str(&header);
    match message {
        Message::Log(log) => {
            let kind = env.log_type().map_or("OUT", |t| t.as_str());
            let text = String::from_utf8_lossy(&log.payload);
            let text = text.trim_end_matches(['\n', '\r']);
            for (index, line) in text.split('\n').enumerate() {
                if index > 0 {
                    out.push('\n');
                    out.push_str(&header);
                }
                out.push_str(kind);
                out.push(' ');
                out.push_str(line.trim_end_matches('\r'));
            }
        }
        Message::Event(event) => {
            let _ = write!(out, "EVENT {}: {}", event.title, event.body);
        }
        Message::Counter(counter) => {
            let _ = write!(
                out,
                "COUNTER {} {}/{}",
                counter.name, counter.delta, counter.total
            );
        }
        Message::Gauge(gauge) => {
            out.push_str("GAUGE ");
            for (index, (name, value)) in gauge.metrics.iter().enumerate() {
                let separator = if index > 0 { ", " } else { "" };
                let _ = write!(out, "{separator}{name}:{} {}", value.value, value.unit);
            }
        }
        Message::Timer(timer) => {
            let millis = timer.stop.saturating_sub(timer.start) as f64 / 1e6;
            let _ = write!(out, "TIMER {} {millis:.3}ms", timer.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::v2::{Counter, Gauge, GaugeValue, Timer};
    use envelope::LogType;

    /// 2026-11-21T13:14:58.0099Z
    const TS: i64 = 1_795_266_898_009_900_000;

    fn render(env: &Envelope) -> String {
        let mut out = String::new();
        cf_log_line(&mut out, env);
        out
    }

    fn app_log(payload: &'static [u8], log_type: LogType) -> Envelope {
        let mut env = Envelope::log(TS, "app-guid", "0", Bytes::from_static(payload), log_type);
        env.tags.insert(SOURCE_TYPE.into(), "APP/PROC/WEB".into());
        env
    }

    #[test]
    fn timestamp_truncates_to_hundredths() {
        assert_eq!(format_cf_timestamp(TS), "2026-11-21T13:14:58.00+0000");
        assert_eq!(
            format_cf_timestamp(TS + 990_000_000),
            "2026-11-21T13:14:58.99+0000"
        );
        assert_eq!(format_cf_timestamp(-1), "1969-12-31T23:59:59.99+0000");
    }

    #[test]
    fn app_log_line() {
        let env = app_log(b"Started GET \"/\"\n", LogType::Out);
        assert_eq!(
            render(&env),
            "   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT Started GET \"/\""
        );
        let env = app_log(b"boom\r\n", LogType::Err);
        assert_eq!(
            render(&env),
            "   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] ERR boom"
        );
    }

    #[test]
    fn component_logs() {
        let mut env = Envelope::log(
            TS,
            "app-guid",
            "1",
            Bytes::from_static(b"GET /"),
            LogType::Out,
        );
        env.tags.insert(SOURCE_TYPE.into(), "RTR".into());
        assert!(render(&env).ends_with(" [RTR/1] OUT GET /"));
        env.instance_id.clear();
        env.tags.insert(SOURCE_TYPE.into(), "API".into());
        assert!(render(&env).ends_with(" [API] OUT GET /"));
        env.tags.clear();
        assert!(render(&env).ends_with(" [app-guid] OUT GET /"));
    }

    #[test]
    fn multi_line_payload_repeats_the_header() {
        let env = app_log(b"line one\r\nline two\n", LogType::Out);
        assert_eq!(
            render(&env),
            "   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT line one\n   2026-11-21T13:14:58.00+0000 [APP/PROC/WEB/0] OUT line two"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let env = app_log(b"bad \xff byte", LogType::Out);
        assert!(render(&env).ends_with("OUT bad \u{FFFD} byte"));
    }

    #[test]
    fn non_log_envelopes() {
        let mut env = Envelope::event(TS, "app-guid", "app.crash", "exit status 1");
        assert!(render(&env).ends_with(" [app-guid] EVENT app.crash: exit status 1"));

        env.message = Some(Message::Counter(Counter {
            name: "requests".into(),
            delta: 2,
            total: 40,
        }));
        assert!(render(&env).ends_with(" [app-guid] COUNTER requests 2/40"));

        env.message = Some(Message::Gauge(Gauge {
            metrics: [
                (
                    "memory".to_string(),
                    GaugeValue {
                        unit: "bytes".into(),
                        value: 1024.0,
                    },
                ),
                (
                    "cpu".to_string(),
                    GaugeValue {
                        unit: "percentage".into(),
                        value: 12.5,
                    },
                ),
            ]
            .into(),
        }));
        assert!(render(&env).ends_with(" GAUGE cpu:12.5 percentage, memory:1024 bytes"));

        env.message = Some(Message::Timer(Timer {
            name: "http".into(),
            start: 1_000,
            stop: 12_346_000,
        }));
        assert!(render(&env).ends_with(" TIMER http 12.345ms"));

        env.message = None;
        assert!(render(&env).ends_with(" [app-guid] EMPTY"));
    }
}
