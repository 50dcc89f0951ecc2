//! OAuth1 delegation: consumers (made with a fresh secret, shown once; deleting one deletes its
//! request and access tokens and, by a revocation event, every token issued through it), and
//! the three steps by which a user delegates roles on a project to a consumer: the consumer's
//! request token, the user's authorization (a verifier), the consumer's access token. The
//! signature checks are in [`crate::oauth1_signature`]; the tokens an access token yields are
//! in [`crate::tokens`].

use baton_store::{AccessToken, Consumer, RequestToken, RevocationEvent};
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom as _;

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// Keystone's 404 for a consumer that does not exist.
pub fn consumer_not_found() -> ApiError {
    ApiError::NotFound("Consumer not found".into())
}

/// Keystone's 404 for a request token that does not exist (or was exchanged already).
pub fn request_token_not_found() -> ApiError {
    ApiError::NotFound("Request token not found".into())
}

/// Keystone's 404 for an access token that does not exist.
pub fn access_token_not_found() -> ApiError {
    ApiError::NotFound("Access token not found".into())
}

/// How Keystone names these in its notifications.
const CONSUMER: &str = "OS-OAUTH1:consumer";
const REQUEST_TOKEN: &str = "OS-OAUTH1:request_token";
const ACCESS_TOKEN: &str = "OS-OAUTH1:access_token";

/// Keystone's verifier alphabet: letters and digits without those easily confused (`jiIl1oO0`).
pub const VERIFIER_CHARS: &str = "abcdefghkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Keystone's `isotime(subsecond=True)`, as the token tables store expiry.
pub fn isotime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Whether an expiry stored as Keystone writes it has passed; an unreadable one counts as
/// passed.
pub fn expired(expires_at: Option<&str>, now: DateTime<Utc>) -> bool {
    let Some(text) = expires_at else {
        return false;
    };
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(
                text.trim_end_matches('Z'),
                "%Y-%m-%dT%H:%M:%S%.f",
            )
            .map(|t| t.and_utc())
        });
    parsed.map_or(true, |t| now > t)
}

/// The role ids of a request or access token's `role_ids` column (a JSON list).
pub fn role_ids(column: Option<&str>) -> Vec<String> {
    column
        .and_then(|c| serde_json::from_str::<Vec<String>>(c).ok())
        .unwrap_or_default()
}

impl Identity {
    /// Creates a consumer with a new id and secret.
    pub async fn create_consumer(
        &self,
        description: Option<String>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> ApiResult<Consumer> {
        let consumer = Consumer {
            id: baton_store::new_id(),
            description,
            secret: baton_store::new_id(),
            extra,
        };
        self.store.put_consumer(&consumer, true).await?;
        self.audit()
            .resource("created", CONSUMER, &consumer.id)
            .await;
        Ok(consumer)
    }

    /// Rewrites a consumer's description and extra attributes.
    pub async fn update_consumer(&self, consumer: &Consumer) -> ApiResult<()> {
        if !self.store.put_consumer(consumer, false).await? {
            return Err(consumer_not_found());
        }
        self.audit()
            .resource("updated", CONSUMER, &consumer.id)
            .await;
        Ok(())
    }

    /// Deletes a consumer, its request and access tokens, and (by a revocation event) every
    /// token issued through it.
    pub async fn delete_consumer(&self, id: &str) -> ApiResult<()> {
        if !self.store.delete_consumer(id).await? {
            return Err(consumer_not_found());
        }
        self.revoke(RevocationEvent {
            consumer_id: Some(id.to_string()),
            ..RevocationEvent::default()
        })
        .await?;
        self.changed().await;
        self.audit().resource("deleted", CONSUMER, id).await;
        Ok(())
    }
}

impl Identity {
    fn expiry_after(&self, seconds: u32) -> Option<String> {
        (seconds > 0).then(|| {
            isotime(self.tokens.clock.now() + chrono::Duration::seconds(i64::from(seconds)))
        })
    }

    /// Stores a request token for `consumer_id` on `project_id` (both checked by the caller),
    /// expiring after `[oauth1] request_token_duration`.
    pub async fn create_request_token(
        &self,
        consumer_id: &str,
        project_id: &str,
    ) -> ApiResult<RequestToken> {
        let token = RequestToken {
            id: baton_store::new_id(),
            request_secret: baton_store::new_id(),
            verifier: None,
            authorizing_user_id: None,
            requested_project_id: project_id.to_string(),
            role_ids: None,
            consumer_id: consumer_id.to_string(),
            expires_at: self.expiry_after(self.config.oauth1.request_token_duration),
        };
        self.store.create_request_token(&token).await?;
        self.audit()
            .resource("created", REQUEST_TOKEN, &token.id)
            .await;
        Ok(token)
    }

    /// Records that `user_id` authorized the request token with `role_ids` (the caller checked
    /// the user holds them); returns the new verifier.
    pub async fn authorize_request_token(
        &self,
        id: &str,
        user_id: &str,
        role_ids: &[String],
    ) -> ApiResult<String> {
        let alphabet: Vec<char> = VERIFIER_CHARS.chars().collect();
        let verifier: String = alphabet
            .choose_multiple(&mut rand::rngs::OsRng, 8)
            .collect();
        let roles = serde_json::to_string(role_ids)
            .map_err(|e| ApiError::Internal(format!("role ids: {e}")))?;
        if !self
            .store
            .authorize_request_token(id, user_id, &roles, &verifier)
            .await?
        {
            return Err(request_token_not_found());
        }
        Ok(verifier)
    }

    /// Exchanges an authorized request token for an access token, expiring after `[oauth1]
    /// access_token_duration`; the request token is used up.
    pub async fn create_access_token(&self, request: &RequestToken) -> ApiResult<AccessToken> {
        let token = AccessToken {
            id: baton_store::new_id(),
            access_secret: baton_store::new_id(),
            authorizing_user_id: request.authorizing_user_id.clone().unwrap_or_default(),
            project_id: request.requested_project_id.clone(),
            role_ids: request.role_ids.clone().unwrap_or_else(|| "[]".into()),
            consumer_id: request.consumer_id.clone(),
            expires_at: self.expiry_after(self.config.oauth1.access_token_duration),
        };
        if !self
            .store
            .exchange_request_token(&request.id, &token)
            .await?
        {
            return Err(request_token_not_found());
        }
        self.audit()
            .resource("created", ACCESS_TOKEN, &token.id)
            .await;
        Ok(token)
    }

    /// The ids of the roles `user_id` holds on `project_id` (direct, through groups, inherited
    /// and implied); none when the project is gone.
    pub async fn effective_project_role_ids(
        &self,
        user_id: &str,
        project_id: &str,
    ) -> ApiResult<Vec<String>> {
        let Some(project) = self.store.get_project(project_id).await? else {
            return Ok(Vec::new());
        };
        let dir = self.tokens.directory_snapshot().await?;
        let roles = self
            .tokens
            .project_roles(crate::tokens::Read::Database, &dir, user_id, &project)
            .await?;
        Ok(roles.into_iter().map(|r| r.id).collect())
    }

    /// Deletes an access token; the tokens it yielded stop validating (they look it up).
    pub async fn delete_access_token(&self, id: &str) -> ApiResult<()> {
        if !self.store.delete_access_token(id).await? {
            return Err(access_token_not_found());
        }
        self.changed().await;
        self.audit().resource("deleted", ACCESS_TOKEN, id).await;
        Ok(())
    }
}
