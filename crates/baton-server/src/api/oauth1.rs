//! OS-OAUTH1's delegation flow, as Keystone 30 serves it:
//!
//! 1. `POST /v3/OS-OAUTH1/request_token` (signed by the consumer, `Requested-Project-Id`): a
//!    request token, answered form-encoded with 201;
//! 2. `PUT /v3/OS-OAUTH1/authorize/{request_token_id}` (by the user, with a token of a primary
//!    method): the roles delegated, answered with the verifier;
//! 3. `POST /v3/OS-OAUTH1/access_token` (signed with the request token's secret, with the
//!    verifier): the access token, answered form-encoded with 201;
//! 4. `POST /v3/auth/tokens` with method `oauth1` (signed with the access token's secret): a
//!    project-scoped token carrying the delegated roles ([`authenticate`]).
//!
//! Signature checks are oauthlib's ([`crate::oauth1_signature`]); their 400s carry oauthlib's
//! descriptions in Keystone's words, the 401s say only that authentication is required.
//! Deliberate differences: a missing or non-OAuth `Authorization` header is a 400 naming the
//! missing parameter (Keystone fails with a 500), and an access token signed by a consumer
//! other than its own is refused.

use axum::body::{Body, Bytes};
use axum::extract::{rejection::BytesRejection, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use subtle::ConstantTimeEq as _;

use super::admin::schema::{body_json, py_repr};
use super::extract::Caller;
use crate::error::{ApiError, ApiResult};
use crate::identity::oauth1::{
    access_token_not_found, consumer_not_found, expired, request_token_not_found, VERIFIER_CHARS,
};
use crate::oauth1_signature::{
    invalid, is_key, param, parse_authorization, OAuthError, OAuthRequest,
};
use crate::policy::Target;
use crate::AppState;

/// The flow's routes (GET on the token endpoints is Keystone's 405).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/OS-OAUTH1/request_token",
            post(request_token).get(super::not_allowed),
        )
        .route(
            "/v3/OS-OAUTH1/access_token",
            post(access_token).get(super::not_allowed),
        )
        .route("/v3/OS-OAUTH1/authorize/{request_token_id}", put(authorize))
}

/// The parameters of the `Authorization: OAuth ...` header; none without one.
fn header_params(headers: &HeaderMap) -> ApiResult<Vec<(String, String)>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Vec::new());
    };
    let text = value.to_str().unwrap_or_default();
    if !text
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("oauth "))
    {
        return Ok(Vec::new());
    }
    parse_authorization(text)
        .ok_or_else(|| ApiError::BadRequest("Malformed authorization header".into()))
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> ApiResult<&'a str> {
    param(params, name).ok_or_else(|| ApiError::expecting(name, "request"))
}

/// The URL the client signed. Keystone signs the token endpoints over the request's own URL
/// with the scheme of its base URL, and the `oauth1` method over its base URL and the path.
fn signed_url(state: &AppState, headers: &HeaderMap, uri: &Uri, from_base: bool) -> String {
    let base = state.base_url(headers);
    if from_base || state.config().default.public_endpoint.is_none() {
        return format!("{base}{}", uri.path());
    }
    let scheme = base.split("://").next().unwrap_or("http");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}{}", uri.path())
}

/// Keystone's 400 for a request oauthlib refused.
fn bad(e: OAuthError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

/// oauthlib's checks before the signature: 400 with its description.
fn oauth_request(
    state: &AppState,
    params: Vec<(String, String)>,
    uri: &Uri,
) -> ApiResult<OAuthRequest> {
    let req = OAuthRequest::new(params, uri.query()).map_err(bad)?;
    req.check_mandatory(state.tokens.clock.now().timestamp())
        .map_err(bad)?;
    Ok(req)
}

fn form_created(body: String) -> ApiResult<Response> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn form_token(id: &str, secret: &str, expires_at: Option<&str>) -> String {
    let mut out = format!("oauth_token={id}&oauth_token_secret={secret}");
    if let Some(at) = expires_at {
        out.push_str(&format!("&oauth_expires_at={at}"));
    }
    out
}

/// `POST /v3/OS-OAUTH1/request_token`.
async fn request_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let params = header_params(&headers)?;
    let consumer_id = required(&params, "oauth_consumer_key")?.to_string();
    let project_id = headers
        .get("Requested-Project-Id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::expecting("Requested-Project-Id", "request"))?
        .to_string();
    let project = match state.store.get_project(&project_id).await? {
        Some(p) if !p.is_domain => p,
        _ => return Err(ApiError::not_found("project", &project_id)),
    };
    let consumer = state
        .store
        .get_consumer(&consumer_id)
        .await?
        .ok_or_else(consumer_not_found)?;
    let req = oauth_request(&state, params, &uri)?;
    if req.param("oauth_callback").is_none() {
        return Err(bad(invalid("Missing callback URI.")));
    }
    let url = signed_url(&state, &headers, &uri, false);
    if !req.signature_matches("POST", &url, &consumer.secret, None) {
        return Err(ApiError::unauthorized("Invalid signature"));
    }
    let token = state
        .identity
        .create_request_token(&consumer.id, &project.id)
        .await?;
    form_created(form_token(
        &token.id,
        &token.request_secret,
        token.expires_at.as_deref(),
    ))
}

/// `POST /v3/OS-OAUTH1/access_token`.
async fn access_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let params = header_params(&headers)?;
    let consumer_id = required(&params, "oauth_consumer_key")?.to_string();
    let request_id = required(&params, "oauth_token")?.to_string();
    let verifier = required(&params, "oauth_verifier")?.to_string();
    let request = match is_key(&request_id) {
        true => state.store.get_request_token(&request_id).await?,
        false => None,
    }
    .ok_or_else(request_token_not_found)?;
    let now = state.tokens.clock.now();
    if expired(request.expires_at.as_deref(), now) {
        return Err(ApiError::unauthorized("Request token is expired"));
    }
    let req = oauth_request(&state, params, &uri)?;
    if verifier.chars().count() != 8 || !verifier.chars().all(|c| VERIFIER_CHARS.contains(c)) {
        return Err(bad(invalid("Invalid verifier format.")));
    }
    let Some(consumer) = state.store.get_consumer(&consumer_id).await? else {
        return Err(ApiError::unauthorized("Provided consumer does not exist."));
    };
    if request.consumer_id != consumer.id {
        return Err(ApiError::unauthorized(
            "Provided consumer key does not match stored consumer key.",
        ));
    }
    let url = signed_url(&state, &headers, &uri, false);
    let verifier_ok = request
        .verifier
        .as_deref()
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(verifier.as_bytes())));
    if !req.signature_matches(
        "POST",
        &url,
        &consumer.secret,
        Some(&request.request_secret),
    ) {
        return Err(ApiError::unauthorized("Invalid signature"));
    }
    if !verifier_ok {
        return Err(ApiError::unauthorized(
            "Provided verifier does not match stored verifier",
        ));
    }
    if request.authorizing_user_id.is_none() {
        return Err(ApiError::unauthorized(
            "Request Token does not have an authorizing user id.",
        ));
    }
    let token = state.identity.create_access_token(&request).await?;
    form_created(form_token(
        &token.id,
        &token.access_secret,
        token.expires_at.as_deref(),
    ))
}

/// Keystone's `request_token_authorize` schema over `roles`: a list of objects, each with
/// exactly one of `id` and `name`. Returns each entry as (is id, value).
pub(crate) fn authorized_roles(roles: &Value) -> ApiResult<Vec<(bool, String)>> {
    let Value::Array(items) = roles else {
        return Err(ApiError::BadRequest(format!(
            "{} is not of type 'array'",
            py_repr(roles)
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let fail = |detail: String| ApiError::invalid(&i.to_string(), detail);
        let Value::Object(m) = item else {
            return Err(fail(format!("{} is not of type 'object'", py_repr(item))));
        };
        for (key, max, pattern) in [("id", 64, "^[a-zA-Z0-9-]+$"), ("name", 255, "[\\\\S]+")] {
            let Some(v) = m.get(key) else { continue };
            let at = |detail: String| ApiError::invalid(&format!("{i}/{key}"), detail);
            let Value::String(s) = v else {
                return Err(at(format!("{} is not of type 'string'", py_repr(v))));
            };
            if s.is_empty() {
                return Err(at(format!("{} should be non-empty", py_repr(v))));
            }
            if s.chars().count() > max {
                return Err(at(format!("{} is too long", py_repr(v))));
            }
            let matches = if key == "id" {
                s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            } else {
                s.chars().any(|c| !c.is_whitespace())
            };
            if !matches {
                return Err(at(format!("{} does not match '{pattern}'", py_repr(v))));
            }
        }
        if m.is_empty() {
            return Err(fail("{} should be non-empty".into()));
        }
        if m.len() > 1 {
            return Err(fail(format!("{} has too many properties", py_repr(item))));
        }
        if let Some(extra) = m.keys().find(|k| *k != "id" && *k != "name") {
            return Err(fail(format!(
                "Additional properties are not allowed ('{extra}' was unexpected)"
            )));
        }
        let (key, v) = m.iter().next().expect("one property");
        out.push((key == "id", v.as_str().unwrap_or_default().to_string()));
    }
    Ok(out)
}

/// `PUT /v3/OS-OAUTH1/authorize/{request_token_id}`: the caller delegates roles it holds on
/// the requested project.
async fn authorize(
    State(state): State<AppState>,
    caller: Caller,
    Path(request_token_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    caller.enforce(&state, "identity:authorize_request_token", &Target::new())?;
    // Keystone reads the body leniently: anything but an object with `roles` is no roles.
    let roles = body_json(body)
        .ok()
        .and_then(|mut m| m.remove("roles"))
        .unwrap_or_else(|| json!([]));
    let roles = authorized_roles(&roles)?;
    if caller.token.is_delegated() {
        return Err(ApiError::forbidden_plain(
            "Cannot authorize a request token with a token issued via delegation.",
        ));
    }
    let request = match is_key(&request_token_id) {
        true => state.store.get_request_token(&request_token_id).await?,
        false => None,
    }
    .ok_or_else(request_token_not_found)?;
    if expired(request.expires_at.as_deref(), state.tokens.clock.now()) {
        return Err(ApiError::unauthorized("Request token is expired"));
    }
    let mut role_ids: Vec<String> = Vec::with_capacity(roles.len());
    for (by_id, value) in roles {
        let id = if by_id {
            value
        } else {
            let mut named = state.store.list_roles().await?;
            named.retain(|r| r.name == value && r.domain_id.is_none());
            match named.len() {
                0 => return Err(ApiError::NotFound(format!("Role {value} is not defined"))),
                1 => named.remove(0).id,
                _ => {
                    return Err(ApiError::Conflict(format!(
                        "Multiple role entities named '{value}' were found; use an id instead."
                    )))
                }
            }
        };
        if !role_ids.contains(&id) {
            role_ids.push(id);
        }
    }
    let held = state
        .identity
        .effective_project_role_ids(caller.user_id(), &request.requested_project_id)
        .await?;
    if role_ids.iter().any(|r| !held.contains(r)) {
        return Err(ApiError::unauthorized(
            "authorizing user does not have role required",
        ));
    }
    let verifier = state
        .identity
        .authorize_request_token(&request.id, caller.user_id(), &role_ids)
        .await?;
    Ok(Json(json!({ "token": { "oauth_verifier": verifier } })))
}

/// The `oauth1` method of `POST /v3/auth/tokens`: the user, project and access token of a
/// request signed with an access token.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> ApiResult<(String, String, String)> {
    let params = header_params(headers)?;
    let access_id = required(&params, "oauth_token")?.to_string();
    let access = match is_key(&access_id) {
        true => state.store.get_access_token(&access_id).await?,
        false => None,
    }
    .ok_or_else(access_token_not_found)?;
    if expired(access.expires_at.as_deref(), state.tokens.clock.now()) {
        return Err(ApiError::unauthorized("Access token is expired"));
    }
    let refused = || ApiError::unauthorized("Could not validate the access token");
    let req = oauth_request(state, params, uri).map_err(|_| refused())?;
    let consumer_id = req.param("oauth_consumer_key").unwrap_or_default();
    // Keystone does not compare the consumer with the access token's; Baton does.
    if consumer_id != access.consumer_id {
        return Err(refused());
    }
    let Some(consumer) = state.store.get_consumer(consumer_id).await? else {
        return Err(refused());
    };
    let url = signed_url(state, headers, uri, true);
    if !req.signature_matches("POST", &url, &consumer.secret, Some(&access.access_secret)) {
        return Err(refused());
    }
    Ok((access.authorizing_user_id, access.project_id, access.id))
}
