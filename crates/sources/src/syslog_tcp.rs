//! Syslog over TCP (RFC 6587): octet-counted or LF-framed, per frame.
//!
//! One task per connection, at most `max_connections` at once. At the limit
//! a new connection is not made to wait: the open connection that completed
//! a frame longest ago (or never did) is closed to make room, counted as
//! `sluice_ingress_errors_total{reason="evicted"}`. So a crowd of slow or
//! silent connections (slowloris) cannot lock real senders out: a new
//! sender gets in at once and the crowd is what goes.
//!
//! Each read is decoded into frames and published as one batch. A
//! connection is closed when it stays silent past `idle_timeout`, or when a
//! frame it began is not finished within `frame_timeout` (`frame_timeout`
//! in the metrics); a framing error (an absurd octet count) closes the
//! connection after publishing what came before it, since framing is lost;
//! everything else (bad syslog, bad UTF-8, oversized frames) is kept,
//! truncated or counted without closing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use codec::framing::{Frame, FrameDecoder};
use envelope::time::now_ns;
use metrics::IngressCounters;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::connections::{Admitted, ConnectionTable, Slot};
use crate::IngestContext;

const READ_CHUNK: usize = 64 * 1024;

/// Accepts connections until `shutdown` fires.
pub async fn run(listener: TcpListener, ctx: IngestContext, shutdown: CancellationToken) {
    let counters = ctx.metrics.ingress_counters("syslog_tcp");
    let connections = ConnectionTable::new(ctx.limits.max_connections);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(%err, "syslog tcp accept failed");
                    ctx.metrics.error("accept_failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let (registration, admitted) = connections.admit(&shutdown);
        if admitted == Admitted::Evicted {
            debug!("connection limit reached; closed the connection idle longest");
            ctx.metrics.error("evicted");
        }
        let ctx = ctx.clone();
        let counters = counters.clone();
        let span = info_span!("syslog_tcp", %peer);
        tokio::spawn(
            async move {
                connection(stream, peer, &ctx, counters, &registration.slot).await;
            }
            .instrument(span),
        );
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &IngestContext,
    counters: IngressCounters,
    slot: &Slot,
) {
    let metrics = Arc::clone(&ctx.metrics);
    let open = metrics.connection_gauge("syslog_tcp");
    open.inc();
    debug!(%peer, "connected");
    let mut decoder = FrameDecoder::new(ctx.limits.max_frame());
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // When the frame under way began (None at a frame boundary).
    let mut frame_began: Option<tokio::time::Instant> = None;
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        // Silent for idle_timeout, or one frame taking frame_timeout:
        // whichever comes first closes the connection.
        let idle = (
            tokio::time::Instant::now() + ctx.limits.idle_timeout,
            "idle_timeout",
        );
        let (deadline, reason) = match frame_began {
            Some(began) if began + ctx.limits.frame_timeout < idle.0 => {
                (began + ctx.limits.frame_timeout, "frame_timeout")
            }
            _ => idle,
        };
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r,
            _ = slot.close.cancelled() => break,
        };
        let eof = match read {
            Ok(Ok(0)) => true,
            Ok(Ok(_)) => false,
            Ok(Err(err)) => {
                debug!(%err, "read failed");
                metrics.error("read_error");
                true
            }
            Err(_) => {
                debug!(reason, "timed out; closing");
                metrics.error(reason);
                true
            }
        };
        let mut batch = Vec::new();
        let now = now_ns();
        let mut bytes = 0u64;
        let mut push = |frame: Frame| {
            bytes += frame.data.len() as u64;
            batch.push(ctx.syslog_frame(&frame.data, frame.truncated, now));
        };
        let mut framing_lost = false;
        loop {
            let next = if eof {
                decoder.decode_eof(&mut buf)
            } else {
                decoder.decode(&mut buf)
            };
            match next {
                Ok(Some(frame)) => push(frame),
                Ok(None) => break,
                Err(err) => {
                    warn!(%err, "framing lost; closing connection");
                    metrics.error("bad_frame");
                    framing_lost = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            slot.touch();
            frame_began = None;
        }
        if decoder.in_frame(&buf) {
            frame_began.get_or_insert_with(tokio::time::Instant::now);
        } else {
            frame_began = None;
        }
        counters.record(batch.len() as u64, bytes);
        // Refused batches are counted by `publish`; the connection goes on.
        let _ = ctx.publish(batch).await;
        if eof || framing_lost {
            break;
        }
        // A busy sender's socket is always readable, and an in-memory log
        // appends without yielding, so without this the task would run until
        // tokio's budget forces a yield (some 128 reads, tens of thousands
        // of messages): long enough for the live tails it just woke to
        // overflow their queues on a small machine.
        tokio::task::yield_now().await;
    }
    open.dec();
    debug!(%peer, "disconnected");
}
