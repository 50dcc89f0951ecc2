//! Extractors every handler shares: the authenticated caller and request-body errors, so that
//! the token API and the admin API read requests one way.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use baton_types::headers::{ACCESS_RULES, AUTH_TOKEN};

use super::require;
use crate::error::{ApiError, ApiResult};
use crate::policy::{Credentials, Target};
use crate::tokens::ValidatedToken;
use crate::AppState;

/// The caller of an API: its validated `X-Auth-Token`. Extracting it answers 401 for a missing
/// or invalid token (every API but issue and version discovery needs one).
pub struct Caller {
    /// The caller's token, checked like any validation (expiry, revocation, user and scope).
    pub token: Arc<ValidatedToken>,
}

impl Caller {
    /// The policy credentials of the caller's token.
    pub fn creds(&self) -> Credentials<'_> {
        Credentials::from_token(&self.token)
    }

    /// Enforces `action` (an `identity:*` rule) against `target`; 403 with Keystone's body when
    /// denied.
    pub fn enforce(&self, state: &AppState, action: &str, target: &Target) -> ApiResult<()> {
        state.policy.enforce(action, &self.creds(), target)
    }

    /// Whether `action` is allowed on `target`, without answering 403 (for filtering lists).
    pub fn allows(&self, state: &AppState, action: &str, target: &Target) -> bool {
        state.policy.allows(action, &self.creds(), target)
    }

    /// The caller's user id.
    pub fn user_id(&self) -> &str {
        self.token.user_id()
    }

    /// The domain of a domain-scoped token: such callers see only their domain's users,
    /// groups, projects and assignments.
    pub fn scoped_domain(&self) -> Option<String> {
        self.token.body.domain.as_ref().map(|d| d.id.clone())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let token = require(&parts.headers, AUTH_TOKEN)?;
        let token = state
            .tokens
            .validate(token, false)
            .await
            .and_then(|t| {
                t.check_access_rules_support(super::header_str(&parts.headers, ACCESS_RULES))?;
                Ok(t)
            })
            .map_err(|e| match e {
                ApiError::TokenNotFound { reason } => {
                    ApiError::unauthorized(format!("X-Auth-Token: {reason}"))
                }
                other => other,
            })?;
        // A continuation token is for the services of its audience, never the identity API.
        if token.payload.actor_id().is_some() {
            return Err(ApiError::unauthorized(
                "X-Auth-Token: a continuation token is accepted only by the services of its audience",
            ));
        }
        // Keystone 30 (LP#2153453): a token minted from an EC2 credential authorizes no API
        // call itself; services only validate it.
        if token.payload.methods.iter().any(|m| m == "ec2credential") {
            return Err(ApiError::forbidden_plain(
                "EC2 credential token used as X-Auth-Token",
            ));
        }
        baton_audit::context::set_caller(|| token.audit_user());
        Ok(Caller { token })
    }
}

/// A request body that could not be read: 413 when over `[oslo_middleware]
/// max_request_body_size`, else 400, in Keystone's error shape.
pub fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("Request is too large.".into())
    } else {
        ApiError::BadRequest(e.body_text())
    }
}
