//! Drains: standing subscriptions that deliver a selection of the stream to
//! an outside receiver for as long as they exist, through restarts of sluice
//! and outages of the receiver.
//!
//! - [`spec`]: a drain's definition (name, URL, selection, format) and URL
//!   parsing and validation;
//! - [`netpolicy`]: which addresses a drain may reach (SSRF protection),
//!   checked on add and again on every connect;
//! - [`paths`]: which files a drain may write (`[drains] file_dirs`) or
//!   read TLS material from (`[drains] tls_dirs`), checked on add and again
//!   on every open;
//! - [`redact`]: passwords and tokens in drain URLs are never shown back;
//! - [`format`]: how an entry becomes bytes (verbatim, Logyard JSON, `{{.field}}`
//!   templates, saved and built-in named formats);
//! - [`writers`]: one writer per URL scheme (syslog TCP/TLS/UDP, HTTPS
//!   logplex-1 batches, plain TCP/UDP lines, files, Redis lists);
//! - [`retry`]: Logyard's reconnect schedule and retry limits;
//! - [`status`]: STARTING/RUNNING/RETRYING/FATAL/STOPPED with counters;
//! - [`manager`]: runs one task per drain, each a durable cursor into the
//!   log (the `sluice-log` crate's [`sluice_log::Log`]);
//! - [`persist`]: drains, saved formats and routes in the data dir.
//!
//! A slow or dead receiver only makes its own drain fall behind in the log
//! (it catches up in order when the receiver returns); it never slows
//! ingest, tails or other drains. A drain loses messages only when the
//! log's retention removes them before it sent them, or when the receiver
//! refuses them: counted per drain and told in the app's own stream. This
//! crate must never depend on the server, sources or router crates.

pub mod format;
pub mod manager;
pub mod netpolicy;
pub mod paths;
pub mod persist;
pub mod redact;
pub mod retry;
pub mod shared;
pub mod spec;
pub mod status;
pub mod writers;

pub use manager::DrainManager;
pub use spec::{DrainSpec, DrainUrl, Scheme};
