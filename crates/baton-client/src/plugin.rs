//! Auth plugins: the [`AuthPlugin`] trait and the Keystone v3 plugins `Password`, `Token`,
//! `ApplicationCredential` and `UserToken`.
//!
//! Plugins that authenticate cache their [`AccessInfo`] and authenticate again when it expires
//! within their stale window ([`STALE_TOKEN_DURATION`], 30 s, by default) or after
//! [`AuthPlugin::invalidate`]. Concurrent callers share one authentication.
//!
//! **Stale window.** keystoneauth's identity plugins re-authenticate when the token has less than
//! `MIN_TOKEN_LIFE_SECONDS` (120 s) left, while its `AccessInfo.will_expire_soon` and the issue's
//! service-token rule use `STALE_TOKEN_DURATION` (30 s). Baton uses 30 s: long enough for a request
//! to reach its receiver and be validated, and with a 120 s window every deployment with
//! `[token] expiration` ≤ 120 s would re-authenticate before every single request (seen with
//! keystoneauth against Keystone). The window is configurable per plugin. A token that is already
//! inside the window when it is issued (very short expirations) is still used for the request
//! that asked for it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_types::TokenBody;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{json, Value};

use crate::access::{AccessInfo, STALE_TOKEN_DURATION};
use crate::discover::{identity_v3_url, join_path, v3_url_from_path};
use crate::error::{display_url, Error, Refused, Result};
use crate::http::{read_error, read_limited, request_id, HttpClient, HttpRequest};
use crate::secret::{AuthToken, SecretString};

/// A boxed, `Send` future: what the object-safe [`AuthPlugin`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Supplies the authentication of requests. Object safe: sessions hold `Arc<dyn AuthPlugin>`.
///
/// Implementations cache what they fetch; `http` is the transport to use for any request they
/// make (version discovery, `POST /v3/auth/tokens`).
pub trait AuthPlugin: Send + Sync + fmt::Debug {
    /// The token data, authenticating first when nothing usable is cached.
    fn get_access<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<Arc<AccessInfo>>>;

    /// The token for `X-Auth-Token`.
    fn get_token<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<AuthToken>> {
        Box::pin(async move { Ok(self.get_access(http).await?.token().clone()) })
    }

    /// The headers that authenticate a request: `X-Auth-Token` (and, for the service-token
    /// wrapper, `X-Service-Token`).
    fn get_headers<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<HeaderMap>> {
        Box::pin(async move {
            let token = self.get_token(http).await?;
            let mut headers = HeaderMap::new();
            headers.insert(baton_types::headers::AUTH_TOKEN, secret_header(&token)?);
            Ok(headers)
        })
    }

    /// Drops the cached token so that the next call authenticates again. Returns whether there
    /// was anything to drop that can be replaced (false for plugins that cannot re-authenticate).
    fn invalidate(&self) -> bool;

    /// Called on a 401 with what the receiver said; the default invalidates everything.
    fn invalidate_refused(&self, refused: &Refused) -> bool {
        let _ = refused;
        self.invalidate()
    }

    /// The identity URL the plugin authenticates against, if any.
    fn auth_url(&self) -> Option<&Url> {
        None
    }
}

/// The new token of an answer that issues one (`X-Subject-Token`); `shown` names the URL.
pub(crate) fn subject_token(resp: &reqwest::Response, shown: &str) -> Result<AuthToken> {
    resp.headers()
        .get(baton_types::headers::SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(AuthToken::new)
        .ok_or_else(|| Error::InvalidResponse {
            url: shown.to_string(),
            reason: format!("{} without an X-Subject-Token header", resp.status()),
        })
}

/// A token as a header value, marked sensitive so that HTTP-level debug output hides it.
pub(crate) fn secret_header(token: &AuthToken) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(token.expose()).map_err(|_| {
        Error::InvalidOption(format!(
            "token sha256:{} is not a valid header value",
            token.fingerprint()
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

// ----- references and scope ------------------------------------------------------------------

/// A domain by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    /// The domain's id (`default` for the default domain).
    Id(String),
    /// The domain's name (`Default`).
    Name(String),
}

impl DomainRef {
    fn to_json(&self) -> Value {
        match self {
            DomainRef::Id(id) => json!({ "id": id }),
            DomainRef::Name(name) => json!({ "name": name }),
        }
    }

    fn describe(&self) -> String {
        match self {
            DomainRef::Id(id) => format!("domain id {id}"),
            DomainRef::Name(name) => name.clone(),
        }
    }
}

/// A user by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// The user's id.
    Id(String),
    /// The user's name within a domain.
    Name {
        /// The login name.
        name: String,
        /// The domain that owns the user.
        domain: DomainRef,
    },
}

impl UserRef {
    /// A user by id.
    pub fn id(id: impl Into<String>) -> UserRef {
        UserRef::Id(id.into())
    }

    /// A user by name within a domain.
    pub fn name(name: impl Into<String>, domain: DomainRef) -> UserRef {
        UserRef::Name {
            name: name.into(),
            domain,
        }
    }

    fn to_json(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        match self {
            UserRef::Id(id) => {
                m.insert("id".into(), json!(id));
            }
            UserRef::Name { name, domain } => {
                m.insert("name".into(), json!(name));
                m.insert("domain".into(), domain.to_json());
            }
        }
        m
    }

    /// `user id ...` or `name@domain`, for messages.
    pub fn describe(&self) -> String {
        match self {
            UserRef::Id(id) => format!("user id {id}"),
            UserRef::Name { name, domain } => format!("{name}@{}", domain.describe()),
        }
    }
}

/// A project by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// The project's id.
    Id(String),
    /// The project's name within a domain.
    Name {
        /// The project's name.
        name: String,
        /// The domain that owns the project.
        domain: DomainRef,
    },
}

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// No `scope` key: Keystone scopes to the user's default project when it can, else unscoped.
    #[default]
    Default,
    /// `"scope": "unscoped"`.
    Unscoped,
    /// A project (the `service` project for a service user).
    Project(ProjectRef),
    /// A domain.
    Domain(DomainRef),
    /// `{"system": {"all": true}}`.
    System,
    /// `{"OS-TRUST:trust": {"id": ...}}` (`trust_id`): the trustee acts for the trustor with the
    /// trust's roles on its project.
    Trust(String),
}

impl Scope {
    /// Scoped to the project with this id.
    pub fn project_id(id: impl Into<String>) -> Scope {
        Scope::Project(ProjectRef::Id(id.into()))
    }

    /// Scoped to the project of this name within a domain.
    pub fn project_name(name: impl Into<String>, domain: DomainRef) -> Scope {
        Scope::Project(ProjectRef::Name {
            name: name.into(),
            domain,
        })
    }

    /// Scoped to the domain with this id.
    pub fn domain_id(id: impl Into<String>) -> Scope {
        Scope::Domain(DomainRef::Id(id.into()))
    }

    /// Scoped to the domain of this name.
    pub fn domain_name(name: impl Into<String>) -> Scope {
        Scope::Domain(DomainRef::Name(name.into()))
    }

    fn to_json(&self) -> Option<Value> {
        match self {
            Scope::Default => None,
            Scope::Unscoped => Some(json!("unscoped")),
            Scope::Project(ProjectRef::Id(id)) => Some(json!({"project": {"id": id}})),
            Scope::Project(ProjectRef::Name { name, domain }) => {
                Some(json!({"project": {"name": name, "domain": domain.to_json()}}))
            }
            Scope::Domain(d) => Some(json!({ "domain": d.to_json() })),
            Scope::System => Some(json!({"system": {"all": true}})),
            Scope::Trust(id) => Some(json!({"OS-TRUST:trust": {"id": id}})),
        }
    }
}

// ----- shared machinery ----------------------------------------------------------------------

/// Where a plugin authenticates: `auth_url`, with keystoneauth's v3 path rule, or with version
/// discovery first (the generic `password`/`token` plugins).
#[derive(Debug)]
struct IdentityEndpoint {
    auth_url: Url,
    discover: bool,
    include_catalog: bool,
}

impl IdentityEndpoint {
    fn new(auth_url: Url) -> IdentityEndpoint {
        IdentityEndpoint {
            auth_url,
            discover: false,
            include_catalog: true,
        }
    }

    async fn tokens_url(&self, http: &HttpClient) -> Result<Url> {
        let v3 = if self.discover {
            identity_v3_url(http, &self.auth_url).await?
        } else {
            v3_url_from_path(&self.auth_url)
        };
        let mut url = join_path(&v3, "auth/tokens");
        if !self.include_catalog {
            url.set_query(Some("nocatalog"));
        }
        Ok(url)
    }

    /// `POST <v3>/auth/tokens` with `auth`; the new token comes from `X-Subject-Token`.
    async fn authenticate(&self, http: &HttpClient, auth: Value, who: &str) -> Result<AccessInfo> {
        let url = self.tokens_url(http).await?;
        let shown = display_url(&url);
        let req = HttpRequest::new(Method::POST, url).json(&json!({ "auth": auth }));
        let resp = http.execute(&req).await?;
        let status = resp.status();
        if !status.is_success() {
            let (status, mut message, request_id) = read_error(resp).await;
            if status.as_u16() == 404 {
                message.push_str(" (is auth_url the identity endpoint?)");
            }
            return Err(Error::AuthenticationFailed {
                url: shown,
                who: who.to_string(),
                status: status.as_u16(),
                message,
                request_id,
            });
        }
        let rid = request_id(resp.headers());
        let token = subject_token(&resp, &shown)?;
        let body = read_limited(resp, 16 * 1024 * 1024).await;
        let access =
            AccessInfo::from_json(token, &body).map_err(|reason| Error::InvalidResponse {
                url: shown.clone(),
                reason,
            })?;
        tracing::debug!(
            who,
            token = %access.token().fingerprint(),
            expires_at = %access.expires_at(),
            request_id = %rid.as_deref().unwrap_or("-"),
            "authenticated"
        );
        Ok(access)
    }
}

/// The cached token of a plugin that can authenticate again.
struct TokenCache {
    current: Mutex<Option<Arc<AccessInfo>>>,
    auth_lock: tokio::sync::Mutex<()>,
    stale: Duration,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("current", &self.peek())
            .field("stale", &self.stale)
            .finish()
    }
}

impl TokenCache {
    fn new() -> TokenCache {
        TokenCache {
            current: Mutex::new(None),
            auth_lock: tokio::sync::Mutex::new(()),
            stale: STALE_TOKEN_DURATION,
        }
    }

    fn peek(&self) -> Option<Arc<AccessInfo>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fresh(&self) -> Option<Arc<AccessInfo>> {
        self.peek().filter(|a| !a.will_expire_soon(self.stale))
    }

    async fn get_or_authenticate<F>(&self, authenticate: F) -> Result<Arc<AccessInfo>>
    where
        F: Future<Output = Result<AccessInfo>>,
    {
        if let Some(a) = self.fresh() {
            return Ok(a);
        }
        let _guard = self.auth_lock.lock().await;
        if let Some(a) = self.fresh() {
            return Ok(a);
        }
        let access = Arc::new(authenticate.await?);
        if access.will_expire_soon(self.stale) {
            tracing::debug!(
                token = %access.token().fingerprint(),
                "the new token already expires within the stale window; using it for this request"
            );
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(access.clone());
        Ok(access)
    }

    fn invalidate(&self) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
    }
}

macro_rules! common_builders {
    () => {
        /// Discover the v3 endpoint with `GET auth_url` first (keystoneauth's generic plugins,
        /// `auth_type = password`/`token`) instead of applying the v3 path rule.
        pub fn with_discovery(mut self, discover: bool) -> Self {
            self.endpoint.discover = discover;
            self
        }

        /// Ask for the catalog (default) or send `?nocatalog`.
        pub fn include_catalog(mut self, include: bool) -> Self {
            self.endpoint.include_catalog = include;
            self
        }

        /// Re-authenticate when the token expires within `window` (default 30 s).
        pub fn with_stale_window(mut self, window: Duration) -> Self {
            self.cache.stale = window;
            self
        }

        /// The cached token data, if any, without authenticating.
        pub fn cached(&self) -> Option<Arc<AccessInfo>> {
            self.cache.peek()
        }
    };
}

macro_rules! cached_plugin_impl {
    () => {
        fn get_access<'a>(
            &'a self,
            http: &'a HttpClient,
        ) -> BoxFuture<'a, Result<Arc<AccessInfo>>> {
            Box::pin(self.cache.get_or_authenticate(self.authenticate(http)))
        }

        fn invalidate(&self) -> bool {
            self.cache.invalidate();
            true
        }

        fn auth_url(&self) -> Option<&Url> {
            Some(&self.endpoint.auth_url)
        }
    };
}

fn identity(method: &str, data: Value, scope: &Scope) -> Value {
    let mut auth = json!({ "identity": { "methods": [method], method: data } });
    if let Some(s) = scope.to_json() {
        auth["scope"] = s;
    }
    auth
}

// ----- Password ------------------------------------------------------------------------------

/// Password authentication (keystoneauth `v3.Password`, or `generic.Password` with discovery).
#[derive(Debug)]
pub struct Password {
    endpoint: IdentityEndpoint,
    user: UserRef,
    password: SecretString,
    scope: Scope,
    cache: TokenCache,
}

impl Password {
    /// Password authentication at `auth_url` (a v3 URL, or a base URL when the plugin
    /// discovers), with the default scope until [`Password::with_scope`].
    pub fn new(auth_url: Url, user: UserRef, password: impl Into<SecretString>) -> Password {
        Password {
            endpoint: IdentityEndpoint::new(auth_url),
            user,
            password: password.into(),
            scope: Scope::Default,
            cache: TokenCache::new(),
        }
    }

    /// Asks for this scope (project, domain or system).
    pub fn with_scope(mut self, scope: Scope) -> Password {
        self.scope = scope;
        self
    }

    common_builders!();

    async fn authenticate(&self, http: &HttpClient) -> Result<AccessInfo> {
        let mut user = self.user.to_json();
        user.insert("password".into(), json!(self.password.expose()));
        let auth = identity("password", json!({ "user": user }), &self.scope);
        self.endpoint
            .authenticate(http, auth, &self.user.describe())
            .await
    }
}

impl AuthPlugin for Password {
    cached_plugin_impl!();
}

// ----- Token (re-scope) ----------------------------------------------------------------------

/// Exchanges an existing token for a new one, usually with another scope (keystoneauth
/// `v3.Token`). The new token keeps the original's expiry; once that passes, re-authentication
/// fails.
#[derive(Debug)]
pub struct Token {
    endpoint: IdentityEndpoint,
    token: AuthToken,
    scope: Scope,
    cache: TokenCache,
}

impl Token {
    /// Token authentication (rescoping `token`) at `auth_url`.
    pub fn new(auth_url: Url, token: AuthToken) -> Token {
        Token {
            endpoint: IdentityEndpoint::new(auth_url),
            token,
            scope: Scope::Default,
            cache: TokenCache::new(),
        }
    }

    /// Asks for this scope (project, domain or system).
    pub fn with_scope(mut self, scope: Scope) -> Token {
        self.scope = scope;
        self
    }

    common_builders!();

    async fn authenticate(&self, http: &HttpClient) -> Result<AccessInfo> {
        let auth = identity("token", json!({ "id": self.token.expose() }), &self.scope);
        let who = format!("token sha256:{}", self.token.fingerprint());
        self.endpoint.authenticate(http, auth, &who).await
    }
}

impl AuthPlugin for Token {
    cached_plugin_impl!();
}

// ----- ApplicationCredential -----------------------------------------------------------------

/// An application credential by id, or by name with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredRef {
    /// The credential's id.
    Id(String),
    /// The credential's name, unique among its owner's.
    Name {
        /// The credential's name.
        name: String,
        /// The user who created it.
        user: UserRef,
    },
}

/// Application-credential authentication (keystoneauth `v3.ApplicationCredential`). No scope is
/// sent: the credential carries its own.
#[derive(Debug)]
pub struct ApplicationCredential {
    endpoint: IdentityEndpoint,
    credential: AppCredRef,
    secret: SecretString,
    cache: TokenCache,
}

impl ApplicationCredential {
    /// Application-credential authentication at `auth_url`.
    pub fn new(
        auth_url: Url,
        credential: AppCredRef,
        secret: impl Into<SecretString>,
    ) -> ApplicationCredential {
        ApplicationCredential {
            endpoint: IdentityEndpoint::new(auth_url),
            credential,
            secret: secret.into(),
            cache: TokenCache::new(),
        }
    }

    common_builders!();

    async fn authenticate(&self, http: &HttpClient) -> Result<AccessInfo> {
        let (data, who) = match &self.credential {
            AppCredRef::Id(id) => (
                json!({ "id": id, "secret": self.secret.expose() }),
                format!("application credential {id}"),
            ),
            AppCredRef::Name { name, user } => (
                json!({ "name": name, "user": user.to_json(), "secret": self.secret.expose() }),
                format!("application credential {name} of {}", user.describe()),
            ),
        };
        let auth = identity("application_credential", data, &Scope::Default);
        self.endpoint.authenticate(http, auth, &who).await
    }
}

impl AuthPlugin for ApplicationCredential {
    cached_plugin_impl!();
}

// ----- UserToken -----------------------------------------------------------------------------

/// A token as given: what a receiving service builds from the request's identity to call
/// onward as the same user. Never authenticates and never re-authenticates; the token is sent
/// even when expired (a service token may make it acceptable).
#[derive(Debug, Clone)]
pub struct UserToken {
    token: AuthToken,
    access: Option<Arc<AccessInfo>>,
}

impl UserToken {
    /// The token alone: no user, scope or catalog is known (see [`UserToken::with_body`]).
    pub fn new(token: AuthToken) -> UserToken {
        UserToken {
            token,
            access: None,
        }
    }

    /// With the token's body as already validated (user, scope, roles, catalog).
    pub fn with_body(mut self, body: TokenBody) -> UserToken {
        self.access = Some(Arc::new(AccessInfo::new(self.token.clone(), body)));
        self
    }

    /// A token with what its validation returned.
    pub fn from_access(access: AccessInfo) -> UserToken {
        UserToken {
            token: access.token().clone(),
            access: Some(Arc::new(access)),
        }
    }
}

impl AuthPlugin for UserToken {
    fn get_access<'a>(&'a self, _http: &'a HttpClient) -> BoxFuture<'a, Result<Arc<AccessInfo>>> {
        Box::pin(async move {
            self.access.clone().ok_or_else(|| {
                Error::NotAvailable(format!(
                    "UserToken sha256:{} was built without its token body, so it has no user, scope or catalog; build it with_body() or set an endpoint override",
                    self.token.fingerprint()
                ))
            })
        })
    }

    fn get_token<'a>(&'a self, _http: &'a HttpClient) -> BoxFuture<'a, Result<AuthToken>> {
        Box::pin(async move { Ok(self.token.clone()) })
    }

    fn invalidate(&self) -> bool {
        false
    }
}
