//! What the middleware hands downstream: the typed [`IdentityContext`] (request extension) and
//! keystonemiddleware's headers (for services behind a proxy, and for code that reads headers).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, OnceLock};

use baton_client::{AccessInfo, AuthToken};
use baton_types::CatalogService;
use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::reason::{FailureReason, IdentityStatus};

/// Header names the middleware sets (and strips from every incoming request).
pub mod names {
    /// `Confirmed` or `Invalid` for the user token.
    pub const IDENTITY_STATUS: &str = "x-identity-status";
    /// `Confirmed` or `Invalid` for the service token, when one came.
    pub const SERVICE_IDENTITY_STATUS: &str = "x-service-identity-status";
    /// Whether the user token is scoped to the cloud's admin project.
    pub const IS_ADMIN_PROJECT: &str = "x-is-admin-project";
    /// `all` for a system-scoped user token.
    pub const SYSTEM_SCOPE: &str = "openstack-system-scope";
    /// The user token's catalog, as JSON (with `include_service_catalog`).
    pub const SERVICE_CATALOG: &str = "x-service-catalog";
    /// Deprecated aliases keystonemiddleware still sets.
    pub const ROLE: &str = "x-role";
    /// Deprecated alias of the user name.
    pub const USER: &str = "x-user";
    /// Deprecated alias of the project id.
    pub const TENANT_ID: &str = "x-tenant-id";
    /// Deprecated alias of the project name.
    pub const TENANT_NAME: &str = "x-tenant-name";
    /// Deprecated alias of the project name, older still.
    pub const TENANT: &str = "x-tenant";
    /// Baton's own: the service user acting for the user, when the user token is a continuation
    /// token (docs/continuation.md), so a service behind `baton authproxy` can tell "a service
    /// acting for the user" from the user.
    pub const CONTINUATION_ACTOR_ID: &str = "x-continuation-actor-id";
    /// The acting service user's name.
    pub const CONTINUATION_ACTOR_NAME: &str = "x-continuation-actor-name";
    /// Where the user (`x-`) and service (`x-service-`) headers differ only by prefix.
    pub const USER_PREFIX: &str = "x-";
    /// Prefix of the service token's headers.
    pub const SERVICE_PREFIX: &str = "x-service-";
    /// The user token's headers (the per-token template under [`USER_PREFIX`]). The service
    /// token's are the same under [`SERVICE_PREFIX`]: [`SERVICE_HEADERS`].
    pub const USER_HEADERS: [&str; 11] = [
        "x-domain-id",
        "x-domain-name",
        "x-project-id",
        "x-project-name",
        "x-project-domain-id",
        "x-project-domain-name",
        "x-user-id",
        "x-user-name",
        "x-user-domain-id",
        "x-user-domain-name",
        "x-roles",
    ];
    /// The service token's headers, in the order of [`USER_HEADERS`].
    pub const SERVICE_HEADERS: [&str; 11] = [
        "x-service-domain-id",
        "x-service-domain-name",
        "x-service-project-id",
        "x-service-project-name",
        "x-service-project-domain-id",
        "x-service-project-domain-name",
        "x-service-user-id",
        "x-service-user-name",
        "x-service-user-domain-id",
        "x-service-user-domain-name",
        "x-service-roles",
    ];
}

/// Incoming headers that only the middleware may set, besides [`names::USER_HEADERS`] and
/// everything under [`names::SERVICE_PREFIX`], compared after lower-casing and turning `_` into
/// `-` (a WSGI server maps `X_Roles` and `X-Roles` to the same `HTTP_X_ROLES`).
const STRIPPED_EXACT: [&str; 12] = [
    names::IDENTITY_STATUS,
    names::CONTINUATION_ACTOR_ID,
    names::CONTINUATION_ACTOR_NAME,
    names::SERVICE_IDENTITY_STATUS,
    names::IS_ADMIN_PROJECT,
    names::SYSTEM_SCOPE,
    names::SERVICE_CATALOG,
    names::ROLE,
    names::USER,
    names::TENANT_ID,
    names::TENANT_NAME,
    names::TENANT,
];

/// Removes every identity header a client could use to spoof an identity: the user headers,
/// every `X-Service-*` header except `X-Service-Token`, the statuses, the catalog, the
/// deprecated aliases and `OpenStack-System-Scope` (which keystonemiddleware forgets), in any
/// spelling (`_` for `-`, any case). Returns how many were removed.
pub fn strip_identity_headers(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}

/// Whether `name` is one of the identity headers [`strip_identity_headers`] removes (in any
/// spelling).
pub(crate) fn is_identity_header(name: &str) -> bool {
    let prefix = names::SERVICE_PREFIX.len();
    if name.len() >= prefix && wsgi_eq(&name.as_bytes()[..prefix], names::SERVICE_PREFIX) {
        return !wsgi_eq(name.as_bytes(), baton_types::headers::SERVICE_TOKEN);
    }
    STRIPPED_EXACT
        .iter()
        .chain(&names::USER_HEADERS)
        .any(|t| wsgi_eq(name.as_bytes(), t))
}

/// Whether `name` is `target` (lower case, with `-`) as a WSGI server sees names: any case,
/// `_` for `-` (`X_Roles` and `X-Roles` both become `HTTP_X_ROLES`). Compares in place: this
/// runs for every header of every request.
fn wsgi_eq(name: &[u8], target: &str) -> bool {
    name.len() == target.len()
        && name
            .iter()
            .zip(target.bytes())
            .all(|(&a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
}

/// The headers that carry tokens: `X-Auth-Token`, its fallback `X-Storage-Token`, and
/// `X-Service-Token`.
pub const TOKEN_HEADERS: [&str; 3] = [
    baton_types::headers::AUTH_TOKEN,
    crate::authenticator::STORAGE_TOKEN,
    baton_types::headers::SERVICE_TOKEN,
];

/// Whether `name` is a spelling (any case, `_` for `-`) of one of [`TOKEN_HEADERS`].
pub(crate) fn is_token_header(name: &str) -> bool {
    TOKEN_HEADERS.iter().any(|t| wsgi_eq(name.as_bytes(), t))
}

/// Removes every value of every spelling of [`TOKEN_HEADERS`] (see
/// [`IdentityContext::restore_token_headers`]). Returns how many names were removed.
pub(crate) fn strip_token_headers(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_token_header(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}

/// What one confirmed token says: its user, scope and roles. Read once per validated token
/// and shared by every request that carries it (through [`TokenInfo`]'s `Deref`).
#[derive(Serialize)]
pub struct TokenFacts {
    /// The token's user.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The domain that owns the user.
    pub user_domain_id: String,
    /// That domain's name.
    pub user_domain_name: String,
    /// The project of a project-scoped token.
    pub project_id: Option<String>,
    /// That project's name.
    pub project_name: Option<String>,
    /// The domain that owns that project.
    pub project_domain_id: Option<String>,
    /// That domain's name.
    pub project_domain_name: Option<String>,
    /// The domain of a domain-scoped token.
    pub domain_id: Option<String>,
    /// The name of a domain-scoped token's domain.
    pub domain_name: Option<String>,
    /// Role names on the scope (implied roles included).
    pub roles: Vec<String>,
    /// `Some("all")` for a system-scoped token.
    pub system_scope: Option<String>,
    /// The token's `is_admin_project`, `true` when the token lacks it (keystoneauth's default).
    pub is_admin_project: bool,
    /// When the token expires (it may be past, see `accepted_expired`).
    pub expires_at: DateTime<Utc>,
    /// The token's audit ids, for matching log lines with Keystone's.
    pub audit_ids: Vec<String>,
}

impl TokenFacts {
    fn new(access: &AccessInfo) -> TokenFacts {
        let b = access.body();
        TokenFacts {
            user_id: b.user.id.clone(),
            user_name: b.user.name.clone(),
            user_domain_id: b.user.domain.id.clone(),
            user_domain_name: b.user.domain.name.clone(),
            project_id: b.project.as_ref().map(|p| p.id.clone()),
            project_name: b.project.as_ref().map(|p| p.name.clone()),
            project_domain_id: b.project.as_ref().map(|p| p.domain.id.clone()),
            project_domain_name: b.project.as_ref().map(|p| p.domain.name.clone()),
            domain_id: b.domain.as_ref().map(|d| d.id.clone()),
            domain_name: b.domain.as_ref().map(|d| d.name.clone()),
            roles: b.role_names().map(str::to_string).collect(),
            system_scope: b.is_system_scoped().then(|| "all".to_string()),
            is_admin_project: b.is_admin_project.unwrap_or(true),
            expires_at: b.expires_at,
            audit_ids: b.audit_ids.clone(),
        }
    }
}

/// A confirmed token as one request sees it: the token's [`TokenFacts`] (read through
/// `Deref`: `info.user_id`, `info.roles`), shared with the cache entry, and whether this request
/// accepted it expired. Making one costs a reference-count increment, not a copy of every
/// string (issue 15: 7 % of the proxy's instructions went on those copies).
#[derive(Clone)]
pub struct TokenInfo {
    validated: Arc<Validated>,
    /// Accepted although expired, because a service token holding a service role came with it.
    pub accepted_expired: bool,
}

impl Deref for TokenInfo {
    type Target = TokenFacts;

    fn deref(&self) -> &TokenFacts {
        &self.validated.facts
    }
}

impl Serialize for TokenInfo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The facts' members, then `accepted_expired`.
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            facts: &'a TokenFacts,
            accepted_expired: bool,
        }
        Shown {
            facts: self,
            accepted_expired: self.accepted_expired,
        }
        .serialize(serializer)
    }
}

/// Headers rendered once from a validated token.
type Rendered = Box<[(HeaderName, HeaderValue)]>;

/// A validated token as the middleware keeps it in its cache: the identity service's answer,
/// and the identity headers derived from it, rendered on first use. A cached token then costs
/// each request a few reference-count increments instead of two dozen formatted headers
/// (issue 15: the proxy's cached path was a third header rendering).
pub(crate) struct Validated {
    access: Arc<AccessInfo>,
    facts: TokenFacts,
    /// The `X-*` user headers, `X-Roles` and the deprecated aliases.
    user_headers: OnceLock<Rendered>,
    /// The `X-Service-*` headers.
    service_headers: OnceLock<Rendered>,
    /// `X-Service-Catalog` (v2 JSON); `None` for an empty catalog.
    catalog_header: OnceLock<Option<HeaderValue>>,
}

impl Validated {
    pub(crate) fn new(access: Arc<AccessInfo>) -> Arc<Validated> {
        Arc::new(Validated {
            facts: TokenFacts::new(&access),
            access,
            user_headers: OnceLock::new(),
            service_headers: OnceLock::new(),
            catalog_header: OnceLock::new(),
        })
    }
}

impl Deref for Validated {
    type Target = AccessInfo;

    fn deref(&self) -> &AccessInfo {
        &self.access
    }
}

impl fmt::Debug for TokenInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenInfo")
            .field(
                "token",
                &format_args!("sha256:{}", self.access().token().fingerprint()),
            )
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("project_id", &self.project_id)
            .field("domain_id", &self.domain_id)
            .field("system_scope", &self.system_scope)
            .field("roles", &self.roles)
            .field("expires_at", &self.expires_at)
            .field("accepted_expired", &self.accepted_expired)
            .finish()
    }
}

impl TokenInfo {
    pub(crate) fn new(validated: Arc<Validated>, now: DateTime<Utc>) -> TokenInfo {
        TokenInfo {
            accepted_expired: validated.facts.expires_at <= now,
            validated,
        }
    }

    /// The token data as the identity service returned it (catalog included).
    pub fn access(&self) -> &AccessInfo {
        &self.validated.access
    }

    /// Whether the token holds the role of that name.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The catalog in keystonemiddleware's `X-Service-Catalog` (v2) form.
    pub fn v2_catalog(&self) -> serde_json::Value {
        v2_catalog(self.validated.access.catalog())
    }
}

/// The identity of a request as the middleware established it, in the request extensions of
/// every forwarded request (with `delay_auth_decision`, also for unconfirmed ones: check
/// [`IdentityContext::is_authenticated`]).
#[derive(Clone, Serialize)]
pub struct IdentityContext {
    /// `X-Identity-Status`.
    pub identity_status: IdentityStatus,
    /// `X-Service-Identity-Status`; `None` when no service token was sent.
    pub service_identity_status: Option<IdentityStatus>,
    /// The user token's data, when confirmed.
    pub user: Option<TokenInfo>,
    /// The service token's data, when confirmed.
    pub service: Option<TokenInfo>,
    /// Whether the service token holds one of `service_token_roles`.
    pub service_role_check_passed: bool,
    /// Why something was not confirmed (only non-empty with `delay_auth_decision`).
    pub failure_reasons: Vec<FailureReason>,
    #[serde(skip)]
    pub(crate) user_token: Option<AuthToken>,
    #[serde(skip)]
    pub(crate) service_token: Option<AuthToken>,
    /// Where `user_token` was read: `x-auth-token`, or `x-storage-token` when that was absent.
    #[serde(skip)]
    pub(crate) user_token_header: &'static str,
}

impl fmt::Debug for IdentityContext {
    // The raw tokens are left out; TokenInfo shows only fingerprints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityContext")
            .field("identity_status", &self.identity_status)
            .field("service_identity_status", &self.service_identity_status)
            .field("user", &self.user)
            .field("service", &self.service)
            .field("service_role_check_passed", &self.service_role_check_passed)
            .field("failure_reasons", &self.failure_reasons)
            .finish_non_exhaustive()
    }
}

impl IdentityContext {
    /// The user is confirmed and the service token, if any, too: what keystonemiddleware
    /// requires to let a request through without `delay_auth_decision`.
    pub fn is_authenticated(&self) -> bool {
        self.identity_status == IdentityStatus::Confirmed
            && self.service_identity_status != Some(IdentityStatus::Invalid)
    }

    /// A service acting for a user: the service token is valid and holds one of
    /// `service_token_roles` (what Cinder's `is_service_request` checks).
    pub fn is_service_request(&self) -> bool {
        self.service_identity_status == Some(IdentityStatus::Confirmed)
            && self.service.is_some()
            && self.service_role_check_passed
    }

    /// The user token's user, when confirmed.
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.user_id.as_str())
    }

    /// The user token's project, when confirmed and project-scoped.
    pub fn project_id(&self) -> Option<&str> {
        self.user.as_ref().and_then(|u| u.project_id.as_deref())
    }

    /// The user token's roles (empty when unconfirmed).
    pub fn roles(&self) -> &[String] {
        self.user
            .as_ref()
            .map(|u| u.roles.as_slice())
            .unwrap_or(&[])
    }

    /// The service token's roles (empty when unconfirmed or absent).
    pub fn service_roles(&self) -> &[String] {
        self.service
            .as_ref()
            .map(|s| s.roles.as_slice())
            .unwrap_or(&[])
    }

    /// The service token's user (the service user), when confirmed.
    pub fn service_user_id(&self) -> Option<&str> {
        self.service.as_ref().map(|s| s.user_id.as_str())
    }

    /// The service token's project, when confirmed and project-scoped.
    pub fn service_project_id(&self) -> Option<&str> {
        self.service.as_ref().and_then(|s| s.project_id.as_deref())
    }

    /// The user's token as received, for calling onward as the user (e.g. in a
    /// `baton_client::UserToken` with a service-token wrapper). Never log it.
    pub fn user_token(&self) -> Option<&AuthToken> {
        self.user_token.as_ref()
    }

    /// The service token as received. Never log it.
    pub fn service_token(&self) -> Option<&AuthToken> {
        self.service_token.as_ref()
    }

    /// Leaves exactly the tokens this context describes in `headers` ([`strip_token_headers`]
    /// then [`IdentityContext::restore_token_headers`]), without touching the map when that is
    /// already so: one value of each token that was read, under the name it was read from,
    /// and no other spelling (every well-behaved client's request).
    pub(crate) fn keep_only_read_tokens(&self, headers: &mut HeaderMap) {
        if !self.only_read_tokens(headers) {
            strip_token_headers(headers);
            self.restore_token_headers(headers);
        }
    }

    /// Whether `headers` carries one value of each token read, under the name it was read
    /// from, and no other spelling of a token header.
    pub(crate) fn only_read_tokens(&self, headers: &HeaderMap) -> bool {
        let read = [
            (self.user_token_header, self.user_token.as_ref()),
            (
                baton_types::headers::SERVICE_TOKEN,
                self.service_token.as_ref(),
            ),
        ];
        let mut matched = 0;
        for (name, value) in headers {
            if !is_token_header(name.as_str()) {
                continue;
            }
            match read.iter().find(|(n, _)| *n == name.as_str()) {
                Some((_, Some(t))) if value.as_bytes() == t.expose().as_bytes() => matched += 1,
                _ => return false,
            }
        }
        matched == read.iter().filter(|(_, t)| t.is_some()).count()
    }

    /// After [`strip_token_headers`]: puts back exactly the tokens this context describes, one
    /// value each, under the name the middleware read them from (`X-Auth-Token` or
    /// `X-Storage-Token`, and `X-Service-Token`). A token that was not read (a second value, an
    /// `X_Auth_Token` spelling, an `X-Storage-Token` next to an `X-Auth-Token`, a malformed one)
    /// is not forwarded, so the service's `auth_token` and `service_token` are always the
    /// tokens that `X-Identity-Status` and the identity headers are about.
    pub(crate) fn restore_token_headers(&self, headers: &mut HeaderMap) {
        let pairs = [
            (self.user_token_header, self.user_token.as_ref()),
            (
                baton_types::headers::SERVICE_TOKEN,
                self.service_token.as_ref(),
            ),
        ];
        for (name, token) in pairs {
            if let Some(t) = token {
                if let Ok(v) = HeaderValue::from_str(t.expose()) {
                    headers.insert(HeaderName::from_static(name), v);
                }
            }
        }
    }

    /// Writes keystonemiddleware's headers for this context (after the incoming ones were
    /// stripped): the statuses always, the user headers when the user is confirmed (with the
    /// v2 catalog when `include_catalog`), the `X-Service-*` headers when the service token is.
    /// The token headers are rendered once per validated token (from the identity service's
    /// answer, which these fields were read from) and reused by every request carrying it.
    pub fn apply_headers(&self, headers: &mut HeaderMap, include_catalog: bool) {
        headers.insert(
            HeaderName::from_static(names::IDENTITY_STATUS),
            HeaderValue::from_static(self.identity_status.as_str()),
        );
        if let Some(s) = self.service_identity_status {
            headers.insert(
                HeaderName::from_static(names::SERVICE_IDENTITY_STATUS),
                HeaderValue::from_static(s.as_str()),
            );
        }
        // Room for every header below at once (the request came with a handful): one growth
        // of the map instead of one at each doubling.
        headers.reserve(32);
        if let Some(user) = &self.user {
            let v = &user.validated;
            insert_all(headers, v.user_headers.get_or_init(|| user_headers(user)));
            if include_catalog {
                let catalog = v.catalog_header.get_or_init(|| {
                    (!v.access.catalog().is_empty())
                        .then(|| header_value(&user.v2_catalog().to_string()))
                        .flatten()
                });
                if let Some(c) = catalog {
                    headers.insert(HeaderName::from_static(names::SERVICE_CATALOG), c.clone());
                }
            }
        }
        if let Some(service) = &self.service {
            let rendered = service
                .validated
                .service_headers
                .get_or_init(|| token_headers(&SERVICE_NAMES, service).into());
            insert_all(headers, rendered);
        }
    }
}

fn insert_all(headers: &mut HeaderMap, rendered: &[(HeaderName, HeaderValue)]) {
    for (name, value) in rendered {
        headers.insert(name.clone(), value.clone());
    }
}

/// [`names::USER_HEADERS`] and [`names::SERVICE_HEADERS`] as `HeaderName`s made from static
/// strings: such a name is copied without touching a reference count (each request copies 22).
static USER_NAMES: LazyLock<[HeaderName; 11]> =
    LazyLock::new(|| names::USER_HEADERS.map(HeaderName::from_static));
static SERVICE_NAMES: LazyLock<[HeaderName; 11]> =
    LazyLock::new(|| names::SERVICE_HEADERS.map(HeaderName::from_static));

/// The user token's headers: the template under `X-`, then `X-Is-Admin-Project`,
/// `OpenStack-System-Scope` and the deprecated aliases.
fn user_headers(user: &TokenInfo) -> Rendered {
    let mut out = token_headers(&USER_NAMES, user);
    let mut add = |name: &'static str, value: &str| {
        if let Some(v) = header_value(value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    add(
        names::IS_ADMIN_PROJECT,
        if user.is_admin_project {
            "True"
        } else {
            "False"
        },
    );
    if let Some(scope) = &user.system_scope {
        add(names::SYSTEM_SCOPE, scope);
    }
    add(names::ROLE, &user.roles.join(","));
    add(names::USER, &user.user_name);
    if let Some(p) = &user.project_id {
        add(names::TENANT_ID, p);
    }
    if let Some(p) = &user.project_name {
        add(names::TENANT_NAME, p);
        add(names::TENANT, p);
    }
    if let Some(c) = &user.access().body().continuation {
        add(names::CONTINUATION_ACTOR_ID, &c.actor.id);
        add(names::CONTINUATION_ACTOR_NAME, &c.actor.name);
    }
    out.into()
}

fn token_headers(names: &[HeaderName; 11], t: &TokenInfo) -> Vec<(HeaderName, HeaderValue)> {
    let roles = t.roles.join(",");
    let values: [Option<&str>; 11] = [
        t.domain_id.as_deref(),
        t.domain_name.as_deref(),
        t.project_id.as_deref(),
        t.project_name.as_deref(),
        t.project_domain_id.as_deref(),
        t.project_domain_name.as_deref(),
        Some(&t.user_id),
        Some(&t.user_name),
        Some(&t.user_domain_id),
        Some(&t.user_domain_name),
        Some(&roles),
    ];
    names
        .iter()
        .zip(values)
        .filter_map(|(name, value)| Some((name.clone(), header_value(value?)?)))
        .collect()
}

/// A header value; values may hold UTF-8 (user and project names), control characters are
/// dropped so that a name can never split a header.
fn header_value(value: &str) -> Option<HeaderValue> {
    let clean: Vec<u8> = value
        .bytes()
        .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
        .collect();
    HeaderValue::from_bytes(&clean).ok()
}

/// The v3 catalog in the v2 form keystonemiddleware puts in `X-Service-Catalog`:
/// `[{"type", "name", "endpoints": [{"region", "publicURL", "internalURL", "adminURL"}]}]`,
/// one v2 endpoint per region holding that region's URL of each interface.
pub fn v2_catalog(catalog: &[CatalogService]) -> serde_json::Value {
    let services: Vec<serde_json::Value> = catalog
        .iter()
        .map(|s| {
            // Regions in order of first appearance.
            let mut order: Vec<Option<String>> = Vec::new();
            let mut by_region: BTreeMap<usize, serde_json::Map<String, serde_json::Value>> =
                BTreeMap::new();
            for e in &s.endpoints {
                let region = e.region_id.clone().or_else(|| e.region.clone());
                let idx = match order.iter().position(|r| *r == region) {
                    Some(i) => i,
                    None => {
                        order.push(region.clone());
                        order.len() - 1
                    }
                };
                let entry = by_region.entry(idx).or_default();
                let interface = e.interface.strip_suffix("URL").unwrap_or(&e.interface);
                entry.insert(format!("{interface}URL"), e.url.clone().into());
                if let Some(r) = &region {
                    entry.insert("region".into(), r.clone().into());
                }
            }
            serde_json::json!({
                "type": s.service_type,
                "name": s.name,
                "endpoints": by_region.into_values().collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_spelling_but_keeps_tokens() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("x-roles", "admin"),
            ("x_roles", "admin"),
            ("X-Service-Roles", "service"),
            ("x-service-identity-status", "Confirmed"),
            ("x-identity-status", "Confirmed"),
            ("openstack-system-scope", "all"),
            ("x-service-anything", "1"),
            ("x-tenant", "t"),
            ("x-service-token", "keep"),
            ("x-auth-token", "keep"),
            ("x-user-agent-ish", "keep"),
            ("content-type", "keep"),
        ] {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        assert_eq!(strip_identity_headers(&mut h), 8);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                "content-type",
                "x-auth-token",
                "x-service-token",
                "x-user-agent-ish"
            ]
        );
    }

    fn context(v: &Arc<Validated>) -> IdentityContext {
        let now = Utc::now();
        IdentityContext {
            identity_status: IdentityStatus::Confirmed,
            service_identity_status: Some(IdentityStatus::Confirmed),
            user: Some(TokenInfo::new(v.clone(), now)),
            service: Some(TokenInfo::new(v.clone(), now)),
            service_role_check_passed: true,
            failure_reasons: Vec::new(),
            user_token: None,
            service_token: None,
            user_token_header: baton_types::headers::AUTH_TOKEN,
        }
    }

    /// The headers of a cached token are rendered by the first request and reused by the next;
    /// both describe the token, control characters dropped, for the user and service prefixes.
    #[test]
    fn a_cached_tokens_headers_are_rendered_once_and_describe_it() {
        let body = serde_json::json!({"token": {
            "methods": ["password"], "audit_ids": ["a1"],
            "expires_at": "2999-01-01T00:00:00.000000Z", "issued_at": "2026-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "ali\u{1}ce", "password_expires_at": null, "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
            "is_admin_project": false,
            "catalog": [{"id": "s1", "type": "volumev3", "name": "cinder", "endpoints": [
                {"id": "e1", "interface": "public", "region_id": "R1", "url": "http://vol"}]}]
        }});
        let access =
            AccessInfo::from_json(AuthToken::new("t"), body.to_string().as_bytes()).unwrap();
        let v = Validated::new(Arc::new(access));
        assert!(v.user_headers.get().is_none());
        let mut first = HeaderMap::new();
        context(&v).apply_headers(&mut first, true);
        assert!(v.user_headers.get().is_some() && v.service_headers.get().is_some());
        let mut second = HeaderMap::new();
        context(&v).apply_headers(&mut second, true);
        assert_eq!(first, second);
        for (name, value) in [
            ("x-identity-status", "Confirmed"),
            ("x-service-identity-status", "Confirmed"),
            ("x-user-id", "u1"),
            ("x-user-name", "alice"),
            ("x-user", "alice"),
            ("x-project-id", "p1"),
            ("x-tenant-id", "p1"),
            ("x-tenant-name", "demo"),
            ("x-roles", "member,reader"),
            ("x-role", "member,reader"),
            ("x-is-admin-project", "False"),
            ("x-service-user-name", "alice"),
            ("x-service-roles", "member,reader"),
            ("x-service-project-domain-name", "Default"),
        ] {
            assert_eq!(
                first.get(name).map(|v| v.as_bytes()),
                Some(value.as_bytes()),
                "{name}"
            );
        }
        let catalog: serde_json::Value =
            serde_json::from_slice(first["x-service-catalog"].as_bytes()).unwrap();
        assert_eq!(catalog[0]["endpoints"][0]["publicURL"], "http://vol");
        assert!(first.get("openstack-system-scope").is_none());
        let mut without = HeaderMap::new();
        context(&v).apply_headers(&mut without, false);
        assert!(without.get("x-service-catalog").is_none());
        assert_eq!(without.len(), first.len() - 1);
    }

    #[test]
    fn the_service_headers_are_the_user_headers_under_the_service_prefix() {
        for (user, service) in names::USER_HEADERS.iter().zip(names::SERVICE_HEADERS) {
            let suffix = user.strip_prefix(names::USER_PREFIX).unwrap();
            assert_eq!(format!("{}{suffix}", names::SERVICE_PREFIX), service);
        }
        for (made, strings) in [
            (&*USER_NAMES, names::USER_HEADERS),
            (&*SERVICE_NAMES, names::SERVICE_HEADERS),
        ] {
            assert_eq!(made.each_ref().map(HeaderName::as_str), strings);
        }
    }

    #[test]
    fn every_header_the_middleware_sets_is_stripped() {
        for name in names::USER_HEADERS
            .iter()
            .chain(&names::SERVICE_HEADERS)
            .chain(&STRIPPED_EXACT)
        {
            assert!(is_identity_header(name), "{name}");
            assert!(is_identity_header(
                &name.to_ascii_uppercase().replace('-', "_")
            ));
        }
    }

    #[test]
    fn token_headers_in_every_spelling() {
        for n in [
            "x-auth-token",
            "X_Auth_Token",
            "X-AUTH_TOKEN",
            "x-storage-token",
            "x_storage_token",
            "X-Service-Token",
            "x_service_token",
        ] {
            assert!(is_token_header(n), "{n}");
        }
        for n in [
            "x-auth-tokens",
            "x-auth",
            "x-subject-token",
            "x-service-roles",
            "",
        ] {
            assert!(!is_token_header(n), "{n}");
        }
    }

    #[test]
    fn v2_catalog_groups_by_region() {
        let cat: Vec<CatalogService> = serde_json::from_value(serde_json::json!([{
            "id": "s1", "name": "keystone", "type": "identity",
            "endpoints": [
                {"id": "e1", "interface": "public", "region_id": "R1", "url": "http://pub"},
                {"id": "e2", "interface": "internal", "region_id": "R1", "url": "http://int"},
                {"id": "e3", "interface": "public", "region": "R2", "url": "http://pub2"}
            ]
        }]))
        .unwrap();
        assert_eq!(
            v2_catalog(&cat),
            serde_json::json!([{
                "type": "identity", "name": "keystone",
                "endpoints": [
                    {"region": "R1", "publicURL": "http://pub", "internalURL": "http://int"},
                    {"region": "R2", "publicURL": "http://pub2"}
                ]
            }])
        );
    }
}
