//! `/v3/domains/{domain_id}/config[/{group}[/{option}]]` (a domain's own configuration) and
//! `/v3/domains/config[/{group}[/{option}]]/default` (the defaults), in Keystone 30's order:
//! policy first; for reads the configuration's own 403/404 come before the domain's 404 (so a
//! reader learns nothing about domains it cannot see the configuration of), for writes the
//! domain is looked up first. `security_compliance` reads take their own policy rule. The rules
//! live in `identity/domain_config.rs`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{invalid, no_content, Caller, JsonBody};
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// The domain-configuration routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/domains/config/default", get(all_defaults))
        .route("/v3/domains/config/{group}/default", get(group_defaults))
        .route(
            "/v3/domains/config/{group}/{option}/default",
            get(option_defaults),
        )
        .route(
            "/v3/domains/{domain_id}/config",
            get(whole).put(whole).patch(whole).delete(whole),
        )
        .route(
            "/v3/domains/{domain_id}/config/{group}",
            get(group).patch(group).delete(group),
        )
        .route(
            "/v3/domains/{domain_id}/config/{group}/{option}",
            get(option).patch(option).delete(option),
        )
}

/// What a request names: a domain, maybe a group, maybe an option within it.
struct ConfigPath {
    domain_id: String,
    group: Option<String>,
    option: Option<String>,
}

impl ConfigPath {
    fn target(&self) -> Target {
        Target::new().with("domain_id", self.domain_id.clone())
    }
}

/// The `config` member of a write's body (`.get('config', {})`: absent is empty).
fn config_body(body: &Bytes) -> ApiResult<Map<String, Value>> {
    let JsonBody(mut map) = JsonBody::parse(body)?;
    match map.remove("config").unwrap_or_else(|| json!({})) {
        Value::Object(m) => Ok(m),
        // Keystone fails with a 500 here; a clear 400 instead.
        other => Err(invalid(
            "config",
            format!("{} is not of type 'object'", super::schema::py_repr(&other)),
        )),
    }
}

/// The path's domain must exist (an id no domain can have is not looked up).
async fn require_domain(state: &AppState, id: &str) -> ApiResult<()> {
    if super::domains::find(state, id).await?.is_some() {
        Ok(())
    } else {
        Err(ApiError::not_found("domain", id))
    }
}

fn config_json(config: Value) -> Json<Value> {
    Json(json!({ "config": config }))
}

async fn read(state: &AppState, caller: &Caller, p: &ConfigPath) -> ApiResult<Response> {
    let (group, option) = (p.group.as_deref(), p.option.as_deref());
    let config = if group == Some("security_compliance") {
        caller.enforce(
            state,
            "identity:get_security_compliance_domain_config",
            &p.target(),
        )?;
        state
            .identity
            .security_compliance_config(&p.domain_id, option)?
    } else {
        caller.enforce(state, "identity:get_domain_config", &p.target())?;
        state
            .identity
            .domain_config(&p.domain_id, group, option)
            .await?
    };
    require_domain(state, &p.domain_id).await?;
    Ok(config_json(config).into_response())
}

async fn handle(
    state: AppState,
    caller: Caller,
    method: Method,
    p: ConfigPath,
    body: Bytes,
) -> ApiResult<Response> {
    let (group, option) = (p.group.as_deref(), p.option.as_deref());
    match method {
        Method::PUT => {
            caller.enforce(&state, "identity:create_domain_config", &p.target())?;
            require_domain(&state, &p.domain_id).await?;
            let config = config_body(&body)?;
            let (shown, created) = state
                .identity
                .create_domain_config(&p.domain_id, &config)
                .await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, config_json(shown)).into_response())
        }
        Method::PATCH => {
            caller.enforce(&state, "identity:update_domain_config", &p.target())?;
            require_domain(&state, &p.domain_id).await?;
            let config = config_body(&body)?;
            let shown = state
                .identity
                .update_domain_config(&p.domain_id, &config, group, option)
                .await?;
            Ok(config_json(shown).into_response())
        }
        Method::DELETE => {
            caller.enforce(&state, "identity:delete_domain_config", &p.target())?;
            require_domain(&state, &p.domain_id).await?;
            state
                .identity
                .delete_domain_config(&p.domain_id, group, option)
                .await?;
            Ok(no_content())
        }
        _ => read(&state, &caller, &p).await,
    }
}

async fn whole(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path(domain_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let p = ConfigPath {
        domain_id,
        group: None,
        option: None,
    };
    handle(state, caller, method, p, body).await
}

async fn group(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((domain_id, group)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let p = ConfigPath {
        domain_id,
        group: Some(group),
        option: None,
    };
    handle(state, caller, method, p, body).await
}

async fn option(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((domain_id, group, option)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let p = ConfigPath {
        domain_id,
        group: Some(group),
        option: Some(option),
    };
    handle(state, caller, method, p, body).await
}

async fn defaults(
    state: &AppState,
    caller: &Caller,
    group: Option<&str>,
    option: Option<&str>,
) -> ApiResult<Response> {
    caller.enforce(state, "identity:get_domain_config_default", &Target::new())?;
    let config = state.identity.default_domain_config(group, option)?;
    Ok(config_json(config).into_response())
}

async fn all_defaults(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    defaults(&state, &caller, None, None).await
}

async fn group_defaults(
    State(state): State<AppState>,
    caller: Caller,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    defaults(&state, &caller, Some(&group), None).await
}

async fn option_defaults(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, option)): Path<(String, String)>,
) -> ApiResult<Response> {
    defaults(&state, &caller, Some(&group), Some(&option)).await
}
