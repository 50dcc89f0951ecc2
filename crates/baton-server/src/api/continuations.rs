//! `/v3/baton/continuations` (Baton's own; docs/continuation.md): a sender exchanges a user's
//! token for an operation-bound continuation token, or renews one; `GET` tells a client that
//! this server offers them (Keystone answers 404, and clients fall back to the service-token
//! pair).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use baton_types::headers::SUBJECT_TOKEN;
use serde_json::{json, Value};

use super::extract::{body_rejection, Caller};
use super::header_str;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::tokens::ContinuationRequest;
use crate::AppState;

/// The continuation routes; merged into the identity router.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/baton/continuations", get(describe).post(create))
}

/// `GET`: 200 with the token lifetime and the receiving service types when continuation
/// tokens are enabled, 404 otherwise (as on Keystone).
async fn describe(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let opts = &state.config.continuation;
    if !opts.enabled() {
        return Err(ApiError::NotFound(
            "Continuation tokens are not enabled on this server.".into(),
        ));
    }
    let audiences: Vec<&str> = opts.receivers.iter().map(|(t, _)| t.as_str()).collect();
    Ok(Json(json!({"continuation": {
        "token_lifetime": opts.token_lifetime,
        "audiences": audiences,
    }})))
}

/// `POST` with the sender's token in `X-Auth-Token` and the user token (to start) or the
/// current continuation token (to renew) in `X-Subject-Token`: 201 with the new token in
/// `X-Subject-Token` and its body.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.enforce(&state, "baton:create_continuation", &Target::new())?;
    let body = body.map_err(body_rejection)?;
    let request = parse_request(&body)?;
    let subject = header_str(&headers, SUBJECT_TOKEN).ok_or_else(|| {
        ApiError::BadRequest(
            "X-Subject-Token (the user's token, or the continuation token to renew) is required."
                .into(),
        )
    })?;
    let (token, validated) = state
        .tokens
        .continuation(&caller.token, subject, request)
        .await?;
    super::auth::token_response(StatusCode::CREATED, validated.json(true), &token)
}

/// `{"continuation": {"audience": [...], "operation_lifetime": N}}`; an empty body (a
/// renewal) is `{}`.
fn parse_request(body: &[u8]) -> ApiResult<ContinuationRequest> {
    let bad = |msg: &str| ApiError::BadRequest(format!("Invalid input for field {msg}"));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ContinuationRequest::default());
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Malformed request body: {e}")))?;
    let Some(c) = doc.get("continuation") else {
        return Err(bad("'continuation': it is required."));
    };
    let c = c
        .as_object()
        .ok_or_else(|| bad("'continuation': expected an object."))?;
    if let Some(k) = c
        .keys()
        .find(|k| !matches!(k.as_str(), "audience" | "operation_lifetime"))
    {
        return Err(bad(&format!(
            "'continuation': additional property {k:?} is not allowed."
        )));
    }
    let audience = match c.get("audience") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= 64 => items
            .iter()
            .map(|i| match i.as_str() {
                Some(t) if !t.is_empty() && t.len() <= 64 => Ok(t.to_string()),
                _ => Err(bad(
                    "'continuation/audience': each entry is a service type, 1 to 64 characters.",
                )),
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => Err(bad(
            "'continuation/audience': expected a list of service types.",
        ))?,
    };
    let operation_lifetime = match c.get("operation_lifetime") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|s| *s >= 1)
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| {
                    bad("'continuation/operation_lifetime': expected a number of seconds, at least 1.")
                })?,
        ),
    };
    Ok(ContinuationRequest {
        audience,
        operation_lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies() {
        let ok = parse_request(
            br#"{"continuation": {"audience": ["volume"], "operation_lifetime": 60}}"#,
        )
        .unwrap();
        assert_eq!(
            (ok.audience, ok.operation_lifetime),
            (vec!["volume".to_string()], Some(60))
        );
        assert!(parse_request(b"").unwrap().audience.is_empty());
        for (body, field) in [
            (&br#"{"x": 1}"#[..], "'continuation'"),
            (br#"{"continuation": []}"#, "'continuation'"),
            (
                br#"{"continuation": {"audience": "volume"}}"#,
                "continuation/audience",
            ),
            (
                br#"{"continuation": {"audience": [""]}}"#,
                "continuation/audience",
            ),
            (
                br#"{"continuation": {"operation_lifetime": 0}}"#,
                "operation_lifetime",
            ),
            (
                br#"{"continuation": {"operation_lifetime": "1h"}}"#,
                "operation_lifetime",
            ),
            (
                br#"{"continuation": {"lifetime": 5}}"#,
                "additional property",
            ),
        ] {
            let e = parse_request(body).unwrap_err().to_string();
            assert!(e.contains(field), "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
