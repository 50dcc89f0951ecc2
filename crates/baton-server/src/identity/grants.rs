//! Roles, implied roles and role assignments (grants), and Keystone's rules for writing them:
//! an immutable role changes only by clearing `immutable` and is never deleted; no role implies
//! `admin`, nor a global role a domain-specific one; a domain-specific role is granted only on
//! projects of its domain and never on the system. Every write here may change what a token
//! shows, so each drops cached validations; deleting a role also records a revocation event.

use baton_store::{Assignment, RevocationEvent, Role, RoleDetail, SystemAssignment};
use serde_json::{Map, Value};

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// The resource option Keystone registers for roles: its id in `role_option`.
pub const IMMUTABLE_ID: &str = "IMMU";
/// The same option's name in the API.
pub const IMMUTABLE: &str = "immutable";
/// `[assignment] prohibited_implied_role` default: no role may imply `admin`.
const PROHIBITED_IMPLIED: &[&str] = &["admin"];

/// Whether the role carries `immutable: true`.
pub fn is_immutable(d: &RoleDetail) -> bool {
    immutable_in(&d.options)
}

/// Whether resource options (`(option id, JSON value)` rows of a role, project or domain) hold
/// `immutable: true`.
pub fn immutable_in(options: &[(String, String)]) -> bool {
    options.iter().any(|(id, v)| {
        id == IMMUTABLE_ID && serde_json::from_str(v).ok() == Some(Value::Bool(true))
    })
}

/// A PATCH of a role: `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default)]
pub struct RoleChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// What the body said; a different domain is refused.
    pub domain_id: Option<Option<String>>,
    /// `Some(None)` removes the option.
    pub immutable: Option<Option<bool>>,
    /// Merged over the stored `extra`.
    pub extra: Map<String, Value>,
    /// How many attributes the body named (an immutable role accepts only `options`).
    pub attributes: usize,
}

/// Keystone's RoleAssignmentNotFound.
pub fn no_assignment(role_id: &str, actor_id: &str, target_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "Could not find role assignment with role: {role_id}, user or group: {actor_id}, project, domain, or system: {target_id}."
    ))
}

impl Identity {
    /// Creates a role (no token holds it yet).
    pub async fn create_role(&self, d: &RoleDetail) -> ApiResult<()> {
        self.store.insert_role(d).await?;
        self.audit().resource("created", "role", &d.role.id).await;
        Ok(())
    }

    /// Applies a PATCH to a role; tokens show role names, so cached validations go.
    pub async fn update_role(
        &self,
        mut d: RoleDetail,
        changes: RoleChanges,
    ) -> ApiResult<RoleDetail> {
        // An immutable role accepts one change only: clearing `immutable`.
        if is_immutable(&d)
            && (changes.attributes > 1 || !matches!(changes.immutable, Some(None | Some(false))))
        {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Unable to update immutable role resource: `{}. Set resource option \"immutable\" to false first.",
                d.role.id
            )));
        }
        if let Some(new_domain) = changes.domain_id {
            if new_domain != d.role.domain_id {
                return Err(ApiError::BadRequest(
                    "Update of `domain_id` is not allowed.".into(),
                ));
            }
        }
        if let Some(name) = changes.name {
            d.role.name = name;
        }
        if let Some(description) = changes.description {
            d.role.description = description;
        }
        if let Some(immutable) = changes.immutable {
            d.options.retain(|(id, _)| id != IMMUTABLE_ID);
            if let Some(b) = immutable {
                d.options.push((IMMUTABLE_ID.to_string(), b.to_string()));
            }
        }
        d.extra = Some(super::merge_extra(d.extra.as_deref(), changes.extra));
        self.store.update_role(&d).await?;
        self.changed().await;
        self.audit().resource("updated", "role", &d.role.id).await;
        Ok(d)
    }

    /// Deletes a role that is not immutable, with its assignments and implications.
    pub async fn delete_role(&self, d: &RoleDetail) -> ApiResult<()> {
        let role_id = &d.role.id;
        if is_immutable(d) {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Unable to delete immutable role resource: `{role_id}. Set resource option \"immutable\" to false first."
            )));
        }
        // Keystone deletes the application credentials of every user holding the role on a
        // project (directly), on that project, before the role goes.
        self.delete_application_credentials_for_role(role_id)
            .await?;
        if !self.store.delete_role(role_id).await? {
            return Err(ApiError::not_found("role", role_id));
        }
        self.changed().await;
        // Keystone 30 only drops its (shared) token cache here. Each Baton node caches
        // validations of its own, so a revocation event naming the role makes other nodes stop
        // showing it at once; a token validated afresh no longer carries the role and is not
        // matched.
        self.revoke(RevocationEvent {
            role_id: Some(role_id.clone()),
            ..Default::default()
        })
        .await?;
        self.audit().resource("deleted", "role", role_id).await;
        Ok(())
    }

    /// `prior` implies `implied` from now on.
    pub async fn create_implied_role(&self, prior: &Role, implied: &Role) -> ApiResult<()> {
        // Keystone hides its reason here (a security error) and names the implied role only.
        if PROHIBITED_IMPLIED.contains(&implied.name.as_str())
            || (prior.domain_id.is_none() && implied.domain_id.is_some())
        {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "{} cannot be an implied roles.",
                implied.id
            )));
        }
        self.store
            .create_implied_role(&prior.id, &implied.id)
            .await?;
        self.changed().await;
        Ok(())
    }

    /// Ends an implication (404 when there is none).
    pub async fn delete_implied_role(&self, prior: &Role, implied: &Role) -> ApiResult<()> {
        if !self
            .store
            .delete_implied_role(&prior.id, &implied.id)
            .await?
        {
            return Err(ApiError::NotFound(format!(
                "{} does not imply {}.",
                prior.id, implied.id
            )));
        }
        self.changed().await;
        Ok(())
    }

    /// Grants a role on a project or domain. `project_domain` is the project's domain when the
    /// target is a project: a domain-specific role is granted only there.
    pub async fn grant(
        &self,
        a: &Assignment,
        role: &Role,
        project_domain: Option<&str>,
    ) -> ApiResult<()> {
        if let (Some(role_domain), Some(project_domain)) = (&role.domain_id, project_domain) {
            if role_domain != project_domain {
                return Err(ApiError::ForbiddenNotSecurity(format!(
                    "Project {} must be in the same domain as the role {} being assigned.",
                    a.target_id, role.id
                )));
            }
        }
        self.store.create_assignment(a).await?;
        self.changed().await;
        self.audit().role_assignment(true, a).await;
        Ok(())
    }

    /// Removes a grant (404 when there is none). Like Keystone 30, no revocation event:
    /// validation recomputes the roles, and a token left with none on its scope stops
    /// validating.
    pub async fn revoke_grant(&self, a: &Assignment) -> ApiResult<()> {
        if !self.store.delete_assignment(a).await? {
            return Err(no_assignment(&a.role_id, &a.actor_id, &a.target_id));
        }
        self.changed().await;
        self.audit().role_assignment(false, a).await;
        Ok(())
    }

    /// Grants a role on the system; domain-specific roles cannot be (400).
    pub async fn grant_system(&self, a: &SystemAssignment, role: Option<&Role>) -> ApiResult<()> {
        if role.is_some_and(|r| r.domain_id.is_some()) {
            return Err(ApiError::BadRequest(format!(
                "Role {} is a domain-specific role. Unable to use a domain-specific role in a system assignment.",
                a.role_id
            )));
        }
        self.store.create_system_assignment(a).await?;
        self.changed().await;
        Ok(())
    }

    /// Removes a system grant (404 when there is none).
    pub async fn revoke_system_grant(&self, a: &SystemAssignment) -> ApiResult<()> {
        if !self.store.delete_system_assignment(a).await? {
            return Err(no_assignment(&a.role_id, &a.actor_id, "system"));
        }
        self.changed().await;
        Ok(())
    }
}
