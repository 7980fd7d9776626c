//! How writers turn an entry into the bytes of one message: an RFC 5424
//! message as Loggregator writes it (syslog schemes and HTTPS frames), or
//! the drain's format rendering (plain line schemes, files, Redis).
//!
//! **One record, one line.** For the line-based schemes (`tcp://`,
//! `udp://`, `file://`) a record must not be able to forge further lines:
//! CR, LF and NUL inside a rendered record are written as the two
//! characters `\r`, `\n` and `\0` ([`escape_line_breaks`]). A backslash is
//! written as it is, so the escaping is not reversible (a payload holding
//! the two characters `\n` reads the same as one holding a line break);
//! it only guarantees that one message is one line. Syslog schemes and
//! HTTPS keep their octet-counted framing, which carries any byte safely;
//! Redis list elements are separate values, and its default JSON records
//! escape control characters anyway.
//!
//! **Bounded records.** Every rendered record is at most the drain's
//! `max_record` bytes (`[drains] max_record`); longer ones are cut and
//! counted as `sluice_dropped_total{reason="truncated"}`. Writers size
//! what they send at once by these rendered bytes (see
//! [`super::DrainWriter::send`]), so a template that repeats a large
//! field cannot blow up memory or output.

use std::sync::Arc;

use envelope::Entry;
use metrics::Metrics;

use crate::format::{cap, Format};

/// Writes RFC 5424 messages in Loggregator's drain format; the drain's
/// format, when it has one, replaces the MSG part.
pub(super) struct SyslogEncoder {
    format: Option<Format>,
    encoder: codec::loggregator::LoggregatorEncoder,
    custom: Vec<u8>,
    message: Vec<u8>,
    max_record: usize,
    metrics: Arc<Metrics>,
}

impl SyslogEncoder {
    /// `omit_metadata`: the URL's `omit-metadata=` (no structured data).
    pub(super) fn new(ctx: &super::WriterContext, omit_metadata: bool) -> Self {
        SyslogEncoder {
            format: ctx.format.clone(),
            encoder: codec::loggregator::LoggregatorEncoder::new(
                omit_metadata,
                (*ctx.syslog_extras).clone(),
            ),
            custom: Vec::new(),
            message: Vec::new(),
            max_record: ctx.max_record,
            metrics: Arc::clone(&ctx.metrics),
        }
    }

    /// Appends one message (with its trailing LF, no framing), at most
    /// `max_record` bytes in all; whether it was cut (and counted).
    pub(super) fn message(&mut self, entry: &Entry, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let custom = match &self.format {
            Some(format) => {
                self.custom.clear();
                format.render_capped(&entry.envelope, &mut self.custom, self.max_record);
                Some(self.custom.as_slice())
            }
            None => None,
        };
        self.encoder.encode(&entry.envelope, custom, out);
        let cut = out.len() - start > self.max_record;
        if cut {
            cap(out, start, self.max_record.saturating_sub(1));
            out.push(b'\n');
            self.metrics.count_drop("truncated", 1);
        }
        cut
    }

    /// Appends one octet-counted frame: `LEN SP MSG`, MSG ending in LF.
    pub(super) fn frame(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        let mut message = std::mem::take(&mut self.message);
        message.clear();
        self.message(entry, &mut message);
        codec::rfc5424::octet_count_frame(out, &message);
        self.message = message;
    }
}

/// Renders entries in the drain's format (a default when it has none),
/// each at most `max_record` bytes.
pub(super) struct LineEncoder {
    format: Format,
    /// Escape CR, LF and NUL (line-based schemes).
    escape: bool,
    max_record: usize,
    metrics: Arc<Metrics>,
}

impl LineEncoder {
    /// `escape`: whether CR, LF and NUL are escaped (see the module docs).
    pub(super) fn new(ctx: &super::WriterContext, default: Format, escape: bool) -> Self {
        LineEncoder {
            format: ctx.format.clone().unwrap_or(default),
            escape,
            max_record: ctx.max_record,
            metrics: Arc::clone(&ctx.metrics),
        }
    }

    /// Appends the rendering, no terminator; whether it was cut (and
    /// counted).
    pub(super) fn render(&self, entry: &Entry, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let mut cut = self
            .format
            .render_capped(&entry.envelope, out, self.max_record);
        if self.escape {
            escape_line_breaks(out, start);
            // Escaping may have grown the record past the cap again.
            cut |= cap(out, start, self.max_record);
            // Never end on half an escape.
            if cut && out.len() > start && out.last() == Some(&b'\\') {
                let backslashes = out[start..]
                    .iter()
                    .rev()
                    .take_while(|b| **b == b'\\')
                    .count();
                if backslashes % 2 == 1 {
                    out.pop();
                }
            }
        }
        if cut {
            self.metrics.count_drop("truncated", 1);
        }
        cut
    }

    /// Appends the rendering and a LF.
    pub(super) fn line(&self, entry: &Entry, out: &mut Vec<u8>) {
        self.render(entry, out);
        out.push(b'\n');
    }
}

/// Escapes CR, LF and NUL in `out[start..]` as `\r`, `\n` and `\0`.
pub fn escape_line_breaks(out: &mut Vec<u8>, start: usize) {
    let Some(first) = out[start..]
        .iter()
        .position(|b| matches!(b, b'\r' | b'\n' | 0))
    else {
        return;
    };
    let tail = out.split_off(start + first);
    out.reserve(tail.len() + 16);
    for b in tail {
        match b {
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0 => out.extend_from_slice(b"\\0"),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_are_escaped() {
        let mut out = b"keep\n".to_vec();
        let start = out.len();
        out.extend_from_slice(b"a\nforged line\r\0 back\\slash");
        escape_line_breaks(&mut out, start);
        assert_eq!(out, b"keep\na\\nforged line\\r\\0 back\\slash".to_vec());
        let mut plain = b"nothing to do".to_vec();
        escape_line_breaks(&mut plain, 0);
        assert_eq!(plain, b"nothing to do");
    }
}
