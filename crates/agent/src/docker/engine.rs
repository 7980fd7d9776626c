//! The four Docker Engine API calls the agent makes, over the daemon's
//! Unix socket: list running containers, inspect one, follow the event
//! stream, and stream a container's logs.
//!
//! Written on hyper rather than taken from bollard: bollard's logs call
//! takes `since` in whole seconds (an exact resume needs nanoseconds) and
//! its decoder reads a TTY stream up to the next `\n`, merging the entries
//! the daemon cut and buffering a TTY that never writes one without bound
//! ([`super::frames`] does it with a bound). With the log stream our own,
//! the three small JSON calls ride on the same hundred lines instead of a
//! second HTTP stack and its generated models.
//!
//! Every response is bounded: JSON bodies by [`MAX_JSON`], event lines by
//! [`MAX_EVENT`], log frames by the frame decoder; a connection that
//! answers nothing for [`REQUEST_TIMEOUT`] is an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::net::UnixStream;

/// Largest JSON answer read (a list of a thousand containers is ~2 MiB).
pub const MAX_JSON: usize = 32 << 20;
/// Longest event line read from `/events`.
pub const MAX_EVENT: usize = 1 << 20;
/// How long connecting and the response head may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker daemon at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Docker API {what}: {source}")]
    Http { what: String, source: hyper::Error },
    #[error("Docker API {what}: no answer within {REQUEST_TIMEOUT:?}")]
    Timeout { what: String },
    #[error("Docker API {what}: not found")]
    NotFound { what: String },
    #[error("Docker API {what}: status {status}: {message}")]
    Status {
        what: String,
        status: StatusCode,
        message: String,
    },
    #[error("Docker API {what}: {message}")]
    Body { what: String, message: String },
}

/// `GET /containers/json`: one running container.
#[derive(Debug, Deserialize)]
pub struct ContainerSummary {
    #[serde(rename = "Id")]
    pub id: String,
}

/// `GET /containers/{id}/json`, the fields the agent reads.
#[derive(Debug, Deserialize)]
pub struct ContainerInspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Config", default)]
    pub config: ContainerConfig,
    #[serde(rename = "State", default)]
    pub state: ContainerState,
    #[serde(rename = "LogPath", default)]
    pub log_path: String,
    /// RFC 3339 with nanoseconds.
    #[serde(rename = "Created", default)]
    pub created: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "Tty", default)]
    pub tty: bool,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<HashMap<String, String>>,
    #[serde(rename = "Image", default)]
    pub image: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "Running", default)]
    pub running: bool,
}

/// One line of `GET /events`.
#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "Action", default)]
    pub action: String,
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID", default)]
    pub id: String,
}

/// A client for one daemon socket. Every call opens its own connection
/// (the daemon serves a socket connection per stream anyway).
#[derive(Clone, Debug)]
pub struct Engine {
    socket: PathBuf,
}

impl Engine {
    pub fn new(socket: &Path) -> Self {
        Engine {
            socket: socket.to_owned(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Running containers.
    pub async fn running(&self) -> Result<Vec<ContainerSummary>, EngineError> {
        self.json("/containers/json").await
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerInspect, EngineError> {
        self.json(&format!("/containers/{}/json", encode(id))).await
    }

    /// Container start and die events from `since_ns` on, as they happen.
    pub async fn starts(&self, since_ns: i64) -> Result<EventStream, EngineError> {
        let filters = r#"{"type":["container"],"event":["start","die"]}"#;
        let since = format!(
            "{}.{:09}",
            since_ns.div_euclid(1_000_000_000),
            since_ns.rem_euclid(1_000_000_000)
        );
        let path = format!("/events?since={since}&filters={}", encode(filters));
        let body = self.get(&path, "events").await?.into_body();
        Ok(EventStream {
            body,
            buf: BytesMut::new(),
        })
    }

    /// A container's stdout and stderr with timestamps, from `since`
    /// (`<seconds>.<nanoseconds>`, inclusive), following new output.
    pub async fn logs(&self, id: &str, since: &str) -> Result<Incoming, EngineError> {
        let path = format!(
            "/containers/{}/logs?follow=1&stdout=1&stderr=1&timestamps=1&since={since}",
            encode(id)
        );
        Ok(self.get(&path, "logs").await?.into_body())
    }

    async fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, EngineError> {
        let mut body = self.get(path, path).await?.into_body();
        let mut bytes = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| EngineError::Http {
                what: path.to_owned(),
                source,
            })?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > MAX_JSON {
                    return Err(EngineError::Body {
                        what: path.to_owned(),
                        message: format!("answer over {MAX_JSON} bytes"),
                    });
                }
                bytes.extend_from_slice(&data);
            }
        }
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Body {
            what: path.to_owned(),
            message: e.to_string(),
        })
    }

    async fn get(&self, path: &str, what: &str) -> Result<Response<Incoming>, EngineError> {
        let what = what.to_owned();
        match tokio::time::timeout(REQUEST_TIMEOUT, self.request(path, &what)).await {
            Ok(answer) => answer,
            Err(_) => Err(EngineError::Timeout { what }),
        }
    }

    async fn request(&self, path: &str, what: &str) -> Result<Response<Incoming>, EngineError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| EngineError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        let http = |source| EngineError::Http {
            what: what.to_owned(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        // The connection task ends when the response body (or an error)
        // ends it: it owns only this socket.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::get(path)
            .header(hyper::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| EngineError::Body {
                what: what.to_owned(),
                message: e.to_string(),
            })?;
        let response = sender.send_request(request).await.map_err(http)?;
        match response.status() {
            StatusCode::OK => Ok(response),
            StatusCode::NOT_FOUND => Err(EngineError::NotFound {
                what: what.to_owned(),
            }),
            status => {
                let message = short_message(response.into_body()).await;
                Err(EngineError::Status {
                    what: what.to_owned(),
                    status,
                    message,
                })
            }
        }
    }
}

/// The daemon's error message (`{"message": …}`), at most 4 KiB of it.
async fn short_message(mut body: Incoming) -> String {
    const MAX: usize = 4096;
    let mut bytes = Vec::new();
    while bytes.len() < MAX {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            let room = MAX - bytes.len();
            bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    serde_json::from_slice::<Message>(&bytes)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The `/events` body, one JSON object per line.
pub struct EventStream {
    body: Incoming,
    buf: BytesMut,
}

impl EventStream {
    /// The next event; `None` when the daemon closed the stream. Lines that
    /// are not events are skipped; a line over [`MAX_EVENT`] is an error.
    pub async fn next(&mut self) -> Result<Option<Event>, EngineError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(nl + 1);
                if let Ok(event) = serde_json::from_slice::<Event>(&line) {
                    return Ok(Some(event));
                }
                continue;
            }
            if self.buf.len() > MAX_EVENT {
                return Err(EngineError::Body {
                    what: "events".into(),
                    message: format!("an event line over {MAX_EVENT} bytes"),
                });
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(EngineError::Http {
                        what: "events".into(),
                        source,
                    })
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
