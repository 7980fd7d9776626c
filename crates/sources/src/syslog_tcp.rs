//! Syslog over TCP (RFC 6587): octet-counted or LF-framed, per frame.
//!
//! One task per connection, at most `max_connections` at once (further
//! connections wait in the listen backlog). Each read is decoded into frames
//! and published as one batch. A connection that stays silent past
//! `idle_timeout` is closed; a framing error (an absurd octet count) closes
//! the connection after publishing what came before it, since framing is
//! lost; everything else (bad syslog, bad UTF-8, oversized frames) is kept,
//! truncated or counted without closing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use codec::framing::{Frame, FrameDecoder};
use router::metrics::IngressCounters;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use crate::{now_ns, IngestContext};

const READ_CHUNK: usize = 64 * 1024;

/// Accepts connections until `shutdown` fires.
pub async fn run(listener: TcpListener, ctx: IngestContext, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(ctx.limits.max_connections.max(1)));
    let counters = ctx.bus.metrics().ingress_counters("syslog_tcp");
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(%err, "syslog tcp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let ctx = ctx.clone();
        let counters = counters.clone();
        let shutdown = shutdown.clone();
        let span = info_span!("syslog_tcp", %peer);
        tokio::spawn(
            async move {
                let _permit = permit;
                connection(stream, peer, ctx, counters, shutdown).await;
            }
            .instrument(span),
        );
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: IngestContext,
    counters: IngressCounters,
    shutdown: CancellationToken,
) {
    let metrics = Arc::clone(ctx.bus.metrics());
    let open = metrics.connection_gauge("syslog_tcp");
    open.inc();
    debug!(%peer, "connected");
    let mut decoder = FrameDecoder::new(ctx.limits.max_frame());
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            r = tokio::time::timeout(ctx.limits.idle_timeout, stream.read_buf(&mut buf)) => r,
            _ = shutdown.cancelled() => break,
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
                debug!("idle timeout");
                metrics.error("idle_timeout");
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
        counters.record(batch.len() as u64, bytes);
        ctx.bus.publish(batch);
        if eof || framing_lost {
            break;
        }
        // A busy sender's socket is always readable, so without this the
        // task would run until tokio's budget forces a yield (some 128
        // reads, tens of thousands of messages): long enough for the
        // consumers it just woke (drains, tails) to overflow their queues
        // on a small machine. Yielding after each read lets them keep pace.
        tokio::task::yield_now().await;
    }
    open.dec();
    debug!(%peer, "disconnected");
}
