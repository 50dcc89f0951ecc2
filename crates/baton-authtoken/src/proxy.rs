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
//! an identity or token header is answered 400.
//!
//! ```ini
//! [authproxy]
//! listen = 127.0.0.1:8080
//! upstream = http://127.0.0.1:9000
//! # optional
//! max_header_bytes = 65536      ; larger request heads get 431
//! max_body_bytes = 10485760     ; larger request bodies get 413 (default: unlimited, streamed)
//! upstream_timeout = 60         ; seconds until the upstream's response head
//! metrics_listen = 127.0.0.1:9102 ; GET /metrics here: the layer's counters (Prometheus text)
//!
//! [keystone_authtoken]
//! auth_type = password
//! ...
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt};

use baton_config::{ConfigError, ConfigErrorKind, IniFile, Origin};

use crate::config::AuthTokenConfig;
use crate::context::{is_identity_header, is_token_header};
use crate::layer::AuthTokenLayer;
use crate::{Authenticator, DEFAULT_SECTION};

/// The proxy's own INI section.
pub const PROXY_SECTION: &str = "authproxy";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Bodies on both legs of the proxy: streamed, type-erased.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The `[authproxy]` section.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub listen: SocketAddr,
    /// `http://host:port[/prefix]`; the request's path and query are appended to the prefix.
    pub upstream: Uri,
    /// Bound on the request head (request line plus headers); `None`: hyper's default buffer.
    pub max_header_bytes: Option<usize>,
    /// Bound on the request body; `None`: unlimited, streamed.
    pub max_body_bytes: Option<u64>,
    /// Bound on waiting for the upstream's response head (and on connecting).
    pub upstream_timeout: Option<Duration>,
    /// Where `GET /metrics` answers with the layer's counters. A listener of its own, so that no
    /// path of the proxied service is shadowed and the counters need not be public.
    pub metrics_listen: Option<SocketAddr>,
}

/// The whole proxy configuration: `[authproxy]` plus `[keystone_authtoken]`.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub proxy: ProxyOptions,
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
        if upstream.scheme_str() != Some("http") || upstream.authority().is_none() {
            return Err(raw.error(s, "upstream", "use http://host:port[/prefix]"));
        }
        let max_header_bytes = ini
            .option(s, "max_header_bytes")
            .int(Some(1024), None)?
            .map(|n| n as usize);
        let max_body_bytes = ini
            .option(s, "max_body_bytes")
            .int(Some(0), None)?
            .map(|n| n as u64);
        let upstream_timeout = ini
            .option(s, "upstream_timeout")
            .float()?
            .map(|secs| {
                if secs > 0.0 && secs.is_finite() {
                    Ok(Duration::from_secs_f64(secs))
                } else {
                    Err(section_error(
                        ini,
                        "upstream_timeout must be a positive number of seconds".into(),
                    ))
                }
            })
            .transpose()?;
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
            max_header_bytes,
            max_body_bytes,
            upstream_timeout,
            metrics_listen,
        })
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

/// Hop-by-hop headers (RFC 9110 7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
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
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    h.remove("upgrade");
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

/// The client's address, put into the request extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The forwarding service behind the layer.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<ForwarderInner>,
}

struct ForwarderInner {
    client: Client<HttpConnector, ProxyBody>,
    upstream: Uri,
    /// The upstream's path prefix without a trailing `/`.
    prefix: String,
    opts: ProxyOptions,
}

impl Forwarder {
    pub fn new(opts: ProxyOptions) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(
            opts.upstream_timeout.unwrap_or(Duration::from_secs(10)),
        ));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let prefix = opts.upstream.path().trim_end_matches('/').to_string();
        Forwarder {
            inner: Arc::new(ForwarderInner {
                client,
                upstream: opts.upstream.clone(),
                prefix,
                opts,
            }),
        }
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

        let path_q = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let target = format!(
            "{}://{}{}{}",
            inner.upstream.scheme_str().unwrap_or("http"),
            inner.upstream.authority().map(|a| a.as_str()).unwrap_or(""),
            inner.prefix,
            path_q
        );
        parts.uri = match target.parse() {
            Ok(u) => u,
            Err(_) => return error_response(StatusCode::BAD_REQUEST, "Malformed request URI."),
        };
        parts.version = http::Version::HTTP_11;

        let h = &mut parts.headers;
        // Only the fixed list: the headers named in the client's `Connection` went before the
        // auth layer ran (`strip_incoming_hop_by_hop`), and nothing the layer set may go now.
        strip_fixed_hop_by_hop(h);
        if let Some(ClientAddr(addr)) = parts.extensions.get::<ClientAddr>().copied() {
            let ip = addr.ip().to_string();
            let value = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert("x-forwarded-for", v);
            }
        }
        if !h.contains_key("x-forwarded-proto") {
            h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        }
        if !h.contains_key(HOST) {
            if let Some(a) = inner.upstream.authority() {
                if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                    h.insert(HOST, v);
                }
            }
        }

        let body: ProxyBody = match inner.opts.max_body_bytes {
            Some(max) => Limited::new(body, max as usize).boxed_unsync(),
            None => body.map_err(Into::into).boxed_unsync(),
        };
        let upstream_req = Request::from_parts(parts, body);
        let call = inner.client.request(upstream_req);
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
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
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
pub async fn serve(
    listener: TcpListener,
    auth: Authenticator,
    opts: ProxyOptions,
) -> std::io::Result<()> {
    let service = AuthTokenLayer::new(auth).layer(Forwarder::new(opts.clone()));
    let max_header = opts.max_header_bytes;
    loop {
        let (stream, peer) = accept(&listener).await;
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let hyper_service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let service = service.clone();
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
                req.extensions_mut().insert(ClientAddr(peer));
                let resp = service.oneshot(req).await?;
                Ok(resp.map(|b| b.boxed_unsync()))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true);
        if let Some(max) = max_header {
            // hyper refuses buffers under 8 KiB; the exact bound is checked per request above.
            builder.max_buf_size(max.max(8192) * 2);
        }
        tokio::spawn(async move {
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), hyper_service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
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
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, upstream = %config.proxy.upstream, "authproxy listening");
    serve(listener, auth, config.proxy).await?;
    Ok(())
}
