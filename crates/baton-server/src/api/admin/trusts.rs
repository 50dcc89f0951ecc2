//! `/v3/OS-TRUST/trusts`: parse (Keystone's schema, before policy), build Keystone's policy
//! target, enforce, call one `state.identity` operation (reads go to the store), render. The
//! rules live in `identity/trusts.rs`; trust-scoped tokens in `tokens/trust.rs`.
//!
//! Unlike other resources, a trust that does not exist (or is expired or used up) is a 404
//! before policy is enforced: Keystone builds the target from the trust itself (lp#1840288).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use baton_store::{Trust, TrustFilter};
use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};

use super::schema::{is_type, py_repr, schema_error};
use super::{created, no_content, url, Caller, JsonBody, ListRequest};
use crate::error::{ApiError, ApiResult};
use crate::identity::application_credentials::RoleRef;
use crate::identity::trusts::{not_found, refuse_delegated, usable_trust, NewTrust};
use crate::policy::Target;
use crate::AppState;

/// The trust routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/OS-TRUST/trusts", get(list).post(create))
        .route("/v3/OS-TRUST/trusts/{trust_id}", get(show).delete(remove))
        .route("/v3/OS-TRUST/trusts/{trust_id}/roles", get(list_roles))
        .route(
            "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}",
            get(show_role),
        )
}

/// The attributes that are columns; any other a create names is kept and shown (Keystone's
/// schema lets them through into `extra`).
const COLUMNS: &[&str] = &[
    "id",
    "trustor_user_id",
    "trustee_user_id",
    "project_id",
    "impersonation",
    "expires_at",
    "remaining_uses",
    "deleted_at",
    "redelegated_trust_id",
    "redelegation_count",
    "allow_redelegation",
    "roles",
    "links",
    "roles_links",
];

/// Keystone's `isotime(subsecond=True)`.
fn isotime(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A trust as Keystone's `to_dict` shows it (its columns over its `extra`), with its self link.
fn render_plain(state: &AppState, headers: &HeaderMap, t: &Trust) -> Value {
    let mut obj: Map<String, Value> = t
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    // Keystone keeps the requested roles in `extra` and drops them from listings.
    obj.remove("roles");
    obj.insert("id".into(), json!(t.id));
    obj.insert("trustor_user_id".into(), json!(t.trustor_user_id));
    obj.insert("trustee_user_id".into(), json!(t.trustee_user_id));
    obj.insert("project_id".into(), json!(t.project_id));
    obj.insert("impersonation".into(), json!(t.impersonation));
    obj.insert("expires_at".into(), json!(t.expires_at.map(isotime)));
    obj.insert("remaining_uses".into(), json!(t.remaining_uses));
    obj.insert("deleted_at".into(), json!(t.deleted_at.map(isotime)));
    obj.insert("redelegated_trust_id".into(), json!(t.redelegated_trust_id));
    obj.insert("redelegation_count".into(), json!(t.redelegation_count));
    let link = url(state, headers, &format!("OS-TRUST/trusts/{}", t.id));
    obj.insert("links".into(), json!({ "self": link }));
    Value::Object(obj)
}

/// The trust's roles that still exist, each as `GET /v3/roles/{id}` shows it.
async fn render_roles(state: &AppState, headers: &HeaderMap, t: &Trust) -> ApiResult<Vec<Value>> {
    let mut roles = Vec::with_capacity(t.role_ids.len());
    for id in &t.role_ids {
        if let Some(d) = state.store.get_role_detail(id).await? {
            roles.push(render_role(state, headers, &d));
        }
    }
    Ok(roles)
}

fn render_role(state: &AppState, headers: &HeaderMap, d: &baton_store::RoleDetail) -> Value {
    let mut role = super::roles::render(d);
    role["links"] = json!({ "self": url(state, headers, &format!("roles/{}", d.role.id)) });
    role
}

/// Keystone's `roles_links`: its self link lacks `OS-TRUST/trusts` (`/v3/{id}/roles`), as
/// Keystone 30 renders it.
fn roles_links(state: &AppState, headers: &HeaderMap, id: &str) -> Value {
    json!({ "self": url(state, headers, &format!("{id}/roles")), "next": null, "previous": null })
}

/// A trust with its roles, as create and show answer.
async fn render_full(state: &AppState, headers: &HeaderMap, t: &Trust) -> ApiResult<Value> {
    let mut body = render_plain(state, headers, t);
    body["roles"] = Value::Array(render_roles(state, headers, t).await?);
    body["roles_links"] = roles_links(state, headers, &t.id);
    Ok(body)
}

// ----- request body ------------------------------------------------------------------------
//
// Keystone 30 checks this body with its newer validator (`keystone.api.validation`), whose
// messages differ from the older one the other admin resources use: `Invalid input for
// field/attribute <last path element>. Value: <Python str of the value>. <jsonschema message>`,
// or the bare jsonschema message at the top level. Checks run in the schema's order.

/// A type check of `key` of `obj` against `types`, then a `minimum` if given.
fn check(obj: &Map<String, Value>, key: &str, types: &[&str], min: Option<i64>) -> ApiResult<()> {
    let Some(v) = obj.get(key) else { return Ok(()) };
    if !types.iter().any(|t| is_type(v, t)) {
        let names: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
        let msg = format!("{} is not of type {}", py_repr(v), names.join(", "));
        return Err(schema_error(key, v, msg));
    }
    if let (Some(min), Some(n)) = (min, v.as_i64()) {
        if n < min {
            return Err(schema_error(
                key,
                v,
                format!("{n} is less than the minimum of {min}"),
            ));
        }
    }
    Ok(())
}

/// One role reference: `id` (Keystone's id_string) or `name`, exactly one.
fn check_role(i: usize, item: &Value) -> ApiResult<RoleRef> {
    let at = i.to_string();
    let Value::Object(m) = item else {
        return Err(schema_error(
            &at,
            item,
            format!("{} is not of type 'object'", py_repr(item)),
        ));
    };
    for (key, max, pattern) in [("id", 64, "^[a-zA-Z0-9-]+$"), ("name", 255, "[\\S]+")] {
        let Some(v) = m.get(key) else { continue };
        let Value::String(text) = v else {
            return Err(schema_error(
                key,
                v,
                format!("{} is not of type 'string'", py_repr(v)),
            ));
        };
        let bad = if key == "id" {
            !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        } else {
            text.chars().all(char::is_whitespace)
        };
        let msg = if text.is_empty() {
            format!("{} should be non-empty", py_repr(v))
        } else if text.chars().count() > max {
            format!("{} is too long", py_repr(v))
        } else if bad {
            format!(
                "{} does not match {}",
                py_repr(v),
                py_repr(&Value::String(pattern.into()))
            )
        } else {
            continue;
        };
        return Err(schema_error(key, v, msg));
    }
    if m.is_empty() {
        return Err(schema_error(&at, item, "{} should be non-empty"));
    }
    if m.len() > 1 {
        return Err(schema_error(
            &at,
            item,
            format!("{} has too many properties", py_repr(item)),
        ));
    }
    if let Some(extra) = m.keys().find(|k| *k != "id" && *k != "name") {
        let msg = format!("Additional properties are not allowed ('{extra}' was unexpected)");
        return Err(schema_error(&at, item, msg));
    }
    Ok(match (m.get("id"), m.get("name")) {
        (Some(Value::String(id)), _) => RoleRef::Id(id.clone()),
        (_, Some(Value::String(name))) => RoleRef::Name(name.clone()),
        _ => return Err(schema_error(&at, item, "{} should be non-empty")),
    })
}

/// `roles`: an array of role references.
fn read_roles(obj: &Map<String, Value>) -> ApiResult<Vec<RoleRef>> {
    check(obj, "roles", &["array"], None)?;
    let Some(Value::Array(items)) = obj.get("roles") else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| check_role(i, item))
        .collect()
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The trust object: Keystone's `_trust_properties` in order, then `required`.
fn check_trust(obj: &Map<String, Value>) -> ApiResult<()> {
    for (key, types, min) in [
        ("trustor_user_id", &["string"][..], None),
        ("trustee_user_id", &["string"][..], None),
        ("impersonation", &["boolean"][..], None),
        ("project_id", &["string", "null"][..], None),
        ("remaining_uses", &["integer", "null"][..], Some(1)),
        ("expires_at", &["null", "string"][..], None),
        ("allow_redelegation", &["boolean", "null"][..], None),
        ("redelegation_count", &["integer", "null"][..], Some(0)),
        ("redelegated_trust_id", &["string", "null"][..], None),
    ] {
        check(obj, key, types, min)?;
    }
    read_roles(obj)?;
    for key in ["trustor_user_id", "trustee_user_id", "impersonation"] {
        if !obj.contains_key(key) {
            let whole = Value::Object(obj.clone());
            return Err(schema_error(
                "trust",
                &whole,
                format!("'{key}' is a required property"),
            ));
        }
    }
    Ok(())
}

/// Keystone's `trust_create_request_body`.
pub(crate) fn read_new_trust(body: JsonBody) -> ApiResult<NewTrust> {
    let JsonBody(top) = body;
    let trust = match top.get("trust") {
        Some(Value::Object(m)) => {
            check_trust(m)?;
            Some(m)
        }
        Some(other) => {
            return Err(schema_error(
                "trust",
                other,
                format!("{} is not of type 'object'", py_repr(other)),
            ))
        }
        None => None,
    };
    if let Some(extra) = top.keys().find(|k| *k != "trust") {
        return Err(ApiError::BadRequest(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let obj = trust.ok_or_else(|| ApiError::BadRequest("'trust' is a required property".into()))?;
    Ok(NewTrust {
        trustor_user_id: text(obj, "trustor_user_id").unwrap_or_default(),
        trustee_user_id: text(obj, "trustee_user_id").unwrap_or_default(),
        impersonation: obj
            .get("impersonation")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        project_id: text(obj, "project_id"),
        expires_at: text(obj, "expires_at"),
        remaining_uses: obj.get("remaining_uses").and_then(super::schema::integer),
        allow_redelegation: obj
            .get("allow_redelegation")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        redelegation_count: obj
            .get("redelegation_count")
            .and_then(super::schema::integer),
        redelegated_trust_id: text(obj, "redelegated_trust_id"),
        roles: read_roles(obj)?,
        extra: obj
            .iter()
            .filter(|(k, _)| !COLUMNS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

// ----- handlers ----------------------------------------------------------------------------

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let new = read_new_trust(body)?;
    let target = Target::new()
        .with("target.trust.trustor_user_id", new.trustor_user_id.clone())
        .with("target.trust.trustee_user_id", new.trustee_user_id.clone())
        .with_opt("target.trust.project_id", new.project_id.clone());
    caller.enforce(&state, "identity:create_trust", &target)?;
    let trust = state.identity.create_trust(&caller.token, new).await?;
    let body = render_full(&state, &headers, &trust).await?;
    Ok(created(&state, &headers, "OS-TRUST/trusts", "trust", body))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    list: ListRequest,
) -> ApiResult<Json<Value>> {
    let trustor = list.query.get("trustor_user_id").filter(|v| !v.is_empty());
    let trustee = list.query.get("trustee_user_id").filter(|v| !v.is_empty());
    let (rule, target) = match (trustor, trustee) {
        (Some(u), _) => (
            "identity:list_trusts_for_trustor",
            Target::new().with("target.trust.trustor_user_id", u),
        ),
        (None, Some(u)) => (
            "identity:list_trusts_for_trustee",
            Target::new().with("target.trust.trustee_user_id", u),
        ),
        (None, None) => ("identity:list_trusts", Target::new()),
    };
    caller.enforce(&state, rule, &target)?;
    refuse_delegated(&caller.token)?;
    let raw = list.query.raw().filter(|q| !q.is_empty());
    let trusts = match (raw, trustor, trustee) {
        (None, ..) => state.store.list_trusts(&TrustFilter::default()).await?,
        (Some(_), Some(u), _) => {
            let filter = TrustFilter {
                trustor_user_id: Some(u.to_string()),
                ..Default::default()
            };
            state.store.list_trusts(&filter).await?
        }
        (Some(_), None, Some(u)) => {
            let filter = TrustFilter {
                trustee_user_id: Some(u.to_string()),
                ..Default::default()
            };
            state.store.list_trusts(&filter).await?
        }
        // Keystone lists nothing for a query that names neither user.
        (Some(_), None, None) => Vec::new(),
    };
    let here = url(&state, &headers, "OS-TRUST/trusts");
    let self_link = match raw {
        Some(q) => format!("{here}?{q}"),
        None => here,
    };
    let items: Vec<Value> = trusts
        .iter()
        .map(|t| render_plain(&state, &headers, t))
        .collect();
    Ok(Json(json!({
        "trusts": items,
        "links": { "self": self_link, "previous": null, "next": null },
    })))
}

/// The trust of a path (404 when not usable, before policy, as Keystone) and its target.
async fn trust_target(state: &AppState, id: &str) -> ApiResult<(Trust, Target)> {
    let now = state.tokens.clock.now().naive_utc();
    let max = crate::identity::trusts::max_redelegation(&state.config);
    let trust = usable_trust(&state.store, now, id, max)
        .await?
        .ok_or_else(|| not_found(id))?;
    let target = Target::new()
        .with("target.trust.id", trust.id.clone())
        .with(
            "target.trust.trustor_user_id",
            trust.trustor_user_id.clone(),
        )
        .with(
            "target.trust.trustee_user_id",
            trust.trustee_user_id.clone(),
        )
        .with_opt("target.trust.project_id", trust.project_id.clone());
    Ok((trust, target))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (trust, target) = trust_target(&state, &id).await?;
    caller.enforce(&state, "identity:get_trust", &target)?;
    refuse_delegated(&caller.token)?;
    let body = render_full(&state, &headers, &trust).await?;
    Ok(Json(json!({ "trust": body })))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, target) = trust_target(&state, &id).await?;
    caller.enforce(&state, "identity:delete_trust", &target)?;
    state.identity.delete_trust(&caller.token, &id).await?;
    Ok(no_content())
}

async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (trust, target) = trust_target(&state, &id).await?;
    caller.enforce(&state, "identity:list_roles_for_trust", &target)?;
    refuse_delegated(&caller.token)?;
    let roles = render_roles(&state, &headers, &trust).await?;
    Ok(Json(
        json!({ "roles": roles, "links": roles_links(&state, &headers, &trust.id) }),
    ))
}

async fn show_role(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, role_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (trust, target) = trust_target(&state, &id).await?;
    caller.enforce(&state, "identity:get_role_for_trust", &target)?;
    refuse_delegated(&caller.token)?;
    let role = match trust.role_ids.contains(&role_id) {
        true => state.store.get_role_detail(&role_id).await?,
        false => None,
    }
    .ok_or_else(|| ApiError::not_found("role", &role_id))?;
    Ok(Json(
        json!({ "role": render_role(&state, &headers, &role) }),
    ))
}
