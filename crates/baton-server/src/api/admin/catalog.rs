//! `/v3/services`, `/v3/endpoints` and `/v3/regions`: the catalog every token carries.
//!
//! Bodies are checked like Keystone 30's catalog schemas, which let unknown attributes through:
//! those are kept in the row's `extra` blob and returned, as Keystone does. Every write drops the
//! cached catalog and cached token validations, so the next token (and the next validation of
//! an existing one) shows the change.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_store::{Endpoint, Region, Service};
use serde_json::{Map, Value};

use super::{
    created, invalid, list_target, matches, matches_extra, member, no_content, path_id, Caller,
    Collection, JsonBody, ListRequest, Obj, Page,
};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// The services, endpoints and regions routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/services", get(list_services).post(create_service))
        .route(
            "/v3/services/{service_id}",
            get(show_service)
                .patch(update_service)
                .delete(delete_service),
        )
        .route("/v3/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/v3/endpoints/{endpoint_id}",
            get(show_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route("/v3/regions", get(list_regions).post(create_region))
        .route(
            "/v3/regions/{region_id}",
            get(show_region)
                .put(put_region)
                .patch(update_region)
                .delete(delete_region),
        )
}

/// Keystone's `region_id` parameter type: 1 to 255 characters (the column's width).
const REGION_ID_MAX: usize = 255;
/// Keystone's `description` parameter type.
const DESCRIPTION_MAX: usize = 255;
/// Keystone's endpoint `url` schema: at most 225 characters (sic), `scheme:rest`.
const URL_MAX: usize = 225;
const URL_PATTERN: &str = "^[a-zA-Z0-9+.-]+:.+";
const INTERFACES: [&str; 3] = ["admin", "internal", "public"];
/// The substitutions Keystone allows in endpoint URLs (`$(project_id)s`...).
const URL_SUBSTITUTIONS: [&str; 5] = [
    "tenant_id",
    "project_id",
    "user_id",
    "compute_host",
    "public_endpoint",
];

/// Attributes with a column of their own (or computed for responses): never kept in `extra`.
const SERVICE_COLUMNS: &[&str] = &["id", "type", "enabled", "links"];
const ENDPOINT_COLUMNS: &[&str] = &[
    "id",
    "interface",
    "region_id",
    "region",
    "service_id",
    "url",
    "enabled",
    "legacy_endpoint_id",
    "links",
];
const REGION_COLUMNS: &[&str] = &["id", "description", "parent_region_id", "links"];

/// `[catalog] list_limit`; `Page` falls back to `[DEFAULT] list_limit`.
fn list_limit(state: &AppState) -> Option<u32> {
    state.config().catalog.list_limit
}

// ----- rendering -------------------------------------------------------------------------------

/// A row as Keystone renders it: the extras first, the columns over them.
pub(crate) fn with_extra(extra: &Map<String, Value>, columns: Vec<(&str, Value)>) -> Value {
    let mut out = extra.clone();
    for (k, v) in columns {
        out.insert(k.to_string(), v);
    }
    Value::Object(out)
}

fn opt(v: &Option<String>) -> Value {
    v.clone().map_or(Value::Null, Value::String)
}

fn render_service(s: &Service) -> Value {
    with_extra(
        &s.extra,
        vec![
            ("id", s.id.clone().into()),
            ("type", s.service_type.clone().into()),
            ("enabled", s.enabled.into()),
        ],
    )
}

/// Keystone answers with `region` (the pre-3.2 name) next to `region_id`.
pub(crate) fn render_endpoint(e: &Endpoint) -> Value {
    with_extra(
        &e.extra,
        vec![
            ("id", e.id.clone().into()),
            ("interface", e.interface.clone().into()),
            ("region_id", opt(&e.region_id)),
            ("region", opt(&e.region_id)),
            ("service_id", e.service_id.clone().into()),
            ("url", e.url.clone().into()),
            ("enabled", e.enabled.into()),
        ],
    )
}

fn render_region(r: &Region) -> Value {
    with_extra(
        &r.extra,
        vec![
            ("id", r.id.clone().into()),
            ("description", r.description.clone().into()),
            ("parent_region_id", opt(&r.parent_region_id)),
        ],
    )
}

// ----- request checks --------------------------------------------------------------------------

fn field(obj: &Obj, key: &str) -> String {
    format!("{}/{key}", obj.path)
}

/// A string of at least one character (`null` allowed when `nullable`).
fn text(obj: &Obj, key: &str, max: usize, nullable: bool) -> ApiResult<Option<Option<String>>> {
    let v = if nullable {
        obj.nullable_string(key, max)?
    } else {
        obj.string(key, max)?.map(Some)
    };
    if let Some(Some(s)) = &v {
        if s.is_empty() {
            return Err(invalid(&field(obj, key), "'' should be non-empty"));
        }
    }
    Ok(v)
}

pub(crate) fn required(obj: &Obj, key: &str) -> ApiResult<()> {
    if obj.has(key) {
        Ok(())
    } else {
        Err(invalid(
            &obj.path,
            format!("'{key}' is a required property"),
        ))
    }
}

/// Refuses a body `id` that differs from the path's (Keystone's `_require_matching_id`).
fn same_id(obj: &Obj, path_id: &str) -> ApiResult<()> {
    match obj.fields.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) if id == path_id => Ok(()),
        Some(_) => Err(ApiError::BadRequest("Cannot change ID".into())),
    }
}

/// The attributes kept in `extra`, with `-` and `:` in names turned into `_` as Keystone does
/// on create; a name that would then collide with a column is dropped.
pub(crate) fn created_extra(obj: &Obj, columns: &[&str]) -> Map<String, Value> {
    obj.extra(columns)
        .into_iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v))
        .filter(|(k, _)| !columns.contains(&k.as_str()))
        .collect()
}

fn merge_extra(extra: &mut Map<String, Value>, obj: &Obj, columns: &[&str]) {
    for (k, v) in obj.extra(columns) {
        extra.insert(k, v);
    }
}

fn url_matches_pattern(url: &str) -> bool {
    let Some(colon) = url.find(':') else {
        return false;
    };
    let scheme = &url[..colon];
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        && url[colon + 1..].chars().next().is_some_and(|c| c != '\n')
}

/// Whether Keystone could format this URL (its `check_endpoint_url`): Python `%`-formatting
/// against a mapping of the allowed keys, `$(key)s` read as `%(key)s`. Every directive must be
/// a string conversion, and every named key an allowed one.
fn url_substitutions_valid(url: &str) -> bool {
    let url: Vec<char> = url.replace("$(", "%(").chars().collect();
    let mut i = 0;
    while i < url.len() {
        if url[i] != '%' {
            i += 1;
            continue;
        }
        i += 1;
        if url.get(i) == Some(&'(') {
            // Python matches nested parentheses in the key.
            let start = i + 1;
            let mut depth = 1;
            i = start;
            loop {
                match url.get(i) {
                    None => return false,
                    Some('(') => depth += 1,
                    Some(')') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(_) => {}
                }
                i += 1;
            }
            let key: String = url[start..i].iter().collect();
            if !URL_SUBSTITUTIONS.contains(&key.as_str()) {
                return false;
            }
            i += 1;
        }
        // Flags, width, precision and length modifier; a `*` width needs a number and fails.
        while url.get(i).is_some_and(|c| "-+ #0".contains(*c)) {
            i += 1;
        }
        while url.get(i).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
            i += 1;
        }
        while url.get(i).is_some_and(|c| "hlL".contains(*c)) {
            i += 1;
        }
        // The values are strings: only string conversions (and `%%`) succeed.
        match url.get(i) {
            Some('s' | 'r' | 'a' | '%') => i += 1,
            _ => return false,
        }
    }
    true
}

fn check_url(obj: &Obj) -> ApiResult<Option<String>> {
    let Some(url) = obj.string("url", URL_MAX)? else {
        return Ok(None);
    };
    if !url_matches_pattern(&url) {
        return Err(invalid(
            &field(obj, "url"),
            format!("'{url}' does not match '{URL_PATTERN}'"),
        ));
    }
    Ok(Some(url))
}

fn check_interface(obj: &Obj) -> ApiResult<Option<String>> {
    let Some(interface) = obj.string("interface", usize::MAX)? else {
        return Ok(None);
    };
    if !INTERFACES.contains(&interface.as_str()) {
        return Err(invalid(
            &field(obj, "interface"),
            format!("'{interface}' is not one of ['admin', 'internal', 'public']"),
        ));
    }
    Ok(Some(interface))
}

// ----- services --------------------------------------------------------------------------------

async fn load_service(state: &AppState, id: &str) -> ApiResult<Service> {
    path_id("service", id)?;
    Ok(state.store.get_service(id).await?)
}

/// `type`, `name` and `enabled` as Keystone's service schema types them.
pub(crate) fn check_service_fields(obj: &Obj) -> ApiResult<()> {
    text(obj, "type", 255, false)?;
    text(obj, "name", 255, false)?;
    obj.boolean("enabled")?;
    Ok(())
}

async fn list_services(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_services",
        &list_target(&list.query, &["type", "name"]),
    )?;
    let page = list.page(list_limit(&state))?;
    let services = state
        .store
        .list_services()
        .await?
        .iter()
        .filter(|s| {
            matches(&list.query, "type", Some(&s.service_type))
                && matches_extra(
                    &list.query,
                    "name",
                    s.extra.get("name").and_then(Value::as_str),
                )
        })
        .map(render_service)
        .collect();
    Ok(list.respond(&page, Collection::of("services"), services))
}

async fn create_service(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("service")?;
    required(&obj, "type")?;
    check_service_fields(&obj)?;
    caller.enforce(&state, "identity:create_service", &Target::new())?;
    let extra = created_extra(&obj, SERVICE_COLUMNS);
    let service = Service {
        id: baton_store::new_id(),
        service_type: obj.string("type", 255)?.unwrap_or_default(),
        // Keystone stores an empty name when none is given.
        name: extra
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        description: extra
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        enabled: obj.boolean("enabled")?.unwrap_or(true),
        extra,
    };
    state.identity.create_service(&service).await?;
    let service = state.store.get_service(&service.id).await?;
    Ok(created(
        &state,
        &headers,
        "services",
        "service",
        render_service(&service),
    ))
}

async fn show_service(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(service_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:get_service",
        &Target::new().with("service_id", service_id.clone()),
    )?;
    let service = load_service(&state, &service_id).await?;
    Ok(member(
        &state,
        &headers,
        "services",
        "service",
        render_service(&service),
    )
    .into_response())
}

async fn update_service(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(service_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("service")?;
    obj.not_empty()?;
    check_service_fields(&obj)?;
    caller.enforce(
        &state,
        "identity:update_service",
        &Target::new().with("service_id", service_id.clone()),
    )?;
    same_id(&obj, &service_id)?;
    let mut service = load_service(&state, &service_id).await?;
    if let Some(t) = obj.string("type", 255)? {
        service.service_type = t;
    }
    if let Some(enabled) = obj.boolean("enabled")? {
        service.enabled = enabled;
    }
    merge_extra(&mut service.extra, &obj, SERVICE_COLUMNS);
    service.name = service
        .extra
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    service.description = service
        .extra
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    state.identity.update_service(&service).await?;
    let service = state.store.get_service(&service_id).await?;
    Ok(member(
        &state,
        &headers,
        "services",
        "service",
        render_service(&service),
    )
    .into_response())
}

async fn delete_service(
    State(state): State<AppState>,
    caller: Caller,
    Path(service_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_service",
        &Target::new().with("service_id", service_id.clone()),
    )?;
    path_id("service", &service_id)?;
    state.identity.delete_service(&service_id).await?;
    Ok(no_content())
}

// ----- endpoints -------------------------------------------------------------------------------

pub(crate) async fn load_endpoint(state: &AppState, id: &str) -> ApiResult<Endpoint> {
    path_id("endpoint", id)?;
    Ok(state.store.get_endpoint(id).await?)
}

/// The endpoint schema's types, shared by create and update.
pub(crate) fn check_endpoint_fields(obj: &Obj) -> ApiResult<()> {
    obj.boolean("enabled")?;
    check_interface(obj)?;
    obj.nullable_string("region_id", usize::MAX)?;
    obj.nullable_string("region", usize::MAX)?;
    obj.string("service_id", usize::MAX)?;
    check_url(obj)?;
    obj.string("name", usize::MAX)?;
    obj.nullable_string("description", usize::MAX)?;
    Ok(())
}

/// Keystone's URL check on the substitutions (`$(project_id)s`...).
fn check_url_substitutions(url: &str) -> ApiResult<()> {
    if url_substitutions_valid(url) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "Cannot create an endpoint with an invalid URL: {url}."
        )))
    }
}

/// The region an endpoint body names. The legacy `region` attribute counts when `region_id`
/// is absent or null, and creates the region if it does not exist yet, as Keystone does for
/// clients written against v2.
async fn endpoint_region(state: &AppState, obj: &Obj) -> ApiResult<Option<Option<String>>> {
    let region_id = obj.nullable_string("region_id", usize::MAX)?;
    if let (None | Some(None), Some(Some(legacy))) =
        (&region_id, obj.nullable_string("region", usize::MAX)?)
    {
        if legacy.is_empty() || legacy.chars().count() > REGION_ID_MAX {
            return Err(invalid(
                &field(obj, "region"),
                format!("'{legacy}' is not a region id of 1 to {REGION_ID_MAX} characters"),
            ));
        }
        state.identity.ensure_region(&legacy).await?;
        return Ok(Some(Some(legacy)));
    }
    Ok(region_id)
}

async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    if let Some(interface) = list.query.get("interface") {
        if !INTERFACES.contains(&interface) {
            return Err(invalid(
                "interface",
                format!("'{interface}' is not one of ['admin', 'internal', 'public']"),
            ));
        }
    }
    let filters = ["interface", "service_id", "region_id"];
    caller.enforce(
        &state,
        "identity:list_endpoints",
        &list_target(&list.query, &filters),
    )?;
    let page = list.page(list_limit(&state))?;
    let endpoints = state
        .store
        .list_endpoints()
        .await?
        .iter()
        .filter(|e| {
            matches(&list.query, "interface", Some(&e.interface))
                && matches(&list.query, "service_id", Some(&e.service_id))
                && matches(&list.query, "region_id", e.region_id.as_deref())
        })
        .map(render_endpoint)
        .collect();
    Ok(list.respond(&page, Collection::of("endpoints"), endpoints))
}

async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("endpoint")?;
    for key in ["interface", "service_id", "url"] {
        required(&obj, key)?;
    }
    check_endpoint_fields(&obj)?;
    // The schema types `id` although Keystone then assigns its own.
    obj.string("id", usize::MAX)?;
    caller.enforce(&state, "identity:create_endpoint", &Target::new())?;
    let url = check_url(&obj)?.unwrap_or_default();
    check_url_substitutions(&url)?;
    let region_id = endpoint_region(&state, &obj).await?.flatten();
    let endpoint = Endpoint {
        id: baton_store::new_id(),
        service_id: obj.string("service_id", usize::MAX)?.unwrap_or_default(),
        interface: check_interface(&obj)?.unwrap_or_default(),
        region_id,
        url,
        enabled: obj.boolean("enabled")?.unwrap_or(true),
        extra: created_extra(&obj, ENDPOINT_COLUMNS),
    };
    state.identity.create_endpoint(&endpoint).await?;
    Ok(created(
        &state,
        &headers,
        "endpoints",
        "endpoint",
        render_endpoint(&endpoint),
    ))
}

async fn show_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:get_endpoint",
        &Target::new().with("endpoint_id", endpoint_id.clone()),
    )?;
    let endpoint = load_endpoint(&state, &endpoint_id).await?;
    Ok(member(
        &state,
        &headers,
        "endpoints",
        "endpoint",
        render_endpoint(&endpoint),
    )
    .into_response())
}

async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("endpoint")?;
    obj.not_empty()?;
    check_endpoint_fields(&obj)?;
    caller.enforce(
        &state,
        "identity:update_endpoint",
        &Target::new().with("endpoint_id", endpoint_id.clone()),
    )?;
    same_id(&obj, &endpoint_id)?;
    let url = check_url(&obj)?;
    // Keystone checks substitutions on create only; a PATCH could then make the endpoint
    // vanish from every catalog. Refuse such a URL here too.
    if let Some(url) = &url {
        check_url_substitutions(url)?;
    }
    let region_id = endpoint_region(&state, &obj).await?;
    let service_id = obj.string("service_id", usize::MAX)?;
    // Keystone checks what the body points at before it looks the endpoint up.
    state
        .identity
        .check_endpoint_references(
            region_id.clone().flatten().as_deref(),
            service_id.as_deref(),
        )
        .await?;
    let mut endpoint = load_endpoint(&state, &endpoint_id).await?;
    if let Some(interface) = check_interface(&obj)? {
        endpoint.interface = interface;
    }
    if let Some(service_id) = service_id {
        endpoint.service_id = service_id;
    }
    if let Some(url) = url {
        endpoint.url = url;
    }
    if let Some(enabled) = obj.boolean("enabled")? {
        endpoint.enabled = enabled;
    }
    if let Some(region_id) = region_id {
        endpoint.region_id = region_id;
    }
    merge_extra(&mut endpoint.extra, &obj, ENDPOINT_COLUMNS);
    state.identity.update_endpoint(&endpoint).await?;
    Ok(member(
        &state,
        &headers,
        "endpoints",
        "endpoint",
        render_endpoint(&endpoint),
    )
    .into_response())
}

async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_endpoint",
        &Target::new().with("endpoint_id", endpoint_id.clone()),
    )?;
    path_id("endpoint", &endpoint_id)?;
    state.identity.delete_endpoint(&endpoint_id).await?;
    Ok(no_content())
}

// ----- regions ---------------------------------------------------------------------------------

async fn load_region(state: &AppState, id: &str) -> ApiResult<Region> {
    path_id("region", id)?;
    Ok(state.store.get_region(id).await?)
}

/// The region schema's types; `id` may be empty on create (a new id is assigned then).
pub(crate) fn check_region_fields(obj: &Obj, creating: bool) -> ApiResult<()> {
    obj.nullable_string("description", DESCRIPTION_MAX)?;
    if creating {
        obj.nullable_string("id", REGION_ID_MAX)?;
    } else {
        text(obj, "id", REGION_ID_MAX, true)?;
    }
    text(obj, "parent_region_id", REGION_ID_MAX, true)?;
    Ok(())
}

async fn list_regions(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    // Keystone's query schema for regions admits `parent_region_id` only (so no `limit` or
    // `marker` either, and regions are never truncated).
    let mut unexpected: Vec<&str> = list
        .query
        .pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "parent_region_id")
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort_unstable();
        unexpected.dedup();
        let verb = if unexpected.len() == 1 { "was" } else { "were" };
        let list = unexpected
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid(
            "",
            format!("Additional properties are not allowed ({list} {verb} unexpected)"),
        ));
    }
    if let Some(parent) = list.query.get("parent_region_id") {
        if parent.is_empty() {
            return Err(invalid("parent_region_id", "'' should be non-empty"));
        }
        if parent.chars().count() > REGION_ID_MAX {
            return Err(invalid(
                "parent_region_id",
                format!("'{parent}' is too long"),
            ));
        }
    }
    caller.enforce(
        &state,
        "identity:list_regions",
        &list_target(&list.query, &["parent_region_id"]),
    )?;
    let page = Page {
        limit: None,
        marker: None,
    };
    let regions = state
        .store
        .list_regions()
        .await?
        .iter()
        .filter(|r| {
            matches(
                &list.query,
                "parent_region_id",
                r.parent_region_id.as_deref(),
            )
        })
        .map(render_region)
        .collect();
    Ok(list.respond(&page, Collection::of("regions"), regions))
}

/// Creates a region with `id` (from the path of a PUT, or the body or a new one for a POST).
async fn create_region_with_id(
    state: &AppState,
    headers: &HeaderMap,
    obj: &Obj,
    id: String,
) -> ApiResult<Response> {
    let region = Region {
        id,
        // The column is NOT NULL: Keystone stores a missing or null description as "".
        description: obj
            .nullable_string("description", DESCRIPTION_MAX)?
            .flatten()
            .unwrap_or_default(),
        parent_region_id: text(obj, "parent_region_id", REGION_ID_MAX, true)?.flatten(),
        extra: created_extra(obj, REGION_COLUMNS),
    };
    state.identity.create_region(&region).await?;
    Ok(created(
        state,
        headers,
        "regions",
        "region",
        render_region(&region),
    ))
}

async fn create_region(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("region")?;
    check_region_fields(&obj, true)?;
    caller.enforce(&state, "identity:create_region", &Target::new())?;
    // Keystone historically takes an id from the body of a POST too; empty means "assign one".
    let id = obj
        .nullable_string("id", REGION_ID_MAX)?
        .flatten()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(baton_store::new_id);
    create_region_with_id(&state, &headers, &obj, id).await
}

async fn put_region(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(region_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("region")?;
    check_region_fields(&obj, true)?;
    caller.enforce(
        &state,
        "identity:create_region",
        &Target::new().with("region_id", region_id.clone()),
    )?;
    if obj.has("id") {
        let body_id = obj.nullable_string("id", REGION_ID_MAX)?.flatten();
        if body_id.as_deref() != Some(region_id.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Conflicting region IDs specified: \"{region_id}\" != \"{}\"",
                body_id.as_deref().unwrap_or("None")
            )));
        }
    }
    if region_id.chars().count() > REGION_ID_MAX {
        return Err(invalid(
            "region/id",
            format!("the region id is too long (at most {REGION_ID_MAX} characters)"),
        ));
    }
    create_region_with_id(&state, &headers, &obj, region_id).await
}

async fn show_region(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(region_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:get_region",
        &Target::new().with("region_id", region_id.clone()),
    )?;
    let region = load_region(&state, &region_id).await?;
    Ok(member(
        &state,
        &headers,
        "regions",
        "region",
        render_region(&region),
    )
    .into_response())
}

async fn update_region(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(region_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("region")?;
    obj.not_empty()?;
    check_region_fields(&obj, false)?;
    caller.enforce(
        &state,
        "identity:update_region",
        &Target::new().with("region_id", region_id.clone()),
    )?;
    same_id(&obj, &region_id)?;
    let parent = text(&obj, "parent_region_id", REGION_ID_MAX, true)?;
    // Keystone looks for the new parent before the region itself.
    if let Some(Some(parent)) = &parent {
        state.store.get_region(parent).await?;
    }
    let mut region = load_region(&state, &region_id).await?;
    if let Some(description) = obj.nullable_string("description", DESCRIPTION_MAX)? {
        region.description = description.unwrap_or_default();
    }
    if let Some(parent) = parent {
        region.parent_region_id = parent;
    }
    merge_extra(&mut region.extra, &obj, REGION_COLUMNS);
    state.identity.update_region(&region).await?;
    Ok(member(
        &state,
        &headers,
        "regions",
        "region",
        render_region(&region),
    )
    .into_response())
}

async fn delete_region(
    State(state): State<AppState>,
    caller: Caller,
    Path(region_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:delete_region",
        &Target::new().with("region_id", region_id.clone()),
    )?;
    path_id("region", &region_id)?;
    state.identity.delete_region(&region_id).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_pattern_is_keystones() {
        assert!(url_matches_pattern("http://x"));
        assert!(url_matches_pattern("svn+ssh:y"));
        assert!(!url_matches_pattern("http:"));
        assert!(!url_matches_pattern(":x"));
        assert!(!url_matches_pattern("no-scheme"));
        assert!(!url_matches_pattern("ht tp://x"));
        assert!(!url_matches_pattern("http:\nx"));
    }

    #[test]
    fn url_substitutions_are_checked_like_python_formatting() {
        for ok in [
            "http://x:8774/v2.1/$(project_id)s",
            "http://x/%(tenant_id)s/%(user_id)s",
            "http://x/100%%",
            "http://x/$(public_endpoint)s",
            "http://x/%s",
        ] {
            assert!(url_substitutions_valid(ok), "{ok}");
        }
        for bad in [
            "http://x/$(flavor)s",
            "http://x/$(project_id)d",
            "http://x/$(project_id",
            "http://x/a%20b",
            "http://x/100%",
            "http://x/%(a(b)c)s",
            "http://x/%*s",
        ] {
            assert!(!url_substitutions_valid(bad), "{bad}");
        }
    }
}
