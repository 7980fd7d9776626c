//! The sluice data model.
//!
//! One envelope type flows everywhere: [`v2::Envelope`], wire-compatible with
//! Cloud Foundry's `loggregator.v2.Envelope` (protobuf, via prost derives) and
//! with Log Cache's JSON form ([`json`]). Around it sit the routing [`key`]
//! (Logyard's `apptail.<source_id>` style keys), the [`Entry`] that the router
//! and store share (envelope + key + per-source sequence), and [`selector`]s
//! that subscriptions match on, and the clock ([`time::now_ns`]).
//!
//! This crate does no I/O and must never depend on the network, the router or
//! any server code.

mod encode;
pub mod entry;
pub mod json;
pub mod key;
pub mod selector;
pub mod time;
pub mod v2;

pub use entry::Entry;
pub use selector::Selector;
pub use v2::{Envelope, EnvelopeBatch, LogType};

/// Tag names with a meaning sluice relies on (Loggregator's names).
pub mod tags {
    pub const APP_NAME: &str = "app_name";
    pub const SPACE_NAME: &str = "space_name";
    pub const ORGANIZATION_NAME: &str = "organization_name";
    pub const SOURCE_TYPE: &str = "source_type";
    pub const HOST: &str = "host";
}
