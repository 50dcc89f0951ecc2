//! Wire types of the Keystone v3 API shared by the identity server, the auth middleware and the
//! client: the token body, the service catalog, the error envelope and version discovery.
//!
//! Field names and JSON shapes follow Keystone's API exactly (see `shared/research/keystone-wire.md`
//! section 1.4); optional members are omitted rather than sent as `null` where Keystone omits them.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod time;

/// `{"token": {...}}`, the body of `POST`/`GET /v3/auth/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: TokenBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenBody {
    pub methods: Vec<String>,
    pub user: TokenUser,
    pub audit_ids: Vec<String>,
    #[serde(with = "time::keystone")]
    pub expires_at: DateTime<Utc>,
    #[serde(with = "time::keystone")]
    pub issued_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ScopedProject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_domain: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<IdName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<IdName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin_project: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Vec<CatalogService>>,
    /// The application credential a token was issued from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential: Option<TokenAppCred>,
}

/// `token.application_credential`: which credential, and whether it was restricted (could not
/// manage application credentials); `access_rules` only when the credential has some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAppCred {
    pub id: String,
    pub name: String,
    pub restricted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_rules: Option<Vec<AccessRuleBody>>,
}

/// One access rule of an application credential, as Keystone renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRuleBody {
    pub id: String,
    pub service: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
}

impl TokenBody {
    /// Role names, empty for an unscoped token.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().flatten().map(|r| r.name.as_str())
    }

    pub fn is_system_scoped(&self) -> bool {
        self.system.as_ref().is_some_and(|s| s.all)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdName {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenUser {
    pub domain: IdName,
    pub id: String,
    pub name: String,
    /// Keystone renders this without the trailing `Z` (`2016-11-06T15:32:17.000000`) or null.
    #[serde(with = "time::keystone_naive_opt")]
    pub password_expires_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedProject {
    pub domain: IdName,
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemScope {
    pub all: bool,
}

/// One service of the v3 catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogService {
    pub endpoints: Vec<CatalogEndpoint>,
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub service_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEndpoint {
    pub id: String,
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

/// `{"error": {"code", "title", "message"}}`, Keystone's error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    pub title: String,
    pub message: String,
}

impl ErrorResponse {
    pub fn new(code: u16, title: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorResponse {
            error: ErrorBody {
                code,
                title: title.into(),
                message: message.into(),
            },
        }
    }
}

/// The one API version Baton serves, as Keystone describes it in discovery documents.
pub const IDENTITY_API_VERSION: &str = "v3.14";
pub const IDENTITY_API_UPDATED: &str = "2020-04-07T00:00:00Z";
pub const IDENTITY_MEDIA_TYPE: &str = "application/vnd.openstack.identity-v3+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionLink {
    pub rel: String,
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaType {
    pub base: String,
    #[serde(rename = "type")]
    pub media_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub id: String,
    pub status: String,
    pub updated: String,
    pub links: Vec<VersionLink>,
    #[serde(rename = "media-types")]
    pub media_types: Vec<MediaType>,
}

impl Version {
    /// The v3 version object whose `self` link is `<base>/v3/`.
    pub fn v3(base_url: &str) -> Self {
        Version {
            id: IDENTITY_API_VERSION.into(),
            status: "stable".into(),
            updated: IDENTITY_API_UPDATED.into(),
            links: vec![VersionLink {
                rel: "self".into(),
                href: format!("{}/v3/", base_url.trim_end_matches('/')),
            }],
            media_types: vec![MediaType {
                base: "application/json".into(),
                media_type: IDENTITY_MEDIA_TYPE.into(),
            }],
        }
    }
}

/// Header names shared by every side of the service-token exchange.
pub mod headers {
    pub const AUTH_TOKEN: &str = "x-auth-token";
    pub const SUBJECT_TOKEN: &str = "x-subject-token";
    pub const SERVICE_TOKEN: &str = "x-service-token";
    pub const ACCESS_RULES: &str = "openstack-identity-access-rules";
    pub const REQUEST_ID: &str = "x-openstack-request-id";
}
