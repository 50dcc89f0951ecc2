//! `/v3/projects`: projects with their hierarchy (`parent_id`, `is_domain`), tags and
//! `enabled`, under Keystone's rules: a project lives in one domain, its parent is a project of
//! the same domain or the domain itself, the tree is at most `max_project_tree_depth` deep, only
//! leaves can be deleted, and a project cannot be enabled under a disabled parent nor disabled
//! above enabled children.

#![allow(clippy::too_many_lines)] // removed when the handlers are thinned (issue 11)
#![allow(missing_docs)] // removed when the handlers are thinned (issue 11)

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{Project, RevocationEvent};
use serde_json::{json, Map, Value};

use super::{
    after_write, collection, created, invalid, matches, matches_flag, member, no_content, path_id,
    url, Caller, JsonBody, ListQuery, Obj, Page,
};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// Keystone's limit on project and domain names.
pub const PROJECT_NAME_MAX: usize = 64;
const TAG_MAX: usize = 255;
const TAGS_PER_PROJECT: usize = 80;

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
pub fn render(p: &Project, tags: &[String]) -> Value {
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
    obj.insert("options".into(), json!({}));
    if !p.is_domain {
        obj.insert("domain_id".into(), json!(p.domain_id));
        obj.insert("parent_id".into(), json!(p.parent_id));
        obj.insert("is_domain".into(), json!(false));
    }
    Value::Object(obj)
}

/// The project (not a domain) of a path, or `None` without a query for an id no project can
/// have.
async fn find(state: &AppState, id: &str) -> ApiResult<Option<Project>> {
    if path_id("project", id).is_err() {
        return Ok(None);
    }
    Ok(state
        .tokens
        .store
        .get_project(id)
        .await?
        .filter(|p| !p.is_domain))
}

/// A project or domain as the projects API shows it: a domain with `is_domain: true` and null
/// `domain_id` and `parent_id` (Keystone's project row acting as a domain).
fn render_as_project(p: &Project, tags: &[String]) -> Value {
    let mut v = render(p, tags);
    if p.is_domain {
        v["is_domain"] = json!(true);
        v["domain_id"] = json!(null);
        v["parent_id"] = json!(null);
    }
    v
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Could not find project: {id}."))
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

fn check_tags(path: &str, tags: &[String]) -> ApiResult<()> {
    if tags.len() > TAGS_PER_PROJECT {
        return Err(invalid(
            path,
            format!("is too long (at most {TAGS_PER_PROJECT} tags)"),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        check_tag_value(&format!("{path}/{i}"), t)?;
        if tags[..i].contains(t) {
            return Err(invalid(path, format!("has non-unique elements ('{t}')")));
        }
    }
    Ok(())
}

fn check_tag_value(path: &str, t: &str) -> ApiResult<()> {
    if t.is_empty() || t.chars().count() > TAG_MAX {
        return Err(invalid(
            path,
            format!("'{t}' must be 1 to {TAG_MAX} characters"),
        ));
    }
    if t.contains('/') || t.contains(',') {
        return Err(invalid(path, format!("'{t}' does not match '^[^,/]*$'")));
    }
    Ok(())
}

/// Options Keystone knows for projects and domains; Baton keeps none of them yet, so only an
/// empty object is accepted rather than silently dropping a setting.
pub fn refuse_options(obj: &Obj) -> ApiResult<()> {
    if let Some(opts) = obj.object("options")? {
        if let Some(k) = opts.fields.keys().next() {
            return Err(invalid(
                &format!("{}/options", obj.path),
                format!("option '{k}' is not supported by this server"),
            ));
        }
    }
    Ok(())
}

/// The projects from `leaf` up to (excluding) its domain, nearest first.
async fn ancestors(state: &AppState, leaf: &Project) -> ApiResult<Vec<Project>> {
    let mut out = Vec::new();
    let mut next = leaf.parent_id.clone();
    // Bounded: a corrupt cycle must not hang a request.
    for _ in 0..64 {
        let Some(id) = next.take() else { break };
        if id == leaf.domain_id {
            break;
        }
        let Some(p) = state.store.get_project(&id).await? else {
            break;
        };
        next = p.parent_id.clone();
        out.push(p);
    }
    Ok(out)
}

// ----- collection ------------------------------------------------------------------------------

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = ListQuery::parse(raw.as_deref());
    let mut target = Target::new();
    // Keystone checks a domain-scoped caller against its own domain and then lists only that
    // domain's projects.
    let scoped_domain = caller.scoped_domain();
    if let Some(d) = &scoped_domain {
        target.set("target.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:list_projects", &target)?;
    let page = Page::from_query(&state, &query, None)?;
    let want_domains = query.flag("is_domain").unwrap_or(false);
    let tags = state.store.list_all_project_tags().await?;
    let none: Vec<String> = Vec::new();
    let tag_filter = TagFilter::from_query(&query);
    let projects = state
        .tokens
        .store
        .list_all_projects()
        .await?
        .into_iter()
        .filter(|p| p.is_domain == want_domains)
        .filter(|p| scoped_domain.as_deref().is_none_or(|d| p.domain_id == d))
        .filter(|p| {
            matches(&query, "name", Some(&p.name))
                && matches(&query, "domain_id", Some(&p.domain_id))
                && matches(&query, "parent_id", p.parent_id.as_deref())
                && matches_flag(&query, "enabled", p.enabled)
        })
        .filter(|p| tag_filter.accepts(tags.get(&p.id).unwrap_or(&none)))
        .map(|p| render_as_project(&p, tags.get(&p.id).unwrap_or(&none)))
        .collect();
    Ok(collection(
        &state, &headers, &query, &page, "projects", "projects", "projects", projects,
    ))
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
    refuse_options(&obj)?;
    let Some(name) = name else {
        return Err(invalid("project", "'name' is a required property"));
    };
    // A body `id` is not the project's: Keystone assigns a new one.
    let extra = obj.extra(NOT_EXTRA);

    if is_domain {
        // A project acting as a domain is a domain: same rules and policy.
        let mut target = Target::new();
        target.set("target.domain.name", name.clone());
        caller.enforce(&state, "identity:create_domain", &target)?;
        // Keystone: a domain is a root (`parent_id` defaults to `domain_id`, and a domain's
        // must be null).
        if parent_id.is_some() || domain_id.is_some() {
            return Err(ApiError::BadRequest(
                "only root projects are allowed to act as domains.".into(),
            ));
        }
        let domain =
            super::domains::create_domain(&state, None, name, description, enabled, &tags, extra)
                .await?;
        return Ok(created(
            &state,
            &headers,
            "projects",
            "project",
            render_as_project(&domain, &tags),
        ));
    }

    let store = &state.store;
    let parent = match &parent_id {
        Some(pid) => Some(
            store
                .get_project(pid)
                .await?
                .ok_or_else(|| ApiError::BadRequest(format!("Could not find project: {pid}.")))?,
        ),
        None => None,
    };
    // Where the project lives: as given, else the parent's domain, else the caller's domain
    // scope, else the default domain.
    let domain_id = domain_id
        .or_else(|| {
            parent.as_ref().map(|p| {
                if p.is_domain {
                    p.id.clone()
                } else {
                    p.domain_id.clone()
                }
            })
        })
        .or_else(|| caller.scoped_domain())
        .unwrap_or_else(|| state.config().identity.default_domain_id.clone());
    let mut target = Target::new();
    target.set("target.project.domain_id", domain_id.clone());
    target.set("target.project.name", name.clone());
    caller.enforce(&state, "identity:create_project", &target)?;

    let domain = store
        .get_domain(&domain_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest(format!("Could not find domain: {domain_id}.")))?;
    let parent = match parent {
        Some(p) => p,
        None => domain.clone(),
    };
    let parent_domain = if parent.is_domain {
        parent.id.clone()
    } else {
        parent.domain_id.clone()
    };
    if parent_domain != domain.id {
        return Err(ApiError::BadRequest(format!(
            "Cannot create project, since it specifies its domain_id {}, but specifies a parent in a different domain ({parent_domain}).",
            domain.id
        )));
    }
    let mut chain = if parent.is_domain {
        Vec::new()
    } else {
        let mut c = ancestors(&state, &parent).await?;
        c.insert(0, parent.clone());
        c
    };
    chain.push(domain.clone());
    if let Some(off) = chain.iter().find(|p| !p.enabled) {
        return Err(ApiError::BadRequest(format!(
            "cannot create a project in a branch containing a disabled project: {}",
            off.id
        )));
    }
    // Depth counts the new project and its project ancestors (the domain is not a level).
    let depth = chain.len();
    let max_depth = state.config().default.max_project_tree_depth as usize;
    if depth > max_depth {
        return Err(ApiError::ForbiddenNotSecurity(format!(
            "Max hierarchy depth reached for {} branch.",
            parent.id
        )));
    }

    let project = Project {
        id: baton_store::new_id(),
        name,
        domain_id: domain.id.clone(),
        parent_id: Some(parent.id.clone()),
        enabled,
        is_domain: false,
        description,
        extra: Some(Value::Object(extra).to_string()),
    };
    store.create_project(&project).await?;
    if !tags.is_empty() {
        store.set_project_tags(&project.id, &tags).await?;
    }
    // Nobody holds a role on a new project yet: cached validations stay good.
    Ok(created(
        &state,
        &headers,
        "projects",
        "project",
        render(&project, &tags),
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
    let mut body = render(&project, &tags);
    if query.flag("parents_as_ids").unwrap_or(false)
        && query.flag("parents_as_list").unwrap_or(false)
    {
        return Err(ApiError::BadRequest(
            "Cannot use parents_as_list and parents_as_ids query params at the same time.".into(),
        ));
    }
    if query.flag("parents_as_ids").unwrap_or(false) {
        // Keystone's nested form: {parent_id: {grandparent_id: null}}.
        let chain = ancestors(&state, &project).await?;
        let mut nested = Value::Null;
        for p in chain.iter().rev() {
            nested = json!({ p.id.clone(): nested });
        }
        body["parents"] = nested;
    } else if query.flag("parents_as_list").unwrap_or(false) {
        let base = url(&state, &headers, "projects");
        let chain = ancestors(&state, &project).await?;
        body["parents"] = Value::Array(
            chain
                .iter()
                .map(|p| json!({ "project": super::with_self_link(render(p, &[]), &base) }))
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
    let mut project = load(&state, &caller, "identity:update_project", &project_id).await?;
    let obj = body.member("project")?;
    obj.not_empty()?;
    if let Some(Some(id)) = obj.nullable_string("id", 64)? {
        if id != project.id {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    let name = obj.name_within("name", PROJECT_NAME_MAX)?;
    let description = obj.nullable_string("description", usize::MAX)?;
    let enabled = obj.boolean("enabled")?;
    let tags = read_tags(&obj)?;
    refuse_options(&obj)?;
    if let Some(d) = obj.id("domain_id", true)? {
        if d.as_deref() != Some(project.domain_id.as_str()) {
            return Err(ApiError::BadRequest(
                "Update of `domain_id` is not allowed.".into(),
            ));
        }
    }
    if let Some(p) = obj.id("parent_id", true)? {
        if p != project.parent_id {
            return Err(ApiError::ForbiddenNotSecurity(
                "Update of `parent_id` is not allowed.".into(),
            ));
        }
    }
    if let Some(d) = obj.boolean("is_domain")? {
        if d {
            return Err(ApiError::BadRequest(
                "Update of `is_domain` is not allowed.".into(),
            ));
        }
    }
    let store = &state.store;
    if let Some(enabled) = enabled {
        if enabled && !project.enabled {
            if let Some(off) = ancestors(&state, &project)
                .await?
                .into_iter()
                .find(|p| !p.enabled)
            {
                return Err(ApiError::ForbiddenNotSecurity(format!(
                    "Cannot enable project {} since it has disabled parents",
                    off.id
                )));
            }
        }
        if !enabled && project.enabled {
            let all = store.list_all_projects().await?;
            if subtree(&all, &project.id).iter().any(|p| p.enabled) {
                return Err(ApiError::ForbiddenNotSecurity(format!(
                    "Cannot disable project {} since its subtree contains enabled projects.",
                    project.id
                )));
            }
        }
        project.enabled = enabled;
    }
    if let Some(name) = name {
        project.name = name;
    }
    if let Some(d) = description {
        project.description = d;
    }
    let mut extra: Map<String, Value> = project
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    for (k, v) in obj.extra(NOT_EXTRA) {
        extra.insert(k, v);
    }
    project.extra = Some(Value::Object(extra).to_string());
    store.update_project(&project).await?;
    if let Some(tags) = &tags {
        store.set_project_tags(&project.id, tags).await?;
    }
    after_write(&state);
    let tags = store.list_project_tags(&project.id).await?;
    Ok(member(
        &state,
        &headers,
        "projects",
        "project",
        render(&project, &tags),
    )
    .into_response())
}

/// Every project below `root` in `all`, each after its parent.
pub(super) fn subtree<'a>(all: &'a [Project], root: &str) -> Vec<&'a Project> {
    let mut children: HashMap<&str, Vec<&Project>> = HashMap::new();
    for p in all {
        if let Some(parent) = &p.parent_id {
            children.entry(parent.as_str()).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for c in children.get(id).into_iter().flatten() {
            if out.len() > all.len() {
                break; // a cycle in corrupt data
            }
            out.push(*c);
            stack.push(c.id.as_str());
        }
    }
    out
}

/// Deletes a project that must be a leaf, with its assignments, and revokes tokens scoped to it
/// (Keystone's project-deleted revocation event).
async fn delete_leaf(state: &AppState, project: &Project) -> ApiResult<()> {
    state.store.delete_project(&project.id).await?;
    state
        .tokens
        .revoke_now(RevocationEvent {
            project_id: Some(project.id.clone()),
            ..RevocationEvent::default()
        })
        .await
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:delete_project", &project_id).await?;
    if state.store.project_has_children(&project.id).await? {
        return Err(ApiError::ForbiddenNotSecurity(format!(
            "Cannot delete the project {} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.",
            project.id
        )));
    }
    delete_leaf(&state, &project).await?;
    after_write(&state);
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
    state
        .tokens
        .store
        .set_project_tags(&project.id, &tags)
        .await?;
    let tags = state.store.list_project_tags(&project.id).await?;
    Ok(tags_body(&state, &headers, &project.id, tags))
}

async fn clear_tags(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_id): Path<String>,
) -> ApiResult<Response> {
    let project = load(&state, &caller, "identity:delete_project_tags", &project_id).await?;
    state
        .tokens
        .store
        .set_project_tags(&project.id, &[])
        .await?;
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
        Err(ApiError::NotFound(format!("Tag {tag} was not found.")))
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
    let mut tags = state.store.list_project_tags(&project.id).await?;
    if !tags.contains(&tag) {
        tags.push(tag.clone());
        check_tags("tags", &tags)?;
        state
            .tokens
            .store
            .set_project_tags(&project.id, &tags)
            .await?;
    }
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
    if state
        .tokens
        .store
        .delete_project_tag(&project.id, &tag)
        .await?
    {
        Ok(no_content())
    } else {
        Err(ApiError::NotFound(format!("Tag {tag} was not found.")))
    }
}
