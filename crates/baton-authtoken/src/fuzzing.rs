//! Entry point for the `authtoken_headers` fuzz target in `fuzz/` and for replaying its corpus
//! in the normal test suite (`tests/authtoken`). Not part of the crate's API.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::access_rules::path_matches;
use crate::authenticator::{read_token, Presented, MAX_TOKEN_BYTES};
use crate::context::{is_identity_header, is_token_header, strip_token_headers};
use crate::memcache_crypt::{entry_keys, Strategy};
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
/// * stripping the token headers leaves none in any spelling;
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
    let mut no_tokens = stripped;
    strip_token_headers(&mut no_tokens);
    assert!(no_tokens.keys().all(|k| !is_token_header(k.as_str())));

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
