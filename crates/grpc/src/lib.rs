//! Loggregator v2 over gRPC: what components, agents and go-loggregator
//! clients speak to Metron (the agent port).
//!
//! - [`ingress`]: the `loggregator.v2.Ingress` service — `Sender` (a
//!   stream of envelopes), `BatchSender` (a stream of batches, what
//!   go-loggregator's client uses) and `Send` (one batch, unary) — turning
//!   what arrives into the same appends every other source makes, through
//!   [`sources::IngestContext`];
//! - [`egress`]: the `loggregator.v2.Egress` service — `BatchedReceiver`
//!   and `Receiver` — the firehose with selectors and shard groups, read
//!   live from the bus;
//! - [`messages`]: the services' request and response messages not in
//!   `sluice-envelope`;
//! - [`serve`]: the listener: plaintext (loopback only, checked by the
//!   server's config), TLS, or mutual TLS with a client CA.
//!
//! The service glue is generated at build time by tonic-build's manual
//! builder from a Rust description (`build.rs`), over hand-written prost
//! messages: no `protoc`, no `.proto` file in the build. Wire
//! compatibility with Cloud Foundry's published definitions is proven by
//! the end-to-end test, whose client is generated from them.

pub mod codec;
pub mod egress;
pub mod ingress;
pub mod messages;
pub mod serve;

/// The generated `loggregator.v2.Ingress` and `Egress` glue: servers, and
/// clients (`sluice emit`).
#[allow(clippy::all, missing_docs)]
pub mod ingress_server_glue {
    include!(concat!(env!("OUT_DIR"), "/loggregator.v2.Ingress.rs"));
    include!(concat!(env!("OUT_DIR"), "/loggregator.v2.Egress.rs"));
}

pub use egress::{EgressLimits, EgressService, EgressStream};
pub use serve::{serve, GrpcTls, ServeError, Services};
