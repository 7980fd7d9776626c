//! `syslog::parse` must accept any bytes without panicking, and what it
//! returns must borrow from (and fit inside) the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_codec::syslog::{parse, SyslogFormat};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes (if any) pick "now", for BSD year inference.
    let now = data
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_le_bytes);
    let msg = parse(data, now);
    assert!(msg.message.len() <= data.len());
    assert!(msg.priority.is_none_or(|p| p <= 191));
    if msg.format == SyslogFormat::Raw {
        assert!(msg.priority.is_none() && msg.hostname.is_none());
    }
    let _ = (msg.severity(), msg.facility());
});
