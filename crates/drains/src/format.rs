//! Drain formats: how an entry becomes the bytes of one message.
//!
//! - `verbatim`: the payload as text;
//! - `json`: Logyard's JSON fields (see [`codec::logyard`]);
//! - a template in Go-template syntax over those fields, `{{.field}}`,
//!   compiled once per drain ([`codec::template`]);
//! - a name: the built-ins `apptail`, `systail`, `event` (Logyard's), or a
//!   format saved with `sluice format set NAME TEMPLATE`.
//!
//! One rendered record is at most `max_record` bytes (`[drains]
//! max_record`, 64 KiB by default) however many actions a template has
//! ([`Format::render_capped`]): rendering stops there and the record is
//! cut at a UTF-8 boundary; a JSON record is made again with a shorter
//! `text` so it stays valid JSON.

use std::collections::HashMap;
use std::sync::Arc;

use envelope::Envelope;

#[derive(Clone, Debug)]
pub enum Format {
    Verbatim,
    Json,
    Template(Arc<codec::template::Template>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("invalid format {name:?}: {reason}")]
    Invalid { name: String, reason: String },
}

impl Format {
    /// Resolves a format name or template text. Saved formats shadow
    /// nothing: built-in names win.
    pub fn resolve(spec: &str, saved: &HashMap<String, String>) -> Result<Format, FormatError> {
        let text = match spec {
            "verbatim" | "raw" => return Ok(Format::Verbatim),
            "json" => return Ok(Format::Json),
            name => codec::logyard::builtin_format(name)
                .or_else(|| saved.get(name).map(String::as_str))
                .unwrap_or(spec),
        };
        if !text.contains("{{") {
            return Err(FormatError::Invalid {
                name: spec.to_owned(),
                reason: "not a known format name (verbatim, json, apptail, systail, event or a saved one) nor a template with {{.field}}".into(),
            });
        }
        codec::template::Template::parse(text)
            .map(|t| Format::Template(Arc::new(t)))
            .map_err(|e| FormatError::Invalid {
                name: spec.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Appends the rendering of `env` (no line terminator), unbounded.
    pub fn render(&self, env: &Envelope, out: &mut Vec<u8>) {
        match self {
            Format::Verbatim => codec::logyard::write_text(env, out),
            Format::Json => codec::logyard::write_json(env, out),
            Format::Template(t) => t.render(env, out),
        }
    }

    /// Appends the rendering of `env`, at most `max` bytes of it; whether
    /// it was cut. A template stops rendering once past `max`, so what is
    /// held at once is at most `max` plus one field.
    pub fn render_capped(&self, env: &Envelope, out: &mut Vec<u8>, max: usize) -> bool {
        let start = out.len();
        match self {
            Format::Verbatim => codec::logyard::write_text(env, out),
            Format::Json => {
                codec::logyard::write_json(env, out);
                if out.len() - start > max {
                    return json_capped(env, out, start, max);
                }
            }
            Format::Template(t) => {
                for part in t.parts() {
                    match part {
                        codec::template::Part::Literal(text) => out.extend_from_slice(text),
                        codec::template::Part::Field(field) => {
                            codec::logyard::write_field(env, field, out)
                        }
                    }
                    if out.len() - start > max {
                        break;
                    }
                }
            }
        }
        cap(out, start, max)
    }
}

/// Cuts `out[start..]` to at most `max` bytes, at a UTF-8 boundary when
/// the text is UTF-8 there; whether it cut.
pub fn cap(out: &mut Vec<u8>, start: usize, max: usize) -> bool {
    if out.len() - start <= max {
        return false;
    }
    let mut end = start + max;
    // Do not split a UTF-8 sequence: back off over continuation bytes.
    let mut back = 0;
    while back < 3 && end > start && (out[end] & 0xc0) == 0x80 {
        end -= 1;
        back += 1;
    }
    if (out[end] & 0xc0) == 0x80 {
        end = start + max;
    }
    out.truncate(end);
    true
}

/// A JSON record over `max`: made again from a copy of the log whose
/// payload is cut in proportion (escaping may need a few rounds); cut
/// bytewise as a last resort. Always reports a cut.
fn json_capped(env: &Envelope, out: &mut Vec<u8>, start: usize, max: usize) -> bool {
    let Some(log) = env.as_log() else {
        return cap(out, start, max);
    };
    let mut keep = log.payload.len();
    for _ in 0..6 {
        // Shrink the payload in proportion (escaping makes the JSON
        // longer than the text), with a little margin.
        let len = out.len() - start;
        let scaled = (keep as u128 * max as u128 / len.max(1) as u128) as usize;
        keep = scaled
            .saturating_sub(scaled / 16 + 1)
            .min(keep.saturating_sub(1));
        let mut shorter = env.clone();
        if let Some(envelope::v2::Message::Log(l)) = shorter.message.as_mut() {
            l.payload = log.payload.slice(..keep);
        }
        out.truncate(start);
        codec::logyard::write_json(&shorter, out);
        if out.len() - start <= max {
            return true;
        }
    }
    cap(out, start, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::LogType;

    fn log(text: &str) -> Envelope {
        Envelope::log(1, "app", "0", Bytes::from(text.to_owned()), LogType::Out)
    }

    #[test]
    fn records_are_capped_whatever_the_template() {
        let saved = HashMap::new();
        let template = "{{.text}}".repeat(256);
        let f = Format::resolve(&template, &saved).unwrap();
        let env = log(&"x".repeat(10_000));
        let mut out = Vec::new();
        assert!(f.render_capped(&env, &mut out, 4096));
        assert_eq!(out.len(), 4096);
        out.clear();
        assert!(!f.render_capped(&log("ab"), &mut out, 4096));
        assert_eq!(out.len(), 512);
        // UTF-8 is not split.
        out.clear();
        assert!(Format::Verbatim.render_capped(&log("ééé"), &mut out, 3));
        assert_eq!(out, "é".as_bytes());
        // JSON stays JSON.
        out.clear();
        assert!(Format::Json.render_capped(&log(&"a\n".repeat(5000)), &mut out, 1000));
        assert!(out.len() <= 1000);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["text"].as_str().unwrap().len() > 100);
    }
}
