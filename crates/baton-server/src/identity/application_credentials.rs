//! Application credentials: Keystone's rules for creating and deleting them, and their access
//! rules. A credential belongs to a user and one project, carries a subset of the roles its
//! creator's token held there, and authenticates by a secret stored only as a password hash
//! (`[identity] password_hash_algorithm`, as Keystone stores it, so either implementation
//! verifies the other's rows). Its tokens are validated against the row (see `tokens.rs`), so
//! deleting it ends them; this node's cached validations are dropped at once, other nodes'
//! within `validation_cache_ttl`.

use baton_store::{AccessRule, ApplicationCredential};
use baton_types::TokenBody;
use chrono::NaiveDateTime;

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// A role of a create request, by id or by (global) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// By id.
    Id(String),
    /// By name (a global role).
    Name(String),
}

/// An access rule of a create request: an existing rule by `id`, or a new one (its id made
/// here when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessRule {
    /// An existing rule of the user, by id.
    pub id: Option<String>,
    /// The service type the rule allows (`compute`).
    pub service: Option<String>,
    /// The path pattern (`*` one segment, `**` any).
    pub path: Option<String>,
    /// The HTTP method.
    pub method: Option<String>,
}

/// A create request, already shape-checked.
#[derive(Debug, Clone, Default)]
pub struct NewApplicationCredential {
    /// A chosen id (else a new one).
    pub id: Option<String>,
    /// Unique per user.
    pub name: String,
    /// The secret to store (else one is generated).
    pub secret: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// When it stops working; `None` for never.
    pub expires_at: Option<NaiveDateTime>,
    /// Whether its tokens may create application credentials and trusts.
    pub unrestricted: bool,
    /// `None`: every role of the creating token.
    pub roles: Option<Vec<RoleRef>>,
    /// `None`: no access rules (any request).
    pub access_rules: Option<Vec<NewAccessRule>>,
}

/// A stored credential, and its secret in the create response only.
pub struct CreatedApplicationCredential {
    /// The stored credential.
    pub credential: ApplicationCredential,
    /// The secret, shown in the create response only.
    pub secret: String,
}

/// Keystone's 404 for an application credential.
pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("Application Credential", id)
}

/// Keystone's 404 for an access rule.
pub fn access_rule_not_found(id: &str) -> ApiError {
    ApiError::not_found("Access Rule", id)
}

fn validation_error(detail: &str) -> ApiError {
    ApiError::BadRequest(format!("Invalid application credential: {detail}"))
}

/// Keystone's generated secret: 64 random bytes, urlsafe base64 without padding (86
/// characters).
pub fn generate_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Keystone's check before any application credential write: a token issued from a restricted
/// credential may not manage credentials.
pub fn refuse_restricted(token: &TokenBody) -> ApiResult<()> {
    if let Some(ac) = &token.application_credential {
        if ac.restricted {
            return Err(ApiError::Forbidden(
                "Using method 'application_credential' is not allowed for managing additional application credentials.".into(),
            ));
        }
    }
    Ok(())
}

impl Identity {
    /// The role ids a create request names, with the roles they imply (Keystone appends them
    /// while it walks the list); every one must be among `token_roles` (400 otherwise).
    /// `[application_credential] user_limit`: Keystone counts every credential the user holds,
    /// expired ones too.
    async fn check_user_limit(&self, user_id: &str) -> ApiResult<()> {
        let Some(limit) = self.config.application_credential.user_limit else {
            return Ok(());
        };
        let held = self
            .store
            .list_application_credentials(user_id, None)
            .await?
            .len();
        if held >= limit as usize {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Unable to create additional application credentials, maximum of {limit} already exceeded for user."
            )));
        }
        Ok(())
    }

    async fn requested_roles(
        &self,
        refs: &[RoleRef],
        token_roles: &[String],
    ) -> ApiResult<Vec<String>> {
        let dir = self.tokens.directory_snapshot().await?;
        let mut ids: Vec<String> = Vec::new();
        for r in refs {
            let id = match r {
                RoleRef::Id(id) => id.clone(),
                RoleRef::Name(name) => dir
                    .roles
                    .values()
                    .find(|role| &role.name == name && role.domain_id.is_none())
                    .map(|role| role.id.clone())
                    .ok_or_else(|| ApiError::not_found("role", name))?,
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut i = 0;
        while i < ids.len() {
            if let Some(implied) = dir.implied.get(&ids[i]) {
                for imp in implied {
                    if !ids.contains(imp) {
                        ids.push(imp.clone());
                    }
                }
            }
            i += 1;
        }
        if ids.iter().any(|id| !token_roles.contains(id)) {
            return Err(validation_error(
                "Cannot create an application credential with unassigned role",
            ));
        }
        Ok(ids)
    }

    /// Creates a credential for the caller (`creator`, the caller's validated token) on the
    /// token's project. Roles default to every role of the token; requested roles, with the
    /// roles they imply, must all be among them (400 otherwise).
    pub async fn create_application_credential(
        &self,
        creator: &TokenBody,
        new: NewApplicationCredential,
    ) -> ApiResult<CreatedApplicationCredential> {
        refuse_restricted(creator)?;
        let token_roles: Vec<String> = creator
            .roles
            .iter()
            .flatten()
            .map(|r| r.id.clone())
            .collect();
        let project_id = creator.project.as_ref().map(|p| p.id.clone());
        let role_ids = match &new.roles {
            Some(refs) if !refs.is_empty() => self.requested_roles(refs, &token_roles).await?,
            _ => token_roles,
        };
        self.check_user_limit(&creator.user.id).await?;
        let secret = match new.secret {
            Some(s) if !s.is_empty() => s,
            _ => generate_secret(),
        };
        let secret_hash = self.hash(secret.clone()).await?;
        let credential = ApplicationCredential {
            id: new.id.unwrap_or_else(baton_store::new_id),
            name: new.name,
            secret_hash,
            description: new.description,
            user_id: creator.user.id.clone(),
            project_id,
            system: None,
            expires_at: new.expires_at,
            unrestricted: new.unrestricted,
            role_ids,
            access_rules: new.access_rules.map(|rules| {
                rules
                    .into_iter()
                    .map(|r| AccessRule {
                        id: r.id.unwrap_or_else(baton_store::new_id),
                        service: r.service,
                        path: r.path,
                        method: r.method,
                    })
                    .collect()
            }),
        };
        self.store
            .create_application_credential(&credential)
            .await
            .map_err(|e| match e {
                baton_store::StoreError::NotFound { id, .. } => access_rule_not_found(&id),
                other => other.into(),
            })?;
        let credential = self
            .store
            .get_application_credential(&credential.id)
            .await?
            .ok_or_else(|| not_found(&credential.id))?;
        self.audit()
            .resource("created", "application_credential", &credential.id)
            .await;
        Ok(CreatedApplicationCredential { credential, secret })
    }

    /// Deletes a credential; its tokens stop validating (validation reads the row).
    pub async fn delete_application_credential(&self, id: &str) -> ApiResult<()> {
        if !self.store.delete_application_credential(id).await? {
            return Err(not_found(id));
        }
        self.changed().await;
        self.audit()
            .resource("deleted", "application_credential", id)
            .await;
        Ok(())
    }

    /// Keystone deletes a user's credentials and access rules when the user is deleted or
    /// disabled.
    pub(super) async fn delete_application_credentials_of(&self, user_id: &str) -> ApiResult<()> {
        let ids = self.store.application_credential_ids(user_id, None).await?;
        for id in &ids {
            self.store.delete_application_credential(id).await?;
        }
        for rule in self.store.list_access_rules(user_id).await? {
            self.store.delete_access_rule(&rule.id, user_id).await?;
        }
        if !ids.is_empty() {
            self.changed().await;
        }
        Ok(())
    }

    /// Keystone's cascade of a role deletion: every user holding the role directly on a
    /// project loses their application credentials on that project.
    pub(super) async fn delete_application_credentials_for_role(
        &self,
        role_id: &str,
    ) -> ApiResult<()> {
        let filter = baton_store::AssignmentFilter {
            role_id: Some(role_id.to_string()),
            kinds: Some(vec![baton_store::AssignmentType::UserProject]),
            ..Default::default()
        };
        let mut deleted = false;
        for a in self.store.list_assignments(&filter).await? {
            let ids = self
                .store
                .application_credential_ids(&a.actor_id, Some(&a.target_id))
                .await?;
            for id in &ids {
                deleted |= self.store.delete_application_credential(id).await?;
            }
        }
        if deleted {
            self.changed().await;
        }
        Ok(())
    }

    /// Deletes one of a user's access rules; 403 while a credential uses it, as Keystone.
    pub async fn delete_access_rule(&self, id: &str, user_id: &str) -> ApiResult<()> {
        match self.store.delete_access_rule(id, user_id).await? {
            None => Err(access_rule_not_found(id)),
            Some(false) => Err(ApiError::ForbiddenNotSecurity(
                "May not delete access rule in use".into(),
            )),
            Some(true) => Ok(()),
        }
    }
}
