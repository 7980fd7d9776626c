//! The sluice server: wiring, configuration, the HTTP API and streams.
//!
//! [`app::Server`] binds every listener from a [`config::Config`], connects
//! ingest → log → (live fan-out to the bus, drains, reads) ([`log_tasks`])
//! and serves the HTTP API in [`http`]:
//! logspout-style live streams, Log Cache-style reads, HTTP ingest, health
//! and Prometheus metrics. The binary crate only parses flags and calls in.

pub mod app;
pub mod cluster;
pub mod config;
pub mod http;
pub mod log_tasks;
pub mod self_metrics;

pub use app::Server;
pub use config::Config;
