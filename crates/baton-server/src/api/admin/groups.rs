//! `/v3/groups` and group membership. Removing a member revokes that user's tokens, and
//! deleting a group that held role assignments revokes its members' tokens, as Keystone does.

#![allow(missing_docs)] // removed when the handlers are thinned (issue 11)

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::Group;
use serde_json::{json, Map, Value};

use super::users::{find as find_user, revoke_user_tokens, user_not_found, user_target};
use super::{
    after_write, collection, created, matches, matches_flag, member, no_content, path_id, Caller,
    JsonBody, ListQuery, Obj, Page,
};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// Keystone's `group.name` column is 64 characters (its schema allows 255, which the database
/// then refuses).
pub const GROUP_NAME_MAX: usize = 64;

/// Group columns; any other body attribute is kept in `extra`.
const GROUP_ATTRIBUTES: &[&str] = &["id", "name", "domain_id", "description"];

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

fn group_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Could not find group: {id}."))
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
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = ListQuery::parse(raw.as_deref());
    let scoped_domain = caller.scoped_domain();
    let mut target = Target::new();
    if let Some(d) = &scoped_domain {
        target.set("target.group.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:list_groups", &target)?;
    let page = Page::from_query(&state, &query, state.config().identity.list_limit)?;
    let groups = state
        .tokens
        .store
        .list_groups(query.get("domain_id"), query.get("name"))
        .await?
        .iter()
        .filter(|g| scoped_domain.as_deref().is_none_or(|d| g.domain_id == d))
        .map(render)
        .collect();
    Ok(collection(
        &state, &headers, &query, &page, "groups", "groups", "groups", groups,
    ))
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

    let domain_id = domain_id
        .or_else(|| caller.scoped_domain())
        .unwrap_or_else(|| state.config().identity.default_domain_id.clone());
    let store = &state.store;
    if store.get_domain(&domain_id).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "Could not find domain: {domain_id}."
        )));
    }
    let group = Group {
        id: baton_store::new_id(),
        name: name.trim().to_string(),
        domain_id,
        // Keystone stores an empty description when none is given.
        description: Some(description.flatten().unwrap_or_default()),
        extra: Some(Value::Object(extra_fields(&obj)).to_string()),
    };
    // A new group is in nobody's token yet: cached validations stay good.
    store.create_group(&group).await?;
    tracing::info!(group_id = %group.id, domain_id = %group.domain_id, "group created");
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
    let mut group = group.ok_or_else(|| group_not_found(&group_id))?;
    if domain_id.as_deref().is_some_and(|d| d != group.domain_id) {
        return Err(ApiError::BadRequest("Cannot change Domain ID".into()));
    }
    if let Some(name) = name {
        group.name = name.trim().to_string();
    }
    if let Some(description) = description {
        group.description = description;
    }
    let new_extra = extra_fields(&obj);
    if !new_extra.is_empty() {
        let mut merged: Map<String, Value> = group
            .extra
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or_default();
        merged.extend(new_extra);
        group.extra = Some(Value::Object(merged).to_string());
    }
    // Group names and descriptions appear in no token.
    state.store.update_group(&group).await?;
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
    let deleted = state
        .tokens
        .store
        .delete_group(&group_id)
        .await?
        .ok_or_else(|| group_not_found(&group_id))?;
    // Members lose whatever the group granted; without grants there is nothing to revoke.
    if deleted.had_assignments {
        for user_id in &deleted.member_ids {
            revoke_user_tokens(&state, user_id).await?;
        }
    }
    after_write(&state);
    tracing::info!(group_id = %group_id, members = deleted.member_ids.len(), "group deleted");
    Ok(no_content())
}

// ----- membership --------------------------------------------------------------------------

async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(group_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = ListQuery::parse(raw.as_deref());
    let group = find(&state, &group_id).await?;
    let mut target = Target::new().with("group_id", group_id.clone());
    if let Some(g) = &group {
        target = group_target(target, g);
    }
    caller.enforce(&state, "identity:list_users_in_group", &target)?;
    let group = group.ok_or_else(|| group_not_found(&group_id))?;
    let page = Page::from_query(&state, &query, state.config().identity.list_limit)?;
    let scoped_domain = caller.scoped_domain();
    let users: Vec<baton_store::User> = state
        .tokens
        .store
        .list_users_in_group(&group.id)
        .await?
        .into_iter()
        .filter(|u| scoped_domain.as_deref().is_none_or(|d| u.domain_id == d))
        .filter(|u| {
            matches(&query, "name", Some(&u.name))
                && matches(&query, "domain_id", Some(&u.domain_id))
                && matches_flag(&query, "enabled", u.enabled)
        })
        .collect();
    let users = super::users::render_all(&state, &users).await?;
    Ok(collection(
        &state,
        &headers,
        &query,
        &page,
        &format!("groups/{group_id}/users"),
        "users",
        "users",
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

fn not_a_member(user_id: &str, group_id: &str) -> ApiError {
    ApiError::NotFound(format!("User '{user_id}' not found in group '{group_id}'"))
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
    if !state
        .tokens
        .store
        .is_user_in_group(&user.id, &group.id)
        .await?
    {
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
    state
        .tokens
        .store
        .add_user_to_group(&user.id, &group.id)
        .await?;
    after_write(&state);
    tracing::info!(group_id = %group.id, user_id = %user.id, "user added to group");
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
    if !state
        .tokens
        .store
        .remove_user_from_group(&user.id, &group.id)
        .await?
    {
        return Err(not_a_member(&user_id, &group_id));
    }
    // Keystone revokes the user's tokens on leaving a group, whatever the group granted.
    revoke_user_tokens(&state, &user.id).await?;
    tracing::info!(group_id = %group.id, user_id = %user.id, "user removed from group");
    Ok(no_content())
}
