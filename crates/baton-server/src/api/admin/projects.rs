//! `/v3/projects`: projects with their hierarchy (`parent_id`, `is_domain`), tags and
//! `enabled`, under Keystone's rules: a project lives in one domain, its parent is a project of
//! the same domain or the domain itself, the tree is at most `max_project_tree_depth` deep, only
//! leaves can be deleted, and a project cannot be enabled under a disabled parent nor disabled
//! above enabled children.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{Project, ProjectColumn};
use serde_json::{json, Map, Value};

use super::{
    created, invalid, matches, matches_flag, member, no_content, path_id, url, Caller, Collection,
    JsonBody, ListQuery, ListRequest, Obj,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::grants::IMMUTABLE;
use crate::identity::projects::{check_tag as check_tag_value, check_tags, tag_not_found, TAG_MAX};
use crate::identity::{NewProject, ProjectChanges};
use crate::policy::Target;
use crate::AppState;

/// Keystone's limit on project and domain names.
pub const PROJECT_NAME_MAX: usize = 64;

/// The `/v3/projects` and project tag routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/projects", get(list).post(create))
        .route(
            "/v3/projects/{project_id}",
            get(show).head(show).patch(update).delete(remove),
        )
        .route(
            "/v3/projects/{project_id}/tags",
            get(list_tags).put(replace_tags).delete(clear_tags),
        )
        .route(
            "/v3/projects/{project_id}/tags/{tag}",
            get(check_tag)
                .head(check_tag)
                .put(add_tag)
                .delete(remove_tag),
        )
}

/// The attributes of a project or domain that are not kept in `extra` (columns, and the tags
/// and options rendered from their own tables): a body never stores them there, and a stored
/// `extra` never shows them.
pub const NOT_EXTRA: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "domain_id",
    "parent_id",
    "is_domain",
    "tags",
    "options",
];

/// The body Keystone returns for a project or domain: the columns, `tags`, `options`, and the
/// attributes kept in `extra`. A domain has no `domain_id`, `parent_id` or `is_domain`
/// (Keystone's `_get_domain_from_project`).
pub fn render(p: &Project, tags: &[String], options: &[(String, String)]) -> Value {
    let mut obj: Map<String, Value> = p
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str::<Map<String, Value>>(e).ok())
        .unwrap_or_default();
    // Rows written before these keys were kept out of `extra` may hold them.
    obj.retain(|k, _| !NOT_EXTRA.contains(&k.as_str()));
    obj.insert("id".into(), json!(p.id));
    obj.insert("name".into(), json!(p.name));
    obj.insert(
        "description".into(),
        json!(p.description.clone().unwrap_or_default()),
    );
    obj.insert("enabled".into(), json!(p.enabled));
    obj.insert("tags".into(), json!(tags));
    obj.insert("options".into(), options_json(options));
    if !p.is_domain {
        obj.insert("domain_id".into(), json!(p.domain_id));
        obj.insert("parent_id".into(), json!(p.parent_id));
        obj.insert("is_domain".into(), json!(false));
    }
    Value::Object(obj)
}

/// `project_option` rows as the API names them (`IMMU` is `immutable`); options Keystone does
/// not register are not shown.
fn options_json(options: &[(String, String)]) -> Value {
    let mut out = Map::new();
    for (id, value) in options {
        if id == crate::identity::grants::IMMUTABLE_ID {
            let v = serde_json::from_str(value).unwrap_or(Value::Null);
            out.insert(crate::identity::grants::IMMUTABLE.into(), v);
        }
    }
    Value::Object(out)
}

/// A project's or domain's resource options, as stored.
pub async fn options_of(state: &AppState, id: &str) -> ApiResult<Vec<(String, String)>> {
    Ok(state
        .store
        .project_options_of(&[id.to_string()])
        .await?
        .remove(id)
        .unwrap_or_default())
}

/// The project (not a domain) of a path, or `None` without a query for an id no project can
/// have.
async fn find(state: &AppState, id: &str) -> ApiResult<Option<Project>> {
    if path_id("project", id).is_err() {
        return Ok(None);
    }
    Ok(state.store.get_project(id).await?.filter(|p| !p.is_domain))
}

/// A project or domain as the projects API shows it: a domain with `is_domain: true` and null
/// `domain_id` and `parent_id` (Keystone's project row acting as a domain).
fn render_as_project(p: &Project, tags: &[String], options: &[(String, String)]) -> Value {
    let mut v = render(p, tags, options);
    if p.is_domain {
        v["is_domain"] = json!(true);
        v["domain_id"] = json!(null);
        v["parent_id"] = json!(null);
    }
    v
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("project", id)
}

/// What Keystone's enforcer sees for `/v3/projects/{project_id}...`: the path's `project_id`
/// and, when it exists, the project.
fn project_target(id: &str, p: Option<&Project>) -> Target {
    let t = Target::new().with("project_id", id);
    match p {
        Some(p) => t
            .with("target.project.id", p.id.clone())
            .with("target.project.domain_id", p.domain_id.clone())
            .with("target.project.name", p.name.clone()),
        None => t,
    }
}

/// Enforces `action` on the project of the path, then insists that it exists. Policy answers
/// first, with whatever exists (Keystone's `_build_project_target_enforcement` swallows
/// NotFound): a caller who may not see the project gets 403 whether or not it exists, so the
/// answer does not tell which ids exist.
async fn load(state: &AppState, caller: &Caller, action: &str, id: &str) -> ApiResult<Project> {
    let found = find(state, id).await?;
    caller.enforce(state, action, &project_target(id, found.as_ref()))?;
    found.ok_or_else(|| not_found(id))
}

/// Reads a body's `tags`: unique, at most 80, each 1–255 characters without `/` or `,`.
pub fn read_tags(obj: &Obj) -> ApiResult<Option<Vec<String>>> {
    let Some(tags) = obj.string_list("tags", TAG_MAX)? else {
        return Ok(None);
    };
    check_tags(&format!("{}/tags", obj.path), &tags)?;
    Ok(Some(tags))
}

/// `options` of a project or domain: only `immutable`, a boolean or `null` (Keystone's project
/// option registry). Keystone 30 checks project and domain bodies with its newer validator,
/// whose messages name the attribute and its value.
pub fn read_options(obj: &Obj) -> ApiResult<Option<Option<bool>>> {
    use super::schema::{check_additional, check_type};
    let Some(opts) = obj.fields.get("options") else {
        return Ok(None);
    };
    check_type("options", opts, &["object"])?;
    let Value::Object(opts) = opts else {
        return Ok(None);
    };
    check_additional("options", opts, &[IMMUTABLE])?;
    match opts.get(IMMUTABLE) {
        None => Ok(None),
        Some(v) => {
            check_type(IMMUTABLE, v, &["boolean", "null"])?;
            Ok(Some(v.as_bool()))
        }
    }
}

// ----- collection ------------------------------------------------------------------------------

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    let mut target = Target::new();
    // Keystone checks a domain-scoped caller against its own domain and then lists only that
    // domain's projects.
    let scoped_domain = caller.scoped_domain();
    if let Some(d) = &scoped_domain {
        target.set("target.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:list_projects", &target)?;
    let page = list.page(state.config().resource.list_limit)?;
    super::check_marker(&state, &page, super::MarkerOf::Project).await?;
    let want_domains = list.query.flag("is_domain").unwrap_or(false);
    // The filters narrow the read in SQL; the exact comparisons below stay Keystone's.
    let mut by: Vec<(ProjectColumn, &str)> = Vec::new();
    for (key, column) in [
        ("domain_id", ProjectColumn::DomainId),
        ("name", ProjectColumn::Name),
        ("parent_id", ProjectColumn::ParentId),
    ] {
        if let Some(v) = list.query.get(key) {
            by.push((column, v));
        }
    }
    let rows = state.store.find_projects(want_domains, &by).await?;
    let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
    let tags = state.store.project_tags_of(&ids).await?;
    let options = state.store.project_options_of(&ids).await?;
    let none: Vec<String> = Vec::new();
    let tag_filter = TagFilter::from_query(&list.query);
    let projects = rows
        .into_iter()
        .filter(|p| scoped_domain.as_deref().is_none_or(|d| p.domain_id == d))
        .filter(|p| {
            matches(&list.query, "name", Some(&p.name))
                && matches(&list.query, "domain_id", Some(&p.domain_id))
                && matches(&list.query, "parent_id", p.parent_id.as_deref())
                && matches_flag(&list.query, "enabled", p.enabled)
        })
        .filter(|p| tag_filter.accepts(tags.get(&p.id).unwrap_or(&none)))
        .map(|p| {
            render_as_project(
                &p,
                tags.get(&p.id).unwrap_or(&none),
                options.get(&p.id).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect();
    Ok(list.respond(&page, Collection::of("projects"), projects))
}

/// `tags` (all of), `tags-any`, `not-tags` (not all of), `not-tags-any` (none of); each a
/// comma-separated list.
struct TagFilter {
    all: Vec<String>,
    any: Vec<String>,
    not_all: Vec<String>,
    not_any: Vec<String>,
}

impl TagFilter {
    fn from_query(q: &ListQuery) -> TagFilter {
        let list = |k: &str| -> Vec<String> {
            q.get(k)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        TagFilter {
            all: list("tags"),
            any: list("tags-any"),
            not_all: list("not-tags"),
            not_any: list("not-tags-any"),
        }
    }

    fn accepts(&self, tags: &[String]) -> bool {
        let has = |t: &String| tags.contains(t);
        (self.all.is_empty() || self.all.iter().all(has))
            && (self.any.is_empty() || self.any.iter().any(has))
            && (self.not_all.is_empty() || !self.not_all.iter().all(has))
            && (self.not_any.is_empty() || !self.not_any.iter().any(has))
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("project")?;
    let name = obj.name_within("name", PROJECT_NAME_MAX)?;
    let description = obj.nullable_string("description", usize::MAX)?.flatten();
    let domain_id = obj.id("domain_id", true)?.flatten();
    let parent_id = obj.id("parent_id", true)?.flatten();
    let enabled = obj.boolean("enabled")?.unwrap_or(true);
    let is_domain = obj.boolean("is_domain")?.unwrap_or(false);
    let tags = read_tags(&obj)?.unwrap_or_default();
    let immutable = read_options(&obj)?.flatten();
    let Some(name) = name else {
        return Err(invalid("project", "'name' is a required property"));
    };
    let new = NewProject {
        name,
        description,
        enabled,
        tags,
        // A body `id` is not the project's: Keystone assigns a new one.
        extra: obj.extra(NOT_EXTRA),
        immutable,
    };

    if is_domain {
        // A project acting as a domain is a domain: same rules and policy.
        let target = Target::new().with("target.domain.name", new.name.clone());
        caller.enforce(&state, "identity:create_domain", &target)?;
        let at_root = parent_id.is_none() && domain_id.is_none();
        let tags = new.tags.clone();
        let domain = state
            .identity
            .create_project_acting_as_domain(at_root, new)
            .await?;
        let body = render_as_project(&domain, &tags, &options_of(&state, &domain.id).await?);
        return Ok(created(&state, &headers, "projects", "project", body));
    }

    let placement = state
        .identity
        .place_project(domain_id, parent_id, caller.scoped_domain())
        .await?;
    let target = Target::new()
        .with("target.project.domain_id", placement.domain_id.clone())
        .with("target.project.name", new.name.clone());
    caller.enforce(&state, "identity:create_project", &target)?;
    let tags = new.tags.clone();
    let project = state.identity.create_project(placement, new).await?;
    Ok(created(
        &state,
        &headers,
        "projects",
        "project",
        render(&project, &tags, &options_of(&state, &project.id).await?),
    ))
}

// ----- one project -----------------------------------------------------------------------------

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:get_project", &project_id).await?;
    let query = ListQuery::parse(raw.as_deref());
    let tags = state.store.list_project_tags(&project.id).await?;
    let mut body = render(&project, &tags, &options_of(&state, &project.id).await?);
    if query.flag("parents_as_ids").unwrap_or(false)
        && query.flag("parents_as_list").unwrap_or(false)
    {
        return Err(ApiError::BadRequest(
            "Cannot use parents_as_list and parents_as_ids query params at the same time.".into(),
        ));
    }
    if query.flag("parents_as_ids").unwrap_or(false) {
        // Keystone's nested form: {parent_id: {grandparent_id: null}}.
        let chain = state.identity.project_ancestors(&project).await?;
        let mut nested = Value::Null;
        for p in chain.iter().rev() {
            nested = json!({ p.id.clone(): nested });
        }
        body["parents"] = nested;
    } else if query.flag("parents_as_list").unwrap_or(false) {
        let base = url(&state, &headers, "projects");
        let chain = state.identity.project_ancestors(&project).await?;
        body["parents"] = Value::Array(
            chain
                .iter()
                .map(|p| json!({ "project": super::with_self_link(render(p, &[], &[]), &base) }))
                .collect(),
        );
    }
    Ok(member(&state, &headers, "projects", "project", body).into_response())
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:update_project", &project_id).await?;
    let obj = body.member("project")?;
    let common = read_changes(&obj, &project)?;
    let changes = ProjectChanges {
        domain_id: obj.id("domain_id", true)?,
        parent_id: obj.id("parent_id", true)?,
        is_domain: obj.boolean("is_domain")?,
        ..common
    };
    let project = state.identity.update_project(project, changes).await?;
    let tags = state.store.list_project_tags(&project.id).await?;
    let mut body = render(&project, &tags, &options_of(&state, &project.id).await?);
    // Keystone's update answers with the `extra` blob too (`to_dict(include_extra_dict=True)`).
    body["extra"] = project
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str::<Map<String, Value>>(e).ok())
        .map_or_else(|| json!({}), Value::Object);
    Ok(member(&state, &headers, "projects", "project", body).into_response())
}

/// A PATCH body of a project or domain (`obj` names which in messages), without the attributes
/// only a project has.
pub(crate) fn read_changes(obj: &Obj, current: &Project) -> ApiResult<ProjectChanges> {
    obj.not_empty()?;
    if let Some(Some(id)) = obj.nullable_string("id", 64)? {
        if id != current.id {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    let name = obj.name_within("name", PROJECT_NAME_MAX)?;
    let description = obj.nullable_string("description", usize::MAX)?;
    let enabled = obj.boolean("enabled")?;
    let tags = read_tags(obj)?;
    let immutable = read_options(obj)?;
    Ok(ProjectChanges {
        name,
        description,
        enabled,
        tags,
        extra: obj.extra(NOT_EXTRA),
        immutable,
        attributes: obj.fields.len(),
        ..ProjectChanges::default()
    })
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:delete_project", &project_id).await?;
    state.identity.delete_project(&project).await?;
    Ok(no_content())
}

// ----- tags ------------------------------------------------------------------------------------

fn tags_body(
    state: &AppState,
    headers: &HeaderMap,
    project_id: &str,
    tags: Vec<String>,
) -> Response {
    Json(json!({
        "tags": tags,
        "links": { "self": url(state, headers, &format!("projects/{project_id}/tags")) },
    }))
    .into_response()
}

async fn list_tags(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:list_project_tags", &project_id).await?;
    let tags = state.store.list_project_tags(&project.id).await?;
    Ok(tags_body(&state, &headers, &project.id, tags))
}

async fn replace_tags(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project_id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:update_project_tags", &project_id).await?;
    let obj = Obj {
        path: String::new(),
        fields: body,
    };
    obj.only(&["tags"])?;
    let tags = obj
        .string_list("tags", TAG_MAX)?
        .ok_or_else(|| invalid("", "'tags' is a required property"))?;
    check_tags("tags", &tags)?;
    state.identity.set_project_tags(&project.id, &tags).await?;
    let tags = state.store.list_project_tags(&project.id).await?;
    Ok(tags_body(&state, &headers, &project.id, tags))
}

async fn clear_tags(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:delete_project_tags", &project_id).await?;
    state.identity.set_project_tags(&project.id, &[]).await?;
    Ok(no_content())
}

async fn check_tag(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, tag)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:get_project_tag", &project_id).await?;
    let tags = state.store.list_project_tags(&project.id).await?;
    if tags.contains(&tag) {
        Ok(no_content())
    } else {
        Err(tag_not_found(&tag))
    }
}

async fn add_tag(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project_id, tag)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:create_project_tag", &project_id).await?;
    check_tag_value("tag", &tag)?;
    state.identity.add_project_tag(&project.id, &tag).await?;
    let location = url(
        &state,
        &headers,
        &format!("projects/{}/tags/{tag}", project.id),
    );
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
    )
        .into_response())
}

async fn remove_tag(
    State(state): State<AppState>,
    caller: Caller,
    Path((project_id, tag)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:delete_project_tag", &project_id).await?;
    state.identity.remove_project_tag(&project.id, &tag).await?;
    Ok(no_content())
}
