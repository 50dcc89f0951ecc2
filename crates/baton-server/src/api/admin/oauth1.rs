//! `/v3/OS-OAUTH1/consumers`: the applications users may delegate to with OAuth1. A consumer's
//! secret is shown once, in the answer to its creation. `/v3/users/{id}/OS-OAUTH1/access_tokens`:
//! the delegations a user made (shown without their secrets and roles; the roles are listed
//! apart), and their deletion. The delegation flow itself is in `api::oauth1`.
//!
//! As Keystone 30: policy first, then its older validator (a `description` string or null;
//! other attributes kept in `extra`, names normalised; an update may not carry `secret` and
//! must change something).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use axum::Router;
use baton_store::{AccessToken, Consumer};
use serde_json::{json, Value};

use super::catalog::{created_extra, with_extra};
use super::schema::{body_json, py_repr};
use super::{created, invalid, member, no_content, Caller, Collection, ListRequest};
use crate::error::{ApiError, ApiResult};
use crate::identity::oauth1::{access_token_not_found, consumer_not_found, role_ids};
use crate::oauth1_signature::is_key;
use crate::policy::Target;
use crate::AppState;

const CONSUMERS: &str = "OS-OAUTH1/consumers";
const CONSUMER: &str = "consumer";
/// Keystone's `consumer.description` column: at most 64 characters (its validator sets no
/// limit, so longer text fails in the database there; Baton refuses it with a 400).
const DESCRIPTION_MAX: usize = 64;
/// The columns; every other attribute goes to `extra`.
const COLUMNS: &[&str] = &["id", "description", "secret"];

/// The consumer routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("/v3/{CONSUMERS}"), get(list).post(create))
        .route(
            &format!("/v3/{CONSUMERS}/{{consumer_id}}"),
            get(show).patch(update).delete(delete),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens",
            get(list_access_tokens),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}",
            get(show_access_token).delete(delete_access_token),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles",
            get(list_access_token_roles),
        )
        .route(
            "/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles/{role_id}",
            get(show_access_token_role),
        )
}

fn render(c: &Consumer) -> Value {
    with_extra(
        &c.extra,
        vec![
            ("id", c.id.clone().into()),
            ("description", c.description.clone().into()),
        ],
    )
}

fn target(id: &str) -> Target {
    Target::new().with("consumer_id", id.to_string())
}

async fn load(state: &AppState, id: &str) -> ApiResult<Consumer> {
    if id.len() > 64 {
        return Err(consumer_not_found());
    }
    state
        .store
        .get_consumer(id)
        .await?
        .ok_or_else(consumer_not_found)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:list_consumers", &Target::new())?;
    let items = state
        .store
        .list_consumers()
        .await?
        .iter()
        .map(render)
        .collect();
    let c = Collection::of("consumers")
        .at(CONSUMERS.into())
        .members_under(CONSUMERS.into());
    Ok(list.respond(&list.page(None)?, c, items))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(consumer_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:get_consumer", &target(&consumer_id))?;
    let c = load(&state, &consumer_id).await?;
    Ok(member(&state, &headers, CONSUMERS, CONSUMER, render(&c)).into_response())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:create_consumer", &Target::new())?;
    let obj = super::member_or_empty(body_json(body)?, CONSUMER)?;
    let description = obj
        .nullable_string("description", DESCRIPTION_MAX)?
        .flatten();
    let c = state
        .identity
        .create_consumer(description, created_extra(&obj, COLUMNS))
        .await?;
    let mut shown = render(&c);
    shown["secret"] = Value::String(c.secret.clone());
    Ok(created(&state, &headers, CONSUMERS, CONSUMER, shown))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(consumer_id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:update_consumer", &target(&consumer_id))?;
    let obj = super::member_or_empty(body_json(body)?, CONSUMER)?;
    let description = obj.nullable_string("description", DESCRIPTION_MAX)?;
    if obj.has("secret") {
        return Err(invalid(
            "",
            format!(
                "{} should not be valid under {{'required': ['secret']}}",
                py_repr(&Value::Object(obj.fields.clone()))
            ),
        ));
    }
    obj.not_empty()?;
    if obj
        .fields
        .get("id")
        .is_some_and(|id| !id.is_null() && *id != json!(consumer_id))
    {
        return Err(ApiError::BadRequest("Cannot change ID".into()));
    }
    let mut c = load(&state, &consumer_id).await?;
    if let Some(d) = description {
        c.description = d;
    }
    c.extra.extend(created_extra(&obj, COLUMNS));
    state.identity.update_consumer(&c).await?;
    Ok(member(&state, &headers, CONSUMERS, CONSUMER, render(&c)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(consumer_id): Path<String>,
) -> ApiResult<Response> {
    caller.enforce(&state, "identity:delete_consumer", &target(&consumer_id))?;
    if consumer_id.len() > 64 {
        return Err(consumer_not_found());
    }
    state.identity.delete_consumer(&consumer_id).await?;
    Ok(no_content())
}

// ----- a user's access tokens ---------------------------------------------------------------

/// Keystone: no form of delegation may read or delete OAuth1 access tokens.
fn refuse_delegated(caller: &Caller) -> ApiResult<()> {
    if caller.token.is_delegated() {
        return Err(ApiError::forbidden_plain(
            "Cannot manage OAuth access tokens with a token issued via delegation.",
        ));
    }
    Ok(())
}

/// An access token as Keystone shows it: no secret, no role ids, a link to its roles.
fn render_access_token(state: &AppState, headers: &HeaderMap, t: &AccessToken) -> Value {
    let path = format!(
        "users/{}/OS-OAUTH1/access_tokens/{}",
        t.authorizing_user_id, t.id
    );
    json!({
        "id": t.id,
        "authorizing_user_id": t.authorizing_user_id,
        "project_id": t.project_id,
        "consumer_id": t.consumer_id,
        "expires_at": t.expires_at,
        "links": {
            "roles": super::url(state, headers, &format!("{path}/roles")),
            "self": super::url(state, headers, &path),
        },
    })
}

async fn load_access_token(state: &AppState, id: &str) -> ApiResult<AccessToken> {
    match is_key(id) {
        true => state.store.get_access_token(id).await?,
        false => None,
    }
    .ok_or_else(access_token_not_found)
}

/// Keystone's bare `NotFound` for an access token of another user.
fn not_theirs() -> ApiError {
    ApiError::NotFound("Could not find: %(target)s.".into())
}

async fn list_access_tokens(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_access_tokens",
        &user_target(&user_id),
    )?;
    refuse_delegated(&caller)?;
    let items = state
        .store
        .list_access_tokens_of_user(&user_id)
        .await?
        .iter()
        .map(|t| render_access_token(&state, &headers, t))
        .collect();
    let path = format!("users/{user_id}/OS-OAUTH1/access_tokens");
    let c = Collection::of("access_tokens")
        .at(path.clone())
        .members_under(path);
    Ok(list.respond(&list.page(None)?, c, items))
}

fn user_target(user_id: &str) -> Target {
    Target::new().with("user_id", user_id.to_string())
}

async fn show_access_token(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user_id, access_token_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.enforce(&state, "identity:get_access_token", &user_target(&user_id))?;
    refuse_delegated(&caller)?;
    let t = load_access_token(&state, &access_token_id).await?;
    if t.authorizing_user_id != user_id {
        return Err(not_theirs());
    }
    Ok(Json(
        json!({ "access_token": render_access_token(&state, &headers, &t) }),
    ))
}

async fn delete_access_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, access_token_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    // Keystone checks the EC2 credential rule here, with no credential in the target: only
    // administrators pass.
    caller.enforce(
        &state,
        "identity:ec2_delete_credential",
        &user_target(&user_id),
    )?;
    refuse_delegated(&caller)?;
    let t = load_access_token(&state, &access_token_id).await?;
    if t.authorizing_user_id != user_id {
        return Err(ApiError::unauthorized("User IDs do not match"));
    }
    state.identity.delete_access_token(&t.id).await?;
    Ok(no_content())
}

/// A delegated role as Keystone shows it: the role without `description` and `enabled`.
async fn access_token_role(state: &AppState, headers: &HeaderMap, id: &str) -> ApiResult<Value> {
    let detail = state
        .store
        .get_role_detail(id)
        .await?
        .ok_or_else(|| super::roles::not_found(id))?;
    let mut v = super::roles::render(&detail);
    if let Value::Object(m) = &mut v {
        m.remove("description");
        m.remove("enabled");
        m.insert(
            "links".into(),
            json!({ "self": super::url(state, headers, &format!("roles/{id}")) }),
        );
    }
    Ok(v)
}

async fn list_access_token_roles(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user_id, access_token_id)): Path<(String, String)>,
    list: ListRequest,
) -> ApiResult<Response> {
    caller.enforce(
        &state,
        "identity:list_access_token_roles",
        &user_target(&user_id),
    )?;
    let t = load_access_token(&state, &access_token_id).await?;
    if t.authorizing_user_id != user_id {
        return Err(not_theirs());
    }
    let mut items = Vec::new();
    for id in role_ids(Some(&t.role_ids)) {
        items.push(access_token_role(&state, &headers, &id).await?);
    }
    let c = Collection::of("roles").at(format!(
        "users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles"
    ));
    Ok(list.respond(&list.page(None)?, c, items))
}

async fn show_access_token_role(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user_id, access_token_id, role_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    caller.enforce(
        &state,
        "identity:get_access_token_role",
        &user_target(&user_id),
    )?;
    let t = load_access_token(&state, &access_token_id).await?;
    if t.authorizing_user_id != user_id {
        return Err(ApiError::unauthorized("User IDs do not match"));
    }
    if !role_ids(Some(&t.role_ids)).contains(&role_id) {
        return Err(super::roles::not_found(&role_id));
    }
    Ok(Json(
        json!({ "role": access_token_role(&state, &headers, &role_id).await? }),
    ))
}
