//! Version discovery: `GET /` (300 with every version) and `GET /v3`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_types::Version;
use serde_json::json;

use crate::AppState;

/// `GET /`: 300 Multiple Choices listing v3, the only version, as keystoneauth expects.
pub async fn versions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = state.base_url(&headers);
    let v = Version::v3(&base);
    let location = format!("{}/v3/", base.trim_end_matches('/'));
    let mut resp = (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [v]}})),
    )
        .into_response();
    if let Ok(l) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

/// `GET /v3`: the v3 version document.
pub async fn v3(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = state.base_url(&headers);
    Json(json!({"version": Version::v3(&base)})).into_response()
}
