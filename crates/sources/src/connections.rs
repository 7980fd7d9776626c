//! [`ConnectionTable`]: the open connections of one listener, so that at the
//! connection limit the least useful one can be closed to make room.
//!
//! Each connection has a slot with the time it was last useful (completed a
//! syslog frame; for HTTP, connected) and a token that closes it. At the
//! limit, [`ConnectionTable::admit`] closes the connection whose slot is
//! oldest, so a crowd of slow or silent connections (slowloris) cannot lock
//! real clients out. A slot marked [`Slot::protect`] (an HTTP connection
//! that has sent a complete request, such as a live stream) is never
//! chosen; when every slot is protected the table is full and the listener
//! waits ([`ConnectionTable::wait_for_room`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const PROTECTED: u64 = u64::MAX;

/// One open connection.
pub struct Slot {
    last_useful_ms: AtomicU64,
    started: Instant,
    /// Fires when the connection is evicted (or the listener shuts down).
    pub close: CancellationToken,
}

impl Slot {
    /// The connection did something useful just now (completed a frame).
    pub fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        // A protected slot stays protected.
        let _ = self
            .last_useful_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != PROTECTED).then_some(now)
            });
    }

    /// Whether [`protect`](Self::protect) was called.
    pub fn is_protected(&self) -> bool {
        self.last_useful_ms.load(Ordering::Relaxed) == PROTECTED
    }

    /// The connection is never evicted from now on.
    pub fn protect(&self) {
        self.last_useful_ms.store(PROTECTED, Ordering::Relaxed);
    }
}

/// What [`ConnectionTable::admit`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    /// There was room.
    Room,
    /// The connection idle longest was closed to make room.
    Evicted,
}

pub struct ConnectionTable {
    max: usize,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    freed: Notify,
}

/// A registered connection; dropping it frees its place.
pub struct Registration {
    table: Arc<ConnectionTable>,
    id: u64,
    pub slot: Arc<Slot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.open.lock().remove(&self.id);
        self.table.freed.notify_one();
    }
}

impl ConnectionTable {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionTable {
            max: max.max(1),
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a new connection would find room (free or evictable).
    fn has_room(&self) -> bool {
        let open = self.open.lock();
        open.len() < self.max
            || open
                .values()
                .any(|s| s.last_useful_ms.load(Ordering::Relaxed) != PROTECTED)
    }

    /// Waits until a new connection would find room.
    pub async fn wait_for_room(&self) {
        loop {
            let freed = self.freed.notified();
            if self.has_room() {
                return;
            }
            freed.await;
        }
    }

    /// Registers a new connection whose close token is a child of
    /// `parent`; at the limit, first closes the unprotected connection that
    /// was useful longest ago.
    pub fn admit(self: &Arc<Self>, parent: &CancellationToken) -> (Registration, Admitted) {
        let now = self.started.elapsed().as_millis() as u64;
        let slot = Arc::new(Slot {
            // New counts as just useful, so it is not the first to go.
            last_useful_ms: AtomicU64::new(now),
            started: self.started,
            close: parent.child_token(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut admitted = Admitted::Room;
        let mut open = self.open.lock();
        while open.len() >= self.max {
            let victim = open
                .iter()
                .map(|(id, s)| (s.last_useful_ms.load(Ordering::Relaxed), *id))
                .filter(|(last, _)| *last != PROTECTED)
                .min();
            let Some((_, victim)) = victim else { break };
            if let Some(slot) = open.remove(&victim) {
                slot.close.cancel();
                admitted = Admitted::Evicted;
            }
        }
        open.insert(id, Arc::clone(&slot));
        drop(open);
        (
            Registration {
                table: Arc::clone(self),
                id,
                slot,
            },
            admitted,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_least_useful_goes() {
        let table = ConnectionTable::new(2);
        let root = CancellationToken::new();
        let (a, _) = table.admit(&root);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (b, _) = table.admit(&root);
        std::thread::sleep(std::time::Duration::from_millis(5));
        a.slot.touch();
        let (c, how) = table.admit(&root);
        assert_eq!(how, Admitted::Evicted);
        assert!(b.slot.close.is_cancelled());
        assert!(!a.slot.close.is_cancelled() && !c.slot.close.is_cancelled());
        assert_eq!(table.len(), 2);
        drop(b);
        assert_eq!(table.len(), 2);
        drop(c);
        assert_eq!(table.len(), 1);
    }

    #[tokio::test]
    async fn protected_connections_are_kept_and_the_table_waits() {
        let table = ConnectionTable::new(1);
        let root = CancellationToken::new();
        let (a, _) = table.admit(&root);
        a.slot.protect();
        a.slot.touch();
        assert!(!table.has_room());
        let waiter = {
            let table = Arc::clone(&table);
            tokio::spawn(async move { table.wait_for_room().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("room after the connection closed")
            .expect("task");
    }
}
