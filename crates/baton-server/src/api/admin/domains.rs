//! `/v3/domains`: domains are `project` rows acting as domains. A domain must be disabled before
//! it can be deleted (so nobody deletes the domain their own token lives in by accident), and
//! deleting it deletes everything it owns: projects, users, groups and domain-specific roles.

#![allow(missing_docs)] // removed when the handlers are thinned (issue 11)

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_store::{Project, RevocationEvent, ROOT_DOMAIN_ID};
use serde_json::{Map, Value};

use super::projects::{read_tags, refuse_options, render, NOT_EXTRA, PROJECT_NAME_MAX};
use super::{
    after_write, collection, created, invalid, matches, matches_flag, member, no_content, path_id,
    Caller, JsonBody, ListQuery, Obj, Page,
};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/domains", get(list).post(create))
        .route(
            "/v3/domains/{domain_id}",
            get(show).head(show).patch(update).delete(remove),
        )
}

/// The domain of a path, or `None` without a query for an id no domain can have.
async fn find(state: &AppState, id: &str) -> ApiResult<Option<Project>> {
    if path_id("domain", id).is_err() {
        return Ok(None);
    }
    Ok(state.store.get_domain(id).await?)
}

/// What Keystone's enforcer sees for `/v3/domains/{domain_id}`: the path's `domain_id` and,
/// when it exists, the domain.
fn domain_target(id: &str, d: Option<&Project>) -> Target {
    let t = Target::new().with("domain_id", id);
    match d {
        Some(d) => t
            .with("target.domain.id", d.id.clone())
            .with("target.domain.name", d.name.clone()),
        None => t,
    }
}

/// Enforces `action` on the domain of the path, then insists that it exists: a caller who may
/// not see the domain gets 403 whether or not it exists. Keystone does this for `GET`
/// (`_build_domain_enforcement_target` swallows NotFound); its `PATCH` and `DELETE` look the
/// domain up before policy and so answer 404 to anyone, which Baton does not copy.
async fn load(state: &AppState, caller: &Caller, action: &str, id: &str) -> ApiResult<Project> {
    let found = find(state, id).await?;
    caller.enforce(state, action, &domain_target(id, found.as_ref()))?;
    found.ok_or_else(|| ApiError::NotFound(format!("Could not find domain: {id}.")))
}

/// Creates a domain row (also used for `POST /v3/projects` with `is_domain: true`), with the id
/// given or a new one.
pub(crate) async fn create_domain(
    state: &AppState,
    id: Option<String>,
    name: String,
    description: Option<String>,
    enabled: bool,
    tags: &[String],
    extra: Map<String, Value>,
) -> ApiResult<Project> {
    let store = &state.store;
    if let Some(id) = &id {
        if store.get_project(id).await?.is_some() {
            return Err(ApiError::Conflict(format!(
                "Conflict occurred attempting to store domain - Duplicate ID, {id}."
            )));
        }
    }
    let domain = Project {
        id: id.unwrap_or_else(baton_store::new_id),
        name,
        domain_id: ROOT_DOMAIN_ID.into(),
        parent_id: None,
        enabled,
        is_domain: true,
        description,
        extra: Some(Value::Object(extra).to_string()),
    };
    store.create_project(&domain).await?;
    if !tags.is_empty() {
        store.set_project_tags(&domain.id, tags).await?;
    }
    // Nobody's token involves a new domain yet: cached validations stay good.
    Ok(domain)
}

const EXPLICIT_ID: &str = "explicit_domain_id";

/// `explicit_domain_id`: Keystone's way to create a domain with a chosen id (to keep the ids of
/// another deployment). It must be a UUID in its 32-hex-digit form, and is not an attribute.
fn explicit_domain_id(obj: &Obj) -> ApiResult<Option<String>> {
    let Some(id) = obj.id(EXPLICIT_ID, false)?.flatten() else {
        return Ok(None);
    };
    match uuid::Uuid::try_parse(&id) {
        Ok(u) if u.simple().to_string() == id => Ok(Some(id)),
        _ => Err(ApiError::BadRequest(
            "Domain ID does not conform to required UUID format.".into(),
        )),
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = ListQuery::parse(raw.as_deref());
    // A domain-scoped caller is checked against, and then sees only, its own domain (as
    // Keystone filters the list); other callers see every domain the filters match.
    let scoped_domain = caller.scoped_domain();
    let mut target = Target::new();
    if let Some(d) = &scoped_domain {
        target.set("target.domain.id", d.clone());
    }
    caller.enforce(&state, "identity:list_domains", &target)?;
    let page = Page::from_query(&state, &query, None)?;
    let tags = state.store.list_all_project_tags().await?;
    let none = Vec::new();
    let domains = state
        .tokens
        .store
        .list_all_projects()
        .await?
        .into_iter()
        .filter(|d| d.is_domain)
        .filter(|d| scoped_domain.as_deref().is_none_or(|s| d.id == s))
        .filter(|d| {
            matches(&query, "name", Some(&d.name)) && matches_flag(&query, "enabled", d.enabled)
        })
        .map(|d| render(&d, tags.get(&d.id).unwrap_or(&none)))
        .collect();
    Ok(collection(
        &state, &headers, &query, &page, "domains", "domains", "domains", domains,
    ))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("domain")?;
    let name = obj
        .name_within("name", PROJECT_NAME_MAX)?
        .ok_or_else(|| invalid("domain", "'name' is a required property"))?;
    let description = obj.nullable_string("description", usize::MAX)?.flatten();
    let enabled = obj.boolean("enabled")?.unwrap_or(true);
    let tags = read_tags(&obj)?.unwrap_or_default();
    refuse_options(&obj)?;
    let explicit_id = explicit_domain_id(&obj)?;
    caller.enforce(
        &state,
        "identity:create_domain",
        &Target::new().with("target.domain.name", name.clone()),
    )?;
    // `id`, `domain_id`, `parent_id` and `is_domain` in the body are not the domain's: Keystone
    // assigns the id and overwrites the rest (`get_project_from_domain`).
    let extra = obj.extra(&[NOT_EXTRA, &[EXPLICIT_ID]].concat());
    let domain = create_domain(
        &state,
        explicit_id,
        name,
        description,
        enabled,
        &tags,
        extra,
    )
    .await?;
    Ok(created(
        &state,
        &headers,
        "domains",
        "domain",
        render(&domain, &tags),
    ))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(domain_id): Path<String>,
) -> ApiResult<Response> {
    let domain = load(&state, &caller, "identity:get_domain", &domain_id).await?;
    let tags = state.store.list_project_tags(&domain.id).await?;
    Ok(member(
        &state,
        &headers,
        "domains",
        "domain",
        render(&domain, &tags),
    )
    .into_response())
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(domain_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let mut domain = load(&state, &caller, "identity:update_domain", &domain_id).await?;
    let obj = body.member("domain")?;
    obj.not_empty()?;
    if let Some(Some(id)) = obj.nullable_string("id", 64)? {
        if id != domain.id {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    if let Some(name) = obj.name_within("name", PROJECT_NAME_MAX)? {
        domain.name = name;
    }
    if let Some(d) = obj.nullable_string("description", usize::MAX)? {
        domain.description = d;
    }
    if let Some(e) = obj.boolean("enabled")? {
        if domain.id == state.config().identity.default_domain_id && !e {
            return Err(ApiError::ForbiddenNotSecurity(
                "The default domain cannot be disabled.".into(),
            ));
        }
        domain.enabled = e;
    }
    let tags = read_tags(&obj)?;
    refuse_options(&obj)?;
    let mut extra: Map<String, Value> = domain
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    for (k, v) in obj.extra(NOT_EXTRA) {
        extra.insert(k, v);
    }
    domain.extra = Some(Value::Object(extra).to_string());
    let store = &state.store;
    store.update_project(&domain).await?;
    if let Some(tags) = &tags {
        store.set_project_tags(&domain.id, tags).await?;
    }
    after_write(&state);
    let tags = store.list_project_tags(&domain.id).await?;
    Ok(member(
        &state,
        &headers,
        "domains",
        "domain",
        render(&domain, &tags),
    )
    .into_response())
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain_id): Path<String>,
) -> ApiResult<Response> {
    let domain = load(&state, &caller, "identity:delete_domain", &domain_id).await?;
    if domain.enabled {
        return Err(ApiError::ForbiddenNotSecurity(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    let store = &state.store;
    // One event covers every token of the domain's users and of its projects (the domain
    // matches a token's user domain and its project's domain).
    state
        .tokens
        .revoke_now(RevocationEvent {
            domain_id: Some(domain.id.clone()),
            ..RevocationEvent::default()
        })
        .await?;
    // Children before parents, so every project is a leaf when it goes.
    let all = store.list_all_projects().await?;
    for project in super::projects::subtree(&all, &domain.id).into_iter().rev() {
        store.delete_project(&project.id).await?;
    }
    store.delete_domain_identities(&domain.id).await?;
    store.delete_project(&domain.id).await?;
    after_write(&state);
    Ok(no_content())
}
