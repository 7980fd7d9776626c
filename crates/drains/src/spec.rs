//! A drain's definition and its URL.
//!
//! A [`DrainSpec`] is what users create (`sluice drain add NAME URL …`,
//! `POST /v1/drains`, logspout's `POST /routes`) and what is persisted. Its
//! URL is parsed into a [`DrainUrl`] on add, and validated then: scheme,
//! host, port, options. A `DrainUrl` holds the options every drain takes
//! and a [`Target`]: one variant per kind of receiver, with only the
//! options its scheme has (a file's path and `overwrite`, Redis's key,
//! limit and database, the TLS files of `syslog-tls` and `https`, …), so
//! each writer gets its own typed configuration. Options of another scheme
//! in a URL are accepted and ignored, as they always were (the URL
//! grammar and the persisted form, the URL string, are unchanged).
//! Parsing touches no file: which files a drain may
//! write (`file://`) or read (`ca=`, `cert=`, `key=`) is decided by
//! [`crate::paths`], and which addresses it may reach by
//! [`crate::netpolicy`], both on add and again when the writer opens.
//!
//! Drain and format names match `[A-Za-z0-9][A-Za-z0-9._-]{0,63}` (so
//! never `.`, `..` or a hidden file name): see [`valid_name`].
//!
//! | scheme | receiver |
//! | --- | --- |
//! | `syslog://host:port` (logspout: `syslog+tcp://`) | TCP, RFC 5424 as Loggregator writes it, octet-counted |
//! | `syslog+udp://host:port` | UDP, one RFC 5424 datagram per message |
//! | `syslog-tls://host:port` (logspout: `syslog+tls://`) | TLS (rustls), octet-counted RFC 5424 |
//! | `https://host[:port]/path` (and `http://`) | Logplex-style batches (`application/logplex-1`) |
//! | `tcp://host:port`, `udp://host:port` | plain lines in the drain's format (Logyard; logspout's `raw+tcp://`, and `raw://` = `raw+udp://`) |
//! | `file:///path` | append lines; `?overwrite=1` truncates on start |
//! | `redis://host[:port][/db]?key=K&limit=N` | `LPUSH` + `LTRIM` to the newest N (default 1500) |
//!
//! logspout's adapter schemes are aliases ([`Scheme::parse`]); the URL is
//! kept and shown as the user gave it.
//!
//! Query parameters on every drain: `drain-type=logs|events|metrics|all`
//! (default `logs`: Log envelopes only, as Loggregator does; see
//! [`DrainType`]), `format=` (a named format or a template), `filter=` key
//! prefix (repeatable). Scheme-specific: `omit-metadata=true` (syslog: no
//! structured data), `ca=`, `cert=`, `key=` (syslog-tls, https, grpc: PEM
//! files; cert+key enable mTLS), `server-name=` (grpc), `overwrite=1`
//! (file), `key=`, `limit=` (redis).

use std::path::PathBuf;

use envelope::v2::EnvelopeType;
use envelope::Selector;
use serde::{Deserialize, Serialize};

/// Longest drain name.
pub const MAX_NAME: usize = 64;
/// Default `limit` of a Redis drain (Logyard's history drains).
pub const DEFAULT_REDIS_LIMIT: usize = 1500;

/// What a valid name looks like, for messages.
pub const NAME_RULE: &str =
    "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/// Whether `name` can name a drain or a saved format:
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. Names become file names in the data
/// dir, so `.`, `..` and hidden names are refused.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() <= MAX_NAME
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Errors name the URL with its secrets redacted ([`crate::redact`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("invalid drain name {0:?}: use {NAME_RULE}")]
    Name(String),
    #[error("invalid drain URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("unsupported drain scheme {0:?}; use syslog, syslog+udp, syslog-tls, https, http, tcp, udp, file or redis (or logspout's syslog+tcp, syslog+tls, raw, raw+udp, raw+tcp)")]
    Scheme(String),
}

impl SpecError {
    /// A URL error; the URL is kept with its secrets redacted.
    pub fn url(raw: &str, reason: impl Into<String>) -> Self {
        SpecError::Url {
            url: crate::redact::url(raw),
            reason: reason.into(),
        }
    }
}

/// URL schemes a drain can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    Syslog,
    SyslogUdp,
    SyslogTls,
    Https,
    Http,
    Tcp,
    Udp,
    File,
    Redis,
    /// `grpc://`: Loggregator v2 `Ingress.Send` (another sluice, a
    /// Loggregator agent): whole envelopes, TLS with `ca=`.
    Grpc,
}

impl Scheme {
    /// sluice's schemes, and logspout's adapter schemes as aliases:
    /// `syslog+tcp` (= `syslog`), `syslog+tls` (= `syslog-tls`), `raw` and
    /// `raw+udp` (plain lines over UDP, = `udp`), `raw+tcp` (= `tcp`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "syslog" | "syslog+tcp" => Scheme::Syslog,
            "syslog+udp" => Scheme::SyslogUdp,
            "syslog-tls" | "syslog+tls" => Scheme::SyslogTls,
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            "tcp" | "raw+tcp" => Scheme::Tcp,
            "udp" | "raw" | "raw+udp" => Scheme::Udp,
            "file" => Scheme::File,
            "redis" => Scheme::Redis,
            "grpc" => Scheme::Grpc,
            _ => return None,
        })
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::SyslogTls => Some(6514),
            Scheme::Https => Some(443),
            Scheme::Http => Some(80),
            Scheme::Redis => Some(6379),
            _ => None,
        }
    }
}

/// What kinds of envelopes a drain carries (`?drain-type=`).
///
/// The default is `logs`, Log envelopes only, as Loggregator's drains do:
/// lifecycle events are not also rendered as text lines next to the log
/// lines that tell the same thing. The type lives in the drain's URL, so
/// a definition saved by an older sluice (whose default also carried
/// events) reads as it was written and now carries logs only; add
/// `drain-type=all` (or `events`) to its URL to get events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainType {
    /// Log envelopes only (the default).
    #[default]
    Logs,
    /// Event envelopes only.
    Events,
    /// Counters, gauges and timers.
    Metrics,
    /// Every envelope.
    All,
}

impl DrainType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "logs" => DrainType::Logs,
            "events" => DrainType::Events,
            "metrics" => DrainType::Metrics,
            "all" => DrainType::All,
            _ => return None,
        })
    }

    /// The envelope types selected; empty means every type.
    pub fn envelope_types(self) -> Vec<EnvelopeType> {
        match self {
            DrainType::Logs => vec![EnvelopeType::Log],
            DrainType::Events => vec![EnvelopeType::Event],
            DrainType::Metrics => vec![
                EnvelopeType::Counter,
                EnvelopeType::Gauge,
                EnvelopeType::Timer,
            ],
            DrainType::All => Vec::new(),
        }
    }
}

/// A parsed, validated drain URL: the options every drain takes, and
/// where it delivers with the options of its scheme ([`Target`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DrainUrl {
    /// The URL as given (aliases and secrets kept).
    pub raw: String,
    pub drain_type: DrainType,
    /// Whether the URL said `drain-type=` (else the default applies, unless
    /// the key prefixes name another kind; see [`DrainSpec::selector`]).
    pub drain_type_given: bool,
    pub format: Option<String>,
    pub filters: Vec<String>,
    pub target: Target,
}

/// Where a drain delivers, with the options of its scheme. Each writer
/// takes its own variant ([`crate::writers::connect`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// `syslog://` (TCP), `syslog+udp://`, `syslog-tls://`: RFC 5424 as
    /// Loggregator writes it.
    Syslog(SyslogTarget),
    /// `https://`, `http://`: Logplex-style batches.
    Http(HttpTarget),
    /// `tcp://`, `udp://`: plain lines in the drain's format.
    Lines(LinesTarget),
    /// `file:///path`: appended lines.
    File(FileTarget),
    /// `redis://`: `LPUSH` + `LTRIM`.
    Redis(RedisTarget),
    /// `grpc://`: envelopes as they are, over Loggregator v2 ingress.
    Grpc(GrpcTarget),
}

/// A receiver's host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
}

/// `ca=`, `cert=`, `key=` as given: checked and resolved against
/// `[drains] tls_dirs` by [`crate::paths::PathPolicy::tls_file`]. `cert`
/// and `key` come together (mTLS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// The files named, with their option names.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &PathBuf)> {
        [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)]
            .into_iter()
            .filter_map(|(option, path)| path.as_ref().map(|p| (option, p)))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyslogTarget {
    pub endpoint: Endpoint,
    pub transport: SyslogTransport,
    /// `omit-metadata=true`: no structured data.
    pub omit_metadata: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SyslogTransport {
    /// `syslog://` (logspout: `syslog+tcp://`): octet-counted over TCP.
    Tcp,
    /// `syslog+udp://`: one message per datagram.
    Udp,
    /// `syslog-tls://` (logspout: `syslog+tls://`): octet-counted over TLS.
    Tls(TlsFiles),
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpTarget {
    pub endpoint: Endpoint,
    /// The HTTP path and query (unknown query parameters are the
    /// receiver's); empty for `/`.
    pub path: String,
    /// `Some` for `https://` (default roots when no file is named), `None`
    /// for plain `http://`.
    pub tls: Option<TlsFiles>,
    /// `omit-metadata=true`: no structured data in the frames.
    pub omit_metadata: bool,
    /// `body=envelopes`: each POST is NDJSON, one Log Cache JSON envelope
    /// per line (`application/x-ndjson`, what sluice's own `POST /logs`
    /// takes, so source, instance, type and tags cross whole) instead of
    /// logplex-1 syslog frames.
    pub envelopes: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinesTarget {
    pub endpoint: Endpoint,
    /// `udp://` (logspout: `raw://`, `raw+udp://`): one datagram per line;
    /// else `tcp://` (`raw+tcp://`).
    pub udp: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileTarget {
    /// Percent-decoded, `.` and `..` resolved, absolute.
    pub path: String,
    /// `overwrite=1`: truncate on the drain's first start.
    pub overwrite: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedisTarget {
    pub endpoint: Endpoint,
    /// `key=`: the list (default `sluice`).
    pub key: String,
    /// `limit=`: how many of the newest entries the list keeps.
    pub limit: usize,
    /// The path: the database number (default 0).
    pub db: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GrpcTarget {
    pub endpoint: Endpoint,
    /// `Some` (TLS; mutual with `cert=`/`key=`) when `ca=` names the CA.
    pub tls: Option<TlsFiles>,
    /// `server-name=`: the name the server's certificate must carry
    /// (default: the host; `sluice certs` writes `metron`).
    pub server_name: Option<String>,
}

impl DrainUrl {
    /// The scheme, without logspout's aliases (`raw+tcp` is [`Scheme::Tcp`]).
    pub fn scheme(&self) -> Scheme {
        match &self.target {
            Target::Syslog(s) => match s.transport {
                SyslogTransport::Tcp => Scheme::Syslog,
                SyslogTransport::Udp => Scheme::SyslogUdp,
                SyslogTransport::Tls(_) => Scheme::SyslogTls,
            },
            Target::Http(h) if h.tls.is_some() => Scheme::Https,
            Target::Http(_) => Scheme::Http,
            Target::Lines(l) if l.udp => Scheme::Udp,
            Target::Lines(_) => Scheme::Tcp,
            Target::File(_) => Scheme::File,
            Target::Redis(_) => Scheme::Redis,
            Target::Grpc(_) => Scheme::Grpc,
        }
    }

    /// The receiver's host and port; `None` for a file drain.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match &self.target {
            Target::Syslog(SyslogTarget { endpoint, .. })
            | Target::Http(HttpTarget { endpoint, .. })
            | Target::Lines(LinesTarget { endpoint, .. })
            | Target::Redis(RedisTarget { endpoint, .. })
            | Target::Grpc(GrpcTarget { endpoint, .. }) => Some(endpoint),
            Target::File(_) => None,
        }
    }

    /// The TLS files of a `syslog-tls://` or `https://` drain.
    pub fn tls(&self) -> Option<&TlsFiles> {
        match &self.target {
            Target::Syslog(SyslogTarget {
                transport: SyslogTransport::Tls(tls),
                ..
            }) => Some(tls),
            Target::Http(h) => h.tls.as_ref(),
            Target::Grpc(g) => g.tls.as_ref(),
            _ => None,
        }
    }

    /// Parses and validates the URL; touches no file.
    pub fn parse(raw: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::url(raw, reason);
        let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        let scheme = Scheme::parse(url.scheme())
            .ok_or_else(|| SpecError::Scheme(url.scheme().to_owned()))?;
        let mut drain_type = DrainType::Logs;
        let mut drain_type_given = false;
        let mut format = None;
        let mut filters = Vec::new();
        let mut omit_metadata = false;
        let mut overwrite = false;
        let mut redis_key = "sluice".to_owned();
        let mut redis_limit = DEFAULT_REDIS_LIMIT;
        let mut tls = TlsFiles::default();
        let mut server_name = None;
        let mut envelopes = false;
        // Options shared by every scheme; scheme-specific ones checked below.
        let mut passthrough = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "drain-type" => {
                    drain_type_given = true;
                    drain_type = DrainType::parse(&v).ok_or_else(|| {
                        bad(&format!(
                            "drain-type must be logs, events, metrics or all, not {v:?}"
                        ))
                    })?
                }
                "format" => format = Some(v.into_owned()),
                "filter" => filters.push(v.into_owned()),
                "omit-metadata" => omit_metadata = truthy(&v),
                "overwrite" => overwrite = truthy(&v),
                "limit" if scheme == Scheme::Redis => {
                    redis_limit = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("limit must be a positive integer"))?
                }
                "key" if scheme == Scheme::Redis => {
                    if v.is_empty() {
                        return Err(bad("key must not be empty"));
                    }
                    redis_key = v.into_owned()
                }
                "body" if matches!(scheme, Scheme::Https | Scheme::Http) => {
                    envelopes = match v.as_ref() {
                        "envelopes" => true,
                        "logplex" => false,
                        other => {
                            return Err(bad(&format!(
                                "body must be logplex or envelopes, not {other:?}"
                            )))
                        }
                    }
                }
                "server-name" if scheme == Scheme::Grpc => {
                    if v.is_empty() {
                        return Err(bad("server-name must not be empty"));
                    }
                    server_name = Some(v.into_owned())
                }
                "ca" => tls.ca = Some(PathBuf::from(v.as_ref())),
                "cert" => tls.cert = Some(PathBuf::from(v.as_ref())),
                "key" => tls.key = Some(PathBuf::from(v.as_ref())),
                _ => passthrough.push((k.into_owned(), v.into_owned())),
            }
        }
        let drain = |target| DrainUrl {
            raw: raw.to_owned(),
            drain_type,
            drain_type_given,
            format,
            filters,
            target,
        };
        if scheme == Scheme::File {
            // Options of other schemes are ignored here, as they always were,
            // except TLS files: naming one would probe the file system.
            if tls.named().next().is_some() {
                return Err(bad(
                    "ca, cert and key are options of syslog-tls, https and grpc drains",
                ));
            }
            let path = file_path(&url).map_err(bad)?;
            return Ok(drain(Target::File(FileTarget { path, overwrite })));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("a host is required"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port()
            .or(scheme.default_port())
            .ok_or_else(|| bad("a port is required"))?;
        if port == 0 {
            return Err(bad("port 0 is not a port"));
        }
        let endpoint = Endpoint { host, port };
        let mut http_path = String::new();
        let mut redis_db = 0;
        match scheme {
            Scheme::Https | Scheme::Http => {
                // Unknown query parameters belong to the receiver's URL.
                http_path = url.path().to_owned();
                if !passthrough.is_empty() {
                    let query: String = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&passthrough)
                        .finish();
                    http_path.push('?');
                    http_path.push_str(&query);
                }
            }
            Scheme::Redis => {
                let db = url.path().trim_start_matches('/');
                if !db.is_empty() {
                    redis_db = db
                        .parse()
                        .map_err(|_| bad("the path of a redis URL is the database number"))?;
                }
            }
            _ => {
                if let Some((k, _)) = passthrough.first() {
                    return Err(bad(&format!("unknown option {k:?}")));
                }
            }
        }
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(bad("cert and key go together (mTLS)"));
        }
        if (tls.ca.is_some() || tls.cert.is_some())
            && !matches!(scheme, Scheme::SyslogTls | Scheme::Https | Scheme::Grpc)
        {
            return Err(bad(
                "ca, cert and key are options of syslog-tls, https and grpc drains",
            ));
        }
        if scheme == Scheme::Grpc && tls.cert.is_some() && tls.ca.is_none() {
            return Err(bad("a grpc drain with cert and key needs ca= too (TLS)"));
        }
        if tls.named().any(|(_, path)| path.as_os_str().is_empty()) {
            return Err(bad("ca, cert and key name a file"));
        }
        let syslog = |transport| {
            Target::Syslog(SyslogTarget {
                endpoint: endpoint.clone(),
                transport,
                omit_metadata,
            })
        };
        let target = match scheme {
            Scheme::Syslog => syslog(SyslogTransport::Tcp),
            Scheme::SyslogUdp => syslog(SyslogTransport::Udp),
            Scheme::SyslogTls => syslog(SyslogTransport::Tls(tls)),
            Scheme::Https | Scheme::Http => Target::Http(HttpTarget {
                endpoint,
                path: http_path,
                tls: (scheme == Scheme::Https).then_some(tls),
                omit_metadata,
                envelopes,
            }),
            Scheme::Tcp | Scheme::Udp => Target::Lines(LinesTarget {
                endpoint,
                udp: scheme == Scheme::Udp,
            }),
            Scheme::Redis => Target::Redis(RedisTarget {
                endpoint,
                key: redis_key,
                limit: redis_limit,
                db: redis_db,
            }),
            Scheme::Grpc => Target::Grpc(GrpcTarget {
                endpoint,
                tls: tls.ca.is_some().then_some(tls),
                server_name,
            }),
            Scheme::File => unreachable!("file drains returned above"),
        };
        Ok(drain(target))
    }
}

/// A `file://` URL's path: absolute, percent-decoded (`%2F` is a `/`), `.`
/// and `..` resolved lexically (so what is checked is what is opened),
/// UTF-8 without NUL; else why not.
fn file_path(url: &url::Url) -> Result<String, &'static str> {
    const ABSOLUTE: &str = "file drains take an absolute path: file:///var/log/x.log";
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(ABSOLUTE);
    }
    if url.path().is_empty() || url.path().ends_with('/') {
        return Err("file drains need a path to a file");
    }
    let decoded = url.to_file_path().map_err(|()| ABSOLUTE)?;
    let path = crate::paths::normalize(&decoded).ok_or(ABSOLUTE)?;
    if path.parent().is_none() {
        return Err("file drains need a path to a file");
    }
    path.to_str()
        .filter(|p| !p.contains('\0'))
        .map(str::to_owned)
        .ok_or("the path must be UTF-8 without NUL")
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "yes" | "on" | "")
}

/// A drain as created and persisted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSpec {
    /// Empty (or left out) on add: the manager makes one (`d.<8 hex>`).
    #[serde(default)]
    pub name: String,
    pub url: String,
    /// App names or source ids (any of); empty means every app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// Exact source ids (any of; logspout's `filter_id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ids: Vec<String>,
    /// Key prefixes (any of), added to the URL's `filter=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// Glob over app names (logspout's `filter_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_glob: Option<String>,
    /// Log streams (`stdout`, `stderr`; logspout's `filter_sources`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
    /// Format name or template; overrides the URL's `format=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Appended to the syslog APP-NAME (logspout's `options.append_tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_tag: Option<String>,
    /// Extra RFC 5424 structured data, e.g. `[x@1 k="v"]` (logspout's
    /// `options.structured_data`), written before the tags element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_data: Option<String>,
    /// Unix ns when created.
    #[serde(default)]
    pub created: i64,
}

impl DrainSpec {
    /// Checks the name and parses the URL.
    pub fn validate(&self) -> Result<DrainUrl, SpecError> {
        if !valid_name(&self.name) {
            return Err(SpecError::Name(self.name.clone()));
        }
        for s in &self.streams {
            if !matches!(s.as_str(), "stdout" | "stderr") {
                return Err(SpecError::url(
                    &self.url,
                    format!("unknown stream {s:?}; use stdout or stderr"),
                ));
            }
        }
        if let Some(sd) = &self.structured_data {
            let valid = sd.len() <= 1024
                && sd.starts_with('[')
                && sd.ends_with(']')
                && sd.bytes().all(|b| (32..127).contains(&b));
            if !valid {
                return Err(SpecError::url(
                    &self.url,
                    "structured_data must be RFC 5424 SD-ELEMENTs like [id@1 k=\"v\"] in printable ASCII, at most 1024 bytes",
                ));
            }
        }
        if let Some(tag) = &self.append_tag {
            if tag.len() > 32 || !tag.bytes().all(|b| (33..127).contains(&b)) {
                return Err(SpecError::url(
                    &self.url,
                    "append_tag must be at most 32 printable ASCII characters without spaces",
                ));
            }
        }
        DrainUrl::parse(&self.url)
    }

    /// The subscription this drain makes. Without `drain-type=`, a drain
    /// whose key prefixes all name events (`event…`) or metrics (`metric…`)
    /// carries that kind, as Logyard's `--prefix event` drains did; any
    /// other drain carries logs.
    pub fn selector(&self, url: &DrainUrl) -> Selector {
        let mut key_prefixes = self.prefixes.clone();
        key_prefixes.extend(url.filters.iter().cloned());
        // Every prefix lies under `root` (read as a key, by whole segments).
        let first_segments = |root: &str| {
            !key_prefixes.is_empty()
                && key_prefixes
                    .iter()
                    .all(|p| envelope::key::has_prefix(p, root))
        };
        let drain_type = if url.drain_type_given {
            url.drain_type
        } else if first_segments(envelope::key::EVENT) {
            DrainType::Events
        } else if first_segments(envelope::key::METRIC) {
            DrainType::Metrics
        } else {
            url.drain_type
        };
        Selector {
            source_ids: self.source_ids.clone(),
            apps: self.apps.clone(),
            app_glob: self.app_glob.clone(),
            key_prefixes,
            envelope_types: drain_type.envelope_types(),
            log_types: self
                .streams
                .iter()
                .map(|s| {
                    if s == "stderr" {
                        envelope::LogType::Err
                    } else {
                        envelope::LogType::Out
                    }
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The format to use: the spec's, else the URL's, else `None`
    /// (the scheme's default).
    pub fn format_name<'a>(&'a self, url: &'a DrainUrl) -> Option<&'a str> {
        self.format.as_deref().or(url.format.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(u: &DrainUrl) -> (&str, u16) {
        let e = u.endpoint().expect("a network drain");
        (e.host.as_str(), e.port)
    }

    #[test]
    fn schemes_and_defaults() {
        let u = DrainUrl::parse("syslog-tls://logs.example.com").unwrap();
        assert_eq!(
            (u.scheme(), endpoint(&u)),
            (Scheme::SyslogTls, ("logs.example.com", 6514))
        );
        assert_eq!(u.tls(), Some(&TlsFiles::default()));
        let u = DrainUrl::parse("https://h/logs?drain-type=all&token=x").unwrap();
        let Target::Http(http) = &u.target else {
            panic!("{u:?}")
        };
        assert_eq!(
            (http.endpoint.port, http.path.as_str(), u.drain_type),
            (443, "/logs?token=x", DrainType::All)
        );
        assert!(http.tls.is_some());
        let u = DrainUrl::parse("redis://127.0.0.1/2?key=hist&limit=10").unwrap();
        assert_eq!(
            u.target,
            Target::Redis(RedisTarget {
                endpoint: Endpoint {
                    host: "127.0.0.1".into(),
                    port: 6379
                },
                key: "hist".into(),
                limit: 10,
                db: 2,
            })
        );
        let u = DrainUrl::parse("redis://h").unwrap();
        assert!(
            matches!(&u.target, Target::Redis(r) if r.key == "sluice" && r.limit == DEFAULT_REDIS_LIMIT && r.db == 0),
            "{u:?}"
        );
        let u = DrainUrl::parse("file:///var/log/x.log?overwrite=1").unwrap();
        assert_eq!(
            u.target,
            Target::File(FileTarget {
                path: "/var/log/x.log".into(),
                overwrite: true
            })
        );
        assert_eq!(
            (u.scheme(), u.endpoint(), u.tls()),
            (Scheme::File, None, None)
        );
        let u =
            DrainUrl::parse("syslog://[::1]:514?omit-metadata=true&filter=apptail&filter=event")
                .unwrap();
        assert_eq!(
            u.target,
            Target::Syslog(SyslogTarget {
                endpoint: Endpoint {
                    host: "::1".into(),
                    port: 514
                },
                transport: SyslogTransport::Tcp,
                omit_metadata: true,
            })
        );
        assert_eq!(u.filters, vec!["apptail", "event"]);
    }

    #[test]
    fn each_scheme_has_its_own_target() {
        let target = |u: &str| DrainUrl::parse(u).unwrap().target;
        assert!(matches!(
            target("syslog+udp://h:1"),
            Target::Syslog(SyslogTarget {
                transport: SyslogTransport::Udp,
                ..
            })
        ));
        assert_eq!(
            target("syslog-tls://h:1?ca=/t/ca.pem&cert=/t/c.pem&key=/t/k.pem"),
            Target::Syslog(SyslogTarget {
                endpoint: Endpoint {
                    host: "h".into(),
                    port: 1
                },
                transport: SyslogTransport::Tls(TlsFiles {
                    ca: Some("/t/ca.pem".into()),
                    cert: Some("/t/c.pem".into()),
                    key: Some("/t/k.pem".into()),
                }),
                omit_metadata: false,
            })
        );
        assert_eq!(
            target("http://h/in?omit-metadata=1"),
            Target::Http(HttpTarget {
                endpoint: Endpoint {
                    host: "h".into(),
                    port: 80
                },
                path: "/in".into(),
                tls: None,
                omit_metadata: true,
                envelopes: false,
            })
        );
        assert!(matches!(
            target("https://h/logs?body=envelopes"),
            Target::Http(HttpTarget {
                envelopes: true,
                ..
            })
        ));
        assert!(matches!(
            target("tcp://h:1"),
            Target::Lines(LinesTarget { udp: false, .. })
        ));
        assert!(matches!(
            target("udp://h:1"),
            Target::Lines(LinesTarget { udp: true, .. })
        ));
        // Options of another scheme are accepted and ignored, as before
        // the targets were typed: the grammar did not change.
        assert!(matches!(target("tcp://h:1?overwrite=1"), Target::Lines(_)));
        assert!(matches!(
            target("file:///x.log?omit-metadata=1&limit=3"),
            Target::File(FileTarget {
                overwrite: false,
                ..
            })
        ));
        let tls = DrainUrl::parse("https://h?ca=/a.pem").unwrap();
        let named: Vec<_> = tls.tls().unwrap().named().collect();
        assert_eq!(named, vec![("ca", &PathBuf::from("/a.pem"))]);
    }

    #[test]
    fn bad_urls_have_clear_errors() {
        let err = |u: &str| DrainUrl::parse(u).unwrap_err().to_string();
        assert!(err("gopher://x:1").contains("unsupported drain scheme \"gopher\""));
        assert!(err("syslog://host").contains("a port is required"));
        assert!(err("tcp://:5").contains("invalid drain URL"));
        assert!(err("syslog://h:1?bogus=1").contains("unknown option \"bogus\""));
        assert!(err("https://h/?body=xml").contains("body must be logplex or envelopes"));
        assert!(err("redis://h/x").contains("database number"));
        assert!(err("file://host/x").contains("absolute path"));
        // TLS files are checked where the allowed directories are known
        // (crate::paths): parsing never opens a file.
        assert!(DrainUrl::parse("syslog-tls://h:1?ca=/nonexistent/ca.pem").is_ok());
        assert!(err("syslog://h:1?ca=/x.pem").contains("options of syslog-tls, https and grpc"));
        // Secrets are not repeated in errors.
        let e = err("https://u:pw@h:0/x?token=t");
        assert!(
            e.contains("https://u:***@h:0/x?token=***") && !e.contains("pw"),
            "{e}"
        );
        assert!(err("syslog-tls://h:1?cert=/etc/hostname").contains("cert and key go together"));
        assert!(err("not a url").contains("invalid drain URL"));
        assert!(err("udp://h:1?drain-type=everything").contains("drain-type"));
    }

    #[test]
    fn names_and_selectors() {
        let mut spec = DrainSpec {
            name: "papertrail".into(),
            url: "syslog://h:1?filter=apptail".into(),
            apps: vec!["web".into()],
            streams: vec!["stderr".into()],
            ..Default::default()
        };
        let url = spec.validate().unwrap();
        let sel = spec.selector(&url);
        assert_eq!(sel.apps, vec!["web"]);
        assert_eq!(sel.key_prefixes, vec!["apptail"]);
        assert_eq!(sel.log_types, vec![envelope::LogType::Err]);
        assert_eq!(sel.envelope_types, vec![EnvelopeType::Log]);
        spec.name = "bad name".into();
        assert!(matches!(spec.validate(), Err(SpecError::Name(_))));
    }

    #[test]
    fn file_drains_take_no_tls_files() {
        let err = DrainUrl::parse("file:///var/log/x.log?ca=/etc/shadow")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("options of syslog-tls, https and grpc"),
            "{err}"
        );
    }

    #[test]
    fn event_and_metric_prefixes_carry_their_kind() {
        let spec = |prefix: &str| DrainSpec {
            name: "d".into(),
            url: "syslog://h:1".into(),
            prefixes: vec![prefix.into()],
            ..Default::default()
        };
        let types = |s: DrainSpec| {
            let url = s.validate().unwrap();
            s.selector(&url).envelope_types
        };
        assert_eq!(types(spec("event")), vec![EnvelopeType::Event]);
        assert_eq!(
            types(spec("event.audit_app_start")),
            vec![EnvelopeType::Event]
        );
        assert_eq!(types(spec("metric.web")).len(), 3);
        assert_eq!(types(spec("apptail")), vec![EnvelopeType::Log]);
        assert_eq!(types(spec("eventful")), vec![EnvelopeType::Log]);
        assert_eq!(types(spec("event.")), vec![EnvelopeType::Event]);
        assert_eq!(types(spec("metrics.web")), vec![EnvelopeType::Log]);
        assert_eq!(types(spec("")), vec![EnvelopeType::Log]);
        let mut explicit = spec("event");
        explicit.url = "syslog://h:1?drain-type=logs".into();
        assert_eq!(types(explicit), vec![EnvelopeType::Log]);
    }

    #[test]
    fn drain_types_default_to_logs_only() {
        let types = |u: &str| DrainUrl::parse(u).unwrap().drain_type.envelope_types();
        assert_eq!(types("syslog://h:1"), vec![EnvelopeType::Log]);
        assert_eq!(
            types("syslog://h:1?drain-type=logs"),
            vec![EnvelopeType::Log]
        );
        assert_eq!(
            types("syslog://h:1?drain-type=events"),
            vec![EnvelopeType::Event]
        );
        assert_eq!(types("syslog://h:1?drain-type=metrics").len(), 3);
        assert!(types("syslog://h:1?drain-type=all").is_empty());
        let err = DrainUrl::parse("syslog://h:1?drain-type=event")
            .unwrap_err()
            .to_string();
        assert!(err.contains("logs, events, metrics or all"), "{err}");
    }

    #[test]
    fn logspout_adapter_schemes_are_aliases() {
        for (url, scheme, port) in [
            ("syslog+tls://h", Scheme::SyslogTls, 6514),
            ("syslog+tls://h:7000", Scheme::SyslogTls, 7000),
            ("syslog+tcp://h:514", Scheme::Syslog, 514),
            ("syslog+udp://h:514", Scheme::SyslogUdp, 514),
            ("raw://h:5000", Scheme::Udp, 5000),
            ("raw+udp://h:5000", Scheme::Udp, 5000),
            ("raw+tcp://h:5000", Scheme::Tcp, 5000),
        ] {
            let u = DrainUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (u.scheme(), endpoint(&u).1, u.raw.as_str()),
                (scheme, port, url)
            );
        }
        assert!(DrainUrl::parse("raw+tcp://h")
            .unwrap_err()
            .to_string()
            .contains("a port is required"));
        assert!(DrainUrl::parse("syslog+tls://h:1?ca=ca.pem").is_ok());
    }

    #[test]
    fn grpc_drains_carry_tls_and_a_server_name() {
        let url = DrainUrl::parse(
            "grpc://logs.example:8082?drain-type=all&ca=/pki/ca.crt&cert=/pki/client.crt&key=/pki/client.key&server-name=metron",
        )
        .unwrap();
        assert_eq!(url.scheme(), Scheme::Grpc);
        assert_eq!(url.drain_type, DrainType::All);
        match &url.target {
            Target::Grpc(g) => {
                assert_eq!(g.endpoint.port, 8082);
                assert_eq!(g.server_name.as_deref(), Some("metron"));
                let tls = g.tls.as_ref().unwrap();
                assert_eq!(tls.ca.as_deref(), Some(std::path::Path::new("/pki/ca.crt")));
            }
            other => panic!("{other:?}"),
        }
        let plain = DrainUrl::parse("grpc://127.0.0.1:8082").unwrap();
        assert!(matches!(&plain.target, Target::Grpc(g) if g.tls.is_none()));
        assert!(
            DrainUrl::parse("grpc://h:1?cert=/a&key=/b").is_err(),
            "mTLS without a CA"
        );
        assert!(DrainUrl::parse("grpc://h").is_err(), "no port");
        assert!(DrainUrl::parse("grpc://h:1?server-name=").is_err());
        assert!(DrainUrl::parse("syslog://h:1?server-name=x").is_err());
    }

    #[test]
    fn names_cannot_be_dot_files() {
        for bad in [
            ".",
            "..",
            ".hidden",
            "-x",
            "_x",
            "",
            "a/b",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        for good in ["a", "pt", "tmp.x", "A-1_b.c", "0", &"x".repeat(64)] {
            assert!(valid_name(good), "{good:?}");
        }
    }

    #[test]
    fn file_paths_are_decoded_and_normalised() {
        let path = |u: &str| {
            DrainUrl::parse(u).map(|d| match d.target {
                Target::File(f) => f.path,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(
            path("file:///var/log/a%20b.log").unwrap(),
            "/var/log/a b.log"
        );
        assert_eq!(
            path("file:///var/log/sluice/a%2F..%2F..%2F..%2Fetc%2Fpasswd").unwrap(),
            "/var/etc/passwd"
        );
        assert_eq!(path("file:///var/log/../../etc/x").unwrap(), "/etc/x");
        assert!(path("file:///var/log/x%00.log").is_err());
        assert!(path("file:///var/log/").is_err());
    }
}
