//! Who the wrapped app is, and the envelopes `sluice run` sends for it.
//!
//! - app output: a log envelope per line, `source_type` from
//!   `--source-type` (default `APP/PROC/WEB`), `OUT` for stdout, `ERR` for
//!   stderr;
//! - lifecycle, worded like Cloud Foundry: an `[API/N]` line `Starting app
//!   web (instance 0) with command: ./web -p 80` at start, and at exit a
//!   `[CELL/N]` line `Exited with status 3` / `Killed by signal 15
//!   (SIGTERM)`, as `cf logs` shows the cloud controller and the cell. Each
//!   transition is also an event (`audit.app.start`,
//!   `audit.app.process.exit`, or `audit.app.process.crash` for a non-zero
//!   status or a signal) with an `event_type` tag of the same name, so its
//!   key is `event.audit_app_…`: drains with `drain-type=events` or a prefix
//!   `event` get it, while log views (which show log lines only) show each
//!   transition once;
//! - loss notices: an `ERR` line from the app's source id with
//!   `source_type` `SLUICE`: `sluice: 1234 messages dropped since <time>`,
//!   the text the server uses for its own notices.
//!
//! Every envelope carries the app's source id, instance id and tags
//! (`app_name`, `source_type`, `host`, and `space_name` /
//! `organization_name` when given).

use std::collections::BTreeMap;

use bytes::Bytes;
use envelope::{tags, Envelope, LogType};

use super::buffer::Loss;

/// `source_type` of the line announcing a start (Cloud Foundry's cloud
/// controller).
pub const API_SOURCE_TYPE: &str = "API";
/// `source_type` of the line announcing an exit (Cloud Foundry's cell).
pub const CELL_SOURCE_TYPE: &str = "CELL";

/// An entry between the readers and the shipper: app lines are kept small
/// (the envelope is built when shipping), anything else is prebuilt.
#[derive(Debug, Clone)]
pub enum Item {
    Line {
        timestamp: i64,
        kind: LogType,
        payload: Bytes,
    },
    Envelope(Box<Envelope>),
}

/// The wrapped app's identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub app_name: String,
    pub source_id: String,
    pub instance_id: String,
    tags: BTreeMap<String, String>,
}

impl Identity {
    pub fn new(
        app_name: String,
        source_id: String,
        instance_id: String,
        source_type: String,
        space: Option<String>,
        org: Option<String>,
        host: Option<String>,
    ) -> Self {
        let mut tags = BTreeMap::new();
        tags.insert(tags::APP_NAME.to_owned(), app_name.clone());
        tags.insert(tags::SOURCE_TYPE.to_owned(), source_type);
        let optional = [
            (tags::SPACE_NAME, space),
            (tags::ORGANIZATION_NAME, org),
            (tags::HOST, host),
        ];
        for (name, value) in optional {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                tags.insert(name.to_owned(), value);
            }
        }
        Identity {
            app_name,
            source_id,
            instance_id,
            tags,
        }
    }

    #[cfg(test)]
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.get(name).map(String::as_str)
    }

    /// The envelope for a queued item.
    pub fn envelope(&self, item: &Item) -> Envelope {
        match item {
            Item::Line {
                timestamp,
                kind,
                payload,
            } => self.log(*timestamp, payload.clone(), *kind, None),
            Item::Envelope(env) => (**env).clone(),
        }
    }

    /// The `[API]` line and event announcing the start.
    pub fn started(&self, timestamp: i64, command: &str) -> [Envelope; 2] {
        let text = format!(
            "Starting app {} (instance {}) with command: {command}",
            self.app_name, self.instance_id
        );
        [
            self.event(timestamp, "audit.app.start", &text),
            self.api_line(timestamp, text, LogType::Out),
        ]
    }

    /// The `[CELL]` line and event for the end of the process.
    pub fn exited(&self, timestamp: i64, exit: super::child::Exit) -> [Envelope; 2] {
        let text = exit.to_string();
        let title = if exit.is_success() {
            "audit.app.process.exit"
        } else {
            "audit.app.process.crash"
        };
        [
            self.event(timestamp, title, &text),
            self.log(
                timestamp,
                Bytes::from(text),
                LogType::Out,
                Some(CELL_SOURCE_TYPE),
            ),
        ]
    }

    /// The `[API]` line for a command that could not be started.
    pub fn failed_to_start(&self, timestamp: i64, why: &str) -> Envelope {
        self.api_line(
            timestamp,
            format!("Failed to start app {}: {why}", self.app_name),
            LogType::Err,
        )
    }

    /// The in-band notice for lost lines.
    pub fn loss_notice(&self, timestamp: i64, loss: Loss) -> Envelope {
        let text = codec::notice::dropped(loss.count, loss.since);
        self.log(
            timestamp,
            Bytes::from(text),
            LogType::Err,
            Some(codec::notice::SOURCE_TYPE),
        )
    }

    fn api_line(&self, timestamp: i64, text: String, kind: LogType) -> Envelope {
        self.log(timestamp, Bytes::from(text), kind, Some(API_SOURCE_TYPE))
    }

    fn log(
        &self,
        timestamp: i64,
        payload: Bytes,
        kind: LogType,
        source_type: Option<&str>,
    ) -> Envelope {
        let mut env = Envelope::log(
            timestamp,
            self.source_id.clone(),
            self.instance_id.clone(),
            payload,
            kind,
        );
        env.tags = self.tags.clone();
        if let Some(source_type) = source_type {
            env.tags
                .insert(tags::SOURCE_TYPE.to_owned(), source_type.to_owned());
        }
        env
    }

    fn event(&self, timestamp: i64, title: &str, body: &str) -> Envelope {
        let mut env = Envelope::event(timestamp, self.source_id.clone(), title, body);
        env.instance_id = self.instance_id.clone();
        env.tags = self.tags.clone();
        env.tags
            .insert(envelope::key::EVENT_TYPE_TAG.to_owned(), title.to_owned());
        env
    }
}

/// This machine's host name, for the `host` tag.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::super::child::Exit;
    use super::*;
    use envelope::v2::Message;

    fn identity() -> Identity {
        Identity::new(
            "web".into(),
            "guid-1".into(),
            "2".into(),
            "APP/PROC/WEB".into(),
            Some("dev".into()),
            None,
            Some("box".into()),
        )
    }

    #[test]
    fn lines_carry_identity_and_tags() {
        let id = identity();
        let env = id.envelope(&Item::Line {
            timestamp: 7,
            kind: LogType::Err,
            payload: Bytes::from_static(b"boom"),
        });
        assert_eq!(env.timestamp, 7);
        assert_eq!(env.source_id, "guid-1");
        assert_eq!(env.instance_id, "2");
        assert_eq!(env.log_type(), Some(LogType::Err));
        assert_eq!(env.tag("app_name"), Some("web"));
        assert_eq!(env.tag("source_type"), Some("APP/PROC/WEB"));
        assert_eq!(env.tag("space_name"), Some("dev"));
        assert_eq!(env.tag("organization_name"), None);
        assert_eq!(env.tag("host"), Some("box"));
    }

    #[test]
    fn lifecycle_is_an_event_and_a_cf_line() {
        let id = identity();
        let [event, line] = id.started(1, "./web -p 80");
        match &event.message {
            Some(Message::Event(e)) => {
                assert_eq!(e.title, "audit.app.start");
                assert_eq!(
                    e.body,
                    "Starting app web (instance 2) with command: ./web -p 80"
                );
            }
            other => panic!("not an event: {other:?}"),
        }
        assert_eq!(line.tag("source_type"), Some("API"));
        assert_eq!(event.tag("event_type"), Some("audit.app.start"));
        assert_eq!(envelope::key::key_for(&event), "event.audit_app_start");
        let [event, line] = id.exited(2, Exit::Signal(15));
        assert_eq!(line.tag("source_type"), Some("CELL"));
        assert!(matches!(
            event.message,
            Some(Message::Event(ref e)) if e.title == "audit.app.process.crash"
        ));
        assert_eq!(
            line.as_log().map(|l| l.payload.clone()),
            Some(Bytes::from("Killed by signal 15 (SIGTERM)"))
        );
    }

    #[test]
    fn hostname_is_known() {
        assert!(hostname().is_some_and(|h| !h.is_empty()));
    }

    #[test]
    fn loss_notice_text() {
        let env = identity().loss_notice(
            5,
            Loss {
                count: 12,
                since: 1_795_266_898_009_900_000,
            },
        );
        assert_eq!(env.tag("source_type"), Some("SLUICE"));
        assert_eq!(env.log_type(), Some(LogType::Err));
        assert_eq!(
            env.as_log().map(|l| l.payload.clone()),
            Some(Bytes::from(
                "sluice: 12 messages dropped since 2026-11-21T13:14:58Z"
            ))
        );
    }
}
