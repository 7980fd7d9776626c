//! Wire formats for sluice's logs: turning bytes into syslog messages and
//! back, and rendering envelopes as text.
//!
//! [`framing`] splits TCP streams and logplex-1 HTTP bodies into frames
//! (RFC 6587 octet counting and LF/NUL terminated lines, with a maximum
//! frame length), [`syslog`] parses RFC 5424 and RFC 3164 messages,
//! [`rfc5424`] writes them, and [`cf`] renders envelopes as `cf logs` lines.
//! For drains, [`loggregator`] writes an envelope as the RFC 5424 message
//! Loggregator's syslog drains send, [`logyard`] gives Logyard's message
//! fields (verbatim text, JSON, named fields) and [`template`] compiles
//! `{{.field}}` drain format templates over those fields. [`notice`] words
//! the in-band loss notices and [`timestamp`] parses and formats RFC 3339.
//! Every decoder takes any input without panicking and with bounded memory.
//!
//! This crate is pure computation on byte slices: it must never do I/O
//! (network or files) and must never depend on the router, the store, the
//! sources or any server code. Sources and drains call into it.

pub mod cf;
mod civil;
pub mod framing;
pub mod loggregator;
pub mod logyard;
pub mod notice;
pub mod rfc5424;
pub mod syslog;
pub mod template;
pub mod timestamp;

pub use framing::{split_octet_counted, Frame, FrameDecoder, FramingError};
pub use syslog::{parse as parse_syslog, SdElement, SyslogFormat, SyslogMessage};
