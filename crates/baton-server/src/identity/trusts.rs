//! Trusts (OS-TRUST): Keystone 30's rules for creating, reading and deleting them. A trust lets
//! its trustee act with some of the trustor's roles on one project; its tokens are checked
//! against the row on every validation (see `tokens/trust.rs`), and deleting it records a
//! revocation event naming it, so its tokens stop validating on every node (and in Keystone,
//! which matches the same event).

use baton_store::{Store, Trust, TrustFilter};
use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use super::application_credentials::RoleRef;
use super::Identity;
use crate::error::{ApiError, ApiResult};
use crate::tokens::ValidatedToken;

/// `[trust] max_redelegation_count` as the rules compare it.
pub fn max_redelegation(config: &baton_config::IdentityConfig) -> i32 {
    i32::try_from(config.trust.max_redelegation_count).unwrap_or(i32::MAX)
}

/// A create request, already shape-checked.
#[derive(Debug, Clone, Default)]
pub struct NewTrust {
    /// Must be the caller.
    pub trustor_user_id: String,
    /// Must exist.
    pub trustee_user_id: String,
    /// The project the roles are delegated on.
    pub project_id: Option<String>,
    /// Whether its tokens show the trustor as their user.
    pub impersonation: bool,
    /// The delegated roles, by id or global name.
    pub roles: Vec<RoleRef>,
    /// ISO 8601, parsed at Keystone's step of the create (after the role checks).
    pub expires_at: Option<String>,
    /// How many tokens it may issue; `None` for unlimited.
    pub remaining_uses: Option<i64>,
    /// Whether the trustee may redelegate it.
    pub allow_redelegation: bool,
    /// How many more times it may be redelegated.
    pub redelegation_count: Option<i64>,
    /// A trust the request says it redelegates: only where Keystone looks for the original
    /// trustor's roles (the stored link is the caller's trust token's).
    pub redelegated_trust_id: Option<String>,
    /// Attributes that are not columns (Keystone keeps and shows them).
    pub extra: Map<String, Value>,
}

/// Keystone's 404 for a trust.
pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("trust", id)
}

/// Keystone's plain `Forbidden`: a security error whose detail only `insecure_debug` shows.
fn forbidden(detail: &str) -> ApiError {
    ApiError::forbidden_plain(detail)
}

/// Keystone's `_check_delegated_token`: tokens from a delegated method (application
/// credentials, restricted or not, EC2, OAuth1) may not read or manage trusts. Trust-scoped
/// tokens may: that is redelegation.
pub fn refuse_delegated(token: &ValidatedToken) -> ApiResult<()> {
    if token.from_delegated_method() {
        // Keystone's action text ends with a full stop, and its template adds another.
        return Err(ApiError::Forbidden(
            "Delegated tokens cannot manage trusts.".into(),
        ));
    }
    Ok(())
}

/// Keystone's `parse_expiration_date`: ISO 8601 read as UTC, not in the past.
fn parse_expiry(text: &str, now: NaiveDateTime) -> ApiResult<NaiveDateTime> {
    const TAIL: &str = " The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.";
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .or_else(|_| {
            let plain = text.trim_end_matches('Z');
            NaiveDateTime::parse_from_str(plain, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(plain, "%Y-%m-%dT%H:%M"))
        })
        .map_err(|_| ApiError::BadRequest(format!("Timestamp not in expected format.{TAIL}")))?;
    if t < now {
        return Err(ApiError::BadRequest(format!(
            "The 'expires_at' must not be before now.{TAIL}"
        )));
    }
    Ok(t)
}

/// Keystone's `_validate_redelegation`: what `child` (a trust redelegated, directly or further
/// down, from `parent`) may be given, and the expiry it inherits when it names none.
pub fn validate_redelegation(parent: &Trust, child: &mut Trust, max: i32) -> ApiResult<()> {
    let depth = parent.redelegation_count.unwrap_or(0);
    if !(0 < depth && depth <= max) {
        return Err(forbidden("redelegation depth out of range"));
    }
    if child.remaining_uses.is_some() {
        return Err(forbidden("remaining_uses must not be set to redelegate"));
    }
    match (child.expires_at, parent.expires_at) {
        (Some(c), Some(p)) if p < c => {
            return Err(forbidden("expiration later than the redelegated trust's"))
        }
        (None, p) => child.expires_at = p,
        _ => {}
    }
    if child.role_ids.iter().any(|r| !parent.role_ids.contains(r)) {
        return Err(forbidden("roles not in the redelegated trust"));
    }
    if child.impersonation && !parent.impersonation {
        return Err(forbidden(
            "impersonation not allowed by the redelegated trust",
        ));
    }
    Ok(())
}

/// Keystone's `get_trust`: the trust if it is not deleted, not expired and has uses left (a
/// used-up trust is "not found", and so are the tokens it issued), with its redelegation chain
/// checked (every link valid, every intermediate trustee enabled: 403 otherwise).
pub async fn usable_trust(
    store: &Store,
    now: NaiveDateTime,
    id: &str,
    max: i32,
) -> ApiResult<Option<Trust>> {
    let Some(trust) = usable_row(store, now, id).await? else {
        return Ok(None);
    };
    let mut child = trust.clone();
    let mut next = trust.redelegated_trust_id.clone();
    // Bounded: a chain is never longer than the redelegation limit allows.
    for _ in 0..=max.saturating_add(1) {
        let Some(parent_id) = next else {
            return Ok(Some(trust));
        };
        let Some(parent) = usable_row(store, now, &parent_id).await? else {
            return Ok(None);
        };
        validate_redelegation(&parent, &mut child, max)?;
        let agent = store.get_user(&parent.trustee_user_id).await?;
        if !agent.is_some_and(|u| u.enabled) {
            return Err(forbidden("One of the trust agents is disabled or deleted"));
        }
        next = parent.redelegated_trust_id.clone();
        child = parent;
    }
    Err(forbidden("redelegation chain too long"))
}

/// The row alone, as Keystone's driver filters it.
async fn usable_row(store: &Store, now: NaiveDateTime, id: &str) -> ApiResult<Option<Trust>> {
    Ok(store.get_trust(id).await?.filter(|t| {
        t.deleted_at.is_none()
            && t.expires_at.is_none_or(|e| now <= e)
            && t.remaining_uses.is_none_or(|n| n > 0)
    }))
}

impl Identity {
    fn max_redelegation(&self) -> i32 {
        max_redelegation(&self.config)
    }

    /// Creates a trust for the caller (Keystone's checks in Keystone's order, after policy).
    pub async fn create_trust(&self, caller: &ValidatedToken, new: NewTrust) -> ApiResult<Trust> {
        refuse_delegated(caller)?;
        if new.project_id.as_deref().is_some_and(|p| !p.is_empty()) && new.roles.is_empty() {
            return Err(ApiError::Forbidden(
                "At least one role should be specified".into(),
            ));
        }
        if caller.body.user.id != new.trustor_user_id {
            return Err(ApiError::Forbidden(
                "The authenticated user should match the trustor".into(),
            ));
        }
        if self.store.get_user(&new.trustee_user_id).await?.is_none() {
            return Err(ApiError::not_found("user", &new.trustee_user_id));
        }
        let role_ids = self.trust_role_ids(&new.roles).await?;
        self.require_trustor_roles(&new, &role_ids).await?;
        let now = self.now();
        let expires_at = match &new.expires_at {
            Some(text) => Some(parse_expiry(text, now)?),
            None => None,
        };
        let mut trust = Trust {
            id: baton_store::new_id(),
            trustor_user_id: new.trustor_user_id.clone(),
            trustee_user_id: new.trustee_user_id.clone(),
            project_id: new.project_id.clone(),
            impersonation: new.impersonation,
            deleted_at: None,
            expires_at,
            remaining_uses: new
                .remaining_uses
                .map(|n| n.clamp(0, i64::from(i32::MAX)) as i32),
            redelegated_trust_id: None,
            redelegation_count: None,
            extra: None,
            role_ids,
        };
        let parent = match caller.payload.trust_id() {
            Some(id) => Some(
                usable_trust(&self.store, now, id, self.max_redelegation())
                    .await?
                    .ok_or_else(|| not_found(id))?,
            ),
            None => None,
        };
        self.set_redelegation(&new, &mut trust, parent.as_ref())
            .await?;
        let mut extra = new.extra;
        let roles: Vec<Value> = trust
            .role_ids
            .iter()
            .map(|id| serde_json::json!({ "id": id }))
            .collect();
        extra.insert("roles".into(), Value::Array(roles));
        trust.extra = Some(Value::Object(extra).to_string());
        self.store.create_trust(&trust).await?;
        self.audit()
            .resource("created", "OS-TRUST:trust", &trust.id)
            .await;
        Ok(trust)
    }

    /// The role ids of a create request: ids as given, names of global roles looked up (404).
    async fn trust_role_ids(&self, refs: &[RoleRef]) -> ApiResult<Vec<String>> {
        let dir = self.tokens.directory_snapshot().await?;
        let mut ids: Vec<String> = Vec::with_capacity(refs.len());
        for r in refs {
            let id = match r {
                RoleRef::Id(id) => id.clone(),
                RoleRef::Name(name) => dir
                    .roles
                    .values()
                    .find(|role| &role.name == name && role.domain_id.is_none())
                    .map(|role| role.id.clone())
                    // Keystone's `get_unique_role_by_name` answer.
                    .ok_or_else(|| ApiError::NotFound(format!("Role {name} is not defined")))?,
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Keystone's `_require_trustor_has_role_in_project`: the project exists (404) and the
    /// trustor holds every requested role there, effectively (404 naming the first missing).
    async fn require_trustor_roles(&self, new: &NewTrust, role_ids: &[String]) -> ApiResult<()> {
        let (trustor, project_id) = self.original_trustor_and_project(new).await?;
        let held: Vec<String> = match new.project_id.as_deref().filter(|p| !p.is_empty()) {
            Some(pid) => {
                self.store
                    .get_project(pid)
                    .await?
                    .ok_or_else(|| ApiError::not_found("project", pid))?;
                let pid = project_id.as_deref().unwrap_or(pid);
                let project = self
                    .store
                    .get_project(pid)
                    .await?
                    .ok_or_else(|| ApiError::not_found("project", pid))?;
                let dir = self.tokens.directory_snapshot().await?;
                self.tokens
                    .project_roles(crate::tokens::Read::Database, &dir, &trustor, &project)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect()
            }
            None => Vec::new(),
        };
        match role_ids.iter().find(|id| !held.contains(id)) {
            Some(missing) => Err(ApiError::not_found("role", missing)),
            None => Ok(()),
        }
    }

    /// Keystone's `_get_trustor_roles` start: the trustor and project of the first trust of the
    /// chain the request names (404 for a missing link), else the request's own.
    async fn original_trustor_and_project(
        &self,
        new: &NewTrust,
    ) -> ApiResult<(String, Option<String>)> {
        let mut found = (new.trustor_user_id.clone(), new.project_id.clone());
        let mut next = new.redelegated_trust_id.clone();
        let now = self.now();
        let max = self.max_redelegation();
        for _ in 0..=max.saturating_add(1) {
            let Some(id) = next else { break };
            let t = usable_trust(&self.store, now, &id, max)
                .await?
                .ok_or_else(|| not_found(&id))?;
            found = (t.trustor_user_id, t.project_id);
            next = t.redelegated_trust_id;
        }
        Ok(found)
    }

    /// Keystone's `create_trust` bookkeeping of the redelegation count, and, when the caller's
    /// token is trust-scoped, the checks against every trust of the chain it redelegates.
    async fn set_redelegation(
        &self,
        new: &NewTrust,
        trust: &mut Trust,
        parent: Option<&Trust>,
    ) -> ApiResult<()> {
        let max = self.max_redelegation();
        let requested = new.redelegation_count;
        let redelegatable = new.allow_redelegation && requested != Some(0);
        if !redelegatable {
            trust.redelegation_count = Some(0);
        } else {
            if let Some(n) = requested.filter(|n| *n > i64::from(max)) {
                return Err(forbidden(&format!(
                    "Requested redelegation depth of {n} is greater than allowed {max}"
                )));
            }
            if trust.remaining_uses.is_some() {
                return Err(ApiError::BadRequest(
                    "remaining_uses must not be set if redelegation is allowed".into(),
                ));
            }
            trust.redelegation_count = requested.map(|n| n as i32);
        }
        let Some(parent) = parent else {
            trust.redelegation_count.get_or_insert(max);
            return Ok(());
        };
        trust.redelegated_trust_id = Some(parent.id.clone());
        let remaining = parent.redelegation_count.unwrap_or(0) - 1;
        if redelegatable && requested.is_some_and(|n| n != 0 && n != i64::from(remaining)) {
            return Err(forbidden(
                "Modifying \"redelegation_count\" upon redelegation is forbidden",
            ));
        }
        trust.redelegation_count.get_or_insert(remaining);
        // Every trust of the chain, from the one redelegated up to the first.
        let mut link = Some(parent.clone());
        for _ in 0..=max.saturating_add(1) {
            let Some(t) = link else { return Ok(()) };
            validate_redelegation(&t, trust, max)?;
            link = match &t.redelegated_trust_id {
                Some(id) => self.store.get_trust(id).await?,
                None => None,
            };
        }
        Err(forbidden("redelegation chain too long"))
    }

    /// Deletes a trust and, first, every trust redelegated from it (Keystone's recursion); each
    /// one's tokens stop validating everywhere (a revocation event naming the trust).
    pub async fn delete_trust(&self, caller: &ValidatedToken, id: &str) -> ApiResult<()> {
        refuse_delegated(caller)?;
        let now = self.now();
        let trust = usable_row(&self.store, now, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let mut pending = vec![trust];
        let mut doomed: Vec<String> = Vec::new();
        // Breadth-first over the redelegation tree; bounded by the rows that exist.
        while let Some(t) = pending.pop() {
            if doomed.contains(&t.id) {
                continue;
            }
            let children = self
                .store
                .list_trusts(&TrustFilter {
                    trustor_user_id: Some(t.trustor_user_id.clone()),
                    redelegated_trust_id: Some(t.id.clone()),
                    ..Default::default()
                })
                .await?;
            doomed.push(t.id);
            pending.extend(children);
        }
        for tid in doomed.iter().rev() {
            self.store.delete_trust(tid, now).await?;
            self.revoke(baton_store::RevocationEvent {
                trust_id: Some(tid.clone()),
                ..Default::default()
            })
            .await?;
        }
        self.changed().await;
        for tid in &doomed {
            self.audit()
                .resource("deleted", "OS-TRUST:trust", tid)
                .await;
        }
        Ok(())
    }
}
