//! OAuth 1.0a request signatures (RFC 5849) as Keystone checks them through oauthlib for the
//! OS-OAUTH1 request-token, access-token and `oauth1` authentication calls: the parameters of
//! the `Authorization: OAuth ...` header and the query string, the signature base string, and
//! `HMAC-SHA1`, `HMAC-SHA256`, `HMAC-SHA512` or `PLAINTEXT` keyed with the consumer's and the
//! token's secrets. Comparison is constant-time.
//!
//! The checks that oauthlib makes before looking at the signature, with its descriptions (which
//! Keystone puts in its 400), are here too: [`OAuthRequest::check_mandatory`].

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use subtle::ConstantTimeEq;

/// What oauthlib accepts in `oauth_signature_method` (the RSA ones need a consumer key pair,
/// which Keystone never has, so they always fail the signature check).
pub const SIGNATURE_METHODS: [&str; 7] = [
    "HMAC-SHA1",
    "HMAC-SHA256",
    "HMAC-SHA512",
    "RSA-SHA1",
    "RSA-SHA256",
    "RSA-SHA512",
    "PLAINTEXT",
];

/// How far `oauth_timestamp` may be from now (oauthlib's `timestamp_lifetime`).
pub const TIMESTAMP_LIFETIME_SECS: i64 = 600;

/// RFC 5849 section 3.6: everything but ALPHA, DIGIT, `-`, `.`, `_` and `~` is encoded.
const RFC5849: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request check failed the way oauthlib fails it: `error` and `description` are what
/// Keystone reports in `Validation failed with errors: {error}, detail message is:
/// {description}.`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Validation failed with errors: {error}, detail message is: {description}.")]
pub struct OAuthError {
    /// oauthlib's error code (`invalid_request`, `invalid_signature_method`).
    pub error: &'static str,
    /// oauthlib's description.
    pub description: String,
}

/// oauthlib's `InvalidRequestError` with `description`.
pub fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError {
        error: "invalid_request",
        description: description.into(),
    }
}

/// The OAuth parameters of one request and everything that is signed.
#[derive(Debug, Clone)]
pub struct OAuthRequest {
    /// The `oauth_*` parameters of the `Authorization` header, decoded.
    pub oauth: Vec<(String, String)>,
    /// Every signed parameter (header without `realm` and `oauth_signature`, then query).
    signed: Vec<(String, String)>,
}

/// Splits the `Authorization` header's parameter list like Python's `parse_http_list`: commas
/// outside double quotes separate items, backslash escapes inside quotes.
fn split_http_list(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escape) = (false, false);
    for c in s.chars() {
        if escape {
            cur.push(c);
            escape = false;
        } else if quoted && c == '\\' {
            escape = true;
        } else if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c == ',' && !quoted {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect()
}

/// The parameters of an `Authorization: OAuth k="v", ...` header as oauthlib's
/// `parse_authorization_header` reads them (quotes stripped, not yet percent-decoded), or
/// `None` when the header is not an OAuth one or an item has no `=`.
pub fn parse_authorization(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("oauth "))
        .map(|_| &header[6..])?;
    let mut out: Vec<(String, String)> = Vec::new();
    for item in split_http_list(rest) {
        let (k, v) = item.split_once('=')?;
        let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner,
            None => v,
        };
        // Python's parse_keqv_list builds a dict: a repeated key keeps its last value.
        out.retain(|(old, _)| old != k);
        out.push((k.to_string(), v.to_string()));
    }
    Some(out)
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl OAuthRequest {
    /// Collects the signed parameters of a request from its parsed `Authorization` header and
    /// its raw query string (`None` without one). Only the header may carry `oauth_`
    /// parameters: Keystone's clients send them there, and oauthlib refuses them in two places.
    pub fn new(header: Vec<(String, String)>, query: Option<&str>) -> Result<Self, OAuthError> {
        let query: Vec<(String, String)> = query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if header.is_empty() {
            return Err(invalid("Missing mandatory OAuth parameters."));
        }
        if query.iter().any(|(k, _)| k.starts_with("oauth_")) {
            return Err(invalid(
                "oauth_ params must come from only 1 signaturetype but were found in header, query",
            ));
        }
        let oauth: Vec<(String, String)> = header
            .iter()
            .filter(|(k, _)| k.starts_with("oauth_"))
            .map(|(k, v)| (k.clone(), decode(v)))
            .collect();
        if oauth.is_empty() {
            return Err(invalid("Missing mandatory OAuth parameters."));
        }
        let mut signed: Vec<(String, String)> = header
            .into_iter()
            .filter(|(k, _)| k != "realm" && k != "oauth_signature")
            .map(|(k, v)| {
                let v = if k.starts_with("oauth_") {
                    decode(&v)
                } else {
                    v
                };
                (k, v)
            })
            .collect();
        signed.extend(query);
        Ok(OAuthRequest { oauth, signed })
    }

    /// The value of one `oauth_` parameter; an empty one counts as absent, as in oauthlib.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.oauth, name)
    }

    /// oauthlib's `_check_mandatory_parameters`, in its order: the five mandatory parameters,
    /// the signature method, `oauth_version`, the timestamp (ten digits, within
    /// [`TIMESTAMP_LIFETIME_SECS`] of `now`), then Keystone's key and nonce formats (32 and
    /// any number of lowercase hex digits).
    pub fn check_mandatory(&self, now: i64) -> Result<(), OAuthError> {
        let mandatory = [
            "oauth_signature",
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_timestamp",
            "oauth_signature_method",
        ];
        if mandatory.iter().any(|p| self.param(p).is_none()) {
            return Err(invalid("Missing mandatory OAuth parameters."));
        }
        let method = self.param("oauth_signature_method").unwrap_or_default();
        if !SIGNATURE_METHODS.contains(&method) {
            return Err(OAuthError {
                error: "invalid_signature_method",
                description: format!(
                    "Invalid signature, {method} not in ({}).",
                    SIGNATURE_METHODS
                        .iter()
                        .map(|m| format!("'{m}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if let Some((_, v)) = self.oauth.iter().find(|(k, _)| k == "oauth_version") {
            if v != "1.0" {
                return Err(invalid("Invalid OAuth version."));
            }
        }
        let timestamp = self.param("oauth_timestamp").unwrap_or_default();
        if timestamp.chars().count() != 10 {
            return Err(invalid("Invalid timestamp size"));
        }
        let Ok(ts) = timestamp.trim().parse::<i64>() else {
            return Err(invalid("Timestamp must be an integer."));
        };
        if (now - ts).abs() > TIMESTAMP_LIFETIME_SECS {
            return Err(invalid(format!(
                "Timestamp given is invalid, differ from allowed by over {TIMESTAMP_LIFETIME_SECS} seconds."
            )));
        }
        if !is_key(self.param("oauth_consumer_key").unwrap_or_default()) {
            return Err(invalid("Invalid client key format."));
        }
        if !is_hex(self.param("oauth_nonce").unwrap_or_default()) {
            return Err(invalid("Invalid nonce format."));
        }
        Ok(())
    }

    /// Whether `oauth_signature` signs this request, sent with `http_method` to `uri` (the
    /// URL as the client addressed it), with the consumer's secret and the request or access
    /// token's secret (none when asking for a request token).
    pub fn signature_matches(
        &self,
        http_method: &str,
        uri: &str,
        client_secret: &str,
        token_secret: Option<&str>,
    ) -> bool {
        let Some(given) = self.param("oauth_signature") else {
            return false;
        };
        let method = self.param("oauth_signature_method").unwrap_or_default();
        match self.signature(method, http_method, uri, client_secret, token_secret) {
            Some(expected) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
            None => false,
        }
    }

    /// The signature of this request by `method` (none for a method Keystone cannot check).
    fn signature(
        &self,
        method: &str,
        http_method: &str,
        uri: &str,
        client_secret: &str,
        token_secret: Option<&str>,
    ) -> Option<String> {
        let key = format!(
            "{}&{}",
            escape(client_secret),
            escape(token_secret.unwrap_or_default())
        );
        match method {
            "PLAINTEXT" => Some(key),
            method => hmac_b64(method, &key, &self.base_string(http_method, uri)),
        }
    }

    /// RFC 5849 section 3.4.1: `METHOD&uri&params`, each part encoded.
    fn base_string(&self, http_method: &str, uri: &str) -> String {
        let mut pairs: Vec<(String, String)> = self
            .signed
            .iter()
            .map(|(k, v)| (escape(k), escape(v)))
            .collect();
        pairs.sort();
        let normalized = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        format!(
            "{}&{}&{}",
            escape(&http_method.to_ascii_uppercase()),
            escape(&base_string_uri(uri)),
            escape(&normalized)
        )
    }
}

/// Signs a request as keystoneclient does (`HMAC-SHA1`, parameters in the header): `oauth`
/// are the `oauth_*` parameters to send (consumer key, token, verifier, callback); the nonce,
/// timestamp, version and method are added. Returns the `Authorization` header's value.
pub fn sign(
    http_method: &str,
    uri: &str,
    mut oauth: Vec<(String, String)>,
    now: i64,
    client_secret: &str,
    token_secret: Option<&str>,
) -> String {
    let nonce: String = uuid::Uuid::new_v4().simple().to_string();
    oauth.extend([
        ("oauth_nonce".to_string(), nonce),
        ("oauth_timestamp".to_string(), now.to_string()),
        ("oauth_version".to_string(), "1.0".to_string()),
        (
            "oauth_signature_method".to_string(),
            "HMAC-SHA1".to_string(),
        ),
    ]);
    let mut signed = oauth.clone();
    if let Some((_, query)) = uri.split_once('?') {
        signed.extend(
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    let req = OAuthRequest {
        oauth: oauth.clone(),
        signed,
    };
    let signature = req
        .signature("HMAC-SHA1", http_method, uri, client_secret, token_secret)
        .unwrap_or_default();
    oauth.push(("oauth_signature".to_string(), signature));
    let fields: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", escape(k), escape(v)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// The value of parameter `name`; an empty one counts as absent, as in oauthlib.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Keystone's key format: 32 lowercase hex digits.
pub fn is_key(s: &str) -> bool {
    s.len() == 32 && is_hex(s)
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn escape(s: &str) -> String {
    utf8_percent_encode(s, RFC5849).to_string()
}

/// The base64 HMAC of `text` under `key` with the named digest.
fn hmac_b64(method: &str, key: &str, text: &str) -> Option<String> {
    macro_rules! mac {
        ($digest:ty) => {{
            let mut mac = Hmac::<$digest>::new_from_slice(key.as_bytes()).ok()?;
            mac.update(text.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }};
    }
    let bytes = match method {
        "HMAC-SHA1" => mac!(sha1::Sha1),
        "HMAC-SHA256" => mac!(sha2::Sha256),
        "HMAC-SHA512" => mac!(sha2::Sha512),
        _ => return None,
    };
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// RFC 5849 section 3.4.1.2: scheme and host in lower case, the default port dropped, no
/// query or fragment.
fn base_string_uri(uri: &str) -> String {
    let uri = uri.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let mut host = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    if let Some(port) = default_port {
        if let Some(stripped) = host.strip_suffix(port) {
            host = stripped.to_string();
        }
    }
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5849 section 1.2's worked example (HMAC-SHA1 over a header and a query).
    #[test]
    fn rfc5849_example_signature() {
        let header = parse_authorization(
            r#"OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131202", oauth_nonce="chapoH", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D""#,
        )
        .unwrap();
        let req = OAuthRequest::new(header, Some("file=vacation.jpg&size=original")).unwrap();
        assert!(req.signature_matches(
            "GET",
            "http://photos.example.net/photos?file=vacation.jpg&size=original",
            "kd94hf93k423kf44",
            Some("pfkkdhi9sl3r4s00"),
        ));
        assert!(!req.signature_matches(
            "GET",
            "http://photos.example.net/photos",
            "kd94hf93k423kf44",
            Some("wrong"),
        ));
        assert_eq!(req.param("oauth_nonce"), Some("chapoH"));
    }

    #[test]
    fn what_sign_writes_verifies() {
        let key = "0123456789abcdef0123456789abcdef";
        let header = sign(
            "POST",
            "http://127.0.0.1:5000/v3/OS-OAUTH1/request_token",
            vec![
                ("oauth_consumer_key".into(), key.into()),
                ("oauth_callback".into(), "oob".into()),
            ],
            1_700_000_000,
            "secret with spaces & symbols",
            None,
        );
        let req = OAuthRequest::new(parse_authorization(&header).unwrap(), None).unwrap();
        req.check_mandatory(1_700_000_000).unwrap();
        assert!(req.signature_matches(
            "POST",
            "http://127.0.0.1:5000/v3/OS-OAUTH1/request_token",
            "secret with spaces & symbols",
            None
        ));
        assert!(!req.signature_matches(
            "POST",
            "http://127.0.0.1:5001/v3/OS-OAUTH1/request_token",
            "secret with spaces & symbols",
            None
        ));
    }

    #[test]
    fn plaintext_and_mandatory_checks() {
        let header = parse_authorization(
            "OAuth oauth_consumer_key=\"0123456789abcdef0123456789abcdef\", oauth_signature_method=\"PLAINTEXT\", oauth_timestamp=\"1700000000\", oauth_nonce=\"ab12\", oauth_signature=\"s%26t\"",
        )
        .unwrap();
        let req = OAuthRequest::new(header, None).unwrap();
        assert!(req.signature_matches("POST", "http://h/v3/x", "s", Some("t")));
        assert!(req.check_mandatory(1_700_000_100).is_ok());
        assert_eq!(
            req.check_mandatory(1_700_001_000).unwrap_err().description,
            "Timestamp given is invalid, differ from allowed by over 600 seconds."
        );
        assert!(parse_authorization("Basic abc").is_none());
        assert!(parse_authorization("OAuth novalue").is_none());
        let no_method = parse_authorization(
            "OAuth oauth_consumer_key=\"0123456789abcdef0123456789abcdef\", oauth_signature=\"x\"",
        )
        .unwrap();
        assert_eq!(
            OAuthRequest::new(no_method, None)
                .unwrap()
                .check_mandatory(0)
                .unwrap_err()
                .to_string(),
            "Validation failed with errors: invalid_request, detail message is: Missing mandatory OAuth parameters.."
        );
    }
}
