//! `baton authproxy`: the [`AuthTokenLayer`] as a reverse proxy in front of any HTTP service.
//!
//! The proxy accepts HTTP/1.1 on `listen`, runs every request (there is no unauthenticated
//! path) through the auth_token layer, and forwards what the layer lets through to `upstream`
//! with keystonemiddleware's identity headers set and the client's spoofable copies gone.
//! Bodies stream in both directions (never buffered); hop-by-hop headers are dropped both ways;
//! `X-Forwarded-For` / `X-Forwarded-Proto` are added. An unreachable upstream gives 502 and a
//! slow one (no response head within `upstream_timeout`) 504, both with Keystone's error body.
//!
//! The client's hop-by-hop headers, including those its `Connection` names, are removed before
//! the auth layer runs, so they can never remove a header the layer sets; a `Connection` naming
//! an identity or token header is answered 400. Slow clients are cut off: the request head must
//! arrive within `header_timeout` (also the keep-alive idle limit), the body within
//! `body_timeout` plus one second per 500 bytes received (else 408), and at most
//! `max_connections` connections are served at once (further ones wait in the listen backlog).
//!
//! With `tls_cert_file` and `tls_key_file` the proxy serves HTTPS (the pair checked at start and
//! reloaded when its files change, as `baton serve` does: `baton_config::tls`). An `https://`
//! upstream is verified against the built-in web roots plus `upstream_cafile`.
//!
//! ```ini
//! [authproxy]
//! listen = 127.0.0.1:8080
//! upstream = http://127.0.0.1:9000
//! # optional (comments on their own lines: a `;` or `#` after a value is part of it)
//! # larger request heads get 431
//! max_header_bytes = 65536
//! # larger request bodies get 413 (default: unlimited, streamed)
//! max_body_bytes = 10485760
//! # seconds until the upstream's response head
//! upstream_timeout = 60
//! # GET /metrics here: the layer's counters (Prometheus text)
//! metrics_listen = 127.0.0.1:9102
//! # seconds for a request head, and for an idle keep-alive connection (default 30)
//! header_timeout = 30
//! # seconds for a request body, plus one per 500 bytes received (default 30)
//! body_timeout = 30
//! # client connections served at once; further ones wait (default 256)
//! max_connections = 256
//! # HTTPS towards the clients (PEM chain and key; reloaded when they change)
//! tls_cert_file = /etc/baton/proxy.crt
//! tls_key_file = /etc/baton/proxy.key
//! # extra CA certificates for an https:// upstream
//! upstream_cafile = /etc/baton/upstream-ca.pem
//! # threads serving requests, each with its own event loop (default: one per core)
//! workers = 4
//!
//! [keystone_authtoken]
//! auth_type = password
//! ...
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use baton_config::tls::{CertificateReloader, TlsFiles};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service, ServiceExt};

use baton_config::{ConfigError, ConfigErrorKind, IniFile, Origin};

use crate::config::AuthTokenConfig;
use crate::context::{is_identity_header, is_token_header};
use crate::layer::AuthTokenLayer;
use crate::upstream::UpstreamPool;
use crate::{Authenticator, DEFAULT_SECTION};

/// The proxy's own INI section.
pub const PROXY_SECTION: &str = "authproxy";

/// The options of `[authproxy]`; any other is refused.
pub const PROXY_OPTIONS: &[&str] = &[
    "listen",
    "upstream",
    "max_header_bytes",
    "max_body_bytes",
    "upstream_timeout",
    "metrics_listen",
    "header_timeout",
    "body_timeout",
    "max_connections",
    "tls_cert_file",
    "tls_key_file",
    "upstream_cafile",
    "workers",
];

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Bodies on both legs of the proxy: streamed, type-erased.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The `[authproxy]` section.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Where the proxy listens for the service's clients.
    pub listen: SocketAddr,
    /// `http(s)://host:port[/prefix]`; the request's path and query are appended to the prefix.
    pub upstream: Uri,
    /// Extra CA certificates (PEM) trusted for an `https://` upstream, besides the built-in
    /// web roots (`upstream_cafile`).
    pub upstream_cafile: Option<PathBuf>,
    /// Serve HTTPS with this certificate pair (`tls_cert_file`, `tls_key_file`).
    pub tls: Option<TlsFiles>,
    /// Bound on the request head (request line plus headers); `None`: hyper's default buffer.
    pub max_header_bytes: Option<usize>,
    /// Bound on the request body; `None`: unlimited, streamed.
    pub max_body_bytes: Option<u64>,
    /// Bound on waiting for the upstream's response head (and on connecting).
    pub upstream_timeout: Option<Duration>,
    /// Where `GET /metrics` answers with the layer's counters. A listener of its own, so that no
    /// path of the proxied service is shadowed and the counters need not be public.
    pub metrics_listen: Option<SocketAddr>,
    /// Bound on receiving a request head, and on a keep-alive connection's idle time before its
    /// next request (`header_timeout`, default 30 s): then the connection is closed.
    pub header_timeout: Duration,
    /// Bound on receiving a request body (`body_timeout`, default 30 s), counted from the
    /// request head and extended by one second per [`BODY_MIN_RATE`] bytes received (Apache
    /// mod_reqtimeout's rule), so that large uploads pass and a trickle does not: 408.
    pub body_timeout: Duration,
    /// Client connections served at once (`max_connections`, default
    /// [`DEFAULT_MAX_CONNECTIONS`]); further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Threads serving requests (`workers`, default: the number of cores). Each runs its own
    /// single-threaded event loop, accepts from the shared socket and keeps its own upstream
    /// connections, as nginx's workers do: a request never hops between threads.
    pub workers: usize,
}

/// Default `header_timeout` and `body_timeout`.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `max_connections`. A proxied connection can hold two descriptors (client and
/// upstream), so 256 stays within the usual soft limit of 1024 open files with room for the
/// identity service's connections; raise it together with `LimitNOFILE`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Bytes per second of request body that earn one more second of `body_timeout`.
pub const BODY_MIN_RATE: u64 = 500;

/// The whole proxy configuration: `[authproxy]` plus `[keystone_authtoken]`.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `[authproxy]`: listening, upstream and client limits.
    pub proxy: ProxyOptions,
    /// `[keystone_authtoken]`: how tokens are validated.
    pub authtoken: AuthTokenConfig,
}

fn section_error(ini: &IniFile, reason: String) -> ConfigError {
    let origin = ini
        .section(PROXY_SECTION)
        .map(|s| s.origin().clone())
        .unwrap_or_else(|| Origin::Environment {
            var: format!("(no [{PROXY_SECTION}] section)"),
        });
    ConfigError::from(ConfigErrorKind::Section {
        origin,
        section: PROXY_SECTION.to_string(),
        reason,
    })
}

impl ProxyOptions {
    /// Reads `[authproxy]`; `listen` and `upstream` are required.
    pub fn from_ini(ini: &IniFile) -> Result<ProxyOptions, ConfigError> {
        let s = PROXY_SECTION;
        check_names(ini)?;
        let required = |name: &'static str| -> Result<(String, &baton_config::Value), ConfigError> {
            let opt = ini.option(s, name);
            match (opt.string()?, opt.value()) {
                (Some(v), Some(raw)) if !v.trim().is_empty() => Ok((v.trim().to_string(), raw)),
                _ => Err(section_error(ini, format!("{name} is required"))),
            }
        };
        let (listen, raw) = required("listen")?;
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| raw.error(s, "listen", format!("not an address:port: {e}")))?;
        let (upstream, raw) = required("upstream")?;
        let upstream: Uri = upstream
            .parse()
            .map_err(|e| raw.error(s, "upstream", format!("not a URL: {e}")))?;
        if !matches!(upstream.scheme_str(), Some("http" | "https"))
            || upstream.authority().is_none()
        {
            return Err(raw.error(s, "upstream", "use http(s)://host:port[/prefix]"));
        }
        let reader = ini.reader(s);
        let upstream_cafile = match reader.text("upstream_cafile")? {
            None => None,
            Some((path, value)) => {
                let path = PathBuf::from(path);
                baton_config::tls::read_roots(&path)
                    .map_err(|e| value.error(s, "upstream_cafile", e))?;
                Some(path)
            }
        };
        let tls = baton_config::tls::read_tls_files(reader, "tls_cert_file", "tls_key_file")?;
        let max_header_bytes = ini
            .option(s, "max_header_bytes")
            .int(Some(1024), None)?
            .map(|n| n as usize);
        let max_body_bytes = ini
            .option(s, "max_body_bytes")
            .int(Some(0), None)?
            .map(|n| n as u64);
        let upstream_timeout = seconds(ini, "upstream_timeout")?;
        let header_timeout = seconds(ini, "header_timeout")?.unwrap_or(DEFAULT_CLIENT_TIMEOUT);
        let body_timeout = seconds(ini, "body_timeout")?.unwrap_or(DEFAULT_CLIENT_TIMEOUT);
        let max_connections = ini
            .option(s, "max_connections")
            .int(Some(1), Some(1 << 20))?
            .map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize);
        let workers = ini
            .option(s, "workers")
            .int(Some(1), Some(1024))?
            .map_or_else(
                || std::thread::available_parallelism().map_or(1, usize::from),
                |n| n as usize,
            );
        let opt = ini.option(s, "metrics_listen");
        let metrics_listen = match (opt.string()?, opt.value()) {
            (Some(v), Some(raw)) if !v.trim().is_empty() => {
                Some(v.trim().parse::<SocketAddr>().map_err(|e| {
                    raw.error(s, "metrics_listen", format!("not an address:port: {e}"))
                })?)
            }
            _ => None,
        };
        Ok(ProxyOptions {
            listen,
            upstream,
            upstream_cafile,
            tls,
            max_header_bytes,
            max_body_bytes,
            upstream_timeout,
            metrics_listen,
            header_timeout,
            body_timeout,
            max_connections,
            workers,
        })
    }
}

/// Refuses options `[authproxy]` does not have (a typo would otherwise keep a default).
fn check_names(ini: &IniFile) -> Result<(), ConfigError> {
    let Some(section) = ini.section(PROXY_SECTION) else {
        return Ok(());
    };
    for (option, value) in section.entries() {
        if !PROXY_OPTIONS.contains(&option) {
            return Err(value.error(PROXY_SECTION, option, "unknown option"));
        }
    }
    Ok(())
}

/// The TLS client of the upstream leg: the built-in web roots plus `upstream_cafile`.
fn upstream_tls(opts: &ProxyOptions) -> Result<rustls::ClientConfig, String> {
    baton_config::tls::client_config(opts.upstream_cafile.as_deref(), None)
        .map_err(|e| format!("[authproxy] upstream_cafile: {e}"))
}

/// A positive number of seconds (fractions allowed), or `None` when unset.
fn seconds(ini: &IniFile, name: &'static str) -> Result<Option<Duration>, ConfigError> {
    let opt = ini.option(PROXY_SECTION, name);
    let Some(secs) = opt.float()? else {
        return Ok(None);
    };
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(Some(d)),
        _ => {
            let reason = "must be a positive number of seconds";
            Err(match opt.value() {
                Some(raw) => raw.error(PROXY_SECTION, name, reason),
                None => section_error(ini, format!("{name} {reason}")),
            })
        }
    }
}

impl ProxyConfig {
    /// Reads `[authproxy]` and `[keystone_authtoken]`.
    pub fn from_ini(ini: &IniFile) -> Result<ProxyConfig, ConfigError> {
        Ok(ProxyConfig {
            proxy: ProxyOptions::from_ini(ini)?,
            authtoken: AuthTokenConfig::from_ini(ini, DEFAULT_SECTION)?,
        })
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Hop-by-hop headers (RFC 9110 7.6.1) and `Upgrade`, never forwarded in either direction.
/// Names, not strings: removing by `&str` would parse the name on every request.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// The header names listed in `Connection`.
fn connection_named(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// Removes the fixed hop-by-hop headers (not those named in `Connection`).
fn strip_fixed_hop_by_hop(h: &mut HeaderMap) {
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
}

/// Removes the hop-by-hop headers and every header named in `Connection` (upstream responses).
fn strip_hop_by_hop(h: &mut HeaderMap) {
    for n in connection_named(h) {
        h.remove(n);
    }
    strip_fixed_hop_by_hop(h);
}

/// The client's hop-by-hop headers, removed before the auth layer runs: whatever `Connection`
/// names is gone before the layer strips and sets the identity headers, so a client can never
/// remove one the layer set (oslo.context fills a missing `X-Is-Admin-Project` with True and a
/// missing `X-User-Id` with the user name). A `Connection` naming an identity or token header
/// (any case, `_` for `-`) is refused rather than obeyed (`Err` with that name: answer 400): no
/// proxy between a client and us has a reason to send one.
fn strip_incoming_hop_by_hop(h: &mut HeaderMap) -> Result<(), HeaderName> {
    let named = connection_named(h);
    if let Some(n) = named
        .iter()
        .find(|n| is_identity_header(n.as_str()) || is_token_header(n.as_str()))
    {
        return Err(n.clone());
    }
    for n in named {
        h.remove(n);
    }
    strip_fixed_hop_by_hop(h);
    Ok(())
}

/// Keystone-style JSON error from the proxy itself.
fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": {
        "code": status.as_u16(),
        "title": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    }})
    .to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// What the accept loop hands the forwarder with each request: the client's IP address as
/// an `X-Forwarded-For` value (made once per connection) and the body deadline's flag.
#[derive(Clone)]
struct Forwarding {
    client_ip: Option<HeaderValue>,
    timed_out: BodyTimedOut,
}

/// The forwarding service behind the layer.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<ForwarderInner>,
}

struct ForwarderInner {
    pool: Arc<UpstreamPool>,
    upstream: Uri,
    /// The upstream's path prefix without a trailing `/`.
    prefix: String,
    /// `Host` for requests that came without one: the upstream's authority.
    host: Option<HeaderValue>,
    opts: ProxyOptions,
}

impl ForwarderInner {
    /// The request's path and query under the upstream's path prefix, in origin form (the
    /// connection is already to the upstream).
    fn upstream_uri(&self, uri: &Uri) -> Option<Uri> {
        // Without a prefix the request's own path and query go on as they are (shared bytes).
        let path_and_query = match (self.prefix.is_empty(), uri.path_and_query()) {
            (true, Some(pq)) => pq.clone(),
            (_, pq) => {
                let path_q = pq.map(|p| p.as_str()).unwrap_or("/");
                format!("{}{}", self.prefix, path_q).parse().ok()?
            }
        };
        Some(Uri::from(path_and_query))
    }

    /// Drops the hop-by-hop headers and adds `X-Forwarded-For` / `-Proto` and the upstream's
    /// `Host` where the client sent none.
    fn forwarding_headers(&self, parts: &mut http::request::Parts) {
        let h = &mut parts.headers;
        // Only the fixed list: the headers named in the client's `Connection` went before the
        // auth layer ran (`strip_incoming_hop_by_hop`), and nothing the layer set may go now.
        strip_fixed_hop_by_hop(h);
        let client_ip = parts
            .extensions
            .get::<Forwarding>()
            .and_then(|f| f.client_ip.clone());
        if let Some(ip) = client_ip {
            let value = match h.get(X_FORWARDED_FOR).map(|prev| prev.as_bytes()) {
                Some(prev) => HeaderValue::from_bytes(&[prev, b", ", ip.as_bytes()].concat()).ok(),
                None => Some(ip),
            };
            if let Some(v) = value {
                h.insert(X_FORWARDED_FOR, v);
            }
        }
        if !h.contains_key(X_FORWARDED_PROTO) {
            let proto = if self.opts.tls.is_some() {
                "https"
            } else {
                "http"
            };
            h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        }
        if !h.contains_key(HOST) {
            if let Some(v) = &self.host {
                h.insert(HOST, v.clone());
            }
        }
    }
}

impl Forwarder {
    /// A forwarder to `opts.upstream`, with pooled keep-alive connections (TLS for an
    /// `https://` upstream); fails when `upstream_cafile` cannot be loaded.
    pub fn new(opts: ProxyOptions) -> Result<Forwarder, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(
            opts.upstream_timeout.unwrap_or(Duration::from_secs(10)),
        ));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(upstream_tls(&opts)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let pool = UpstreamPool::new(connector, opts.upstream.clone(), opts.max_connections);
        let prefix = opts.upstream.path().trim_end_matches('/').to_string();
        let host = opts
            .upstream
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        Ok(Forwarder {
            inner: Arc::new(ForwarderInner {
                pool,
                upstream: opts.upstream.clone(),
                prefix,
                host,
                opts,
            }),
        })
    }

    async fn forward<B>(self, req: Request<B>) -> Response<ProxyBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let inner = &self.inner;
        let (mut parts, body) = req.into_parts();

        if let Some(max) = inner.opts.max_body_bytes {
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The request body is too large.",
                );
            }
        }

        parts.uri = match inner.upstream_uri(&parts.uri) {
            Some(u) => u,
            None => return error_response(StatusCode::BAD_REQUEST, "Malformed request URI."),
        };
        parts.version = http::Version::HTTP_11;
        inner.forwarding_headers(&mut parts);

        let timed_out = parts
            .extensions
            .get::<Forwarding>()
            .map(|f| f.timed_out.clone());
        let body: ProxyBody = match inner.opts.max_body_bytes {
            Some(max) => Limited::new(body, max as usize).boxed_unsync(),
            None => body.map_err(Into::into).boxed_unsync(),
        };
        let upstream_req = Request::from_parts(parts, body);
        let call = inner.pool.send(upstream_req);
        let result = match inner.opts.upstream_timeout {
            Some(t) => match tokio::time::timeout(t, call).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(upstream = %inner.upstream, "upstream timed out");
                    return error_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        "The upstream service did not answer in time.",
                    );
                }
            },
            None => call.await,
        };
        match result {
            Ok(mut resp) => {
                strip_hop_by_hop(resp.headers_mut());
                resp
            }
            Err(_) if timed_out.as_ref().is_some_and(BodyTimedOut::fired) => {
                tracing::info!("request body not received within body_timeout: 408");
                let mut resp = error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body was not received in time.",
                );
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                resp
            }
            Err(e) => {
                tracing::warn!(upstream = %inner.upstream, error = %e, "upstream request failed");
                error_response(
                    StatusCode::BAD_GATEWAY,
                    "The upstream service is unavailable.",
                )
            }
        }
    }
}

impl<B> Service<Request<B>> for Forwarder
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

/// Set when the request body missed its deadline (shared by the body and the forwarder).
#[derive(Clone, Default)]
struct BodyTimedOut(Arc<AtomicBool>);

impl BodyTimedOut {
    fn fired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The request body under `body_timeout`: it fails (and sets [`BodyTimedOut`]) when the client
/// makes the proxy wait past `start + timeout + received / BODY_MIN_RATE seconds`. Only waiting
/// for the client counts: data already received is always handed on, so a slow upstream
/// (back-pressure) never times a client out.
struct DeadlineBody<B> {
    inner: B,
    start: Instant,
    timeout: Duration,
    received: u64,
    /// Created at the first wait; bodiless requests never arm a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: BodyTimedOut,
}

impl<B> DeadlineBody<B> {
    fn deadline(&self) -> Option<Instant> {
        let extra = Duration::from_millis(self.received.saturating_mul(1000) / BODY_MIN_RATE);
        self.start.checked_add(self.timeout)?.checked_add(extra)
    }
}

#[derive(Debug)]
struct BodyTimeoutError;

impl std::fmt::Display for BodyTimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received within body_timeout")
    }
}

impl std::error::Error for BodyTimeoutError {}

impl<B> hyper::body::Body for DeadlineBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out.fired() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeoutError))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        loop {
            // The deadline moves with the data received; the timer is re-armed only when it
            // fires early, not per frame.
            let Some(deadline) = this.deadline() else {
                return Poll::Pending;
            };
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() < deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                this.timed_out.0.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(Box::new(BodyTimeoutError))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Size of the request head as received: request line plus `name: value\r\n` lines.
fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    line + req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

/// Serves the proxy on `listener` until the task is dropped. Each connection is HTTP/1.1 with
/// keep-alive; every request goes through the auth_token layer and then to the upstream.
/// At most `max_connections` connections are served at once; a slow request head or body
/// is cut off after `header_timeout` / `body_timeout`.
pub async fn serve(
    listener: TcpListener,
    auth: Authenticator,
    opts: ProxyOptions,
) -> std::io::Result<()> {
    let slots = Arc::new(ConnectionSlots::new(opts.max_connections));
    serve_with_slots(listener, auth, opts, slots).await
}

/// [`serve`] on `opts.workers` threads, each with a current-thread runtime of its own
/// accepting from `listener` (one socket, no `SO_REUSEPORT`), its own upstream connection pool
/// and TLS acceptor, and one `max_connections` bound over all of them, so that a request's
/// tasks never wake each other across threads (on two cores: 31 instead of 36 µs of CPU per
/// proxied request, `scripts/bench-proxy.sh`). Returns when a worker stops (with its error).
pub async fn serve_workers(
    listener: std::net::TcpListener,
    auth: Authenticator,
    opts: ProxyOptions,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let slots = Arc::new(ConnectionSlots::new(opts.max_connections));
    baton_config::run_on_threads("authproxy", opts.workers, || {
        let listener = listener.try_clone()?;
        let (auth, opts, slots) = (auth.clone(), opts.clone(), slots.clone());
        Ok(move || async move {
            let listener = TcpListener::from_std(listener)?;
            serve_with_slots(listener, auth, opts, slots).await
        })
    })
    .await
}

async fn serve_with_slots(
    listener: TcpListener,
    auth: Authenticator,
    opts: ProxyOptions,
    slots: Arc<ConnectionSlots>,
) -> std::io::Result<()> {
    let forwarder = Forwarder::new(opts.clone()).map_err(std::io::Error::other)?;
    let service = AuthTokenLayer::new(auth).layer(forwarder);
    let tls = opts.tls.as_ref().map(tls_acceptor).transpose()?;
    let header_timeout = opts.header_timeout;
    let max_header = opts.max_header_bytes;
    let body_timeout = opts.body_timeout;
    loop {
        let permit = slots.acquire().await;
        let (stream, peer) = accept(&listener).await;
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let client_ip = HeaderValue::from_str(&peer.ip().to_string()).ok();
        let hyper_service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let service = service.clone();
            let client_ip = client_ip.clone();
            async move {
                if max_header.is_some_and(|max| head_size(&req) > max) {
                    let resp = error_response(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "The request headers are too large.",
                    );
                    return Ok::<_, Infallible>(resp);
                }
                if let Err(name) = strip_incoming_hop_by_hop(req.headers_mut()) {
                    tracing::info!(%peer, header = %name, "Connection names a protected header: 400");
                    return Ok(error_response(
                        StatusCode::BAD_REQUEST,
                        "The Connection header must not name identity or token headers.",
                    ));
                }
                let timed_out = BodyTimedOut::default();
                req.extensions_mut().insert(Forwarding {
                    client_ip,
                    timed_out: timed_out.clone(),
                });
                let req = req.map(|inner| DeadlineBody {
                    inner,
                    start: Instant::now(),
                    timeout: body_timeout,
                    received: 0,
                    sleep: None,
                    timed_out,
                });
                let resp = service.oneshot(req).await?;
                Ok(resp.map(|b| b.boxed_unsync()))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_timeout);
        if let Some(max) = max_header {
            // hyper refuses buffers under 8 KiB; the exact bound is checked per request above.
            builder.max_buf_size(max.max(8192) * 2);
        }
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(io) = handshake(tls, stream, header_timeout, peer).await else {
                return;
            };
            if let Err(e) = builder
                .serve_connection(TokioIo::new(io), hyper_service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// The connection as served: as it is, or after a TLS handshake, which counts against
/// `header_timeout` like the request head itself; `None` when the handshake failed.
async fn handshake(
    tls: Option<tokio_rustls::TlsAcceptor>,
    stream: tokio::net::TcpStream,
    header_timeout: Duration,
    peer: SocketAddr,
) -> Option<Box<dyn Io>> {
    let Some(tls) = tls else {
        return Some(Box::new(stream));
    };
    match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake not done within header_timeout");
            None
        }
    }
}

/// A client connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// The acceptor of `tls_cert_file` / `tls_key_file`; a bad pair stops the start.
fn tls_acceptor(files: &TlsFiles) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    let reloader = CertificateReloader::new(files.clone(), PROXY_SECTION).map_err(|e| {
        let (option, path) = match e {
            baton_config::tls::PairError::Cert(_) => ("tls_cert_file", &files.cert_file),
            baton_config::tls::PairError::Key(_) => ("tls_key_file", &files.key_file),
        };
        std::io::Error::other(format!(
            "[{PROXY_SECTION}] {option} = {}: {e}",
            path.display()
        ))
    })?;
    let config = Arc::new(reloader)
        .server_config()
        .map_err(std::io::Error::other)?;
    Ok(tokio_rustls::TlsAcceptor::from(config))
}

/// The connection limit. When every slot is taken the accept loop waits: new connections stay
/// in the kernel's listen backlog (no descriptor of ours, and they are served in order as soon
/// as a slot frees, which the header and body timeouts guarantee) instead of being accepted
/// and closed, which would cost a descriptor and an accept per attempt under a flood and turn
/// a short burst into errors for well-behaved clients.
struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max: usize,
    last_warning: Mutex<Option<std::time::Instant>>,
}

impl ConnectionSlots {
    fn new(max: usize) -> ConnectionSlots {
        ConnectionSlots {
            slots: Arc::new(Semaphore::new(max)),
            max,
            last_warning: Mutex::new(None),
        }
    }

    async fn acquire(&self) -> OwnedSemaphorePermit {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return p;
        }
        {
            // At most one line a minute while saturated.
            let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(
                    max_connections = self.max,
                    "connection limit reached: new connections wait"
                );
            }
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// The next connection; accept errors (out of descriptors and the like) back off briefly
/// instead of spinning.
async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(c) => return c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Answers `GET /metrics` with the authenticator's counters (Prometheus text format 0.0.4);
/// anything else is 404. Runs until the process ends.
pub async fn serve_metrics(listener: TcpListener, auth: Authenticator) {
    loop {
        let (stream, _) = accept(&listener).await;
        let auth = auth.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let resp = if req.method() == http::Method::GET && req.uri().path() == "/metrics" {
                let mut resp =
                    Response::new(Full::new(Bytes::from(auth.metrics().render_prometheus())));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                resp
            } else {
                let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
                *resp.status_mut() = StatusCode::NOT_FOUND;
                resp
            };
            async move { Ok::<_, Infallible>(resp) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Reads the configuration, binds `listen` and serves (the `baton authproxy` command).
pub async fn run(config: ProxyConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let auth = Authenticator::new(config.authtoken)?;
    // keystonemiddleware does not refuse to start when the identity service is down; neither do
    // we, but a wrong password or catalog is worth a loud line at start-up.
    match tokio::time::timeout(Duration::from_secs(15), auth.startup_check()).await {
        Ok(Ok(url)) => tracing::info!(identity = %url, "authproxy validates tokens here"),
        Ok(Err(e)) => tracing::warn!(error = %e, "authproxy start-up check failed"),
        Err(_) => tracing::warn!("authproxy start-up check timed out"),
    }
    if let Some(addr) = config.proxy.metrics_listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} (metrics_listen): {e}"))?;
        tracing::info!(%addr, "authproxy metrics at /metrics");
        tokio::spawn(serve_metrics(listener, auth.clone()));
    }
    let listen = config.proxy.listen;
    // Bound by tokio (its backlog of 1024, where waiting connections queue), then handed to
    // the workers' runtimes.
    let listener = TcpListener::bind(listen)
        .await
        .and_then(TcpListener::into_std)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, upstream = %config.proxy.upstream, workers = config.proxy.workers, "authproxy listening");
    serve_workers(listener, auth, config.proxy).await?;
    Ok(())
}
