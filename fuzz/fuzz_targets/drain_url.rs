//! Arbitrary UTF-8 to the drain URL parser (`sluice drain add`,
//! `POST /v1/drains`, logspout's `POST /routes`):
//!
//! - for a URL `DrainUrl::parse` accepts, or refuses with an error that
//!   quotes it, `redact::url` (what lists, the API and errors show) and
//!   `redact::scrub` with `redact::secrets` (what error texts go through)
//!   never show its password or the value of a secret query key, nor does
//!   the error;
//! - for what `DrainUrl::parse` accepts, a `file://` path is absolute with
//!   no `.` or `..` component, and so is every path `paths::normalize`
//!   returns (for the input itself and the `ca=`/`cert=`/`key=` paths).
//!
//! The password and query values are taken from the `url` crate, not from
//! `redact`'s own splitting, and checked only where that cannot give a
//! false alarm: the secret is written in the input exactly as the `url`
//! crate reads it (nothing percent-encoded on the way), is at least 4
//! bytes, has no `*` (the mask), and occurs exactly once in the input.
#![no_main]

use std::path::{Component, Path};

use drains::spec::{DrainUrl, SpecError, Target};
use drains::{paths, redact};
use libfuzzer_sys::fuzz_target;

/// What a reader sees of a URL: the `url` crate drops ASCII tabs and
/// newlines anywhere in its input, so a secret split by them is still the
/// secret.
fn seen(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], "")
}

/// Occurrences of `needle` in `haystack`, overlapping ones included.
fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack
        .char_indices()
        .filter(|(i, _)| haystack[*i..].starts_with(needle))
        .count()
}

/// Absolute, and nothing but names after the root.
fn assert_normal(p: &Path, what: &str) {
    let mut parts = p.components();
    assert_eq!(
        parts.next(),
        Some(Component::RootDir),
        "{what} {p:?} is not absolute"
    );
    for part in parts {
        assert!(
            matches!(part, Component::Normal(_)),
            "{what} {p:?} has a {part:?} component"
        );
    }
    let text = p.to_string_lossy();
    assert!(
        !text.split('/').any(|c| c == ".." || c == "."),
        "{what} {text:?} has a . or .. component"
    );
}

fn normalize_checked(p: &Path, what: &str) {
    if let Some(n) = paths::normalize(p) {
        assert_normal(&n, what);
        assert_eq!(
            paths::normalize(&n).as_ref(),
            Some(&n),
            "normalize is not idempotent on {n:?}"
        );
    }
}

/// Whether checking `secret` cannot give a false alarm.
fn checkable(raw_seen: &str, secret: &str) -> bool {
    secret.len() >= 4 && !secret.contains('*') && occurrences(raw_seen, secret) == 1
}

fn assert_hidden(raw: &str, secret: &str, what: &str) {
    let redacted = redact::url(raw);
    assert!(
        !seen(&redacted).contains(secret),
        "redact::url shows the {what} {secret:?} of {raw:?}: {redacted:?}"
    );
    let scrubbed = redact::scrub(raw, &redact::secrets(raw));
    assert!(
        !seen(&scrubbed).contains(secret),
        "scrub(secrets) shows the {what} {secret:?} of {raw:?}: {scrubbed:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // The normaliser on its own, with the input taken as a path.
    normalize_checked(Path::new(raw), "normalize(input)");
    // Redaction takes any text, URL or not.
    let _ = redact::url(raw);
    let _ = redact::scrub(raw, &redact::secrets(raw));

    // Secrets as the url crate reads them, where it reads a URL at all.
    // They are checked where sluice shows the URL: for drains it accepts
    // (lists, status, the API) and in the errors for URLs it refuses.
    let mut secrets = Vec::new();
    if let Ok(url) = url::Url::parse(raw) {
        let raw_seen = seen(raw);
        if let Some(password) = url.password() {
            // As the url crate holds it: percent-encoded. When it has no
            // '%', nothing was encoded and the input holds it as is; when
            // the input has no '%' at all, decoding gives back what was
            // written.
            let secret = if !password.contains('%') {
                Some(password.to_owned())
            } else if !raw.contains('%') {
                Some(
                    percent_encoding::percent_decode_str(password)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            } else {
                None
            };
            if let Some(secret) = secret.filter(|s| checkable(&raw_seen, s)) {
                secrets.push(("password".to_owned(), secret));
            }
        }
        // Query values are decoded ('%XX' and '+'): only when the input
        // has neither are they as written.
        if !raw.contains(['%', '+']) {
            for (key, value) in url.query_pairs() {
                if redact::is_secret_key(url.scheme(), &key) && checkable(&raw_seen, &value) {
                    secrets.push((format!("{key:?} value"), value.into_owned()));
                }
            }
        }
    }

    let drain = match DrainUrl::parse(raw) {
        Ok(drain) => {
            for (what, secret) in &secrets {
                assert_hidden(raw, secret, what);
            }
            drain
        }
        // An unknown scheme or a bad name is told without the URL.
        Err(e @ (SpecError::Scheme(_) | SpecError::Name(_))) => {
            let _ = e.to_string();
            return;
        }
        Err(e) => {
            for (what, secret) in &secrets {
                assert_hidden(raw, secret, what);
            }
            // The error quotes the URL redacted (Debug-escaped), and its
            // reason may quote a decoded query key or value: only secrets
            // that escaping cannot touch, in inputs with nothing decoded.
            let text = e.to_string();
            if !raw.contains(['%', '+']) {
                for (what, secret) in &secrets {
                    if secret
                        .chars()
                        .all(|c| !c.is_control() && c != '\\' && c != '"')
                    {
                        assert!(
                            !text.contains(secret.as_str()),
                            "the error for {raw:?} shows its {what} {secret:?}: {text}"
                        );
                    }
                }
            }
            return;
        }
    };
    if let Target::File(file) = &drain.target {
        assert_normal(Path::new(&file.path), "file drain path");
        assert!(!file.path.contains('\0'));
    }
    for (_, p) in drain.tls().into_iter().flat_map(|tls| tls.named()) {
        normalize_checked(p, "TLS file path");
    }
});
