//! Drain format templates: the `{{.field}}` subset of Go's `text/template`
//! that Logyard's drain formats used.
//!
//! A template is literal text with actions `{{.field}}` (spaces allowed
//! inside the braces: `{{ .field }}`). A field name is letters, digits,
//! `_`, `.` and `-`, and names one of Logyard's fields or a tag
//! ([`logyard::Field`]); `{{.syslog.priority}}` is the one field
//! `syslog.priority`. Nothing else of Go's template language is supported:
//! pipelines (`|`), functions, variables, `range`, `if`, `with`, comments
//! and trim markers (`{{-`) are rejected with an error naming the byte
//! offset. A literal `{{` can't be written (Go's `{{"{{"}}` is a string
//! constant, which is not supported); a `}}` outside an action is literal
//! text.
//!
//! Templates are parsed once ([`Template::parse`]) and rendered per
//! message ([`Template::render`]) straight into the output buffer. The
//! source is limited to [`MAX_TEMPLATE_LEN`] bytes and
//! [`MAX_TEMPLATE_ACTIONS`] actions.

use envelope::v2::Envelope;

use crate::logyard::{self, Field};

/// The longest template source accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 4096;
/// The most `{{…}}` actions a template may hold.
pub const MAX_TEMPLATE_ACTIONS: usize = 256;
/// How much of an offending action an error message quotes, in bytes.
const MAX_QUOTED: usize = 64;

/// One piece of a compiled template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Literal(Box<[u8]>),
    Field(Field),
}

/// A compiled template: literal text and fields, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template was rejected. Offsets are byte offsets into the source,
/// of the `{{` that opens the offending action.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("template has more than {max} actions (at byte {offset})")]
    TooManyActions { offset: usize, max: usize },
    #[error("unclosed action: `{{{{` at byte {offset} has no matching `}}}}`")]
    Unclosed { offset: usize },
    #[error("empty action `{{{{}}}}` at byte {offset}")]
    EmptyAction { offset: usize },
    #[error(
        "unsupported template action `{{{{{action}}}}}` at byte {offset}: only {{{{.field}}}} is supported"
    )]
    Unsupported { offset: usize, action: String },
    #[error("invalid field name {name:?} at byte {offset}: use letters, digits, `_`, `.` and `-`")]
    InvalidFieldName { offset: usize, name: String },
}

impl Template {
    /// Compiles `src`; see the module docs for the syntax.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        if src.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::TooLong {
                len: src.len(),
                max: MAX_TEMPLATE_LEN,
            });
        }
        let mut parts = Vec::new();
        let mut actions = 0;
        let mut pos = 0;
        while let Some(found) = src[pos..].find("{{") {
            let open = pos + found;
            if open > pos {
                parts.push(Part::Literal(src.as_bytes()[pos..open].into()));
            }
            actions += 1;
            if actions > MAX_TEMPLATE_ACTIONS {
                return Err(TemplateError::TooManyActions {
                    offset: open,
                    max: MAX_TEMPLATE_ACTIONS,
                });
            }
            let inner_start = open + 2;
            let Some(len) = src[inner_start..].find("}}") else {
                return Err(TemplateError::Unclosed { offset: open });
            };
            let inner = &src[inner_start..inner_start + len];
            parts.push(Part::Field(parse_action(inner, open)?));
            pos = inner_start + len + 2;
        }
        if pos < src.len() {
            parts.push(Part::Literal(src.as_bytes()[pos..].into()));
        }
        Ok(Template { parts })
    }

    /// The compiled pieces, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Appends the rendering of `env` to `out`.
    pub fn render(&self, env: &Envelope, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.extend_from_slice(text),
                Part::Field(field) => logyard::write_field(env, field, out),
            }
        }
    }
}

/// The inside of `{{…}}` opened at `offset`.
fn parse_action(inner: &str, offset: usize) -> Result<Field, TemplateError> {
    let action = inner.trim_matches(|c: char| c.is_ascii_whitespace());
    if action.is_empty() {
        return Err(TemplateError::EmptyAction { offset });
    }
    let unsupported = || TemplateError::Unsupported {
        offset,
        action: quote(inner),
    };
    let Some(name) = action.strip_prefix('.') else {
        return Err(unsupported());
    };
    // `{{.}}` (the whole record), `{{.a | f}}`, `{{.a .b}}` and `{{.a -}}`
    // are Go, but not the subset supported here (`{{- .a}}` does not start
    // with `.`).
    if name.is_empty() || name.contains(|c: char| c == '|' || c.is_whitespace()) {
        return Err(unsupported());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(TemplateError::InvalidFieldName {
            offset,
            name: quote(name),
        });
    }
    Ok(Field::parse(name))
}

/// At most [`MAX_QUOTED`] bytes of `text`, cut at a char boundary.
fn quote(text: &str) -> String {
    if text.len() <= MAX_QUOTED {
        return text.to_owned();
    }
    let mut end = MAX_QUOTED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use envelope::tags::{HOST, SOURCE_TYPE};
    use envelope::LogType;

    /// 2026-11-21T13:14:58Z
    const TS: i64 = 1_795_266_898_000_000_000;

    fn env() -> Envelope {
        let mut env = Envelope::log(
            TS,
            "guid",
            "3",
            Bytes::from_static(b"hello\n"),
            LogType::Out,
        );
        env.tags.insert(SOURCE_TYPE.into(), "APP/PROC/WEB".into());
        env.tags.insert(HOST.into(), "node1".into());
        env.tags.insert("zone-a.b".into(), "z".into());
        env
    }

    fn render(src: &str) -> String {
        let mut out = Vec::new();
        Template::parse(src).unwrap().render(&env(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn err(src: &str) -> TemplateError {
        Template::parse(src).unwrap_err()
    }

    #[test]
    fn renders_fields_and_literals() {
        assert_eq!(
            render("{{.human_time}} {{.source}}.{{.instance_index}}: {{.text}}"),
            "2026-11-21T13:14:58+00:00 APP/PROC/WEB.3: hello"
        );
        assert_eq!(
            render("<{{ .syslog.priority }}>{{.node_id}} {{.zone-a.b}}|{{.nope}}|"),
            "<14>node1 z||"
        );
        assert_eq!(render("{{.a-}}{{.zone-a.b}}"), "z");
        assert_eq!(render("no actions }} here"), "no actions }} here");
        assert_eq!(render(""), "");
        assert_eq!(render("{{.text}}{{.text}}"), "hellohello");
    }

    #[test]
    fn builtin_formats_parse() {
        for name in ["apptail", "systail", "event"] {
            let src = logyard::builtin_format(name).unwrap();
            Template::parse(src).unwrap();
        }
    }

    #[test]
    fn compiles_to_parts() {
        let t = Template::parse("a{{.text}}b{{.syslog.time}}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Literal(b"a".to_vec().into()),
                Part::Field(Field::Text),
                Part::Literal(b"b".to_vec().into()),
                Part::Field(Field::SyslogTime),
            ]
        );
    }

    #[test]
    fn rejects_unclosed_and_empty_actions() {
        assert_eq!(err("ab{{.text"), TemplateError::Unclosed { offset: 2 });
        assert_eq!(err("{{.text}} {{"), TemplateError::Unclosed { offset: 10 });
        assert_eq!(err("x{{  }}"), TemplateError::EmptyAction { offset: 1 });
        assert_eq!(
            err("{{.a}}{{.b}").to_string(),
            "unclosed action: `{{` at byte 6 has no matching `}}`"
        );
    }

    #[test]
    fn rejects_unsupported_constructs() {
        for (src, offset) in [
            ("{{range .x}}", 0),
            ("a {{if .x}}y{{end}}", 2),
            ("{{.text | printf \"%s\"}}", 0),
            ("{{.}}", 0),
            ("{{.a .b}}", 0),
            ("{{- .text}}", 0),
            ("{{.text -}}", 0),
            ("{{\"{{\"}}", 0),
            ("{{text}}", 0),
            ("{{/* c */}}", 0),
            ("{{$x}}", 0),
        ] {
            match err(src) {
                TemplateError::Unsupported { offset: o, .. } => assert_eq!(o, offset, "{src}"),
                other => panic!("{src}: {other:?}"),
            }
        }
        assert_eq!(
            err("ok {{ range .x }}").to_string(),
            "unsupported template action `{{ range .x }}` at byte 3: only {{.field}} is supported"
        );
    }

    #[test]
    fn rejects_bad_field_names() {
        assert_eq!(
            err("{{.a/b}}"),
            TemplateError::InvalidFieldName {
                offset: 0,
                name: "a/b".into()
            }
        );
        assert!(matches!(
            err("{{.é}}"),
            TemplateError::InvalidFieldName { .. }
        ));
    }

    #[test]
    fn limits() {
        let long = "x".repeat(MAX_TEMPLATE_LEN + 1);
        assert_eq!(
            err(&long),
            TemplateError::TooLong {
                len: MAX_TEMPLATE_LEN + 1,
                max: MAX_TEMPLATE_LEN
            }
        );
        assert!(Template::parse(&"x".repeat(MAX_TEMPLATE_LEN)).is_ok());
        let many = "{{.a}}".repeat(MAX_TEMPLATE_ACTIONS);
        assert!(Template::parse(&many).is_ok());
        let too_many = "{{.a}}".repeat(MAX_TEMPLATE_ACTIONS + 1);
        assert_eq!(
            err(&too_many),
            TemplateError::TooManyActions {
                offset: 6 * MAX_TEMPLATE_ACTIONS,
                max: MAX_TEMPLATE_ACTIONS
            }
        );
    }

    #[test]
    fn error_quotes_are_bounded() {
        let src = format!("{{{{ {} }}}}", "é".repeat(100));
        let TemplateError::Unsupported { action, .. } = err(&src) else {
            panic!("expected Unsupported");
        };
        assert!(action.len() <= MAX_QUOTED + '…'.len_utf8());
    }
}
