//! `GET /v3/role_assignments`: the assignments as stored, or (`effective`) as they act —
//! group grants expanded to the members, inherited grants onto the projects below, implied
//! roles added — with Keystone 30's filters, links and `include_names`.
//!
//! The computation is `identity::assignments`; this file reads the query, checks the policy and
//! formats (names fetched in one query per kind, never one per assignment).

use std::collections::{HashMap, HashSet};

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{NameRef, Store};

use crate::identity::assignments::{self, Actor, Data, Params, Ref, Scope};
use serde_json::{json, Map, Value};

use super::{invalid, url, Caller, ListQuery};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// `GET /v3/role_assignments`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/role_assignments", get(list))
}

/// Keystone (Python) treats an empty filter value like an absent one.
fn non_empty(query: &ListQuery, key: &str) -> Option<String> {
    query.get(key).filter(|v| !v.is_empty()).map(str::to_string)
}

/// Keystone's `id_string` for the id filters: 1 to 64 characters of `[a-zA-Z0-9-]` (`_` too,
/// for ids other deployments made).
fn check_id(key: &str, v: Option<&str>) -> ApiResult<()> {
    if let Some(id) = v {
        if id.is_empty() {
            return Err(invalid(key, "'' should be non-empty"));
        }
        if id.chars().count() > super::ID_MAX
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                key,
                format!("'{id}' does not match '^[a-zA-Z0-9-]+$'"),
            ));
        }
    }
    Ok(())
}

impl Params {
    fn read(query: &ListQuery) -> ApiResult<Params> {
        let p = Params {
            role_id: non_empty(query, "role.id"),
            user_id: non_empty(query, "user.id"),
            group_id: non_empty(query, "group.id"),
            system: query.get("scope.system") == Some("all"),
            domain_id: non_empty(query, "scope.domain.id"),
            project_id: non_empty(query, "scope.project.id"),
            include_subtree: query.switch("include_subtree"),
            inherited: query
                .get("scope.OS-INHERIT:inherited_to")
                .map(|v| v == "projects"),
            effective: query.switch("effective"),
            include_names: query.switch("include_names"),
        };
        for key in ["role.id", "group.id", "scope.domain.id", "scope.project.id"] {
            check_id(key, query.get(key))?;
        }
        if query.has("include_subtree") && !query.has("scope.project.id") {
            return Err(ApiError::BadRequest(
                "'scope.project.id' is a dependency of 'include_subtree'".into(),
            ));
        }
        // Keystone's query schema refuses both actors (present, even empty) before the policy
        // check; the other combinations are refused after it (`check_combinations`).
        if query.has("user.id") && query.has("group.id") {
            return Err(ApiError::BadRequest(
                "Specify a user or group, not both".into(),
            ));
        }
        Ok(p)
    }

    /// Keystone's refusals of combinations that cannot mean anything.
    fn check_combinations(&self, query: &ListQuery) -> ApiResult<()> {
        let set = |k: &str| non_empty(query, k).is_some();
        let bad = |m: &str| Err(ApiError::BadRequest(m.into()));
        if set("user.id") && set("group.id") {
            return bad("Specify a user or group, not both");
        }
        if set("scope.domain.id") && set("scope.project.id") {
            return bad("Specify a domain or project, not both");
        }
        if set("scope.domain.id") && set("scope.system") {
            return bad("Specify system or domain, not both");
        }
        if set("scope.project.id") && set("scope.system") {
            return bad("Specify system or project, not both");
        }
        if self.effective {
            if set("group.id") {
                return bad(
                    "Combining effective and group filter will always result in an empty list.",
                );
            }
            if self.inherited == Some(true) && set("scope.domain.id") {
                return bad("Combining effective, domain and inherited filters will always result in an empty list.");
            }
        }
        Ok(())
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(raw.as_deref());
    let params = Params::read(&query)?;
    let store = &state.store;
    let mut restrict_to_domain = None;
    if params.include_subtree {
        // Keystone checks the caller against the project of the tree (and its domain). For a
        // project that does not exist it fails with a 500 (its NotFound escapes before the
        // policy check); here the caller is checked without it, and only a caller the policy
        // allows learns that it does not exist.
        let id = params.project_id.clone().unwrap_or_default();
        let project = store.get_project(&id).await?.filter(|p| !p.is_domain);
        let target = match &project {
            Some(project) => Target::new()
                .with("target.project.id", project.id.clone())
                .with("target.project.name", project.name.clone())
                .with("target.project.domain_id", project.domain_id.clone())
                .with("target.domain_id", project.domain_id.clone()),
            None => Target::new(),
        };
        caller.enforce(&state, "identity:list_role_assignments_for_tree", &target)?;
        if project.is_none() {
            return Err(ApiError::NotFound(format!("Could not find project: {id}.")));
        }
    } else {
        // A domain-scoped caller is checked against, and then sees only, its own domain.
        let mut target = Target::new();
        if let Some(d) = &caller.token.body.domain {
            target.set("target.domain_id", d.id.clone());
            restrict_to_domain = Some(d.id.clone());
        }
        caller.enforce(&state, "identity:list_role_assignments", &target)?;
    }
    params.check_combinations(&query)?;

    // An effective listing for one user reads that user's rows as validation does.
    let mine = match (&params.user_id, params.effective) {
        (Some(user_id), true) => Some(
            state
                .tokens
                .assignments_of_user(crate::tokens::Read::Snapshot, user_id)
                .await?,
        ),
        _ => None,
    };
    let only_domain = restrict_to_domain.as_deref();
    let (refs, data) = assignments::list(
        store,
        &params,
        only_domain,
        mine.as_deref().map(Vec::as_slice),
    )
    .await?;
    let names = if params.include_names {
        Some(Names::load(store, &refs, &data).await?)
    } else {
        None
    };
    let base = url(&state, &headers, "");
    let base = base.trim_end_matches('/');
    let items: Vec<Value> = refs
        .iter()
        .map(|r| format_ref(base, r, names.as_ref(), &data))
        .collect();
    let here = url(&state, &headers, "role_assignments");
    let self_link = match raw.as_deref() {
        Some(q) if !q.is_empty() => format!("{here}?{q}"),
        _ => here,
    };
    // Built by hand: `json!` would copy the 5,000-entry list value by value.
    let mut body = Map::new();
    body.insert("role_assignments".into(), Value::Array(items));
    body.insert(
        "links".into(),
        json!({ "self": self_link, "previous": null, "next": null }),
    );
    Ok(Json(Value::Object(body)))
}

// ----- names and formatting ----------------------------------------------------------------------

/// Names for `include_names`, fetched in one batch per kind.
struct Names {
    users: HashMap<String, NameRef>,
    groups: HashMap<String, NameRef>,
    /// Projects and domains.
    projects: HashMap<String, NameRef>,
}

impl Names {
    async fn load(store: &Store, refs: &[Ref], data: &Data) -> ApiResult<Names> {
        let mut users = HashSet::new();
        let mut groups = HashSet::new();
        let mut targets = HashSet::new();
        for r in refs {
            match &r.actor {
                Actor::User(u) => users.insert(u.clone()),
                Actor::Group(g) => groups.insert(g.clone()),
            };
            match &r.scope {
                Scope::Project(p) | Scope::Domain(p) => {
                    targets.insert(p.clone());
                }
                Scope::System => {}
            }
            if let Some(d) = data.roles.get(&r.role_id).and_then(|r| r.domain_id.clone()) {
                targets.insert(d);
            }
        }
        let users = store
            .user_names(&users.into_iter().collect::<Vec<_>>())
            .await?;
        let groups = store
            .group_names(&groups.into_iter().collect::<Vec<_>>())
            .await?;
        // Domains of the users, groups and projects, in a second batch after the projects.
        let mut more: HashSet<String> = HashSet::new();
        for n in users.values().chain(groups.values()) {
            more.insert(n.domain_id.clone());
        }
        let mut projects = store
            .project_names(&targets.into_iter().collect::<Vec<_>>())
            .await?;
        for n in projects.values() {
            more.insert(n.domain_id.clone());
        }
        more.retain(|d| !projects.contains_key(d));
        if !more.is_empty() {
            projects.extend(
                store
                    .project_names(&more.into_iter().collect::<Vec<_>>())
                    .await?,
            );
        }
        Ok(Names {
            users,
            groups,
            projects,
        })
    }

    fn domain_name(&self, id: &str) -> String {
        self.projects
            .get(id)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    }

    /// `{"id", "name", "domain": {"id", "name"}}` for an actor; empty strings for one that is
    /// gone, as Keystone does.
    fn actor(&self, id: &str, of: &HashMap<String, NameRef>) -> Value {
        match of.get(id) {
            Some(n) => json!({
                "id": id,
                "name": n.name,
                "domain": { "id": n.domain_id, "name": self.domain_name(&n.domain_id) },
            }),
            None => json!({ "id": id, "name": "", "domain": { "id": "", "name": "" } }),
        }
    }
}

/// The `scope` of one assignment, the start of its `assignment` link, and whether it shows as
/// inherited (a grant inherited onto this project from a domain or a parent).
fn format_scope(r: &Ref, names: Option<&Names>) -> (Map<String, Value>, String, bool) {
    let mut scope = Map::new();
    let mut inherited = r.inherited;
    let link = match &r.scope {
        Scope::Project(id) => {
            let project = match names {
                Some(n) => {
                    let (name, domain_id) = n
                        .projects
                        .get(id)
                        .map(|p| (p.name.clone(), p.domain_id.clone()))
                        .unwrap_or_default();
                    json!({
                        "id": id,
                        "name": name,
                        "domain": { "id": domain_id, "name": n.domain_name(&domain_id) },
                    })
                }
                None => json!({ "id": id }),
            };
            scope.insert("project".into(), project);
            if let Some(d) = &r.indirect.domain_id {
                inherited = true;
                format!("/domains/{d}")
            } else if let Some(from) = &r.indirect.project_id {
                inherited = true;
                format!("/projects/{from}")
            } else {
                format!("/projects/{id}")
            }
        }
        Scope::Domain(id) => {
            let domain = match names {
                Some(n) => json!({ "id": id, "name": n.domain_name(id) }),
                None => json!({ "id": id }),
            };
            scope.insert("domain".into(), domain);
            format!("/domains/{id}")
        }
        Scope::System => {
            scope.insert("system".into(), json!({ "all": true }));
            "/system".to_string()
        }
    };
    (scope, link, inherited)
}

fn format_ref(base: &str, r: &Ref, names: Option<&Names>, data: &Data) -> Value {
    let mut links = Map::new();
    let mut out = Map::new();
    let (mut scope, mut link, inherited) = format_scope(r, names);
    match &r.actor {
        Actor::User(u) => {
            let user = match names {
                Some(n) => n.actor(u, &n.users),
                None => json!({ "id": u }),
            };
            out.insert("user".into(), user);
            if let Some(g) = &r.indirect.group_id {
                links.insert(
                    "membership".into(),
                    json!(format!("{base}/groups/{g}/users/{u}")),
                );
                link.push_str(&format!("/groups/{g}"));
            } else {
                link.push_str(&format!("/users/{u}"));
            }
        }
        Actor::Group(g) => {
            let group = match names {
                Some(n) => n.actor(g, &n.groups),
                None => json!({ "id": g }),
            };
            out.insert("group".into(), group);
            link.push_str(&format!("/groups/{g}"));
        }
    }
    let mut role = json!({ "id": r.role_id });
    if let Some(n) = names {
        let found = data.roles.get(&r.role_id);
        role["name"] = json!(found.map(|x| x.name.clone()).unwrap_or_default());
        if let Some(d) = found.and_then(|x| x.domain_id.as_ref()) {
            role["domain"] = json!({ "id": d, "name": n.domain_name(d) });
        }
    }
    out.insert("role".into(), role);
    // An implied role's link points at the grant of the role that implied it, as in Keystone.
    match &r.indirect.role_id {
        Some(prior) => {
            link.push_str(&format!("/roles/{prior}"));
            links.insert(
                "prior_role".into(),
                json!(format!("{base}/prior_role/{}/implies/{prior}", r.role_id)),
            );
        }
        None => link.push_str(&format!("/roles/{}", r.role_id)),
    }
    if inherited {
        scope.insert("OS-INHERIT:inherited_to".into(), json!("projects"));
        link = format!("/OS-INHERIT{link}/inherited_to_projects");
    }
    links.insert("assignment".into(), json!(format!("{base}{link}")));
    out.insert("scope".into(), Value::Object(scope));
    out.insert("links".into(), Value::Object(links));
    Value::Object(out)
}
