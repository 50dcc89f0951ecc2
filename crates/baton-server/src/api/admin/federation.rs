//! `/v3/OS-FEDERATION/service_providers`: the remote clouds a token may be taken to (listed in
//! every token while enabled).
//!
//! Keystone 30 checks these bodies with its newer validator before policy (its
//! `request_body_schema` decorator runs first), then policy, then the rows.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_store::ServiceProvider;
use serde_json::{json, Map, Value};

use super::schema::{
    body_json, check_additional, check_required, check_string, check_type, py_repr, schema_error,
};
use super::{
    created, list_target, matches, member, no_content, path_id, Caller, Collection, ListRequest,
};
use crate::error::ApiResult;
use crate::policy::Target;
use crate::AppState;

const SPS: &str = "OS-FEDERATION/service_providers";
const SP: &str = "service_provider";

/// The service-provider routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("/v3/{SPS}"), get(list_sps))
        .route(
            &format!("/v3/{SPS}/{{sp_id}}"),
            get(show_sp)
                .put(create_sp)
                .patch(update_sp)
                .delete(delete_sp),
        )
}

/// `[saml] relay_state_prefix`'s default.
const RELAY_STATE_PREFIX: &str = "ss:mem:";
/// `parameter_types.url`: at most 225 characters, `scheme:rest`.
const URL_MAX: usize = 225;
/// The properties of `_service_provider_properties`, in the schema's order.
const SP_PROPERTIES: &[&str] = &[
    "auth_url",
    "sp_url",
    "description",
    "enabled",
    "relay_state_prefix",
];

/// The spellings Keystone 30's `parameter_types.boolean` accepts, with their meaning.
const BOOLEANS: &[(&str, bool)] = &[
    ("True", true),
    ("TRUE", true),
    ("true", true),
    ("False", false),
    ("FALSE", false),
    ("false", false),
    ("", false),
    ("1", true),
    ("0", false),
    ("y", true),
    ("Y", true),
    ("n", false),
    ("N", false),
    ("on", true),
    ("ON", true),
    ("off", false),
    ("OFF", false),
    ("yes", true),
    ("no", false),
];

/// The schema's `enum` as jsonschema quotes it in its message.
const BOOLEAN_ENUM: &str = "[True, 'True', 'TRUE', 'true', False, 'False', 'FALSE', 'false', '', '1', '0', 'y', 'Y', 'n', 'N', 'on', 'ON', 'off', 'OFF', 'yes', 'no']";

pub(super) fn url_ok(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && !rest.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        }
        None => false,
    }
}

/// `parameter_types.boolean`: a boolean, `null`, or one of its string spellings.
pub(super) fn check_boolean(at: &str, v: &Value) -> ApiResult<()> {
    check_type(at, v, &["boolean", "string", "null"])?;
    if let Value::String(s) = v {
        if !BOOLEANS.iter().any(|(k, _)| k == s) {
            return Err(schema_error(
                at,
                v,
                format!("{} is not one of {BOOLEAN_ENUM}", py_repr(v)),
            ));
        }
    }
    Ok(())
}

/// What a checked boolean means (`null` and the "false" spellings are false).
pub(super) fn boolean_value(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => BOOLEANS.iter().any(|(k, t)| k == s && *t),
        _ => false,
    }
}

/// `service_provider_create_request_body` / `_update_request_body`, in jsonschema's order;
/// the inner object.
fn check_sp_body(body: &Map<String, Value>, creating: bool) -> ApiResult<Map<String, Value>> {
    if let Some(sp) = body.get(SP) {
        check_type(SP, sp, &["object"])?;
        if let Value::Object(m) = sp {
            // `properties` checks in the schema's order.
            for key in SP_PROPERTIES {
                let Some(v) = m.get(*key) else {
                    continue;
                };
                match *key {
                    "auth_url" | "sp_url" => {
                        check_type(key, v, &["string"])?;
                        check_string(key, v, 0, URL_MAX, Some(("^[a-zA-Z0-9+.-]+:.+", url_ok)))?;
                    }
                    "description" | "relay_state_prefix" => {
                        check_type(key, v, &["string", "null"])?;
                    }
                    "enabled" => check_boolean(key, v)?,
                    _ => {}
                }
            }
            if creating {
                check_required(SP, m, &["auth_url", "sp_url"])?;
            }
            check_additional(SP, m, SP_PROPERTIES)?;
            if !creating && m.is_empty() {
                return Err(schema_error(SP, sp, "{} should be non-empty"));
            }
        }
    }
    check_required("", body, &[SP])?;
    check_additional("", body, &[SP])?;
    Ok(body
        .get(SP)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

fn render_sp(sp: &ServiceProvider) -> Value {
    json!({
        "id": sp.id,
        "enabled": sp.enabled,
        "description": sp.description,
        "auth_url": sp.auth_url,
        "sp_url": sp.sp_url,
        "relay_state_prefix": sp.relay_state_prefix,
    })
}

fn sp_target(id: &str) -> Target {
    Target::new().with("sp_id", id.to_string())
}

async fn load_sp(state: &AppState, id: &str) -> ApiResult<ServiceProvider> {
    path_id("Service Provider", id)?;
    Ok(state.store.get_service_provider(id).await?)
}

/// A string attribute of a checked body.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// The `enabled` filter of a federation listing, read as the schema's booleans.
pub(super) fn enabled_filter(list: &ListRequest) -> Option<bool> {
    list.query.get("enabled").map(|e| boolean_value(&json!(e)))
}

async fn list_sps(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_service_providers",
        &list_target(&list.query, &["id", "enabled"]),
    )?;
    let page = list.page(None)?;
    let enabled = enabled_filter(&list);
    let items = state
        .store
        .list_service_providers()
        .await?
        .iter()
        .filter(|sp| matches(&list.query, "id", Some(&sp.id)))
        .filter(|sp| enabled.is_none_or(|e| sp.enabled == e))
        .map(render_sp)
        .collect();
    let c = Collection::of("service_providers")
        .at(SPS.into())
        .members_under(SPS.into());
    Ok(list.respond(&page, c, items))
}

async fn show_sp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(sp_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_service_provider", &sp_target(&sp_id))?;
    let sp = load_sp(&state, &sp_id).await?;
    Ok(member(&state, &headers, SPS, SP, render_sp(&sp)).into_response())
}

async fn create_sp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(sp_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_sp_body(&body, true)?;
    caller.enforce(
        &state,
        "identity:create_service_provider",
        &sp_target(&sp_id),
    )?;
    super::chosen_id("service provider", &sp_id)?;
    let sp = ServiceProvider {
        id: sp_id,
        enabled: m.get("enabled").is_some_and(boolean_value),
        description: text(m.get("description")),
        auth_url: text(m.get("auth_url")).unwrap_or_default(),
        sp_url: text(m.get("sp_url")).unwrap_or_default(),
        relay_state_prefix: text(m.get("relay_state_prefix"))
            .unwrap_or_else(|| RELAY_STATE_PREFIX.to_string()),
    };
    state.identity.put_service_provider(&sp, true).await?;
    let sp = state.store.get_service_provider(&sp.id).await?;
    Ok(created(&state, &headers, SPS, SP, render_sp(&sp)))
}

async fn update_sp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(sp_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_sp_body(&body, false)?;
    caller.enforce(
        &state,
        "identity:update_service_provider",
        &sp_target(&sp_id),
    )?;
    let mut sp = load_sp(&state, &sp_id).await?;
    if let Some(v) = m.get("enabled") {
        sp.enabled = boolean_value(v);
    }
    if m.contains_key("description") {
        sp.description = text(m.get("description"));
    }
    if let Some(u) = text(m.get("auth_url")) {
        sp.auth_url = u;
    }
    if let Some(u) = text(m.get("sp_url")) {
        sp.sp_url = u;
    }
    if let Some(p) = text(m.get("relay_state_prefix")) {
        sp.relay_state_prefix = p;
    }
    state.identity.put_service_provider(&sp, false).await?;
    let sp = state.store.get_service_provider(&sp_id).await?;
    Ok(member(&state, &headers, SPS, SP, render_sp(&sp)).into_response())
}

async fn delete_sp(
    State(state): State<AppState>,
    caller: Caller,
    Path(sp_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_service_provider",
        &sp_target(&sp_id),
    )?;
    path_id("Service Provider", &sp_id)?;
    state.identity.delete_service_provider(&sp_id).await?;
    Ok(no_content())
}
