//! The in-process bus: fan-out from ingest to every consumer.
//!
//! Ingest hands the [`Bus`] a batch of envelopes; the bus stamps each with its
//! routing key and per-source sequence, wraps it once in an `Arc<Entry>`,
//! passes the batch to synchronous [`Tap`]s (the recent store) and then to
//! every [`Subscription`] whose selector matches. Each subscription owns a
//! bounded queue that drops its oldest entries when full and counts exactly
//! what it dropped; the consumer learns of the loss in-band before its next
//! entry. Publishing never waits on a consumer: the subscriber list is read
//! through an `ArcSwap` (no global lock), and each queue's lock is held only
//! to push a batch.
//!
//! This crate does no network I/O and must never depend on sources, drains or
//! server code. Loss is counted into the shared self-metrics registry
//! ([`metrics::Metrics`], its own crate).

pub mod bus;
pub mod queue;
mod routes;
pub mod sequence;

pub use bus::{Bus, BusConfig, Tap};
pub use queue::{Delivery, Loss, Subscription};
