//! `/v3/roles` (global and domain-specific roles, with the `immutable` option), implied roles
//! (`/v3/roles/{prior}/implies/{implied}`) and `/v3/role_inferences`, as Keystone 30 serves them.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{new_id, Role, RoleDetail};
use serde_json::{json, Map, Value};

use super::{
    created, invalid, member, no_content, path_id, url, Caller, Collection, JsonBody, ListRequest,
    Obj, ID_MAX,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::grants::{RoleChanges, IMMUTABLE, IMMUTABLE_ID};
use crate::policy::Target;
use crate::AppState;

/// Keystone's `role.description` column width.
pub(crate) const DESCRIPTION_MAX: usize = 255;

/// The `/v3/roles`, implied role and `/v3/role_inferences` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/roles", get(list).post(create))
        .route(
            "/v3/roles/{role_id}",
            get(show).head(show).patch(update).delete(remove),
        )
        .route("/v3/roles/{prior_role_id}/implies", get(list_implied))
        .route(
            "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
            get(show_implied)
                .head(check_implied)
                .put(create_implied)
                .delete(remove_implied),
        )
        .route("/v3/role_inferences", get(list_inferences))
}

// ----- shared with grants and role assignments -------------------------------------------------

/// A role as Keystone renders it: the attributes kept in `extra`, then `id`, `name`,
/// `domain_id`, `description` and `options`.
pub fn render(d: &RoleDetail) -> Value {
    let mut obj: Map<String, Value> = d
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str::<Map<String, Value>>(e).ok())
        .unwrap_or_default();
    obj.insert("id".into(), json!(d.role.id));
    obj.insert("name".into(), json!(d.role.name));
    obj.insert("domain_id".into(), json!(d.role.domain_id));
    obj.insert("description".into(), json!(d.role.description));
    obj.insert("options".into(), Value::Object(options_json(d)));
    Value::Object(obj)
}

/// `role_option` rows as the API names them; options Keystone does not register are not shown.
fn options_json(d: &RoleDetail) -> Map<String, Value> {
    d.options
        .iter()
        .filter(|(id, _)| id == IMMUTABLE_ID)
        .map(|(_, v)| {
            (
                IMMUTABLE.to_string(),
                serde_json::from_str(v).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The role of a path, or `None` (without a query for an id no role can have): the handlers
/// build the policy target with whatever exists and answer 404 only after the policy check.
async fn find(state: &AppState, id: &str) -> ApiResult<Option<RoleDetail>> {
    if path_id("role", id).is_err() {
        return Ok(None);
    }
    Ok(state.store.get_role_detail(id).await?)
}

/// Keystone's 404 for a role.
pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("role", id)
}

/// `target.<prefix>.*` for a role, `domain_id` as Python's `None` for a global role (the grant
/// rules test `None:%(target.role.domain_id)s`).
pub fn add_role_target(target: &mut Target, prefix: &str, r: &Role) {
    target.set(&format!("{prefix}.id"), r.id.clone());
    target.set(&format!("{prefix}.name"), r.name.clone());
    target.set_opt(&format!("{prefix}.domain_id"), r.domain_id.clone());
}

fn role_target(r: &Role) -> Target {
    let mut t = Target::new();
    add_role_target(&mut t, "target.role", r);
    t
}

/// A domain id in a body: Keystone's `domain_id` parameter type (1 to 64 of `[a-zA-Z0-9-]`).
pub(crate) fn domain_id_field(obj: &Obj) -> ApiResult<Option<Option<String>>> {
    let v = obj.nullable_string("domain_id", ID_MAX)?;
    if let Some(Some(id)) = &v {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                &format!("{}/domain_id", obj.path),
                format!("'{id}' does not match '^[a-zA-Z0-9-]+$'"),
            ));
        }
    }
    Ok(v)
}

/// `options`: only `immutable`, a boolean or `null` (which removes the option).
pub(crate) fn options_field(obj: &Obj) -> ApiResult<Option<Option<bool>>> {
    let Some(opts) = obj.object("options")? else {
        return Ok(None);
    };
    opts.only(&[IMMUTABLE])?;
    match opts.fields.get(IMMUTABLE) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Bool(b)) => Ok(Some(Some(*b))),
        Some(other) => Err(invalid(
            &format!("{}/{IMMUTABLE}", opts.path),
            format!(
                "{} is not of type 'boolean', 'null'",
                super::schema::py_repr(other)
            ),
        )),
    }
}

/// Attributes outside the schema, kept in `extra` under Keystone's normalized names
/// (`:` and `-` become `_`).
fn extra_fields(obj: &Obj) -> Map<String, Value> {
    obj.extra(&["id", "name", "domain_id", "description", "options", "extra"])
        .into_iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v))
        .collect()
}

// ----- /v3/roles -------------------------------------------------------------------------------

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    if let Some(name) = list.query.get("name") {
        if name.is_empty() {
            return Err(invalid("name", "'' should be non-empty"));
        }
    }
    let domain_filter = list.query.get("domain_id");
    if let Some(d) = domain_filter {
        if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                "domain_id",
                format!("'{d}' does not match '^[a-zA-Z0-9-]+$'"),
            ));
        }
    }
    let action = if domain_filter.is_some() {
        "identity:list_domain_roles"
    } else {
        "identity:list_roles"
    };
    caller.enforce(&state, action, &Target::new())?;
    let page = list.page(state.config().role.list_limit)?;
    // Without a domain filter Keystone lists the global roles only.
    let roles = state
        .store
        .list_role_details()
        .await?
        .into_iter()
        .filter(|d| d.role.domain_id.as_deref() == domain_filter)
        .filter(|d| super::matches(&list.query, "name", Some(&d.role.name)))
        .map(|d| render(&d))
        .collect();
    Ok(list.respond(&page, Collection::of("roles"), roles))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("role")?;
    let name = obj.required_name("name")?;
    let description = obj
        .nullable_string("description", DESCRIPTION_MAX)?
        .flatten();
    let domain_id = domain_id_field(&obj)?.flatten();
    let immutable = options_field(&obj)?.flatten();
    let role = Role {
        id: new_id(),
        name,
        domain_id,
        description,
    };
    if role.domain_id.is_some() {
        caller.enforce(&state, "identity:create_domain_role", &role_target(&role))?;
    } else {
        caller.enforce(&state, "identity:create_role", &Target::new())?;
    }
    let extra = extra_fields(&obj);
    let detail = RoleDetail {
        role,
        extra: Some(Value::Object(extra).to_string()),
        options: immutable
            .map(|b| vec![(IMMUTABLE_ID.to_string(), b.to_string())])
            .unwrap_or_default(),
    };
    state.identity.create_role(&detail).await?;
    Ok(created(&state, &headers, "roles", "role", render(&detail)))
}

/// The role of `/v3/roles/{role_id}`, once the caller may `verb` it: domain-specific roles have
/// their own rules (`identity:<verb>_domain_role`), and a missing role is checked against
/// `identity:<verb>_role` with no role in the target, so that only a caller the policy allows
/// learns it does not exist. (Keystone enforces the same rule but loads the role as its target
/// first, letting the 404 out to anyone.)
async fn load_enforced(
    state: &AppState,
    caller: &Caller,
    verb: &str,
    id: &str,
) -> ApiResult<RoleDetail> {
    let Some(d) = find(state, id).await? else {
        caller.enforce(state, &format!("identity:{verb}_role"), &Target::new())?;
        return Err(not_found(id));
    };
    let target = role_target(&d.role);
    if d.role.domain_id.is_some() {
        caller.enforce(state, &format!("identity:{verb}_domain_role"), &target)?;
    } else {
        caller.enforce(state, &format!("identity:{verb}_role"), &target)?;
    }
    Ok(d)
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(role_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = load_enforced(&state, &caller, "get", &role_id).await?;
    Ok(member(&state, &headers, "roles", "role", render(&d)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(role_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let obj = body.member("role")?;
    obj.not_empty()?;
    let name = obj.name("name")?;
    let description = obj.nullable_string("description", DESCRIPTION_MAX)?;
    let domain_id = domain_id_field(&obj)?;
    let immutable = options_field(&obj)?;
    let d = load_enforced(&state, &caller, "update", &role_id).await?;
    match obj.fields.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) if *id == role_id => {}
        Some(_) => return Err(ApiError::BadRequest("Cannot change ID".into())),
    }
    let changes = RoleChanges {
        name,
        description,
        domain_id,
        immutable,
        extra: obj.extra(&["id", "name", "domain_id", "description", "options", "extra"]),
        attributes: obj.fields.len(),
    };
    let d = state.identity.update_role(d, changes).await?;
    Ok(member(&state, &headers, "roles", "role", render(&d)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(role_id): Path<String>,
) -> ApiResult<Response> {
    let d = load_enforced(&state, &caller, "delete", &role_id).await?;
    state.identity.delete_role(&d).await?;
    Ok(no_content())
}

// ----- implied roles ---------------------------------------------------------------------------

fn ref_json(state: &AppState, headers: &HeaderMap, r: &Role) -> Value {
    json!({
        "id": r.id,
        "links": { "self": url(state, headers, &format!("roles/{}", r.id)) },
        "name": r.name,
    })
}

/// Both roles of an implication path, once the caller passes every one of `actions` with the
/// target Keystone builds (`target.prior_role.*`, `target.implied_role.*`, each when the role
/// exists); then 404 for either missing. Keystone's target builder lets the 404 out before the
/// policy check; here a caller the policy refuses gets 403 either way.
async fn load_pair(
    state: &AppState,
    caller: &Caller,
    actions: &[&str],
    prior: &str,
    implied: &str,
) -> ApiResult<(Role, Role)> {
    let p = find(state, prior).await?.map(|d| d.role);
    let i = find(state, implied).await?.map(|d| d.role);
    let mut target = Target::new();
    if let Some(p) = &p {
        add_role_target(&mut target, "target.prior_role", p);
    }
    if let Some(i) = &i {
        add_role_target(&mut target, "target.implied_role", i);
    }
    for action in actions {
        caller.enforce(state, action, &target)?;
    }
    let p = p.ok_or_else(|| not_found(prior))?;
    let i = i.ok_or_else(|| not_found(implied))?;
    Ok((p, i))
}

fn inference_json(state: &AppState, headers: &HeaderMap, p: &Role, i: &Role) -> Value {
    json!({
        "role_inference": {
            "prior_role": ref_json(state, headers, p),
            "implies": ref_json(state, headers, i),
        },
        "links": {
            "self": url(state, headers, &format!("roles/{}/implies/{}", p.id, i.id)),
        },
    })
}

async fn implication(
    state: &AppState,
    headers: &HeaderMap,
    p: &Role,
    i: &Role,
) -> ApiResult<Value> {
    if !state.store.implied_role_exists(&p.id, &i.id).await? {
        return Err(ApiError::NotFound(format!(
            "{} does not imply {}.",
            p.id, i.id
        )));
    }
    Ok(inference_json(state, headers, p, i))
}

async fn show_implied(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (p, i) = load_pair(
        &state,
        &caller,
        &["identity:get_implied_role"],
        &prior,
        &implied,
    )
    .await?;
    Ok(Json(implication(&state, &headers, &p, &i).await?))
}

/// HEAD answers 204 and needs both `check_implied_role` and `get_implied_role`, as in Keystone.
async fn check_implied(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (p, i) = load_pair(
        &state,
        &caller,
        &["identity:check_implied_role", "identity:get_implied_role"],
        &prior,
        &implied,
    )
    .await?;
    implication(&state, &headers, &p, &i).await?;
    Ok(no_content())
}

async fn create_implied(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (p, i) = load_pair(
        &state,
        &caller,
        &["identity:create_implied_role"],
        &prior,
        &implied,
    )
    .await?;
    state.identity.create_implied_role(&p, &i).await?;
    Ok((
        StatusCode::CREATED,
        Json(inference_json(&state, &headers, &p, &i)),
    )
        .into_response())
}

async fn remove_implied(
    State(state): State<AppState>,
    caller: Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (p, i) = load_pair(
        &state,
        &caller,
        &["identity:delete_implied_role"],
        &prior,
        &implied,
    )
    .await?;
    state.identity.delete_implied_role(&p, &i).await?;
    Ok(no_content())
}

async fn list_implied(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(prior): Path<String>,
) -> ApiResult<Json<Value>> {
    let p = find(&state, &prior).await?.map(|d| d.role);
    let mut target = Target::new();
    if let Some(p) = &p {
        add_role_target(&mut target, "target.prior_role", p);
    }
    caller.enforce(&state, "identity:list_implied_roles", &target)?;
    let p = p.ok_or_else(|| not_found(&prior))?;
    let roles: HashMap<String, Role> = state
        .store
        .list_roles()
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut implied: Vec<&Role> = state
        .store
        .list_implied_roles()
        .await?
        .iter()
        .filter(|(from, _)| *from == p.id)
        .filter_map(|(_, to)| roles.get(to))
        .collect();
    implied.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(json!({
        "role_inference": {
            "prior_role": ref_json(&state, &headers, &p),
            "implies": implied.iter().map(|r| ref_json(&state, &headers, r)).collect::<Vec<_>>(),
        },
        "links": { "self": url(&state, &headers, &format!("roles/{}/implies", p.id)) },
    })))
}

async fn list_inferences(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    caller.enforce(&state, "identity:list_role_inference_rules", &Target::new())?;
    let roles: HashMap<String, Role> = state
        .store
        .list_roles()
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut rules: Vec<(String, Vec<&Role>)> = Vec::new();
    let mut pairs = state.store.list_implied_roles().await?;
    pairs.sort();
    for (prior, implied) in &pairs {
        let (Some(_), Some(i)) = (roles.get(prior), roles.get(implied)) else {
            continue;
        };
        match rules.iter_mut().find(|(p, _)| p == prior) {
            Some((_, list)) => list.push(i),
            None => rules.push((prior.clone(), vec![i])),
        }
    }
    let inferences: Vec<Value> = rules
        .iter()
        .map(|(prior, implied)| {
            json!({
                "prior_role": ref_json(&state, &headers, &roles[prior]),
                "implies": implied.iter().map(|r| ref_json(&state, &headers, r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "role_inferences": inferences })))
}
