//! `/v3/OS-EP-FILTER` (endpoint filtering): endpoint groups, and endpoints or endpoint groups
//! associated with projects. Parse (Keystone 30's schemas, checked before policy), enforce, call
//! one `state.identity` operation, render. What the associations do to tokens' catalogs lives
//! in `directory.rs` (`Directory::catalog_for`).
//!
//! Unlike Keystone 30, `GET /v3/OS-EP-FILTER/endpoint_groups?name=` filters by name (Keystone
//! hands its filter list over as a string, so the filter is never applied).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::EndpointGroup;
use serde_json::{json, Map, Value};

use super::schema::{
    body_error, body_json, check_additional, check_required, check_string, check_type, py_repr,
    schema_error,
};
use super::{list_target, url, Caller, Collection, ListRequest, Page};
use crate::error::{ApiError, ApiResult};
use crate::identity::catalog::{endpoint_group_error, in_endpoint_group};
use crate::policy::Target;
use crate::AppState;

const PREFIX: &str = "/v3/OS-EP-FILTER";

/// The endpoint-filtering routes.
pub fn routes() -> Router<AppState> {
    let at = |path: &str| format!("{PREFIX}{path}");
    Router::new()
        .route(&at("/endpoint_groups"), get(list_groups).post(create_group))
        .route(
            &at("/endpoint_groups/{group_id}"),
            get(show_group).patch(update_group).delete(delete_group),
        )
        .route(
            &at("/endpoint_groups/{group_id}/endpoints"),
            get(group_endpoints),
        )
        .route(
            &at("/endpoint_groups/{group_id}/projects"),
            get(group_projects),
        )
        .route(
            &at("/endpoint_groups/{group_id}/projects/{project_id}"),
            get(check_group_project)
                .put(add_group_project)
                .delete(remove_group_project),
        )
        .route(
            &at("/endpoints/{endpoint_id}/projects"),
            get(endpoint_projects),
        )
        .route(
            &at("/projects/{project_id}/endpoints"),
            get(project_endpoints),
        )
        .route(
            &at("/projects/{project_id}/endpoints/{endpoint_id}"),
            get(check_project_endpoint)
                .put(add_project_endpoint)
                .delete(remove_project_endpoint),
        )
        .route(
            &at("/projects/{project_id}/endpoint_groups"),
            get(project_groups),
        )
}

fn render_group(g: &EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters,
    })
}

/// The `links` of a collection at `path` (after `/v3/`), with the request's query.
fn links(state: &AppState, headers: &HeaderMap, list: &ListRequest, path: &str) -> Value {
    let here = url(state, headers, path);
    let here = match list.query.raw() {
        Some(q) if !q.is_empty() => format!("{here}?{q}"),
        _ => here,
    };
    json!({"self": here, "previous": null, "next": null})
}

/// Endpoint groups at `path`, each linked under `OS-EP-FILTER/endpoint_groups`.
fn group_collection(
    state: &AppState,
    headers: &HeaderMap,
    list: &ListRequest,
    path: &str,
    groups: &[EndpointGroup],
) -> Response {
    let base = url(state, headers, "OS-EP-FILTER/endpoint_groups");
    let mut items: Vec<Value> = groups
        .iter()
        .map(|g| super::with_self_link(render_group(g), &base))
        .collect();
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Json(json!({ "endpoint_groups": items, "links": links(state, headers, list, path) }))
        .into_response()
}

/// Endpoints or projects at `path`, each linked under `/v3/<key>`.
pub(crate) fn plain_collection(
    list: &ListRequest,
    key: &'static str,
    path: String,
    items: Vec<Value>,
) -> Response {
    let page = Page {
        limit: None,
        marker: None,
    };
    list.respond(&page, Collection::of(key).at(path), items)
}

// ----- schemas (keystone/catalog/schema.py, endpoint groups) -----------------------------------

const GROUP_PROPS: &[&str] = &["description", "filters", "name"];

/// `_endpoint_group_properties`, in the schema's order.
fn check_group_props(m: &Map<String, Value>) -> ApiResult<()> {
    if let Some(v) = m.get("description") {
        check_type("description", v, &["string", "null"])?;
    }
    if let Some(v) = m.get("filters") {
        check_type("filters", v, &["object"])?;
        if let Value::Object(f) = v {
            if let Some(i) = f.get("interface") {
                check_type("interface", i, &["string"])?;
                if !["admin", "internal", "public"].contains(&i.as_str().unwrap_or_default()) {
                    return Err(schema_error(
                        "interface",
                        i,
                        format!(
                            "{} is not one of ['admin', 'internal', 'public']",
                            py_repr(i)
                        ),
                    ));
                }
            }
            if let Some(v) = f.get("service_id") {
                check_type("service_id", v, &["string"])?;
            }
            if let Some(v) = f.get("region_id") {
                check_type("region_id", v, &["string", "null"])?;
            }
            if let Some(v) = f.get("enabled") {
                check_type("enabled", v, &["boolean"])?;
            }
        }
    }
    if let Some(v) = m.get("name") {
        check_type("name", v, &["string"])?;
        check_string(
            "name",
            v,
            1,
            255,
            Some(("[\\S]+", |s| s.chars().any(|c| !c.is_whitespace()))),
        )?;
    }
    Ok(())
}

/// Keystone's `_require_valid_filter`: filters on `service_id`, `region_id` and `interface`
/// only.
fn require_valid_filter(filters: &Map<String, Value>) -> ApiResult<()> {
    if filters
        .keys()
        .any(|k| !["service_id", "region_id", "interface"].contains(&k.as_str()))
    {
        return Err(ApiError::expecting(
            "service_id or region_id or interface",
            "endpoint_group",
        ));
    }
    Ok(())
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

// ----- endpoint groups -------------------------------------------------------------------------

async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    list: ListRequest,
) -> ApiResult<Response> {
    // The query schema admits `name` only.
    let mut query = Map::new();
    for (k, v) in &list.query.pairs {
        query
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    if let Some(v) = query.get("name") {
        check_string(
            "name",
            v,
            1,
            255,
            Some(("[\\S]+", |s| s.chars().any(|c| !c.is_whitespace()))),
        )?;
    }
    check_additional("", &query, &["name"])?;
    caller.enforce(
        &state,
        "identity:list_endpoint_groups",
        &list_target(&list.query, &["name"]),
    )?;
    let groups: Vec<EndpointGroup> = state
        .store
        .list_endpoint_groups()
        .await?
        .into_iter()
        .filter(|g| super::matches(&list.query, "name", Some(&g.name)))
        .collect();
    Ok(group_collection(
        &state,
        &headers,
        &list,
        "OS-EP-FILTER/endpoint_groups",
        &groups,
    ))
}

async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    if let Some(v) = body.get("endpoint_group") {
        check_type("endpoint_group", v, &["object"])?;
        if let Value::Object(m) = v {
            check_group_props(m)?;
            check_required("endpoint_group", m, &["name", "filters"])?;
            check_additional("endpoint_group", m, GROUP_PROPS)?;
        }
    }
    check_additional("", &body, &["endpoint_group"])?;
    caller.enforce(&state, "identity:create_endpoint_group", &Target::new())?;
    let m = body
        .get("endpoint_group")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let filters = m
        .get("filters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if filters.is_empty() {
        return Err(ApiError::BadRequest(
            "filters field is required and cannot be empty".into(),
        ));
    }
    require_valid_filter(&filters)?;
    let g = EndpointGroup {
        id: baton_store::new_id(),
        name: text(&m, "name").unwrap_or_default(),
        description: text(&m, "description"),
        filters,
    };
    state.identity.put_endpoint_group(&g, true).await?;
    let base = url(&state, &headers, "OS-EP-FILTER/endpoint_groups");
    let body = json!({ "endpoint_group": super::with_self_link(render_group(&g), &base) });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn load_group(state: &AppState, id: &str) -> ApiResult<EndpointGroup> {
    if super::path_id("endpoint group", id).is_err() {
        return Err(crate::identity::catalog::endpoint_group_not_found(id));
    }
    state
        .store
        .get_endpoint_group(id)
        .await
        .map_err(endpoint_group_error)
}

fn group_member(state: &AppState, headers: &HeaderMap, g: &EndpointGroup) -> Response {
    let base = url(state, headers, "OS-EP-FILTER/endpoint_groups");
    Json(json!({ "endpoint_group": super::with_self_link(render_group(g), &base) })).into_response()
}

async fn show_group(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_endpoint_group", &Target::new())?;
    let g = load_group(&state, &id).await?;
    Ok(group_member(&state, &headers, &g))
}

async fn update_group(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_json(body)?;
    if let Some(v) = body.get("endpoint_group") {
        check_type("endpoint_group", v, &["object"])?;
        if let Value::Object(m) = v {
            check_group_props(m)?;
            if m.is_empty() {
                return Err(schema_error("endpoint_group", v, "{} should be non-empty"));
            }
            check_additional("endpoint_group", m, GROUP_PROPS)?;
        }
    }
    check_required("", &body, &["endpoint_group"])?;
    check_additional("", &body, &["endpoint_group"])?;
    caller.enforce(&state, "identity:update_endpoint_group", &Target::new())?;
    let Some(Value::Object(m)) = body.get("endpoint_group") else {
        return Err(body_error("'endpoint_group' is a required property"));
    };
    if let Some(Value::Object(f)) = m.get("filters") {
        require_valid_filter(f)?;
    }
    let mut g = load_group(&state, &id).await?;
    if let Some(n) = text(m, "name") {
        g.name = n;
    }
    if m.contains_key("description") {
        g.description = text(m, "description");
    }
    if let Some(Value::Object(f)) = m.get("filters") {
        g.filters = f.clone();
    }
    state.identity.put_endpoint_group(&g, false).await?;
    Ok(group_member(&state, &headers, &g))
}

async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:delete_endpoint_group", &Target::new())?;
    state.identity.delete_endpoint_group(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn group_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_endpoints_associated_with_endpoint_group",
        &Target::new(),
    )?;
    let g = load_group(&state, &id).await?;
    let items = state
        .store
        .list_endpoints()
        .await?
        .iter()
        .filter(|e| in_endpoint_group(&g, e))
        .map(super::catalog::render_endpoint)
        .collect();
    let path = format!("OS-EP-FILTER/endpoint_groups/{id}/endpoints");
    Ok(plain_collection(&list, "endpoints", path, items))
}

/// The projects of association rows, rendered as `GET /v3/projects` renders them.
async fn render_projects(state: &AppState, ids: Vec<String>) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for id in ids {
        let Some(p) = state.store.get_project(&id).await? else {
            return Err(ApiError::not_found("project", &id));
        };
        let tags = state.store.list_project_tags(&id).await?;
        let options = super::projects::options_of(state, &id).await?;
        out.push(super::projects::render(&p, &tags, &options));
    }
    Ok(out)
}

async fn group_projects(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_projects_associated_with_endpoint_group",
        &Target::new(),
    )?;
    let rows = state.store.endpoint_filter_rows().await?;
    let ids = rows
        .project_groups
        .into_iter()
        .filter(|(_, g)| *g == id)
        .map(|(p, _)| p)
        .collect();
    let items = render_projects(&state, ids).await?;
    let path = format!("OS-EP-FILTER/endpoint_groups/{id}/projects");
    Ok(plain_collection(&list, "projects", path, items))
}

/// The project of a path (404 in Keystone's words when there is none).
async fn require_project(state: &AppState, id: &str) -> ApiResult<()> {
    super::path_id("project", id)?;
    match state.store.get_project(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("project", id)),
    }
}

// ----- associations --------------------------------------------------------------------------

/// What a project is associated with: an endpoint group or an endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Assoc {
    Group,
    Endpoint,
}

/// What is done to one association.
#[derive(Clone, Copy)]
enum Op {
    Check,
    Add,
    Remove,
}

impl Assoc {
    /// Keystone's policy rule for `op` on this kind.
    fn action(self, op: Op) -> &'static str {
        match (self, op) {
            (Assoc::Group, Op::Check) => "identity:get_endpoint_group_in_project",
            (Assoc::Group, Op::Add) => "identity:add_endpoint_group_to_project",
            (Assoc::Group, Op::Remove) => "identity:remove_endpoint_group_from_project",
            (Assoc::Endpoint, Op::Check) => "identity:check_endpoint_in_project",
            (Assoc::Endpoint, Op::Add) => "identity:add_endpoint_to_project",
            (Assoc::Endpoint, Op::Remove) => "identity:remove_endpoint_from_project",
        }
    }

    /// Keystone's 404 for a missing association.
    fn missing(self, target: &str, project: &str) -> ApiError {
        ApiError::NotFound(match self {
            Assoc::Group => "Endpoint Group Project Association not found".into(),
            Assoc::Endpoint => format!("Endpoint {target} not found in project {project}"),
        })
    }
}

/// One association, as Keystone checks it: policy; the project and group (or the endpoint and
/// project) must exist, except before removing an endpoint's; then the operation.
async fn associate(
    state: &AppState,
    caller: &Caller,
    assoc: Assoc,
    op: Op,
    target: &str,
    project: &str,
) -> ApiResult<()> {
    caller.enforce(state, assoc.action(op), &Target::new())?;
    match (assoc, op) {
        (Assoc::Group, _) => {
            require_project(state, project).await?;
            load_group(state, target).await?;
        }
        (Assoc::Endpoint, Op::Remove) => {}
        (Assoc::Endpoint, _) => {
            super::catalog::load_endpoint(state, target).await?;
            require_project(state, project).await?;
        }
    }
    let to_group = assoc == Assoc::Group;
    let found = match op {
        Op::Check => {
            state
                .store
                .has_project_association(to_group, target, project)
                .await?
        }
        Op::Add => {
            state
                .identity
                .add_project_association(to_group, target, project)
                .await?;
            true
        }
        Op::Remove => {
            state
                .identity
                .remove_project_association(to_group, target, project)
                .await?
        }
    };
    if found {
        Ok(())
    } else {
        Err(assoc.missing(target, project))
    }
}

async fn check_group_project(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((group_id, project_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    associate(
        &state,
        &caller,
        Assoc::Group,
        Op::Check,
        &group_id,
        &project_id,
    )
    .await?;
    let path = format!("OS-EP-FILTER/endpoint_groups/{group_id}/projects/{project_id}");
    Ok(Json(json!({"project_endpoint_group": {
        "endpoint_group_id": group_id,
        "project_id": project_id,
        "links": {"self": url(&state, &headers, &path)},
    }}))
    .into_response())
}

async fn add_group_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((group_id, project_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    associate(
        &state,
        &caller,
        Assoc::Group,
        Op::Add,
        &group_id,
        &project_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_group_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((group_id, project_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    associate(
        &state,
        &caller,
        Assoc::Group,
        Op::Remove,
        &group_id,
        &project_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn check_project_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    associate(
        &state,
        &caller,
        Assoc::Endpoint,
        Op::Check,
        &endpoint_id,
        &project_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn add_project_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    associate(
        &state,
        &caller,
        Assoc::Endpoint,
        Op::Add,
        &endpoint_id,
        &project_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_project_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    associate(
        &state,
        &caller,
        Assoc::Endpoint,
        Op::Remove,
        &endpoint_id,
        &project_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- endpoints and projects ------------------------------------------------------------------

async fn endpoint_projects(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_projects_for_endpoint",
        &Target::new(),
    )?;
    super::catalog::load_endpoint(&state, &endpoint_id).await?;
    let rows = state.store.endpoint_filter_rows().await?;
    let ids = rows
        .project_endpoints
        .into_iter()
        .filter(|(_, e)| *e == endpoint_id)
        .map(|(p, _)| p)
        .collect();
    let items = render_projects(&state, ids).await?;
    let path = format!("OS-EP-FILTER/endpoints/{endpoint_id}/projects");
    Ok(plain_collection(&list, "projects", path, items))
}

async fn project_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_endpoints_for_project",
        &Target::new(),
    )?;
    require_project(&state, &project_id).await?;
    let rows = state.store.endpoint_filter_rows().await?;
    let endpoints = state.store.list_endpoints().await?;
    let groups: Vec<&EndpointGroup> = rows
        .project_groups
        .iter()
        .filter(|(p, _)| *p == project_id)
        .filter_map(|(_, g)| rows.groups.iter().find(|x| x.id == *g))
        .collect();
    let items = endpoints
        .iter()
        .filter(|e| {
            rows.project_endpoints
                .iter()
                .any(|(p, id)| *p == project_id && *id == e.id)
                || groups.iter().any(|g| in_endpoint_group(g, e))
        })
        .map(super::catalog::render_endpoint)
        .collect();
    let path = format!("OS-EP-FILTER/projects/{project_id}/endpoints");
    Ok(plain_collection(&list, "endpoints", path, items))
}

async fn project_groups(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    list: ListRequest,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_endpoint_groups_for_project",
        &Target::new(),
    )?;
    require_project(&state, &project_id).await?;
    let rows = state.store.endpoint_filter_rows().await?;
    let groups: Vec<EndpointGroup> = rows
        .project_groups
        .iter()
        .filter(|(p, _)| *p == project_id)
        .filter_map(|(_, g)| rows.groups.iter().find(|x| x.id == *g).cloned())
        .collect();
    let path = format!("OS-EP-FILTER/projects/{project_id}/endpoint_groups");
    Ok(group_collection(&state, &headers, &list, &path, &groups))
}
