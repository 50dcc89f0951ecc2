//! The image service (Glance v2): image records and the data upload that finalises them
//! (`queued` -> `saving` -> `active`). Uploads are where a snapshot meets an expired user token:
//! Nova sends the data long after the user asked, so Glance must accept the service token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use baton_authtoken::{AuthTokenLayer, Authenticator, IdentityContext};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::common::{fault, is_admin, is_service_request, new_uuid, project_of};

/// An image of the reference image service (Glance's part).
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// The image's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The project that owns it.
    pub owner: String,
    /// `queued`, `saving`, `active`.
    pub status: String,
    /// Bytes uploaded, once uploaded.
    pub size: Option<u64>,
    /// `qcow2`, `raw`, ...
    pub disk_format: String,
    /// `bare`, ...
    pub container_format: String,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Whether the data came with a service token holding a service role.
    pub uploaded_by_service_request: Option<bool>,
}

impl Image {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "owner": self.owner, "status": self.status,
            "size": self.size, "disk_format": self.disk_format,
            "container_format": self.container_format, "visibility": "private",
            "created_at": self.created_at, "updated_at": self.updated_at,
            "file": format!("/v2/images/{}/file", self.id),
            "baton:uploaded_by_service_request": self.uploaded_by_service_request,
        })
    }
}

/// The image service's data, shared by the handlers and the scenario runner.
#[derive(Clone, Default)]
pub struct ImageState {
    /// Images by id.
    pub images: Arc<Mutex<BTreeMap<String, Image>>>,
    /// `[keystone_authtoken] service_token_roles`: what makes a request a service request.
    pub service_token_roles: Arc<Vec<String>>,
}

impl ImageState {
    /// No images yet.
    pub fn new(service_token_roles: Vec<String>) -> ImageState {
        ImageState {
            images: Arc::default(),
            service_token_roles: Arc::new(service_token_roles),
        }
    }

    /// An image by id.
    pub fn image(&self, id: &str) -> Option<Image> {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

/// The image API behind the auth_token middleware `auth`.
pub fn router(state: ImageState, auth: Authenticator) -> Router {
    Router::new()
        .route("/v2/images", get(list_images).post(create_image))
        .route("/v2/images/{id}", get(show_image))
        .route("/v2/images/{id}/file", put(upload))
        .layer(AuthTokenLayer::new(auth))
        .with_state(state)
}

#[derive(Deserialize)]
struct CreateImage {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disk_format: Option<String>,
    #[serde(default)]
    container_format: Option<String>,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn create_image(
    State(s): State<ImageState>,
    Extension(ctx): Extension<IdentityContext>,
    Json(body): Json<CreateImage>,
) -> Response {
    let id = new_uuid();
    let image = Image {
        id: id.clone(),
        name: body.name.unwrap_or_default(),
        owner: project_of(&ctx),
        status: "queued".into(),
        size: None,
        disk_format: body.disk_format.unwrap_or_else(|| "qcow2".into()),
        container_format: body.container_format.unwrap_or_else(|| "bare".into()),
        created_at: now(),
        updated_at: now(),
        uploaded_by_service_request: None,
    };
    let out = image.to_json();
    s.images
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, image);
    (StatusCode::CREATED, Json(out)).into_response()
}

fn visible(ctx: &IdentityContext, img: &Image) -> bool {
    is_admin(ctx) || ctx.project_id() == Some(img.owner.as_str())
}

async fn list_images(
    State(s): State<ImageState>,
    Extension(ctx): Extension<IdentityContext>,
) -> Response {
    let images = s.images.lock().unwrap_or_else(|e| e.into_inner());
    let list: Vec<Value> = images
        .values()
        .filter(|i| visible(&ctx, i))
        .map(Image::to_json)
        .collect();
    Json(json!({ "images": list })).into_response()
}

async fn show_image(
    State(s): State<ImageState>,
    Extension(ctx): Extension<IdentityContext>,
    Path(id): Path<String>,
) -> Response {
    match s.image(&id) {
        Some(i) if visible(&ctx, &i) => Json(i.to_json()).into_response(),
        _ => fault(
            StatusCode::NOT_FOUND,
            format!("No image found with ID {id}"),
        ),
    }
}

async fn upload(
    State(s): State<ImageState>,
    Extension(ctx): Extension<IdentityContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    data: Bytes,
) -> Response {
    let by_service = is_service_request(&headers, &s.service_token_roles);
    let mut images = s.images.lock().unwrap_or_else(|e| e.into_inner());
    let Some(img) = images.get_mut(&id) else {
        return fault(
            StatusCode::NOT_FOUND,
            format!("No image found with ID {id}"),
        );
    };
    if !visible(&ctx, img) {
        return fault(
            StatusCode::NOT_FOUND,
            format!("No image found with ID {id}"),
        );
    }
    if img.status != "queued" {
        return fault(
            StatusCode::CONFLICT,
            format!(
                "Image status transition from {} to saving is not allowed",
                img.status
            ),
        );
    }
    // The data is not kept: its size is what the reference needs. `saving` is not observable
    // because the body has already arrived when the handler runs.
    img.status = "active".into();
    img.size = Some(data.len() as u64);
    img.updated_at = now();
    img.uploaded_by_service_request = Some(by_service);
    StatusCode::NO_CONTENT.into_response()
}
