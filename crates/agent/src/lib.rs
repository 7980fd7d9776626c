//! `sluice agent`'s collection on a host: [`docker`] follows every
//! container's stdout and stderr through the Engine API and stores each
//! line once, resuming exactly where it left off after a restart of the
//! agent or the daemon; [`files`] follows host files (Logyard's systail)
//! across rotations with exact byte offsets, and [`sieve`] turns matching
//! lines into events (Logyard's logyard_sieve).
//!
//! Collectors write through [`sources::IngestContext`], the door every
//! source goes through, so agent lines get the same bounds, stamping and
//! counting as lines that arrive over syslog, HTTP or gRPC. This crate
//! must never depend on the server, drains or router.

pub mod docker;
pub mod files;
mod persist;
pub mod sieve;
mod stored;
