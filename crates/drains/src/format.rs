//! Drain formats: how an entry becomes the bytes of one message.
//!
//! - `verbatim`: the payload as text;
//! - `json`: Logyard's JSON fields (see [`codec::logyard`]);
//! - a template in Go-template syntax over those fields, `{{.field}}`,
//!   compiled once per drain ([`codec::template`]);
//! - a name: the built-ins `apptail`, `systail`, `event` (Logyard's), or a
//!   format saved with `sluice format set NAME TEMPLATE`.

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

    /// Appends the rendering of `env` (no line terminator).
    pub fn render(&self, env: &Envelope, out: &mut Vec<u8>) {
        match self {
            Format::Verbatim => codec::logyard::write_text(env, out),
            Format::Json => codec::logyard::write_json(env, out),
            Format::Template(t) => t.render(env, out),
        }
    }
}
