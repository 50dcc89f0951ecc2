//! Identity statuses and the machine-readable reasons of every refusal.

use std::fmt;

use serde::Serialize;

/// keystonemiddleware's `X-Identity-Status` / `X-Service-Identity-Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum IdentityStatus {
    /// The token was validated and is in force.
    Confirmed,
    /// The token was refused, or could not be checked.
    Invalid,
}

impl IdentityStatus {
    /// The header value: `Confirmed` or `Invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityStatus::Confirmed => "Confirmed",
            IdentityStatus::Invalid => "Invalid",
        }
    }
}

impl fmt::Display for IdentityStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token (or the request) was not confirmed. The string forms are what goes into the log
/// line, the `reason` label of the metrics and, when `expose_failure_reason` is on, the
/// `x-auth-failure-reason` response header (comma-separated, service token first).
///
/// The identity service answers 404 for every unusable token (unknown, malformed, revoked,
/// expired past the window, user disabled), so `user_token_invalid` covers all of those;
/// `*_expired` is reported when the middleware can tell: the token failed the local expiry check
/// of a cached validation, or (with `diagnose_expired_tokens`) the identity service still accepts
/// it with `allow_expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// No `X-Auth-Token` (nor `X-Storage-Token`).
    UserTokenMissing,
    /// The user token is unknown, malformed, revoked or expired past the allow-expired window.
    UserTokenInvalid,
    /// The user token is expired, and no service token holding a `service_token_roles` role came
    /// with it.
    UserTokenExpired,
    /// The service token is unknown, malformed or revoked.
    ServiceTokenInvalid,
    /// The service token is expired (service tokens are never accepted past expiry).
    ServiceTokenExpired,
    /// The service token is valid but holds none of `service_token_roles`, and
    /// `service_token_roles_required` is on.
    ServiceTokenMissingRole,
    /// The user token comes from an application credential whose access rules do not allow
    /// this request (method, path, this service's type), and no service token holding a
    /// `service_token_roles` role came with it.
    AccessRuleDenied,
    /// The user token is restricted by access rules but this service cannot check them:
    /// `service_type` is unset, or names no service in the token's catalog.
    AccessRulesUnenforceable,
    /// The identity service could not be reached (connection refused, timeout).
    IdentityUnreachable,
    /// The identity service answered, but not usefully: a 5xx, a 403 (the middleware's own user
    /// may not validate tokens), a 401 for the middleware's own token after re-authenticating, no
    /// identity endpoint in its catalog, or an unreadable body.
    IdentityError,
}

impl FailureReason {
    /// Every reason, in the order of the metrics output.
    pub const ALL: [FailureReason; 10] = [
        FailureReason::UserTokenMissing,
        FailureReason::UserTokenInvalid,
        FailureReason::UserTokenExpired,
        FailureReason::ServiceTokenInvalid,
        FailureReason::ServiceTokenExpired,
        FailureReason::ServiceTokenMissingRole,
        FailureReason::AccessRuleDenied,
        FailureReason::AccessRulesUnenforceable,
        FailureReason::IdentityUnreachable,
        FailureReason::IdentityError,
    ];

    /// The header and metrics value (`user_token_expired`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::UserTokenMissing => "user_token_missing",
            FailureReason::UserTokenInvalid => "user_token_invalid",
            FailureReason::UserTokenExpired => "user_token_expired",
            FailureReason::ServiceTokenInvalid => "service_token_invalid",
            FailureReason::ServiceTokenExpired => "service_token_expired",
            FailureReason::ServiceTokenMissingRole => "service_token_missing_role",
            FailureReason::AccessRuleDenied => "access_rule_denied",
            FailureReason::AccessRulesUnenforceable => "access_rules_unenforceable",
            FailureReason::IdentityUnreachable => "identity_unreachable",
            FailureReason::IdentityError => "identity_error",
        }
    }

    /// Reads a header value; `None` for one this version does not know.
    pub fn parse(s: &str) -> Option<FailureReason> {
        FailureReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
    }

    pub(crate) fn index(self) -> usize {
        FailureReason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("listed")
    }

    /// Whether the identity service, not a token, is to blame (the request gets a 503).
    pub fn is_identity_failure(self) -> bool {
        matches!(
            self,
            FailureReason::IdentityUnreachable | FailureReason::IdentityError
        )
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a,b,c`: the header and log form of a list of reasons.
pub fn join_reasons(reasons: &[FailureReason]) -> String {
    reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
