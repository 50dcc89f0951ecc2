//! Wire types of the Keystone v3 API shared by the identity server, the auth middleware and the
//! client: the token body, the service catalog, the error envelope and version discovery.
//!
//! Field names and JSON shapes follow Keystone's API exactly (see `shared/research/keystone-wire.md`
//! section 1.4); optional members are omitted rather than sent as `null` where Keystone omits them.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod time;

/// The first 12 hex digits of the SHA-256 of a token: a short, non-reversible name for a token
/// in logs, the same on the identity server, the auth_token middleware and the client, so that
/// their lines about one token can be matched.
pub fn token_fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `{"token": {...}}`, the body of `POST`/`GET /v3/auth/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The validated token: who, scoped to what, with which roles, until when.
    pub token: TokenBody,
}

/// What a token stands for: the user, the auth methods used, the scope (project, domain or
/// system) with the roles held there, lifetime, audit ids and the service catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenBody {
    /// How the user authenticated (`password`, `token`, ...), as Keystone lists them.
    pub methods: Vec<String>,
    /// The user the token was issued to, with the domain that owns the user.
    pub user: TokenUser,
    /// The token's own audit id, then the audit id of the token it was rescoped from (the chain
    /// that revocation by audit id follows).
    pub audit_ids: Vec<String>,
    /// After this instant the token is refused, unless the validation asks for allow_expired.
    #[serde(with = "time::keystone")]
    pub expires_at: DateTime<Utc>,
    /// When the token was issued; revocation events apply to tokens issued before them.
    #[serde(with = "time::keystone")]
    pub issued_at: DateTime<Utc>,
    /// The project of a project-scoped token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ScopedProject>,
    /// Whether the scoped project acts as a domain (project-scoped tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_domain: Option<bool>,
    /// The domain of a domain-scoped token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<IdName>,
    /// Set for a system-scoped token (`{"all": true}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemScope>,
    /// The effective roles on the scope (role assignments, inherited and implied ones included);
    /// absent for an unscoped token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<IdName>>,
    /// Whether the scoped project is the cloud's admin project (`[resource] admin_project_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin_project: Option<bool>,
    /// The service catalog, absent with `?nocatalog` and for tokens without roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Vec<CatalogService>>,
    /// The application credential a token was issued from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential: Option<TokenAppCred>,
    /// The trust a trust-scoped token was issued through.
    #[serde(
        rename = "OS-TRUST:trust",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub trust: Option<TokenTrust>,
    /// The OAuth1 access token an OAuth1 token was issued through, and its consumer.
    #[serde(rename = "OS-OAUTH1", default, skip_serializing_if = "Option::is_none")]
    pub oauth1: Option<TokenOAuth1>,
    /// Set for a continuation token (Baton's own, docs/continuation.md): the service acting
    /// for the user, who may validate it, and until when the operation may be renewed.
    #[serde(
        rename = "baton:continuation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub continuation: Option<TokenContinuation>,
    /// The enabled federation service providers, in every token while there are any (Keystone
    /// renders them at issue and at validation alike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_providers: Option<Vec<TokenServiceProvider>>,
}

/// `token["OS-OAUTH1"]`: the delegation an OAuth1 token comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenOAuth1 {
    /// The access token the consumer signed the token request with.
    pub access_token_id: String,
    /// The consumer it was issued to.
    pub consumer_id: String,
}

/// One entry of `token["service_providers"]`: a remote cloud the token may be taken to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenServiceProvider {
    /// Where to authenticate at the remote cloud.
    pub auth_url: String,
    /// The service provider's id.
    pub id: String,
    /// Where the remote cloud takes SAML assertions.
    pub sp_url: String,
}

/// `token["baton:continuation"]`: a service acting for the token's user in a long operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenContinuation {
    /// The service user that obtained the token (and alone may renew it).
    pub actor: ContinuationActor,
    /// The service types whose service users may validate the token.
    pub audience: Vec<String>,
    /// No renewal is granted after this instant.
    #[serde(with = "time::keystone")]
    pub operation_expires_at: DateTime<Utc>,
}

/// The acting service user of a continuation token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuationActor {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// The user's domain.
    pub domain: IdName,
}

/// `token["OS-TRUST:trust"]`: the trust, its two users, and whether the token impersonates the
/// trustor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenTrust {
    /// The trust's id.
    pub id: String,
    /// Whether the token's user is the trustor.
    pub impersonation: bool,
    /// The user who may use the trust.
    pub trustee_user: IdOnly,
    /// The user whose roles are delegated.
    pub trustor_user: IdOnly,
}

/// An object named by its id only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdOnly {
    /// The id.
    pub id: String,
}

/// `token.application_credential`: which credential, and whether it was restricted (could not
/// manage application credentials); `access_rules` only when the credential has some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAppCred {
    /// The credential's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether its tokens may not create application credentials or trusts.
    pub restricted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The requests its tokens may make, when restricted to some.
    pub access_rules: Option<Vec<AccessRuleBody>>,
}

/// One access rule of an application credential, as Keystone renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRuleBody {
    /// The rule's id.
    pub id: String,
    /// The service type it allows.
    pub service: Option<String>,
    /// The path pattern.
    pub path: Option<String>,
    /// The HTTP method.
    pub method: Option<String>,
}

impl TokenBody {
    /// Role names, empty for an unscoped token.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().flatten().map(|r| r.name.as_str())
    }

    /// True for a token scoped to the whole system (`system: all`), which cloud-wide admin
    /// policies ask for.
    pub fn is_system_scoped(&self) -> bool {
        self.system.as_ref().is_some_and(|s| s.all)
    }
}

/// A Keystone object named by id and name: a domain, or a role in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdName {
    /// The object's id.
    pub id: String,
    /// The object's name (unique within its domain for users and projects).
    pub name: String,
}

/// The user of a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenUser {
    /// The domain that owns the user.
    pub domain: IdName,
    /// The user's id.
    pub id: String,
    /// The user's name within that domain.
    pub name: String,
    /// Keystone renders this without the trailing `Z` (`2016-11-06T15:32:17.000000`) or null.
    #[serde(with = "time::keystone_naive_opt")]
    pub password_expires_at: Option<NaiveDateTime>,
}

/// The project a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedProject {
    /// The domain that owns the project.
    pub domain: IdName,
    /// The project's id.
    pub id: String,
    /// The project's name within that domain.
    pub name: String,
}

/// The system scope of a token; Keystone knows only `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemScope {
    /// Always true in a system-scoped token: the scope is the whole deployment.
    pub all: bool,
}

/// One service of the v3 catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogService {
    /// Where the service answers: one entry per interface and region.
    pub endpoints: Vec<CatalogEndpoint>,
    /// The service's id in the catalog.
    pub id: String,
    /// The service's name (`nova`, `cinderv3`, ...); empty when the service has none.
    #[serde(default)]
    pub name: String,
    /// The service type clients look services up by (`compute`, `volumev3`, `identity`, ...).
    #[serde(rename = "type")]
    pub service_type: String,
}

/// One endpoint of a catalog service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEndpoint {
    /// The endpoint's id.
    pub id: String,
    /// `public`, `internal` or `admin`: which network the URL is meant for.
    pub interface: String,
    /// The region's id again, under the name older clients read.
    #[serde(default)]
    pub region: Option<String>,
    /// The region the endpoint serves, if any.
    #[serde(default)]
    pub region_id: Option<String>,
    /// The URL to call.
    pub url: String,
}

/// `{"error": {"code", "title", "message"}}`, Keystone's error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
}

/// The inside of Keystone's error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status code again.
    pub code: u16,
    /// The status's reason phrase (`Unauthorized`, `Not Found`, ...).
    pub title: String,
    /// A human-readable explanation; never a secret or a token.
    pub message: String,
}

impl ErrorResponse {
    /// The envelope for a status code, its title and a message.
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
/// When that API version was last updated, as discovery documents say.
pub const IDENTITY_API_UPDATED: &str = "2020-04-07T00:00:00Z";
/// The media type of identity v3 responses in discovery documents.
pub const IDENTITY_MEDIA_TYPE: &str = "application/vnd.openstack.identity-v3+json";

/// A link of a version discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionLink {
    /// What the link is (`self` for the version's own URL).
    pub rel: String,
    /// The URL.
    pub href: String,
}

/// A media type a version serves, in discovery documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaType {
    /// The base format (`application/json`).
    pub base: String,
    /// The versioned media type.
    #[serde(rename = "type")]
    pub media_type: String,
}

/// One API version in a discovery document (`GET /` or `GET /v3`), as keystoneauth reads it
/// to find the v3 endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The version id (`v3.14`).
    pub id: String,
    /// `stable` for the version Baton serves.
    pub status: String,
    /// When the version last changed.
    pub updated: String,
    /// Links to the version, `self` first.
    pub links: Vec<VersionLink>,
    /// The media types the version serves.
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
    /// The caller's own token.
    pub const AUTH_TOKEN: &str = "x-auth-token";
    /// The token to validate, check or revoke at `/v3/auth/tokens`; also the new token in an issue
    /// response.
    pub const SUBJECT_TOKEN: &str = "x-subject-token";
    /// The service user's token sent next to a user token, so that a receiving service accepts an
    /// expired user token within allow_expired_window.
    pub const SERVICE_TOKEN: &str = "x-service-token";
    /// The access rules of an application credential, which the middleware passes on.
    pub const ACCESS_RULES: &str = "openstack-identity-access-rules";
    /// The request id Keystone and the services log and return on every response.
    pub const REQUEST_ID: &str = "x-openstack-request-id";
    /// Baton's own, sent by Baton's receiving layer with `GET /v3/auth/tokens?allow_expired=1`
    /// when it asks only to tell an expired token from an invalid one (value `diagnosis`): the
    /// answer grants nothing, so the server records no expired token accepted for a service.
    /// Keystone ignores it.
    pub const VALIDATION_PURPOSE: &str = "baton-validation-purpose";
}

#[cfg(test)]
mod tests {
    /// The server, the middleware and the client log this one fingerprint: 12 hex digits of
    /// SHA-256 (here of the empty string, e3b0c442...).
    #[test]
    fn token_fingerprint_is_the_sha256_prefix() {
        assert_eq!(super::token_fingerprint(""), "e3b0c44298fc");
        assert_eq!(super::token_fingerprint("gAAAAAB").len(), 12);
    }
}
