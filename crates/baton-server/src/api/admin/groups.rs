//! `/v3/groups` and group membership. Removing a member revokes that user's tokens, and
//! deleting a group that held role assignments revokes its members' tokens, as Keystone does.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::Group;
use serde_json::{json, Map, Value};

use super::users::{find as find_user, user_not_found, user_target};
use super::{
    created, matches, matches_flag, member, no_content, path_id, Caller, Collection, JsonBody,
    ListRequest, Obj,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::users::{group_not_found, not_a_member};
use crate::identity::{GroupChanges, NewGroup};
use crate::policy::Target;
use crate::AppState;

/// Keystone's `group.name` column is 64 characters (its schema allows 255, which the database
/// then refuses).
pub const GROUP_NAME_MAX: usize = 64;

/// Group columns; any other body attribute is kept in `extra`.
const GROUP_ATTRIBUTES: &[&str] = &["id", "name", "domain_id", "description"];

/// The `/v3/groups` and membership routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/groups", get(list).post(create))
        .route(
            "/v3/groups/{group_id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v3/groups/{group_id}/users", get(list_members))
        .route(
            "/v3/groups/{group_id}/users/{user_id}",
            get(check_member).put(add_member).delete(remove_member),
        )
}

/// A group as Keystone returns it: `extra` attributes, then the columns.
pub fn render(g: &Group) -> Value {
    let mut obj: Map<String, Value> = g
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    obj.insert("id".into(), json!(g.id));
    obj.insert("name".into(), json!(g.name));
    obj.insert("domain_id".into(), json!(g.domain_id));
    obj.insert("description".into(), json!(g.description));
    Value::Object(obj)
}

fn group_target(target: Target, g: &Group) -> Target {
    target
        .with("target.group.id", g.id.clone())
        .with("target.group.name", g.name.clone())
        .with("target.group.domain_id", g.domain_id.clone())
}

async fn find(state: &AppState, id: &str) -> ApiResult<Option<Group>> {
    path_id("group", id)?;
    Ok(state.store.get_group(id).await?)
}

fn extra_fields(obj: &Obj) -> Map<String, Value> {
    let normalized = obj
        .fields
        .iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v.clone()))
        .collect();
    Obj {
        path: obj.path.clone(),
        fields: normalized,
    }
    .extra(GROUP_ATTRIBUTES)
}

// ----- collection --------------------------------------------------------------------------

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    let scoped_domain = caller.scoped_domain();
    let mut target = Target::new();
    if let Some(d) = &scoped_domain {
        target.set("target.group.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:list_groups", &target)?;
    let page = list.page(state.config().identity.list_limit)?;
    super::check_marker(&state, &page, super::MarkerOf::Group).await?;
    let groups = state
        .store
        .list_groups(list.query.get("domain_id"), list.query.get("name"))
        .await?
        .iter()
        .filter(|g| scoped_domain.as_deref().is_none_or(|d| g.domain_id == d))
        // The SQL read takes one value per filter; repeated and inexact ones apply here.
        .filter(|g| {
            matches(&list.query, "name", Some(&g.name))
                && matches(&list.query, "domain_id", Some(&g.domain_id))
        })
        .map(render)
        .collect();
    Ok(list.respond(&page, Collection::of("groups"), groups))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("group")?;
    let name = obj
        .name_within("name", GROUP_NAME_MAX)?
        .ok_or_else(|| super::invalid(&obj.path, "'name' is a required property"))?;
    let domain_id = obj.id("domain_id", false)?.flatten();
    let description = obj.nullable_string("description", usize::MAX)?;

    let mut target = Target::new().with("target.group.name", name.clone());
    if let Some(d) = &domain_id {
        target.set("target.group.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:create_group", &target)?;

    let new = NewGroup {
        name,
        domain_id,
        description: description.flatten(),
        extra: extra_fields(&obj),
    };
    let group = state
        .identity
        .create_group(new, caller.scoped_domain())
        .await?;
    Ok(created(&state, &headers, "groups", "group", render(&group)))
}

// ----- member ------------------------------------------------------------------------------

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let group = find(&state, &group_id).await?;
    let mut target = Target::new().with("group_id", group_id.clone());
    if let Some(g) = &group {
        target = group_target(target, g);
    }
    caller.enforce(&state, "identity:get_group", &target)?;
    let group = group.ok_or_else(|| group_not_found(&group_id))?;
    Ok(member(&state, &headers, "groups", "group", render(&group)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(group_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let obj = body.member("group")?;
    obj.not_empty()?;
    let name = obj.name_within("name", GROUP_NAME_MAX)?;
    let description = obj.nullable_string("description", usize::MAX)?;
    let domain_id = obj.id("domain_id", false)?.flatten();
    if let Some(id) = obj.fields.get("id").filter(|v| !v.is_null()) {
        if id.as_str() != Some(group_id.as_str()) {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }

    let group = find(&state, &group_id).await?;
    let mut target = Target::new().with("group_id", group_id.clone());
    if let Some(g) = &group {
        target = group_target(target, g);
    }
    caller.enforce(&state, "identity:update_group", &target)?;
    let group = group.ok_or_else(|| group_not_found(&group_id))?;
    let changes = GroupChanges {
        name,
        description,
        domain_id,
        extra: extra_fields(&obj),
    };
    let group = state.identity.update_group(group, changes).await?;
    Ok(member(&state, &headers, "groups", "group", render(&group)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(group_id): Path<String>,
) -> ApiResult<Response> {
    // Keystone loads the group as the policy target and lets its 404 out before the policy
    // check, telling anyone which group ids exist; here, as for the other group routes, a
    // caller the policy refuses gets 403 either way.
    let group = find(&state, &group_id).await?;
    let mut target = Target::new().with("group_id", group_id.clone());
    if let Some(g) = &group {
        target = group_target(target, g);
    }
    caller.enforce(&state, "identity:delete_group", &target)?;
    if group.is_none() {
        return Err(group_not_found(&group_id));
    }
    state.identity.delete_group(&group_id).await?;
    Ok(no_content())
}

// ----- membership --------------------------------------------------------------------------

async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(group_id): Path<String>,
    list: ListRequest,
) -> ApiResult<Response> {
    let group = find(&state, &group_id).await?;
    let mut target = Target::new().with("group_id", group_id.clone());
    if let Some(g) = &group {
        target = group_target(target, g);
    }
    caller.enforce(&state, "identity:list_users_in_group", &target)?;
    let group = group.ok_or_else(|| group_not_found(&group_id))?;
    let page = list.page(state.config().identity.list_limit)?;
    let scoped_domain = caller.scoped_domain();
    let users: Vec<baton_store::User> = state
        .store
        .list_users_in_group(&group.id)
        .await?
        .into_iter()
        .filter(|u| scoped_domain.as_deref().is_none_or(|d| u.domain_id == d))
        .filter(|u| {
            matches(&list.query, "name", Some(&u.name))
                && matches(&list.query, "domain_id", Some(&u.domain_id))
                && matches_flag(&list.query, "enabled", u.enabled)
        })
        .collect();
    let users = super::users::render_all(&state, &users).await?;
    Ok(list.respond(
        &page,
        Collection::of("users").at(format!("groups/{group_id}/users")),
        users,
    ))
}

/// The group and user of a membership path, checked against `action` with both in the target
/// (each only when it exists, as Keystone does), then 404 for whichever is missing.
async fn membership(
    state: &AppState,
    caller: &Caller,
    action: &str,
    group_id: &str,
    user_id: &str,
) -> ApiResult<(Group, baton_store::User)> {
    let group = find(state, group_id).await?;
    let user = find_user(state, user_id).await?;
    let mut target = Target::new()
        .with("group_id", group_id)
        .with("user_id", user_id);
    if let Some(g) = &group {
        target = group_target(target, g);
    }
    if let Some(u) = &user {
        target = user_target(target, u);
    }
    caller.enforce(state, action, &target)?;
    let group = group.ok_or_else(|| group_not_found(group_id))?;
    let user = user.ok_or_else(|| user_not_found(user_id))?;
    Ok((group, user))
}

async fn check_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (group, user) = membership(
        &state,
        &caller,
        "identity:check_user_in_group",
        &group_id,
        &user_id,
    )
    .await?;
    if !state.store.is_user_in_group(&user.id, &group.id).await? {
        return Err(not_a_member(&user_id, &group_id));
    }
    Ok(no_content())
}

async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (group, user) = membership(
        &state,
        &caller,
        "identity:add_user_to_group",
        &group_id,
        &user_id,
    )
    .await?;
    state.identity.add_user_to_group(&user, &group).await?;
    Ok(no_content())
}

async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (group, user) = membership(
        &state,
        &caller,
        "identity:remove_user_from_group",
        &group_id,
        &user_id,
    )
    .await?;
    state.identity.remove_user_from_group(&user, &group).await?;
    Ok(no_content())
}
