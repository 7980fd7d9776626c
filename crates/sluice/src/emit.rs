//! `sluice emit`: the seeds' "tools for testing performance and efficacy".
//! Sends numbered logs, over gRPC (`Ingress.BatchSender`, as go-loggregator
//! does), syslog over TCP (octet-counted RFC 5424) or HTTP (`POST /logs`,
//! `application/logplex-1` batches of `--batch`, as Logplex's drains
//! post), at a set rate or as fast as the server takes them; with
//! `--verify`, reads them back through the Log Cache API and reports sent,
//! received, duplicates and loss.
//!
//! Each line's payload is `emit <run> <n>` padded with `x` to `--size`
//! bytes, from source `--source` (with `--sources K`, cycling through
//! `<source>-0` … `<source>-<K-1>`, which keeps each under the per-source
//! cap when verifying many). Over gRPC `--kind counter` or `gauge` sends
//! metrics instead: counter `emit_<run>` with `delta` 1 and `total` n, or
//! gauge metric `emit_<run>` with value n (unit `count`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use envelope::v2::{Counter, Envelope, Gauge, GaugeValue, Log, Message};
use envelope::LogType;
use tokio::io::AsyncWriteExt as _;

use crate::client::grpc::GrpcTarget;
use crate::client::{self, endpoint, ServerArg};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Over {
    Grpc,
    Syslog,
    Http,
}

/// What each numbered envelope is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Log,
    Counter,
    Gauge,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  sluice emit --over grpc --target 127.0.0.1:8082 --count 100000 --verify\n  sluice emit --over syslog --target 127.0.0.1:5514 --count 1000000 --rate 50000\n  sluice emit --over http --target 127.0.0.1:8000 --count 100000 --verify"
)]
pub struct EmitArgs {
    /// How to send
    #[arg(long, value_enum, default_value = "grpc")]
    over: Over,
    /// Where (HOST:PORT of the gRPC, syslog or HTTP listener), and gRPC's TLS
    #[command(flatten)]
    target: GrpcTarget,
    /// Lines to send
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Lines per second (0: as fast as accepted)
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Source id of the lines
    #[arg(long, default_value = "emit")]
    source: String,
    /// Cycle through this many sources (<source>-0 …)
    #[arg(long, default_value_t = 1)]
    sources: u64,
    /// Bytes per payload
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Numbered logs, or (over gRPC) counters or gauges
    #[arg(long, value_enum, default_value = "log")]
    kind: Kind,
    /// Envelopes per gRPC batch or HTTP request (go-loggregator sends 100)
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Read the lines back (through --server) and report loss and duplicates
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    server: ServerArg,
}

pub fn main(args: EmitArgs) -> Result<u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(emit(args))
}

/// This run's id, in every payload.
fn run_id() -> String {
    format!("{:x}", envelope::time::now_ns() as u64 & 0xffff_ffff)
}

fn source_of(args: &EmitArgs, n: u64) -> String {
    if args.sources <= 1 {
        args.source.clone()
    } else {
        format!("{}-{}", args.source, n % args.sources)
    }
}

/// Appends line `n`'s payload to `buf`.
fn push_payload(buf: &mut bytes::BytesMut, run: &str, n: u64, size: usize) {
    use std::fmt::Write as _;
    let start = buf.len();
    let _ = write!(buf, "emit {run} {n} ");
    if buf.len() - start < size {
        buf.resize(start + size, b'x');
    }
}

async fn emit(args: EmitArgs) -> Result<u8> {
    if args.size > 64 * 1024 || args.batch == 0 || args.batch > 10_000 {
        bail!("--size must be at most 65536 and --batch between 1 and 10000");
    }
    if args.sources > 1_000_000 {
        bail!("--sources must be at most 1000000");
    }
    if args.kind != Kind::Log && args.over != Over::Grpc {
        bail!("--kind counter and gauge need --over grpc: syslog and HTTP carry logs");
    }
    let run = run_id();
    let start = Instant::now();
    match args.over {
        Over::Grpc => send_grpc(&args, &run).await?,
        Over::Syslog => send_syslog(&args, &run).await?,
        Over::Http => send_http(&args, &run).await?,
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {} in {secs:.3}s ({:.0}/s) over {:?}, run {run}",
        args.count,
        args.count as f64 / secs.max(1e-9),
        args.over
    );
    if args.verify {
        return verify(&args, &run).await;
    }
    Ok(0)
}

/// Sleeps as needed to keep `sent` lines at `--rate`.
async fn pace(rate: u64, start: Instant, sent: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(start.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

/// One `BatchSender` stream. Each batch is written straight into one
/// buffer as its protobuf encoding (the envelopes of a source share one
/// template whose timestamp and payload change; payloads are slices of one
/// growing buffer), so the emitter costs the server's CPUs as little as a
/// load generator may: on two CPUs the two share them.
async fn send_grpc(args: &EmitArgs, run: &str) -> Result<()> {
    use grpc::codec::PreEncodedCodec;
    use grpc::messages::BatchSenderResponse;
    let channel = args.target.connect().await?;
    let mut client =
        tonic::client::Grpc::new(channel).max_encoding_message_size(grpc::serve::MAX_MESSAGE);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let count = args.count;
    let batch_size = args.batch as u64;
    let started = Instant::now();
    let producer = async {
        let mut templates: Vec<Envelope> = (0..args.sources.max(1))
            .map(|s| Envelope::log(0, source_of(args, s), "0", Bytes::new(), LogType::Out))
            .collect();
        let mut payloads = bytes::BytesMut::new();
        let mut out = bytes::BytesMut::new();
        let mut n = 0;
        while n < count {
            pace(args.rate, started, n).await;
            let end = (n + batch_size).min(count);
            // One clock reading per batch: its envelopes are made together.
            let now = envelope::time::now_ns();
            // Room for the whole batch at once, not grown line by line.
            let lines = (end - n) as usize;
            payloads.reserve(lines * (args.size + 32));
            out.reserve(lines * (args.size + 64 + args.source.len()));
            for i in n..end {
                let env = &mut templates[(i % args.sources.max(1)) as usize];
                env.timestamp = now;
                match args.kind {
                    Kind::Log => {
                        push_payload(&mut payloads, run, i, args.size);
                        env.message = Some(Message::Log(Log {
                            payload: payloads.split().freeze(),
                            r#type: LogType::Out as i32,
                        }));
                    }
                    Kind::Counter | Kind::Gauge => env.message = Some(metric(args.kind, run, i)),
                }
                // `EnvelopeBatch` is `repeated Envelope batch = 1`.
                prost::encoding::message::encode(1, &*env, &mut out);
            }
            if tx.send(out.split().freeze()).await.is_err() {
                break;
            }
            n = end;
        }
        drop(tx);
    };
    let call = async {
        client
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/loggregator.v2.Ingress/BatchSender",
        );
        client
            .client_streaming::<_, Bytes, BatchSenderResponse, _>(
                tonic::Request::new(tokio_stream_from(rx)),
                path,
                PreEncodedCodec::default(),
            )
            .await
    };
    let (_, sent) = tokio::join!(producer, call);
    sent.map_err(|s| anyhow::anyhow!("BatchSender: {}: {}", s.code(), s.message()))?;
    Ok(())
}

/// A receiver as a stream, for a client-streaming call.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn send_syslog(args: &EmitArgs, run: &str) -> Result<()> {
    let target = &args.target.target;
    let mut conn = tokio::net::TcpStream::connect(target)
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    conn.set_nodelay(true).ok();
    let started = Instant::now();
    let mut buf = Vec::with_capacity(256 * 1024);
    for n in 0..args.count {
        if n % 1000 == 0 {
            pace(args.rate, started, n).await;
        }
        push_syslog_frame(&mut buf, args, run, n);
        if buf.len() >= 192 * 1024 {
            conn.write_all(&buf).await.context("sending")?;
            buf.clear();
        }
    }
    conn.write_all(&buf).await.context("sending")?;
    conn.shutdown().await.ok();
    Ok(())
}

/// Appends line `n` as one octet-counted RFC 5424 frame.
fn push_syslog_frame(buf: &mut Vec<u8>, args: &EmitArgs, run: &str, n: u64) {
    use std::io::Write as _;
    let header = format!("<14>1 - emit {} - - - ", source_of(args, n));
    let mut payload = bytes::BytesMut::with_capacity(args.size.max(48));
    push_payload(&mut payload, run, n, args.size);
    let _ = write!(buf, "{} {header}", header.len() + payload.len());
    buf.extend_from_slice(&payload);
}

/// `POST /logs` with `application/logplex-1` bodies of `--batch` frames,
/// one request at a time (a Logplex drain's habit); a refused request
/// (not 2xx) ends the run with the server's answer.
async fn send_http(args: &EmitArgs, run: &str) -> Result<()> {
    let base = client::parse_server_url(&args.target.target)?;
    let url = endpoint(&base, &["logs"]);
    let http = client::http_client(args.server.token.as_deref())?;
    let started = Instant::now();
    let mut n = 0;
    while n < args.count {
        pace(args.rate, started, n).await;
        let end = (n + args.batch as u64).min(args.count);
        let mut body = Vec::with_capacity((end - n) as usize * (args.size + 64));
        for i in n..end {
            push_syslog_frame(&mut body, args, run, i);
        }
        let response = http
            .post(url.clone())
            .header("content-type", "application/logplex-1")
            .header("logplex-msg-count", (end - n).to_string())
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot POST to {url}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("POST {url}: {status}: {}", text.trim());
        }
        n = end;
    }
    Ok(())
}

/// Envelope `n` as a counter or a gauge.
fn metric(kind: Kind, run: &str, n: u64) -> Message {
    let name = format!("emit_{run}");
    match kind {
        Kind::Gauge => Message::Gauge(Gauge {
            metrics: [(
                name,
                GaugeValue {
                    unit: "count".into(),
                    value: n as f64,
                },
            )]
            .into(),
        }),
        _ => Message::Counter(Counter {
            name,
            delta: 1,
            total: n,
        }),
    }
}

/// The number of one of this run's envelopes (log, counter or gauge).
fn number_of(env: &Envelope, marker: &str, metric_name: &str) -> Option<u64> {
    match env.message.as_ref()? {
        Message::Log(l) => {
            let text = String::from_utf8_lossy(&l.payload);
            text.strip_prefix(marker)?.split(' ').next()?.parse().ok()
        }
        Message::Counter(c) => (c.name == metric_name).then_some(c.total),
        Message::Gauge(g) => g.metrics.get(metric_name).map(|v| v.value as u64),
        _ => None,
    }
}

/// Reads this run's lines back and reports; exit 1 when any is missing.
async fn verify(args: &EmitArgs, run: &str) -> Result<u8> {
    let base = args.server.url()?;
    let http = client::http_client(args.server.token.as_deref())?;
    let has_token = args.server.token.is_some();
    let marker = format!("emit {run} ");
    let metric_name = format!("emit_{run}");
    // Ingest is asynchronous to the sender: wait until the count settles.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut received: u64;
    let mut last = u64::MAX;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        seen.clear();
        received = 0;
        for s in 0..args.sources.max(1) {
            let source = if args.sources <= 1 {
                args.source.clone()
            } else {
                format!("{}-{s}", args.source)
            };
            let mut start_time = 0i64;
            loop {
                let mut url = endpoint(&base, &["api", "v1", "read", &source]);
                url.query_pairs_mut()
                    .append_pair("start_time", &start_time.to_string())
                    .append_pair("limit", "1000");
                let page = client::get_json(&http, &base, url, has_token, "read").await?;
                let batch = page["envelopes"]["batch"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for e in &batch {
                    let json = e.to_string();
                    let Ok(env) = envelope::json::from_json(json.as_bytes()) else {
                        continue;
                    };
                    if let Some(n) = number_of(&env, &marker, &metric_name) {
                        received += 1;
                        seen.insert(n);
                    }
                    start_time = start_time.max(env.timestamp.saturating_add(1));
                }
                if batch.len() < 1000 {
                    break;
                }
            }
        }
        if seen.len() as u64 >= args.count || (received == last) || Instant::now() > deadline {
            break;
        }
        last = received;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let unique = seen.len() as u64;
    let lost = args.count.saturating_sub(unique);
    println!(
        "verify: sent {} received {received} unique {unique} duplicates {} lost {lost} ({:.3}%)",
        args.count,
        received - unique,
        100.0 * lost as f64 / args.count.max(1) as f64
    );
    Ok(if lost == 0 { 0 } else { 1 })
}
