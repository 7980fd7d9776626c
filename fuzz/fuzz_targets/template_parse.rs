//! `Template::parse` must accept any UTF-8 without panicking, and a
//! template it accepts must render without panicking.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codec::template::Template;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse(src) else {
        return;
    };
    let mut env = envelope::Envelope::log(
        1_795_266_898_123_456_789,
        "app-guid",
        "0",
        Bytes::from_static(b"Started GET \"/\"\n"),
        envelope::LogType::Out,
    );
    env.tags.insert("source_type".into(), "APP/PROC/WEB".into());
    env.tags.insert("app_name".into(), "my app".into());
    let mut out = Vec::new();
    template.render(&env, &mut out);
    if !src.contains("{{") {
        assert_eq!(out, src.as_bytes());
    }
});
