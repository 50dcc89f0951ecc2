//! `/v3/users`: local users with their passwords, resource options and the attributes Keystone
//! keeps in `extra` (`email`, `description`, ...), the self-service password change, and the
//! user's groups and projects. Writes that take access away (delete, disable, a new password,
//! `DELETE /v3/users/{id}/tokens`) record a revocation event for the user, as Keystone does, so
//! their tokens stop validating on every node.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use baton_store::{User, UserFilter};
use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};

use super::{
    created, invalid, matches, matches_flag, member, no_content, path_id, Caller, Collection,
    JsonBody, ListRequest, Obj,
};
use crate::error::{ApiError, ApiResult};
pub(crate) use crate::identity::users::user_not_found;
use crate::identity::{NewUser, UserChanges};
use crate::policy::Target;
use crate::AppState;

/// The `/v3/users` routes, with the user's password, groups, projects and tokens.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/users", get(list).post(create))
        .route(
            "/v3/users/{user_id}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/v3/users/{user_id}/password",
            post(change_password).get(password_get),
        )
        .route("/v3/users/{user_id}/groups", get(list_groups))
        .route("/v3/users/{user_id}/projects", get(list_projects))
        .route("/v3/users/{user_id}/tokens", delete(revoke_tokens))
}

// ----- shapes ------------------------------------------------------------------------------

/// The columns of a user; every other body attribute is kept in `extra`, as Keystone's model
/// does (`options` and `federated` are handled apart; `id` and `password_expires_at` are
/// read-only and dropped).
const USER_ATTRIBUTES: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "password",
    "enabled",
    "default_project_id",
    "password_expires_at",
    "options",
    "federated",
];

/// Keys Keystone never returns from `extra` (its `filter_user`).
const HIDDEN_EXTRA: &[&str] = &["password", "tenants", "groups", "domains"];

#[derive(Clone, Copy)]
enum OptionKind {
    Boolean,
    /// `multi_factor_auth_rules`: a list of unique, non-empty lists of unique strings.
    Rules,
}

/// Keystone's registered user options: `(option_id, option_name, kind)`. The id is what the
/// `user_option` table stores.
const USER_OPTIONS: &[(&str, &str, OptionKind)] = &[
    (
        "1000",
        "ignore_change_password_upon_first_use",
        OptionKind::Boolean,
    ),
    ("1001", "ignore_password_expiry", OptionKind::Boolean),
    (
        "1002",
        "ignore_lockout_failure_attempts",
        OptionKind::Boolean,
    ),
    ("1003", "lock_password", OptionKind::Boolean),
    ("1004", "ignore_user_inactivity", OptionKind::Boolean),
    ("MFAR", "multi_factor_auth_rules", OptionKind::Rules),
    ("MFAE", "multi_factor_auth_enabled", OptionKind::Boolean),
];

const MFA_ENABLED: &str = "MFAE";

/// A user as Keystone returns it: `extra` attributes, then the columns, `options` by name and
/// `password_expires_at`; `default_project_id` only when set.
pub fn render(
    u: &User,
    options: &[(String, Option<String>)],
    password_expires_at: Option<NaiveDateTime>,
) -> Value {
    let mut obj = extra_of(u.extra.as_deref());
    for k in HIDDEN_EXTRA {
        obj.remove(*k);
    }
    obj.insert("id".into(), json!(u.id));
    obj.insert("name".into(), json!(u.name));
    obj.insert("domain_id".into(), json!(u.domain_id));
    obj.insert("enabled".into(), json!(u.enabled));
    match &u.default_project_id {
        Some(p) => obj.insert("default_project_id".into(), json!(p)),
        None => obj.remove("default_project_id"),
    };
    let mut opts = Map::new();
    for (id, value) in options {
        if let Some((_, name, _)) = USER_OPTIONS.iter().find(|(i, _, _)| i == id) {
            let value = value
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or(Value::Null);
            opts.insert((*name).into(), value);
        }
    }
    obj.insert("options".into(), Value::Object(opts));
    obj.insert(
        "password_expires_at".into(),
        match password_expires_at {
            Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
            None => Value::Null,
        },
    );
    Value::Object(obj)
}

fn extra_of(extra: Option<&str>) -> Map<String, Value> {
    extra
        .and_then(|e| serde_json::from_str::<Map<String, Value>>(e).ok())
        .unwrap_or_default()
}

/// Renders users with their options and password expiry, fetched for all of them at once.
pub(crate) async fn render_all(state: &AppState, users: &[User]) -> ApiResult<Vec<Value>> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let store = &state.store;
    let options = store.user_options(&ids).await?;
    let expiries = store.password_expiries(&ids).await?;
    let none = Vec::new();
    Ok(users
        .iter()
        .map(|u| {
            render(
                u,
                options.get(&u.id).unwrap_or(&none),
                expiries.get(&u.id).copied(),
            )
        })
        .collect())
}

async fn render_one(state: &AppState, user: &User) -> ApiResult<Value> {
    Ok(render_all(state, std::slice::from_ref(user))
        .await?
        .pop()
        .unwrap_or(Value::Null))
}

/// What Keystone's enforcer sees of a stored user.
pub(crate) fn user_target(target: Target, u: &User) -> Target {
    target
        .with("target.user.id", u.id.clone())
        .with("target.user.name", u.name.clone())
        .with("target.user.domain_id", u.domain_id.clone())
}

/// The user of a path, or `None` (Keystone builds the policy target without it and answers
/// 404 only after the policy check).
pub(crate) async fn find(state: &AppState, id: &str) -> ApiResult<Option<User>> {
    path_id("user", id)?;
    Ok(state.store.get_user(id).await?)
}

/// A password field (`string`, or `null` where `nullable`): never echoed in messages, unlike
/// the generic readers, and at most `[identity] max_password_length` bytes.
fn secret(
    state: &AppState,
    obj: &Obj,
    key: &str,
    nullable: bool,
) -> ApiResult<Option<Option<String>>> {
    // Under strict_password_check the limit is Keystone's 403 when hashing (see
    // `password::refuse_truncation`).
    let config = state.config();
    let max = (!config.default.strict_password_check)
        .then_some(config.identity.max_password_length as usize);
    read_secret(obj, key, nullable, max)
}

/// [`secret`] with the length limit given (`None`: no limit here).
pub(crate) fn read_secret(
    obj: &Obj,
    key: &str,
    nullable: bool,
    max: Option<usize>,
) -> ApiResult<Option<Option<String>>> {
    let path = format!("{}/{key}", obj.path);
    match obj.fields.get(key) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(Some(None)),
        Some(Value::String(s)) => {
            if let Some(max) = max.filter(|max| s.len() > *max) {
                return Err(invalid(
                    &path,
                    format!(
                        "The password length must be less than or equal to {max}. The server could not comply with the request because the password is invalid."
                    ),
                ));
            }
            Ok(Some(Some(s.clone())))
        }
        Some(_) => Err(invalid(
            &path,
            if nullable {
                "the value is not of type ['string', 'null']"
            } else {
                "the value is not of type 'string'"
            },
        )),
    }
}

/// `options`: Keystone's registered user options only; `null` removes one. Values are stored
/// as JSON, as Keystone's `user_option.option_value` is.
pub(crate) fn read_options(obj: &Obj) -> ApiResult<Vec<(String, Option<String>)>> {
    let Some(opts) = obj.object("options")? else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = USER_OPTIONS.iter().map(|(_, n, _)| *n).collect();
    opts.only(&names)?;
    let mut out = Vec::new();
    for (key, value) in &opts.fields {
        let (id, name, kind) = USER_OPTIONS
            .iter()
            .find(|(_, n, _)| n == key)
            .copied()
            .expect("checked by only()");
        let path = format!("{}/{name}", opts.path);
        if value.is_null() {
            out.push((id.to_string(), None));
            continue;
        }
        match kind {
            OptionKind::Boolean if !value.is_boolean() => {
                return Err(invalid(&path, format!("{value} is not of type 'boolean'")))
            }
            OptionKind::Rules => check_mfa_rules(&path, value)?,
            OptionKind::Boolean => {}
        }
        // Baton authenticates by password and token only: turning on multi-factor rules it
        // would not enforce must not look like it succeeded.
        if id == MFA_ENABLED && value == &Value::Bool(true) {
            return Err(invalid(
                &path,
                "multi-factor authentication rules are not enforced by this server",
            ));
        }
        out.push((id.to_string(), Some(value.to_string())));
    }
    Ok(out)
}

fn check_mfa_rules(path: &str, value: &Value) -> ApiResult<()> {
    let bad = || {
        invalid(
            path,
            "Invalid data type, must be a list of lists comprised of strings. Sub-lists may not be duplicated. Strings in sub-lists may not be duplicated.",
        )
    };
    let Value::Array(rules) = value else {
        return Err(bad());
    };
    let mut seen: Vec<&Vec<Value>> = Vec::new();
    for rule in rules {
        let Value::Array(methods) = rule else {
            return Err(bad());
        };
        if methods.is_empty() || seen.contains(&methods) {
            return Err(bad());
        }
        let mut names = HashSet::new();
        for m in methods {
            match m {
                Value::String(s) if names.insert(s.as_str()) => {}
                _ => return Err(bad()),
            }
        }
        seen.push(methods);
    }
    Ok(())
}

/// Keystone's `_normalize_dict`: `:` and `-` in attribute names become `_`.
fn normalized(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v.clone()))
        .collect()
}

pub(crate) fn refuse_federated(obj: &Obj) -> ApiResult<()> {
    match obj.fields.get("federated") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(invalid(
            &format!("{}/federated", obj.path),
            "federated users are not supported by this server",
        )),
    }
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
        target.set("target.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:list_users", &target)?;
    let page = list.page(state.config().identity.list_limit)?;
    super::check_marker(&state, &page, super::MarkerOf::User).await?;
    // A domain-scoped caller sees its own domain only, whatever it filters on.
    let filter = UserFilter {
        domain_id: list
            .query
            .get("domain_id")
            .map(str::to_string)
            .or_else(|| scoped_domain.clone()),
        name: list.query.get("name").map(str::to_string),
        enabled: list.query.flag("enabled"),
    };
    let users: Vec<User> = state
        .store
        .list_users(&filter)
        .await?
        .into_iter()
        .filter(|u| scoped_domain.as_deref().is_none_or(|d| u.domain_id == d))
        // The SQL read takes one value per filter; repeated and inexact ones apply here
        // (`enabled` stays the column's, as in Keystone).
        .filter(|u| {
            matches(&list.query, "name", Some(&u.name))
                && matches(&list.query, "domain_id", Some(&u.domain_id))
        })
        .collect();
    let users = render_all(&state, &users).await?;
    Ok(list.respond(&page, Collection::of("users"), users))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("user")?;
    let name = obj.required_name("name")?;
    let domain_id = obj.id("domain_id", false)?.flatten();
    let enabled = obj.boolean("enabled")?.unwrap_or(true);
    let default_project_id = obj.id("default_project_id", true)?.flatten();
    obj.nullable_string("description", usize::MAX)?;
    let password = secret(&state, &obj, "password", true)?;
    let options = read_options(&obj)?;
    refuse_federated(&obj)?;

    // Keystone checks the body as sent: without a `domain_id` a domain manager's rule cannot
    // match.
    let mut target = Target::new().with("target.user.name", name.clone());
    if let Some(d) = &domain_id {
        target.set("target.user.domain_id", d.clone());
    }
    caller.enforce(&state, "identity:create_user", &target)?;

    let new = NewUser {
        name,
        domain_id,
        enabled,
        default_project_id,
        extra: Obj {
            path: obj.path.clone(),
            fields: normalized(&obj.fields),
        }
        .extra(USER_ATTRIBUTES),
        password,
        options: options
            .into_iter()
            .filter_map(|(id, v)| v.map(|v| (id, v)))
            .collect(),
    };
    let created_user = state
        .identity
        .create_user(new, caller.scoped_domain())
        .await?;
    let body = render_one(&state, &created_user).await?;
    Ok(created(&state, &headers, "users", "user", body))
}

// ----- member ------------------------------------------------------------------------------

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = find(&state, &user_id).await?;
    let mut target = Target::new().with("user_id", user_id.clone());
    if let Some(u) = &user {
        target = user_target(target, u);
    }
    caller.enforce(&state, "identity:get_user", &target)?;
    let user = user.ok_or_else(|| user_not_found(&user_id))?;
    let body = render_one(&state, &user).await?;
    Ok(member(&state, &headers, "users", "user", body))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let obj = body.member("user")?;
    obj.not_empty()?;
    let name = obj.name("name")?;
    let domain_id = obj.id("domain_id", false)?.flatten();
    let enabled = obj.boolean("enabled")?;
    let default_project_id = obj.id("default_project_id", true)?;
    obj.nullable_string("description", usize::MAX)?;
    let password = secret(&state, &obj, "password", true)?;
    let options = read_options(&obj)?;
    refuse_federated(&obj)?;
    if let Some(id) = obj.fields.get("id").filter(|v| !v.is_null()) {
        if id.as_str() != Some(user_id.as_str()) {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }

    let old = find(&state, &user_id).await?;
    let mut target = Target::new().with("user_id", user_id.clone());
    if let Some(u) = &old {
        target = user_target(target, u);
    }
    caller.enforce(&state, "identity:update_user", &target)?;
    let old = old.ok_or_else(|| user_not_found(&user_id))?;
    let changes = UserChanges {
        name,
        domain_id,
        enabled,
        default_project_id,
        extra: Obj {
            path: obj.path.clone(),
            fields: normalized(&obj.fields),
        }
        .extra(USER_ATTRIBUTES),
        options,
        password,
    };
    let user = state.identity.update_user(&old, changes).await?;
    let body = render_one(&state, &user).await?;
    Ok(member(&state, &headers, "users", "user", body))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = find(&state, &user_id).await?;
    let mut target = Target::new().with("user_id", user_id.clone());
    if let Some(u) = &user {
        target = user_target(target, u);
    }
    caller.enforce(&state, "identity:delete_user", &target)?;
    if user.is_none() {
        return Err(user_not_found(&user_id));
    }
    state.identity.delete_user(&user_id).await?;
    Ok(no_content())
}

/// `DELETE /v3/users/{user_id}/tokens`: every token of the user stops validating.
async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = find(&state, &user_id).await?;
    let mut target = Target::new().with("user_id", user_id.clone());
    if let Some(u) = &user {
        target = user_target(target, u);
    }
    caller.enforce(&state, "identity:revoke_tokens_for_user", &target)?;
    if user.is_none() {
        return Err(user_not_found(&user_id));
    }
    state.identity.revoke_user_tokens(&user_id).await?;
    tracing::info!(user_id = %user_id, "all tokens of the user revoked");
    Ok(no_content())
}

// ----- password ----------------------------------------------------------------------------

async fn password_get() -> ApiError {
    ApiError::MethodNotAllowed("The method is not allowed for the requested URL.".into())
}

/// `POST /v3/users/{user_id}/password`: no token and no policy (Keystone leaves this route
/// unenforced so that a user whose password expired can still change it); the original
/// password is the check. Wrong or unknown user: 401.
async fn change_password(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("user")?;
    obj.only(&["original_password", "password"])?;
    let original = secret(&state, &obj, "original_password", false)?
        .flatten()
        .ok_or_else(|| invalid(&obj.path, "'original_password' is a required property"))?;
    let new = secret(&state, &obj, "password", false)?
        .flatten()
        .ok_or_else(|| invalid(&obj.path, "'password' is a required property"))?;
    state
        .identity
        .change_own_password(&user_id, &original, new)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- the user's groups and projects ------------------------------------------------------

async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    list: ListRequest,
) -> ApiResult<Response> {
    let user = find(&state, &user_id).await?;
    let mut target = Target::new().with("user_id", user_id.clone());
    if let Some(u) = &user {
        target = user_target(target, u);
    }
    caller.enforce(&state, "identity:list_groups_for_user", &target)?;
    let user = user.ok_or_else(|| user_not_found(&user_id))?;
    let page = list.page(state.config().identity.list_limit)?;
    let scoped_domain = caller.scoped_domain();
    let groups = state
        .store
        .list_groups_for_user(&user.id)
        .await?
        .into_iter()
        .filter(|g| scoped_domain.as_deref().is_none_or(|d| g.domain_id == d))
        .filter(|g| matches(&list.query, "name", Some(&g.name)))
        .map(|g| {
            let mut v = super::groups::render(&g);
            v["membership_expires_at"] = Value::Null;
            v
        })
        .collect();
    Ok(list.respond(
        &page,
        Collection::of("groups").at(format!("users/{user_id}/groups")),
        groups,
    ))
}

async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    list: ListRequest,
) -> ApiResult<Response> {
    let user = find(&state, &user_id).await?;
    let mut target = Target::new().with("user_id", user_id.clone());
    if let Some(u) = &user {
        target = user_target(target, u);
    }
    caller.enforce(&state, "identity:list_user_projects", &target)?;
    let user = user.ok_or_else(|| user_not_found(&user_id))?;
    let (found, _) = state.tokens.scopes_for_user(&user.id).await?;
    let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
    let tags = state.store.project_tags_of(&ids).await?;
    let options = state.store.project_options_of(&ids).await?;
    let none = Vec::new();
    let projects = found
        .iter()
        .filter(|p| {
            matches(&list.query, "name", Some(&p.name))
                && matches(&list.query, "domain_id", Some(&p.domain_id))
                && matches_flag(&list.query, "enabled", p.enabled)
        })
        .map(|p| {
            super::projects::render(
                p,
                tags.get(&p.id).unwrap_or(&none),
                options.get(&p.id).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect();
    // Keystone applies no list_limit here: only an explicit `limit` cuts the page.
    let page = list.explicit_page()?;
    Ok(list.respond(
        &page,
        Collection::of("projects").at(format!("users/{user_id}/projects")),
        projects,
    ))
}
