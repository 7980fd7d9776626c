//! Arbitrary bytes to the Log Cache JSON envelope decoder (`POST /logs`
//! NDJSON lines, `sluice logs` streams). Anything it accepts must encode
//! and decode back to the same envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = envelope::json::from_json(data) {
        let again = envelope::json::to_json(&env);
        let back = envelope::json::from_json(again.as_bytes()).expect("own JSON decodes");
        // NaN gauge values never compare equal; compare the re-encoding.
        assert_eq!(envelope::json::to_json(&back), again);
    }
    let _ = envelope::json::batch_from_json(data);
});
