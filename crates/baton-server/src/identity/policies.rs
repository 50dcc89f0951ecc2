//! Policy blobs and endpoint policy (`OS-ENDPOINT-POLICY`): which policy an endpoint uses.
//!
//! An endpoint's policy is, in Keystone's order: the one associated with the endpoint itself,
//! else the one associated with its service in its region or the nearest parent region, else the
//! one associated with its service. A policy's endpoints are the reverse: every endpoint named by
//! one of its associations, in the associations' order (an endpoint reached twice is listed
//! twice, as Keystone lists it).
//!
//! Policy writes change no token and no catalog, so nothing is dropped from the caches.

use baton_store::{Endpoint, Policy, PolicyAssociation, Region};

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// The kind of target an association names, for the three families of routes.
#[derive(Debug, Clone)]
pub enum PolicyTarget {
    /// `/policies/{id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}`.
    Endpoint(String),
    /// `/policies/{id}/OS-ENDPOINT-POLICY/services/{service_id}`.
    Service(String),
    /// `/policies/{id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}`.
    ServiceInRegion(String, String),
}

impl PolicyTarget {
    /// The association row of `policy_id` with this target.
    pub fn association(&self, policy_id: &str) -> PolicyAssociation {
        let (endpoint_id, service_id, region_id) = match self {
            PolicyTarget::Endpoint(e) => (Some(e.clone()), None, None),
            PolicyTarget::Service(s) => (None, Some(s.clone()), None),
            PolicyTarget::ServiceInRegion(s, r) => (None, Some(s.clone()), Some(r.clone())),
        };
        PolicyAssociation {
            policy_id: policy_id.to_string(),
            endpoint_id,
            service_id,
            region_id,
        }
    }
}

/// What to do with an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationOp {
    /// `GET`/`HEAD`: 404 unless it exists.
    Check,
    /// `PUT`: the target now uses this policy.
    Set,
    /// `DELETE`: removed if present.
    Delete,
}

/// Keystone's 404 for an association check that finds nothing.
fn association_not_found() -> ApiError {
    ApiError::NotFound("Could not find policy association.".into())
}

impl Identity {
    /// Stores a new policy blob.
    pub async fn create_policy(&self, p: &Policy) -> ApiResult<()> {
        self.store.put_policy(p, true).await?;
        self.audit().resource("created", "policy", &p.id).await;
        Ok(())
    }

    /// Stores a changed policy blob.
    pub async fn update_policy(&self, p: &Policy) -> ApiResult<()> {
        self.store.put_policy(p, false).await?;
        self.audit().resource("updated", "policy", &p.id).await;
        Ok(())
    }

    /// Deletes a policy blob (its associations stay, as in Keystone).
    pub async fn delete_policy(&self, id: &str) -> ApiResult<()> {
        self.store.delete_policy(id).await?;
        self.audit().resource("deleted", "policy", id).await;
        Ok(())
    }

    /// Checks, sets or deletes one association. The policy and the target's endpoint, service
    /// and region must exist (404 naming the first missing one), as Keystone checks them.
    pub async fn policy_association(
        &self,
        policy_id: &str,
        target: &PolicyTarget,
        op: AssociationOp,
    ) -> ApiResult<()> {
        self.store.get_policy(policy_id).await?;
        match target {
            PolicyTarget::Endpoint(e) => {
                self.store.get_endpoint(e).await?;
            }
            PolicyTarget::Service(s) => {
                self.store.get_service(s).await?;
            }
            PolicyTarget::ServiceInRegion(s, r) => {
                self.store.get_service(s).await?;
                self.store.get_region(r).await?;
            }
        }
        let association = target.association(policy_id);
        match op {
            AssociationOp::Check => {
                if !self.store.has_policy_association(&association).await? {
                    return Err(association_not_found());
                }
            }
            AssociationOp::Set => self.store.set_policy_association(&association).await?,
            AssociationOp::Delete => self.store.delete_policy_association(&association).await?,
        }
        Ok(())
    }

    /// The policy an endpoint uses (endpoint, then service in region or a parent region, then
    /// service); 404 when none applies or the associated policy is gone.
    pub async fn policy_for_endpoint(&self, endpoint: &Endpoint) -> ApiResult<Policy> {
        let own = PolicyTarget::Endpoint(endpoint.id.clone()).association("");
        if let Some(policy_id) = self.store.policy_of(&own).await? {
            return Ok(self.store.get_policy(&policy_id).await?);
        }
        let mut region = endpoint.region_id.clone();
        let mut examined: Vec<String> = Vec::new();
        while let Some(region_id) = region.take() {
            let target =
                PolicyTarget::ServiceInRegion(endpoint.service_id.clone(), region_id.clone());
            if let Some(policy_id) = self.store.policy_of(&target.association("")).await? {
                return Ok(self.store.get_policy(&policy_id).await?);
            }
            let parent = self.store.get_region(&region_id).await?.parent_region_id;
            examined.push(region_id);
            // A cycle in the region tree (never written through the API) ends the walk.
            region = parent.filter(|p| !examined.contains(p));
        }
        let service = PolicyTarget::Service(endpoint.service_id.clone());
        if let Some(policy_id) = self.store.policy_of(&service.association("")).await? {
            return Ok(self.store.get_policy(&policy_id).await?);
        }
        Err(ApiError::NotFound(format!(
            "No policy is associated with endpoint {}.",
            endpoint.id
        )))
    }

    /// The endpoints a policy's associations name, in the associations' order.
    pub async fn endpoints_for_policy(&self, policy_id: &str) -> ApiResult<Vec<Endpoint>> {
        self.store.get_policy(policy_id).await?;
        let associations = self.store.policy_associations(policy_id).await?;
        let endpoints = self.store.list_endpoints().await?;
        let regions = self.store.list_regions().await?;
        let mut out = Vec::new();
        for a in associations {
            match (a.endpoint_id, a.service_id, a.region_id) {
                (Some(endpoint_id), None, None) => {
                    // An association naming a deleted endpoint is a 404, as in Keystone.
                    out.push(self.store.get_endpoint(&endpoint_id).await?);
                }
                (None, Some(service_id), None) => out.extend(
                    endpoints
                        .iter()
                        .filter(|e| e.service_id == service_id)
                        .cloned(),
                ),
                (None, Some(service_id), Some(region_id)) => {
                    out.extend(in_region_tree(
                        &endpoints,
                        &regions,
                        &service_id,
                        &region_id,
                    ));
                }
                other => {
                    tracing::warn!(policy_id, association = ?other, "unsupported policy association ignored");
                }
            }
        }
        Ok(out)
    }
}

/// The service's endpoints in a region and, depth first, its child regions (each region once).
fn in_region_tree(
    endpoints: &[Endpoint],
    regions: &[Region],
    service_id: &str,
    region_id: &str,
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let mut examined: Vec<&str> = Vec::new();
    let mut stack = vec![region_id];
    while let Some(region) = stack.pop() {
        if examined.contains(&region) {
            continue;
        }
        examined.push(region);
        out.extend(
            endpoints
                .iter()
                .filter(|e| e.service_id == service_id && e.region_id.as_deref() == Some(region))
                .cloned(),
        );
        // Children pushed in reverse so they are visited in the regions' order.
        let children: Vec<&str> = regions
            .iter()
            .filter(|r| r.parent_region_id.as_deref() == Some(region))
            .map(|r| r.id.as_str())
            .collect();
        stack.extend(children.into_iter().rev());
    }
    out
}
