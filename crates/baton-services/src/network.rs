//! The network service (Neutron v2.0): ports, and the port binding (`binding:host_id`) that
//! Nova moves during a live migration and sets when it boots a server. Changing a binding is
//! admin-only (Neutron's `update_port:binding:host_id` policy), so Nova does it with its own
//! `[neutron]` credentials, not with the user's token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use baton_authtoken::{AuthTokenLayer, Authenticator, IdentityContext};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::common::{is_admin, new_uuid, project_of};

/// A port of the reference network service (Neutron's part).
#[derive(Debug, Clone, Serialize)]
pub struct Port {
    /// The port's id.
    pub id: String,
    /// Its network.
    pub network_id: String,
    /// The server it belongs to.
    pub device_id: String,
    /// The project that owns it.
    pub project_id: String,
    /// The compute host it is bound to (empty until bound; setting it is an admin call).
    pub binding_host_id: String,
    /// `DOWN` until bound to a host, then `ACTIVE`.
    pub status: String,
}

impl Port {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "network_id": self.network_id, "device_id": self.device_id,
            "device_owner": "compute:nova", "project_id": self.project_id,
            "tenant_id": self.project_id, "binding:host_id": self.binding_host_id,
            "binding:vif_type": if self.binding_host_id.is_empty() { "unbound" } else { "ovs" },
            "status": self.status, "admin_state_up": true,
        })
    }
}

/// The network service's data, shared by the handlers and the scenario runner.
#[derive(Clone, Default)]
pub struct NetworkState {
    /// Ports by id.
    pub ports: Arc<Mutex<BTreeMap<String, Port>>>,
}

impl NetworkState {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Port>> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A port of `device_id` bound to `host` (the runner's fixtures).
    pub fn seed_port(
        &self,
        project_id: &str,
        network_id: &str,
        device_id: &str,
        host: &str,
    ) -> String {
        let id = new_uuid();
        self.lock().insert(
            id.clone(),
            Port {
                id: id.clone(),
                network_id: network_id.into(),
                device_id: device_id.into(),
                project_id: project_id.into(),
                binding_host_id: host.into(),
                status: "ACTIVE".into(),
            },
        );
        id
    }

    /// A port by id.
    pub fn port(&self, id: &str) -> Option<Port> {
        self.lock().get(id).cloned()
    }
}

/// The network API behind the auth_token middleware `auth`.
pub fn router(state: NetworkState, auth: Authenticator) -> Router {
    Router::new()
        .route("/v2.0/ports", get(list_ports).post(create_port))
        .route("/v2.0/ports/{id}", get(show_port).put(update_port))
        .layer(AuthTokenLayer::new(auth))
        .with_state(state)
}

/// Neutron's error body.
fn neutron_error(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        Json(json!({"NeutronError": {"type": kind, "message": message, "detail": ""}})),
    )
        .into_response()
}

fn port_not_found(id: &str) -> Response {
    neutron_error(
        StatusCode::NOT_FOUND,
        "PortNotFound",
        format!("Port {id} could not be found."),
    )
}

fn visible(ctx: &IdentityContext, p: &Port) -> bool {
    is_admin(ctx) || ctx.project_id() == Some(p.project_id.as_str())
}

#[derive(Deserialize, Default)]
struct PortFilter {
    #[serde(default)]
    device_id: Option<String>,
}

async fn list_ports(
    State(s): State<NetworkState>,
    Extension(ctx): Extension<IdentityContext>,
    Query(f): Query<PortFilter>,
) -> Response {
    let ports = s.lock();
    let list: Vec<Value> = ports
        .values()
        .filter(|p| visible(&ctx, p))
        .filter(|p| f.device_id.as_deref().is_none_or(|d| d == p.device_id))
        .map(Port::to_json)
        .collect();
    Json(json!({ "ports": list })).into_response()
}

async fn show_port(
    State(s): State<NetworkState>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
) -> Response {
    match s.port(&id) {
        Some(p) if visible(&ctx, &p) => Json(json!({ "port": p.to_json() })).into_response(),
        _ => port_not_found(&id),
    }
}

#[derive(Deserialize)]
struct PortBody {
    port: Value,
}

fn binding_denied(action: &str) -> Response {
    neutron_error(
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
        format!("(rule:{action} and rule:{action}:binding:host_id) is disallowed by policy"),
    )
}

async fn create_port(
    State(s): State<NetworkState>,
    Extension(ctx): Extension<IdentityContext>,
    Json(body): Json<PortBody>,
) -> Response {
    let host = body
        .port
        .get("binding:host_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !host.is_empty() && !is_admin(&ctx) {
        return binding_denied("create_port");
    }
    let Some(network_id) = body.port.get("network_id").and_then(Value::as_str) else {
        return neutron_error(
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
            "Failed to parse request. Required attribute 'network_id' not specified".into(),
        );
    };
    let id = new_uuid();
    let port = Port {
        id: id.clone(),
        network_id: network_id.into(),
        device_id: body
            .port
            .get("device_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        project_id: project_of(&ctx),
        status: if host.is_empty() { "DOWN" } else { "ACTIVE" }.into(),
        binding_host_id: host,
    };
    let out = port.to_json();
    s.lock().insert(id, port);
    (StatusCode::CREATED, Json(json!({ "port": out }))).into_response()
}

async fn update_port(
    State(s): State<NetworkState>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
    Json(body): Json<PortBody>,
) -> Response {
    let mut ports = s.lock();
    let Some(p) = ports.get_mut(&id) else {
        return port_not_found(&id);
    };
    if !visible(&ctx, p) {
        return port_not_found(&id);
    }
    if let Some(host) = body.port.get("binding:host_id") {
        if !is_admin(&ctx) {
            return binding_denied("update_port");
        }
        p.binding_host_id = host.as_str().unwrap_or("").to_string();
        p.status = if p.binding_host_id.is_empty() {
            "DOWN"
        } else {
            "ACTIVE"
        }
        .into();
    }
    if let Some(dev) = body.port.get("device_id").and_then(Value::as_str) {
        p.device_id = dev.into();
    }
    (StatusCode::OK, Json(json!({ "port": p.to_json() }))).into_response()
}
