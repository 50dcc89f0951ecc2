//! `/v3/policies` (policy blobs) and `OS-ENDPOINT-POLICY` (which policy an endpoint, a
//! service, or a service in a region uses, and `GET /v3/endpoints/{id}/OS-ENDPOINT-POLICY/policy`).
//!
//! Keystone 30's order: policy first, then its older validator (`keystone/policy/schema.py`,
//! which lets unknown attributes through into `extra`), then the rows. The association routes
//! check the policy, then the endpoint, service and region they name (404 for the first
//! missing one); the rules live in `identity/policies.rs`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_store::Policy;
use serde_json::Value;

use super::catalog::{created_extra, with_extra};
use super::endpoint_filter::plain_collection;
use super::{
    created, invalid, list_target, matches, member, no_content, path_id, Caller, Collection,
    JsonBody, ListRequest, Obj,
};
use crate::error::{ApiError, ApiResult};
use crate::identity::policies::{AssociationOp, PolicyTarget};
use crate::policy::Target;
use crate::AppState;

const EP: &str = "OS-ENDPOINT-POLICY";

/// The policy and endpoint-policy routes.
pub fn routes() -> Router<AppState> {
    let assoc = "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY";
    Router::new()
        .route("/v3/policies", get(list_policies).post(create_policy))
        .route(
            "/v3/policies/{policy_id}",
            get(show_policy).patch(update_policy).delete(delete_policy),
        )
        .route(&format!("{assoc}/endpoints"), get(endpoints_for_policy))
        .route(
            &format!("{assoc}/endpoints/{{endpoint_id}}"),
            get(endpoint_association)
                .put(endpoint_association)
                .delete(endpoint_association),
        )
        .route(
            &format!("{assoc}/services/{{service_id}}"),
            get(service_association)
                .put(service_association)
                .delete(service_association),
        )
        .route(
            &format!("{assoc}/services/{{service_id}}/regions/{{region_id}}"),
            get(region_association)
                .put(region_association)
                .delete(region_association),
        )
        .route(
            "/v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy",
            get(policy_for_endpoint),
        )
}

/// Attributes with a column of their own (or computed for responses): never kept in `extra`.
const POLICY_COLUMNS: &[&str] = &["id", "type", "blob", "links"];
/// `type`'s `maxLength` in Keystone's schema (the column's width).
const TYPE_MAX: usize = 255;

fn render(p: &Policy) -> Value {
    with_extra(
        &p.extra,
        vec![
            ("id", p.id.clone().into()),
            ("type", p.policy_type.clone().into()),
            ("blob", p.blob.clone()),
        ],
    )
}

/// `blob` (a string) and `type` (a string of at most 255 characters), in the schema's order.
fn check_fields(obj: &Obj) -> ApiResult<()> {
    obj.string("blob", usize::MAX)?;
    obj.string("type", TYPE_MAX)?;
    Ok(())
}

async fn load_policy(state: &AppState, id: &str) -> ApiResult<Policy> {
    path_id("policy", id)?;
    Ok(state.store.get_policy(id).await?)
}

fn policy_target(id: &str) -> Target {
    Target::new().with("policy_id", id.to_string())
}

async fn list_policies(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_policies",
        &list_target(&list.query, &["type"]),
    )?;
    let page = list.page(state.config().policy_api.list_limit)?;
    let policies = state
        .store
        .list_policies()
        .await?
        .iter()
        .filter(|p| matches(&list.query, "type", Some(&p.policy_type)))
        .map(render)
        .collect();
    Ok(list.respond(&page, Collection::of("policies"), policies))
}

async fn create_policy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:create_policy", &Target::new())?;
    let obj = super::member_or_empty(body.0, "policy")?;
    for key in ["blob", "type"] {
        if !obj.has(key) {
            return Err(invalid("", format!("'{key}' is a required property")));
        }
    }
    check_fields(&obj)?;
    let policy = Policy {
        id: baton_store::new_id(),
        policy_type: obj.string("type", TYPE_MAX)?.unwrap_or_default(),
        blob: obj.fields.get("blob").cloned().unwrap_or(Value::Null),
        extra: created_extra(&obj, POLICY_COLUMNS),
    };
    state.identity.create_policy(&policy).await?;
    let policy = state.store.get_policy(&policy.id).await?;
    Ok(created(
        &state,
        &headers,
        "policies",
        "policy",
        render(&policy),
    ))
}

async fn show_policy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(policy_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_policy", &policy_target(&policy_id))?;
    let policy = load_policy(&state, &policy_id).await?;
    Ok(member(&state, &headers, "policies", "policy", render(&policy)).into_response())
}

async fn update_policy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(policy_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:update_policy", &policy_target(&policy_id))?;
    let obj = super::member_or_empty(body.0, "policy")?;
    if obj.fields.is_empty() {
        return Err(invalid("", "{} should be non-empty"));
    }
    check_fields(&obj)?;
    if matches!(obj.fields.get("id"), Some(id) if id.as_str() != Some(policy_id.as_str())) {
        return Err(ApiError::BadRequest("Cannot change policy ID".into()));
    }
    let mut policy = load_policy(&state, &policy_id).await?;
    if let Some(t) = obj.string("type", TYPE_MAX)? {
        policy.policy_type = t;
    }
    if let Some(blob) = obj.fields.get("blob") {
        policy.blob = blob.clone();
    }
    for (k, v) in obj.extra(POLICY_COLUMNS) {
        policy.extra.insert(k, v);
    }
    state.identity.update_policy(&policy).await?;
    let policy = state.store.get_policy(&policy_id).await?;
    Ok(member(&state, &headers, "policies", "policy", render(&policy)).into_response())
}

async fn delete_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(policy_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:delete_policy", &policy_target(&policy_id))?;
    path_id("policy", &policy_id)?;
    state.identity.delete_policy(&policy_id).await?;
    Ok(no_content())
}

// ----- endpoint policy -------------------------------------------------------------------------

async fn endpoints_for_policy(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
    Path(policy_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_endpoints_for_policy",
        &policy_target(&policy_id),
    )?;
    path_id("policy", &policy_id)?;
    let items = state
        .identity
        .endpoints_for_policy(&policy_id)
        .await?
        .iter()
        .map(|e| {
            let mut v = super::catalog::render_endpoint(e);
            // Keystone's list shows `region_id` only (no legacy `region`).
            if let Some(o) = v.as_object_mut() {
                o.remove("region");
            }
            v
        })
        .collect();
    let path = format!("policies/{policy_id}/{EP}/endpoints");
    Ok(plain_collection(&list, "endpoints", path, items))
}

/// Checks (`GET`/`HEAD`), sets (`PUT`) or deletes an association, under the policy rule of
/// that method and target kind (`identity:<check|create|delete>_policy_association_for_<kind>`).
async fn associate(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    policy_id: &str,
    target: PolicyTarget,
) -> ApiResult<Response> {
    let (verb, op) = match *method {
        Method::PUT => ("create", AssociationOp::Set),
        Method::DELETE => ("delete", AssociationOp::Delete),
        _ => ("check", AssociationOp::Check),
    };
    let kind = match target {
        PolicyTarget::Endpoint(_) => "endpoint",
        PolicyTarget::Service(_) => "service",
        PolicyTarget::ServiceInRegion(..) => "region_and_service",
    };
    caller.enforce(
        state,
        &format!("identity:{verb}_policy_association_for_{kind}"),
        &policy_target(policy_id),
    )?;
    path_id("policy", policy_id)?;
    match &target {
        PolicyTarget::Endpoint(e) => {
            path_id("endpoint", e)?;
        }
        PolicyTarget::Service(s) => {
            path_id("service", s)?;
        }
        PolicyTarget::ServiceInRegion(s, r) => {
            path_id("service", s)?;
            path_id("region", r)?;
        }
    }
    state
        .identity
        .policy_association(policy_id, &target, op)
        .await?;
    Ok(no_content())
}

async fn endpoint_association(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((policy_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let target = PolicyTarget::Endpoint(endpoint_id);
    associate(&state, &caller, &method, &policy_id, target).await
}

async fn service_association(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((policy_id, service_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let target = PolicyTarget::Service(service_id);
    associate(&state, &caller, &method, &policy_id, target).await
}

async fn region_association(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((policy_id, service_id, region_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let target = PolicyTarget::ServiceInRegion(service_id, region_id);
    associate(&state, &caller, &method, &policy_id, target).await
}

async fn policy_for_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:get_policy_for_endpoint",
        &Target::new().with("endpoint_id", endpoint_id.clone()),
    )?;
    let endpoint = super::catalog::load_endpoint(&state, &endpoint_id).await?;
    let policy = state.identity.policy_for_endpoint(&endpoint).await?;
    // Keystone links the policy under `/v3/endpoints` (its member rendering is reused).
    Ok(member(&state, &headers, "endpoints", "policy", render(&policy)).into_response())
}
