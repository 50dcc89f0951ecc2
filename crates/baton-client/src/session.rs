//! `Session`: authenticated requests to services found in the catalog (keystoneauth's Session).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, Url};

use crate::access::{find_endpoint, AccessInfo, Interface};
use crate::discover::{identity_v3_url, join_path, names_v3, trim_slash};
use crate::error::{display_url, Error, Refused, Result};
use crate::http::{read_error, read_limited, HttpClient, HttpOptions, HttpRequest, RetryPolicy};
use crate::plugin::{secret_header, AuthPlugin};
use crate::secret::AuthToken;

/// Which endpoint of the catalog to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFilter {
    /// The service type of the catalog (`compute`, `volumev3`, `image`, ...).
    pub service_type: String,
    /// Only the service of this name.
    pub service_name: Option<String>,
    /// Which of the service's endpoints (public by default).
    pub interface: Interface,
    /// Only endpoints of this region.
    pub region_name: Option<String>,
    /// Use this URL and skip the catalog.
    pub endpoint_override: Option<Url>,
}

impl EndpointFilter {
    /// The public endpoint of `service_type` in any region.
    pub fn new(service_type: impl Into<String>) -> EndpointFilter {
        EndpointFilter {
            service_type: service_type.into(),
            service_name: None,
            interface: Interface::Public,
            region_name: None,
            endpoint_override: None,
        }
    }

    /// Sets the interface.
    pub fn interface(mut self, interface: Interface) -> EndpointFilter {
        self.interface = interface;
        self
    }

    /// Sets (or, with `None`, clears) the region.
    pub fn region(mut self, region: Option<&str>) -> EndpointFilter {
        self.region_name = region.map(str::to_string);
        self
    }

    /// Sets the service name.
    pub fn service_name(mut self, name: impl Into<String>) -> EndpointFilter {
        self.service_name = Some(name.into());
        self
    }

    /// Uses `url` instead of the catalog.
    pub fn endpoint_override(mut self, url: Url) -> EndpointFilter {
        self.endpoint_override = Some(url);
        self
    }
}

/// Where a request goes: a URL, or a service of the catalog. From a `&str`: a string with
/// `://` is a URL, anything else a service type (public interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This URL.
    Url(Url),
    /// The endpoint of a catalog service.
    Endpoint(EndpointFilter),
    /// A string that looked like a URL but did not parse; reported when the request is sent.
    Invalid(String),
}

impl From<Url> for Target {
    fn from(u: Url) -> Target {
        Target::Url(u)
    }
}

impl From<&Url> for Target {
    fn from(u: &Url) -> Target {
        Target::Url(u.clone())
    }
}

impl From<EndpointFilter> for Target {
    fn from(f: EndpointFilter) -> Target {
        Target::Endpoint(f)
    }
}

impl From<&EndpointFilter> for Target {
    fn from(f: &EndpointFilter) -> Target {
        Target::Endpoint(f.clone())
    }
}

impl From<&str> for Target {
    fn from(s: &str) -> Target {
        if s.contains("://") {
            Url::parse(s)
                .map(Target::Url)
                .unwrap_or_else(|e| Target::Invalid(format!("{s:?} is not a URL: {e}")))
        } else {
            Target::Endpoint(EndpointFilter::new(s))
        }
    }
}

/// What `GET /v3/auth/tokens` should be asked (see [`Session::validate_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateOptions {
    /// `?allow_expired=1`: accept a token expired within Keystone's `allow_expired_window`.
    pub allow_expired: bool,
    /// `false` sends `?nocatalog`.
    pub include_catalog: bool,
    /// Interface of the identity endpoint in the caller's catalog (keystonemiddleware: internal).
    pub interface: Interface,
    /// Region of that endpoint; `None`: any.
    pub region_name: Option<String>,
    /// Send `OpenStack-Identity-Access-Rules: 1.0`: the caller promises to enforce the access
    /// rules of application-credential tokens, so the identity service returns them instead
    /// of refusing such tokens (404). Only an enforcer may set it (baton-authtoken does).
    pub enforces_access_rules: bool,
    /// Send `Baton-Validation-Purpose: diagnosis`: the caller asks (with `allow_expired`) only
    /// to learn whether a refused token is merely expired, and accepts nothing because of it.
    pub diagnosis: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            allow_expired: false,
            include_catalog: true,
            interface: Interface::Internal,
            region_name: None,
            enforces_access_rules: false,
            diagnosis: false,
        }
    }
}

/// Builds a [`Session`].
#[derive(Debug, Clone, Default)]
pub struct SessionBuilder {
    http: HttpOptions,
    overrides: HashMap<String, Url>,
}

impl SessionBuilder {
    /// Sets every transport option at once.
    pub fn http_options(mut self, options: HttpOptions) -> SessionBuilder {
        self.http = options;
        self
    }

    /// Time to establish a connection.
    pub fn connect_timeout(mut self, t: Duration) -> SessionBuilder {
        self.http.connect_timeout = t;
        self
    }

    /// Total time for one request (`None`: no limit).
    pub fn timeout(mut self, t: Option<Duration>) -> SessionBuilder {
        self.http.timeout = t;
        self
    }

    /// A PEM file of CA certificates to trust besides the built-in roots.
    pub fn ca_file(mut self, path: impl Into<std::path::PathBuf>) -> SessionBuilder {
        self.http.ca_file = Some(path.into());
        self
    }

    /// Accept any server certificate (logged as a warning).
    pub fn insecure(mut self, insecure: bool) -> SessionBuilder {
        self.http.insecure = insecure;
        self
    }

    /// When to try a request again.
    pub fn retry(mut self, retry: RetryPolicy) -> SessionBuilder {
        self.http.retry = retry;
        self
    }

    /// Always use `url` for `service_type`, whatever the catalog says.
    pub fn endpoint_override(
        mut self,
        service_type: impl Into<String>,
        url: Url,
    ) -> SessionBuilder {
        self.overrides.insert(service_type.into(), url);
        self
    }

    /// The session, authenticating with `auth` (nothing is contacted yet).
    pub fn build(self, auth: Arc<dyn AuthPlugin>) -> Result<Session> {
        Ok(Session {
            http: self.http.build()?,
            auth,
            overrides: Arc::new(self.overrides),
        })
    }
}

/// An authenticated HTTP session: an [`HttpClient`], an auth plugin (which caches the token) and
/// endpoint overrides. Cheap to clone; [`Session::with_auth`] makes a session for another
/// identity over the same connection pool.
#[derive(Clone)]
pub struct Session {
    http: HttpClient,
    auth: Arc<dyn AuthPlugin>,
    overrides: Arc<HashMap<String, Url>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("auth", &self.auth)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session with default options (connect timeout 10 s, total 60 s, 3 retries).
    pub fn new(auth: Arc<dyn AuthPlugin>) -> Result<Session> {
        SessionBuilder::default().build(auth)
    }

    /// A builder with the default options.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// A session over an existing HTTP client (sharing its connections), without overrides.
    pub fn from_parts(http: HttpClient, auth: Arc<dyn AuthPlugin>) -> Session {
        Session {
            http,
            auth,
            overrides: Arc::new(HashMap::new()),
        }
    }

    /// The same transport and overrides with another auth plugin, e.g. a
    /// [`crate::ServiceTokenAuth`] for the user of the request being served.
    pub fn with_auth(&self, auth: Arc<dyn AuthPlugin>) -> Session {
        Session {
            http: self.http.clone(),
            auth,
            overrides: self.overrides.clone(),
        }
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The auth plugin.
    pub fn auth(&self) -> &Arc<dyn AuthPlugin> {
        &self.auth
    }

    /// The plugin's token with its data, authenticating if there is none or it is about to
    /// expire.
    pub async fn get_access(&self) -> Result<Arc<AccessInfo>> {
        self.auth.get_access(&self.http).await
    }

    /// The plugin's token, authenticating when needed.
    pub async fn get_token(&self) -> Result<AuthToken> {
        self.auth.get_token(&self.http).await
    }

    /// Drops the cached token so the next request authenticates again; false when the plugin
    /// cannot (a fixed token).
    pub fn invalidate(&self) -> bool {
        self.auth.invalidate()
    }

    /// The endpoint for `filter`: its override, else the session's override for the service
    /// type, else the catalog of the auth plugin's token.
    pub async fn get_endpoint(&self, filter: &EndpointFilter) -> Result<Url> {
        if let Some(u) = &filter.endpoint_override {
            return Ok(u.clone());
        }
        if let Some(u) = self.overrides.get(&filter.service_type) {
            return Ok(u.clone());
        }
        let access = self.get_access().await?;
        find_endpoint(
            access.catalog(),
            &filter.service_type,
            filter.service_name.as_deref(),
            filter.interface,
            filter.region_name.as_deref(),
        )
        .ok_or_else(|| Error::EndpointNotFound {
            service_type: filter.service_type.clone(),
            interface: filter.interface.to_string(),
            region: filter.region_name.clone(),
        })
    }

    /// The v3 identity endpoint from the catalog (service type `identity`), followed by version
    /// discovery when the catalog URL does not end in `/v3`.
    pub async fn identity_endpoint(
        &self,
        interface: Interface,
        region: Option<&str>,
    ) -> Result<Url> {
        let filter = EndpointFilter::new("identity")
            .interface(interface)
            .region(region);
        let url = self.get_endpoint(&filter).await?;
        if names_v3(&url) {
            Ok(trim_slash(&url))
        } else {
            identity_v3_url(&self.http, &url).await
        }
    }

    /// `GET /v3/auth/tokens` for `subject`, authenticated as this session (which needs the
    /// `service` or `admin` role). A 404 becomes [`Error::TokenNotFound`].
    ///
    /// `OpenStack-Identity-Access-Rules` is sent only with
    /// [`ValidateOptions::enforces_access_rules`]: the header promises that the caller enforces
    /// an application credential's access rules; without it the identity service refuses such
    /// tokens (404) instead of letting them through unrestricted.
    pub async fn validate_token(
        &self,
        subject: &AuthToken,
        options: &ValidateOptions,
    ) -> Result<AccessInfo> {
        let v3 = self
            .identity_endpoint(options.interface, options.region_name.as_deref())
            .await?;
        let mut flags = Vec::new();
        if !options.include_catalog {
            flags.push("nocatalog");
        }
        if options.allow_expired {
            flags.push("allow_expired=1");
        }
        let path = if flags.is_empty() {
            "auth/tokens".to_string()
        } else {
            format!("auth/tokens?{}", flags.join("&"))
        };
        let url = join_path(&v3, &path);
        let mut req = self.request(Method::GET, &v3, &path).header_value(
            HeaderName::from_static(baton_types::headers::SUBJECT_TOKEN),
            secret_header(subject)?,
        );
        if options.enforces_access_rules {
            req = req.header_value(
                HeaderName::from_static(baton_types::headers::ACCESS_RULES),
                HeaderValue::from_static("1.0"),
            );
        }
        if options.diagnosis {
            req = req.header_value(
                HeaderName::from_static(baton_types::headers::VALIDATION_PURPOSE),
                HeaderValue::from_static("diagnosis"),
            );
        }
        let resp = req.raise_for_status(false).send().await?;
        let status = resp.status();
        if status.as_u16() == 404 {
            let (_, message, request_id) = read_error(resp).await;
            return Err(Error::TokenNotFound {
                fingerprint: subject.fingerprint(),
                message,
                request_id,
            });
        }
        if !status.is_success() {
            return Err(response_error(&Method::GET, &url, resp, false).await);
        }
        let body = read_limited(resp, 16 * 1024 * 1024).await;
        AccessInfo::from_json(subject.clone(), &body).map_err(|reason| Error::InvalidResponse {
            url: display_url(&url),
            reason,
        })
    }

    /// A request to `path` under `target` (a URL or a catalog service), authenticated by the
    /// session's plugin unless told otherwise.
    pub fn request(
        &self,
        method: Method,
        target: impl Into<Target>,
        path: &str,
    ) -> SessionRequest<'_> {
        SessionRequest {
            session: self,
            method,
            target: target.into(),
            path: path.to_string(),
            headers: HeaderMap::new(),
            body: None,
            query: Vec::new(),
            authenticated: true,
            allow_reauth: true,
            raise: true,
            error: None,
        }
    }

    /// A `GET` of `path` under `target`.
    pub fn get(&self, target: impl Into<Target>, path: &str) -> SessionRequest<'_> {
        self.request(Method::GET, target, path)
    }

    /// A `POST` of `path` under `target`.
    pub fn post(&self, target: impl Into<Target>, path: &str) -> SessionRequest<'_> {
        self.request(Method::POST, target, path)
    }

    /// A `PUT` of `path` under `target`.
    pub fn put(&self, target: impl Into<Target>, path: &str) -> SessionRequest<'_> {
        self.request(Method::PUT, target, path)
    }

    /// A `DELETE` of `path` under `target`.
    pub fn delete(&self, target: impl Into<Target>, path: &str) -> SessionRequest<'_> {
        self.request(Method::DELETE, target, path)
    }

    /// A `HEAD` of `path` under `target`.
    pub fn head(&self, target: impl Into<Target>, path: &str) -> SessionRequest<'_> {
        self.request(Method::HEAD, target, path)
    }
}

/// A request being built by [`Session::request`].
pub struct SessionRequest<'s> {
    session: &'s Session,
    method: Method,
    target: Target,
    path: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    query: Vec<(String, String)>,
    authenticated: bool,
    allow_reauth: bool,
    raise: bool,
    error: Option<String>,
}

impl fmt::Debug for SessionRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'s> SessionRequest<'s> {
    /// Adds a header; values of headers whose name contains `token` are marked sensitive.
    pub fn header(mut self, name: &str, value: &str) -> SessionRequest<'s> {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(mut v)) => {
                if n.as_str().contains("token") {
                    v.set_sensitive(true);
                }
                self.headers.insert(n, v);
            }
            _ => self.error = Some(format!("invalid header {name:?}")),
        }
        self
    }

    /// Adds a header as given.
    pub fn header_value(mut self, name: HeaderName, value: HeaderValue) -> SessionRequest<'s> {
        self.headers.insert(name, value);
        self
    }

    /// A JSON body (sets `Content-Type` and `Accept`).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> SessionRequest<'s> {
        match serde_json::to_vec(value) {
            Ok(b) => {
                self.body = Some(b);
                self.headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                self.headers
                    .insert(ACCEPT, HeaderValue::from_static("application/json"));
            }
            Err(e) => self.error = Some(format!("cannot serialise the JSON body: {e}")),
        }
        self
    }

    /// A raw body.
    pub fn body(mut self, body: Vec<u8>) -> SessionRequest<'s> {
        self.body = Some(body);
        self
    }

    /// Adds a query parameter (encoded).
    pub fn query(mut self, key: &str, value: &str) -> SessionRequest<'s> {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Send without any auth headers (default: authenticated).
    pub fn authenticated(mut self, yes: bool) -> SessionRequest<'s> {
        self.authenticated = yes;
        self
    }

    /// Whether a 401 may invalidate the plugin and retry once (default true).
    pub fn allow_reauth(mut self, yes: bool) -> SessionRequest<'s> {
        self.allow_reauth = yes;
        self
    }

    /// Whether an error status becomes an [`Error`] (default true).
    pub fn raise_for_status(mut self, yes: bool) -> SessionRequest<'s> {
        self.raise = yes;
        self
    }

    async fn url(&self) -> Result<Url> {
        let base = match &self.target {
            Target::Url(u) => u.clone(),
            Target::Endpoint(f) => self.session.get_endpoint(f).await?,
            Target::Invalid(why) => return Err(Error::InvalidOption(why.clone())),
        };
        let mut url = join_path(&base, &self.path);
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Ok(url)
    }

    /// Sends the request: auth headers from the plugin; on a 401, the plugin is invalidated
    /// (only the refused token where the receiver says which) and the request is sent once more
    /// with fresh headers.
    pub async fn send(self) -> Result<Response> {
        if let Some(e) = &self.error {
            return Err(Error::InvalidOption(e.clone()));
        }
        let session = self.session;
        let url = self.url().await?;
        let mut req = HttpRequest::new(self.method.clone(), url);
        req.headers = self.headers.clone();
        req.body = self.body.clone();
        let mut service_sent = false;
        if self.authenticated {
            service_sent = add_auth(session, &mut req).await?;
        }
        let mut resp = session.http.execute(&req).await?;
        if resp.status().as_u16() == 401 && self.authenticated && self.allow_reauth {
            let refused = Refused::from_headers(resp.headers(), service_sent);
            if session.auth.invalidate_refused(&refused) {
                tracing::info!(
                    method = %req.method,
                    url = %display_url(&req.url),
                    request_id = %crate::http::request_id(resp.headers()).as_deref().unwrap_or("-"),
                    refused = %refused,
                    "401: authenticating again and retrying once"
                );
                drop(resp);
                service_sent = add_auth(session, &mut req).await?;
                resp = session.http.execute(&req).await?;
            }
        }
        if self.raise && resp.status().as_u16() >= 400 {
            return Err(response_error(&req.method, &req.url, resp, service_sent).await);
        }
        Ok(resp)
    }

    /// Sends and parses a JSON answer.
    pub async fn send_json<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        let resp = self.send().await?;
        let url = display_url(resp.url());
        let body = read_limited(resp, 64 * 1024 * 1024).await;
        serde_json::from_slice(&body).map_err(|e| Error::InvalidResponse {
            url,
            reason: format!("body is not the expected JSON: {e}"),
        })
    }
}

/// Puts the plugin's headers on `req`; returns whether an `X-Service-Token` is among them.
async fn add_auth(session: &Session, req: &mut HttpRequest) -> Result<bool> {
    let headers = session.auth.get_headers(&session.http).await?;
    for (name, value) in headers.iter() {
        req.headers.insert(name.clone(), value.clone());
    }
    Ok(headers.contains_key(baton_types::headers::SERVICE_TOKEN))
}

/// The error for an error response: [`Error::Unauthorized`] (with which token was refused) for
/// 401, [`Error::Http`] otherwise.
async fn response_error(method: &Method, url: &Url, resp: Response, service_sent: bool) -> Error {
    let refused = Refused::from_headers(resp.headers(), service_sent);
    let (status, message, request_id) = read_error(resp).await;
    if status.as_u16() == 401 {
        Error::Unauthorized {
            request: format!("{method} {}", display_url(url)),
            refused,
            message,
            request_id,
        }
    } else {
        Error::Http {
            request: format!("{method} {}", display_url(url)),
            status: status.as_u16(),
            message,
            request_id,
            reasons: refused.reasons,
        }
    }
}
