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

use super::{created, invalid, no_content, url, Caller, JsonBody, ListRequest, Obj};
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

fn nullable_int(obj: &Obj, key: &str, min: i64) -> ApiResult<Option<i64>> {
    let path = format!("{}/{key}", obj.path);
    match obj.fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let v = n.as_i64().unwrap_or(i64::MAX);
            if v < min {
                return Err(invalid(
                    &path,
                    format!("{v} is less than the minimum of {min}"),
                ));
            }
            Ok(Some(v))
        }
        Some(other) => Err(invalid(
            &path,
            format!("{other} is not of type 'integer', 'null'"),
        )),
    }
}

fn nullable_bool(obj: &Obj, key: &str) -> ApiResult<Option<bool>> {
    match obj.fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(
            &format!("{}/{key}", obj.path),
            format!("{other} is not of type 'boolean', 'null'"),
        )),
    }
}

fn required_string(obj: &Obj, key: &str) -> ApiResult<String> {
    obj.string(key, usize::MAX)?
        .ok_or_else(|| invalid(&obj.path, format!("'{key}' is a required property")))
}

/// `roles`: objects of exactly one property, `id` or `name`.
fn read_roles(obj: &Obj) -> ApiResult<Vec<RoleRef>> {
    let items = match obj.fields.get("roles") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                &format!("{}/roles", obj.path),
                format!("{other} is not of type 'array'"),
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}/roles/{i}", obj.path);
        let Value::Object(fields) = item else {
            return Err(invalid(&path, format!("{item} is not of type 'object'")));
        };
        let r = Obj {
            path,
            fields: fields.clone(),
        };
        r.only(&["id", "name"])?;
        if r.fields.len() != 1 {
            let detail = if r.fields.is_empty() {
                "{} does not have enough properties"
            } else {
                "has too many properties"
            };
            return Err(invalid(&r.path, detail));
        }
        match r.id("id", false)? {
            Some(Some(id)) => out.push(RoleRef::Id(id)),
            _ => out.push(RoleRef::Name(r.required_name("name")?)),
        }
    }
    Ok(out)
}

/// Keystone's `trust_create_request_body`.
fn read_new_trust(body: JsonBody) -> ApiResult<NewTrust> {
    let obj = body.member("trust")?;
    let trustor_user_id = required_string(&obj, "trustor_user_id")?;
    let trustee_user_id = required_string(&obj, "trustee_user_id")?;
    let impersonation = obj
        .boolean("impersonation")?
        .ok_or_else(|| invalid(&obj.path, "'impersonation' is a required property"))?;
    Ok(NewTrust {
        redelegated_trust_id: obj
            .nullable_string("redelegated_trust_id", usize::MAX)?
            .flatten(),
        project_id: obj.nullable_string("project_id", usize::MAX)?.flatten(),
        expires_at: obj.nullable_string("expires_at", usize::MAX)?.flatten(),
        remaining_uses: nullable_int(&obj, "remaining_uses", 1)?,
        allow_redelegation: nullable_bool(&obj, "allow_redelegation")?.unwrap_or(false),
        redelegation_count: nullable_int(&obj, "redelegation_count", 0)?,
        roles: read_roles(&obj)?,
        extra: obj.extra(COLUMNS),
        trustor_user_id,
        trustee_user_id,
        impersonation,
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
    let trust = usable_trust(&state.store, now, id)
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
