//! The receiving side's audit record of one request: which tokens came, whose they were, who
//! acted for whom and what was decided. Written to the log for a service acting for a user
//! (`authenticator.rs` `service_request_record`), and handed to an in-process subscriber for
//! every request when one is set ([`crate::Authenticator::set_record_sink`]): the demo builds
//! its timelines from these records. Tokens appear only as fingerprints.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::context::IdentityContext;
use crate::reason::FailureReason;

/// What the receiving side recorded for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When the request was judged.
    pub at: DateTime<Utc>,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// Fingerprint of the user token (`X-Auth-Token`), when one came.
    pub user_token: Option<String>,
    /// Fingerprint of the service token (`X-Service-Token`), when one came.
    pub service_token: Option<String>,
    /// The confirmed user token's user name.
    pub user: Option<String>,
    /// The service acting for the user: the service token's user, or a continuation token's
    /// actor.
    pub acting_service: Option<String>,
    /// The user token is a continuation token (its actor is `acting_service`).
    pub continuation: bool,
    /// The user token had expired this many seconds before, and was accepted because of the
    /// service token.
    pub accepted_expired_for: Option<i64>,
    /// Why the request was refused; empty when it was forwarded.
    pub refused: Vec<FailureReason>,
}

/// Receives every [`RequestRecord`]; must not block (it runs on the request path).
pub type RecordSink = Arc<dyn Fn(RequestRecord) + Send + Sync>;

/// The record of a decision; `refused` is empty when the request was confirmed.
pub(crate) fn of(
    context: &IdentityContext,
    (method, path): (&str, &str),
    (user_token, service_token): (Option<String>, Option<String>),
    now: DateTime<Utc>,
    refused: &[FailureReason],
) -> RequestRecord {
    let user = context.user.as_ref();
    let actor = user.and_then(|u| u.access().body().continuation.as_ref());
    RequestRecord {
        at: now,
        method: method.to_string(),
        path: path.to_string(),
        user_token,
        service_token,
        user: user.map(|u| u.user_name.clone()),
        acting_service: match (actor, &context.service) {
            (Some(c), _) => Some(c.actor.name.clone()),
            (None, Some(s)) => Some(s.user_name.clone()),
            (None, None) => None,
        },
        continuation: actor.is_some(),
        accepted_expired_for: user
            .filter(|u| u.accepted_expired)
            .map(|u| (now - u.expires_at).num_seconds()),
        refused: refused.to_vec(),
    }
}
