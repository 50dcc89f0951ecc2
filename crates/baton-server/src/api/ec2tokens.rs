//! `POST /v3/ec2tokens`: a service (or admin) exchanges a signed EC2 request for a
//! project-scoped token of the credential's user, as Keystone's ec2tokens API: 200 with the
//! token body (catalog included) and the token in `X-Subject-Token`. The signature and
//! credential checks live in `identity/ec2.rs`.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use baton_types::headers::SUBJECT_TOKEN;
use serde_json::{Map, Value};

use crate::api::admin::Caller;
use crate::api::extract::body_rejection;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// The ec2tokens route (GET is Keystone's 405).
pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/ec2tokens", post(authenticate).get(super::not_allowed))
}

async fn authenticate(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:ec2tokens_validate", &Target::new())?;
    let bytes = body.map_err(body_rejection)?;
    // Keystone reads the body leniently: anything but a JSON object is an empty body.
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let (token, validated) = state.identity.authenticate_ec2(&body).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            SUBJECT_TOKEN,
            HeaderValue::from_str(&token).map_err(|e| ApiError::Internal(e.to_string()))?,
        )
        .body(Body::from(validated.json(true)))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
