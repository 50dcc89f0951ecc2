//! `/v3/users/{user_id}/credentials/OS-EC2`: Keystone's EC2 credential API over the
//! credential store (`type` `ec2`, id the SHA-256 of the access key), with its bodies
//! (`user_id`, `tenant_id`, `access`, `secret`, `trust_id`) and its order of checks: a missing
//! credential is a 404 naming the access key's hash before any policy check, a credential of
//! another type a 401, and delegated tokens are refused.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use baton_store::CredentialFilter;
use serde_json::{json, Value};

use super::credentials::refuse_delegated;
use super::{url, Caller};
use crate::api::extract::body_rejection;
use crate::ec2_signature::py_str;
use crate::error::{ApiError, ApiResult};
use crate::identity::credentials::{ec2_credential_id, not_found, Credential, EC2};
use crate::identity::ec2::Ec2Blob;
use crate::identity::users::user_not_found;
use crate::policy::Target;
use crate::AppState;

/// The OS-EC2 routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2",
            get(list).post(create),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}",
            get(show).delete(remove),
        )
}

/// Keystone's `_convert_v3_to_ec2_credential`, with the self link under the user's path.
fn render(state: &AppState, headers: &HeaderMap, c: &Credential) -> Value {
    let blob = Ec2Blob::parse(&c.blob);
    let access = blob.access.clone();
    let link = url(
        state,
        headers,
        &format!(
            "users/{}/credentials/OS-EC2/{}",
            c.user_id,
            access.as_deref().unwrap_or("None")
        ),
    );
    json!({
        "user_id": c.user_id,
        "tenant_id": c.project_id,
        "access": access,
        "secret": blob.secret,
        "trust_id": blob.trust_id,
        "links": {"self": link},
    })
}

async fn user_exists(state: &AppState, user_id: &str) -> ApiResult<()> {
    if user_id.len() > 255 || state.store.get_user(user_id).await?.is_none() {
        return Err(user_not_found(user_id));
    }
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let target = Target::new().with("user_id", user_id.clone());
    caller.enforce(&state, "identity:ec2_list_credentials", &target)?;
    refuse_delegated(&caller)?;
    user_exists(&state, &user_id).await?;
    let filter = CredentialFilter {
        user_id: Some(user_id.clone()),
        kind: Some(EC2.into()),
        project_id: None,
    };
    let creds: Vec<Value> = state
        .identity
        .list_credentials(&filter)
        .await?
        .iter()
        .map(|c| render(&state, &headers, c))
        .collect();
    let here = url(
        &state,
        &headers,
        &format!("users/{user_id}/credentials/OS-EC2"),
    );
    Ok(Json(json!({
        "credentials": creds,
        "links": {"self": here, "previous": null, "next": null},
    })))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(body_rejection)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let target = Target::new().with("target.credential.user_id", user_id.clone());
    caller.enforce(&state, "identity:ec2_create_credential", &target)?;
    user_exists(&state, &user_id).await?;
    let tenant = body.get("tenant_id").map_or_else(|| "None".into(), py_str);
    if tenant.len() > 255 || state.store.get_project(&tenant).await?.is_none() {
        return Err(ApiError::not_found("project", &tenant));
    }
    refuse_delegated(&caller)?;
    let made = state
        .identity
        .create_ec2_credential(&user_id, &tenant)
        .await?;
    let body = json!({ "credential": render(&state, &headers, &made) });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The credential of an access key, before any policy check (Keystone builds the target from
/// it, so an unknown key is a 404 naming its hash).
async fn by_access(state: &AppState, access: &str) -> ApiResult<(Credential, Target)> {
    let id = ec2_credential_id(access);
    let cred = state
        .identity
        .get_credential(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let target = Target::new()
        .with("target.credential.user_id", cred.user_id.clone())
        .with_opt("target.credential.project_id", cred.project_id.clone())
        .with("target.credential.type", cred.kind.clone());
    Ok((cred, target))
}

/// Keystone answers a credential of another type as an unknown EC2 key: 401.
fn require_ec2(c: &Credential) -> ApiResult<()> {
    if c.kind != EC2 {
        return Err(ApiError::unauthorized("EC2 access key not found."));
    }
    Ok(())
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user_id, access)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (cred, target) = by_access(&state, &access).await?;
    caller.enforce(&state, "identity:ec2_get_credential", &target)?;
    user_exists(&state, &user_id).await?;
    require_ec2(&cred)?;
    refuse_delegated(&caller)?;
    Ok(Json(
        json!({ "credential": render(&state, &headers, &cred) }),
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, access)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (cred, target) = by_access(&state, &access).await?;
    caller.enforce(&state, "identity:ec2_delete_credential", &target)?;
    user_exists(&state, &user_id).await?;
    require_ec2(&cred)?;
    refuse_delegated(&caller)?;
    state.identity.delete_credential(&cred.id).await?;
    Ok(super::no_content())
}
