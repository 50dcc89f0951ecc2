//! Role grants: a user or group gets a role on a project or a domain
//! (`/v3/projects/{p}/users/{u}/roles/{r}` and the group and domain forms), inherited by the
//! projects below (`/v3/OS-INHERIT/...`), or on the system (`/v3/system/users/{u}/roles/{r}`).
//!
//! Policy answers first, with whatever exists, and only a caller it allows learns that the role,
//! actor or project/domain does not exist (404, in Keystone's order of lookups; the actor of a
//! revocation may be missing, so grants of deleted users can be cleaned up). Keystone 30 does
//! this for the OS-INHERIT forms only: its plain and system forms look everything up before
//! policy and so tell anyone which ids exist, which Baton does not copy.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use baton_store::{
    Assignment, AssignmentFilter, AssignmentType, NameRef, Project, RoleDetail, SystemAssignment,
};
use serde_json::Value;

use super::roles::{self, add_role_target};
use super::{no_content, path_id, Caller, Collection, ListRequest, Page};
use crate::error::{ApiError, ApiResult};
use crate::identity::grants::no_assignment;
use crate::policy::Target;
use crate::AppState;

/// What a grant is on (`ON` below).
const PROJECT: u8 = 0;
const DOMAIN: u8 = 1;
/// Who holds it (`WHO` below).
const USER: u8 = 0;
const GROUP: u8 = 1;

/// Every grant route: projects and domains, OS-INHERIT, and the system.
pub fn routes() -> Router<AppState> {
    plain_routes()
        .merge(inherited_routes())
        .merge(system_routes())
}

/// Grants on projects and domains.
fn plain_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/projects/{project_id}/users/{user_id}/roles",
            get(list::<PROJECT, USER, false>),
        )
        .route(
            "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
            get(check::<PROJECT, USER, false>)
                .put(grant::<PROJECT, USER, false>)
                .delete(revoke::<PROJECT, USER, false>),
        )
        .route(
            "/v3/projects/{project_id}/groups/{group_id}/roles",
            get(list::<PROJECT, GROUP, false>),
        )
        .route(
            "/v3/projects/{project_id}/groups/{group_id}/roles/{role_id}",
            get(check::<PROJECT, GROUP, false>)
                .put(grant::<PROJECT, GROUP, false>)
                .delete(revoke::<PROJECT, GROUP, false>),
        )
        .route(
            "/v3/domains/{domain_id}/users/{user_id}/roles",
            get(list::<DOMAIN, USER, false>),
        )
        .route(
            "/v3/domains/{domain_id}/users/{user_id}/roles/{role_id}",
            get(check::<DOMAIN, USER, false>)
                .put(grant::<DOMAIN, USER, false>)
                .delete(revoke::<DOMAIN, USER, false>),
        )
        .route(
            "/v3/domains/{domain_id}/groups/{group_id}/roles",
            get(list::<DOMAIN, GROUP, false>),
        )
        .route(
            "/v3/domains/{domain_id}/groups/{group_id}/roles/{role_id}",
            get(check::<DOMAIN, GROUP, false>)
                .put(grant::<DOMAIN, GROUP, false>)
                .delete(revoke::<DOMAIN, GROUP, false>),
        )
}

/// OS-INHERIT grants, inherited to the projects below.
fn inherited_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/inherited_to_projects",
            get(list::<DOMAIN, USER, true>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}/roles/{role_id}/inherited_to_projects",
            get(check::<DOMAIN, USER, true>)
                .put(grant::<DOMAIN, USER, true>)
                .delete(revoke::<DOMAIN, USER, true>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/inherited_to_projects",
            get(list::<DOMAIN, GROUP, true>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects",
            get(check::<DOMAIN, GROUP, true>)
                .put(grant::<DOMAIN, GROUP, true>)
                .delete(revoke::<DOMAIN, GROUP, true>),
        )
        .route(
            "/v3/OS-INHERIT/projects/{project_id}/users/{user_id}/roles/{role_id}/inherited_to_projects",
            get(check::<PROJECT, USER, true>)
                .put(grant::<PROJECT, USER, true>)
                .delete(revoke::<PROJECT, USER, true>),
        )
        .route(
            "/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}/roles/{role_id}/inherited_to_projects",
            get(check::<PROJECT, GROUP, true>)
                .put(grant::<PROJECT, GROUP, true>)
                .delete(revoke::<PROJECT, GROUP, true>),
        )
}

/// Grants on the system.
fn system_routes() -> Router<AppState> {
    Router::new()
        .route("/v3/system/users/{user_id}/roles", get(list_system::<USER>))
        .route(
            "/v3/system/users/{user_id}/roles/{role_id}",
            get(check_system::<USER>)
                .put(grant_system::<USER>)
                .delete(revoke_system::<USER>),
        )
        .route(
            "/v3/system/groups/{group_id}/roles",
            get(list_system::<GROUP>),
        )
        .route(
            "/v3/system/groups/{group_id}/roles/{role_id}",
            get(check_system::<GROUP>)
                .put(grant_system::<GROUP>)
                .delete(revoke_system::<GROUP>),
        )
}

// ----- looking things up ------------------------------------------------------------------------

fn actor_kind(who: u8) -> &'static str {
    if who == GROUP {
        "group"
    } else {
        "user"
    }
}

fn target_kind(on: u8) -> &'static str {
    if on == DOMAIN {
        "domain"
    } else {
        "project"
    }
}

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::not_found(kind, id)
}

/// The user or group of a path: its name and domain, `None` when there is no such actor.
pub async fn find_actor(state: &AppState, who: u8, id: &str) -> ApiResult<Option<NameRef>> {
    if path_id(actor_kind(who), id).is_err() {
        return Ok(None);
    }
    let store = &state.store;
    if who == GROUP {
        Ok(store.group_names(&[id.to_string()]).await?.remove(id))
    } else {
        Ok(store.get_user(id).await?.map(|u| NameRef {
            name: u.name,
            domain_id: u.domain_id,
        }))
    }
}

async fn find_target(state: &AppState, on: u8, id: &str) -> ApiResult<Option<Project>> {
    if path_id(target_kind(on), id).is_err() {
        return Ok(None);
    }
    let found = state.store.get_project(id).await?;
    Ok(found.filter(|p| p.is_domain == (on == DOMAIN)))
}

async fn find_role(state: &AppState, id: &str) -> ApiResult<Option<RoleDetail>> {
    if path_id("role", id).is_err() {
        return Ok(None);
    }
    Ok(state.store.get_role_detail(id).await?)
}

/// What Keystone's grant APIs hand to policy: the role, actor and project or domain (each only
/// when it exists), plus the path parameters at the top level.
struct Grant {
    on: u8,
    who: u8,
    target_id: String,
    actor_id: String,
    role_id: Option<String>,
    inherited: bool,
    role: Option<RoleDetail>,
    actor: Option<NameRef>,
    target: Option<Project>,
}

impl Grant {
    /// Looks up whatever exists of the role, actor and project or domain; nothing is required
    /// to exist before policy has answered (see [`Grant::require_found`]).
    async fn load(
        state: &AppState,
        on: u8,
        who: u8,
        target_id: String,
        actor_id: String,
        role_id: Option<String>,
        inherited: bool,
    ) -> ApiResult<Grant> {
        let role = match &role_id {
            Some(id) => find_role(state, id).await?,
            None => None,
        };
        let actor = find_actor(state, who, &actor_id).await?;
        let target = find_target(state, on, &target_id).await?;
        Ok(Grant {
            on,
            who,
            target_id,
            actor_id,
            role_id,
            inherited,
            role,
            actor,
            target,
        })
    }

    /// After policy allowed the caller: the plain API's 404 for an unknown role, project or
    /// domain, or (unless `allow_missing_actor`) actor, in Keystone's order of lookups (the
    /// domain API looks up the domain first, the project API the role first). The OS-INHERIT
    /// forms check what they need later.
    fn require_found(&self, allow_missing_actor: bool) -> ApiResult<()> {
        if self.inherited {
            return Ok(());
        }
        if self.on == DOMAIN {
            self.require_target()?;
        }
        if self.role_id.is_some() {
            self.require_role()?;
        }
        if !allow_missing_actor && self.actor.is_none() {
            return Err(not_found(actor_kind(self.who), &self.actor_id));
        }
        self.require_target()?;
        Ok(())
    }

    fn policy_target(&self) -> Target {
        let mut t = Target::new();
        let (actor_key, target_key) = (actor_kind(self.who), target_kind(self.on));
        t.set(&format!("{actor_key}_id"), self.actor_id.clone());
        t.set(&format!("{target_key}_id"), self.target_id.clone());
        if let Some(r) = &self.role_id {
            t.set("role_id", r.clone());
        }
        if let Some(r) = &self.role {
            add_role_target(&mut t, "target.role", &r.role);
        }
        if let Some(a) = &self.actor {
            t.set(&format!("target.{actor_key}.id"), self.actor_id.clone());
            t.set(&format!("target.{actor_key}.name"), a.name.clone());
            t.set(
                &format!("target.{actor_key}.domain_id"),
                a.domain_id.clone(),
            );
        }
        if let Some(p) = &self.target {
            t.set(&format!("target.{target_key}.id"), p.id.clone());
            t.set(&format!("target.{target_key}.name"), p.name.clone());
            if self.on == PROJECT {
                t.set("target.project.domain_id", p.domain_id.clone());
                t.set_opt("target.project.parent_id", p.parent_id.clone());
            }
        }
        t
    }

    fn assignment(&self, role_id: &str) -> Assignment {
        let kind = match (self.on, self.who) {
            (PROJECT, USER) => AssignmentType::UserProject,
            (PROJECT, _) => AssignmentType::GroupProject,
            (_, USER) => AssignmentType::UserDomain,
            _ => AssignmentType::GroupDomain,
        };
        Assignment {
            kind,
            actor_id: self.actor_id.clone(),
            target_id: self.target_id.clone(),
            role_id: role_id.to_string(),
            inherited: self.inherited,
        }
    }

    fn require_role(&self) -> ApiResult<&RoleDetail> {
        let id = self.role_id.as_deref().unwrap_or_default();
        self.role.as_ref().ok_or_else(|| roles::not_found(id))
    }

    fn require_target(&self) -> ApiResult<&Project> {
        self.target
            .as_ref()
            .ok_or_else(|| not_found(target_kind(self.on), &self.target_id))
    }
}

/// The roles behind `role_ids`, rendered, for the list forms.
async fn render_roles(state: &AppState, role_ids: &[String]) -> ApiResult<Vec<Value>> {
    Ok(state
        .store
        .list_role_details()
        .await?
        .iter()
        .filter(|d| role_ids.contains(&d.role.id))
        .map(roles::render)
        .collect())
}

/// Keystone's collection of roles at the request's path, unpaged.
fn role_collection(list: &ListRequest, uri: &Uri, roles: Vec<Value>) -> Response {
    let page = Page {
        limit: None,
        marker: None,
    };
    let path = uri.path().trim_start_matches("/v3/").to_string();
    list.respond(&page, Collection::of("roles").at(path), roles)
}

// ----- project and domain grants ----------------------------------------------------------------

async fn check<const ON: u8, const WHO: u8, const INHERITED: bool>(
    State(state): State<AppState>,
    caller: Caller,
    Path((target_id, actor_id, role_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let g = Grant::load(
        &state,
        ON,
        WHO,
        target_id,
        actor_id,
        Some(role_id),
        INHERITED,
    )
    .await?;
    caller.enforce(&state, "identity:check_grant", &g.policy_target())?;
    g.require_found(false)?;
    let role = g.require_role()?;
    g.require_target()?;
    let a = g.assignment(&role.role.id);
    if !state.store.assignment_exists(&a).await? {
        return Err(no_assignment(&a.role_id, &a.actor_id, &a.target_id));
    }
    Ok(no_content())
}

async fn grant<const ON: u8, const WHO: u8, const INHERITED: bool>(
    State(state): State<AppState>,
    caller: Caller,
    Path((target_id, actor_id, role_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let g = Grant::load(
        &state,
        ON,
        WHO,
        target_id,
        actor_id,
        Some(role_id),
        INHERITED,
    )
    .await?;
    caller.enforce(&state, "identity:create_grant", &g.policy_target())?;
    g.require_found(false)?;
    let role = g.require_role()?;
    let target = g.require_target()?;
    // Keystone would record a grant for an actor that does not exist through OS-INHERIT;
    // refused here like in the plain API.
    if g.actor.is_none() {
        return Err(not_found(actor_kind(WHO), &g.actor_id));
    }
    let project_domain = (ON == PROJECT).then_some(target.domain_id.as_str());
    state
        .identity
        .grant(&g.assignment(&role.role.id), &role.role, project_domain)
        .await?;
    Ok(no_content())
}

async fn revoke<const ON: u8, const WHO: u8, const INHERITED: bool>(
    State(state): State<AppState>,
    caller: Caller,
    Path((target_id, actor_id, role_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let g = Grant::load(
        &state,
        ON,
        WHO,
        target_id,
        actor_id,
        Some(role_id),
        INHERITED,
    )
    .await?;
    caller.enforce(&state, "identity:revoke_grant", &g.policy_target())?;
    g.require_found(true)?;
    let role = g.require_role()?;
    state
        .identity
        .revoke_grant(&g.assignment(&role.role.id))
        .await?;
    Ok(no_content())
}

async fn list<const ON: u8, const WHO: u8, const INHERITED: bool>(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    uri: Uri,
    Path((target_id, actor_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let g = Grant::load(&state, ON, WHO, target_id, actor_id, None, INHERITED).await?;
    caller.enforce(&state, "identity:list_grants", &g.policy_target())?;
    g.require_found(false)?;
    g.require_target()?;
    let kind = g.assignment("").kind;
    let role_ids: Vec<String> = state
        .store
        .list_assignments(&AssignmentFilter {
            actor_ids: Some(vec![g.actor_id.clone()]),
            target_ids: Some(vec![g.target_id.clone()]),
            kinds: Some(vec![kind]),
            inherited: Some(INHERITED),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|a| a.role_id)
        .collect();
    let roles = render_roles(&state, &role_ids).await?;
    Ok(role_collection(&list, &uri, roles))
}

// ----- system grants ----------------------------------------------------------------------------

/// What a system grant's policy sees: the path's role and actor ids, and the role and actor
/// when they exist.
struct SystemGrant {
    who: u8,
    actor_id: String,
    role_id: Option<String>,
    role: Option<RoleDetail>,
    actor_found: bool,
    target: Target,
}

impl SystemGrant {
    async fn load(
        state: &AppState,
        who: u8,
        actor_id: &str,
        role_id: Option<&str>,
    ) -> ApiResult<SystemGrant> {
        let mut t = Target::new();
        let actor_key = actor_kind(who);
        t.set(&format!("{actor_key}_id"), actor_id);
        let role = match role_id {
            Some(id) => {
                t.set("role_id", id);
                find_role(state, id).await?
            }
            None => None,
        };
        if let Some(r) = &role {
            add_role_target(&mut t, "target.role", &r.role);
        }
        let actor = find_actor(state, who, actor_id).await?;
        if let Some(a) = &actor {
            t.set(&format!("target.{actor_key}.id"), actor_id);
            t.set(&format!("target.{actor_key}.name"), a.name.clone());
            t.set(
                &format!("target.{actor_key}.domain_id"),
                a.domain_id.clone(),
            );
        }
        Ok(SystemGrant {
            who,
            actor_id: actor_id.to_string(),
            role_id: role_id.map(str::to_string),
            role,
            actor_found: actor.is_some(),
            target: t,
        })
    }

    /// Policy first, then Keystone's 404 for an unknown role, then for an unknown actor (unless
    /// `allow_missing_actor`).
    fn enforce(
        &self,
        state: &AppState,
        caller: &Caller,
        action: &str,
        allow_missing_actor: bool,
    ) -> ApiResult<()> {
        let action = format!("{action}_for_{}", actor_kind(self.who));
        caller.enforce(state, &action, &self.target)?;
        if let Some(id) = &self.role_id {
            if self.role.is_none() {
                return Err(roles::not_found(id));
            }
        }
        if !allow_missing_actor && !self.actor_found {
            return Err(not_found(actor_kind(self.who), &self.actor_id));
        }
        Ok(())
    }
}

fn system_assignment(who: u8, actor_id: &str, role_id: &str) -> SystemAssignment {
    SystemAssignment {
        is_group: who == GROUP,
        actor_id: actor_id.to_string(),
        role_id: role_id.to_string(),
        inherited: false,
    }
}

async fn check_system<const WHO: u8>(
    State(state): State<AppState>,
    caller: Caller,
    Path((actor_id, role_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    SystemGrant::load(&state, WHO, &actor_id, Some(&role_id))
        .await?
        .enforce(&state, &caller, "identity:check_system_grant", false)?;
    let a = system_assignment(WHO, &actor_id, &role_id);
    if !state.store.system_assignment_exists(&a).await? {
        return Err(no_assignment(&role_id, &actor_id, "system"));
    }
    Ok(no_content())
}

async fn grant_system<const WHO: u8>(
    State(state): State<AppState>,
    caller: Caller,
    Path((actor_id, role_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let g = SystemGrant::load(&state, WHO, &actor_id, Some(&role_id)).await?;
    g.enforce(&state, &caller, "identity:create_system_grant", false)?;
    state
        .identity
        .grant_system(
            &system_assignment(WHO, &actor_id, &role_id),
            g.role.as_ref().map(|r| &r.role),
        )
        .await?;
    Ok(no_content())
}

async fn revoke_system<const WHO: u8>(
    State(state): State<AppState>,
    caller: Caller,
    Path((actor_id, role_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    SystemGrant::load(&state, WHO, &actor_id, Some(&role_id))
        .await?
        .enforce(&state, &caller, "identity:revoke_system_grant", true)?;
    state
        .identity
        .revoke_system_grant(&system_assignment(WHO, &actor_id, &role_id))
        .await?;
    Ok(no_content())
}

async fn list_system<const WHO: u8>(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    uri: Uri,
    Path(actor_id): Path<String>,
) -> ApiResult<Response> {
    SystemGrant::load(&state, WHO, &actor_id, None)
        .await?
        .enforce(&state, &caller, "identity:list_system_grants", false)?;
    let role_ids: Vec<String> = state
        .store
        .list_system_assignments(Some(&actor_id), Some(WHO == GROUP))
        .await?
        .into_iter()
        .map(|a| a.role_id)
        .collect();
    let roles = render_roles(&state, &role_ids).await?;
    Ok(role_collection(&list, &uri, roles))
}
