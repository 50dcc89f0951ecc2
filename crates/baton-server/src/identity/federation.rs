//! Federation resources: service providers, which every token lists while enabled, so each
//! write drops the directory snapshot and cached validations (the next token, and the next
//! validation of an existing one, shows the change, as Keystone renders them per request).

use baton_store::ServiceProvider;

use super::Identity;
use crate::error::ApiResult;

impl Identity {
    /// Creates (`Conflict` when the id is taken) or rewrites a service provider.
    pub async fn put_service_provider(
        &self,
        sp: &ServiceProvider,
        creating: bool,
    ) -> ApiResult<()> {
        self.store.put_service_provider(sp, creating).await?;
        self.changed().await;
        let op = if creating { "created" } else { "updated" };
        self.audit().resource(op, "service_provider", &sp.id).await;
        Ok(())
    }

    /// Deletes a service provider.
    pub async fn delete_service_provider(&self, id: &str) -> ApiResult<()> {
        self.store.delete_service_provider(id).await?;
        self.changed().await;
        self.audit()
            .resource("deleted", "service_provider", id)
            .await;
        Ok(())
    }
}
