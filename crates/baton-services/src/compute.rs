//! The compute service (Nova, API v2.1): boot from volume (`POST /servers`), live migration
//! (`os-migrateLive`, block or shared storage), snapshot (`createImage`) and volume detach, each
//! a background task that calls Neutron, Cinder and Glance at the steps where Nova does, and an
//! instance-actions/task API to follow progress and read why a task failed.
//!
//! Who authenticates each onward call, as Nova does (`nova/service_auth.py`, `[service_user]`):
//!
//! * calls made for the user (Cinder, Glance, Neutron port listing/creation) carry the user's
//!   token as received, plus `X-Service-Token` from `[service_user]` when
//!   `send_service_user_token = true`: sessions from baton-authtoken's
//!   [`OnwardCalls::recorded_session_for`], whose [`SentLog`] tells the task record which service
//!   token each call carried;
//! * admin calls (Neutron port binding, which needs the admin role) use Nova's own `[neutron]`
//!   credentials and, as the Nova spec's "non-admin calls only" rule had it, no service token.
//!
//! The task keeps the user's token from the request, so the calls late in a long operation are
//! the ones that find it expired.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use baton_authtoken::{AuthTokenLayer, Authenticator, IdentityContext, OnwardCalls, SentLog};
use baton_client::{AuthConfig, EndpointFilter, Interface, Method, ServiceUserConfig, Session};
use baton_config::IniFile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::common::{
    error_message, fault, http_options, is_admin, new_uuid, plugin_with_stale_window, request_id,
};

/// A volume attached to a server.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeRef {
    /// The volume.
    pub volume_id: String,
    /// Its attachment to the server.
    pub attachment_id: String,
}

/// A server (Nova's instance) of the reference compute service.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// The server's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The project that owns it.
    pub project_id: String,
    /// The user who created it.
    pub user_id: String,
    /// `BUILD`, `ACTIVE`, `MIGRATING`, `ERROR`.
    pub status: String,
    /// What it is doing now (`migrating`, `spawning`, ...), Nova's `task_state`.
    pub task_state: Option<String>,
    /// The compute host it runs on.
    pub host: String,
    /// The network its port is on.
    pub network_id: String,
    /// Its attached volumes.
    pub volumes: Vec<VolumeRef>,
    /// Its ports' ids.
    pub ports: Vec<String>,
    /// Why it is in `ERROR`, if it is.
    pub fault: Option<String>,
}

impl Server {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "status": self.status,
            "tenant_id": self.project_id, "user_id": self.user_id,
            "OS-EXT-SRV-ATTR:host": self.host,
            "OS-EXT-STS:task_state": self.task_state,
            "os-extended-volumes:volumes_attached":
                self.volumes.iter().map(|v| json!({"id": v.volume_id})).collect::<Vec<_>>(),
            "fault": self.fault.as_ref().map(|m| json!({"message": m})),
        })
    }
}

/// Running, completed or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Still going.
    Running,
    /// Finished, every call accepted.
    Completed,
    /// Stopped by a refused or failed call.
    Failed,
}

/// Which token(s) authenticated a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallAuth {
    /// The user's token alone.
    User,
    /// The user's token plus the `[service_user]` service token.
    UserAndService,
    /// Nova's own `[neutron]` token (admin call), no service token.
    Own,
    /// The operation's continuation token (never expired) plus the service token.
    Continuation,
}

/// The services compute's operations call as the user: the audience of their continuation
/// tokens.
pub const CONTINUATION_AUDIENCE: [&str; 3] = ["volumev3", "image", "network"];

/// One call compute made for a task. Tokens appear only as SHA-256 fingerprints.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// When the call was sent.
    pub at: DateTime<Utc>,
    /// How long the answer took.
    pub duration_ms: f64,
    /// The task step it belongs to.
    pub step: String,
    /// Catalog service type of the callee (`network`, `volumev3`, `image`).
    pub service_type: String,
    /// The HTTP method.
    pub method: String,
    /// The path at the callee.
    pub path: String,
    /// Which token(s) it carried.
    pub auth: CallAuth,
    /// The user token's fingerprint, if sent.
    pub user_token: Option<String>,
    /// The user token was past its expiry when the call was sent.
    pub user_token_expired: bool,
    /// The service token's fingerprint, if sent.
    pub service_token: Option<String>,
    /// Compute's own token's fingerprint, for an admin call.
    pub own_token: Option<String>,
    /// HTTP status (0: no answer).
    pub status: u16,
    /// `x-auth-failure-reason` of a refusal.
    pub reason: Option<String>,
    /// The error message of a refusal.
    pub message: Option<String>,
}

/// Why a task failed.
#[derive(Debug, Clone, Serialize)]
pub struct TaskError {
    /// The step that failed.
    pub step: String,
    /// `METHOD path` of the failed call, if a call failed.
    pub call: Option<String>,
    /// The HTTP status (0: no answer).
    pub status: u16,
    /// The receiver's `x-auth-failure-reason`.
    pub reason: Option<String>,
    /// What went wrong, in one line.
    pub message: String,
}

/// A step of a task (Nova's instance-action event).
#[derive(Debug, Clone, Serialize)]
pub struct TaskEvent {
    /// The event's name: `compute_` and the step (`compute_pre_live_migration`, ...).
    pub event: String,
    /// When it started.
    pub start_time: DateTime<Utc>,
    /// When it finished, if it has.
    pub finish_time: Option<DateTime<Utc>>,
    /// `Success` or `Error`, once finished.
    pub result: Option<String>,
}

/// A background operation (Nova's instance action, with progress and the calls made).
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    /// The `x-openstack-request-id` of the request that started it.
    pub request_id: String,
    /// Nova's action name: `create`, `live-migration`, `createImage`, `detach_volume`.
    pub action: String,
    /// What was asked, in one line (`block migration to compute-2`, ...).
    pub detail: String,
    /// The server it acts on.
    pub server_id: String,
    /// The project of the requesting user.
    pub project_id: String,
    /// The requesting user.
    pub user_id: String,
    /// When it started.
    pub start_time: DateTime<Utc>,
    /// When it finished, if it has.
    pub finish_time: Option<DateTime<Utc>>,
    /// Running, completed or failed.
    pub state: TaskState,
    /// Percent done.
    pub progress: u8,
    /// The current step.
    pub step: String,
    /// The steps so far.
    pub events: Vec<TaskEvent>,
    /// Every call made to the other services.
    pub calls: Vec<CallRecord>,
    /// Why it failed, if it did.
    pub error: Option<TaskError>,
    /// The fingerprint of the user token the task was started with.
    pub user_token: String,
    /// When that token expires: calls after it need a service token and allow_expired.
    pub user_token_expires_at: DateTime<Utc>,
    /// The `[service_user]` the task sent service tokens as, if any.
    pub service_user: Option<String>,
    /// The image a snapshot created.
    pub image_id: Option<String>,
}

impl Task {
    fn summary(&self) -> Value {
        json!({
            "request_id": self.request_id, "action": self.action, "detail": self.detail,
            "instance_uuid": self.server_id, "project_id": self.project_id,
            "user_id": self.user_id, "start_time": self.start_time,
            "finish_time": self.finish_time, "state": self.state,
            "progress": self.progress, "step": self.step,
            "message": self.error.as_ref().map(|e| match &e.reason {
                Some(r) => format!("{} {r}: {}", e.status, e.message),
                None => format!("{} {}", e.status, e.message),
            }),
        })
    }

    fn full(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["instance_uuid"] = json!(self.server_id);
        v
    }
}

/// Compute's database: servers and tasks. Survives a restart of the service (a new
/// configuration), like Nova's database does.
#[derive(Debug, Default)]
pub struct ComputeData {
    /// By server id.
    pub servers: BTreeMap<String, Server>,
    /// By request id.
    pub tasks: BTreeMap<String, Task>,
}

/// Compute's data, shared by the handlers, the tasks and the scenario runner.
#[derive(Clone, Default)]
pub struct ComputeState {
    /// Servers and tasks.
    pub data: Arc<Mutex<ComputeData>>,
}

impl ComputeState {
    fn lock(&self) -> std::sync::MutexGuard<'_, ComputeData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A task by request id.
    pub fn task(&self, request_id: &str) -> Option<Task> {
        self.lock().tasks.get(request_id).cloned()
    }

    /// A server by id.
    pub fn server(&self, id: &str) -> Option<Server> {
        self.lock().servers.get(id).cloned()
    }

    /// How many tasks are still running.
    pub fn running_tasks(&self) -> usize {
        self.lock()
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Running)
            .count()
    }

    /// An `ACTIVE` server (the runner's fixtures).
    pub fn seed_server(&self, server: Server) {
        self.lock().servers.insert(server.id.clone(), server);
    }

    fn update_task(&self, id: &str, f: impl FnOnce(&mut Task)) {
        if let Some(t) = self.lock().tasks.get_mut(id) {
            f(t);
        }
    }

    fn update_server(&self, id: &str, f: impl FnOnce(&mut Server)) {
        if let Some(s) = self.lock().servers.get_mut(id) {
            f(s);
        }
    }
}

/// Settings of one compute process.
#[derive(Debug, Clone)]
pub struct ComputeSettings {
    /// The host its servers run on.
    pub host: String,
    /// Where a live migration goes when the request names no host.
    pub other_host: String,
    /// Length of the long phase of every operation (memory copy, snapshot, scheduling).
    pub operation: Duration,
    /// How long before expiry its own and its service user's tokens are renewed.
    pub stale_window: Duration,
}

/// Nova's onward-call machinery for one configuration.
pub struct Outbound {
    /// Calls as the request's user, with `[service_user]`'s token when configured.
    onward: OnwardCalls,
    /// Who `[service_user]` is (for the task record), when configured.
    service_user: Option<String>,
    /// Nova's own `[neutron]` session (admin calls).
    neutron_admin: Session,
    /// `[baton] continuation_audience`: when set, each operation asks for a continuation token
    /// at its start and uses it for every call as the user.
    continuation_audience: Vec<String>,
}

impl Outbound {
    /// From nova.conf: `[service_user]` (optional) and `[neutron]` (admin credentials). Nothing
    /// is checked at start: a `[service_user]` without the `service` role is one of the
    /// set-ups the demo runs.
    pub fn from_ini(ini: &IniFile, stale: Duration) -> anyhow::Result<Outbound> {
        let service_user = ServiceUserConfig::from_ini(ini, "service_user")?;
        let neutron = AuthConfig::from_ini(ini, "neutron")?
            .ok_or_else(|| anyhow::anyhow!("[neutron] needs auth_type and credentials"))?;
        let neutron_admin = Session::builder()
            .http_options(http_options())
            .build(plugin_with_stale_window(&neutron, stale))?;
        let onward = OnwardCalls::with_http(
            neutron_admin.http().clone(),
            service_user
                .as_ref()
                .map(|cfg| plugin_with_stale_window(&cfg.auth, stale)),
        );
        let continuation_audience = ini
            .reader("baton")
            .list("continuation_audience")?
            .unwrap_or_default();
        Ok(Outbound {
            continuation_audience,
            onward,
            service_user: service_user.map(|cfg| match &cfg.auth.credentials {
                baton_client::Credentials::Password { user, .. } => user.describe(),
                _ => cfg.auth.auth_type.as_str().to_string(),
            }),
            neutron_admin,
        })
    }
}

#[derive(Clone)]
struct App {
    state: ComputeState,
    out: Arc<Outbound>,
    settings: Arc<ComputeSettings>,
}

/// The router, behind the auth_token layer.
pub fn router(
    state: ComputeState,
    auth: Authenticator,
    out: Outbound,
    settings: ComputeSettings,
) -> Router {
    let app = App {
        state,
        out: Arc::new(out),
        settings: Arc::new(settings),
    };
    Router::new()
        .route("/v2.1/servers", post(create_server))
        .route("/v2.1/servers/{id}", get(show_server))
        .route("/v2.1/servers/{id}/action", post(server_action))
        .route(
            "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
            get(show_volume_attachment).delete(detach_volume),
        )
        .route("/v2.1/servers/{id}/os-instance-actions", get(list_actions))
        .route(
            "/v2.1/servers/{id}/os-instance-actions/{request_id}",
            get(show_action),
        )
        .route("/v2.1/tasks", get(list_tasks))
        .route("/v2.1/tasks/{request_id}", get(show_task))
        .layer(AuthTokenLayer::new(auth))
        .with_state(app)
}

fn server_not_found(id: &str) -> Response {
    fault(
        StatusCode::NOT_FOUND,
        format!("Instance {id} could not be found."),
    )
}

/// The server, if the caller's project owns it (or the caller is admin).
fn owned(app: &App, ctx: &IdentityContext, id: &str) -> Option<Server> {
    app.state
        .server(id)
        .filter(|s| is_admin(ctx) || ctx.project_id() == Some(s.project_id.as_str()))
}

async fn show_server(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
) -> Response {
    match owned(&app, &ctx, &id) {
        Some(s) => Json(json!({ "server": s.to_json() })).into_response(),
        None => server_not_found(&id),
    }
}

#[derive(Deserialize)]
struct CreateServer {
    server: CreateServerBody,
}

#[derive(Deserialize)]
struct CreateServerBody {
    name: String,
    #[serde(default)]
    block_device_mapping_v2: Vec<Value>,
    #[serde(default)]
    networks: Vec<Value>,
}

async fn create_server(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Json(body): Json<CreateServer>,
) -> Response {
    let b = body.server;
    let boot = b.block_device_mapping_v2.iter().find(|m| {
        m.get("boot_index").and_then(Value::as_i64) == Some(0)
            || m.get("boot_index").and_then(Value::as_str) == Some("0")
    });
    let Some(volume_id) = boot
        .filter(|m| m.get("source_type").and_then(Value::as_str) == Some("volume"))
        .and_then(|m| m.get("uuid").and_then(Value::as_str))
    else {
        return fault(
            StatusCode::BAD_REQUEST,
            "This reference compute boots from volume only: give block_device_mapping_v2 with source_type volume, destination_type volume, boot_index 0 and the volume's uuid.",
        );
    };
    let Some(network_id) = b
        .networks
        .first()
        .and_then(|n| n.get("uuid").and_then(Value::as_str))
    else {
        return fault(
            StatusCode::BAD_REQUEST,
            "Give networks: [{\"uuid\": <network id>}].",
        );
    };
    let server = Server {
        id: new_uuid(),
        name: b.name,
        project_id: ctx.project_id().unwrap_or_default().into(),
        user_id: ctx.user_id().unwrap_or_default().into(),
        status: "BUILD".into(),
        task_state: Some("scheduling".into()),
        host: app.settings.host.clone(),
        network_id: network_id.into(),
        volumes: vec![],
        ports: vec![],
        fault: None,
    };
    let out = server.to_json();
    app.state.seed_server(server.clone());
    let op = Operation::BootFromVolume {
        volume_id: volume_id.to_string(),
    };
    match start_task(&app, &ctx, &server, op) {
        Ok(rid) => accepted(&rid, json!({ "server": out, "request_id": rid })),
        Err(why) => fault(StatusCode::UNAUTHORIZED, why),
    }
}

fn accepted(request_id: &str, body: Value) -> Response {
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert("x-openstack-request-id", v.clone());
        resp.headers_mut().insert("x-compute-request-id", v);
    }
    resp
}

async fn server_action(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let Some(server) = owned(&app, &ctx, &id) else {
        return server_not_found(&id);
    };
    let op = if let Some(m) = body.get("os-migrateLive") {
        if !is_admin(&ctx) && !ctx.roles().iter().any(|r| r == "member") {
            return fault(
                StatusCode::FORBIDDEN,
                "Policy doesn't allow os_compute_api:os-migrate-server:migrate_live to be performed.",
            );
        }
        // "auto" picks shared storage for a volume-backed server, as Nova does.
        let block = match m.get("block_migration") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "auto" => server.volumes.is_empty(),
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let dest = m
            .get("host")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                if server.host == app.settings.other_host {
                    app.settings.host.clone()
                } else {
                    app.settings.other_host.clone()
                }
            });
        if dest == server.host {
            return fault(
                StatusCode::BAD_REQUEST,
                format!("The target host {dest} is the instance's current host."),
            );
        }
        Operation::LiveMigrate { block, dest }
    } else if let Some(c) = body.get("createImage") {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("snapshot")
            .to_string();
        Operation::Snapshot { name }
    } else {
        return fault(
            StatusCode::BAD_REQUEST,
            "This reference compute knows the actions os-migrateLive and createImage.",
        );
    };
    if server.status != "ACTIVE" {
        return fault(
            StatusCode::CONFLICT,
            format!(
                "Cannot '{}' instance {} while it is in vm_state {}",
                op.action(),
                server.id,
                server.status.to_lowercase()
            ),
        );
    }
    match start_task(&app, &ctx, &server, op) {
        Ok(rid) => accepted(&rid, json!({ "request_id": rid })),
        Err(why) => fault(StatusCode::UNAUTHORIZED, why),
    }
}

/// Which attachment the server uses for a volume (microversion 2.89 shows `attachment_id`):
/// what Cinder asks before it lets a user delete an attachment.
async fn show_volume_attachment(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path((id, volume_id)): Path<(String, String)>,
) -> Response {
    let Some(server) = owned(&app, &ctx, &id) else {
        return server_not_found(&id);
    };
    match server.volumes.iter().find(|v| v.volume_id == volume_id) {
        Some(v) => Json(json!({"volumeAttachment": {
            "id": v.volume_id, "volumeId": v.volume_id, "serverId": server.id,
            "attachment_id": v.attachment_id, "device": "/dev/vda",
            "delete_on_termination": false}}))
        .into_response(),
        None => fault(
            StatusCode::NOT_FOUND,
            format!("Instance {id} is not attached to volume {volume_id}."),
        ),
    }
}

async fn detach_volume(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path((id, volume_id)): Path<(String, String)>,
) -> Response {
    let Some(server) = owned(&app, &ctx, &id) else {
        return server_not_found(&id);
    };
    let Some(v) = server.volumes.iter().find(|v| v.volume_id == volume_id) else {
        return fault(
            StatusCode::NOT_FOUND,
            format!("volume_id not found: {volume_id}"),
        );
    };
    if server.task_state.is_some() {
        return fault(
            StatusCode::CONFLICT,
            format!(
                "Cannot 'detach_volume' instance {id} while it is in task_state {}",
                server.task_state.as_deref().unwrap_or("")
            ),
        );
    }
    let op = Operation::Detach {
        volume_id: v.volume_id.clone(),
        attachment_id: v.attachment_id.clone(),
    };
    match start_task(&app, &ctx, &server, op) {
        Ok(rid) => accepted(&rid, json!({ "request_id": rid })),
        Err(why) => fault(StatusCode::UNAUTHORIZED, why),
    }
}

async fn list_actions(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
) -> Response {
    if owned(&app, &ctx, &id).is_none() {
        return server_not_found(&id);
    }
    let d = app.state.lock();
    let mut tasks: Vec<&Task> = d.tasks.values().filter(|t| t.server_id == id).collect();
    tasks.sort_by_key(|t| t.start_time);
    let actions: Vec<Value> = tasks.into_iter().map(Task::summary).collect();
    Json(json!({ "instanceActions": actions })).into_response()
}

async fn show_action(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path((id, rid)): Path<(String, String)>,
) -> Response {
    if owned(&app, &ctx, &id).is_none() {
        return server_not_found(&id);
    }
    match app.state.task(&rid) {
        Some(t) if t.server_id == id => Json(json!({ "instanceAction": t.full() })).into_response(),
        _ => fault(
            StatusCode::NOT_FOUND,
            format!("Action for request_id {rid} on instance {id} not found"),
        ),
    }
}

fn task_visible(ctx: &IdentityContext, t: &Task) -> bool {
    is_admin(ctx) || ctx.project_id() == Some(t.project_id.as_str())
}

async fn list_tasks(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
) -> Response {
    let d = app.state.lock();
    let mut tasks: Vec<&Task> = d.tasks.values().filter(|t| task_visible(&ctx, t)).collect();
    tasks.sort_by_key(|t| t.start_time);
    let tasks: Vec<Value> = tasks.into_iter().map(Task::summary).collect();
    Json(json!({ "tasks": tasks })).into_response()
}

async fn show_task(
    State(app): State<App>,
    Extension(ctx): Extension<IdentityContext>,
    Path(rid): Path<String>,
) -> Response {
    match app.state.task(&rid) {
        Some(t) if task_visible(&ctx, &t) => Json(json!({ "task": t.full() })).into_response(),
        _ => fault(
            StatusCode::NOT_FOUND,
            format!("Task {rid} could not be found."),
        ),
    }
}

// ----- tasks ---------------------------------------------------------------------------------

/// What a task does.
#[derive(Debug, Clone)]
enum Operation {
    BootFromVolume {
        volume_id: String,
    },
    LiveMigrate {
        block: bool,
        dest: String,
    },
    Snapshot {
        name: String,
    },
    Detach {
        volume_id: String,
        attachment_id: String,
    },
}

impl Operation {
    fn action(&self) -> &'static str {
        match self {
            Operation::BootFromVolume { .. } => "create",
            Operation::LiveMigrate { .. } => "live-migration",
            Operation::Snapshot { .. } => "createImage",
            Operation::Detach { .. } => "detach_volume",
        }
    }

    fn detail(&self) -> String {
        match self {
            Operation::BootFromVolume { .. } => "boot from volume".into(),
            Operation::LiveMigrate { block: true, dest } => format!("block migration to {dest}"),
            Operation::LiveMigrate { block: false, dest } => {
                format!("shared-storage migration to {dest}")
            }
            Operation::Snapshot { name } => format!("snapshot {name:?}"),
            Operation::Detach { volume_id, .. } => format!("detach volume {volume_id}"),
        }
    }

    fn task_state(&self) -> &'static str {
        match self {
            Operation::BootFromVolume { .. } => "scheduling",
            Operation::LiveMigrate { .. } => "migrating",
            Operation::Snapshot { .. } => "image_snapshot",
            Operation::Detach { .. } => "detaching",
        }
    }
}

fn start_task(
    app: &App,
    ctx: &IdentityContext,
    server: &Server,
    op: Operation,
) -> Result<String, &'static str> {
    // The layer forwards only confirmed users (no delay_auth_decision).
    let Some(user) = ctx.user.as_ref() else {
        return Err("the request has no confirmed user token");
    };
    let access = user.access();
    let rid = request_id();
    let task = Task {
        request_id: rid.clone(),
        action: op.action().into(),
        detail: op.detail(),
        server_id: server.id.clone(),
        project_id: server.project_id.clone(),
        user_id: ctx.user_id().unwrap_or_default().into(),
        start_time: Utc::now(),
        finish_time: None,
        state: TaskState::Running,
        progress: 0,
        step: "accepted".into(),
        events: vec![],
        calls: vec![],
        error: None,
        user_token: access.token().fingerprint(),
        user_token_expires_at: access.expires_at(),
        service_user: app.out.service_user.clone(),
        image_id: None,
    };
    {
        let mut d = app.state.lock();
        d.tasks.insert(rid.clone(), task);
        if let Some(s) = d.servers.get_mut(&server.id) {
            s.task_state = Some(op.task_state().into());
            if matches!(op, Operation::LiveMigrate { .. }) {
                s.status = "MIGRATING".into();
            }
        }
    }
    let run = TaskRun {
        state: app.state.clone(),
        out: app.out.clone(),
        settings: app.settings.clone(),
        request_id: rid.clone(),
        server_id: server.id.clone(),
        ctx: ctx.clone(),
        operation: tokio::sync::OnceCell::new(),
    };
    tokio::spawn(async move { run.run(op).await });
    Ok(rid)
}

/// Why an onward call failed.
enum CallError {
    /// No endpoint for the service in the catalog.
    NoEndpoint(baton_client::Error),
    /// No answer: no credentials, no connection.
    NotSent(baton_client::Error),
    /// An error status, with `x-auth-failure-reason` and the message of the body.
    Refused {
        status: u16,
        reason: Option<String>,
        message: String,
    },
}

/// Sends `method path` (a path with an optional query) to the internal endpoint of
/// `service_type` in the catalog of `session`'s token; `shown_path` becomes the whole path (the
/// endpoint's `/v3` included). The status and JSON body of a success.
async fn send(
    session: &Session,
    service_type: &str,
    method: Method,
    path: &str,
    body: Option<Body>,
    shown_path: &mut String,
) -> Result<(u16, Value), CallError> {
    let filter = EndpointFilter::new(service_type).interface(Interface::Internal);
    let (path_only, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let base = session
        .get_endpoint(&filter)
        .await
        .map_err(CallError::NoEndpoint)?;
    let url = baton_client::discover::join_path(&base, path_only);
    *shown_path = match query {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req = session.request(method, url, "").raise_for_status(false);
    if let Some(q) = query {
        for kv in q.split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            req = req.query(k, v);
        }
    }
    req = match body {
        Some(Body::Json(v)) => req.json(&v),
        Some(Body::Bytes(b)) => req
            .header("content-type", "application/octet-stream")
            .body(b),
        None => req,
    };
    let resp = req.send().await.map_err(CallError::NotSent)?;
    let status = resp.status().as_u16();
    let reason = resp
        .headers()
        .get(baton_client::AUTH_FAILURE_REASON_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp.bytes().await.unwrap_or_default();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status >= 400 {
        let message = error_message(&value)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        return Err(CallError::Refused {
            status,
            reason,
            message,
        });
    }
    Ok((status, value))
}

/// A failed step.
struct Failure(TaskError);

type StepResult<T> = Result<T, Failure>;

/// Who a call is made as.
#[derive(Clone, Copy)]
enum As {
    User,
    Admin,
}

struct TaskRun {
    state: ComputeState,
    out: Arc<Outbound>,
    settings: Arc<ComputeSettings>,
    request_id: String,
    server_id: String,
    /// The request that started the task: its user's token is used for every call for the
    /// user, as Nova keeps the request context with the task.
    ctx: IdentityContext,
    /// With `[baton] continuation_audience`: the operation's session, made when it starts.
    operation: tokio::sync::OnceCell<Result<(Session, SentLog), String>>,
}

impl TaskRun {
    async fn run(self, op: Operation) {
        // A long operation's continuation token is asked for now, while the user's token is
        // valid (the request that started the task was just authenticated).
        let audience = &self.out.continuation_audience;
        if !audience.is_empty() {
            let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
            let made = self
                .out
                .onward
                .recorded_operation_session_for(&self.ctx, &audience)
                .await
                .map_err(|e| format!("no session for the operation: {e}"));
            let _ = self.operation.set(made);
        }
        let result = match &op {
            Operation::BootFromVolume { volume_id } => self.boot(volume_id).await,
            Operation::LiveMigrate { block, dest } => self.live_migrate(*block, dest).await,
            Operation::Snapshot { name } => self.snapshot(name).await,
            Operation::Detach {
                volume_id,
                attachment_id,
            } => self.detach(volume_id, attachment_id).await,
        };
        let now = Utc::now();
        match result {
            Ok(()) => {
                self.state.update_task(&self.request_id, |t| {
                    t.state = TaskState::Completed;
                    t.progress = 100;
                    t.step = "done".into();
                    t.finish_time = Some(now);
                    close_event(t, "Success", now);
                });
                self.state.update_server(&self.server_id, |s| {
                    s.task_state = None;
                    s.status = "ACTIVE".into();
                });
            }
            Err(Failure(e)) => {
                tracing::info!(
                    request_id = %self.request_id,
                    action = op.action(),
                    step = %e.step,
                    status = e.status,
                    reason = e.reason.as_deref().unwrap_or("-"),
                    "task failed"
                );
                let message = e.message.clone();
                self.state.update_task(&self.request_id, |t| {
                    t.state = TaskState::Failed;
                    t.finish_time = Some(now);
                    t.error = Some(e);
                    close_event(t, "Error", now);
                });
                // A failed build or migration leaves the server in ERROR, as Nova does; a failed
                // snapshot or detach leaves it as it was.
                let error_state = matches!(
                    op,
                    Operation::BootFromVolume { .. } | Operation::LiveMigrate { .. }
                );
                self.state.update_server(&self.server_id, |s| {
                    s.task_state = None;
                    if error_state {
                        s.status = "ERROR".into();
                        s.fault = Some(message);
                    }
                });
            }
        }
    }

    fn step(&self, name: &str, progress: u8) {
        let now = Utc::now();
        self.state.update_task(&self.request_id, |t| {
            close_event(t, "Success", now);
            t.step = name.into();
            t.progress = t.progress.max(progress);
            t.events.push(TaskEvent {
                event: format!("compute_{name}"),
                start_time: now,
                finish_time: None,
                result: None,
            });
        });
    }

    /// A long phase without calls: progress moves from `from` to `to` over `length`.
    async fn phase(&self, name: &str, from: u8, to: u8, length: Duration) {
        self.step(name, from);
        let ticks = 20u32;
        for i in 1..=ticks {
            tokio::time::sleep(length / ticks).await;
            let p = from as u32 + (to as u32 - from as u32) * i / ticks;
            self.state
                .update_task(&self.request_id, |t| t.progress = t.progress.max(p as u8));
        }
    }

    /// One onward call, recorded in the task.
    async fn call(
        &self,
        who: As,
        service_type: &str,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> StepResult<Value> {
        let step = self
            .state
            .task(&self.request_id)
            .map(|t| t.step)
            .unwrap_or_default();
        let at = Utc::now();
        let started = Instant::now();
        let mut record = CallRecord {
            at,
            duration_ms: 0.0,
            step: step.clone(),
            service_type: service_type.into(),
            method: method.to_string(),
            path: path.into(),
            auth: CallAuth::User,
            user_token: None,
            user_token_expired: false,
            service_token: None,
            own_token: None,
            status: 0,
            reason: None,
            message: None,
        };
        let (session, log) = match who {
            As::User => match self.user_session(&mut record) {
                Ok((session, log)) => (session, Some(log)),
                Err(message) => return Err(self.fail_call(record, started, 0, None, message)),
            },
            As::Admin => {
                record.auth = CallAuth::Own;
                match self.out.neutron_admin.get_token().await {
                    Ok(t) => record.own_token = Some(t.fingerprint()),
                    Err(e) => {
                        return Err(self.fail_call(
                            record,
                            started,
                            0,
                            None,
                            format!("compute's [neutron] credentials could not authenticate: {e}"),
                        ));
                    }
                }
                (self.out.neutron_admin.clone(), None)
            }
        };
        let outcome = send(&session, service_type, method, path, body, &mut record.path).await;
        // The service token the request carried (the one of the retry after a 401).
        let sent = log.and_then(|log| log.last());
        record.service_token = sent.as_ref().and_then(|c| c.service_token.clone());
        if record.auth == CallAuth::Continuation {
            // What was sent as the user's token: the operation's continuation token.
            if let Some(c) = &sent {
                record.user_token = Some(c.user_token.clone());
            }
        }
        match outcome {
            Ok((status, value)) => {
                record.status = status;
                record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                self.state
                    .update_task(&self.request_id, |t| t.calls.push(record));
                Ok(value)
            }
            Err(CallError::NotSent(e))
                if record.auth == CallAuth::UserAndService && sent.is_none() =>
            {
                // No credentials were put on the request: the service user's plugin failed.
                let message = format!("the [service_user] could not authenticate: {e}");
                Err(self.fail_call(record, started, 0, None, message))
            }
            Err(CallError::NotSent(e) | CallError::NoEndpoint(e)) => {
                Err(self.fail_call(record, started, 0, None, e.to_string()))
            }
            Err(CallError::Refused {
                status,
                reason,
                message,
            }) => Err(self.fail_call(record, started, status, reason, message)),
        }
    }

    /// The session acting as the task's user ([`OnwardCalls::recorded_session_for`]), with the
    /// user token written into `record` (the log tells the service token after the call); the
    /// error is the record's message.
    fn user_session(&self, record: &mut CallRecord) -> Result<(Session, SentLog), String> {
        let onward = &self.out.onward;
        let (session, log) = match self.operation.get() {
            Some(made) => made.clone()?,
            None => onward
                .recorded_session_for(&self.ctx)
                .map_err(|e| e.to_string())?,
        };
        if self.operation.get().is_some() {
            record.auth = CallAuth::Continuation;
        } else if onward.sends_service_token() {
            record.auth = CallAuth::UserAndService;
        }
        if let Some(user) = &self.ctx.user {
            record.user_token = Some(user.access().token().fingerprint());
            record.user_token_expired = user.expires_at <= record.at;
        }
        Ok((session, log))
    }

    fn fail_call(
        &self,
        mut record: CallRecord,
        started: Instant,
        status: u16,
        reason: Option<String>,
        message: String,
    ) -> Failure {
        record.status = status;
        record.reason = reason.clone();
        record.message = Some(message.clone());
        record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let error = TaskError {
            step: record.step.clone(),
            call: Some(format!(
                "{} {} ({})",
                record.method, record.path, record.service_type
            )),
            status,
            reason,
            message,
        };
        self.state
            .update_task(&self.request_id, |t| t.calls.push(record));
        Failure(error)
    }

    fn server(&self) -> Server {
        self.state
            .server(&self.server_id)
            .expect("the task's server exists")
    }

    async fn boot(&self, volume_id: &str) -> StepResult<()> {
        let host = self.settings.host.clone();
        let att_id = self.reserve_volume(volume_id).await?;
        self.phase("schedule_and_build", 10, 60, self.settings.operation)
            .await;
        self.allocate_network(&host).await?;
        self.step("attach_volume", 75);
        self.state.update_server(&self.server_id, |s| {
            s.task_state = Some("block_device_mapping".into())
        });
        self.call(
            As::User,
            "volumev3",
            Method::PUT,
            &format!("/attachments/{att_id}"),
            Some(Body::Json(
                json!({"attachment": {"connector": connector(&host)}}),
            )),
        )
        .await?;
        self.call(
            As::User,
            "volumev3",
            Method::POST,
            &format!("/attachments/{att_id}/action"),
            Some(Body::Json(json!({"os-complete": null}))),
        )
        .await?;
        self.state
            .update_server(&self.server_id, |s| s.task_state = Some("spawning".into()));
        self.phase("spawn", 85, 99, self.settings.operation / 10)
            .await;
        Ok(())
    }

    /// Boot step 1: the volume must be available; an attachment for the server reserves it.
    /// Gives the attachment's id.
    async fn reserve_volume(&self, volume_id: &str) -> StepResult<String> {
        self.step("reserve_volume", 5);
        let vol = self
            .call(
                As::User,
                "volumev3",
                Method::GET,
                &format!("/volumes/{volume_id}"),
                None,
            )
            .await?;
        let status = vol["volume"]["status"].as_str().unwrap_or("");
        if status != "available" {
            return Err(Failure(TaskError {
                step: "reserve_volume".into(),
                call: None,
                status: 0,
                reason: None,
                message: format!("volume {volume_id} is {status}, not available"),
            }));
        }
        let att = self
            .call(
                As::User,
                "volumev3",
                Method::POST,
                "/attachments",
                Some(Body::Json(json!({"attachment": {
                    "volume_uuid": volume_id, "instance_uuid": self.server_id}}))),
            )
            .await?;
        let att_id = att["attachment"]["id"].as_str().unwrap_or("").to_string();
        self.state.update_server(&self.server_id, |s| {
            s.volumes.push(VolumeRef {
                volume_id: volume_id.into(),
                attachment_id: att_id.clone(),
            })
        });
        Ok(att_id)
    }

    /// Boot step 3: a port on the server's network, bound to this host (an admin call).
    async fn allocate_network(&self, host: &str) -> StepResult<()> {
        self.step("allocate_network", 65);
        self.state.update_server(&self.server_id, |s| {
            s.task_state = Some("networking".into())
        });
        let network_id = self.server().network_id;
        let port = self
            .call(
                As::User,
                "network",
                Method::POST,
                "/v2.0/ports",
                Some(Body::Json(json!({"port": {
                    "network_id": network_id, "device_id": self.server_id}}))),
            )
            .await?;
        let port_id = port["port"]["id"].as_str().unwrap_or("").to_string();
        self.state
            .update_server(&self.server_id, |s| s.ports.push(port_id.clone()));
        self.call(
            As::Admin,
            "network",
            Method::PUT,
            &format!("/v2.0/ports/{port_id}"),
            Some(Body::Json(json!({"port": {"binding:host_id": host}}))),
        )
        .await?;
        Ok(())
    }

    async fn live_migrate(&self, block: bool, dest: &str) -> StepResult<()> {
        let server = self.server();
        self.step("check_can_live_migrate", 2);
        self.call(
            As::User,
            "network",
            Method::GET,
            &format!("/v2.0/ports?device_id={}", self.server_id),
            None,
        )
        .await?;
        let new_attachments = self.pre_live_migration(&server, dest).await?;
        let d = self.settings.operation;
        if block {
            self.phase("copy_disk", 10, 50, d.mul_f64(0.6)).await;
            self.phase("migrate_memory", 50, 90, d.mul_f64(0.6)).await;
        } else {
            self.phase("migrate_memory", 10, 90, d).await;
        }
        self.post_live_migration(&server, dest, &new_attachments)
            .await?;
        // The server now runs on the destination with the new attachments (Nova updates the
        // block device mappings before it deletes the source host's attachments).
        let dest_host = dest.to_string();
        self.state.update_server(&self.server_id, |s| {
            s.host = dest_host;
            for v in &mut s.volumes {
                if let Some((_, new_id)) = new_attachments
                    .iter()
                    .find(|(o, _)| o.volume_id == v.volume_id)
                {
                    v.attachment_id = new_id.clone();
                }
            }
        });
        for (old, _) in &new_attachments {
            // The source attachment still has a live connection: Cinder lets it go for a
            // service request, or after asking compute which attachment the server uses.
            self.call(
                As::User,
                "volumev3",
                Method::DELETE,
                &format!("/attachments/{}", old.attachment_id),
                None,
            )
            .await?;
        }
        Ok(())
    }

    /// Live migration: a new attachment of each volume for the destination host, with its
    /// connector. Gives the old volume references with their new attachment ids.
    async fn pre_live_migration(
        &self,
        server: &Server,
        dest: &str,
    ) -> StepResult<Vec<(VolumeRef, String)>> {
        self.step("pre_live_migration", 5);
        let mut new_attachments = Vec::new();
        for v in &server.volumes {
            let att = self
                .call(
                    As::User,
                    "volumev3",
                    Method::POST,
                    "/attachments",
                    Some(Body::Json(json!({"attachment": {
                        "volume_uuid": v.volume_id, "instance_uuid": self.server_id}}))),
                )
                .await?;
            let new_id = att["attachment"]["id"].as_str().unwrap_or("").to_string();
            self.call(
                As::User,
                "volumev3",
                Method::PUT,
                &format!("/attachments/{new_id}"),
                Some(Body::Json(
                    json!({"attachment": {"connector": connector(dest)}}),
                )),
            )
            .await?;
            new_attachments.push((v.clone(), new_id));
        }
        Ok(new_attachments)
    }

    /// Live migration: the ports bound to the destination host, then the new attachments
    /// completed.
    async fn post_live_migration(
        &self,
        server: &Server,
        dest: &str,
        new_attachments: &[(VolumeRef, String)],
    ) -> StepResult<()> {
        self.step("post_live_migration", 92);
        for port in &server.ports {
            self.call(
                As::Admin,
                "network",
                Method::PUT,
                &format!("/v2.0/ports/{port}"),
                Some(Body::Json(json!({"port": {"binding:host_id": dest}}))),
            )
            .await?;
        }
        self.call(
            As::User,
            "network",
            Method::GET,
            &format!("/v2.0/ports?device_id={}", self.server_id),
            None,
        )
        .await?;
        for (_, new_id) in new_attachments {
            self.call(
                As::User,
                "volumev3",
                Method::POST,
                &format!("/attachments/{new_id}/action"),
                Some(Body::Json(json!({"os-complete": null}))),
            )
            .await?;
        }
        Ok(())
    }

    async fn snapshot(&self, name: &str) -> StepResult<()> {
        self.step("create_image", 2);
        let image = self
            .call(
                As::User,
                "image",
                Method::POST,
                "/v2/images",
                Some(Body::Json(json!({
                    "name": name, "disk_format": "qcow2", "container_format": "bare"}))),
            )
            .await?;
        let image_id = image["id"].as_str().unwrap_or("").to_string();
        self.state
            .update_task(&self.request_id, |t| t.image_id = Some(image_id.clone()));
        self.state.update_server(&self.server_id, |s| {
            s.task_state = Some("image_pending_upload".into())
        });
        self.phase("snapshot", 5, 90, self.settings.operation).await;
        self.step("upload", 92);
        self.state.update_server(&self.server_id, |s| {
            s.task_state = Some("image_uploading".into())
        });
        // Stand-in disk contents: what matters is that the upload comes late.
        let data = vec![0u8; 64 * 1024];
        self.call(
            As::User,
            "image",
            Method::PUT,
            &format!("/v2/images/{image_id}/file"),
            Some(Body::Bytes(data)),
        )
        .await?;
        self.step("finalize", 97);
        let img = self
            .call(
                As::User,
                "image",
                Method::GET,
                &format!("/v2/images/{image_id}"),
                None,
            )
            .await?;
        if img["status"].as_str() != Some("active") {
            return Err(Failure(TaskError {
                step: "finalize".into(),
                call: None,
                status: 0,
                reason: None,
                message: format!("image {image_id} is {}, not active", img["status"]),
            }));
        }
        Ok(())
    }

    async fn detach(&self, volume_id: &str, attachment_id: &str) -> StepResult<()> {
        self.step("detach_volume", 10);
        self.call(
            As::User,
            "volumev3",
            Method::DELETE,
            &format!("/attachments/{attachment_id}"),
            None,
        )
        .await?;
        let vid = volume_id.to_string();
        self.state.update_server(&self.server_id, |s| {
            s.volumes.retain(|v| v.volume_id != vid)
        });
        Ok(())
    }
}

enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn connector(host: &str) -> Value {
    json!({"host": host, "initiator": format!("iqn.1994-05.com.redhat:{host}"),
           "ip": "127.0.0.1", "platform": "x86_64", "os_type": "linux", "multipath": false})
}

fn close_event(t: &mut Task, result: &str, now: DateTime<Utc>) {
    if let Some(e) = t.events.last_mut() {
        if e.finish_time.is_none() {
            e.finish_time = Some(now);
            e.result = Some(result.into());
        }
    }
}

/// The task id of a compute answer (`x-openstack-request-id`).
pub fn request_id_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
