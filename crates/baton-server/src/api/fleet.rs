//! `GET /v3/baton/fleet` (Baton's own API): the nodes sharing this database, their last
//! heartbeat, the keys they hold (fingerprints only) and whether those match the database's
//! shared sets. Policy `baton:get_fleet` (admin on the system by default).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::api::extract::Caller;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::AppState;

/// The fleet route; merged into the identity router.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/baton/fleet", get(fleet))
}

async fn fleet(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.enforce(&state, "baton:get_fleet", &Target::new())?;
    let view = state
        .fleet
        .view(&state.tokens)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(view))
}
