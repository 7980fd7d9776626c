//! Decoding `POST /logs` bodies into envelopes.
//!
//! - `application/logplex-1`: octet-counted syslog frames, as Heroku's
//!   Logplex accepts them; the `Logplex-Msg-Count` header, when sent, must
//!   equal the number of frames;
//! - `application/x-ndjson` (also `application/json`): one Log Cache JSON
//!   envelope per line;
//! - `text/plain`: one log line per line, its identity from the query.
//!
//! A body is accepted or rejected whole: a bad frame or line rejects the
//! request with an error naming where it is, so a client can fix and resend
//! without duplicating what was accepted.

use bytes::Bytes;
use codec::framing::{split_octet_counted, FramingError};
use envelope::v2::Message;
use envelope::{tags, Envelope, LogType};
use serde::Deserialize;

use crate::IngestContext;

/// The body formats `POST /logs` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Logplex,
    NdJson,
    Text,
}

impl BodyKind {
    /// From a `Content-Type` value; parameters (`; charset=…`) are ignored.
    /// A missing content type means text.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Self> {
        let Some(ct) = content_type else {
            return Some(BodyKind::Text);
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/logplex-1" => Some(BodyKind::Logplex),
            "application/x-ndjson" | "application/json" | "application/jsonl" => {
                Some(BodyKind::NdJson)
            }
            "text/plain" | "" => Some(BodyKind::Text),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("unsupported content type {0:?}; use application/logplex-1, application/x-ndjson or text/plain")]
    UnsupportedType(String),
    #[error("logplex frame {frame}: {source}")]
    Framing { frame: usize, source: FramingError },
    #[error("Logplex-Msg-Count says {declared} but the body holds {found} frames")]
    MsgCount { declared: usize, found: usize },
    #[error("invalid Logplex-Msg-Count header {0:?}")]
    BadMsgCount(String),
    #[error("line {line}: {message}")]
    Json { line: usize, message: String },
}

impl BodyError {
    /// The metrics reason this error counts under.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::UnsupportedType(_) => "bad_content_type",
            BodyError::Framing { .. } | BodyError::MsgCount { .. } | BodyError::BadMsgCount(_) => {
                "bad_frame"
            }
            BodyError::Json { .. } => "bad_json",
        }
    }
}

/// Identity for `text/plain` lines, from the query string.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TextParams {
    pub source_id: Option<String>,
    pub instance_id: Option<String>,
    pub source_type: Option<String>,
    pub app_name: Option<String>,
    pub space_name: Option<String>,
    pub organization_name: Option<String>,
    /// `OUT` (default) or `ERR`.
    #[serde(rename = "type")]
    pub log_type: Option<String>,
}

impl IngestContext {
    /// Decodes a logplex-1 body.
    pub fn decode_logplex(
        &self,
        body: Bytes,
        msg_count: Option<&str>,
        now: i64,
    ) -> Result<Vec<Envelope>, BodyError> {
        let declared = msg_count
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| BodyError::BadMsgCount(v.to_owned()))
            })
            .transpose()?;
        let mut out = Vec::new();
        for (i, frame) in split_octet_counted(body, self.limits.max_frame()).enumerate() {
            let frame = frame.map_err(|source| BodyError::Framing {
                frame: i + 1,
                source,
            })?;
            out.push(self.syslog_frame(&frame.data, frame.truncated, now));
        }
        if let Some(declared) = declared {
            if declared != out.len() {
                return Err(BodyError::MsgCount {
                    declared,
                    found: out.len(),
                });
            }
        }
        Ok(out)
    }

    /// Decodes NDJSON: one envelope per non-blank line.
    pub fn decode_ndjson(&self, body: &[u8], now: i64) -> Result<Vec<Envelope>, BodyError> {
        let mut out = Vec::new();
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut env = envelope::json::from_json(line).map_err(|e| BodyError::Json {
                line: i + 1,
                message: e.to_string(),
            })?;
            let sent = (env.timestamp != 0).then_some(env.timestamp);
            env.timestamp = self.limits.timestamp(sent, now);
            if let Some(Message::Log(log)) = env.message.as_mut() {
                if log.payload.len() > self.limits.max_message {
                    // A copy, so the cut payload does not keep the decoded
                    // buffer alive.
                    log.payload = Bytes::copy_from_slice(&log.payload[..self.limits.max_message]);
                    self.metrics.count_drop("truncated", 1);
                }
            }
            out.push(env);
        }
        Ok(out)
    }

    /// Decodes plain text: one log line per non-empty line.
    pub fn decode_text(&self, body: &Bytes, params: &TextParams, now: i64) -> Vec<Envelope> {
        let log_type = match params.log_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("err") || t.eq_ignore_ascii_case("stderr") => {
                LogType::Err
            }
            _ => LogType::Out,
        };
        let source_id = params
            .source_id
            .as_deref()
            .or(params.app_name.as_deref())
            .unwrap_or(crate::mapping::UNKNOWN_SOURCE);
        let mut template = Envelope::log(
            now,
            source_id,
            params.instance_id.as_deref().unwrap_or(""),
            Bytes::new(),
            log_type,
        );
        for (name, value) in [
            (tags::SOURCE_TYPE, &params.source_type),
            (tags::APP_NAME, &params.app_name),
            (tags::SPACE_NAME, &params.space_name),
            (tags::ORGANIZATION_NAME, &params.organization_name),
        ] {
            if let Some(v) = value {
                template.tags.insert(name.to_owned(), v.clone());
            }
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start < body.len() {
            let end = body[start..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(body.len(), |p| start + p);
            let mut line = &body[start..end];
            start = end + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                continue;
            }
            if line.len() > self.limits.max_message {
                line = &line[..self.limits.max_message];
                self.metrics.count_drop("truncated", 1);
            }
            let mut env = template.clone();
            if let Some(Message::Log(log)) = env.message.as_mut() {
                // Copied out: a slice of the body would keep the whole
                // request body alive for as long as the line is stored.
                log.payload = Bytes::copy_from_slice(line);
            }
            out.push(env);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IngestLimits;
    use metrics::Metrics;
    use sluice_log::{MemoryLog, MemoryLogConfig};
    use std::sync::Arc;

    const NOW: i64 = 1_795_785_298_000_000_000;

    fn ctx() -> IngestContext {
        IngestContext::new(
            Arc::new(MemoryLog::new(MemoryLogConfig::default())),
            Arc::new(Metrics::default()),
            IngestLimits {
                max_message: 16,
                ..Default::default()
            },
        )
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyKind::from_content_type(Some("application/logplex-1")),
            Some(BodyKind::Logplex)
        );
        assert_eq!(
            BodyKind::from_content_type(Some("text/plain; charset=utf-8")),
            Some(BodyKind::Text)
        );
        assert_eq!(BodyKind::from_content_type(Some("image/png")), None);
    }

    #[test]
    fn logplex_body_with_count() {
        let body = Bytes::from_static(
            b"40 <14>1 2026-11-27T13:14:58Z h web - - one\n40 <11>1 2026-11-27T13:14:58Z h web - - two\n",
        );
        let envs = ctx().decode_logplex(body.clone(), Some("2"), NOW).unwrap();
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[1].log_type(), Some(LogType::Err));
        let err = ctx().decode_logplex(body, Some("3"), NOW).unwrap_err();
        assert!(matches!(
            err,
            BodyError::MsgCount {
                declared: 3,
                found: 2
            }
        ));
        let err = ctx()
            .decode_logplex(Bytes::from_static(b"99 <14>1 short"), None, NOW)
            .unwrap_err();
        assert_eq!(err.reason(), "bad_frame");
    }

    #[test]
    fn ndjson_lines_and_truncation() {
        let c = ctx();
        let body = b"{\"source_id\":\"a\",\"log\":{\"payload\":\"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=\"}}\n\n{\"source_id\":\"b\",\"timestamp\":\"5\"}\n";
        let envs = c.decode_ndjson(body, NOW).unwrap();
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[0].as_log().unwrap().payload.len(), 16);
        assert_eq!(envs[0].timestamp, NOW, "zero timestamp becomes now");
        assert_eq!(envs[1].timestamp, NOW, "insane timestamp becomes now");
        assert_eq!(c.metrics.dropped("truncated"), 1);
        let err = c.decode_ndjson(b"{}\n{bad\n", NOW).unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }

    #[test]
    fn text_lines_take_identity_from_params() {
        let params = TextParams {
            source_id: Some("guid".into()),
            app_name: Some("web".into()),
            log_type: Some("ERR".into()),
            ..Default::default()
        };
        let envs = ctx().decode_text(&Bytes::from_static(b"a\r\n\nb\n"), &params, NOW);
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[0].source_id, "guid");
        assert_eq!(envs[0].tag("app_name"), Some("web"));
        assert_eq!(envs[1].log_type(), Some(LogType::Err));
        assert_eq!(&envs[1].as_log().unwrap().payload[..], b"b");
    }
}
