//! UDP drains: `syslog+udp://` sends one RFC 5424 message (Loggregator's
//! format, trailing LF kept) per datagram; `udp://` (Logyard's) sends the
//! drain's format rendering (verbatim by default), no terminator.
//!
//! A datagram longer than [`MAX_DATAGRAM`] (the largest UDP payload over
//! IPv4) is cut to that length and counted as a `truncated` drop. The
//! socket is connected to the first allowed address of the host, so an
//! ICMP port-unreachable from the receiver surfaces as "connection refused"
//! on a later send, which is a [`WriteError::Retry`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use envelope::Entry;
use metrics::Metrics;
use tokio::net::UdpSocket;

use super::encode::{LineEncoder, SyslogEncoder};
use super::{DrainWriter, SendFuture, WriteError, WriterContext, WRITE_TIMEOUT};
use crate::format::Format;
use crate::spec::{Endpoint, LinesTarget, SyslogTarget};

/// Largest datagram sent: 65,535 − 8 (UDP header) − 20 (IPv4 header).
pub const MAX_DATAGRAM: usize = 65_507;

enum Encoder {
    Syslog(Box<SyslogEncoder>),
    Plain(LineEncoder),
}

struct DatagramWriter {
    socket: UdpSocket,
    addr: SocketAddr,
    encoder: Encoder,
    metrics: Arc<Metrics>,
    buf: Vec<u8>,
}

/// `syslog+udp://`.
pub(super) async fn connect_syslog(
    ctx: &WriterContext,
    target: &SyslogTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let encoder = Encoder::Syslog(Box::new(SyslogEncoder::new(ctx, target.omit_metadata)));
    connect(ctx, &target.endpoint, encoder).await
}

/// `udp://` (logspout: `raw://`, `raw+udp://`).
pub(super) async fn connect_lines(
    ctx: &WriterContext,
    target: &LinesTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let encoder = Encoder::Plain(LineEncoder::new(ctx, Format::Verbatim, true));
    connect(ctx, &target.endpoint, encoder).await
}

async fn connect(
    ctx: &WriterContext,
    to: &Endpoint,
    encoder: Encoder,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let mut errors = Vec::new();
    for addr in super::resolve(ctx, to).await? {
        match connect_socket(addr).await {
            Ok(socket) => {
                tracing::debug!(drain = %ctx.name, %addr, "udp drain connected");
                return Ok(Box::new(DatagramWriter {
                    socket,
                    addr,
                    encoder,
                    metrics: Arc::clone(&ctx.metrics),
                    buf: Vec::new(),
                }));
            }
            Err(e) => errors.push(format!("connect udp {addr}: {e}")),
        }
    }
    Err(WriteError::Retry(errors.join("; ")))
}

async fn connect_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

impl DatagramWriter {
    /// Encodes one entry into `buf`, cut to [`MAX_DATAGRAM`]; whether it
    /// was cut here (the encoder counts its own cuts to `max_record`).
    fn encode(&mut self, entry: &Entry) -> bool {
        self.buf.clear();
        let cut = match &mut self.encoder {
            Encoder::Syslog(syslog) => syslog.message(entry, &mut self.buf),
            Encoder::Plain(lines) => lines.render(entry, &mut self.buf),
        };
        truncate(&mut self.buf) && !cut
    }

    /// One datagram per entry, so the whole batch.
    async fn send_batch(&mut self, batch: &[Arc<Entry>]) -> Result<usize, WriteError> {
        let mut truncated = 0;
        let mut result = Ok(());
        for entry in batch {
            if self.encode(entry) {
                truncated += 1;
            }
            if self.buf.is_empty() {
                continue;
            }
            match tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(&self.buf)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let hint = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        " (nothing listens on that port)"
                    } else {
                        ""
                    };
                    result = Err(WriteError::Retry(format!(
                        "send to udp {}: {e}{hint}",
                        self.addr
                    )));
                    break;
                }
                Err(_) => {
                    result = Err(WriteError::Retry(format!(
                        "send to udp {}: timed out after {} s",
                        self.addr,
                        WRITE_TIMEOUT.as_secs()
                    )));
                    break;
                }
            }
        }
        if truncated > 0 {
            self.metrics.count_drop("truncated", truncated);
        }
        result.map(|()| batch.len())
    }
}

/// Cuts `buf` to [`MAX_DATAGRAM`] bytes, keeping a trailing LF; whether it
/// was cut.
fn truncate(buf: &mut Vec<u8>) -> bool {
    if buf.len() <= MAX_DATAGRAM {
        return false;
    }
    if buf.last() == Some(&b'\n') {
        buf.truncate(MAX_DATAGRAM - 1);
        buf.push(b'\n');
    } else {
        buf.truncate(MAX_DATAGRAM);
    }
    true
}

impl DrainWriter for DatagramWriter {
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(self.send_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::super::testutil::{batch, ctx};
    use super::super::{connect, WriteError};
    use super::MAX_DATAGRAM;

    async fn recv(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = vec![0u8; 70_000];
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("a datagram in time")
            .expect("recv");
        buf.truncate(n);
        buf
    }

    #[tokio::test]
    async fn syslog_datagrams_are_truncated_and_counted() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = receiver.local_addr().unwrap().port();
        let ctx = ctx(&format!("syslog+udp://127.0.0.1:{port}"));
        let mut writer = connect(&ctx).await.unwrap();
        let huge = "x".repeat(70_000);
        writer.send(&batch(&["small", &huge])).await.unwrap();
        let first = recv(&receiver).await;
        assert!(first.starts_with(b"<14>1 ") && first.ends_with(b" small\n"));
        let second = recv(&receiver).await;
        assert_eq!(second.len(), MAX_DATAGRAM);
        assert!(second.ends_with(b"xx\n"));
        assert_eq!(ctx.metrics.dropped("truncated"), 1);
    }

    #[tokio::test]
    async fn plain_udp_sends_the_rendering() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = receiver.local_addr().unwrap().port();
        let mut writer = connect(&ctx(&format!("udp://127.0.0.1:{port}")))
            .await
            .unwrap();
        writer.send(&batch(&["plain line"])).await.unwrap();
        assert_eq!(recv(&receiver).await, b"plain line");
        writer.send(&batch(&["one\ntwo\r\0"])).await.unwrap();
        assert_eq!(recv(&receiver).await, b"one\\ntwo\\r\\0");
    }

    #[tokio::test]
    async fn port_unreachable_is_retry() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = receiver.local_addr().unwrap().port();
        drop(receiver);
        let mut writer = connect(&ctx(&format!("udp://127.0.0.1:{port}")))
            .await
            .unwrap();
        // The ICMP answer to one datagram fails a later send.
        let mut error = None;
        for _ in 0..20 {
            if let Err(e) = writer.send(&batch(&["anyone?"])).await {
                error = Some(e);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let err = error.expect("a send error");
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert!(err.to_string().contains("Connection refused"), "{err}");
    }
}
