//! `sluice nozzle`: read the firehose over gRPC (`Egress.BatchedReceiver`),
//! as a Loggregator nozzle does, and print it or measure it.
//!
//! Without `--stats` every envelope is printed as one line of Log Cache
//! JSON (what `/api/v1/read` answers), for `jq` and friends. With
//! `--stats` nothing is printed per envelope; at the end (after `--count`
//! envelopes, `--duration`, or the server closing) one line reports how
//! many arrived, the rate, the loss the server told in-band (its `dropped`
//! counters from source `sluice`) and the latency from each envelope's
//! timestamp to its arrival (p50/p99/max; meaningful when the sender
//! stamps envelopes with its clock on this machine, as `sluice emit`
//! does). `bench/firehose.sh` runs several of these against one server.
//!
//! Selectors as Loggregator's: `--source-id` (repeatable) and `--type`
//! (repeatable: log, counter, gauge, timer, event); none of either selects
//! everything, which needs an admin client. `--shard-id` joins a shard
//! group; `--deterministic-name` routes metrics by name within it.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use envelope::v2::{Envelope, Message};
use grpc::ingress_server_glue::egress_client::EgressClient;
use grpc::messages::{
    CounterSelector, EgressBatchRequest, EventSelector, GaugeSelector, LogSelector, Selector,
    SelectorMessage, TimerSelector,
};

use crate::client::grpc::GrpcTarget;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Log,
    Counter,
    Gauge,
    Timer,
    Event,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  sluice nozzle --target 127.0.0.1:8082 --type log | jq .\n  sluice nozzle --target 127.0.0.1:8082 --source-id api --source-id worker\n  sluice nozzle --target sluice:8082 --tls-dir certs --shard-id billing --stats --duration 60"
)]
pub struct NozzleArgs {
    #[command(flatten)]
    target: GrpcTarget,
    /// Only these sources (repeatable; none: every source)
    #[arg(long = "source-id", value_name = "ID")]
    source_ids: Vec<String>,
    /// Only these kinds of envelope (repeatable; none: every kind)
    #[arg(long = "type", value_enum, value_name = "KIND")]
    kinds: Vec<Kind>,
    /// Share the stream with every nozzle of this id (each envelope goes to one)
    #[arg(long, default_value = "")]
    shard_id: String,
    /// Within a shard group, send each metric name to one nozzle
    #[arg(long, default_value = "")]
    deterministic_name: String,
    /// Stop after this many envelopes (0: never; with --stats, received plus told dropped)
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Stop after this many seconds (0: never)
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Stop once nothing arrived for this many seconds, after the first envelope (0: never)
    #[arg(long, default_value_t = 0.0)]
    idle: f64,
    /// Count instead of print; report rate, loss and latency at the end
    #[arg(long)]
    stats: bool,
}

pub fn main(args: NozzleArgs) -> Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(nozzle(args))
}

/// The selectors for the flags: each source with each kind.
fn selectors(args: &NozzleArgs) -> Vec<Selector> {
    let kinds: Vec<Option<SelectorMessage>> = if args.kinds.is_empty() {
        vec![None]
    } else {
        args.kinds
            .iter()
            .map(|k| Some(selector_message(*k)))
            .collect()
    };
    let sources: Vec<String> = if args.source_ids.is_empty() {
        vec![String::new()]
    } else {
        args.source_ids.clone()
    };
    sources
        .iter()
        .flat_map(|source_id| {
            kinds.iter().map(move |message| Selector {
                source_id: source_id.clone(),
                message: message.clone(),
            })
        })
        .collect()
}

fn selector_message(kind: Kind) -> SelectorMessage {
    match kind {
        Kind::Log => SelectorMessage::Log(LogSelector {}),
        Kind::Counter => SelectorMessage::Counter(CounterSelector::default()),
        Kind::Gauge => SelectorMessage::Gauge(GaugeSelector::default()),
        Kind::Timer => SelectorMessage::Timer(TimerSelector {}),
        Kind::Event => SelectorMessage::Event(EventSelector {}),
    }
}

/// What `--stats` gathers.
struct Stats {
    received: u64,
    dropped: u64,
    /// Arrival minus timestamp, in µs, of every `sample_every`-th envelope
    /// (bounded: see [`Stats::LATENCY_SAMPLES`]).
    latencies_us: Vec<u64>,
    sample_every: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            received: 0,
            dropped: 0,
            latencies_us: Vec::new(),
            sample_every: 1,
        }
    }
}

impl Stats {
    /// Latency samples kept: at this many, every other one is let go and
    /// the sampling interval doubles, so the samples stay evenly spread
    /// over the run and memory stays bounded.
    const LATENCY_SAMPLES: usize = 1 << 20;

    fn record(&mut self, env: &Envelope, now_ns: i64) {
        if let (Some(Message::Counter(c)), "sluice") = (&env.message, env.source_id.as_str()) {
            if c.name == "dropped" {
                self.dropped += c.delta;
                return;
            }
        }
        self.received += 1;
        if self.received.is_multiple_of(self.sample_every) {
            let micros = (now_ns.saturating_sub(env.timestamp) / 1000).max(0) as u64;
            self.latencies_us.push(micros);
            if self.latencies_us.len() >= Self::LATENCY_SAMPLES {
                // Keep the samples at multiples of twice the interval.
                let mut i = 0;
                self.latencies_us.retain(|_| {
                    i += 1;
                    i % 2 == 0
                });
                self.sample_every *= 2;
            }
        }
    }

    fn report(&mut self, secs: f64) -> String {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
            self.latencies_us[i] as f64 / 1000.0
        };
        format!(
            "nozzle: received {} in {secs:.3}s ({:.0}/s) dropped {} latency_ms p50 {:.2} p99 {:.2} max {:.2}",
            self.received,
            self.received as f64 / secs.max(1e-9),
            self.dropped,
            pct(0.5),
            pct(0.99),
            pct(1.0)
        )
    }
}

/// `--duration`/`--idle` seconds as a duration; `None` for 0.
fn seconds(flag: &str, secs: f64) -> Result<Option<Duration>> {
    if secs == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{flag} must be a number of seconds, 0 or more (got {secs})"))
}

async fn nozzle(args: NozzleArgs) -> Result<u8> {
    let duration = seconds("--duration", args.duration)?;
    let idle = seconds("--idle", args.idle)?;
    let channel = args.target.connect().await?;
    let mut client = EgressClient::new(channel).max_decoding_message_size(grpc::serve::MAX_MESSAGE);
    let request = EgressBatchRequest {
        shard_id: args.shard_id.clone(),
        legacy_selector: None,
        use_preferred_tags: true,
        selectors: selectors(&args),
        deterministic_name: args.deterministic_name.clone(),
    };
    let mut stream = client
        .batched_receiver(request)
        .await
        .map_err(|s| anyhow::anyhow!("BatchedReceiver: {}: {}", s.code(), s.message()))?
        .into_inner();
    let started = Instant::now();
    let deadline = duration.and_then(|d| tokio::time::Instant::now().checked_add(d));
    let mut stats = Stats::default();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::new();
    let mut seen = 0u64;
    loop {
        // The sooner of the deadline and, once anything arrived, the idle limit.
        let idle_at = idle
            .filter(|_| seen > 0)
            .and_then(|d| tokio::time::Instant::now().checked_add(d));
        let wait_until = match (deadline, idle_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let next = match wait_until {
            Some(at) => match tokio::time::timeout_at(at, stream.message()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => stream.message().await,
        };
        let Some(batch) =
            next.map_err(|s| anyhow::anyhow!("the stream failed: {}: {}", s.code(), s.message()))?
        else {
            break;
        };
        let now = envelope::time::now_ns();
        for env in &batch.batch {
            if args.stats {
                stats.record(env, now);
                seen = stats.received + stats.dropped;
            } else {
                line.clear();
                envelope::json::write_json(env, &mut line);
                line.push(b'\n');
                out.write_all(&line)?;
                seen += 1;
            }
        }
        if !args.stats {
            out.flush()?;
        }
        if args.count > 0 && seen >= args.count {
            break;
        }
    }
    out.flush()?;
    drop(out);
    if args.stats {
        println!("{}", stats.report(started.elapsed().as_secs_f64()));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::v2::Counter;
    use envelope::LogType;

    #[test]
    fn stats_count_envelopes_and_told_loss_and_order_latencies() {
        let mut stats = Stats::default();
        let now = 10_000_000_000;
        for ms in [1, 2, 3, 50] {
            let env = Envelope::log(now - ms * 1_000_000, "a", "0", Bytes::new(), LogType::Out);
            stats.record(&env, now);
        }
        let mut told = Envelope::log(now, "sluice", "", Bytes::new(), LogType::Out);
        told.message = Some(Message::Counter(Counter {
            name: "dropped".into(),
            delta: 7,
            total: 7,
        }));
        stats.record(&told, now);
        let report = stats.report(1.0);
        assert!(
            report.contains("received 4 ")
                && report.contains("dropped 7 ")
                && report.contains("p50 3.00 p99 50.00 max 50.00"),
            "{report}"
        );
    }
}
