//! The identity API as python-openstackclient calls it (through openstacksdk): one authenticated
//! session, the v3 endpoint of the catalog, and name-or-id lookups done the SDK's way.

use std::fmt;
use std::sync::Arc;

use baton_client::{AccessInfo, CloudConfig, Error as ClientError, Method, Session, Url};
use serde_json::json;
use tokio::sync::OnceCell;

use super::output::Value;

/// A command failure: one line for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        CliError(e.to_string())
    }
}

impl From<String> for CliError {
    fn from(s: String) -> CliError {
        CliError(s)
    }
}

impl From<&str> for CliError {
    fn from(s: &str) -> CliError {
        CliError(s.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// An error answer, printed like openstacksdk's HttpException:
/// `ConflictException: 409: Client Error for url: URL, message`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub url: String,
    pub message: String,
}

impl ApiError {
    fn class(&self) -> &'static str {
        match self.status {
            400 => "BadRequestException",
            403 => "ForbiddenException",
            404 => "NotFoundException",
            409 => "ConflictException",
            _ => "HttpException",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.status >= 500 {
            "Server Error"
        } else {
            "Client Error"
        };
        write!(
            f,
            "{}: {}: {kind} for url: {}, {}",
            self.class(),
            self.status,
            self.url,
            self.message
        )
    }
}

/// Why a request failed: the server said no, or the request could not be made.
#[derive(Debug)]
pub enum CallError {
    Api(ApiError),
    Client(CliError),
}

impl From<CallError> for CliError {
    fn from(e: CallError) -> CliError {
        match e {
            CallError::Api(a) => CliError(a.to_string()),
            CallError::Client(c) => c,
        }
    }
}

/// The kinds of resource looked up by name or id, with the SDK's class name for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    Project,
    Domain,
    Role,
    Service,
    Endpoint,
}

impl Kind {
    pub fn class(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Project => "Project",
            Kind::Domain => "Domain",
            Kind::Role => "Role",
            Kind::Service => "Service",
            Kind::Endpoint => "Endpoint",
        }
    }

    pub fn collection(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Project => "projects",
            Kind::Domain => "domains",
            Kind::Role => "roles",
            Kind::Service => "services",
            Kind::Endpoint => "endpoints",
        }
    }

    pub fn member(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Project => "project",
            Kind::Domain => "domain",
            Kind::Role => "role",
            Kind::Service => "service",
            Kind::Endpoint => "endpoint",
        }
    }
}

/// How a name-or-id lookup failed.
#[derive(Debug)]
pub enum FindError {
    /// `No User found for x` (or the service type message).
    NotFound(String),
    /// The caller may not look (403 on the list): openstackclient then uses the text as an id.
    Forbidden(CliError),
    Other(CliError),
}

impl From<FindError> for CliError {
    fn from(e: FindError) -> CliError {
        match e {
            FindError::NotFound(m) => CliError(m),
            FindError::Forbidden(e) | FindError::Other(e) => e,
        }
    }
}

impl From<CallError> for FindError {
    fn from(e: CallError) -> FindError {
        match e {
            CallError::Api(a) if a.status == 403 => FindError::Forbidden(CliError(a.to_string())),
            other => FindError::Other(other.into()),
        }
    }
}

/// An authenticated connection to the identity API.
pub struct Identity {
    pub cloud: CloudConfig,
    session: Session,
    pub access: Arc<AccessInfo>,
    v3: OnceCell<Url>,
}

impl Identity {
    /// Authenticates with the cloud's credentials.
    pub async fn connect(cloud: CloudConfig) -> CliResult<Identity> {
        let session = cloud.session()?;
        let access = session.get_access().await?;
        Ok(Identity {
            cloud,
            session,
            access,
            v3: OnceCell::new(),
        })
    }

    /// The identity v3 endpoint: the catalog's (interface and region of the cloud), else — for
    /// tokens without a catalog — the auth URL's.
    pub async fn v3(&self) -> CliResult<&Url> {
        self.v3
            .get_or_try_init(|| async {
                match self
                    .session
                    .identity_endpoint(self.cloud.interface, self.cloud.region_name.as_deref())
                    .await
                {
                    Ok(u) => Ok(u),
                    Err(ClientError::EndpointNotFound { .. }) => {
                        Ok(baton_client::discover::identity_v3_url(
                            self.session.http(),
                            &self.cloud.auth.auth_url,
                        )
                        .await?)
                    }
                    Err(e) => Err(CliError::from(e)),
                }
            })
            .await
    }

    async fn url(&self, path: &[&str], query: &[(&str, String)]) -> CliResult<Url> {
        let mut u = self.v3().await?.clone();
        {
            let mut segs = u
                .path_segments_mut()
                .map_err(|_| CliError("the identity endpoint cannot hold a path".into()))?;
            segs.pop_if_empty();
            for p in path {
                segs.push(p);
            }
        }
        if !query.is_empty() {
            u.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(u)
    }

    /// One request; `Ok(None)` for an empty answer (204).
    pub async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<Option<Value>, CallError> {
        let url = self.url(path, query).await.map_err(CallError::Client)?;
        self.call_url(method, url, body, &[]).await
    }

    async fn call_url(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<Option<Value>, CallError> {
        let (bytes, shown) = self.send(method, url, body, headers).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice::<Value>(&bytes)
            .map(Some)
            .map_err(|e| {
                CallError::Client(CliError(format!(
                    "invalid response from {shown}: not JSON: {e}"
                )))
            })
    }

    /// A `POST` with extra headers whose answer is not JSON (OAuth1's form-encoded tokens):
    /// the body as text. `url` receives the request's URL first (what OAuth1 signs).
    pub async fn post_text(
        &self,
        path: &[&str],
        headers: impl FnOnce(&str) -> Vec<(String, String)>,
    ) -> Result<String, CallError> {
        let url = self.url(path, &[]).await.map_err(CallError::Client)?;
        let extra = headers(url.as_str());
        let extra: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (bytes, _) = self.send(Method::POST, url, None, &extra).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sends one request: the answer's body and its URL (without credentials) for messages;
    /// an error status is the server's message.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<(Vec<u8>, String), CallError> {
        let mut req = self
            .session
            .request(method, &url, "")
            .header("accept", "application/json")
            .raise_for_status(false);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| CallError::Client(e.into()))?;
        let status = resp.status().as_u16();
        let shown = {
            let mut u = resp.url().clone();
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        };
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Client(CliError(format!("reading {shown}: {e}"))))?;
        if status >= 400 {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .and_then(|e| e.get("message"))
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&bytes)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                });
            return Err(CallError::Api(ApiError {
                status,
                url: shown,
                message,
            }));
        }
        Ok((bytes.to_vec(), shown))
    }

    pub async fn get(&self, path: &[&str], query: &[(&str, String)]) -> Result<Value, CallError> {
        Ok(self
            .call(Method::GET, path, query, None)
            .await?
            .unwrap_or(Value::Null))
    }

    /// A collection, following `links.next` like the SDK's pagination.
    pub async fn list(
        &self,
        path: &[&str],
        key: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, CallError> {
        let mut page = self.get(path, query).await?;
        let mut out: Vec<Value> = page.field(key).as_array().to_vec();
        for _ in 0..1000 {
            let next = page
                .get("links")
                .and_then(|l| l.str_field("next"))
                .and_then(|n| Url::parse(n).ok());
            let Some(next) = next else { break };
            page = self
                .call_url(Method::GET, next, None, &[])
                .await?
                .unwrap_or(Value::Null);
            out.extend(page.field(key).as_array().iter().cloned());
        }
        Ok(out)
    }

    /// POST a `{member: body}` and return the created member.
    pub async fn create(&self, kind: Kind, body: serde_json::Value) -> Result<Value, CallError> {
        let created = self
            .call(
                Method::POST,
                &[kind.collection()],
                &[],
                Some(json!({ kind.member(): body })),
            )
            .await?
            .unwrap_or(Value::Null);
        Ok(created.field(kind.member()))
    }

    /// The caller's own token as the identity service renders it (with the catalog), keys in
    /// the server's order: what `catalog list` prints.
    pub async fn own_token(&self) -> CliResult<Value> {
        let url = self.url(&["auth", "tokens"], &[]).await?;
        let token = self.access.token().expose().to_string();
        Ok(self
            .call_url(Method::GET, url, None, &[("x-subject-token", &token)])
            .await?
            .unwrap_or(Value::Null))
    }

    /// `DELETE /v3/auth/tokens` for `subject`.
    pub async fn revoke(&self, subject: &str) -> CliResult<()> {
        let url = self.url(&["auth", "tokens"], &[]).await?;
        self.call_url(Method::DELETE, url, None, &[("x-subject-token", subject)])
            .await?;
        Ok(())
    }

    /// openstacksdk's `find`: `GET /{kind}s/{name_or_id}`, then the list filtered by name
    /// (plus `filters`), matching id or name; one match or an error.
    pub async fn find(
        &self,
        kind: Kind,
        name_or_id: &str,
        filters: &[(&str, String)],
    ) -> Result<Value, FindError> {
        match self
            .call(Method::GET, &[kind.collection(), name_or_id], filters, None)
            .await
        {
            Ok(Some(v)) => return Ok(v.field(kind.member())),
            Ok(None) => {}
            Err(CallError::Api(a)) if matches!(a.status, 400 | 403 | 404) => {}
            Err(e) => return Err(FindError::Other(e.into())),
        }
        let mut query: Vec<(&str, String)> = vec![("name", name_or_id.to_string())];
        query.extend(filters.iter().cloned());
        let items = self
            .list(&[kind.collection()], kind.collection(), &query)
            .await?;
        let matches: Vec<&Value> = items
            .iter()
            .filter(|i| {
                i.str_field("id") == Some(name_or_id) || i.str_field("name") == Some(name_or_id)
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(FindError::NotFound(format!(
                "No {} found for {name_or_id}",
                kind.class()
            ))),
            _ => Err(FindError::Other(CliError(format!(
                "More than one {} exists with the name '{name_or_id}'.",
                kind.class()
            )))),
        }
    }

    /// The id of a resource (openstackclient's `_find_sdk_id`): a 403 yields the text itself;
    /// with `must_exist = false` so does "not found".
    pub async fn find_id(
        &self,
        kind: Kind,
        name_or_id: &str,
        filters: &[(&str, String)],
        must_exist: bool,
    ) -> CliResult<String> {
        match self.find(kind, name_or_id, filters).await {
            Ok(v) => Ok(v.str_field("id").unwrap_or(name_or_id).to_string()),
            Err(FindError::Forbidden(_)) => Ok(name_or_id.to_string()),
            Err(FindError::NotFound(_)) if !must_exist => Ok(name_or_id.to_string()),
            Err(e) => Err(e.into()),
        }
    }

    /// The id of a domain, by name or id.
    pub async fn domain_id(&self, name_or_id: &str) -> CliResult<String> {
        self.find_id(Kind::Domain, name_or_id, &[], true).await
    }

    /// openstackclient's `find_service_sdk`: by id or name, then by type.
    pub async fn find_service(&self, name_type_or_id: &str) -> CliResult<Value> {
        match self.find(Kind::Service, name_type_or_id, &[]).await {
            Ok(v) => return Ok(v),
            Err(FindError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let by_type = self
            .list(
                &["services"],
                "services",
                &[("type", name_type_or_id.to_string())],
            )
            .await?;
        match by_type.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(CliError(format!(
                "No service with a type, name or ID of '{name_type_or_id}' exists."
            ))),
            _ => Err(CliError(format!(
                "Multiple service matches found for '{name_type_or_id}', use an ID to be more specific."
            ))),
        }
    }

    /// `GET /v3/regions/{id}` (openstacksdk's `get_region`).
    pub async fn get_region(&self, id: &str) -> CliResult<Value> {
        match self.get(&["regions", id], &[]).await {
            Ok(v) => Ok(v.field("region")),
            Err(CallError::Api(a)) if a.status == 404 => Err(CliError(format!(
                "No Region found for {id}: Client Error for url: {}, {}",
                a.url, a.message
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
