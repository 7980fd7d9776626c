//! Rendering entries for live streams: logspout's text, NDJSON and SSE.
//!
//! Text is what logspout's `/logs` prints: the bare line when one source is
//! shown, else `name|line` with the name right-aligned to the widest seen so
//! far and, unless `colors=off`, one ANSI color per source (logspout's
//! palette, assigned in order of appearance). NDJSON, SSE and WebSocket
//! frames carry one JSON object per entry ([`write_stream_json`]): the Log
//! Cache JSON envelope plus logspout's fields (`data` as text, `source`,
//! `time`, `container`), so a logspout client reads the text without
//! decoding base64, and `cursor`, the place to resume right after the entry
//! (`?after=`); SSE also puts the cursor in the frame's `id:`, so a browser's
//! `EventSource` resumes by itself (`Last-Event-ID`). A loss notice is a line
//! of text, or the notice envelope (source `sluice`, no cursor) in the JSON
//! forms.

use std::collections::HashMap;

use envelope::v2::Message;
use envelope::{tags, Entry};
use router::Loss;
use sluice_log::Cursor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFormat {
    Text,
    NdJson,
    Sse,
}

impl StreamFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            StreamFormat::Text => "text/plain; charset=utf-8",
            StreamFormat::NdJson => "application/x-ndjson",
            StreamFormat::Sse => "text/event-stream",
        }
    }
}

/// logspout's palette.
const COLORS: [&str; 12] = [
    "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[91m", "\x1b[92m",
    "\x1b[93m", "\x1b[94m", "\x1b[95m", "\x1b[96m",
];
const RESET: &str = "\x1b[0m";
/// Sources remembered for colors; beyond it colors are reassigned.
const MAX_REMEMBERED: usize = 4096;

pub struct Renderer {
    format: StreamFormat,
    prefix: bool,
    colors: bool,
    name_width: usize,
    assigned: HashMap<String, &'static str>,
}

impl Renderer {
    /// `prefix`: show `name|` (more than one source may appear).
    pub fn new(format: StreamFormat, prefix: bool, colors: bool) -> Self {
        Renderer {
            format,
            prefix,
            colors,
            name_width: 0,
            assigned: HashMap::new(),
        }
    }

    /// Renders an entry read from the log (its `seq` is its position).
    pub fn entry(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        self.render(entry, Some(Cursor::after(entry.seq)), out);
    }

    fn render(&mut self, entry: &Entry, cursor: Option<Cursor>, out: &mut Vec<u8>) {
        match self.format {
            StreamFormat::Text => self.text(entry, out),
            StreamFormat::NdJson => {
                write_stream_json(&entry.envelope, cursor, out);
                out.push(b'\n');
            }
            StreamFormat::Sse => {
                if let Some(c) = cursor {
                    out.extend_from_slice(format!("id: {c}\n").as_bytes());
                }
                out.extend_from_slice(b"data: ");
                write_stream_json(&entry.envelope, cursor, out);
                out.extend_from_slice(b"\n\n");
            }
        }
    }

    pub fn loss(&mut self, loss: &Loss, out: &mut Vec<u8>) {
        match self.format {
            StreamFormat::Text => {
                out.extend_from_slice(loss.notice().as_bytes());
                out.push(b'\n');
            }
            _ => {
                let notice = Entry::new(loss.notice_envelope());
                self.render(&notice, None, out);
            }
        }
    }

    /// Bytes that keep an idle stream alive; empty for text, where any
    /// byte would show up in the user's terminal.
    pub fn heartbeat(&self) -> &'static [u8] {
        match self.format {
            StreamFormat::Text => b"",
            StreamFormat::NdJson => b"\n",
            StreamFormat::Sse => b": heartbeat\n\n",
        }
    }

    fn text(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        let env = &entry.envelope;
        if !self.prefix {
            push_message_text(env, out);
            out.push(b'\n');
            return;
        }
        let name = env.tag(tags::APP_NAME).unwrap_or(&env.source_id);
        self.name_width = self.name_width.max(name.chars().count());
        if self.colors {
            if self.assigned.len() >= MAX_REMEMBERED {
                self.assigned.clear();
            }
            let next = COLORS[self.assigned.len() % COLORS.len()];
            let color = *self.assigned.entry(name.to_owned()).or_insert(next);
            out.extend_from_slice(color.as_bytes());
        }
        let pad = self.name_width - name.chars().count();
        out.extend(std::iter::repeat_n(b' ', pad));
        out.extend_from_slice(name.as_bytes());
        out.push(b'|');
        push_message_text(env, out);
        if self.colors {
            out.extend_from_slice(RESET.as_bytes());
        }
        out.push(b'\n');
    }
}

/// Appends one entry as the streams' JSON: the Log Cache envelope with
/// logspout's message fields added at the end:
/// `{"timestamp":…,"source_id":…,…,"log":{…},"data":"text","source":"stdout",
/// "time":"2026-12-01T13:14:58.123456789Z","container":{"id":…,"name":…,"instance":…},
/// "cursor":"v1.43"}` (`cursor` only for entries read from the log).
/// `source` is `stdout`/`stderr` for logs and the envelope kind (`event`,
/// `counter`, …) otherwise; `data` is the same text the text stream shows.
pub fn write_stream_json(env: &envelope::Envelope, cursor: Option<Cursor>, out: &mut Vec<u8>) {
    let start = out.len();
    envelope::json::write_json(env, out);
    if out.len() <= start || out.last() != Some(&b'}') {
        return;
    }
    out.pop();
    let mut text = Vec::new();
    push_message_text(env, &mut text);
    let source = match env.log_type() {
        Some(envelope::LogType::Err) => "stderr",
        Some(envelope::LogType::Out) => "stdout",
        None => match env.envelope_type() {
            Some(envelope::v2::EnvelopeType::Event) => "event",
            Some(envelope::v2::EnvelopeType::Counter) => "counter",
            Some(envelope::v2::EnvelopeType::Gauge) => "gauge",
            Some(envelope::v2::EnvelopeType::Timer) => "timer",
            Some(envelope::v2::EnvelopeType::Log) | None => "",
        },
    };
    out.extend_from_slice(b",\"data\":");
    let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(&text));
    out.extend_from_slice(b",\"source\":\"");
    out.extend_from_slice(source.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    codec::timestamp::push_rfc3339_nanos(out, env.timestamp);
    out.extend_from_slice(b"\",\"container\":{\"id\":");
    let _ = serde_json::to_writer(&mut *out, &env.source_id);
    out.extend_from_slice(b",\"name\":");
    let name = env.tag(tags::APP_NAME).unwrap_or(&env.source_id);
    let _ = serde_json::to_writer(&mut *out, name);
    out.extend_from_slice(b",\"instance\":");
    let _ = serde_json::to_writer(&mut *out, &env.instance_id);
    out.push(b'}');
    if let Some(c) = cursor {
        out.extend_from_slice(format!(",\"cursor\":\"{c}\"").as_bytes());
    }
    out.push(b'}');
}

/// Appends the human text of a message: a log's payload (invalid UTF-8
/// replaced, line end trimmed; valid UTF-8, the common case, is copied as
/// is), else the drains' verbatim text of events and metrics.
pub fn push_message_text(env: &envelope::Envelope, out: &mut Vec<u8>) {
    match &env.message {
        Some(Message::Log(log)) => {
            let mut text: &[u8] = &log.payload;
            while let [rest @ .., b'\n' | b'\r'] = text {
                text = rest;
            }
            match std::str::from_utf8(text) {
                Ok(_) => out.extend_from_slice(text),
                Err(_) => out.extend_from_slice(String::from_utf8_lossy(text).as_bytes()),
            }
        }
        _ => codec::logyard::write_text(env, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::{Envelope, LogType};

    fn entry(app: &str, text: &'static str) -> Entry {
        let mut e = Envelope::log(
            1,
            app,
            "0",
            Bytes::from_static(text.as_bytes()),
            LogType::Out,
        );
        e.tags.insert("app_name".into(), app.into());
        Entry::new(e)
    }

    #[test]
    fn logspout_text_prefixes() {
        let mut r = Renderer::new(StreamFormat::Text, true, false);
        let mut out = Vec::new();
        r.entry(&entry("web", "hello\n"), &mut out);
        r.entry(&entry("worker", "x"), &mut out);
        r.entry(&entry("web", "again"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "web|hello\nworker|x\n   web|again\n"
        );
        let mut r = Renderer::new(StreamFormat::Text, true, true);
        let mut out = Vec::new();
        r.entry(&entry("web", "hi"), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\x1b[31mweb|hi\x1b[0m\n");
        let mut r = Renderer::new(StreamFormat::Text, false, true);
        let mut out = Vec::new();
        r.entry(&entry("web", "hi"), &mut out);
        assert_eq!(out, b"hi\n");
    }

    #[test]
    fn json_forms() {
        let mut out = Vec::new();
        Renderer::new(StreamFormat::NdJson, true, true).entry(&entry("web", "hi"), &mut out);
        assert!(out.starts_with(b"{\"timestamp\":\"1\"") && out.ends_with(b"}\n"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"], "hi");
        assert_eq!(v["source"], "stdout");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000000001Z");
        assert_eq!(v["container"]["name"], "web");
        assert_eq!(v["log"]["payload"], "aGk=");
        assert_eq!(v["cursor"], "v1.1", "resumes right after position 0");
        let mut sse = Vec::new();
        let mut at_41 = entry("web", "hi");
        at_41.seq = 41;
        Renderer::new(StreamFormat::Sse, true, true).entry(&at_41, &mut sse);
        let sse = String::from_utf8(sse).unwrap();
        assert!(sse.starts_with("id: v1.42\ndata: {"), "{sse}");
        assert!(sse.ends_with(",\"cursor\":\"v1.42\"}\n\n"), "{sse}");
        // The envelope still decodes as Log Cache JSON.
        let back = envelope::json::from_json(&out).unwrap();
        assert_eq!(back.source_id, "web");
        let mut out = Vec::new();
        Renderer::new(StreamFormat::Sse, true, true).loss(&Loss { count: 3, since: 0 }, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("data: {") && text.ends_with("}\n\n"),
            "{text}"
        );
        assert!(text.contains("\"source_id\":\"sluice\""));
        assert!(!text.contains("cursor"), "a notice has no place in the log");
    }
}
