//! `/v3/OS-FEDERATION/identity_providers` (with their remote ids and domain),
//! `.../identity_providers/{idp_id}/protocols` and `/v3/OS-FEDERATION/mappings`.
//!
//! Keystone 30 checks identity-provider and protocol bodies with its newer validator before
//! policy; mappings are checked after policy against the mapping schema of their
//! `schema_version`, every violation reported at once.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{FederationProtocol, IdentityProvider, Mapping};
use serde_json::{json, Map, Value};

use super::federation::{boolean_value, check_boolean, enabled_filter, text};
use super::mapping_schema::{violations, DEFAULT_SCHEMA_VERSION, SCHEMA_VERSIONS};
use super::schema::{
    body_json, check_additional, check_range, check_required, check_string, check_type, py_repr,
    schema_error,
};
use super::{
    chosen_id, created, list_target, matches, member, no_content, path_id, url, Caller, Collection,
    ListRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::federation::protocol_not_found;
use crate::policy::Target;
use crate::AppState;

const IDPS: &str = "OS-FEDERATION/identity_providers";
const IDP: &str = "identity_provider";
const MAPPINGS: &str = "OS-FEDERATION/mappings";

/// The identity-provider, protocol and mapping routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("/v3/{IDPS}"), get(list_idps))
        .route(
            &format!("/v3/{IDPS}/{{idp_id}}"),
            get(show_idp)
                .put(create_idp)
                .patch(update_idp)
                .delete(delete_idp),
        )
        .route(
            &format!("/v3/{IDPS}/{{idp_id}}/protocols"),
            get(list_protocols),
        )
        .route(
            &format!("/v3/{IDPS}/{{idp_id}}/protocols/{{protocol_id}}"),
            get(show_protocol)
                .put(create_protocol)
                .patch(update_protocol)
                .delete(delete_protocol),
        )
        .route(&format!("/v3/{MAPPINGS}"), get(list_mappings))
        .route(
            &format!("/v3/{MAPPINGS}/{{mapping_id}}"),
            get(show_mapping)
                .put(create_mapping)
                .patch(update_mapping)
                .delete(delete_mapping),
        )
}

// ----- identity providers ----------------------------------------------------------------------

/// `remote_id`: a string of at most 64 characters.
const REMOTE_ID_MAX: usize = 64;

fn domain_id_ok(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `_identity_provider_properties` (and, creating, `domain_id`), in the schema's order.
fn check_idp_property(key: &str, v: &Value) -> ApiResult<()> {
    match key {
        "enabled" => check_boolean(key, v),
        "description" => check_type(key, v, &["string", "null"]),
        "authorization_ttl" => {
            check_type(key, v, &["integer", "null"])?;
            // The column is a 32-bit integer (Keystone's schema sets no maximum).
            check_range(key, v, 0, i64::from(i32::MAX))
        }
        "remote_ids" => {
            check_type(key, v, &["array", "null"])?;
            let Value::Array(ids) = v else {
                return Ok(());
            };
            for (i, id) in ids.iter().enumerate() {
                let at = i.to_string();
                check_type(&at, id, &["string"])?;
                check_string(&at, id, 0, REMOTE_ID_MAX, None)?;
            }
            if ids.iter().enumerate().any(|(i, x)| ids[..i].contains(x)) {
                return Err(schema_error(
                    key,
                    v,
                    format!("{} has non-unique elements", py_repr(v)),
                ));
            }
            Ok(())
        }
        "domain_id" => {
            check_type(key, v, &["string", "null"])?;
            check_string(key, v, 1, 64, Some(("^[a-zA-Z0-9-]+$", domain_id_ok)))
        }
        _ => Ok(()),
    }
}

/// `identity_provider_create_request_body` / `_update_request_body`; the inner object.
fn check_idp_body(body: &Map<String, Value>, creating: bool) -> ApiResult<Map<String, Value>> {
    let properties: &[&str] = if creating {
        &[
            "enabled",
            "description",
            "authorization_ttl",
            "remote_ids",
            "domain_id",
        ]
    } else {
        &["enabled", "description", "authorization_ttl", "remote_ids"]
    };
    if let Some(idp) = body.get(IDP) {
        check_type(IDP, idp, &["object"])?;
        if let Value::Object(m) = idp {
            for key in properties {
                if let Some(v) = m.get(*key) {
                    check_idp_property(key, v)?;
                }
            }
            check_additional(IDP, m, properties)?;
            if !creating && m.is_empty() {
                return Err(schema_error(IDP, idp, "{} should be non-empty"));
            }
        }
    }
    if creating {
        check_additional("", body, &[IDP])?;
    } else {
        check_required("", body, &[IDP])?;
    }
    Ok(body
        .get(IDP)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

fn remote_ids_of(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn render_idp(idp: &IdentityProvider) -> Value {
    json!({
        "id": idp.id,
        "enabled": idp.enabled,
        "description": idp.description,
        "domain_id": idp.domain_id,
        "authorization_ttl": idp.authorization_ttl,
        "remote_ids": idp.remote_ids,
    })
}

/// A listed identity provider also links to its protocols (Keystone 30 adds that link in
/// listings only).
fn render_listed_idp(state: &AppState, headers: &HeaderMap, idp: &IdentityProvider) -> Value {
    let mut v = render_idp(idp);
    v["links"] = json!({"protocols": url(state, headers, &format!("{IDPS}/{}/protocols", idp.id))});
    v
}

fn idp_target(id: &str) -> Target {
    Target::new().with("idp_id", id.to_string())
}

async fn load_idp(state: &AppState, id: &str) -> ApiResult<IdentityProvider> {
    path_id("Identity Provider", id)?;
    Ok(state.store.get_identity_provider(id).await?)
}

async fn list_idps(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_identity_providers",
        &list_target(&list.query, &["id", "enabled"]),
    )?;
    let page = list.page(None)?;
    let enabled = enabled_filter(&list);
    let items = state
        .store
        .list_identity_providers()
        .await?
        .iter()
        .filter(|i| matches(&list.query, "id", Some(&i.id)))
        .filter(|i| enabled.is_none_or(|e| i.enabled == e))
        .map(|i| render_listed_idp(&state, &headers, i))
        .collect();
    let c = Collection::of("identity_providers")
        .at(IDPS.into())
        .members_under(IDPS.into());
    Ok(list.respond(&page, c, items))
}

async fn show_idp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(idp_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:get_identity_provider",
        &idp_target(&idp_id),
    )?;
    let idp = load_idp(&state, &idp_id).await?;
    let body = render_idp(&idp);
    Ok(member(&state, &headers, IDPS, IDP, body).into_response())
}

async fn create_idp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(idp_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_idp_body(&body, true)?;
    caller.enforce(
        &state,
        "identity:create_identity_provider",
        &idp_target(&idp_id),
    )?;
    chosen_id("identity provider", &idp_id)?;
    let given = remote_ids_of(m.get("remote_ids"));
    let idp = IdentityProvider {
        id: idp_id,
        enabled: m.get("enabled").is_some_and(boolean_value),
        description: text(m.get("description")),
        domain_id: text(m.get("domain_id")).unwrap_or_default(),
        authorization_ttl: m.get("authorization_ttl").and_then(Value::as_i64),
        remote_ids: given.clone(),
    };
    let mut idp = state.identity.create_identity_provider(idp).await?;
    // Keystone answers with the remote ids in the order given; later reads sort them.
    idp.remote_ids = given;
    let body = render_idp(&idp);
    Ok(created(&state, &headers, IDPS, IDP, body))
}

async fn update_idp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(idp_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_idp_body(&body, false)?;
    caller.enforce(
        &state,
        "identity:update_identity_provider",
        &idp_target(&idp_id),
    )?;
    let mut idp = load_idp(&state, &idp_id).await?;
    if let Some(v) = m.get("enabled") {
        idp.enabled = boolean_value(v);
    }
    if m.contains_key("description") {
        idp.description = text(m.get("description"));
    }
    if m.contains_key("authorization_ttl") {
        idp.authorization_ttl = m.get("authorization_ttl").and_then(Value::as_i64);
    }
    if m.contains_key("remote_ids") {
        idp.remote_ids = remote_ids_of(m.get("remote_ids"));
    }
    let shown = idp.remote_ids.clone();
    let mut idp = state.identity.update_identity_provider(&idp).await?;
    idp.remote_ids = shown;
    let body = render_idp(&idp);
    Ok(member(&state, &headers, IDPS, IDP, body).into_response())
}

async fn delete_idp(
    State(state): State<AppState>,
    caller: Caller,
    Path(idp_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_identity_provider",
        &idp_target(&idp_id),
    )?;
    path_id("Identity Provider", &idp_id)?;
    state.identity.delete_identity_provider(&idp_id).await?;
    Ok(no_content())
}

// ----- protocols -------------------------------------------------------------------------------

const PROTOCOL: &str = "protocol";
/// `mapping_id` and `protocol_id`: 1 to 64 characters.
const ID_MAX: usize = 64;

/// `protocol_create_request_body` / `protocol_update_request_body` (where
/// `remote_id_attribute` may not be null and `mapping_id` is still required); the inner
/// object.
fn check_protocol_body(body: &Map<String, Value>, creating: bool) -> ApiResult<Map<String, Value>> {
    const PROPERTIES: &[&str] = &["mapping_id", "remote_id_attribute"];
    if let Some(p) = body.get(PROTOCOL) {
        check_type(PROTOCOL, p, &["object"])?;
        if let Value::Object(m) = p {
            if let Some(v) = m.get("mapping_id") {
                check_type("mapping_id", v, &["string"])?;
                check_string("mapping_id", v, 1, ID_MAX, None)?;
            }
            if let Some(v) = m.get("remote_id_attribute") {
                let types: &[&str] = if creating {
                    &["string", "null"]
                } else {
                    &["string"]
                };
                check_type("remote_id_attribute", v, types)?;
                check_string("remote_id_attribute", v, 0, REMOTE_ID_MAX, None)?;
            }
            check_additional(PROTOCOL, m, PROPERTIES)?;
            if !creating && m.is_empty() {
                return Err(schema_error(PROTOCOL, p, "{} should be non-empty"));
            }
            check_required(PROTOCOL, m, &["mapping_id"])?;
        }
    }
    check_required("", body, &[PROTOCOL])?;
    check_additional("", body, &[PROTOCOL])?;
    Ok(body
        .get(PROTOCOL)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

/// A protocol's links: its `self` under `/v3/protocols` and its identity provider at
/// `/v3/<idp_id>`, both as Keystone 30 builds them.
fn protocol_links(state: &AppState, headers: &HeaderMap, p: &FederationProtocol) -> Value {
    json!({
        "self": url(state, headers, &format!("protocols/{}", p.id)),
        "identity_provider": url(state, headers, &p.idp_id),
    })
}

/// A protocol as show, create and update render it (Keystone filters it to these fields).
fn render_protocol(state: &AppState, headers: &HeaderMap, p: &FederationProtocol) -> Value {
    json!({"protocol": {
        "id": p.id,
        "mapping_id": p.mapping_id,
        "links": protocol_links(state, headers, p),
    }})
}

fn protocol_target(idp_id: &str, protocol_id: &str) -> Target {
    Target::new()
        .with("idp_id", idp_id.to_string())
        .with("protocol_id", protocol_id.to_string())
}

async fn list_protocols(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(idp_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.enforce(&state, "identity:list_protocols", &idp_target(&idp_id))?;
    let protocols: Vec<Value> = state
        .store
        .list_federation_protocols(&idp_id)
        .await?
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "idp_id": p.idp_id,
                "mapping_id": p.mapping_id,
                "remote_id_attribute": p.remote_id_attribute,
                "links": protocol_links(&state, &headers, p),
            })
        })
        .collect();
    let here = url(&state, &headers, &format!("{IDPS}/{idp_id}/protocols"));
    Ok(Json(json!({
        "protocols": protocols,
        "links": {"self": here, "previous": null, "next": null},
    })))
}

async fn show_protocol(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((idp_id, protocol_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.enforce(
        &state,
        "identity:get_protocol",
        &protocol_target(&idp_id, &protocol_id),
    )?;
    let p = state
        .store
        .get_federation_protocol(&idp_id, &protocol_id)
        .await?
        .ok_or_else(|| protocol_not_found(&idp_id, &protocol_id))?;
    Ok(Json(render_protocol(&state, &headers, &p)))
}

async fn create_protocol(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((idp_id, protocol_id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_protocol_body(&body, true)?;
    caller.enforce(
        &state,
        "identity:create_protocol",
        &protocol_target(&idp_id, &protocol_id),
    )?;
    chosen_id("protocol", &protocol_id)?;
    let p = FederationProtocol {
        id: protocol_id,
        idp_id,
        mapping_id: text(m.get("mapping_id")).unwrap_or_default(),
        remote_id_attribute: text(m.get("remote_id_attribute")),
    };
    let p = state.identity.put_federation_protocol(&p, true).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(render_protocol(&state, &headers, &p)),
    )
        .into_response())
}

async fn update_protocol(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((idp_id, protocol_id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body_json(body)?;
    let m = check_protocol_body(&body, false)?;
    caller.enforce(
        &state,
        "identity:update_protocol",
        &protocol_target(&idp_id, &protocol_id),
    )?;
    let existing = state
        .store
        .get_federation_protocol(&idp_id, &protocol_id)
        .await?;
    let p = FederationProtocol {
        mapping_id: text(m.get("mapping_id")).unwrap_or_default(),
        remote_id_attribute: match m.get("remote_id_attribute") {
            Some(v) => text(Some(v)),
            None => existing.and_then(|e| e.remote_id_attribute),
        },
        id: protocol_id,
        idp_id,
    };
    let p = state.identity.put_federation_protocol(&p, false).await?;
    Ok(Json(render_protocol(&state, &headers, &p)))
}

async fn delete_protocol(
    State(state): State<AppState>,
    caller: Caller,
    Path((idp_id, protocol_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_protocol",
        &protocol_target(&idp_id, &protocol_id),
    )?;
    state
        .identity
        .delete_federation_protocol(&idp_id, &protocol_id)
        .await?;
    Ok(no_content())
}

// ----- mappings --------------------------------------------------------------------------------

fn render_mapping(m: &Mapping) -> Value {
    let rules: Value = serde_json::from_str(&m.rules).unwrap_or(Value::Null);
    json!({"id": m.id, "rules": rules, "schema_version": m.schema_version})
}

fn mapping_target(id: &str) -> Target {
    Target::new().with("mapping_id", id.to_string())
}

/// The mapping in a body, its `schema_version` defaulted, checked against its version's
/// schema: Keystone's 400 lists every violation, one per line.
fn checked_mapping(id: &str, body: &Map<String, Value>) -> ApiResult<Mapping> {
    let mut mapping = match body.get("mapping") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute mapping. Value: {}. {} is not of type 'object'",
                py_repr(other),
                py_repr(other)
            )))
        }
    };
    let given = mapping
        .get("schema_version")
        .filter(|v| !matches!(v, Value::Null | Value::Bool(false)) && *v != "")
        .cloned();
    let version = match given {
        None => DEFAULT_SCHEMA_VERSION.to_string(),
        Some(Value::String(s)) if SCHEMA_VERSIONS.contains(&s.as_str()) => s,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute schema_version. Value: {}. It is not one of {}",
                py_repr(&other),
                py_repr(&json!(SCHEMA_VERSIONS))
            )))
        }
    };
    mapping.insert("schema_version".into(), Value::String(version.clone()));
    let found = violations(&Value::Object(mapping.clone()), &version).unwrap_or_default();
    if !found.is_empty() {
        let mut message = String::new();
        for line in found {
            message.push_str(&line);
            message.push('\n');
        }
        return Err(ApiError::BadRequest(message));
    }
    Ok(Mapping {
        id: id.to_string(),
        rules: mapping
            .get("rules")
            .map(Value::to_string)
            .unwrap_or_else(|| "null".into()),
        schema_version: version,
    })
}

async fn list_mappings(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:list_mappings", &Target::new())?;
    let items = state
        .store
        .list_mappings()
        .await?
        .iter()
        .map(render_mapping)
        .collect();
    let c = Collection::of("mappings")
        .at(MAPPINGS.into())
        .members_under(MAPPINGS.into());
    Ok(list.respond(&list.page(None)?, c, items))
}

async fn show_mapping(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(mapping_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_mapping", &mapping_target(&mapping_id))?;
    path_id("mapping", &mapping_id)?;
    let m = state.store.get_mapping(&mapping_id).await?;
    Ok(member(&state, &headers, MAPPINGS, "mapping", render_mapping(&m)).into_response())
}

async fn create_mapping(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(mapping_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    caller.enforce(
        &state,
        "identity:create_mapping",
        &mapping_target(&mapping_id),
    )?;
    chosen_id("mapping", &mapping_id)?;
    let m = checked_mapping(&mapping_id, &body)?;
    let m = state.identity.put_mapping(&m, true).await?;
    Ok(created(
        &state,
        &headers,
        MAPPINGS,
        "mapping",
        render_mapping(&m),
    ))
}

async fn update_mapping(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(mapping_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    caller.enforce(
        &state,
        "identity:update_mapping",
        &mapping_target(&mapping_id),
    )?;
    let m = checked_mapping(&mapping_id, &body)?;
    path_id("mapping", &mapping_id)?;
    let m = state.identity.put_mapping(&m, false).await?;
    Ok(member(&state, &headers, MAPPINGS, "mapping", render_mapping(&m)).into_response())
}

async fn delete_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path(mapping_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_mapping",
        &mapping_target(&mapping_id),
    )?;
    path_id("mapping", &mapping_id)?;
    state.identity.delete_mapping(&mapping_id).await?;
    Ok(no_content())
}
