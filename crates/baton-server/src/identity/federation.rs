//! Federation resources: service providers, which every token lists while enabled, so each
//! write drops the directory snapshot and cached validations (the next token, and the next
//! validation of an existing one, shows the change, as Keystone renders them per request);
//! identity providers (each with its domain, made for it when none is named), their protocols
//! and mappings. Deleting an identity provider or protocol deletes the federated users left
//! with no identity, as Keystone does.

use baton_store::{FederationProtocol, IdentityProvider, Mapping, ServiceProvider};

use super::projects::NewProject;
use super::Identity;
use crate::error::{ApiError, ApiResult};

/// Keystone's 404 for a protocol the identity provider does not have.
pub fn protocol_not_found(idp_id: &str, protocol_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "Could not find federated protocol {protocol_id} for Identity Provider: {idp_id}."
    ))
}

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

    /// Creates an identity provider. With no `domain_id` a domain is made for it (named by its
    /// id, as Keystone does) and dropped again if the identity provider cannot be stored; a
    /// named domain must exist (404).
    pub async fn create_identity_provider(
        &self,
        mut idp: IdentityProvider,
    ) -> ApiResult<IdentityProvider> {
        let mut made_domain = None;
        if idp.domain_id.is_empty() {
            let id = baton_store::new_id();
            let new = NewProject {
                name: id.clone(),
                description: Some(format!(
                    "Auto generated federated domain for Identity Provider: {}",
                    idp.id
                )),
                enabled: true,
                tags: Vec::new(),
                extra: serde_json::Map::new(),
                immutable: None,
            };
            self.create_domain(Some(id.clone()), new).await?;
            idp.domain_id = id.clone();
            made_domain = Some(id);
        } else if self.store.get_domain(&idp.domain_id).await?.is_none() {
            return Err(ApiError::NotFound(format!(
                "Could not find domain: {}.",
                idp.domain_id
            )));
        }
        if let Err(e) = self.store.put_identity_provider(&idp, true).await {
            if let Some(d) = made_domain {
                self.store.delete_project(&d).await?;
            }
            return Err(e.into());
        }
        self.audit()
            .resource("created", "identity_provider", &idp.id)
            .await;
        Ok(self.store.get_identity_provider(&idp.id).await?)
    }

    /// Rewrites an identity provider's enabled flag, description, TTL and remote ids.
    pub async fn update_identity_provider(
        &self,
        idp: &IdentityProvider,
    ) -> ApiResult<IdentityProvider> {
        self.store.put_identity_provider(idp, false).await?;
        self.audit()
            .resource("updated", "identity_provider", &idp.id)
            .await;
        Ok(self.store.get_identity_provider(&idp.id).await?)
    }

    /// Deletes an identity provider with its protocols, its users' federated links and the
    /// users left with no identity; validations are worked out afresh.
    pub async fn delete_identity_provider(&self, id: &str) -> ApiResult<()> {
        let orphans = self.store.delete_identity_provider(id).await?;
        self.delete_orphans(&orphans).await?;
        self.changed().await;
        self.audit()
            .resource("deleted", "identity_provider", id)
            .await;
        Ok(())
    }

    async fn delete_orphans(&self, users: &[String]) -> ApiResult<()> {
        for user in users {
            match self.delete_user(user).await {
                Ok(()) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates (`creating`) or rewrites a protocol: its mapping must exist (400, as Keystone
    /// checks it first), then its identity provider (404) or, for an update, the protocol.
    pub async fn put_federation_protocol(
        &self,
        p: &FederationProtocol,
        creating: bool,
    ) -> ApiResult<FederationProtocol> {
        if let Err(baton_store::StoreError::NotFound { .. }) =
            self.store.get_mapping(&p.mapping_id).await
        {
            return Err(ApiError::BadRequest(format!(
                "Invalid mapping id: {}",
                p.mapping_id
            )));
        }
        if creating {
            self.store.get_identity_provider(&p.idp_id).await?;
        } else if self
            .store
            .get_federation_protocol(&p.idp_id, &p.id)
            .await?
            .is_none()
        {
            return Err(protocol_not_found(&p.idp_id, &p.id));
        }
        self.store.put_federation_protocol(p, creating).await?;
        let op = if creating { "created" } else { "updated" };
        self.audit().resource(op, "protocol", &p.id).await;
        self.store
            .get_federation_protocol(&p.idp_id, &p.id)
            .await?
            .ok_or_else(|| protocol_not_found(&p.idp_id, &p.id))
    }

    /// Deletes a protocol, its users' federated links and the users left with no identity.
    pub async fn delete_federation_protocol(&self, idp_id: &str, id: &str) -> ApiResult<()> {
        let orphans = self
            .store
            .delete_federation_protocol(idp_id, id)
            .await?
            .ok_or_else(|| protocol_not_found(idp_id, id))?;
        self.delete_orphans(&orphans).await?;
        self.changed().await;
        self.audit().resource("deleted", "protocol", id).await;
        Ok(())
    }

    /// Creates (`creating`) or rewrites a mapping whose body has been checked.
    pub async fn put_mapping(&self, m: &Mapping, creating: bool) -> ApiResult<Mapping> {
        self.store.put_mapping(m, creating).await?;
        let op = if creating { "created" } else { "updated" };
        self.audit().resource(op, "mapping", &m.id).await;
        Ok(self.store.get_mapping(&m.id).await?)
    }

    /// Deletes a mapping (protocols naming it stay, as in Keystone).
    pub async fn delete_mapping(&self, id: &str) -> ApiResult<()> {
        self.store.delete_mapping(id).await?;
        self.audit().resource("deleted", "mapping", id).await;
        Ok(())
    }
}
