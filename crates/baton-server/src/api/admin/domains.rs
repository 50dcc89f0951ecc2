//! `/v3/domains`: domains are `project` rows acting as domains. A domain must be disabled before
//! it can be deleted (so nobody deletes the domain their own token lives in by accident), and
//! deleting it deletes everything it owns: projects, users, groups and domain-specific roles.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_store::{Project, ProjectColumn};

use super::projects::{options_of, read_options, read_tags, render, NOT_EXTRA, PROJECT_NAME_MAX};
use super::{
    created, invalid, matches, matches_flag, member, no_content, path_id, Caller, Collection,
    JsonBody, ListRequest, Obj,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::NewProject;
use crate::policy::Target;
use crate::AppState;

/// The `/v3/domains` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/domains", get(list).post(create))
        .route(
            "/v3/domains/{domain_id}",
            get(show).head(show).patch(update).delete(remove),
        )
}

/// The domain of a path, or `None` without a query for an id no domain can have.
pub(crate) async fn find(state: &AppState, id: &str) -> ApiResult<Option<Project>> {
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

const EXPLICIT_ID: &str = "explicit_domain_id";

/// `explicit_domain_id`: Keystone's way to create a domain with a chosen id (to keep the ids of
/// another deployment). It must be a UUID in its 32-hex-digit form, and is not an attribute.
pub(crate) fn explicit_domain_id(obj: &Obj) -> ApiResult<Option<String>> {
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
    list: ListRequest,
) -> ApiResult<Response> {
    // A domain-scoped caller is checked against, and then sees only, its own domain (as
    // Keystone filters the list); other callers see every domain the filters match.
    let scoped_domain = caller.scoped_domain();
    let mut target = Target::new();
    if let Some(d) = &scoped_domain {
        target.set("target.domain.id", d.clone());
    }
    caller.enforce(&state, "identity:list_domains", &target)?;
    let page = list.page(state.config().resource.list_limit)?;
    super::check_marker(&state, &page, super::MarkerOf::Project).await?;
    let by: Vec<(ProjectColumn, &str)> = list
        .query
        .get("name")
        .map(|n| (ProjectColumn::Name, n))
        .into_iter()
        .collect();
    let rows = state.store.find_projects(true, &by).await?;
    let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
    let tags = state.store.project_tags_of(&ids).await?;
    let options = state.store.project_options_of(&ids).await?;
    let none = Vec::new();
    let domains = rows
        .into_iter()
        .filter(|d| scoped_domain.as_deref().is_none_or(|s| d.id == s))
        .filter(|d| {
            matches(&list.query, "name", Some(&d.name))
                && matches_flag(&list.query, "enabled", d.enabled)
        })
        .map(|d| {
            render(
                &d,
                tags.get(&d.id).unwrap_or(&none),
                options.get(&d.id).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect();
    Ok(list.respond(&page, Collection::of("domains"), domains))
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
    let immutable = read_options(&obj)?.flatten();
    let explicit_id = explicit_domain_id(&obj)?;
    caller.enforce(
        &state,
        "identity:create_domain",
        &Target::new().with("target.domain.name", name.clone()),
    )?;
    // `id`, `domain_id`, `parent_id` and `is_domain` in the body are not the domain's: Keystone
    // assigns the id and overwrites the rest (`get_project_from_domain`).
    let new = NewProject {
        name,
        description,
        enabled,
        tags: tags.clone(),
        extra: obj.extra(&[NOT_EXTRA, &[EXPLICIT_ID]].concat()),
        immutable,
    };
    let domain = state.identity.create_domain(explicit_id, new).await?;
    Ok(created(
        &state,
        &headers,
        "domains",
        "domain",
        render(&domain, &tags, &options_of(&state, &domain.id).await?),
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
        render(&domain, &tags, &options_of(&state, &domain.id).await?),
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
    let domain = load(&state, &caller, "identity:update_domain", &domain_id).await?;
    let obj = body.member("domain")?;
    let changes = super::projects::read_changes(&obj, &domain)?;
    let domain = state.identity.update_domain(domain, changes).await?;
    let store = &state.store;
    let tags = store.list_project_tags(&domain.id).await?;
    Ok(member(
        &state,
        &headers,
        "domains",
        "domain",
        render(&domain, &tags, &options_of(&state, &domain.id).await?),
    )
    .into_response())
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain_id): Path<String>,
) -> ApiResult<Response> {
    let domain = load(&state, &caller, "identity:delete_domain", &domain_id).await?;
    state.identity.delete_domain(&domain).await?;
    Ok(no_content())
}
