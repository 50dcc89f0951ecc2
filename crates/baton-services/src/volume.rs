//! The volume service (Cinder, block storage v3 without project ids in the path): volumes, the
//! attachments API (`/v3/attachments` create, update, complete, delete) and the volume actions
//! `os-detach`, `os-force_detach` and `os-terminate_connection`.
//!
//! The CVE-2023-2088 rule (Cinder's `attachment_deletion_allowed`): an attachment that an
//! instance is using (it has an `instance_uuid` and `connection_info`) may be deleted or detached
//! only by a *service request*, whose `X-Service-Roles` intersect `service_token_roles`; anyone
//! else gets 409 "Detach volume from instance ... using the Compute API" — unless compute, asked
//! as the user (`GET /servers/{id}/os-volume_attachments/{volume_id}`, microversion 2.89), says
//! the instance is gone or now uses another attachment (what a finished live migration leaves).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use baton_authtoken::{AuthTokenLayer, Authenticator, IdentityContext, OnwardCalls};
use baton_client::{EndpointFilter, Interface, Method};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::common::{fault, http_options, is_admin, is_service_request, new_uuid, project_of};

/// One volume.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// The volume's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its size in GiB.
    pub size: u32,
    /// The project that owns it.
    pub project_id: String,
    /// `available`, `reserved`, `attaching`, `in-use`, `detaching`.
    pub status: String,
    /// Its attachments.
    pub attachment_ids: Vec<String>,
}

/// One attachment (Cinder's new attachments API).
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// The attachment's id.
    pub id: String,
    /// The volume attached.
    pub volume_id: String,
    /// The server it is attached to.
    pub instance: Option<String>,
    /// The project of the user who made it.
    pub project_id: String,
    /// `reserved` -> `attaching` -> `attached`; `detached` once deleted.
    pub attach_status: String,
    /// The compute host's connector (where to connect the volume).
    pub connector: Option<Value>,
    /// How the host reaches the volume, once attached.
    pub connection_info: Option<Value>,
    /// When the attachment completed.
    pub attached_at: Option<String>,
    /// Whether the last change came from a service request (for the timeline).
    pub last_change_by_service: bool,
}

impl Attachment {
    fn in_use(&self) -> bool {
        self.instance.is_some() && self.connection_info.is_some()
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "volume_id": self.volume_id,
            "instance": self.instance,
            "status": self.attach_status,
            "attach_mode": "rw",
            "connection_info": self.connection_info,
            "attached_at": self.attached_at,
            "detached_at": null,
        })
    }
}

/// The in-memory database of the volume service.
#[derive(Debug, Default)]
pub struct VolumeData {
    /// By volume id.
    pub volumes: BTreeMap<String, Volume>,
    /// By attachment id.
    pub attachments: BTreeMap<String, Attachment>,
}

/// State shared by the handlers (and by the scenario runner, to seed volumes).
#[derive(Clone)]
pub struct VolumeState {
    /// Volumes and attachments.
    pub data: Arc<Mutex<VolumeData>>,
    /// `[keystone_authtoken] service_token_roles`: what makes a request a service request.
    pub service_token_roles: Arc<Vec<String>>,
    /// For asking compute, as the request's user, which attachment an instance uses (Cinder
    /// sends no service token).
    onward: OnwardCalls,
}

impl VolumeState {
    /// No volumes yet; `service_token_roles` decides what a service request is.
    pub fn new(service_token_roles: Vec<String>) -> anyhow::Result<VolumeState> {
        Ok(VolumeState {
            data: Arc::default(),
            service_token_roles: Arc::new(service_token_roles),
            onward: OnwardCalls::with_http(http_options().build()?, None),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VolumeData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an `available` volume (the runner's fixtures).
    pub fn seed_volume(&self, project_id: &str, name: &str) -> String {
        let id = new_uuid();
        self.lock().volumes.insert(
            id.clone(),
            Volume {
                id: id.clone(),
                name: name.into(),
                size: 1,
                project_id: project_id.into(),
                status: "available".into(),
                attachment_ids: vec![],
            },
        );
        id
    }

    /// Creates a volume attached to `instance` on `host` (`in-use`, connection live) and returns
    /// `(volume_id, attachment_id)`.
    pub fn seed_in_use(&self, project_id: &str, instance: &str, host: &str) -> (String, String) {
        let volume_id = self.seed_volume(project_id, &format!("vol-{}", &instance[..8]));
        let att_id = new_uuid();
        let mut d = self.lock();
        d.attachments.insert(
            att_id.clone(),
            Attachment {
                id: att_id.clone(),
                volume_id: volume_id.clone(),
                instance: Some(instance.into()),
                project_id: project_id.into(),
                attach_status: "attached".into(),
                connector: Some(json!({"host": host})),
                connection_info: Some(connection_info(&volume_id, host)),
                attached_at: Some(chrono::Utc::now().to_rfc3339()),
                last_change_by_service: false,
            },
        );
        let v = d.volumes.get_mut(&volume_id).expect("just made");
        v.status = "in-use".into();
        v.attachment_ids.push(att_id.clone());
        (volume_id, att_id)
    }

    /// An attachment by id.
    pub fn attachment(&self, id: &str) -> Option<Attachment> {
        self.lock().attachments.get(id).cloned()
    }

    /// A volume by id.
    pub fn volume(&self, id: &str) -> Option<Volume> {
        self.lock().volumes.get(id).cloned()
    }
}

fn connection_info(volume_id: &str, host: &str) -> Value {
    json!({
        "driver_volume_type": "iscsi",
        "data": {
            "target_iqn": format!("iqn.2010-10.org.openstack:volume-{volume_id}"),
            "target_portal": "127.0.0.1:3260",
            "target_lun": 1,
            "initiator_host": host,
        }
    })
}

/// The router, behind the auth_token layer.
pub fn router(state: VolumeState, auth: Authenticator) -> Router {
    Router::new()
        .route("/v3/volumes", get(list_volumes).post(create_volume))
        .route("/v3/volumes/{id}", get(show_volume))
        .route("/v3/volumes/{id}/action", post(volume_action))
        .route(
            "/v3/attachments",
            get(list_attachments).post(create_attachment),
        )
        .route(
            "/v3/attachments/{id}",
            get(show_attachment)
                .put(update_attachment)
                .delete(delete_attachment),
        )
        .route("/v3/attachments/{id}/action", post(attachment_action))
        .layer(AuthTokenLayer::new(auth))
        .with_state(state)
}

fn visible(ctx: &IdentityContext, project_id: &str) -> bool {
    is_admin(ctx) || ctx.project_id() == Some(project_id)
}

fn volume_json(v: &Volume, d: &VolumeData) -> Value {
    let attachments: Vec<Value> = v
        .attachment_ids
        .iter()
        .filter_map(|a| d.attachments.get(a))
        .map(|a| {
            json!({"attachment_id": a.id, "server_id": a.instance, "volume_id": v.id,
                   "attached_at": a.attached_at})
        })
        .collect();
    json!({
        "id": v.id, "name": v.name, "size": v.size, "status": v.status,
        "multiattach": false, "attachments": attachments,
    })
}

async fn list_volumes(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
) -> Response {
    let d = s.lock();
    let vols: Vec<Value> = d
        .volumes
        .values()
        .filter(|v| visible(&ctx, &v.project_id))
        .map(|v| volume_json(v, &d))
        .collect();
    Json(json!({ "volumes": vols })).into_response()
}

#[derive(Deserialize)]
struct CreateVolume {
    volume: CreateVolumeBody,
}

#[derive(Deserialize)]
struct CreateVolumeBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    size: Option<u32>,
}

async fn create_volume(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    Json(body): Json<CreateVolume>,
) -> Response {
    let id = s.seed_volume(
        &project_of(&ctx),
        body.volume.name.as_deref().unwrap_or("volume"),
    );
    let mut d = s.lock();
    if let Some(size) = body.volume.size {
        if let Some(v) = d.volumes.get_mut(&id) {
            v.size = size.max(1);
        }
    }
    let v = d.volumes.get(&id).cloned().expect("just made");
    (
        StatusCode::ACCEPTED,
        Json(json!({ "volume": volume_json(&v, &d) })),
    )
        .into_response()
}

async fn show_volume(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
) -> Response {
    let d = s.lock();
    match d.volumes.get(&id) {
        Some(v) if visible(&ctx, &v.project_id) => {
            Json(json!({ "volume": volume_json(v, &d) })).into_response()
        }
        _ => fault(
            StatusCode::NOT_FOUND,
            format!("Volume {id} could not be found."),
        ),
    }
}

#[derive(Deserialize, Default)]
struct AttachmentFilter {
    #[serde(default)]
    instance_id: Option<String>,
}

async fn list_attachments(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    Query(f): Query<AttachmentFilter>,
) -> Response {
    let d = s.lock();
    let atts: Vec<Value> = d
        .attachments
        .values()
        .filter(|a| visible(&ctx, &a.project_id))
        .filter(|a| f.instance_id.is_none() || a.instance == f.instance_id)
        .map(Attachment::to_json)
        .collect();
    Json(json!({ "attachments": atts })).into_response()
}

async fn show_attachment(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
) -> Response {
    match s.lock().attachments.get(&id) {
        Some(a) if visible(&ctx, &a.project_id) => {
            Json(json!({ "attachment": a.to_json() })).into_response()
        }
        _ => not_found_attachment(&id),
    }
}

fn not_found_attachment(id: &str) -> Response {
    fault(
        StatusCode::NOT_FOUND,
        format!("Volume attachment could not be found with filter: attachment_id = {id}."),
    )
}

#[derive(Deserialize)]
struct CreateAttachment {
    attachment: CreateAttachmentBody,
}

#[derive(Deserialize)]
struct CreateAttachmentBody {
    volume_uuid: String,
    #[serde(default)]
    instance_uuid: Option<String>,
    #[serde(default)]
    connector: Option<Value>,
}

async fn create_attachment(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    headers: HeaderMap,
    Json(body): Json<CreateAttachment>,
) -> Response {
    let by_service = is_service_request(&headers, &s.service_token_roles);
    let b = body.attachment;
    let mut d = s.lock();
    let Some(vol) = d.volumes.get(&b.volume_uuid).cloned() else {
        return fault(
            StatusCode::NOT_FOUND,
            format!("Volume {} could not be found.", b.volume_uuid),
        );
    };
    if !visible(&ctx, &vol.project_id) {
        return fault(
            StatusCode::NOT_FOUND,
            format!("Volume {} could not be found.", b.volume_uuid),
        );
    }
    // Not multiattach: a volume in use may get a second attachment only for the same instance
    // (what a live migration does: one attachment per host for a while).
    let others: Vec<&Attachment> = vol
        .attachment_ids
        .iter()
        .filter_map(|a| d.attachments.get(a))
        .collect();
    if others.iter().any(|a| a.instance != b.instance_uuid) {
        return fault(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid volume: volume {} is already attached to another instance and is not multiattach.",
                vol.id
            ),
        );
    }
    let id = new_uuid();
    let (status, info) = match &b.connector {
        Some(c) => (
            "attaching",
            Some(connection_info(
                &vol.id,
                c.get("host").and_then(Value::as_str).unwrap_or("unknown"),
            )),
        ),
        None => ("reserved", None),
    };
    let att = Attachment {
        id: id.clone(),
        volume_id: vol.id.clone(),
        instance: b.instance_uuid,
        project_id: vol.project_id.clone(),
        attach_status: status.into(),
        connector: b.connector,
        connection_info: info,
        attached_at: None,
        last_change_by_service: by_service,
    };
    let out = att.to_json();
    d.attachments.insert(id.clone(), att);
    let v = d.volumes.get_mut(&vol.id).expect("exists");
    v.attachment_ids.push(id);
    if v.status == "available" {
        v.status = if status == "reserved" {
            "reserved".into()
        } else {
            "attaching".into()
        };
    }
    Json(json!({ "attachment": out })).into_response()
}

#[derive(Deserialize)]
struct UpdateAttachment {
    attachment: UpdateAttachmentBody,
}

#[derive(Deserialize)]
struct UpdateAttachmentBody {
    connector: Value,
}

async fn update_attachment(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<UpdateAttachment>,
) -> Response {
    let by_service = is_service_request(&headers, &s.service_token_roles);
    let mut d = s.lock();
    let Some(a) = d.attachments.get_mut(&id) else {
        return not_found_attachment(&id);
    };
    if !visible(&ctx, &a.project_id) {
        return not_found_attachment(&id);
    }
    let host = body
        .attachment
        .connector
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    a.connection_info = Some(connection_info(&a.volume_id, &host));
    a.connector = Some(body.attachment.connector);
    if a.attach_status == "reserved" {
        a.attach_status = "attaching".into();
    }
    a.last_change_by_service = by_service;
    let out = a.to_json();
    let vid = a.volume_id.clone();
    if let Some(v) = d.volumes.get_mut(&vid) {
        if v.status == "reserved" || v.status == "available" {
            v.status = "attaching".into();
        }
    }
    Json(json!({ "attachment": out })).into_response()
}

async fn attachment_action(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if body.get("os-complete").is_none() {
        return fault(StatusCode::BAD_REQUEST, "There is no such action");
    }
    let mut d = s.lock();
    let Some(a) = d.attachments.get_mut(&id) else {
        return not_found_attachment(&id);
    };
    if !visible(&ctx, &a.project_id) {
        return not_found_attachment(&id);
    }
    if a.connection_info.is_none() {
        return fault(
            StatusCode::BAD_REQUEST,
            format!("Invalid volume: attachment {id} has no connector: update it first."),
        );
    }
    a.attach_status = "attached".into();
    a.attached_at = Some(chrono::Utc::now().to_rfc3339());
    let vid = a.volume_id.clone();
    if let Some(v) = d.volumes.get_mut(&vid) {
        v.status = "in-use".into();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Cinder's `ConflictNovaUsingAttachment` (409).
fn conflict_nova_using(instance: &str) -> Response {
    fault(
        StatusCode::CONFLICT,
        format!("Detach volume from instance {instance} using the Compute API"),
    )
}

/// What compute says about the attachment an instance uses for a volume.
enum NovaSays {
    /// The instance or its volume attachment is gone.
    NotFound,
    /// It uses this attachment.
    Uses(String),
    /// No usable answer.
    Unknown(String),
}

/// Asks compute, as the user of the request, which attachment `instance` uses for `volume_id`
/// (Cinder's `nova.API().get_server_volume`, microversion 2.89).
async fn ask_nova(
    s: &VolumeState,
    ctx: &IdentityContext,
    instance: &str,
    volume_id: &str,
) -> NovaSays {
    let session = match s.onward.session_for(ctx) {
        Ok(session) => session,
        Err(e) => return NovaSays::Unknown(e.to_string()),
    };
    let filter = EndpointFilter::new("compute").interface(Interface::Internal);
    let resp = session
        .request(
            Method::GET,
            filter,
            &format!("/servers/{instance}/os-volume_attachments/{volume_id}"),
        )
        .header("openstack-api-version", "compute 2.89")
        .raise_for_status(false)
        .send()
        .await;
    match resp {
        Ok(r) if r.status().as_u16() == 404 => NovaSays::NotFound,
        Ok(r) if r.status().is_success() => {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            match v["volumeAttachment"]["attachment_id"].as_str() {
                Some(a) => NovaSays::Uses(a.to_string()),
                None => NovaSays::Unknown("no attachment_id in compute's answer".into()),
            }
        }
        Ok(r) => NovaSays::Unknown(format!("compute answered {}", r.status())),
        Err(e) => NovaSays::Unknown(e.to_string()),
    }
}

/// Cinder's `attachment_deletion_allowed`: `None` when allowed, else the 409. `attachment` is
/// `None` for `os-terminate_connection`, which names no attachment.
async fn deletion_refused(
    s: &VolumeState,
    ctx: &IdentityContext,
    by_service: bool,
    attachment: Option<&Attachment>,
    volume: &Volume,
) -> Option<Response> {
    if by_service {
        return None;
    }
    let attachment = match attachment {
        Some(a) => a.clone(),
        None => {
            let all: Vec<Attachment> = {
                let d = s.lock();
                volume
                    .attachment_ids
                    .iter()
                    .filter_map(|id| d.attachments.get(id).cloned())
                    .collect()
            };
            match all.as_slice() {
                [] => return None,
                [one] => one.clone(),
                // Several attachments and none named: Cinder cannot tell which one is meant.
                _ => {
                    let busy = all.iter().find(|a| a.in_use())?;
                    return Some(conflict_nova_using(busy.instance.as_deref().unwrap_or("")));
                }
            }
        }
    };
    if !attachment.in_use() {
        return None;
    }
    let instance = attachment.instance.clone().unwrap_or_default();
    match ask_nova(s, ctx, &instance, &volume.id).await {
        NovaSays::NotFound => None,
        NovaSays::Uses(id) if id != attachment.id => None,
        NovaSays::Uses(_) => Some(conflict_nova_using(&instance)),
        NovaSays::Unknown(why) => {
            // Without an answer, refusing keeps a live connection safe.
            tracing::info!(instance = %instance, reason = %why, "could not ask compute about an attachment; refusing");
            Some(conflict_nova_using(&instance))
        }
    }
}

fn remove_attachment(d: &mut VolumeData, id: &str) {
    if let Some(a) = d.attachments.remove(id) {
        if let Some(v) = d.volumes.get_mut(&a.volume_id) {
            v.attachment_ids.retain(|x| x != id);
            let remaining: Vec<&Attachment> = v
                .attachment_ids
                .iter()
                .filter_map(|x| d.attachments.get(x))
                .collect();
            v.status = if remaining.is_empty() {
                "available".into()
            } else if remaining.iter().any(|a| a.attach_status == "attached") {
                "in-use".into()
            } else {
                "reserved".into()
            };
        }
    }
}

async fn delete_attachment(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let by_service = is_service_request(&headers, &s.service_token_roles);
    let Some(a) = s.attachment(&id).filter(|a| visible(&ctx, &a.project_id)) else {
        return not_found_attachment(&id);
    };
    let Some(vol) = s.volume(&a.volume_id) else {
        return not_found_attachment(&id);
    };
    // No lock is held while compute is asked.
    if let Some(refused) = deletion_refused(&s, &ctx, by_service, Some(&a), &vol).await {
        return refused;
    }
    let mut d = s.lock();
    if !d.attachments.contains_key(&id) {
        return not_found_attachment(&id);
    }
    remove_attachment(&mut d, &id);
    let (status, attachments) = match d.volumes.get(&a.volume_id) {
        Some(v) => (
            v.status.clone(),
            v.attachment_ids
                .iter()
                .filter_map(|x| d.attachments.get(x))
                .map(Attachment::to_json)
                .collect::<Vec<_>>(),
        ),
        None => (String::new(), vec![]),
    };
    // Cinder answers with the volume's remaining attachments.
    Json(json!({ "attachments": attachments, "volume_status": status })).into_response()
}

async fn volume_action(
    State(s): State<VolumeState>,
    Extension(ctx): Extension<IdentityContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let by_service = is_service_request(&headers, &s.service_token_roles);
    let Some(vol) = s.volume(&id).filter(|v| visible(&ctx, &v.project_id)) else {
        return fault(
            StatusCode::NOT_FOUND,
            format!("Volume {id} could not be found."),
        );
    };
    let named = |key: &str| -> Option<String> {
        body.get(key)?
            .get("attachment_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (action, attachment_id, force) = if body.get("os-detach").is_some() {
        ("os-detach", named("os-detach"), false)
    } else if body.get("os-force_detach").is_some() {
        if !is_admin(&ctx) {
            return fault(
                StatusCode::FORBIDDEN,
                "Policy doesn't allow volume_extension:volume_admin_actions:force_detach to be performed.",
            );
        }
        ("os-force_detach", named("os-force_detach"), true)
    } else if body.get("os-terminate_connection").is_some() {
        ("os-terminate_connection", None, false)
    } else {
        return fault(StatusCode::BAD_REQUEST, "There is no such action");
    };
    let attachment = match &attachment_id {
        Some(aid) => match s.attachment(aid) {
            Some(a) if a.volume_id == vol.id => Some(a),
            _ => return not_found_attachment(aid),
        },
        None => None,
    };
    if let Some(refused) = deletion_refused(&s, &ctx, by_service, attachment.as_ref(), &vol).await {
        return refused;
    }
    let mut d = s.lock();
    let current: Vec<String> = d
        .volumes
        .get(&vol.id)
        .map(|v| v.attachment_ids.clone())
        .unwrap_or_default();
    match action {
        "os-terminate_connection" => {
            // Tears down the export: the connection info goes, the attachment stays.
            for aid in current {
                if let Some(a) = d.attachments.get_mut(&aid) {
                    a.connection_info = None;
                }
            }
        }
        _ => {
            let targets: Vec<String> = match attachment {
                Some(a) => vec![a.id],
                // os-detach without an attachment id detaches the only one; force detaches all.
                None if force || current.len() == 1 => current,
                None => {
                    return fault(
                        StatusCode::BAD_REQUEST,
                        "Invalid volume: detach of a volume with several attachments needs an attachment_id.",
                    )
                }
            };
            for aid in targets {
                remove_attachment(&mut d, &aid);
            }
        }
    }
    StatusCode::ACCEPTED.into_response()
}
