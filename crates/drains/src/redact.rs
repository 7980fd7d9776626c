//! Secrets in drain URLs are never shown back.
//!
//! A drain URL may carry a password (`https://user:secret@host/…`) and
//! token-like query values (`?token=…`). They are kept only in the
//! persisted definition (`drains/NAME.json`, mode 0600); everywhere a URL
//! is shown (`GET /v1/drains`, `sluice drain list`, `/routes`, errors, log
//! lines) it goes through [`url`] first: the password and the values of
//! [sensitive keys](is_secret_key) become `***`
//! (`https://user:***@host/…?token=***`). Error texts that might quote a
//! secret (a receiver's answer, a client library's message) go through
//! [`scrub`] with the drain's [`secrets`].

/// What replaces a secret.
pub const MASK: &str = "***";

/// Whether the value of query key `key` is a secret: `token`,
/// `access_token`, `api_key`, `apikey`, `key`, `password`, `passwd`,
/// `secret`, `signature`, `sig`, `auth`, and any key ending in `token`,
/// `secret`, `password`, `apikey` or `api_key` (case-insensitive, `-` and
/// `_` alike). Redis's `key=` is a list name, not a secret: `scheme` says
/// which scheme the URL has.
pub fn is_secret_key(scheme: &str, key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    if k == "key" {
        return !scheme.eq_ignore_ascii_case("redis");
    }
    matches!(
        k.as_str(),
        "token"
            | "access_token"
            | "api_key"
            | "apikey"
            | "password"
            | "passwd"
            | "pass"
            | "secret"
            | "signature"
            | "sig"
            | "auth"
            | "authorization"
            | "x_amz_signature"
            | "x_amz_credential"
            | "x_amz_security_token"
    ) || ["token", "secret", "password", "apikey", "api_key"]
        .iter()
        .any(|suffix| k.ends_with(suffix))
}

/// `raw` with its password and secret query values replaced by `***`;
/// everything else is kept as written. Works on text that is not a valid
/// URL too (it is what was given).
pub fn url(raw: &str) -> String {
    let cleaned = clean(raw);
    let (scheme, separator, after_scheme) = split_scheme(&cleaned);
    let mut out = String::with_capacity(cleaned.len());
    out.push_str(scheme);
    out.push_str(separator);
    // Authority: up to the first '/', '?' or '#'.
    let auth_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                // A lone userinfo is often a token (`https://TOKEN@host`).
                None if looks_like_token(userinfo) => out.push_str(MASK),
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((k, _)) if is_secret_key(scheme, &decode(k)) => {
                        out.push_str(k);
                        out.push('=');
                        out.push_str(MASK);
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(before_fragment),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// The secrets in `raw` (password, lone userinfo token, secret query
/// values), as written and percent-decoded, for [`scrub`].
pub fn secrets(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut push = |s: &str| {
        for v in [s.to_owned(), decode(s)] {
            if !v.is_empty() && !found.contains(&v) {
                found.push(v);
            }
        }
    };
    let cleaned = clean(raw);
    let (scheme, _, after_scheme) = split_scheme(&cleaned);
    let auth_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(auth_end);
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        match userinfo.split_once(':') {
            Some((_, password)) => push(password),
            None if looks_like_token(userinfo) => push(userinfo),
            None => {}
        }
    }
    let rest = rest.split_once('#').map_or(rest, |(b, _)| b);
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if is_secret_key(scheme, &decode(k)) {
                    push(v);
                }
            }
        }
    }
    // Longest first, so a secret containing another is masked whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found
}

/// `text` with every occurrence of each of `secrets` replaced by `***`.
/// Tabs and line breaks are dropped first, as [`secrets`] reads the URL
/// without them (and an error text is shown on one line anyway).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = clean(text);
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// `raw` as the `url` crate reads it: tabs and line breaks removed
/// anywhere, C0 controls and spaces trimmed at both ends. Without this a
/// secret key written `to<TAB>ken` would be missed here and still reach
/// the receiver as `token`.
fn clean(raw: &str) -> String {
    raw.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// (`scheme`, the separator `:` plus any slashes, the rest). The `url`
/// crate takes `https:/h`, `https:///h` and `https:\\h` as `https://h`, so
/// the authority starts after however many slashes follow the colon.
/// Text without a scheme is all rest.
fn split_scheme(text: &str) -> (&str, &str, &str) {
    let scheme_ok = |s: &str| {
        s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    };
    match text.split_once(':') {
        Some((scheme, after)) if scheme_ok(scheme) => {
            let slashes = after.len() - after.trim_start_matches(['/', '\\']).len();
            let colon = scheme.len();
            (scheme, &text[colon..colon + 1 + slashes], &after[slashes..])
        }
        _ => ("", "", text),
    }
}

/// A userinfo without a password that is long and random-looking enough
/// to be a token rather than a user name.
fn looks_like_token(userinfo: &str) -> bool {
    userinfo.len() >= 20
}

/// Percent-decoding (and `+` as a space), lossy.
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("k={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_spellings_the_url_crate_accepts_are_masked_too() {
        for (raw, secret) in [
            ("https:/u:secret@h/x", "secret"),
            ("https:///u:secret@h:0/", "secret"),
            ("https:/h/x?a=b://c&token=abcd", "abcd"),
            ("https://h/x?to\tken=abcd", "abcd"),
            ("tcp:/?e&key\r=a:/e@", "a:/e@"),
            (" https://u:secret@h/ ", "secret"),
        ] {
            let shown = url(raw);
            assert!(!shown.contains(secret), "{raw:?} → {shown:?}");
            assert!(
                secrets(raw).iter().any(|s| s == secret),
                "{raw:?}: {:?}",
                secrets(raw)
            );
        }
        assert_eq!(url("https:/u:secret@h/x"), "https:/u:***@h/x");
    }

    #[test]
    fn passwords_and_tokens_are_masked() {
        assert_eq!(
            url("https://user:s3cret@logs.example.com/in?token=abc&app=web&Api-Key=k"),
            "https://user:***@logs.example.com/in?token=***&app=web&Api-Key=***"
        );
        assert_eq!(
            url("syslog-tls://h:6514?ca=/d/ca.pem&cert=/d/c.pem&key=/d/c.key"),
            "syslog-tls://h:6514?ca=/d/ca.pem&cert=/d/c.pem&key=***"
        );
        // Redis's key is a list name; its password is not shown.
        assert_eq!(
            url("redis://:pw@127.0.0.1:6379/0?key=hist&limit=10"),
            "redis://:***@127.0.0.1:6379/0?key=hist&limit=10"
        );
        for (raw, shown) in [
            ("https://h/x?access_token=1&sig=2&signature=3&auth=4&password=5&secret=6&apikey=7&api_key=8&client_secret=9&x-amz-security-token=10", "https://h/x?access_token=***&sig=***&signature=***&auth=***&password=***&secret=***&apikey=***&api_key=***&client_secret=***&x-amz-security-token=***"),
            ("https://h/x?to%6Ben=1", "https://h/x?to%6Ben=***"),
            ("https://0123456789abcdef0123@h/x", "https://***@h/x"),
            ("https://bob@h/x#token=frag", "https://bob@h/x#token=frag"),
            ("file:///var/log/x.log", "file:///var/log/x.log"),
            ("not a url ?token=x", "not a url ?token=***"),
            ("syslog://h:1", "syslog://h:1"),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn secrets_are_scrubbed_from_texts() {
        let s = secrets("https://u:p%40ss@h/x?token=t0k3n&key=kk&app=web");
        assert!(s.contains(&"p%40ss".to_owned()) && s.contains(&"p@ss".to_owned()));
        assert!(s.contains(&"t0k3n".to_owned()) && s.contains(&"kk".to_owned()));
        assert!(!s.contains(&"web".to_owned()));
        assert_eq!(
            scrub("POST failed: bad token t0k3n for p@ss", &s),
            "POST failed: bad token *** for ***"
        );
        assert!(secrets("redis://h/0?key=hist").is_empty());
    }
}
