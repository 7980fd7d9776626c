//! A subject token of the cluster's stream (`sluice.log.<kind>.<token>`,
//! read back as a source id by `/api/v1/meta`) from any text: `untoken`
//! never panics, and what it accepts is exactly what `token` makes of the
//! id it returns; any id's token is a literal NATS token (no `.`, `*`,
//! `>`, white space) that reads back to the id.
#![no_main]

use cluster::subject::{token, untoken};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = untoken(text) {
        assert_eq!(token(&id), text);
    }
    let t = token(text);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(untoken(&t).as_deref(), Some(text));
});
