//! The client's error type, and which token a receiver refused.

use std::fmt;

use baton_config::ConfigError;
use reqwest::header::HeaderMap;
use reqwest::Url;

/// Response header in which a Baton receiver (the auth_token middleware) says why it answered 401
/// (or 503): a comma-separated list of [`AuthFailureReason`] values, e.g.
/// `X-Auth-Failure-Reason: service_token_invalid`. Keystone's middleware never sends it; the
/// client then says the receiver did not tell which token was refused.
pub const AUTH_FAILURE_REASON_HEADER: &str = "x-auth-failure-reason";

/// One value of [`AUTH_FAILURE_REASON_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailureReason {
    /// `user_token_expired`: the `X-Auth-Token` expired (and no valid service token allowed it).
    UserTokenExpired,
    /// `user_token_invalid`: the `X-Auth-Token` is unknown, revoked or malformed.
    UserTokenInvalid,
    /// `service_token_invalid`: the `X-Service-Token` is expired, revoked or malformed.
    ServiceTokenInvalid,
    /// `service_token_missing_role`: the `X-Service-Token` is valid but has none of the
    /// receiver's `service_token_roles`.
    ServiceTokenMissingRole,
    /// `access_rule_denied`: the `X-Auth-Token` comes from an application credential whose
    /// access rules do not allow this request.
    AccessRuleDenied,
    /// `access_rules_unenforceable`: the `X-Auth-Token` is restricted by access rules, and the
    /// receiver cannot check them (its `service_type` is unset or not in the catalog).
    AccessRulesUnenforceable,
    /// `identity_unreachable`: the receiver could not ask the identity service.
    IdentityUnreachable,
    /// A value this client does not know (printable ASCII only, at most 64 characters kept).
    Other(String),
}

/// Which of the two tokens of a request a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichToken {
    /// The user's token (`X-Auth-Token`).
    User,
    /// The service user's token (`X-Service-Token`).
    Service,
}

impl AuthFailureReason {
    /// Reads one header value; an unknown one is kept, shortened, as [`AuthFailureReason::Other`].
    pub fn parse(value: &str) -> AuthFailureReason {
        match value.trim().to_ascii_lowercase().as_str() {
            "user_token_expired" => AuthFailureReason::UserTokenExpired,
            "user_token_invalid" => AuthFailureReason::UserTokenInvalid,
            "service_token_invalid" => AuthFailureReason::ServiceTokenInvalid,
            "service_token_missing_role" => AuthFailureReason::ServiceTokenMissingRole,
            "access_rule_denied" => AuthFailureReason::AccessRuleDenied,
            "access_rules_unenforceable" => AuthFailureReason::AccessRulesUnenforceable,
            "identity_unreachable" => AuthFailureReason::IdentityUnreachable,
            _ => AuthFailureReason::Other(
                value
                    .trim()
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect(),
            ),
        }
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        match self {
            AuthFailureReason::UserTokenExpired => "user_token_expired",
            AuthFailureReason::UserTokenInvalid => "user_token_invalid",
            AuthFailureReason::ServiceTokenInvalid => "service_token_invalid",
            AuthFailureReason::ServiceTokenMissingRole => "service_token_missing_role",
            AuthFailureReason::AccessRuleDenied => "access_rule_denied",
            AuthFailureReason::AccessRulesUnenforceable => "access_rules_unenforceable",
            AuthFailureReason::IdentityUnreachable => "identity_unreachable",
            AuthFailureReason::Other(s) => s,
        }
    }

    /// The token the reason blames, if it blames one.
    pub fn token(&self) -> Option<WhichToken> {
        match self {
            AuthFailureReason::UserTokenExpired
            | AuthFailureReason::UserTokenInvalid
            | AuthFailureReason::AccessRuleDenied
            | AuthFailureReason::AccessRulesUnenforceable => Some(WhichToken::User),
            AuthFailureReason::ServiceTokenInvalid | AuthFailureReason::ServiceTokenMissingRole => {
                Some(WhichToken::Service)
            }
            AuthFailureReason::IdentityUnreachable | AuthFailureReason::Other(_) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            AuthFailureReason::UserTokenExpired => {
                "the user token (X-Auth-Token) was refused: expired".into()
            }
            AuthFailureReason::UserTokenInvalid => {
                "the user token (X-Auth-Token) was refused: invalid or revoked".into()
            }
            AuthFailureReason::ServiceTokenInvalid => {
                "the service token (X-Service-Token) was refused: invalid, expired or revoked"
                    .into()
            }
            AuthFailureReason::ServiceTokenMissingRole => {
                "the service token (X-Service-Token) was refused: its user lacks a role in the receiver's service_token_roles".into()
            }
            AuthFailureReason::AccessRuleDenied => {
                "the user token (X-Auth-Token) was refused: its application credential's access rules do not allow this request".into()
            }
            AuthFailureReason::AccessRulesUnenforceable => {
                "the user token (X-Auth-Token) was refused: it is restricted by access rules and the receiver cannot check them (set service_type in its [keystone_authtoken])".into()
            }
            AuthFailureReason::IdentityUnreachable => {
                "the receiver could not reach the identity service to validate the tokens".into()
            }
            AuthFailureReason::Other(s) => format!("refused ({s})"),
        }
    }
}

/// What a receiver said about a refused request: the reasons from [`AUTH_FAILURE_REASON_HEADER`]
/// (empty when it did not say) and whether an `X-Service-Token` was sent at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The receiver's reasons, service token first; empty when it gave none (Keystone's
    /// middleware never does).
    pub reasons: Vec<AuthFailureReason>,
    /// The request carried an `X-Service-Token`, so either token may have been refused.
    pub service_token_sent: bool,
}

impl Refused {
    /// Reads the reason header of a response.
    pub fn from_headers(headers: &HeaderMap, service_token_sent: bool) -> Refused {
        let reasons = headers
            .get_all(AUTH_FAILURE_REASON_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter(|v| !v.trim().is_empty())
            .map(AuthFailureReason::parse)
            .collect();
        Refused {
            reasons,
            service_token_sent,
        }
    }

    /// Whether the receiver blamed the token of this kind (false when it did not say).
    pub fn blames(&self, which: WhichToken) -> bool {
        self.reasons.iter().any(|r| r.token() == Some(which))
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons.is_empty() {
            return if self.service_token_sent {
                f.write_str("refused (receiver did not say which token)")
            } else {
                f.write_str("the token (X-Auth-Token) was refused")
            };
        }
        let parts: Vec<String> = self.reasons.iter().map(|r| r.describe()).collect();
        f.write_str(&parts.join("; "))
    }
}

fn rid(request_id: &Option<String>) -> String {
    match request_id {
        Some(r) => format!(" (request {r})"),
        None => String::new(),
    }
}

fn region_text(region: &Option<String>) -> String {
    match region {
        Some(r) => format!(" in region {r:?}"),
        None => String::new(),
    }
}

/// Everything the client can fail with. Every message is one line and never holds a token or a
/// password; URLs are shown without user info.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection could not be made, after the configured retries.
    #[error("cannot connect to {url} after {attempts} attempt(s): {reason}")]
    Connection {
        /// Where (without user info).
        url: String,
        /// How many tries were made, retries included.
        attempts: u32,
        /// The innermost cause (connection refused, no route, DNS, ...).
        reason: String,
    },
    /// The request timed out (connect or total timeout), after the configured retries.
    #[error("{request} timed out after {attempts} attempt(s): {reason}")]
    Timeout {
        /// `METHOD url`.
        request: String,
        /// How many tries were made, retries included.
        attempts: u32,
        /// The innermost cause.
        reason: String,
    },
    /// Any other transport failure (TLS, reading the body, too many redirects).
    #[error("{request} failed: {reason}")]
    Transport {
        /// `METHOD url`.
        request: String,
        /// The innermost cause.
        reason: String,
    },
    /// `POST /v3/auth/tokens` answered with an error.
    #[error("identity at {url} refused to authenticate {who}: {status} {message}{}", rid(.request_id))]
    AuthenticationFailed {
        /// The identity endpoint asked.
        url: String,
        /// Whom the plugin authenticates: the user (name and domain, or id), an application
        /// credential or a token fingerprint.
        who: String,
        /// The HTTP status (401 for wrong credentials, 403, 5xx, ...).
        status: u16,
        /// Keystone's error message.
        message: String,
        /// The identity server's `x-openstack-request-id`, to find its log lines.
        request_id: Option<String>,
    },
    /// An authenticated request was answered 401 (after one re-authentication where possible).
    #[error("{request}: 401 Unauthorized: {refused}{}", rid(.request_id))]
    Unauthorized {
        /// `METHOD url`.
        request: String,
        /// Which token the receiver refused, as far as it said.
        refused: Refused,
        /// The receiver's error message.
        message: String,
        /// The receiver's `x-openstack-request-id`.
        request_id: Option<String>,
    },
    /// `GET /v3/auth/tokens` answered 404: the subject token is invalid, expired or revoked.
    #[error("the identity service does not accept the token sha256:{fingerprint}: {message}{}", rid(.request_id))]
    TokenNotFound {
        /// The refused token's fingerprint ([`crate::token_fingerprint`]).
        fingerprint: String,
        /// Keystone's error message.
        message: String,
        /// The identity server's `x-openstack-request-id`.
        request_id: Option<String>,
    },
    /// Any other error status.
    #[error("{request}: {status} {message}{}", rid(.request_id))]
    Http {
        /// `METHOD url`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The error message of the body, or the status text.
        message: String,
        /// The service's `x-openstack-request-id`.
        request_id: Option<String>,
        /// The receiver's [`AUTH_FAILURE_REASON_HEADER`], if any (e.g. `identity_unreachable`).
        reasons: Vec<AuthFailureReason>,
    },
    /// A response that does not have the expected form (no `X-Subject-Token`, no `token` key, ...).
    #[error("invalid response from {url}: {reason}")]
    InvalidResponse {
        /// The URL that answered.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// Version discovery found no v3 identity API and the URL does not name one either.
    #[error("version discovery at {url} found no identity v3 API: {reason}")]
    Discovery {
        /// The `auth_url` looked at.
        url: String,
        /// What discovery found instead.
        reason: String,
    },
    /// The catalog has no matching endpoint.
    #[error("the service catalog has no {interface} endpoint for service type {service_type:?}{}", region_text(.region))]
    EndpointNotFound {
        /// The service type asked for (`identity`, `volumev3`, ...).
        service_type: String,
        /// `public`, `internal` or `admin`.
        interface: String,
        /// The region asked for, if any.
        region: Option<String>,
    },
    /// The auth plugin cannot provide what was asked (e.g. token data from a bare `UserToken`).
    #[error("{0}")]
    NotAvailable(String),
    /// An option given in code is unusable (a bad URL, an unreadable CA file, ...).
    #[error("{0}")]
    InvalidOption(String),
    /// A configuration file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A start-up check of a configured service user failed.
    #[error("{context}: {source}")]
    Startup {
        /// Which check, and for which configuration section.
        context: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A URL for messages: without user info, query or fragment.
pub(crate) fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The message of an error response: Keystone's `error.message`, else a one-line excerpt of
/// the body, else the status's reason phrase.
pub(crate) fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = v
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
        {
            return one_line(m);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = one_line(&text);
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    }
}

fn one_line(s: &str) -> String {
    let mut out: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "...";
    }
    out
}
