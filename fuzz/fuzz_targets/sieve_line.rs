//! A host log line (anyone who can write to syslog chooses it) through the
//! agent's sieve with its default rules: no panic, events bounded, every
//! event typed and tagged.
#![no_main]

use agent::sieve::{default_rules, Sieve};
use libfuzzer_sys::fuzz_target;

/// Compiled once: the rules are fixed, the lines are the input.
static SIEVE: std::sync::OnceLock<Sieve> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let sieve =
        SIEVE.get_or_init(|| Sieve::new(default_rules()).expect("the default rules compile"));
    for event in sieve.events(data, "node", 1) {
        assert!(event.tag("severity").is_some());
        if let Some(envelope::v2::Message::Event(e)) = &event.message {
            assert!(e.body.len() <= 4096);
        } else {
            panic!("the sieve made something other than an event");
        }
    }
});
