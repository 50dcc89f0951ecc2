//! HTTP handlers and the pieces of request handling they share.

pub mod admin;
pub mod auth;
pub mod discovery;

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

/// Query flags as Keystone reads them: `nocatalog` counts when present at all; `allow_expired`
/// follows oslo's bool_from_string.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenQuery {
    pub nocatalog: bool,
    pub allow_expired: bool,
    /// `DELETE`: also revoke tokens rescoped from this one (default true, as in Keystone 30).
    pub cascade: bool,
}

impl TokenQuery {
    pub fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let mut q = TokenQuery {
            cascade: true,
            ..TokenQuery::default()
        };
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "nocatalog" => q.nocatalog = true,
                "allow_expired" => q.allow_expired = bool_from_string(v),
                // Keystone falls back to true for values it cannot read.
                "cascade" => {
                    q.cascade = !matches!(
                        v.trim().to_ascii_lowercase().as_str(),
                        "0" | "f" | "false" | "off" | "n" | "no"
                    )
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

pub fn bool_from_string(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

pub fn require<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<&'a str> {
    header_str(headers, name).ok_or_else(|| ApiError::unauthorized(format!("missing {name}")))
}
