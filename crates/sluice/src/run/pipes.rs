//! Reading the child's stdout and stderr.
//!
//! Each pipe is read in large chunks (and on Linux its kernel buffer is
//! raised to 1 MiB) so the child never waits on us; lines go into the
//! drop-oldest buffer under one lock per chunk. With `--tee`, each chunk is
//! also offered, unchanged, to a writer thread for sluice's own stdout or
//! stderr; when that writer falls behind (a slow terminal) chunks are
//! skipped rather than waited for.

use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use bytes::Bytes;
use envelope::LogType;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::oneshot;

use super::buffer::Shared;
use super::clock::Clock;
use super::envelopes::Item;
use super::lines::LineSplitter;

const READ_CHUNK: usize = 256 * 1024;
const TEE_BACKLOG: usize = 256;

/// What a reader saw, for the debug summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct PipeStats {
    pub lines: u64,
    pub splits: u64,
    pub tee_skipped: u64,
}

/// Reads `pipe` to its end, queueing one item per line.
pub async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    kind: LogType,
    max_line: usize,
    queue: Arc<Shared<Item>>,
    clock: Arc<Clock>,
    tee: Option<SyncSender<Bytes>>,
) -> PipeStats {
    let mut stats = PipeStats::default();
    let mut splitter = LineSplitter::new(max_line);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut items = Vec::new();
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::debug!(%err, "reading the child's output");
                break;
            }
        };
        let chunk = &buf[..n];
        if let Some(tee) = &tee {
            if tee.try_send(Bytes::copy_from_slice(chunk)).is_err() {
                stats.tee_skipped += 1;
            }
        }
        splitter.push(chunk, |line| items.push(line_item(&clock, kind, line)));
        stats.lines += items.len() as u64;
        queue.push_all(items.drain(..), clock.stamp());
    }
    splitter.finish(|line| items.push(line_item(&clock, kind, line)));
    stats.lines += items.len() as u64;
    queue.push_all(items.drain(..), clock.stamp());
    stats.splits = splitter.splits();
    stats
}

fn line_item(clock: &Clock, kind: LogType, line: &[u8]) -> Item {
    Item::Line {
        timestamp: clock.stamp(),
        kind,
        payload: Bytes::copy_from_slice(line),
    }
}

/// A tee: a bounded channel, and a thread writing what arrives on it to
/// `out`. The thread ends, and the receiver resolves, when every sender is
/// dropped and what was queued is written.
pub fn tee(mut out: impl Write + Send + 'static) -> (SyncSender<Bytes>, oneshot::Receiver<()>) {
    let (tx, rx) = sync_channel::<Bytes>(TEE_BACKLOG);
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("sluice-tee".into())
        .spawn(move || {
            for chunk in rx {
                if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
                    break; // our own output is gone: stop teeing, keep shipping
                }
            }
            let _ = done_tx.send(());
        });
    if let Err(err) = spawned {
        tracing::debug!(%err, "cannot start the tee thread");
    }
    (tx, done_rx)
}

/// Raises a pipe's kernel buffer (Linux; best effort, silently ignored
/// elsewhere or when refused).
pub fn enlarge_pipe(fd: std::os::fd::RawFd) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: F_SETPIPE_SZ takes an int and touches no memory; on a bad
        // fd or a refusal it returns -1, which is fine to ignore.
        unsafe {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, 1024 * 1024);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pumps_lines_into_the_queue_and_tees_the_bytes() {
        let queue = Arc::new(Shared::new(100));
        let clock = Arc::new(Clock::new());
        let (tee_tx, tee_rx) = sync_channel(16);
        let input: &[u8] = b"one\ntwo\r\nthree";
        let stats = pump(input, LogType::Err, 64, queue.clone(), clock, Some(tee_tx)).await;
        assert_eq!(stats.lines, 3);
        let items: Vec<Item> = queue.lock().peek(10).into_iter().map(|(_, i)| i).collect();
        let texts: Vec<_> = items
            .iter()
            .map(|i| match i {
                Item::Line { kind, payload, .. } => {
                    assert_eq!(*kind, LogType::Err);
                    payload.clone()
                }
                Item::Envelope(_) => panic!("unexpected envelope"),
            })
            .collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert_eq!(tee_rx.recv().ok().as_deref(), Some(input));
    }

    #[tokio::test]
    async fn the_tee_writes_everything_then_finishes() {
        #[derive(Clone, Default)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let (tx, done) = tee(sink.clone());
        tx.try_send(Bytes::from_static(b"a\n")).unwrap();
        tx.try_send(Bytes::from_static(b"b\n")).unwrap();
        drop(tx);
        done.await.unwrap();
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"a\nb\n");
    }

    #[tokio::test]
    async fn timestamps_increase() {
        let queue = Arc::new(Shared::new(100));
        let input: &[u8] = b"a\nb\nc\n";
        pump(
            input,
            LogType::Out,
            64,
            queue.clone(),
            Arc::new(Clock::new()),
            None,
        )
        .await;
        let items: Vec<Item> = queue.lock().peek(10).into_iter().map(|(_, i)| i).collect();
        let ts: Vec<i64> = items
            .iter()
            .filter_map(|i| match i {
                Item::Line { timestamp, .. } => Some(*timestamp),
                Item::Envelope(_) => None,
            })
            .collect();
        assert_eq!(ts.len(), 3);
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
    }
}
