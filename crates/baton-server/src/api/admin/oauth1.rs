//! `/v3/OS-OAUTH1/consumers`: the applications users may delegate to with OAuth1. A consumer's
//! secret is shown once, in the answer to its creation.
//!
//! As Keystone 30: policy first, then its older validator (a `description` string or null;
//! other attributes kept in `extra`, names normalised; an update may not carry `secret` and
//! must change something).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_store::Consumer;
use serde_json::{json, Value};

use super::catalog::{created_extra, with_extra};
use super::schema::{body_json, py_repr};
use super::{created, invalid, member, no_content, Caller, Collection, ListRequest};
use crate::error::{ApiError, ApiResult};
use crate::identity::oauth1::consumer_not_found;
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
