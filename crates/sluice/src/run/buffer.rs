//! The bounded buffer between the pipe readers and the shipper.
//!
//! Readers never wait: when the buffer is full the **oldest** entry is
//! dropped and counted, with the time of the first drop since the loss was
//! last reported. The shipper *peeks* a batch, sends it, and only then
//! *acks* it: a batch that failed stays queued and is retried, still subject
//! to the drop-oldest bound. Entries carry a sequence number so an ack
//! removes exactly what was sent even if some of it was dropped meanwhile.
//! An entry dropped while it is part of the batch in flight is counted as
//! lost only if that send fails: if it succeeds, the entry was delivered.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// Messages lost since the loss was last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    pub count: u64,
    /// Unix ns of the first drop in this run of losses.
    pub since: i64,
}

/// A drop-oldest queue with loss accounting (no locking; see [`Shared`]).
#[derive(Debug)]
pub struct DropOldest<T> {
    items: VecDeque<(u64, T)>,
    capacity: usize,
    next_seq: u64,
    loss: Option<Loss>,
    dropped_total: u64,
    /// Last sequence number of the batch being sent, and what of it was
    /// dropped from the queue meanwhile.
    in_flight: Option<u64>,
    in_flight_dropped: Option<Loss>,
}

impl<T: Clone> DropOldest<T> {
    pub fn new(capacity: usize) -> Self {
        DropOldest {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 0,
            loss: None,
            dropped_total: 0,
            in_flight: None,
            in_flight_dropped: None,
        }
    }

    /// Appends, dropping the oldest entry if full; `now` dates a drop.
    pub fn push(&mut self, item: T, now: i64) {
        if self.items.len() >= self.capacity {
            let dropped = self.items.pop_front().map(|(seq, _)| seq);
            match (dropped, self.in_flight) {
                (Some(seq), Some(last)) if seq <= last => {
                    let held = self.in_flight_dropped.get_or_insert(Loss {
                        count: 0,
                        since: now,
                    });
                    held.count += 1;
                }
                _ => self.record_loss(1, now),
            }
        }
        self.items.push_back((self.next_seq, item));
        self.next_seq += 1;
    }

    /// Counts `count` entries lost some other way (e.g. rejected by the
    /// server), so they are reported in-band like drops.
    pub fn record_loss(&mut self, count: u64, now: i64) {
        if count == 0 {
            return;
        }
        self.dropped_total += count;
        match &mut self.loss {
            Some(loss) => loss.count += count,
            None => self.loss = Some(Loss { count, since: now }),
        }
    }

    /// Copies of up to `max` oldest entries, each with the sequence number
    /// to [`ack`](Self::ack) it with. Empty when the queue is.
    pub fn peek(&self, max: usize) -> Vec<(u64, T)> {
        self.items.iter().take(max.max(1)).cloned().collect()
    }

    /// Entries up to sequence number `last` are being sent.
    pub fn mark_in_flight(&mut self, last: u64) {
        self.in_flight = Some(last);
    }

    /// The send succeeded: removes every entry up to and including `last`.
    pub fn ack(&mut self, last: u64) {
        while self.items.front().is_some_and(|(seq, _)| *seq <= last) {
            self.items.pop_front();
        }
        self.in_flight = None;
        self.in_flight_dropped = None;
    }

    /// The send failed: the batch stays queued, and whatever of it was
    /// dropped meanwhile is now lost.
    pub fn release(&mut self) {
        self.in_flight = None;
        if let Some(held) = self.in_flight_dropped.take() {
            self.record_loss(held.count, held.since);
        }
    }

    /// The loss not yet reported.
    pub fn loss(&self) -> Option<Loss> {
        self.loss
    }

    /// The first `count` of the unreported loss has now been reported.
    pub fn ack_loss(&mut self, count: u64) {
        if let Some(loss) = &mut self.loss {
            loss.count = loss.count.saturating_sub(count);
            if loss.count == 0 {
                self.loss = None;
            }
        }
    }

    /// Every entry dropped or rejected since the start.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A [`DropOldest`] shared between reader tasks and the shipper, with a
/// wake-up for the shipper.
#[derive(Debug)]
pub struct Shared<T> {
    queue: Mutex<DropOldest<T>>,
    notify: Notify,
}

impl<T: Clone> Shared<T> {
    pub fn new(capacity: usize) -> Self {
        Shared {
            queue: Mutex::new(DropOldest::new(capacity)),
            notify: Notify::new(),
        }
    }

    /// Locks the queue (a poisoned lock is still usable: the queue has no
    /// invariant a panic mid-push could break).
    pub fn lock(&self) -> MutexGuard<'_, DropOldest<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends all of `items` under one lock and wakes the shipper.
    pub fn push_all(&self, items: impl IntoIterator<Item = T>, now: i64) {
        {
            let mut q = self.lock();
            for item in items {
                q.push(item, now);
            }
        }
        self.notify.notify_one();
    }

    /// Resolves after the next push (or at once if one happened since the
    /// last wait).
    pub async fn pushed(&self) {
        self.notify.notified().await;
    }

    /// Wakes a waiting shipper without pushing (e.g. at shutdown).
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(q: &DropOldest<i32>) -> Vec<i32> {
        q.peek(usize::MAX).into_iter().map(|(_, v)| v).collect()
    }

    #[test]
    fn drops_oldest_when_full_and_counts() {
        let mut q = DropOldest::new(3);
        for i in 0..5 {
            q.push(i, 100 + i64::from(i));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(values(&q), [2, 3, 4]);
        assert_eq!(
            q.loss(),
            Some(Loss {
                count: 2,
                since: 103
            })
        );
        assert_eq!(q.dropped_total(), 2);
    }

    #[test]
    fn peek_does_not_remove_and_ack_does() {
        let mut q = DropOldest::new(10);
        for i in 0..5 {
            q.push(i, 0);
        }
        let batch = q.peek(2);
        assert_eq!(batch, [(0, 0), (1, 1)]);
        let last = batch[1].0;
        assert_eq!(q.len(), 5);
        q.ack(last);
        assert_eq!(values(&q), [2, 3, 4]);
    }

    #[test]
    fn a_failed_batch_stays_queued_but_the_bound_still_holds() {
        let mut q = DropOldest::new(4);
        for i in 0..4 {
            q.push(i, 0);
        }
        let last = q.peek(2)[1].0;
        q.mark_in_flight(last); // 0, 1 in flight
                                // Meanwhile 3 more arrive and push 0, 1, 2 out; only 2 is lost yet.
        for i in 4..7 {
            q.push(i, 7);
        }
        assert_eq!(q.loss().map(|l| l.count), Some(1));
        // The send fails: 0 and 1 are lost too.
        q.release();
        assert_eq!(q.loss().map(|l| l.count), Some(3));
        assert_eq!(values(&q), [3, 4, 5, 6]);
        assert_eq!(q.dropped_total(), 3);
    }

    #[test]
    fn entries_dropped_in_flight_but_delivered_are_not_lost() {
        let mut q = DropOldest::new(2);
        q.push(0, 0);
        q.push(1, 0);
        q.mark_in_flight(1);
        q.push(2, 0);
        q.push(3, 0);
        assert_eq!(q.loss(), None);
        // A late ack of the delivered batch removes nothing it should not.
        q.ack(1);
        assert_eq!(values(&q), [2, 3]);
        assert_eq!(q.loss(), None);
        q.push(4, 5);
        assert_eq!(q.loss().map(|l| l.count), Some(1));
    }

    #[test]
    fn loss_is_reported_once() {
        let mut q = DropOldest::new(1);
        q.push(1, 10);
        q.push(2, 20);
        q.push(3, 30);
        let loss = q.loss().unwrap();
        assert_eq!(
            loss,
            Loss {
                count: 2,
                since: 20
            }
        );
        // One more drop while the notice is in flight...
        q.push(4, 40);
        q.ack_loss(loss.count);
        // ...is still owed.
        assert_eq!(q.loss().map(|l| l.count), Some(1));
        q.ack_loss(1);
        assert_eq!(q.loss(), None);
        assert_eq!(q.dropped_total(), 3);
    }

    #[test]
    fn rejected_entries_count_as_loss() {
        let mut q: DropOldest<u8> = DropOldest::new(5);
        q.record_loss(0, 1);
        assert_eq!(q.loss(), None);
        q.record_loss(7, 5);
        assert_eq!(q.loss(), Some(Loss { count: 7, since: 5 }));
    }

    #[test]
    fn empty_peek_is_none() {
        let q: DropOldest<u8> = DropOldest::new(0);
        assert!(q.peek(10).is_empty());
        assert!(q.is_empty());
    }
}
