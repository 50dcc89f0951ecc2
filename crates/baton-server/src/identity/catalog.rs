//! Services, endpoints and regions: the catalog every token carries. Every write drops the
//! cached catalog and cached validations, so the next token (and the next validation of an
//! existing one) shows the change.

use baton_store::{Endpoint, Region, RegionDelete, RegionUpdate, Service, StoreError};
use serde_json::Map;

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// Keystone's 400 for an endpoint pointing at a service or region that does not exist.
fn missing_reference(kind: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "Expecting to find endpoint {kind}_id in {kind} table. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
    ))
}

/// A missing service or region behind an endpoint is the caller's mistake (400), not a 404.
fn as_missing_reference(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound {
            kind: kind @ ("service" | "region"),
            ..
        } => missing_reference(kind),
        other => other.into(),
    }
}

impl Identity {
    /// Adds a service to the catalog.
    pub async fn create_service(&self, s: &Service) -> ApiResult<()> {
        self.store.create_service(s).await?;
        self.changed().await;
        self.audit().resource("created", "service", &s.id).await;
        Ok(())
    }

    /// Stores a changed service.
    pub async fn update_service(&self, s: &Service) -> ApiResult<()> {
        self.store.update_service(s).await?;
        self.changed().await;
        self.audit().resource("updated", "service", &s.id).await;
        Ok(())
    }

    /// Deletes a service with its endpoints.
    pub async fn delete_service(&self, id: &str) -> ApiResult<()> {
        let endpoints = self.store.delete_service(id).await?;
        self.changed().await;
        tracing::info!(
            service_id = id,
            endpoints = endpoints.len(),
            "service deleted with its endpoints"
        );
        self.audit().resource("deleted", "service", id).await;
        Ok(())
    }

    /// The region named by an endpoint's legacy `region` attribute, created when missing (as
    /// Keystone does).
    pub async fn ensure_region(&self, id: &str) -> ApiResult<()> {
        match self.store.get_region(id).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => {
                let region = Region {
                    id: id.to_string(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: Map::new(),
                };
                match self.store.create_region(&region).await {
                    // Someone else created it meanwhile: that is what we wanted.
                    Ok(()) | Err(StoreError::Conflict(_)) => {
                        self.changed().await;
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What an endpoint body points at must exist (400 otherwise); Keystone checks this
    /// before it looks the endpoint itself up.
    pub async fn check_endpoint_references(
        &self,
        region_id: Option<&str>,
        service_id: Option<&str>,
    ) -> ApiResult<()> {
        if let Some(region_id) = region_id {
            self.store
                .get_region(region_id)
                .await
                .map_err(as_missing_reference)?;
        }
        if let Some(service_id) = service_id {
            self.store
                .get_service(service_id)
                .await
                .map_err(as_missing_reference)?;
        }
        Ok(())
    }

    /// Adds an endpoint; its service and region must exist (400).
    pub async fn create_endpoint(&self, e: &Endpoint) -> ApiResult<()> {
        self.store
            .create_endpoint(e)
            .await
            .map_err(as_missing_reference)?;
        self.changed().await;
        self.audit().resource("created", "endpoint", &e.id).await;
        Ok(())
    }

    /// Stores a changed endpoint; its service and region must exist (400).
    pub async fn update_endpoint(&self, e: &Endpoint) -> ApiResult<()> {
        self.store
            .update_endpoint(e)
            .await
            .map_err(as_missing_reference)?;
        self.changed().await;
        self.audit().resource("updated", "endpoint", &e.id).await;
        Ok(())
    }

    /// Deletes an endpoint.
    pub async fn delete_endpoint(&self, id: &str) -> ApiResult<()> {
        self.store.delete_endpoint(id).await?;
        self.changed().await;
        self.audit().resource("deleted", "endpoint", id).await;
        Ok(())
    }

    /// Adds a region.
    pub async fn create_region(&self, r: &Region) -> ApiResult<()> {
        self.store.create_region(r).await?;
        self.changed().await;
        self.audit().resource("created", "region", &r.id).await;
        Ok(())
    }

    /// Stores a changed region; a parent that would make a cycle is a 400.
    pub async fn update_region(&self, r: &Region) -> ApiResult<()> {
        match self.store.update_region(r).await? {
            RegionUpdate::Updated => {}
            RegionUpdate::Circular => {
                return Err(ApiError::BadRequest(format!(
                    "The specified parent region {} would create a circular region hierarchy.",
                    r.parent_region_id.as_deref().unwrap_or("")
                )))
            }
        }
        self.changed().await;
        self.audit().resource("updated", "region", &r.id).await;
        Ok(())
    }

    /// Deletes a region with its child regions, unless any of them has endpoints (403).
    pub async fn delete_region(&self, id: &str) -> ApiResult<()> {
        match self.store.delete_region(id).await? {
            RegionDelete::Deleted { descendants } => {
                self.changed().await;
                if !descendants.is_empty() {
                    tracing::info!(region_id = id, ?descendants, "region deleted with its child regions");
                }
                self.audit().resource("deleted", "region", id).await;
                Ok(())
            }
            RegionDelete::HasEndpoints => Err(ApiError::ForbiddenNotSecurity(format!(
                "Unable to delete region {id} because it or its child regions have associated endpoints."
            ))),
        }
    }
}

// ----- endpoint filtering (OS-EP-FILTER) ----------------------------------------------------

/// Whether an endpoint matches every filter of an endpoint group (Keystone compares the
/// endpoint's attribute with each filter's value; an attribute the endpoint lacks never matches).
pub fn in_endpoint_group(g: &baton_store::EndpointGroup, e: &Endpoint) -> bool {
    g.filters.iter().all(|(key, want)| {
        let have = match key.as_str() {
            "service_id" => serde_json::Value::String(e.service_id.clone()),
            "region_id" => e
                .region_id
                .clone()
                .map_or(serde_json::Value::Null, serde_json::Value::String),
            "interface" => serde_json::Value::String(e.interface.clone()),
            "enabled" => serde_json::Value::Bool(e.enabled),
            _ => return false,
        };
        &have == want
    })
}

/// Keystone's 404 for an endpoint group.
pub fn endpoint_group_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Could not find Endpoint Group: {id}."))
}

/// The store's 404 for an endpoint group in Keystone's words.
pub fn endpoint_group_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound {
            kind: "endpoint group",
            id,
        } => endpoint_group_not_found(&id),
        other => other.into(),
    }
}

impl Identity {
    /// Creates or rewrites an endpoint group; the catalogs of its projects may change.
    pub async fn put_endpoint_group(
        &self,
        g: &baton_store::EndpointGroup,
        creating: bool,
    ) -> ApiResult<()> {
        self.store
            .put_endpoint_group(g, creating)
            .await
            .map_err(endpoint_group_error)?;
        self.changed().await;
        Ok(())
    }

    /// Deletes an endpoint group with its project associations.
    pub async fn delete_endpoint_group(&self, id: &str) -> ApiResult<()> {
        self.store
            .delete_endpoint_group(id)
            .await
            .map_err(endpoint_group_error)?;
        self.changed().await;
        Ok(())
    }

    /// Associates an endpoint (or, with `to_group`, an endpoint group) with a project.
    pub async fn add_project_association(
        &self,
        to_group: bool,
        target_id: &str,
        project_id: &str,
    ) -> ApiResult<()> {
        self.store
            .add_project_association(to_group, target_id, project_id)
            .await?;
        self.changed().await;
        Ok(())
    }

    /// Removes an association; `false` when there was none.
    pub async fn remove_project_association(
        &self,
        to_group: bool,
        target_id: &str,
        project_id: &str,
    ) -> ApiResult<bool> {
        let removed = self
            .store
            .remove_project_association(to_group, target_id, project_id)
            .await?;
        if removed {
            self.changed().await;
        }
        Ok(removed)
    }
}
