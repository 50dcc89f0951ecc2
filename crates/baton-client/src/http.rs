//! The transport under every session and auth plugin: a reqwest client (rustls) with timeouts,
//! TLS options, bounded retries with exponential backoff, request-id logging, and a cache of
//! version-discovery results.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode, Url};

use crate::error::{display_url, Error, Result};

/// How often, and how patiently, a request is tried again.
///
/// Connection failures (nothing was sent) are retried for every method; timeouts only for
/// idempotent methods (a timed-out POST may have been processed). Responses whose status is in
/// `retry_statuses` (503 by default, like keystoneauth's `retriable_status_codes`) are retried for
/// every method. The delay doubles from `initial_delay` up to `max_delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of a request that could not connect (or timed out, if idempotent).
    pub connect_retries: u32,
    /// Retries of a request answered with one of `retry_statuses`.
    pub status_retries: u32,
    /// Statuses worth another try (503 by default).
    pub retry_statuses: Vec<u16>,
    /// The wait before the first retry.
    pub initial_delay: Duration,
    /// The longest wait between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            connect_retries: 3,
            status_retries: 3,
            retry_statuses: vec![503],
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            connect_retries: 0,
            status_retries: 0,
            ..RetryPolicy::default()
        }
    }
}

/// Options of the HTTP client (keystoneauth's session options).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time to establish a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Time for a whole request (default 60 s); `None` for no limit.
    pub timeout: Option<Duration>,
    /// PEM file with the CA certificates to trust instead of the built-in roots (keystoneauth's
    /// `verify=<cafile>`, as requests reads it).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key (`certfile`, `keyfile`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Accept any server certificate (`insecure = true`). Logged as a warning, once per process.
    pub insecure: bool,
    /// The `User-Agent` sent (`baton-client/VERSION` by default).
    pub user_agent: String,
    /// When to try a request again.
    pub retry: RetryPolicy,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(60)),
            ca_file: None,
            client_cert: None,
            insecure: false,
            user_agent: concat!("baton-client/", env!("CARGO_PKG_VERSION")).to_string(),
            retry: RetryPolicy::default(),
        }
    }
}

impl HttpOptions {
    /// The HTTP client these options describe (TLS, timeouts, retries).
    pub fn build(&self) -> Result<HttpClient> {
        HttpClient::new(self)
    }
}

/// One request, kept as data so that it can be sent again (retries, re-authentication).
#[derive(Clone)]
pub struct HttpRequest {
    /// The HTTP method.
    pub method: Method,
    /// Where to send it.
    pub url: Url,
    /// Its headers (tokens among them: never logged).
    pub headers: HeaderMap,
    /// Its body, if any.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers and body may hold tokens and passwords: never shown.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &display_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: Url) -> HttpRequest {
        HttpRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Adds (or replaces) a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> HttpRequest {
        self.headers.insert(name, value);
        self
    }

    /// A JSON body, with `Content-Type` and `Accept: application/json`.
    pub fn json(mut self, value: &serde_json::Value) -> HttpRequest {
        self.body = Some(value.to_string().into_bytes());
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.headers
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        self
    }
}

/// A shareable HTTP client (cheap to clone; one connection pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    retry: RetryPolicy,
    discovered: Mutex<HashMap<Url, Url>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

const MAX_REDIRECTS: usize = 10;

/// Waits `delay` before the next attempt and returns the one after it: doubled, at most
/// the policy's `max_delay`.
async fn backoff(delay: Duration, policy: &RetryPolicy) -> Duration {
    tokio::time::sleep(delay).await;
    (delay * 2).min(policy.max_delay)
}

impl HttpClient {
    /// A client with these options: rustls, the configured CA and client certificate, redirects
    /// kept within the same origin.
    pub fn new(options: &HttpOptions) -> Result<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone())
            // Redirects are followed only within the same origin, so that a token is never
            // carried to another host.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let first = attempt.previous().first().map(|u| u.origin());
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if first.is_some_and(|o| o == attempt.url().origin()) {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }));
        if let Some(t) = options.timeout {
            builder = builder.timeout(t);
        }
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::InvalidOption(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::InvalidOption(format!("CA file {} is not PEM: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &options.client_cert {
            let mut pem = std::fs::read(cert).map_err(|e| {
                Error::InvalidOption(format!(
                    "cannot read client certificate {}: {e}",
                    cert.display()
                ))
            })?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).map_err(|e| {
                Error::InvalidOption(format!("cannot read client key {}: {e}", key.display()))
            })?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::InvalidOption(format!(
                    "client certificate {} / key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        if options.insecure {
            // Sessions are built per configuration section and per command: one line says it.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!("TLS certificate verification is disabled (insecure = true)");
            });
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| Error::InvalidOption(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                retry: options.retry.clone(),
                discovered: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Sends `req`, retrying connection failures and retriable statuses per the policy. Any
    /// response is returned as is (error statuses included); only transport failures are errors.
    /// Each response is logged at debug level with its `x-openstack-request-id`; headers and
    /// bodies never are.
    pub async fn execute(&self, req: &HttpRequest) -> Result<Response> {
        let policy = &self.inner.retry;
        let shown = display_url(&req.url);
        let idempotent = matches!(
            req.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let mut delay = policy.initial_delay;
        let mut connect_left = policy.connect_retries;
        let mut status_left = policy.status_retries;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.send_once(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let request_id = request_id(resp.headers());
                    tracing::debug!(
                        method = %req.method,
                        url = %shown,
                        status = status.as_u16(),
                        request_id = %request_id.as_deref().unwrap_or("-"),
                        attempt = attempts,
                        "response"
                    );
                    if status_left > 0 && policy.retry_statuses.contains(&status.as_u16()) {
                        status_left -= 1;
                        tracing::warn!(
                            method = %req.method,
                            url = %shown,
                            status = status.as_u16(),
                            request_id = %request_id.as_deref().unwrap_or("-"),
                            retry_in_ms = delay.as_millis() as u64,
                            "retriable status, trying again"
                        );
                        drop(resp);
                        delay = backoff(delay, policy).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    let (is_connect, is_timeout) = (e.is_connect(), e.is_timeout());
                    let reason = root_cause(e);
                    let retriable = is_connect || (is_timeout && idempotent);
                    if retriable && connect_left > 0 {
                        connect_left -= 1;
                        tracing::warn!(
                            method = %req.method,
                            url = %shown,
                            error = %reason,
                            retry_in_ms = delay.as_millis() as u64,
                            "request failed, trying again"
                        );
                        delay = backoff(delay, policy).await;
                        continue;
                    }
                    return Err(if is_timeout {
                        Error::Timeout {
                            request: format!("{} {shown}", req.method),
                            attempts,
                            reason,
                        }
                    } else if is_connect {
                        Error::Connection {
                            url: shown,
                            attempts,
                            reason,
                        }
                    } else {
                        Error::Transport {
                            request: format!("{} {shown}", req.method),
                            reason,
                        }
                    });
                }
            }
        }
    }

    /// One attempt at `req`.
    async fn send_once(&self, req: &HttpRequest) -> reqwest::Result<Response> {
        let mut rb = self
            .inner
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(body) = &req.body {
            rb = rb.body(body.clone());
        }
        rb.send().await
    }

    pub(crate) fn cached_discovery(&self, url: &Url) -> Option<Url> {
        self.inner
            .discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
            .cloned()
    }

    pub(crate) fn cache_discovery(&self, url: Url, v3: Url) {
        self.inner
            .discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url, v3);
    }
}

/// The request id a response carries: `x-openstack-request-id`, or Nova's
/// `x-compute-request-id`.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(baton_types::headers::REQUEST_ID)
        .or_else(|| headers.get("x-compute-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(128)
                .collect()
        })
}

/// Reads an error response's body into Keystone's message (at most 64 KiB are read).
pub(crate) async fn read_error(resp: Response) -> (StatusCode, String, Option<String>) {
    let status = resp.status();
    let rid = request_id(resp.headers());
    let body = read_limited(resp, 64 * 1024).await;
    (status, crate::error::error_message(status, &body), rid)
}

pub(crate) async fn read_limited(mut resp: Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    out
}

/// The innermost cause of a reqwest error ("Connection refused (os error 111)"), without the URL.
fn root_cause(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cur: &dyn std::error::Error = &e;
    while let Some(next) = cur.source() {
        text = next.to_string();
        cur = next;
    }
    text
}
