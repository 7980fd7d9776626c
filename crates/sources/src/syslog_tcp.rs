//! Syslog over TCP (RFC 6587): octet-counted or LF-framed, per frame.
//!
//! One task per connection, at most `max_connections` at once. At the limit
//! a new connection is not made to wait: the open connection that completed
//! a frame longest ago (or never did) is closed to make room, counted as
//! `sluice_ingress_errors_total{reason="evicted"}`. So a crowd of slow or
//! silent connections (slowloris) cannot lock real senders out: a new
//! sender gets in at once and the crowd is what goes.
//!
//! Each read is decoded into frames and submitted to the log as one batch,
//! which takes its place in the log at once; the connection goes on
//! reading and decoding while up to [`IN_FLIGHT`] of its batches are being
//! written, and waits for the oldest only beyond that (waiting for each
//! batch before reading on left both cores idle a fifth of the time).
//!
//! A busy sender gets larger reads: the read size doubles, up to
//! [`READ_MAX`], while reads fill it and halves back to [`READ_MIN`] when
//! they do not, and a connection that went quiet gives its large buffer
//! back. Fewer, larger batches are what let the disk log keep up (one
//! append, one write, one wake-up per batch): 64 KiB reads held it to
//! ~600k msg/s on two cores, 256 KiB to ~870k (bench/ingest.sh). So a
//! connection holds at most `READ_MAX` plus one frame of unread bytes, and
//! `IN_FLIGHT + 1` batches of envelopes.
//!
//! A connection is closed when it stays silent past `idle_timeout`, or when
//! a frame it began is not finished within `frame_timeout` (`frame_timeout`
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

/// Batches a connection may have in the log's queue at once; it reads and
/// decodes on while they are written.
const IN_FLIGHT: usize = 3;

/// Read size of a new or quiet connection.
const READ_MIN: usize = 64 * 1024;
/// Read size of a connection whose reads keep filling the buffer.
const READ_MAX: usize = 256 * 1024;

/// The read size for a connection: grows while reads fill it, shrinks
/// when they do not.
#[derive(Debug)]
struct ReadSize(usize);

impl ReadSize {
    fn new() -> Self {
        ReadSize(READ_MIN)
    }

    /// After a read of `n` bytes into `room` free bytes.
    fn observe(&mut self, n: usize, room: usize) {
        if n == room {
            self.0 = (self.0 * 2).min(READ_MAX);
        } else if n < self.0 / 2 {
            self.0 = (self.0 / 2).max(READ_MIN);
        }
    }

    /// Makes room for the next read: reserves a read's worth, or, when
    /// nothing is buffered and the buffer grew past twice the read size
    /// (a busy sender that went quiet), starts a smaller one.
    fn prepare(&self, buf: &mut BytesMut) {
        if buf.is_empty() && buf.capacity() > 2 * self.0 {
            *buf = BytesMut::with_capacity(self.0);
        } else if buf.capacity() - buf.len() < self.0 / 4 {
            buf.reserve(self.0);
        }
    }
}

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
    let mut read_size = ReadSize::new();
    let mut last_batch_len = 0;
    let mut buf = BytesMut::with_capacity(READ_MIN);
    // When the frame under way began (None at a frame boundary).
    let mut frame_began: Option<tokio::time::Instant> = None;
    // Submitted to the log (in order, at submission), not yet stored.
    let mut in_flight = std::collections::VecDeque::with_capacity(IN_FLIGHT);
    loop {
        read_size.prepare(&mut buf);
        let room = buf.capacity() - buf.len();
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
            Ok(Ok(n)) => {
                read_size.observe(n, room);
                false
            }
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
        // Sized for the frames the last read held: growing a Vec of
        // envelopes by doubling copies each one about twice.
        let mut batch = Vec::with_capacity(last_batch_len);
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
        last_batch_len = batch.len();
        if in_flight.len() == IN_FLIGHT {
            if let Some(oldest) = in_flight.pop_front() {
                // Refused batches are counted by `submit`; the connection goes on.
                let _ = oldest.await;
            }
        }
        if !batch.is_empty() {
            in_flight.push_back(Box::pin(ctx.submit(batch)));
        }
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
    for batch in in_flight {
        let _ = batch.await;
    }
    open.dec();
    debug!(%peer, "disconnected");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_size_grows_while_reads_fill_and_shrinks_when_not() {
        let mut size = ReadSize::new();
        assert_eq!(size.0, READ_MIN);
        size.observe(READ_MIN, READ_MIN);
        assert_eq!(size.0, 2 * READ_MIN);
        for _ in 0..10 {
            size.observe(size.0, size.0);
        }
        assert_eq!(size.0, READ_MAX, "never past the maximum");
        size.observe(size.0 / 2, size.0);
        assert_eq!(size.0, READ_MAX, "half full keeps the size");
        size.observe(100, size.0);
        assert_eq!(size.0, READ_MAX / 2);
        for _ in 0..10 {
            size.observe(100, size.0);
        }
        assert_eq!(size.0, READ_MIN, "never below the minimum");
    }

    #[test]
    fn a_quiet_connection_gives_a_large_buffer_back() {
        let size = ReadSize::new();
        let mut buf = BytesMut::with_capacity(READ_MAX);
        size.prepare(&mut buf);
        assert!(buf.capacity() <= 2 * READ_MIN, "{}", buf.capacity());
        // A partial frame is kept, whatever the buffer's size.
        let mut buf = BytesMut::with_capacity(READ_MAX);
        buf.extend_from_slice(b"12 <13>1 -");
        size.prepare(&mut buf);
        assert_eq!(&buf[..], b"12 <13>1 -");
        assert!(buf.capacity() >= READ_MAX);
        // Room for a read is always made.
        let mut buf = BytesMut::new();
        size.prepare(&mut buf);
        assert!(buf.capacity() >= READ_MIN);
    }
}
