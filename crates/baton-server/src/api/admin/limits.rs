//! `/v3/registered_limits`, `/v3/limits` and `/v3/limits/model` (unified limits): parse with
//! Keystone 30's schemas (checked before policy, as its validator decorators do), enforce, call
//! one `state.identity` operation, render. The rules live in `identity/limits.rs`.
//!
//! A listing of limits shows a caller what its scope covers, as Keystone's does: everything to a
//! system-scoped token or one with the `admin` or `service` role, a domain's limits and its
//! projects' to a domain-scoped token, and only its project's to a project-scoped one.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{Limit, NewLimit, RegisteredLimit};
use serde_json::{json, Map, Value};

use super::schema::{
    body_error, body_json, check_additional, check_range, check_required, check_string, check_type,
    check_uuid, integer, py_repr, schema_error,
};
use super::{list_target, matches, member, no_content, url, Caller, Collection, ListRequest};
use crate::error::ApiResult;
use crate::identity::limits::{
    limit_error, model_description, LimitChanges, RegisteredLimitChanges,
};
use crate::policy::Target;
use crate::AppState;

/// The unified-limit routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/registered_limits",
            get(list_registered).post(create_registered),
        )
        .route(
            "/v3/registered_limits/{registered_limit_id}",
            get(show_registered)
                .patch(update_registered)
                .delete(delete_registered),
        )
        .route("/v3/limits", get(list_limits).post(create_limits))
        .route("/v3/limits/model", get(show_model))
        .route(
            "/v3/limits/{limit_id}",
            get(show_limit).patch(update_limit).delete(delete_limit),
        )
}

// ----- rendering -----------------------------------------------------------------------------

fn render_registered(r: &RegisteredLimit) -> Value {
    json!({
        "id": r.id,
        "service_id": r.service_id,
        "region_id": r.region_id,
        "resource_name": r.resource_name,
        "default_limit": r.default_limit,
        "description": r.description,
    })
}

fn render_limit(l: &Limit) -> Value {
    json!({
        "id": l.id,
        "project_id": l.project_id,
        "domain_id": l.domain_id,
        "service_id": l.service_id,
        "region_id": l.region_id,
        "resource_name": l.resource_name,
        "resource_limit": l.resource_limit,
        "description": l.description,
    })
}

/// 201 with `{"<key>": [...]}`, each with its self link and no collection links (Keystone pops
/// them from a create's answer).
fn created_list(state: &AppState, headers: &HeaderMap, key: &str, items: Vec<Value>) -> Response {
    let base = url(state, headers, key);
    let items: Vec<Value> = items
        .into_iter()
        .map(|v| super::with_self_link(v, &base))
        .collect();
    (StatusCode::CREATED, Json(json!({ key: items }))).into_response()
}

// ----- schemas (keystone/limit/schema.py) ----------------------------------------------------

/// One property's schema, checked keyword by keyword in the schema's order.
#[derive(Clone, Copy)]
enum Prop {
    /// `{"type": "string", "format": "uuid"}`.
    Uuid,
    /// `region_id`: a string or null, 1 to 255 characters.
    Region,
    /// `name`: 1 to 255 characters, not only whitespace.
    Name,
    /// A nullable description of at most 255 characters.
    Description,
    /// A limit's value: an integer from -1 (unlimited) to 2^31 - 1.
    Value,
    /// `project_id` / `domain_id`: 1 to 64 of `[a-zA-Z0-9-]`, optionally null.
    Id { nullable: bool },
}

fn not_blank(s: &str) -> bool {
    s.chars().any(|c| !c.is_whitespace())
}

fn id_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_prop(key: &str, v: &Value, prop: Prop) -> ApiResult<()> {
    match prop {
        Prop::Uuid => {
            check_type(key, v, &["string"])?;
            check_uuid(key, v)
        }
        Prop::Region => {
            check_type(key, v, &["string", "null"])?;
            check_string(key, v, 1, 255, None)
        }
        Prop::Name => {
            check_type(key, v, &["string"])?;
            check_string(key, v, 1, 255, Some(("[\\S]+", not_blank)))
        }
        Prop::Description => {
            check_type(key, v, &["string", "null"])?;
            check_string(key, v, 0, 255, None)
        }
        Prop::Value => {
            check_type(key, v, &["integer"])?;
            check_range(key, v, -1, 0x7FFF_FFFF)
        }
        Prop::Id { nullable } => {
            let types: &[&str] = if nullable {
                &["string", "null"]
            } else {
                &["string"]
            };
            check_type(key, v, types)?;
            check_string(key, v, 1, 64, Some(("^[a-zA-Z0-9-]+$", id_chars)))
        }
    }
}

fn check_props(obj: &Map<String, Value>, props: &[(&str, Prop)]) -> ApiResult<()> {
    for (key, prop) in props {
        if let Some(v) = obj.get(*key) {
            check_prop(key, v, *prop)?;
        }
    }
    Ok(())
}

const REGISTERED_PROPS: &[(&str, Prop)] = &[
    ("service_id", Prop::Uuid),
    ("region_id", Prop::Region),
    ("resource_name", Prop::Name),
    ("default_limit", Prop::Value),
    ("description", Prop::Description),
];

const LIMIT_PROPS: &[(&str, Prop)] = &[
    ("project_id", Prop::Id { nullable: true }),
    ("domain_id", Prop::Id { nullable: true }),
    ("resource_name", Prop::Name),
    ("region_id", Prop::Region),
    ("service_id", Prop::Uuid),
    ("resource_limit", Prop::Value),
    ("description", Prop::Description),
];

const LIMIT_UPDATE_PROPS: &[(&str, Prop)] = &[
    ("resource_limit", Prop::Value),
    ("description", Prop::Description),
];

fn names(props: &[(&'static str, Prop)]) -> Vec<&'static str> {
    props.iter().map(|(k, _)| *k).collect()
}

/// `{"<key>": [item, ...]}` with at least one item, each checked by `item`.
fn check_batch<'a>(
    body: &'a Map<String, Value>,
    key: &str,
    item: fn(&str, &Map<String, Value>) -> ApiResult<()>,
) -> ApiResult<Vec<&'a Map<String, Value>>> {
    if let Some(list) = body.get(key) {
        check_type(key, list, &["array"])?;
        let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
        if items.is_empty() {
            return Err(schema_error(
                key,
                list,
                format!("{} should be non-empty", py_repr(list)),
            ));
        }
        for (i, v) in items.iter().enumerate() {
            check_type(&i.to_string(), v, &["object"])?;
            if let Value::Object(m) = v {
                item(&i.to_string(), m)?;
            }
        }
    }
    check_required("", body, &[key])?;
    check_additional("", body, &[key])?;
    Ok(body
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_object)
        .collect())
}

/// `_registered_limit_create`: properties, then `additionalProperties`, then `required`.
fn check_registered_item(at: &str, m: &Map<String, Value>) -> ApiResult<()> {
    check_props(m, REGISTERED_PROPS)?;
    check_additional(at, m, &names(REGISTERED_PROPS))?;
    check_required(at, m, &["service_id", "resource_name", "default_limit"])
}

/// `_limit_create`: properties, `required`, then exactly one of `project_id` and `domain_id`
/// (`oneOf`), then `additionalProperties`.
fn check_limit_item(at: &str, m: &Map<String, Value>) -> ApiResult<()> {
    check_props(m, LIMIT_PROPS)?;
    check_required(at, m, &["service_id", "resource_name", "resource_limit"])?;
    let whole = Value::Object(m.clone());
    match (m.contains_key("project_id"), m.contains_key("domain_id")) {
        (true, true) => {
            return Err(schema_error(
                at,
                &whole,
                format!(
                    "{} is valid under each of {{'required': ['service_id', 'resource_name', 'resource_limit', 'project_id']}}, {{'required': ['service_id', 'resource_name', 'resource_limit', 'domain_id']}}",
                    py_repr(&whole)
                ),
            ))
        }
        (false, false) => {
            return Err(schema_error(
                at,
                &whole,
                format!(
                    "{} is not valid under any of the given schemas",
                    py_repr(&whole)
                ),
            ))
        }
        _ => {}
    }
    check_additional(at, m, &names(LIMIT_PROPS))
}

/// An update body `{"<key>": {...}}`: the object's properties, its `additionalProperties`, then
/// the body's `additionalProperties` and `required`.
fn check_update<'a>(
    body: &'a Map<String, Value>,
    key: &str,
    props: &[(&'static str, Prop)],
) -> ApiResult<&'a Map<String, Value>> {
    if let Some(v) = body.get(key) {
        check_type(key, v, &["object"])?;
        if let Value::Object(m) = v {
            check_props(m, props)?;
            check_additional(key, m, &names(props))?;
        }
    }
    check_additional("", body, &[key])?;
    check_required("", body, &[key])?;
    match body.get(key) {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(body_error(format!("'{key}' is a required property"))),
    }
}

/// The list query's schema: the filters' formats (other parameters pass).
fn check_query(list: &ListRequest, props: &[(&str, Prop)]) -> ApiResult<()> {
    for (key, prop) in props {
        if let Some(v) = list.query.get(key) {
            check_prop(key, &Value::String(v.to_string()), *prop)?;
        }
    }
    Ok(())
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

fn nullable_text(m: &Map<String, Value>, key: &str) -> Option<Option<String>> {
    m.get(key).map(|v| v.as_str().map(str::to_string))
}

fn number(m: &Map<String, Value>, key: &str) -> Option<i64> {
    m.get(key).and_then(integer)
}

// ----- registered limits -----------------------------------------------------------------------

const REGISTERED_FILTERS: &[&str] = &["service_id", "region_id", "resource_name"];

fn list_limit(state: &AppState) -> Option<u32> {
    state.config().unified_limit.list_limit
}

async fn list_registered(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    check_query(&list, &REGISTERED_PROPS[..3])?;
    caller.enforce(
        &state,
        "identity:list_registered_limits",
        &list_target(&list.query, REGISTERED_FILTERS),
    )?;
    let page = list.page(list_limit(&state))?;
    let items = state
        .store
        .list_registered_limits()
        .await?
        .iter()
        .filter(|r| {
            matches(&list.query, "service_id", r.service_id.as_deref())
                && matches(&list.query, "region_id", r.region_id.as_deref())
                && matches(&list.query, "resource_name", r.resource_name.as_deref())
        })
        .map(render_registered)
        .collect();
    Ok(list.respond(&page, Collection::of("registered_limits"), items))
}

async fn create_registered(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let items = check_batch(&body, "registered_limits", check_registered_item)?;
    caller.enforce(&state, "identity:create_registered_limits", &Target::new())?;
    let new = items
        .into_iter()
        .map(|m| RegisteredLimit {
            id: baton_store::new_id(),
            service_id: text(m, "service_id"),
            region_id: text(m, "region_id"),
            resource_name: text(m, "resource_name"),
            default_limit: number(m, "default_limit").unwrap_or_default(),
            description: text(m, "description"),
        })
        .collect();
    let made = state.identity.create_registered_limits(new).await?;
    let items = made.iter().map(render_registered).collect();
    Ok(created_list(&state, &headers, "registered_limits", items))
}

async fn show_registered(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_registered_limit", &Target::new())?;
    let r = state
        .store
        .get_registered_limit(&id)
        .await
        .map_err(limit_error)?;
    Ok(member(
        &state,
        &headers,
        "registered_limits",
        "registered_limit",
        render_registered(&r),
    )
    .into_response())
}

async fn update_registered(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_update(&body, "registered_limit", REGISTERED_PROPS)?;
    caller.enforce(&state, "identity:update_registered_limit", &Target::new())?;
    let changes = RegisteredLimitChanges {
        service_id: text(m, "service_id"),
        region_id: nullable_text(m, "region_id"),
        resource_name: text(m, "resource_name"),
        default_limit: number(m, "default_limit"),
        description: nullable_text(m, "description"),
    };
    let r = state.identity.update_registered_limit(&id, changes).await?;
    Ok(member(
        &state,
        &headers,
        "registered_limits",
        "registered_limit",
        render_registered(&r),
    )
    .into_response())
}

async fn delete_registered(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:delete_registered_limit", &Target::new())?;
    state.identity.delete_registered_limit(&id).await?;
    Ok(no_content())
}

// ----- limits ----------------------------------------------------------------------------------

const LIMIT_FILTERS: &[&str] = &[
    "service_id",
    "region_id",
    "resource_name",
    "project_id",
    "domain_id",
];

const LIMIT_QUERY: &[(&str, Prop)] = &[
    ("service_id", Prop::Uuid),
    ("region_id", Prop::Region),
    ("resource_name", Prop::Name),
    ("project_id", Prop::Id { nullable: false }),
    ("domain_id", Prop::Id { nullable: false }),
];

/// What a caller's listing covers (see the module documentation).
async fn visible_limits(state: &AppState, caller: &Caller) -> ApiResult<Vec<Limit>> {
    let body = &caller.token.body;
    let superuser = body.is_system_scoped()
        || body
            .roles
            .iter()
            .flatten()
            .any(|r| r.name == "admin" || r.name == "service");
    let all = state.store.list_limits().await?;
    if superuser {
        return Ok(all);
    }
    if let Some(domain) = &body.domain {
        let mut slice = crate::identity::ProjectSlice::new();
        slice.load_domain(&state.store, &domain.id).await?;
        let projects = slice.tree().projects_in_domain(&domain.id);
        return Ok(all
            .into_iter()
            .filter(|l| match (&l.project_id, &l.domain_id) {
                (Some(p), _) => projects.contains(p),
                (None, Some(d)) => *d == domain.id,
                _ => false,
            })
            .collect());
    }
    if let Some(project) = &body.project {
        return Ok(all
            .into_iter()
            .filter(|l| l.project_id.as_deref() == Some(project.id.as_str()))
            .collect());
    }
    Ok(Vec::new())
}

async fn list_limits(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    check_query(&list, LIMIT_QUERY)?;
    caller.enforce(
        &state,
        "identity:list_limits",
        &list_target(&list.query, LIMIT_FILTERS),
    )?;
    let page = list.page(list_limit(&state))?;
    let items = visible_limits(&state, &caller)
        .await?
        .iter()
        .filter(|l| {
            matches(&list.query, "service_id", l.service_id.as_deref())
                && matches(&list.query, "region_id", l.region_id.as_deref())
                && matches(&list.query, "resource_name", l.resource_name.as_deref())
                && matches(&list.query, "project_id", l.project_id.as_deref())
                && matches(&list.query, "domain_id", l.domain_id.as_deref())
        })
        .map(render_limit)
        .collect();
    Ok(list.respond(&page, Collection::of("limits"), items))
}

async fn create_limits(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let items = check_batch(&body, "limits", check_limit_item)?;
    caller.enforce(&state, "identity:create_limits", &Target::new())?;
    let new = items
        .into_iter()
        .map(|m| NewLimit {
            id: baton_store::new_id(),
            project_id: text(m, "project_id"),
            domain_id: text(m, "domain_id"),
            service_id: text(m, "service_id").unwrap_or_default(),
            region_id: text(m, "region_id"),
            resource_name: text(m, "resource_name").unwrap_or_default(),
            resource_limit: number(m, "resource_limit").unwrap_or_default(),
            description: text(m, "description"),
        })
        .collect();
    let made = state.identity.create_limits(new).await?;
    let items = made.iter().map(render_limit).collect();
    Ok(created_list(&state, &headers, "limits", items))
}

/// Keystone's target for `get_limit`: the limit with its project or domain (empty when the
/// limit does not exist, so the 404 comes after the policy check).
async fn limit_target(state: &AppState, id: &str) -> ApiResult<Target> {
    let l = match state.store.get_limit(id).await {
        Ok(l) => l,
        Err(baton_store::StoreError::NotFound { .. }) => return Ok(Target::new()),
        Err(e) => return Err(e.into()),
    };
    let mut t = Target::new()
        .with("target.limit.id", l.id.clone())
        .with_opt("target.limit.project_id", l.project_id.clone())
        .with_opt("target.limit.domain_id", l.domain_id.clone());
    if let Some(p) = &l.project_id {
        if let Some(project) = state.store.get_project(p).await? {
            t.set("target.limit.project.id", project.id);
            t.set("target.limit.project.domain_id", project.domain_id);
        }
    } else if let Some(d) = &l.domain_id {
        if let Some(domain) = state.store.get_domain(d).await? {
            t.set("target.limit.domain.id", domain.id);
        }
    }
    Ok(t)
}

async fn show_limit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let target = limit_target(&state, &id).await?;
    caller.enforce(&state, "identity:get_limit", &target)?;
    let l = state.store.get_limit(&id).await.map_err(limit_error)?;
    Ok(member(&state, &headers, "limits", "limit", render_limit(&l)).into_response())
}

async fn update_limit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    let m = check_update(&body, "limit", LIMIT_UPDATE_PROPS)?;
    caller.enforce(&state, "identity:update_limit", &Target::new())?;
    let changes = LimitChanges {
        resource_limit: number(m, "resource_limit"),
        description: nullable_text(m, "description"),
    };
    let l = state.identity.update_limit(&id, changes).await?;
    Ok(member(&state, &headers, "limits", "limit", render_limit(&l)).into_response())
}

async fn delete_limit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:delete_limit", &Target::new())?;
    state.identity.delete_limit(&id).await?;
    Ok(no_content())
}

async fn show_model(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_limit_model", &Target::new())?;
    let model = state.config().unified_limit.enforcement_model;
    Ok(Json(json!({
        "model": { "name": model.name(), "description": model_description(model) }
    }))
    .into_response())
}
