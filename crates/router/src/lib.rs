//! The in-process bus: fan-out from ingest to every consumer.
//!
//! The server's fan-out task reads each new batch from the log (entries
//! stamped, keyed and positioned by ingest and the log, each in one
//! `Arc<Entry>`) and hands it to the [`Bus`], which offers it to every
//! [`Subscription`] whose selector matches: live tails and the firehose,
//! at-most-once. Drains do not use the bus: they read the log by cursor. Each subscription owns a
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

pub use bus::{Bus, BusConfig};
pub use queue::{Delivery, Loss, Subscription};
