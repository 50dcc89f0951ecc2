//! Token data: the token id with its parsed body, and keystoneauth's catalog rules.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use baton_types::{CatalogService, TokenBody, TokenResponse};
use chrono::{DateTime, Utc};
use reqwest::Url;

use crate::secret::AuthToken;

/// keystoneauth's `STALE_TOKEN_DURATION`: tokens expiring within this are refreshed.
pub const STALE_TOKEN_DURATION: Duration = Duration::from_secs(30);

/// An endpoint interface of the v3 catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interface {
    /// For users and outside clients.
    #[default]
    Public,
    /// For services inside the cloud (what the auth_token middleware uses by default).
    Internal,
    /// The admin network, where a deployment still has one.
    Admin,
}

impl Interface {
    /// The catalog spelling (`public`, `internal`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    /// keystoneauth's normalisation: a `URL` suffix (v2's `publicURL`) is dropped.
    pub fn parse(s: &str) -> Option<Interface> {
        match s.strip_suffix("URL").unwrap_or(s) {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interface {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interface::parse(s).ok_or_else(|| {
            format!(
                "unknown interface {s:?} (use public, internal or admin; a URL suffix is allowed)"
            )
        })
    }
}

/// A token and what the identity service said about it.
#[derive(Clone)]
pub struct AccessInfo {
    token: AuthToken,
    body: TokenBody,
}

impl fmt::Debug for AccessInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessInfo")
            .field("token", &self.token)
            .field("user_id", &self.user_id())
            .field("project_id", &self.project_id())
            .field("domain_id", &self.domain_id())
            .field("system_scoped", &self.system_scoped())
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

impl AccessInfo {
    /// The token with its already parsed body.
    pub fn new(token: AuthToken, body: TokenBody) -> AccessInfo {
        AccessInfo { token, body }
    }

    /// Parses a `{"token": {...}}` document for `token`. Fails (with a reason) when the `token`
    /// key is missing or the body lacks what keystoneauth requires (`expires_at`, the user with
    /// its domain).
    pub fn from_json(token: AuthToken, json: &[u8]) -> Result<AccessInfo, String> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("body is not JSON: {e}"))?;
        if value.get("token").is_none() {
            return Err("the body has no `token` key".into());
        }
        let parsed: TokenResponse = serde_json::from_value(value)
            .map_err(|e| format!("the `token` object is not a Keystone v3 token: {e}"))?;
        Ok(AccessInfo::new(token, parsed.token))
    }

    /// The token, to send as `X-Auth-Token` (or `X-Service-Token`).
    pub fn token(&self) -> &AuthToken {
        &self.token
    }

    /// The token body as the identity service returned it.
    pub fn body(&self) -> &TokenBody {
        &self.body
    }

    /// When the token stops being accepted (without allow_expired).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.body.expires_at
    }

    /// When the token was issued.
    pub fn issued_at(&self) -> DateTime<Utc> {
        self.body.issued_at
    }

    /// keystoneauth's `will_expire_soon`: `expires_at < now + within`.
    pub fn will_expire_soon(&self, within: Duration) -> bool {
        let within = chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        match Utc::now().checked_add_signed(within) {
            Some(limit) => self.body.expires_at < limit,
            None => true,
        }
    }

    /// The token is past its expiry now.
    pub fn is_expired(&self) -> bool {
        self.will_expire_soon(Duration::ZERO)
    }

    /// The token's user.
    pub fn user_id(&self) -> &str {
        &self.body.user.id
    }

    /// The user's name.
    pub fn user_name(&self) -> &str {
        &self.body.user.name
    }

    /// The domain that owns the user.
    pub fn user_domain_id(&self) -> &str {
        &self.body.user.domain.id
    }

    /// That domain's name.
    pub fn user_domain_name(&self) -> &str {
        &self.body.user.domain.name
    }

    /// The project of a project-scoped token.
    pub fn project_id(&self) -> Option<&str> {
        self.body.project.as_ref().map(|p| p.id.as_str())
    }

    /// That project's name.
    pub fn project_name(&self) -> Option<&str> {
        self.body.project.as_ref().map(|p| p.name.as_str())
    }

    /// The domain that owns that project.
    pub fn project_domain_id(&self) -> Option<&str> {
        self.body.project.as_ref().map(|p| p.domain.id.as_str())
    }

    /// That domain's name.
    pub fn project_domain_name(&self) -> Option<&str> {
        self.body.project.as_ref().map(|p| p.domain.name.as_str())
    }

    /// The domain of a domain-scoped token.
    pub fn domain_id(&self) -> Option<&str> {
        self.body.domain.as_ref().map(|d| d.id.as_str())
    }

    /// The name of a domain-scoped token's domain.
    pub fn domain_name(&self) -> Option<&str> {
        self.body.domain.as_ref().map(|d| d.name.as_str())
    }

    /// The token is scoped to the whole system (`system: all`).
    pub fn system_scoped(&self) -> bool {
        self.body.is_system_scoped()
    }

    /// Whether the token has any scope (project, domain or system).
    pub fn is_scoped(&self) -> bool {
        self.body.project.is_some() || self.body.domain.is_some() || self.system_scoped()
    }

    /// The names of the roles on the token's scope.
    pub fn role_names(&self) -> Vec<&str> {
        self.body.role_names().collect()
    }

    /// Whether the token holds the role of that name.
    pub fn has_role(&self, name: &str) -> bool {
        self.body.role_names().any(|r| r == name)
    }

    /// How the user authenticated (`password`, `token`, `application_credential`).
    pub fn methods(&self) -> &[String] {
        &self.body.methods
    }

    /// The token's audit id, then its chain's (for matching Keystone's logs).
    pub fn audit_ids(&self) -> &[String] {
        &self.body.audit_ids
    }

    /// The catalog (empty for unscoped tokens and `?nocatalog`).
    pub fn catalog(&self) -> &[CatalogService] {
        self.body.catalog.as_deref().unwrap_or(&[])
    }

    /// The first endpoint of `service_type` with `interface`, in `region` when given, following
    /// keystoneauth's v3 catalog rules: an endpoint's interface is compared after dropping a `URL`
    /// suffix, and its region is `region_id` or (older catalogs) `region`.
    pub fn endpoint_for(
        &self,
        service_type: &str,
        interface: Interface,
        region: Option<&str>,
    ) -> Option<Url> {
        find_endpoint(self.catalog(), service_type, None, interface, region)
    }
}

/// Catalog lookup shared by [`AccessInfo::endpoint_for`] and the session's endpoint filter.
pub(crate) fn find_endpoint(
    catalog: &[CatalogService],
    service_type: &str,
    service_name: Option<&str>,
    interface: Interface,
    region: Option<&str>,
) -> Option<Url> {
    catalog
        .iter()
        .filter(|s| s.service_type == service_type)
        .filter(|s| service_name.is_none_or(|n| s.name == n))
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| Interface::parse(&e.interface) == Some(interface))
        .filter(|e| {
            region.is_none_or(|want| {
                e.region_id.as_deref() == Some(want) || e.region.as_deref() == Some(want)
            })
        })
        .find_map(|e| Url::parse(&e.url).ok())
}
