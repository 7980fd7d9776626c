//! How writers turn an entry into the bytes of one message: an RFC 5424
//! message as Loggregator writes it (syslog schemes and HTTPS frames), or
//! the drain's format rendering (plain line schemes, files, Redis).

use envelope::Entry;

use crate::format::Format;

/// Writes RFC 5424 messages in Loggregator's drain format; the drain's
/// format, when it has one, replaces the MSG part.
pub(super) struct SyslogEncoder {
    format: Option<Format>,
    encoder: codec::loggregator::LoggregatorEncoder,
    custom: Vec<u8>,
    message: Vec<u8>,
}

impl SyslogEncoder {
    pub(super) fn new(ctx: &super::WriterContext) -> Self {
        SyslogEncoder {
            format: ctx.format.clone(),
            encoder: codec::loggregator::LoggregatorEncoder::new(
                ctx.url.omit_metadata,
                (*ctx.syslog_extras).clone(),
            ),
            custom: Vec::new(),
            message: Vec::new(),
        }
    }

    /// Appends one message (with its trailing LF, no framing).
    pub(super) fn message(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        let custom = match &self.format {
            Some(format) => {
                self.custom.clear();
                format.render(&entry.envelope, &mut self.custom);
                Some(self.custom.as_slice())
            }
            None => None,
        };
        self.encoder.encode(&entry.envelope, custom, out);
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

/// Renders entries in the drain's format (a default when it has none).
pub(super) struct LineEncoder {
    format: Format,
}

impl LineEncoder {
    pub(super) fn new(format: Option<Format>, default: Format) -> Self {
        LineEncoder {
            format: format.unwrap_or(default),
        }
    }

    /// Appends the rendering, no terminator.
    pub(super) fn render(&self, entry: &Entry, out: &mut Vec<u8>) {
        self.format.render(&entry.envelope, out);
    }

    /// Appends the rendering and a LF.
    pub(super) fn line(&self, entry: &Entry, out: &mut Vec<u8>) {
        self.render(entry, out);
        out.push(b'\n');
    }
}
