//! `/v3/users/{user_id}/application_credentials` and `/v3/users/{user_id}/access_rules`:
//! parse, build Keystone's policy target, enforce, call one `state.identity` operation (reads go
//! to the store), render. The rules live in `identity/application_credentials.rs`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{AccessRule, ApplicationCredential};
use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};

use super::users::{find, user_target};
use super::{
    created, invalid, member, no_content, path_id, Caller, Collection, JsonBody, ListRequest, Obj,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::application_credentials::{
    access_rule_not_found, not_found, refuse_restricted, NewAccessRule, NewApplicationCredential,
    RoleRef,
};
use crate::policy::Target;
use crate::AppState;

/// The application credential and access rule routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/users/{user_id}/application_credentials",
            get(list).post(create),
        )
        .route(
            "/v3/users/{user_id}/application_credentials/{credential_id}",
            get(show).delete(remove),
        )
        .route("/v3/users/{user_id}/access_rules", get(list_rules))
        .route(
            "/v3/users/{user_id}/access_rules/{rule_id}",
            get(show_rule).delete(remove_rule),
        )
}

const COLLECTION: &str = "application_credentials";

/// Keystone's JSON form of a `datetime`: microseconds and `Z`.
fn isotime(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn render_rule(r: &AccessRule) -> Value {
    json!({"id": r.id, "service": r.service, "path": r.path, "method": r.method})
}

/// A credential as Keystone shows it; `public` leaves out `user_id` and `system`, as the list
/// response does (its resource's public parameters; Keystone's create response keeps them).
async fn render(state: &AppState, c: &ApplicationCredential, public: bool) -> ApiResult<Value> {
    let mut roles = Vec::with_capacity(c.role_ids.len());
    for id in &c.role_ids {
        if let Some(d) = state.store.get_role_detail(id).await? {
            roles.push(super::roles::render(&d));
        }
    }
    let mut obj = Map::new();
    obj.insert("id".into(), json!(c.id));
    obj.insert("name".into(), json!(c.name));
    obj.insert("description".into(), json!(c.description));
    obj.insert("project_id".into(), json!(c.project_id));
    obj.insert("expires_at".into(), json!(c.expires_at.map(isotime)));
    obj.insert("unrestricted".into(), json!(c.unrestricted));
    obj.insert("roles".into(), Value::Array(roles));
    if let Some(rules) = &c.access_rules {
        obj.insert(
            "access_rules".into(),
            Value::Array(rules.iter().map(render_rule).collect()),
        );
    }
    if !public {
        obj.insert("user_id".into(), json!(c.user_id));
        obj.insert("system".into(), json!(c.system));
    }
    Ok(Value::Object(obj))
}

// ----- request body ------------------------------------------------------------------------

pub(crate) const CREATE_FIELDS: &[&str] = &[
    "id",
    "secret",
    "name",
    "description",
    "expires_at",
    "project_id",
    "access_rules",
    "unrestricted",
    "system",
    "roles",
];

const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"];

pub(crate) fn nullable_bool(obj: &Obj, key: &str) -> ApiResult<Option<bool>> {
    match obj.fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(
            &format!("{}/{key}", obj.path),
            format!("{other} is not of type 'boolean', 'null'"),
        )),
    }
}

/// `expires_at`: ISO 8601, read as UTC (Keystone appends `Z`), not before now.
pub(crate) fn expiry(obj: &Obj, now: NaiveDateTime) -> ApiResult<Option<NaiveDateTime>> {
    let Some(text) = obj.nullable_string("expires_at", usize::MAX)?.flatten() else {
        return Ok(None);
    };
    let bad_format = || {
        ApiError::BadRequest("Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.".into())
    };
    let t = chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| t.naive_utc())
        .or_else(|_| {
            let plain = text.trim_end_matches('Z');
            NaiveDateTime::parse_from_str(plain, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(plain, "%Y-%m-%dT%H:%M"))
        })
        .map_err(|_| bad_format())?;
    if t < now {
        return Err(ApiError::BadRequest("The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.".into()));
    }
    Ok(Some(t))
}

fn array_of_objects(obj: &Obj, key: &str) -> ApiResult<Option<Vec<Obj>>> {
    match obj.fields.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => Ok(Obj {
                    path: format!("{}/{key}/{i}", obj.path),
                    fields: m.clone(),
                }),
                other => Err(invalid(
                    &format!("{}/{key}/{i}", obj.path),
                    format!("{other} is not of type 'object'"),
                )),
            })
            .collect::<ApiResult<Vec<Obj>>>()
            .map(Some),
        Some(other) => Err(invalid(
            &format!("{}/{key}", obj.path),
            format!("{other} is not of type 'array'"),
        )),
    }
}

pub(crate) fn read_roles(obj: &Obj) -> ApiResult<Option<Vec<RoleRef>>> {
    let Some(items) = array_of_objects(obj, "roles")? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    for r in items {
        r.only(&["id", "name"])?;
        if r.fields.len() != 1 {
            return Err(invalid(
                &r.path,
                "must have exactly one property of 'id' or 'name'",
            ));
        }
        if let Some(Some(id)) = r.id("id", false)? {
            out.push(RoleRef::Id(id));
        } else {
            out.push(RoleRef::Name(r.required_name("name")?));
        }
    }
    Ok(Some(out))
}

pub(crate) fn read_access_rules(obj: &Obj) -> ApiResult<Option<Vec<NewAccessRule>>> {
    let Some(items) = array_of_objects(obj, "access_rules")? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    for r in items {
        let path = r.string("path", 225)?;
        if let Some(p) = &path {
            if !p.starts_with('/') {
                return Err(invalid(
                    &format!("{}/path", r.path),
                    format!("'{p}' does not match '^/\\\\.*'"),
                ));
            }
        }
        let method = r.string("method", 16)?;
        if let Some(m) = &method {
            if !METHODS.contains(&m.as_str()) {
                return Err(invalid(
                    &format!("{}/method", r.path),
                    format!("'{m}' is not one of {METHODS:?}"),
                ));
            }
        }
        out.push(NewAccessRule {
            id: r.id("id", false)?.flatten(),
            service: r.id("service", false)?.flatten(),
            path,
            method,
        });
    }
    Ok(Some(out))
}

// ----- application credentials -------------------------------------------------------------
/// Keystone's `_block_delegated_token_app_creds`: a token from a trust or a delegated
/// credential (EC2, OAuth1, ...) may not manage application credentials or access rules, or
/// it could mint a credential that outlives the delegation. Application-credential tokens are
/// judged by `refuse_restricted` instead. Keystone hides the reason (a plain `Forbidden`).
fn refuse_delegated(caller: &Caller) -> ApiResult<()> {
    let methods = &caller.token.payload.methods;
    if methods.iter().any(|m| m == "application_credential") {
        return Ok(());
    }
    if caller.token.is_delegated() {
        return Err(ApiError::forbidden_plain(
            "delegated tokens cannot manage application credentials",
        ));
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let obj = body.member("application_credential")?;
    obj.only(CREATE_FIELDS)?;
    let name = obj.required_name("name")?;
    let new = NewApplicationCredential {
        id: obj.string("id", usize::MAX)?,
        secret: obj.nullable_string("secret", usize::MAX)?.flatten(),
        description: obj.nullable_string("description", usize::MAX)?.flatten(),
        expires_at: expiry(&obj, state.tokens.clock.now().naive_utc())?,
        unrestricted: nullable_bool(&obj, "unrestricted")?.unwrap_or(false),
        roles: read_roles(&obj)?,
        access_rules: read_access_rules(&obj)?,
        name,
    };
    obj.string("project_id", usize::MAX)?;
    obj.nullable_string("system", usize::MAX)?;
    let target = Target::new().with("user_id", user_id.clone());
    caller.enforce(&state, "identity:create_application_credential", &target)?;
    refuse_delegated(&caller)?;
    refuse_restricted(&caller.token.body)?;
    if caller.user_id() != user_id {
        return Err(ApiError::Forbidden(
            "Cannot create an application credential for another user.".into(),
        ));
    }
    let made = state
        .identity
        .create_application_credential(&caller.token.body, new)
        .await?;
    let mut body = render(&state, &made.credential, false).await?;
    body["secret"] = json!(made.secret);
    Ok(created(
        &state,
        &headers,
        COLLECTION,
        "application_credential",
        body,
    ))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    list: ListRequest,
) -> ApiResult<Response> {
    let target = Target::new().with("user_id", user_id.clone());
    caller.enforce(&state, "identity:list_application_credentials", &target)?;
    refuse_delegated(&caller)?;
    let page = list.page(None)?;
    let creds = state
        .store
        .list_application_credentials(&user_id, list.query.get("name"))
        .await?;
    let mut out = Vec::with_capacity(creds.len());
    for c in &creds {
        out.push(render(&state, c, true).await?);
    }
    Ok(list.respond(
        &page,
        Collection::of("application_credentials")
            .at(format!("users/{user_id}/application_credentials")),
        out,
    ))
}

/// The credential of a path and Keystone's target: the owner is the credential's user, never
/// the path's, so naming one's own id in the path does not reach another user's credential.
async fn credential_target(
    state: &AppState,
    user_id: &str,
    id: &str,
) -> ApiResult<(Option<ApplicationCredential>, Target)> {
    let cred = match path_id("Application Credential", id) {
        Ok(id) => state.store.get_application_credential(id).await?,
        Err(_) => None,
    };
    let owner = cred.as_ref().map_or(user_id, |c| c.user_id.as_str());
    let target = Target::new().with("user_id", owner.to_string());
    Ok((cred, target))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (cred, target) = credential_target(&state, &user_id, &id).await?;
    caller.enforce(&state, "identity:get_application_credential", &target)?;
    refuse_delegated(&caller)?;
    let cred = cred.ok_or_else(|| not_found(&id))?;
    let body = render(&state, &cred, false).await?;
    Ok(member(
        &state,
        &headers,
        COLLECTION,
        "application_credential",
        body,
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (cred, target) = credential_target(&state, &user_id, &id).await?;
    caller.enforce(&state, "identity:delete_application_credential", &target)?;
    refuse_delegated(&caller)?;
    refuse_restricted(&caller.token.body)?;
    if cred.is_none() {
        return Err(not_found(&id));
    }
    state.identity.delete_application_credential(&id).await?;
    Ok(no_content())
}

// ----- access rules ------------------------------------------------------------------------

/// Keystone's target for access rules: the path's user, when it exists.
async fn rule_target(state: &AppState, user_id: &str) -> ApiResult<Target> {
    let mut target = Target::new().with("user_id", user_id.to_string());
    if let Some(u) = find(state, user_id).await? {
        target = user_target(target, &u);
    }
    Ok(target)
}

async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    list: ListRequest,
) -> ApiResult<Response> {
    let target = rule_target(&state, &user_id).await?;
    caller.enforce(&state, "identity:list_access_rules", &target)?;
    refuse_delegated(&caller)?;
    let page = list.page(None)?;
    let rules: Vec<Value> = state
        .store
        .list_access_rules(&user_id)
        .await?
        .iter()
        .filter(|r| {
            ["service", "path", "method"].iter().all(|k| {
                let have = match *k {
                    "service" => r.service.as_deref(),
                    "path" => r.path.as_deref(),
                    _ => r.method.as_deref(),
                };
                list.query.get(k).is_none_or(|want| have == Some(want))
            })
        })
        .map(render_rule)
        .collect();
    Ok(list.respond(
        &page,
        Collection::of("access_rules").at(format!("users/{user_id}/access_rules")),
        rules,
    ))
}

async fn show_rule(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let target = rule_target(&state, &user_id).await?;
    caller.enforce(&state, "identity:get_access_rule", &target)?;
    refuse_delegated(&caller)?;
    let rule = match path_id("Access Rule", &id) {
        Ok(id) => state.store.get_access_rule(id, &user_id).await?,
        Err(_) => None,
    }
    .ok_or_else(|| access_rule_not_found(&id))?;
    Ok(member(
        &state,
        &headers,
        "access_rules",
        "access_rule",
        render_rule(&rule),
    ))
}

async fn remove_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let target = rule_target(&state, &user_id).await?;
    caller.enforce(&state, "identity:delete_access_rule", &target)?;
    refuse_delegated(&caller)?;
    path_id("Access Rule", &id).map_err(|_| access_rule_not_found(&id))?;
    state.identity.delete_access_rule(&id, &user_id).await?;
    Ok(no_content())
}
