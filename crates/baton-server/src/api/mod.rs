//! HTTP handlers and the pieces of request handling they share.

pub mod admin;
pub mod auth;
pub mod continuations;
pub mod discovery;
pub mod ec2tokens;
pub mod extract;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod healthcheck;
pub mod list;
pub mod oauth1;
pub mod query;
pub mod token_pairs;

pub use query::{bool_from_string, TokenQuery};

use axum::http::HeaderMap;

use crate::error::{ApiError, ApiResult};

/// A header value as a string, refusing non-UTF-8 and trimming whitespace.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A header's value, or 401 naming the missing header.
pub fn require<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<&'a str> {
    header_str(headers, name).ok_or_else(|| ApiError::unauthorized(format!("missing {name}")))
}

/// Keystone's 405 for a method a route does not serve (`GET` on a `POST`-only endpoint).
pub async fn not_allowed() -> crate::error::ApiError {
    crate::error::ApiError::MethodNotAllowed(
        "The method is not allowed for the requested URL.".into(),
    )
}
