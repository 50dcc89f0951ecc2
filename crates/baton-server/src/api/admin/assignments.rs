//! `GET /v3/role_assignments`: the assignments as stored, or (`effective`) as they act —
//! group grants expanded to the members, inherited grants onto the projects below, implied
//! roles added — with Keystone 30's filters, links and `include_names`.
//!
//! The work is batched: one query for the matching assignments (a few more in effective mode),
//! the project tree and group memberships loaded once when inheritance or groups need them, and
//! one query per kind of name; never a query per assignment.

#![allow(clippy::too_many_lines)] // removed when the handlers are thinned (issue 11)
#![allow(missing_docs)] // removed when the handlers are thinned (issue 11)

use std::collections::{HashMap, HashSet};

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{AssignmentFilter, AssignmentType, NameRef, ProjectNode, Role, Store};

use crate::identity::ProjectTree;
use serde_json::{json, Map, Value};

use super::{invalid, url, Caller, ListQuery};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/role_assignments", get(list))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Actor {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    Project(String),
    Domain(String),
    System,
}

/// Where an expanded assignment came from (Keystone's `indirect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Indirect {
    group_id: Option<String>,
    project_id: Option<String>,
    domain_id: Option<String>,
    role_id: Option<String>,
}

/// One assignment as Keystone's assignment manager passes it around before formatting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ref {
    actor: Actor,
    scope: Scope,
    role_id: String,
    /// Still an inherited grant (not expanded onto projects).
    inherited: bool,
    indirect: Indirect,
}

/// The query, read as Keystone reads it.
#[derive(Debug, Default)]
struct Params {
    role_id: Option<String>,
    user_id: Option<String>,
    group_id: Option<String>,
    /// `scope.system=all`; other values are ignored.
    system: bool,
    domain_id: Option<String>,
    project_id: Option<String>,
    include_subtree: bool,
    /// `scope.OS-INHERIT:inherited_to`: `Some(true)` for `projects`, `Some(false)` for any
    /// other value, `None` when absent (both kinds).
    inherited: Option<bool>,
    effective: bool,
    include_names: bool,
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
            return Err(invalid(key, "'' is too short"));
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

    let data = Data::load(store, &params, restrict_to_domain.is_some()).await?;
    let mut refs = if params.effective {
        effective(store, &params, &data).await?
    } else {
        direct(store, &params, &data).await?
    };
    if let Some(domain) = restrict_to_domain {
        refs.retain(|r| match &r.scope {
            Scope::Domain(d) => *d == domain,
            Scope::Project(p) => data.project(p).is_some_and(|p| p.domain_id == domain),
            Scope::System => false,
        });
    }
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

// ----- what the listing needs to know ----------------------------------------------------------

/// Roles, implications and (when needed) the project tree, each loaded once.
struct Data {
    roles: HashMap<String, Role>,
    implied: HashMap<String, Vec<String>>,
    /// Every project and domain, loaded when inheritance, subtrees or domain filtering need it.
    tree: Option<ProjectTree>,
}

impl Data {
    /// `need_tree`: load the project tree even if the query does not need it (to filter by
    /// the projects' domains).
    async fn load(store: &Store, p: &Params, need_tree: bool) -> ApiResult<Data> {
        let roles = store
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut implied: HashMap<String, Vec<String>> = HashMap::new();
        if p.effective {
            let mut pairs = store.list_implied_roles().await?;
            pairs.sort();
            for (prior, imp) in pairs {
                implied.entry(prior).or_default().push(imp);
            }
        }
        let tree = if need_tree || p.effective || p.include_subtree || p.project_id.is_some() {
            Some(ProjectTree::load(store).await?)
        } else {
            None
        };
        Ok(Data {
            roles,
            implied,
            tree,
        })
    }

    fn project(&self, id: &str) -> Option<&ProjectNode> {
        self.tree.as_ref()?.project(id)
    }

    fn subtree(&self, id: &str) -> Vec<String> {
        self.tree
            .as_ref()
            .map(|t| t.subtree(id))
            .unwrap_or_default()
    }

    fn parents(&self, id: &str) -> Vec<String> {
        self.tree
            .as_ref()
            .map(|t| t.ancestors(id))
            .unwrap_or_default()
    }

    fn projects_in_domain(&self, domain_id: &str) -> Vec<String> {
        self.tree
            .as_ref()
            .map(|t| t.projects_in_domain(domain_id))
            .unwrap_or_default()
    }
}

// ----- listing as stored -------------------------------------------------------------------------

/// Keystone's assignment driver: which kinds of rows an actor filter and a target filter allow.
fn kinds_for(user: bool, group: bool, project: bool, domain: bool) -> Option<Vec<AssignmentType>> {
    use AssignmentType::*;
    let actor: Option<[AssignmentType; 2]> = if user {
        Some([UserProject, UserDomain])
    } else if group {
        Some([GroupProject, GroupDomain])
    } else {
        None
    };
    let target: Option<[AssignmentType; 2]> = if project {
        Some([UserProject, GroupProject])
    } else if domain {
        Some([UserDomain, GroupDomain])
    } else {
        None
    };
    match (actor, target) {
        (Some(a), Some(t)) => Some(a.into_iter().filter(|k| t.contains(k)).collect()),
        (Some(a), None) => Some(a.to_vec()),
        (None, Some(t)) => Some(t.to_vec()),
        (None, None) => None,
    }
}

/// One query of `assignment` with the driver's filters, as `Ref`s in a stable order.
async fn query_refs(
    store: &Store,
    role_id: Option<&str>,
    user_id: Option<&str>,
    group_ids: Option<&[String]>,
    domain_id: Option<&str>,
    project_ids: Option<&[String]>,
    inherited: Option<bool>,
) -> ApiResult<Vec<Ref>> {
    let group_ids = group_ids.filter(|g| !g.is_empty());
    let project_ids = project_ids.filter(|p| !p.is_empty());
    let targets = match (project_ids, domain_id) {
        (Some(p), _) => Some(p.to_vec()),
        (None, Some(d)) => Some(vec![d.to_string()]),
        (None, None) => None,
    };
    let actors = match (group_ids, user_id) {
        (Some(g), _) => Some(g.to_vec()),
        (None, Some(u)) => Some(vec![u.to_string()]),
        (None, None) => None,
    };
    let filter = AssignmentFilter {
        role_id: role_id.map(str::to_string),
        actor_ids: actors,
        target_ids: targets,
        kinds: kinds_for(
            user_id.is_some(),
            group_ids.is_some(),
            project_ids.is_some(),
            domain_id.is_some(),
        ),
        inherited,
    };
    let mut rows = store.list_assignments(&filter).await?;
    rows.sort_by(|a, b| {
        (
            a.kind.as_str(),
            &a.actor_id,
            &a.target_id,
            &a.role_id,
            a.inherited,
        )
            .cmp(&(
                b.kind.as_str(),
                &b.actor_id,
                &b.target_id,
                &b.role_id,
                b.inherited,
            ))
    });
    Ok(rows
        .into_iter()
        .map(|a| Ref {
            actor: if a.kind.is_group() {
                Actor::Group(a.actor_id)
            } else {
                Actor::User(a.actor_id)
            },
            scope: if a.kind.is_domain() {
                Scope::Domain(a.target_id)
            } else {
                Scope::Project(a.target_id)
            },
            role_id: a.role_id,
            inherited: a.inherited,
            indirect: Indirect::default(),
        })
        .collect())
}

async fn direct(store: &Store, p: &Params, data: &Data) -> ApiResult<Vec<Ref>> {
    let mut project_ids = None;
    if let Some(project) = &p.project_id {
        let mut ids = if p.include_subtree {
            data.subtree(project)
        } else {
            Vec::new()
        };
        ids.push(project.clone());
        project_ids = Some(ids);
    }
    let group_ids = p.group_id.clone().map(|g| vec![g]);
    let mut out = Vec::new();
    if !p.system {
        out = query_refs(
            store,
            p.role_id.as_deref(),
            p.user_id.as_deref(),
            group_ids.as_deref(),
            p.domain_id.as_deref(),
            project_ids.as_deref(),
            p.inherited,
        )
        .await?;
    }
    // System grants come along unless a project or domain is asked for.
    if p.system || (p.project_id.is_none() && p.domain_id.is_none()) {
        let (actor, is_group) = match (&p.user_id, &p.group_id) {
            (Some(u), _) => (Some(u.as_str()), Some(false)),
            (None, Some(g)) => (Some(g.as_str()), Some(true)),
            (None, None) => (None, None),
        };
        let mut system = store.list_system_assignments(actor, is_group).await?;
        system.sort_by(|a, b| {
            (a.is_group, &a.actor_id, &a.role_id).cmp(&(b.is_group, &b.actor_id, &b.role_id))
        });
        out.extend(
            system
                .into_iter()
                // Keystone lists a user's or group's system roles through the roles that
                // exist.
                .filter(|a| actor.is_none() || data.roles.contains_key(&a.role_id))
                .filter(|a| p.role_id.as_ref().is_none_or(|r| *r == a.role_id))
                .map(|a| Ref {
                    actor: if a.is_group {
                        Actor::Group(a.actor_id)
                    } else {
                        Actor::User(a.actor_id)
                    },
                    scope: Scope::System,
                    role_id: a.role_id,
                    inherited: false,
                    indirect: Indirect::default(),
                }),
        );
    }
    Ok(out)
}

// ----- effective ---------------------------------------------------------------------------------

/// Assignments that can affect the result for one actor (a user, a set of groups, or anyone),
/// before expansion: direct ones on the targets asked for and inherited ones from above them.
async fn for_actor(
    store: &Store,
    data: &Data,
    p: &Params,
    user_id: Option<&str>,
    group_ids: Option<&[String]>,
    subtree: &[String],
    inherited: Option<bool>,
) -> ApiResult<Vec<Ref>> {
    let interest: Option<Vec<String>> = p.project_id.as_ref().map(|id| {
        let mut ids = subtree.to_vec();
        ids.push(id.clone());
        ids
    });
    let mut out = Vec::new();
    if inherited != Some(true) {
        out.extend(
            query_refs(
                store,
                None,
                user_id,
                group_ids,
                p.domain_id.as_deref(),
                interest.as_deref(),
                Some(false),
            )
            .await?,
        );
    }
    if inherited != Some(false) {
        match &p.project_id {
            Some(project_id) => {
                // Inherited grants reach a project from its domain and from its parents.
                let domain_id = data
                    .project(project_id)
                    .map(|pr| pr.domain_id.clone())
                    .ok_or_else(|| {
                        ApiError::NotFound(format!("Could not find project: {project_id}."))
                    })?;
                out.extend(
                    query_refs(
                        store,
                        None,
                        user_id,
                        group_ids,
                        Some(&domain_id),
                        None,
                        Some(true),
                    )
                    .await?,
                );
                let mut sources = data.parents(project_id);
                if !subtree.is_empty() {
                    sources.extend(interest.iter().flatten().cloned());
                }
                if !sources.is_empty() {
                    out.extend(
                        query_refs(
                            store,
                            None,
                            user_id,
                            group_ids,
                            None,
                            Some(&sources),
                            Some(true),
                        )
                        .await?,
                    );
                }
            }
            None => out
                .extend(query_refs(store, None, user_id, group_ids, None, None, Some(true)).await?),
        }
    }
    Ok(out)
}

async fn effective(store: &Store, p: &Params, data: &Data) -> ApiResult<Vec<Ref>> {
    // Domains inherit nothing, so a domain filter means direct grants only.
    let inherited = if p.domain_id.is_some() {
        Some(false)
    } else {
        p.inherited
    };
    let subtree = match (&p.project_id, p.include_subtree) {
        (Some(id), true) => data.subtree(id),
        _ => Vec::new(),
    };
    let mut found = for_actor(
        store,
        data,
        p,
        p.user_id.as_deref(),
        None,
        &subtree,
        inherited,
    )
    .await?;
    if let Some(user_id) = &p.user_id {
        let groups = store.list_user_group_ids(user_id).await?;
        if !groups.is_empty() {
            found
                .extend(for_actor(store, data, p, None, Some(&groups), &subtree, inherited).await?);
        }
    }
    // Members of every group involved, in one query.
    let group_ids: Vec<String> = found
        .iter()
        .filter_map(|r| match &r.actor {
            Actor::Group(g) if p.user_id.is_none() => Some(g.clone()),
            _ => None,
        })
        .collect();
    let members = if group_ids.is_empty() {
        HashMap::new()
    } else {
        store.group_members(&group_ids).await?
    };
    let mut expanded = Vec::new();
    for r in found {
        expand(r, p, &subtree, data, &members, &mut expanded);
    }
    let mut refs = add_implied_roles(expanded, &data.implied);
    // Domain-specific roles only lend their implications; they never act themselves.
    refs.retain(|r| {
        data.roles
            .get(&r.role_id)
            .is_some_and(|role| role.domain_id.is_none())
    });
    if let Some(role_id) = &p.role_id {
        refs.retain(|r| r.role_id == *role_id);
    }
    Ok(refs)
}

/// A group grant becomes one per member (just the user asked about, when there is one); an
/// inherited grant becomes one per project below its target (limited to the projects asked
/// about).
fn expand(
    r: Ref,
    p: &Params,
    subtree: &[String],
    data: &Data,
    members: &HashMap<String, Vec<String>>,
    out: &mut Vec<Ref>,
) {
    let users = |group: &str| -> Vec<String> {
        match &p.user_id {
            Some(u) => vec![u.clone()],
            None => members.get(group).cloned().unwrap_or_default(),
        }
    };
    let for_user = |r: &Ref, user: &str| -> Ref {
        let mut n = r.clone();
        if let Actor::Group(g) = &r.actor {
            n.indirect.group_id = Some(g.clone());
        }
        n.actor = Actor::User(user.to_string());
        n
    };
    if !r.inherited {
        match &r.actor {
            Actor::Group(g) => {
                for u in users(g) {
                    out.push(for_user(&r, &u));
                }
            }
            Actor::User(_) => out.push(r),
        }
        return;
    }
    let projects: Vec<String> = match (&p.project_id, &r.scope) {
        (Some(asked), scope) => {
            let mut ids = vec![asked.clone()];
            ids.extend(subtree.iter().cloned());
            // A grant inherited from inside the subtree reaches only the part below it.
            if !subtree.is_empty() {
                if let Scope::Project(from) = scope {
                    if ids.contains(from) {
                        ids = data.subtree(from);
                    }
                }
            }
            ids
        }
        (None, Scope::Domain(d)) => data.projects_in_domain(d),
        (None, Scope::Project(from)) => data.subtree(from),
        (None, Scope::System) => Vec::new(),
    };
    let onto = |base: &Ref, project: &str| -> Ref {
        let mut n = base.clone();
        match &base.scope {
            Scope::Project(from) => n.indirect.project_id = Some(from.clone()),
            Scope::Domain(from) => n.indirect.domain_id = Some(from.clone()),
            Scope::System => {}
        }
        n.scope = Scope::Project(project.to_string());
        n.inherited = false;
        n
    };
    match &r.actor {
        Actor::Group(g) => {
            for u in users(g) {
                let member = for_user(&r, &u);
                for project in &projects {
                    out.push(onto(&member, project));
                }
            }
        }
        Actor::User(_) => {
            for project in &projects {
                out.push(onto(&r, project));
            }
        }
    }
}

/// Adds a copy of each assignment per role its role implies, transitively; the copy names the
/// role it was implied by. Cycles are walked once.
fn add_implied_roles(refs: Vec<Ref>, implied: &HashMap<String, Vec<String>>) -> Vec<Ref> {
    if implied.is_empty() {
        return refs;
    }
    let mut results = refs.clone();
    let mut to_check = refs;
    let mut checked: HashSet<Ref> = HashSet::new();
    while let Some(next) = to_check.pop() {
        checked.insert(next.clone());
        for imp in implied.get(&next.role_id).into_iter().flatten() {
            let mut copy = next.clone();
            copy.role_id = imp.clone();
            copy.indirect.role_id = Some(next.role_id.clone());
            if checked.contains(&copy) {
                continue;
            }
            results.push(copy.clone());
            to_check.push(copy);
        }
    }
    results
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
        // Domains of the users, groups and projects, in the same batch as the projects when
        // the tree is already loaded, else in a second one.
        let mut more: HashSet<String> = HashSet::new();
        for n in users.values().chain(groups.values()) {
            more.insert(n.domain_id.clone());
        }
        let mut projects = HashMap::new();
        if let Some(tree) = &data.tree {
            for n in tree.nodes() {
                projects.insert(
                    n.id.clone(),
                    NameRef {
                        name: n.name.clone(),
                        domain_id: n.domain_id.clone(),
                    },
                );
            }
        } else {
            projects = store
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

fn format_ref(base: &str, r: &Ref, names: Option<&Names>, data: &Data) -> Value {
    let mut link = String::new();
    let mut links = Map::new();
    let mut out = Map::new();
    let mut inherited = r.inherited;
    let mut scope = Map::new();
    match &r.scope {
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
                link = format!("/domains/{d}");
            } else if let Some(from) = &r.indirect.project_id {
                inherited = true;
                link = format!("/projects/{from}");
            } else {
                link = format!("/projects/{id}");
            }
        }
        Scope::Domain(id) => {
            let domain = match names {
                Some(n) => json!({ "id": id, "name": n.domain_name(id) }),
                None => json!({ "id": id }),
            };
            scope.insert("domain".into(), domain);
            link = format!("/domains/{id}");
        }
        Scope::System => {
            scope.insert("system".into(), json!({ "all": true }));
            link.push_str("/system");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(role: &str) -> Ref {
        Ref {
            actor: Actor::User("u".into()),
            scope: Scope::Project("p".into()),
            role_id: role.into(),
            inherited: false,
            indirect: Indirect::default(),
        }
    }

    #[test]
    fn implied_roles_expand_transitively_and_survive_cycles() {
        let mut implied = HashMap::new();
        implied.insert("admin".to_string(), vec!["member".to_string()]);
        implied.insert("member".to_string(), vec!["reader".to_string()]);
        let out = add_implied_roles(vec![r("admin")], &implied);
        let got: Vec<(&str, Option<&str>)> = out
            .iter()
            .map(|x| (x.role_id.as_str(), x.indirect.role_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("admin", None),
                ("member", Some("admin")),
                ("reader", Some("member"))
            ]
        );

        let mut cycle = HashMap::new();
        cycle.insert("a".to_string(), vec!["b".to_string()]);
        cycle.insert("b".to_string(), vec!["a".to_string()]);
        let out = add_implied_roles(vec![r("a")], &cycle);
        assert_eq!(out.len(), 3, "{out:?}");
    }

    #[test]
    fn kinds_follow_the_driver() {
        use AssignmentType::*;
        assert_eq!(kinds_for(true, false, true, false), Some(vec![UserProject]));
        assert_eq!(
            kinds_for(false, true, false, false),
            Some(vec![GroupProject, GroupDomain])
        );
        assert_eq!(
            kinds_for(false, false, false, true),
            Some(vec![UserDomain, GroupDomain])
        );
        assert_eq!(kinds_for(false, false, false, false), None);
    }
}
