//! Syslog over UDP: one message per datagram (RFC 5426), either grammar.
//!
//! Datagrams that are already waiting are read together and published as
//! one batch. A datagram longer than `max_message` is truncated and counted.

use std::sync::Arc;

use envelope::time::now_ns;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::IngestContext;

/// Datagrams gathered into one batch at most.
const MAX_BATCH: usize = 256;

pub async fn run(socket: UdpSocket, ctx: IngestContext, shutdown: CancellationToken) {
    let metrics = Arc::clone(&ctx.metrics);
    let counters = metrics.ingress_counters("syslog_udp");
    // One byte more than the limit tells a truncated datagram apart.
    let mut buf = vec![0u8; ctx.limits.max_datagram.max(ctx.limits.max_frame()) + 1];
    loop {
        let first = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.cancelled() => return,
        };
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        let now = now_ns();
        let mut received = Some(first);
        let mut reads = 0;
        while let Some(result) = received.take() {
            reads += 1;
            match result {
                Ok((n, _peer)) => {
                    bytes += n as u64;
                    let datagram = trim_line_end(&buf[..n]);
                    if !datagram.is_empty() {
                        let max = ctx.limits.max_frame();
                        let truncated = datagram.len() > max;
                        let kept = &datagram[..datagram.len().min(max)];
                        batch.push(ctx.syslog_frame(kept, truncated, now));
                    }
                }
                Err(err) => {
                    warn!(%err, "syslog udp receive failed");
                    metrics.error("read_error");
                }
            }
            if reads < MAX_BATCH {
                match socket.try_recv_from(&mut buf) {
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => received = Some(other),
                }
            }
        }
        counters.record(batch.len() as u64, bytes);
        // Refused batches are counted by `publish`.
        let _ = ctx.publish(batch).await;
        // As syslog_tcp does: a flooded socket is always readable, so give
        // the consumers just woken a turn.
        tokio::task::yield_now().await;
    }
}

fn trim_line_end(mut d: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | 0] = d {
        d = rest;
    }
    d
}
