//! Users, groups and group membership, and what their writes mean for tokens: a disabled or
//! deleted user, a new password, leaving a group, or deleting a group that held role
//! assignments ends the user's tokens everywhere (a revocation event, as Keystone records);
//! other changes only drop this node's cached validations.

use baton_store::{Group, PasswordRecord, User, UserUpdate};
use serde_json::{Map, Value};

use super::Identity;
use crate::error::{ApiError, ApiResult};
use crate::password;

/// Keystone's `lock_password` user option (its id): the user may not change their password.
pub const LOCK_PASSWORD: &str = "1003";
/// Keystone's `ignore_change_password_upon_first_use` user option (its id).
pub const IGNORE_CHANGE_PASSWORD_UPON_FIRST_USE: &str = "1000";
/// Keystone's `ignore_password_expiry` user option (its id): `password_expires_days` does not
/// apply, and an expired password still logs in.
pub const IGNORE_PASSWORD_EXPIRY: &str = "1001";
/// Keystone's `ignore_lockout_failure_attempts` user option (its id): the user is never locked
/// out by `[security_compliance] lockout_failure_attempts`.
pub const IGNORE_LOCKOUT_FAILURE_ATTEMPTS: &str = "1002";

/// A new local user as the request gave it.
#[derive(Clone, Default)]
pub struct NewUser {
    /// Unique within the domain (surrounding spaces are trimmed).
    pub name: String,
    /// As given; else the caller's domain scope, else the default domain.
    pub domain_id: Option<String>,
    /// A disabled user cannot log in.
    pub enabled: bool,
    /// The project a login without a scope asks for (not a domain).
    pub default_project_id: Option<String>,
    /// Attributes Keystone keeps in `extra`.
    pub extra: Map<String, Value>,
    /// `Some(None)` for `"password": null` (a password row without a hash).
    pub password: Option<Option<String>>,
    /// `(option id, JSON value)`.
    pub options: Vec<(String, String)>,
}

/// A PATCH of a user: `None` leaves an attribute as it is.
#[derive(Clone, Default)]
pub struct UserChanges {
    /// A new name.
    pub name: Option<String>,
    /// What the body said; a different domain is refused.
    pub domain_id: Option<String>,
    /// Disabling ends the user's tokens.
    pub enabled: Option<bool>,
    /// A new default project; `Some(None)` clears it.
    pub default_project_id: Option<Option<String>>,
    /// Merged over the stored `extra` (when not empty).
    pub extra: Map<String, Value>,
    /// `(option id, JSON value)`; `None` removes the option.
    pub options: Vec<(String, Option<String>)>,
    /// A new password (ends the user's tokens); `Some(None)` for `null`.
    pub password: Option<Option<String>>,
}

/// A new group as the request gave it.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    /// Unique within the domain.
    pub name: String,
    /// As given; else the caller's domain scope, else the default domain.
    pub domain_id: Option<String>,
    /// Free text (Keystone stores an empty one when none is given).
    pub description: Option<String>,
    /// Attributes Keystone keeps in `extra`.
    pub extra: Map<String, Value>,
}

/// A PATCH of a group.
#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// What the body said; a different domain is refused.
    pub domain_id: Option<String>,
    /// Attributes merged over the stored `extra`.
    pub extra: Map<String, Value>,
}

/// Keystone's 404 for a user.
pub fn user_not_found(id: &str) -> ApiError {
    ApiError::not_found("user", id)
}

/// 404 for a membership that does not exist.
pub fn not_a_member(user_id: &str, group_id: &str) -> ApiError {
    ApiError::NotFound(format!("User '{user_id}' not found in group '{group_id}'"))
}

/// Keystone's 404 for a group.
pub fn group_not_found(id: &str) -> ApiError {
    ApiError::not_found("group", id)
}

impl Identity {
    /// The domain a new user or group goes to, which must exist (404).
    async fn home_domain(
        &self,
        given: Option<String>,
        caller_domain: Option<String>,
    ) -> ApiResult<String> {
        let domain_id = given
            .or(caller_domain)
            .unwrap_or_else(|| self.config.identity.default_domain_id.clone());
        if self.store.get_domain(&domain_id).await?.is_none() {
            return Err(ApiError::NotFound(format!(
                "Could not find domain: {domain_id}."
            )));
        }
        Ok(domain_id)
    }

    /// Keystone refuses a domain as a default project; an unknown project is accepted.
    async fn check_default_project(&self, project_id: Option<&str>) -> ApiResult<()> {
        if let Some(pid) = project_id {
            if let Some(p) = self.store.get_project(pid).await? {
                if p.is_domain {
                    return Err(ApiError::BadRequest(format!(
                        "User's default project ID cannot be a domain ID: {pid}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Hashes with `[identity] password_hash_algorithm`/`rounds`, off the async workers; a
    /// password the hash would truncate is refused under `strict_password_check`.
    pub(super) async fn hash(&self, password: String) -> ApiResult<String> {
        password::refuse_truncation(&self.config, &password)?;
        let algorithm = self.config.identity.password_hash_algorithm;
        let rounds = self.config.identity.password_hash_rounds;
        self.tokens
            .hashing
            .run(move || password::hash_password(&password, algorithm, rounds))
            .await?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// `[security_compliance] minimum_password_age`: a password the user set themselves is
    /// kept that many days before they may change it (an administrator's reset is not bound).
    fn check_minimum_password_age(&self, current: Option<&PasswordRecord>) -> ApiResult<()> {
        let days = self.config.security_compliance.minimum_password_age;
        let Some(created) = current
            .filter(|r| r.self_service)
            .and_then(|r| r.created_at)
        else {
            return Ok(());
        };
        let until = created + chrono::Duration::days(i64::from(days));
        let now = self.now();
        if days == 0 || now >= until {
            return Ok(());
        }
        Err(ApiError::BadRequest(format!(
            "You cannot change your password at this time due to the minimum password age. \
             Once you change your password, it must be used for {days} day(s) before it can be \
             changed. Please try again in {} day(s) or contact your administrator to reset your \
             password.",
            (until - now).num_days()
        )))
    }

    /// `[security_compliance] unique_last_password_count`: the new password differs from the
    /// newest that many passwords (checked against their hashes, off the async workers).
    async fn check_password_history(&self, user_id: &str, new: &str) -> ApiResult<()> {
        let count = self.config.security_compliance.unique_last_password_count;
        if count == 0 {
            return Ok(());
        }
        let hashes = self
            .store
            .recent_password_hashes(user_id, count as usize)
            .await?;
        let candidate = new.to_string();
        let reused = self
            .tokens
            .hashing
            .run(move || {
                hashes
                    .iter()
                    .any(|h| password::verify_password(&candidate, h).unwrap_or(false))
            })
            .await?;
        if reused {
            return Err(ApiError::BadRequest(format!(
                "The new password cannot be identical to a previous password. The total number \
                 which includes the new password must be unique is {count}."
            )));
        }
        Ok(())
    }

    /// Keystone's expiry of a password just set: now when an administrator set it under
    /// `[security_compliance] change_password_upon_first_use` (unless the user has
    /// `ignore_change_password_upon_first_use`), else `password_expires_days` from now in
    /// whole seconds (unless `ignore_password_expiry`), else none.
    async fn apply_password_expiry(&self, user_id: &str, set_by_admin: bool) -> ApiResult<()> {
        use chrono::SubsecRound;
        let policy = &self.config.security_compliance;
        if !policy.change_password_upon_first_use && policy.password_expires_days.is_none() {
            return Ok(());
        }
        let now = self.now();
        let first_use = set_by_admin
            && policy.change_password_upon_first_use
            && !self
                .tokens
                .user_option_set(user_id, IGNORE_CHANGE_PASSWORD_UPON_FIRST_USE)
                .await?;
        let expires_at = if first_use {
            Some(now)
        } else {
            match policy.password_expires_days {
                Some(days)
                    if !self
                        .tokens
                        .user_option_set(user_id, IGNORE_PASSWORD_EXPIRY)
                        .await? =>
                {
                    Some((now + chrono::Duration::days(i64::from(days))).trunc_subsecs(0))
                }
                _ => None,
            }
        };
        if let Some(at) = expires_at {
            self.store.expire_current_password(user_id, at).await?;
        }
        Ok(())
    }

    async fn hash_given(
        &self,
        password: Option<Option<String>>,
    ) -> ApiResult<Option<Option<String>>> {
        Ok(match password {
            Some(Some(pw)) => {
                password::check_requirements(&self.config.security_compliance, &pw)?;
                Some(Some(self.hash(pw).await?))
            }
            Some(None) => Some(None),
            None => None,
        })
    }

    async fn reload_user(&self, id: &str) -> ApiResult<User> {
        self.store
            .get_user(id)
            .await?
            .ok_or_else(|| user_not_found(id))
    }

    /// Creates a local user (a new user is in no token yet).
    pub async fn create_user(
        &self,
        new: NewUser,
        caller_domain: Option<String>,
    ) -> ApiResult<User> {
        let domain_id = self.home_domain(new.domain_id, caller_domain).await?;
        self.check_default_project(new.default_project_id.as_deref())
            .await?;
        let user = User {
            id: baton_store::new_id(),
            name: new.name.trim().to_string(),
            domain_id,
            enabled: new.enabled,
            default_project_id: new.default_project_id,
            extra: Some(Value::Object(new.extra).to_string()),
            created_at: None,
        };
        let hashed = self.hash_given(new.password).await?;
        self.store
            .create_user_with_options(
                &user,
                hashed.as_ref().map(|h| h.as_deref()),
                &new.options,
                self.now(),
            )
            .await?;
        if hashed.as_ref().is_some_and(Option::is_some) {
            self.apply_password_expiry(&user.id, true).await?;
        }
        tracing::info!(user_id = %user.id, domain_id = %user.domain_id, "user created");
        self.audit().resource("created", "user", &user.id).await;
        self.reload_user(&user.id).await
    }

    /// Applies a PATCH to `old`. Disabling the user or setting a new (non-null) password ends
    /// their tokens, as in Keystone.
    pub async fn update_user(&self, old: &User, changes: UserChanges) -> ApiResult<User> {
        if changes
            .domain_id
            .as_deref()
            .is_some_and(|d| d != old.domain_id)
        {
            return Err(ApiError::BadRequest("Cannot change Domain ID".into()));
        }
        self.check_default_project(changes.default_project_id.clone().flatten().as_deref())
            .await?;
        // Keystone merges the body over the stored user and keeps every non-column attribute.
        let extra = if changes.extra.is_empty() {
            None
        } else {
            Some(super::merge_extra(old.extra.as_deref(), changes.extra))
        };
        let new_password = matches!(changes.password, Some(Some(_)));
        let update = UserUpdate {
            name: changes.name.map(|n| n.trim().to_string()),
            // Keystone writes the shown `enabled` back on any PATCH, so an inactive user
            // (`disable_user_account_days_inactive`) becomes disabled in the row too: only
            // re-enabling brings them back, not the `ignore_user_inactivity` option alone.
            enabled: changes.enabled.or((!old.enabled).then_some(false)),
            default_project_id: changes.default_project_id,
            extra,
            options: changes.options,
            password_hash: self.hash_given(changes.password).await?,
        };
        self.store.update_user(&old.id, &update, self.now()).await?;
        if new_password {
            self.apply_password_expiry(&old.id, true).await?;
        }
        let disabled = changes.enabled == Some(false) && old.enabled;
        if disabled {
            self.delete_application_credentials_of(&old.id).await?;
        }
        if disabled || new_password {
            self.revoke_user_tokens(&old.id).await?;
        } else {
            self.changed().await;
        }
        tracing::info!(user_id = %old.id, disabled, password_changed = new_password, "user updated");
        self.audit().resource("updated", "user", &old.id).await;
        self.reload_user(&old.id).await
    }

    /// Deletes a user with their assignments and memberships; their tokens end.
    pub async fn delete_user(&self, user_id: &str) -> ApiResult<()> {
        if !self.store.delete_user(user_id, self.now()).await? {
            return Err(user_not_found(user_id));
        }
        self.delete_application_credentials_of(user_id).await?;
        // Keystone deletes the user's trusts (as trustor or trustee) with the user.
        self.store
            .delete_trusts_of_user(user_id, self.now())
            .await?;
        // Keystone deletes the user's credentials (EC2 ones included) with the user.
        self.store.delete_credentials_of_user(user_id).await?;
        self.revoke_user_tokens(user_id).await?;
        tracing::info!(user_id = %user_id, "user deleted");
        self.audit().resource("deleted", "user", user_id).await;
        Ok(())
    }

    /// `POST /v3/users/{user_id}/password`: the original password is the check (401 for a
    /// wrong password or unknown user, alike), a disabled user is refused, and so is a user
    /// whose `lock_password` option is set. Ends the user's tokens.
    pub async fn change_own_password(
        &self,
        user_id: &str,
        original: &str,
        new: String,
    ) -> ApiResult<()> {
        // Keystone checks the original password the same way, but only for a user that exists
        // and has a password (401 otherwise), which tells user ids apart: refused for anyone.
        password::refuse_truncation(&self.config, original)?;
        let user = if user_id.is_empty() || user_id.len() > super::ID_MAX {
            None
        } else {
            self.store.get_user(user_id).await?
        };
        let (record, verified) = self.tokens.check_password(user.as_ref(), original).await?;
        let verified = record.is_some() && verified.unwrap_or(false);
        let Some(user) = user.filter(|_| verified) else {
            return Err(ApiError::unauthorized(format!(
                "Error when changing user password: Invalid user / password (user {user_id})"
            )));
        };
        if !user.enabled {
            return Err(ApiError::unauthorized(format!(
                "The account is disabled for user: {}.",
                user.id
            )));
        }
        // Keystone's order: the regex, then the lock, the minimum age and the history.
        password::check_requirements(&self.config.security_compliance, &new)?;
        if self.tokens.user_option_set(&user.id, LOCK_PASSWORD).await? {
            return Err(ApiError::BadRequest(
                "You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password.".into(),
            ));
        }
        self.check_minimum_password_age(record.as_ref())?;
        self.check_password_history(&user.id, &new).await?;
        let hashed = self.hash(new).await?;
        self.store
            .change_own_password(&user.id, &hashed, self.now())
            .await?;
        self.apply_password_expiry(&user.id, false).await?;
        self.revoke_user_tokens(&user.id).await?;
        tracing::info!(user_id = %user.id, "user changed their password");
        self.audit().resource("updated", "user", &user.id).await;
        Ok(())
    }

    // ----- groups ----------------------------------------------------------------------------

    /// Creates a group (a new group is in nobody's token yet).
    pub async fn create_group(
        &self,
        new: NewGroup,
        caller_domain: Option<String>,
    ) -> ApiResult<Group> {
        let domain_id = self.home_domain(new.domain_id, caller_domain).await?;
        let group = Group {
            id: baton_store::new_id(),
            name: new.name.trim().to_string(),
            domain_id,
            // Keystone stores an empty description when none is given.
            description: Some(new.description.unwrap_or_default()),
            extra: Some(Value::Object(new.extra).to_string()),
        };
        self.store.create_group(&group).await?;
        tracing::info!(group_id = %group.id, domain_id = %group.domain_id, "group created");
        self.audit().resource("created", "group", &group.id).await;
        Ok(group)
    }

    /// Applies a PATCH to a group; its domain does not change. Group names and descriptions
    /// appear in no token.
    pub async fn update_group(&self, mut group: Group, changes: GroupChanges) -> ApiResult<Group> {
        if changes
            .domain_id
            .as_deref()
            .is_some_and(|d| d != group.domain_id)
        {
            return Err(ApiError::BadRequest("Cannot change Domain ID".into()));
        }
        if let Some(name) = changes.name {
            group.name = name.trim().to_string();
        }
        if let Some(description) = changes.description {
            group.description = description;
        }
        if !changes.extra.is_empty() {
            group.extra = Some(super::merge_extra(group.extra.as_deref(), changes.extra));
        }
        self.store.update_group(&group).await?;
        self.audit().resource("updated", "group", &group.id).await;
        Ok(group)
    }

    /// Deletes a group; if it held role assignments, its members' tokens end.
    pub async fn delete_group(&self, group_id: &str) -> ApiResult<()> {
        let deleted = self
            .store
            .delete_group(group_id)
            .await?
            .ok_or_else(|| group_not_found(group_id))?;
        if deleted.had_assignments {
            for user_id in &deleted.member_ids {
                self.revoke_user_tokens(user_id).await?;
            }
        }
        self.changed().await;
        tracing::info!(group_id = %group_id, members = deleted.member_ids.len(), "group deleted");
        self.audit().resource("deleted", "group", group_id).await;
        Ok(())
    }

    /// Adds a user to a group: the user may gain the group's roles.
    pub async fn add_user_to_group(&self, user: &User, group: &Group) -> ApiResult<()> {
        self.store.add_user_to_group(&user.id, &group.id).await?;
        self.changed().await;
        tracing::info!(group_id = %group.id, user_id = %user.id, "user added to group");
        self.audit().membership(true, &group.id, &user.id).await;
        Ok(())
    }

    /// Removes a user from a group (404 when not a member); Keystone ends the user's tokens
    /// whatever the group granted.
    pub async fn remove_user_from_group(&self, user: &User, group: &Group) -> ApiResult<()> {
        if !self
            .store
            .remove_user_from_group(&user.id, &group.id)
            .await?
        {
            return Err(not_a_member(&user.id, &group.id));
        }
        self.revoke_user_tokens(&user.id).await?;
        tracing::info!(group_id = %group.id, user_id = %user.id, "user removed from group");
        self.audit().membership(false, &group.id, &user.id).await;
        Ok(())
    }
}
