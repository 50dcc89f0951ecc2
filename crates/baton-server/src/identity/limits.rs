//! Unified limits (`/v3/registered_limits`, `/v3/limits`): Keystone's rules for writing them.
//!
//! What a write names must exist (service, region, project, domain; a 400 naming the attribute
//! otherwise), a project that is a domain takes a domain limit, and under `[unified_limit]
//! enforcement_model = strict_two_level` a project's limit may not exceed its domain's (or, with
//! none, the registered default) and a domain's limit may not fall below any of its projects'.
//! The store keeps the tables consistent (duplicates, limits without a registered limit,
//! registered limits in use).
//!
//! Where Keystone 30 loses or refuses data by accident, Baton does what was asked: a PATCH of a
//! limit to 0 or of its description to `null`/`""` is applied (Keystone skips falsy values), a
//! PATCH of a registered limit that repeats its own service, region or resource is not a
//! conflict with itself, a limit naming neither project nor domain is a 400 (Keystone: 500), and
//! deleting a domain deletes its domain limits (Keystone leaves them behind).

use baton_config::EnforcementModel;
use baton_store::{Limit, LimitRefusal, NewLimit, RegisteredLimit};

use super::{Identity, ProjectSlice};
use crate::error::{ApiError, ApiResult};

/// Keystone's 404 for a registered limit.
pub fn registered_limit_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Could not find registered limit for {id}."))
}

/// Keystone's 404 for a limit.
pub fn limit_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Could not find limit for {id}."))
}

/// The 404s of the store in Keystone's words for these two kinds.
pub fn limit_error(e: baton_store::StoreError) -> ApiError {
    match e {
        baton_store::StoreError::NotFound {
            kind: "registered limit",
            id,
        } => registered_limit_not_found(&id),
        baton_store::StoreError::NotFound { kind: "limit", id } => limit_not_found(&id),
        other => other.into(),
    }
}

fn refused(r: LimitRefusal, registered_id: &str) -> ApiError {
    match r {
        LimitRefusal::NoRegisteredLimit => ApiError::ForbiddenNotSecurity(
            "Unable to create a limit that has no corresponding registered limit.".into(),
        ),
        LimitRefusal::RegisteredLimitInUse => ApiError::ForbiddenNotSecurity(format!(
            "Unable to update or delete registered limit {registered_id} because there are project limits associated with it."
        )),
    }
}

/// Keystone's `/v3/limits/model` description of each model.
pub fn model_description(model: EnforcementModel) -> &'static str {
    match model {
        EnforcementModel::Flat => {
            "Limit enforcement and validation does not take project hierarchy into consideration."
        }
        EnforcementModel::StrictTwoLevel => {
            "This model requires project hierarchy never exceeds a depth of two"
        }
    }
}

/// What a PATCH of a registered limit sets (`None`: left alone).
#[derive(Debug, Default, Clone)]
pub struct RegisteredLimitChanges {
    /// A new service.
    pub service_id: Option<String>,
    /// A new region (`Some(None)` for every region).
    pub region_id: Option<Option<String>>,
    /// A new resource name.
    pub resource_name: Option<String>,
    /// A new default.
    pub default_limit: Option<i64>,
    /// A new description.
    pub description: Option<Option<String>>,
}

/// What a PATCH of a limit sets.
#[derive(Debug, Default, Clone)]
pub struct LimitChanges {
    /// A new value.
    pub resource_limit: Option<i64>,
    /// A new description.
    pub description: Option<Option<String>>,
}

/// One limit as the hierarchy check sees it.
struct Candidate<'a> {
    project_id: Option<&'a str>,
    domain_id: Option<&'a str>,
    service_id: &'a str,
    region_id: Option<&'a str>,
    resource_name: &'a str,
    resource_limit: i64,
}

impl Candidate<'_> {
    fn same_resource(&self, l: &Limit) -> bool {
        l.service_id.as_deref() == Some(self.service_id)
            && l.region_id.as_deref() == self.region_id
            && l.resource_name.as_deref() == Some(self.resource_name)
    }

    /// Keystone's `InvalidLimit` for this limit (403).
    fn invalid(&self) -> ApiError {
        let (level, id) = match self.project_id {
            Some(p) => ("project_id", p),
            None => ("domain_id", self.domain_id.unwrap_or("None")),
        };
        ApiError::ForbiddenNotSecurity(format!(
            "Invalid resource limit: The resource limit ({level}: {id}, resource_name: {}, resource_limit: {}, service_id: {}, region_id: {}) doesn't satisfy current hierarchy model..",
            self.resource_name,
            self.resource_limit,
            self.service_id,
            self.region_id.unwrap_or("None")
        ))
    }
}

impl Identity {
    /// Keystone's `_assert_resource_exist`: each id named must exist, else a 400 naming the
    /// attribute. A project that is a domain becomes the limit's domain.
    async fn assert_limit_targets(
        &self,
        service_id: Option<&str>,
        region_id: Option<&str>,
        project_id: &mut Option<String>,
        domain_id: &mut Option<String>,
        target: &str,
    ) -> ApiResult<()> {
        if let Some(service) = service_id {
            if let Err(e) = self.store.get_service(service).await {
                return Err(missing_or(e, "service_id", target));
            }
        }
        if let Some(region) = region_id {
            if let Err(e) = self.store.get_region(region).await {
                return Err(missing_or(e, "region_id", target));
            }
        }
        if let Some(project) = project_id.clone() {
            match self.store.get_project(&project).await? {
                None => return Err(ApiError::expecting("project_id", target)),
                Some(p) if p.is_domain => {
                    *domain_id = project_id.take();
                }
                Some(_) => {}
            }
        }
        if let Some(domain) = domain_id.as_deref() {
            if self.store.get_domain(domain).await?.is_none() {
                return Err(ApiError::expecting("domain_id", target));
            }
        }
        Ok(())
    }

    /// Creates registered limits, all or none.
    pub async fn create_registered_limits(
        &self,
        limits: Vec<RegisteredLimit>,
    ) -> ApiResult<Vec<RegisteredLimit>> {
        for r in &limits {
            self.assert_limit_targets(
                r.service_id.as_deref(),
                r.region_id.as_deref(),
                &mut None,
                &mut None,
                "registered_limit",
            )
            .await?;
        }
        self.store.create_registered_limits(&limits).await?;
        Ok(limits)
    }

    /// Changes a registered limit no limit uses.
    pub async fn update_registered_limit(
        &self,
        id: &str,
        c: RegisteredLimitChanges,
    ) -> ApiResult<RegisteredLimit> {
        self.assert_limit_targets(
            c.service_id.as_deref(),
            c.region_id.clone().flatten().as_deref(),
            &mut None,
            &mut None,
            "registered_limit",
        )
        .await?;
        let mut r = self
            .store
            .get_registered_limit(id)
            .await
            .map_err(limit_error)?;
        if let Some(v) = c.service_id {
            r.service_id = Some(v);
        }
        if let Some(v) = c.region_id {
            r.region_id = v;
        }
        if let Some(v) = c.resource_name {
            r.resource_name = Some(v);
        }
        if let Some(v) = c.default_limit {
            r.default_limit = v;
        }
        if let Some(v) = c.description {
            r.description = v;
        }
        self.store
            .update_registered_limit(&r)
            .await
            .map_err(limit_error)?
            .map_err(|e| refused(e, id))?;
        Ok(r)
    }

    /// Deletes a registered limit no limit uses.
    pub async fn delete_registered_limit(&self, id: &str) -> ApiResult<()> {
        self.store
            .delete_registered_limit(id)
            .await
            .map_err(limit_error)?
            .map_err(|e| refused(e, id))
    }

    /// Creates limits, all or none, after the enforcement model's check.
    pub async fn create_limits(&self, mut limits: Vec<NewLimit>) -> ApiResult<Vec<Limit>> {
        for l in &mut limits {
            self.assert_limit_targets(
                Some(&l.service_id),
                l.region_id.as_deref(),
                &mut l.project_id,
                &mut l.domain_id,
                "limit",
            )
            .await?;
            if l.project_id.is_none() && l.domain_id.is_none() {
                return Err(ApiError::expecting("project_id", "limit"));
            }
        }
        let candidates: Vec<Candidate> = limits
            .iter()
            .map(|l| Candidate {
                project_id: l.project_id.as_deref(),
                domain_id: l.domain_id.as_deref(),
                service_id: &l.service_id,
                region_id: l.region_id.as_deref(),
                resource_name: &l.resource_name,
                resource_limit: l.resource_limit,
            })
            .collect();
        self.check_limit_model(&candidates, None).await?;
        self.store
            .create_limits(&limits)
            .await?
            .map_err(|e| refused(e, ""))?;
        Ok(limits
            .into_iter()
            .map(|l| Limit {
                id: l.id,
                project_id: l.project_id,
                domain_id: l.domain_id,
                resource_limit: l.resource_limit,
                description: l.description,
                service_id: Some(l.service_id),
                region_id: l.region_id,
                resource_name: Some(l.resource_name),
            })
            .collect())
    }

    /// Changes a limit's value or description, after the enforcement model's check.
    pub async fn update_limit(&self, id: &str, c: LimitChanges) -> ApiResult<Limit> {
        let mut l = self.store.get_limit(id).await.map_err(limit_error)?;
        if let Some(v) = c.resource_limit {
            l.resource_limit = v;
        }
        if let Some(v) = c.description {
            l.description = v;
        }
        let candidate = Candidate {
            project_id: l.project_id.as_deref(),
            domain_id: l.domain_id.as_deref(),
            service_id: l.service_id.as_deref().unwrap_or(""),
            region_id: l.region_id.as_deref(),
            resource_name: l.resource_name.as_deref().unwrap_or(""),
            resource_limit: l.resource_limit,
        };
        self.check_limit_model(&[candidate], Some(id)).await?;
        self.store.update_limit(&l).await.map_err(limit_error)?;
        Ok(l)
    }

    /// Deletes a limit.
    pub async fn delete_limit(&self, id: &str) -> ApiResult<()> {
        self.store.delete_limit(id).await.map_err(limit_error)
    }

    /// Keystone's `check_limit` of the configured model over a batch (`flat` checks nothing).
    /// `updating` is the limit being changed: its stored value is not its own bound.
    async fn check_limit_model(
        &self,
        batch: &[Candidate<'_>],
        updating: Option<&str>,
    ) -> ApiResult<()> {
        if self.config.unified_limit.enforcement_model != EnforcementModel::StrictTwoLevel {
            return Ok(());
        }
        let stored: Vec<Limit> = self
            .store
            .list_limits()
            .await?
            .into_iter()
            .filter(|l| Some(l.id.as_str()) != updating)
            .collect();
        let registered = self.store.list_registered_limits().await?;
        for c in batch {
            if let Some(project) = c.project_id {
                let parent = self
                    .store
                    .get_project(project)
                    .await?
                    .and_then(|p| p.parent_id)
                    .unwrap_or_default();
                // A parent's limit in the same request is the bound; no stored one is looked at.
                if let Some(p) = batch
                    .iter()
                    .find(|p| p.domain_id == Some(parent.as_str()) && same(p, c))
                {
                    if c.resource_limit > p.resource_limit {
                        return Err(c.invalid());
                    }
                    continue;
                }
                // The parent's own limit, else (the parent taken as a domain) the default. A
                // bound of 0 counts as none, as in Keystone.
                let bound = stored
                    .iter()
                    .find(|l| l.domain_id.as_deref() == Some(parent.as_str()) && c.same_resource(l))
                    .map(|l| l.resource_limit)
                    .or_else(|| {
                        registered
                            .iter()
                            .find(|r| {
                                r.service_id.as_deref() == Some(c.service_id)
                                    && r.region_id.as_deref() == c.region_id
                                    && r.resource_name.as_deref() == Some(c.resource_name)
                            })
                            .map(|r| r.default_limit)
                    });
                if bound.is_some_and(|b| b != 0 && c.resource_limit > b) {
                    return Err(c.invalid());
                }
            } else if let Some(domain) = c.domain_id {
                let mut slice = ProjectSlice::new();
                slice
                    .load_subtrees(&self.store, &[domain.to_string()])
                    .await?;
                let below = slice.tree().subtree(domain);
                let too_low = stored.iter().any(|l| {
                    l.project_id
                        .as_ref()
                        .is_some_and(|p| p != domain && below.contains(p))
                        && c.same_resource(l)
                        && l.resource_limit != 0
                        && c.resource_limit < l.resource_limit
                });
                if too_low {
                    return Err(c.invalid());
                }
            }
        }
        Ok(())
    }
}

fn same(a: &Candidate, b: &Candidate) -> bool {
    a.service_id == b.service_id && a.region_id == b.region_id && a.resource_name == b.resource_name
}

/// A missing service or region as Keystone's 400; other store errors as they are.
fn missing_or(e: baton_store::StoreError, attribute: &str, target: &str) -> ApiError {
    match e {
        baton_store::StoreError::NotFound { .. } => ApiError::expecting(attribute, target),
        other => other.into(),
    }
}
