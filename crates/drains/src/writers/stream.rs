//! The byte-stream writer shared by `syslog://`, `syslog-tls://` and
//! `tcp://`: the front of a batch, up to `max_bytes` of encoded output
//! (at least one entry), is encoded into one buffer and written with one
//! `write_all` (and flush, which pushes out TLS records), bounded by
//! [`WRITE_TIMEOUT`].
//!
//! Syslog receivers never talk back, so before each batch the writer polls
//! the connection for reading once without waiting: end of stream means the
//! receiver closed it, and the batch goes to a fresh connection instead of
//! into a socket whose peer is gone (where the first write would still
//! "succeed").

use std::sync::Arc;

use envelope::Entry;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{DrainWriter, SendFuture, WriteError, WRITE_TIMEOUT};

/// Encodes one entry onto the batch buffer.
pub(super) trait Encode: Send {
    fn encode(&mut self, entry: &Entry, out: &mut Vec<u8>);
}

impl<F: FnMut(&Entry, &mut Vec<u8>) + Send> Encode for F {
    fn encode(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        self(entry, out)
    }
}

pub(super) struct StreamWriter<S, E> {
    stream: S,
    /// Who we write to, for messages: `logs.example.com (203.0.113.9:6514)`.
    peer: String,
    encoder: E,
    buf: Vec<u8>,
    max_bytes: usize,
}

impl<S, E> StreamWriter<S, E>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    E: Encode,
{
    /// `max_bytes`: encoded bytes written at once (one entry more at most).
    pub(super) fn new(stream: S, peer: String, encoder: E, max_bytes: usize) -> Self {
        StreamWriter {
            stream,
            peer,
            encoder,
            buf: Vec::new(),
            max_bytes,
        }
    }

    /// Fails when the receiver has closed the connection (or reset it).
    /// Anything it sent is read and ignored.
    fn check_open(&mut self) -> Result<(), WriteError> {
        let mut scratch = [0u8; 512];
        // A receiver that keeps sending could hold us here; a few reads are enough.
        for _ in 0..16 {
            match self.stream.read(&mut scratch).now_or_never() {
                None => return Ok(()),
                Some(Ok(0)) => {
                    return Err(WriteError::Retry(format!(
                        "{} closed the connection",
                        self.peer
                    )))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Err(WriteError::Retry(format!(
                        "connection to {}: {e}",
                        self.peer
                    )))
                }
            }
        }
        Ok(())
    }

    async fn send_batch(&mut self, batch: &[Arc<Entry>]) -> Result<usize, WriteError> {
        self.buf.clear();
        let mut n = 0;
        for entry in batch {
            self.encoder.encode(entry, &mut self.buf);
            n += 1;
            if self.buf.len() >= self.max_bytes {
                break;
            }
        }
        if self.buf.is_empty() {
            return Ok(n);
        }
        self.check_open()?;
        let write = async {
            self.stream.write_all(&self.buf).await?;
            self.stream.flush().await
        };
        let result = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(n),
            Ok(Err(e)) => Err(WriteError::Retry(format!("write to {}: {e}", self.peer))),
            Err(_) => Err(WriteError::Retry(format!(
                "write to {}: timed out after {} s",
                self.peer,
                WRITE_TIMEOUT.as_secs()
            ))),
        };
        // Do not keep a large buffer around between batches.
        if self.buf.capacity() > 2 * self.max_bytes {
            self.buf = Vec::new();
        }
        result
    }
}

impl<S, E> DrainWriter for StreamWriter<S, E>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    E: Encode,
{
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(self.send_batch(batch))
    }
}

/// `logs.example.com (203.0.113.9:6514)`, or just the address when the
/// host is the address.
pub(super) fn peer_name(host: &str, addr: std::net::SocketAddr) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        addr.to_string()
    } else {
        format!("{host} ({addr})")
    }
}
