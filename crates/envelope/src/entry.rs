//! [`Entry`]: an envelope as it travels inside sluice.
//!
//! Ingest stamps each envelope once with its routing key and a per-source
//! sequence number and wraps it in an `Arc<Entry>`; the router, the recent
//! store and every consumer then share that one allocation.

use std::sync::Arc;

use crate::key;
use crate::v2::Envelope;

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub envelope: Envelope,
    /// Routing key (`apptail.<source_id>`, `metric.<source_id>`, …).
    pub key: Arc<str>,
    /// Per-source sequence, assigned by the router at publish (which also
    /// makes timestamps strictly increasing per source): consecutive
    /// within one source and one server run, so consumers can order entries
    /// with equal timestamps and see gaps.
    pub seq: u64,
}

impl Entry {
    /// Wraps an envelope, deriving its key; the sequence is set at publish.
    pub fn new(envelope: Envelope) -> Self {
        let key = key::key_for(&envelope).into();
        Entry {
            envelope,
            key,
            seq: 0,
        }
    }

    /// Wraps an envelope with a key already known to be its own.
    pub fn with_key(envelope: Envelope, key: Arc<str>) -> Self {
        debug_assert_eq!(&*key, key::key_for(&envelope));
        Entry {
            envelope,
            key,
            seq: 0,
        }
    }

    pub fn source_id(&self) -> &str {
        &self.envelope.source_id
    }

    pub fn timestamp(&self) -> i64 {
        self.envelope.timestamp
    }
}
