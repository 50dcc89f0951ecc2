//! API errors, rendered in one place as Keystone's `{"error": {...}}` body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use baton_types::ErrorResponse;

/// An error the API answers with. Security errors (401/403) carry a generic message unless
/// `[DEFAULT] insecure_debug` is set, as in Keystone; the detail is logged instead.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request does not match Keystone's schema; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the detail is for the log; the body says only that authentication is required.
    #[error("unauthorized: {detail}")]
    Unauthorized {
        /// Why, for the log (and the body under `insecure_debug`).
        detail: String,
    },
    /// Keystone's `AuthPluginException` family (e.g. an application credential asked for a
    /// scope): a 401 whose body also carries `identity: {}`.
    #[error("unauthorized (auth plugin): {detail}")]
    AuthPlugin {
        /// Why, for the log (and the body under `insecure_debug`).
        detail: String,
    },
    /// 401 whose message Keystone shows (`PasswordExpired`): keystoneauth and the CLI tell the
    /// user to change the password.
    #[error("The password is expired and needs to be changed for user: {0}.")]
    PasswordExpired(String),
    /// 429: too many failed logins from this address or for this name; retry after the
    /// seconds given (`throttle.rs`).
    #[error("Too many failed authentication attempts; try again in {0} seconds.")]
    TooManyRequests(u64),
    /// 403 with the denied policy rule.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 403 for a refused operation rather than a refused caller (Keystone's
    /// `ForbiddenNotSecurity`, e.g. deleting an enabled domain): the message is shown.
    #[error("{0}")]
    ForbiddenNotSecurity(String),
    /// 404: no such domain, project, user, group, role or catalog entry; the message says which.
    #[error("{0}")]
    NotFound(String),
    /// 404 for a token that failed validation; the reason goes to the log only.
    #[error("token not found: {reason}")]
    TokenNotFound {
        /// Why the token was refused (expired, revoked, user disabled, ...).
        reason: String,
    },
    /// 409: a name already taken in its domain, or an assignment that already exists.
    #[error("{0}")]
    Conflict(String),
    /// 405: the path exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413: a body over `[oslo_middleware] max_request_body_size`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 431: a header field over [`crate::MAX_HEADER_FIELD_BYTES`].
    #[error("{0}")]
    HeaderFieldsTooLarge(String),
    /// 500: a bug or a database failure; the detail goes to the log.
    #[error("internal error: {0}")]
    Internal(String),
    /// 503: the server cannot answer now; the client may try again.
    #[error("{0}")]
    ServiceUnavailable(String),
}

impl ApiError {
    /// A 401 whose `detail` goes to the log only.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            detail: detail.into(),
        }
    }

    /// Keystone's 404 for a missing entity: `Could not find <kind>: <id>.`
    pub fn not_found(kind: &str, id: &str) -> Self {
        ApiError::NotFound(format!("Could not find {kind}: {id}."))
    }

    /// Keystone's `ValidationError(attribute, target)` (400): `Expecting to find <attribute> in
    /// <target>. ...`.
    pub fn expecting(attribute: &str, target: &str) -> Self {
        ApiError::BadRequest(format!(
            "Expecting to find {attribute} in {target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
        ))
    }

    /// Keystone's schema-validation 400: `Invalid input for field 'user/name': ...` (the bare
    /// detail when `path` is empty, i.e. the whole body).
    pub fn invalid(path: &str, detail: impl std::fmt::Display) -> Self {
        if path.is_empty() {
            ApiError::BadRequest(detail.to_string())
        } else {
            ApiError::BadRequest(format!("Invalid input for field '{path}': {detail}"))
        }
    }

    /// Keystone's plain `Forbidden` (a security error without an action): the body says only
    /// that the action is not allowed; `detail` goes to the log.
    pub fn forbidden_plain(detail: &str) -> Self {
        tracing::info!(detail, "request refused");
        ApiError::ForbiddenNotSecurity(
            "You are not authorized to perform the requested action.".into(),
        )
    }

    /// A 404 for a token that failed validation, the `reason` going to the log only.
    pub fn token_not_found(reason: impl Into<String>) -> Self {
        ApiError::TokenNotFound {
            reason: reason.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } | ApiError::AuthPlugin { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ForbiddenNotSecurity(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::TokenNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeaderFieldsTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PasswordExpired(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The message Keystone would put in the body.
    pub fn public_message(&self, insecure_debug: bool) -> String {
        match self {
            ApiError::Unauthorized { detail } | ApiError::AuthPlugin { detail }
                if insecure_debug =>
            {
                format!("The request you have made requires authentication. {detail}")
            }
            ApiError::Unauthorized { .. } | ApiError::AuthPlugin { .. } => {
                "The request you have made requires authentication.".into()
            }
            ApiError::Forbidden(rule) => {
                format!("You are not authorized to perform the requested action: {rule}.")
            }
            ApiError::TokenNotFound { reason } if insecure_debug => {
                format!("Failed to validate token ({reason})")
            }
            ApiError::TokenNotFound { .. } => "Failed to validate token".into(),
            ApiError::Internal(_) => {
                "An unexpected error prevented the server from fulfilling your request.".into()
            }
            other => other.to_string(),
        }
    }

    /// Renders the error. `www_authenticate` is the `Keystone uri="..."` value for 401s.
    pub fn render(&self, insecure_debug: bool, www_authenticate: Option<&HeaderValue>) -> Response {
        let status = self.status();
        match self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            ApiError::Unauthorized { detail } | ApiError::AuthPlugin { detail } => {
                tracing::info!(reason = %detail, "authentication failed")
            }
            ApiError::TokenNotFound { reason } => {
                tracing::info!(reason = %reason, "token validation failed")
            }
            ApiError::Forbidden(rule) => tracing::info!(rule = %rule, "policy denied"),
            _ => tracing::debug!(error = %self, "request failed"),
        }
        let body = ErrorResponse::new(
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.public_message(insecure_debug),
        );
        let mut resp = match self {
            ApiError::AuthPlugin { .. } => {
                let mut v = serde_json::to_value(&body).unwrap_or_default();
                v["error"]["identity"] = serde_json::json!({});
                (status, axum::Json(v)).into_response()
            }
            _ => (status, axum::Json(body)).into_response(),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::TooManyRequests(secs) = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            if let Some(v) = www_authenticate {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, v.clone());
            }
        }
        resp
    }
}

impl From<baton_store::StoreError> for ApiError {
    fn from(e: baton_store::StoreError) -> Self {
        match e {
            baton_store::StoreError::Conflict(m) => {
                ApiError::Conflict(format!("Conflict occurred attempting to store {m}"))
            }
            baton_store::StoreError::NotFound { kind, id } => {
                ApiError::NotFound(format!("Could not find {kind}: {id}."))
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "the identity database cannot be reached: 503");
                ApiError::ServiceUnavailable(
                    "The identity database cannot be reached right now; try again shortly.".into(),
                )
            }
            e if e.is_unstorable_text() => ApiError::BadRequest(
                "Invalid input: a text in the request (a NUL character, say) cannot be stored or searched for."
                    .into(),
            ),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// What handlers and the token service return: a value, or the error the API answers with.
pub type ApiResult<T> = Result<T, ApiError>;
