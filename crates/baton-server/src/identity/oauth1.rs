//! OAuth1 consumers: made with a fresh secret (shown once), changed, and deleted with their
//! request and access tokens; deleting one revokes every token issued through it, as Keystone
//! records a revocation event for the consumer.

use baton_store::{Consumer, RevocationEvent};

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// Keystone's 404 for a consumer that does not exist.
pub fn consumer_not_found() -> ApiError {
    ApiError::NotFound("Consumer not found".into())
}

/// How Keystone names consumers in its notifications.
const CONSUMER: &str = "OS-OAUTH1:consumer";

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
