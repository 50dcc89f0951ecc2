//! Entry point for the `authtoken_headers` fuzz target in `fuzz/` and for replaying its corpus
//! in the normal test suite (`tests/authtoken`). Not part of the crate's API.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::access_rules::path_matches;
use crate::authenticator::{read_token, read_tokens, Presented, MAX_TOKEN_BYTES};
use crate::context::{is_identity_header, is_token_header, strip_token_headers, IdentityContext};
use crate::memcache_crypt::{entry_keys, Strategy};
use crate::reason::IdentityStatus;
use crate::strip_identity_headers;

/// The headers of a request as the fuzzer spells them: one `name:value` per line; lines that
/// are not a valid header are skipped, as hyper would have refused them.
fn headers_of(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    headers
}

/// What the middleware does with a request's headers before and after validation, and with a
/// memcached entry it reads back:
/// * stripping leaves no identity header in any spelling and every other header untouched
///   (`X-Service-Token` included);
/// * stripping the token headers leaves none in any spelling, and leaving only the tokens read
///   ends the same with or without the layer's shortcut;
/// * a token read from a header is its trimmed, non-empty, bounded visible-ASCII value;
/// * an access rule's path pattern without wildcards matches itself;
/// * a memcached entry that was not written with the key is refused (MAC and ENCRYPT), and
///   one that was comes back unchanged.
pub fn headers(data: &[u8]) {
    let original = headers_of(data);
    let mut stripped = original.clone();
    let removed = strip_identity_headers(&mut stripped);
    assert!(stripped.keys().all(|k| !is_identity_header(k.as_str())));
    for (name, value) in &original {
        if !is_identity_header(name.as_str()) {
            assert!(stripped.get_all(name).iter().any(|v| v == value));
        }
    }
    let identity_names = original.keys().filter(|k| is_identity_header(k.as_str()));
    assert_eq!(removed, identity_names.count());

    for name in crate::context::TOKEN_HEADERS {
        match read_token(&original, name) {
            Presented::Token(t) => {
                let text = t.expose();
                assert!(!text.is_empty() && text.len() <= MAX_TOKEN_BYTES);
                assert_eq!(text, text.trim());
            }
            Presented::Absent | Presented::Malformed(_) => {}
        }
    }
    let mut no_tokens = stripped.clone();
    strip_token_headers(&mut no_tokens);
    assert!(no_tokens.keys().all(|k| !is_token_header(k.as_str())));
    only_read_tokens_forwarded(&stripped);

    let text = String::from_utf8_lossy(data);
    let (path, pattern) = text.split_once('\n').unwrap_or((&text, "/**"));
    let _ = path_matches(path, pattern);
    if !pattern.contains(['*', '{', '}']) {
        assert!(
            path_matches(pattern, pattern),
            "{pattern:?} must match itself"
        );
    }
    memcache_entry(data);
}

/// The layer's shortcut (`keep_only_read_tokens` leaves a request alone when its token headers
/// already are exactly the tokens read) ends where stripping and restoring them would.
fn only_read_tokens_forwarded(headers: &HeaderMap) {
    let context = context_of(headers);
    let mut kept = headers.clone();
    context.keep_only_read_tokens(&mut kept);
    let mut restored = headers.clone();
    strip_token_headers(&mut restored);
    context.restore_token_headers(&mut restored);
    assert!(
        kept == restored,
        "the shortcut forwards other token headers"
    );
}

/// An unconfirmed context holding the tokens the layer reads from `headers`.
fn context_of(headers: &HeaderMap) -> IdentityContext {
    let (user, user_token_header, service) = read_tokens(headers);
    let token = |p: Presented| match p {
        Presented::Token(t) => Some(t),
        Presented::Absent | Presented::Malformed(_) => None,
    };
    IdentityContext {
        identity_status: IdentityStatus::Invalid,
        service_identity_status: None,
        user: None,
        service: None,
        service_role_check_passed: false,
        failure_reasons: Vec::new(),
        user_token: token(user),
        service_token: token(service),
        user_token_header,
    }
}

fn memcache_entry(data: &[u8]) {
    for strategy in [Strategy::Mac, Strategy::Encrypt] {
        let keys = entry_keys("fuzz-token", b"fuzz-secret", strategy);
        assert!(
            keys.unprotect(data).is_err(),
            "forged {strategy:?} entry accepted"
        );
        let stored = keys.protect(data);
        assert_eq!(keys.unprotect(&stored).ok().as_deref(), Some(data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut is taken exactly for a request carrying one value of each token read, in
    /// the spelling read, and every request ends as stripping and restoring would leave it.
    #[test]
    fn the_token_shortcut_ends_where_strip_and_restore_end() {
        let cases = [
            (
                "x-auth-token:user-token\nx-service-token:service-token\nhost:a",
                true,
            ),
            ("x-auth-token:user-token\nhost:a", true),
            (
                "x-storage-token:user-token\nx-service-token:service-token",
                true,
            ),
            ("x-auth-token:user-token\nx-auth-token:other-token", false),
            (
                "x-auth-token:user-token\nx_auth_token:other-token\nx-service-token:s",
                false,
            ),
            (
                "x-storage-token:storage-token\nx-auth-token:user-token",
                false,
            ),
            (
                "x-service-token:service-token\nx-service_token:other",
                false,
            ),
            ("x-service-token:service-token", true),
            ("x-auth-token: \nx-service-token:service-token", false),
        ];
        for (lines, shortcut) in cases {
            let headers = headers_of(lines.as_bytes());
            assert_eq!(
                context_of(&headers).only_read_tokens(&headers),
                shortcut,
                "{lines}"
            );
            only_read_tokens_forwarded(&headers);
        }
    }
}
