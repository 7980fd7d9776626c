//! sluice as several nodes over NATS JetStream (DESIGN.md §3): the nodes
//! share nothing but a JetStream stream and a few KV buckets.
//!
//! - [`connect`]: the configuration, the connection, and the stream and
//!   buckets every node uses;
//! - [`subject`]: envelopes' subjects (escaped keys);
//! - [`log`]: [`JetStreamLog`], the [`sluice_log::Log`] of a cluster node;
//! - [`message`]: several envelopes to a message, and positions;
//! - [`publish`]: the node's bounded buffer in front of the stream;
//! - [`lease`]: which node delivers a drain, by lease;
//! - [`nodes`]: heartbeats and `sluice cluster status`.
//!
//! This crate does not know drains, sources or HTTP: the server wires it
//! in; it depends only on the data model, metrics and the log seam.

pub mod connect;
mod follow;
pub mod lease;
pub mod log;
pub mod message;
pub mod nodes;
pub mod publish;
pub mod subject;

pub use connect::{Cluster, ClusterConfig, ConnectError};
pub use log::JetStreamLog;
