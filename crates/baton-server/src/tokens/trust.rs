//! Trust-scoped tokens (Fernet payload version 3), issued to a trust's trustee and checked
//! against the trust row on every validation, cached or not, as Keystone re-reads it: a
//! trust deleted, expired or used up by any node (or by Keystone) ends its tokens at once.

use baton_store::{Role, Trust, TrustUse, User};
use baton_token::Scope;
use baton_types::{IdName, IdOnly, TokenBody, TokenTrust, TokenUser};

use super::{Authenticated, Checked, Read, Refusal, RequestedScope, TokenService};
use crate::directory::Directory;
use crate::error::{ApiError, ApiResult};
use crate::identity::trusts::{max_redelegation, usable_trust};

/// Keystone's refusal of a trust token's user or roles: a plain `Forbidden`, whose detail only
/// `insecure_debug` would show.
pub(super) fn trust_forbidden() -> ApiError {
    ApiError::forbidden_plain("trust token refused")
}

/// Keystone (LP#2156586): a token never outlives the trust it was issued through.
fn within_trust(expires_at: f64, trust: Option<&Trust>) -> f64 {
    match trust.and_then(|t| t.expires_at) {
        Some(e) => expires_at.min(e.and_utc().timestamp_micros() as f64 / 1_000_000.0),
        None => expires_at,
    }
}

impl TokenService {
    /// The scope of a new token and, for a trust scope, the trust (which caps the expiry and
    /// loses a use once the token is minted).
    pub(super) async fn token_scope(
        &self,
        auth: &Authenticated,
        scope: &RequestedScope,
        expires_at: f64,
    ) -> ApiResult<(Scope, Option<Trust>, f64)> {
        if let Some(c) = &auth.app_cred {
            let expires_at = super::within_app_cred(expires_at, Some(c));
            return Ok((super::app_cred_scope(c)?, None, expires_at));
        }
        let RequestedScope::Trust(trust_id) = scope else {
            let s = self.resolve_scope(&auth.user, scope.clone()).await?;
            return Ok((s, None, expires_at));
        };
        let (s, trust) = self.trust_scope(&auth.user, trust_id).await?;
        let expires_at = within_trust(expires_at, Some(&trust));
        Ok((s, Some(trust), expires_at))
    }

    /// Keystone's trust scope at issue: the trust usable (401 otherwise, as Keystone turns its
    /// `TrustNotFound` into), its project usable (401), the authenticated user its trustee (403).
    async fn trust_scope(&self, user: &User, trust_id: &str) -> ApiResult<(Scope, Trust)> {
        let now = self.clock.now().naive_utc();
        let trust = usable_trust(&self.store, now, trust_id, max_redelegation(&self.config))
            .await?
            .ok_or_else(|| ApiError::unauthorized(format!("Could not find trust: {trust_id}.")))?;
        let project_id = trust
            .project_id
            .clone()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the trust has no project"))?;
        if self
            .usable_project(Read::Database, &project_id)
            .await?
            .is_none()
        {
            return Err(ApiError::unauthorized(format!(
                "project {project_id} is missing or disabled"
            )));
        }
        if user.id != trust.trustee_user_id {
            tracing::info!(trust_id, "User is not a trustee.");
            return Err(trust_forbidden());
        }
        let scope = Scope::Trust {
            project_id,
            trust_id: trust.id.clone(),
        };
        Ok((scope, trust))
    }

    /// Takes one use of the trust a token was just minted through. Keystone consumes after
    /// minting, and one conditional update decides, so concurrent issues cannot both take the
    /// last use: the loser gets Keystone's 403 (401 when the trust vanished meanwhile).
    pub(super) async fn consume_trust(&self, trust: Option<&Trust>) -> ApiResult<()> {
        let Some(trust) = trust else { return Ok(()) };
        match self.store.consume_trust_use(&trust.id).await? {
            TrustUse::Unlimited | TrustUse::Consumed => {
                if trust.remaining_uses.is_some() {
                    // Its tokens now see the new count (a used-up trust ends them, as Keystone).
                    self.invalidate_caches();
                }
                Ok(())
            }
            TrustUse::Exhausted => Err(ApiError::forbidden_plain("trust used up")),
            TrustUse::Missing => Err(ApiError::unauthorized(format!(
                "Could not find trust: {}.",
                trust.id
            ))),
        }
    }

    /// Whether the trust of a cached trust token is still usable (read on every hit).
    pub(super) async fn trust_still_usable(&self, trust_id: &str) -> ApiResult<bool> {
        let now = self.clock.now().naive_utc();
        match usable_trust(&self.store, now, trust_id, max_redelegation(&self.config)).await {
            Ok(found) => Ok(found.is_some()),
            Err(ApiError::ForbiddenNotSecurity(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fills a trust token's scope (the trust's project, `OS-TRUST:trust`, the trustor as user
    /// when impersonating) and returns its roles: the trust's roles with those they imply,
    /// every one still held by the (original) trustor on the project, else Keystone's 403.
    pub(super) async fn fill_trust_scope(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
        project_id: &str,
        trust_id: &str,
        body: &mut TokenBody,
    ) -> Checked<Option<(Vec<Role>, String)>> {
        let now = self.clock.now().naive_utc();
        let trust =
            match usable_trust(&self.store, now, trust_id, max_redelegation(&self.config)).await {
                Ok(Some(t)) if t.project_id.as_deref() == Some(project_id) => t,
                Ok(_) => return Ok(Err(Refusal::TrustUnusable(trust_id.to_string()))),
                Err(ApiError::ForbiddenNotSecurity(_)) => return Ok(Err(Refusal::TrustForbidden)),
                Err(e) => return Err(e),
            };
        if user_id != trust.trustee_user_id {
            return Ok(Err(Refusal::TrustForbidden));
        }
        let (trustor, trustor_domain) = match self.token_user(read, &trust.trustor_user_id).await? {
            Ok(found) => found,
            Err(Refusal::UserDisabled(_)) => return Ok(Err(Refusal::TrustForbidden)),
            Err(other) => return Ok(Err(other)),
        };
        let original = self.original_trustor(&trust).await?;
        let (held, target) = match self
            .fill_project_scope(read, dir, &original, project_id, body)
            .await?
        {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // Keystone's trust token body names the project only.
        body.is_domain = None;
        body.is_admin_project = None;
        let mut roles = Vec::new();
        for role in dir.expand_roles(trust.role_ids.iter().cloned()) {
            if !held.iter().any(|h| h.id == role.id) {
                return Ok(Err(Refusal::TrustForbidden));
            }
            roles.push(role);
        }
        if trust.impersonation {
            body.user = TokenUser {
                domain: IdName {
                    id: trustor_domain.id.clone(),
                    name: trustor_domain.name.clone(),
                },
                password_expires_at: trustor.password_expires_at,
                id: trustor.user.id.clone(),
                name: trustor.user.name.clone(),
            };
        }
        body.trust = Some(TokenTrust {
            id: trust.id,
            impersonation: trust.impersonation,
            trustee_user: IdOnly {
                id: trust.trustee_user_id,
            },
            trustor_user: IdOnly {
                id: trust.trustor_user_id,
            },
        });
        Ok(Ok(Some((roles, target))))
    }

    /// The trustor at the root of a redelegation chain, whose roles every link delegates.
    async fn original_trustor(&self, trust: &Trust) -> ApiResult<String> {
        let mut trustor = trust.trustor_user_id.clone();
        let mut next = trust.redelegated_trust_id.clone();
        for _ in 0..=max_redelegation(&self.config).saturating_add(1) {
            let Some(id) = next else { break };
            let Some(parent) = self.store.get_trust(&id).await? else {
                break;
            };
            trustor = parent.trustor_user_id;
            next = parent.redelegated_trust_id;
        }
        Ok(trustor)
    }
}
